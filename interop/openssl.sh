#!/bin/sh
# openssl.sh: OpenSSL 3 with libp11's engine ("pkcs11") over the openhsm
# PKCS#11 library. Keys are made in the HSM with pkcs11-tool; OpenSSL signs
# a CSR and a self-signed certificate with them, and serves TLS with them
# through s_server, answered by s_client and curl over TLS 1.2 and 1.3, for
# RSA and ECDSA. The PIN reaches the engine through its PIN control, in an
# OpenSSL configuration file private to the suite.
. "$(dirname "$0")/lib.sh"

need_pkgs openssl libengine-pkcs11-openssl opensc curl
start_cluster

ENGINE_SO=$(dpkg -L libengine-pkcs11-openssl | grep '/engines-3/pkcs11\.so$' | head -1)
[ -n "$ENGINE_SO" ] || { say "libp11's pkcs11.so engine not found"; exit 1; }

SRV_PID=""
stop_server() {
  if [ -n "$SRV_PID" ]; then
    kill "$SRV_PID" 2>/dev/null || true
    i=0
    while kill -0 "$SRV_PID" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$SRV_PID" 2>/dev/null || true
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=""
  fi
}
cleanup() { stop_server; stop_cluster; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

T=$WORK/openssl
mkdir -p "$T"

# The engine's configuration, with its PIN control: the file is private to
# the suite (umask 077) and the PIN is never on a command line.
(
  umask 077
  cat >"$T/openssl.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = $P11_MODULE
PIN = $P11_PIN
init = 0
[req]
distinguished_name = req_dn
prompt = no
[req_dn]
CN = localhost
EOF
)

# Only the commands that use the engine see this configuration.
ossl_engine() { OPENSSL_CONF=$T/openssl.cnf openssl "$@" </dev/null; }

p11tool() {
  pkcs11-tool --module "$P11_MODULE" --token-label "$P11_TOKEN_LABEL" --login --pin "$P11_PIN" "$@"
}

uri() { # LABEL
  printf 'pkcs11:token=%s;object=%s;type=private' "$P11_TOKEN_LABEL" "$1"
}

keygen() { # KEYTYPE ID LABEL
  p11tool --keypairgen --key-type "$1" --id "$2" --label "$3" >"$T/keygen-$3.out" 2>&1 ||
    { cat "$T/keygen-$3.out"; return 1; }
  # The public half, as the HSM holds it (DER SubjectPublicKeyInfo).
  p11tool --read-object --type pubkey --id "$2" -o "$T/$3.hsm-pub.der" || return 1
  openssl pkey -pubin -inform DER -in "$T/$3.hsm-pub.der" -noout
}

# in_hsm ID: the private key was made in the HSM and can never leave it
# (CKA_SENSITIVE, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_LOCAL true,
# CKA_EXTRACTABLE false), as pkcs11-tool reads them through the library.
in_hsm() {
  p11tool -O --type privkey >"$T/privkeys.out" 2>&1 || { cat "$T/privkeys.out"; return 1; }
  access=$(awk -v id="$1" '
    /^[A-Za-z].*Object;/ { priv = ($0 ~ /^Private Key Object/); mine = 0 }
    priv && $1 == "ID:" && $2 == id { mine = 1 }
    priv && mine && $1 == "Access:" { sub(/^ *Access: */, ""); print; exit }' "$T/privkeys.out")
  echo "private key $1: Access: $access"
  bad=""
  for want in sensitive "always sensitive" "never extractable" local; do
    echo ", $access," | grep -q ", $want," || bad="$bad, not $want"
  done
  echo ", $access," | grep -q ", extractable," && bad="$bad, extractable"
  [ -z "$bad" ] || { echo "private key $1:${bad#,}"; return 1; }
}

# same_pub LABEL FILE KIND: the public key in the CSR/cert is the HSM's key.
same_pub() { # LABEL FILE KIND
  case $3 in
    req) openssl req -in "$2" -noout -pubkey >"$T/$1.$3.pub.pem" ;;
    x509) openssl x509 -in "$2" -noout -pubkey >"$T/$1.$3.pub.pem" ;;
  esac
  openssl pkey -pubin -in "$T/$1.$3.pub.pem" -outform DER -out "$T/$1.$3.pub.der" &&
    cmp "$T/$1.hsm-pub.der" "$T/$1.$3.pub.der"
}

csr() { # LABEL ALG
  ossl_engine req -new -engine pkcs11 -keyform engine -key "$(uri "$1")" \
    -subj "/CN=localhost/O=openhsm $2 CSR" -out "$T/$1.csr" || return 1
  openssl req -in "$T/$1.csr" -noout -verify 2>&1 | tee "$T/$1.csr.verify"
  grep -q 'verify OK' "$T/$1.csr.verify" || return 1
  same_pub "$1" "$T/$1.csr" req
}

selfsigned() { # LABEL SIGALG-REGEX
  ossl_engine req -new -x509 -days 30 -engine pkcs11 -keyform engine -key "$(uri "$1")" \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -out "$T/$1.pem" || return 1
  openssl x509 -in "$T/$1.pem" -noout -text >"$T/$1.pem.txt" || return 1
  grep -Eq "Signature Algorithm: $2" "$T/$1.pem.txt" || { cat "$T/$1.pem.txt"; return 1; }
  grep -q 'DNS:localhost' "$T/$1.pem.txt" || return 1
  openssl verify -CAfile "$T/$1.pem" "$T/$1.pem" || return 1
  same_pub "$1" "$T/$1.pem" x509
}

# start_server LABEL: s_server with the HSM key on 127.0.0.1, port picked
# by the kernel (read back from s_server's ACCEPT line).
start_server() {
  : >"$T/s_server-$1.log"
  OPENSSL_CONF=$T/openssl.cnf openssl s_server -engine pkcs11 -keyform engine -key "$(uri "$1")" \
    -cert "$T/$1.pem" -accept 127.0.0.1:0 -www </dev/null >"$T/s_server-$1.log" 2>&1 &
  SRV_PID=$!
  PORT=""
  i=0
  while [ -z "$PORT" ] && [ $i -lt 300 ]; do
    kill -0 "$SRV_PID" 2>/dev/null || break
    PORT=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$T/s_server-$1.log")
    [ -n "$PORT" ] || sleep 0.1
    i=$((i + 1))
  done
  [ -n "$PORT" ] || { cat "$T/s_server-$1.log"; return 1; }
  echo "$PORT" >"$T/port"
}

server_up() {
  [ -s "$T/port" ] && kill -0 "$SRV_PID" 2>/dev/null || { cat "$T/start.out"; return 1; }
}

gone() { ! kill -0 "$1" 2>/dev/null; }

sclient() { # LABEL VERSION [extra s_client args]
  sl=$1 v=$2
  shift 2
  printf 'GET / HTTP/1.0\r\n\r\n' |
    timeout 60 openssl s_client -connect "127.0.0.1:$(cat "$T/port")" "-$v" "$@" \
      -CAfile "$T/$sl.pem" -verify_return_error -verify_hostname localhost -ign_eof \
      >"$T/s_client.out" 2>&1 || { tail -20 "$T/s_client.out"; return 1; }
  want=$(echo "$v" | sed 's/tls1_/TLSv1./')
  grep -q "Protocol *: $want\$" "$T/s_client.out" &&
    grep -q 'Verify return code: 0 (ok)' "$T/s_client.out" &&
    grep -q '^HTTP/1.0 200 ok' "$T/s_client.out" &&
    grep -q "New, $want, Cipher is" "$T/s_client.out" ||
    { tail -30 "$T/s_client.out"; return 1; }
}

sclient_pkcs1() { # LABEL: TLS 1.2 with RSA PKCS#1 v1.5 (CKM_RSA_PKCS) signatures
  sclient "$1" tls1_2 -sigalgs RSA+SHA256 || return 1
  grep -q '^Peer signature type: RSA$' "$T/s_client.out" || { grep 'Peer signature' "$T/s_client.out"; return 1; }
}

curl_tls() { # LABEL VERSION
  port=$(cat "$T/port")
  case $2 in
    1.2) vflags="--tlsv1.2 --tls-max 1.2" ;;
    1.3) vflags="--tlsv1.3" ;;
  esac
  # shellcheck disable=SC2086
  code=$(timeout 60 curl -sS -v $vflags --cacert "$T/$1.pem" \
    --resolve "localhost:$port:127.0.0.1" "https://localhost:$port/" \
    -o "$T/curl.body" -w '%{http_code}' 2>"$T/curl.err") || { tail -20 "$T/curl.err"; return 1; }
  [ "$code" = 200 ] || { echo "HTTP $code"; return 1; }
  grep -q "SSL connection using TLSv$2 " "$T/curl.err" || { grep SSL "$T/curl.err"; return 1; }
  # s_server -www reports the session it saw.
  grep -q "New, TLSv$2, Cipher is" "$T/curl.body" || { head -20 "$T/curl.body"; return 1; }
}

for spec in "rsa:2048 10 tls-rsa RSA sha256WithRSAEncryption" \
  "EC:prime256v1 11 tls-ec ECDSA ecdsa-with-SHA256"; do
  set -- $spec
  keytype=$1 id=$2 label=$3 alg=$4 sigalg=$5
  check "$alg: key pair made in the HSM ($keytype)" keygen "$keytype" "$id" "$label"
  check "$alg: private key is sensitive, never extractable, local (pkcs11-tool -O)" in_hsm "$id"
  check "$alg: CSR signed by the HSM key verifies, public key is the HSM's" csr "$label" "$alg"
  check "$alg: self-signed certificate ($sigalg) verifies, public key is the HSM's" selfsigned "$label" "$sigalg"

  # Started here, not under check (a subshell), to keep s_server's PID.
  start_server "$label" >"$T/start.out" 2>&1 || true
  check "$alg: s_server started with the HSM key, listening on 127.0.0.1" server_up
  if [ -s "$T/port" ]; then
    check "$alg: s_client TLS 1.2 handshake, HTTP 200" sclient "$label" tls1_2
    check "$alg: s_client TLS 1.3 handshake, HTTP 200" sclient "$label" tls1_3
    check "$alg: curl TLS 1.2, HTTP 200" curl_tls "$label" 1.2
    check "$alg: curl TLS 1.3, HTTP 200" curl_tls "$label" 1.3
    if [ "$alg" = RSA ]; then
      check "RSA: s_client TLS 1.2 with PKCS#1 v1.5 signatures (RSA+SHA256)" sclient_pkcs1 "$label"
    fi
    check "$alg: s_server still running after the handshakes" kill -0 "$SRV_PID"
  fi
  srv=$SRV_PID
  stop_server
  [ -z "$srv" ] || check "$alg: s_server stopped by its PID" gone "$srv"
  rm -f "$T/port"
done

finish
