package worker

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeClock is a settable monotonic clock.
type fakeClock struct{ t float64 }

func (c *fakeClock) now() float64 { return c.t }

func TestRevokedSetLimits(t *testing.T) {
	clk := &fakeClock{t: 1000}
	s := &RevokedSet{MaxLen: 3, Expires: 10 * time.Second, Now: clk.now}
	for i := range 5 {
		clk.t++
		s.Add(fmt.Sprintf("id%d", i))
	}
	if got := s.IDs(); strings.Join(got, ",") != "id2,id3,id4" {
		t.Fatalf("after overflow: %v", got)
	}
	if !s.Contains("id4") || s.Contains("id0") {
		t.Fatal("Contains wrong after overflow")
	}
	clk.t += 8.5 // now 1013.5: id2 (1003) expired, id3 (1004) not yet
	s.Purge()
	if got := s.IDs(); strings.Join(got, ",") != "id3,id4" {
		t.Fatalf("after expiry: %v", got)
	}
	s.Add("id3") // refresh
	clk.t += 2
	if got := s.IDs(); strings.Join(got, ",") != "id3" {
		t.Fatalf("after refresh: %v", got)
	}
	s.Discard("id3")
	if s.Len() != 0 {
		t.Fatal("discard")
	}
}

func TestRevokedSetDefaults(t *testing.T) {
	var s RevokedSet
	for i := range RevokesMax + 10 {
		s.Add(fmt.Sprint(i))
	}
	if n := s.Len(); n > RevokesMax {
		t.Fatalf("len %d > %d", n, RevokesMax)
	}
	if s.Contains("0") || !s.Contains(fmt.Sprint(RevokesMax+9)) {
		t.Fatal("oldest must go first")
	}
}

func TestRevokedSetMerge(t *testing.T) {
	clk := &fakeClock{t: 50000}
	s := &RevokedSet{Now: clk.now}
	s.Merge(map[string]float64{
		"recent":  49990,     // kept as is
		"future":  99999,     // another host's clock: now
		"ancient": 10,        // older than the expiry: now (never drop a shared revoke)
		"older":   49000.125, // kept
	})
	snap := s.Snapshot()
	want := map[string]float64{"recent": 49990, "future": 50000, "ancient": 50000, "older": 49000.125}
	for k, v := range want {
		if snap[k] != v {
			t.Errorf("%s: %v, want %v", k, snap[k], v)
		}
	}
	s.Merge(map[string]float64{"recent": 49000}) // older: ignored
	if s.Snapshot()["recent"] != 49990 {
		t.Error("an older merge replaced a newer entry")
	}
}

func TestStateDBRoundTrip(t *testing.T) {
	clk := &fakeClock{t: 500}
	s := &RevokedSet{Now: clk.now}
	s.Add("a")
	clk.t = 600
	s.Add("b")
	path := filepath.Join(t.TempDir(), "state.db")
	if err := s.SaveStateFile(path, 42); err != nil {
		t.Fatal(err)
	}
	// a restart: new process, new monotonic base
	clk2 := &fakeClock{t: 7}
	r := &RevokedSet{Now: clk2.now}
	clock, err := r.LoadStateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if clock != 42 {
		t.Errorf("clock %d", clock)
	}
	if got := strings.Join(r.IDs(), ","); got != "a,b" {
		t.Fatalf("ids %q", got)
	}
	snap := r.Snapshot()
	if age := 7 - snap["a"]; age < 100 || age > 101 {
		t.Errorf("age of a = %v, want ~100", age)
	}
	// missing file: empty, no error
	if _, err := r.LoadStateFile(filepath.Join(t.TempDir(), "none")); err != nil {
		t.Fatal(err)
	}
}

func TestStateDBErrors(t *testing.T) {
	for name, in := range map[string]string{
		"bad header":  "{\"format\": \"x\"}\n",
		"bad version": "{\"format\": \"omics-worker-statedb\", \"version\": 9}\n",
		"bad line":    "{\"format\": \"omics-worker-statedb\", \"version\": 1}\n[\"a\", 1]\n{}\n",
	} {
		t.Run(name, func(t *testing.T) {
			var s RevokedSet
			_, err := s.ReadState(strings.NewReader(in), "f")
			var se *StateDBError
			if !errors.As(err, &se) || !errors.Is(err, ErrStateDB) {
				t.Fatalf("err %v", err)
			}
			if name == "bad line" && se.Line != 3 {
				t.Errorf("line %d", se.Line)
			}
		})
	}
	var buf bytes.Buffer
	var s RevokedSet
	if err := s.WriteState(&buf, 0); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), `{"format":"omics-worker-statedb","version":1,`) {
		t.Errorf("header %q", buf.String())
	}
}

func FuzzReadState(f *testing.F) {
	f.Add([]byte("{\"format\": \"omics-worker-statedb\", \"version\": 1, \"saved_at\": 1, \"clock\": 3}\n[\"a\", 1.5]\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s RevokedSet
		_, _ = s.ReadState(bytes.NewReader(b), "fuzz")
		_ = s.IDs()
	})
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want float64
		err  string
	}{
		{"10/s", 10, ""}, {"100/m", 100.0 / 60, ""}, {"5/h", 5.0 / 3600, ""}, {"0.5", 0.5, ""},
		{"", 0, ""}, {nil, 0, ""}, {"0", 0, ""}, {" 2 /s", 2, ""}, {"1_0/s", 10, ""},
		{"10/x", 0, `KeyError('x')`},
		{"abc/s", 0, `ValueError("could not convert string to float: 'abc'")`},
		{"/s", 0, `ValueError("could not convert string to float: ''")`},
		// Python's float(): '_' only between digits, Unicode digits accepted.
		{"1_.5/s", 0, `ValueError("could not convert string to float: '1_.5'")`},
		{"i_nf/s", 0, `ValueError("could not convert string to float: 'i_nf'")`},
		{"٣/m", 3.0 / 60, ""}, {"１２", 12, ""},
	} {
		got, err := ParseRate(tc.in)
		var re *RateError
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%v: %v", tc.in, err)
		case tc.err != "" && (!errors.As(err, &re) || re.Repr() != tc.err):
			t.Errorf("%v: err %v, want %s", tc.in, err, tc.err)
		case tc.err == "" && got != tc.want:
			t.Errorf("%v: %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestRateLimitSpacing(t *testing.T) {
	r := &rateLimit{perSec: 2}
	now := time.Unix(1000, 0)
	var waits []time.Duration
	for range 4 {
		waits = append(waits, r.reserve(now))
	}
	want := []time.Duration{0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	if w := r.reserve(now.Add(10 * time.Second)); w != 0 {
		t.Fatalf("after idle: %v", w)
	}
}

func TestClock(t *testing.T) {
	var c Clock
	if c.Forward() != 1 || c.Adjust(10) != 11 || c.Adjust(3) != 12 || c.Value() != 12 {
		t.Fatal("lamport clock")
	}
}
