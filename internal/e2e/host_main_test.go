package e2e

import (
	"os"
	"testing"

	"github.com/convene/convene/internal/cli"
)

// mainEnv, set, makes the test binary the convene command with its
// arguments, so that a test runs `convene ...` as a process of its own
// (convene).
const mainEnv = "CONVENE_E2E_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		os.Exit(cli.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}
