package pyfmt

import (
	"regexp"
	"testing"
)

func TestNewUUID4(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		u := NewUUID4().String()
		if !re.MatchString(u) || seen[u] {
			t.Fatalf("bad or duplicate uuid %q", u)
		}
		seen[u] = true
	}
}
