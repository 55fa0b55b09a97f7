#!/bin/sh
# test.sh runs every test: vet, the unit and integration tests with the race
# detector, then each fuzz target for a short while.
set -eu
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-10s}

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 30m ./...

echo "== fuzz ($FUZZTIME each)"
# package:target pairs; every decoder that sees outside bytes has one.
for pt in \
  ./tokens:FuzzBuildAttrs \
  ./tokens:FuzzUnmarshalAttrs \
  ./tokens:FuzzDecodeCommand \
  ./tokens:FuzzKeyUnwrap \
  ./hsmd:FuzzDecodeRequest \
  ./hsmd:FuzzParseToken
do
  pkg=${pt%%:*} target=${pt#*:}
  go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
done
echo "== all tests passed"
