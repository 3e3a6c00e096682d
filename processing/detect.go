package processing

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
)

// SampleSize is how many bytes of the (decompressed) input detection reads,
// as the Python FileProcessor does.
const SampleSize = 10000

// extOmics is the Python EXTENSION_TO_OMICS table, in its order.
var extOmics = []struct {
	ext   string
	omics OmicsType
}{
	{".vcf", Genomics}, {".vcf.gz", Genomics}, {".bed", Genomics}, {".gtf", Genomics},
	{".gff", Genomics}, {".gff3", Genomics}, {".fasta", Genomics}, {".fa", Genomics},
	{".fastq", Genomics}, {".fq", Genomics},
	{".counts", Transcriptomics}, {".tsv", Transcriptomics}, {".txt", Transcriptomics},
	{".mzml", Proteomics}, {".mzxml", Proteomics}, {".mgf", Proteomics}, {".raw", Proteomics},
	{".mzdata", Metabolomics}, {".cdf", Metabolomics}, {".netcdf", Metabolomics},
	{".csv", Transcriptomics}, {".xlsx", Transcriptomics}, {".xls", Transcriptomics},
}

var (
	protKeywords = []string{"mz", "protein_id", "peptide", "charge", "intensity"}
	metKeywords  = []string{"metabolite", "compound", "hmdb", "kegg"}
	genKeywords  = []string{"chr", "chrom", "position", "variant", "ref", "alt"}
)

// pyLower is Python str.lower() (see pyfmt.PyLower: Go's ToLower maps
// U+0130 to a plain "i", which would match keywords Python does not).
func pyLower(s string) string { return pyfmt.PyLower(s) }

// decodeIgnore is bytes.decode("utf-8", errors="ignore"): invalid bytes
// are dropped (not replaced), so letters around them join.
func decodeIgnore(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			// Python's decoder drops the maximal invalid prefix; dropping
			// byte by byte gives the same result for ASCII keywords.
			b = b[1:]
			continue
		}
		sb.Write(b[:n])
		b = b[n:]
	}
	return sb.String()
}

// DetectOmicsType reproduces FileProcessor.detect_omics_type: CSV content
// sniffing, then the extension table, then content markers, then
// transcriptomics. name is the original file name; sample is the first
// SampleSize bytes of the content. Extension over the Python code: a
// leading UTF-8 BOM does not defeat the ">"/"@" checks.
func DetectOmicsType(name string, sample []byte) OmicsType {
	lower := pyLower(name)
	if strings.HasSuffix(lower, ".csv") && len(sample) > 0 {
		s := sample
		if len(s) > 2000 {
			s = s[:2000]
		}
		text := pyLower(decodeIgnore(s))
		switch {
		case containsAny(text, protKeywords):
			return Proteomics
		case containsAny(text, metKeywords):
			return Metabolomics
		case containsAny(text, genKeywords):
			return Genomics
		default:
			return Transcriptomics
		}
	}
	for _, e := range extOmics {
		if strings.HasSuffix(lower, e.ext) {
			return e.omics
		}
	}
	if len(sample) > 0 {
		head := first(sample, 1000)
		body := bytes.TrimPrefix(sample, bom)
		switch {
		case bytes.Contains(head, []byte("##fileformat=VCF")):
			return Genomics
		case len(body) > 0 && (body[0] == '>' || body[0] == '@'):
			return Genomics
		case bytes.Contains(head, []byte("mzML")) || bytes.Contains(head, []byte("mzXML")):
			return Proteomics
		case isMGF(body):
			return Proteomics
		}
	}
	return Transcriptomics
}

var bom = []byte("\ufeff")

func first(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func containsAny(s string, keys []string) bool {
	for _, k := range keys {
		if strings.Contains(s, k) {
			return true
		}
	}
	return false
}

// extFormat is the Python detect_format extension chain, plus ".mgf".
var extFormat = []struct {
	exts   []string
	format string
}{
	{[]string{".vcf.gz", ".vcf"}, "vcf"},
	{[]string{".bed"}, "bed"},
	{[]string{".gtf"}, "gtf"},
	{[]string{".gff", ".gff3"}, "gff"},
	{[]string{".csv"}, "csv"},
	{[]string{".tsv", ".txt"}, "tsv"},
	{[]string{".fasta", ".fa"}, "fasta"},
	{[]string{".fastq", ".fq"}, "fastq"},
	{[]string{".mzml"}, "mzml"},
	{[]string{".mzxml"}, "mzxml"},
	{[]string{".mgf"}, "mgf"}, // extension: Python returns "unknown"
}

// DetectFormat reproduces FileProcessor.detect_format, with these
// extensions: ".mgf" and MGF content ("BEGIN IONS" after only blank,
// comment or KEY=VALUE lines) give "mgf"; "<mzML"/"<indexedmzML" and
// "<mzXML" in the first 1000 bytes give "mzml"/"mzxml" (Python: "unknown");
// a leading UTF-8 BOM does not defeat the ">"/"@" checks.
func DetectFormat(name string, sample []byte) string {
	lower := pyLower(name)
	for _, e := range extFormat {
		for _, x := range e.exts {
			if strings.HasSuffix(lower, x) {
				return e.format
			}
		}
	}
	if len(sample) > 0 {
		head := first(sample, 1000)
		body := bytes.TrimPrefix(sample, bom)
		switch {
		case bytes.Contains(head, []byte("##fileformat=VCF")):
			return "vcf"
		case len(body) > 0 && body[0] == '>':
			return "fasta"
		case len(body) > 0 && body[0] == '@':
			return "fastq"
		case bytes.Contains(head, []byte("<mzXML")):
			return "mzxml"
		case bytes.Contains(head, []byte("<mzML")) || bytes.Contains(head, []byte("<indexedmzML")):
			return "mzml"
		case isMGF(body):
			return "mgf"
		}
	}
	return "unknown"
}

// isMGF reports whether sample starts like a Mascot Generic Format file:
// a "BEGIN IONS" line preceded only by blank lines, comment lines
// (# ; ! /) and global KEY=VALUE parameter lines.
func isMGF(sample []byte) bool {
	for len(sample) > 0 {
		i := bytes.IndexAny(sample, "\r\n")
		line := sample
		if i >= 0 {
			line = sample[:i]
			sample = sample[i+1:]
		} else {
			sample = nil
		}
		line = bytes.TrimSpace(line)
		switch {
		case len(line) == 0:
		case bytes.EqualFold(line, []byte("BEGIN IONS")):
			return true
		case strings.ContainsRune("#;!/", rune(line[0])):
		case bytes.IndexByte(line, '=') > 0:
		default:
			return false
		}
	}
	return false
}

// Detect returns DetectOmicsType and DetectFormat together.
func Detect(name string, sample []byte) (OmicsType, string) {
	return DetectOmicsType(name, sample), DetectFormat(name, sample)
}

// pySupported is SUPPORTED_FORMATS of unified_format.py as the Python
// is_supported_format compares it (lower-cased input against the entries
// as written). It decides, for a pair without a converter, between the
// "unsupported" fallback (not listed) and the error fallback
// "Unsupported source format: <fmt>" (listed, but the converter raises).
var pySupported = map[OmicsType][]string{
	Genomics:        {"vcf", "vcf.gz", "bam", "sam", "fasta", "fastq", "fastq.gz", "bed", "gff", "gtf", "gff3"},
	Transcriptomics: {"csv", "tsv", "txt", "count", "matrix", "h5", "h5ad", "fastq", "fastq.gz", "bam"},
	Proteomics:      {"mzml", "mzxml", "mgf", "csv", "tsv", "txt", "maxquant", "peptides.txt"},
	Metabolomics:    {"mzml", "mzxml", "csv", "tsv", "txt", "mzdata", "netcdf", "cdf"},
	Epigenomics:     {"bw", "wig", "bam", "csv", "tsv"},
	SingleCell:      {"h5", "h5ad", "mtx", "matrix.mtx", "csv", "tsv", "loom", "rds"},
}

func pyListed(omics OmicsType, format string) bool {
	f := pyLower(format)
	for _, s := range pySupported[omics] {
		if s == f {
			return true
		}
	}
	return false
}

// pyHasConverter reports whether the Python ConverterFactory has a class
// for omics (only four types are registered).
func pyHasConverter(omics OmicsType) bool {
	switch omics {
	case Genomics, Transcriptomics, Proteomics, Metabolomics:
		return true
	}
	return false
}

// pyEnumName is str(OmicsType.X) as Python prints it in the
// "No converter registered for OmicsType.X" message.
func pyEnumName(omics OmicsType) string {
	return "OmicsType." + strings.ToUpper(string(omics))
}

// ValidOmicsType reports whether o is one of the UnifiedData enum values.
func ValidOmicsType(o OmicsType) bool {
	switch o {
	case Genomics, Transcriptomics, Proteomics, Metabolomics, Epigenomics, SingleCell, MultiOmics:
		return true
	}
	return false
}
