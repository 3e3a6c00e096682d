package main

// The test matrix (issue 11 #2): every test that drives the real Python
// side runs once per installed Celery — "celery5.2" (Debian bookworm's
// /usr/bin/python3) and "celery5.5" (the Debian trixie root of
// scripts/celery55.sh) — as subtests named by the version. The runtime is
// chosen by internal/pyruntime; OMICS_CELERY_VERSIONS=5.5 narrows it while
// iterating.

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/omicsomics/omics-worker/internal/pyruntime"
)

type pyRuntime = pyruntime.Runtime

// forEachCelery runs f once per Celery version as subtests "celery5.2/..."
// and "celery5.5/..." (pyruntime.Run); requireInterop runs first (it skips
// under -short), then each subtest requires its runtime (a missing 5.5
// root fails with the hint `scripts/celery55.sh ensure`). With parallel the
// versions run at the same time: f must use its own queues, node names and
// keys.
func forEachCelery(t *testing.T, parallel bool, f func(t *testing.T, py pyRuntime)) {
	t.Helper()
	requireInterop(t)
	pyruntime.Run(t, parallel, f)
}

var nodeSeq atomic.Int64

// uniqueNode returns prefix-N@%h, a node name no other worker of this test
// process has (two workers with one name would share a pidbox).
func uniqueNode(prefix string) string {
	return fmt.Sprintf("%s-%d@%%h", prefix, nodeSeq.Add(1))
}
