package protocol

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestEncodeResultMetaMatchesMarshal: the fast encoder produces exactly
// json.Marshal's bytes, on the common metas and on random ones (which
// exercise the fallbacks too).
func TestEncodeResultMetaMatchesMarshal(t *testing.T) {
	now := time.Date(2026, 11, 27, 4, 5, 6, 789012345, time.UTC)
	tb := "Traceback\n"
	fixed := []*ResultMeta{
		{Status: StateStarted, Result: map[string]any{"pid": 42, "hostname": "omics@host"}, TaskID: "t1"},
		{Status: "PROGRESS", Result: map[string]any{"status": "step 1", "progress": 0.2}, TaskID: "t1", ParentID: "p", GroupID: "g"},
		{Status: StateSuccess, Result: json.RawMessage(`{"ok":true}`), Children: []any{}, TaskID: "t1", DateDone: &now},
		{Status: StateSuccess, Result: json.RawMessage(`{"ok": true}`), TaskID: "t1", DateDone: &now, NaiveDateDone: true},
		{Status: StateSuccess, Result: json.RawMessage(`"a<b"`), TaskID: "t1"},
		{Status: StateSuccess, Result: 1.0, TaskID: "t1"},
		{Status: StateSuccess, Result: math.Inf(1), TaskID: "t1"},
		{Status: StateSuccess, Result: []any{1e16, math.Copysign(0, -1), 1e-5, "x&y", nil, true}, TaskID: "t1"},
		{Status: StateFailure, Result: &ExceptionInfo{Type: "ValueError", Message: []any{"bad"}, Module: "builtins"}, Traceback: &tb, TaskID: "t1"},
		{Status: StateSuccess, Result: "é", TaskID: "t1"},
		{Status: StateSuccess, Result: json.Number("3"), TaskID: "t1"},
		{Status: StateSuccess, Extended: map[string]any{"name": "x"}, TaskID: "t1"},
		{Status: StateSuccess, Children: []any{[]any{"a", nil}}, TaskID: "t1"},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		fixed = append(fixed, &ResultMeta{Status: randString(r), Result: randValue(r, 0), TaskID: randString(r),
			ParentID: randString(r), GroupID: randString(r)})
	}
	for i, m := range fixed {
		want, werr := json.Marshal(m)
		got, gerr := EncodeResultMeta(m)
		if (werr == nil) != (gerr == nil) || string(got) != string(want) {
			t.Fatalf("meta %d:\nfast %s (%v)\nwant %s (%v)", i, got, gerr, want, werr)
		}
	}
}

func randString(r *rand.Rand) string {
	const alphabet = "ab <>&\"\\\n\u00e9\u2028x-_:."
	rs := []rune(alphabet)
	n := r.IntN(6)
	out := make([]rune, n)
	for i := range out {
		if r.IntN(3) == 0 {
			out[i] = rs[r.IntN(len(rs))]
		} else {
			out[i] = rune('a' + r.IntN(26))
		}
	}
	return string(out)
}

func randValue(r *rand.Rand, depth int) any {
	k := r.IntN(9)
	if depth > 2 {
		k = r.IntN(5)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return randString(r)
	case 3:
		return r.IntN(2000) - 1000
	case 4:
		return []float64{0.5, 1.0, 1e16, 1e-7, -2.25, 123456789.125}[r.IntN(6)]
	case 5:
		m := map[string]any{}
		for range r.IntN(4) {
			m[randString(r)] = randValue(r, depth+1)
		}
		return m
	case 6:
		l := make([]any, r.IntN(4))
		for i := range l {
			l[i] = randValue(r, depth+1)
		}
		return l
	case 7:
		b, _ := json.Marshal(randValue(r, depth+1))
		if r.IntN(2) == 0 {
			return json.RawMessage(b)
		}
		return json.RawMessage(" " + string(b))
	default:
		return int64(r.IntN(10))
	}
}
