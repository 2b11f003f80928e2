package childproc_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/convene/convene/internal/childproc"
	"github.com/convene/convene/internal/testkit"
)

// sleeper is a child that runs until it is ended.
func sleeper(t *testing.T) childproc.Spec {
	t.Helper()
	return childproc.Spec{Name: "sleep", Path: "/bin/sleep", Args: []string{"600"}, Log: filepath.Join(t.TempDir(), "log")}
}

func TestWait(t *testing.T) {
	cases := []struct {
		name  string
		spec  func(t *testing.T) childproc.Spec
		ready func() error
		want  error // nil: ready
		said  string
	}{
		{"ready", sleeper, func() error { return nil }, nil, ""},
		{"a stranger answers", sleeper, func() error { return childproc.ErrPortTaken }, childproc.ErrPortTaken, ""},
		{"exits saying the port is taken", func(t *testing.T) childproc.Spec {
			s := sleeper(t)
			s.Path, s.Args, s.PortTaken = "/bin/sh", []string{"-c", "echo bind: Address already in use; exit 1"}, []string{"Address already in use"}
			return s
		}, func() error { return errors.New("not yet") }, childproc.ErrPortTaken, ""},
		{"exits", func(t *testing.T) childproc.Spec {
			s := sleeper(t)
			s.Path, s.Args = "/bin/sh", []string{"-c", "echo no config; exit 1"}
			return s
		}, func() error { return errors.New("not yet") }, nil, "no config"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := childproc.Start(tc.spec(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Kill)
			err = p.Wait(testkit.Wait, tc.ready)
			switch {
			case tc.said != "":
				if err == nil || !strings.Contains(err.Error(), tc.said) {
					t.Fatalf("Wait: %v; want the log's %q", err, tc.said)
				}
			case tc.want == nil && err != nil:
				t.Fatalf("Wait: %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("Wait: %v; want %v", err, tc.want)
			}
			if err != nil {
				select {
				case <-p.Exited():
				default:
					t.Fatal("a child that failed its start still runs")
				}
			}
		})
	}
}

// OnFreePort tries another port while start says the port is taken.
func TestOnFreePortTriesAnotherPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	picks := []int{taken, taken}
	pick := func() (int, error) {
		if len(picks) > 0 {
			p := picks[0]
			picks = picks[1:]
			return p, nil
		}
		return childproc.FreePort()
	}
	var tried []int
	err = childproc.OnFreePort(5, pick, func(port int) error {
		tried = append(tried, port)
		if port == taken {
			return childproc.ErrPortTaken
		}
		return nil
	})
	if err != nil || len(tried) != 3 || tried[2] == taken {
		t.Fatalf("tried %v, err %v; want two taken then a free one", tried, err)
	}
	err = childproc.OnFreePort(2, func() (int, error) { return taken, nil }, func(int) error { return childproc.ErrPortTaken })
	if !errors.Is(err, childproc.ErrPortTaken) {
		t.Fatalf("every port taken: %v", err)
	}
}

func TestStopEndsTheChild(t *testing.T) {
	p, err := childproc.Start(sleeper(t))
	if err != nil {
		t.Fatal(err)
	}
	p.Stop(syscall.SIGTERM, testkit.Wait)
	select {
	case <-p.Exited():
	default:
		t.Fatal("the child runs after Stop")
	}
	if !gone(p.PID()) {
		t.Fatalf("process %d is still there", p.PID())
	}
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
