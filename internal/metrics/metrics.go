package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds one application's registry and instruments. Its methods are
// safe for concurrent use.
type Metrics struct {
	reg       *prometheus.Registry
	exact     map[string]bool // paths labelled as themselves under a prefix route
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	steps     *prometheus.CounterVec
	signIns   *prometheus.CounterVec
	tokens    *prometheus.CounterVec
	throttled *prometheus.CounterVec
	hashWait  prometheus.Histogram
}

// New returns metrics with the Go runtime and process collectors
// registered. exactPaths are paths served under a prefix route that get a
// route label of their own (the library's "/keys" under the provider's
// catch-all); every other path under a prefix is labelled by the prefix.
func New(exactPaths ...string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), exact: map[string]bool{}}
	for _, p := range exactPaths {
		m.exact[p] = true
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stile_http_requests_total", Help: "HTTP requests answered, by route template, method and status code.",
	}, []string{"route", "method", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "stile_http_request_duration_seconds", Help: "Time to answer an HTTP request, by route template and method.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "method"})
	m.steps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stile_login_steps_total",
		Help: "Login steps tried, by step (password, otp), factor (PASSWORD, TOTP, EMAIL, SMS, RECOVERY, TOTP_ENROLL) " +
			"and outcome (success or the login error code: invalid_credentials, invalid_otp, throttled, temporarily_unavailable…).",
	}, []string{"step", "factor", "outcome"})
	m.signIns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stile_sign_ins_total", Help: "Completed sign-ins, by the second factor used (NONE for an exempt account) and the door.",
	}, []string{"factor", "door"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stile_tokens_issued_total", Help: "Successful token responses, by grant type (direct: the headless direct mode).",
	}, []string{"grant"})
	m.throttled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stile_throttled_total", Help: "Requests a limit refused (429), by limit: password, otp, resend, resend_interval, passwordless, lock, authorize, token.",
	}, []string{"limit"})
	m.hashWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "stile_password_hash_wait_seconds", Help: "Time a password check waited for a slot in the hashing pool (refused checks waited the whole --password-hash-wait).",
		Buckets: []float64{0, .001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.steps, m.signIns, m.tokens, m.throttled, m.hashWait)
	return m
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// LoginStep counts a login step and how it ended (login.Counter).
func (m *Metrics) LoginStep(step, factor, outcome string) {
	m.steps.WithLabelValues(step, factor, outcome).Inc()
}

// SignIn counts a completed sign-in (login.Counter).
func (m *Metrics) SignIn(factor, door string) { m.signIns.WithLabelValues(factor, door).Inc() }

// Throttled counts a request a limit refused (login.Counter, op.Counter).
func (m *Metrics) Throttled(limit string) { m.throttled.WithLabelValues(limit).Inc() }

// TokenIssued counts a successful token response (op.Counter).
func (m *Metrics) TokenIssued(grant string) { m.tokens.WithLabelValues(grant).Inc() }

// HashWaited observes how long a password check waited for a hashing slot.
func (m *Metrics) HashWaited(d time.Duration) { m.hashWait.Observe(d.Seconds()) }

// HashPool is what the pool gauges read: login.Pool.
type HashPool interface {
	Size() int
	InUse() int
	Busy() int64
}

// WatchHashPool exports the pool's size, the hashes running now and the
// checks it refused with 503, read at each scrape.
func (m *Metrics) WatchHashPool(p HashPool) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "stile_password_hash_pool_size",
			Help: "Password hashes that may run at once."}, func() float64 { return float64(p.Size()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "stile_password_hash_pool_in_use",
			Help: "Password hashes running now."}, func() float64 { return float64(p.InUse()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "stile_password_hash_refused_total",
			Help: "Password checks refused with 503 because every slot stayed taken."}, func() float64 { return float64(p.Busy()) }),
	)
}
