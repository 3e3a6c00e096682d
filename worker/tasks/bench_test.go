package tasks

import (
	"context"
	"fmt"
	"testing"
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
