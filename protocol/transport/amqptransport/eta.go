package amqptransport

import (
	"context"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The consumer-timeout guard (docs/amqp.md). RabbitMQ closes a channel
// whose oldest unacknowledged delivery is older than consumer_timeout
// (30 min by default) with PRECONDITION_FAILED, which requeues every
// delivery of the channel: a Celery worker holding a countdown of an hour
// loses its channel, and every task running on it is delivered again.
//
// A message whose ETA is more than ETAParkAfter away is therefore not
// held: it is republished, byte for byte (body, properties, headers), to
// a durable "wait" queue <queue>.eta-wait.<N>s whose x-message-ttl is
// ETAParkAfter and whose dead-letter target is the task queue itself; once
// the publisher confirm arrives the original is acknowledged. After the
// TTL RabbitMQ dead-letters the message back into the task queue, where
// any worker takes it again: held if the ETA is now close enough, parked
// again otherwise. No delivery is ever held longer than ETAParkAfter +
// the time to the ETA (< 2 × ETAParkAfter, under the 30 min default with
// the 15 min default), the message is in RabbitMQ the whole time (a
// worker crash loses nothing), and the only duplicate possible is a crash
// between the confirm and the ack (at-least-once, like every requeue).

// parkable reports whether a message due at eta must be parked.
func (b *Broker) parkable(eta time.Time) bool {
	after := b.cfg.parkAfter()
	return after > 0 && eta.Sub(b.now()) > after
}

// ParkQueue is the wait queue of queue for a park delay.
func ParkQueue(queue string, after time.Duration) string {
	return fmt.Sprintf("%s.eta-wait.%ds", queue, int64(after/time.Second))
}

// park republishes d to the wait queue of q and acknowledges it; it
// reports false (the caller then holds d as usual) when that failed.
func (b *Broker) park(s *session, q string, d *amqp.Delivery) bool {
	after := b.cfg.parkAfter().Truncate(time.Second)
	if after < time.Second {
		after = time.Second
	}
	wq := ParkQueue(q, after)
	if err := b.declarePark(s, q, wq, after); err != nil {
		b.log.Warn("amqp: cannot declare the ETA wait queue; holding the message (consumer_timeout applies)",
			"queue", wq, "err", err)
		return false
	}
	p := amqp.Publishing{
		Headers: d.Headers, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding,
		DeliveryMode: amqp.Persistent, Priority: d.Priority, CorrelationId: d.CorrelationId,
		ReplyTo: d.ReplyTo, Expiration: d.Expiration, MessageId: d.MessageId, Timestamp: d.Timestamp,
		Type: d.Type, UserId: d.UserId, AppId: d.AppId, Body: d.Body,
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := b.publishConfirmed(ctx, s, "", wq, p); err != nil {
		b.log.Warn("amqp: parking an ETA message failed; holding it (consumer_timeout applies)",
			"queue", q, "err", err)
		return false
	}
	if err := s.ch.Ack(d.DeliveryTag, false); err != nil {
		// The channel died: the original comes back as well (a duplicate
		// with the same task id, at-least-once).
		b.log.Warn("amqp: ack of a parked ETA message failed; it will be delivered again", "err", err)
	}
	b.log.Debug("amqp: ETA message parked", "queue", q, "wait_queue", wq, "task_id", headerString(d.Headers, "id"))
	return true
}

// declarePark declares the wait queue: durable, x-message-ttl = after,
// dead-lettered to the default exchange with routing key = the task queue.
func (b *Broker) declarePark(s *session, q, wq string, after time.Duration) error {
	if s.isDeclared("p:" + wq) {
		return nil
	}
	args := amqp.Table{
		"x-message-ttl":             int64(after / time.Millisecond),
		"x-dead-letter-exchange":    "",
		"x-dead-letter-routing-key": q,
	}
	err := s.withTemp(func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare(wq, true, false, false, false, args)
		return err
	})
	if err != nil {
		return err
	}
	s.setDeclared("p:" + wq)
	return nil
}
