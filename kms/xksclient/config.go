package xksclient

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The forms AWS KMS gives an external key store's proxy settings (the KMS
// API model's XksProxyUriEndpointType, XksProxyUriPathType,
// XksProxyAuthenticationAccessKeyIdType and ...RawSecretAccessKeyType;
// kms/model holds the same model). The path must be API version 1: the
// model allows /kms/xks/v<1-2 digits>, but v1 is the only API there is.
var (
	hostForm        = regexp.MustCompile(`^[a-zA-Z0-9.-]+$`)
	pathForm        = regexp.MustCompile(`^(/[a-zA-Z0-9/_-]+)?/kms/xks/v1$`)
	accessKeyIDForm = regexp.MustCompile(`^[A-Z2-7]{20,30}$`)
	secretForm      = regexp.MustCompile(`^[a-zA-Z0-9/+=]{43,64}$`)
)

// APIPath is the end of every XksProxyUriPath this client accepts.
const APIPath = "/kms/xks/v1"

// DefaultTimeout bounds a call when Config.Timeout is 0. AWS KMS waits
// 250 ms ([S] "Encrypt", KMS Considerations); that is too short for
// tests on a loaded machine, so the default is longer.
const DefaultTimeout = 5 * time.Second

// check validates c; its errors name the field and never hold the secret.
func (c *Config) check() error {
	u, err := url.Parse(c.Endpoint)
	switch {
	case len(c.Endpoint) < 10 || len(c.Endpoint) > 128:
		return fmt.Errorf("xksclient: Endpoint %q must be 10 to 128 characters", c.Endpoint)
	case err != nil || u.Scheme != "https" || u.Opaque != "" || u.User != nil:
		return fmt.Errorf("xksclient: Endpoint %q is not https://host[:port]", c.Endpoint)
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(c.Endpoint, "?#"):
		return fmt.Errorf("xksclient: Endpoint %q must have no path, query or fragment (the path goes in Path)", c.Endpoint)
	case !hostForm.MatchString(u.Hostname()):
		return fmt.Errorf("xksclient: Endpoint %q: the host must be letters, digits, '.' and '-'", c.Endpoint)
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("xksclient: Endpoint %q: the port must be 1 to 65535", c.Endpoint)
		}
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil && u.Port() != "" {
		return fmt.Errorf("xksclient: Endpoint %q is not https://host[:port]", c.Endpoint)
	}
	switch {
	case len(c.Path) > 128 || !pathForm.MatchString(c.Path) || strings.Contains(c.Path, "//"):
		return fmt.Errorf("xksclient: Path %q must be an optional prefix of letters, digits, '/', '_' and '-' then %q, at most 128 characters", c.Path, APIPath)
	case !accessKeyIDForm.MatchString(c.AccessKeyID):
		return fmt.Errorf("xksclient: AccessKeyID %q must be 20 to 30 characters of A-Z and 2-7", c.AccessKeyID)
	case !secretForm.MatchString(c.SecretAccessKey):
		return errors.New("xksclient: SecretAccessKey must be 43 to 64 characters of A-Z, a-z, 0-9, '/', '+' and '='")
	case strings.TrimSpace(c.Region) == "" || strings.ContainsAny(c.Region, " /\t\n"):
		return fmt.Errorf("xksclient: Region %q must be a region name such as us-east-1", c.Region)
	case c.Timeout < 0:
		return errors.New("xksclient: Timeout must be 0 (the default) or positive")
	}
	return nil
}
