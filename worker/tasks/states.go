package tasks

// The states and messages the task reports, in order (spec processing.md
// §7.2/§7.4). The FastAPI status endpoint shows Status and Progress; the
// extra keys are for UIs that want them and are ignored by the endpoint.
const (
	StateStarted  = "STARTED"
	StateProgress = "PROGRESS"

	StatusStarting   = "Starting file processing"     // STARTED, 0
	StatusLoading    = "Loading file metadata"        // PROGRESS, 10
	StatusDetecting  = "Detecting file format"        // PROGRESS, 20
	StatusConverting = "Converting to unified format" // PROGRESS, 40..70
	StatusSaving     = "Saving processed data"        // PROGRESS, 70
	StatusComplete   = "Processing complete"          // PROGRESS, 100

	progressConvertFrom = 40
	progressConvertTo   = 70
)

// Progress is the meta of a STARTED/PROGRESS state: always a JSON object
// with "status" and "progress" (the endpoint calls .get on it).
type Progress struct {
	Status   string `json:"status"`
	Progress int    `json:"progress"`
	// BytesDone/BytesTotal: plaintext bytes of the raw file converted so
	// far / in total (fine-grained conversion updates only).
	BytesDone  *int64 `json:"bytes_done,omitempty"`
	BytesTotal *int64 `json:"bytes_total,omitempty"`
	// ETASeconds estimates the remaining conversion time.
	ETASeconds *float64 `json:"eta_seconds,omitempty"`
}

// Result is the task's SUCCESS value, in the Python task's key order.
type Result struct {
	Success         bool   `json:"success"`
	ProcessedFileID int64  `json:"processed_file_id"`
	OmicsType       string `json:"omics_type"`
	RecordCount     int64  `json:"record_count"`
}
