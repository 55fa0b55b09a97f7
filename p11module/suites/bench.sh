#!/bin/sh
# bench.sh runs p11bench (p11module/cmd/p11bench) against this library and
# against SoftHSMv2 in one go, and prints the results side by side as one
# Markdown table. It is a benchmark, not a test: `make test` does not run it.
#
#   p11module/suites/bench.sh [-nodes N] [p11bench flags]
#       e.g. -nodes 3 -duration 3s -threads 1,16
#
# openhsm: a fresh N-node cluster (default 1; at most 9) from
# scripts/cluster.sh in a temporary directory, reached through
# libopenhsm-pkcs11.so in process, as the crypto user. Every node's store
# and Raft log fsync as its configuration says: by default on every commit,
# and a write is acknowledged once a majority has it on disk. The library
# spreads calls over the healthy nodes.
# SoftHSMv2 (Debian: softhsm2): a fresh token in a temporary directory, with
# SOFTHSM2_CONF pointing at a temporary configuration (file object store).
# Both run on this machine with the same flags, and -keep-objects: both
# stores are thrown away afterwards, so the find case's objects are not
# destroyed one by one (which takes SoftHSMv2 many minutes for 10,000).
# The keygen cases still destroy their keys. PINs are random, kept in
# the temporary directory and passed through the environment, never printed.
# Everything started is stopped, and the directory removed, on exit.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GO=${GO:-go}

die() { echo "bench.sh: $*" >&2; exit 1; }

# -nodes N is ours; every other argument goes to p11bench, in order.
NODES=1
left=$#
while [ "$left" -gt 0 ]; do
  a=$1; shift; left=$((left - 1))
  case $a in
    -nodes|--nodes)
      [ "$left" -gt 0 ] || die "-nodes needs a number"
      NODES=$1; shift; left=$((left - 1)) ;;
    -nodes=*|--nodes=*) NODES=${a#*=} ;;
    *) set -- "$@" "$a" ;;
  esac
done
case $NODES in ''|*[!0-9]*) die "-nodes needs a number, not '$NODES'" ;; esac
[ "$NODES" -ge 1 ] && [ "$NODES" -le 9 ] || die "-nodes must be 1 to 9"
if [ "$NODES" -eq 1 ]; then NODEWORD="one-node"; else NODEWORD="$NODES-node"; fi
# On several nodes the keys of the sign, verify and encrypt cases are token
# objects: a session object lives only on the node that made it, and the
# library spreads calls over the nodes. Both modules get the same flags.
KEYS=""
if [ "$NODES" -gt 1 ]; then KEYS="-token-keys"; fi

command -v softhsm2-util >/dev/null || die "softhsm2-util not found (Debian: apt-get install softhsm2)"
SOFTHSM_MODULE=${SOFTHSM_MODULE:-}
if [ -z "$SOFTHSM_MODULE" ]; then
  for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
           /usr/local/lib/softhsm/libsofthsm2.so; do
    [ -e "$m" ] && { SOFTHSM_MODULE=$m; break; }
  done
fi
[ -n "$SOFTHSM_MODULE" ] || die "libsofthsm2.so not found; set SOFTHSM_MODULE"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/openhsm-bench.XXXXXX")
CLUSTER=$TMP/cluster
cleanup() {
  if [ -d "$CLUSTER" ]; then
    HSM_BIN=$TMP/bin "$ROOT/scripts/cluster.sh" down "$CLUSTER" >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
umask 077

echo "bench.sh: building" >&2
(cd "$ROOT" &&
  $GO build -o "$TMP/bin/" ./hsmd/cmd/hsmd ./client/cmd/hsm ./p11module/cmd/openhsm-p11-helper ./p11module/cmd/p11bench &&
  $GO build -buildmode=c-shared -o "$TMP/bin/libopenhsm-pkcs11.so" ./p11module) || die "build failed"

# ---- openhsm ----
echo "bench.sh: starting a $NODEWORD cluster" >&2
HSM_BIN=$TMP/bin "$ROOT/scripts/cluster.sh" up -n "$NODES" "$CLUSTER" >"$TMP/cluster.env" || die "cluster.sh up failed"
# The script prints export lines; read the three we need without echoing them.
get() { sed -n "s/^export $1='\\(.*\\)'\$/\\1/p" "$TMP/cluster.env"; }
HSM_CONFIG=$(get HSM_CONFIG)
OPENHSM_LABEL=$(get P11_TOKEN_LABEL)
OPENHSM_PIN=$(get P11_PIN)
[ -n "$HSM_CONFIG" ] && [ -n "$OPENHSM_LABEL" ] && [ -n "$OPENHSM_PIN" ] || die "cluster.sh printed no credentials"
# The nodes' sync settings (cluster.sh writes the same for every node).
SYNC=$(cat "$CLUSTER"/node*.toml | sed -n 's/^sync *= *\(.*\)$/\1/p' | sort -u | tr '\n' ' ' | sed 's/ $//')
SYNC=${SYNC:-"not set: fsync every commit (default)"}

echo "bench.sh: p11bench on openhsm" >&2
HSM_CONFIG=$HSM_CONFIG P11BENCH_PIN=$OPENHSM_PIN \
  "$TMP/bin/p11bench" -module "$TMP/bin/libopenhsm-pkcs11.so" -token-label "$OPENHSM_LABEL" \
  -format tsv -keep-objects $KEYS "$@" >"$TMP/openhsm.tsv" || echo "bench.sh: p11bench on openhsm reported errors" >&2
HSM_BIN=$TMP/bin "$ROOT/scripts/cluster.sh" down "$CLUSTER" >/dev/null

# ---- SoftHSMv2 ----
mkdir -p "$TMP/softhsm-tokens"
cat >"$TMP/softhsm2.conf" <<EOF
directories.tokendir = $TMP/softhsm-tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
SOFTHSM_PIN=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
SOFTHSM_SO_PIN=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
export SOFTHSM2_CONF="$TMP/softhsm2.conf"
softhsm2-util --init-token --free --label bench --pin "$SOFTHSM_PIN" --so-pin "$SOFTHSM_SO_PIN" >/dev/null ||
  die "softhsm2-util --init-token failed"
SOFTHSM_VERSION=$(softhsm2-util --version 2>/dev/null || echo "?")

echo "bench.sh: p11bench on SoftHSMv2" >&2
P11BENCH_PIN=$SOFTHSM_PIN \
  "$TMP/bin/p11bench" -module "$SOFTHSM_MODULE" -token-label bench \
  -format tsv -keep-objects $KEYS "$@" >"$TMP/softhsm.tsv" || echo "bench.sh: p11bench on SoftHSMv2 reported errors" >&2

# ---- the table ----
echo
echo "p11bench -keep-objects${KEYS:+ $KEYS} $*"
echo "machine: $(uname -srm), $(getconf _NPROCESSORS_ONLN) CPUs"
echo "openhsm: libopenhsm-pkcs11.so in process, $NODEWORD cluster on loopback (all nodes on this machine), store sync: $SYNC"
echo "SoftHSMv2: $SOFTHSM_VERSION, $SOFTHSM_MODULE, file object store"
echo
echo "| operation | threads | openhsm ops/s | SoftHSMv2 ops/s | openhsm ms/op | SoftHSMv2 ms/op |"
echo "|---|---:|---:|---:|---:|---:|"
# Rows: op, name, threads, ops/s, ms/op. Join on op and threads, in
# openhsm's order, then any row only SoftHSMv2 has.
awk -F '\t' '
  FILENAME == ARGV[1] { key = $1 SUBSEP $3; name[key] = $2; o[key] = $4; om[key] = $5; order[++n] = key; next }
  {
    key = $1 SUBSEP $3
    if (!(key in name)) { name[key] = $2; order[++n] = key; o[key] = "-"; om[key] = "-" }
    s[key] = $4; sm[key] = $5
  }
  END {
    for (i = 1; i <= n; i++) {
      k = order[i]; split(k, p, SUBSEP)
      printf "| %s | %s | %s | %s | %s | %s |\n", name[k], p[2], o[k], (k in s) ? s[k] : "-", om[k], (k in sm) ? sm[k] : "-"
    }
  }' "$TMP/openhsm.tsv" "$TMP/softhsm.tsv"
echo
echo "ms/op: mean time per operation in one thread (for find: per lookup)."
