package keystore

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	cache    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_keystore_cache_total",
			Help: "Key cache lookups by result (hit, miss, negative_hit, stale_hit).",
		}, []string{"result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keygate_keystore_duration_seconds",
			Help:    "Time of keystore operations by op.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"op"}),
	}
	if reg != nil {
		reg.MustRegister(m.cache, m.duration)
	}
	return m
}
