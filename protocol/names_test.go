package protocol

import (
	"reflect"
	"testing"
)

const S = DefaultSep

func TestNames(t *testing.T) {
	def := DefaultNames(0)
	db3 := DefaultNames(3)
	pfx := DefaultNames(0)
	pfx.GlobalKeyPrefix = "pfx:"
	custom := Names{Sep: ":", PrioritySteps: []int{0, 5}, DB: 1, FanoutPrefix: "fx.", FanoutPatterns: false, ResultKeyPrefix: "res"}
	noFanoutPrefix := DefaultNames(2)
	noFanoutPrefix.NoFanoutPrefix = true
	resColon := Names{ResultKeyPrefix: "app:"}
	zero := Names{}

	tests := []struct {
		name string
		got  any
		want any
	}{
		{"step 0", def.PriorityStep(0), 0},
		{"step 2", def.PriorityStep(2), 0},
		{"step 3", def.PriorityStep(3), 3},
		{"step 5", def.PriorityStep(5), 3},
		{"step 8", def.PriorityStep(8), 6},
		{"step 9", def.PriorityStep(9), 9},
		{"step clamp high", def.PriorityStep(200), 9},
		{"step clamp low", def.PriorityStep(-4), 0},
		{"custom steps", custom.PriorityStep(7), 5},
		{"steps without 0 (Python steps[-1])", Names{PrioritySteps: []int{2, 5}}.PriorityStep(1), 5},
		{"queue key p0", def.QueueKey("celery", 0), "celery"},
		{"queue key p4", def.QueueKey("celery", 4), "celery" + S + "3"},
		{"queue key p9 prefixed", pfx.QueueKey("celery", 9), "pfx:celery" + S + "9"},
		{"queue key custom sep", custom.QueueKey("q", 9), "q:5"},
		{"queue keys", def.QueueKeys("celery"), []string{"celery", "celery" + S + "3", "celery" + S + "6", "celery" + S + "9"}},
		{"queue keys prefixed", pfx.QueueKeys("a"), []string{"pfx:a", "pfx:a" + S + "3", "pfx:a" + S + "6", "pfx:a" + S + "9"}},
		{"consume keys", def.ConsumeKeys([]string{"q1", "q2"}), []string{"q1", "q2", "q1" + S + "3", "q2" + S + "3", "q1" + S + "6", "q2" + S + "6", "q1" + S + "9", "q2" + S + "9"}},
		{"consume keys none", len(def.ConsumeKeys(nil)), 0},
		{"queue from key", def.QueueFromKey("celery" + S + "6"), "celery"},
		{"queue from base key", def.QueueFromKey("celery"), "celery"},
		{"queue from prefixed key", pfx.QueueFromKey("pfx:celery" + S + "3"), "celery"},
		{"queue from key with dots", def.QueueFromKey("a.b.c"), "a.b.c"},
		{"binding key", def.BindingKey("celery"), "_kombu.binding.celery"},
		{"binding key prefixed", pfx.BindingKey("celery.pidbox"), "pfx:_kombu.binding.celery.pidbox"},
		{"binding member direct", def.BindingMember("celery", "", "celery"), "celery" + S + S + "celery"},
		{"binding member pidbox", def.BindingMember("", "", "celery@h.celery.pidbox"), S + S + "celery@h.celery.pidbox"},
		{"binding member topic", def.BindingMember("worker.#", `^worker\..*?$`, "q"), "worker.#" + S + `^worker\..*?$` + S + "q"},
		{"unacked", def.UnackedKey(), "unacked"},
		{"unacked index", def.UnackedIndexKey(), "unacked_index"},
		{"unacked mutex", def.UnackedMutexKey(), "unacked_mutex"},
		{"unacked prefixed", pfx.UnackedKey(), "pfx:unacked"},
		{"unacked custom", Names{Unacked: "u2"}.UnackedKey(), "u2"},
		{"fanout channel", def.FanoutChannel("celeryev", "task.succeeded"), "/0.celeryev/task.succeeded"},
		{"fanout channel no rk", def.FanoutChannel("celery.pidbox", ""), "/0.celery.pidbox"},
		{"fanout channel db3", db3.FanoutChannel("x", "y"), "/3.x/y"},
		{"fanout no patterns", custom.FanoutChannel("celeryev", "task.succeeded"), "fx.celeryev"},
		{"fanout no prefix", noFanoutPrefix.FanoutChannel("celeryev", "a"), "celeryev/a"},
		{"fanout prefixed", pfx.FanoutChannel("celeryev", "a"), "pfx:/0.celeryev/a"},
		{"fanout pattern all", def.FanoutPattern("celeryev", "#"), "/0.celeryev/*"},
		{"fanout pattern gossip", def.FanoutPattern("celeryev", "worker.#"), "/0.celeryev/worker.*"},
		{"fanout pattern pidbox", def.FanoutPattern("celery.pidbox", ""), "/0.celery.pidbox"},
		{"pidbox channel", def.PidboxChannel(), "/0.celery.pidbox"},
		{"pidbox channel db3 prefixed", func() string { n := db3; n.GlobalKeyPrefix = "p"; return n.PidboxChannel() }(), "p/3.celery.pidbox"},
		{"zero value pidbox", zero.PidboxChannel(), "/0.celery.pidbox"},
		{"event channel", def.EventChannel("task-succeeded"), "/0.celeryev/task.succeeded"},
		{"event channel heartbeat", db3.EventChannel("worker-heartbeat"), "/3.celeryev/worker.heartbeat"},
		{"event routing key", EventRoutingKey("task-multi"), "task.multi"},
		{"pidbox queue", PidboxQueue("celery@h"), "celery@h.celery.pidbox"},
		{"reply queue", ReplyQueue("oid"), "oid.reply.celery.pidbox"},
		{"result key", def.ResultKey("abc"), "celery-task-meta-abc"},
		{"result key not broker-prefixed", pfx.ResultKey("abc"), "celery-task-meta-abc"},
		{"result key prefix gets _", custom.ResultKey("abc"), "res_celery-task-meta-abc"},
		{"result key prefix with colon", resColon.ResultKey("abc"), "app:celery-task-meta-abc"},
		{"group result key", def.GroupResultKey("g"), "celery-taskset-meta-g"},
		{"strip prefix", pfx.StripPrefix("pfx:/0.celeryev/x"), "/0.celeryev/x"},
		{"strip prefix absent", pfx.StripPrefix("other"), "other"},
		{"constants", []string{PidboxExchange, ReplyExchange, EventExchange, DefaultSep}, []string{"celery.pidbox", "reply.celery.pidbox", "celeryev", "\x06\x16"}},
	}
	for _, tc := range tests {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestParseBindingMember(t *testing.T) {
	n := DefaultNames(0)
	tests := []struct {
		in         string
		rk, pat, q string
		ok         bool
	}{
		{"celery" + S + S + "celery", "celery", "", "celery", true},
		{S + S + "node.celery.pidbox", "", "", "node.celery.pidbox", true},
		{"worker.#" + S + `^worker\..*?$` + S + "celeryev.x", "worker.#", `^worker\..*?$`, "celeryev.x", true},
		{"a" + S + "b", "", "", "", false},
		{"a" + S + "b" + S + "c" + S + "d", "", "", "", false},
	}
	for _, tc := range tests {
		rk, pat, q, ok := n.ParseBindingMember(tc.in)
		if rk != tc.rk || pat != tc.pat || q != tc.q || ok != tc.ok {
			t.Errorf("ParseBindingMember(%q) = %q %q %q %v", tc.in, rk, pat, q, ok)
		}
		if ok && n.BindingMember(rk, pat, q) != tc.in {
			t.Errorf("BindingMember round trip failed for %q", tc.in)
		}
	}
}

func TestParseFanoutChannel(t *testing.T) {
	pfx := DefaultNames(5)
	pfx.GlobalKeyPrefix = "p:"
	tests := []struct {
		n      Names
		in     string
		ex, rk string
	}{
		{DefaultNames(0), "/0.celeryev/task.succeeded", "celeryev", "task.succeeded"},
		{DefaultNames(0), "/0.celery.pidbox", "celery.pidbox", ""},
		{DefaultNames(0), "/7.celeryev/worker.heartbeat", "celeryev", "worker.heartbeat"},
		{pfx, "p:/5.celery.pidbox", "celery.pidbox", ""},
		{Names{NoFanoutPrefix: true}, "celeryev/x", "celeryev", "x"},
	}
	for _, tc := range tests {
		ex, rk := tc.n.ParseFanoutChannel(tc.in)
		if ex != tc.ex || rk != tc.rk {
			t.Errorf("ParseFanoutChannel(%q) = %q, %q", tc.in, ex, rk)
		}
	}
}
