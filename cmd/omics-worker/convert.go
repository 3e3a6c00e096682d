// The "convert" subcommand: one file to UnifiedData JSON on stdout or,
// through internal/safeout, into -o PATH. Its flags come from options.go.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/omicsomics/omics-worker/internal/progressbar"
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
		// /dev/null too: nothing of a partial document survives there.
		Stream: !o.fallback && output != nil && (output.Streamable() || isDevNull(o.out)),
	}
	bar := !o.quiet && progressbar.IsTerminal(stderr) && st.Size() >= 8<<20
	start := time.Now()
	if bar {
		opts.Progress = progressbar.New(stderr, start)
	}
	res, err := processing.Convert(ctx, f, w, opts)
	if errors.Is(err, processing.ErrHeadChanged) {
		// The head changed after it was streamed (a VCF with a late
		// ##fileformat= line): start over without streaming.
		res, err = convertAgain(ctx, f, o.out, &output, opts)
	}
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

// convertAgain discards the streamed output and converts f again into a
// fresh output without streaming.
func convertAgain(ctx context.Context, f *os.File, out string, output **safeout.File, opts processing.Options) (*processing.Result, error) {
	if err := (*output).Finish(false); err != nil {
		return nil, err
	}
	*output = nil
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	o, err := safeout.Open(out)
	if err != nil {
		return nil, err
	}
	*output = o
	opts.Stream = false
	return processing.Convert(ctx, f, o, opts)
}

// isDevNull reports whether path names the null device.
func isDevNull(path string) bool {
	a, err := os.Stat(path)
	if err != nil {
		return false
	}
	b, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(a, b)
}
