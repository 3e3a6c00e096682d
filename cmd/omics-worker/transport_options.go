package main

// Celery's broker_transport_options and result_backend_transport_options,
// given as JSON (env CELERY_BROKER_TRANSPORT_OPTIONS /
// --broker-transport-options, env CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS
// / --result-backend-transport-options) with kombu's and celery's keys,
// applied to the Redis transport (redis://, rediss://, unix://,
// sentinel://). Keys that the Go worker does not use are logged once at
// startup, as ignored; a malformed JSON or a value of the wrong type is a
// usage error (exit 2).

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
)

// transportOptionFlags are the raw JSON values and what they parse to.
type transportOptionFlags struct {
	brokerRaw, backendRaw string
	broker, backend       redisTransportOptions
	visibilityFlagGiven   bool
}

// redisTransportOptions is one parsed transport-options object.
type redisTransportOptions struct {
	// keys is the object as given (nil when none): the AMQP transport
	// reads its own keys from it (broker.go), `inspect stats` shows it.
	keys    map[string]json.RawMessage
	set     func(*redistransport.Config) // applies the recognised keys
	visible time.Duration                // visibility_timeout (0 = not given)
	ignored []string                     // keys without effect here
}

func addTransportOptionFlags(fs *flag.FlagSet, t *transportOptionFlags) {
	fs.StringVar(&t.brokerRaw, "broker-transport-options", "",
		`broker_transport_options as JSON, e.g. {"master_name": "mymaster", "visibility_timeout": 7200} (env CELERY_BROKER_TRANSPORT_OPTIONS)`)
	fs.StringVar(&t.backendRaw, "result-backend-transport-options", "",
		`result_backend_transport_options as JSON, e.g. {"master_name": "mymaster"} (env CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS)`)
}

// redisTransportOptionsEnv fills the flags not given from the environment
// and parses both. set holds the names of the flags given.
func redisTransportOptionsEnv(t *transportOptionFlags, set map[string]bool, getenv func(string) string) error {
	if !set["broker-transport-options"] {
		t.brokerRaw = getenv("CELERY_BROKER_TRANSPORT_OPTIONS")
	}
	if !set["result-backend-transport-options"] {
		t.backendRaw = getenv("CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS")
	}
	t.visibilityFlagGiven = set["visibility-timeout"]
	var err error
	if t.broker, err = redisTransportOptionsParse(t.brokerRaw, false); err != nil {
		return fmt.Errorf("broker transport options: %w", err)
	}
	if t.backend, err = redisTransportOptionsParse(t.backendRaw, true); err != nil {
		return fmt.Errorf("result backend transport options: %w", err)
	}
	return nil
}

// redisTransportOptionsApply returns the broker and backend configurations
// (copies of base with the options applied) and the visibility timeout to
// use (the flag's, unless only the options give one); ignored keys are
// logged (the broker's only when the broker is Redis: the AMQP transport
// reads its own keys).
func (t *transportOptionFlags) redisTransportOptionsApply(base redistransport.Config, visibility time.Duration,
	redisBroker bool, log *slog.Logger) (broker, backend redistransport.Config, vis time.Duration) {
	broker, backend, vis = base, base, visibility
	if t.broker.visible > 0 && !t.visibilityFlagGiven {
		vis = t.broker.visible
	}
	broker.VisibilityTimeout = vis
	if t.broker.set != nil {
		t.broker.set(&broker)
	}
	if t.backend.set != nil {
		t.backend.set(&backend)
	}
	if len(t.broker.ignored) > 0 && redisBroker { // an AMQP broker reads its own keys (broker.go)
		log.Warn("broker transport options without effect in the Go worker", "keys", t.broker.ignored)
	}
	if len(t.backend.ignored) > 0 {
		log.Warn("result backend transport options without effect in the Go worker", "keys", t.backend.ignored)
	}
	return broker, backend, vis
}

// sentinelKwargs is the sentinel_kwargs object (redis-py Sentinel's
// keyword arguments for its connections to the sentinels).
type sentinelKwargs struct {
	Password string `json:"password"`
	Username string `json:"username"`
}

// redisTransportOptionsParse parses one JSON object; "" (or blanks) is
// no options.
func redisTransportOptionsParse(raw string, backend bool) (redisTransportOptions, error) {
	var out redisTransportOptions
	if strings.TrimSpace(raw) == "" {
		return out, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return out, fmt.Errorf("want a JSON object: %w", err)
	}
	if m == nil {
		return out, errors.New("want a JSON object, not null")
	}
	out.keys = m
	var setters []func(*redistransport.Config)
	add := func(f func(*redistransport.Config)) { setters = append(setters, f) }
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		var err error
		switch {
		case k == "master_name":
			var s string
			err = json.Unmarshal(v, &s)
			add(func(c *redistransport.Config) { c.MasterName = s })
		case k == "sentinel_kwargs":
			var sk sentinelKwargs
			err = json.Unmarshal(v, &sk)
			add(func(c *redistransport.Config) { c.SentinelPassword, c.SentinelUsername = sk.Password, sk.Username })
		case k == "global_keyprefix":
			var s string
			err = json.Unmarshal(v, &s)
			if backend {
				add(func(c *redistransport.Config) { c.ResultKeyPrefix = s })
			} else {
				add(func(c *redistransport.Config) { c.GlobalKeyPrefix = s })
			}
		case k == "socket_timeout":
			var d time.Duration
			d, err = jsonSeconds(v)
			add(func(c *redistransport.Config) { c.ReadTimeout, c.WriteTimeout = d, d })
		case k == "socket_connect_timeout":
			var d time.Duration
			d, err = jsonSeconds(v)
			add(func(c *redistransport.Config) { c.DialTimeout = d })
		case backend:
			out.ignored = append(out.ignored, k)
		default:
			var f func(*redistransport.Config)
			f, err = redisBrokerOption(k, v, &out)
			if f != nil {
				add(f)
			}
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", k, err)
		}
	}
	out.set = func(c *redistransport.Config) {
		for _, f := range setters {
			f(c)
		}
	}
	return out, nil
}

// redisBrokerOption parses the kombu Redis transport keys that only the
// broker has; unknown keys are recorded in o.ignored.
func redisBrokerOption(k string, v json.RawMessage, o *redisTransportOptions) (func(*redistransport.Config), error) {
	str := func(dst func(*redistransport.Config, string)) (func(*redistransport.Config), error) {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, err
		}
		return func(c *redistransport.Config) { dst(c, s) }, nil
	}
	switch k {
	case "visibility_timeout":
		d, err := jsonSeconds(v)
		o.visible = d
		return nil, err
	case "sep":
		return str(func(c *redistransport.Config, s string) { c.Sep = s })
	case "unacked_key":
		return str(func(c *redistransport.Config, s string) { c.UnackedKey = s })
	case "unacked_index_key":
		return str(func(c *redistransport.Config, s string) { c.UnackedIndexKey = s })
	case "unacked_mutex_key":
		return str(func(c *redistransport.Config, s string) { c.UnackedMutexKey = s })
	case "unacked_mutex_expire":
		d, err := jsonSeconds(v)
		return func(c *redistransport.Config) { c.UnackedMutexExpire = d }, err
	case "unacked_restore_limit":
		var n int
		err := json.Unmarshal(v, &n)
		return func(c *redistransport.Config) { c.RestoreLimit = n }, err
	case "max_connections":
		var n int
		err := json.Unmarshal(v, &n)
		return func(c *redistransport.Config) { c.MaxActive = n }, err
	case "priority_steps":
		var steps []int
		if err := json.Unmarshal(v, &steps); err != nil || len(steps) == 0 || !slices.IsSorted(steps) {
			return nil, fmt.Errorf("want a sorted, non-empty list of integers, not %s", v)
		}
		return func(c *redistransport.Config) { c.PrioritySteps = steps }, nil
	case "fanout_prefix":
		var b bool
		if json.Unmarshal(v, &b) == nil {
			return func(c *redistransport.Config) { c.NoFanoutPrefix = !b }, nil
		}
		return str(func(c *redistransport.Config, s string) { c.FanoutPrefix = s })
	case "fanout_patterns":
		var b bool
		err := json.Unmarshal(v, &b)
		return func(c *redistransport.Config) { c.NoFanoutPatterns = !b }, err
	}
	o.ignored = append(o.ignored, k)
	return nil, nil
}

// jsonSeconds reads a non-negative number of seconds.
func jsonSeconds(v json.RawMessage) (time.Duration, error) {
	var f float64
	if err := json.Unmarshal(v, &f); err != nil {
		return 0, fmt.Errorf("want a number of seconds, not %s", v)
	}
	if f < 0 || math.IsNaN(f) || f > 1e9 {
		return 0, fmt.Errorf("want a non-negative number of seconds, not %s", v)
	}
	return time.Duration(f * float64(time.Second)), nil
}
