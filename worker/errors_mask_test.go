package worker

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/omicsomics/omics-worker/internal/mask/masktest"
)

// TestExceptionInfoMasksURLs: a FAILURE/RETRY exception never carries a
// URL's password into the result backend (issue 9 #5).
func TestExceptionInfoMasksURLs(t *testing.T) {
	e := PyErrorf("ConnectionError", "database unavailable: dial postgres://u:%s@db/x: %w",
		masktest.Password, errors.New("refused"))
	b, err := json.Marshal(e.Info())
	if err != nil {
		t.Fatal(err)
	}
	masktest.Check(t, "exception dict", string(b))
	if want := `postgres://u:**@db/x`; !json.Valid(b) || !strings.Contains(string(b), want) {
		t.Errorf("exception dict %s lacks %s", b, want)
	}
}
