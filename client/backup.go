package client

import (
	"context"
	"errors"
	"io"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// BackupInfo describes one backup held by a node of the cluster.
type BackupInfo struct {
	ID        string `json:"id"`
	Node      string `json:"node"`
	ClusterID string `json:"cluster_id,omitempty"`
	Created   string `json:"created,omitempty"` // RFC 3339, UTC
	Index     uint64 `json:"index"`
	Users     int64  `json:"users"`
	Objects   int64  `json:"objects"`
	Size      int64  `json:"size"`
	Error     string `json:"error,omitempty"` // the file could not be read
}

// BackupProgress is how far a backup or restore got: Phase names the step,
// Done and Total count its records or bytes (Total 0: unknown).
type BackupProgress struct {
	Phase       string
	Done, Total int64
}

func backupInfo(b *hsmpb.BackupInfo) *BackupInfo {
	if b == nil {
		return nil
	}
	return &BackupInfo{ID: b.Id, Node: b.Node, ClusterID: b.ClusterId, Created: b.Created, Index: b.Index,
		Users: b.Users, Objects: b.Objects, Size: b.Size, Error: b.Error}
}

// progressStream reads progress messages until the one that carries the
// backup's description.
func progressStream(recv func() (*hsmpb.BackupProgress, error), progress func(BackupProgress)) (*BackupInfo, error) {
	for {
		m, err := recv()
		if err == io.EOF {
			return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "the node ended the stream without a result")
		}
		if err != nil {
			return nil, err
		}
		if m.Backup != nil {
			return backupInfo(m.Backup), nil
		}
		if progress != nil {
			progress(BackupProgress{Phase: m.Phase, Done: m.Done, Total: m.Total})
		}
	}
}

// CreateBackup has the node take a backup now (crypto officer); it lands
// in that node's backup directory. progress, if not nil, is called as it
// goes.
func (c *Client) CreateBackup(ctx context.Context, progress func(BackupProgress)) (*BackupInfo, error) {
	var out *BackupInfo
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		st, err := hc.CreateBackup(ctx, &hsmpb.Empty{})
		if err != nil {
			return err
		}
		out, err = progressStream(st.Recv, progress)
		return err
	})
	return out, err
}

// ListBackups lists the backups of every node (crypto officer), and the
// nodes that did not answer.
func (c *Client) ListBackups(ctx context.Context) ([]BackupInfo, []string, error) {
	var r *hsmpb.ListBackupsResponse
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.ListBackups(ctx, &hsmpb.Empty{})
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]BackupInfo, 0, len(r.Backups))
	for _, b := range r.Backups {
		out = append(out, *backupInfo(b))
	}
	return out, r.Unreachable, nil
}

// GetBackup copies a backup, from whichever node holds it, to w (crypto
// officer). It returns the bytes written.
func (c *Client) GetBackup(ctx context.Context, id string, w io.Writer) (int64, error) {
	var n int64
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		st, err := hc.GetBackup(ctx, &hsmpb.GetBackupRequest{Id: id})
		if err != nil {
			return err
		}
		for {
			m, err := st.Recv()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			k, werr := w.Write(m.Data)
			n += int64(k)
			if werr != nil {
				return &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "cannot write the backup", Err: werr}
			}
		}
	})
	return n, err
}

// RestoreBackup sends a backup file to the node, which must be the leader
// of a cluster that has never been activated, and whose passphrase or key
// file must open the backup. No login is needed (there are no users yet).
// The node checks the whole file before it writes anything.
func (c *Client) RestoreBackup(ctx context.Context, r io.Reader, progress func(BackupProgress)) (*BackupInfo, error) {
	var out *BackupInfo
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		st, err := hc.RestoreBackup(ctx)
		if err != nil {
			return err
		}
		buf := make([]byte, 1<<20)
		for {
			k, rerr := r.Read(buf)
			if k > 0 {
				if err := st.Send(&hsmpb.Chunk{Data: buf[:k]}); err != nil {
					if errors.Is(err, io.EOF) {
						break // the node answered early: its answer says why
					}
					return err
				}
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				st.CloseSend()
				return &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "cannot read the backup file", Err: rerr}
			}
		}
		if err := st.CloseSend(); err != nil {
			return err
		}
		out, err = progressStream(st.Recv, progress)
		return err
	})
	return out, err
}
