package tasks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/internal/cpubench"
	"github.com/omicsomics/omics-worker/processing"
)

// BenchmarkProcess measures the pipeline alone (no Redis, no worker
// runtime): real PostgreSQL scratch database, local-directory store, one
// 1 KB TSV per iteration.
func BenchmarkProcess(b *testing.B) {
	for _, kind := range []string{"local", "s3"} {
		b.Run(kind, func(b *testing.B) {
			e := newEnv(b, kind)
			p := e.processor(b)
			content := []byte("gene_id\ts1\ts2\n")
			for i := 0; len(content) < 1000; i++ {
				content = fmt.Appendf(content, "G%05d\t%d\t%d.5\n", i, i, i*2)
			}
			ids := make([]int64, b.N)
			for i := range ids {
				ids[i] = e.upload(b, "small.tsv", content).ID
			}
			b.SetBytes(int64(len(content)))
			b.ResetTimer()
			for i := range b.N {
				if _, err := p.Process(context.Background(), nil, Request{RawFileID: ids[i]}, Tuning{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

// BenchmarkProcessVCF runs the whole file task (decrypt, convert, encrypt,
// upload to the local store with fsync, commit) on a generated VCF of
// BENCH_VCF_MB MiB (default 32), local store, process_large_file_async's
// tuning (sub-benchmark task), and the converter alone on the same bytes
// (processing.Convert streaming into io.Discard, sub-benchmark convert):
// the task's speed as a fraction of the converter's is the ratio of their
// MB/s (wall) or MB/cpu-s. MB/s is of the input.
func BenchmarkProcessVCF(b *testing.B) {
	mb := 32
	if s := os.Getenv("BENCH_VCF_MB"); s != "" {
		fmt.Sscan(s, &mb)
	}
	var buf bytes.Buffer
	buf.Grow(mb<<20 + 4096)
	buf.WriteString("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n")
	for i := 0; buf.Len() < mb<<20; i++ {
		fmt.Fprintf(&buf, "chr%d\t%d\trs%d\tA\tG\t%d.5\tPASS\tDP=%d;AF=0.%d\tGT:DP\t0/1:%d\n",
			i%22+1, 10000+i*7, i, i%60, i%100, i%10, i%50)
	}
	b.Run("convert", func(b *testing.B) {
		b.SetBytes(int64(buf.Len()))
		dir := b.TempDir()
		c0 := cpubench.Now()
		for b.Loop() {
			res, err := processing.Convert(context.Background(), bytes.NewReader(buf.Bytes()), io.Discard,
				processing.Options{Name: "big.vcf", Size: int64(buf.Len()), TempDir: dir, SpoolMemory: -1, Stream: true})
			if err != nil || !res.Converted {
				b.Fatalf("%v %+v", err, res)
			}
		}
		cpubench.Report(b, c0, int64(buf.Len()))
	})
	b.Run("task", func(b *testing.B) {
		e := newEnv(b, "local")
		cfg := e.config()
		if os.Getenv("BENCH_LOG") != "" { // the "file processed" line has the stage durations
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
		p, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]int64, b.N)
		for i := range ids {
			ids[i] = e.upload(b, "big.vcf", buf.Bytes()).ID
		}
		b.SetBytes(int64(buf.Len()))
		// The live heap (as of each GC) above what it was before the
		// tasks (the input is the benchmark's): flat whatever the size.
		// (HeapInuse would count the garbage the pacer lets grow up to
		// the live heap, here the input's size.)
		runtime.GC()
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(live)
		base, peak := live[0].Value.Uint64(), live[0].Value.Uint64()
		stop, sampled := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				metrics.Read(live)
				peak = max(peak, live[0].Value.Uint64())
			}
		}()
		b.ResetTimer()
		c0 := cpubench.Now()
		for i := range b.N {
			if _, err := p.Process(context.Background(), nil, Request{RawFileID: ids[i]}, LargeFileTuning); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cpubench.Report(b, c0, int64(buf.Len()))
		close(stop)
		<-sampled
		b.ReportMetric(float64(peak-min(peak, base))/(1<<20), "peak-live-heap-MiB")
		// The stored objects of this iteration are not needed any more
		// (1 GiB runs would otherwise keep several GB in the temp dir).
		for _, k := range e.list(b) {
			_ = e.objects.Delete(context.Background(), k)
		}
	})
}

// BenchmarkProcessSmallConcurrent runs 1 KB file tasks with c of them in
// flight (as a worker at -c c): real PostgreSQL, local store (one fsync
// per object, one commit per file), tasks/s and CPU per task. Issue 13 #5.
func BenchmarkProcessSmallConcurrent(b *testing.B) {
	for _, c := range []int{1, 2, 8} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			e := newEnv(b, "local")
			p := e.processor(b)
			content := []byte("gene_id\ts1\ts2\n")
			for i := 0; len(content) < 1000; i++ {
				content = fmt.Appendf(content, "G%05d\t%d\t%d.5\n", i, i, i*2)
			}
			ids := make([]int64, b.N)
			for i := range ids {
				ids[i] = e.upload(b, "small.tsv", content).ID
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			c0 := cpubench.Now()
			for range c {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						if _, err := p.Process(context.Background(), nil, Request{RawFileID: ids[i]}, Tuning{}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
			b.ReportMetric(float64((cpubench.Now()-c0).Microseconds())/float64(b.N), "cpu-us/task")
		})
	}
}
