package main

// Hostile and broken input (issue 6): a catalogue of malformed task
// messages pushed raw to Redis and consumed by the real omics-worker
// binary, and of malformed files run through processing.Convert. Each case
// names the error a client (FAILURE exc_type and str(exc)) or an operator
// (the log line, when no task id is readable) sees. Valid messages are
// interleaved with the hostile ones: every one of them must succeed, so no
// other message is affected and the worker keeps running.
//
// Redis: hostileDB (testenv.RedisDBHostile) of the shared server, one
// unique queue per run.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/internal/testenv"
	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/protocol"
)

const hostileDB = testenv.RedisDBHostile

// hostileEnvelope is a valid protocol-2 envelope of task/id with args,
// kwargs, as a mutable map.
func hostileEnvelope(task, id string, args []any, kwargs map[string]any) map[string]any {
	body, _ := json.Marshal([]any{args, kwargs, map[string]any{"callbacks": nil, "errbacks": nil, "chain": nil, "chord": nil}})
	return map[string]any{
		"body":             base64.StdEncoding.EncodeToString(body),
		"content-encoding": "utf-8",
		"content-type":     "application/json",
		"headers": map[string]any{
			"lang": "py", "task": task, "id": id, "shadow": nil, "eta": nil, "expires": nil,
			"group": nil, "group_index": nil, "retries": 0, "timelimit": []any{nil, nil},
			"root_id": id, "parent_id": nil, "argsrepr": "()", "kwargsrepr": "{}",
			"origin": "hostile@test", "ignore_result": false,
		},
		"properties": map[string]any{
			"correlation_id": id, "reply_to": "", "delivery_mode": 2,
			"delivery_info": map[string]any{"exchange": "", "routing_key": "q"},
			"priority":      0, "body_encoding": "base64", "delivery_tag": pyfmt.NewUUID4().String(),
		},
	}
}

type hostileMsg struct {
	name string
	// build returns the raw bytes pushed to the queue for task id.
	build func(id string) []byte
	// exc and text: the FAILURE's exception type and a substring of
	// str(exc). exc == "" means no result can be written (no readable id):
	// text is then a substring of the worker's log.
	exc, text string
}

func envWith(task string, args []any, kwargs map[string]any, edit func(env map[string]any)) func(string) []byte {
	return func(id string) []byte {
		env := hostileEnvelope(task, id, args, kwargs)
		if edit != nil {
			edit(env)
		}
		raw, err := json.Marshal(env)
		if err != nil {
			panic(err)
		}
		return raw
	}
}

func hdr(k string, v any) func(map[string]any) {
	return func(env map[string]any) { env["headers"].(map[string]any)[k] = v }
}

func bodyRaw(b []byte) func(map[string]any) {
	return func(env map[string]any) { env["body"] = base64.StdEncoding.EncodeToString(b) }
}

func literal(s string) func(string) []byte { return func(string) []byte { return []byte(s) } }

func hostileMessages() []hostileMsg {
	noop := func(edit func(map[string]any)) func(string) []byte { return envWith("diag.noop", nil, nil, edit) }
	const (
		invalid    = "InvalidTaskError"
		disallowed = "ContentDisallowed"
		typeErr    = "TypeError"
		logDecode  = "Can't decode message body"
		logUnknown = "Received and deleted unknown message"
	)
	return []hostileMsg{
		// Envelopes that are not kombu messages: nothing to answer, logged.
		{"not JSON", literal("hello world"), "", logDecode},
		{"empty", literal(""), "", logDecode},
		{"truncated JSON", literal(`{"body": "W1tdLCB7fSwge30d`), "", logDecode},
		{"JSON array", literal(`[1, 2, 3]`), "", logDecode},
		{"JSON string", literal(`"body"`), "", logDecode},
		{"JSON null", literal(`null`), "", logDecode},
		{"non-UTF-8 bytes", literal("\xff\xfe\x00{\"body\": 1}"), "", logDecode},
		{"no headers, no v1 body", literal(`{"body": "e30=", "content-type": "application/json", "properties": {"body_encoding": "base64", "delivery_tag": "t-nohdr"}}`), "", logUnknown},
		{"headers not a mapping", literal(`{"body": "", "headers": [1], "properties": {"delivery_tag": "t-hdrlist"}}`), "", logUnknown},
		// Readable id, refused serializer.
		{"pickle", noop(func(e map[string]any) { e["content-type"] = "application/x-python-serialize" }), disallowed, "pickle"},
		{"yaml", noop(func(e map[string]any) { e["content-type"] = "application/x-yaml" }), disallowed, "yaml"},
		{"msgpack", noop(func(e map[string]any) { e["content-type"] = "application/x-msgpack" }), disallowed, "msgpack"},
		{"unknown content type", noop(func(e map[string]any) { e["content-type"] = "application/x-foo" }), disallowed, "application/x-foo"},
		{"text/plain", noop(func(e map[string]any) { e["content-type"] = "text/plain" }), disallowed, "text/plain"},
		// Readable id, broken body.
		{"bad base64", noop(func(e map[string]any) { e["body"] = "!!!not base64!!!" }), invalid, "body is not valid base64"},
		{"base64 of non-JSON", noop(bodyRaw([]byte("not json at all"))), invalid, "body is not valid JSON"},
		{"base64 of non-UTF-8", noop(bodyRaw([]byte("\xff\xfe[[], {}, {}]"))), invalid, "body is not valid JSON"},
		{"body a JSON string", noop(bodyRaw([]byte(`"args"`))), invalid, "protocol v2 body must be an array [args, kwargs, embed]"},
		{"body of four elements", noop(bodyRaw([]byte(`[[], {}, {}, 1]`))), invalid, "protocol v2 body must have 3 elements, got 4"},
		{"body empty list", noop(bodyRaw([]byte(`[]`))), invalid, "protocol v2 body must have 3 elements, got 0"},
		{"body trailing garbage", noop(bodyRaw([]byte(`[[], {}, {}] [1]`))), invalid, "body is not valid JSON"},
		{"args nested 20000 deep", noop(bodyRaw([]byte(`[` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `, {}, {}]`))), invalid, "body is not valid JSON"},
		{"args not a list", noop(bodyRaw([]byte(`[{"a": 1}, {}, {}]`))), invalid, "args"},
		{"kwargs not a mapping", noop(bodyRaw([]byte(`[[], [1], {}]`))), invalid, "kwargs"},
		{"embed not a mapping", noop(bodyRaw([]byte(`[[], {}, 5]`))), invalid, `field "embed": must be a mapping`},
		{"unknown body encoding", noop(func(e map[string]any) { e["properties"].(map[string]any)["body_encoding"] = "rot13" }), invalid, "rot13"},
		{"body not a string", noop(func(e map[string]any) { e["body"] = 42 }), invalid, "malformed envelope: body is not a string"},
		{"unknown content-encoding", noop(func(e map[string]any) { e["content-encoding"] = "utf-16" }), invalid, `content-encoding "utf-16"`},
		// Readable id, broken headers.
		{"eta not a date", noop(hdr("eta", "yesterday")), invalid, "eta"},
		{"eta a huge number", noop(hdr("eta", 1e20)), invalid, `field "eta": bad timestamp`},
		{"eta a bool", noop(hdr("eta", true)), invalid, `field "eta"`},
		{"expires not a date", noop(hdr("expires", "never")), invalid, "expires"},
		{"retries a string", noop(hdr("retries", "abc")), invalid, "retries"},
		{"timelimit a string", noop(hdr("timelimit", "x")), invalid, "timelimit"},
		{"timelimit of strings", noop(hdr("timelimit", []any{"a", "b"})), invalid, "timelimit"},
		{"task name not a string", noop(hdr("task", 5)), invalid, "task"},
		{"parent_id a list", noop(hdr("parent_id", []any{1})), invalid, `field "parent_id": must be a string, got [1]`},
		{"id not a string (correlation_id answers)", noop(hdr("id", 5)), invalid, `field "id": must be a string, got 5`},
		// Well-formed messages the worker cannot run.
		{"unregistered task", envWith("app.tasks.nope", nil, nil, nil), "NotRegistered", "app.tasks.nope"},
		{"raw_file_id a string", envWith("app.tasks.file_tasks.process_file_async", nil, map[string]any{"raw_file_id": "abc"}, nil), typeErr, "argument 'raw_file_id' must be int, not str ('abc')"},
		{"raw_file_id missing", envWith("app.tasks.file_tasks.process_file_async", nil, map[string]any{"sample_id": "s"}, nil), typeErr, "process_file_async() missing 1 required argument: 'raw_file_id'"},
		{"raw_file_id beyond int64", envWith("app.tasks.file_tasks.process_file_async", nil, map[string]any{"raw_file_id": json.Number("100000000000000000000")}, nil), "ValueError", "File 100000000000000000000 not found"},
		{"raw_file_id a bool", envWith("app.tasks.file_tasks.process_file_async", []any{true}, nil, nil), typeErr, "argument 'raw_file_id' must be int, not bool (True)"},
		{"steps a string", envWith("diag.progress", nil, map[string]any{"steps": "abc"}, nil), typeErr, "argument 'steps' must be int, not str ('abc')"},
		{"float for int", envWith("diag.progress", nil, map[string]any{"steps": 2.5}, nil), typeErr, "must be int, not float"},
		{"bool for float", envWith("diag.sleep", nil, map[string]any{"seconds": true}, nil), typeErr, "must be a number, not bool"},
		{"list for string", envWith("diag.fail", nil, map[string]any{"message": []any{1}}, nil), typeErr, "must be str, not list"},
		{"too many positional args", envWith("diag.noop", []any{1, 2}, nil, nil), typeErr, "noop() takes 0 positional arguments but 2 were given"},
		{"unexpected keyword", envWith("diag.progress", nil, map[string]any{"stepz": 1}, nil), typeErr, "progress() got an unexpected keyword argument 'stepz'"},
		{"positional and keyword", envWith("diag.progress", []any{1}, map[string]any{"steps": 1}, nil), typeErr, "got multiple values for argument 'steps'"},
		{"value out of range", envWith("diag.progress", nil, map[string]any{"steps": -5}, nil), "ValueError", "steps must be between 0 and 1000000"},
		{"huge message", envWith("diag.echo", []any{strings.Repeat("x", 100_000)}, nil, nil), invalid, "exceeds the worker's limit of 65536 bytes"},
		{"expired", noop(hdr("expires", "2001-01-01T00:00:00+00:00")), "TaskRevokedError", "expired"},
		// Issue 9 #10: nesting past the limit (1000, Redis cjson's), id readable.
		{"envelope nested 10001 deep", deepEnvelope(10_001), invalid, "message nested too deeply (limit 1000)"},
		{"envelope nested 1001 deep", deepEnvelope(1_001), invalid, "message nested too deeply (limit 1000)"},
		{"body nested 1001 deep", noop(bodyRaw([]byte(`[` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `, {}, {}]`))), invalid, "message nested too deeply (limit 1000): body"},
		{"v1 body nested 5000 deep, id in the body", noop(v1DeepBody(5000)), invalid, "message nested too deeply (limit 1000): body"},
		// Issue 9 #11: kombu decodes a JSON body with .decode('utf-8') and refuses it.
		{"invalid UTF-8 in an args string", noop(bodyRaw([]byte("[[\"caf\xe9\"], {}, {}]"))), invalid, "invalid UTF-8 at byte 6 (0xe9)"},
		{"invalid UTF-8 in a kwargs key", noop(bodyRaw([]byte("[[], {\"k\xc3\": 1}, {}]"))), invalid, "invalid UTF-8 at byte 8 (0xc3)"},
		{"UTF-8-encoded surrogate in a string", noop(bodyRaw([]byte("[[\"\xed\xa0\x80\"], {}, {}]"))), invalid, "invalid UTF-8 at byte 3 (0xed)"},
	}
}

// deepEnvelope is a valid diag.noop envelope with an extra top-level key
// nesting depth-1 arrays (the top-level object is the first level).
func deepEnvelope(depth int) func(string) []byte {
	return func(id string) []byte {
		raw := envWith("diag.noop", nil, nil, nil)(id)
		return append([]byte(`{"x": `+strings.Repeat("[", depth-1)+strings.Repeat("]", depth-1)+`, `), raw[1:]...)
	}
}

// v1DeepBody makes a protocol-1 message (no task header; id and task in
// the body) whose args nest depth levels.
func v1DeepBody(depth int) func(map[string]any) {
	return func(e map[string]any) {
		h := e["headers"].(map[string]any)
		id := h["id"].(string)
		e["headers"] = map[string]any{}
		body := `{"task": "diag.noop", "id": "` + id + `", "args": ` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `, "kwargs": {}}`
		e["body"] = base64.StdEncoding.EncodeToString([]byte(body))
	}
}

// TestHostileMessages pushes the catalogue (with a valid diag.noop after
// each hostile message) to a queue the real worker consumes, then checks
// every FAILURE, every log line, and that all valid messages succeeded.
func TestHostileMessages(t *testing.T) {
	requireInterop(t)
	queue := fmt.Sprintf("hostile_%d_%d", os.Getpid(), time.Now().UnixNano())
	c, err := redigo.Dial("tcp", redisAddr, redigo.DialDatabase(hostileDB))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Cleanup(func() { _, _ = c.Do("DEL", queue, "_kombu.binding."+queue) })

	cases := hostileMessages()
	if len(cases) < 40 {
		t.Fatalf("catalogue has %d messages, want at least 40", len(cases))
	}
	ids := make([]string, len(cases))
	var valid []string
	for i, hc := range cases {
		ids[i] = pyfmt.NewUUID4().String()
		if _, err := c.Do("LPUSH", queue, hc.build(ids[i])); err != nil {
			t.Fatal(err)
		}
		ok := pyfmt.NewUUID4().String()
		valid = append(valid, ok)
		if _, err := c.Do("LPUSH", queue, envWith("diag.noop", nil, nil, nil)(ok)); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{
		fmt.Sprintf("CELERY_BROKER_URL=redis://%s/%d", redisAddr, hostileDB),
		fmt.Sprintf("CELERY_RESULT_BACKEND=redis://%s/%d", redisAddr, hostileDB),
	}
	p := startProc(t, "go worker", interopDir(t), env, workerBinary(t), "worker", "--diagnostic-tasks",
		"-Q", queue, "-c", "2", "-n", "hostile@%h", "--result-expires", "600", "--max-message-size", "65536",
		"--without-mingle", "--without-heartbeat", "--without-control", "-l", "info")
	p.waitFor(t, "worker ready", 1, 30*time.Second)
	t.Cleanup(func() {
		keys := []any{}
		for _, id := range append(append([]string{}, ids...), valid...) {
			keys = append(keys, "celery-task-meta-"+id)
		}
		_, _ = c.Do("DEL", keys...)
	})

	get := func(id string) *protocol.ResultMeta {
		raw, err := redigo.Bytes(c.Do("GET", "celery-task-meta-"+id))
		if err != nil {
			return nil
		}
		m, err := protocol.DecodeResultMeta(raw)
		if err != nil {
			t.Fatalf("result of %s: %v: %s", id, err, raw)
		}
		return m
	}
	// All valid messages succeed: the worker kept running and the hostile
	// ones did not affect them.
	deadline := time.Now().Add(120 * time.Second)
	for _, id := range valid {
		for {
			m := get(id)
			if m != nil && m.Status == protocol.StateSuccess {
				break
			}
			if m != nil && m.Status != protocol.StateStarted {
				t.Fatalf("valid message %s: %s", id, m.Status)
			}
			if time.Now().After(deadline) {
				t.Fatalf("valid message %s not done (state %v)", id, m)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The hostile messages are handled concurrently with the valid ones
	// (-c 2, prefetch), and a rejection's result write and log line may
	// land after the valid message behind it succeeded: wait (generous
	// deadline, not a timing assertion) until each case's effect — its
	// final state and the log line naming its id, or the log line of an
	// unreadable message — is there, then check it.
	settled := func(hc hostileMsg, id string) bool {
		logs := p.out.String()
		if hc.exc == "" {
			return strings.Contains(logs, hc.text)
		}
		m := get(id)
		return m != nil && protocol.IsReady(m.Status) && strings.Contains(logs, id)
	}
	for i, hc := range cases {
		for !settled(hc, ids[i]) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	logs := p.out.String()
	for i, hc := range cases {
		t.Run(hc.name, func(t *testing.T) {
			m := get(ids[i])
			if hc.exc == "" {
				if m != nil {
					t.Errorf("unexpected result %s %v", m.Status, m.Result)
				}
				if !strings.Contains(logs, hc.text) {
					t.Errorf("log lacks %q", hc.text)
				}
				return
			}
			if m == nil {
				t.Fatalf("no result; want FAILURE %s(%q)", hc.exc, hc.text)
			}
			info, ok := m.Result.(*protocol.ExceptionInfo)
			want := protocol.StateFailure
			if hc.exc == "TaskRevokedError" {
				want = protocol.StateRevoked
			}
			if m.Status != want || !ok {
				t.Fatalf("state %s result %v; want %s %s", m.Status, m.Result, want, hc.exc)
			}
			msg := fmt.Sprint(info.Message...)
			if len(info.Message) == 1 {
				if s, ok := info.Message[0].(string); ok {
					msg = s
				}
			}
			t.Logf("%s: %s(%q)", hc.name, info.Type, msg)
			if info.Type != hc.exc || !strings.Contains(msg, hc.text) {
				t.Errorf("got %s(%q), want %s containing %q", info.Type, msg, hc.exc, hc.text)
			}
			// The rejection is logged with the task id.
			if !strings.Contains(logs, ids[i]) {
				t.Errorf("no log line names task %s", ids[i])
			}
		})
	}
	// Nothing is left behind: queue drained, no unacked record of ours.
	if n, _ := redigo.Int(c.Do("LLEN", queue)); n != 0 {
		t.Errorf("%d messages left in the queue", n)
	}
}

// hostileFile is a malformed (or hostile) input file for processing.Convert.
type hostileFile struct {
	name string
	// file is the name under testdata/hostile/ (or generated when data is
	// set).
	file string
	data func() []byte
	// text is a substring of Result.Err (or Result.Reason, the text that
	// becomes processing_info.error/reason); every case must end with
	// Converted false and no error from Convert itself.
	text string
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func hostileFiles() []hostileFile {
	return []hostileFile{
		{name: "vcf bad quality", file: "bad_qual.vcf", text: `line 3: QUAL 'abc' is not a number or '.'`},
		{name: "fastq without plus line", file: "no_plus.fastq", text: `line 4: the file ends inside the read that starts at line 1 (truncated file?)`},
		{name: "vcf bad position", file: "bad_pos.vcf", text: `line 3: POS 'abc' is not an integer`},
		{name: "vcf non-UTF-8 quality", file: "non_utf8.vcf", text: `line 3: invalid UTF-8 byte 0xff at column 18 (byte offset 77); the file must be UTF-8 text`},
		{name: "bed bad coordinates", file: "bad_coords.bed", text: `line 1: START 'ten' is not an integer`},
		{name: "gff bad start", file: "bad_start.gff3", text: `line 2: START 'start' is not an integer`},
		{name: "fastq truncated record", file: "truncated.fastq", text: `line 3: the file ends inside the read that starts at line 1 (truncated file?)`},
		{name: "fastq quality length", file: "qual_len.fastq", text: `line 4: the file ends inside the read that starts at line 1`},
		{name: "fasta NUL byte", file: "nul.fasta", text: `the file looks binary, not fasta text (byte 0x00 at offset 19)`},
		{name: "mzML not XML", file: "garbage.mzML", text: `the file looks binary, not mzml text (byte 0x00 at offset 28)`},
		{name: "mzML unclosed", file: "unclosed.mzML", text: `line 2: malformed XML: unexpected EOF`},
		{name: "mzXML unclosed", file: "unclosed.mzXML", text: `line 2: malformed XML: unexpected EOF`},
		{name: "mzXML 60 MiB attribute in a small gzip", file: "bigattr.mzXML.gz", data: func() []byte {
			return gzipped([]byte(`<mzXML><msRun><scan num="1" retentionTime="` + strings.Repeat("A", 60<<20) + `"/></msRun></mzXML>`))
		}, text: `line 1: the tag <scan ...> is longer than 16 MiB, the limit for one element's name and attributes`},
		{name: "mzML unsupported encoding", file: "latin9.mzML", data: func() []byte {
			return []byte("<?xml version=\"1.0\" encoding=\"iso-8859-15\"?>\n<mzML xmlns=\"http://psi.hupo.org/ms/mzml\"><spectrum id=\"\xa4\"/></mzML>\n")
		}, text: `line 1: unsupported XML encoding "iso-8859-15" (UTF-8, UTF-16, ISO-8859-1, windows-1252 and US-ASCII are supported): convert the file to UTF-8, e.g. iconv -f iso-8859-15 -t UTF-8`},
		{name: "mzML windows-1252 undefined byte", file: "cp1252.mzML", data: func() []byte {
			return []byte("<?xml version=\"1.0\" encoding=\"windows-1252\"?>\n<mzML xmlns=\"http://psi.hupo.org/ms/mzml\"><spectrum id=\"\x81\"/></mzML>\n")
		}, text: `line 2: byte 0x81 is not a character in windows-1252`},
		{name: "csv ragged rows", file: "ragged.csv", text: `line 2: this row has 3 fields but the header row has 2`},
		{name: "tsv ragged rows", file: "ragged.tsv", text: `line 2: this row has 3 fields but the header row has 2`},
		{name: "binary with vcf name", file: "binary.vcf", data: func() []byte { return append([]byte("\x00\x01\x02\xff"), bytes.Repeat([]byte{0}, 1000)...) }, text: `the file looks binary, not vcf text (byte 0x00 at offset 0)`},
		{name: "truncated gzip", file: "cut.vcf.gz", data: func() []byte { g := gzipped(bigVCF(100_000)); return g[:len(g)/2] }, text: `the gzip stream is truncated (the file ends before the compressed data does)`},
		{name: "gzip bad header", file: "bad.vcf.gz", data: func() []byte { return []byte("\x1f\x8b\x00garbage") }, text: `the file starts like gzip but its gzip header is invalid`},
		// Issue 9 (#8, #14, #18): long lines and wide rows refused before they
		// are held, garbage after gzip NUL padding, UTF-16 text.
		{name: "line over the limit", file: "long.vcf", data: func() []byte { return append(bytes.Repeat([]byte("x"), 20<<20), '\n') }, text: `line 1: line is longer than 16777216 bytes`},
		{name: "csv wider than the column limit", file: "wide.csv", data: func() []byte { return append(bytes.Repeat([]byte("c,"), 3_000_000), "c\n"...) }, text: `line 1: this row has more than 1048576 fields (the column limit)`},
		{name: "gzip NUL padding then garbage", file: "pad.vcf.gz", data: func() []byte { return append(gzipped(bigVCF(10)), "\x00\x00\x00garbage"...) }, text: `the gzip stream is corrupt (invalid header of a following member)`},
		{name: "UTF-16 spreadsheet export", file: "excel.csv", data: func() []byte { return []byte("\xff\xfeg\x00e\x00n\x00e\x00,\x00s\x00\n\x00") }, text: `the file is UTF-16 (little-endian) text, not UTF-8; save it as UTF-8`},
		{name: "empty file", file: "empty.vcf", data: func() []byte { return nil }, text: `the file is empty`},
		{name: "unknown extension", file: "data.xyz", data: func() []byte { return []byte("hello") }, text: `Unsupported format for conversion`},
	}
}

// TestHostileFiles runs the file catalogue through processing.Convert: no
// panic, no error from Convert, Converted false with a clear reason.
func TestHostileFiles(t *testing.T) {
	for _, hf := range hostileFiles() {
		t.Run(hf.name, func(t *testing.T) {
			var data []byte
			name := hf.file
			if hf.data != nil {
				data = hf.data()
			} else {
				var err error
				data, err = os.ReadFile(filepath.Join("..", "..", "testdata", "hostile", hf.file))
				if err != nil {
					t.Fatal(err)
				}
			}
			res, err := processing.Convert(context.Background(), bytes.NewReader(data), io.Discard, processing.Options{Name: name, TempDir: t.TempDir()})
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			got := res.Reason
			if res.Err != nil {
				got = res.Err.Error()
			}
			t.Logf("%s: converted=%v %q", hf.name, res.Converted, got)
			if res.Converted || !strings.Contains(got, hf.text) {
				t.Errorf("converted=%v %q, want not converted with %q", res.Converted, got, hf.text)
			}
		})
	}
}

// FuzzConvertHostile: processing.Convert (detection, gzip, every
// converter) on arbitrary bytes under every file name of the catalogue
// never panics and never fails outside the file's content.
func FuzzConvertHostile(f *testing.F) {
	names := []string{}
	for _, hf := range hostileFiles() {
		names = append(names, hf.file)
		if hf.data != nil {
			f.Add(uint8(len(names)-1), hf.data())
			continue
		}
		data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "hostile", hf.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(len(names)-1), data)
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		name := names[int(which)%len(names)]
		res, err := processing.Convert(context.Background(), bytes.NewReader(data), io.Discard,
			processing.Options{Name: name, TempDir: t.TempDir()})
		if err != nil {
			t.Fatalf("Convert(%s): %v", name, err)
		}
		if res == nil {
			t.Fatal("nil result")
		}
	})
}
