// Package pyruntime chooses the Python interpreters the interop tests drive:
// one per installed Celery. "5.2" is Debian bookworm's python3-celery 5.2.6 /
// kombu 5.2.4 / redis-py 4 at /usr/bin/python3; "5.5" is Debian trixie's
// celery 5.5.2 / kombu 5.5.3 / redis-py 6.1.0 in the root that
// scripts/celery55.sh builds (python3 run inside it with the project and
// /tmp visible at the same paths).
//
// Every test that drives the real Python side runs once per runtime, as
// subtests named by Runtime.Name ("celery5.2", "celery5.5"). A runtime that
// is not installed makes its subtests fail with the command that installs
// it (Require); under -short the callers skip before that.
//
// OMICS_CELERY_VERSIONS (comma separated, e.g. "5.5") narrows the matrix
// while iterating; unset means every version.
package pyruntime

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// SystemPython is Debian's interpreter with python3-celery 5.2 installed.
const SystemPython = "/usr/bin/python3"

// Runtime is one Python interpreter with one Celery version.
type Runtime struct {
	Version string   // "5.2" or "5.5": the Celery major.minor it has
	Cmd     []string // argv prefix that runs its python3
}

// Name is the subtest name: "celery5.2", "celery5.5".
func (r Runtime) Name() string { return "celery" + r.Version }

// Command returns the command running python3 args... (without a
// context: for long-lived processes the test stops itself).
func (r Runtime) Command(args ...string) *exec.Cmd {
	return exec.Command(r.Cmd[0], append(slices.Clone(r.Cmd[1:]), args...)...)
}

// CommandContext is Command bound to ctx.
func (r Runtime) CommandContext(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, r.Cmd[0], append(slices.Clone(r.Cmd[1:]), args...)...)
}

// AtLeast reports whether the runtime's Celery is at least major.minor
// ("5.5").
func (r Runtime) AtLeast(version string) bool {
	return versionLess(version, r.Version) || version == r.Version
}

func versionLess(a, b string) bool {
	var am, an, bm, bn int
	_, _ = fmt.Sscanf(a, "%d.%d", &am, &an)
	_, _ = fmt.Sscanf(b, "%d.%d", &bm, &bn)
	return am < bm || (am == bm && an < bn)
}

// Script is scripts/celery55.sh of this checkout.
func Script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "celery55.sh")
}

// Root is the celery 5.5 root directory (OMICS_CELERY55_ROOT overrides the
// default, as in scripts/celery55.sh).
func Root() string {
	if r := os.Getenv("OMICS_CELERY55_ROOT"); r != "" {
		return r
	}
	return "/var/cache/omics-worker/celery55"
}

// All returns every runtime of the matrix (narrowed by
// OMICS_CELERY_VERSIONS), whether installed or not: see Require.
func All() []Runtime {
	all := []Runtime{
		{Version: "5.2", Cmd: []string{SystemPython}},
		{Version: "5.5", Cmd: []string{Script(), "python3"}},
	}
	want := os.Getenv("OMICS_CELERY_VERSIONS")
	if want == "" {
		return all
	}
	var out []Runtime
	for _, r := range all {
		if slices.Contains(strings.Split(want, ","), r.Version) {
			out = append(out, r)
		}
	}
	return out
}

// Find returns the runtime of version (for tests that pin one).
func Find(version string) Runtime {
	for _, r := range All() {
		if r.Version == version {
			return r
		}
	}
	panic("pyruntime: unknown version " + version)
}

var (
	checkMu  sync.Mutex
	checked  = map[string]error{}
	versions = map[string]string{}
)

// Require fails t with an installation hint unless the runtime runs and its
// celery has the expected version. The check runs once per process.
func (r Runtime) Require(t testing.TB) {
	t.Helper()
	if err := r.check(); err != nil {
		t.Fatalf("%s: %v", r.Name(), err)
	}
}

// CeleryVersion is the full celery version the runtime reported ("5.5.2"),
// after Require.
func (r Runtime) CeleryVersion() string {
	checkMu.Lock()
	defer checkMu.Unlock()
	return versions[r.Version]
}

func (r Runtime) check() error {
	checkMu.Lock()
	defer checkMu.Unlock()
	if err, ok := checked[r.Version]; ok {
		return err
	}
	err := r.probe()
	checked[r.Version] = err
	return err
}

func (r Runtime) probe() error {
	hint := "apt-get install python3-celery python3-redis python3-cryptography (run with " + SystemPython + ", not a virtualenv python)"
	if r.Version != "5.2" {
		hint = Script() + " ensure (as root: builds the Debian trixie root in " + Root() + ", about a minute)"
		if _, err := os.Stat(filepath.Join(Root(), ".omics-complete")); err != nil {
			return fmt.Errorf("the celery %s root is missing (%w)\nhint: %s", r.Version, err, hint)
		}
	}
	out, err := r.Command("-c", "import celery, kombu, redis; print(celery.__version__)").CombinedOutput()
	if err != nil {
		return fmt.Errorf("the Python Celery is not usable: %w\n%s\nhint: %s", err, out, hint)
	}
	got := strings.TrimSpace(string(out))
	if got != r.Version && !strings.HasPrefix(got, r.Version+".") {
		return fmt.Errorf("expected celery %s, the interpreter has %q\nhint: %s", r.Version, got, hint)
	}
	versions[r.Version] = got
	return nil
}

// Run runs f once per runtime as subtests named Runtime.Name; each
// subtest first Requires its runtime. With parallel the subtests run in
// parallel with each other (the caller must give each its own queues,
// node names and keys).
func Run(t *testing.T, parallel bool, f func(t *testing.T, py Runtime)) {
	t.Helper()
	for _, py := range All() {
		t.Run(py.Name(), func(t *testing.T) {
			if parallel {
				t.Parallel()
			}
			py.Require(t)
			f(t, py)
		})
	}
}
