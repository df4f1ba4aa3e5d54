package metrics

import (
	"database/sql"

	"github.com/prometheus/client_golang/prometheus"
)

// WatchDB exports a database/sql pool's statistics under the names of
// client_golang's own DB collector (go_sql_*, with db_name), which needs
// the *sql.DB itself; storage.DB hands out only its Stats. Register one
// per pool: name is the database (db_name), pool which of its pools
// (SQLite has a "write" pool of one connection and a "read" pool;
// PostgreSQL one "shared" pool).
func (m *Metrics) WatchDB(name, pool string, stats func() sql.DBStats) {
	m.reg.MustRegister(&dbCollector{stats: stats, descs: newDBDescs(name, pool)})
}

type dbDescs struct {
	maxOpen, open, inUse, idle, waitCount, waitDuration *prometheus.Desc
}

func newDBDescs(name, pool string) dbDescs {
	d := func(fq, help string) *prometheus.Desc {
		return prometheus.NewDesc("go_sql_"+fq, help, nil, prometheus.Labels{"db_name": name, "pool": pool})
	}
	return dbDescs{
		maxOpen:      d("max_open_connections", "Maximum number of open connections to the database."),
		open:         d("open_connections", "The number of established connections both in use and idle."),
		inUse:        d("in_use_connections", "The number of connections currently in use."),
		idle:         d("idle_connections", "The number of idle connections."),
		waitCount:    d("wait_count_total", "The total number of connections waited for."),
		waitDuration: d("wait_duration_seconds_total", "The total time blocked waiting for a new connection."),
	}
}

// dbCollector reads the statistics once per scrape, so the numbers agree
// with each other.
type dbCollector struct {
	stats func() sql.DBStats
	descs dbDescs
}

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	d := c.descs
	for _, x := range []*prometheus.Desc{d.maxOpen, d.open, d.inUse, d.idle, d.waitCount, d.waitDuration} {
		ch <- x
	}
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	s, d := c.stats(), c.descs
	ch <- prometheus.MustNewConstMetric(d.maxOpen, prometheus.GaugeValue, float64(s.MaxOpenConnections))
	ch <- prometheus.MustNewConstMetric(d.open, prometheus.GaugeValue, float64(s.OpenConnections))
	ch <- prometheus.MustNewConstMetric(d.inUse, prometheus.GaugeValue, float64(s.InUse))
	ch <- prometheus.MustNewConstMetric(d.idle, prometheus.GaugeValue, float64(s.Idle))
	ch <- prometheus.MustNewConstMetric(d.waitCount, prometheus.CounterValue, float64(s.WaitCount))
	ch <- prometheus.MustNewConstMetric(d.waitDuration, prometheus.CounterValue, s.WaitDuration.Seconds())
}
