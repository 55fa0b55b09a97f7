#!/bin/sh
# awscli.sh: the AWS CLI (`aws kms ...`, unchanged; Debian's awscli if none
# is installed) against the KMS API of a real 3-node cluster, through the
# endpoint cluster.sh prints (haproxy in front of the nodes), with only the
# AWS_* settings it prints. It runs create-key, encrypt/decrypt with an
# encryption context, generate-data-key, sign/verify with an RSA, an ECC
# and an ML-DSA key, and aliases (create, use by alias, list, update, delete), and checks
# the answers: decrypt gives back the bytes, a wrong or missing context is
# InvalidCiphertextException, signatures verify through KMS and through
# OpenSSL with the public key GetPublicKey returns, and so on.
#
# Blobs go in as fileb:// files (the CLI v1 takes a base64 argument as the
# bytes of its text) and come out base64 in the text output.
#
#   interop/awscli.sh                    KEEP=1 keeps the work directory
#   OPENHSM_KMS_GIVEN=1 interop/awscli.sh   no cluster: the AWS_* settings
#                                        of the environment (internal/kmstest)
. "$(dirname "$0")/lib.sh"

command -v aws >/dev/null || need_pkgs awscli
need_pkgs openssl
start_kms -n 3

T=$WORK/awscli
mkdir -p "$T"
say "$(aws --version 2>&1)"

# kms ARGS...: one KMS call, its answer as text (the CLI's --output text).
kms() { aws kms "$@" --output text; }
# b64 QUERY FILE ARGS...: one KMS call whose base64 field QUERY is written,
# decoded, to FILE.
b64() {
  q=$1 f=$2
  shift 2
  kms "$@" --query "$q" >"$f.b64" && base64 -d "$f.b64" >"$f"
}
# same A B: files A and B hold the same bytes.
same() { cmp "$1" "$2"; }
# is WANT GOT: the strings are equal, or say both.
is() { [ "$1" = "$2" ] || { echo "want '$1', got '$2'"; return 1; }; }

# ---- a symmetric key ----
KEY=$(kms create-key --description "awscli suite" --query KeyMetadata.KeyId) ||
  { say "create-key failed"; exit 1; }
ARN=$(kms describe-key --key-id "$KEY" --query KeyMetadata.Arn)
case $ARN in
  "arn:aws:kms:$AWS_DEFAULT_REGION:"*":key/$KEY") ;;
  *) say "describe-key gave the ARN '$ARN' for key $KEY"; exit 1 ;;
esac

create_key_fields() {
  is "SYMMETRIC_DEFAULT ENCRYPT_DECRYPT Enabled True AWS_KMS awscli suite" \
    "$(kms describe-key --key-id "$ARN" --query 'KeyMetadata.[KeySpec,KeyUsage,KeyState,Enabled,Origin,Description]' | tr '\t' ' ')"
}
check "create-key: a symmetric key, enabled, described by its ARN" create_key_fields
listed() { kms list-keys --query 'Keys[].KeyId' | tr '\t' '\n' | grep -qx "$KEY"; }
check "list-keys lists it" listed

head -c 300 /dev/urandom >"$T/pt"
CTX="purpose=interop,suite=awscli"
encrypt_ctx() {
  kms encrypt --key-id "$KEY" --plaintext "fileb://$T/pt" --encryption-context "$CTX" \
    --query '[KeyId,EncryptionAlgorithm]' >"$T/enc.out" &&
    is "$ARN SYMMETRIC_DEFAULT" "$(tr '\t' ' ' <"$T/enc.out")" &&
    b64 CiphertextBlob "$T/ct" encrypt --key-id "$KEY" --plaintext "fileb://$T/pt" --encryption-context "$CTX"
}
check "encrypt with an encryption context: the key's ARN, SYMMETRIC_DEFAULT" encrypt_ctx
decrypt_ctx() {
  b64 Plaintext "$T/pt.out" decrypt --ciphertext-blob "fileb://$T/ct" --encryption-context "$CTX" &&
    same "$T/pt" "$T/pt.out" &&
    is "$ARN" "$(kms decrypt --ciphertext-blob "fileb://$T/ct" --encryption-context "$CTX" --query KeyId)"
}
check "decrypt with the context, no key ID: the original bytes, the key's ARN" decrypt_ctx
decrypt_keyid() {
  b64 Plaintext "$T/pt.out2" decrypt --key-id "$KEY" --ciphertext-blob "fileb://$T/ct" \
    --encryption-context "suite=awscli,purpose=interop" && same "$T/pt" "$T/pt.out2"
}
check "decrypt with the key ID and the context's pairs in another order" decrypt_keyid
check_fails "decrypt with a changed context value: InvalidCiphertextException" InvalidCiphertextException \
  kms decrypt --ciphertext-blob "fileb://$T/ct" --encryption-context "purpose=interop,suite=awscli2"
check_fails "decrypt with one pair of the context left out: InvalidCiphertextException" InvalidCiphertextException \
  kms decrypt --ciphertext-blob "fileb://$T/ct" --encryption-context "purpose=interop"
check_fails "decrypt with an extra context pair: InvalidCiphertextException" InvalidCiphertextException \
  kms decrypt --ciphertext-blob "fileb://$T/ct" --encryption-context "$CTX,extra=1"
check_fails "decrypt with no context: InvalidCiphertextException" InvalidCiphertextException \
  kms decrypt --ciphertext-blob "fileb://$T/ct"
KEY2=$(kms create-key --description "awscli suite, second key" --query KeyMetadata.KeyId)
check_fails "decrypt naming another key: IncorrectKeyException" IncorrectKeyException \
  kms decrypt --key-id "$KEY2" --ciphertext-blob "fileb://$T/ct" --encryption-context "$CTX"
head -c 100 "$T/ct" >"$T/ct.cut"
check_fails "decrypt of a cut ciphertext: InvalidCiphertextException" InvalidCiphertextException \
  kms decrypt --ciphertext-blob "fileb://$T/ct.cut" --encryption-context "$CTX"

# A context in JSON, with the characters a naive encoding would confuse.
JCTX='{"a=b":"c,d","k":"v\"w","uml":"\u00e4\u00f6\u00fc","empty?":""}'
JCTX2='{"empty?":"","uml":"\u00e4\u00f6\u00fc","k":"v\"w","a=b":"c,d"}'
json_ctx() {
  b64 CiphertextBlob "$T/ct.json" encrypt --key-id "$KEY" --plaintext "fileb://$T/pt" --encryption-context "$JCTX" &&
    b64 Plaintext "$T/pt.json" decrypt --ciphertext-blob "fileb://$T/ct.json" --encryption-context "$JCTX2" &&
    same "$T/pt" "$T/pt.json"
}
check "a JSON context with '=', ',', '\"', non-ASCII and an empty value round-trips" json_ctx
check_fails "that context with 'a=b' split differently: InvalidCiphertextException" InvalidCiphertextException \
  kms decrypt --ciphertext-blob "fileb://$T/ct.json" \
  --encryption-context '{"a":"b=c,d","k":"v\"w","uml":"\u00e4\u00f6\u00fc","empty?":""}'

head -c 4096 /dev/urandom >"$T/pt4096"
largest() {
  b64 CiphertextBlob "$T/ct4096" encrypt --key-id "$KEY" --plaintext "fileb://$T/pt4096" &&
    b64 Plaintext "$T/pt4096.out" decrypt --ciphertext-blob "fileb://$T/ct4096" && same "$T/pt4096" "$T/pt4096.out"
}
check "the largest plaintext, 4096 bytes, round-trips" largest
head -c 4097 /dev/urandom >"$T/pt4097"
check_fails "4097 bytes of plaintext: ValidationException" ValidationException \
  kms encrypt --key-id "$KEY" --plaintext "fileb://$T/pt4097"

# ---- data keys ----
gdk() { # SPEC-ARGS... : a data key with the context; its plaintext half
  kms generate-data-key --key-id "$KEY" --encryption-context "$CTX" "$@" --query KeyId >"$T/dk.keyid" &&
    kms generate-data-key --key-id "$KEY" --encryption-context "$CTX" "$@" \
      --query '[Plaintext,CiphertextBlob]' >"$T/dk.out" &&
    cut -f1 "$T/dk.out" | base64 -d >"$T/dk.pt" && cut -f2 "$T/dk.out" | base64 -d >"$T/dk.ct" &&
    is "$ARN" "$(cat "$T/dk.keyid")" &&
    b64 Plaintext "$T/dk.pt2" decrypt --ciphertext-blob "fileb://$T/dk.ct" --encryption-context "$CTX" &&
    same "$T/dk.pt" "$T/dk.pt2"
}
gdk_aes256() { gdk --key-spec AES_256 && is 32 "$(wc -c <"$T/dk.pt" | tr -d ' ')"; }
check "generate-data-key AES_256: 32 bytes, and its ciphertext decrypts to them" gdk_aes256
gdk_64() { gdk --number-of-bytes 64 && is 64 "$(wc -c <"$T/dk.pt" | tr -d ' ')"; }
check "generate-data-key --number-of-bytes 64" gdk_64
gdk_ctx() {
  kms generate-data-key --key-id "$KEY" --key-spec AES_128 --encryption-context "$CTX" \
    --query CiphertextBlob | base64 -d >"$T/dk128.ct" &&
    ! kms decrypt --ciphertext-blob "fileb://$T/dk128.ct" --encryption-context "purpose=other" >"$T/dk128.err" 2>&1 &&
    grep -q '(InvalidCiphertextException)' "$T/dk128.err"
}
check "a data key's ciphertext refuses another context" gdk_ctx
gdk_nopt() {
  kms generate-data-key-without-plaintext --key-id "$KEY" --key-spec AES_128 --query '[KeyId,Plaintext]' >"$T/nopt.out" &&
    is "$ARN None" "$(tr '\t' ' ' <"$T/nopt.out")" &&
    b64 CiphertextBlob "$T/nopt.ct" generate-data-key-without-plaintext --key-id "$KEY" --key-spec AES_128 &&
    b64 Plaintext "$T/nopt.pt" decrypt --ciphertext-blob "fileb://$T/nopt.ct" &&
    is 16 "$(wc -c <"$T/nopt.pt" | tr -d ' ')"
}
check "generate-data-key-without-plaintext: no plaintext; 16 bytes decrypt" gdk_nopt
check_fails "generate-data-key with neither KeySpec nor NumberOfBytes: ValidationException" ValidationException \
  kms generate-data-key --key-id "$KEY"

# ---- sign and verify ----
printf 'a message to sign, through the AWS CLI\n' >"$T/msg"
printf 'a message to sign, through the AWS CLI!\n' >"$T/msg.changed"
openssl dgst -sha256 -binary "$T/msg" >"$T/msg.sha256"

# sign_verify NAME KEY ALG DGST OSSL-ARGS: sign the message (RAW), verify it
# through KMS, refuse the changed message, and verify the signature with
# OpenSSL against the key's public half.
sign_verify() {
  name=$1 k=$2 alg=$3 dg=$4
  shift 4
  b64 Signature "$T/$name.sig" sign --key-id "$k" --message "fileb://$T/msg" --message-type RAW --signing-algorithm "$alg" &&
    is "True $alg" "$(kms verify --key-id "$k" --message "fileb://$T/msg" --message-type RAW --signing-algorithm "$alg" \
      --signature "fileb://$T/$name.sig" --query '[SignatureValid,SigningAlgorithm]' | tr '\t' ' ')" &&
    b64 PublicKey "$T/$name.pub.der" get-public-key --key-id "$k" &&
    openssl pkey -pubin -inform DER -in "$T/$name.pub.der" -out "$T/$name.pub.pem" &&
    openssl dgst "-$dg" "$@" -verify "$T/$name.pub.pem" -signature "$T/$name.sig" "$T/msg"
}
refuses_changed() { # NAME KEY ALG
  ! kms verify --key-id "$2" --message "fileb://$T/msg.changed" --message-type RAW --signing-algorithm "$3" \
    --signature "fileb://$T/$1.sig" >"$T/$1.bad" 2>&1 && grep -q '(KMSInvalidSignatureException)' "$T/$1.bad"
}

RSA=$(kms create-key --key-spec RSA_2048 --key-usage SIGN_VERIFY --query KeyMetadata.KeyId)
rsa_fields() {
  is "RSA_2048 SIGN_VERIFY Enabled" "$(kms describe-key --key-id "$RSA" --query 'KeyMetadata.[KeySpec,KeyUsage,KeyState]' | tr '\t' ' ')" &&
    kms describe-key --key-id "$RSA" --query 'KeyMetadata.SigningAlgorithms' | tr '\t' '\n' | grep -qx RSASSA_PSS_SHA_256
}
check "create-key RSA_2048 SIGN_VERIFY" rsa_fields
check "RSA: sign RSASSA_PSS_SHA_256; verify says SignatureValid; OpenSSL verifies it" \
  sign_verify rsa-pss "$RSA" RSASSA_PSS_SHA_256 sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32
check "RSA: verify of a changed message: KMSInvalidSignatureException" refuses_changed rsa-pss "$RSA" RSASSA_PSS_SHA_256
check "RSA: sign RSASSA_PKCS1_V1_5_SHA_384; verify; OpenSSL verifies it" \
  sign_verify rsa-v15 "$RSA" RSASSA_PKCS1_V1_5_SHA_384 sha384

ECC=$(kms create-key --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY --query KeyMetadata.KeyId)
ecc_fields() {
  is "ECC_NIST_P256 SIGN_VERIFY ECDSA_SHA_256" \
    "$(kms describe-key --key-id "$ECC" --query 'KeyMetadata.[KeySpec,KeyUsage,SigningAlgorithms[0]]' | tr '\t' ' ')"
}
check "create-key ECC_NIST_P256 SIGN_VERIFY" ecc_fields
check "ECC: sign ECDSA_SHA_256; verify says SignatureValid; OpenSSL verifies it" \
  sign_verify ecc "$ECC" ECDSA_SHA_256 sha256
check "ECC: verify of a changed message: KMSInvalidSignatureException" refuses_changed ecc "$ECC" ECDSA_SHA_256
ecc_digest() {
  b64 Signature "$T/ecc-digest.sig" sign --key-id "$ECC" --message "fileb://$T/msg.sha256" --message-type DIGEST \
    --signing-algorithm ECDSA_SHA_256 &&
    is True "$(kms verify --key-id "$ECC" --message "fileb://$T/msg" --message-type RAW --signing-algorithm ECDSA_SHA_256 \
      --signature "fileb://$T/ecc-digest.sig" --query SignatureValid)" &&
    openssl dgst -sha256 -verify "$T/ecc.pub.pem" -signature "$T/ecc-digest.sig" "$T/msg"
}
check "ECC: sign a DIGEST; it verifies as the RAW message, in KMS and OpenSSL" ecc_digest
check_fails "sign with the symmetric key: InvalidKeyUsageException" InvalidKeyUsageException \
  kms sign --key-id "$KEY" --message "fileb://$T/msg" --message-type RAW --signing-algorithm ECDSA_SHA_256
check_fails "encrypt with the RSA signing key: InvalidKeyUsageException" InvalidKeyUsageException \
  kms encrypt --key-id "$RSA" --plaintext "fileb://$T/pt" --encryption-algorithm RSAES_OAEP_SHA_256
check_fails "sign with an algorithm of another key type: InvalidKeyUsageException" InvalidKeyUsageException \
  kms sign --key-id "$ECC" --message "fileb://$T/msg" --message-type RAW --signing-algorithm RSASSA_PSS_SHA_256

# ---- ML-DSA (FIPS 204) ----
MLDSA=$(kms create-key --key-spec ML_DSA_65 --key-usage SIGN_VERIFY --query KeyMetadata.KeyId)
mldsa_fields() {
  is "ML_DSA_65 SIGN_VERIFY ML_DSA_SHAKE_256" \
    "$(kms describe-key --key-id "$MLDSA" --query 'KeyMetadata.[KeySpec,KeyUsage,SigningAlgorithms[0]]' | tr '\t' ' ')"
}
check "create-key ML_DSA_65 SIGN_VERIFY: its one algorithm is ML_DSA_SHAKE_256" mldsa_fields
# The SPKI: NIST's OID for ML-DSA-65 (OpenSSL 3.0 prints it as a number,
# 3.5 by name), no parameters, the 1952-byte key as the BIT STRING.
mldsa_pub() {
  b64 PublicKey "$T/mldsa.pub.der" get-public-key --key-id "$MLDSA" &&
    is 1974 "$(wc -c <"$T/mldsa.pub.der" | tr -d ' ')" &&
    openssl asn1parse -inform DER -in "$T/mldsa.pub.der" >"$T/mldsa.pub.asn1" &&
    grep -Eq 'OBJECT +:(2\.16\.840\.1\.101\.3\.4\.3\.18|ML-DSA-65)$' "$T/mldsa.pub.asn1" &&
    grep -q 'BIT STRING' "$T/mldsa.pub.asn1" && ! grep -q 'NULL' "$T/mldsa.pub.asn1"
}
check "get-public-key ML_DSA_65: DER SPKI with OID 2.16.840.1.101.3.4.3.18" mldsa_pub
mldsa_sign() {
  b64 Signature "$T/mldsa.sig" sign --key-id "$MLDSA" --message "fileb://$T/msg" --message-type RAW \
    --signing-algorithm ML_DSA_SHAKE_256 &&
    is 3309 "$(wc -c <"$T/mldsa.sig" | tr -d ' ')" &&
    is "True ML_DSA_SHAKE_256" "$(kms verify --key-id "$MLDSA" --message "fileb://$T/msg" --message-type RAW \
      --signing-algorithm ML_DSA_SHAKE_256 --signature "fileb://$T/mldsa.sig" --query '[SignatureValid,SigningAlgorithm]' | tr '\t' ' ')"
}
check "ML-DSA: sign RAW, a 3309-byte signature; verify says SignatureValid" mldsa_sign
# OpenSSL verifies ML-DSA from 3.5 on; with an older one the Go suite's
# check with circl (kms/suite, testMLDSA) is the outside verifier.
if openssl list -signature-algorithms 2>/dev/null | grep -qi 'ML-DSA-65'; then
  mldsa_openssl() {
    openssl pkey -pubin -inform DER -in "$T/mldsa.pub.der" -out "$T/mldsa.pub.pem" &&
      openssl pkeyutl -verify -pubin -inkey "$T/mldsa.pub.pem" -rawin -in "$T/msg" -sigfile "$T/mldsa.sig"
  }
  check "ML-DSA: OpenSSL verifies the signature with the public key" mldsa_openssl
else
  say "note $(openssl version | cut -d' ' -f1-2) has no ML-DSA: the outside check is kms/suite's (circl)"
fi
check "ML-DSA: verify of a changed message: KMSInvalidSignatureException" refuses_changed mldsa "$MLDSA" ML_DSA_SHAKE_256
# The signature with its byte 1001 replaced by another.
head -c 1000 "$T/mldsa.sig" >"$T/mldsa-bad.sig"
if [ "$(tail -c +1001 "$T/mldsa.sig" | head -c 1)" = X ]; then printf Y; else printf X; fi >>"$T/mldsa-bad.sig"
tail -c +1002 "$T/mldsa.sig" >>"$T/mldsa-bad.sig"
mldsa_tampered() {
  is 3309 "$(wc -c <"$T/mldsa-bad.sig" | tr -d ' ')" && ! cmp -s "$T/mldsa.sig" "$T/mldsa-bad.sig" &&
    ! kms verify --key-id "$MLDSA" --message "fileb://$T/msg" --message-type RAW --signing-algorithm ML_DSA_SHAKE_256 \
      --signature "fileb://$T/mldsa-bad.sig" >"$T/mldsa-bad.out" 2>&1 && grep -q '(KMSInvalidSignatureException)' "$T/mldsa-bad.out"
}
check "ML-DSA: verify of a tampered signature: KMSInvalidSignatureException" mldsa_tampered
head -c 64 /dev/urandom >"$T/mu"
check_fails "ML-DSA: sign a DIGEST: ValidationException" ValidationException \
  kms sign --key-id "$MLDSA" --message "fileb://$T/mu" --message-type DIGEST --signing-algorithm ML_DSA_SHAKE_256
check_fails "ML-DSA: sign EXTERNAL_MU: UnsupportedOperationException (a deviation, docs/kms.md)" UnsupportedOperationException \
  kms sign --key-id "$MLDSA" --message "fileb://$T/mu" --message-type EXTERNAL_MU --signing-algorithm ML_DSA_SHAKE_256
check_fails "create-key ML_DSA_65 for ENCRYPT_DECRYPT: ValidationException" ValidationException \
  kms create-key --key-spec ML_DSA_65 --key-usage ENCRYPT_DECRYPT

# ---- aliases ----
ALIAS="alias/interop-awscli-$$"
check "create-alias" kms create-alias --alias-name "$ALIAS" --target-key-id "$KEY"
alias_list() {
  acct=${ARN#arn:aws:kms:"$AWS_DEFAULT_REGION":}
  acct=${acct%%:*}
  is "$KEY arn:aws:kms:$AWS_DEFAULT_REGION:$acct:$ALIAS" \
    "$(kms list-aliases --query "Aliases[?AliasName=='$ALIAS'].[TargetKeyId,AliasArn]" | tr '\t' ' ')" &&
    kms list-aliases --key-id "$KEY" --query 'Aliases[].AliasName' | tr '\t' '\n' | grep -qx "$ALIAS"
}
check "list-aliases: the alias, its target and ARN; --key-id lists it" alias_list
by_alias() {
  is "$ARN" "$(kms describe-key --key-id "$ALIAS" --query KeyMetadata.Arn)" &&
    b64 CiphertextBlob "$T/ct.alias" encrypt --key-id "$ALIAS" --plaintext "fileb://$T/pt" --encryption-context "$CTX" &&
    b64 Plaintext "$T/pt.alias" decrypt --key-id "$ALIAS" --ciphertext-blob "fileb://$T/ct.alias" --encryption-context "$CTX" &&
    same "$T/pt" "$T/pt.alias" &&
    b64 Plaintext "$T/pt.alias2" decrypt --ciphertext-blob "fileb://$T/ct.alias" --encryption-context "$CTX" &&
    same "$T/pt" "$T/pt.alias2"
}
check "describe-key, encrypt and decrypt by the alias name" by_alias
alias_arn() {
  acct=${ARN#arn:aws:kms:"$AWS_DEFAULT_REGION":}
  acct=${acct%%:*}
  is "$ARN" "$(kms generate-data-key --key-id "arn:aws:kms:$AWS_DEFAULT_REGION:$acct:$ALIAS" --key-spec AES_256 --query KeyId)"
}
check "generate-data-key by the alias ARN" alias_arn
check_fails "create-alias again: AlreadyExistsException" AlreadyExistsException \
  kms create-alias --alias-name "$ALIAS" --target-key-id "$KEY2"
check_fails "create-alias without 'alias/': ValidationException" ValidationException \
  kms create-alias --alias-name "interop-awscli-$$" --target-key-id "$KEY"
check_fails "update-alias to a key of another type and usage: ValidationException" ValidationException \
  kms update-alias --alias-name "$ALIAS" --target-key-id "$ECC"
alias_update() {
  kms update-alias --alias-name "$ALIAS" --target-key-id "$KEY2" &&
    is "$KEY2" "$(kms list-aliases --query "Aliases[?AliasName=='$ALIAS'].TargetKeyId")" &&
    b64 CiphertextBlob "$T/ct.alias3" encrypt --key-id "$ALIAS" --plaintext "fileb://$T/pt" &&
    is "${ARN%"$KEY"}$KEY2" "$(kms decrypt --ciphertext-blob "fileb://$T/ct.alias3" --query KeyId)"
}
check "update-alias to the second key: encrypt by alias uses it" alias_update
alias_delete() {
  kms delete-alias --alias-name "$ALIAS" &&
    ! kms list-aliases --query 'Aliases[].AliasName' | tr '\t' '\n' | grep -qx "$ALIAS"
}
check "delete-alias: list-aliases no longer lists it" alias_delete
check_fails "encrypt by the deleted alias: NotFoundException" NotFoundException \
  kms encrypt --key-id "$ALIAS" --plaintext "fileb://$T/pt"
check_fails "delete-alias again: NotFoundException" NotFoundException \
  kms delete-alias --alias-name "$ALIAS"
still() { b64 Plaintext "$T/pt.after" decrypt --ciphertext-blob "fileb://$T/ct.alias" --encryption-context "$CTX" && same "$T/pt" "$T/pt.after"; }
check "what was encrypted by the alias still decrypts after it is gone" still

# The secret access key appears nowhere in what the suite kept.
nosecret() { ! grep -rqF "$AWS_SECRET_ACCESS_KEY" "$T"; }
check "no file of the suite holds the secret access key" nosecret
finish
