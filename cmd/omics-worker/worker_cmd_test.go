package main

import (
	"io"
	"math"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/worker"
)

func TestWorkerFlagsAndEnv(t *testing.T) {
	env := map[string]string{
		"CELERY_BROKER_URL":             "redis://:pw@broker:6379/2",
		"CELERY_RESULT_BACKEND":         "redis://results:6379/3",
		"LOG_LEVEL":                     "WARNING",
		"LOG_FORMAT":                    "json",
		"OMICS_WORKER_DIAGNOSTIC_TASKS": "1",
	}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, o *workerOptions)
	}{
		{"env fills defaults", nil, func(t *testing.T, o *workerOptions) {
			if o.brokerURL != env["CELERY_BROKER_URL"] || o.backendURL != env["CELERY_RESULT_BACKEND"] ||
				o.loglevel != "WARNING" || o.logformat != "json" || !o.diagnostic || o.queues != "file_processing" {
				t.Errorf("%+v", o)
			}
		}},
		{"flags beat env", []string{"-l", "debug", "-b", "redis://x/1", "--diagnostic-tasks=false", "-Q", "a,b"},
			func(t *testing.T, o *workerOptions) {
				if o.loglevel != "debug" || o.brokerURL != "redis://x/1" || o.diagnostic || o.queues != "a,b" {
					t.Errorf("%+v", o)
				}
			}},
		{"celery spellings", []string{"-A", "app.celery_app", "-P", "prefork", "-E", "-c", "3", "--prefetch-multiplier", "4",
			"--time-limit", "3600", "--soft-time-limit", "3300", "--no-acks-late"}, func(t *testing.T, o *workerOptions) {
			cfg, err := workerConfig(o)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Concurrency != 3 || cfg.PrefetchMultiplier != 4 || cfg.TimeLimit != time.Hour ||
				cfg.SoftTimeLimit != 3300*time.Second || !cfg.AcksEarly || !o.taskEvents {
				t.Errorf("%+v", cfg)
			}
		}},
		// Not given: 0, the file tasks' app defaults (3600/3300) apply;
		// given: the flag wins over them, 0 meaning no limit at all.
		{"time limits not given", nil, func(t *testing.T, o *workerOptions) {
			if cfg, _ := workerConfig(o); cfg.TimeLimit != 0 || cfg.SoftTimeLimit != 0 {
				t.Errorf("limits %v/%v, want 0/0 (app defaults)", cfg.TimeLimit, cfg.SoftTimeLimit)
			}
		}},
		{"time limits 0 mean none", []string{"--time-limit", "0", "--soft-time-limit=0"}, func(t *testing.T, o *workerOptions) {
			if cfg, _ := workerConfig(o); cfg.TimeLimit >= 0 || cfg.SoftTimeLimit >= 0 {
				t.Errorf("limits %v/%v, want negative (none, overriding app defaults)", cfg.TimeLimit, cfg.SoftTimeLimit)
			}
		}},
		{"time limit below the app default", []string{"--time-limit", "60"}, func(t *testing.T, o *workerOptions) {
			if cfg, _ := workerConfig(o); cfg.TimeLimit != time.Minute || cfg.SoftTimeLimit != 0 {
				t.Errorf("limits %v/%v", cfg.TimeLimit, cfg.SoftTimeLimit)
			}
		}},
		{"ignored celery options", []string{"-O", "fair", "--max-tasks-per-child=50",
			"--pool=solo", "--loglevel=INFO", "--concurrency=4"}, func(t *testing.T, o *workerOptions) {
			if o.concurrency != 4 || o.loglevel != "INFO" {
				t.Errorf("%+v", o)
			}
		}},
		{"prefetch 0 is unlimited", []string{"--prefetch-multiplier", "0"}, func(t *testing.T, o *workerOptions) {
			cfg, _ := workerConfig(o)
			if cfg.PrefetchMultiplier >= 0 {
				t.Errorf("multiplier %d", cfg.PrefetchMultiplier)
			}
		}},
		{"hostname expansion", []string{"-n", "w1@%h"}, func(t *testing.T, o *workerOptions) {
			cfg, _ := workerConfig(o)
			if cfg.Hostname == "w1@%h" || cfg.Hostname[:3] != "w1@" {
				t.Errorf("hostname %q", cfg.Hostname)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o workerOptions
			fs := newWorkerFlags(&o, io.Discard)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if err := applyEnv(fs, &o, getenv); err != nil {
				t.Fatal(err)
			}
			tc.check(t, &o)
		})
	}
}

func TestWorkerConfigErrors(t *testing.T) {
	for _, o := range []workerOptions{
		{queues: " , ", visibilityTimeout: 1},
		{queues: "q", concurrency: -1, visibilityTimeout: 1},
		{queues: "q", visibilityTimeout: 0},
	} {
		if _, err := workerConfig(&o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

// TestRevokedLimitsFromEnv: celery 5.5 reads the revoked set's limits from
// CELERY_WORKER_REVOKES_MAX / CELERY_WORKER_REVOKE_EXPIRES (0: unlimited /
// never); the Go worker follows (issue 11 #2).
func TestRevokedLimitsFromEnv(t *testing.T) {
	tests := []struct {
		name, max, expires string
		wantLen            int
		wantExp            time.Duration
		wantErr            bool
	}{
		{"unset: celery defaults", "", "", 0, 0, false},
		{"values", "10", "2.5", 10, 2500 * time.Millisecond, false},
		{"zero: unlimited, never", "0", "0", math.MaxInt, 100 * 365 * 24 * time.Hour, false},
		{"bad max", "1e3", "", 0, 0, true},
		{"negative max", "-1", "", 0, 0, true},
		{"bad expires", "", "soon", 0, 0, true},
		{"negative expires", "", "-5", 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"CELERY_WORKER_REVOKES_MAX": tc.max, "CELERY_WORKER_REVOKE_EXPIRES": tc.expires}
			var o workerOptions
			fs := newWorkerFlags(&o, io.Discard)
			if err := fs.Parse(nil); err != nil {
				t.Fatal(err)
			}
			err := applyEnv(fs, &o, func(k string) string { return env[k] })
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			var rv worker.RevokedSet
			applyRevokedLimits(&rv, o.control)
			if rv.MaxLen != tc.wantLen || rv.Expires != tc.wantExp {
				t.Errorf("MaxLen %d Expires %v, want %d %v", rv.MaxLen, rv.Expires, tc.wantLen, tc.wantExp)
			}
		})
	}
	// The limit is honoured: with max 2, the oldest of three is dropped.
	var o workerOptions
	o.control.revokesMax, o.control.revokesSet = 2, true
	var rv worker.RevokedSet
	applyRevokedLimits(&rv, o.control)
	rv.Add("a")
	rv.Add("b")
	rv.Add("c")
	rv.Purge()
	if rv.Len() != 2 || rv.Contains("a") || !rv.Contains("c") {
		t.Errorf("revoked set with max 2: len %d, a %v, c %v", rv.Len(), rv.Contains("a"), rv.Contains("c"))
	}
}
