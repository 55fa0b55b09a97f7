#!/bin/sh
# pkcs11-tool.sh: OpenSC's pkcs11-tool drives libopenhsm-pkcs11.so against a
# real one-node cluster, and openssl checks the results from the outside:
# slots and mechanisms, RSA/EC/AES key generation, RSA PKCS#1 v1.5 and PSS
# and ECDSA signatures (verified by both tools), RSA-OAEP and AES-CBC-PAD,
# ECDH against an openssl peer, and pkcs11-tool's own --test, --test-ec and
# --test-fork.
#
# The whole round runs twice: in process, then with
# OPENHSM_P11_FORCE_HELPER=1 (every call through openhsm-p11-helper).
#
#   interop/pkcs11-tool.sh          KEEP=1 keeps the work directory
. "$(dirname "$0")/lib.sh"
need_pkgs opensc openssl
start_cluster

# p11 runs pkcs11-tool on the module; tok also selects the crypto user's
# token and logs in.
p11() { pkcs11-tool --module "$P11_MODULE" "$@"; }
tok() { p11 --token-label "$P11_TOKEN_LABEL" --login --pin "$P11_PIN" "$@"; }

# t OUT ARGS... / p OUT ARGS...: tok / p11 with the output in $D/OUT, shown
# when the command fails.
t() {
  o=$D/$1
  shift
  tok "$@" >"$o" 2>&1 || { cat "$o"; return 1; }
}
p() {
  o=$D/$1
  shift
  p11 "$@" >"$o" 2>&1 || { cat "$o"; return 1; }
}

# hex FILE: the file as one line of lowercase hex.
hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }

# has FILE PATTERN: FILE has a line matching the extended regex PATTERN;
# shows the file when not.
has() {
  grep -Eq -- "$2" "$1" && return 0
  echo "no line matching /$2/ in:"
  cat "$1"
  return 1
}

# --- checks ---
# check runs each in a command substitution, where dash keeps set -e: each
# is one && chain, and its first failing command fails the check.

list_slots() {
  p slots -L && has "$D/slots" "token label +: $P11_TOKEN_LABEL\$"
}

list_mechanisms() {
  p mechs --token-label "$P11_TOKEN_LABEL" -M &&
    has "$D/mechs" '^ +RSA-PKCS,' &&
    has "$D/mechs" '^ +RSA-PKCS-OAEP,' &&
    has "$D/mechs" '^ +RSA-PKCS-PSS,' &&
    has "$D/mechs" '^ +ECDSA,' &&
    has "$D/mechs" '^ +ECDH1-DERIVE,' &&
    has "$D/mechs" '^ +AES-GCM,' &&
    has "$D/mechs" '^ +AES-CBC-PAD,'
}

# Which process serves the calls, by the pid the library logs with
# C_Initialize: pkcs11-tool itself, or (OPENHSM_P11_FORCE_HELPER=1) the
# openhsm-p11-helper it started, which is gone once pkcs11-tool is.
transport() {
  log=$CLUSTER/p11.log
  n=$(wc -l <"$log")
  pkcs11-tool --module "$P11_MODULE" -I >"$D/info" 2>&1 &
  pid=$!
  wait $pid || { cat "$D/info"; return 1; }
  tail -n +$((n + 1)) "$log" >"$D/log-tail"
  init=$(sed -n 's/.*msg=C_Initialize pid=\([0-9]*\).*/\1/p' "$D/log-tail")
  echo "pkcs11-tool pid $pid, C_Initialize logged by pid(s) '$init'"
  [ "$(echo "$init" | wc -w)" -eq 1 ] || return 1
  if [ -z "${OPENHSM_P11_FORCE_HELPER:-}" ]; then
    [ "$init" = "$pid" ]
  else
    [ "$init" != "$pid" ] || return 1
    i=0
    while kill -0 "$init" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    ! kill -0 "$init" 2>/dev/null
  fi
}

# Generate, then find the objects again by ID.
gen_rsa() {
  t gen-rsa --session-rw --keypairgen --key-type rsa:2048 --id "$RSA" --label "$R-rsa" &&
    t obj-rsa -O --type privkey --id "$RSA" &&
    has "$D/obj-rsa" "label: +$R-rsa\$" &&
    t obj-rsa-pub -O --type pubkey --id "$RSA" &&
    has "$D/obj-rsa-pub" 'RSA 2048 bits'
}

gen_ec() {
  t gen-ec --session-rw --keypairgen --key-type EC:prime256v1 --id "$EC" --label "$R-ec" &&
    t obj-ec -O --type privkey --id "$EC" &&
    has "$D/obj-ec" "label: +$R-ec\$" &&
    t obj-ec-pub -O --type pubkey --id "$EC" &&
    has "$D/obj-ec-pub" 'EC_PARAMS: +06082a8648ce3d030107'
}

gen_aes() {
  t gen-aes --session-rw --keygen --key-type AES:32 --id "$AES" --label "$R-aes" &&
    t obj-aes -O --type secrkey --id "$AES" &&
    has "$D/obj-aes" 'AES length 32' &&
    has "$D/obj-aes" "label: +$R-aes\$"
}

# A key the token generated is CKA_LOCAL, and a sensitive, non-extractable
# one is also CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE (PKCS#11 3.0,
# 4.7). pkcs11-tool prints them on the Access line. (pkcs11-tool asks for
# CKA_SENSITIVE=false on the AES key, so that one is not sensitive.)
attrs_rsa() { has "$D/obj-rsa" 'Access: +sensitive, always sensitive, never extractable, local$'; }
attrs_ec() { has "$D/obj-ec" 'Access: +sensitive, always sensitive, never extractable, local$'; }
attrs_aes() { has "$D/obj-aes" 'Access: +never extractable, local$'; }

# The public keys leave the token as SubjectPublicKeyInfo DER.
export_pubkeys() {
  t read-rsa --read-object --type pubkey --id "$RSA" -o "$D/rsa.der" &&
    openssl pkey -pubin -inform DER -in "$D/rsa.der" -out "$D/rsa.pem" &&
    openssl pkey -pubin -in "$D/rsa.pem" -noout -text >"$D/rsa.txt" &&
    has "$D/rsa.txt" 'Public-Key: \(2048 bit\)' &&
    t read-ec --read-object --type pubkey --id "$EC" -o "$D/ec.der" &&
    openssl pkey -pubin -inform DER -in "$D/ec.der" -out "$D/ec.pem" &&
    openssl pkey -pubin -in "$D/ec.pem" -noout -text >"$D/ec.txt" &&
    has "$D/ec.txt" 'ASN1 OID: prime256v1'
}

# verify_ok OUT: pkcs11-tool --verify says the signature is good (it exits
# 0 either way).
verify_ok() { has "$1" '^Signature is valid$'; }

sign_rsa_pkcs() {
  t out --sign -m SHA256-RSA-PKCS --id "$RSA" -i "$D/data" -o "$D/sig-rsa" &&
    t out --verify -m SHA256-RSA-PKCS --id "$RSA" -i "$D/data" --signature-file "$D/sig-rsa" &&
    verify_ok "$D/out" &&
    openssl dgst -sha256 -verify "$D/rsa.pem" -signature "$D/sig-rsa" "$D/data" &&
    # ... and neither tool takes it for other data.
    t out --verify -m SHA256-RSA-PKCS --id "$RSA" -i "$D/other" --signature-file "$D/sig-rsa" &&
    has "$D/out" '^Invalid signature' &&
    ! openssl dgst -sha256 -verify "$D/rsa.pem" -signature "$D/sig-rsa" "$D/other"
}

# RSA-PKCS-PSS on a SHA-256 digest (--hash-algorithm/--mgf), and
# SHA256-RSA-PKCS-PSS on the data (pkcs11-tool 0.23 refuses --hash-algorithm
# with the combined mechanisms and takes the hash from the mechanism).
sign_rsa_pss() {
  t out --sign -m RSA-PKCS-PSS --hash-algorithm SHA256 --mgf MGF1-SHA256 --id "$RSA" \
    -i "$D/data.sha256" -o "$D/sig-pss" &&
    t out --verify -m RSA-PKCS-PSS --hash-algorithm SHA256 --mgf MGF1-SHA256 --id "$RSA" \
      -i "$D/data.sha256" --signature-file "$D/sig-pss" &&
    verify_ok "$D/out" &&
    openssl pkeyutl -verify -pubin -inkey "$D/rsa.pem" -in "$D/data.sha256" -sigfile "$D/sig-pss" \
      -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32 \
      -pkeyopt rsa_mgf1_md:sha256 &&
    t out --sign -m SHA256-RSA-PKCS-PSS --id "$RSA" -i "$D/data" -o "$D/sig-pss2" &&
    t out --verify -m SHA256-RSA-PKCS-PSS --id "$RSA" -i "$D/data" --signature-file "$D/sig-pss2" &&
    verify_ok "$D/out" &&
    openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
      -sigopt rsa_mgf1_md:sha256 -verify "$D/rsa.pem" -signature "$D/sig-pss2" "$D/data"
}

# ECDSA: the token answers r||s; --signature-format openssl makes
# pkcs11-tool write (and read) the DER sequence openssl uses.
sign_ecdsa() {
  t out --sign -m ECDSA --id "$EC" -i "$D/data.sha256" -o "$D/sig-ec" --signature-format openssl &&
    t out --verify -m ECDSA --id "$EC" -i "$D/data.sha256" --signature-file "$D/sig-ec" \
      --signature-format openssl &&
    verify_ok "$D/out" &&
    openssl pkeyutl -verify -pubin -inkey "$D/ec.pem" -in "$D/data.sha256" -sigfile "$D/sig-ec" &&
    t out --sign -m ECDSA-SHA256 --id "$EC" -i "$D/data" -o "$D/sig-ec2" --signature-format openssl &&
    openssl dgst -sha256 -verify "$D/ec.pem" -signature "$D/sig-ec2" "$D/data" &&
    ! openssl dgst -sha256 -verify "$D/ec.pem" -signature "$D/sig-ec2" "$D/other"
}

# RSA-OAEP (SHA-256, MGF1-SHA-256): openssl encrypts to the exported key,
# the token decrypts.
oaep() {
  openssl pkeyutl -encrypt -pubin -inkey "$D/rsa.pem" -in "$D/msg" -out "$D/msg.oaep" \
    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 &&
    t out --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 --id "$RSA" \
      -i "$D/msg.oaep" -o "$D/msg.dec" &&
    cmp "$D/msg" "$D/msg.dec"
}

# AES-CBC-PAD round trip with the generated key. (pkcs11-tool 0.23's
# --encrypt has no AES-GCM: it answers "Mechanism AES-GCM illegal or not
# supported" before calling the module.)
aes_cbc_pad() {
  t out --encrypt -m AES-CBC-PAD --id "$AES" --iv "$IV" -i "$D/data" -o "$D/data.cbc" &&
    [ "$(wc -c <"$D/data.cbc")" -eq 1008 ] &&
    ! cmp -s "$D/data" "$D/data.cbc" &&
    t out --decrypt -m AES-CBC-PAD --id "$AES" --iv "$IV" -i "$D/data.cbc" -o "$D/data.dec" &&
    cmp "$D/data" "$D/data.dec"
}

# The same with a key of known value (written with --write-object), so
# openssl can check the ciphertext both ways.
aes_known_key() {
  t out --session-rw --write-object "$D/aes.key" --type secrkey --key-type AES:32 \
    --id "$AESK" --label "$R-aes-known" --usage-decrypt &&
    t out --encrypt -m AES-CBC-PAD --id "$AESK" --iv "$IV" -i "$D/data" -o "$D/known.cbc" &&
    openssl enc -aes-256-cbc -K "$(hex "$D/aes.key")" -iv "$IV" -in "$D/data" -out "$D/known.ossl" &&
    cmp "$D/known.cbc" "$D/known.ossl" &&
    openssl enc -aes-256-cbc -K "$(hex "$D/aes.key")" -iv "$IV" -in "$D/other" -out "$D/other.ossl" &&
    t out --decrypt -m AES-CBC-PAD --id "$AESK" --iv "$IV" -i "$D/other.ossl" -o "$D/other.dec" &&
    cmp "$D/other" "$D/other.dec"
}

# ECDH with an openssl peer: pkcs11-tool 0.23 reads the peer's
# SubjectPublicKeyInfo (DER), derives a session CKK_GENERIC_SECRET with
# CKA_SENSITIVE=false and CKA_EXTRACTABLE=true, and writes its CKA_VALUE to
# --output-file. openssl derives from the other side.
ecdh() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$D/peer.pem" 2>/dev/null &&
    openssl pkey -in "$D/peer.pem" -pubout -outform DER -out "$D/peer-pub.der" &&
    t out --session-rw --derive -m ECDH1-DERIVE --id "$EC" -i "$D/peer-pub.der" -o "$D/secret.p11" &&
    openssl pkeyutl -derive -inkey "$D/peer.pem" -peerkey "$D/ec.pem" -out "$D/secret.ossl" &&
    [ "$(wc -c <"$D/secret.p11")" -eq 32 ] &&
    cmp "$D/secret.p11" "$D/secret.ossl"
}

self_test() {
  t test.out --test && has "$D/test.out" '^No errors$' &&
    has "$D/test.out" 'all 4 signature functions seem to work' &&
    has "$D/test.out" 'RSA-PKCS-OAEP: .*' &&
    ! grep -E 'ERR:|error:' "$D/test.out"
}

self_test_ec() {
  t test-ec.out --session-rw --test-ec --id "$TEC" --key-type EC:prime256v1 &&
    has "$D/test-ec.out" '^==> OK$' &&
    ! grep -E 'ERR:|error:' "$D/test-ec.out"
}

# --test-fork: the child calls C_Initialize again; pkcs11-tool exits non-zero
# if the child fails.
self_test_fork() {
  t test-fork.out --test-fork &&
    has "$D/test-fork.out" 'Calling C_Initialize in forked child process' &&
    ! grep -E 'ERR:|error:|exited with status' "$D/test-fork.out"
}

# Delete what the round made; the token no longer lists it.
cleanup() {
  t out --session-rw -b --type privkey --id "$RSA" &&
    t out --session-rw -b --type pubkey --id "$RSA" &&
    t out --session-rw -b --type privkey --id "$EC" &&
    t out --session-rw -b --type pubkey --id "$EC" &&
    t out --session-rw -b --type secrkey --id "$AES" &&
    t out --session-rw -b --type secrkey --id "$AESK" &&
    t objs -O &&
    ! grep -E "label: +$R-" "$D/objs"
}

# round NAME ID-PREFIX: every check once, with object IDs <prefix>01 to
# <prefix>05 (hex).
round() {
  R=$1
  RSA=${2}01 EC=${2}02 AES=${2}03 AESK=${2}04 TEC=${2}05
  IV=000102030405060708090a0b0c0d0e0f
  D=$WORK/$R
  mkdir -p "$D"
  head -c 1000 /dev/urandom >"$D/data"
  head -c 1000 /dev/urandom >"$D/other"
  head -c 100 /dev/urandom >"$D/msg"
  head -c 32 /dev/urandom >"$D/aes.key"
  openssl dgst -sha256 -binary "$D/data" >"$D/data.sha256"

  if [ -n "${OPENHSM_P11_FORCE_HELPER:-}" ]; then
    check "$R: calls run in openhsm-p11-helper, which exits with pkcs11-tool" transport
  else
    check "$R: calls run in the pkcs11-tool process" transport
  fi
  check "$R: -L lists token $P11_TOKEN_LABEL" list_slots
  check "$R: -M lists RSA-PKCS, RSA-PKCS-OAEP/PSS, ECDSA, ECDH1-DERIVE, AES-GCM, AES-CBC-PAD" list_mechanisms
  check "$R: --keypairgen rsa:2048" gen_rsa
  check "$R: --keypairgen EC:prime256v1" gen_ec
  check "$R: --keygen AES:32" gen_aes
  check "$R: RSA private key is local, always sensitive, never extractable" attrs_rsa
  check "$R: EC private key is local, always sensitive, never extractable" attrs_ec
  check "$R: AES key is local, never extractable" attrs_aes
  check "$R: --read-object pubkey gives openssl the RSA and EC public keys" export_pubkeys
  check "$R: SHA256-RSA-PKCS sign, verify (pkcs11-tool and openssl dgst)" sign_rsa_pkcs
  check "$R: RSA-PKCS-PSS SHA256 sign, verify (pkcs11-tool and openssl)" sign_rsa_pss
  check "$R: ECDSA sign, verify (pkcs11-tool and openssl)" sign_ecdsa
  check "$R: RSA-PKCS-OAEP SHA256: openssl encrypts, token decrypts" oaep
  check "$R: AES-CBC-PAD encrypt, decrypt" aes_cbc_pad
  check "$R: AES-CBC-PAD with a known key agrees with openssl enc" aes_known_key
  check "$R: ECDH1-DERIVE with an openssl peer gives openssl's secret" ecdh
  check "$R: --test reports no errors" self_test
  check "$R: --test-ec reports OK" self_test_ec
  check "$R: --test-fork" self_test_fork
  check "$R: delete the round's objects" cleanup
}

unset OPENHSM_P11_FORCE_HELPER
round in-process a0
OPENHSM_P11_FORCE_HELPER=1
export OPENHSM_P11_FORCE_HELPER
round helper b0
unset OPENHSM_P11_FORCE_HELPER
finish
