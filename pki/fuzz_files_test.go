package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// FuzzPEMFiles: certificate and key files are outside bytes. readCerts and
// readKey answer an error or what the file holds, never a panic, and an
// error never quotes the file's bytes (a key file's content is secret).
func FuzzPEMFiles(f *testing.F) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der}))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "file.pem")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if certs, err := readCerts(path); err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificate")
		}
		key, err := readKey(path)
		if err == nil && key.Public() == nil {
			t.Fatal("a key without a public half")
		}
		if err != nil {
			if block, _ := pem.Decode(b); block != nil && len(block.Bytes) >= 8 && bytes.Contains([]byte(err.Error()), block.Bytes) {
				t.Fatalf("the error quotes the key block: %v", err)
			}
		}
	})
}
