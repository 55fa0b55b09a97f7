#!/bin/sh
# java.sh: Java 17's SunPKCS11 provider over the openhsm PKCS#11 library.
# keytool lists the token and makes RSA and EC key pairs in the HSM (each
# with a self-signed certificate, so they are PrivateKeyEntry); OpenSSL
# checks a CSR keytool signs with the HSM key; then interop/java/P11Check
# (one line per check) signs, decrypts, encrypts and MACs in the HSM and
# checks every result against the JDK's software providers. P11Check runs
# twice: in process, and with OPENHSM_P11_FORCE_HELPER=1 (every call through
# the fork helper).
. "$(dirname "$0")/lib.sh"

need_pkgs openjdk-17-jdk-headless opensc openssl
start_cluster

J=$WORK/java
mkdir -p "$J"
NODELOG=$CLUSTER/node1.log
HELPER_PIDS=""

# Helpers the JVM started are children of the JVM and should exit with it;
# one left over is reported by a check and stopped here, by its PID.
cleanup() {
  trap '' PIPE
  for p in $HELPER_PIDS; do kill "$p" 2>/dev/null || true; done
  stop_cluster >/dev/null 2>&1
}
trap cleanup EXIT
# A closed output pipe (| head) must stop the cluster too.
trap 'cleanup; exit 130' INT TERM HUP PIPE

# The token slot's ID: SunPKCS11 selects a slot by ID, not by token label.
SLOT=$(pkcs11-tool --module "$P11_MODULE" -L 2>/dev/null | awk -v want="$P11_TOKEN_LABEL" '
  /^Slot [0-9]+ \(0x[0-9a-fA-F]+\)/ { s = $3; gsub(/[():]/, "", s) }
  /^ *token label *:/ { l = $0; sub(/^ *token label *: */, "", l); if (l == want && s != "") { print s; exit } }')
[ -n "$SLOT" ] || { say "no slot with token label $P11_TOKEN_LABEL in pkcs11-tool -L"; exit 1; }
SLOT=$((SLOT))
say "token $P11_TOKEN_LABEL is slot $SLOT"

CFG=$J/openhsm-p11.cfg
cat >"$CFG" <<EOF
name = openhsm
library = $P11_MODULE
slot = $SLOT
EOF
PROVIDER=SunPKCS11-openhsm

# kt COMMAND ARGS...: keytool on the token. The PIN comes from the
# environment (-storepass:env), never from the command line.
kt() {
  c=$1
  shift
  timeout 60 keytool "$c" -keystore NONE -storetype PKCS11 \
    -providerClass sun.security.pkcs11.SunPKCS11 -providerArg "$CFG" \
    -storepass:env P11_PIN "$@" </dev/null
}

# The daemon logs each key generation; count them to tell a key generated
# in the HSM from one generated in the JVM and imported.
gens() { grep -c "\"msg\":\"$1\".*\"mechanism\":\"$2\"" "$NODELOG" || true; }

list_has() { # FILE LINE...: keytool -list output holds each line
  f=$1
  shift
  for l in "$@"; do grep -qx -- "$l" "$f" || { cat "$f"; echo "missing: $l"; return 1; }; done
}

t_list_empty() {
  kt -list >"$J/list0.out" 2>&1 || { cat "$J/list0.out"; return 1; }
  list_has "$J/list0.out" "Keystore type: PKCS11" "Keystore provider: $PROVIDER" "Your keystore contains 0 entries"
}

t_genkeypair() { # ALIAS MECHANISM KEYTOOL-ARGS...
  alias=$1 mech=$2
  shift 2
  before=$(gens "generated key pair" "$mech")
  kt -genkeypair -alias "$alias" -dname "CN=$alias" -providerName "$PROVIDER" "$@" >"$J/gen-$alias.out" 2>&1 ||
    { cat "$J/gen-$alias.out"; return 1; }
  after=$(gens "generated key pair" "$mech")
  [ "$after" -eq $((before + 1)) ] || { echo "the daemon logged $((after - before)) $mech key pair generations (want 1): not generated in the HSM"; return 1; }
}

t_list_keys() {
  kt -list >"$J/list1.out" 2>&1 || { cat "$J/list1.out"; return 1; }
  list_has "$J/list1.out" "Your keystore contains 2 entries" "jrsa, PrivateKeyEntry, " "jec, PrivateKeyEntry, "
}

t_list_verbose() { # ALIAS SIGALG KEYDESC
  kt -list -v -alias "$1" >"$J/listv-$1.out" 2>&1 || { cat "$J/listv-$1.out"; return 1; }
  list_has "$J/listv-$1.out" "Alias name: $1" "Entry type: PrivateKeyEntry" "Certificate chain length: 1" \
    "Owner: CN=$1" "Issuer: CN=$1" "Signature algorithm name: $2" "Subject Public Key Algorithm: $3"
}

# keytool -certreq signs a CSR with the HSM key; OpenSSL verifies it, and
# its public key is the certificate's.
t_certreq() { # ALIAS
  kt -certreq -alias "$1" -file "$J/$1.csr" >"$J/csr-$1.out" 2>&1 || { cat "$J/csr-$1.out"; return 1; }
  openssl req -in "$J/$1.csr" -verify -noout || return 1
  kt -exportcert -rfc -alias "$1" -file "$J/$1.crt" >"$J/export-$1.out" 2>&1 || { cat "$J/export-$1.out"; return 1; }
  openssl req -in "$J/$1.csr" -noout -pubkey >"$J/$1.csr.pub" &&
    openssl x509 -in "$J/$1.crt" -noout -pubkey >"$J/$1.crt.pub" &&
    cmp "$J/$1.csr.pub" "$J/$1.crt.pub" || { echo "CSR and certificate public keys differ"; return 1; }
  openssl req -in "$J/$1.csr" -noout -subject | grep -qx "subject=CN = $1" || { echo "CSR subject"; return 1; }
}

t_genseckey() {
  kt -genseckey -alias jkaes -keyalg AES -keysize 256 -providerName "$PROVIDER" >"$J/genseckey.out" 2>&1 ||
    { cat "$J/genseckey.out"; return 1; }
  kt -list >"$J/list2.out" 2>&1 || { cat "$J/list2.out"; return 1; }
  list_has "$J/list2.out" "Your keystore contains 3 entries" "jkaes, SecretKeyEntry, "
}

t_delete() { # ALIAS: keytool -delete removes the entry (key and certificate)
  kt -delete -alias "$1" >"$J/delete-$1.out" 2>&1 || { cat "$J/delete-$1.out"; return 1; }
  kt -list >"$J/list3.out" 2>&1 || { cat "$J/list3.out"; return 1; }
  if grep -q "^$1, " "$J/list3.out"; then cat "$J/list3.out"; echo "$1 is still listed"; return 1; fi
  if kt -list -alias "$1" >/dev/null 2>&1; then echo "keytool -list -alias $1 still finds it"; return 1; fi
}

check "keytool -list: the empty token has 0 entries" t_list_empty
check "keytool -genkeypair RSA 2048 (jrsa) in the HSM" t_genkeypair jrsa CKM_RSA_PKCS_KEY_PAIR_GEN -keyalg RSA -keysize 2048
check "keytool -genkeypair EC secp256r1 (jec) in the HSM" t_genkeypair jec CKM_EC_KEY_PAIR_GEN -keyalg EC -groupname secp256r1
check "keytool -list: jrsa and jec are PrivateKeyEntry" t_list_keys
check "keytool -list -v jrsa: self-signed SHA256withRSA, 2048-bit RSA key" t_list_verbose jrsa SHA256withRSA "2048-bit RSA key"
check "keytool -list -v jec: self-signed SHA256withECDSA, secp256r1 key" t_list_verbose jec SHA256withECDSA "256-bit EC (secp256r1) key"
check "keytool -certreq jrsa: OpenSSL verifies the CSR the HSM signed" t_certreq jrsa
check "keytool -certreq jec: OpenSSL verifies the CSR the HSM signed" t_certreq jec
check "keytool -genseckey AES-256: stored as a SecretKeyEntry" t_genseckey
check "keytool -delete jkaes" t_delete jkaes
check "keytool -genkeypair RSA (jdel)" t_genkeypair jdel CKM_RSA_PKCS_KEY_PAIR_GEN -keyalg RSA -keysize 2048
check "keytool -delete jdel (private key and certificate)" t_delete jdel

# ---- P11Check ---------------------------------------------------------
JFLAGS="--add-modules jdk.crypto.cryptoki --add-exports jdk.crypto.cryptoki/sun.security.pkcs11.wrapper=ALL-UNNAMED"
t_javac() { javac -Xlint:all -Werror $JFLAGS -d "$J/classes" "$ROOT"/interop/java/*.java; }
check "javac P11Check.java P11Wrapper.java" t_javac

# run_p11check MODE [ENV...]: run P11Check, count its checks as this
# suite's, then check that it ran to its end and that its helper (if any)
# exited with the JVM.
run_p11check() {
  mode=$1
  shift
  out=$J/p11check-$mode.out
  rc=0
  env "$@" timeout 120 java -Xmx256m $JFLAGS -cp "$J/classes" P11Check "$CFG" "$SLOT" jrsa jec "$mode" >"$out" 2>&1 || rc=$?
  nfail=0
  while IFS= read -r line; do
    case $line in
      "ok   "*) PASS=$((PASS + 1)); say "ok   [$mode] ${line#ok   }" ;;
      "FAIL "*) FAIL=$((FAIL + 1)); nfail=$((nfail + 1)); say "FAIL [$mode] ${line#FAIL }" ;;
      "note "*) say "     [$mode] ${line#note }" ;;
    esac
  done <"$out"
  helper=$(sed -n 's/^note helper \([0-9][0-9]*\) .*/\1/p' "$out")
  [ -n "$helper" ] && HELPER_PIDS="$HELPER_PIDS $helper"
  check "[$mode] P11Check ran to its end (exit $rc)" t_ran "$out" "$rc" "$nfail"
  if [ "$mode" = helper ]; then
    check "[$mode] the helper ($helper) exited with the JVM" t_helper_gone "$helper"
  fi
}

t_ran() { # OUT RC NFAIL
  last=$(grep '^P11Check: ' "$1" | tail -1)
  [ -n "$last" ] || { tail -20 "$1"; echo "no closing line"; return 1; }
  case $last in
    "P11Check: "*" passed, $3 failed") ;;
    *) echo "closing line '$last' but $3 FAIL lines"; return 1 ;;
  esac
  want=0
  [ "$3" -eq 0 ] || want=1
  [ "$2" -eq "$want" ] || { tail -20 "$1"; echo "exit status $2, want $want"; return 1; }
}

t_helper_gone() { # PID
  [ -n "$1" ] || { echo "P11Check named no helper"; return 1; }
  i=0
  while kill -0 "$1" 2>/dev/null; do
    i=$((i + 1))
    [ $i -le 50 ] || { echo "helper $1 still runs 5 s after the JVM exited"; return 1; }
    sleep 0.1
  done
}

run_p11check inproc
run_p11check helper OPENHSM_P11_FORCE_HELPER=1

t_list_helper() {
  OPENHSM_P11_FORCE_HELPER=1 kt -list >"$J/list4.out" 2>&1 || { cat "$J/list4.out"; return 1; }
  list_has "$J/list4.out" "Your keystore contains 2 entries" "jrsa, PrivateKeyEntry, " "jec, PrivateKeyEntry, "
}
check "[helper] keytool -list: jrsa and jec are PrivateKeyEntry" t_list_helper

finish
