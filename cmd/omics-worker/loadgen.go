// The "loadgen" subcommand: a Celery task producer for benchmarks
// (internal/loadgen). Output: a human summary, then one JSON line (the
// last line of stdout).
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/omicsomics/omics-worker/internal/loadgen"
)

func runLoadgen(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, code := parseLoadgenOptions(args, stderr, os.Getenv)
	if cfg == nil {
		return code
	}
	rep, err := loadgen.Run(ctx, *cfg)
	if rep != nil {
		loadgen.Print(stdout, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "omics-worker loadgen: %v\n", err)
		return 1
	}
	if rep.Missing > 0 || rep.Failures > 0 {
		return 1
	}
	return 0
}
