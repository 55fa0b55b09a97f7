package kms

import (
	"context"
	"strings"

	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/state"
)

// upkeepBatch bounds the keys of one kms_upkeep command.
const upkeepBatch = 500

// Upkeep does what the clock decides: it destroys keys whose deletion
// window ended (their material in the HSM, their aliases, their rows),
// deletes imported material past its expiry, and rotates keys whose
// automatic rotation is due. A node's leader calls it now and then; it is
// safe anywhere and twice, since apply decides again from the command's
// time what is due and leaves the rest alone.
func (s *Service) Upkeep(ctx context.Context) error {
	now := s.now()
	var due []string
	var rotate, storeKeys []*state.KMSKey
	err := eachRow(s, state.KMSKeyPrefix, func(key string, k *state.KMSKey) error {
		switch {
		case k.State == state.KMSPendingDeletion && k.DeletionDate <= now,
			k.MaterialExpires != 0 && k.MaterialExpires <= now:
			due = append(due, strings.TrimPrefix(key, state.KMSKeyPrefix))
			if k.CustomKeyStoreID != "" && k.State == state.KMSPendingDeletion {
				storeKeys = append(storeKeys, k)
			}
		case k.State == state.KMSEnabled && k.RotationDays > 0 && k.NextRotation <= now:
			rotate = append(rotate, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	for len(due) > 0 {
		n := min(len(due), upkeepBatch)
		if err := s.submit(ctx, &state.Command{Op: state.OpKMSUpkeep, KMS: &state.KMSCommand{Keys: due[:n]}}); err != nil {
			errs = append(errs, err)
		}
		due = due[n:]
	}
	// A deleted key of a custom key store: its backing key goes too, if
	// its store is connected (cloudhsm_keys.go).
	for _, k := range storeKeys {
		if _, err := s.readKey(k.Region, k.ID); kmserr.Is(err, kmserr.NotFound) {
			s.destroyStoreKey(k)
		}
	}
	for _, k := range rotate {
		if err := s.rotate(ctx, k, ""); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		s.log.Warn("kms upkeep", "failures", len(errs), "first", errs[0])
		return errs[0]
	}
	return nil
}
