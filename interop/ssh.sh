#!/bin/sh
# ssh.sh: what a PKCS#11 application sees before it logs in. ssh-keygen -D
# (OpenSSH's client, which lists a module's keys without a PIN) and
# pkcs11-tool --list-objects without --login, against a real one-node
# cluster: the token's public keys and certificate are listed, its private
# keys are not, and ssh-keygen's keys are the ones openssl reads from the
# token. With the cluster setting public_objects off (hsm cluster setting
# set), neither lists anything; set on again, both do.
#
# The listing runs in process and again with OPENHSM_P11_FORCE_HELPER=1.
#
#   interop/ssh.sh          KEEP=1 keeps the work directory
. "$(dirname "$0")/lib.sh"
need_pkgs opensc openssl openssh-client
start_cluster

p11() { pkcs11-tool --module "$P11_MODULE" "$@"; }
tok() { p11 --token-label "$P11_TOKEN_LABEL" --login --pin "$P11_PIN" "$@"; }

# has / hasnt FILE PATTERN: FILE has (has no) line matching the extended
# regex; shows the file when not.
has() {
  grep -Eq -- "$2" "$1" && return 0
  echo "no line matching /$2/ in:"
  cat "$1"
  return 1
}
# hasline FILE LINE: FILE has exactly LINE (no pattern: keys hold + and /).
hasline() {
  grep -Fxq -- "$2" "$1" && return 0
  echo "no line '$2' in:"
  cat "$1"
  return 1
}
hasnt() {
  grep -Eq -- "$2" "$1" || return 0
  echo "a line matches /$2/ in:"
  cat "$1"
  return 1
}

# --- the token's objects, made once, logged in ---
setup() {
  tok --keypairgen --key-type EC:prime256v1 --label ssh-ec --id 51 >"$D/gen-ec" 2>&1 || { cat "$D/gen-ec"; return 1; }
  tok --keypairgen --key-type rsa:2048 --label ssh-rsa --id 52 >"$D/gen-rsa" 2>&1 || { cat "$D/gen-rsa"; return 1; }
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/cert.key" \
    -subj "/CN=openhsm ssh interop" -days 2 -outform DER -out "$D/cert.der" 2>"$D/req" || { cat "$D/req"; return 1; }
  tok --write-object "$D/cert.der" --type cert --label ssh-cert --id 53 >"$D/write" 2>&1 || { cat "$D/write"; return 1; }
  # The public keys as openssl reads them, in ssh's form.
  for k in ec:51 rsa:52; do
    n=${k%%:*}
    tok --read-object --type pubkey --id "${k#*:}" -o "$D/$n.der" >/dev/null 2>&1 &&
      openssl pkey -pubin -inform DER -in "$D/$n.der" -out "$D/$n.pem" &&
      ssh-keygen -i -m PKCS8 -f "$D/$n.pem" | cut -d' ' -f1,2 >"$D/$n.ssh" || return 1
  done
}

# --- checks ---
list_objects_before_login() {
  p11 --token-label "$P11_TOKEN_LABEL" --list-objects >"$D/objs" 2>&1 &&
    has "$D/objs" '^Public Key Object; EC' &&
    has "$D/objs" '^Public Key Object; RSA 2048 bits' &&
    has "$D/objs" '^Certificate Object; type = X\.509 cert' &&
    has "$D/objs" 'label: +ssh-cert' &&
    hasnt "$D/objs" '^Private Key Object'
}

ssh_keygen_lists_keys() {
  ssh-keygen -D "$P11_MODULE" >"$D/sshkeys" 2>"$D/ssh.err" || { cat "$D/sshkeys" "$D/ssh.err"; return 1; }
  cut -d' ' -f1,2 "$D/sshkeys" >"$D/sshkeys.12"
  hasline "$D/sshkeys.12" "$(cat "$D/ec.ssh")" &&
    hasline "$D/sshkeys.12" "$(cat "$D/rsa.ssh")"
}

setting() { "$BIN/hsm" cluster setting set public_objects "$1" >"$D/setting" 2>&1 || { cat "$D/setting"; return 1; }; }

nothing_with_setting_off() {
  setting off &&
    p11 --token-label "$P11_TOKEN_LABEL" --list-objects >"$D/objs-off" 2>&1 &&
    hasnt "$D/objs-off" 'Object;' &&
    { ssh-keygen -D "$P11_MODULE" >"$D/sshkeys-off" 2>&1 || true; } &&
    hasnt "$D/sshkeys-off" '^(ssh-rsa|ecdsa-sha2-nistp256) ' &&
    setting on &&
    ssh_keygen_lists_keys
}

D=$WORK
check "setup: EC and RSA key pairs and a certificate on the token (logged in)" setup
check "pkcs11-tool --list-objects without --login lists the public keys and the certificate, no private key" list_objects_before_login
check "ssh-keygen -D lists the token's EC and RSA keys, as openssl reads them" ssh_keygen_lists_keys
OPENHSM_P11_FORCE_HELPER=1
export OPENHSM_P11_FORCE_HELPER
check "helper: pkcs11-tool --list-objects without --login" list_objects_before_login
check "helper: ssh-keygen -D" ssh_keygen_lists_keys
unset OPENHSM_P11_FORCE_HELPER
check "public_objects off: neither lists anything; on again: ssh-keygen -D does" nothing_with_setting_off
finish
