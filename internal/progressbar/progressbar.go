// Package progressbar draws a one-line progress bar on a terminal, as
// `omics-worker convert` shows for large files: bytes done, rate and ETA,
// redrawn at most every 100 ms with "\r\033[K".
package progressbar

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// IsTerminal reports whether w is a character device (a terminal).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// New returns a progress callback (processing.Options.Progress) that
// redraws the bar on w, the rate measured from start; total <= 0 shows
// only the bytes done and the rate. Clear the line with "\r\033[K" when done.
func New(w io.Writer, start time.Time) func(done, total int64) {
	var last time.Time
	return func(done, total int64) {
		now := time.Now()
		if now.Sub(last) < 100*time.Millisecond {
			return
		}
		last = now
		mb := float64(done) / 1e6
		rate := mb / now.Sub(start).Seconds()
		if total <= 0 {
			fmt.Fprintf(w, "\r\033[K%.1f MB, %.1f MB/s", mb, rate)
			return
		}
		frac := float64(done) / float64(total)
		const width = 30
		n := int(frac * width)
		eta := ""
		if rate > 0 {
			eta = fmt.Sprintf(", ETA %s", time.Duration(float64(total-done)/1e6/rate*float64(time.Second)).Round(time.Second))
		}
		fmt.Fprintf(w, "\r\033[K[%s%s] %3.0f%% %.1f/%.1f MB, %.1f MB/s%s",
			strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, mb, float64(total)/1e6, rate, eta)
	}
}
