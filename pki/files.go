package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

const (
	pemCertificate  = "CERTIFICATE"
	pemPrivateKey   = "PRIVATE KEY"    // PKCS#8
	pemECPrivateKey = "EC PRIVATE KEY" // SEC 1, accepted on load only
)

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der})
}

// encodeKey returns key as PKCS#8 PEM. The caller should clear the result
// once written.
func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, errors.New("pki: encode private key as PKCS#8 failed")
	}
	defer clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// refuseExisting fails if any of paths exists (or cannot be checked).
func refuseExisting(paths ...string) error {
	for _, p := range paths {
		_, err := os.Lstat(p)
		switch {
		case err == nil:
			return fmt.Errorf("pki: refusing to overwrite existing file %q: %w", p, fs.ErrExist)
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("pki: check %q: %w", p, err)
		}
	}
	return nil
}

type newFile struct {
	path string
	data []byte
	mode os.FileMode
}

// writeNew creates dir if needed, then creates every file exclusively with
// exactly its mode. If anything fails, the files it created are removed.
func writeNew(dir string, files []newFile) (err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: create directory %q: %w", dir, err)
	}
	var created []string
	defer func() {
		if err != nil {
			for _, p := range created {
				os.Remove(p)
			}
		}
	}()
	for _, f := range files {
		fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("pki: refusing to overwrite existing file %q: %w", f.path, fs.ErrExist)
			}
			return fmt.Errorf("pki: create %q: %w", f.path, err)
		}
		created = append(created, f.path)
		// The umask may have narrowed the mode; set it exactly.
		if err := fh.Chmod(f.mode); err != nil {
			fh.Close()
			return fmt.Errorf("pki: chmod %q: %w", f.path, err)
		}
		if _, err := fh.Write(f.data); err != nil {
			fh.Close()
			return fmt.Errorf("pki: write %q: %w", f.path, err)
		}
		if err := fh.Sync(); err != nil {
			fh.Close()
			return fmt.Errorf("pki: sync %q: %w", f.path, err)
		}
		if err := fh.Close(); err != nil {
			return fmt.Errorf("pki: close %q: %w", f.path, err)
		}
	}
	return nil
}

// readCerts reads every certificate of a PEM file. The file must hold at
// least one block, and every block must be a parseable CERTIFICATE.
func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: read certificate file %q: %w", path, err)
	}
	return parseCerts(path, data)
}

// parseCerts is readCerts on the file's bytes, already read; path names
// the file in errors.
func parseCerts(path string, data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != pemCertificate {
			// Do not echo the block: it may be a private key.
			return nil, fmt.Errorf("pki: certificate file %q: unexpected PEM block %q (want %q)", path, block.Type, pemCertificate)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: certificate file %q: bad certificate: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("pki: certificate file %q: corrupted or not PEM (unparseable data after %d certificate(s))", path, len(certs))
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("pki: certificate file %q: no PEM certificate found", path)
	}
	return certs, nil
}

// readKey reads a private key from a PEM file holding exactly one PKCS#8
// (or SEC 1 EC) key block. Errors never include key bytes, nor the parser's
// own messages about them.
func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: read key file %q: %w", path, err)
	}
	defer clear(data)
	return parseKey(path, data)
}

// parseKey is readKey on the file's bytes, already read (it does not clear
// them); path names the file in errors.
func parseKey(path string, data []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("pki: key file %q: corrupted or not PEM (no PEM block found)", path)
	}
	defer clear(block.Bytes)
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("pki: key file %q: unexpected data after the key block", path)
	}
	var key any
	var err error
	switch block.Type {
	case pemPrivateKey:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case pemECPrivateKey:
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("pki: key file %q: unexpected PEM block %q (want %q)", path, block.Type, pemPrivateKey)
	}
	if err != nil {
		return nil, fmt.Errorf("pki: key file %q: corrupted %s block", path, block.Type)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("pki: key file %q: unsupported key type %T", path, key)
	}
	return signer, nil
}
