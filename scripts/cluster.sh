#!/bin/sh
# cluster.sh runs local HSM clusters on loopback, for tests and for people.
#
#   scripts/cluster.sh up [-n N] DIR   start N daemons with their data under DIR,
#                                      make a crypto officer and a ready crypto
#                                      user, and print eval-able export lines
#   scripts/cluster.sh down DIR        stop the daemons by the PIDs in DIR/node<K>.pid
#   scripts/cluster.sh stop DIR K      stop node K (SIGTERM; -9 for SIGKILL)
#   scripts/cluster.sh start DIR K     start node K again, on its old port
#
# Every daemon listens on 127.0.0.1 on a port chosen at start; its PID is in
# DIR/node<K>.pid and its log in DIR/node<K>.log.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${HSM_BIN:-$ROOT/bin}
CO_USER=admin
CU_USER=cu1

die() { echo "cluster.sh: $*" >&2; exit 1; }

build() {
  if [ ! -x "$BIN/hsmd" ] || [ ! -x "$BIN/hsm" ]; then
    (cd "$ROOT" && go build -o "$BIN/" ./hsmd/cmd/hsmd ./client/cmd/hsm) || die "build failed"
  fi
}

secret() { head -c 18 /dev/urandom | base64 | tr -d '/+=\n'; }

start_node() { # DIR K
  dir=$1 k=$2
  rm -f "$dir/node$k.addr"
  setsid "$BIN/hsmd" serve -config "$dir/node$k.toml" >>"$dir/node$k.out" 2>&1 </dev/null &
  echo $! >"$dir/node$k.pid"
  i=0
  while [ ! -s "$dir/node$k.addr" ]; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 "$(cat "$dir/node$k.pid")" 2>/dev/null; then
      cat "$dir/node$k.out" >&2 || true
      die "node$k did not start"
    fi
    sleep 0.1
  done
  # Keep the port across restarts.
  addr=$(cat "$dir/node$k.addr")
  sed -i "s|^listen = .*|listen = \"$addr\"|" "$dir/node$k.toml"
}

up() {
  n=1
  while [ $# -gt 0 ]; do
    case $1 in
      -n) n=$2; shift 2 ;;
      -*) die "unknown flag $1" ;;
      *) break ;;
    esac
  done
  [ $# -eq 1 ] || die "usage: cluster.sh up [-n N] DIR"
  case $n in ''|*[!0-9]*) die "-n needs a number" ;; esac
  [ "$n" -ge 1 ] || die "-n must be at least 1"
  [ "$n" -eq 1 ] || die "only single-node clusters exist yet (-n 1)"
  dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  for f in "$dir"/node*.pid; do
    [ -e "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && die "$dir already runs a cluster; run 'cluster.sh down $dir' first"
  done
  [ -e "$dir/pki" ] && die "$dir already holds a cluster; use an empty directory"
  build
  umask 077
  secret >"$dir/passphrase"
  secret >"$dir/co.password"
  secret >"$dir/cu.password"
  "$BIN/hsm" cluster init --dir "$dir/pki" --nodes "$n" >/dev/null
  cluster_id="local-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  addrs=""
  k=1
  while [ $k -le "$n" ]; do
    cat >"$dir/node$k.toml" <<EOT
node = "node$k"
listen = "127.0.0.1:0"
addr_file = "node$k.addr"
data_dir = "node$k"
ca = "pki/ca.pem"
cert = "pki/node$k.pem"
key = "pki/node$k-key.pem"
passphrase_file = "passphrase"
log_file = "node$k.log"
EOT
    "$BIN/hsmd" init -config "$dir/node$k.toml" -cluster-id "$cluster_id" >/dev/null
    start_node "$dir" $k
    addrs="$addrs${addrs:+, }\"$(cat "$dir/node$k.addr")\""
    k=$((k + 1))
  done
  cat >"$dir/client.toml" <<EOT
nodes = [$addrs]
ca = "pki/ca.pem"
cert = "pki/client.pem"
key = "pki/client-key.pem"
server_name = "localhost"
log_file = "p11.log"
EOT
  export HSM_CONFIG="$dir/client.toml"
  "$BIN/hsm" cluster activate --user "$CO_USER" --password-file "$dir/co.password" >/dev/null
  HSM_USER=$CO_USER HSM_PASSWORD=$(cat "$dir/co.password") \
    "$BIN/hsm" user create "$CU_USER" --role CU --new-password-file "$dir/cu.password" >/dev/null
  module=""
  for m in "$BIN/libopenhsm-pkcs11.so" "$ROOT/p11module/libopenhsm-pkcs11.so"; do
    [ -e "$m" ] && { module=$m; break; }
  done
  echo "# HSM cluster $cluster_id: $n node(s) in $dir"
  [ -n "$module" ] && echo "export P11_MODULE='$module'"
  echo "export HSM_CONFIG='$dir/client.toml'"
  echo "export P11_TOKEN_LABEL='$CU_USER'"
  echo "export P11_PIN='$(cat "$dir/cu.password")'"
  echo "export P11_SO_PIN='$CO_USER:$(cat "$dir/co.password")'"
  echo "export HSM_USER='$CO_USER'"
  echo "export HSM_PASSWORD='$(cat "$dir/co.password")'"
}

stop_pid() { # PIDFILE SIGNAL
  f=$1 sig=$2
  [ -e "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$sig" "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

down() {
  [ $# -eq 1 ] || die "usage: cluster.sh down DIR"
  dir=$1
  [ -d "$dir" ] || return 0
  for f in "$dir"/node*.pid; do
    stop_pid "$f" TERM
  done
}

stop() {
  sig=TERM
  [ "${1:-}" = "-9" ] && { sig=KILL; shift; }
  [ $# -eq 2 ] || die "usage: cluster.sh stop [-9] DIR K"
  stop_pid "$1/node$2.pid" $sig
}

start() {
  [ $# -eq 2 ] || die "usage: cluster.sh start DIR K"
  dir=$(cd "$1" && pwd)
  [ -e "$dir/node$2.toml" ] || die "no node$2 in $dir"
  if [ -e "$dir/node$2.pid" ] && kill -0 "$(cat "$dir/node$2.pid")" 2>/dev/null; then
    die "node$2 is running"
  fi
  build
  start_node "$dir" "$2"
}

[ $# -ge 1 ] || die "usage: cluster.sh up [-n N] DIR | down DIR | stop [-9] DIR K | start DIR K"
cmd=$1
shift
case $cmd in
  up) up "$@" ;;
  down) down "$@" ;;
  stop) stop "$@" ;;
  start) start "$@" ;;
  *) die "unknown command $cmd" ;;
esac
