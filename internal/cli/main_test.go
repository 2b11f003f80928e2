package cli

import (
	"os"
	"testing"
)

// TestMain lets a test run the command line in a process of its own: the
// test binary started with CONVENE_TEST_MAIN=1 is `convene` with its
// arguments (sipProcess).
func TestMain(m *testing.M) {
	if os.Getenv("CONVENE_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}
