package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/omicsomics/omics-worker/processing"
	_ "github.com/omicsomics/omics-worker/processing/all"
)

func runConvert(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the JSON to this file instead of stdout")
	sampleID := fs.String("sample-id", "", "sample id (default sample_<project-id>_<file stem>)")
	organism := fs.String("organism", "", "organism for metadata.organism")
	refGenome := fs.String("reference-genome", "", "reference genome for metadata.reference_genome")
	projectID := fs.Int64("project-id", 0, "project id used in the default sample id")
	omics := fs.String("omics-type", "", "force the omics type (genomics, transcriptomics, proteomics, metabolomics, ...)")
	format := fs.String("format", "", "force the source format (vcf, bed, gtf, gff, csv, tsv, fasta, fastq, mzml, mzxml, mgf)")
	name := fs.String("name", "", "original file name for detection (default: FILE's name)")
	fallback := fs.Bool("fallback", false, "write the Python raw fallback document when the file cannot be converted")
	quiet := fs.Bool("q", false, "no summary and no progress bar on stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: omics-worker convert FILE [-o OUT.json] [--sample-id ID] [--organism O] [--reference-genome G] [--project-id N]")
		fs.PrintDefaults()
	}
	// Accept flags after FILE too.
	var files []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) != 1 {
		fs.Usage()
		return 2
	}
	path := files[0]
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
	fname := *name
	if fname == "" {
		fname = st.Name()
	}

	var w io.Writer = stdout
	var output *convertOutput
	if *out != "" && *out != "-" {
		output, err = openConvertOutput(*out)
		if err != nil {
			fmt.Fprintf(stderr, "omics-worker convert: %v\n", err)
			return 1
		}
		w = output.f
	}

	opts := processing.Options{
		Name: fname, Size: st.Size(), SampleID: *sampleID, ProjectID: *projectID,
		Organism: *organism, ReferenceGenome: *refGenome,
		OmicsType: processing.OmicsType(*omics), Format: *format, WriteFallback: *fallback,
		// Streamed only into the temporary file, which a failure
		// removes, so a partial document never survives; a device or
		// FIFO gets the whole document or nothing, like stdout.
		Stream: !*fallback && output != nil && output.streamable(),
	}
	bar := !*quiet && isTerminal(stderr) && st.Size() >= 8<<20
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
		keep := err == nil && res != nil && (res.Converted || *fallback)
		if ferr := output.finish(keep); ferr != nil && err == nil {
			err = ferr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "omics-worker convert: %s: %v\n", path, err)
		return 1
	}
	if !*quiet {
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
