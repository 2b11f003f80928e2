package bench

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
)

// heapOwners is the live heap by the part of the platform that allocated
// it, estimated from the heap profile Go keeps (a sample of allocations,
// scaled as pprof scales it). In this process the embedded store and the
// simulated nodes hold their copies of every conference beside the
// control plane's own; this says which is which.
type heapOwners map[string]uint64

// ownerOrder is how the owners print; an owner not listed prints last.
var ownerOrder = []string{"store", "nodes", "scheduler", "bus", "rms", "api", "registry", "other"}

// ownerOf names the part of the platform an allocation's stack belongs
// to: the embedded store's server (its Redis and Lua code), else the
// innermost service package of this module (the simulated nodes, the
// scheduler, RMS, the API, the registry...), else the store's client, else
// the bus (this module's or NATS's code), else other.
func ownerOf(stack []uintptr) string {
	var service, fallback string
	frames := runtime.CallersFrames(stack)
	for {
		f, more := frames.Next()
		fn := f.Function
		switch {
		case strings.Contains(fn, "alicebob/miniredis") || strings.Contains(fn, "yuin/gopher-lua"):
			return "store"
		case service == "":
			if pkg, ok := convenePackage(fn); ok {
				switch pkg {
				case "medianode":
					service = "nodes"
				case "resources":
					service = "rms"
				case "scheduler", "api", "registry", "platform", "breakout", "audit":
					service = pkg
				case "store":
					fallback = "store"
				case "bus", "protocol":
					if fallback == "" {
						fallback = "bus"
					}
				}
			} else if strings.Contains(fn, "nats-io/") && fallback == "" {
				fallback = "bus"
			}
		}
		if !more {
			break
		}
	}
	switch {
	case service != "":
		return service
	case fallback != "":
		return fallback
	}
	return "other"
}

// convenePackage is the internal package a function of this module is in.
func convenePackage(fn string) (string, bool) {
	const prefix = "github.com/convene/convene/internal/"
	i := strings.Index(fn, prefix)
	if i < 0 {
		return "", false
	}
	rest := fn[i+len(prefix):]
	if j := strings.IndexAny(rest, "./"); j >= 0 {
		rest = rest[:j]
	}
	return rest, true
}

// heapByOwner reads the heap profile after two collections (the profile
// lags one cycle behind) and sums the bytes in use by owner.
func heapByOwner() heapOwners {
	runtime.GC()
	runtime.GC()
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, false)
	for {
		recs = make([]runtime.MemProfileRecord, n+50)
		var ok bool
		if n, ok = runtime.MemProfile(recs, false); ok {
			recs = recs[:n]
			break
		}
	}
	rate := float64(runtime.MemProfileRate)
	out := heapOwners{}
	for i := range recs {
		objs, bytes := recs[i].InUseObjects(), recs[i].InUseBytes()
		if objs <= 0 || bytes <= 0 {
			continue
		}
		scale := 1.0
		if rate > 1 {
			scale = 1 / (1 - math.Exp(-float64(bytes)/float64(objs)/rate))
		}
		out[ownerOf(recs[i].Stack())] += uint64(float64(bytes) * scale)
	}
	return out
}

// perConference prints, owner by owner, how much more the heap holds now
// than before, per conference added; owners that shrank or hold under
// 0.05 KB per conference are left out.
func (h heapOwners) perConference(before heapOwners, added int) string {
	owners := make([]string, 0, len(h))
	for o := range h {
		owners = append(owners, o)
	}
	rank := func(o string) int {
		if i := slices.Index(ownerOrder, o); i >= 0 {
			return i
		}
		return len(ownerOrder)
	}
	slices.SortFunc(owners, func(a, b string) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, o := range owners {
		grown := float64(h[o]) - float64(before[o])
		kb := grown / 1024 / float64(max(1, added))
		if kb >= 0.05 {
			parts = append(parts, fmt.Sprintf("%s %.2f KB", o, kb))
		}
	}
	if len(parts) == 0 {
		return "none grew"
	}
	return strings.Join(parts, ", ")
}

// writeHeapProfile writes the heap in use, as of the last collection, to
// path; an empty path writes nothing.
func writeHeapProfile(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = pprof.Lookup("heap").WriteTo(f, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
