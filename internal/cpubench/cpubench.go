// Package cpubench reports a benchmark in CPU time (user+system of the
// whole process) as well as wall time: on a machine shared with other
// jobs CPU time is the steadier number. Shared by the conversion
// benchmarks of processing and worker/tasks.
//
// Only _test.go files import this package.
package cpubench

import (
	"syscall"
	"testing"
	"time"
)

// Now is the user+system CPU time of this process so far.
func Now() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Report reports CPU time per op since c0 (cpu-ms/op) and MB of input
// per CPU second (MB/cpu-s).
func Report(b *testing.B, c0 time.Duration, inBytes int64) {
	cpu := (Now() - c0).Seconds() / float64(b.N)
	b.ReportMetric(cpu*1e3, "cpu-ms/op")
	if cpu > 0 {
		b.ReportMetric(float64(inBytes)/1e6/cpu, "MB/cpu-s")
	}
}
