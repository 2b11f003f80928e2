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

// Snapshot is PMS's saved state. Fields were added over time; a snapshot
// saved before they were reads as if they were empty.
type Snapshot struct {
	// Rooms are the rooms an operator failed.
	Rooms []SavedRoom `json:"rooms"`
	// Platform is the platform's own state when an operator switched it
	// over; nil while it is normal.
	Platform *SavedPlatform `json:"platform,omitempty"`
	// DRModes are the DR modes operators set for masters, by master moid,
	// where they differ from the configured ones.
	DRModes map[string]string `json:"drmodes,omitempty"`
}

// SavedPlatform is the platform's own state as an operator set it.
type SavedPlatform struct {
	State   string `json:"state"`
	Reason  string `json:"reason"`
	SinceMs int64  `json:"since"`
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
	if own := s.pl.own; own.manual {
		snap.Platform = &SavedPlatform{State: own.state, Reason: own.reason, SinceMs: own.since.UnixMilli()}
	}
	for _, p := range s.pl.masters {
		if p.mode != p.configured {
			if snap.DRModes == nil {
				snap.DRModes = make(map[string]string)
			}
			snap.DRModes[p.spec.Moid] = p.mode
		}
	}
	return snap
}

// save writes the operators' decisions to the StateStore, if there is one.
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
		s.log.Error("pms could not save the operators' decisions (failed rooms, switchover, DR modes); a restart would forget them", "err", err)
	}
}

// restore applies the operators' saved decisions; Start calls it before
// PMS says anything. A room or master no longer configured is skipped.
func (s *Service) restore(ctx context.Context) error {
	if s.opts.State == nil {
		return nil
	}
	snap, err := s.opts.State.Load(ctx)
	if err != nil {
		return fmt.Errorf("pms %s: load the saved state: %w", s.opts.Platform, err)
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
	drops := s.restorePlatforms(snap)
	own := s.pl.own
	s.mu.Unlock()
	if own.manual {
		s.log.Info("pms restored the platform's switchover by an operator", "reason", own.reason)
	}
	for _, d := range drops {
		s.log.Warn("pms dropped a saved DR mode", "target", d.moid, "drmode", d.mode, "why", d.why)
	}
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

// droppedMode is a saved DR mode restore could not apply.
type droppedMode struct{ moid, mode, why string }

// restorePlatforms applies the saved own state and DR modes; the caller
// holds mu.
func (s *Service) restorePlatforms(snap Snapshot) []droppedMode {
	now := time.Now()
	if sp := snap.Platform; sp != nil && sp.State == protocol.PlatformAbnormal {
		since := time.UnixMilli(sp.SinceMs)
		if sp.SinceMs == 0 {
			since = now
		}
		s.pl.own = ownState{state: sp.State, manual: true, reason: cmp.Or(sp.Reason, ReasonSwitchedOver), since: since}
	}
	var drops []droppedMode
	for moid, mode := range snap.DRModes {
		p, ok := s.pl.peers[moid]
		switch {
		case !ok || !p.master:
			drops = append(drops, droppedMode{moid, mode, "the platform is no longer a master"})
		case !validDRMode(mode):
			drops = append(drops, droppedMode{moid, mode, "not a DR mode"})
		default:
			p.mode = mode
			p.settle(now)
		}
	}
	return drops
}
