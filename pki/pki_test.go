package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustCA(t *testing.T, dir, name string) *CA {
	t.Helper()
	ca, err := CreateCA(dir, name)
	if err != nil {
		t.Fatalf("CreateCA: %v", err)
	}
	return ca
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	certs, err := readCerts(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 1 {
		t.Fatalf("%s: %d certificates", path, len(certs))
	}
	return certs[0]
}

func fileMode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func aboutYears(t *testing.T, what string, c *x509.Certificate, years int) {
	t.Helper()
	aboutUntil(t, what, c, time.Now().AddDate(years, 0, 0))
}

func aboutUntil(t *testing.T, what string, c *x509.Certificate, want time.Time) {
	t.Helper()
	now := time.Now()
	if c.NotBefore.After(now) || now.Sub(c.NotBefore) > time.Hour {
		t.Errorf("%s: NotBefore %v not just before now", what, c.NotBefore)
	}
	if d := c.NotAfter.Sub(want); d > time.Minute || d < -time.Minute {
		t.Errorf("%s: NotAfter %v, want about %v", what, c.NotAfter, want)
	}
}

func isP256(c *x509.Certificate) bool {
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	return ok && pub.Curve == elliptic.P256()
}

func TestCreateCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca := mustCA(t, dir, "openhsm cluster CA")

	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	if m := fileMode(t, certPath); m != 0o644 {
		t.Errorf("ca.pem mode %o, want 644", m)
	}
	if m := fileMode(t, keyPath); m != 0o600 {
		t.Errorf("ca-key.pem mode %o, want 600", m)
	}
	keyPEM, _ := os.ReadFile(keyPath)
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("ca-key.pem is not a PKCS#8 PEM block")
	} else if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
		t.Errorf("ca-key.pem: %v", err)
	}

	c := readCert(t, certPath)
	if !bytes.Equal(c.Raw, ca.Certificate().Raw) {
		t.Error("ca.pem differs from the returned CA")
	}
	if c.Subject.CommonName != "openhsm cluster CA" || !bytes.Equal(c.RawSubject, c.RawIssuer) {
		t.Errorf("subject %v issuer %v", c.Subject, c.Issuer)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if !c.BasicConstraintsValid || !c.IsCA || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("basic constraints: valid=%v ca=%v maxpath=%d zero=%v", c.BasicConstraintsValid, c.IsCA, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("key usage %v", c.KeyUsage)
	}
	if !isP256(c) {
		t.Errorf("CA key is not ECDSA P-256")
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v", c.SerialNumber)
	}
	aboutYears(t, "CA", c, 10)

	other := mustCA(t, t.TempDir(), "x")
	if other.Certificate().SerialNumber.Cmp(c.SerialNumber) == 0 {
		t.Error("two CAs got the same serial")
	}

	loaded, err := LoadCA(dir)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if !bytes.Equal(loaded.Certificate().Raw, c.Raw) || !loaded.key.Equal(ca.key) {
		t.Error("LoadCA returned a different CA")
	}
	if _, err := CreateCA(t.TempDir(), " "); err == nil {
		t.Error("CreateCA accepted an empty name")
	}
}

func TestIssueNodeAndClient(t *testing.T) {
	caDir := t.TempDir()
	mustCA(t, caDir, "cluster")
	ca, err := LoadCA(caDir) // issue with a loaded CA, as a daemon would
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "certs")
	if err := ca.IssueNode(dir, "node-1", []string{"10.0.0.7", "hsm1.example.com", "::1", "[fd00::1]", "localhost", "HSM1.example.com", ""}); err != nil {
		t.Fatalf("IssueNode: %v", err)
	}
	if err := ca.IssueClient(dir, "app_1"); err != nil {
		t.Fatalf("IssueClient: %v", err)
	}
	roots := ca.CertPool()

	node := readCert(t, CertPath(dir, "node-1"))
	if node.Subject.CommonName != "node-1" || !slices.Equal(node.Subject.OrganizationalUnit, []string{"node"}) {
		t.Errorf("node subject %v", node.Subject)
	}
	if !slices.Equal(node.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("node EKU %v", node.ExtKeyUsage)
	}
	var ips []string
	for _, ip := range node.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"127.0.0.1", "10.0.0.7", "::1", "fd00::1"}; !slices.Equal(ips, want) {
		t.Errorf("node IP SANs %v, want %v", ips, want)
	}
	if want := []string{"localhost", "hsm1.example.com"}; !slices.Equal(node.DNSNames, want) {
		t.Errorf("node DNS SANs %v, want %v", node.DNSNames, want)
	}
	for _, h := range []string{"127.0.0.1", "localhost", "10.0.0.7", "hsm1.example.com"} {
		if err := node.VerifyHostname(h); err != nil {
			t.Errorf("node cert not valid for %s: %v", h, err)
		}
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := node.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			t.Errorf("node cert does not verify for %v: %v", u, err)
		}
	}

	client := readCert(t, CertPath(dir, "app_1"))
	if client.Subject.CommonName != "app_1" || !slices.Equal(client.Subject.OrganizationalUnit, []string{"client"}) {
		t.Errorf("client subject %v", client.Subject)
	}
	if !slices.Equal(client.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("client EKU %v", client.ExtKeyUsage)
	}
	if _, err := client.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("client cert verifies for server authentication")
	}

	for _, c := range []*x509.Certificate{node, client} {
		aboutUntil(t, c.Subject.CommonName, c, time.Now().Add(LeafValidity))
		if c.IsCA || !isP256(c) || c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
			t.Errorf("%s: isCA=%v p256=%v serial=%v", c.Subject.CommonName, c.IsCA, isP256(c), c.SerialNumber)
		}
		if c.KeyUsage != x509.KeyUsageDigitalSignature {
			t.Errorf("%s: key usage %v", c.Subject.CommonName, c.KeyUsage)
		}
		name := c.Subject.CommonName
		if m := fileMode(t, KeyPath(dir, name)); m != 0o600 {
			t.Errorf("%s key mode %o, want 600", name, m)
		}
		if m := fileMode(t, CertPath(dir, name)); m != 0o644 {
			t.Errorf("%s cert mode %o, want 644", name, m)
		}
		key, err := readKey(KeyPath(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !key.(*ecdsa.PrivateKey).PublicKey.Equal(c.PublicKey) {
			t.Errorf("%s: key does not match certificate", name)
		}
	}
	if node.SerialNumber.Cmp(client.SerialNumber) == 0 {
		t.Error("two leaves got the same serial")
	}
}

func TestRefuseOverwrite(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, dir, "cluster")
	before, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	beforeKey, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))

	_, err := CreateCA(dir, "cluster")
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("second CreateCA: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	afterKey, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if !bytes.Equal(before, after) || !bytes.Equal(beforeKey, afterKey) {
		t.Fatal("CA files changed")
	}

	// Only one of the two files present: still refused, nothing written.
	for _, present := range []string{CACertFile, CAKeyFile} {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, present), []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := CreateCA(d, "cluster"); !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), present) {
			t.Errorf("CreateCA with %s present: %v", present, err)
		}
		entries, _ := os.ReadDir(d)
		if len(entries) != 1 {
			t.Errorf("CreateCA with %s present left %d files", present, len(entries))
		}
	}

	leaves := t.TempDir()
	if err := ca.IssueNode(leaves, "n1", nil); err != nil {
		t.Fatal(err)
	}
	if err := ca.IssueNode(leaves, "n1", nil); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second IssueNode: %v", err)
	}
	if err := ca.IssueClient(leaves, "n1"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("IssueClient over a node: %v", err)
	}
	// A leaf named like the CA files must not clobber them.
	if err := ca.IssueClient(dir, "ca"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("IssueClient(ca) in CA dir: %v", err)
	}
	// Only the key present: refused, no certificate written.
	if err := os.WriteFile(KeyPath(leaves, "c2"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ca.IssueClient(leaves, "c2"); !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "c2-key.pem") {
		t.Errorf("IssueClient with key present: %v", err)
	}
	if _, err := os.Stat(CertPath(leaves, "c2")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("certificate written despite refusal: %v", err)
	}
	if b, _ := os.ReadFile(KeyPath(leaves, "c2")); string(b) != "keep" {
		t.Error("existing key file changed")
	}
}

func TestNames(t *testing.T) {
	ca := mustCA(t, t.TempDir(), "cluster")
	bad := []string{"", "-a", ".hidden", "_x", "a/b", "../x", "a b", "a\x00b", "né", "a:b", strings.Repeat("a", 65), "a\n"}
	for _, name := range bad {
		dir := filepath.Join(t.TempDir(), "out")
		if err := ca.IssueNode(dir, name, nil); err == nil || !strings.Contains(err.Error(), "invalid name") {
			t.Errorf("IssueNode(%q): %v", name, err)
		}
		if err := ca.IssueClient(dir, name); err == nil || !strings.Contains(err.Error(), "invalid name") {
			t.Errorf("IssueClient(%q): %v", name, err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("bad name %q created the output directory", name)
		}
	}
	good := []string{"a", "0", "node-1.example_x", strings.Repeat("b", 64)}
	dir := t.TempDir()
	for _, name := range good {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q): %v", name, err)
		}
		if err := ca.IssueClient(dir, name); err != nil {
			t.Errorf("IssueClient(%q): %v", name, err)
		}
	}
	for _, host := range []string{"host:8443", "a b", "-", "a..b", "é.example"} {
		if err := ca.IssueNode(t.TempDir(), "n", []string{host}); err == nil || !strings.Contains(err.Error(), "invalid host") {
			t.Errorf("IssueNode with host %q: %v", host, err)
		}
	}
}

// keyBody returns the base64 lines of a PEM file, to check errors never
// echo them.
func keyBody(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l[:min(len(l), 16)])
		}
	}
	return out
}

func noKeyBytes(t *testing.T, err error, keyFiles ...string) {
	t.Helper()
	for _, f := range keyFiles {
		for _, frag := range keyBody(t, f) {
			if strings.Contains(err.Error(), frag) {
				t.Errorf("error %q contains key material from %s", err, f)
			}
		}
	}
}

func TestCorruptedFiles(t *testing.T) {
	src := t.TempDir()
	ca := mustCA(t, src, "cluster")
	if err := ca.IssueNode(src, "n1", nil); err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(filepath.Join(src, CACertFile))
	caKeyPEM, _ := os.ReadFile(filepath.Join(src, CAKeyFile))
	blk, _ := pem.Decode(caPEM)
	kblk, _ := pem.Decode(caKeyPEM)

	truncCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes[:len(blk.Bytes)/2]})
	truncKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kblk.Bytes[:len(kblk.Bytes)-7]})
	badB64 := bytes.Replace(caPEM, []byte("\n"), []byte("\n!!"), 3)
	otherKey, _ := os.ReadFile(KeyPath(src, "n1"))

	cases := []struct {
		name      string
		cert, key []byte
		file      string // which file the error must name
		want      string
	}{
		{"garbage cert", []byte("hello, not a pem"), caKeyPEM, CACertFile, "not PEM"},
		{"empty cert", []byte{}, caKeyPEM, CACertFile, "no PEM certificate"},
		{"bad base64 cert", badB64, caKeyPEM, CACertFile, "corrupted"},
		{"truncated cert DER", truncCert, caKeyPEM, CACertFile, "bad certificate"},
		{"key in cert file", caKeyPEM, caKeyPEM, CACertFile, `unexpected PEM block "PRIVATE KEY"`},
		{"leaf in cert file", mustRead(t, CertPath(src, "n1")), caKeyPEM, CACertFile, "not a CA"},
		{"garbage key", caPEM, []byte("garbage"), CAKeyFile, "not PEM"},
		{"cert in key file", caPEM, caPEM, CAKeyFile, `unexpected PEM block "CERTIFICATE"`},
		{"truncated key DER", caPEM, truncKey, CAKeyFile, "corrupted PRIVATE KEY"},
		{"wrong key", caPEM, otherKey, CAKeyFile, "does not match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			os.WriteFile(filepath.Join(d, CACertFile), tc.cert, 0o644)
			os.WriteFile(filepath.Join(d, CAKeyFile), tc.key, 0o600)
			_, err := LoadCA(d)
			if err == nil {
				t.Fatal("LoadCA succeeded")
			}
			if !strings.Contains(err.Error(), filepath.Join(d, tc.file)) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q should name %s and say %q", err, tc.file, tc.want)
			}
			noKeyBytes(t, err, filepath.Join(src, CAKeyFile), KeyPath(src, "n1"))
		})
	}

	// Missing files.
	_, err := LoadCA(t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), CACertFile) {
		t.Errorf("LoadCA on empty dir: %v", err)
	}
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, CACertFile), caPEM, 0o644)
	if _, err := LoadCA(d); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), CAKeyFile) {
		t.Errorf("LoadCA without key: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPeerIdentityRejects(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, dir, "cluster")
	if err := ca.IssueClient(dir, "c"); err != nil {
		t.Fatal(err)
	}
	good := readCert(t, CertPath(dir, "c"))
	state := func(c *x509.Certificate) (s tls.ConnectionState) {
		s.HandshakeComplete = true
		s.VerifiedChains = [][]*x509.Certificate{{c, ca.Certificate()}}
		return s
	}
	id, err := PeerIdentity(state(good))
	if err != nil || id.CommonName != "c" || id.Kind != KindClient || id.Fingerprint != sha256.Sum256(good.Raw) {
		t.Fatalf("PeerIdentity(good) = %v, %v", id, err)
	}
	if !strings.HasPrefix(id.String(), "client/c sha256:") {
		t.Errorf("String() = %q", id.String())
	}

	if _, err := PeerIdentity(tls.ConnectionState{}); err == nil {
		t.Error("accepted an incomplete handshake")
	}
	noVerified := state(good)
	noVerified.VerifiedChains = nil
	noVerified.PeerCertificates = []*x509.Certificate{good} // sent but not verified
	if _, err := PeerIdentity(noVerified); err == nil || !strings.Contains(err.Error(), "no verified peer certificate") {
		t.Errorf("unverified peer: %v", err)
	}
	for _, ou := range [][]string{nil, {"admin"}, {"node", "client"}, {""}} {
		c := *good
		c.Subject.OrganizationalUnit = ou
		if _, err := PeerIdentity(state(&c)); err == nil {
			t.Errorf("accepted OU %q", ou)
		}
	}
	c := *good
	c.Subject.CommonName = "../etc"
	if _, err := PeerIdentity(state(&c)); err == nil {
		t.Error("accepted a bad common name")
	}
}

func TestSplitHostsIPv4Mapped(t *testing.T) {
	ips, dns, err := splitHosts([]string{"127.0.0.1", "::ffff:127.0.0.1", " 10.1.2.3 ", "example.org.", "Example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ips) != 2 || len(ips[0]) != net.IPv4len || !slices.Equal(dns, []string{"example.org"}) {
		t.Errorf("ips %v dns %v", ips, dns)
	}
}
