// The "demo-seed" subcommand: prepares a scratch Omicsomics database and
// object store the way the FastAPI upload would fill them, for `make demo`
// and the end-to-end test. It prints the plan (one entry per stored raw
// file with the result the worker should produce) as JSON on stdout, the
// input of testdata/interop/e2e/e2e.py run. With --enqueue it also sends
// the tasks itself (our producer, for machines without the Python Celery)
// and prints each final status as the FastAPI status endpoint would. The
// FastAPI-side emulation is internal/omicsapp; the options come from
// options.go.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/omicsomics/omics-worker/internal/omicsapp"
	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
	"github.com/omicsomics/omics-worker/storage/postgres"
	"github.com/omicsomics/omics-worker/worker/tasks"
)

func runDemoSeed(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code := parseDemoOptions(args, stderr, os.Getenv)
	if o == nil {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "omics-worker demo-seed: %v\n", err)
		return 1
	}
	if o.enqueue && o.planFile != "" {
		b, err := os.ReadFile(o.planFile)
		if err != nil {
			return fail(err)
		}
		var p omicsapp.Plan
		if err := json.Unmarshal(b, &p); err != nil {
			return fail(fmt.Errorf("%s: %w", o.planFile, err))
		}
		if err := enqueueAndWatch(ctx, o.brokerURL, o.backendURL, p, o.queue, o.timeout, stdout, stderr); err != nil {
			return fail(err)
		}
		return 0
	}
	p, err := seedDemo(ctx, o)
	if err != nil {
		return fail(err)
	}
	if !o.enqueue {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", " ")
		if err := enc.Encode(p); err != nil {
			return fail(err)
		}
		return 0
	}
	if err := enqueueAndWatch(ctx, o.brokerURL, o.backendURL, p, o.queue, o.timeout, stdout, stderr); err != nil {
		return fail(err)
	}
	return 0
}

// seedDemo wires the database, object store and keyring of o into a
// Seeder and stores the files of o.dir.
func seedDemo(ctx context.Context, o *demoOptions) (omicsapp.Plan, error) {
	if o.recreate {
		if err := omicsapp.RecreateDatabase(ctx, o.databaseURL, o.adminDB); err != nil {
			return omicsapp.Plan{}, fmt.Errorf("recreate database: %w", err)
		}
	}
	files, err := postgres.Open(ctx, o.databaseURL)
	if err != nil {
		return omicsapp.Plan{}, err
	}
	defer files.Close()
	objects, err := openObjectStore(ctx, o.objects)
	if err != nil {
		return omicsapp.Plan{}, err
	}
	keys, err := tasks.NewMasterKeyring(cmp.Or(o.masterKey, tasks.DefaultMasterKey))
	if err != nil {
		return omicsapp.Plan{}, err
	}
	s, err := omicsapp.NewSeeder(ctx, files, objects, keys)
	if err != nil {
		return omicsapp.Plan{}, err
	}
	pf, err := s.SeedDir(ctx, o.dir)
	if err != nil {
		return omicsapp.Plan{}, err
	}
	return omicsapp.Plan{Files: pf, Timeout: int(o.timeout.Seconds()), UserID: s.UserID()}, nil
}

// enqueueAndWatch connects to the broker and the result backend and runs
// omicsapp.EnqueueAndWatch with them.
func enqueueAndWatch(ctx context.Context, brokerURL, backendURL string, p omicsapp.Plan, queue string,
	timeout time.Duration, stdout, stderr io.Writer) error {
	b, err := redistransport.NewBroker(brokerURL, redistransport.Config{})
	if err != nil {
		return err
	}
	defer b.Close()
	rb, err := redistransport.NewResultBackend(backendURL, redistransport.Config{})
	if err != nil {
		return err
	}
	defer rb.Close()
	return omicsapp.EnqueueAndWatch(ctx, b, rb, p, queue, timeout, stdout, stderr)
}
