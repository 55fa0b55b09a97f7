"""kms_suite.py: boto3's KMS client, unchanged, against the endpoint in the
environment (AWS_ENDPOINT_URL_KMS, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION, AWS_CA_BUNDLE), run by interop/boto3.sh.

It creates keys, encrypts and decrypts with an encryption context, makes data
keys, signs and verifies with an RSA and an ECC key (and checks those
signatures with the `cryptography` package against the public key that
GetPublicKey returns), and creates, uses, lists, updates and deletes an
alias. Each check prints "boto3: ok   NAME" or "boto3: FAIL NAME" and why;
the last line is "boto3: N passed, M failed", and the exit status is 1 if
any check failed. Nothing secret is printed: no secret access key, and no
plaintext (the checks compare bytes and print only lengths).
"""

import hashlib
import os
import sys
import traceback

import boto3
import botocore.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

SUITE = "boto3"
passed = 0
failed = 0


def say(msg):
    print(f"{SUITE}: {msg}", flush=True)


class CheckError(Exception):
    pass


def require(cond, why):
    if not cond:
        raise CheckError(why)


def equal(want, got, what):
    if want != got:
        if isinstance(want, bytes) or isinstance(got, bytes):
            raise CheckError(f"{what}: the bytes differ ({len(want)} wanted, {len(got)} got)")
        raise CheckError(f"{what}: want {want!r}, got {got!r}")


def check(name, fn):
    """Run one check; count it; show why it failed."""
    global passed, failed
    try:
        fn()
    except CheckError as e:
        failed += 1
        say(f"FAIL {name}: {e}")
        return
    except botocore.exceptions.ClientError as e:
        failed += 1
        say(f"FAIL {name}: {error_code(e)}: {e.response.get('Error', {}).get('Message', '')}")
        return
    except Exception:  # any other failure is the check's, shown in full
        failed += 1
        say(f"FAIL {name}")
        for line in traceback.format_exc().splitlines()[-8:]:
            print(f"    {line}")
        return
    passed += 1
    say(f"ok   {name}")


def error_code(e):
    return e.response.get("Error", {}).get("Code", "")


def check_fails(name, exception, fn):
    """A check that fn fails with the AWS exception named exception, with
    HTTP 400, as the client's modelled exception class if it has one."""

    def run():
        try:
            fn()
        except botocore.exceptions.ClientError as e:
            equal(exception, error_code(e), "the exception")
            # KMS's model names most exceptions (boto3 has a class for
            # each); ValidationException and NotAuthorizedException it
            # does not, and boto3 raises a plain ClientError for those.
            cls = getattr(kms.exceptions, exception, None)
            require(cls is None or isinstance(e, cls), f"boto3 did not raise kms.exceptions.{exception}")
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            equal(400, status, "the HTTP status")
            return
        raise CheckError(f"succeeded, expected {exception}")

    check(name, run)


kms = boto3.client("kms")
region = os.environ["AWS_DEFAULT_REGION"]
say(f"boto3 {boto3.__version__}, botocore {botocore.__version__}, endpoint {kms.meta.endpoint_url}")
if kms.meta.endpoint_url.rstrip("/") != os.environ["AWS_ENDPOINT_URL_KMS"].rstrip("/"):
    say(f"boto3 chose the endpoint {kms.meta.endpoint_url}, not AWS_ENDPOINT_URL_KMS")
    sys.exit(1)

# ---- a symmetric key ----
meta = kms.create_key(Description="boto3 suite")["KeyMetadata"]
KEY, ARN = meta["KeyId"], meta["Arn"]
ACCOUNT = ARN.split(":")[4]


def create_key_fields():
    equal(f"arn:aws:kms:{region}:{ACCOUNT}:key/{KEY}", ARN, "the ARN")
    m = kms.describe_key(KeyId=ARN)["KeyMetadata"]
    got = [m[f] for f in ("KeyId", "KeySpec", "KeyUsage", "KeyState", "Enabled", "Origin", "Description")]
    equal([KEY, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "Enabled", True, "AWS_KMS", "boto3 suite"], got, "the metadata")
    equal(["SYMMETRIC_DEFAULT"], m["EncryptionAlgorithms"], "EncryptionAlgorithms")


check("create_key: a symmetric key, enabled, described by its ARN", create_key_fields)


def listed():
    keys = [k["KeyId"] for p in kms.get_paginator("list_keys").paginate() for k in p["Keys"]]
    require(KEY in keys, "list_keys does not list the key")


check("list_keys (through the paginator) lists it", listed)

PT = os.urandom(300)
CTX = {"purpose": "interop", "suite": "boto3"}
state = {}


def encrypt_ctx():
    out = kms.encrypt(KeyId=KEY, Plaintext=PT, EncryptionContext=CTX)
    equal(ARN, out["KeyId"], "KeyId")
    equal("SYMMETRIC_DEFAULT", out["EncryptionAlgorithm"], "EncryptionAlgorithm")
    require(PT not in out["CiphertextBlob"], "the plaintext is in the ciphertext")
    state["ct"] = out["CiphertextBlob"]


check("encrypt with an encryption context: the key's ARN, SYMMETRIC_DEFAULT", encrypt_ctx)


def decrypt_ctx():
    out = kms.decrypt(CiphertextBlob=state["ct"], EncryptionContext=dict(reversed(list(CTX.items()))))
    equal(PT, out["Plaintext"], "the plaintext")
    equal(ARN, out["KeyId"], "KeyId")
    out = kms.decrypt(CiphertextBlob=state["ct"], EncryptionContext=CTX, KeyId=ARN)
    equal(PT, out["Plaintext"], "the plaintext (KeyId given)")


check("decrypt with the context (with and without KeyId): the original bytes", decrypt_ctx)
check_fails("decrypt with a changed context value: InvalidCiphertextException", "InvalidCiphertextException",
            lambda: kms.decrypt(CiphertextBlob=state["ct"], EncryptionContext={**CTX, "suite": "boto"}))
check_fails("decrypt with a pair of the context left out: InvalidCiphertextException", "InvalidCiphertextException",
            lambda: kms.decrypt(CiphertextBlob=state["ct"], EncryptionContext={"purpose": "interop"}))
check_fails("decrypt with no context: InvalidCiphertextException", "InvalidCiphertextException",
            lambda: kms.decrypt(CiphertextBlob=state["ct"]))
check_fails("decrypt of a ciphertext with one byte flipped: InvalidCiphertextException", "InvalidCiphertextException",
            lambda: kms.decrypt(CiphertextBlob=state["ct"][:-1] + bytes([state["ct"][-1] ^ 1]), EncryptionContext=CTX))
KEY2 = kms.create_key(Description="boto3 suite, second key")["KeyMetadata"]["KeyId"]
check_fails("decrypt naming another key: IncorrectKeyException", "IncorrectKeyException",
            lambda: kms.decrypt(CiphertextBlob=state["ct"], EncryptionContext=CTX, KeyId=KEY2))

# Keys and values that a naive "k=v,k=v" or length-free encoding confuses.
TRICKY = [
    ({"a": "b=c"}, {"a=b": "c"}),
    ({"a": "b,c=d"}, {"a": "b", "c": "d"}),
    ({"k": "v\x00w"}, {"k": "v", "\x00w": ""}),
    ({"\u00e4": "\u00f6"}, {"\u00c3\u00a4": "\u00c3\u00b6"}),
]


def tricky_contexts():
    for i, (ctx, other) in enumerate(TRICKY):
        ct = kms.encrypt(KeyId=KEY, Plaintext=PT, EncryptionContext=ctx)["CiphertextBlob"]
        equal(PT, kms.decrypt(CiphertextBlob=ct, EncryptionContext=ctx)["Plaintext"], f"context {i}")
        try:
            kms.decrypt(CiphertextBlob=ct, EncryptionContext=other)
        except kms.exceptions.InvalidCiphertextException:
            continue
        raise CheckError(f"context {i} decrypted under the other context {other!r}")


check("contexts that a naive encoding confuses round-trip, and refuse their look-alikes", tricky_contexts)


def sizes():
    for n in (1, 4096):
        pt = os.urandom(n)
        ct = kms.encrypt(KeyId=KEY, Plaintext=pt)["CiphertextBlob"]
        equal(pt, kms.decrypt(CiphertextBlob=ct)["Plaintext"], f"{n} bytes")


check("1 and 4096 bytes (the bounds) round-trip", sizes)
check_fails("4097 bytes of plaintext: ValidationException", "ValidationException",
            lambda: kms.encrypt(KeyId=KEY, Plaintext=os.urandom(4097)))

# ---- data keys ----


def gdk(n, **spec):
    out = kms.generate_data_key(KeyId=KEY, EncryptionContext=CTX, **spec)
    equal(ARN, out["KeyId"], "KeyId")
    equal(n, len(out["Plaintext"]), "the data key's length")
    back = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext=CTX)["Plaintext"]
    equal(out["Plaintext"], back, "the decrypted data key")
    try:
        kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"purpose": "other"})
    except kms.exceptions.InvalidCiphertextException:
        return
    raise CheckError("the data key decrypted under another context")


check("generate_data_key AES_256: 32 bytes; decrypts with the context only", lambda: gdk(32, KeySpec="AES_256"))
check("generate_data_key AES_128", lambda: gdk(16, KeySpec="AES_128"))
check("generate_data_key NumberOfBytes=1024", lambda: gdk(1024, NumberOfBytes=1024))


def gdk_nopt():
    out = kms.generate_data_key_without_plaintext(KeyId=KEY, KeySpec="AES_256")
    require("Plaintext" not in out, "the answer has a Plaintext")
    equal(32, len(kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"]), "the data key's length")


check("generate_data_key_without_plaintext", gdk_nopt)
check_fails("generate_data_key with KeySpec and NumberOfBytes: ValidationException", "ValidationException",
            lambda: kms.generate_data_key(KeyId=KEY, KeySpec="AES_256", NumberOfBytes=32))
check_fails("generate_data_key NumberOfBytes=1025: ValidationException", "ValidationException",
            lambda: kms.generate_data_key(KeyId=KEY, NumberOfBytes=1025))

# ---- sign and verify ----
MSG = b"a message to sign, through boto3\n"
CHANGED = MSG + b"!"
HASHES = {"SHA_256": hashes.SHA256(), "SHA_384": hashes.SHA384(), "SHA_512": hashes.SHA512()}


def public_key(key):
    out = kms.get_public_key(KeyId=key)
    return out, serialization.load_der_public_key(out["PublicKey"])


def local_verify(pub, alg, sig, msg):
    """Verify with `cryptography`: PSS with the salt as long as the hash, as
    AWS documents for RSASSA_PSS_*."""
    h = HASHES[alg[-7:]]
    if alg.startswith("RSASSA_PSS_"):
        pub.verify(sig, msg, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
    elif alg.startswith("RSASSA_PKCS1_V1_5_"):
        pub.verify(sig, msg, padding.PKCS1v15(), h)
    else:
        pub.verify(sig, msg, ec.ECDSA(h))


def sign_verify(key, alg):
    def run():
        out = kms.sign(KeyId=key, Message=MSG, MessageType="RAW", SigningAlgorithm=alg)
        equal(alg, out["SigningAlgorithm"], "SigningAlgorithm")
        v = kms.verify(KeyId=key, Message=MSG, MessageType="RAW", SigningAlgorithm=alg, Signature=out["Signature"])
        equal(True, v["SignatureValid"], "SignatureValid")
        require(v["KeyId"].endswith("key/" + key), f"Verify's KeyId {v['KeyId']}")
        _, pub = public_key(key)
        local_verify(pub, alg, out["Signature"], MSG)
        try:
            local_verify(pub, alg, out["Signature"], CHANGED)
        except InvalidSignature:
            pass
        else:
            raise CheckError("cryptography verified the signature over a changed message")
        try:
            kms.verify(KeyId=key, Message=CHANGED, MessageType="RAW", SigningAlgorithm=alg, Signature=out["Signature"])
        except kms.exceptions.KMSInvalidSignatureException:
            return
        raise CheckError("Verify of a changed message did not raise KMSInvalidSignatureException")

    return run


RSA = kms.create_key(KeySpec="RSA_3072", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]


def rsa_public():
    out, pub = public_key(RSA)
    equal(("RSA_3072", "SIGN_VERIFY"), (out["KeySpec"], out["KeyUsage"]), "GetPublicKey's KeySpec and KeyUsage")
    equal(3072, pub.key_size, "the public key's size")
    require("RSASSA_PSS_SHA_512" in out["SigningAlgorithms"], f"SigningAlgorithms {out['SigningAlgorithms']}")


check("create_key RSA_3072 SIGN_VERIFY; get_public_key: a 3072-bit RSA key", rsa_public)
for alg in ("RSASSA_PSS_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PSS_SHA_512"):
    check(f"RSA {alg}: Verify says SignatureValid, cryptography agrees, a changed message is refused",
          sign_verify(RSA, alg))

ECC = kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]


def ecc_public():
    out, pub = public_key(ECC)
    equal(["ECDSA_SHA_384"], out["SigningAlgorithms"], "SigningAlgorithms")
    require(isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp384r1", "not a P-384 key")


check("create_key ECC_NIST_P384 SIGN_VERIFY; get_public_key: a P-384 key", ecc_public)
check("ECC ECDSA_SHA_384: Verify says SignatureValid, cryptography agrees, a changed message is refused",
      sign_verify(ECC, "ECDSA_SHA_384"))


def ecc_digest():
    digest = hashlib.sha384(MSG).digest()
    sig = kms.sign(KeyId=ECC, Message=digest, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_384")["Signature"]
    _, pub = public_key(ECC)
    pub.verify(sig, digest, ec.ECDSA(utils.Prehashed(hashes.SHA384())))
    v = kms.verify(KeyId=ECC, Message=MSG, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_384", Signature=sig)
    equal(True, v["SignatureValid"], "SignatureValid")


check("ECC: sign a DIGEST; it verifies as the RAW message", ecc_digest)
check_fails("sign a DIGEST of the wrong length: ValidationException", "ValidationException",
            lambda: kms.sign(KeyId=ECC, Message=b"\x01" * 32, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_384"))
check_fails("sign with the symmetric key: InvalidKeyUsageException", "InvalidKeyUsageException",
            lambda: kms.sign(KeyId=KEY, Message=MSG, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256"))
check_fails("encrypt with the ECC signing key: InvalidKeyUsageException", "InvalidKeyUsageException",
            lambda: kms.encrypt(KeyId=ECC, Plaintext=PT))
check_fails("sign with the ECC key and an RSA algorithm: InvalidKeyUsageException", "InvalidKeyUsageException",
            lambda: kms.sign(KeyId=ECC, Message=MSG, MessageType="RAW", SigningAlgorithm="RSASSA_PSS_SHA_256"))

# ---- aliases ----
ALIAS = f"alias/interop-boto3-{os.getpid()}"
ALIAS_ARN = f"arn:aws:kms:{region}:{ACCOUNT}:{ALIAS}"


def aliases_of(**kw):
    return [a for p in kms.get_paginator("list_aliases").paginate(**kw) for a in p["Aliases"]]


check("create_alias", lambda: kms.create_alias(AliasName=ALIAS, TargetKeyId=KEY))


def alias_listed():
    mine = [a for a in aliases_of() if a["AliasName"] == ALIAS]
    equal(1, len(mine), "aliases of that name")
    equal((KEY, ALIAS_ARN), (mine[0]["TargetKeyId"], mine[0]["AliasArn"]), "TargetKeyId and AliasArn")
    require(ALIAS in [a["AliasName"] for a in aliases_of(KeyId=ARN)], "list_aliases(KeyId=ARN) does not list it")
    require(ALIAS not in [a["AliasName"] for a in aliases_of(KeyId=KEY2)], "list_aliases(KeyId=KEY2) lists it")


check("list_aliases: the alias, its target and ARN; by KeyId", alias_listed)


def by_alias():
    equal(ARN, kms.describe_key(KeyId=ALIAS)["KeyMetadata"]["Arn"], "describe_key by alias")
    for name in (ALIAS, ALIAS_ARN):
        out = kms.encrypt(KeyId=name, Plaintext=PT, EncryptionContext=CTX)
        equal(ARN, out["KeyId"], f"encrypt by {name}: KeyId")
        state["ct.alias"] = out["CiphertextBlob"]
        equal(PT, kms.decrypt(KeyId=name, CiphertextBlob=out["CiphertextBlob"], EncryptionContext=CTX)["Plaintext"],
              f"decrypt by {name}")
    equal(ARN, kms.generate_data_key(KeyId=ALIAS, KeySpec="AES_256")["KeyId"], "generate_data_key by alias")


check("describe_key, encrypt, decrypt and generate_data_key by alias name and alias ARN", by_alias)
check_fails("create_alias again: AlreadyExistsException", "AlreadyExistsException",
            lambda: kms.create_alias(AliasName=ALIAS, TargetKeyId=KEY2))
check_fails("create_alias under alias/aws/: NotAuthorizedException", "NotAuthorizedException",
            lambda: kms.create_alias(AliasName="alias/aws/interop-boto3", TargetKeyId=KEY))
check_fails("create_alias for a missing key: NotFoundException", "NotFoundException",
            lambda: kms.create_alias(AliasName=ALIAS + "-x", TargetKeyId="00000000-0000-0000-0000-000000000000"))


def alias_update():
    kms.update_alias(AliasName=ALIAS, TargetKeyId=KEY2)
    out = kms.encrypt(KeyId=ALIAS, Plaintext=PT)
    equal(ARN.replace(KEY, KEY2), out["KeyId"], "encrypt by alias after the update: KeyId")


check("update_alias to the second key: the alias now encrypts with it", alias_update)
check_fails("update_alias to a signing key: ValidationException", "ValidationException",
            lambda: kms.update_alias(AliasName=ALIAS, TargetKeyId=RSA))


def alias_delete():
    kms.delete_alias(AliasName=ALIAS)
    require(ALIAS not in [a["AliasName"] for a in aliases_of()], "list_aliases still lists it")
    equal(PT, kms.decrypt(CiphertextBlob=state["ct.alias"], EncryptionContext=CTX)["Plaintext"],
          "what was encrypted by alias")


check("delete_alias: no longer listed; what it encrypted still decrypts", alias_delete)
check_fails("encrypt by the deleted alias: NotFoundException", "NotFoundException",
            lambda: kms.encrypt(KeyId=ALIAS, Plaintext=PT))
check_fails("delete_alias again: NotFoundException", "NotFoundException",
            lambda: kms.delete_alias(AliasName=ALIAS))

print(f"{SUITE}: {passed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
