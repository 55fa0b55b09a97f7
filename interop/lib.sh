# lib.sh: shared helpers for the interoperability suites. Source it:
#   . "$(dirname "$0")/lib.sh"
# Every suite starts its own cluster through scripts/cluster.sh in a fresh
# temporary directory, and stops it (by PID) when the suite exits.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${HSM_BIN:-$ROOT/bin}
export HSM_BIN=$BIN
SUITE=$(basename "$0" .sh)
PASS=0
FAIL=0

say() { printf '%s: %s\n' "$SUITE" "$*"; }

# need_pkgs installs the Debian packages a suite uses, if missing.
need_pkgs() {
  missing=""
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    say "installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    # apt's lock is shared: wait for a suite running beside this one.
    for i in $(seq 1 60); do
      if apt-get install -y -qq $missing >/dev/null 2>&1; then return 0; fi
      apt-get update -qq >/dev/null 2>&1 || true
      sleep 2
    done
    say "could not install$missing"
    exit 1
  fi
}

# need_build makes sure the daemon, CLI, library and helper are built.
need_build() {
  for f in hsmd hsm libopenhsm-pkcs11.so openhsm-p11-helper; do
    [ -e "$BIN/$f" ] || { (cd "$ROOT" && make -s build >/dev/null) || exit 1; break; }
  done
}

# start_cluster starts a one-node cluster (or -n N) and exports what it
# printed (P11_MODULE, HSM_CONFIG, P11_TOKEN_LABEL, P11_PIN, ...).
start_cluster() {
  need_build
  WORK=$(mktemp -d "/tmp/openhsm-$SUITE.XXXXXX")
  CLUSTER=$WORK/cluster
  trap 'stop_cluster' EXIT INT TERM HUP PIPE
  "$ROOT/scripts/cluster.sh" up "$@" "$CLUSTER" >"$WORK/env" || { say "cluster did not start"; exit 1; }
  . "$WORK/env"
  export P11_MODULE HSM_CONFIG P11_TOKEN_LABEL P11_PIN P11_SO_PIN HSM_USER HSM_PASSWORD
}

stop_cluster() {
  [ -n "${CLUSTER:-}" ] && "$ROOT/scripts/cluster.sh" down "$CLUSTER" || true
  [ -n "${WORK:-}" ] && [ -z "${KEEP:-}" ] && rm -rf "$WORK"
  return 0
}

# check NAME CMD...: run a check, count it, and show its output on failure.
check() {
  name=$1
  shift
  if out=$("$@" 2>&1); then
    PASS=$((PASS + 1))
    say "ok   $name"
  else
    FAIL=$((FAIL + 1))
    say "FAIL $name"
    printf '%s\n' "$out" | tail -20 | sed "s/^/    /"
  fi
}

# finish prints the closing count and fails the suite if any check failed.
finish() {
  echo "$SUITE: $PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]
}
