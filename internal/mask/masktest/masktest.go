// Package masktest holds the distinctive test passwords of the suite and
// the check that a text (a captured log, an error, a process's output)
// shows none of them. Tests that configure a secret-bearing URL use these
// constants, so one grep for Marker finds any leak.
package masktest

import (
	"strings"
	"testing"
)

// Marker is part of every test secret; it must never appear in a log.
const Marker = "T3stS3cr3t"

const (
	// Password is a plain password.
	Password = "pw-" + Marker
	// PercentPassword holds an unencoded '%', so a URL carrying it does
	// not parse (the parse error must not show it either).
	PercentPassword = "pw%" + Marker
	// EncodedPassword is "pw%" + Marker percent-encoded for a URL.
	EncodedPassword = "pw%25" + Marker
)

// Check fails t when text shows a test secret (or what is left of one
// after "%xx" was cut off by a parser).
func Check(t testing.TB, where, text string) {
	t.Helper()
	if i := strings.Index(text, Marker[2:]); i >= 0 {
		lo, hi := max(0, i-80), min(len(text), i+80)
		t.Errorf("%s shows a test secret: ...%s...", where, text[lo:hi])
	}
}
