//go:build !unix

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// lockDir creates dir/LOCK exclusively and removes it when the returned
// function runs. A process that crashed leaves it behind: the error says
// to remove it then.
func lockDir(dir string) (func(), error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			holder, _ := os.ReadFile(path)
			return nil, fmt.Errorf("%w: the store directory %s is in use by another convene process (pid %s); stop that process, or remove %s if it is no longer running",
				ErrStoreLocked, dir, string(holder), path)
		}
		return nil, fmt.Errorf("%w: cannot create %s: %w", ErrStorePersist, path, err)
	}
	_, _ = f.WriteString(strconv.Itoa(os.Getpid()))
	f.Close()
	return func() { os.Remove(path) }, nil
}
