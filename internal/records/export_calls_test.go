package records

import "testing"

// Migrations is the number of embedded migrations, and Latest the newest
// version among them: what a freshly opened database is at.
func Migrations(t testing.TB) (n, latest int) {
	t.Helper()
	all, err := loadMigrations(migrations, SQLite)
	if err != nil {
		t.Fatal(err)
	}
	return len(all), all[len(all)-1].version
}
