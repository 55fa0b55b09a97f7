package kms

import "github.com/openhsm/openhsm/state"

// rowBatch is how many rows one MetaScan of a walk reads.
const rowBatch = 1000

// eachRow calls fn with every KMS row under prefix, in key order, each
// read and checked against its MAC (state.KMSRow) as a T. An error of fn
// ends the walk and is returned.
func eachRow[T any](s *Service, prefix string, fn func(key string, row *T) error) error {
	sl, err := s.sealer()
	if err != nil {
		return err
	}
	after := ""
	for {
		rows, err := s.store.MetaScan(prefix, after, rowBatch)
		if err != nil {
			return err
		}
		for _, r := range rows {
			var v T
			if err := state.KMSRow(sl, r.Key, r.Value, &v); err != nil {
				return err
			}
			if err := fn(r.Key, &v); err != nil {
				return err
			}
			after = r.Key
		}
		if len(rows) < rowBatch {
			return nil
		}
	}
}
