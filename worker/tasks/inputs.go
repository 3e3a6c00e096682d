package tasks

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/omicsomics/omics-worker/storage"
	"github.com/omicsomics/omics-worker/worker"
)

// rawFileID returns the raw_file_id argument. An integer no row can have
// (beyond int64, as a JSON literal such as 10**20 from Python) fails as
// a missing row would: ValueError "File N not found" with N as sent.
// Other types follow worker.Task.IntArg (bool, string, float with a
// fraction: TypeError; 5.0 is 5).
func rawFileID(t *worker.Task) (int64, error) {
	id, err := t.IntArg("raw_file_id")
	if err == nil {
		return id, nil
	}
	if v, _ := t.Arg("raw_file_id"); isIntLiteral(v) {
		return 0, worker.NewPyError("ValueError", fmt.Sprintf("File %s not found", v))
	}
	return 0, err
}

// isIntLiteral reports whether v is a JSON number written as an integer
// ("-?[0-9]+").
func isIntLiteral(v any) bool {
	n, ok := v.(json.Number)
	if !ok {
		return false
	}
	s := string(n)
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// processedSuffix ends the name of every processed row.
const processedSuffix = ".processed.json"

// processedName is the processed row's filename: "<raw name>.processed.json",
// with the raw name cut (at a character boundary) so that the whole fits
// data_files.filename; truncated reports the cut. The link between the rows
// is by id, and the full name stays on the raw row and in processing_info,
// so a shorter display name loses nothing, where a failure would refuse a
// valid file.
func processedName(raw string) (name string, truncated bool) {
	keep := storage.MaxFilename - utf8.RuneCountInString(processedSuffix)
	n := 0
	for i := range raw {
		if n == keep {
			return raw[:i] + processedSuffix, true
		}
		n++
	}
	return raw + processedSuffix, false
}
