package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errAborted: the persister closed while a replay ran.
var errAborted = errors.New("store: replay abandoned: the store is closing")

const (
	// frameHeader is the length and CRC in front of a payload.
	frameHeader = 8
	// minPayload is the time and a command count.
	minPayload = 9
	// maxPayload bounds one record; writers stay far below it.
	maxPayload = 1 << 30
)

// effect is one write command as it ran, on its database.
type effect struct {
	db   int
	args []string
}

// appendRecord appends one framed record of cmds to dst.
func appendRecord(dst []byte, ts int64, cmds []effect) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(ts))
	dst = binary.AppendUvarint(dst, uint64(len(cmds)))
	for _, c := range cmds {
		dst = binary.AppendUvarint(dst, uint64(c.db))
		dst = binary.AppendUvarint(dst, uint64(len(c.args)))
		for _, a := range c.args {
			dst = binary.AppendUvarint(dst, uint64(len(a)))
			dst = append(dst, a...)
		}
	}
	payload := dst[start+frameHeader:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, castagnoli))
	return dst
}

var errBadPayload = errors.New("malformed record")

// decodeRecord reads a payload whose CRC matched.
func decodeRecord(p []byte) (int64, []effect, error) {
	if len(p) < minPayload {
		return 0, nil, errBadPayload
	}
	ts := int64(binary.LittleEndian.Uint64(p))
	p = p[8:]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	count, ok := uv()
	if !ok || count > uint64(len(p)) {
		return 0, nil, errBadPayload
	}
	cmds := make([]effect, 0, count)
	for range count {
		db, ok1 := uv()
		argc, ok2 := uv()
		if !ok1 || !ok2 || db >= maxDatabases || argc == 0 || argc > uint64(len(p)) {
			return 0, nil, errBadPayload
		}
		args := make([]string, argc)
		for i := range args {
			n, ok := uv()
			if !ok || n > uint64(len(p)) {
				return 0, nil, errBadPayload
			}
			args[i] = string(p[:n])
			p = p[n:]
		}
		cmds = append(cmds, effect{db: int(db), args: args})
	}
	if len(p) != 0 {
		return 0, nil, errBadPayload
	}
	return ts, cmds, nil
}

// dirFile is a snapshot, a log or a leftover temporary file.
type dirFile struct {
	name     string
	gen      uint64
	snapshot bool
	tmp      bool
}

// dirPlan is what a directory holds: the newest snapshot, the logs from
// its generation on, and everything else.
type dirPlan struct {
	snap    uint64 // 0: none
	logs    []uint64
	next    uint64 // above every generation in the directory
	files   []dirFile
	strange []string // logs without a snapshot before them
}

func scanDir(dir string) (dirPlan, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return dirPlan{}, fmt.Errorf("%w: cannot read the store directory: %w", ErrStorePersist, err)
	}
	var plan dirPlan
	for _, e := range entries {
		name := e.Name()
		f := dirFile{name: name, tmp: strings.HasSuffix(name, ".tmp")}
		base := strings.TrimSuffix(name, ".tmp")
		var num string
		switch {
		case strings.HasPrefix(base, "snapshot."):
			f.snapshot, num = true, strings.TrimPrefix(base, "snapshot.")
		case strings.HasPrefix(base, "aof."):
			num = strings.TrimPrefix(base, "aof.")
		default:
			continue
		}
		g, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			continue
		}
		f.gen = g
		plan.files = append(plan.files, f)
		plan.next = max(plan.next, g+1)
		if f.snapshot && !f.tmp {
			plan.snap = max(plan.snap, g)
		}
	}
	plan.next = max(plan.next, 1)
	for _, f := range plan.files {
		if f.snapshot || f.tmp {
			continue
		}
		switch {
		case plan.snap == 0:
			plan.strange = append(plan.strange, f.name)
		case f.gen >= plan.snap:
			plan.logs = append(plan.logs, f.gen)
		}
	}
	sort.Slice(plan.logs, func(i, j int) bool { return plan.logs[i] < plan.logs[j] })
	return plan, nil
}

// applier runs replayed commands on a server.
type applier struct {
	dispatch func(args []string) []byte // runs one command, returns the answer
	setTime  func(time.Time)            // the server's clock, for commands that read it
	db       int                        // the database dispatch's connection selected
}

// replayStats tell what a replay did.
type replayStats struct {
	records, commands int
	errs              int
	firstErr          string
	torn              string // file:offset of a record cut short, if any
	dropped           int64  // bytes after it that were not loaded
}

// replay loads the snapshot of plan and its logs below upTo, in order,
// through a. A record cut short ends the replay: nothing after it is
// loaded, so what is loaded is the data as it was at one moment.
func replay(dir string, plan dirPlan, upTo uint64, a *applier, stop <-chan struct{}) (replayStats, error) {
	var st replayStats
	if plan.snap == 0 {
		if len(plan.strange) > 0 {
			return st, fmt.Errorf("%w: the store directory %s holds logs (%s) but no snapshot they follow; restore the directory from a backup, or move those files away to start empty",
				ErrStoreCorrupt, dir, strings.Join(plan.strange, ", "))
		}
		return st, nil
	}
	names := []string{snapName(plan.snap)}
	want := plan.snap
	for _, g := range plan.logs {
		if g >= upTo {
			break
		}
		if g != want {
			return st, fmt.Errorf("%w: the store directory %s lacks %s, which %s follows; restore the directory from a backup",
				ErrStoreCorrupt, dir, logName(want), logName(g))
		}
		names = append(names, logName(g))
		want++
	}
	defer a.setTime(time.Time{})
	for i, name := range names {
		path := filepath.Join(dir, name)
		torn, err := replayFile(path, i == 0, a, &st, stop)
		if err != nil {
			return st, err
		}
		if torn >= 0 {
			st.torn = fmt.Sprintf("%s:%d", path, torn)
			if fi, err := os.Stat(path); err == nil {
				st.dropped += fi.Size() - torn
			}
			for _, later := range names[i+1:] {
				if fi, err := os.Stat(filepath.Join(dir, later)); err == nil {
					st.dropped += fi.Size()
				}
			}
			break
		}
	}
	return st, nil
}

// replayFile applies one file. It returns the offset of a record cut
// short (-1: the file ends whole).
func replayFile(path string, snapshot bool, a *applier, st *replayStats, stop <-chan struct{}) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrStorePersist, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrStorePersist, err)
	}
	size := fi.Size()
	r := bufio.NewReaderSize(f, 1<<20)
	magic := make([]byte, len(fileMagic))
	if n, _ := io.ReadFull(r, magic); n < len(magic) || string(magic) != fileMagic {
		if !snapshot && n < len(magic) && bytes.HasPrefix([]byte(fileMagic), magic[:n]) {
			return 0, nil // a log begun just before a crash
		}
		return 0, damaged(path, 0, snapshot, "it is not a Convene store file")
	}
	off := int64(len(fileMagic))
	var hdr [frameHeader]byte
	var payload []byte
	for {
		select {
		case <-stop:
			return 0, errAborted
		default:
		}
		n, err := io.ReadFull(r, hdr[:])
		if n == 0 && err == io.EOF {
			return -1, nil
		}
		if err != nil {
			return cutShort(path, off, snapshot)
		}
		length := int64(binary.LittleEndian.Uint32(hdr[:4]))
		sum := binary.LittleEndian.Uint32(hdr[4:])
		end := off + frameHeader + length
		if length < minPayload || length > maxPayload {
			return badRecord(path, off, -1, size, snapshot)
		}
		if end > size {
			return cutShort(path, off, snapshot)
		}
		if int64(cap(payload)) < length {
			payload = make([]byte, length)
		}
		payload = payload[:length]
		if _, err := io.ReadFull(r, payload); err != nil {
			return cutShort(path, off, snapshot)
		}
		if crc32.Checksum(payload, castagnoli) != sum {
			return badRecord(path, off, end, size, snapshot)
		}
		ts, cmds, err := decodeRecord(payload)
		if err != nil {
			return 0, damaged(path, off, snapshot, "a record's checksum matches but its content is malformed")
		}
		a.setTime(time.Unix(0, ts))
		for _, c := range cmds {
			a.apply(c, st)
		}
		st.records++
		off = end
	}
}

// cutShort: the file ends inside a record. In a log that is a crash while
// the record was written; a snapshot is complete before it is named.
func cutShort(path string, off int64, snapshot bool) (int64, error) {
	if snapshot {
		return 0, damaged(path, off, true, "it ends inside a record")
	}
	return off, nil
}

// badRecord: a record whose length or checksum is wrong. It is the
// record a crash cut short if it is the last thing in the file, or if only
// zeros follow it (space the file system allocated but never wrote);
// otherwise the file is damaged.
func badRecord(path string, off, end, size int64, snapshot bool) (int64, error) {
	if !snapshot && (end == size || zerosFrom(path, off)) {
		return off, nil
	}
	return 0, damaged(path, off, snapshot, "a record there fails its checksum and data follows it, which a crash does not explain")
}

func zerosFrom(path string, off int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return false
	}
	r := bufio.NewReader(f)
	for {
		b, err := r.ReadByte()
		if err == io.EOF {
			return true
		}
		if err != nil || b != 0 {
			return false
		}
	}
}

func damaged(path string, off int64, snapshot bool, why string) error {
	if snapshot {
		return fmt.Errorf("%w: the snapshot %s is damaged at byte %d (%s); restore the store directory from a backup, or move it away to start empty",
			ErrStoreCorrupt, path, off, why)
	}
	return fmt.Errorf("%w: the log %s is damaged at byte %d (%s); to start with what comes before that point, truncate the file to %d bytes (truncate -s %d %s), or restore the store directory from a backup",
		ErrStoreCorrupt, path, off, why, off, off, path)
}

// apply runs one replayed command. A command that fails now failed when it
// ran too (only those that succeeded are logged), so a failure means the
// data differs from what was logged: it is counted and reported.
func (a *applier) apply(c effect, st *replayStats) {
	if c.db != a.db {
		if b := a.dispatch([]string{"SELECT", strconv.Itoa(c.db)}); isErrorReply(b) {
			st.errs++
			return
		}
		a.db = c.db
	}
	st.commands++
	if b := a.dispatch(c.args); isErrorReply(b) {
		st.errs++
		if st.firstErr == "" {
			line, _, _ := bytes.Cut(b[1:], []byte("\r\n"))
			st.firstErr = c.args[0] + ": " + string(line)
		}
	}
}

// isErrorReply tells a RESP2 or RESP3 error answer.
func isErrorReply(b []byte) bool { return len(b) == 0 || b[0] == '-' || b[0] == '!' }
