// P11Wrapper reaches the token through the JDK's PKCS#11 wrapper
// (sun.security.pkcs11.wrapper), the layer SunPKCS11 itself calls, for what
// the provider's public API does not offer:
//
//   - decryption with CKM_RSA_PKCS_OAEP (SunPKCS11 in JDK 17 has no OAEP
//     Cipher);
//   - reading a private key's attributes (CKA_LOCAL, CKA_ALWAYS_SENSITIVE,
//     ...), which SunPKCS11 keeps to itself.
//
// It takes the module instance SunPKCS11 already loaded and initialised (the
// wrapper keeps one per library path), opens its own session on the slot,
// which shares the provider's login, and finds a private key by CKA_ID
// (keytool sets CKA_ID to the alias).
//
// Compile and run with
//   --add-modules jdk.crypto.cryptoki
//   --add-exports jdk.crypto.cryptoki/sun.security.pkcs11.wrapper=ALL-UNNAMED
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import sun.security.pkcs11.wrapper.CK_ATTRIBUTE;
import sun.security.pkcs11.wrapper.CK_MECHANISM;
import sun.security.pkcs11.wrapper.CK_RSA_PKCS_OAEP_PARAMS;
import sun.security.pkcs11.wrapper.PKCS11;
import sun.security.pkcs11.wrapper.PKCS11Exception;

final class P11Wrapper {
    static final long CKF_SERIAL_SESSION = 0x4;
    static final long CKA_CLASS = 0x0, CKA_ID = 0x102;
    static final long CKO_PRIVATE_KEY = 0x3;
    static final long CKM_RSA_PKCS_OAEP = 0x9, CKM_SHA256 = 0x250;
    static final long CKG_MGF1_SHA256 = 0x2, CKZ_DATA_SPECIFIED = 0x1;

    interface InSession<T> { T run(PKCS11 p, long session, long key) throws Exception; }

    static <T> T withPrivateKey(String library, long slot, String alias, InSession<T> f) throws Exception {
        PKCS11 p = PKCS11.getInstance(library, "C_GetFunctionList", null, true);
        long s = p.C_OpenSession(slot, CKF_SERIAL_SESSION, null, null);
        try {
            p.C_FindObjectsInit(s, new CK_ATTRIBUTE[] {
                new CK_ATTRIBUTE(CKA_CLASS, CKO_PRIVATE_KEY),
                new CK_ATTRIBUTE(CKA_ID, alias.getBytes(StandardCharsets.UTF_8)),
            });
            long[] h;
            try {
                h = p.C_FindObjects(s, 4);
            } finally {
                p.C_FindObjectsFinal(s);
            }
            if (h.length != 1) throw new AssertionError("C_FindObjects found " + Arrays.toString(h) + " for CKA_ID " + alias);
            return f.run(p, s, h[0]);
        } finally {
            p.C_CloseSession(s);
        }
    }

    // oaepDecrypt is C_Decrypt with CKM_RSA_PKCS_OAEP, SHA-256, MGF1-SHA256,
    // empty label.
    static byte[] oaepDecrypt(String library, long slot, String alias, byte[] ct) throws Exception {
        return withPrivateKey(library, slot, alias, (p, s, key) -> {
            CK_RSA_PKCS_OAEP_PARAMS op = new CK_RSA_PKCS_OAEP_PARAMS();
            op.hashAlg = CKM_SHA256;
            op.mgf = CKG_MGF1_SHA256;
            op.source = CKZ_DATA_SPECIFIED;
            op.pSourceData = null;
            CK_MECHANISM m = new CK_MECHANISM(CKM_RSA_PKCS_OAEP);
            m.pParameter = op;
            p.C_DecryptInit(s, m, key);
            byte[] out = new byte[512];
            int n = p.C_Decrypt(s, 0, ct, 0, ct.length, 0, out, 0, out.length);
            return Arrays.copyOf(out, n);
        });
    }

    // attributes reads the named attributes of the private key, one
    // C_GetAttributeValue each; a failure is given as "error: ...".
    static Map<String, Object> attributes(String library, long slot, String alias, Map<String, Long> which) throws Exception {
        return withPrivateKey(library, slot, alias, (p, s, key) -> {
            Map<String, Object> got = new LinkedHashMap<>();
            for (Map.Entry<String, Long> e : which.entrySet()) {
                CK_ATTRIBUTE[] t = {new CK_ATTRIBUTE(e.getValue())};
                try {
                    p.C_GetAttributeValue(s, key, t);
                    got.put(e.getKey(), t[0].pValue);
                } catch (PKCS11Exception x) {
                    got.put(e.getKey(), "error: " + x.getMessage());
                }
            }
            return got;
        });
    }
}
