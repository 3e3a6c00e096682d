package tasks

import (
	"context"
	"math"
	"time"
)

// progressReporter turns the converter's byte counts into PROGRESS states
// between 40 and 69 (70 is "Saving processed data"), at most every
// interval and only when the integer progress changes.
type progressReporter struct {
	r       *run
	total   int64
	now     func() time.Time
	start   time.Time
	last    time.Time
	lastPct int
	every   time.Duration
}

func newProgressReporter(r *run, total int64, now func() time.Time) *progressReporter {
	t := now()
	pr := &progressReporter{r: r, total: total, now: now, start: t, last: t, lastPct: progressConvertFrom}
	pr.every = pr.interval(r.p.cfg.ProgressInterval)
	return pr
}

// interval is the effective minimum interval (negative = disabled).
func (pr *progressReporter) interval(def time.Duration) time.Duration {
	if pr.r.tun.ProgressInterval != 0 {
		return pr.r.tun.ProgressInterval
	}
	return def
}

// percent maps done/total onto [40, 69].
func percent(done, total int64) int {
	if total <= 0 || done <= 0 {
		return progressConvertFrom
	}
	span := progressConvertTo - progressConvertFrom
	p := progressConvertFrom + int(float64(span)*float64(done)/float64(total))
	return min(max(p, progressConvertFrom), progressConvertTo-1)
}

func (pr *progressReporter) update(ctx context.Context, done, total int64) {
	if total <= 0 {
		total = pr.total
	}
	pct := percent(done, total)
	now := pr.now()
	if pct <= pr.lastPct || now.Sub(pr.last) < pr.every {
		return
	}
	pr.last, pr.lastPct = now, pct
	meta := Progress{Status: StatusConverting, Progress: pct, BytesDone: &done}
	if total > 0 {
		meta.BytesTotal = &total
		if elapsed := now.Sub(pr.start).Seconds(); done > 0 && elapsed > 0 {
			eta := elapsed / float64(done) * float64(total-done)
			eta = math.Round(eta*10) / 10
			meta.ETASeconds = &eta
		}
	}
	pr.r.reportMeta(ctx, StateProgress, meta)
}
