// Command omics-worker is a Celery-compatible worker for the Omicsomics
// platform, written in Go.
//
// The package is wiring only: options.go resolves every flag and
// environment variable into options structs, and each subcommand's file
// (worker.go, convert.go, ...) builds its parts from them with the
// constructors of the packages that own them.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand: run gets the arguments after the subcommand
// name and returns the process exit code.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands are the subcommands by name.
var commands = map[string]command{
	"convert":     {"convert an omics file to UnifiedData JSON", runConvert},
	"demo-seed":   {"store encrypted demo files as the FastAPI upload would; print the task plan (make demo)", runDemoSeed},
	"healthcheck": {"probe a running worker's /readyz (for container healthchecks)", runHealthcheck},
	"loadgen":     {"publish N tasks and measure tasks/s and latency (benchmarks)", runLoadgen},
	"version":     {"print the version", runVersion},
	"worker":      {"consume Celery tasks from Redis (like `celery worker`)", runWorker},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: omics-worker <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "omics-worker: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	// The worker installs its own two-phase signal handling; other commands
	// are cancelled by the first SIGINT/SIGTERM.
	ctx := context.Background()
	if args[0] != "worker" {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}
