package scheduler

import "github.com/prometheus/client_golang/prometheus"

// metrics are the operation counts of 000 §11 and the create latency.
type metrics struct {
	creates    *prometheus.CounterVec
	createTime prometheus.Histogram
	releases   *prometheus.CounterVec
	ops        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		creates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convene_scheduler_creates_total",
			Help: "Conference creates by result: ok or the refusal's error code.",
		}, []string{"result"}),
		createTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "convene_scheduler_create_seconds",
			Help:    "Time from a create request to its answer.",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convene_scheduler_releases_total",
			Help: "Conferences ended, by reason.",
		}, []string{"reason"}),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convene_scheduler_operations_total",
			Help: "Conference operations by kind and result.",
		}, []string{"op", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.creates, m.createTime, m.releases, m.ops)
	}
	return m
}

func (m *metrics) op(op string, err error) {
	result := "ok"
	if err != nil {
		result = Code(err)
	}
	m.ops.WithLabelValues(op, result).Inc()
}
