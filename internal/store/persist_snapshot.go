package store

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
)

const (
	// maxDatabases the durable server keeps, as redis-server's default.
	maxDatabases = 16
	// dumpChunk is the most members or fields one snapshot command holds.
	dumpChunk = 512
	// dumpRecord is about the most bytes one snapshot record holds.
	dumpRecord = 256 << 10
)

// dumper writes the data of a server as records of commands.
type dumper struct {
	w    *bufio.Writer
	now  int64
	cmds []effect
	size int
	rec  []byte
}

func (d *dumper) add(db int, args ...string) error {
	d.cmds = append(d.cmds, effect{db: db, args: args})
	for _, a := range args {
		d.size += len(a) + 2
	}
	if d.size >= dumpRecord {
		return d.flush()
	}
	return nil
}

func (d *dumper) flush() error {
	if len(d.cmds) == 0 {
		return nil
	}
	d.rec = appendRecord(d.rec[:0], d.now, d.cmds)
	clear(d.cmds)
	d.cmds, d.size = d.cmds[:0], 0
	_, err := d.w.Write(d.rec)
	return err
}

// dumpServer writes every key of m, with its time to live, as the
// commands that make it again.
func dumpServer(m *miniredis.Miniredis, d *dumper) error {
	for i := range maxDatabases {
		db := m.DB(i)
		for _, k := range db.Keys() {
			if err := dumpKey(db, i, k, d); err != nil {
				return err
			}
		}
	}
	return d.flush()
}

func dumpKey(db *miniredis.RedisDB, i int, k string, d *dumper) error {
	// Chunked commands: args begins with the command and the key.
	chunked := func(cmd string, items []string, per int) error {
		for len(items) > 0 {
			n := min(len(items), per*dumpChunk)
			args := make([]string, 0, 2+n)
			args = append(append(args, cmd, k), items[:n]...)
			if err := d.add(i, args...); err != nil {
				return err
			}
			items = items[n:]
		}
		return nil
	}
	var err error
	switch t := db.Type(k); t {
	case "string":
		var v string
		if v, err = db.Get(k); err == nil {
			err = d.add(i, "SET", k, v)
		}
	case "hash":
		var fields []string
		if fields, err = db.HKeys(k); err == nil {
			items := make([]string, 0, 2*len(fields))
			for _, f := range fields {
				items = append(items, f, db.HGet(k, f))
			}
			err = chunked("HSET", items, 2)
		}
	case "set":
		var members []string
		if members, err = db.Members(k); err == nil {
			err = chunked("SADD", members, 1)
		}
	case "zset":
		var scores map[string]float64
		if scores, err = db.SortedSet(k); err == nil {
			items := make([]string, 0, 2*len(scores))
			for m, s := range scores {
				items = append(items, formatScore(s), m)
			}
			err = chunked("ZADD", items, 2)
		}
	case "list":
		var items []string
		if items, err = db.List(k); err == nil {
			err = chunked("RPUSH", items, 1)
		}
	default:
		return fmt.Errorf("%w: key %q of database %d is a %s, which the embedded store does not keep on disk", ErrStorePersist, k, i, t)
	}
	if err != nil {
		return fmt.Errorf("%w: reading key %q: %w", ErrStorePersist, k, err)
	}
	if ttl := db.TTL(k); ttl > 0 {
		return d.add(i, "PEXPIRE", k, strconv.FormatInt(max(1, ttl.Milliseconds()), 10))
	}
	return nil
}

func formatScore(s float64) string {
	switch {
	case math.IsInf(s, 1):
		return "+inf"
	case math.IsInf(s, -1):
		return "-inf"
	}
	return strconv.FormatFloat(s, 'g', -1, 64)
}

// writeSnapshot writes snapshot gen through dump: to a temporary file,
// fsynced, then renamed into place. It returns the snapshot's size.
func writeSnapshot(dir string, gen uint64, dump func(*dumper) error) (int64, error) {
	final := filepath.Join(dir, snapName(gen))
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("%w: cannot write a snapshot: %w", ErrStorePersist, err)
	}
	fail := func(err error) (int64, error) {
		f.Close()
		os.Remove(tmp)
		return 0, fmt.Errorf("%w: cannot write the snapshot %s: %w", ErrStorePersist, tmp, err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := w.WriteString(fileMagic); err != nil {
		return fail(err)
	}
	if err := dump(&dumper{w: w, now: time.Now().UnixNano()}); err != nil {
		return fail(err)
	}
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("%w: %w", ErrStorePersist, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("%w: %w", ErrStorePersist, err)
	}
	return fi.Size(), syncDir(dir)
}

// scratch is a private server without a listener, for compaction: the
// old snapshot and log are replayed into it and the new snapshot is
// written from it, while the live server goes on.
type scratch struct {
	m       *miniredis.Miniredis
	applier *applier
}

func newScratch() (*scratch, error) {
	m := miniredis.NewMiniRedis()
	conn, err := m.Dial() // starts the server without a listener
	if err != nil {
		return nil, fmt.Errorf("store: scratch server: %w", err)
	}
	conn.Close()
	srv := m.Server()
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	peer := server.NewPeer(w)
	dispatch := func(args []string) []byte {
		out.Reset()
		srv.Dispatch(peer, args)
		_ = w.Flush()
		return out.Bytes()
	}
	return &scratch{m: m, applier: &applier{dispatch: dispatch, setTime: m.SetTime}}, nil
}

func (s *scratch) dump(d *dumper) error { return dumpServer(s.m, d) }

func (s *scratch) close() { s.m.Close() }
