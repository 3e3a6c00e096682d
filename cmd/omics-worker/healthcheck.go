package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/omicsomics/omics-worker/internal/mask"
)

// The "healthcheck" subcommand probes a running worker's /readyz (or any
// URL) and exits 0 when it answers 2xx. The distroless image has no shell,
// curl or wget, so docker-compose's healthcheck runs the binary itself:
//
//	healthcheck: ["CMD", "/omics-worker", "healthcheck"]
//
// with the worker started with --metrics-addr :9808.
func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code := parseHealthcheckOptions(args, stderr, os.Getenv)
	if o == nil {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	shown := mask.URL(o.url)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.url, nil)
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
	if !o.quiet {
		fmt.Fprintf(stdout, "healthcheck: %s %s\n", shown, resp.Status)
	}
	return 0
}
