//go:build linux

package childproc_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/convene/convene/internal/childproc"
	"github.com/convene/convene/internal/testkit"
)

// helperEnv, when set, makes this test binary start a sleeping child as
// the spec the variable names says, print its pid, and wait to be killed.
const helperEnv = "CHILDPROC_TEST_HELPER"

func TestMain(m *testing.M) {
	if kind := os.Getenv(helperEnv); kind != "" {
		helper(kind)
	}
	os.Exit(m.Run())
}

func helper(kind string) {
	dir, err := os.MkdirTemp("", "childproc-")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	spec := childproc.Spec{Name: "sleep", Path: "/bin/sleep", Args: []string{"600"}, Log: filepath.Join(dir, "log")}
	if kind == "as another user in a group of its own" {
		spec.Group = true
		if u, err := user.Lookup("nobody"); err == nil && os.Geteuid() == 0 {
			uid, _ := strconv.ParseUint(u.Uid, 10, 32)
			gid, _ := strconv.ParseUint(u.Gid, 10, 32)
			spec.Cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		}
	}
	p, err := childproc.Start(spec)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(p.PID())
	time.Sleep(time.Minute) // killed long before
	os.Exit(0)
}

// A process that dies without cleaning up (a test binary killed by its
// timeout) leaves no child behind: redis-server and PostgreSQL (run as
// the postgres user, in a group of its own) are started this way.
func TestChildDiesWithTheProcessThatStartedIt(t *testing.T) {
	for _, kind := range []string{"as this user", "as another user in a group of its own"} {
		t.Run(kind, func(t *testing.T) {
			helperProc := exec.Command(os.Args[0], "-test.run=^$")
			helperProc.Env = append(os.Environ(), helperEnv+"="+kind)
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
			var pid int
			if _, err := fmt.Sscan(line, &pid); err != nil {
				t.Fatalf("helper said %q", line)
			}
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // on failure
			if gone(pid) {
				t.Fatalf("the helper's child %d is not running", pid)
			}
			if err := helperProc.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = helperProc.Wait()
			testkit.Eventually(t, testkit.Wait, func() error {
				if !gone(pid) {
					return fmt.Errorf("child %d outlives the process that started it", pid)
				}
				return nil
			})
		})
	}
}
