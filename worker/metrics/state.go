package metrics

import (
	"context"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Descriptions of the metrics read at scrape time.
var (
	descInfo = prometheus.NewDesc("omics_worker_info", "Worker identity (always 1).",
		[]string{"hostname", "version"}, nil)
	descUp          = prometheus.NewDesc("omics_worker_up_seconds", "Seconds since the worker started.", nil, nil)
	descConcurrency = prometheus.NewDesc("omics_worker_concurrency", "Pool size (tasks run at once).", nil, nil)
	descPrefetch    = prometheus.NewDesc("omics_worker_prefetch_count", "Prefetch window (0 = unlimited).", nil, nil)
	descActive      = prometheus.NewDesc("omics_worker_tasks_active", "Tasks executing now.", nil, nil)
	descProcessed   = prometheus.NewDesc("omics_worker_tasks_processed_total",
		"Tasks accepted (started) since start.", nil, nil)
	descQueueLength = prometheus.NewDesc("omics_worker_queue_length",
		"Messages waiting in each consumed queue, per priority sub-queue (step 0 = highest).",
		[]string{"queue", "priority"}, nil)
	descUnacked = prometheus.NewDesc("omics_worker_unacked_messages",
		"Messages delivered to any consumer of this Redis database and not acknowledged (HLEN unacked).", nil, nil)
)

// stateCollector reads the worker's state and the Redis gauges at scrape
// time, then the Redis error counters (including the scrape's own
// failures).
type stateCollector struct{ c *Collector }

// Describe implements prometheus.Collector.
func (s stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descUp, descConcurrency, descPrefetch, descActive,
		descProcessed, descQueueLength, descUnacked} {
		ch <- d
	}
	s.c.redisErr.Describe(ch)
}

// Collect implements prometheus.Collector.
func (s stateCollector) Collect(ch chan<- prometheus.Metric) {
	c := s.c
	st := c.src.Stats()
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1,
		labelValue(c.src.Hostname()), labelValue(c.cfg.Version))
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, st.Uptime.Seconds())
	ch <- prometheus.MustNewConstMetric(descConcurrency, prometheus.GaugeValue, float64(st.Concurrency))
	ch <- prometheus.MustNewConstMetric(descPrefetch, prometheus.GaugeValue, float64(st.PrefetchCount))
	ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(st.Active))
	ch <- prometheus.MustNewConstMetric(descProcessed, prometheus.CounterValue, float64(st.Processed))
	if c.br != nil {
		s.collectBroker(ch)
	}
	c.redisErr.Collect(ch)
}

// collectBroker sends the queue lengths and the unacked count, counting
// failed calls as Redis errors. The calls share Config.ProbeTimeout.
func (s stateCollector) collectBroker(ch chan<- prometheus.Metric) {
	c := s.c
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ProbeTimeout)
	defer cancel()
	seen := map[string]bool{}
	for _, q := range c.src.Queues() {
		label := labelValue(q)
		if seen[label] {
			continue // a series must not be sent twice
		}
		seen[label] = true
		lens, err := c.br.QueueLengths(ctx, q)
		if err != nil {
			c.RedisError("llen")
			continue
		}
		steps := make([]int, 0, len(lens))
		for p := range lens {
			steps = append(steps, p)
		}
		slices.Sort(steps)
		for _, p := range steps {
			ch <- prometheus.MustNewConstMetric(descQueueLength, prometheus.GaugeValue, float64(lens[p]), label, strconv.Itoa(p))
		}
	}
	if n, err := c.br.UnackedCount(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(descUnacked, prometheus.GaugeValue, float64(n))
	} else {
		c.RedisError("hlen")
	}
}
