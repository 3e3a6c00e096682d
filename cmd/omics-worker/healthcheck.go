package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/omicsomics/omics-worker/internal/mask"
)

// The "healthcheck" subcommand probes a running worker's /readyz (or any
// URL) and exits 0 when it answers 2xx. The distroless image has no shell,
// curl or wget, so docker-compose's healthcheck runs the binary itself:
//
//	healthcheck: ["CMD", "/omics-worker", "healthcheck"]
//
// with the worker started with --metrics-addr :9808.
func init() {
	register("healthcheck", "probe a running worker's /readyz (for container healthchecks)", runHealthcheck)
}

func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("OMICS_WORKER_HEALTHCHECK_URL")
	if def == "" {
		def = "http://127.0.0.1:9808/readyz"
	}
	url := fs.String("url", def, "URL to probe (env OMICS_WORKER_HEALTHCHECK_URL)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	quiet := fs.Bool("q", false, "print nothing on success")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		*url = fs.Arg(0)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	shown := mask.URL(*url)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: bad URL %q: %v\n", shown, mask.Error(err))
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %s unreachable: %v (is the worker running with --metrics-addr?)\n", shown, mask.Error(err))
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(stderr, "healthcheck: %s answered %s: %s\n", shown, resp.Status, body)
		return 1
	}
	if !*quiet {
		fmt.Fprintf(stdout, "healthcheck: %s %s\n", shown, resp.Status)
	}
	return 0
}
