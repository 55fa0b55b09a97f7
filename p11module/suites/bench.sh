#!/bin/sh
# bench.sh runs p11bench (p11module/cmd/p11bench) against this library and
# against SoftHSMv2 in one go, and the KMS API's Encrypt through SigV4
# (internal/kmsbench) against one node, and prints one Markdown table per
# cluster size: each row's rate on both, their ratio, issue 12's goal for
# the row and whether it is met. It is a benchmark, not a test: `make test`
# does not run it. docs/performance.md, "Running the benchmark", explains
# the table.
#
#   p11module/suites/bench.sh [-nodes N|1,3] [-profile DIR] [-no-kms] [-moto]
#                             [p11bench flags]
#       e.g. -nodes 1,3 -duration 3s -threads 1,16
#
# -nodes 1,3 runs the whole benchmark once per size, one after the other,
# and prints a table for each. -profile DIR also runs the ECDSA P-256 sign
# case at 16 threads once more on openhsm while it records CPU profiles of
# every hsmd node (net/http/pprof on the node's loopback metrics port,
# [metrics] pprof = true) and of p11bench, writes them to DIR and prints
# each one's top 15 functions. -no-kms leaves the KMS row out; -moto
# measures moto's server (python3 -m moto.server) too, for reference.
# Without -ops, the operations are those issue 12 sets goals for.
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

# -nodes, -profile, -no-kms and -moto are ours; every other argument goes
# to p11bench, in order. -duration is also the KMS row's.
NODES=1
PROFILE=""
NOKMS=""
MOTO=""
OPS_GIVEN=""
DURATION=5s
left=$#
while [ "$left" -gt 0 ]; do
  a=$1; shift; left=$((left - 1))
  case $a in
    -nodes|--nodes)
      [ "$left" -gt 0 ] || die "-nodes needs a number"
      NODES=$1; shift; left=$((left - 1)) ;;
    -nodes=*|--nodes=*) NODES=${a#*=} ;;
    -profile|--profile)
      [ "$left" -gt 0 ] || die "-profile needs a directory"
      PROFILE=$1; shift; left=$((left - 1)) ;;
    -profile=*|--profile=*) PROFILE=${a#*=} ;;
    -no-kms|--no-kms) NOKMS=-no-kms ;;
    -moto|--moto) MOTO=-moto ;;
    -duration|--duration)
      [ "$left" -gt 0 ] || die "-duration needs a value"
      DURATION=$1; set -- "$@" "$a" "$1"; shift; left=$((left - 1)) ;;
    -duration=*|--duration=*) DURATION=${a#*=}; set -- "$@" "$a" ;;
    -ops|--ops|-ops=*|--ops=*) OPS_GIVEN=1; set -- "$@" "$a" ;;
    *) set -- "$@" "$a" ;;
  esac
done

# Several sizes: this script once per size, one after the other (each
# size's profiles in a directory of its own).
case $NODES in
  *,*)
    for n in $(echo "$NODES" | tr ',' ' '); do
      "$0" -nodes "$n" ${PROFILE:+-profile "$PROFILE/nodes$n"} $NOKMS $MOTO "$@" || exit $?
    done
    exit 0 ;;
esac
case $NODES in ''|*[!0-9]*) die "-nodes needs a number or a list such as 1,3, not '$NODES'" ;; esac
[ "$NODES" -ge 1 ] && [ "$NODES" -le 9 ] || die "-nodes must be 1 to 9"
if [ "$NODES" -eq 1 ]; then NODEWORD="one-node"; else NODEWORD="$NODES-node"; fi
# The operations issue 12 sets goals for, unless -ops says otherwise.
if [ -z "$OPS_GIVEN" ]; then
  set -- -ops ecdsa-sign,rsa-sign,rsa-verify,ecdsa-verify,aes-gcm,aes-gcm-1m,keygen "$@"
fi
if [ -n "$PROFILE" ]; then
  mkdir -p "$PROFILE" || die "cannot make $PROFILE"
  PROFILE=$(cd "$PROFILE" && pwd)
fi
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
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?"; }
LOAD_BEFORE=$(loadavg)

echo "bench.sh: building" >&2
(cd "$ROOT" &&
  $GO build -o "$TMP/bin/" ./hsmd/cmd/hsmd ./client/cmd/hsm ./p11module/cmd/openhsm-p11-helper ./p11module/cmd/p11bench &&
  $GO build -buildmode=c-shared -o "$TMP/bin/libopenhsm-pkcs11.so" ./p11module &&
  { [ -n "$NOKMS" ] || $GO test -c -tags bench -o "$TMP/bin/kmsbench.test" ./internal/kmsbench; }) || die "build failed"

# ---- openhsm ----
echo "bench.sh: starting a $NODEWORD cluster" >&2
# -profile: every node serves net/http/pprof on its loopback metrics port.
HSM_METRICS_CONFIG=${PROFILE:+"pprof = true"} HSM_BIN=$TMP/bin \
  "$ROOT/scripts/cluster.sh" up -n "$NODES" "$CLUSTER" >"$TMP/cluster.env" || die "cluster.sh up failed"
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

# KMS Encrypt through SigV4 at 16 client goroutines against node 1's KMS
# port (not the load balancer of a larger cluster); moto's too with -moto.
: >"$TMP/kms.tsv"
if [ -z "$NOKMS" ]; then
  echo "bench.sh: KMS Encrypt on node 1" >&2
  (
    . "$CLUSTER/kms.env"
    AWS_ENDPOINT_URL_KMS="${AWS_ENDPOINT_URL_KMS%%://*}://$(cat "$CLUSTER/node1.kms.addr")"
    export AWS_ENDPOINT_URL_KMS
    cd "$ROOT/internal/kmsbench" &&
      "$TMP/bin/kmsbench.test" -test.run '^TestKMSBench$' -test.timeout 30m -test.v \
        -kmsbench.targets "env${MOTO:+,moto}" -kmsbench.ops Encrypt -kmsbench.goroutines 16 \
        -kmsbench.duration "$DURATION" -kmsbench.tsv "$TMP/kms.tsv"
  ) >"$TMP/kms.out" 2>&1 || { tail -20 "$TMP/kms.out" >&2; echo "bench.sh: the KMS benchmark reported errors" >&2; }
fi

# -profile: ECDSA P-256 sign at 16 threads once more, with CPU profiles of
# the library (its own Go runtime: [pkcs11] cpu_profile, written at
# C_Finalize) and of every node over the same seconds.
if [ -n "$PROFILE" ]; then
  echo "bench.sh: profiling ECDSA P-256 sign at 16 threads" >&2
  PROFILE_CONFIG=$(dirname "$HSM_CONFIG")/bench-profile.toml
  if grep -q '^\[pkcs11\]' "$HSM_CONFIG"; then
    sed "/^\[pkcs11\]/a cpu_profile = \"$PROFILE/library.pprof\"" "$HSM_CONFIG" >"$PROFILE_CONFIG"
  else
    { cat "$HSM_CONFIG"; printf '\n[pkcs11]\ncpu_profile = "%s"\n' "$PROFILE/library.pprof"; } >"$PROFILE_CONFIG"
  fi
  (
    set --
    for f in "$CLUSTER"/node*.metrics.addr; do
      k=${f##*/node}; k=${k%.metrics.addr}
      set -- "$@" -fetch-profile "$PROFILE/hsmd-node$k.pprof=http://$(cat "$f")/debug/pprof/profile"
    done
    HSM_CONFIG=$PROFILE_CONFIG P11BENCH_PIN=$OPENHSM_PIN \
      "$TMP/bin/p11bench" -module "$TMP/bin/libopenhsm-pkcs11.so" -token-label "$OPENHSM_LABEL" \
      -format tsv $KEYS -ops ecdsa-sign -threads 16 -duration "$DURATION" "$@" >"$TMP/profile.tsv"
  ) || echo "bench.sh: the profile run reported errors" >&2
  # The binaries, for go tool pprof -list or -disasm later.
  cp "$TMP/bin/hsmd" "$TMP/bin/p11bench" "$TMP/bin/libopenhsm-pkcs11.so" "$PROFILE/"
fi
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
echo "### bench.sh: $NODEWORD cluster"
echo
echo "p11bench -keep-objects${KEYS:+ $KEYS} $*"
echo "machine: $(uname -srm), $(getconf _NPROCESSORS_ONLN) CPUs; load average (1, 5, 15 min) before: $LOAD_BEFORE, after: $(loadavg)"
echo "openhsm: libopenhsm-pkcs11.so in process, $NODEWORD cluster on loopback (all nodes on this machine), store sync: $SYNC"
echo "SoftHSMv2: $SOFTHSM_VERSION, $SOFTHSM_MODULE, file object store"
[ -n "$NOKMS" ] || echo "KMS: the aws-sdk-go-v2 KMS client (internal/kmsbench), HTTPS to node 1's KMS port, 32-byte plaintexts"
echo
echo "| operation | threads | openhsm | SoftHSMv2 | ratio (openhsm/SoftHSMv2) | goal | met |"
echo "|---|---:|---:|---:|---:|---|---|"
# p11bench's rows: op, name, threads, ops/s, ms/op, bytes per op. Joined on
# op and threads, in openhsm's order, then any row only SoftHSMv2 has; then
# the time per call; then the KMS row (kmsbench's: op, goroutines, target,
# req/s, requests, failed). Goals are issue 12's, at 16 threads.
awk -F '\t' -v nodes="$NODES" -v goalthreads=16 -v kmsfile="$TMP/kms.tsv" '
  function commas(x,   s) {
    s = sprintf("%.0f", x)
    while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
    return s
  }
  function num(v) { return v != "" && v != "-" && v != "error" && v + 0 > 0 }
  # show: ops/s, or MB/s for rows of 1 MiB or more.
  function show(v, bytes) {
    if (!num(v)) return (v == "" ? "-" : v)
    if (bytes >= 1048576) return sprintf("%.1f MB/s", v * bytes / 1e6)
    return commas(v) "/s"
  }
  function row(name, t, o, s, ratio, goal, met) {
    printf "| %s | %s | %s | %s | %s | %s | %s |\n", name, t, o, s, ratio, goal, met
  }
  FILENAME == ARGV[1] { key = $1 SUBSEP $3; name[key] = $2; o[key] = $4; om[key] = $5; by[key] = $6; order[++n] = key; next }
  {
    key = $1 SUBSEP $3
    if (!(key in name)) { name[key] = $2; by[key] = $6; order[++n] = key; o[key] = "-"; om[key] = "-" }
    s[key] = $4; sm[key] = $5
  }
  END {
    for (i = 1; i <= n; i++) {
      k = order[i]; split(k, p, SUBSEP); op = p[1]; t = p[2]
      sv = (k in s) ? s[k] : "-"
      ratio = "-"; r = 0
      if (num(o[k]) && num(sv)) { r = o[k] / sv; ratio = sprintf("%.2f", r) }
      goal = "-"; want = 0
      if (t == goalthreads) {
        if (op == "ecdsa-sign" || op == "rsa-verify" || op == "ecdsa-verify" || op == "aes-gcm") want = 1.0
        else if (op == "rsa-sign") want = 1.5
        else if (op == "aes-gcm-1m") want = 5.0
        else if (op == "keygen") want = 2.0
        if (want > 0) goal = sprintf("≥ %.1f×", want)
        if (op == "keygen" && nodes != 3) { goal = goal " on 3 nodes"; want = 0 }
      }
      met = "-"
      if (want > 0) met = (ratio != "-" && r >= want) ? "yes" : "no"
      row(name[k], t, show(o[k], by[k]), show(sv, by[k]), ratio, goal, met)
    }
    # The time of one ECDSA sign at 1 thread, through the library.
    k = "ecdsa-sign" SUBSEP "1"
    if (k in name) {
      ol = om[k]; sl = (k in sm) ? sm[k] : "-"
      ov = num(ol) ? sprintf("%.0f µs", ol * 1000) : "-"
      sv = num(sl) ? sprintf("%.0f µs", sl * 1000) : "-"
      ratio = (num(ol) && num(sl)) ? sprintf("%.2f", ol / sl) : "-"
      row("ECDSA P-256 sign, time per call", 1, ov, sv, ratio, "≤ 100 µs", (num(ol) && ol * 1000 <= 100) ? "yes" : "no")
    }
    # KMS Encrypt: no peer.
    moto = ""
    while ((getline line < kmsfile) > 0) {
      split(line, f, "\t")
      if (f[1] != "Encrypt") continue
      if (f[3] == "env") {
        v = (f[6] + 0 == 0) ? f[4] : "error"
        row("KMS Encrypt (SigV4, node 1)", f[2], show(v, 0), "n/a", "n/a", "≥ 5,000/s", (num(v) && v >= 5000) ? "yes" : "no")
      } else if (f[3] == "moto") moto = show(f[4], 0) " at " f[2] " goroutines"
    }
    if (moto != "") printf "\nFor reference, moto (python3 -m moto.server, plain HTTP, no HSM behind it): KMS Encrypt %s.\n", moto
  }' "$TMP/openhsm.tsv" "$TMP/softhsm.tsv"
echo
echo "Rates are operations a second, or MB/s (10^6 bytes of plaintext a second) for 1 MiB; the time per call is the mean time one thread spends on one operation. Goals apply at 16 threads."

# ---- the profiles ----
if [ -n "$PROFILE" ]; then
  for f in "$PROFILE"/hsmd-node*.pprof "$PROFILE/library.pprof"; do
    [ -s "$f" ] || continue
    echo
    echo "CPU profile ${f##*/}: ECDSA P-256 sign, 16 threads, $DURATION; top 15 by flat time"
    echo
    echo '```'
    $GO tool pprof -top -nodecount 15 "$f" 2>&1 | sed '/^File: /d; /^Build ID: /d'
    echo '```'
  done
  echo
  echo "Profiles and binaries: $PROFILE (go tool pprof -top, -list FUNC, -http :0 FILE)."
fi
