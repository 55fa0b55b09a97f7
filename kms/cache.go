package kms

import (
	"sync"

	"github.com/openhsm/openhsm/state"
)

// The rows every request reads (its principal's secret, its key, the
// alias it names) are kept in memory once verified, and all dropped
// whenever a KMS write applies on this node or a snapshot replaces the
// state (KMSChanged, from the state machine's observer). A KMS write is
// acknowledged only once every serving node applied it, so no node serves
// a dropped row afterwards. A read that raced with a drop is not kept: the
// generation counts drops.

// maxCachedRows bounds each of the caches; past it, the cache starts over.
const maxCachedRows = 16384

type principalEntry struct {
	secret []byte
	arn    string
}

type rowCache struct {
	mu         sync.Mutex
	gen        uint64
	keys       map[string]*state.KMSKey // region/id
	aliases    map[string]*state.KMSAlias
	principals map[string]principalEntry      // access key ID
	identities map[string]*identity           // principal name (access.go)
	grants     map[string]*keyGrants          // region/key ID (grants.go)
	keyAliases map[string]map[string][]string // region -> key ID -> its alias names (access.go)
}

func newRowCache() *rowCache {
	return &rowCache{keys: map[string]*state.KMSKey{}, aliases: map[string]*state.KMSAlias{},
		principals: map[string]principalEntry{}, identities: map[string]*identity{}, grants: map[string]*keyGrants{},
		keyAliases: map[string]map[string][]string{}}
}

// KMSChanged drops every cached row.
func (s *Service) KMSChanged() {
	c := s.cache
	c.mu.Lock()
	c.gen++
	clear(c.keys)
	clear(c.aliases)
	for _, p := range c.principals {
		clear(p.secret)
	}
	clear(c.principals)
	clear(c.identities)
	clear(c.grants)
	clear(c.keyAliases)
	c.mu.Unlock()
}

// cached looks a row up, or reads it with read and keeps it unless a drop
// came in between. Cached rows are shared: callers must not change them.
func cached[V any](c *rowCache, m func(*rowCache) map[string]V, id string, read func() (V, error)) (V, error) {
	c.mu.Lock()
	if v, ok := m(c)[id]; ok {
		c.mu.Unlock()
		return v, nil
	}
	gen := c.gen
	c.mu.Unlock()
	v, err := read()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.gen == gen {
		mm := m(c)
		if len(mm) >= maxCachedRows {
			clear(mm)
		}
		mm[id] = v
	}
	c.mu.Unlock()
	return v, nil
}
