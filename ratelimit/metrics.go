package ratelimit

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of keygate_ratelimit_total.
const (
	resultAllowed    = "allowed"
	resultLimited    = "limited"
	resultStoreError = "store_error"
)

// DependencyUpHelp is the help text of keygate_dependency_up. Every package that exports a
// series of it must use the same text, or the registry refuses the second one.
const DependencyUpHelp = "Whether a dependency answers (1) or not (0)."

type metrics struct {
	decisions *prometheus.CounterVec // keygate_ratelimit_total{route,result}
	redisUp   prometheus.Gauge       // keygate_dependency_up{dependency="redis"}
}

// newMetrics makes the limiter's metrics and registers them with reg when it is not nil;
// keygate_dependency_up only with the Redis store. It panics when reg refuses them (a
// programmer error at start-up: two limiters on one registry).
func newMetrics(reg prometheus.Registerer, redis bool) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_ratelimit_total",
			Help: "Rate-limit decisions by route and result (allowed, limited, store_error).",
		}, []string{"route", "result"}),
		redisUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "keygate_dependency_up",
			Help:        DependencyUpHelp,
			ConstLabels: prometheus.Labels{"dependency": "redis"},
		}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.decisions)
	if redis {
		if err := reg.Register(m.redisUp); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(err)
			}
			m.redisUp = are.ExistingCollector.(prometheus.Gauge)
		}
	}
	return m
}
