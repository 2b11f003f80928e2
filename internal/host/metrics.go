package host

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// trackedRegisterer is the metrics registerer one instance gets: what it
// registers is unregistered when the instance stops, so that a fresh
// instance of the same plugin registers the same names again.
type trackedRegisterer struct {
	inner prometheus.Registerer
	mu    sync.Mutex
	cs    []prometheus.Collector
}

func (r *trackedRegisterer) Register(c prometheus.Collector) error {
	if err := r.inner.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	r.cs = append(r.cs, c)
	r.mu.Unlock()
	return nil
}

func (r *trackedRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *trackedRegisterer) Unregister(c prometheus.Collector) bool {
	r.mu.Lock()
	if i := slices.Index(r.cs, c); i >= 0 {
		r.cs = slices.Delete(r.cs, i, i+1)
	}
	r.mu.Unlock()
	return r.inner.Unregister(c)
}

// unregisterAll takes back everything the instance registered.
func (r *trackedRegisterer) unregisterAll() {
	r.mu.Lock()
	cs := r.cs
	r.cs = nil
	r.mu.Unlock()
	for _, c := range cs {
		r.inner.Unregister(c)
	}
}
