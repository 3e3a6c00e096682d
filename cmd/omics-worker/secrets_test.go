package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/omicsomics/omics-worker/internal/logging"
	"github.com/omicsomics/omics-worker/internal/mask/masktest"
	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
	"github.com/omicsomics/omics-worker/worker"
	"github.com/omicsomics/omics-worker/worker/control"
)

// TestSecretsNeverLoggedWorker starts the worker (in-process, its log
// captured) with secret-bearing broker, backend, database and object
// storage URLs that fail at each step of the start-up, and greps the log
// for the test password (issue 9 #5).
func TestSecretsNeverLoggedWorker(t *testing.T) {
	const goodBroker = "redis://127.0.0.1:6379/15"
	cases := []struct {
		name        string
		args        []string
		env         map[string]string
		needsRedis  bool
		wantInLog   string
		wantExitOne bool
	}{
		{name: "broker URL with an unencoded %",
			args:      []string{"-b", "redis://:" + masktest.PercentPassword + "@127.0.0.1:6379/15"},
			wantInLog: "redis://**@127.0.0.1:6379/15"},
		{name: "broker unreachable",
			args:      []string{"-b", "redis://u:" + masktest.Password + "@127.0.0.1:1/15"},
			wantInLog: "redis://u:**@127.0.0.1:1/15"},
		{name: "backend URL with an unencoded %", needsRedis: true,
			args:      []string{"-b", goodBroker, "--result-backend", "redis://:" + masktest.PercentPassword + "@127.0.0.1:6379/15"},
			wantInLog: "result backend URL"},
		{name: "unsupported backend", needsRedis: true,
			args:      []string{"-b", goodBroker, "--result-backend", "db+postgresql://u:" + masktest.Password + "@h/x"},
			wantInLog: "db+postgresql://u:**@h/x"},
		{name: "DATABASE_URL with an unencoded %", needsRedis: true,
			args: []string{"-b", goodBroker, "--result-backend", goodBroker},
			env: map[string]string{
				"DATABASE_URL":            "postgresql+asyncpg://admin:" + masktest.PercentPassword + "@127.0.0.1:1/omics",
				"OBJECT_STORAGE_ENDPOINT": "http://minio:" + masktest.Password + "@127.0.0.1:9",
			},
			wantInLog: "DATABASE_URL: unsupported DATABASE_URL: parse \\\"postgresql+asyncpg://**@127.0.0.1:1/omics\\\""},
		{name: "object storage endpoint refused", needsRedis: true,
			args:      []string{"-b", goodBroker, "--result-backend", goodBroker},
			env:       map[string]string{"OBJECT_STORAGE_ENDPOINT": "http://minio:" + masktest.Password + "@127.0.0.1:9/bucket"},
			wantInLog: "http://minio:**@127.0.0.1:9/bucket"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.needsRedis && testing.Short() {
				t.Skip("needs Redis on 127.0.0.1:6379")
			}
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			var out bytes.Buffer
			args := append([]string{"-l", "debug", "-Q", "omics_secrets_test", "--file-tasks"}, c.args...)
			rc := runWorker(context.Background(), args, &out, &out)
			masktest.Check(t, "worker log", out.String())
			if rc != 1 || !strings.Contains(out.String(), c.wantInLog) {
				t.Errorf("rc %d, want 1 and %q in the log:\n%s", rc, c.wantInLog, out.String())
			}
		})
	}
}

// TestSecretsNeverLoggedFileTasks registers the file tasks with a database
// that is down and an object storage endpoint carrying user:password@: the
// start-up line and the connect warning show neither password.
func TestSecretsNeverLoggedFileTasks(t *testing.T) {
	var out bytes.Buffer
	logger, err := logging.New(&out, "debug", "json")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		// Trust auth would ignore the password; port 1 refuses at once.
		"DATABASE_URL":            "postgresql+asyncpg://postgres:" + masktest.EncodedPassword + "@127.0.0.1:1/omics?password=" + masktest.Password,
		"OBJECT_STORAGE_ENDPOINT": "http://minio:" + masktest.Password + "@127.0.0.1:9",
		"MASTER_KEY":              "k",
	}
	o, code := parseWorkerOptions([]string{"--file-tasks"}, io.Discard, func(k string) string { return env[k] })
	if o == nil {
		t.Fatalf("options: exit %d", code)
	}
	closeFn, err := registerFileTasks(context.Background(), worker.NewRegistry(), logger, o.files)
	if err != nil {
		t.Fatal(err)
	}
	if closeFn != nil {
		closeFn()
	}
	masktest.Check(t, "file task log", out.String())
	for _, want := range []string{`"object_storage":"http://minio:**@127.0.0.1:9"`, "database not reachable yet"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, out.String())
		}
	}
}

// TestSecretsNeverInInspectReplies: `inspect conf` and `inspect report`
// show the broker and backend URLs masked by the same function.
func TestSecretsNeverInInspectReplies(t *testing.T) {
	ep, err := redistransport.ParseURL("redis://u:" + masktest.Password + "@h:6379/0")
	if err != nil {
		t.Fatal(err)
	}
	ws := control.NewSettings(ep.String(), "redis://:"+masktest.PercentPassword+"@h:6379/1", worker.Config{Queues: []string{"celery"}}, false, version)
	conf := control.ConfReply(ws)
	b, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	masktest.Check(t, "inspect conf", string(b))
	masktest.Check(t, "inspect report", control.ReportText(ws, conf))
	if conf["broker_url"] != "redis://u:**@h:6379/0" || conf["result_backend"] != "redis://**@h:6379/1" {
		t.Errorf("broker_url %v, result_backend %v", conf["broker_url"], conf["result_backend"])
	}
}
