// Package pki is the cluster's own certificate authority and its mutual-TLS
// configuration. It uses the Go standard library only.
//
// What it promises:
//
//   - One CA per cluster: an ECDSA P-256 self-signed certificate valid for
//     ten years, with a random 128-bit serial, key usage CertSign|CRLSign and
//     basic constraints CA:TRUE with a path length of 0, so it can sign leaf
//     certificates only, never intermediates. It lives in a directory as
//     ca.pem (mode 0644) and ca-key.pem (mode 0600, PKCS#8 PEM).
//   - Leaf certificates of two kinds, told apart by the subject's
//     OrganizationalUnit: "node" for daemon nodes (server and client
//     authentication, since nodes also dial each other; SANs from the given
//     hosts plus 127.0.0.1 and localhost) and "client" for PKCS#11 library
//     users (client authentication only). Leaves are valid for two years
//     (never beyond the CA) and carry fresh ECDSA P-256 keys written with
//     mode 0600.
//   - Nothing is ever overwritten: creating a CA or issuing a leaf fails with
//     an error wrapping fs.ErrExist if any of the target files exists, and
//     files are created with O_EXCL, so a concurrent writer cannot be
//     clobbered either. On failure no partial set of files is left behind.
//   - Names (of leaves) must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$, which
//     keeps them safe as file names and as common names.
//   - ServerConfig and ClientConfig give TLS 1.3-only configurations that
//     trust exactly the cluster CA: a server requires and verifies a client
//     certificate issued by that CA; a client verifies the server against
//     that CA. Both check at load time that the key matches the certificate
//     and that the certificate chains to the CA for its role.
//   - Errors name the file that is missing or bad. They never contain key
//     material.
//   - PeerIdentity turns a completed handshake's verified peer certificate
//     into an Identity (common name, kind, SHA-256 fingerprint of the leaf
//     DER), refusing unverified peers and unknown kinds.
package pki
