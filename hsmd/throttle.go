package hsmd

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// Login throttling: after failed logins, the next attempt for the same
// account must wait: nothing after the first failure, then 1 s, 2 s, 4 s …
// up to throttleCap. A client certificate gets certFree failures more
// before it waits the same way (an application's slip costs nothing; a
// certificate spraying guesses over many accounts is slowed). A throttled
// attempt is refused before anything is checked or written, so it costs
// no argon2id work, no log entry, and it does not count towards the
// lockout. The state is in memory on each node: it slows guessing, while
// the lockout (five guesses, counted through the log) bounds it. A
// concurrent burst passes the throttle together (it decides on failures
// already seen); the lockout and the argon2id queue bound such a burst.
//
// The account's key includes its credential generation, so an unlock or a
// password reset starts the account afresh; the certificate's key decays
// only with time (throttleForget without failures), so logging in to an
// account of one's own does not buy more guesses at others.
const (
	throttleCap    = 60 * time.Second
	throttleForget = 15 * time.Minute
	// throttleMaxKeys bounds the table; past it, the oldest entries go.
	throttleMaxKeys = 100000
	// certFree is how many failures more a certificate gets than an
	// account before it waits.
	certFree = 4
)

type strike struct {
	n    int       // failures in a row
	last time.Time // the latest
}

type throttle struct {
	mu   sync.Mutex
	keys map[string]*strike
}

func newThrottle() *throttle { return &throttle{keys: map[string]*strike{}} }

// throttleDelay is how long to wait after n failures in a row.
func throttleDelay(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	if n-2 >= 6 {
		return throttleCap
	}
	return min(time.Duration(1<<(n-2))*time.Second, throttleCap)
}

// keyDelay is throttleDelay for a key of either kind.
func keyDelay(key string, n int) time.Duration {
	if strings.HasPrefix(key, certPrefix) {
		return throttleDelay(n - certFree)
	}
	return throttleDelay(n)
}

const certPrefix = "cert:"

func certKey(fp [32]byte) string { return certPrefix + hex.EncodeToString(fp[:]) }

func accountKey(name string, generation uint64) string {
	return "user:" + name + "#" + strconv.FormatUint(generation, 10)
}

// wait is how long the caller must still wait before another attempt
// under any of the keys (0: go ahead).
func (t *throttle) wait(now time.Time, keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var w time.Duration
	for _, k := range keys {
		s := t.keys[k]
		if s == nil {
			continue
		}
		if now.Sub(s.last) > throttleForget {
			delete(t.keys, k)
			continue
		}
		w = max(w, s.last.Add(keyDelay(k, s.n)).Sub(now))
	}
	return w
}

// failed records a failure under every key.
func (t *throttle) failed(now time.Time, keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.keys) >= throttleMaxKeys {
		t.sweepLocked(now, true)
	}
	for _, k := range keys {
		s := t.keys[k]
		if s == nil || now.Sub(s.last) > throttleForget {
			s = &strike{}
			t.keys[k] = s
		}
		s.n++
		s.last = now
	}
}

// succeeded clears a key.
func (t *throttle) succeeded(key string) {
	t.mu.Lock()
	delete(t.keys, key)
	t.mu.Unlock()
}

func (t *throttle) sweep(now time.Time) {
	t.mu.Lock()
	t.sweepLocked(now, false)
	t.mu.Unlock()
}

// sweepLocked forgets entries idle past throttleForget; full, it also
// forgets those no longer holding anyone back.
func (t *throttle) sweepLocked(now time.Time, full bool) {
	for k, s := range t.keys {
		if now.Sub(s.last) > throttleForget || full && !now.Before(s.last.Add(keyDelay(k, s.n))) {
			delete(t.keys, k)
		}
	}
}

// throttled is the refusal: it says when to try again, and nothing else.
func throttled(w time.Duration) error {
	secs := int64((w + time.Second - 1) / time.Second)
	return hsmerr.Errorf(ck.CKR_FUNCTION_REJECTED, "%s", fmt.Sprintf(
		"too many failed logins from this client certificate or for this account; try again in %ds", secs))
}
