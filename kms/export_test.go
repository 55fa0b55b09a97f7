package kms

import (
	"context"
	"time"

	"github.com/openhsm/openhsm/object"
)

// StoreKeyObjects finds the backing keys of a KMS key on a connected
// store's cluster, as kmsuser (through this node's client of the store),
// and reads the attributes asked of each: tests check what CreateKey made
// there.
func StoreKeyObjects(s *Service, region, storeID, keyID string, attrs []uint64) ([]uint64, [][]object.AttrValue, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := s.readStore(region, storeID)
	if err != nil {
		return nil, nil, err
	}
	sc, code := s.storeConnFor(ctx, st)
	if code != "" {
		return nil, nil, &storeErr{code}
	}
	ids, err := sc.c.FindObjects(ctx, backingKeyTemplate(keyID), 8)
	if err != nil {
		return nil, nil, err
	}
	var out [][]object.AttrValue
	for _, id := range ids {
		if len(attrs) == 0 {
			continue
		}
		v, err := sc.c.GetAttributes(ctx, id, attrs)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, v)
	}
	return ids, out, nil
}

// DestroyStoreObject destroys an object on a store's cluster as kmsuser:
// a test's stand-in for a cluster user who deletes a backing key.
func DestroyStoreObject(s *Service, region, storeID string, id uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := s.readStore(region, storeID)
	if err != nil {
		return err
	}
	sc, code := s.storeConnFor(ctx, st)
	if code != "" {
		return &storeErr{code}
	}
	return sc.c.DestroyObject(ctx, id)
}

// DropStoreClients forgets this node's clients of every store, as a node
// that did not connect them has none: the next use logs in again.
func DropStoreClients(s *Service) {
	s.cks.mu.Lock()
	m := s.cks.m
	s.cks.m = nil
	s.cks.mu.Unlock()
	for _, sc := range m {
		sc.c.Close()
	}
}

type storeErr struct{ code string }

func (e *storeErr) Error() string { return "store connection: " + e.code }

// StoreRefusedOps is the number of operations refused on keys in custom
// key stores.
func StoreRefusedOps() int { return len(storeRefused) }
