// Package protocol implements the Celery/kombu wire formats used on Redis:
// the kombu envelope, Celery task messages (protocol v1 and v2), result
// metas, Python-decodable exception dicts, remote-control (pidbox) requests
// and replies, event bodies, Python repr of JSON values, and every Redis key,
// list and channel name. It is pure: it performs no I/O and imports only the
// standard library.
package protocol
