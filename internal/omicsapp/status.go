package omicsapp

import (
	"context"
	"encoding/json"

	"github.com/omicsomics/omics-worker/protocol"
)

// ResultSource reads a task's stored result meta, nil when there is none
// (redistransport.ResultBackend does).
type ResultSource interface {
	GetRaw(ctx context.Context, taskID string) ([]byte, error)
}

// StatusResponse is the status endpoint's response, in its key order.
type StatusResponse struct {
	State    string          `json:"state"`
	Status   any             `json:"status"`
	Progress any             `json:"progress,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    *string         `json:"error,omitempty"`
}

// Status answers GET /data/task/{id}/status from the stored meta of id.
func Status(ctx context.Context, src ResultSource, id string) (*StatusResponse, error) {
	raw, err := src.GetRaw(ctx, id)
	if err != nil {
		return nil, err
	}
	return StatusOf(raw)
}

// StatusOf applies the FastAPI status endpoint's branches (spec
// processing.md §8.1) to a stored result meta; nil raw is a task not
// (yet) known, PENDING.
func StatusOf(raw []byte) (*StatusResponse, error) {
	if raw == nil {
		return &StatusResponse{State: "PENDING", Status: "Task is waiting to be processed", Progress: 0}, nil
	}
	var m struct {
		Status string          `json:"status"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	switch m.Status {
	case "STARTED", "PROGRESS":
		var info map[string]any
		_ = json.Unmarshal(m.Result, &info)
		r := &StatusResponse{State: m.Status, Status: "Processing...", Progress: 0}
		if v, ok := info["status"]; ok {
			r.Status = v
		}
		if v, ok := info["progress"]; ok {
			r.Progress = v
		}
		return r, nil
	case "SUCCESS":
		return &StatusResponse{State: m.Status, Status: "Processing complete", Progress: 100, Result: m.Result}, nil
	case "FAILURE":
		e := ExcStr(m.Result)
		return &StatusResponse{State: m.Status, Status: "Processing failed", Progress: 0, Error: &e}, nil
	}
	return &StatusResponse{State: m.Status, Status: ExcStr(m.Result)}, nil
}

// ExcStr is Python's str() of the exception a result meta's exception
// dict rebuilds, when it has one string argument; otherwise the raw JSON.
func ExcStr(raw json.RawMessage) string {
	var e protocol.ExceptionInfo
	if json.Unmarshal(raw, &e) == nil && len(e.Message) == 1 {
		if s, ok := e.Message[0].(string); ok {
			return s
		}
	}
	return string(raw)
}
