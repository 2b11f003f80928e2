package drill

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// The drills in this process, one platform and two, pass on a small
// platform and print their timeline and the shared verdict's last line.
func TestInStack(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the platform drills in this process")
	}
	for _, platforms := range []int{1, 2} {
		var out bytes.Buffer
		failures, err := InStack(context.Background(), StackOptions{
			Conferences: 40, Nodes: 4, Platforms: platforms,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: &out,
		})
		if err != nil {
			t.Fatalf("%d platforms: %v\n%s", platforms, err, out.String())
		}
		if len(failures) > 0 || !strings.Contains(out.String(), "drill passed: no conference lost, doubled or left pending") {
			t.Fatalf("%d platforms: failures %v\n%s", platforms, failures, out.String())
		}
	}
	if _, err := InStack(context.Background(), StackOptions{Platforms: 3}); err == nil {
		t.Fatal("a drill of 3 platforms ran")
	}
}
