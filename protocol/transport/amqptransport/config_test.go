package amqptransport

import (
	"testing"
	"time"
)

// TestConfigDefaults pins the defaults a zero or negative duration falls
// back to, and that a set one is kept.
func TestConfigDefaults(t *testing.T) {
	var zero Config
	neg := Config{ControlQueueTTL: -1, ControlQueueExpires: -1, Heartbeat: -1, ConnectTimeout: -1}
	set := Config{ControlQueueTTL: time.Second, ControlQueueExpires: 2 * time.Second, Heartbeat: 3 * time.Second, ConnectTimeout: 4 * time.Millisecond}
	cases := []struct {
		name string
		get  func(Config) time.Duration
		def  time.Duration
		set  time.Duration
	}{
		{"controlTTL", Config.controlTTL, 300 * time.Second, time.Second},
		{"controlExpires", Config.controlExpires, 10 * time.Second, 2 * time.Second},
		{"heartbeat", Config.heartbeat, 60 * time.Second, 3 * time.Second},
		{"connectTimeout", Config.connectTimeout, 4 * time.Second, 4 * time.Millisecond},
	}
	for _, c := range cases {
		if got := c.get(zero); got != c.def {
			t.Errorf("%s(zero) = %v, want %v", c.name, got, c.def)
		}
		if got := c.get(neg); got != c.def {
			t.Errorf("%s(negative) = %v, want %v", c.name, got, c.def)
		}
		if got := c.get(set); got != c.set {
			t.Errorf("%s(set) = %v, want %v", c.name, got, c.set)
		}
	}
}
