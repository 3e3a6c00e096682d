package protocol

import (
	"encoding/json"
	"time"
)

// Signature is a Celery canvas signature (spec §1.4).
type Signature = map[string]any

// Embed is the third element of a protocol-v2 body (spec §1.4).
type Embed struct {
	Callbacks []Signature `json:"callbacks"`
	Errbacks  []Signature `json:"errbacks"`
	Chain     []Signature `json:"chain"`
	Chord     Signature   `json:"chord"`
}

// TaskMessage is a decoded Celery task message, protocol v1, v2 or hybrid,
// normalised to the v2 view (spec §1.3–§1.6). JSON numbers in Args/Kwargs are
// json.Number (decoded with UseNumber).
type TaskMessage struct {
	Version      int // 1 or 2 (hybrid messages report 2)
	ID           string
	Task         string
	Shadow       string
	Args         []any
	Kwargs       map[string]any
	Embed        Embed
	Retries      int
	ETA          *time.Time
	Expires      *time.Time
	ExpiresRaw   string      // the header text as sent, copied unchanged on retry
	TimeLimit    [2]*float64 // [hard, soft] as in the header
	RootID       string
	ParentID     string
	Group        string
	GroupIndex   *int
	ArgsRepr     string
	KwargsRepr   string
	Origin       string
	IgnoreResult bool
	Stamps       map[string]any
	// Headers holds every header as received (custom headers included), so
	// a retry republishes them.
	Headers map[string]json.RawMessage
}
