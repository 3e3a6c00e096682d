package protocol

import "time"

// Celery task states (spec §3.2).
const (
	StatePending  = "PENDING"
	StateReceived = "RECEIVED"
	StateStarted  = "STARTED"
	StateSuccess  = "SUCCESS"
	StateFailure  = "FAILURE"
	StateRevoked  = "REVOKED"
	StateRejected = "REJECTED"
	StateRetry    = "RETRY"
	StateIgnored  = "IGNORED"
)

// ExceptionInfo is the Python-decodable exception dict (spec §3.5).
type ExceptionInfo struct {
	Type    string `json:"exc_type"`
	Message []any  `json:"exc_message"`
	Module  string `json:"exc_module"`
}

// ResultMeta is the value stored at celery-task-meta-<id> (spec §3.2).
type ResultMeta struct {
	Status    string
	Result    any // JSON value, or *ExceptionInfo for exception states
	Traceback *string
	Children  []any
	DateDone  *time.Time // set for READY states
	GroupID   string
	ParentID  string
	TaskID    string
}
