package hsmd

// The [xks] section of a node's configuration (docs/hsmd-config.md) and
// the credentials file it names (docs/xks.md): checked whole at load, so
// a bad section or file stops the node before it serves anything.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/openhsm/openhsm/kms/xks"
	"github.com/openhsm/openhsm/state"
)

// XKSConfig is the [xks] section: the XKS proxy (kms/xks) this node serves
// in front of its cluster. Without the section the node serves none.
type XKSConfig struct {
	// Listen is the host:port of the proxy's HTTPS port (0: chosen at start).
	Listen string `toml:"listen"`
	// Cert and Key are the proxy's TLS certificate and key; both or
	// neither: by default the node's own.
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	// ClientCA, if set, turns mTLS on: a client must present a certificate
	// that chains to one of this PEM file's certificates.
	ClientCA string `toml:"client_ca"`
	// User is the crypto user whose AES-256 keys are the external keys.
	User string `toml:"user"`
	// Prefixes are the URI path prefixes served ("" is none); default [""].
	Prefixes []string `toml:"prefixes"`
	// CredentialsFile holds the SigV4 credentials of each prefix; it is
	// read again on SIGHUP and when its modification time, size or inode
	// changes.
	CredentialsFile string `toml:"credentials_file"`
	// CredentialsPoll is how often the file's modification time, size and
	// inode are checked (1s to 1h); default 5s.
	CredentialsPoll string `toml:"credentials_poll"`
	// PingPath is the load balancers' unauthenticated health path.
	PingPath string `toml:"ping_path"`
	// AddrFile, if set, receives the proxy's address once it listens.
	AddrFile string `toml:"addr_file"`
	// Rules are the optional secondary authorization ([[xks.rule]]).
	Rules []XKSRule `toml:"rule"`

	poll time.Duration
}

// XKSRule is one [[xks.rule]]: an xks.Rule.
type XKSRule struct {
	Key       string `toml:"key"`
	Principal string `toml:"principal"`
	KeyARN    string `toml:"key_arn"`
	Operation string `toml:"operation"`
}

// DefaultXKSCredentialsPoll is how often the credentials file's stamp
// (modification time, size, inode) is checked.
const DefaultXKSCredentialsPoll = 5 * time.Second

// MaxXKSRules bounds [[xks.rule]].
const MaxXKSRules = 1000

// MaxXKSPrefixes bounds prefixes.
const MaxXKSPrefixes = 100

// maxXKSCredentialsFile bounds the credentials file.
const maxXKSCredentialsFile = 1 << 20

// Poll is how often the credentials file is checked for a change.
func (x *XKSConfig) Poll() time.Duration {
	if x.poll == 0 {
		return DefaultXKSCredentialsPoll
	}
	return x.poll
}

// PrefixList is the prefixes served.
func (x *XKSConfig) PrefixList() []string {
	if x.Prefixes == nil {
		return []string{""}
	}
	return slices.Clone(x.Prefixes)
}

// AuthzRules are the secondary authorization rules.
func (x *XKSConfig) AuthzRules() []xks.Rule {
	out := make([]xks.Rule, len(x.Rules))
	for i, r := range x.Rules {
		out[i] = xks.Rule{Key: r.Key, Principal: r.Principal, KeyARN: r.KeyARN, Operation: r.Operation}
	}
	return out
}

// check checks the section, and reads the credentials file; its errors
// name the key without the "xks." that the caller adds.
func (x *XKSConfig) check() error {
	if _, err := checkListen(x.Listen, true, "xks", "XKS proxy"); err != nil {
		return err
	}
	if (x.Cert == "") != (x.Key == "") {
		return fmt.Errorf("cert and key: give both (the proxy's own certificate) or neither (the node's)")
	}
	for _, f := range []struct{ key, path string }{{"cert", x.Cert}, {"key", x.Key}, {"client_ca", x.ClientCA}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%s: %v", f.key, err)
		}
	}
	if x.User == "" {
		return fmt.Errorf("user: required (the crypto user whose AES-256 keys are the external keys)")
	}
	if err := state.ValidUserName(x.User); err != nil {
		return fmt.Errorf("user: %q: %v", x.User, err)
	}
	if x.Prefixes != nil {
		if len(x.Prefixes) == 0 || len(x.Prefixes) > MaxXKSPrefixes {
			return fmt.Errorf("prefixes: must name from 1 to %d prefixes (leave it out for none: \"\")", MaxXKSPrefixes)
		}
		seen := map[string]bool{}
		for _, p := range x.Prefixes {
			if !xks.ValidPrefix(p) {
				return fmt.Errorf("prefixes: %q is not \"\" or \"/\" and up to 116 letters, digits, /, _ or -, without a trailing slash", p)
			}
			if seen[p] {
				return fmt.Errorf("prefixes: %q is named twice", p)
			}
			seen[p] = true
		}
	}
	if x.CredentialsFile == "" {
		return fmt.Errorf("credentials_file: required (the SigV4 credentials of each prefix)")
	}
	if _, err := readXKSCredentials(x.CredentialsFile, x.PrefixList()); err != nil {
		return fmt.Errorf("credentials_file: %v", err)
	}
	x.poll = DefaultXKSCredentialsPoll
	if x.CredentialsPoll != "" {
		d, err := time.ParseDuration(x.CredentialsPoll)
		if err != nil || d < time.Second || d > time.Hour {
			return fmt.Errorf("credentials_poll: %q must be a duration from 1s to 1h", x.CredentialsPoll)
		}
		x.poll = d
	}
	if x.PingPath != "" {
		if !validPingPath(x.PingPath) {
			return fmt.Errorf("ping_path: %q must be \"/\" and up to 127 letters, digits, /, _, - or ., outside /kms/xks/v1/", x.PingPath)
		}
	}
	if len(x.Rules) > MaxXKSRules {
		return fmt.Errorf("rule: at most %d rules", MaxXKSRules)
	}
	var a xks.Authorizer
	if err := a.SetRules(x.AuthzRules()); err != nil {
		return fmt.Errorf("rule: %v", err)
	}
	return nil
}

func validPingPath(p string) bool {
	if len(p) < 1 || len(p) > 128 || p[0] != '/' || strings.Contains(p, "/kms/xks/v1/") || strings.Contains(p, "//") {
		return false
	}
	for _, r := range p {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_-.", r)
		if !ok {
			return false
		}
	}
	return true
}

// xksCredential is one credential of the credentials file.
type xksCredential struct {
	Prefix          string `toml:"prefix"`
	AccessKeyID     string `toml:"access_key_id"`
	SecretAccessKey string `toml:"secret_access_key"`
}

// xksCredentialsFile is the credentials file: TOML, [[credential]] tables.
type xksCredentialsFile struct {
	Credential []xksCredential `toml:"credential"`
}

// readXKSCredentials reads and checks the credentials file: a regular
// file that group and others cannot access, at most 1 MiB of TOML whose
// [[credential]] tables each name a prefix of prefixes, an access key ID
// and a secret of the forms AWS KMS takes; an access key ID at most once
// per prefix; every prefix at least one credential. The answer is the
// credentials, in the file's order. Errors never hold a secret (nor the
// file's text: a TOML error could quote it).
func readXKSCredentials(path string, prefixes []string) ([]xksCredential, error) {
	if err := privateFile("credentials_file", path); err != nil {
		// privateFile names the setting; the caller names it too.
		return nil, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "credentials_file: "))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) > maxXKSCredentialsFile {
		return nil, fmt.Errorf("%s is over %d bytes", path, maxXKSCredentialsFile)
	}
	var f xksCredentialsFile
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&f)
	if err != nil {
		// A TOML error may quote the line, which may hold a secret: give
		// the position only.
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: not TOML at line %d", path, pe.Position.Line)
		}
		return nil, fmt.Errorf("%s: not [[credential]] tables of prefix, access_key_id and secret_access_key strings", path)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%s: unknown key %s", path, und[0].String())
	}
	served := map[string]bool{}
	for _, p := range prefixes {
		served[p] = true
	}
	var c xks.Credentials
	seen := map[[2]string]bool{}
	for i, cr := range f.Credential {
		where := fmt.Sprintf("%s: credential %d", path, i+1)
		if !served[cr.Prefix] {
			return nil, fmt.Errorf("%s: prefix %q is not one of the [xks] prefixes %q", where, cr.Prefix, prefixes)
		}
		if seen[[2]string{cr.Prefix, cr.AccessKeyID}] {
			return nil, fmt.Errorf("%s: access key ID %q is given twice for prefix %q", where, cr.AccessKeyID, cr.Prefix)
		}
		seen[[2]string{cr.Prefix, cr.AccessKeyID}] = true
		if err := c.Set(cr.Prefix, cr.AccessKeyID, cr.SecretAccessKey); err != nil {
			return nil, fmt.Errorf("%s: %s", where, strings.TrimPrefix(err.Error(), "xks: "))
		}
	}
	for _, p := range prefixes {
		if len(c.AccessKeyIDs(p)) == 0 {
			return nil, fmt.Errorf("%s: prefix %q has no credential", path, p)
		}
	}
	return f.Credential, nil
}
