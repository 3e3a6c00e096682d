package main

// End-to-end interop tests of the file tasks: the real Python Celery
// client (testdata/interop/e2e/e2e.py, run once per Celery version: see
// pyruntime_test.go) enqueues
// process_file_async.delay(raw_file_id=..., sample_id=...) for every file
// of testdata/demo, polls the FastAPI status endpoint's logic until every
// task is finished and checks every response and every stored state; the
// processed objects are then decrypted with Python's cryptography and
// checked as UnifiedData documents.
//
// Services: Redis testenv.RedisDBE2E* (broker, results), unique queue names;
// a scratch PostgreSQL database per test, dropped at the end; objects in a
// temporary directory (OBJECT_STORAGE_ENDPOINT=file://...).

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/internal/mask/masktest"
	"github.com/omicsomics/omics-worker/internal/omicsapp"
	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/internal/testenv"
	"github.com/omicsomics/omics-worker/storage/s3/s3test"

	redigo "github.com/gomodule/redigo/redis"
	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
	"github.com/omicsomics/omics-worker/storage/postgres"
	"github.com/omicsomics/omics-worker/worker/tasks"
)

var e2eDBs = redisDBs{testenv.RedisDBE2E, testenv.RedisDBE2EResults}

const e2eMasterKey = "e2e master key (UTF-8, not hex)"

// e2eScratchDB creates a uniquely named database, dropped at cleanup, and
// returns its URL in the Python form the compose file uses.
func e2eScratchDB(t *testing.T) string {
	t.Helper()
	return pythonDBURL(t, testenv.ScratchDB(t, "omics_e2e"))
}

// pythonDBURL turns a scratch database's postgres:// URL into the
// postgresql+asyncpg:// form of the compose file. The password is the
// suite's test secret: trust auth ignores it, and startProc checks that no
// worker log shows it.
func pythonDBURL(tb testing.TB, u string) string {
	tb.Helper()
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		tb.Fatal(err)
	}
	return fmt.Sprintf("postgresql+asyncpg://%s:%s@%s:%d/%s", cfg.User, masktest.EncodedPassword, cfg.Host, cfg.Port, cfg.Database)
}

type e2eEnv struct {
	dbURL, root, queue string
	files              *postgres.Store
	seed               *omicsapp.Seeder
}

func newE2EEnv(t *testing.T) *e2eEnv {
	t.Helper()
	requireInterop(t)
	e := &e2eEnv{dbURL: e2eScratchDB(t), root: t.TempDir(), queue: uniqueQueue(t, "e2e")}
	t.Cleanup(func() { dropQueueKeys(t, e.queue, e.queue+"_large") })
	ctx := context.Background()
	files, err := postgres.Open(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(files.Close)
	e.files = files
	objects, err := openObjectStore(ctx, objectStoreConfig{Endpoint: "file://" + e.root, Bucket: "omicsomics"})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := tasks.NewMasterKeyring(e2eMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	if e.seed, err = omicsapp.NewSeeder(ctx, files, objects, keys); err != nil {
		t.Fatal(err)
	}
	return e
}

// env is the worker's (and the Python client's) environment: the
// variables of the celery-worker service.
func (e *e2eEnv) env(dbURL string) []string {
	return append(e2eDBs.env(e.queue),
		"DATABASE_URL="+dbURL,
		"OBJECT_STORAGE_ENDPOINT=file://"+e.root,
		"OBJECT_STORAGE_BUCKET=omicsomics",
		"MASTER_KEY="+e2eMasterKey,
		"OMICS_E2E_QUEUE="+e.queue,
		"OMICS_E2E_LARGE_QUEUE="+e.queue+"_large",
		"LOG_LEVEL=INFO",
	)
}

func (e *e2eEnv) startWorker(t *testing.T, dbURL string, args ...string) *proc {
	t.Helper()
	all := append([]string{"worker", "-Q", e.queue + "," + e.queue + "_large", "-c", "2", "-n", uniqueNode("omics-e2e"),
		"--result-expires", "600"}, args...)
	p := startProc(t, "go worker", interopDir(t), e.env(dbURL), workerBinary(t), all...)
	p.waitFor(t, "worker ready", 1, 30*time.Second)
	return p
}

// e2eReport is e2e.py's output.
type e2eReport struct {
	OK     bool     `json:"ok"`
	Errors []string `json:"errors"`
	Races  []string `json:"races"`
	Tasks  []struct {
		Name      string           `json:"name"`
		TaskID    string           `json:"task_id"`
		Final     map[string]any   `json:"final"`
		Seen      []map[string]any `json:"seen"`
		Published []map[string]any `json:"published"`
	} `json:"tasks"`
}

func runE2EPy(t *testing.T, py pyRuntime, env []string, input any, args ...string) []byte {
	t.Helper()
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := py.CommandContext(ctx, append([]string{"e2e.py"}, args...)...)
	cmd.Dir = filepath.Join(interopDir(t), "e2e")
	// On the deadline, SIGABRT first: faulthandler prints every thread's
	// stack to stderr (shown below), then SIGKILL after WaitDelay.
	cmd.Env = append(os.Environ(), append(env, "PYTHONFAULTHANDLER=1")...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGABRT) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		t.Fatalf("e2e.py (%s) %v: %v\n%s", py.Name(), args, err, stderr.String())
	}
	return out
}

func bigVCF(size int) []byte {
	var b bytes.Buffer
	b.WriteString("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "chr%d\t%d\trs%d\tA\tG\t%d.5\tPASS\tDP=%d\n", i%22+1, i+1, i, i%90, i%50)
	}
	return b.Bytes()
}

func TestEndToEndPythonClient(t *testing.T) {
	forEachCelery(t, true, testEndToEndPythonClient)
}

func testEndToEndPythonClient(t *testing.T, py pyRuntime) {
	e := newE2EEnv(t)
	ctx := context.Background()
	files, err := e.seed.SeedDir(ctx, filepath.Join("..", "..", "testdata", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	sample := "S-e2e-1"
	for i := range files {
		switch files[i].Name {
		case "variants.vcf":
			files[i].SampleID = &sample
		case "counts.tsv":
			files[i].Batch = true
		}
	}
	big, err := e.seed.Store(ctx, "big_variants.vcf", bigVCF(6<<20))
	if err != nil {
		t.Fatal(err)
	}
	big.Large = true
	files = append(files, big)
	// A duplicate enqueue of the same raw file: both tasks must report the
	// same processed row.
	for _, f := range files {
		if f.Name == "regions.bed" {
			files = append(files, f)
			break
		}
	}
	// A raw file id that does not exist.
	missing := omicsapp.PlanFile{Name: "(missing row)", RawFileID: 987654, Expect: omicsapp.Expect{Success: false, Error: "File 987654 not found"}}
	e.startWorker(t, e.dbURL)

	out := runE2EPy(t, py, e.env(e.dbURL), omicsapp.Plan{Files: append(files, missing), Timeout: 120}, "run")
	var rep e2eReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("e2e.py output: %v\n%s", err, out)
	}
	if !rep.OK {
		t.Fatalf("status checks failed:\n  %s", strings.Join(rep.Errors, "\n  "))
	}
	if len(rep.Races) > 0 {
		t.Logf("status endpoint races observed (upstream behaviour, not errors): %v", rep.Races)
	}
	// The big file went through fine-grained progress.
	fine := 0
	for _, tk := range rep.Tasks {
		if tk.Name != "big_variants.vcf" {
			continue
		}
		for _, p := range tk.Published {
			if r, ok := p["result"].(map[string]any); ok && r["bytes_done"] != nil {
				fine++
			}
		}
	}
	t.Logf("big file: %d fine-grained progress states", fine)

	// Every converted file: exactly one processed row, decryptable by
	// Python as UnifiedData with the expected record count.
	type item struct {
		Name      string `json:"name"`
		Path      string `json:"path"`
		UserID    int64  `json:"user_id"`
		Records   int    `json:"records"`
		OmicsType string `json:"omics_type"`
		Size      int64  `json:"size"`
	}
	var items []item
	successes := 0
	seen := map[int64]bool{}
	processedIDs := map[string][]float64{}
	for _, tk := range rep.Tasks {
		if r, ok := tk.Final["result"].(map[string]any); ok {
			processedIDs[tk.Name] = append(processedIDs[tk.Name], r["processed_file_id"].(float64))
		}
	}
	if ids := processedIDs["regions.bed"]; len(ids) != 2 || ids[0] != ids[1] {
		t.Errorf("duplicate enqueue: processed ids %v, want the same id twice", ids)
	}
	for _, f := range files {
		if seen[f.RawFileID] {
			continue
		}
		seen[f.RawFileID] = true
		raw, err := e.files.GetFile(ctx, f.RawFileID)
		if err != nil {
			t.Fatal(err)
		}
		pid, linked := raw.ProcessedFileID()
		if !f.Expect.Success {
			if linked {
				t.Errorf("%s: failed file links processed row %d", f.Name, pid)
			}
			continue
		}
		successes++
		if !linked {
			t.Errorf("%s: no processed_file_id in %s", f.Name, raw.Metadata)
			continue
		}
		pf, err := e.files.GetFile(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, item{Name: f.Name, Path: filepath.Join(e.root, "omicsomics", pf.ObjectKey),
			UserID: pf.UploadedByID, Records: *f.Expect.RecordCount, OmicsType: f.Expect.OmicsType, Size: pf.Size})
	}
	var rows int
	conn, err := pgx.Connect(ctx, strings.Replace(e.dbURL, "postgresql+asyncpg", "postgres", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM data_files").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(seen)+successes {
		t.Errorf("%d rows, want %d raw + %d processed", rows, len(seen), successes)
	}
	vout := runE2EPy(t, py, nil, map[string]any{"master_key": e2eMasterKey, "items": items}, "verify")
	var v struct {
		OK      bool     `json:"ok"`
		Errors  []string `json:"errors"`
		Checked int      `json:"checked"`
	}
	if err := json.Unmarshal(vout, &v); err != nil {
		t.Fatalf("verify output: %v\n%s", err, vout)
	}
	if !v.OK || v.Checked != successes {
		t.Fatalf("Python verification (%d checked): %v", v.Checked, v.Errors)
	}
}

// TestEndToEndDatabaseOutage: the database is unreachable; the task is
// retried with backoff (RETRY states, readable by the status endpoint),
// then fails with a clear ConnectionError message.
func TestEndToEndDatabaseOutage(t *testing.T) {
	forEachCelery(t, true, testEndToEndDatabaseOutage)
}

func testEndToEndDatabaseOutage(t *testing.T, py pyRuntime) {
	e := newE2EEnv(t)
	pf, err := e.seed.Store(context.Background(), "counts.tsv", []byte("gene\ta\nG1\t1\n"))
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port 1: connection refused, a transient error.
	down := "postgresql+asyncpg://postgres:" + masktest.EncodedPassword + "@127.0.0.1:1/omics"
	e.startWorker(t, down, "--file-tasks-retry-delay", "0.05")
	pf.Expect = omicsapp.Expect{Success: false, ErrorPrefix: fmt.Sprintf("database unavailable while loading file %d: ", pf.RawFileID)}
	out := runE2EPy(t, py, e.env(down), omicsapp.Plan{Files: []omicsapp.PlanFile{pf}, Timeout: 60}, "run")
	var rep e2eReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("e2e.py output: %v\n%s", err, out)
	}
	if !rep.OK {
		t.Fatalf("status checks failed:\n  %s", strings.Join(rep.Errors, "\n  "))
	}
	retries := 0
	for _, p := range rep.Tasks[0].Published {
		if p["status"] == "RETRY" {
			retries++
		}
	}
	if retries != 3 {
		t.Errorf("%d RETRY states, want 3 (max_retries): %v", retries, rep.Tasks[0].Published)
	}
}

// upstreamWorkerEnv is the environment block of the celery-worker service
// in Jeblqr/Omicsomics infrastructure/docker-compose.yml (commit 834d4c9).
var upstreamWorkerEnv = map[string]string{
	"DATABASE_URL":              "postgresql+asyncpg://${POSTGRES_USER:-postgres}:${POSTGRES_PASSWORD:-changeme}@db:5432/${POSTGRES_DB:-omicsomics}",
	"OBJECT_STORAGE_ENDPOINT":   "http://minio:9000",
	"OBJECT_STORAGE_ACCESS_KEY": "${MINIO_ROOT_USER:-minioadmin}",
	"OBJECT_STORAGE_SECRET_KEY": "${MINIO_ROOT_PASSWORD:-changeme123}",
	"OBJECT_STORAGE_BUCKET":     "${MINIO_BUCKET:-omicsomics}",
	"REDIS_URL":                 "redis://redis:6379/0",
	"CELERY_BROKER_URL":         "redis://redis:6379/0",
	"CELERY_RESULT_BACKEND":     "redis://redis:6379/0",
	"PYTHONPATH":                "/app",
	"LOG_LEVEL":                 "${LOG_LEVEL:-INFO}",
	"PYTHONUNBUFFERED":          "1",
}

type composeService struct {
	Image       string                                `yaml:"image"`
	Build       *struct{ Context, Dockerfile string } `yaml:"build"`
	Environment map[string]string                     `yaml:"environment"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Command     any `yaml:"command"` // a string or a list
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Networks []string `yaml:"networks"`
	Restart  string   `yaml:"restart"`
}

// expandDefaults replaces ${VAR:-default} by default (what compose does
// with an empty environment).
func expandDefaults(s string) string {
	return regexp.MustCompile(`\$\{[A-Z_]+:-([^}]*)\}`).ReplaceAllString(s, "$1")
}

// TestComposeFile validates docker-compose.yml and the Dockerfile (no
// Docker engine here): the Go worker replaces celery-worker with the same
// environment, dependencies, a healthcheck our binary can answer, flags
// our worker accepts, and a build from this repository's Dockerfile.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]composeService `yaml:"services"`
		Networks map[string]any            `yaml:"networks"`
		Volumes  map[string]any            `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"db", "minio", "redis", "backend", "celery-worker"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	w := c.Services["celery-worker"]
	if !maps.Equal(w.Environment, upstreamWorkerEnv) {
		t.Errorf("celery-worker environment differs from upstream:\n got %v\nwant %v", w.Environment, upstreamWorkerEnv)
	}
	// The backend and the worker must agree on everything they share.
	for _, k := range []string{"DATABASE_URL", "OBJECT_STORAGE_ENDPOINT", "OBJECT_STORAGE_ACCESS_KEY", "OBJECT_STORAGE_SECRET_KEY",
		"OBJECT_STORAGE_BUCKET", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"} {
		if b := c.Services["backend"].Environment[k]; b != w.Environment[k] {
			t.Errorf("%s: backend %q, worker %q", k, b, w.Environment[k])
		}
	}
	if _, err := postgres.ParseDatabaseURL(expandDefaults(w.Environment["DATABASE_URL"])); err != nil {
		t.Errorf("worker DATABASE_URL: %v", err)
	}
	for dep, cond := range map[string]string{"db": "service_healthy", "redis": "service_healthy", "minio": "service_healthy"} {
		if got := w.DependsOn[dep].Condition; got != cond {
			t.Errorf("celery-worker depends_on %s: condition %q, want %q", dep, got, cond)
		}
		if _, ok := c.Services[dep]; !ok {
			t.Errorf("celery-worker depends on undefined service %s", dep)
		}
	}
	if w.Build == nil || w.Build.Context != "." || w.Build.Dockerfile != "Dockerfile" {
		t.Errorf("celery-worker build %+v, want context . and Dockerfile", w.Build)
	}
	for _, n := range w.Networks {
		if _, ok := c.Networks[n]; !ok {
			t.Errorf("network %s undefined", n)
		}
	}
	// The command is a subcommand of ours with flags our worker accepts.
	list, _ := w.Command.([]any)
	var cmd []string
	for _, v := range list {
		s, _ := v.(string)
		cmd = append(cmd, s)
	}
	if len(cmd) == 0 || cmd[0] != "worker" {
		t.Fatalf("celery-worker command %v: want a list starting with the worker subcommand", w.Command)
	}
	var o workerOptions
	var stderr bytes.Buffer
	fs := newWorkerFlags(&o, &stderr)
	if err := fs.Parse(cmd[1:]); err != nil || fs.NArg() != 0 {
		t.Errorf("command flags %q: %v %s", cmd[1:], err, stderr.String())
	}
	if _, err := workerConfig(&o); err != nil {
		t.Errorf("command flags %q: %v", cmd[1:], err)
	}
	// The healthcheck runs the image's binary with a subcommand it has.
	if w.Healthcheck == nil || len(w.Healthcheck.Test) < 3 || w.Healthcheck.Test[0] != "CMD" || w.Healthcheck.Test[1] != "/omics-worker" {
		t.Fatalf("celery-worker healthcheck %+v: want [CMD /omics-worker <subcommand>]", w.Healthcheck)
	}
	if _, ok := commands[w.Healthcheck.Test[2]]; !ok {
		t.Errorf("healthcheck subcommand %q is not a command of omics-worker", w.Healthcheck.Test[2])
	}

	// Dockerfile: multi-stage, static, non-root, the binary where the
	// healthcheck and the entrypoint expect it.
	df, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(df)
	for _, want := range []string{"CGO_ENABLED=0", "AS build", "COPY --from=build /out/omics-worker /omics-worker",
		`ENTRYPOINT ["/omics-worker"]`, "USER nonroot", "./cmd/omics-worker"} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if strings.Count(text, "\nFROM ") < 2 {
		t.Error("Dockerfile is not multi-stage")
	}
	if !strings.Contains(text, "distroless/static") && !strings.Contains(text, "FROM scratch") {
		t.Error("final stage is neither distroless/static nor scratch")
	}
	// The build context must keep what the build needs.
	di, err := os.ReadFile(filepath.Join("..", "..", ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(di), "\n") {
		switch strings.TrimSpace(line) {
		case "go.mod", "go.sum", "cmd", "*.go", "storage", "**/*.sql":
			t.Errorf(".dockerignore excludes %q, which the build needs", line)
		}
	}
}

// BenchmarkEndToEnd measures the worker binary end to end: tasks published
// on Redis (DB 8/9) with our producer, each a raw file stored encrypted in
// a local-directory store and a scratch PostgreSQL database; timed until
// every SUCCESS is stored. Reports tasks/s, MB/s of raw input and the
// worker's peak RSS (VmHWM). The large case runs only with
// OMICS_BENCH_LARGE_MB=<size> (e.g. 100; 1024 for the 1 GB RSS figure).
// OMICS_BENCH_STORE=s3 uses S3 (a VersityGW gateway) instead of a local
// directory.
//
//	go test -run '^$' -bench EndToEnd -benchtime 200x ./cmd/omics-worker
//	OMICS_BENCH_LARGE_MB=100 go test -run '^$' -bench 'EndToEnd/large' -benchtime 1x ./cmd/omics-worker
func BenchmarkEndToEnd(b *testing.B) {
	if testing.Short() {
		b.Skip("needs Redis and PostgreSQL")
	}
	small := []byte("gene_id\tsample_a\tsample_b\tsample_c\n")
	for i := 0; len(small) < 1000; i++ {
		small = fmt.Appendf(small, "GENE%05d\t%d.5\t%d\t%d.25\n", i, i, i*3, i*7)
	}
	b.Run("1KB", func(b *testing.B) { benchEndToEnd(b, "small.tsv", small) })
	if mb, _ := strconv.Atoi(os.Getenv("OMICS_BENCH_LARGE_MB")); mb > 0 {
		b.Run("large", func(b *testing.B) { benchEndToEnd(b, "large.vcf", bigVCF(mb<<20)) })
	}
}

func benchEndToEnd(b *testing.B, name string, content []byte) {
	ctx := context.Background()
	dbURL := benchScratchDB(b)
	root := b.TempDir()
	files, err := postgres.Open(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer files.Close()
	endpoint := "file://" + root
	var accessKey, secretKey string
	if os.Getenv("OMICS_BENCH_STORE") == "s3" {
		// S3 via a VersityGW gateway (a separate process, as the worker
		// is, so the worker's RSS does not include the server's).
		g := s3test.Versity(b)
		endpoint, accessKey, secretKey = g.URL, g.AccessKey, g.SecretKey
	}
	objects, err := openObjectStore(ctx, objectStoreConfig{Endpoint: endpoint, AccessKey: accessKey, SecretKey: secretKey})
	if err != nil {
		b.Fatal(err)
	}
	keys, _ := tasks.NewMasterKeyring(e2eMasterKey)
	s, err := omicsapp.NewSeeder(ctx, files, objects, keys)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]int64, b.N)
	for i := range ids {
		pf, err := s.Store(ctx, name, content)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = pf.RawFileID
	}
	queue := fmt.Sprintf("bench_e2e_%d_%d", os.Getpid(), time.Now().UnixNano())
	defer dropQueueKeys(b, queue)
	bin := filepath.Join(b.TempDir(), "omics-worker")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "worker", "-Q", queue, "-c", benchConcurrency(), "-l", cmp.Or(os.Getenv("OMICS_BENCH_LOG_LEVEL"), "warning"), "--result-expires", "600")
	cmd.Env = append(os.Environ(), e2eDBs.env(queue)...)
	cmd.Env = append(cmd.Env, "DATABASE_URL="+dbURL, "OBJECT_STORAGE_ENDPOINT="+endpoint, "OBJECT_STORAGE_ACCESS_KEY="+accessKey, "OBJECT_STORAGE_SECRET_KEY="+secretKey, "MASTER_KEY="+e2eMasterKey,
		"OMICS_WORKER_TMPDIR="+b.TempDir())
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	brokerURL := fmt.Sprintf("redis://%s/%d", redisAddr, e2eDBs.broker)
	backendURL := fmt.Sprintf("redis://%s/%d", redisAddr, e2eDBs.backend)
	broker, err := redistransport.NewBroker(brokerURL, redistransport.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	backend, err := redistransport.NewResultBackend(backendURL, redistransport.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer backend.Close()
	envs := make([][]byte, b.N)
	taskIDs := make([]string, b.N)
	for i, id := range ids {
		taskIDs[i] = pyfmt.NewUUID4().String()
		envs[i], err = protocol.EncodeTask(&protocol.TaskMessage{ID: taskIDs[i], Task: tasks.ProcessFileTask,
			Kwargs: map[string]any{"raw_file_id": id, "sample_id": nil}}, protocol.PublishOptions{Queue: queue})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(content)))
	b.ResetTimer()
	start := time.Now()
	for _, env := range envs {
		if err := broker.Publish(ctx, queue, 0, env); err != nil {
			b.Fatal(err)
		}
	}
	for i, id := range taskIDs {
		for {
			raw, err := backend.GetRaw(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			if bytes.Contains(raw, []byte(`"status": "SUCCESS"`)) || bytes.Contains(raw, []byte(`"status":"SUCCESS"`)) {
				break
			}
			if bytes.Contains(raw, []byte("FAILURE")) {
				b.Fatalf("task %d failed: %s\n%s", i, raw, logs.String())
			}
			if time.Since(start) > 10*time.Minute {
				b.Fatalf("timeout\n%s", logs.String())
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if f := os.Getenv("OMICS_BENCH_WORKER_LOG"); f != "" {
		_ = os.WriteFile(f, []byte(logs.String()), 0o644)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")
	if rss := peakRSS(cmd.Process.Pid); rss > 0 {
		b.ReportMetric(float64(rss)/(1<<20), "peakRSS_MB")
	}
}

// peakRSS reads VmHWM (peak resident set size) of a process, in bytes.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// benchScratchDB is e2eScratchDB for benchmarks.
func benchScratchDB(b *testing.B) string {
	b.Helper()
	return pythonDBURL(b, testenv.ScratchDB(b, "omics_bench"))
}

// TestEndToEndCrashRedelivery: the worker is SIGKILLed while it converts;
// the message is restored after the visibility timeout and a second worker
// runs the task to the end: exactly one processed row, and no object that
// no row references (unless the kill landed after the upload — the
// documented orphan window, logged).
func TestEndToEndCrashRedelivery(t *testing.T) {
	e := newE2EEnv(t)
	ctx := context.Background()
	pf, err := e.seed.Store(ctx, "crash.vcf", bigVCF(24<<20))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--visibility-timeout", "2", "--restore-interval", "0.5"}
	first := e.startWorker(t, e.dbURL, args...)

	backend, err := redistransport.NewResultBackend(fmt.Sprintf("redis://%s/%d", redisAddr, e2eDBs.backend), redistransport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	broker, err := redistransport.NewBroker(fmt.Sprintf("redis://%s/%d", redisAddr, e2eDBs.broker), redistransport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	id := pyfmt.NewUUID4().String()
	env, err := protocol.EncodeTask(&protocol.TaskMessage{ID: id, Task: tasks.ProcessFileTask,
		Kwargs: map[string]any{"raw_file_id": pf.RawFileID, "sample_id": nil}}, protocol.PublishOptions{Queue: e.queue})
	if err != nil {
		t.Fatal(err)
	}
	if err := broker.Publish(ctx, e.queue, 0, env); err != nil {
		t.Fatal(err)
	}
	// Kill as soon as the conversion runs.
	deadline := time.Now().Add(60 * time.Second)
	for {
		raw, err := backend.GetRaw(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("Converting to unified format")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("conversion not seen; last state %s", raw)
		}
		time.Sleep(2 * time.Millisecond)
	}
	_ = first.cmd.Process.Kill()
	<-first.done

	e.startWorker(t, e.dbURL, args...)
	for {
		raw, err := backend.GetRaw(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(`"SUCCESS"`)) {
			break
		}
		if bytes.Contains(raw, []byte(`"FAILURE"`)) {
			t.Fatalf("FAILURE after redelivery: %s", raw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not finished after redelivery; last state %s", raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
	conn, err := pgx.Connect(ctx, strings.Replace(e.dbURL, "postgresql+asyncpg", "postgres", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var keys []string
	rows, err := conn.Query(ctx, "SELECT object_key FROM data_files")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		_ = rows.Scan(&k)
		keys = append(keys, k)
	}
	if rows.Err() != nil || len(keys) != 2 {
		t.Fatalf("rows %v (%v), want the raw and one processed row", keys, rows.Err())
	}
	var objects []string
	_ = filepath.Walk(filepath.Join(e.root, "omicsomics"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(filepath.Join(e.root, "omicsomics"), p)
			objects = append(objects, filepath.ToSlash(rel))
		}
		return nil
	})
	for _, k := range keys {
		if !slices.Contains(objects, k) {
			t.Errorf("row object %s missing", k)
		}
	}
	if len(objects) > len(keys) {
		t.Logf("orphan objects %v: the kill landed after the upload (documented window)", objects)
	}
}

// TestDemoFallbackProducer: `demo-seed --enqueue`, the path of make demo
// on machines without the Python Celery: our producer publishes, the
// worker runs, and the endpoint-style statuses match the expectations.
func TestDemoFallbackProducer(t *testing.T) {
	e := newE2EEnv(t)
	files, err := e.seed.SeedDir(context.Background(), filepath.Join("..", "..", "testdata", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	e.startWorker(t, e.dbURL)
	env := map[string]string{}
	for _, kv := range e2eDBs.env(e.queue)[:2] {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var out, log bytes.Buffer
	if err := enqueueAndWatch(context.Background(), env["CELERY_BROKER_URL"], env["CELERY_RESULT_BACKEND"],
		omicsapp.Plan{Files: files}, e.queue, time.Minute, &out, &log); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Tasks []struct {
			Name  string `json:"name"`
			Final struct {
				State    string `json:"state"`
				Status   string `json:"status"`
				Progress int    `json:"progress"`
				Result   *struct {
					Success     bool   `json:"success"`
					OmicsType   string `json:"omics_type"`
					RecordCount int    `json:"record_count"`
				} `json:"result"`
				Error string `json:"error"`
			} `json:"final"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for i, tk := range res.Tasks {
		ex, f := files[i].Expect, tk.Final
		switch {
		case ex.Success && (f.State != "SUCCESS" || f.Progress != 100 || f.Result == nil ||
			f.Result.OmicsType != ex.OmicsType || f.Result.RecordCount != *ex.RecordCount):
			t.Errorf("%s: %+v, want SUCCESS %s/%d", tk.Name, f, ex.OmicsType, *ex.RecordCount)
		case !ex.Success && (f.State != "FAILURE" || f.Status != "Processing failed" || f.Error != ex.Error):
			t.Errorf("%s: %+v, want FAILURE %q", tk.Name, f, ex.Error)
		}
	}
	if len(res.Tasks) != len(files) {
		t.Errorf("%d results for %d files", len(res.Tasks), len(files))
	}
}

// benchConcurrency is the worker's -c in BenchmarkEndToEnd
// (OMICS_BENCH_CONCURRENCY, default 2 = the CPUs here).
func benchConcurrency() string {
	if c := os.Getenv("OMICS_BENCH_CONCURRENCY"); c != "" {
		return c
	}
	return "2"
}

// dropQueueKeys deletes the kombu binding and list keys of our unique
// queues in the broker DB (8) so that runs do not accumulate keys.
func dropQueueKeys(t testing.TB, queues ...string) {
	c, err := redigo.Dial("tcp", redisAddr, redigo.DialDatabase(e2eDBs.broker))
	if err != nil {
		t.Logf("cleanup of queue keys: %v", err)
		return
	}
	defer c.Close()
	args := []any{}
	for _, q := range queues {
		args = append(args, "_kombu.binding."+q, q)
	}
	if _, err := c.Do("DEL", args...); err != nil {
		t.Logf("cleanup of queue keys: %v", err)
	}
}
