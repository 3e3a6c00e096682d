package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
)

// receive classifies a fetched delivery (spec §1.6, §6.8) and either
// settles it at once (reject/forward/expire) or holds it: in the ready
// queue, or in an ETA timer.
func (w *Worker) receive(ctx context.Context, d *protocol.Delivery) {
	j := &job{d: d, log: w.log, inWindow: true}
	w.mu.Lock()
	w.held[j] = struct{}{}
	w.inWindow++
	w.mu.Unlock()

	log := lazyWith(w.log, "delivery_tag", d.Tag, "queue", d.Queue)
	if d.Envelope == nil {
		log.Error("Can't decode message body; message deleted", "err", d.DecodeErr, "size", len(d.Raw))
		w.hookReject(decodeRejectReason(d.DecodeErr))
		w.settle(ctx, j, w.undecodableMeta(log, d)) // FAILURE if an id is readable (reject.go)
		return
	}
	if limit := w.cfg.MaxMessageSize; limit > 0 && len(d.Raw) > limit {
		id, name := protocol.PeekTaskID(d.Envelope)
		log.Error("Received invalid task message: too large; rejected", "task", name, "task_id", id, "size", len(d.Raw), "limit", limit)
		w.hookReject(RejectTooLarge)
		w.settle(ctx, j, w.failureMeta(id, invalidTask(fmt.Sprintf(
			"message of %d bytes exceeds the worker's limit of %d bytes", len(d.Raw), limit))))
		return
	}
	msg, err := protocol.DecodeTask(d.Envelope)
	if err != nil {
		id, name := protocol.PeekTaskID(d.Envelope)
		log = log.With("task", name, "task_id", id)
		switch {
		case errors.Is(err, protocol.ErrUnknownMessage):
			log.Warn("Received and deleted unknown message. Wrong destination?!?", "err", err)
			w.hookReject(RejectUnknown)
			w.settle(ctx, j, nil)
		case errors.Is(err, protocol.ErrContentDisallowed):
			log.Error("Received task message with a refused serializer; rejected", "err", err)
			w.hookReject(RejectContentDisallowed)
			w.settle(ctx, j, w.failureMeta(id, contentDisallowed(disallowedMessage(err))))
		case errors.Is(err, protocol.ErrUndecodable):
			// Python: "Can't decode message body" (on_decode_error), the
			// message acked, no result; we also store FAILURE (README 25).
			log.Error("Can't decode message body; rejected", "err", err)
			w.hookReject(decodeRejectReason(err))
			w.settle(ctx, j, w.failureMeta(id, invalidTask(err.Error())))
		default:
			log.Error("Received invalid task message; rejected", "err", err)
			w.hookReject(RejectInvalid)
			w.settle(ctx, j, w.failureMeta(id, invalidTask(err.Error())))
		}
		return
	}
	j.msg = msg
	j.log = lazyWith(w.log, "task", msg.Task, "task_id", msg.ID)
	def := w.reg.lookup(msg.Task)
	if def == nil {
		w.unknown(ctx, j)
		return
	}
	j.def = def
	j.log.Debug("Task received", "retries", msg.Retries, "eta", msg.ETA, "expires", msg.Expires)
	if w.expired(ctx, j) {
		return
	}
	// Per-key limits (fairness.go).
	w.fairKey(ctx, j)
	if w.hookReceived(ctx, j) { // revoked, or held by a rate limit
		return
	}
	if msg.ETA != nil {
		if wait := time.Until(*msg.ETA); wait > 0 {
			w.holdETA(j, wait)
			return
		}
	}
	w.push(j)
}

// disallowedMessage is the human text of a ContentDisallowed FAILURE.
func disallowedMessage(err error) string {
	var cd *protocol.ContentDisallowedError
	if errors.As(err, &cd) {
		return cd.Error()
	}
	return err.Error()
}

// unknown handles a task name that is not registered: forward the message
// unchanged, or reject it and store FAILURE NotRegistered.
func (w *Worker) unknown(ctx context.Context, j *job) {
	if q := w.cfg.ForwardUnknown; q != "" {
		if err := w.broker.Publish(ctx, q, j.d.Envelope.Properties.Priority, j.d.Raw); err != nil {
			j.log.Error("forwarding an unregistered task failed; it returns after the visibility timeout",
				"err", err, "forward_queue", q)
			w.forget(j)
			return
		}
		j.log.Info("Forwarded unregistered task", "forward_queue", q)
		w.settle(ctx, j, nil)
		return
	}
	w.hookReject(RejectUnregistered)
	j.log.Error(fmt.Sprintf("Received unregistered task of type '%s'.", j.msg.Task),
		"hint", "the message has been rejected; consume only queues whose tasks this worker implements, or use --forward-unknown")
	m := w.baseMeta(j.msg, protocol.StateFailure, notRegistered(j.msg.Task).Info())
	w.settle(ctx, j, m)
}

// expired stores REVOKED expired and settles j when its expires is past.
func (w *Worker) expired(ctx context.Context, j *job) bool {
	if j.msg.Expires == nil || !time.Now().After(*j.msg.Expires) {
		return false
	}
	j.log.Info(fmt.Sprintf("Discarding revoked task: %s[%s]", j.msg.Task, j.msg.ID), "reason", "expired")
	var m *protocol.ResultMeta
	if !w.ignoreResult(j) {
		m = w.baseMeta(j.msg, protocol.StateRevoked, revokedError("expired").Info())
	}
	w.settle(ctx, j, m)
	w.canvasRevoked(ctx, j, revokedError("expired").Info()) // canvas.go
	return true
}

// ignoreResult is the effective ignore_result of main-process records
// (spec §3.7): the header when set, else the task's option.
func (w *Worker) ignoreResult(j *job) bool {
	return j.msg.IgnoreResult || (j.def != nil && j.def.opts.IgnoreResult)
}

// holdETA keeps j unacked in a timer, raising the prefetch window by one.
func (w *Worker) holdETA(j *job, wait time.Duration) {
	j.log.Info("Task scheduled for its ETA", "eta", j.msg.ETA, "in", wait.Round(time.Millisecond))
	w.mu.Lock()
	defer w.mu.Unlock()
	j.state = stateETA
	w.etaHeld++
	select { // the window grew
	case w.windowCh <- struct{}{}:
	default:
	}
	j.timer = time.AfterFunc(wait, func() {
		// Leaving the ETA state and joining the ready queue happen under
		// w.mu with a state check, so a concurrent shutdown restores the
		// job exactly once. Expiry and revocation are re-checked by
		// execute; rate limits apply from the ETA on.
		w.mu.Lock()
		if j.state != stateETA {
			w.mu.Unlock()
			return
		}
		w.etaHeld--
		j.state = stateQueued
		w.mu.Unlock()
		if w.holdForRate(j) {
			return
		}
		w.mu.Lock()
		if j.state != stateQueued || w.stopping {
			w.mu.Unlock()
			return // restored by the shutdown
		}
		w.ready = append(w.ready, j)
		w.mu.Unlock()
		w.signalReady()
	})
}

// settle stores meta (if any) and acknowledges (rejects) the delivery.
func (w *Worker) settle(ctx context.Context, j *job, meta *protocol.ResultMeta) {
	defer w.forget(j)
	defer w.hookSettle(j, meta)
	if meta != nil && meta.TaskID != "" {
		if err := w.storeAndAck(ctx, j, meta); err != nil {
			j.log.Error("storing the result failed; the message stays unacked and returns after the visibility timeout", "err", err, "state", meta.Status)
		}
		return
	}
	if err := w.broker.Ack(ctx, j.d); err != nil {
		j.log.Error("ack failed", "err", err)
	}
}

// storeAndAck stores meta then acks j's delivery (one round trip when the
// backend supports it). A failed store leaves the message unacked.
func (w *Worker) storeAndAck(ctx context.Context, j *job, meta *protocol.ResultMeta) error {
	if j.acked {
		return w.store(ctx, meta)
	}
	if w.storeAcker != nil {
		var err error
		for attempt := range storeAttempts {
			if attempt > 0 {
				time.Sleep(w.storePause(attempt))
			}
			if err = w.storeAcker.StoreAndAck(ctx, meta, j.d); err == nil {
				j.acked = true
				return nil
			}
		}
		return err
	}
	if err := w.store(ctx, meta); err != nil {
		return err
	}
	if err := w.broker.Ack(ctx, j.d); err != nil {
		j.log.Error("ack failed; the task may run again after the visibility timeout", "err", err)
	}
	j.acked = true
	return nil
}

// storeAttempts bounds the writes of one result; the pauses between them
// grow exponentially (storePause, autoretry.go): ~11 s in all by default,
// enough to ride out a Redis restart.
const storeAttempts = 8

// store writes meta, retrying transient failures.
func (w *Worker) store(ctx context.Context, meta *protocol.ResultMeta) error {
	var err error
	for attempt := range storeAttempts {
		if attempt > 0 {
			time.Sleep(w.storePause(attempt))
		}
		if err = w.backend.Store(ctx, meta); err == nil {
			return nil
		}
	}
	return err
}

// --- result metas -------------------------------------------------------

func isReady(state string) bool {
	return state == protocol.StateSuccess || state == protocol.StateFailure || state == protocol.StateRevoked
}

// baseMeta builds the meta of state for msg.
func (w *Worker) baseMeta(msg *protocol.TaskMessage, state string, result any) *protocol.ResultMeta {
	m := &protocol.ResultMeta{
		Status:   state,
		Result:   result,
		Children: []any{},
		TaskID:   msg.ID,
		GroupID:  msg.Group,
		ParentID: msg.ParentID,
	}
	if isReady(state) {
		now := time.Now().UTC()
		m.DateDone = &now
	}
	return m
}

// meta builds the meta of a state written while t runs.
func (w *Worker) meta(t *Task, state string, result any) *protocol.ResultMeta {
	return w.baseMeta(t.Message, state, result)
}

// failureMeta is a FAILURE for a message that could not be decoded; nil
// when there is no id.
func (w *Worker) failureMeta(id string, pe *PyError) *protocol.ResultMeta {
	if id == "" {
		return nil
	}
	now := time.Now().UTC()
	return &protocol.ResultMeta{
		Status:   protocol.StateFailure,
		Result:   pe.Info(),
		Children: []any{},
		TaskID:   id,
		DateDone: &now,
	}
}
