package platform

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/convene/convene/internal/protocol"
)

// StateStore keeps what PMS must not forget across a restart: the
// decisions of operators. What PMS can learn again (node liveness, hence
// automatic failures) is not kept.
type StateStore interface {
	// Load returns the saved state; nothing saved yet is an empty
	// Snapshot, not an error.
	Load(ctx context.Context) (Snapshot, error)
	// Save replaces the saved state.
	Save(ctx context.Context, snap Snapshot) error
}

// Snapshot is PMS's saved state.
type Snapshot struct {
	// Rooms are the rooms an operator failed.
	Rooms []SavedRoom `json:"rooms"`
}

// SavedRoom is a room an operator failed.
type SavedRoom struct {
	Room    string `json:"roommoid"`
	Reason  string `json:"reason"`
	SinceMs int64  `json:"since"`
}

// snapshot is the current state to save.
func (s *Service) snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{Rooms: []SavedRoom{}}
	for _, r := range s.rooms {
		if r.state == protocol.RoomAbnormal && r.manual {
			snap.Rooms = append(snap.Rooms, SavedRoom{Room: r.Moid, Reason: r.reason, SinceMs: r.since.UnixMilli()})
		}
	}
	return snap
}

// save writes the operators' failures to the StateStore, if there is one.
// A failure to save is logged, not returned: the change it records has been
// made and broadcast, and refusing it would not undo that.
func (s *Service) save() {
	if s.opts.State == nil {
		return
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.opts.State.Save(ctx, s.snapshot()); err != nil {
		s.log.Error("pms could not save the rooms operators failed; a restart would forget them", "err", err)
	}
}

// restore applies the saved operators' failures; Start calls it before PMS
// says anything. A room no longer configured is skipped.
func (s *Service) restore(ctx context.Context) error {
	if s.opts.State == nil {
		return nil
	}
	snap, err := s.opts.State.Load(ctx)
	if err != nil {
		return fmt.Errorf("pms %s: load the saved room state: %w", s.opts.Platform, err)
	}
	s.mu.Lock()
	var skipped []string
	for _, saved := range snap.Rooms {
		i, ok := s.roomIdx[saved.Room]
		if !ok {
			skipped = append(skipped, saved.Room)
			continue
		}
		since := time.UnixMilli(saved.SinceMs)
		if saved.SinceMs == 0 {
			since = time.Now()
		}
		s.rooms[i].fail(cmp.Or(saved.Reason, ReasonOperator), true, since)
	}
	s.mu.Unlock()
	for _, moid := range skipped {
		s.log.Warn("pms dropped a saved room failure: the room is no longer configured", "room", moid)
	}
	if n := len(snap.Rooms) - len(skipped); n > 0 {
		s.log.Info("pms restored rooms failed by an operator", "rooms", n)
	}
	return nil
}

// FileStore is a StateStore in a JSON file, replaced atomically on each
// save.
type FileStore struct {
	path string
}

// NewFileStore keeps PMS's state in the file at path; its directory must
// exist.
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

// fileVersion is the version of the file's format.
const fileVersion = 1

type stateFile struct {
	Version int `json:"version"`
	Snapshot
}

// Load reads the file; a missing file is an empty Snapshot.
func (f *FileStore) Load(_ context.Context) (Snapshot, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return Snapshot{}, nil
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	var sf stateFile
	if err := json.Unmarshal(data, &sf); err != nil {
		return Snapshot{}, fmt.Errorf("%w: %s is not PMS's state file: %w; fix or remove it", ErrBadState, f.path, err)
	}
	if sf.Version != fileVersion {
		return Snapshot{}, fmt.Errorf("%w: %s has version %d; this PMS reads version %d", ErrBadState, f.path, sf.Version, fileVersion)
	}
	return sf.Snapshot, nil
}

// Save writes the file through a temporary file in the same directory, so
// that a crash leaves the old state or the new one.
func (f *FileStore) Save(_ context.Context, snap Snapshot) error {
	data, err := json.MarshalIndent(stateFile{Version: fileVersion, Snapshot: snap}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), filepath.Base(f.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("save PMS state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("save PMS state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("save PMS state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save PMS state: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("save PMS state: %w", err)
	}
	return nil
}
