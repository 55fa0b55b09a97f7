//go:build cgo

package ossl

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// cpuNanos is the CPU time (user and system) the process used so far.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// run spreads b.N calls of f over g goroutines. Besides the wall time it
// reports the process's CPU time per call (cpu-ns/op), which a machine
// shared with other work disturbs less.
func run(b *testing.B, g int, f func() error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	cpu := cpuNanos()
	for range g {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := f(); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(cpuNanos()-cpu)/float64(b.N), "cpu-ns/op")
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRSA2048 compares crypto/rsa with libcrypto for the private-key
// operations the daemon does most: PKCS #1 v1.5 and PSS signing.
//
//	go test -run '^$' -bench . ./mech/ossl
func BenchmarkRSA2048(b *testing.B) {
	priv := testKey(b, 2048)
	fast, err := LoadRSA(priv)
	require.NoError(b, err)
	d := sha256.Sum256([]byte(kat))
	pss := &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}
	impls := []struct {
		name       string
		pkcs1, pss func() error
	}{
		{"go",
			func() error { _, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, d[:]); return err },
			func() error { _, err := rsa.SignPSS(rand.Reader, priv, crypto.SHA256, d[:], pss); return err }},
		{"openssl",
			func() error { _, err := fast.SignPKCS1v15(crypto.SHA256, d[:]); return err },
			func() error { _, err := fast.SignPSS(crypto.SHA256, crypto.SHA256, 32, d[:]); return err }},
	}
	for _, op := range []string{"pkcs1v15", "pss"} {
		for _, g := range []int{1, 16} {
			for _, im := range impls {
				f := im.pkcs1
				if op == "pss" {
					f = im.pss
				}
				b.Run(fmt.Sprintf("%s/g%d/%s", op, g, im.name), func(b *testing.B) { run(b, g, f) })
			}
		}
	}
}

// BenchmarkECDSAP256 compares crypto/ecdsa with libcrypto for ECDSA P-256
// signing, both giving the PKCS #11 form r||s.
func BenchmarkECDSAP256(b *testing.B) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(b, err)
	fast, err := LoadEC(priv)
	require.NoError(b, err)
	d := sha256.Sum256([]byte(kat))
	sig, err := fast.Sign(d[:])
	require.NoError(b, err)
	require.True(b, ecdsa.Verify(&priv.PublicKey, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])))
	impls := []struct {
		name string
		f    func() error
	}{
		{"go", func() error {
			r, s, err := ecdsa.Sign(rand.Reader, priv, d[:])
			if err != nil {
				return err
			}
			out := make([]byte, 64)
			r.FillBytes(out[:32])
			s.FillBytes(out[32:])
			return nil
		}},
		{"openssl", func() error { _, err := fast.Sign(d[:]); return err }},
	}
	for _, g := range []int{1, 16} {
		for _, im := range impls {
			b.Run(fmt.Sprintf("g%d/%s", g, im.name), func(b *testing.B) { run(b, g, im.f) })
		}
	}
}
