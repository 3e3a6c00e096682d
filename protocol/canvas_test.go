package protocol

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// capturedCanvas reads protocol/testdata/canvas/<version>/<name>.json (made
// by testdata/interop/canvas/capture_canvas.py with the real client) and
// decodes its envelopes.
func capturedCanvas(t *testing.T, version, name string) ([]*TaskMessage, map[string]int) {
	t.Helper()
	var f struct {
		Envelopes []json.RawMessage `json:"envelopes"`
		ChordSize map[string]int    `json:"chord_size"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join("testdata", "canvas", version, name+".json")), &f); err != nil {
		t.Fatal(err)
	}
	var out []*TaskMessage
	for _, raw := range f.Envelopes {
		out = append(out, decodeTask(t, raw))
	}
	return out, f.ChordSize
}

// roundTrip encodes an outgoing message and decodes it as a worker would.
func roundTrip(t *testing.T, o Outgoing) *TaskMessage {
	t.Helper()
	raw, err := EncodeTask(o.Msg, o.Pub)
	if err != nil {
		t.Fatal(err)
	}
	return decodeTask(t, raw)
}

// decodeTask decodes an envelope and its task message as a worker would.
func decodeTask(t *testing.T, raw []byte) *TaskMessage {
	t.Helper()
	env, err := DecodeEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeTask(env)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func frozenID(t *testing.T, s Signature) string {
	t.Helper()
	id, _ := s["options"].(map[string]any)["task_id"].(string)
	if id == "" {
		t.Fatalf("signature without a frozen task_id: %v", s)
	}
	return id
}

func TestCanvasCapturedMessages(t *testing.T) {
	for _, v := range []string{"5.2", "5.5"} {
		t.Run(v, func(t *testing.T) {
			t.Run("chain step", func(t *testing.T) {
				msgs, _ := capturedCanvas(t, v, "chain3")
				parent := msgs[0]
				chain := parent.Embed.Chain
				if len(chain) != 2 {
					t.Fatalf("chain %v", chain)
				}
				next := chain[len(chain)-1]
				outs, err := ApplySignature(next, CanvasCall{Args: []any{json.Number("3")}, Chain: chain[:1],
					ParentID: parent.ID, RootID: parent.RootID, DefaultQueue: "q"})
				if err != nil || len(outs) != 1 {
					t.Fatalf("%v %v", outs, err)
				}
				m := roundTrip(t, outs[0])
				if m.ID != frozenID(t, next) || m.Task != "diag.add" || m.ParentID != parent.ID || m.RootID != parent.RootID {
					t.Fatalf("ids: %+v", m)
				}
				if !reflect.DeepEqual(m.Args, []any{json.Number("3"), json.Number("3")}) {
					t.Fatalf("args %v", m.Args)
				}
				if len(m.Embed.Chain) != 1 || m.Embed.Chain[0]["task"] != "diag.mul" || outs[0].Pub.Queue != "q" {
					t.Fatalf("rest of chain %v, queue %q", m.Embed.Chain, outs[0].Pub.Queue)
				}
			})
			t.Run("link with queue and priority", func(t *testing.T) {
				msgs, _ := capturedCanvas(t, v, "link")
				cb := msgs[0].Embed.Callbacks[0]
				outs, err := ApplySignature(cb, CanvasCall{Args: []any{json.Number("3")}, ParentID: msgs[0].ID, RootID: msgs[0].RootID})
				if err != nil {
					t.Fatal(err)
				}
				o := outs[0]
				m := roundTrip(t, o)
				if o.Pub.Queue != "omwcanv-other" || o.Pub.Priority != 5 || !reflect.DeepEqual(m.Args, []any{json.Number("3"), json.Number("10")}) {
					t.Fatalf("queue %q prio %d args %v", o.Pub.Queue, o.Pub.Priority, m.Args)
				}
				if m.ParentID != msgs[0].ID || m.RootID != msgs[0].RootID || m.ID == "" || m.ID == msgs[0].ID {
					t.Fatalf("ids %+v", m)
				}
			})
			t.Run("immutable link", func(t *testing.T) {
				msgs, _ := capturedCanvas(t, v, "link_immutable")
				outs, err := ApplySignature(msgs[0].Embed.Callbacks[0], CanvasCall{Args: []any{json.Number("3")}})
				if err != nil {
					t.Fatal(err)
				}
				if m := roundTrip(t, outs[0]); !reflect.DeepEqual(m.Args, []any{"x"}) {
					t.Fatalf("args %v", m.Args)
				}
			})
			t.Run("errbacks as a group", func(t *testing.T) {
				msgs, _ := capturedCanvas(t, v, "link_error")
				g := Signature{"task": "celery.group", "kwargs": map[string]any{"tasks": []any{msgs[0].Embed.Errbacks[0]}},
					"options": map[string]any{}, "subtask_type": "group"}
				outs, err := ApplySignature(g, CanvasCall{Args: []any{msgs[0].ID}, ParentID: msgs[0].ID, RootID: msgs[0].ID})
				if err != nil {
					t.Fatal(err)
				}
				m := roundTrip(t, outs[0])
				if !reflect.DeepEqual(m.Args, []any{msgs[0].ID, "errback"}) || m.Group == "" || m.GroupIndex == nil || *m.GroupIndex != 0 {
					t.Fatalf("%+v", m)
				}
			})
			t.Run("chain step inside a chord header", func(t *testing.T) {
				msgs, sizes := capturedCanvas(t, v, "chord_chain_header")
				if len(sizes) != 1 {
					t.Fatalf("chord sizes %v", sizes)
				}
				step := msgs[0].Embed.Chain[0]
				outs, err := ApplySignature(step, CanvasCall{Args: []any{json.Number("2")}, ParentID: msgs[0].ID})
				if err != nil {
					t.Fatal(err)
				}
				m := roundTrip(t, outs[0])
				if m.Group != msgs[1].Group || m.GroupIndex == nil || *m.GroupIndex != 0 || m.Embed.Chord == nil ||
					m.Embed.Chord["task"] != "diag.xsum" {
					t.Fatalf("%+v", m)
				}
			})
			t.Run("chain body of a chord", func(t *testing.T) {
				msgs, _ := capturedCanvas(t, v, "chord_chain_body")
				body := msgs[0].Embed.Chord
				results := []any{json.Number("0"), json.Number("2")}
				outs, err := ApplySignature(body, CanvasCall{Args: []any{results}, ParentID: msgs[1].ID})
				if err != nil || len(outs) != 1 {
					t.Fatalf("%v %v", outs, err)
				}
				m := roundTrip(t, outs[0])
				tasks := body["kwargs"].(map[string]any)["tasks"].([]any)
				if m.Task != "diag.xsum" || m.ID != frozenID(t, tasks[0].(map[string]any)) ||
					!reflect.DeepEqual(m.Args, []any{results}) || len(m.Embed.Chain) != 1 ||
					m.Embed.Chain[0]["options"].(map[string]any)["task_id"] != frozenID(t, tasks[1].(map[string]any)) {
					t.Fatalf("%+v", m)
				}
			})
			t.Run("chord parts", func(t *testing.T) {
				msgs, sizes := capturedCanvas(t, v, "chord3")
				for i, m := range msgs {
					if m.Group == "" || m.GroupIndex == nil || *m.GroupIndex != i || m.Embed.Chord == nil {
						t.Fatalf("part %d: %+v", i, m)
					}
					if sizes[GroupResultKeyBase+m.Group+".s"] != 3 {
						t.Fatalf("chord size %v", sizes)
					}
				}
			})
		})
	}
}

func TestChordResults(t *testing.T) {
	ok, _ := ChordPartEntry("a", StateSuccess, json.Number("4"))
	bad, _ := ChordPartEntry("b", StateFailure, NewExceptionInfo("ValueError", ModuleBuiltins, "part"))
	if string(ok) != `[1, "a", "SUCCESS", 4]` {
		t.Fatalf("entry %s", ok)
	}
	var parts []ChordPart
	for _, e := range [][]byte{ok, bad} {
		p, err := DecodeChordPart(e)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	if r, err := ChordResults(parts[:1]); err != nil || !reflect.DeepEqual(r, []any{json.Number("4")}) {
		t.Fatalf("%v %v", r, err)
	}
	_, cerr := ChordResults(parts)
	if cerr == nil || cerr.Type != "ChordError" || cerr.Module != "celery.exceptions" ||
		cerr.Message[0] != "Dependency b raised ValueError('part')" {
		t.Fatalf("%+v", cerr)
	}
}

func TestApplySignatureUnsupported(t *testing.T) {
	_, err := ApplySignature(Signature{"task": "x", "subtask_type": "xmap", "options": map[string]any{"task_id": "t1"}}, CanvasCall{})
	if err == nil || !strings.Contains(err.Error(), "xmap") {
		t.Fatalf("err %v", err)
	}
	if ids := SignatureTaskIDs(Signature{"task": "x", "subtask_type": "xmap", "options": map[string]any{"task_id": "t1"}}); !reflect.DeepEqual(ids, []string{"t1"}) {
		t.Fatalf("ids %v", ids)
	}
}

// TestOptTime pins the eta/countdown and expires options that taskMessage
// reads through the one optTime: relative seconds win over an ISO string,
// a bad string is ErrCanvasUnsupported naming the option.
func TestOptTime(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	iso := "2026-02-03T04:05:06+00:00"
	isoT, _ := ParseISO(iso)
	type tc struct {
		name, rel, abs, errHas string
		o                      map[string]any
		want                   *time.Time
	}
	cases := []tc{
		{name: "none", o: map[string]any{}, rel: "countdown", abs: "eta"},
		{name: "countdown", o: map[string]any{"countdown": 1.5, "eta": iso}, rel: "countdown", abs: "eta", want: ptrTime(now.Add(1500 * time.Millisecond))},
		{name: "eta", o: map[string]any{"eta": iso}, rel: "countdown", abs: "eta", want: &isoT},
		{name: "expires seconds", o: map[string]any{"expires": 10}, rel: "expires", abs: "expires", want: ptrTime(now.Add(10 * time.Second))},
		{name: "expires iso", o: map[string]any{"expires": iso}, rel: "expires", abs: "expires", want: &isoT},
		{name: "empty string", o: map[string]any{"eta": ""}, rel: "countdown", abs: "eta"},
		{name: "bad eta", o: map[string]any{"eta": "soon"}, rel: "countdown", abs: "eta", errHas: `eta "soon" of t`},
		{name: "bad expires", o: map[string]any{"expires": "later"}, rel: "expires", abs: "expires", errHas: `expires "later" of t`},
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
