package omicsapp

import (
	"context"
	"encoding/json"
	"testing"
)

// TestStatusOf: the status endpoint's branches (spec processing.md §8.1)
// for each stored meta, compared as the JSON the endpoint returns.
func TestStatusOf(t *testing.T) {
	for _, c := range []struct {
		name, meta, want string
	}{
		{"no meta", "", `{"state":"PENDING","status":"Task is waiting to be processed","progress":0}`},
		{"started without info", `{"status":"STARTED","result":null}`,
			`{"state":"STARTED","status":"Processing...","progress":0}`},
		{"progress", `{"status":"PROGRESS","result":{"status":"Converting","progress":40,"bytes_done":7}}`,
			`{"state":"PROGRESS","status":"Converting","progress":40}`},
		{"success", `{"status":"SUCCESS","result":{"success":true,"record_count":2}}`,
			`{"state":"SUCCESS","status":"Processing complete","progress":100,"result":{"success":true,"record_count":2}}`},
		{"failure", `{"status":"FAILURE","result":{"exc_type":"ValueError","exc_message":["File 9 not found"],"exc_module":"builtins"}}`,
			`{"state":"FAILURE","status":"Processing failed","progress":0,"error":"File 9 not found"}`},
		{"retry", `{"status":"RETRY","result":{"exc_type":"Retry","exc_message":["Retry in 2s"],"exc_module":"celery.exceptions"}}`,
			`{"state":"RETRY","status":"Retry in 2s"}`},
		{"revoked, two arguments", `{"status":"REVOKED","result":{"exc_type":"TaskRevokedError","exc_message":["a","b"],"exc_module":"celery.exceptions"}}`,
			`{"state":"REVOKED","status":"{\"exc_type\":\"TaskRevokedError\",\"exc_message\":[\"a\",\"b\"],\"exc_module\":\"celery.exceptions\"}"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var raw []byte
			if c.meta != "" {
				raw = []byte(c.meta)
			}
			r, err := StatusOf(raw)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(r)
			if string(got) != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
	if _, err := StatusOf([]byte("{")); err == nil {
		t.Error("a broken meta gave no error")
	}
}

// TestExcStr: str() of a one-argument exception is the argument; anything
// else is shown as the stored JSON.
func TestExcStr(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"exc_type":"ValueError","exc_message":["boom"],"exc_module":"builtins"}`, "boom"},
		{`{"exc_type":"ValueError","exc_message":[3],"exc_module":"builtins"}`, `{"exc_type":"ValueError","exc_message":[3],"exc_module":"builtins"}`},
		{`{"exc_type":"ValueError","exc_message":[],"exc_module":"builtins"}`, `{"exc_type":"ValueError","exc_message":[],"exc_module":"builtins"}`},
		{`"plain"`, `"plain"`},
		{`null`, `null`},
	} {
		if got := ExcStr(json.RawMessage(c.in)); got != c.want {
			t.Errorf("ExcStr(%s) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestContentTypeOf(t *testing.T) {
	for name, want := range map[string]string{
		"a.csv": "text/csv", "A.VCF": "text/plain", "x.fa": "text/plain", "s.mzML": "application/xml",
		"v.vcf.gz": "application/gzip", "blob.bin": "application/octet-stream", "noext": "application/octet-stream",
	} {
		if got := contentTypeOf(name); got != want {
			t.Errorf("contentTypeOf(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestExpectedOutcome: what a plan says the worker must report, for a
// convertible and a not convertible file.
func TestExpectedOutcome(t *testing.T) {
	ctx := context.Background()
	vcf := "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t100\trs1\tA\tT\t50\tPASS\tDP=10\nchr2\t200\t.\tG\tC\t.\t.\t.\n"
	ex, err := expectedOutcome(ctx, "v.vcf", []byte(vcf), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !ex.Success || ex.OmicsType != "genomics" || ex.RecordCount == nil || *ex.RecordCount != 2 {
		t.Errorf("valid VCF: %+v", ex)
	}
	bad := "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\tabc\t.\tA\tT\t.\t.\t.\n"
	ex, err = expectedOutcome(ctx, "bad.vcf", []byte(bad), 1)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Success || ex.RecordCount != nil || len(ex.Error) <= len("Processing failed: ") || ex.Error[:19] != "Processing failed: " {
		t.Errorf("bad VCF: %+v", ex)
	}
}
