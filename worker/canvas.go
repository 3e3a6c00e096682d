package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
)

// Canvas: what happens after a task's final state, as celery's worker
// (app/trace.py) and its Redis result backend (backends/base.py,
// backends/redis.py) do it:
//
//   - SUCCESS: the link callbacks are applied with the return value
//     prepended to their args (one callback alone; several as a group),
//     then the next chain step is applied with the rest of the chain, then
//     the result is stored, then the chord part is recorded.
//   - FAILURE: the result is stored, the chord part is recorded, every
//     remaining chain step that has a task id is marked FAILURE with the
//     same exception (and recorded as a chord part when it belongs to one),
//     then the link_error errbacks are sent as a group with (task_id,).
//   - REVOKED: the chord part is recorded.
//
// Errbacks are always sent as tasks, also when this worker registers them
// (celery calls a locally registered errback that takes more than one
// argument inline with (request, exc, traceback); a Go handler has no
// Python request to receive, so the "old signature" path is used for all).

// ChordBackend is what the canvas runtime needs from a result backend for
// chords (the Redis backend's native join, redistransport.ResultBackend).
type ChordBackend interface {
	// ChordPartReturn records a header part's final state in the group's
	// .j key and reports whether it completed the chord.
	ChordPartReturn(ctx context.Context, groupID, taskID string, groupIndex *int, state string, result any) (protocol.ChordJoin, error)
	// SetChordSize stores the size of a chord the worker applies itself.
	SetChordSize(ctx context.Context, groupID string, size int) error
}

// canvasSuccess applies the callbacks and the next chain step of a task
// that returned result (its JSON encoding raw); it runs before the result
// is stored, as in celery.
func (w *Worker) canvasSuccess(ctx context.Context, j *job, raw []byte) {
	msg := j.msg
	if len(msg.Embed.Callbacks) == 0 && len(msg.Embed.Chain) == 0 {
		return
	}
	call := w.canvasCall(j, []any{decodeResult(raw)})
	call.ParentID = msg.ID
	call.RootID = rootOf(msg)
	if cbs := msg.Embed.Callbacks; len(cbs) == 1 {
		w.applyCanvas(ctx, j.log, cbs[0], call, "link callback")
	} else if len(cbs) > 1 {
		// celery: group callbacks are applied one by one, the plain ones
		// together as one group.
		var plain []any
		for _, cb := range cbs {
			if st, _ := cb["subtask_type"].(string); st == "group" {
				w.applyCanvas(ctx, j.log, cb, call, "link callback")
			} else {
				plain = append(plain, cb)
			}
		}
		if len(plain) > 0 {
			w.applyCanvas(ctx, j.log, groupSig(plain), call, "link callbacks")
		}
	}
	if chain := msg.Embed.Chain; len(chain) > 0 {
		next := chain[len(chain)-1]
		c := call
		c.Chain = append([]protocol.Signature(nil), chain[:len(chain)-1]...)
		if len(c.Chain) == 0 {
			c.Chain = nil
		}
		w.applyCanvas(ctx, j.log, next, c, "chain step")
	}
}

// canvasFailed runs celery's mark_as_failure canvas steps after the
// FAILURE of j was stored: chord part, chain propagation, errbacks.
func (w *Worker) canvasFailed(ctx context.Context, j *job, exc *protocol.ExceptionInfo, tb *string) {
	msg := j.msg
	if msg == nil {
		return
	}
	w.chordPart(ctx, j.log, msg.Embed.Chord, msg.ID, msg.Group, msg.GroupIndex, protocol.StateFailure, exc, msg)
	for _, elem := range msg.Embed.Chain {
		opts, _ := elem["options"].(map[string]any)
		id, _ := opts["task_id"].(string)
		gid, _ := opts["group_id"].(string)
		if id != "" {
			m := &protocol.ResultMeta{Status: protocol.StateFailure, Result: exc, Traceback: tb,
				Children: []any{}, TaskID: id, GroupID: gid}
			now := time.Now().UTC()
			m.DateDone = &now
			if err := w.store(ctx, m); err != nil {
				j.log.Error("storing FAILURE of a chain step failed", "step", id, "err", err)
			}
		}
		if body, ok := opts["chord"].(map[string]any); ok && id != "" {
			var idx *int
			if n, ok := protocol.NumberInt(opts["group_index"]); ok {
				idx = &n
			}
			w.chordPart(ctx, j.log, body, id, gid, idx, protocol.StateFailure, exc, msg)
		}
	}
	w.sendErrbacks(ctx, j.log, msg.Embed.Errbacks, msg.ID, rootOf(msg), j)
}

// canvasRevoked records a revoked chord part (celery's mark_as_revoked).
func (w *Worker) canvasRevoked(ctx context.Context, j *job, exc *protocol.ExceptionInfo) {
	if j.msg == nil {
		return
	}
	w.chordPart(ctx, j.log, j.msg.Embed.Chord, j.msg.ID, j.msg.Group, j.msg.GroupIndex, protocol.StateRevoked, exc, j.msg)
}

// canvasSucceeded records a successful chord part (after the store).
func (w *Worker) canvasSucceeded(ctx context.Context, j *job, raw []byte) {
	if j.msg.Embed.Chord == nil {
		return
	}
	w.chordPart(ctx, j.log, j.msg.Embed.Chord, j.msg.ID, j.msg.Group, j.msg.GroupIndex, protocol.StateSuccess, decodeResult(raw), j.msg)
}

// decodeResult is a task's JSON-encoded return value as the callbacks and
// the chord join get it (numbers kept exact); nil if raw does not decode.
func decodeResult(raw []byte) any {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return nil
	}
	return v
}

// sendErrbacks is celery's "old signature" errback path: the errbacks as
// one group applied with (task_id,), parent_id = task_id.
func (w *Worker) sendErrbacks(ctx context.Context, log *slog.Logger, errbacks []protocol.Signature, taskID, rootID string, j *job) {
	if len(errbacks) == 0 {
		return
	}
	l := make([]any, len(errbacks))
	for i, e := range errbacks {
		l[i] = e
	}
	call := w.canvasCall(j, []any{taskID})
	call.ParentID, call.RootID = taskID, rootID
	if call.RootID == "" {
		call.RootID = taskID
	}
	w.applyCanvas(ctx, log, groupSig(l), call, "link_error errback")
}

// chordPart is on_chord_part_return for a header part (body = its chord
// signature): record the state and, when it completed the chord, apply
// the body with the results in header order, or fail it with ChordError.
func (w *Worker) chordPart(ctx context.Context, log *slog.Logger, body protocol.Signature, taskID, groupID string, idx *int, state string, result any, parent *protocol.TaskMessage) {
	if body == nil {
		return
	}
	if groupID == "" || taskID == "" {
		log.Error("chord part without a group id: the chord body cannot be joined", "task_id", taskID)
		return
	}
	cb, ok := w.backend.(ChordBackend)
	if !ok {
		log.Error("the result backend has no chord join: failing the chord body", "group", groupID)
		w.failChordBody(ctx, log, body, protocol.NewExceptionInfo("ChordError", protocol.ModuleCelery,
			"omics-worker: the result backend cannot join chords (Redis backend needed)"))
		return
	}
	var join protocol.ChordJoin
	var err error
	for attempt := range storeAttempts {
		if attempt > 0 {
			time.Sleep(w.storePause(attempt))
		}
		if join, err = cb.ChordPartReturn(ctx, groupID, taskID, idx, state, result); err == nil {
			break
		}
	}
	if err != nil {
		log.Error("recording the chord part failed", "group", groupID, "err", err)
		return
	}
	if !join.Complete {
		log.Debug("chord part recorded", "group", groupID, "ready", join.Ready, "total", join.Total)
		return
	}
	results, cerr := protocol.ChordResults(join.Parts)
	if cerr != nil {
		log.Error(fmt.Sprintf("Chord %q raised: %s", groupID, protocol.PyReprException(cerr)))
		w.failChordBody(ctx, log, body, cerr)
		return
	}
	call := w.canvasCallFor([]any{results})
	call.ParentID = parent.ID
	call.RootID = rootOf(parent)
	if err := w.applyCanvasErr(ctx, log, body, call, "chord body"); err != nil {
		w.failChordBody(ctx, log, body, protocol.NewExceptionInfo("ChordError", protocol.ModuleCelery,
			fmt.Sprintf("Callback error: %s", err)))
	}
}

// failChordBody is chord_error_from_stack: the body's errbacks get
// (body_id,), then the body is stored as FAILURE with exc. A chain body
// (no task id of its own) has every step with a task id marked FAILURE
// so that a client waiting on its last step gets the error.
func (w *Worker) failChordBody(ctx context.Context, log *slog.Logger, body protocol.Signature, exc *protocol.ExceptionInfo) {
	sig, err := protocol.ParseSig(body)
	if err != nil {
		log.Error("chord body is not a signature", "err", err)
		return
	}
	ids := []string{}
	var errbacks []protocol.Signature
	if id, _ := sig.Options["task_id"].(string); id != "" {
		ids = append(ids, id)
	}
	errbacks = append(errbacks, protocol.SigListOption(sig.Options["link_error"])...)
	if len(ids) == 0 && sig.Type == "chain" {
		tasks, _ := sig.Kwargs["tasks"].([]any)
		for _, t := range tasks {
			if m, ok := t.(map[string]any); ok {
				if o, ok := m["options"].(map[string]any); ok {
					if id, _ := o["task_id"].(string); id != "" {
						ids = append(ids, id)
					}
				}
			}
		}
	}
	if len(ids) > 0 {
		w.sendErrbacks(ctx, log, errbacks, ids[0], ids[0], nil)
	}
	tb := fmt.Sprintf("Traceback (most recent call last):\n  File \"omics-worker\", line 0, in on_chord_part_return\ncelery.exceptions.ChordError: %s\n", exc.Message[0])
	for _, id := range ids {
		now := time.Now().UTC()
		m := &protocol.ResultMeta{Status: protocol.StateFailure, Result: exc, Traceback: &tb,
			Children: []any{}, TaskID: id, DateDone: &now}
		if err := w.store(ctx, m); err != nil {
			log.Error("storing the chord body's FAILURE failed", "task_id", id, "err", err)
		}
	}
}

// canvasCall is the base call for messages sent on behalf of j.
func (w *Worker) canvasCall(j *job, args []any) protocol.CanvasCall {
	c := w.canvasCallFor(args)
	if j != nil && j.d != nil {
		c.ReplyTo = j.d.Envelope.Properties.ReplyTo
	}
	return c
}

// canvasCallFor is the base call for messages the worker sends itself.
func (w *Worker) canvasCallFor(args []any) protocol.CanvasCall {
	q := w.cfg.TaskDefaultQueue
	if q == "" && len(w.cfg.Queues) > 0 {
		q = w.cfg.Queues[0]
	}
	return protocol.CanvasCall{Args: args, DefaultQueue: q, Origin: w.cfg.Hostname, Now: time.Now()}
}

// applyCanvas applies a signature and logs what went wrong.
func (w *Worker) applyCanvas(ctx context.Context, log *slog.Logger, sig protocol.Signature, call protocol.CanvasCall, what string) {
	_ = w.applyCanvasErr(ctx, log, sig, call, what)
}

// applyCanvasErr publishes the messages of sig. A signature it cannot
// apply is logged and, where a client would wait on a known task id, that
// id is answered with a FAILURE.
func (w *Worker) applyCanvasErr(ctx context.Context, log *slog.Logger, sig protocol.Signature, call protocol.CanvasCall, what string) error {
	outs, err := protocol.ApplySignature(sig, call)
	if err != nil {
		log.Error(fmt.Sprintf("cannot apply %s: %v", what, err), "signature", sig["task"])
		w.failUnapplied(ctx, log, sig, err)
		return err
	}
	cb, _ := w.backend.(ChordBackend)
	for _, o := range outs {
		for _, n := range o.Notes {
			log.Warn(fmt.Sprintf("%s %s[%s]: %s", what, o.Msg.Task, o.Msg.ID, n))
		}
		if o.ChordSize != nil {
			if cb == nil {
				err = errors.New("the result backend cannot join chords")
			} else {
				err = cb.SetChordSize(ctx, o.ChordSize.GroupID, o.ChordSize.Size)
			}
			if err != nil {
				log.Error(fmt.Sprintf("cannot apply %s: chord size: %v", what, err))
				w.failUnapplied(ctx, log, sig, err)
				return err
			}
		}
		raw, err := protocol.EncodeTask(o.Msg, o.Pub)
		if err == nil {
			err = w.broker.Publish(ctx, o.Pub.Queue, o.Pub.Priority, raw)
		}
		if err != nil {
			log.Error(fmt.Sprintf("sending %s %s[%s] failed: %v", what, o.Msg.Task, o.Msg.ID, err))
			w.storeCanvasFailure(ctx, log, o.Msg.ID, o.Msg.Group, fmt.Sprintf("omics-worker could not send %s: %v", what, err))
			continue
		}
		log.Info(fmt.Sprintf("Sent %s %s[%s] to %s", what, o.Msg.Task, o.Msg.ID, o.Pub.Queue))
	}
	return nil
}

// failUnapplied answers the task ids a client may wait on in sig.
func (w *Worker) failUnapplied(ctx context.Context, log *slog.Logger, sig protocol.Signature, cause error) {
	for _, id := range protocol.SignatureTaskIDs(sig) {
		w.storeCanvasFailure(ctx, log, id, "", "omics-worker cannot apply this canvas signature: "+cause.Error())
	}
}

func (w *Worker) storeCanvasFailure(ctx context.Context, log *slog.Logger, id, group, text string) {
	now := time.Now().UTC()
	m := &protocol.ResultMeta{Status: protocol.StateFailure,
		Result:   protocol.NewExceptionInfo("NotImplementedError", protocol.ModuleBuiltins, text),
		Children: []any{}, TaskID: id, GroupID: group, DateDone: &now}
	if err := w.store(ctx, m); err != nil {
		log.Error("storing FAILURE failed", "task_id", id, "err", err)
	}
}

func groupSig(tasks []any) protocol.Signature {
	return protocol.Signature{"task": "celery.group", "args": []any{}, "kwargs": map[string]any{"tasks": tasks},
		"options": map[string]any{}, "subtask_type": "group", "immutable": false}
}

func rootOf(msg *protocol.TaskMessage) string {
	if msg.RootID != "" {
		return msg.RootID
	}
	return msg.ID
}

// hasCanvas reports whether msg asks for work after its final state.
func hasCanvas(msg *protocol.TaskMessage) bool {
	e := msg.Embed
	return len(e.Callbacks) > 0 || len(e.Errbacks) > 0 || len(e.Chain) > 0 || e.Chord != nil
}
