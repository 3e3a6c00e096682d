package progressbar

import (
	"bytes"
	"os"
	"regexp"
	"testing"
	"time"
)

// TestBar: the first call always draws (later ones are throttled, which
// this test does not time); the bar's shape for a known and an unknown
// total.
func TestBar(t *testing.T) {
	start := time.Now().Add(-2 * time.Second)
	for _, c := range []struct {
		done, total int64
		want        string
	}{
		{5e6, 10e6, `^\r\x1b\[K\[#{15}\.{15}\]  50% 5\.0/10\.0 MB, [0-9.]+ MB/s, ETA \d+s$`},
		{10e6, 10e6, `^\r\x1b\[K\[#{30}\] 100% 10\.0/10\.0 MB, [0-9.]+ MB/s, ETA 0s$`},
		{3e6, 0, `^\r\x1b\[K3\.0 MB, [0-9.]+ MB/s$`},
	} {
		var b bytes.Buffer
		New(&b, start)(c.done, c.total)
		if !regexp.MustCompile(c.want).MatchString(b.String()) {
			t.Errorf("%d/%d: %q, want %s", c.done, c.total, b.String(), c.want)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file is a terminal")
	}
	if null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		defer null.Close()
		if !IsTerminal(null) {
			t.Error("/dev/null (a character device) is not a terminal")
		}
	}
}
