package server

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/palproject/pal/internal/store"
)

// limits bound how fast each principal writes: a token bucket of events a
// principal (one a request, one an event of a batch), so that one tenant's
// or account's flood cannot starve the others. The operator, who carries
// the platform's telemetry, is not limited.
type limits struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[Principal]*rate.Limiter
}

// maxBuckets is how many principals' buckets are kept before the full ones
// (those of principals that wrote nothing lately) are dropped.
const maxBuckets = 100_000

// newLimits returns the limits of perSecond events a principal, in bursts
// of at most burst; nil, no limit, when perSecond is 0.
func newLimits(perSecond float64, burst int) *limits {
	if perSecond <= 0 {
		return nil
	}
	return &limits{rate: rate.Limit(perSecond), burst: max(1, burst), buckets: make(map[Principal]*rate.Limiter)}
}

// charge takes n events from p's bucket at now, or says when to come back.
func (l *limits) charge(p Principal, n int, now time.Time) error {
	if l == nil || p.Role == store.RoleOperator || n == 0 {
		return nil
	}
	if n > l.burst {
		return errorf(codeBadRequest, "a batch of %d events is more than the %d a caller may send at once: send smaller batches", n, l.burst)
	}
	l.mu.Lock()
	b := l.buckets[p]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			for k, v := range l.buckets {
				if v.TokensAt(now) >= float64(l.burst) {
					delete(l.buckets, k)
				}
			}
		}
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets[p] = b
	}
	l.mu.Unlock()
	r := b.ReserveN(now, n)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		retry := int(math.Ceil(wait.Seconds()))
		return &apiError{Code: codeTooMany, RetryAfter: retry,
			Message: "this caller writes faster than the service allows; try again in " + time.Duration(retry*int(time.Second)).String()}
	}
	return nil
}
