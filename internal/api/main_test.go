package api

import (
	"testing"

	"github.com/convene/convene/internal/pgtest"
)

// TestMain stops the PostgreSQL server the logs tests share, if they
// started one.
func TestMain(m *testing.M) { pgtest.Main(m) }
