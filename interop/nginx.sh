#!/bin/sh
# nginx.sh: nginx (Debian's 1.22) serving HTTPS with its TLS key in the HSM,
# through libp11's engine and the openhsm PKCS#11 library. The master runs as
# root, loads the key, then forks two workers that drop to nginx's default
# unprivileged user (nobody; there is no `user` directive), as in a real
# deployment: the client configuration, certificate, key and p11.log of the
# test cluster stay root's, mode 0600, in a directory only root can enter.
# Each worker's first handshake makes libp11 call C_Initialize again in the
# child, where the library starts its helper (the fork path) with the
# credentials the master kept (docs/pkcs11-library.md, "Fork"). 1,000 HTTPS
# requests, each on a fresh full handshake, must all be answered 200, with an
# `nginx -s reload` in the middle of them (the key is loaded again and new
# workers are forked while requests run); 100 more requests must reach the
# new workers; stopping the master must take workers and helpers with it.
# nginx runs twice: as is, and with OPENHSM_P11_FORCE_HELPER=1 (every
# process, master too, on the helper); with OPENHSM_P11_FORCE_HELPER=1
# already set, only the second run.
. "$(dirname "$0")/lib.sh"

need_pkgs nginx openssl libengine-pkcs11-openssl opensc curl procps iproute2
start_cluster

REQUESTS=1000
RELOAD_REQUESTS=100
# The workers' user: nginx's compiled-in default (no `user` directive).
WORKER_USER=nobody
ENGINE_SO=$(dpkg -L libengine-pkcs11-openssl | grep '/engines-3/pkcs11\.so$' | head -1)
[ -n "$ENGINE_SO" ] || { say "libp11's pkcs11.so engine not found"; exit 1; }

NGINX_PID=""
stop_nginx() {
  if [ -n "$NGINX_PID" ]; then
    kill -TERM "$NGINX_PID" 2>/dev/null || true
    i=0
    while kill -0 "$NGINX_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=""
  fi
}
# Workers and helpers seen while nginx ran: the last resort at exit.
kill_leftovers() {
  for f in "$T"/*/*.pids; do
    [ -e "$f" ] || continue
    for p in $(cat "$f"); do
      case $(ps -o comm= -p "$p" 2>/dev/null) in
        nginx | openhsm-p11-hel*) kill -KILL "$p" 2>/dev/null || true ;;
      esac
    done
  done
}
cleanup() { stop_nginx; [ -n "${T:-}" ] && kill_leftovers; stop_cluster; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

T=$WORK/nginx
mkdir -p "$T"

# The engine's configuration with its PIN control, in a private file: the PIN
# is in neither nginx.conf nor any command line, so nginx never logs it.
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
EOF
)

LABEL=nginx-rsa
URI="pkcs11:token=$P11_TOKEN_LABEL;object=$LABEL;type=private"

keygen() {
  pkcs11-tool --module "$P11_MODULE" --token-label "$P11_TOKEN_LABEL" --login --pin "$P11_PIN" \
    --keypairgen --key-type rsa:2048 --id 20 --label "$LABEL"
}

selfsigned() {
  OPENSSL_CONF=$T/openssl.cnf openssl req -new -x509 -days 30 -engine pkcs11 -keyform engine \
    -key "$URI" -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -out "$T/cert.pem" </dev/null || return 1
  openssl verify -CAfile "$T/cert.pem" "$T/cert.pem"
}

check "RSA key pair made in the HSM" keygen
check "self-signed certificate signed by the HSM key" selfsigned

# children PID: the PIDs of PID's children.
children() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' || true; }
helper_of() { # PID: its openhsm-p11-helper child, if any
  for c in $(children "$1"); do
    case $(ps -o args= -p "$c" 2>/dev/null) in
      *openhsm-p11-helper*) echo "$c" ;;
    esac
  done
  return 0
}

rand_port() { # a port below the ephemeral range that nothing listens on
  i=0
  while [ $i -lt 50 ]; do
    p=$((10000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 22000))
    [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return 0; }
    i=$((i + 1))
  done
  return 1
}

write_conf() { # DIR PORT
  d=$1
  mkdir -p "$d/tmp" "$d/logs"
  cat >"$d/nginx.conf" <<EOF
# No user directive: the workers run as nginx's default user ($WORKER_USER).
worker_processes 2;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/error.log info;
env HSM_CONFIG;
env OPENSSL_CONF;
env OPENHSM_P11_FORCE_HELPER;
ssl_engine pkcs11;
events { worker_connections 512; }
http {
  log_format pidlog '\$pid \$status \$ssl_protocol \$ssl_session_reused';
  access_log $d/access.log pidlog;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  server {
    # reuseport: one socket per worker, the kernel spreads connections.
    listen 127.0.0.1:$2 ssl reuseport;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate $T/cert.pem;
    ssl_certificate_key "engine:pkcs11:$URI";
    # No resumption: every connection is a full handshake, signed in the HSM.
    ssl_session_cache off;
    ssl_session_tickets off;
    keepalive_timeout 0;
    location / { return 200 "ok \$pid\\n"; }
  }
}
EOF
}

# start_nginx DIR: nginx in the foreground (daemon off) as a child of this
# shell, on a free port (retried if another process takes it first).
start_nginx() {
  d=$1
  tries=0
  while [ $tries -lt 5 ]; do
    tries=$((tries + 1))
    PORT=$(rand_port) || return 1
    write_conf "$d" "$PORT"
    : >"$d/error.log"
    OPENSSL_CONF=$T/openssl.cnf nginx -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" \
      </dev/null >"$d/stdout.log" 2>&1 &
    NGINX_PID=$!
    # Up when both workers exist and the port listens (no request is sent).
    i=0
    while [ $i -lt 300 ]; do
      kill -0 "$NGINX_PID" 2>/dev/null || break
      if [ "$(workers_of "$NGINX_PID" | wc -l)" -ge 2 ] && [ -n "$(ss -Htln "sport = :$PORT")" ]; then
        echo "$PORT" >"$d/port"
        return 0
      fi
      sleep 0.1
      i=$((i + 1))
    done
    stop_nginx
    grep -q 'Address already in use' "$d/error.log" || return 1
  done
  return 1
}

nginx_up() { # DIR
  [ -s "$1/port" ] && kill -0 "$NGINX_PID" 2>/dev/null && return 0
  grep -E 'emerg|alert|crit' "$1/error.log" "$1/stdout.log" | tail -10
  return 1
}

workers_of() { # MASTER
  for c in $(children "$1"); do
    case $(ps -o args= -p "$c" 2>/dev/null) in
      "nginx: worker process"*) echo "$c" ;;
    esac
  done
  return 0
}

workers_two() { # DIR
  w=$(cat "$1/workers.pids")
  [ "$(echo "$w" | wc -w)" -eq 2 ] || { echo "workers: $w"; ps -o pid,ppid,args --ppid "$NGINX_PID"; return 1; }
}

# load DIR N TLSFLAGS...: N requests, each on its own connection.
load() {
  d=$1 n=$2
  shift 2
  port=$(cat "$d/port")
  cfg=$d/curl-$n-$(echo "$*" | tr -dc 0-9).cfg
  : >"$cfg"
  i=0
  while [ $i -lt "$n" ]; do
    printf 'url = "https://localhost:%s/r%s"\noutput = "/dev/null"\n' "$port" "$i" >>"$cfg"
    i=$((i + 1))
  done
  out=$cfg.codes
  rc=0
  timeout 150 curl -sS --parallel --parallel-max 16 --max-time 30 "$@" \
    --cacert "$T/cert.pem" --resolve "localhost:$port:127.0.0.1" -H 'Connection: close' \
    -w '%{http_code} %{num_connects}\n' -K "$cfg" >"$out" 2>"$out.err" || rc=$?
  ok=$(grep -c '^200 ' "$out" || true)
  echo "curl exit $rc, $ok of $n answered 200"
  [ "$rc" -eq 0 ] && [ "$ok" -eq "$n" ] && [ "$(wc -l <"$out")" -eq "$n" ] ||
    { sort "$out" | uniq -c | head; head -5 "$out.err"; return 1; }
}

# probe DIR: one request, the first a worker answers after the fork.
probe() {
  port=$(cat "$1/port")
  code=$(timeout 60 curl -sS --max-time 30 --cacert "$T/cert.pem" \
    --resolve "localhost:$port:127.0.0.1" -o "$1/probe.body" -w '%{http_code}' \
    "https://localhost:$port/probe") || return 1
  [ "$code" = 200 ] || { echo "HTTP $code"; return 1; }
  grep -q '^ok [0-9]' "$1/probe.body"
}

# The access log (before the requests after the reload): the probe and
# REQUESTS more, all 200 on full handshakes (none resumed), both original
# workers served, and only workers (the first two, or the two the reload
# forked) served.
access_log_ok() { # DIR
  log=$1/access1.log
  want=$((REQUESTS + 1))
  head -n "$want" "$1/access.log" >"$log"
  total=$(wc -l <"$1/access.log")
  ok=$(awk '$2 == 200 && $4 != "r"' "$log" | wc -l)
  echo "access log: $ok of the first $want requests answered 200 on full handshakes ($total lines)"
  [ "$total" -ge "$want" ] && [ "$ok" -eq "$want" ] || return 1
  awk '{print $3}' "$log" | sort | uniq -c
  awk '$3 == "TLSv1.2"' "$log" | grep -q . && awk '$3 == "TLSv1.3"' "$log" | grep -q . || return 1
  for p in $(cat "$1/workers.pids"); do
    n=$(awk -v p="$p" '$1 == p' "$log" | wc -l)
    echo "worker $p served $n"
    [ "$n" -gt 0 ] || return 1
  done
  for p in $(cat "$1/workers2.pids" 2>/dev/null); do
    echo "new worker $p served $(awk -v p="$p" '$1 == p' "$log" | wc -l) before the load ended"
  done
  for p in $(awk '{print $1}' "$log" | sort -u); do
    grep -qx "$p" "$1/workers.pids" "$1/workers2.pids" 2>/dev/null || { echo "pid $p served but is no worker"; return 1; }
  done
}

# Workers run as the unprivileged user, and so do their helpers.
unprivileged() { # DIR PIDFILE
  for p in $(cat "$1/$2"); do
    u=$(ps -o user= -p "$p" | tr -d ' ')
    [ "$u" = "$WORKER_USER" ] || { echo "worker $p runs as '$u', want $WORKER_USER"; return 1; }
    h=$(helper_of "$p")
    [ -n "$h" ] || { echo "worker $p has no helper"; return 1; }
    hu=$(ps -o user= -p "$h" | tr -d ' ')
    [ "$hu" = "$WORKER_USER" ] || { echo "helper $h runs as '$hu', want $WORKER_USER"; return 1; }
    echo "worker $p and its helper $h run as $u"
  done
  u=$(ps -o user= -p "$NGINX_PID" | tr -d ' ')
  echo "master $NGINX_PID runs as $u"
  [ "$u" = root ]
}

# The files the workers need are root's and unreadable to them: the
# credentials must have come from the master.
files_private() {
  for f in "$HSM_CONFIG" "$CLUSTER/pki/client-key.pem" "$CLUSTER/p11.log"; do
    [ -e "$f" ] || { echo "$f is missing"; return 1; }
    if runuser -u "$WORKER_USER" -- test -r "$f"; then
      echo "$f is readable by $WORKER_USER"
      return 1
    fi
  done
  echo "$WORKER_USER cannot read $HSM_CONFIG, the client key nor p11.log"
}

# Each worker runs its own helper (the fork path), which initialised the
# library and logged in again for that worker.
worker_helpers() { # DIR [PIDFILE]
  for p in $(cat "$1/${2:-workers.pids}"); do
    h=$(helper_of "$p")
    [ -n "$h" ] || { echo "worker $p has no helper child"; ps -ef | grep -E "$p" | grep -v grep; return 1; }
    grep -q "msg=C_Initialize pid=$h " "$CLUSTER/p11.log" || { echo "helper $h: no C_Initialize in p11.log"; return 1; }
    grep -q "msg=C_Login pid=$h " "$CLUSTER/p11.log" || { echo "helper $h: no C_Login in p11.log"; return 1; }
    # The credentials came from a privileged process (the master, or the
    # process the master forked from), not from the files.
    grep "msg=C_Initialize pid=$h " "$CLUSTER/p11.log" | grep -q 'credentials="handed over by pid' ||
      { echo "helper $h: C_Initialize without handed-over credentials"; return 1; }
    echo "worker $p: helper $h ($(grep "msg=C_Initialize pid=$h " "$CLUSTER/p11.log" | grep -o 'credentials="[^"]*"'))"
  done
}

# One helper per worker, started once: no helper was started per request,
# and nothing failed in the library.
helpers_once() { # DIR
  n=$(grep -c "msg=C_Initialize " "$CLUSTER/p11.log" || true)
  echo "C_Initialize in p11.log: $n in all"
  if grep -E 'openhsm-pkcs11:|Cryptoki|PKCS#11 module' "$1/error.log" "$1/stdout.log"; then
    return 1
  fi
  for h in $(cat "$1/helpers.pids"); do
    c=$(grep -c "msg=C_Initialize pid=$h " "$CLUSTER/p11.log" || true)
    [ "$c" -eq 1 ] || { echo "helper $h: $c C_Initialize"; return 1; }
  done
  echo "helpers: $(wc -w <"$1/helpers.pids"), each initialized once"
}

master_mode() { # DIR MODE
  h=$(helper_of "$NGINX_PID")
  case $2 in
    inproc)
      [ -z "$h" ] || { echo "master has a helper ($h) though not forced"; return 1; }
      grep -q "msg=C_Initialize pid=$NGINX_PID " "$CLUSTER/p11.log" ;;
    forced)
      [ -n "$h" ] || { echo "master has no helper under OPENHSM_P11_FORCE_HELPER=1"; return 1; }
      grep -q "msg=C_Initialize pid=$h " "$CLUSTER/p11.log" ;;
  esac
}

all_gone() { # DIR
  for p in $(cat "$1"/*.pids) ${2:-}; do
    i=0
    while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$p" 2>/dev/null; then
      echo "process $p ($(ps -o args= -p "$p")) still runs"
      return 1
    fi
  done
}

# nginx_reload DIR: `nginx -s reload`, which signals the master (SIGHUP)
# through its pid file; the master loads the key again and forks two new
# workers, and the old workers finish their requests and go.
nginx_reload() {
  OPENSSL_CONF=$T/openssl.cnf timeout 60 nginx -p "$1/" -c "$1/nginx.conf" -e "$1/error.log" -s reload \
    </dev/null >"$1/reload.out" 2>&1 || { cat "$1/reload.out"; return 1; }
}

# load_with_reload DIR N TLSFLAGS...: load N requests, and run nginx -s
# reload once a fifth of them are answered.
load_with_reload() {
  d=$1 n=$2
  shift 2
  base=$(wc -l <"$d/access.log")
  load "$d" "$n" "$@" >"$d/load2.out" 2>&1 &
  lp=$!
  i=0
  while [ $i -lt 600 ] && kill -0 "$lp" 2>/dev/null; do
    [ $(($(wc -l <"$d/access.log") - base)) -ge $((n / 5)) ] && break
    sleep 0.05
    i=$((i + 1))
  done
  at=$(($(wc -l <"$d/access.log") - base))
  rrc=0
  nginx_reload "$d" || rrc=1
  echo "nginx -s reload sent after $at of $n requests"
  lrc=0
  wait "$lp" || lrc=$?
  cat "$d/load2.out"
  [ "$rrc" -eq 0 ] && [ "$lrc" -eq 0 ] && [ "$at" -lt "$n" ]
}

# reload DIR: wait for the reload: two new workers, the old workers (and
# with them their helpers) gone.
reload() {
  old=$(cat "$1/workers.pids")
  i=0
  while [ $i -lt 300 ]; do
    alive=""
    for p in $old; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    new=""
    for p in $(workers_of "$NGINX_PID"); do
      case " $old " in *" $p "*) ;; *) new="$new $p" ;; esac
    done
    [ -z "$alive" ] && [ "$(echo "$new" | wc -w)" -eq 2 ] && break
    sleep 0.1
    i=$((i + 1))
  done
  echo "$new" | tr ' ' '\n' | grep . >"$1/workers2.pids" || true
  [ -z "$alive" ] || { echo "old workers still run:$alive"; return 1; }
  [ "$(echo "$new" | wc -w)" -eq 2 ] || { echo "new workers:$new"; return 1; }
  grep -E 'emerg|alert' "$1/error.log" && return 1
  return 0
}

# after_reload DIR: N requests, all 200, served by the new workers only, each
# with its own helper.
after_reload() {
  load "$1" "$RELOAD_REQUESTS" --tlsv1.3 || return 1
  tail -n "$RELOAD_REQUESTS" "$1/access.log" >"$1/access2.log"
  [ "$(wc -l <"$1/access.log")" -eq $((REQUESTS + 1 + RELOAD_REQUESTS)) ] || { echo "access log: $(wc -l <"$1/access.log") lines"; return 1; }
  for p in $(cat "$1/workers2.pids"); do
    n=$(awk -v p="$p" '$1 == p && $2 == 200' "$1/access2.log" | wc -l)
    echo "new worker $p served $n"
    [ "$n" -gt 0 ] || return 1
    h=$(helper_of "$p")
    [ -n "$h" ] || { echo "new worker $p has no helper"; return 1; }
  done
  [ "$(awk '$2 == 200' "$1/access2.log" | wc -l)" -eq "$RELOAD_REQUESTS" ] &&
    [ "$(awk '{print $1}' "$1/access2.log" | sort -u | wc -l)" -eq 2 ]
}

# (check uses the global "name": this keeps its own variables apart.)
run_nginx() { # NAME MODE(inproc|forced)
  rn=$1 mode=$2
  rd=$T/$rn
  mkdir -p "$rd"
  if [ "$mode" = forced ]; then
    export OPENHSM_P11_FORCE_HELPER=1
  else
    unset OPENHSM_P11_FORCE_HELPER
  fi
  start_nginx "$rd" >"$rd/start.out" 2>&1 || true
  check "[$rn] nginx (2 workers, key in the HSM) up on 127.0.0.1" nginx_up "$rd"
  if [ -s "$rd/port" ]; then
    master=$NGINX_PID
    workers_of "$master" >"$rd/workers.pids"
    check "[$rn] master forked 2 workers after loading the key" workers_two "$rd"
    check "[$rn] first HTTPS request answered by a worker (its first calls after fork)" probe "$rd"
    check "[$rn] the client config, key and p11.log are unreadable to $WORKER_USER" files_private
    # A worker that hangs fails the first load: do not wait on the second.
    half=$((REQUESTS / 2))
    before=$FAIL
    check "[$rn] $half HTTPS requests over TLS 1.2 (fresh handshakes), all 200" \
      load "$rd" "$half" --tlsv1.2 --tls-max 1.2
    # Both workers have served by now.
    check "[$rn] master runs as root, workers and their helpers as $WORKER_USER" unprivileged "$rd" workers.pids
    check "[$rn] each worker runs its own library helper (fork path), with credentials from the master" worker_helpers "$rd"
    check "[$rn] master uses the library $([ "$mode" = forced ] && echo 'through its helper' || echo 'in process')" \
      master_mode "$rd" "$mode"
    # Remember every helper (all must go).
    { helper_of "$master"; for w in $(cat "$rd/workers.pids"); do helper_of "$w"; done; } >"$rd/helpers.pids"
    if [ "$FAIL" -eq "$before" ]; then
      check "[$rn] $((REQUESTS - half)) HTTPS requests over TLS 1.3 (fresh handshakes) with nginx -s reload among them, all 200" \
        load_with_reload "$rd" $((REQUESTS - half)) --tlsv1.3
      check "[$rn] reload: key loaded again, 2 new workers, old workers gone" reload "$rd"
      check "[$rn] access log: $REQUESTS (+1 probe) x 200, both first workers served, only workers served" access_log_ok "$rd"
    else
      say "skipped the TLS 1.3 load, the reload and the access log check after the failure above"
    fi
    if [ -s "$rd/workers2.pids" ]; then
      check "[$rn] after reload: $RELOAD_REQUESTS HTTPS requests all 200, by both new workers via their helpers" \
        after_reload "$rd"
      check "[$rn] new workers and their helpers run as $WORKER_USER" unprivileged "$rd" workers2.pids
      check "[$rn] new workers' helpers got their credentials from the master" worker_helpers "$rd" workers2.pids
      for w in $(cat "$rd/workers2.pids"); do helper_of "$w"; done >>"$rd/helpers.pids"
    fi
    check "[$rn] one helper per worker, started once; no library error in nginx's log" helpers_once "$rd"
    # Stop nginx by its master's PID.
    stop_nginx
    check "[$rn] nginx stopped: master, workers and helpers gone" all_gone "$rd" "$master"
  fi
  stop_nginx
  unset OPENHSM_P11_FORCE_HELPER
}

FORCED_OUTSIDE=${OPENHSM_P11_FORCE_HELPER:-}
if [ -z "$FORCED_OUTSIDE" ]; then
  run_nginx default inproc
fi
run_nginx force-helper forced

finish
