//go:build linux

package pgtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// gone reports whether a process has ended (or only its zombie is left).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// A test binary that dies without cleaning up (killed by its timeout)
// leaves no PostgreSQL behind.
func TestServerDiesWithTheProcessThatStartedIt(t *testing.T) {
	helperProc := exec.Command(os.Args[0], "-test.run=^$")
	helperProc.Env = append(os.Environ(), helperEnv+"="+t.TempDir())
	out, err := helperProc.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helperProc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helperProc.Process.Kill(); _ = helperProc.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	var port, pid int
	if _, err := fmt.Sscan(line, &port, &pid); err != nil {
		t.Fatalf("helper said %q", line)
	}
	t.Cleanup(func() { _ = syscall.Kill(-pid, syscall.SIGKILL) }) // on failure
	url := (&Server{port: port}).URL("postgres")
	if err := ping(url); err != nil {
		t.Fatalf("helper's server %d on port %d: %v", pid, port, err)
	}
	if err := helperProc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helperProc.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("postgres %d outlived the process that started it by 20s", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for ping(url) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("something still answers on port %d", port)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ping(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	return c.Close(ctx)
}
