#!/bin/sh
# readme.sh: every ```sh block of README.md runs as written, in order, with
# `sh -e`, against a fresh cluster, from a directory laid out as the
# repository is after `make run`: run.env (what cluster.sh printed) and
# bin/. The first block, the two commands themselves (make run, make test),
# is not run here: `make test` is the run this suite is part of, and
# `make run` is cluster.sh up, which start_cluster runs.
#
#   interop/readme.sh          KEEP=1 keeps the work directory
. "$(dirname "$0")/lib.sh"
need_pkgs opensc openssl libengine-pkcs11-openssl
# The KMS example runs the AWS CLI: the preinstalled one, or Debian's.
command -v aws >/dev/null || need_pkgs awscli
start_cluster

D=$WORK/repo
mkdir -p "$D"
ln -s "$BIN" "$D/bin"
cp "$WORK/env" "$D/run.env"

# Each block into its own file, its list indentation taken off.
awk -v dir="$WORK" '
  /^ *```sh$/ { n++; indent = index($0, "`") - 1; file = sprintf("%s/block%02d.sh", dir, n); inblock = 1; next }
  inblock && /^ *```$/ { inblock = 0; close(file); next }
  inblock { print substr($0, indent + 1) > file }
' "$ROOT/README.md"

n=0
for f in "$WORK"/block*.sh; do
  [ -e "$f" ] || { say "README.md has no sh block"; exit 1; }
  n=$((n + 1))
  name=$(basename "$f" .sh)
  if [ "$n" -eq 1 ]; then
    grep -q '^make run' "$f" && grep -q '^make test' "$f" || { say "the first block is not the two commands"; exit 1; }
    continue
  fi
  check "README $name: $(grep -v '^eval' "$f" | head -1 | cut -c1-60)" sh -c "cd '$D' && sh -e '$f'"
done
[ "$n" -ge 3 ] || { say "expected the two commands and at least two examples, found $n blocks"; exit 1; }
finish
