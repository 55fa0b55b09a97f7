#!/bin/sh
# boto3.sh: boto3's KMS client (Python; the machine's python3 if it has
# boto3 and cryptography, else Debian's python3-boto3 and
# python3-cryptography) against the KMS API of a real one-node cluster,
# reached at the node's own KMS port with only the AWS_* settings
# cluster.sh prints. interop/boto3/kms_suite.py holds the checks:
# create_key, encrypt/decrypt with an encryption context, data keys,
# sign/verify with an RSA and an ECC key (each signature also checked by
# the `cryptography` package against GetPublicKey's key), and aliases.
# (interop/awscli.sh runs the AWS CLI through the 3-node load balancer.)
#
#   interop/boto3.sh                    KEEP=1 keeps the work directory
#   OPENHSM_KMS_GIVEN=1 interop/boto3.sh   no cluster: the AWS_* settings
#                                       of the environment (internal/kmstest)
. "$(dirname "$0")/lib.sh"

PY=python3
if ! python3 -c 'import boto3, cryptography' >/dev/null 2>&1; then
  need_pkgs python3-boto3 python3-cryptography
  PY=/usr/bin/python3
fi
start_kms

# The checks print their own lines and the closing count; the cluster is
# stopped by the trap start_kms set.
rc=0
"$PY" "$ROOT/interop/boto3/kms_suite.py" || rc=$?
[ $rc -eq 0 ] || say "failed (exit status $rc)"
exit $rc
