#!/bin/sh
# cluster.sh runs local HSM clusters on loopback, for tests and for people.
#
#   scripts/cluster.sh up [-n N] [--xks] DIR
#                                      start an N-node cluster (default 1) with its
#                                      data under DIR, make two crypto officers
#                                      (admin, admin2: one locked out is not the end)
#                                      and a ready crypto user, and print eval-able
#                                      export lines
#   scripts/cluster.sh up -n N -r BACKUP -p PASSPHRASE_FILE DIR
#                                      the same, but restore BACKUP (taken by a
#                                      cluster sealed with that passphrase) instead
#                                      of making users
#   scripts/cluster.sh down DIR        stop the daemons by the PIDs in DIR/node<K>.pid
#   scripts/cluster.sh stop [-9] DIR K stop node K (SIGTERM; -9 for SIGKILL)
#   scripts/cluster.sh start DIR K     start node K again, on its old port
#   scripts/cluster.sh add DIR         start one more node and add it to the cluster
#                                      (as the crypto officer in DIR/co.password)
#
# Every daemon listens on 127.0.0.1 on ports picked at random at its first
# start, below the kernel's ephemeral range (pick_ports), and kept
# afterwards; its PID is in DIR/node<K>.pid and its log in DIR/node<K>.log.
# Each also serves the KMS API (HTTPS with its node certificate) on a second
# port, in DIR/node<K>.kms.addr. With more than one node, 'up' starts haproxy
# in front of those ports (DIR/haproxy.cfg, PID in DIR/haproxy.pid, stopped
# by 'down'), makes a KMS principal, and prints AWS_ENDPOINT_URL_KMS,
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_CA_BUNDLE
# (also in DIR/kms.env).
# HSM_NODE_CONFIG, if set, is appended to every node's configuration file
# (with a [kms] section of its own, it replaces the one written here);
# HSM_KMS_CONFIG, if set, is appended to the [kms] section (say,
# 'clock_file = "/tmp/clock"' or 'tls = false'); HSM_NO_KMS=1 leaves the
# KMS API out.
# Every node also serves its Prometheus metrics, /healthz and /readyz over
# plain HTTP on loopback (a [metrics] section), on a port in
# DIR/node<K>.metrics.addr; 'up' prints where. HSM_NO_METRICS=1 leaves them out;
# HSM_METRICS_CONFIG, if set, is appended to the [metrics] section (say,
# 'pprof = true', as bench.sh -profile does).
# --xks (or HSM_XKS=1) also serves the XKS proxy on every node (an [xks]
# section, its port in DIR/node<K>.xks.addr, behind haproxy too with more than
# one node), makes its crypto user (xks) and an AES-256 key, writes the
# credentials file DIR/xks-credentials.toml, and prints XKS_PROXY_HOST,
# XKS_URI_PREFIX, XKS_URI_PATH, XKS_ACCESS_KEY_ID, XKS_SECRET_ACCESS_KEY,
# XKS_KEY_ID and XKS_CA_CERT (also in DIR/xks.env); HSM_XKS_CONFIG, if set, is
# appended to the [xks] section (say, 'client_ca = "/path/ca.pem"').
# HSM_NO_USERS=1 makes 'up' start one node and stop before making any user: a
# cluster waiting for 'hsm cluster activate' (tests of bootstrap use it).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${HSM_BIN:-$ROOT/bin}
CO_USER=admin
CO2_USER=admin2
CU_USER=cu1
KMS_PRINCIPAL=app
XKS_USER=xks
XKS_PREFIX=/keystores/openhsm
XKS_KEY=openhsm-xks-key-1

die() { echo "cluster.sh: $*" >&2; exit 1; }

build() {
  if [ ! -x "$BIN/hsmd" ] || [ ! -x "$BIN/hsm" ]; then
    (cd "$ROOT" && go build -o "$BIN/" ./hsmd/cmd/hsmd ./client/cmd/hsm) || die "build failed"
  fi
}

secret() { head -c 18 /dev/urandom | base64 | tr -d '/+=\n'; }

# pick_ports FILE: give each 'listen = "127.0.0.1:0"' line of FILE a port
# of its own, at random in 10000-31999: below the kernel's ephemeral range
# (32768 up), so that no outgoing connection of any process can be holding
# it when the node starts again on it after a kill. (A port the kernel
# chose, as with port 0, came from that range, and once a restart found it
# taken.) A port another listener took meanwhile fails the start, which
# start_node then tries again with new ones.
pick_ports() {
  while grep -q '^listen = "127.0.0.1:0"$' "$1"; do
    p=$((10000 + $(od -An -N2 -tu2 /dev/urandom) % 22000))
    grep -q "127.0.0.1:$p\"" "$1" && continue # one port per listener
    awk -v p="$p" '!done && $0 == "listen = \"127.0.0.1:0\"" { print "listen = \"127.0.0.1:" p "\""; done = 1; next } { print }' \
      "$1" >"$1.tmp" && mv "$1.tmp" "$1"
  done
}

start_node() { # DIR K
  dir=$1 k=$2
  # A first start: its ports are picked here and kept in the configuration
  # (below); if one is taken, it starts again on new ones, from the
  # configuration as written.
  fresh=
  if grep -q '^listen = "127.0.0.1:0"$' "$dir/node$k.toml"; then
    fresh=1
    cp "$dir/node$k.toml" "$dir/node$k.toml.fresh"
  fi
  tries=0
  while :; do
    tries=$((tries + 1))
    [ -n "$fresh" ] && { cp "$dir/node$k.toml.fresh" "$dir/node$k.toml"; pick_ports "$dir/node$k.toml"; }
    rm -f "$dir/node$k.addr" "$dir/node$k.kms.addr" "$dir/node$k.xks.addr" "$dir/node$k.metrics.addr"
    out_before=$(stat -c %s "$dir/node$k.out" 2>/dev/null || echo 0)
    setsid "$BIN/hsmd" serve -config "$dir/node$k.toml" >>"$dir/node$k.out" 2>&1 </dev/null &
    echo $! >"$dir/node$k.pid"
    i=0
    started=1
    while [ ! -s "$dir/node$k.addr" ]; do
      i=$((i + 1))
      if [ $i -gt 300 ] || ! kill -0 "$(cat "$dir/node$k.pid")" 2>/dev/null; then
        started=
        break
      fi
      sleep 0.1
    done
    if [ -n "$started" ]; then
      rm -f "$dir/node$k.toml.fresh"
      break
    fi
    if [ -n "$fresh" ] && [ $tries -lt 10 ] &&
      tail -c +$((out_before + 1)) "$dir/node$k.out" | grep -q "address already in use"; then
      continue
    fi
    cat "$dir/node$k.out" >&2 || true
    die "node$k did not start"
  done
  # Keep the ports across restarts: the node's own (the first listen, before
  # any table) and the KMS API's (the listen of the [kms] table), which the
  # load balancer names.
  addr=$(cat "$dir/node$k.addr")
  sed -i "0,/^listen = /s|^listen = .*|listen = \"$addr\"|" "$dir/node$k.toml"
  if [ -s "$dir/node$k.kms.addr" ]; then
    kaddr=$(cat "$dir/node$k.kms.addr")
    sed -i "/^\[kms\]/,/^\[/s|^listen = .*|listen = \"$kaddr\"|" "$dir/node$k.toml"
  fi
  if [ -s "$dir/node$k.xks.addr" ]; then
    xaddr=$(cat "$dir/node$k.xks.addr")
    sed -i "/^\[xks\]/,/^\[/s|^listen = .*|listen = \"$xaddr\"|" "$dir/node$k.toml"
  fi
  if [ -s "$dir/node$k.metrics.addr" ]; then
    maddr=$(cat "$dir/node$k.metrics.addr")
    sed -i "/^\[metrics\]/,/^\[/s|^listen = .*|listen = \"$maddr\"|" "$dir/node$k.toml"
  fi
}

write_node_config() { # DIR K
  cat >"$1/node$2.toml" <<EOT
node = "node$2"
listen = "127.0.0.1:0"
addr_file = "node$2.addr"
data_dir = "node$2"
ca = "pki/ca.pem"
cert = "pki/node$2.pem"
key = "pki/node$2-key.pem"
passphrase_file = "passphrase"
log_file = "node$2.log"
EOT
  if [ -n "${HSM_NODE_CONFIG:-}" ]; then
    printf '%s\n' "$HSM_NODE_CONFIG" >>"$1/node$2.toml"
  fi
  # The metrics, on loopback: every key after a table header belongs to the
  # table, so after the top-level keys.
  if [ -z "${HSM_NO_METRICS:-}" ] && ! grep -q '^\[metrics\]' "$1/node$2.toml"; then
    cat >>"$1/node$2.toml" <<EOT
[metrics]
listen = "127.0.0.1:0"
tls = false
addr_file = "node$2.metrics.addr"
EOT
    if [ -n "${HSM_METRICS_CONFIG:-}" ]; then
      printf '%s\n' "$HSM_METRICS_CONFIG" >>"$1/node$2.toml"
    fi
  fi
  # The KMS API, last: every key after a table header belongs to the table.
  # HSM_NO_KMS=1 leaves it out (tests of a node without KMS).
  if [ -z "${HSM_NO_KMS:-}" ] && ! grep -q '^\[kms\]' "$1/node$2.toml"; then
    cat >>"$1/node$2.toml" <<EOT
[kms]
listen = "127.0.0.1:0"
addr_file = "node$2.kms.addr"
EOT
    if [ -n "${HSM_KMS_CONFIG:-}" ]; then
      printf '%s\n' "$HSM_KMS_CONFIG" >>"$1/node$2.toml"
    fi
  fi
  # The XKS proxy, on every node of a cluster made with --xks (the
  # credentials file says so).
  if [ -e "$1/xks-credentials.toml" ] && ! grep -q '^\[xks\]' "$1/node$2.toml"; then
    cat >>"$1/node$2.toml" <<EOT
[xks]
listen = "127.0.0.1:0"
addr_file = "node$2.xks.addr"
user = "$XKS_USER"
prefixes = ["$XKS_PREFIX"]
credentials_file = "xks-credentials.toml"
EOT
    if [ -n "${HSM_XKS_CONFIG:-}" ]; then
      printf '%s\n' "$HSM_XKS_CONFIG" >>"$1/node$2.toml"
    fi
  fi
}

# write_xks_credentials DIR: one new credential for the XKS prefix, of the
# forms AWS KMS takes: an access key ID of 20 of A-Z and 2-7 (base32), a
# secret of 44 Base64 characters.
write_xks_credentials() {
  akid=$(head -c 20 /dev/urandom | base32 | tr -d '=\n' | cut -c1-20)
  sak=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
  cat >"$1/xks-credentials.toml.tmp" <<EOT
# The XKS proxy's SigV4 credentials (docs/xks.md): read again on SIGHUP and
# when this file changes. Rotate by adding a credential, moving KMS to it,
# then removing the old one.
[[credential]]
prefix = "$XKS_PREFIX"
access_key_id = "$akid"
secret_access_key = "$sak"
EOT
  chmod 600 "$1/xks-credentials.toml.tmp"
  mv "$1/xks-credentials.toml.tmp" "$1/xks-credentials.toml"
}

# print_xks_exports DIR: make the XKS crypto user and its AES-256 key, and
# print what a KMS needs to use the proxy (also in DIR/xks.env).
print_xks_exports() {
  dir=$1
  [ -e "$dir/xks-credentials.toml" ] || return 0
  secret >"$dir/xks.password"
  HSM_CONFIG="$dir/client.toml" HSM_USER=$CO_USER HSM_PASSWORD=$(cat "$dir/co.password") \
    "$BIN/hsm" user create "$XKS_USER" --role CU --new-password-file "$dir/xks.password" >/dev/null || die "could not make the XKS crypto user"
  HSM_CONFIG="$dir/client.toml" HSM_USER=$XKS_USER HSM_PASSWORD=$(cat "$dir/xks.password") \
    "$BIN/hsm" key generate-aes "$XKS_KEY" --bits 256 >/dev/null || die "could not make the XKS key"
  if [ -s "$dir/haproxy.xks.port" ]; then
    host="127.0.0.1:$(cat "$dir/haproxy.xks.port")"
  else
    host=$(cat "$dir/node1.xks.addr")
  fi
  akid=$(sed -n 's/^access_key_id = "\(.*\)"$/\1/p' "$dir/xks-credentials.toml" | head -1)
  sak=$(sed -n 's/^secret_access_key = "\(.*\)"$/\1/p' "$dir/xks-credentials.toml" | head -1)
  {
    echo "# XKS proxy: https://$host$XKS_PREFIX/kms/xks/v1"
    echo "export XKS_PROXY_HOST='$host'"
    echo "export XKS_URI_PREFIX='$XKS_PREFIX'"
    echo "export XKS_URI_PATH='$XKS_PREFIX/kms/xks/v1'"
    echo "export XKS_ACCESS_KEY_ID='$akid'"
    echo "export XKS_SECRET_ACCESS_KEY='$sak'"
    echo "export XKS_KEY_ID='$XKS_KEY'"
    echo "export XKS_CA_CERT='$dir/pki/ca.pem'"
  } >"$dir/xks.env"
  cat "$dir/xks.env"
}

# a running node's address, to join through
running_addr() { # DIR
  for f in "$1"/node*.pid; do
    [ -e "$f" ] || continue
    k=${f##*/node}; k=${k%.pid}
    if kill -0 "$(cat "$f")" 2>/dev/null && [ -s "$1/node$k.addr" ]; then
      cat "$1/node$k.addr"
      return 0
    fi
  done
  return 1
}

# join_node DIR K: prepare node K to join, start it, and add it (as the CO)
join_node() {
  dir=$1 k=$2
  via=$(running_addr "$dir") || die "no running node to join through"
  write_node_config "$dir" "$k"
  "$BIN/hsmd" init -config "$dir/node$k.toml" -join "$via" >/dev/null
  start_node "$dir" "$k"
  HSM_CONFIG="$dir/client.toml" HSM_USER=$CO_USER HSM_PASSWORD=$(cat "$dir/co.password") \
    "$BIN/hsm" cluster add-node "node$k" "$(cat "$dir/node$k.addr")" >/dev/null || die "could not add node$k"
  write_client_config "$dir"
}

# client.toml lists every node that has an address file.
write_client_config() { # DIR
  addrs=""
  for f in "$1"/node*.toml; do
    k=${f##*/node}; k=${k%.toml}
    [ -s "$1/node$k.addr" ] && addrs="$addrs${addrs:+, }\"$(cat "$1/node$k.addr")\""
  done
  cat >"$1/client.toml.tmp" <<EOT
nodes = [$addrs]
ca = "pki/ca.pem"
cert = "pki/client.pem"
key = "pki/client-key.pem"
server_name = "localhost"
log_file = "p11.log"
EOT
  mv "$1/client.toml.tmp" "$1/client.toml"
}

print_exports() { # DIR N ID
  dir=$1
  module=""
  for m in "$BIN/libopenhsm-pkcs11.so" "$ROOT/p11module/libopenhsm-pkcs11.so"; do
    [ -e "$m" ] && { module=$m; break; }
  done
  echo "# HSM cluster $3: $2 node(s) in $dir"
  for f in "$dir"/node*.metrics.addr; do
    [ -s "$f" ] || continue
    k=${f##*/node}; k=${k%.metrics.addr}
    echo "# node$k metrics: http://$(cat "$f")/metrics (health: /healthz, /readyz)"
  done
  [ -n "$module" ] && echo "export P11_MODULE='$module'"
  echo "export HSM_CONFIG='$dir/client.toml'"
  echo "export P11_TOKEN_LABEL='$CU_USER'"
  echo "export P11_PIN='$(cat "$dir/cu.password")'"
  echo "export P11_SO_PIN='$CO_USER:$(cat "$dir/co.password")'"
  echo "export HSM_USER='$CO_USER'"
  echo "export HSM_PASSWORD='$(cat "$dir/co.password")'"
  echo "export HSM_USER2='$CO2_USER'"
  echo "export HSM_PASSWORD2='$(cat "$dir/co2.password")'"
  # What another cluster's KMS names this one by, as a custom key store.
  echo "export HSM_CLUSTER_ID='$3'"
  echo "export HSM_CA_CERT='$dir/pki/ca.pem'"
}

# The KMS API's scheme: https, or http when HSM_KMS_CONFIG said tls = false.
kms_scheme() { # DIR
  if sed -n '/^\[kms\]/,/^\[/p' "$1/node1.toml" | grep -q '^tls *= *false'; then echo http; else echo https; fi
}

# lb_service NAME PORT CHECK SERVER-CHECK ADDR-KIND: a frontend and its two
# backends. NAME_nodes holds the nodes whose health check answers 200 (up,
# in contact with the leader, caught up). When none does (an election, or
# checks that time out on a loaded machine), NAME_any takes every node
# that accepts a connection, so clients get the node's own 503 (which
# the SDKs retry) instead of a closed connection.
lb_service() {
  # (sh has no locals: lb_ names keep the caller's dir and port intact)
  lb_name=$1 lb_port=$2 lb_http=$3 lb_check=$4 lb_kind=$5
  cat <<EOT
frontend $lb_name
  bind 127.0.0.1:$lb_port
  use_backend ${lb_name}_any if { nbsrv(${lb_name}_nodes) eq 0 }
  default_backend ${lb_name}_nodes
backend ${lb_name}_nodes
  balance leastconn
  option httpchk $lb_http
  http-check expect status 200
  default-server $lb_check
EOT
  lb_servers "$lb_kind"
  cat <<EOT
backend ${lb_name}_any
  balance leastconn
  default-server $tcpcheck
EOT
  lb_servers "$lb_kind"
}

# lb_servers KIND: a server line per node with a DIR/node<K>.KIND.addr.
lb_servers() {
  for lb_f in "$dir"/node*."$1".addr; do
    [ -s "$lb_f" ] || continue
    lb_k=${lb_f##*/node}; lb_k=${lb_k%."$1".addr}
    echo "  server node$lb_k $(cat "$lb_f")"
  done
}

# write_lb_config DIR PORT: haproxy in front of every node's KMS port, by
# TCP passthrough (docs/kms.md, "Running it", says why and what each line
# does): TLS ends at the nodes, so the SDK checks a node certificate
# against AWS_CA_BUNDLE, and haproxy holds no key and sees no request.
write_lb_config() {
  dir=$1 port=$2
  # observe layer4 ... mark-down: a connection refused takes the node out
  # at once, so haproxy's retries go to live nodes (leastconn alone would
  # pick the dead node again: it has the fewest connections).
  tcpcheck="check inter 1s fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down"
  tlscheck="check-ssl verify required ca-file $dir/pki/ca.pem verifyhost localhost check-sni localhost"
  check=$tcpcheck
  if [ "$(kms_scheme "$dir")" = https ]; then check="$check $tlscheck"; fi
  {
    cat <<EOT
# Written by scripts/cluster.sh: haproxy in front of the nodes' KMS APIs.
global
  maxconn 4096
defaults
  mode tcp
  timeout connect 1s
  timeout client 2m
  timeout server 2m
  retries 3
  option redispatch 1
EOT
    lb_service kms "$port" "GET /healthz" "$check" kms
    # The XKS proxies, on the next port, the same way (TLS ends at the
    # nodes; GET /ping is the health check).
    if [ -s "$dir/node1.xks.addr" ]; then
      lb_service xks $((port + 1)) "GET /ping" "$tcpcheck $tlscheck" xks
    fi
  } >"$dir/haproxy.cfg.tmp"
  mv "$dir/haproxy.cfg.tmp" "$dir/haproxy.cfg"
}

# kms_healthy URL CA: GET URL/healthz answers 200.
kms_healthy() {
  case $1 in
    https:*) curl -fsS -o /dev/null --max-time 2 --cacert "$2" "$1/healthz" 2>/dev/null ;;
    *) curl -fsS -o /dev/null --max-time 2 "$1/healthz" 2>/dev/null ;;
  esac
}

# start_lb DIR [PORT]: start haproxy on PORT (default: a free one, tried at
# random from 20000-29999) and wait until the endpoint answers healthy.
start_lb() {
  dir=$1 want=${2:-}
  command -v haproxy >/dev/null || { echo "cluster.sh: haproxy is not installed (scripts/deps.sh installs it); the KMS endpoint is node1's port, with no failover" >&2; return 1; }
  tries=0
  while :; do
    tries=$((tries + 1))
    port=${want:-$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 10000))}
    write_lb_config "$dir" "$port"
    haproxy -c -q -f "$dir/haproxy.cfg" >"$dir/haproxy.out" 2>&1 || { cat "$dir/haproxy.out" >&2; die "haproxy refuses $dir/haproxy.cfg"; }
    setsid haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.out" 2>&1 </dev/null &
    echo $! >"$dir/haproxy.pid"
    i=0
    while [ $i -lt 100 ] && kill -0 "$(cat "$dir/haproxy.pid")" 2>/dev/null; do
      if kms_healthy "$(kms_scheme "$dir")://127.0.0.1:$port" "$dir/pki/ca.pem"; then
        echo "$port" >"$dir/haproxy.port"
        if [ -s "$dir/node1.xks.addr" ]; then echo $((port + 1)) >"$dir/haproxy.xks.port"; fi
        return 0
      fi
      sleep 0.1
      i=$((i + 1))
    done
    stop_pid "$dir/haproxy.pid" TERM
    if [ -z "$want" ] && [ $tries -lt 20 ] && grep -q "cannot bind" "$dir/haproxy.out"; then
      continue
    fi
    cat "$dir/haproxy.out" >&2
    die "haproxy did not start on port $port, or no node answered its health check"
  done
}

# print_kms_exports DIR: the AWS SDK settings for the KMS API, with a new
# principal's access key, also written to DIR/kms.env.
print_kms_exports() {
  dir=$1
  [ -s "$dir/node1.kms.addr" ] || return 0
  scheme=$(kms_scheme "$dir")
  if [ -s "$dir/haproxy.port" ]; then
    endpoint="$scheme://127.0.0.1:$(cat "$dir/haproxy.port")"
  else
    endpoint="$scheme://$(cat "$dir/node1.kms.addr")"
  fi
  {
    echo "# KMS API: $endpoint"
    echo "export AWS_ENDPOINT_URL_KMS='$endpoint'"
    # AWS_REGION for the SDKs; the AWS CLI v1 and boto3 read only
    # AWS_DEFAULT_REGION.
    echo "export AWS_REGION='us-east-1'"
    echo "export AWS_DEFAULT_REGION='us-east-1'"
    [ "$scheme" = https ] && echo "export AWS_CA_BUNDLE='$dir/pki/ca.pem'"
    if json=$(HSM_CONFIG="$dir/client.toml" HSM_USER=$CO_USER HSM_PASSWORD=$(cat "$dir/co.password") \
      "$BIN/hsm" kms principal create "$KMS_PRINCIPAL" --admin --json 2>"$dir/kms-principal.err"); then
      flat=$(printf '%s' "$json" | tr -d '\n')
      akid=$(printf '%s' "$flat" | sed -n 's/.*"AccessKeyId": *"\([^"]*\)".*/\1/p')
      sak=$(printf '%s' "$flat" | sed -n 's/.*"SecretAccessKey": *"\([^"]*\)".*/\1/p')
      [ -n "$akid" ] && [ -n "$sak" ] || die "'hsm kms principal create --json' printed no AccessKeyId or SecretAccessKey"
      echo "export AWS_ACCESS_KEY_ID='$akid'"
      echo "export AWS_SECRET_ACCESS_KEY='$sak'"
    else
      die "'hsm kms principal create $KMS_PRINCIPAL' failed: $(head -1 "$dir/kms-principal.err")"
    fi
  } >"$dir/kms.env"
  cat "$dir/kms.env"
}

up() {
  n=1 restore="" passfile="" xks=${HSM_XKS:-}
  while [ $# -gt 0 ]; do
    case $1 in
      -n) n=$2; shift 2 ;;
      --xks) xks=1; shift ;;
      -r) restore=$2; shift 2 ;;
      -p) passfile=$2; shift 2 ;;
      -*) die "unknown flag $1" ;;
      *) break ;;
    esac
  done
  [ $# -eq 1 ] || die "usage: cluster.sh up [-n N] [--xks] [-r BACKUP -p PASSPHRASE_FILE] DIR"
  case $n in ''|*[!0-9]*) die "-n needs a number" ;; esac
  [ "$n" -ge 1 ] || die "-n must be at least 1"
  [ "$n" -le 9 ] || die "-n must be at most 9"
  if [ -n "$restore" ] || [ -n "$passfile" ]; then
    [ -n "$restore" ] && [ -n "$passfile" ] || die "-r and -p go together"
    [ -r "$restore" ] || die "cannot read $restore"
    [ -r "$passfile" ] || die "cannot read $passfile"
    [ "$n" -eq 1 ] || die "a restored cluster starts with one node; add more with 'cluster.sh add' (the users come from the backup)"
    restore=$(cd "$(dirname "$restore")" && pwd)/$(basename "$restore")
  fi
  if [ -n "$xks" ]; then
    [ -z "$restore" ] || die "--xks makes its own user and key; it does not go with -r"
    [ -z "${HSM_NO_USERS:-}" ] || die "--xks makes users; it does not go with HSM_NO_USERS"
  fi
  dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  for f in "$dir"/node*.pid; do
    [ -e "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && die "$dir already runs a cluster; run 'cluster.sh down $dir' first"
  done
  [ -e "$dir/pki" ] && die "$dir already holds a cluster; use an empty directory"
  build
  umask 077
  if [ -n "$passfile" ]; then
    cp "$passfile" "$dir/passphrase"
  else
    secret >"$dir/passphrase"
    secret >"$dir/co.password"
    secret >"$dir/co2.password"
    secret >"$dir/cu.password"
  fi
  # The certificates are bound to the cluster ID: a restored cluster takes
  # the backup's, so its certificates and its store agree. A backup whose
  # header does not even read gets a new ID here; the node's restore then
  # refuses it with its own clear message.
  if [ -z "$restore" ] || ! "$BIN/hsm" cluster init --dir "$dir/pki" --nodes "$n" --backup "$restore" >/dev/null 2>&1; then
    "$BIN/hsm" cluster init --dir "$dir/pki" --nodes "$n" >/dev/null
  fi
  [ -n "$xks" ] && write_xks_credentials "$dir"
  write_node_config "$dir" 1
  cluster_id=$("$BIN/hsmd" init -config "$dir/node1.toml" | sed -n 's/.* for cluster //p')
  start_node "$dir" 1
  write_client_config "$dir"
  export HSM_CONFIG="$dir/client.toml"
  if [ -n "$restore" ]; then
    "$BIN/hsm" backup restore "$restore" >/dev/null || die "restore failed"
    echo "# HSM cluster restored from $restore: 1 node in $dir"
    echo "export HSM_CONFIG='$dir/client.toml'"
    return 0
  fi
  if [ -n "${HSM_NO_USERS:-}" ]; then
    [ "$n" -eq 1 ] || die "HSM_NO_USERS starts one node (adding nodes needs an officer)"
    echo "# HSM cluster $cluster_id: 1 node in $dir, no users yet"
    echo "export HSM_CONFIG='$dir/client.toml'"
    return 0
  fi
  "$BIN/hsm" cluster activate --user "$CO_USER" --password-file "$dir/co.password" >/dev/null
  HSM_USER=$CO_USER HSM_PASSWORD=$(cat "$dir/co.password") \
    "$BIN/hsm" user create "$CU_USER" --role CU --new-password-file "$dir/cu.password" >/dev/null
  HSM_USER=$CO_USER HSM_PASSWORD=$(cat "$dir/co.password") \
    "$BIN/hsm" user create "$CO2_USER" --role CO --new-password-file "$dir/co2.password" >/dev/null
  k=2
  while [ $k -le "$n" ]; do
    join_node "$dir" $k
    k=$((k + 1))
  done
  if [ "$n" -gt 1 ] && [ -s "$dir/node1.kms.addr" ]; then
    start_lb "$dir" || true
  fi
  print_exports "$dir" "$n" "$cluster_id"
  print_kms_exports "$dir"
  print_xks_exports "$dir"
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
  stop_pid "$dir/haproxy.pid" TERM
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

add() {
  [ $# -eq 1 ] || die "usage: cluster.sh add DIR"
  dir=$(cd "$1" && pwd)
  [ -e "$dir/pki/ca.pem" ] || die "no cluster in $dir"
  [ -e "$dir/co.password" ] || die "$dir has no crypto officer password file"
  build
  umask 077
  k=1
  while [ -e "$dir/node$k.toml" ]; do k=$((k + 1)); done
  "$BIN/hsm" cluster issue-node --dir "$dir/pki" "node$k" >/dev/null
  join_node "$dir" "$k"
  # The load balancer learns the new node's KMS port: a restart on its port.
  if [ -s "$dir/haproxy.port" ]; then
    stop_pid "$dir/haproxy.pid" TERM
    start_lb "$dir" "$(cat "$dir/haproxy.port")"
  fi
  echo "node$k $(cat "$dir/node$k.addr")"
}

[ $# -ge 1 ] || die "usage: cluster.sh up [-n N] DIR | down DIR | stop [-9] DIR K | start DIR K | add DIR"
cmd=$1
shift
case $cmd in
  up) up "$@" ;;
  down) down "$@" ;;
  stop) stop "$@" ;;
  start) start "$@" ;;
  add) add "$@" ;;
  *) die "unknown command $cmd" ;;
esac
