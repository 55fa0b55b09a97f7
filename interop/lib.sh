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

# start_kms gives a suite the KMS API and the AWS settings to reach it: a
# cluster from start_cluster "$@", whose printed AWS_ENDPOINT_URL_KMS,
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_DEFAULT_REGION
# (the AWS CLI v1 and boto3 read only that one) and AWS_CA_BUNDLE (for
# https) are used as printed. With OPENHSM_KMS_GIVEN=1 it starts nothing and
# uses those variables as the environment has them: internal/kmstest's test
# runs the suites so, against the API served in its own process. Nothing
# of this machine's own AWS set-up (~/.aws, a profile) is read.
start_kms() {
  if [ "${OPENHSM_KMS_GIVEN:-}" = 1 ]; then
    WORK=$(mktemp -d "/tmp/openhsm-$SUITE.XXXXXX")
    trap 'stop_cluster' EXIT INT TERM HUP PIPE
  else
    start_cluster "$@"
  fi
  for v in AWS_ENDPOINT_URL_KMS AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION AWS_DEFAULT_REGION; do
    eval "val=\${$v:-}"
    [ -n "$val" ] || { say "no $v: the cluster printed no KMS settings, or not all of them"; exit 1; }
  done
  case $AWS_ENDPOINT_URL_KMS in
    https://*)
      [ -r "${AWS_CA_BUNDLE:-}" ] || { say "the KMS endpoint is https but AWS_CA_BUNDLE names no readable file"; exit 1; } ;;
  esac
  export AWS_ENDPOINT_URL_KMS AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION AWS_DEFAULT_REGION
  [ -n "${AWS_CA_BUNDLE:-}" ] && export AWS_CA_BUNDLE
  unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL 2>/dev/null || true
  export AWS_CONFIG_FILE="$WORK/no-aws-config" AWS_SHARED_CREDENTIALS_FILE="$WORK/no-aws-credentials"
  say "KMS endpoint $AWS_ENDPOINT_URL_KMS, region $AWS_DEFAULT_REGION"
}

# check_fails NAME EXCEPTION CMD...: a check that CMD fails with the AWS
# exception EXCEPTION, as the AWS CLI ("An error occurred (EXCEPTION) when
# calling ...") and the boto3 suite's helper print it.
check_fails() {
  name=$1 exc=$2
  shift 2
  if out=$("$@" 2>&1); then
    FAIL=$((FAIL + 1))
    say "FAIL $name: succeeded, expected $exc"
    printf '%s\n' "$out" | tail -20 | sed "s/^/    /"
  elif printf '%s\n' "$out" | grep -q "($exc)"; then
    PASS=$((PASS + 1))
    say "ok   $name"
  else
    FAIL=$((FAIL + 1))
    say "FAIL $name: expected $exc"
    printf '%s\n' "$out" | tail -20 | sed "s/^/    /"
  fi
}
