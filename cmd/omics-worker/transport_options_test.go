package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
)

func TestRedisTransportOptions(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		wantBroker  redistransport.Config
		wantBackend redistransport.Config
		wantVis     time.Duration
	}{
		{name: "none", wantVis: time.Hour,
			wantBroker: redistransport.Config{VisibilityTimeout: time.Hour}},
		{name: "sentinel env",
			env: map[string]string{
				"CELERY_BROKER_TRANSPORT_OPTIONS":         `{"master_name": "mm", "sentinel_kwargs": {"password": "sp"}, "visibility_timeout": 30, "global_keyprefix": "gk:", "fanout_prefix": "/{db}.", "priority_steps": [0, 5], "unacked_restore_limit": 7, "socket_timeout": 2.5}`,
				"CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS": `{"master_name": "rm", "sentinel_kwargs": {"password": "rp", "username": "ru"}, "global_keyprefix": "rk"}`,
			},
			wantVis: 30 * time.Second,
			wantBroker: redistransport.Config{VisibilityTimeout: 30 * time.Second, MasterName: "mm", SentinelPassword: "sp",
				GlobalKeyPrefix: "gk:", FanoutPrefix: "/{db}.", PrioritySteps: []int{0, 5}, RestoreLimit: 7,
				ReadTimeout: 2500 * time.Millisecond, WriteTimeout: 2500 * time.Millisecond},
			wantBackend: redistransport.Config{MasterName: "rm", SentinelPassword: "rp", SentinelUsername: "ru", ResultKeyPrefix: "rk"}},
		{name: "flag wins over env, visibility flag wins",
			args:       []string{"--broker-transport-options", `{"master_name": "flag", "visibility_timeout": 5, "fanout_prefix": false, "fanout_patterns": false}`, "--visibility-timeout", "9"},
			env:        map[string]string{"CELERY_BROKER_TRANSPORT_OPTIONS": `{"master_name": "env"}`},
			wantVis:    9 * time.Second,
			wantBroker: redistransport.Config{VisibilityTimeout: 9 * time.Second, MasterName: "flag", NoFanoutPrefix: true, NoFanoutPatterns: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, code := parseWorkerOptions(tt.args, io.Discard, func(k string) string { return tt.env[k] })
			if o == nil {
				t.Fatalf("parse: exit %d", code)
			}
			cfg, err := workerConfig(o)
			if err != nil {
				t.Fatal(err)
			}
			b, rb, vis := o.transport.redisTransportOptionsApply(redistransport.Config{}, cfg.VisibilityTimeout, true, slog.New(slog.DiscardHandler))
			if vis != tt.wantVis {
				t.Errorf("visibility = %s; want %s", vis, tt.wantVis)
			}
			if !reflect.DeepEqual(b, tt.wantBroker) {
				t.Errorf("broker config\n got %+v\nwant %+v", b, tt.wantBroker)
			}
			if !reflect.DeepEqual(rb, tt.wantBackend) {
				t.Errorf("backend config\n got %+v\nwant %+v", rb, tt.wantBackend)
			}
		})
	}
}

func TestRedisTransportOptionsErrors(t *testing.T) {
	for _, env := range []string{
		`[1]`, `{"master_name": 3}`, `{"visibility_timeout": "x"}`, `{"visibility_timeout": -1}`,
		`{"priority_steps": [5, 0]}`, `{"sentinel_kwargs": "pw"}`, `{`,
	} {
		var stderr strings.Builder
		o, code := parseWorkerOptions(nil, &stderr, func(k string) string {
			if k == "CELERY_BROKER_TRANSPORT_OPTIONS" {
				return env
			}
			return ""
		})
		if o != nil || code != 2 || !strings.Contains(stderr.String(), "broker transport options") {
			t.Errorf("%s: exit %d, stderr %q; want a usage error", env, code, stderr.String())
		}
	}
	// Unknown keys are accepted and reported as ignored.
	o, _ := parseWorkerOptions(nil, io.Discard, func(k string) string {
		if k == "CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS" {
			return `{"min_other_sentinels": 1, "retry_policy": {}}`
		}
		return ""
	})
	if o == nil || !reflect.DeepEqual(o.transport.backend.ignored, []string{"min_other_sentinels", "retry_policy"}) {
		t.Fatalf("ignored keys: %+v", o)
	}
}

// TestComposeSentinelFile validates docker-compose.sentinel.yml (no
// Docker engine here): three sentinels monitor the `redis` service under
// the master_name the worker is given, and the worker's environment
// parses to a sentinel:// broker and backend with that name.
func TestComposeSentinelFile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.sentinel.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.sentinel.yml: %v", err)
	}
	const name = "omicsmaster"
	for _, s := range []string{"sentinel1", "sentinel2", "sentinel3"} {
		cmd := fmt.Sprint(c.Services[s].Command)
		if !strings.Contains(cmd, "sentinel monitor "+name+" redis 6379 2") || !strings.Contains(cmd, "port 26379") {
			t.Errorf("%s: command %q does not monitor redis:6379 as %s", s, cmd, name)
		}
	}
	if !strings.Contains(fmt.Sprint(c.Services["redis-replica"].Command), "--replicaof redis 6379") {
		t.Errorf("redis-replica is not a replica of redis")
	}
	env := c.Services["celery-worker"].Environment
	o, code := parseWorkerOptions(nil, io.Discard, func(k string) string { return env[k] })
	if o == nil {
		t.Fatalf("worker options: exit %d", code)
	}
	b, rb, _ := o.transport.redisTransportOptionsApply(redistransport.Config{}, time.Hour, true, slog.New(slog.DiscardHandler))
	for _, u := range []struct {
		url string
		cfg redistransport.Config
	}{{o.brokerURL, b}, {o.backendURL, rb}} {
		ep, err := redistransport.ParseURL(u.url)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"sentinel1:26379", "sentinel2:26379", "sentinel3:26379"}
		if !reflect.DeepEqual(ep.Sentinels, want) || u.cfg.MasterName != name {
			t.Errorf("%s: sentinels %v, master_name %q; want %v, %q", u.url, ep.Sentinels, u.cfg.MasterName, want, name)
		}
	}
}
