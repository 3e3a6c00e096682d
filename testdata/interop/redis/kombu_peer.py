"""A real kombu/redis-py peer for protocol/redis interop tests (our own code).

Run with Debian's /usr/bin/python3 (python3-kombu 5.2.4, python3-redis).
Every command prints one JSON object on stdout.

  kombu_peer.py restore_visible URL PREFIX
      kombu QoS.restore_visible with visibility_timeout=0: restores every
      message in the unacked hash (as recorded by the Go transport).
  kombu_peer.py consume URL PREFIX QUEUE
      consumes one message from QUEUE through kombu's BRPOP path
      (SimpleQueue.get), prints it and acks it.
  kombu_peer.py publish URL PREFIX QUEUE PRIORITY
      publishes {"x": 1} to QUEUE with kombu (SimpleQueue.put).
"""
import json
import sys

from kombu import Connection


def connect(url, prefix, **extra):
    opts = {"global_keyprefix": prefix}
    opts.update(extra)
    return Connection(url, transport_options=opts)


def main():
    cmd, url, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
    if cmd == "restore_visible":
        with connect(url, prefix, visibility_timeout=0) as conn:
            ch = conn.default_channel
            ch.qos.restore_visible(num=None)
            print(json.dumps({"ok": True}))
    elif cmd == "consume":
        queue = sys.argv[4]
        with connect(url, prefix) as conn:
            q = conn.SimpleQueue(queue)
            m = q.get(block=True, timeout=10)
            out = {
                "payload": m.decode(),
                "headers": m.headers,
                "delivery_info": m.delivery_info,
                "delivery_tag": m.delivery_tag,
                "priority": m.properties.get("priority"),
            }
            m.ack()
            q.close()
            print(json.dumps(out))
    elif cmd == "publish":
        queue, prio = sys.argv[4], int(sys.argv[5])
        with connect(url, prefix) as conn:
            q = conn.SimpleQueue(queue)
            q.put({"x": 1}, priority=prio)
            q.close()
            print(json.dumps({"ok": True}))
    else:
        raise SystemExit("unknown command %r" % cmd)


if __name__ == "__main__":
    main()
