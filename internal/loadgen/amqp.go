package loadgen

// AMQP publish mode: with an amqp://, pyamqp:// or amqps:// broker URL the
// messages go through amqptransport's Publish (the queue declared as
// Celery declares it, persistent, publisher confirms), as the worker's own
// publishes do. A batch is published by amqpPublishers goroutines at once
// so that confirms overlap instead of costing one round trip per task;
// results are still collected from the Redis result backend.

import (
	"context"
	"sync"
	"time"

	redigo "github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/protocol/transport/amqptransport"
)

// amqpPublishers is the number of publishes in flight in a batch.
const amqpPublishers = 32

func isAMQP(url string) bool { return amqptransport.IsAMQPURL(url) }

// openAMQP connects (before the clock starts) and returns the batch
// publisher; pub is nil (no Redis broker connection).
func openAMQP(ctx context.Context, cfg Config) (pushFunc, redigo.Conn, func(), error) {
	b, err := amqptransport.NewBroker(cfg.BrokerURL, amqptransport.Config{})
	if err != nil {
		return nil, nil, nil, err
	}
	if err := b.Ping(ctx); err != nil {
		_ = b.Close()
		return nil, nil, nil, err
	}
	push := func(msgs [][]byte, enq []time.Duration, now time.Duration) error {
		return publishAMQPBatch(ctx, b, cfg.Queue, cfg.Priority, msgs, enq, now)
	}
	return push, nil, func() { _ = b.Close() }, nil
}

// publishAMQPBatch publishes msgs with up to amqpPublishers confirmed
// publishes in flight and returns the first error.
func publishAMQPBatch(ctx context.Context, b *amqptransport.Broker, queue string, prio int, msgs [][]byte, enq []time.Duration, now time.Duration) error {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	next := make(chan int)
	for range min(amqpPublishers, len(msgs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := b.Publish(ctx, queue, prio, msgs[i]); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for i := range msgs {
		enq[i] = now
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}
