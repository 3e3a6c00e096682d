package worker

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestTypedArgs(t *testing.T) {
	task := &Task{
		Name: "app.tasks.file_tasks.process_file_async",
		Args: []any{json.Number("11")},
		Kwargs: map[string]any{
			"raw_file_id": json.Number("42"), "float_int": json.Number("3.0"), "frac": json.Number("2.5"),
			"s": "abc", "null": nil, "b": true, "list": []any{},
		},
		def: &taskDef{opts: TaskOptions{Params: []string{"first"}}},
	}
	tests := []struct {
		name, arg string
		get       func(string) (any, error)
		want      any
		err       string
	}{
		{"int kwarg", "raw_file_id", func(n string) (any, error) { return task.IntArg(n) }, int64(42), ""},
		{"int positional", "first", func(n string) (any, error) { return task.IntArg(n) }, int64(11), ""},
		{"int from 3.0", "float_int", func(n string) (any, error) { return task.IntArg(n) }, int64(3), ""},
		{"int from 2.5", "frac", func(n string) (any, error) { return task.IntArg(n) }, nil, "argument 'frac' must be int, not float (2.5)"},
		{"int from str", "s", func(n string) (any, error) { return task.IntArg(n) }, nil, "TypeError: argument 's' must be int, not str ('abc')"},
		{"int from bool", "b", func(n string) (any, error) { return task.IntArg(n) }, nil, "must be int, not bool"},
		{"int missing", "nope", func(n string) (any, error) { return task.IntArg(n) }, nil, "process_file_async() missing 1 required argument: 'nope'"},
		{"int or default on null", "null", func(n string) (any, error) { return task.IntArgOr(n, 7) }, int64(7), ""},
		{"float", "frac", func(n string) (any, error) { return task.FloatArg(n) }, 2.5, ""},
		{"float from str", "s", func(n string) (any, error) { return task.FloatArg(n) }, nil, "must be a number, not str"},
		{"string", "s", func(n string) (any, error) { return task.StringArg(n) }, "abc", ""},
		{"string from int", "raw_file_id", func(n string) (any, error) { return task.StringArg(n) }, nil, "must be str, not int (42)"},
		{"string default", "nope", func(n string) (any, error) { return task.StringArgOr(n, "d") }, "d", ""},
		{"bool", "b", func(n string) (any, error) { return task.BoolArgOr(n, false) }, true, ""},
		{"bool from list", "list", func(n string) (any, error) { return task.BoolArgOr(n, false) }, nil, "must be bool, not list ([])"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.get(tc.arg)
			if tc.err != "" {
				var pe *PyError
				if err == nil || !errors.As(err, &pe) || pe.Type != "TypeError" || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want TypeError containing %q", err, tc.err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestToPyErrorAndTraceback(t *testing.T) {
	wrapped := fmt.Errorf("reading file: %w", NewPyError("ValueError", "bad header"))
	tests := []struct {
		err  error
		info string
		tb   string
	}{
		{errors.New("boom"), `{"exc_type":"Exception","exc_message":["boom"],"exc_module":"builtins"}`, "Exception: boom\n"},
		{wrapped, `{"exc_type":"ValueError","exc_message":["bad header"],"exc_module":"builtins"}`, "ValueError: bad header\n"},
		{&PyError{Type: "NotRegistered", Module: "celery.exceptions", Args: []any{"x"}},
			`{"exc_type":"NotRegistered","exc_message":["x"],"exc_module":"celery.exceptions"}`, "celery.exceptions.NotRegistered: x\n"},
		{ErrSoftTimeLimitExceeded, `{"exc_type":"SoftTimeLimitExceeded","exc_message":[],"exc_module":"billiard.exceptions"}`, "SoftTimeLimitExceeded\n"},
	}
	for _, tc := range tests {
		pe := toPyError(tc.err, nil)
		b, _ := json.Marshal(pe.Info())
		if string(b) != tc.info {
			t.Errorf("%v: info %s, want %s", tc.err, b, tc.info)
		}
		tb := pyTraceback("t.x", pe, nil)
		if !strings.HasPrefix(tb, "Traceback (most recent call last):\n") || !strings.HasSuffix(tb, tc.tb) {
			t.Errorf("%v: traceback %q", tc.err, tb)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Queues[0] != "file_processing" || c.PrefetchMultiplier != 1 || c.AcksEarly || c.DisableTrackStarted ||
		!strings.HasPrefix(c.Hostname, "omics@") || c.VisibilityTimeout.Seconds() != 3600 || c.RestoreInterval.Seconds() != 100 {
		t.Fatalf("defaults %+v", c)
	}
	if c.prefetchLimit() != c.Concurrency {
		t.Errorf("prefetch %d", c.prefetchLimit())
	}
	if (Config{PrefetchMultiplier: -1}).withDefaults().prefetchLimit() != 0 {
		t.Error("negative multiplier must mean unlimited")
	}
	if h := ExpandHostname("w1@%h"); strings.Contains(h, "%") {
		t.Errorf("ExpandHostname: %s", h)
	}
}
