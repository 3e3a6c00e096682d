// Package transport groups the kombu transports: the network I/O that
// moves the wire formats of package protocol (which stays pure) between
// the worker and a broker. Each transport is a sub-package
// (redistransport, amqptransport) that satisfies the interfaces package
// worker declares; what they share (ErrorHook) lives here.
package transport
