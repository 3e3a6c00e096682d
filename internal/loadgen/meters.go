package loadgen

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// usage is the CPU and memory a run cost.
type usage struct {
	workerCPUus, ownCPUus int64
	rssStart, rssPeak     int64 // KiB of the watched tree
}

// meters samples the watched process tree's RSS and takes CPU counters
// at start and stop.
type meters struct {
	pid                int
	cpuStart, ownStart int64
	rssStart, rssPeak  int64
	stopSampler, done  chan struct{}
}

// startMeters starts the RSS sampler of pid's tree (none when pid is 0).
func startMeters(pid int, every time.Duration) *meters {
	m := &meters{pid: pid, stopSampler: make(chan struct{}), done: make(chan struct{})}
	if pid > 0 {
		m.cpuStart = treeCPUus(pid)
	}
	m.ownStart = selfCPUus()
	if pid <= 0 {
		close(m.done)
		return m
	}
	m.rssStart = treeRSSKiB(pid)
	m.rssPeak = m.rssStart
	go func() {
		defer close(m.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-m.stopSampler:
				return
			case <-t.C:
				m.rssPeak = max(m.rssPeak, treeRSSKiB(pid))
			}
		}
	}()
	return m
}

// stop ends the sampler and returns what the run cost.
func (m *meters) stop() usage {
	close(m.stopSampler)
	<-m.done
	u := usage{rssStart: m.rssStart, rssPeak: m.rssPeak, ownCPUus: selfCPUus() - m.ownStart}
	if m.pid > 0 {
		u.workerCPUus = treeCPUus(m.pid) - m.cpuStart
	}
	return u
}

// clockTick is USER_HZ, 100 on every Linux platform Go supports.
const clockTick = 100

// treeCPUus sums utime+stime+cutime+cstime over pid and its descendants
// (cutime/cstime hold the children already reaped, e.g. recycled prefork
// children), in microseconds.
func treeCPUus(pid int) int64 {
	var ticks int64
	for _, p := range treePIDs(pid) {
		f := statFields(p)
		// after ")": state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
		if len(f) < 15 {
			continue
		}
		for _, k := range f[11:15] {
			n, _ := strconv.ParseInt(k, 10, 64)
			ticks += n
		}
	}
	return ticks * (1_000_000 / clockTick)
}

// statFields returns the fields of /proc/<pid>/stat after the command
// name (which may hold spaces and parentheses); nil if unreadable.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// selfCPUus is this process's CPU time (user+sys) in microseconds.
func selfCPUus() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano()/1000 + ru.Stime.Nano()/1000
}

// treeRSSKiB sums the resident set size of pid and all its descendants
// (prefork pools are a process tree). 0 if pid is gone.
func treeRSSKiB(pid int) int64 {
	var total int64
	page := int64(os.Getpagesize())
	for _, p := range treePIDs(pid) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/statm")
		if err == nil {
			f := strings.Fields(string(b))
			if len(f) > 1 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				total += n * page / 1024
			}
		}
	}
	return total
}

// treePIDs returns pid and its descendants (pid even if it is gone).
func treePIDs(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(p); len(f) >= 2 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	stack := []int{pid}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out = append(out, p)
		stack = append(stack, children[p]...)
	}
	return out
}
