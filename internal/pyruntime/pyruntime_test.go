package pyruntime

import (
	"slices"
	"strings"
	"testing"
)

func TestAllAndNarrowing(t *testing.T) {
	tests := []struct {
		env  string
		want []string
	}{
		{"", []string{"celery5.2", "celery5.5"}},
		{"5.5", []string{"celery5.5"}},
		{"5.2,5.5", []string{"celery5.2", "celery5.5"}},
		{"4.4", nil},
	}
	for _, tc := range tests {
		t.Setenv("OMICS_CELERY_VERSIONS", tc.env)
		var got []string
		for _, r := range All() {
			got = append(got, r.Name())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("OMICS_CELERY_VERSIONS=%q: %v, want %v", tc.env, got, tc.want)
		}
	}
}

func TestAtLeast(t *testing.T) {
	for _, tc := range []struct {
		have, min string
		want      bool
	}{
		{"5.2", "5.4", false}, {"5.5", "5.4", true}, {"5.5", "5.5", true}, {"5.10", "5.5", true}, {"4.9", "5.0", false},
	} {
		if got := (Runtime{Version: tc.have}).AtLeast(tc.min); got != tc.want {
			t.Errorf("%s.AtLeast(%s) = %v", tc.have, tc.min, got)
		}
	}
}

// TestMissingRootHint: a 5.5 root that is not there fails with the command
// that builds it.
func TestMissingRootHint(t *testing.T) {
	t.Setenv("OMICS_CELERY55_ROOT", t.TempDir())
	err := Runtime{Version: "5.5", Cmd: []string{Script(), "python3"}}.probe()
	if err == nil || !strings.Contains(err.Error(), "celery55.sh ensure") {
		t.Fatalf("probe = %v, want the ensure hint", err)
	}
}
