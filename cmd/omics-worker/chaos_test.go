package main

// Chaos test (issue 6): diag.progress tasks through two omics-worker
// processes that are SIGKILLed at random moments, and a restart of Redis,
// with a short visibility timeout. At the end every task has reached
// SUCCESS and nothing is left in the queues or in unacked; the figures
// (sent, succeeded, duplicates executed, lost, time) are printed.
//
// The test starts its OWN redis-server on a spare loopback port
// (16500–16600) so it may restart it; AOF with appendfsync always keeps the
// data across the restart, as a production Redis with persistence would.
//
// Short form (default, CI): 1,000 tasks, 3 SIGKILLs, one Redis restart.
// Long form: OMICS_CHAOS=long (make chaos): 10,000 tasks, 12 SIGKILLs.
//
// TestChaosFileTasks is the file-task variant: every file task is
// published twice and workers are killed mid-run; each raw file ends with
// exactly one processed row.

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"
	"github.com/jackc/pgx/v5"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/internal/testenv"
	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
	"github.com/omicsomics/omics-worker/worker/tasks"
)

// privateRedis is a redis-server owned by one test.
type privateRedis struct {
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer
}

// startPrivateRedis starts redis-server on a free port in 16500–16600 with
// AOF persistence in a temporary directory; it is stopped at cleanup.
func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	if testing.Short() {
		t.Skip("needs redis-server; skipped with -short")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not found: %v\nhint: apt-get install redis-server (the test runs its own instance on a spare port)", err)
	}
	r := &privateRedis{dir: t.TempDir()}
	start := 16500 + rand.IntN(100)
	for i := range 100 {
		port := 16500 + (start-16500+i)%101
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		r.port = port
		if err := r.start(); err == nil {
			t.Cleanup(r.stop)
			return r
		}
	}
	t.Fatal("no spare port for redis-server in 16500-16600")
	return nil
}

func (r *privateRedis) start() error {
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--protected-mode", "no", "--loglevel", "warning")
	r.out = &syncBuffer{}
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		return err
	}
	r.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(r.cmd, r.done)
	if err := testenv.WaitPing(r.addr(), "", r.done, 10*time.Second); err != nil {
		r.stop()
		return fmt.Errorf("redis-server on %d: %w: %s", r.port, err, r.out.String())
	}
	return nil
}

func (r *privateRedis) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// restart stops Redis (SIGTERM: connections drop) and starts it again on
// the same port and data directory after down.
func (r *privateRedis) restart(t *testing.T, down time.Duration) {
	t.Helper()
	r.stop()
	time.Sleep(down)
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
}

func (r *privateRedis) addr() string      { return fmt.Sprintf("127.0.0.1:%d", r.port) }
func (r *privateRedis) url(db int) string { return fmt.Sprintf("redis://%s/%d", r.addr(), db) }
func (r *privateRedis) conn(t *testing.T) redigo.Conn {
	t.Helper()
	c, err := redigo.Dial("tcp", r.addr())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// workerEnv is the environment of a worker using r (broker DB 0, results DB 1).
func (r *privateRedis) workerEnv(queue string) []string {
	return []string{"CELERY_BROKER_URL=" + r.url(0), "CELERY_RESULT_BACKEND=" + r.url(1), "OMICS_TEST_QUEUE=" + queue}
}

// states returns the result state of every id (MGET in batches; "" = none).
func (r *privateRedis) states(t *testing.T, ids []string) []string {
	t.Helper()
	c := r.conn(t)
	defer c.Close()
	if _, err := c.Do("SELECT", 1); err != nil {
		t.Fatal(err)
	}
	return resultStatesOn(t, c, ids)
}

// resultStatesOn reads the stored state of each task of ids on c (in
// order; "" = no result, "?" = undecodable), 500 keys per MGET.
func resultStatesOn(t *testing.T, c redigo.Conn, ids []string) []string {
	t.Helper()
	out := make([]string, 0, len(ids))
	for i := 0; i < len(ids); i += 500 {
		batch := ids[i:min(i+500, len(ids))]
		args := make([]any, len(batch))
		for k, id := range batch {
			args[k] = "celery-task-meta-" + id
		}
		vals, err := redigo.ByteSlices(c.Do("MGET", args...))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			m, err := protocol.DecodeResultMeta(v)
			switch {
			case v == nil:
				out = append(out, "")
			case err != nil:
				out = append(out, "?")
			default:
				out = append(out, m.Status)
			}
		}
	}
	return out
}

// chaosWorkers runs and restarts the worker processes of a chaos test,
// keeping every process's output to count executions.
type chaosWorkers struct {
	t     *testing.T
	env   []string
	args  []string
	mu    sync.Mutex
	procs []*proc // current process per slot
	all   []*proc // every process ever started
}

func (c *chaosWorkers) start(slot int) {
	c.t.Helper()
	args := append([]string{"worker", "-n", fmt.Sprintf("chaos%d-%d@%%h", slot, len(c.all))}, c.args...)
	p := startProc(c.t, fmt.Sprintf("chaos worker %d", slot), interopDir(c.t), c.env, workerBinary(c.t), args...)
	p.waitFor(c.t, "worker ready", 1, 30*time.Second)
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.procs) <= slot {
		c.procs = append(c.procs, nil)
	}
	c.procs[slot] = p
	c.all = append(c.all, p)
}

// kill SIGKILLs the worker in slot and starts a new one.
func (c *chaosWorkers) kill(slot int) {
	c.mu.Lock()
	p := c.procs[slot]
	c.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	c.start(slot)
}

// executions counts "<task>[<id>] succeeded in" log lines per id over all
// processes (a task killed before it logged does not count: it did not
// complete).
func (c *chaosWorkers) executions(task string) map[string]int {
	re := regexp.MustCompile(regexp.QuoteMeta(task) + `\[([0-9a-f-]+)\] succeeded in`)
	n := map[string]int{}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.all {
		sc := bufio.NewScanner(strings.NewReader(p.out.String()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				n[m[1]]++
			}
		}
	}
	return n
}

// completedIn lists the processes (index in start order, "killed" when
// SIGKILLed) whose log shows task id completing.
func (c *chaosWorkers) completedIn(task, id string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for i, p := range c.all {
		if strings.Contains(p.out.String(), task+"["+id+"] succeeded in") {
			state := "alive"
			select {
			case <-p.done:
				state = p.cmd.ProcessState.String()
			default:
			}
			out = append(out, fmt.Sprintf("#%d (%s)", i, state))
		}
	}
	return out
}

func TestChaos(t *testing.T) {
	n, kills, conc := 1000, 3, "4"
	if os.Getenv("OMICS_CHAOS") == "long" {
		n, kills, conc = 10_000, 12, "8"
	}
	rs := startPrivateRedis(t)
	workerBinary(t)
	queue := "chaos"
	ctx := context.Background()
	broker, err := redistransport.NewBroker(rs.url(0), redistransport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()

	began := time.Now()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = pyfmt.NewUUID4().String()
		raw, err := protocol.EncodeTask(&protocol.TaskMessage{ID: ids[i], Task: "diag.progress",
			Kwargs: map[string]any{"steps": 2, "delay": 0.015}}, protocol.PublishOptions{Queue: queue})
		if err != nil {
			t.Fatal(err)
		}
		if err := broker.Publish(ctx, queue, 0, raw); err != nil {
			t.Fatal(err)
		}
	}
	ws := &chaosWorkers{t: t, env: rs.workerEnv(queue), args: []string{"--diagnostic-tasks", "-Q", queue, "-c", conc,
		"--visibility-timeout", "2", "--restore-interval", "1", "--result-expires", "3600",
		"--without-mingle", "--without-heartbeat", "--shutdown-timeout", "5", "-l", "info"}}
	ws.start(0)
	ws.start(1)

	// Kills at fixed fractions of the work (so each hits a busy worker),
	// on a random worker; the Redis restart halfway between two kills.
	killed := chaosLoop(t, rs, ws, ids, kills, began, "Redis restart", func() string {
		rs.restart(t, 500*time.Millisecond)
		return "Redis restarted"
	})
	elapsed := time.Since(began)

	states := rs.states(t, ids)
	lost := 0
	for i, s := range states {
		if s != protocol.StateSuccess {
			lost++
			if lost <= 10 {
				t.Errorf("task %s: state %q", ids[i], s)
			}
		}
	}
	ex := ws.executions("diag.progress")
	runs, dup := 0, 0
	for id, c := range ex {
		runs += c
		dup += c - 1
		if c > 1 {
			t.Logf("task %s completed %d times (in processes %v)", id, c, ws.completedIn("diag.progress", id))
		}
	}
	fmt.Printf("chaos: tasks sent %d, succeeded %d, executions %d, duplicates executed %d, lost %d, "+
		"SIGKILLs %d, Redis restarts 1, worker processes %d, time %.1fs\n",
		n, n-lost, runs, dup, lost, killed, len(ws.all), elapsed.Seconds())
	if lost > 0 {
		t.Fatalf("%d tasks lost", lost)
	}
	// Nothing left behind: queue empty and no unacked message.
	c := rs.conn(t)
	defer c.Close()
	if ln, _ := redigo.Int(c.Do("LLEN", queue)); ln != 0 {
		t.Errorf("%d messages left in the queue", ln)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		un, _ := redigo.Int(c.Do("HLEN", "unacked"))
		if un == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d messages left in unacked", un)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestChaosFileTasks: the file task under duplicate deliveries and
// SIGKILLs: every raw file is published twice, a worker is killed while
// conversions run, and at the end each raw file links exactly one
// processed row (no second processed row, no missing one).
func TestChaosFileTasks(t *testing.T) {
	e := newE2EEnv(t)
	rs := startPrivateRedis(t)
	ctx := context.Background()
	const files = 12
	var rawIDs []int64
	for i := range files {
		pf, err := e.seed.Store(ctx, fmt.Sprintf("chaos%d.vcf", i), bigVCF(1<<20+i*4096))
		if err != nil {
			t.Fatal(err)
		}
		rawIDs = append(rawIDs, pf.RawFileID)
	}
	broker, err := redistransport.NewBroker(rs.url(0), redistransport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	var ids []string
	for range 2 {
		for _, raw := range rawIDs {
			id := pyfmt.NewUUID4().String()
			ids = append(ids, id)
			env, err := protocol.EncodeTask(&protocol.TaskMessage{ID: id, Task: tasks.ProcessFileTask,
				Kwargs: map[string]any{"raw_file_id": raw, "sample_id": nil}}, protocol.PublishOptions{Queue: e.queue})
			if err != nil {
				t.Fatal(err)
			}
			if err := broker.Publish(ctx, e.queue, 0, env); err != nil {
				t.Fatal(err)
			}
		}
	}
	env := append(e.env(e.dbURL), rs.workerEnv(e.queue)...) // the private Redis wins
	ws := &chaosWorkers{t: t, env: env, args: []string{"-Q", e.queue, "-c", "2", "--visibility-timeout", "2",
		"--restore-interval", "0.5", "--result-expires", "3600", "--without-mingle", "--without-heartbeat", "-l", "info"}}
	ws.start(0)
	ws.start(1)
	killed := 0
	deadline := time.Now().Add(3 * time.Minute)
	for {
		states := rs.states(t, ids)
		k, failed := 0, 0
		for _, s := range states {
			switch s {
			case protocol.StateSuccess:
				k++
			case protocol.StateFailure:
				failed++
			}
		}
		if failed > 0 {
			t.Fatalf("%d file tasks failed", failed)
		}
		if k == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d file tasks succeeded", k, len(ids))
		}
		if killed < 3 && k >= (killed+1)*len(ids)/5 {
			ws.kill(killed % 2)
			killed++
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := pgx.Connect(ctx, strings.Replace(e.dbURL, "postgresql+asyncpg", "postgres", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var total, processed int
	if err := conn.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE id <> ALL($1)) FROM data_files", rawIDs).Scan(&total, &processed); err != nil {
		t.Fatal(err)
	}
	var linked int
	if err := conn.QueryRow(ctx, `SELECT count(DISTINCT (metadata::jsonb->>'processed_file_id')) FROM data_files WHERE id = ANY($1) AND metadata::jsonb ? 'processed_file_id'`, rawIDs).Scan(&linked); err != nil {
		t.Fatal(err)
	}
	ex := ws.executions(tasks.ProcessFileTask)
	runs := 0
	for _, c := range ex {
		runs += c
	}
	fmt.Printf("chaos file tasks: raw files %d, tasks sent %d (each file twice), task completions %d, SIGKILLs %d, processed rows %d\n",
		files, len(ids), runs, killed, processed)
	if processed != files || linked != files {
		t.Fatalf("%d processed rows, %d linked, want %d each (one per raw file)", processed, linked, files)
	}
}

// TestFairnessFileTasksMaxPerUser: one user's backlog of file tasks does
// not starve another user's upload: with --max-per-user 1 and -c 2, user
// B's task (queued behind 8 of user A's) finishes while A's backlog is
// still being processed, one at a time.
func TestFairnessFileTasksMaxPerUser(t *testing.T) {
	e := newE2EEnv(t)
	rs := startPrivateRedis(t)
	ctx := context.Background()
	userB, err := e.files.CreateUser(ctx, fmt.Sprintf("fair-b-%d@example.org", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	seedB := e.seed.ForUser(userB)
	broker, err := redistransport.NewBroker(rs.url(0), redistransport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	send := func(raw int64) string {
		id := pyfmt.NewUUID4().String()
		env, err := protocol.EncodeTask(&protocol.TaskMessage{ID: id, Task: tasks.ProcessFileTask,
			Kwargs: map[string]any{"raw_file_id": raw, "sample_id": nil}}, protocol.PublishOptions{Queue: e.queue})
		if err != nil {
			t.Fatal(err)
		}
		if err := broker.Publish(ctx, e.queue, 0, env); err != nil {
			t.Fatal(err)
		}
		return id
	}
	var aIDs []string
	for i := range 8 {
		pf, err := e.seed.Store(ctx, fmt.Sprintf("a%d.vcf", i), bigVCF(3<<20))
		if err != nil {
			t.Fatal(err)
		}
		aIDs = append(aIDs, send(pf.RawFileID))
	}
	pb, err := seedB.Store(ctx, "b.vcf", bigVCF(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	bID := send(pb.RawFileID)
	env := append(e.env(e.dbURL), rs.workerEnv(e.queue)...)
	startProc(t, "go worker", interopDir(t), env, workerBinary(t), "worker", "-Q", e.queue, "-c", "2",
		"--max-per-user", "1", "--without-mingle", "--without-heartbeat", "-l", "debug").
		waitFor(t, "worker ready", 1, 30*time.Second)
	deadline := time.Now().Add(3 * time.Minute)
	var aDoneWhenB = -1
	for {
		st := rs.states(t, append([]string{bID}, aIDs...))
		aDone := 0
		for _, s := range st[1:] {
			if s == protocol.StateSuccess {
				aDone++
			}
		}
		if st[0] == protocol.StateSuccess && aDoneWhenB < 0 {
			aDoneWhenB = aDone
		}
		if aDone == len(aIDs) && aDoneWhenB >= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not finished: %v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("user B's task finished when %d of user A's 8 had", aDoneWhenB)
	if aDoneWhenB > 4 {
		t.Fatalf("user B waited for %d of user A's tasks; with --max-per-user 1 it should run beside A's first ones", aDoneWhenB)
	}
}

// chaosLoop waits until every task of ids succeeded, SIGKILLing a random
// worker of ws at kills fixed fractions of the work (so each hits a busy
// worker) and calling disrupt once halfway; it fails the test after 10
// minutes or when a kill or the disruption did not happen, and returns
// the number of kills.
func chaosLoop(t *testing.T, rs *privateRedis, ws *chaosWorkers, ids []string, kills int, began time.Time,
	what string, disrupt func() string) int {
	t.Helper()
	n := len(ids)
	done := func() int {
		k := 0
		for _, s := range rs.states(t, ids) {
			if s == protocol.StateSuccess {
				k++
			}
		}
		return k
	}
	killed, disrupted := 0, false
	deadline := time.Now().Add(10 * time.Minute)
	for {
		k := done()
		if k == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d tasks succeeded after %s (kills %d)", k, n, time.Since(began), killed)
		}
		switch {
		case killed < kills && k >= (killed+1)*n/(kills+2):
			slot := rand.IntN(2)
			time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
			ws.kill(slot)
			killed++
			t.Logf("SIGKILL %d of worker %d at %d/%d succeeded", killed, slot, k, n)
		case !disrupted && k >= n/2:
			out := disrupt()
			disrupted = true
			t.Logf("%s at %d/%d succeeded: %s", what, k, n, out)
		default:
			time.Sleep(50 * time.Millisecond)
		}
	}
	if killed < kills || !disrupted {
		t.Errorf("chaos incomplete: %d kills (want %d), %s done %v", killed, kills, what, disrupted)
	}
	return killed
}
