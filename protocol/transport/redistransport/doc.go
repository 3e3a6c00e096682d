// Package redistransport is the kombu Redis transport and celery's Redis
// result backend, over redigo: task queues with priority sub-lists, kombu's
// ack emulation (unacked, unacked_index, unacked_mutex), restore of
// messages past the visibility timeout, bindings and fanout pub/sub for
// pidbox and events, and result writes (GET-check + SETEX + PUBLISH).
//
// Every key and channel name comes from protocol.Names; this package only
// does the I/O. It satisfies the Broker and ResultBackend interfaces that
// package worker declares. See docs/redis.md.
package redistransport
