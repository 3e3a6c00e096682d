package processing

import (
	"bytes"
	"compress/gzip"
	"testing"
)

// TestDetectSpecTable covers every row of spec §2.4 (plus our extensions,
// marked EXT).
func TestDetectSpecTable(t *testing.T) {
	vcf := []byte("##fileformat=VCFv4.2\n#CHROM\tPOS\n")
	tests := []struct {
		name   string
		sample string
		omics  OmicsType
		format string
	}{
		{"a.vcf", "x", Genomics, "vcf"},
		{"A.VCF", "x", Genomics, "vcf"},
		{"a.vcf.gz", "\x1f\x8b", Genomics, "vcf"},
		{"a.bed", "chr1\t1\t2", Genomics, "bed"},
		{"a.gtf", "x", Genomics, "gtf"},
		{"a.gff", "x", Genomics, "gff"},
		{"a.gff3", "x", Genomics, "gff"},
		{"a.fasta", ">s", Genomics, "fasta"},
		{"a.fa", ">s", Genomics, "fasta"},
		{"a.fastq", "@r", Genomics, "fastq"},
		{"a.fq", "@r", Genomics, "fastq"},
		{"a.tsv", "g\ts", Transcriptomics, "tsv"},
		{"proteinGroups.txt", "Protein IDs\tmz", Transcriptomics, "tsv"},
		{"a.csv", "", Transcriptomics, "csv"}, // empty csv
		{"a.csv", "gene_id,s1\nG,1\n", Transcriptomics, "csv"},
		{"a.csv", "protein_id,s1\n", Proteomics, "csv"},
		{"a.csv", "gene,s1\nMZB1,2\n", Proteomics, "csv"}, // QUIRK: mz inside a gene symbol
		{"a.csv", "metabolite_id,mz,intensity\n", Proteomics, "csv"},
		{"a.csv", "metabolite,s1\n", Metabolomics, "csv"},
		{"a.csv", "name,HMDB\n", Metabolomics, "csv"},
		{"a.csv", "chrom,position\n", Genomics, "csv"},
		{"a.csv", "gene,preferred\n", Genomics, "csv"}, // QUIRK: ref in "preferred"
		{"a.CSV", "x,y\n", Transcriptomics, "csv"},
		{"a.csv", "pro\xfftein_id\n", Proteomics, "csv"}, // invalid bytes dropped, letters join
		{"a.mzml", "<x/>", Proteomics, "mzml"},
		{"a.mzML", "<x/>", Proteomics, "mzml"},
		{"a.mzxml", "<x/>", Proteomics, "mzxml"},
		{"a.counts", "g\ts\n", Transcriptomics, "unknown"},
		{"a.counts", string(vcf), Transcriptomics, "vcf"},
		{"a.counts", ">x", Transcriptomics, "fasta"},
		{"a.counts", "@x", Transcriptomics, "fastq"},
		{"a.xlsx", "PK\x03\x04", Transcriptomics, "unknown"},
		{"a.xls", "x", Transcriptomics, "unknown"},
		{"a.mgf", "BEGIN IONS\n", Proteomics, "mgf"}, // EXT: Python format "unknown"
		{"a.raw", "MOCK", Proteomics, "unknown"},
		{"a.mzdata", "<x/>", Metabolomics, "unknown"},
		{"a.cdf", "CDF\x01", Metabolomics, "unknown"},
		{"a.netcdf", "x", Metabolomics, "unknown"},
		{"noext", string(vcf), Genomics, "vcf"},
		{"noext", ">s\nACGT", Genomics, "fasta"},
		{"noext", "@r\nACGT", Genomics, "fastq"},
		{"noext", "\ufeff>s\nACGT", Genomics, "fasta"},   // EXT: BOM skipped
		{"noext", "<?xml?><mzML>", Proteomics, "mzml"},   // EXT: Python format "unknown"
		{"noext", "<?xml?><mzXML>", Proteomics, "mzxml"}, // EXT
		{"noext", "mzML mentioned", Proteomics, "unknown"},
		{"noext", "COM=x\nCHARGE=2+\n\nBEGIN IONS\n", Proteomics, "mgf"}, // EXT
		{"noext", "hello", Transcriptomics, "unknown"},
		{"noext", "", Transcriptomics, "unknown"},
		{"x.bed.gz", "\x1f\x8b", Transcriptomics, "unknown"}, // Convert strips .gz first
		{"dir.vcf/file", "x", Transcriptomics, "unknown"},
	}
	for _, tc := range tests {
		o, f := Detect(tc.name, []byte(tc.sample))
		if o != tc.omics || f != tc.format {
			t.Errorf("Detect(%q, %q) = %s/%s, want %s/%s", tc.name, tc.sample, o, f, tc.omics, tc.format)
		}
	}
}

func TestPyStem(t *testing.T) {
	for in, want := range map[string]string{
		"a.tar.gz": "a.tar", "v.vcf.gz": "v.vcf", ".bashrc": ".bashrc", "x.": "x.", "noext": "noext",
		"dir/a.csv": "a", "dir/": "dir", "": "", "a/.": "a", "..": "..", "a..b": "a.",
	} {
		if got := PyStem(in); got != want {
			t.Errorf("PyStem(%q) = %q want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"a.tar.gz": ".gz", ".bashrc": "", "x.": "", "X.VCF.GZ": ".GZ"} {
		if got := PySuffix(in); got != want {
			t.Errorf("PySuffix(%q) = %q want %q", in, got, want)
		}
	}
}

func TestChooseConverter(t *testing.T) {
	tests := []struct {
		omics   OmicsType
		format  string
		wantErr string
	}{
		{Genomics, "csv", ""},
		{Transcriptomics, "fastq", "Unsupported source format: fastq: unsupported format for conversion"},
		{Transcriptomics, "unknown", ""},
		{Epigenomics, "bed", "No converter registered for OmicsType.EPIGENOMICS"},
		{SingleCell, "csv", "No converter registered for OmicsType.SINGLE_CELL"},
		{"bogus", "csv", `"bogus" is not a valid omics type`},
	}
	for _, tc := range tests {
		c, err := chooseConverter(tc.omics, tc.format)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.wantErr || c != nil {
			t.Errorf("chooseConverter(%s, %s) = %v, %q; want nil, %q", tc.omics, tc.format, c, got, tc.wantErr)
		}
	}
}

func FuzzDetect(f *testing.F) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("##fileformat=VCFv4.2\n"))
	zw.Close()
	for _, s := range []string{"##fileformat=VCF", ">x", "@x", "mz,intensity", "BEGIN IONS", "\ufeff>", "<mzML", gz.String(), "POS\u0130TION,ΟΔΟΣ", "\ufeffBEGIN IONS", "\xff\xfeg\x00"} {
		f.Add("file.csv", []byte(s))
		f.Add("noext", []byte(s))
	}
	f.Fuzz(func(t *testing.T, name string, sample []byte) {
		o, fm := Detect(name, sample)
		if !ValidOmicsType(o) || fm == "" {
			t.Fatalf("Detect(%q) = %q/%q", name, o, fm)
		}
		_ = PyStem(name)
	})
}

// TestDetectPythonLower: CSV sniffing lower-cases like Python's str.lower()
// (issue 9 #15): "POSİTION" is "posi̇tion" for Python, which contains no
// genomics keyword, while Go's ToLower made it "position".
func TestDetectPythonLower(t *testing.T) {
	tests := []struct {
		name, sample string
		omics        OmicsType
	}{
		{"x.csv", "POS\u0130TION,value\n1,2\n", Transcriptomics},
		{"x.csv", "POSITION,value\n1,2\n", Genomics},
		{"x.csv", "CHR\u0130,value\n", Genomics}, // "chri̇" still contains "chr"
		{"x.csv", "PROTE\u0130N_ID,value\n", Transcriptomics},
		{"x.csv", "MET\u0130ABOLITE\n", Transcriptomics},
		{"x.csv", "\u212aEGG_id\n", Metabolomics}, // KELVIN SIGN lower-cases to "k" in both
		{"x.CSV", "variant\n", Genomics},
	}
	for _, tc := range tests {
		if got := DetectOmicsType(tc.name, []byte(tc.sample)); got != tc.omics {
			t.Errorf("DetectOmicsType(%q, %q) = %s, want %s", tc.name, tc.sample, got, tc.omics)
		}
	}
	if got := DetectFormat("x.BED", nil); got != "bed" {
		t.Errorf("DetectFormat(x.BED) = %s", got)
	}
}
