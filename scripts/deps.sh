#!/bin/sh
# deps.sh installs the Debian packages and Go modules the build and the tests
# need, and nothing when they are already there.
set -eu
PKGS="ca-certificates openssl libssl-dev gcc libc6-dev libp11-kit-dev sqlite3 procps haproxy curl"
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq $missing >/dev/null
fi
command -v go >/dev/null || { echo "deps: Go is not installed (need Go 1.26)"; exit 1; }
go mod download
