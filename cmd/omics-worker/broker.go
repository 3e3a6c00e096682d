// Broker selection of the worker subcommand: the broker URL's scheme picks
// the transport (redis://, rediss://, unix:// → redistransport; amqp://,
// pyamqp://, amqps:// → amqptransport), and broker_transport_options come
// as JSON (env CELERY_BROKER_TRANSPORT_OPTIONS, --broker-transport-options).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/protocol/transport/amqptransport"
	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
	"github.com/omicsomics/omics-worker/worker"
	"github.com/omicsomics/omics-worker/worker/control"
	"github.com/omicsomics/omics-worker/worker/metrics"
)

// workerBroker is what the worker subcommand needs from a transport: the
// runtime's broker, the pidbox mailbox, the events publisher (PublishFanout
// is part of the mailbox) and the metrics' gauges.
type workerBroker interface {
	worker.Broker
	control.Mailbox
	metrics.Broker
	Names() protocol.Names
	OnMailboxError(func(op string))
	Close() error
}

// brokerMeta is what `inspect stats`/`inspect conf` show of the broker.
type brokerMeta struct {
	url  string // without password
	info func(cfg worker.Config) map[string]any
}

// isAMQP reports whether the broker URL selects the AMQP transport.
func isAMQP(url string) bool { return amqptransport.IsAMQPURL(url) }

// newBroker builds the transport the broker URL's scheme selects.
func newBroker(o *workerOptions, cfg worker.Config, rcfg redistransport.Config, logger *slog.Logger) (workerBroker, brokerMeta, error) {
	if !isAMQP(o.brokerURL) {
		b, err := redistransport.NewBroker(o.brokerURL, rcfg)
		if err != nil {
			return nil, brokerMeta{}, err
		}
		return b, brokerMeta{url: b.Endpoint().String(), info: func(c worker.Config) map[string]any {
			return control.BrokerInfo(brokerAddress(b.Endpoint()), c)
		}}, nil
	}
	acfg, err := amqpConfig(o, cfg, logger)
	if err != nil {
		return nil, brokerMeta{}, err
	}
	b, err := amqptransport.NewBroker(o.brokerURL, acfg)
	if err != nil {
		return nil, brokerMeta{}, err
	}
	ep := b.Endpoint()
	return b, brokerMeta{url: ep.String(), info: func(c worker.Config) map[string]any {
		info := control.BrokerInfo(control.BrokerAddress{Network: "tcp",
			Address: net.JoinHostPort(ep.URI.Host, strconv.Itoa(ep.URI.Port)), Username: ep.URI.Username,
			TLS: ep.URI.Scheme == "amqps"}, c)
		info["virtual_host"] = ep.URI.Vhost
		info["transport"] = "pyamqp"
		info["transport_options"] = maskedTransportOptions(o.transport.broker.keys)
		return info
	}}, nil
}

// maskedTransportOptions is the transport-options object as `inspect
// stats` shows it: every key as given, except that secrets (sentinel_kwargs
// and any key naming a password) read "**", as URLs do.
func maskedTransportOptions(keys map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(keys))
	for k, v := range keys {
		if k == "sentinel_kwargs" || strings.Contains(strings.ToLower(k), "password") {
			v = json.RawMessage(`"**"`)
		}
		out[k] = v
	}
	return out
}

// amqpConfig maps the worker options and the kombu transport options that
// apply to AMQP onto amqptransport.Config. Keys: max_priority (kombu's
// queue option; Celery's task_queue_max_priority), queue_type (Celery 5.5
// task_default_queue_type), passive_declare, eta_park_after (seconds,
// ours: docs/amqp.md), heartbeat, connect_timeout.
func amqpConfig(o *workerOptions, cfg worker.Config, logger *slog.Logger) (amqptransport.Config, error) {
	ac := amqptransport.Config{NodeName: cfg.Hostname, Logger: logger.With("component", "amqp")}
	if cfg.PrefetchMultiplier > 0 {
		ac.Prefetch = max(cfg.Concurrency, 1) * cfg.PrefetchMultiplier
	}
	to := o.transport.broker.keys
	num := func(k string) (float64, bool, error) {
		var f *float64 // JSON null is not given
		if err := transportOption(to, k, &f); err != nil || f == nil {
			return 0, false, err
		}
		return *f, true, nil
	}
	if f, ok, err := num("max_priority"); err != nil {
		return ac, err
	} else if ok {
		ac.MaxPriority = int(f)
	}
	if f, ok, err := num("eta_park_after"); err != nil {
		return ac, err
	} else if ok {
		if f <= 0 {
			ac.ETAParkAfter = -1
		} else {
			ac.ETAParkAfter = seconds(f)
		}
	}
	if f, ok, err := num("heartbeat"); err != nil {
		return ac, err
	} else if ok {
		ac.Heartbeat = seconds(f)
	}
	if f, ok, err := num("connect_timeout"); err != nil {
		return ac, err
	} else if ok {
		ac.ConnectTimeout = seconds(f)
	}
	if err := transportOption(to, "queue_type", &ac.QueueType); err != nil {
		return ac, err
	}
	if err := transportOption(to, "passive_declare", &ac.PassiveDeclare); err != nil {
		return ac, err
	}
	return ac, nil
}

// transportOption decodes key k of the transport options into dst, which
// is left alone when k is absent.
func transportOption(to map[string]json.RawMessage, k string, dst any) error {
	v, ok := to[k]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("broker transport option %s: %w", k, err)
	}
	return nil
}

// amqpResults is the Redis result backend used with an AMQP broker: the
// acknowledgement is a basic.ack on the broker, so the backend's combined
// store+ack (StoreAndAck, StoreAckFetch) must not be offered to the
// runtime; everything else is the Redis backend's.
type amqpResults struct{ rb *redistransport.ResultBackend }

func (a amqpResults) Store(ctx context.Context, m *protocol.ResultMeta) error {
	return a.rb.Store(ctx, m)
}

func (a amqpResults) StoreNoWait(ctx context.Context, m *protocol.ResultMeta) error {
	return a.rb.StoreNoWait(ctx, m)
}

func (a amqpResults) ChordPartReturn(ctx context.Context, groupID, taskID string, groupIndex *int, state string, result any) (protocol.ChordJoin, error) {
	return a.rb.ChordPartReturn(ctx, groupID, taskID, groupIndex, state, result)
}

func (a amqpResults) SetChordSize(ctx context.Context, groupID string, size int) error {
	return a.rb.SetChordSize(ctx, groupID, size)
}

// resultsFor returns the backend as the runtime must see it with broker.
func resultsFor(broker workerBroker, rb *redistransport.ResultBackend) worker.ResultBackend {
	if b, ok := broker.(*redistransport.Broker); ok {
		rb.UseBroker(b) // StoreAndAck: result + ack in one round trip
		return rb
	}
	return amqpResults{rb}
}
