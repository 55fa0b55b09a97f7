// Package pki is the cluster's own certificate authority and its mutual-TLS
// configuration. It uses the Go standard library only.
//
// What it promises:
//
//   - One CA per cluster: an ECDSA P-256 self-signed certificate valid for
//     ten years, with a random 128-bit serial, key usage CertSign|CRLSign and
//     basic constraints CA:TRUE with a path length of 0, so it can sign leaf
//     certificates only, never intermediates. It lives in a directory as
//     ca.pem (mode 0644) and ca-key.pem (mode 0600, PKCS#8 PEM), with the
//     operator: daemons never hold the CA key, so a compromised node cannot
//     mint certificates.
//   - Every certificate is bound to one cluster by a URI SAN
//     openhsm://cluster/<id> (the CA's too, so LoadCA knows its cluster).
//     Servers, clients and nodes refuse a peer whose certificate names
//     another cluster than their own certificate does: one CA key reused
//     for two clusters does not let one cluster's certificates into the
//     other.
//   - Leaf certificates of two kinds, told apart by the subject's
//     OrganizationalUnit: "node" for daemon nodes (server and client
//     authentication, since nodes also dial each other; SANs from the given
//     hosts plus 127.0.0.1 and localhost) and "client" for PKCS#11 library
//     users (client authentication only). Leaves are valid for 90 days
//     (LeafValidity, never beyond the CA), short so that a lost certificate
//     nobody revoked still ends soon, and carry fresh ECDSA P-256 keys
//     written with mode 0600. CA.Renew replaces a leaf with a fresh one of
//     the same kind, name and hosts.
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
//   - A DenyList of revoked fingerprints (SHA-256 of the leaf DER), which
//     NodeServerConfig and NodePeerConfig consult at every handshake. The
//     set is swapped whole, atomically, when the cluster's replicated list
//     changes, so a handshake never waits for a lock. The list itself is
//     state of the cluster (tokens), not of this package.
//   - PeerIdentity turns a completed handshake's verified peer certificate
//     into an Identity (common name, kind, cluster ID, SHA-256 fingerprint
//     of the leaf DER), refusing unverified peers, unknown kinds and
//     certificates bound to no cluster.
//
// docs/certificates.md describes issuing, binding, lifetimes, revocation
// and renewal.
package pki
