package redistransport

import (
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/spinconn"
)

// replySpin is how long the group-commit writer's connection polls its
// socket for a reply before parking the reading goroutine in the
// netpoller (internal/spinconn): a reply to a result batch comes back
// within ~20–150 µs, which on a virtual machine costs less polled than
// parked.
const replySpin = 100 * time.Microsecond

// spinDialer returns a redis dial function whose connections poll for
// readable data for up to spin before parking.
func spinDialer(timeout, spin time.Duration) redis.DialOption {
	return redis.DialContextFunc(spinconn.Dialer(timeout, spin))
}
