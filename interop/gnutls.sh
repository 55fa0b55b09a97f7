#!/bin/sh
# gnutls.sh: GnuTLS's tools (Debian gnutls-bin) use libopenhsm-pkcs11.so
# through --provider and PKCS#11 URLs: p11tool lists the tokens, generates
# an ECDSA P-256 and an RSA-2048 key and lists them after login; certtool
# makes self-signed certificates for them; gnutls-serv serves TLS with the
# keys (PKCS#11 URLs) and gnutls-cli, trusting only the certificate, checks
# the handshake and an echo and an HTTP exchange.
#
# gnutls-serv has no option for its listening address (it binds every
# address), so the suite runs in a network namespace of its own with only
# the loopback interface up: 127.0.0.1 is the only place anything listens.
#
#   interop/gnutls.sh          KEEP=1 keeps the work directory
. "$(dirname "$0")/lib.sh"
need_pkgs gnutls-bin openssl iproute2

if [ -z "${OPENHSM_GNUTLS_NETNS:-}" ]; then
  need_build
  if unshare --net true 2>/dev/null; then
    export OPENHSM_GNUTLS_NETNS=1
    exec unshare --net -- sh -c 'ip link set lo up && exec sh "$0" "$@"' "$0" "$@"
  fi
  OPENHSM_GNUTLS_NETNS=none
  say "no network namespace (unshare --net failed): the gnutls-serv checks cannot run on loopback only and fail"
fi

start_cluster
export GNUTLS_PIN="$P11_PIN"
TOK="pkcs11:token=$P11_TOKEN_LABEL"
EC="$TOK;object=gt-ec"
RSA="$TOK;object=gt-rsa"
D=$WORK/gnutls
mkdir -p "$D"

# Servers this suite started, stopped by PID whatever happens.
SERVERS=$WORK/servers
: >"$SERVERS"
stop_servers() {
  [ -s "${SERVERS:-}" ] || return 0
  while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$SERVERS"
  : >"$SERVERS"
}
trap 'stop_servers; stop_cluster' EXIT INT TERM

p11() { p11tool --provider "$P11_MODULE" "$@"; }

# run OUT CMD...: CMD with its output in $D/OUT, shown when it fails.
run() {
  o=$D/$1
  shift
  "$@" >"$o" 2>&1 || { cat "$o"; return 1; }
}

has() {
  grep -Eq -- "$2" "$1" && return 0
  echo "no line matching /$2/ in $1:"
  cat "$1"
  return 1
}

# --- checks ---
# check runs each in a command substitution, where dash keeps set -e: a
# check is one && chain, or says set +e when it must clean up after a
# failure.

# GnuTLS 3.7 calls C_Initialize with CKF_LIBRARY_CANT_CREATE_OS_THREADS |
# CKF_OS_LOCKING_OK, both through --provider and for modules p11-kit loads
# from its configuration.
list_tokens() {
  run tokens p11 --list-tokens &&
    has "$D/tokens" "Label: $P11_TOKEN_LABEL\$" &&
    has "$D/tokens" "URL: pkcs11:.*token=$P11_TOKEN_LABEL\$"
}

gen_ec() {
  run gen-ec p11 --login --generate-privkey ECDSA --curve secp256r1 --label gt-ec --id 71 \
    --outfile "$D/ec-pub.pem" "$TOK" &&
    openssl pkey -pubin -in "$D/ec-pub.pem" -noout -text >"$D/ec-pub.txt" &&
    has "$D/ec-pub.txt" 'ASN1 OID: prime256v1'
}

gen_rsa() {
  run gen-rsa p11 --login --generate-privkey RSA --bits 2048 --label gt-rsa --id 72 \
    --outfile "$D/rsa-pub.pem" "$TOK" &&
    openssl pkey -pubin -in "$D/rsa-pub.pem" -noout -text >"$D/rsa-pub.txt" &&
    has "$D/rsa-pub.txt" 'Public-Key: \(2048 bit\)'
}

list_all_login() {
  run all p11 --list-all --login "$TOK" &&
    has "$D/all" "URL: pkcs11:.*token=$P11_TOKEN_LABEL;id=%71;object=gt-ec;type=private\$" &&
    has "$D/all" "URL: pkcs11:.*token=$P11_TOKEN_LABEL;id=%71;object=gt-ec;type=public\$" &&
    has "$D/all" "URL: pkcs11:.*token=$P11_TOKEN_LABEL;id=%72;object=gt-rsa;type=private\$" &&
    has "$D/all" 'Type: Private key \(EC/ECDSA-SECP256R1\)' &&
    has "$D/all" 'Type: Private key \(RSA-2048\)'
}

# Without --login no private object shows.
list_all_public() {
  set +e
  p11 --list-all "$TOK" >"$D/all-public" 2>&1 ||
    has "$D/all-public" '^No matching objects found$' || return 1
  ! grep -E 'type=private' "$D/all-public"
}

# p11tool signs with the key and verifies against its own parameters and
# against the public key object in the token.
test_sign() {
  run test-sign-ec p11 --login --test-sign "$EC;type=private" &&
    has "$D/test-sign-ec" 'Verifying against public key in the token\.\.\. ok' &&
    run test-sign-rsa p11 --login --test-sign "$RSA;type=private" &&
    has "$D/test-sign-rsa" 'Verifying against public key in the token\.\.\. ok'
}

# certtool signs a self-signed certificate with the token key; openssl
# checks the signature and that the certificate holds the token's key.
self_signed() { # NAME (ec or rsa) URL
  run cert-$1 certtool --provider "$P11_MODULE" --generate-self-signed \
    --load-privkey "$2;type=private" --load-pubkey "$2;type=public" \
    --template "$D/template" --outfile "$D/$1-cert.pem" &&
    openssl verify -CAfile "$D/$1-cert.pem" "$D/$1-cert.pem" &&
    openssl x509 -in "$D/$1-cert.pem" -noout -pubkey >"$D/$1-cert-pub.pem" &&
    cmp "$D/$1-cert-pub.pem" "$D/$1-pub.pem"
}

# The certificate goes into the token and comes back the same.
cert_in_token() {
  run write-cert p11 --login --write --load-certificate "$D/ec-cert.pem" --label gt-ec --id 71 "$TOK" &&
    run export-cert p11 --login --export "$EC;type=cert" &&
    openssl x509 -in "$D/export-cert" -outform DER -out "$D/ec-cert.back.der" &&
    openssl x509 -in "$D/ec-cert.pem" -outform DER -out "$D/ec-cert.der" &&
    cmp "$D/ec-cert.der" "$D/ec-cert.back.der"
}

# start_server ARGS...: gnutls-serv with the module on a free port (PORT),
# once it listens; SPID is its PID.
start_server() {
  [ "$OPENHSM_GNUTLS_NETNS" = 1 ] || { echo "not in a private network namespace"; return 1; }
  tries=0
  while [ $tries -lt 5 ]; do
    tries=$((tries + 1))
    PORT=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000))
    gnutls-serv --provider "$P11_MODULE" -p "$PORT" "$@" >"$D/serv.out" 2>&1 </dev/null &
    SPID=$!
    echo "$SPID" >>"$SERVERS"
    i=0
    while [ $i -lt 200 ] && kill -0 "$SPID" 2>/dev/null; do
      ss -ltnpH "sport = :$PORT" | grep -q "pid=$SPID," && return 0
      sleep 0.1
      i=$((i + 1))
    done
    stop_server
  done
  echo "gnutls-serv did not start listening:"
  cat "$D/serv.out"
  return 1
}

stop_server() {
  kill "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
  sed -i "/^$SPID\$/d" "$SERVERS"
}

# client OUT INPUT [OPTIONS...]: gnutls-cli to the server, trusting only
# CERT, with INPUT on its standard input.
client() {
  o=$1 in=$2
  shift 2
  printf "$in" | timeout 60 gnutls-cli --x509cafile "$CERT" -p "$PORT" "$@" 127.0.0.1 >"$D/$o" 2>&1
}

handshake_ok() {
  has "$D/$1" 'Status: The certificate is trusted' &&
    has "$D/$1" 'Handshake was completed'
}

echo_ec() {
  set +e
  CERT=$D/ec-cert.pem
  start_server --echo --x509keyfile "$EC;type=private" --x509certfile "$CERT" &&
    client echo.out 'hello through openhsm\n'
  rc=$?
  stop_server
  [ $rc -eq 0 ] || { cat "$D/echo.out" "$D/serv.out" 2>/dev/null; return 1; }
  handshake_ok echo.out &&
    has "$D/echo.out" 'ECDSA-SECP256R1' &&
    has "$D/echo.out" '^hello through openhsm$'
}

# http_rsa OUT [gnutls-cli OPTIONS...]
http_rsa() {
  set +e
  o=$1
  shift
  CERT=$D/rsa-cert.pem
  start_server --http --x509keyfile "$RSA;type=private" --x509certfile "$CERT" &&
    client "$o" 'GET / HTTP/1.0\r\n\r\n' "$@"
  rc=$?
  stop_server
  [ $rc -eq 0 ] || { cat "$D/$o" "$D/serv.out" 2>/dev/null; return 1; }
  handshake_ok "$o" && has "$D/$o" '^HTTP/1\.0 200 OK'
}

http_rsa_tls13() { http_rsa http13.out && has "$D/http13.out" 'TLS1\.3' && has "$D/http13.out" 'RSA-PSS'; }
http_rsa_tls12() {
  http_rsa http12.out --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.2:-SIGN-RSA-PSS-RSAE-SHA256:-SIGN-RSA-PSS-RSAE-SHA384:-SIGN-RSA-PSS-RSAE-SHA512' &&
    has "$D/http12.out" 'TLS1\.2' && has "$D/http12.out" 'RSA-SHA256'
}

# The server's calls go through openhsm-p11-helper: the library logs
# C_Initialize with the helper's pid, not gnutls-serv's.
echo_helper() {
  set +e
  log=$CLUSTER/p11.log
  n=$(wc -l <"$log")
  OPENHSM_P11_FORCE_HELPER=1
  export OPENHSM_P11_FORCE_HELPER
  echo_ec
  rc=$?
  unset OPENHSM_P11_FORCE_HELPER
  [ $rc -eq 0 ] || return 1
  tail -n +$((n + 1)) "$log" >"$D/helper.log"
  if grep -q "msg=C_Initialize pid=$SPID " "$D/helper.log" ||
    ! grep -q 'msg=C_Initialize pid=' "$D/helper.log"; then
    echo "gnutls-serv pid $SPID; library log:"
    cat "$D/helper.log"
    return 1
  fi
}

cleanup() {
  set +e
  for u in "$EC;type=cert" "$EC;type=private" "$EC;type=public" "$RSA;type=private" "$RSA;type=public"; do
    run delete p11 --batch --login --delete "$u" || return 1
  done
  run all-after p11 --list-all --login "$TOK" || grep -q 'No matching objects found' "$D/all-after" || return 1
  ! grep -E 'object=gt-' "$D/all-after"
}

cat >"$D/template" <<'EOF'
cn = "localhost"
organization = "openhsm interop"
serial = 1
expiration_days = 2
dns_name = "localhost"
ip_address = "127.0.0.1"
tls_www_server
signing_key
encryption_key
EOF

check "p11tool --provider --list-tokens shows token $P11_TOKEN_LABEL" list_tokens
check "p11tool --generate-privkey ECDSA --curve secp256r1" gen_ec
check "p11tool --generate-privkey RSA --bits 2048" gen_rsa
check "p11tool --list-all --login (GNUTLS_PIN) lists both keys" list_all_login
check "p11tool --list-all without login shows no private key" list_all_public
check "p11tool --test-sign with both keys" test_sign
check "certtool --generate-self-signed with the EC key (pkcs11 URL)" self_signed ec "$EC"
check "certtool --generate-self-signed with the RSA key (pkcs11 URL)" self_signed rsa "$RSA"
check "p11tool --write/--export the certificate" cert_in_token
check "gnutls-serv --echo with the EC key: TLS 1.3 handshake, echo" echo_ec
check "gnutls-serv --http with the RSA key: TLS 1.3 (RSA-PSS), HTTP 200" http_rsa_tls13
check "gnutls-serv --http with the RSA key: TLS 1.2 (RSA PKCS#1), HTTP 200" http_rsa_tls12
check "gnutls-serv --echo through openhsm-p11-helper" echo_helper
check "p11tool --delete the suite's objects" cleanup
finish
