package collect

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are what a collector running as a daemon tells Prometheus: when
// each source last succeeded, what each run read and wrote, and the
// failures.
type Metrics struct {
	lastSuccess *prometheus.GaugeVec
	records     *prometheus.CounterVec
	events      *prometheus.CounterVec
	errors      *prometheus.CounterVec
	missed      *prometheus.CounterVec
	runs        prometheus.Counter
	lastRun     prometheus.Gauge
	duration    prometheus.Gauge
}

// NewMetrics makes the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	labels := []string{"tenant", "source"}
	m := &Metrics{
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pal_collect_last_success_timestamp_seconds",
			Help: "When each source of each tenant was last read and written whole (its run's observation time, Unix seconds)."}, labels),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pal_collect_records_total",
			Help: "Records the APIs answered, by tenant and source."}, labels),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pal_collect_events_total",
			Help: "New events written, by tenant and source."}, labels),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pal_collect_errors_total",
			Help: "Sources that failed in a run (nothing of them written), by tenant and source."}, labels),
		missed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pal_collect_scopes_missed_total",
			Help: "Scopes (subscriptions, management groups) a source could not read while it read others, by tenant and source: the source was written without them."}, labels),
		runs: prometheus.NewCounter(prometheus.CounterOpts{Name: "pal_collect_runs_total",
			Help: "Runs begun."}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pal_collect_last_run_timestamp_seconds",
			Help: "When the last run began (Unix seconds)."}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pal_collect_last_run_duration_seconds",
			Help: "How long the last run took."}),
	}
	reg.MustRegister(m.lastSuccess, m.records, m.events, m.errors, m.missed, m.runs, m.lastRun, m.duration)
	return m
}

// observe counts a run's report.
func (m *Metrics) observe(r *Report) {
	m.runs.Inc()
	m.lastRun.Set(float64(r.ObservedAt.Unix()))
	m.duration.Set(r.Took.Seconds())
	for _, x := range r.Results {
		m.records.WithLabelValues(x.Tenant, x.Source).Add(float64(x.Records))
		m.events.WithLabelValues(x.Tenant, x.Source).Add(float64(x.Events))
		if x.Err != nil {
			m.errors.WithLabelValues(x.Tenant, x.Source).Inc()
			continue
		}
		if len(x.Missed) > 0 {
			m.missed.WithLabelValues(x.Tenant, x.Source).Add(float64(len(x.Missed)))
			continue
		}
		m.lastSuccess.WithLabelValues(x.Tenant, x.Source).Set(float64(r.ObservedAt.Unix()))
	}
}
