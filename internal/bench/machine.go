package bench

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/convene/convene/internal/redisserver"
)

// StartRedis starts a throwaway redis-server for a benchmark; stop kills
// it and removes its files.
func StartRedis() (url string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "convene-bench-redis-")
	if err != nil {
		return "", nil, err
	}
	srv, err := redisserver.Start(redisserver.Options{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return srv.URL(), func() { srv.Kill(); os.RemoveAll(dir) }, nil
}

// WriteAllocProfile writes the allocations made so far to path; an empty
// path writes nothing.
func WriteAllocProfile(errw io.Writer, path string) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(errw, "bench: allocation profile: %v\n", err)
	}
}

// StartCPUProfile writes a CPU profile to path until stop; an empty path
// profiles nothing.
func StartCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// LoadAverage is the machine's load average, where the system says it,
// for figures taken on a shared machine.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return ", load average " + strings.Join(f[:3], " ")
}

// Ms prints a duration in whole milliseconds.
func Ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
