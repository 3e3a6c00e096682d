package protocol

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestOptTime pins the eta/countdown and expires options that taskMessage
// reads through the one optTime: relative seconds win over an ISO string,
// a bad string is ErrCanvasUnsupported naming the option.
func TestOptTime(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	iso := "2026-02-03T04:05:06+00:00"
	isoT, _ := ParseISO(iso)
	cases := []struct {
		name     string
		o        map[string]any
		rel, abs string
		want     *time.Time
		errHas   string
	}{
		{"none", map[string]any{}, "countdown", "eta", nil, ""},
		{"countdown", map[string]any{"countdown": 1.5, "eta": iso}, "countdown", "eta", ptrTime(now.Add(1500 * time.Millisecond)), ""},
		{"eta", map[string]any{"eta": iso}, "countdown", "eta", &isoT, ""},
		{"expires seconds", map[string]any{"expires": 10}, "expires", "expires", ptrTime(now.Add(10 * time.Second)), ""},
		{"expires iso", map[string]any{"expires": iso}, "expires", "expires", &isoT, ""},
		{"empty string", map[string]any{"eta": ""}, "countdown", "eta", nil, ""},
		{"bad eta", map[string]any{"eta": "soon"}, "countdown", "eta", nil, `eta "soon" of t`},
		{"bad expires", map[string]any{"expires": "later"}, "expires", "expires", nil, `expires "later" of t`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := optTime(c.o, c.rel, c.abs, now, "t")
			if c.errHas != "" {
				if !errors.Is(err, ErrCanvasUnsupported) || !strings.Contains(err.Error(), c.errHas) {
					t.Fatalf("err = %v, want ErrCanvasUnsupported with %q", err, c.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (c.want == nil) || (got != nil && !got.Equal(*c.want)) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func ptrTime(t time.Time) *time.Time { return &t }
