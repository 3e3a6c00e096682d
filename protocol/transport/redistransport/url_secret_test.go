package redistransport

import (
	"strings"
	"testing"

	"github.com/omicsomics/omics-worker/internal/mask/masktest"
)

// TestParseURLErrorHidesSecret: neither the password nor the bad escape
// inside it is quoted by a parse error (issue 9 #5).
func TestParseURLErrorHidesSecret(t *testing.T) {
	for _, u := range []string{
		"redis://:" + masktest.PercentPassword + "@h:6379/0",
		"redis://u:" + masktest.Password + "@h:port/0",
	} {
		_, err := ParseURL(u)
		if err == nil {
			t.Fatalf("%s: accepted", u)
		}
		masktest.Check(t, "ParseURL error", err.Error())
		if s := err.Error(); strings.Contains(s, "%T3") {
			t.Errorf("ParseURL error quotes a piece of the password: %s", s)
		}
	}
}
