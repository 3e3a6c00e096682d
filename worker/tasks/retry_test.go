package tasks

import (
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/storage/local"
	"github.com/omicsomics/omics-worker/storage/postgres"
)

// TestRetryOptions: the file tasks retry through the runtime's one retry
// policy (worker.AutoRetry), with the countdowns the task used to compute
// itself: RetryBase doubling, no jitter (2 s, 4 s, 8 s by default; the
// --file-tasks-retry-delay flag sets the base), at most 3 retries;
// MaxRetries < 0 turns retries off.
func TestRetryOptions(t *testing.T) {
	keys, err := NewMasterKeyring(testMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	base := Config{Files: (*postgres.Store)(nil), Objects: (*local.Store)(nil), Keys: keys, IsTransient: isTransient}
	tests := []struct {
		name       string
		retryBase  time.Duration
		maxRetries int
		want       []time.Duration
		disabled   bool
		max        int
	}{
		{"default", 0, 0, []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}, false, 3},
		{"flag 0.05", 50 * time.Millisecond, 0, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}, false, 3},
		{"capped after 10 doublings", time.Second, 12, []time.Duration{9: 512 * time.Second, 10: 1024 * time.Second, 11: 1024 * time.Second}, false, 12},
		{"never", 0, -1, nil, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.RetryBase, cfg.MaxRetries = tc.retryBase, tc.maxRetries
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			opts := p.TaskOptions()
			if opts.AutoRetry.Disabled != tc.disabled || opts.MaxRetries != tc.max || !opts.AutoRetry.NoJitter {
				t.Errorf("options %+v, max retries %d", opts.AutoRetry, opts.MaxRetries)
			}
			for n, want := range tc.want {
				if want == 0 {
					continue
				}
				if got := opts.AutoRetry.Backoff(n); got != want {
					t.Errorf("countdown of retry %d = %v, want %v", n, got, want)
				}
			}
		})
	}
	if _, err := New(Config{Files: base.Files, Objects: base.Objects, Keys: keys}); err == nil {
		t.Error("New without IsTransient accepted")
	}
}
