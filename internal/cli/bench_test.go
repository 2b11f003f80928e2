package cli

import (
	"context"
	"io"
	"strings"
	"testing"
)

// bench create --api without a token says how to give one.
func TestBenchCreateAgainstAnOutsidePlatformNeedsAToken(t *testing.T) {
	t.Chdir(t.TempDir()) // no token file from a serve here
	b := createBench{apiURL: "http://127.0.0.1:1"}
	t.Setenv("CONVENE_TOKEN", "")
	if _, err := b.runRemote(context.Background(), io.Discard); err == nil || !strings.Contains(err.Error(), "--token") {
		t.Fatalf("without a token: %v", err)
	}
}
