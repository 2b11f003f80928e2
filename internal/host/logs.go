package host

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/convene/convene/internal/logkeep"
)

// Keeping logs: the host's logger (and so every instance's) tees the
// lines that carry a call id or a conference number (attributes call_id
// and e164) to a logkeep.Keeper, which writes them to the first
// infrastructure resource that is a logkeep.Sink (the records database).
// A host without one keeps nothing.

// keepLogsFrom attaches the resource of a started infrastructure entry
// when it is a sink and none is attached yet.
func (h *Host) keepLogsFrom(s *slot) {
	v, err := h.resource(s.name)
	if err != nil {
		return
	}
	sink, ok := v.(logkeep.Sink)
	if !ok || !h.keep.Attach(sink) {
		return
	}
	h.log.Info("host: log lines about calls and conferences are kept", "host", h.Name(), "resource", s.name)
}

// keptLogsCollector counts the lines kept, dropped and failed.
func (h *Host) keptLogsCollector() []prometheus.Collector {
	labels := prometheus.Labels{"host": h.Name()}
	count := func(name, help string, f func(logkeep.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(f(h.keep.Stats())) })
	}
	return []prometheus.Collector{
		count("convene_log_lines_kept_total", "Log lines about calls and conferences written to the records database.",
			func(s logkeep.Stats) uint64 { return s.Kept }),
		count("convene_log_lines_dropped_total", "Log lines about calls and conferences dropped because the queue to the records database was full.",
			func(s logkeep.Stats) uint64 { return s.Dropped }),
		count("convene_log_lines_failed_total", "Log lines about calls and conferences the records database refused or did not take in time.",
			func(s logkeep.Stats) uint64 { return s.Failed }),
	}
}

// registerKeptLogs registers the counters once; another host of the same
// name on the same registry keeps its own.
func (h *Host) registerKeptLogs() {
	for _, c := range h.keptLogsCollector() {
		var are prometheus.AlreadyRegisteredError
		if err := h.metrics.Register(c); err != nil && !errors.As(err, &are) {
			h.log.Debug("host: kept-log counters not registered", "err", err)
		}
	}
}

// stopKeepingLogs writes the lines waiting and lets go of the sink,
// before the infrastructure stops.
func (h *Host) stopKeepingLogs(ctx context.Context) { h.keep.Detach(ctx) }
