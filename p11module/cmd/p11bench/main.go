// Command p11bench measures a PKCS#11 module through its C ABI
// (github.com/miekg/pkcs11): any module, by path, so that libopenhsm-pkcs11.so
// and others (SoftHSMv2) can be compared on the same machine.
//
//	p11bench -module /path/to/module.so -token-label LABEL [-pin PIN]
//	         [-threads 1,16] [-duration 5s] [-objects 10000] [-ops LIST]
//	         [-format markdown|tsv] [-keep-objects] [-token-keys]
//	         [-cpuprofile FILE] [-fetch-profile FILE=URL ...]
//
// The PIN may come from P11BENCH_PIN instead of -pin (better: a command line
// is visible to every user of the machine). For every operation and thread
// count it runs for -duration, each thread on its own session (one login
// between them), and prints a Markdown table: operations per second and the
// mean time per operation (for find, milliseconds per lookup). The
// operations (-ops, comma-separated; default all):
//
//	rsa-sign      RSA-2048 sign, CKM_SHA256_RSA_PKCS, 32-byte message
//	ecdsa-sign    ECDSA P-256 sign, CKM_ECDSA, 32-byte hash
//	rsa-verify    RSA-2048 verify, CKM_SHA256_RSA_PKCS
//	ecdsa-verify  ECDSA P-256 verify, CKM_ECDSA
//	aes-gcm       AES-256-GCM encrypt of 4 KiB, a fresh 96-bit IV each time
//	aes-gcm-1m    AES-256-GCM encrypt of 1 MiB, the same way; its table
//	              row also gives MB/s (10^6 bytes of plaintext a second)
//	keygen        AES-256 token key generation (CKA_TOKEN true); the keys
//	              are destroyed afterwards, untimed
//	keygen-ec     EC P-256 token key pair generation (both halves
//	              CKA_TOKEN true); destroyed afterwards, untimed
//	keygen-rsa    RSA-2048 token key pair generation (public exponent
//	              65537); destroyed afterwards, untimed
//	find          C_FindObjectsInit/C_FindObjects/C_FindObjectsFinal of one
//	              label among -objects token data objects, which are made
//	              first (by -threads' largest count of threads) and
//	              destroyed afterwards, untimed (unless -keep-objects: for a
//	              token that is thrown away after the run, as bench.sh does;
//	              SoftHSMv2 takes minutes to destroy 10,000 objects)
//
// Keys for signing, verifying and encrypting are session objects made at the
// start, or token objects with -token-keys (destroyed at the end): on a
// cluster of several nodes a session object lives only on the node that
// made it. Every result is checked (signatures verify, lengths are right, a
// lookup finds exactly its object); an error ends that case and is shown in
// the table, and p11bench then exits 1.
//
// Profiles, for a run of one operation at one thread count: -cpuprofile
// writes p11bench's own CPU profile (the library in process included) of
// the timed part of the case; -fetch-profile FILE=URL (repeatable) fetches
// URL?seconds=S, a server's net/http/pprof CPU profile endpoint (hsmd's
// /debug/pprof/profile with [metrics] pprof = true), started when the timed
// part starts, S being -duration rounded up to whole seconds, and writes it
// to FILE. bench.sh -profile uses both.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/pkcs11"
)

var allOps = []string{"rsa-sign", "ecdsa-sign", "rsa-verify", "ecdsa-verify", "aes-gcm", "aes-gcm-1m", "keygen", "keygen-ec", "keygen-rsa", "find"}

// fetchFlags is -fetch-profile, FILE=URL, repeatable.
type fetchFlags []fetchProfile

type fetchProfile struct{ file, url string }

func (f *fetchFlags) String() string { return fmt.Sprint(len(*f), " profiles") }

func (f *fetchFlags) Set(v string) error {
	file, url, ok := strings.Cut(v, "=")
	if !ok || file == "" || !(strings.HasPrefix(url, "http://") || strings.HasPrefix(url, "https://")) {
		return fmt.Errorf("want FILE=http://HOST:PORT/debug/pprof/profile, not %q", v)
	}
	*f = append(*f, fetchProfile{file, url})
	return nil
}

func main() {
	module := flag.String("module", "", "path of the PKCS#11 module (required)")
	label := flag.String("token-label", "", "label of the token to use (required)")
	pin := flag.String("pin", "", "user PIN (default $P11BENCH_PIN)")
	threadsFlag := flag.String("threads", "1,16", "comma-separated thread counts")
	duration := flag.Duration("duration", 5*time.Second, "how long each case runs")
	objects := flag.Int("objects", 10000, "token objects on the token for the find case")
	opsFlag := flag.String("ops", strings.Join(allOps, ","), "comma-separated operations")
	format := flag.String("format", "markdown", "output: markdown or tsv")
	keep := flag.Bool("keep-objects", false, "leave the find case's token objects on the token")
	tokenKeys := flag.Bool("token-keys", false, "make the keys for signing, verifying and encrypting token objects (destroyed at the end), not session objects")
	cpuProfile := flag.String("cpuprofile", "", "write p11bench's CPU profile of the timed part of the case to this file (one operation, one thread count)")
	var fetches fetchFlags
	flag.Var(&fetches, "fetch-profile", "FILE=URL: fetch URL?seconds=S (a net/http/pprof CPU profile endpoint) during the timed part of the case into FILE; repeatable")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: p11bench -module PATH -token-label LABEL [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *pin == "" {
		*pin = os.Getenv("P11BENCH_PIN")
	}
	threads, err := parseThreads(*threadsFlag)
	ops := strings.Split(*opsFlag, ",")
	switch {
	case *module == "" || *label == "" || *pin == "":
		usage("-module, -token-label and -pin (or P11BENCH_PIN) are required")
	case err != nil:
		usage(err.Error())
	case *duration <= 0:
		usage("-duration must be positive")
	case *objects < 1:
		usage("-objects must be at least 1")
	case *format != "markdown" && *format != "tsv":
		usage("-format is markdown or tsv")
	case (*cpuProfile != "" || len(fetches) > 0) && (len(ops) != 1 || len(threads) != 1):
		usage("-cpuprofile and -fetch-profile profile one case: give one operation (-ops) and one thread count (-threads)")
	}
	for _, op := range ops {
		if !contains(allOps, op) {
			usage("unknown operation " + op + "; known: " + strings.Join(allOps, ","))
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := open(*module, *label, *pin, threads[len(threads)-1], *tokenKeys)
	if err != nil {
		fmt.Fprintln(os.Stderr, "p11bench:", err)
		os.Exit(1)
	}
	b.duration = *duration
	b.objects = *objects
	b.keepObjects = *keep
	b.cpuProfile = *cpuProfile
	b.fetches = fetches
	fmt.Fprintf(os.Stderr, "p11bench: %s, token %q, %s per case, threads %v\n", b.describe, *label, *duration, threads)

	var rows []row
	failed := false
	for _, op := range ops {
		for _, n := range threads {
			if ctx.Err() != nil {
				break
			}
			r := b.run(ctx, op, n)
			if r.err != nil {
				failed = true
				fmt.Fprintf(os.Stderr, "p11bench: %s, %d threads: %v\n", r.name, n, r.err)
			} else {
				fmt.Fprintf(os.Stderr, "p11bench: %s, %d threads: %.1f ops/s\n", r.name, n, r.perSec())
			}
			rows = append(rows, r)
		}
	}
	b.unpopulate() // if interrupted in the middle of the find case
	b.close()
	if *format == "tsv" {
		printTSV(rows)
	} else {
		printMarkdown(b.describe, *label, *duration, *objects, rows, b.notes)
	}
	if failed || ctx.Err() != nil {
		os.Exit(1)
	}
}

func usage(msg string) {
	fmt.Fprintln(os.Stderr, "p11bench:", msg)
	flag.Usage()
	os.Exit(2)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func parseThreads(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1024 {
			return nil, fmt.Errorf("-threads: %q is not a count of threads (1 to 1024)", f)
		}
		out = append(out, n)
	}
	sort.Ints(out)
	return out, nil
}

// ---- the module ----

type bench struct {
	p        *pkcs11.Ctx
	slot     uint
	main     pkcs11.SessionHandle
	sessions []pkcs11.SessionHandle // one per thread
	describe string
	tag      string // makes this run's labels unique
	duration time.Duration
	objects  int
	notes    []string
	objs     []pkcs11.ObjectHandle // the find case's objects, by number
	// keepObjects leaves the find case's objects on the token.
	keepObjects bool

	rsaPub, rsaPriv pkcs11.ObjectHandle
	ecPub, ecPriv   pkcs11.ObjectHandle
	aes             pkcs11.ObjectHandle
	rsaSig, ecSig   []byte
	// tokenKeys makes those keys token objects, which every node of a
	// cluster holds (a session object lives on the node that made it).
	tokenKeys bool

	// Profiles of the timed part of a case (-cpuprofile, -fetch-profile).
	cpuProfile string
	fetches    []fetchProfile
	profFile   *os.File
	profWait   sync.WaitGroup
	profErr    []error
	profMu     sync.Mutex
}

var (
	msg32  = []byte("p11bench: a 32-byte test message")
	hash32 = []byte("0123456789abcdef0123456789abcdef")
	// The DER OID of P-256, for CKA_EC_PARAMS.
	p256 = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
)

func mech(m uint, param any) []*pkcs11.Mechanism {
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(m, param)}
}

var attr = pkcs11.NewAttribute

func open(module, label, pin string, maxThreads int, tokenKeys bool) (*bench, error) {
	p := pkcs11.New(module)
	if p == nil {
		return nil, fmt.Errorf("cannot load %s", module)
	}
	if err := p.Initialize(); err != nil {
		return nil, fmt.Errorf("C_Initialize: %w", err)
	}
	b := &bench{p: p, tokenKeys: tokenKeys}
	tagBytes := make([]byte, 4)
	rand.Read(tagBytes)
	b.tag = "p11bench-" + hex.EncodeToString(tagBytes)
	fail := func(err error) (*bench, error) {
		p.Finalize()
		return nil, err
	}
	if info, err := p.GetInfo(); err == nil {
		b.describe = fmt.Sprintf("%s (%s %d.%d)", strings.TrimSpace(info.LibraryDescription),
			strings.TrimSpace(info.ManufacturerID), info.LibraryVersion.Major, info.LibraryVersion.Minor)
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		return fail(fmt.Errorf("C_GetSlotList: %w", err))
	}
	found := false
	for _, s := range slots {
		if ti, err := p.GetTokenInfo(s); err == nil && strings.TrimRight(ti.Label, " \x00") == label {
			b.slot, found = s, true
			break
		}
	}
	if !found {
		return fail(fmt.Errorf("no token labelled %q", label))
	}
	if b.main, err = p.OpenSession(b.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION); err != nil {
		return fail(fmt.Errorf("C_OpenSession: %w", err))
	}
	if err := p.Login(b.main, pkcs11.CKU_USER, pin); err != nil && !isRV(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		return fail(fmt.Errorf("C_Login: %w", err))
	}
	for i := 0; i < maxThreads; i++ {
		sh, err := p.OpenSession(b.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			return fail(fmt.Errorf("C_OpenSession %d: %w", i+1, err))
		}
		b.sessions = append(b.sessions, sh)
	}
	if err := b.makeKeys(); err != nil {
		b.destroyKeys()
		return fail(err)
	}
	return b, nil
}

// makeKeys makes the keys (session objects, or token objects with
// -token-keys) and a signature of each kind to verify.
func (b *bench) makeKeys() error {
	p, sh, tok := b.p, b.main, b.tokenKeys
	label := attr(pkcs11.CKA_LABEL, b.tag+"-key")
	var err error
	b.rsaPub, b.rsaPriv, err = p.GenerateKeyPair(sh, mech(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil),
		[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, tok), attr(pkcs11.CKA_MODULUS_BITS, 2048),
			attr(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}), attr(pkcs11.CKA_VERIFY, true), label},
		[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, tok), attr(pkcs11.CKA_SIGN, true),
			attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true), label})
	if err != nil {
		return fmt.Errorf("RSA-2048 C_GenerateKeyPair: %w", err)
	}
	b.ecPub, b.ecPriv, err = p.GenerateKeyPair(sh, mech(pkcs11.CKM_EC_KEY_PAIR_GEN, nil),
		[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, tok), attr(pkcs11.CKA_EC_PARAMS, p256), attr(pkcs11.CKA_VERIFY, true), label},
		[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, tok), attr(pkcs11.CKA_SIGN, true),
			attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true), label})
	if err != nil {
		return fmt.Errorf("EC P-256 C_GenerateKeyPair: %w", err)
	}
	b.aes, err = p.GenerateKey(sh, mech(pkcs11.CKM_AES_KEY_GEN, nil), []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_VALUE_LEN, 32), attr(pkcs11.CKA_TOKEN, tok), attr(pkcs11.CKA_ENCRYPT, true),
		attr(pkcs11.CKA_DECRYPT, true), attr(pkcs11.CKA_SENSITIVE, true), label})
	if err != nil {
		return fmt.Errorf("AES-256 C_GenerateKey: %w", err)
	}
	if b.rsaSig, err = b.sign(sh, pkcs11.CKM_SHA256_RSA_PKCS, b.rsaPriv, msg32); err != nil {
		return err
	}
	if b.ecSig, err = b.sign(sh, pkcs11.CKM_ECDSA, b.ecPriv, hash32); err != nil {
		return err
	}
	return nil
}

// destroyKeys destroys the keys makeKeys made if they are token objects
// (session objects go with their session).
func (b *bench) destroyKeys() {
	if !b.tokenKeys {
		return
	}
	for _, h := range []*pkcs11.ObjectHandle{&b.rsaPub, &b.rsaPriv, &b.ecPub, &b.ecPriv, &b.aes} {
		if *h == 0 {
			continue
		}
		if err := b.p.DestroyObject(b.main, *h); err != nil {
			fmt.Fprintf(os.Stderr, "p11bench: destroying a token key (label %s-key): %v\n", b.tag, err)
		}
		*h = 0
	}
}

func (b *bench) close() {
	b.destroyKeys()
	for _, sh := range b.sessions {
		b.p.CloseSession(sh)
	}
	b.p.Logout(b.main)
	b.p.CloseSession(b.main)
	b.p.Finalize()
}

func isRV(err error, rv uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == rv
}

func (b *bench) sign(sh pkcs11.SessionHandle, m uint, key pkcs11.ObjectHandle, data []byte) ([]byte, error) {
	if err := b.p.SignInit(sh, mech(m, nil), key); err != nil {
		return nil, fmt.Errorf("C_SignInit: %w", err)
	}
	sig, err := b.p.Sign(sh, data)
	if err != nil {
		return nil, fmt.Errorf("C_Sign: %w", err)
	}
	return sig, nil
}

func (b *bench) verify(sh pkcs11.SessionHandle, m uint, key pkcs11.ObjectHandle, data, sig []byte) error {
	if err := b.p.VerifyInit(sh, mech(m, nil), key); err != nil {
		return fmt.Errorf("C_VerifyInit: %w", err)
	}
	if err := b.p.Verify(sh, data, sig); err != nil {
		return fmt.Errorf("C_Verify: %w", err)
	}
	return nil
}

// ---- running a case ----

type row struct {
	op, name string
	threads  int
	ops      int64
	elapsed  time.Duration
	err      error
	bytes    int // plaintext bytes per operation, for MB/s; 0: none
}

// mbPerSec is plaintext MB (10^6 bytes) per second, for rows with bytes.
func (r row) mbPerSec() float64 { return r.perSec() * float64(r.bytes) / 1e6 }

func (r row) perSec() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

// msPerOp is the mean time one thread spends on one operation.
func (r row) msPerOp() float64 {
	if r.ops == 0 {
		return 0
	}
	return r.elapsed.Seconds() * 1000 * float64(r.threads) / float64(r.ops)
}

// timed runs work on n threads, each on its own session, until the
// duration is over, and counts the operations. The first error stops every
// thread.
func (b *bench) timed(ctx context.Context, n int, work func(w int, sh pkcs11.SessionHandle, i int) error) (int64, time.Duration, error) {
	var count atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var stop atomic.Bool
	ctx, cancel := context.WithTimeout(ctx, b.duration)
	defer cancel()
	go func() { <-ctx.Done(); stop.Store(true) }()
	var wg sync.WaitGroup
	b.startProfiles()
	start := time.Now()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			sh := b.sessions[w]
			for i := 0; !stop.Load(); i++ {
				if err := work(w, sh, i); err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					return
				}
				count.Add(1)
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := b.stopProfiles(); err != nil && firstErr == nil {
		firstErr = err
	}
	return count.Load(), elapsed, firstErr
}

// startProfiles starts -cpuprofile and the -fetch-profile fetches.
func (b *bench) startProfiles() {
	b.profErr = nil
	if b.cpuProfile != "" {
		f, err := os.Create(b.cpuProfile)
		if err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			b.profErr = append(b.profErr, fmt.Errorf("-cpuprofile: %w", err))
		} else {
			b.profFile = f
		}
	}
	secs := int(math.Ceil(b.duration.Seconds()))
	for _, fp := range b.fetches {
		b.profWait.Add(1)
		go func() {
			defer b.profWait.Done()
			if err := fetch(fp, secs); err != nil {
				b.profMu.Lock()
				b.profErr = append(b.profErr, fmt.Errorf("-fetch-profile %s: %w", fp.file, err))
				b.profMu.Unlock()
			}
		}()
	}
}

// stopProfiles stops the CPU profile and waits for the fetches (which end
// about when the case does: they last -duration, rounded up).
func (b *bench) stopProfiles() error {
	if b.profFile != nil {
		pprof.StopCPUProfile()
		if err := b.profFile.Close(); err != nil {
			b.profMu.Lock() // the fetches may still be appending theirs
			b.profErr = append(b.profErr, fmt.Errorf("-cpuprofile: %w", err))
			b.profMu.Unlock()
		}
		b.profFile = nil
	}
	b.profWait.Wait()
	return errors.Join(b.profErr...)
}

// fetch gets fp.url?seconds=secs into fp.file.
func fetch(fp fetchProfile, secs int) error {
	sep := "?"
	if strings.Contains(fp.url, "?") {
		sep = "&"
	}
	c := &http.Client{Timeout: time.Duration(secs)*time.Second + 30*time.Second}
	resp, err := c.Get(fp.url + sep + "seconds=" + strconv.Itoa(secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	f, err := os.Create(fp.file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// parallel runs fn(i) for i in [0, total) on n threads, untimed, and
// returns the first error.
func (b *bench) parallel(n, total int, fn func(sh pkcs11.SessionHandle, i int) error) error {
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(sh pkcs11.SessionHandle) {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				if err := fn(sh, i); err != nil {
					errOnce.Do(func() { firstErr = err })
					next.Store(int64(total))
					return
				}
			}
		}(b.sessions[w])
	}
	wg.Wait()
	return firstErr
}

func (b *bench) run(ctx context.Context, op string, n int) row {
	r := row{op: op, threads: n}
	switch op {
	case "rsa-sign":
		r.name = "RSA-2048 sign (SHA256-RSA-PKCS)"
		r.ops, r.elapsed, r.err = b.timed(ctx, n, func(_ int, sh pkcs11.SessionHandle, _ int) error {
			sig, err := b.sign(sh, pkcs11.CKM_SHA256_RSA_PKCS, b.rsaPriv, msg32)
			if err == nil && len(sig) != 256 {
				err = fmt.Errorf("a %d-byte RSA-2048 signature", len(sig))
			}
			return err
		})
	case "ecdsa-sign":
		r.name = "ECDSA P-256 sign"
		r.ops, r.elapsed, r.err = b.timed(ctx, n, func(_ int, sh pkcs11.SessionHandle, _ int) error {
			sig, err := b.sign(sh, pkcs11.CKM_ECDSA, b.ecPriv, hash32)
			if err == nil && len(sig) != 64 {
				err = fmt.Errorf("a %d-byte P-256 signature", len(sig))
			}
			return err
		})
	case "rsa-verify":
		r.name = "RSA-2048 verify (SHA256-RSA-PKCS)"
		r.ops, r.elapsed, r.err = b.timed(ctx, n, func(_ int, sh pkcs11.SessionHandle, _ int) error {
			return b.verify(sh, pkcs11.CKM_SHA256_RSA_PKCS, b.rsaPub, msg32, b.rsaSig)
		})
	case "ecdsa-verify":
		r.name = "ECDSA P-256 verify"
		r.ops, r.elapsed, r.err = b.timed(ctx, n, func(_ int, sh pkcs11.SessionHandle, _ int) error {
			return b.verify(sh, pkcs11.CKM_ECDSA, b.ecPub, hash32, b.ecSig)
		})
	case "aes-gcm", "aes-gcm-1m":
		r.name, r.bytes = "AES-256-GCM encrypt 4 KiB", 4096
		if op == "aes-gcm-1m" {
			r.name, r.bytes = "AES-256-GCM encrypt 1 MiB", 1<<20
		}
		pt := make([]byte, r.bytes)
		r.ops, r.elapsed, r.err = b.timed(ctx, n, func(w int, sh pkcs11.SessionHandle, i int) error {
			// A fresh IV each time: the thread, then a counter.
			iv := make([]byte, 12)
			binary.BigEndian.PutUint32(iv, uint32(w))
			binary.BigEndian.PutUint64(iv[4:], uint64(i))
			gp := pkcs11.NewGCMParams(iv, nil, 128)
			defer gp.Free()
			if err := b.p.EncryptInit(sh, mech(pkcs11.CKM_AES_GCM, gp), b.aes); err != nil {
				return fmt.Errorf("C_EncryptInit: %w", err)
			}
			ct, err := b.p.Encrypt(sh, pt)
			if err != nil {
				return fmt.Errorf("C_Encrypt: %w", err)
			}
			if len(ct) != len(pt)+16 {
				return fmt.Errorf("AES-GCM gave %d bytes for %d", len(ct), len(pt))
			}
			return nil
		})
	case "keygen":
		r.name = "AES-256 token key generation"
		b.keygen(ctx, &r, func(sh pkcs11.SessionHandle, label string) ([]pkcs11.ObjectHandle, error) {
			k, err := b.p.GenerateKey(sh, mech(pkcs11.CKM_AES_KEY_GEN, nil), []*pkcs11.Attribute{
				attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
				attr(pkcs11.CKA_VALUE_LEN, 32), attr(pkcs11.CKA_TOKEN, true), attr(pkcs11.CKA_PRIVATE, true),
				attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_ENCRYPT, true), attr(pkcs11.CKA_LABEL, label)})
			if err != nil {
				return nil, fmt.Errorf("C_GenerateKey: %w", err)
			}
			return []pkcs11.ObjectHandle{k}, nil
		})
	case "keygen-ec":
		r.name = "EC P-256 token key pair generation"
		b.keygen(ctx, &r, func(sh pkcs11.SessionHandle, label string) ([]pkcs11.ObjectHandle, error) {
			return b.keyPair(sh, pkcs11.CKM_EC_KEY_PAIR_GEN, label, attr(pkcs11.CKA_EC_PARAMS, p256))
		})
	case "keygen-rsa":
		r.name = "RSA-2048 token key pair generation"
		b.keygen(ctx, &r, func(sh pkcs11.SessionHandle, label string) ([]pkcs11.ObjectHandle, error) {
			return b.keyPair(sh, pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, label,
				attr(pkcs11.CKA_MODULUS_BITS, 2048), attr(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}))
		})
	case "find":
		r.name = fmt.Sprintf("find 1 object by label among %d", b.objects)
		r.err = b.populate(ctx)
		if r.err == nil {
			r.ops, r.elapsed, r.err = b.timed(ctx, n, func(w int, sh pkcs11.SessionHandle, i int) error {
				k := int(uint64(w)*7919+uint64(i)*104729) % b.objects
				if err := b.p.FindObjectsInit(sh, []*pkcs11.Attribute{attr(pkcs11.CKA_LABEL, b.objLabel(k))}); err != nil {
					return fmt.Errorf("C_FindObjectsInit: %w", err)
				}
				hs, _, err := b.p.FindObjects(sh, 2)
				ferr := b.p.FindObjectsFinal(sh)
				switch {
				case err != nil:
					return fmt.Errorf("C_FindObjects: %w", err)
				case ferr != nil:
					return fmt.Errorf("C_FindObjectsFinal: %w", ferr)
				case len(hs) != 1 || hs[0] != b.objs[k]:
					return fmt.Errorf("the lookup of %s found %v, want [%d]", b.objLabel(k), hs, b.objs[k])
				}
				return nil
			})
		}
		// The objects serve every thread count; they go after the last.
		if n == len(b.sessions) || r.err != nil {
			b.unpopulate()
		}
	}
	return r
}

// keygen times gen, which makes token objects labelled label, on r.threads
// threads, then destroys every object it made (untimed).
func (b *bench) keygen(ctx context.Context, r *row, gen func(sh pkcs11.SessionHandle, label string) ([]pkcs11.ObjectHandle, error)) {
	n := r.threads
	made := make([][]pkcs11.ObjectHandle, n)
	label := fmt.Sprintf("%s-%s-%d", b.tag, r.op, n)
	r.ops, r.elapsed, r.err = b.timed(ctx, n, func(w int, sh pkcs11.SessionHandle, _ int) error {
		hs, err := gen(sh, label)
		made[w] = append(made[w], hs...)
		return err
	})
	var all []pkcs11.ObjectHandle
	for _, m := range made {
		all = append(all, m...)
	}
	start := time.Now()
	err := b.parallel(len(b.sessions), len(all), func(sh pkcs11.SessionHandle, i int) error {
		if err := b.p.DestroyObject(sh, all[i]); err != nil {
			return fmt.Errorf("C_DestroyObject of a generated key: %w", err)
		}
		return nil
	})
	if err != nil && r.err == nil {
		r.err = err
	}
	b.note("%s, %d threads: %d token objects destroyed afterwards in %.1f s", r.op, n, len(all), time.Since(start).Seconds())
}

// keyPair makes a token key pair for signing with the mechanism and the
// public template's extra attributes; it returns both handles.
func (b *bench) keyPair(sh pkcs11.SessionHandle, m uint, label string, pubExtra ...*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	pub, priv, err := b.p.GenerateKeyPair(sh, mech(m, nil),
		append([]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, true), attr(pkcs11.CKA_VERIFY, true), attr(pkcs11.CKA_LABEL, label)}, pubExtra...),
		[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, true), attr(pkcs11.CKA_SIGN, true), attr(pkcs11.CKA_PRIVATE, true),
			attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_LABEL, label)})
	if err != nil {
		return nil, fmt.Errorf("C_GenerateKeyPair: %w", err)
	}
	if pub == 0 || priv == 0 {
		return nil, fmt.Errorf("C_GenerateKeyPair gave handles %d and %d", pub, priv)
	}
	return []pkcs11.ObjectHandle{pub, priv}, nil
}

func (b *bench) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "p11bench:", s)
	b.notes = append(b.notes, s)
}

// ---- the find case's objects ----

func (b *bench) objLabel(i int) string { return fmt.Sprintf("%s-obj-%05d", b.tag, i) }

// populate makes the token data objects once, on every session at once.
func (b *bench) populate(ctx context.Context) error {
	if b.objs != nil {
		return nil
	}
	objs := make([]pkcs11.ObjectHandle, b.objects)
	start := time.Now()
	var made atomic.Int64
	err := b.parallel(len(b.sessions), b.objects, func(sh pkcs11.SessionHandle, i int) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		h, err := b.p.CreateObject(sh, []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
			attr(pkcs11.CKA_TOKEN, true), attr(pkcs11.CKA_LABEL, b.objLabel(i)),
			attr(pkcs11.CKA_APPLICATION, "p11bench"), attr(pkcs11.CKA_VALUE, []byte("p11bench data object"))})
		if err != nil {
			return fmt.Errorf("C_CreateObject %d: %w", i, err)
		}
		objs[i] = h
		made.Add(1)
		return nil
	})
	b.objs = objs
	b.note("find: %d token data objects made in %.1f s (%d threads)", made.Load(), time.Since(start).Seconds(), len(b.sessions))
	return err
}

// unpopulate destroys the objects populate made.
func (b *bench) unpopulate() {
	if b.objs == nil {
		return
	}
	if b.keepObjects {
		b.note("find: %d token data objects (labels %s-obj-*) left on the token (-keep-objects)", len(b.objs), b.tag)
		b.objs = nil
		return
	}
	start := time.Now()
	var gone atomic.Int64
	err := b.parallel(len(b.sessions), len(b.objs), func(sh pkcs11.SessionHandle, i int) error {
		if b.objs[i] == 0 {
			return nil
		}
		if err := b.p.DestroyObject(sh, b.objs[i]); err != nil {
			return fmt.Errorf("C_DestroyObject: %w", err)
		}
		gone.Add(1)
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "p11bench: destroying the find objects:", err)
	}
	b.note("find: %d token data objects destroyed afterwards in %.1f s", gone.Load(), time.Since(start).Seconds())
	b.objs = nil
}

// ---- output ----

func printMarkdown(describe, label string, d time.Duration, objects int, rows []row, notes []string) {
	fmt.Printf("p11bench: %s, token %q, %s per case\n\n", describe, label, d)
	fmt.Println("| operation | threads | ops | ops/s | ms/op | MB/s |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		if r.err != nil {
			fmt.Printf("| %s | %d | error: %s | | | |\n", r.name, r.threads, strings.ReplaceAll(r.err.Error(), "|", "/"))
			continue
		}
		mbs := ""
		if r.bytes > 0 {
			mbs = fmt.Sprintf("%.1f", r.mbPerSec())
		}
		fmt.Printf("| %s | %d | %d | %.1f | %.2f | %s |\n", r.name, r.threads, r.ops, r.perSec(), r.msPerOp(), mbs)
	}
	fmt.Println()
	fmt.Println("ms/op is the mean time per operation in one thread (for find: per lookup); MB/s is 10^6 bytes of plaintext a second.")
	for _, n := range notes {
		fmt.Println("- " + n)
	}
}

// printTSV prints op, name, threads, ops/s, ms/op and plaintext bytes per
// operation (0 for operations without one), tab-separated, for scripts
// (bench.sh).
func printTSV(rows []row) {
	for _, r := range rows {
		if r.err != nil {
			fmt.Printf("%s\t%s\t%d\terror\terror\t%d\n", r.op, r.name, r.threads, r.bytes)
			continue
		}
		fmt.Printf("%s\t%s\t%d\t%.1f\t%.4f\t%d\n", r.op, r.name, r.threads, r.perSec(), r.msPerOp(), r.bytes)
	}
}
