// The "convert" subcommand: one file to UnifiedData JSON on stdout or,
// through internal/safeout, into -o PATH. Its flags come from options.go.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/omicsomics/omics-worker/internal/safeout"
	"github.com/omicsomics/omics-worker/processing"
	_ "github.com/omicsomics/omics-worker/processing/all"
)

func runConvert(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code := parseConvertOptions(args, stderr)
	if o == nil {
		return code
	}
	path := o.file
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "omics-worker convert: %v\n", err)
		return 1
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		fmt.Fprintf(stderr, "omics-worker convert: %v\n", err)
		return 1
	}
	fname := o.name
	if fname == "" {
		fname = st.Name()
	}

	var w io.Writer = stdout
	var output *safeout.File
	if o.out != "" && o.out != "-" {
		output, err = safeout.Open(o.out)
		if err != nil {
			fmt.Fprintf(stderr, "omics-worker convert: %v\n", err)
			return 1
		}
		w = output
	}

	opts := processing.Options{
		Name: fname, Size: st.Size(), SampleID: o.sampleID, ProjectID: o.projectID,
		Organism: o.organism, ReferenceGenome: o.refGenome,
		OmicsType: processing.OmicsType(o.omics), Format: o.format, WriteFallback: o.fallback,
		// Streamed only into the temporary file, which a failure
		// removes, so a partial document never survives; a device or
		// FIFO gets the whole document or nothing, like stdout.
		Stream: !o.fallback && output != nil && output.Streamable(),
	}
	bar := !o.quiet && isTerminal(stderr) && st.Size() >= 8<<20
	start := time.Now()
	if bar {
		opts.Progress = progressBar(stderr, start)
	}
	res, err := processing.Convert(ctx, f, w, opts)
	elapsed := time.Since(start)
	if bar {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if output != nil {
		keep := err == nil && res != nil && (res.Converted || o.fallback)
		if ferr := output.Finish(keep); ferr != nil && err == nil {
			err = ferr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "omics-worker convert: %s: %v\n", path, err)
		return 1
	}
	if !o.quiet {
		mbps := 0.0
		if s := elapsed.Seconds(); s > 0 {
			mbps = float64(res.BytesIn) / 1e6 / s
		}
		status := "converted"
		if !res.Converted {
			status = "NOT converted"
		}
		fmt.Fprintf(stderr, "%s: %s, omics type %s, format %s, %d records, %d bytes in, %d bytes out, %s, %.1f MB/s\n",
			path, status, res.OmicsType, res.Format, res.Records, res.BytesIn, res.BytesOut, elapsed.Round(time.Millisecond), mbps)
	}
	if !res.Converted {
		msg := res.Reason
		if res.Err != nil {
			msg = res.Err.Error()
		}
		fmt.Fprintf(stderr, "omics-worker convert: %s: not converted: %s\n", path, msg)
		return 1
	}
	return 0
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func progressBar(w io.Writer, start time.Time) func(done, total int64) {
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
