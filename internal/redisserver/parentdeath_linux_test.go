//go:build linux

package redisserver

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv, when set, makes this test binary start a server, print its
// address and pid, and wait to be killed.
const helperEnv = "REDISSERVER_TEST_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		s, err := Start(Options{Dir: dir})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(s.Addr(), s.PID())
		time.Sleep(time.Minute) // killed long before
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// gone reports whether a process has ended (or only its zombie is left).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// A process that dies without cleaning up (a test binary killed by its
// timeout) leaves no redis-server behind.
func TestServerDiesWithTheProcessThatStartedIt(t *testing.T) {
	if _, err := Binary(); err != nil {
		t.Skip(err)
	}
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"="+t.TempDir())
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	var addr string
	var pid int
	if _, err := fmt.Sscan(line, &addr, &pid); err != nil {
		t.Fatalf("helper said %q", line)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // on failure
	if got, ok := serverPID(addr); !ok || got != pid {
		t.Fatalf("helper's server %d on %s: answering %d (%v)", pid, addr, got, ok)
	}
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server %d outlived the process that started it by 10s", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := serverPID(addr); ok {
		t.Fatalf("something still answers on %s", addr)
	}
}
