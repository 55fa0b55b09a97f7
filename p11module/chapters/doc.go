// Package chapters holds the C-ABI error-path suite of
// libopenhsm-pkcs11.so, grouped by the function chapters of the PKCS#11
// v3.0 base specification (section 5: general purpose, slot and token,
// session, object, encryption, decryption, message-based encryption and
// decryption, digesting, signing and MACing, message-based signing,
// verifying, dual-function, key management, random numbers, parallel
// function management), plus PKCS#11 3.2's C_EncapsulateKey and
// C_DecapsulateKey under key management.
//
// Every function the library exports has rows for what the specification
// asks of every function (CKR_CRYPTOKI_NOT_INITIALIZED before C_Initialize,
// CKR_SESSION_HANDLE_INVALID for a made-up session), and the functions
// that work today have rows for NULL pointers (CKR_ARGUMENTS_BAD), bad
// object and key handles, the wrong session state and short buffers
// (CKR_BUFFER_TOO_SMALL with the needed length written and the operation
// still alive). Each row names the function, the case and the CK_RV the
// specification asks for. Rows where the library knowingly answers
// otherwise than the specification assert today's answer and name the
// deviation; docs/pkcs11-library.md ("Conformance") lists them.
//
// The rows run in a C driver (testdata/rows.c) that the test builds: it
// takes each row's arguments as words ("outlen=NULL", "sh=bad",
// "start=encrypt", "outcap=1 check=alive"), makes one call and prints the
// CK_RV. The whole table runs in one driver process per transport (in
// process, and through the fork helper) against a real one-node cluster.
//
// The package also checks docs/pkcs11-library.md: its mechanism table is
// generated from the mech package's table (go test -run TestConformanceDoc
// -update ./p11module/chapters rewrites it) and its function table must
// name every function the rows name.
package chapters
