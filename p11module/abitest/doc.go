// Package abitest tests libopenhsm-pkcs11.so through its C ABI: it builds
// the library, the fork helper, a fake helper (testdata/fakehelper) and a C
// driver (testdata/p11test.c), and runs the driver's scenarios. See
// docs/pkcs11-library.md.
package abitest
