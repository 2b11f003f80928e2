package store

// Keeping the embedded server's data on disk (persist*.go), the way Redis
// does with an append-only file.
//
//   - Every change is appended to a log as the write commands that made it:
//     their effects, the commands a script ran rather than the script, so
//     a script that reads TIME replays the same. A script's writes, or a
//     transaction's, make one record; a crash never keeps half of one.
//   - A record is written to the file before its caller is answered, and
//     the file is fsynced once a second in the background (Redis's
//     appendfsync everysec) and when the server closes. A crash of the
//     process loses nothing; a crash of the machine or a power cut loses
//     at most about the last second of writes.
//   - A snapshot holds the whole data as commands. At start the server
//     loads the newest snapshot and replays the logs after it, writes a
//     new snapshot and begins an empty log. While it runs, a log that grew
//     past RewriteMin and past the snapshot's size is closed and a new one
//     begun; a background goroutine replays the old snapshot and log into
//     a private server and writes the next snapshot from that. Commands
//     stop only for the switch of files, not for the copy.
//
// Files in the directory (gen is a generation number that only grows):
//
//	LOCK            locked (flock) by the process that has the directory
//	snapshot.<gen>  the data as it was when log <gen> began
//	aof.<gen>       the changes made after that
//
// Format: each file begins with fileMagic, then records:
//
//	record:  u32 length of payload | u32 CRC-32C of payload | payload
//	payload: u64 time (Unix ns) | uvarint count | count × command
//	command: uvarint database | uvarint argc | argc × (uvarint len | bytes)
//
// Integers are little-endian.

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

var (
	// ErrStoreLocked: another process has the data directory.
	ErrStoreLocked = errors.New("STORE_LOCKED")
	// ErrStoreCorrupt: a file of the data directory is damaged in a way a
	// crash does not explain.
	ErrStoreCorrupt = errors.New("STORE_CORRUPT")
	// ErrStorePersist: the embedded store could not write or fsync its log.
	ErrStorePersist = errors.New("STORE_PERSIST")
)

const (
	fileMagic = "CONVENE-STORE-1\n"
	// defaultRewriteMin is the size a log reaches before it is compacted.
	defaultRewriteMin = 64 << 20
	// syncEvery is the background fsync period.
	syncEvery = time.Second
	// rewriteRetry is how long a failed compaction waits to try again.
	rewriteRetry = time.Minute
)

// persister owns the data directory of a durable embedded server: the
// lock, the log being appended to, the background fsync and compaction.
//
// Lock order: scriptRunner.mu, then syncMu, then mu. append runs with
// scriptRunner.mu held exclusively (see scriptRunner.commit), so records
// reach the file in the order their commands ran.
type persister struct {
	dir        string
	log        *slog.Logger
	rewriteMin int64
	unlock     func()

	syncMu sync.Mutex // held while a log file is fsynced or closed

	mu         sync.Mutex // guards the fields below
	f          *os.File   // the log being appended to
	gen        uint64     // its generation
	size       int64      // its size
	base       int64      // size of the newest snapshot
	dirty      bool       // f has writes not fsynced yet
	err        error      // the first failure; writes are refused from then on
	rewriting  bool       // a compaction runs in the background
	retryAt    time.Time  // no compaction before this, after one failed
	lastSwitch time.Duration
	rewrites   int

	stop      chan struct{}
	wg        sync.WaitGroup // the fsync loop and a running compaction
	closeOnce sync.Once
}

// openPersister takes the data directory, creating it if needed.
func openPersister(dir string, rewriteMin int64, log *slog.Logger) (*persister, error) {
	if rewriteMin <= 0 {
		rewriteMin = defaultRewriteMin
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: cannot create the store directory %s: %w", ErrStorePersist, dir, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	return &persister{dir: dir, log: log, rewriteMin: rewriteMin, unlock: unlock, stop: make(chan struct{})}, nil
}

// start loads the directory into the live server through a (whose
// connection must be the runner's, with the runner's lock held), writes a
// fresh snapshot, begins a new log and the fsync loop.
func (p *persister) start(a *applier, dump func(*dumper) error) error {
	t0 := time.Now()
	plan, err := scanDir(p.dir)
	if err != nil {
		return err
	}
	st, err := replay(p.dir, plan, plan.next, a, p.stop)
	if err != nil {
		return err
	}
	if st.torn != "" {
		p.log.Warn("store: the end of the log was cut short, as by a crash while it was written; loaded what came before it",
			"dir", p.dir, "at", st.torn, "dropped_bytes", st.dropped)
	}
	if st.errs > 0 {
		p.log.Warn("store: commands of the log failed when replayed", "dir", p.dir, "failed", st.errs, "first", st.firstErr)
	}
	loaded := time.Since(t0)
	gen := plan.next
	size, err := writeSnapshot(p.dir, gen, dump)
	if err != nil {
		return err
	}
	f, err := createLog(p.dir, gen)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("%w: %s: %w", ErrStorePersist, f.Name(), err)
	}
	if err := syncDir(p.dir); err != nil {
		f.Close()
		return err
	}
	removeBelow(p.dir, gen, p.log)
	p.f, p.gen, p.size, p.base = f, gen, int64(len(fileMagic)), size
	p.log.Info("store: loaded from disk", "dir", p.dir, "records", st.records, "commands", st.commands,
		"load", loaded, "snapshot_bytes", size, "took", time.Since(t0))
	p.wg.Add(1)
	go p.syncLoop()
	return nil
}

// failed is the error that stopped writes, or nil. A nil persister (the
// memory-only server) never fails.
func (p *persister) failed() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// append writes one record to the log. The caller holds scriptRunner.mu
// exclusively. A log grown past the threshold is switched for a new one
// here, under that hold, and compacted in the background.
func (p *persister) append(rec []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if p.f == nil {
		p.err = fmt.Errorf("%w: the store is closed", ErrStorePersist)
		return p.err
	}
	n, err := p.f.Write(rec)
	p.size += int64(n)
	if err != nil {
		p.err = fmt.Errorf("%w: cannot write the log %s: %w", ErrStorePersist, p.f.Name(), err)
		p.log.Error("store: the log cannot be written; writes are refused until convene restarts", "dir", p.dir, "err", err)
		return p.err
	}
	p.dirty = true
	if !p.rewriting && p.size >= max(p.rewriteMin, p.base) && time.Now().After(p.retryAt) {
		p.switchLog()
	}
	return nil
}

// switchLog begins log gen+1 and starts the compaction of everything
// before it, under mu (and the runner's exclusive hold).
func (p *persister) switchLog() {
	t0 := time.Now()
	gen := p.gen + 1
	f, err := createLog(p.dir, gen)
	if err != nil {
		p.retryAt = time.Now().Add(rewriteRetry)
		p.log.Warn("store: cannot begin a new log; compaction put off", "dir", p.dir, "err", err)
		return
	}
	old := p.f
	p.f, p.gen, p.size, p.dirty = f, gen, int64(len(fileMagic)), true
	p.rewriting = true
	p.lastSwitch = time.Since(t0)
	p.wg.Add(1)
	go p.compact(old, gen)
}

// compact writes snapshot gen from the previous snapshot and the logs
// before gen, then removes those files.
func (p *persister) compact(old *os.File, gen uint64) {
	defer p.wg.Done()
	t0 := time.Now()
	size, st, err := p.rewrite(old, gen)
	p.mu.Lock()
	p.rewriting = false
	if err != nil {
		p.retryAt = time.Now().Add(rewriteRetry)
	} else {
		p.base = size
		p.rewrites++
	}
	pause := p.lastSwitch
	p.mu.Unlock()
	if err != nil {
		if !errors.Is(err, errAborted) {
			p.log.Error("store: compaction failed; the log keeps growing until it succeeds", "dir", p.dir, "err", err)
		}
		return
	}
	p.log.Info("store: log compacted", "dir", p.dir, "generation", gen, "snapshot_bytes", size,
		"records", st.records, "pause", pause, "took", time.Since(t0))
}

func (p *persister) rewrite(old *os.File, gen uint64) (int64, replayStats, error) {
	p.syncMu.Lock()
	err := old.Sync()
	if cerr := old.Close(); err == nil {
		err = cerr
	}
	p.syncMu.Unlock()
	if err != nil {
		p.fail(fmt.Errorf("%w: cannot fsync the log %s: %w", ErrStorePersist, old.Name(), err))
		return 0, replayStats{}, err
	}
	if err := syncDir(p.dir); err != nil {
		return 0, replayStats{}, err
	}
	plan, err := scanDir(p.dir)
	if err != nil {
		return 0, replayStats{}, err
	}
	sc, err := newScratch()
	if err != nil {
		return 0, replayStats{}, err
	}
	defer sc.close()
	st, err := replay(p.dir, plan, gen, sc.applier, p.stop)
	if err != nil {
		return 0, st, err
	}
	if st.torn != "" {
		// Closed and fsynced logs end whole; one that does not is damaged.
		return 0, st, fmt.Errorf("%w: %s ends cut short", ErrStoreCorrupt, st.torn)
	}
	size, err := writeSnapshot(p.dir, gen, sc.dump)
	if err != nil {
		return 0, st, err
	}
	removeBelow(p.dir, gen, p.log)
	return size, st, nil
}

// fail records the first failure.
func (p *persister) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
		p.log.Error("store: writes are refused until convene restarts", "dir", p.dir, "err", err)
	}
}

func (p *persister) syncLoop() {
	defer p.wg.Done()
	t := time.NewTicker(syncEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.syncNow()
		}
	}
}

// syncNow fsyncs the log if it has writes since the last time.
func (p *persister) syncNow() {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	p.mu.Lock()
	f, dirty := p.f, p.dirty
	p.dirty = false
	p.mu.Unlock()
	if !dirty || f == nil {
		return
	}
	if err := f.Sync(); err != nil {
		p.fail(fmt.Errorf("%w: cannot fsync the log %s: %w", ErrStorePersist, f.Name(), err))
	}
}

// close stops the background work (a compaction under way is abandoned:
// the files it would replace stay), fsyncs and closes the log and lets the
// directory go. The server must have stopped taking commands.
func (p *persister) close() error {
	var err error
	p.closeOnce.Do(func() {
		close(p.stop)
		p.wg.Wait()
		p.syncMu.Lock()
		p.mu.Lock()
		if p.f != nil {
			err = p.f.Sync()
			if cerr := p.f.Close(); err == nil {
				err = cerr
			}
			p.f = nil
		}
		p.mu.Unlock()
		p.syncMu.Unlock()
		p.unlock()
		if err != nil {
			err = fmt.Errorf("%w: closing the log in %s: %w", ErrStorePersist, p.dir, err)
		}
	})
	return err
}

// persistStats is what tests and benchmarks read of the persister.
type persistStats struct {
	Gen        uint64
	Rewrites   int
	Rewriting  bool
	LastSwitch time.Duration
	LogSize    int64
}

func (p *persister) stats() persistStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return persistStats{Gen: p.gen, Rewrites: p.rewrites, Rewriting: p.rewriting, LastSwitch: p.lastSwitch, LogSize: p.size}
}

func snapName(gen uint64) string { return fmt.Sprintf("snapshot.%012d", gen) }
func logName(gen uint64) string  { return fmt.Sprintf("aof.%012d", gen) }

// createLog makes an empty log of generation gen.
func createLog(dir string, gen uint64) (*os.File, error) {
	path := filepath.Join(dir, logName(gen))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot create the log: %w", ErrStorePersist, err)
	}
	if _, err := f.WriteString(fileMagic); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: cannot write the log %s: %w", ErrStorePersist, path, err)
	}
	return f, nil
}

// syncDir makes the directory's entries (new and renamed files) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStorePersist, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("%w: cannot fsync the directory %s: %w", ErrStorePersist, dir, err)
	}
	return nil
}

// removeBelow deletes snapshots and logs older than gen, and leftover
// temporary files.
func removeBelow(dir string, gen uint64, log *slog.Logger) {
	plan, err := scanDir(dir)
	if err != nil {
		return
	}
	for _, f := range plan.files {
		if f.tmp || f.gen < gen {
			if err := os.Remove(filepath.Join(dir, f.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				log.Warn("store: cannot remove an old file", "file", f.name, "err", err)
			}
		}
	}
}
