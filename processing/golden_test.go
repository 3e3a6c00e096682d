package processing_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/processing"
	_ "github.com/omicsomics/omics-worker/processing/all"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// Fixed timestamps, the same as testdata/oracle/oracle.py uses.
var (
	created = time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)
	updated = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
)

type goldenCase struct {
	input     string // file under testdata/inputs
	sampleID  string
	organism  string
	refGenome string
	project   int64
	// oracle: the golden file is byte-identical to the Python oracle's
	// output. false: a deliberate difference (see testdata/README.md).
	oracle bool
}

var goldenCases = []goldenCase{
	// Inline samples of the Omicsomics scripts (spec §9).
	{input: "sample_transcriptomics.csv", oracle: true},
	{input: "test_variants.vcf", oracle: true},
	{input: "test_counts.tsv", project: 7, oracle: true},
	{input: "test_proteins.csv", oracle: true},
	{input: "test_proteomics.mgf", oracle: false},  // MGF converted (Python: unsupported)
	{input: "test_metabolomics.csv", oracle: true}, // sniffed as proteomics, like Python
	{input: "test_sample.mzML", sampleID: "test_002", organism: "Homo sapiens", oracle: true},
	{input: "test_sample.mgf", oracle: false},
	{input: "test_sample.raw", oracle: true},
	{input: "sample.bed", oracle: true},
	{input: "sample_bed6.bed", oracle: true},
	{input: "test.csv", oracle: true},
	// Hand-written.
	{input: "quirks_transcriptomics.csv", sampleID: "Q", organism: "Homo sapiens", refGenome: "GRCh38", oracle: true},
	{input: "numbers.tsv", oracle: true},
	{input: "proteins_id.csv", oracle: true},
	{input: "proteins_idcol.csv", oracle: true},
	{input: "proteins_noid.csv", oracle: true},
	{input: "metabolites.csv", oracle: true},
	{input: "variants_sniffed_genomics.csv", oracle: true},
	{input: "header_only.csv", oracle: true},
	{input: "plain.vcf", oracle: true},
	{input: "gz_variants.vcf.gz", oracle: true},
	{input: "UPPER.VCF.GZ", oracle: false},  // Python: UTF-8 error on the gzip bytes
	{input: "counts.tsv.gz", oracle: false}, // Python: transcriptomics/unknown, unsupported
	{input: "notes.dat", oracle: true},
	{input: "reads.fastq", oracle: false}, // Python: Unsupported source format: fastq
	{input: "seqs.fa", oracle: false},     // Python: Unsupported source format: fasta
	// Errors: processing_info.error differs in wording from Python.
	{input: "empty.csv", oracle: false}, // Python: converted, 0 records
	{input: "long_row.csv", oracle: false},
	{input: "truncated.vcf.gz", oracle: false},
	{input: "bad_utf8.tsv", oracle: false},
	{input: "binary.vcf", oracle: false},
}

func (c goldenCase) options() processing.Options {
	calls := 0
	return processing.Options{
		Name: c.input, SampleID: c.sampleID, Organism: c.organism, ReferenceGenome: c.refGenome,
		ProjectID: c.project, WriteFallback: true,
		Now: func() time.Time {
			calls++
			if calls == 1 {
				return created
			}
			return updated
		},
	}
}

func runCase(t *testing.T, c goldenCase) (doc, info []byte, res *processing.Result) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "inputs", c.input))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	opts := c.options()
	opts.Size = st.Size()
	var out bytes.Buffer
	res, err = processing.Convert(context.Background(), f, &out, opts)
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	if res.Converted {
		// Streaming gives the same bytes.
		f.Seek(0, 0)
		opts := c.options()
		opts.Size = st.Size()
		opts.Stream = true
		var streamed bytes.Buffer
		if _, err := processing.Convert(context.Background(), f, &streamed, opts); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(streamed.Bytes(), out.Bytes()) {
			t.Errorf("Stream output differs:\n%s", streamed.Bytes())
		}
	}
	info, err = processing.AppendJSON(nil, res.ProcessingInfo, 0)
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), info, res
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.input, func(t *testing.T) {
			doc, info, res := runCase(t, c)
			if res.BytesOut != int64(len(doc)) {
				t.Errorf("BytesOut %d, wrote %d", res.BytesOut, len(doc))
			}
			checkGolden(t, filepath.Join("testdata", "golden", c.input+".json"), doc)
			checkGolden(t, filepath.Join("testdata", "golden", c.input+".info.json"), info)
		})
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden:\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// TestOracle compares the golden files with the Python converters
// themselves. It needs the uncommitted oracle (see testdata/README.md) and
// runs only with OMICS_ORACLE=1. Cases marked oracle:true must be
// byte-identical; the others are deliberate differences and must differ.
func TestOracle(t *testing.T) {
	if os.Getenv("OMICS_ORACLE") != "1" {
		t.Skip("set OMICS_ORACLE=1 (and install the oracle, testdata/README.md) to compare with the Python converters")
	}
	for _, c := range goldenCases {
		t.Run(c.input, func(t *testing.T) {
			infoPath := filepath.Join(t.TempDir(), "info.json")
			args := []string{filepath.Join("testdata", "oracle", "oracle.py"), filepath.Join("testdata", "inputs", c.input), "--info", infoPath,
				"--project-id", itoa(c.project)}
			if c.sampleID != "" {
				args = append(args, "--sample-id", c.sampleID)
			}
			if c.organism != "" {
				args = append(args, "--organism", c.organism)
			}
			if c.refGenome != "" {
				args = append(args, "--reference-genome", c.refGenome)
			}
			cmd := exec.Command("python3", args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			pyDoc, err := cmd.Output()
			if err != nil {
				t.Fatalf("oracle: %v\n%s", err, stderr.Bytes())
			}
			pyInfo, err := os.ReadFile(infoPath)
			if err != nil {
				t.Fatal(err)
			}
			goDoc, _ := os.ReadFile(filepath.Join("testdata", "golden", c.input+".json"))
			goInfo, _ := os.ReadFile(filepath.Join("testdata", "golden", c.input+".info.json"))
			same := bytes.Equal(pyDoc, goDoc) && bytes.Equal(pyInfo, goInfo)
			if c.oracle && !same {
				t.Errorf("golden differs from Python:\n--- python doc ---\n%s\n--- python info ---\n%s", pyDoc, pyInfo)
			}
			if !c.oracle && same {
				t.Errorf("marked as a deliberate difference but identical to Python")
			}
			if !c.oracle && !same {
				t.Logf("deliberate difference; python info:\n%s", pyInfo)
			}
		})
	}
}

func itoa(n int64) string {
	var b []byte
	b = append(b, []byte(time.Duration(0).String())[:0]...)
	return string(appendInt(b, n))
}

func appendInt(b []byte, n int64) []byte {
	if n < 0 {
		b = append(b, '-')
		n = -n
	}
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}
