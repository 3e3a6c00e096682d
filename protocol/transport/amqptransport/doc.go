// Package amqptransport is the kombu py-amqp transport (AMQP 0-9-1, RabbitMQ)
// for the worker: task queues with Celery's declarations, basic.qos
// prefetch, real acknowledgements, remote control over the celery.pidbox
// fanout exchange with replies through reply.celery.pidbox, events over the
// celeryev topic exchange, and reconnection with re-declare and re-consume.
//
// The worker's interfaces (worker.Broker, control.Mailbox,
// events.Publisher, metrics.Broker) speak kombu's Redis envelope; this
// package converts between that envelope and AMQP messages (convert.go),
// so the runtime above is the same for both brokers. See docs/amqp.md.
package amqptransport
