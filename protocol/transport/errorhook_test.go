package transport

import (
	"errors"
	"testing"
)

func TestErrorHook(t *testing.T) {
	var h ErrorHook
	boom := errors.New("boom")
	if err := h.Fail("a", boom); err != boom { //nolint:errorlint // Fail returns the very error it was given
		t.Fatalf("unset hook: %v", err)
	}
	var ops []string
	h.Set(func(op string) { ops = append(ops, op) })
	if err := h.Fail("ok", nil); err != nil {
		t.Fatal(err)
	}
	if err := h.Fail("pop", boom); err != boom { //nolint:errorlint // Fail returns the very error it was given
		t.Fatal(err)
	}
	h.Set(nil)
	_ = h.Fail("after", boom)
	if len(ops) != 1 || ops[0] != "pop" {
		t.Errorf("hook saw %q, want [pop]", ops)
	}
}
