package hsmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/backup"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/cluster"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"google.golang.org/grpc"
)

// Backups: the leader takes one on a schedule (backup_interval, daily by
// default) and after every membership change; a crypto officer takes one
// on demand through any node. Each lands in the taking node's backup_dir,
// is encrypted with a fresh data key wrapped by the persistent backup key
// (docs/backups.md), and is pruned after backup_retention_days.

const (
	// maxBackupFile bounds a backup a restore accepts.
	maxBackupFile = 64 << 30
	// chunkSize is the size of the Chunk messages of GetBackup and
	// RestoreBackup.
	chunkSize = 1 << 20
	// scheduleCheck is how often the scheduler looks at the newest backup.
	scheduleCheck = time.Minute
	// progressEvery spaces the progress messages of a stream.
	progressEvery = 200 * time.Millisecond
)

// backups takes one backup at a time.
type backups struct {
	cfg     *Config
	store   state.Store
	domain  *domainKey
	cluster *cluster.Node
	log     *slog.Logger
	mu      sync.Mutex
	trigger chan struct{}

	newestMu sync.Mutex
	newestAt fileStamp // backup_dir's stamp when newestT was read
	newestT  time.Time
}

func newBackups(cfg *Config, st state.Store, d *domainKey, cn *cluster.Node, log *slog.Logger) *backups {
	return &backups{cfg: cfg, store: st, domain: d, cluster: cn, log: log, trigger: make(chan struct{}, 1)}
}

// request asks the scheduler for a backup now (it takes it if this node
// leads).
func (b *backups) request() {
	select {
	case b.trigger <- struct{}{}:
	default:
	}
}

// take writes a backup of this node's store now.
func (b *backups) take(reason string, progress func(backup.Progress)) (*hsmpb.BackupInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sealer := b.domain.sealer()
	if sealer == nil {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "the domain key is not unsealed")
	}
	sealed, clusterID := b.domain.record()
	snap, err := b.store.Snapshot()
	if err != nil {
		return nil, &hsmerr.Error{RV: ck.CKR_DEVICE_ERROR, Msg: "cannot read the store", Err: err}
	}
	defer snap.Close()
	if err := os.MkdirAll(b.cfg.BackupDir, 0o700); err != nil {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "backup_dir: %v", err)
	}
	meta := backup.Header{ClusterID: clusterID, Node: b.cfg.Node, Created: time.Now().UTC(), SealedDomainKey: sealed}
	path, err := backup.WriteFile(b.cfg.BackupDir, sealer, meta, snap, progress)
	if err != nil {
		b.log.Error("backup failed", "reason", reason, "error", err.Error())
		return nil, &hsmerr.Error{RV: ck.CKR_DEVICE_ERROR, Msg: "the backup failed", Err: err}
	}
	users, objects := snap.Counts()
	b.log.Info("backup taken", "reason", reason, "file", filepath.Base(path), "index", snap.Index(), "users", users, "objects", objects)
	retention := time.Duration(b.cfg.BackupRetentionDays) * 24 * time.Hour
	if removed, err := backup.Prune(b.cfg.BackupDir, retention, time.Now()); err != nil {
		b.log.Warn("pruning old backups failed", "error", err.Error())
	} else {
		for _, r := range removed {
			b.log.Info("backup removed after its retention", "file", filepath.Base(r))
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "the backup vanished")
	}
	return &hsmpb.BackupInfo{Id: filepath.Base(path), Node: b.cfg.Node, Created: meta.Created.Format(time.RFC3339),
		Index: snap.Index(), Users: int64(users), Objects: int64(objects), Size: st.Size(), ClusterId: clusterID}, nil
}

// schedule takes the leader's backups until ctx ends: when the newest
// backup here is older than the interval, and when asked (a membership
// change).
func (b *backups) schedule(ctx context.Context) {
	t := time.NewTicker(min(scheduleCheck, b.cfg.backupInterval))
	defer t.Stop()
	for {
		reason := ""
		select {
		case <-ctx.Done():
			return
		case <-b.trigger:
			reason = "membership change"
		case <-t.C:
			if b.newest().Add(b.cfg.backupInterval).After(time.Now()) {
				continue
			}
			reason = "schedule"
		}
		if !b.cluster.IsLeader() {
			continue
		}
		if _, err := b.take(reason, nil); err != nil {
			b.log.Warn("scheduled backup failed", "reason", reason)
		}
	}
}

// newest is when the newest readable backup here was taken (zero if none).
// The metrics ask at every scrape and the scheduler every minute, and the
// answer reads every backup's header: it is read again only when
// backup_dir changed (a backup written, renamed in, pruned or removed
// changes the folder's modification time). A stamp from the last second
// is not trusted: on a coarse clock a change right after the read could
// leave the folder with the same one.
func (b *backups) newest() time.Time {
	dir := b.cfg.BackupDir
	st, stErr := stampOf(dir)
	b.newestMu.Lock()
	defer b.newestMu.Unlock()
	if stErr == nil && st == b.newestAt && time.Since(st.mod) > time.Second {
		return b.newestT
	}
	var t time.Time
	if es, err := backup.List(dir); err == nil {
		for _, e := range es {
			if e.Header != nil && e.Header.Created.After(t) {
				t = e.Header.Created
			}
		}
	}
	b.newestAt, b.newestT = st, t
	return t
}

// local lists this node's backups.
func (b *backups) local() (*hsmpb.ListBackupsResponse, error) {
	out := &hsmpb.ListBackupsResponse{}
	es, err := backup.List(b.cfg.BackupDir)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "cannot list backup_dir")
	}
	for _, e := range es {
		bi := &hsmpb.BackupInfo{Id: e.Name, Node: b.cfg.Node, Size: e.Size}
		if e.Header == nil {
			bi.Error = "unreadable: " + e.Err.Error()
		} else {
			h := e.Header
			bi.Created, bi.Index, bi.Users, bi.Objects, bi.ClusterId = h.Created.Format(time.RFC3339), h.Index, int64(h.Users), int64(h.Objects), h.ClusterID
		}
		out.Backups = append(out.Backups, bi)
	}
	return out, nil
}

// open opens a backup of this node by its id (a file name from List).
func (b *backups) open(id string) (*os.File, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || strings.HasPrefix(id, ".") || !strings.HasSuffix(id, backup.Ext) || len(id) > 255 {
		return nil, bad("id", "not a backup name")
	}
	f, err := os.Open(filepath.Join(b.cfg.BackupDir, id))
	if err != nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "no backup %q on node %s", id, b.cfg.Node)
	}
	return f, nil
}

// ---- the client API ----

func (s *Server) requireBackups(ctx context.Context) (*backups, error) {
	if callerFrom(ctx).Role != object.RoleCO {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "only a crypto officer may handle backups")
	}
	if s.backups == nil {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "this node takes no backups")
	}
	return s.backups, nil
}

// progressSender sends progress at most every progressEvery.
func progressSender(send func(*hsmpb.BackupProgress) error) func(backup.Progress) {
	var last time.Time
	return func(p backup.Progress) {
		if now := time.Now(); now.Sub(last) >= progressEvery || p.Done == p.Total {
			last = now
			send(&hsmpb.BackupProgress{Phase: p.Phase, Done: p.Done, Total: p.Total})
		}
	}
}

func (s *Server) CreateBackup(_ *hsmpb.Empty, stream grpc.ServerStreamingServer[hsmpb.BackupProgress]) error {
	b, err := s.requireBackups(stream.Context())
	if err != nil {
		return err
	}
	info, err := b.take("on demand by "+callerFrom(stream.Context()).User, progressSender(stream.Send))
	if err != nil {
		return err
	}
	return stream.Send(&hsmpb.BackupProgress{Phase: "done", Done: 1, Total: 1, Backup: info})
}

func (s *Server) ListBackups(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.ListBackupsResponse, error) {
	b, err := s.requireBackups(ctx)
	if err != nil {
		return nil, err
	}
	out, err := b.local()
	if err != nil {
		return nil, err
	}
	others, err := s.otherMembers()
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			api, err := s.replica.Peer(m.Addr)
			var r *hsmpb.ListBackupsResponse
			if err == nil {
				pctx, cancel := context.WithTimeout(ctx, statusTimeout)
				r, err = api.LocalBackups(pctx, &hsmpb.Empty{})
				cancel()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.Unreachable = append(out.Unreachable, m.ID)
				return
			}
			out.Backups = append(out.Backups, r.Backups...)
		}()
	}
	wg.Wait()
	return out, nil
}

// otherMembers are the cluster's members but this node.
func (s *Server) otherMembers() ([]memberAddr, error) {
	if s.replica == nil {
		return nil, nil
	}
	ms, err := s.replica.Members()
	if err != nil {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "cannot read the membership")
	}
	self, _ := s.replica.Self()
	var out []memberAddr
	for _, m := range ms {
		if m.ID != self {
			out = append(out, memberAddr{m.ID, m.Addr})
		}
	}
	return out, nil
}

type memberAddr struct{ ID, Addr string }

func (s *Server) GetBackup(req *hsmpb.GetBackupRequest, stream grpc.ServerStreamingServer[hsmpb.Chunk]) error {
	b, err := s.requireBackups(stream.Context())
	if err != nil {
		return err
	}
	f, err := b.open(req.Id)
	if err == nil {
		defer f.Close()
		return sendFile(f, stream.Send)
	}
	var fe *api.FieldError
	if errors.As(err, &fe) {
		return err
	}
	// Not here: the node that took it sends it through this one.
	others, oerr := s.otherMembers()
	if oerr != nil {
		return oerr
	}
	for _, m := range others {
		api, perr := s.replica.Peer(m.Addr)
		if perr != nil {
			continue
		}
		rs, perr := api.ReadBackup(stream.Context(), req)
		if perr != nil {
			continue
		}
		first, perr := rs.Recv()
		if perr != nil {
			continue // not there either
		}
		for c := first; ; {
			if err := stream.Send(c); err != nil {
				return err
			}
			if c, perr = rs.Recv(); perr == io.EOF {
				return nil
			} else if perr != nil {
				return hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "node %s stopped sending the backup", m.ID)
			}
		}
	}
	return err
}

func sendFile(f *os.File, send func(*hsmpb.Chunk) error) error {
	buf := make([]byte, chunkSize)
	for {
		k, err := f.Read(buf)
		if k > 0 {
			if serr := send(&hsmpb.Chunk{Data: buf[:k]}); serr != nil {
				return serr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "cannot read the backup")
		}
	}
}

// RestoreBackup makes a backup the whole state of a cluster that has never
// been activated. It needs only a client certificate (there are no users
// yet), and this node's passphrase or key file must unseal the backup's
// domain key. The whole file is received and checked before anything is
// written; then the leader installs it as a Raft snapshot, which every
// node receives.
func (s *Server) RestoreBackup(stream grpc.BidiStreamingServer[hsmpb.Chunk, hsmpb.BackupProgress]) error {
	if s.backups == nil || s.domain == nil || s.replica == nil {
		return hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "this node cannot restore")
	}
	if !s.replica.IsLeader() {
		leader, addr := s.replica.Leader()
		return hsmerr.Errorf(ck.CKR_FUNCTION_FAILED, "send the restore to the leader, %s (%s)", leader, addr)
	}
	if err := s.checkFresh(); err != nil {
		return err
	}
	// One restore at a time; a second is refused at once rather than left
	// waiting while the first one's upload crosses the network.
	if !s.restoring.CompareAndSwap(false, true) {
		return hsmerr.Errorf(ck.CKR_FUNCTION_FAILED, "a restore is already in progress on this node")
	}
	defer s.restoring.Store(false)
	tmp, err := os.CreateTemp(s.backups.cfg.DataDir, ".restore-*")
	if err != nil {
		return hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "cannot make a temporary file")
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	var size int64
	var last time.Time
	for {
		c, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		size += int64(len(c.Data))
		if size > maxBackupFile {
			return bad("data", "the backup is larger than %d bytes", int64(maxBackupFile))
		}
		if _, err := tmp.Write(c.Data); err != nil {
			return hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "cannot store the upload")
		}
		if time.Since(last) >= progressEvery {
			last = time.Now()
			stream.Send(&hsmpb.BackupProgress{Phase: "receive", Done: size})
		}
	}
	stream.Send(&hsmpb.BackupProgress{Phase: "receive", Done: size, Total: size})
	// One pass checks and decrypts the whole upload into a scratch file;
	// the store is touched only after all of it checked out. The plaintext
	// is the store's snapshot stream: sealed blobs and MACs, no more secret
	// than the store file itself.
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "cannot read the upload")
	}
	h, err := backup.ReadHeader(tmp)
	if err != nil {
		return restoreRefusal(err)
	}
	sealer, err := unsealWith(h.SealedDomainKey, s.domain.kek)
	if err != nil {
		return restoreRefusal(err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "cannot read the upload")
	}
	plain, err := os.CreateTemp(s.backups.cfg.DataDir, ".restore-*")
	if err != nil {
		return hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "cannot make a temporary file")
	}
	defer os.Remove(plain.Name())
	defer plain.Close()
	if _, err := backup.Decrypt(tmp, sealer, plain, progressSender(stream.Send)); err != nil {
		if errors.Is(err, seal.ErrBackupKey) {
			// Its own domain key opens, yet the data key beside it does
			// not unwrap: the header was edited.
			err = fmt.Errorf("%w: its data key does not unwrap under its own domain key", backup.ErrCorrupt)
		}
		return restoreRefusal(err)
	}
	if err := s.checkFresh(); err != nil {
		return err
	}
	psize, err := plain.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = plain.Seek(0, io.SeekStart)
	}
	if err != nil {
		return hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "cannot read the decrypted backup")
	}
	stream.Send(&hsmpb.BackupProgress{Phase: "restore", Done: 0, Total: int64(h.Users + h.Objects)})
	if err := s.replica.RestoreBackup(plain, psize); err != nil {
		s.log.Error("restore failed", "error", err.Error())
		return err
	}
	stream.Send(&hsmpb.BackupProgress{Phase: "restore", Done: int64(h.Users + h.Objects), Total: int64(h.Users + h.Objects)})
	s.log.Info("restored a backup into this cluster", "backup_cluster", h.ClusterID, "backup_node", h.Node,
		"created", h.Created.Format(time.RFC3339), "users", h.Users, "objects", h.Objects)
	info := &hsmpb.BackupInfo{Node: h.Node, Created: h.Created.Format(time.RFC3339), Index: h.Index,
		Users: int64(h.Users), Objects: int64(h.Objects), Size: size, ClusterId: h.ClusterID}
	return stream.Send(&hsmpb.BackupProgress{Phase: "done", Done: 1, Total: 1, Backup: info})
}

// checkFresh refuses a restore into a cluster that holds users or keys.
func (s *Server) checkFresh() error {
	users, err := s.engine.HasUsers()
	if err != nil {
		return err
	}
	objs, err := s.engine.Store().Find(state.Query{Limit: 1})
	if err != nil {
		return &hsmerr.Error{RV: ck.CKR_DEVICE_ERROR, Msg: "cannot read the store", Err: err}
	}
	if users || len(objs) > 0 {
		return hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "this cluster is in use; a backup is restored only into a new cluster that was never activated")
	}
	return nil
}

// unsealWith opens a backup's sealed domain key with this node's
// passphrase or key file.
func unsealWith(raw []byte, kek seal.KEKSource) (*seal.Sealer, error) {
	rec, err := seal.UnmarshalSealedDomainKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", backup.ErrCorrupt, err)
	}
	s, err := rec.Unseal(kek)
	if errors.Is(err, seal.ErrWrongKEK) {
		return nil, backup.ErrWrongPassphrase
	}
	return s, err
}

// restoreRefusal names what is wrong with an uploaded backup.
func restoreRefusal(err error) error {
	if errors.Is(err, backup.ErrWrongPassphrase) {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%v: every node of the new cluster needs the passphrase or key file of the cluster that took the backup", backup.ErrWrongPassphrase)
	}
	return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "refused before anything was written: %v", err)
}

// ---- the Peer service ----

func (p *peerServer) LocalBackups(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.ListBackupsResponse, error) {
	if p.s.backups == nil {
		return &hsmpb.ListBackupsResponse{}, nil
	}
	return p.s.backups.local()
}

func (p *peerServer) ReadBackup(req *hsmpb.GetBackupRequest, stream grpc.ServerStreamingServer[hsmpb.Chunk]) error {
	if p.s.backups == nil {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "no backups here")
	}
	f, err := p.s.backups.open(req.Id)
	if err != nil {
		return err
	}
	defer f.Close()
	return sendFile(f, stream.Send)
}
