package protocol

// Delivery is one message popped from a task queue. From Fetch until Ack,
// Reject or Restore the broker holds it in its unacked records, so a crash
// never loses it.
type Delivery struct {
	// Queue is the logical queue name (no priority suffix, no key prefix).
	Queue string
	// Tag is properties.delivery_tag (invented by the broker when missing).
	Tag string
	// Raw is the envelope exactly as it was popped.
	Raw []byte
	// Envelope is Raw decoded; nil when Raw is not a valid envelope (the
	// worker then rejects the delivery).
	Envelope *Envelope
	// DecodeErr explains why Envelope is nil.
	DecodeErr error
}
