// Command p11login is the security suite's PKCS#11 attacker. It loads the
// library named by its first argument (libopenhsm-pkcs11.so, which reads
// HSM_CONFIG), finds the token whose label is its second argument, opens a
// session and calls C_Login as CKU_USER with the PIN in the environment
// variable P11LOGIN_PIN (never on the command line, where other processes
// could read it). It prints one line: the CK_RV of C_Login by name (CKR_OK
// when the login succeeded), or "no token" when no slot has that label. It
// exits 1, saying why, when the library fails before the login.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/miekg/pkcs11"

	"github.com/openhsm/openhsm/ck"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: p11login LIBRARY TOKEN-LABEL (PIN in P11LOGIN_PIN)")
		os.Exit(2)
	}
	out, err := login(os.Args[1], os.Args[2], os.Getenv("P11LOGIN_PIN"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "p11login:", err)
		os.Exit(1)
	}
	fmt.Println(out)
}

func login(lib, label, pin string) (string, error) {
	p := pkcs11.New(lib)
	if p == nil {
		return "", fmt.Errorf("cannot load %s", lib)
	}
	if err := p.Initialize(); err != nil {
		return "", fmt.Errorf("C_Initialize: %v", err)
	}
	defer p.Finalize()
	slots, err := p.GetSlotList(true)
	if err != nil {
		return "", fmt.Errorf("C_GetSlotList: %v", err)
	}
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil {
			return "", fmt.Errorf("C_GetTokenInfo: %v", err)
		}
		if strings.TrimRight(ti.Label, " ") != label {
			continue
		}
		sh, err := p.OpenSession(s, pkcs11.CKF_SERIAL_SESSION)
		if err != nil {
			return "", fmt.Errorf("C_OpenSession: %v", err)
		}
		defer p.CloseSession(sh)
		err = p.Login(sh, pkcs11.CKU_USER, pin)
		if err == nil {
			p.Logout(sh)
			return "CKR_OK", nil
		}
		var rv pkcs11.Error
		if !errors.As(err, &rv) {
			return "", fmt.Errorf("C_Login: %v", err)
		}
		return ck.RVName(uint64(rv)), nil
	}
	return "no token", nil
}
