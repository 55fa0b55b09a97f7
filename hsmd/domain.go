package hsmd

import (
	"bytes"
	"crypto/hmac"
	"fmt"
	"log/slog"
	"sync"

	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
)

// domainKey is the node's domain key in use: the sealed record it was
// opened from, the cluster ID that record names, and the passphrase or key
// file (the KEK source) that opens records. The unsealed key itself lives
// in the state machine (Machine.Sealer), which every component reads; this
// is the one place that changes it, when a restored backup brings another
// record.
type domainKey struct {
	machine *state.Machine
	store   state.Store
	kek     seal.KEKSource
	lock    func(*slog.Logger, *seal.Sealer) // pins a new key's pages (Config.lockSealer)
	fatal   func(error)                      // stops the process (Node.fatal)
	log     *slog.Logger

	mu        sync.Mutex
	sealed    []byte // the sealed record in use
	clusterID string
}

// current is the sealed record in use and its cluster ID.
func (d *domainKey) current() ([]byte, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sealed, d.clusterID
}

// cluster is the cluster ID of the key in use.
func (d *domainKey) cluster() string {
	_, id := d.current()
	return id
}

// record is the sealed record the store holds now: after a passphrase
// rotation, the re-sealed one (backups carry it).
func (d *domainKey) record() ([]byte, string) {
	sealed, id := d.current()
	if raw, err := d.store.Meta(state.MetaDomainKey); err == nil {
		sealed = raw
	}
	return sealed, id
}

// sealer is the unsealed key in use, or nil.
func (d *domainKey) sealer() *seal.Sealer { return d.machine.Sealer() }

// fingerprint names the key in use (not its sealed form, which a
// passphrase rotation changes), or "".
func (d *domainKey) fingerprint() string {
	if s := d.sealer(); s != nil {
		return s.Fingerprint()
	}
	return ""
}

// reload follows a restored state: if it holds another domain key record,
// it unseals that with this node's KEK source and installs it. A record
// re-sealed by a passphrase rotation of the key in use is taken as it is,
// since its MAC under that key says so and this node's (older) passphrase
// need not open it. An error means the node cannot serve the restored
// state.
func (d *domainKey) reload() error {
	raw, err := d.store.Meta(state.MetaDomainKey)
	if err != nil {
		return fmt.Errorf("the restored state has no domain key: %v", err)
	}
	old, oldID := d.current()
	if bytes.Equal(raw, old) {
		return nil
	}
	rec, err := seal.UnmarshalSealedDomainKey(raw)
	if err != nil {
		return err
	}
	if mac, err := d.store.Meta(state.MetaDomainKeyMAC); err == nil {
		if cur := d.sealer(); cur != nil && rec.ClusterID == oldID && hmac.Equal(mac, cur.RecordMAC(raw)) {
			d.mu.Lock()
			d.sealed = raw
			d.mu.Unlock()
			return nil
		}
	}
	sealer, err := rec.Unseal(d.kek)
	if err != nil {
		err = fmt.Errorf("the restored domain key: %w", err)
		d.fatal(err)
		return err
	}
	d.lock(d.log, sealer)
	d.machine.SetSealer(sealer)
	d.mu.Lock()
	d.sealed = raw
	d.clusterID = rec.ClusterID
	d.mu.Unlock()
	d.log.Info("now serving a restored domain key", "cluster", rec.ClusterID)
	return nil
}
