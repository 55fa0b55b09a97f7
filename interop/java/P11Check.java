// P11Check: Java's SunPKCS11 provider over the openhsm PKCS#11 library.
//
//   java --add-modules jdk.crypto.cryptoki \
//        --add-exports jdk.crypto.cryptoki/sun.security.pkcs11.wrapper=ALL-UNNAMED \
//        -cp DIR P11Check CONFIG SLOT RSA_ALIAS EC_ALIAS TAG
//
// CONFIG is a SunPKCS11 configuration file, SLOT the slot ID it names,
// RSA_ALIAS and EC_ALIAS key pairs already in the token (made by keytool
// -genkeypair, so each has a certificate), TAG a short word that keeps the
// names of token objects this run makes apart from another run's. The PIN
// is read from the environment variable P11_PIN and never printed.
//
// Every private- and secret-key operation runs in the HSM through the
// SunPKCS11 provider, except two that its public API does not offer (OAEP
// decryption, reading key attributes), which go through the JDK's PKCS#11
// wrapper under it (P11Wrapper.java). Every result is checked against the
// JDK's software providers (SunJCE, SunRsaSign, SunEC). Prints one line per
// check ("ok   NAME" or "FAIL NAME: why"), "note ..." lines, and
// "P11Check: N passed, M failed"; exits 1 if any check failed.
import java.nio.charset.StandardCharsets;
import java.security.*;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.*;
import java.util.*;
import javax.crypto.*;
import javax.crypto.spec.*;

public class P11Check {
    static int pass, fail;
    static Provider p11;
    static final SecureRandom rnd = new SecureRandom();

    interface Body { void run() throws Exception; }

    static void check(String name, Body b) {
        try {
            b.run();
            pass++;
            System.out.println("ok   " + name);
        } catch (Throwable t) {
            fail++;
            StringBuilder sb = new StringBuilder(t.toString());
            for (Throwable c = t.getCause(); c != null; c = c.getCause()) sb.append(" <- ").append(c);
            System.out.println("FAIL " + name + ": " + sb);
            if (System.getenv("P11CHECK_TRACE") != null) t.printStackTrace(System.out);
        }
    }

    static void must(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static byte[] bytes(int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) sb.append(String.format("%02x", x));
        return sb.toString();
    }

    static void same(byte[] want, byte[] got, String what) {
        if (!Arrays.equals(want, got))
            throw new AssertionError(what + ": want " + (want == null ? "null" : hex(want))
                    + " got " + (got == null ? "null" : hex(got)));
    }

    static void mustThrow(Class<? extends Throwable> c, String what, Body b) {
        try {
            b.run();
        } catch (Throwable t) {
            if (c.isInstance(t)) return;
            throw new AssertionError(what + ": want " + c.getSimpleName() + ", got " + t, t);
        }
        throw new AssertionError(what + ": want " + c.getSimpleName() + ", got no error");
    }

    // The key material is in the HSM: the provider's key objects must not
    // hand it out.
    static void notExtractable(Key k, String what) {
        must(k.getClass().getName().startsWith("sun.security.pkcs11."), what + " is not a PKCS#11 key: " + k.getClass());
        must(k.getEncoded() == null, what + ": getEncoded() gave key material");
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: P11Check CONFIG SLOT RSA_ALIAS EC_ALIAS TAG");
            System.exit(2);
        }
        String cfg = args[0];
        long slot = Long.parseLong(args[1]);
        String rsaAlias = args[2], ecAlias = args[3], tag = args[4];
        String pinEnv = System.getenv("P11_PIN");
        if (pinEnv == null || pinEnv.isEmpty()) {
            System.err.println("P11Check: set P11_PIN");
            System.exit(2);
        }
        char[] pin = pinEnv.toCharArray();

        p11 = Security.getProvider("SunPKCS11").configure(cfg);
        Security.addProvider(p11);
        KeyStore ks = KeyStore.getInstance("PKCS11", p11);

        check("keystore: load (C_Login with the PIN)", () -> ks.load(null, pin));

        // The transport: with OPENHSM_P11_FORCE_HELPER=1 the library runs
        // every call in its helper, a child process of this JVM; without it,
        // in the JVM itself.
        boolean forced = "1".equals(System.getenv("OPENHSM_P11_FORCE_HELPER"));
        System.out.println("note JVM pid " + ProcessHandle.current().pid());
        check("transport: " + (forced ? "one openhsm-p11-helper child process (forced helper mode)"
                : "in process, no helper child"), () -> {
            List<String> helpers = new ArrayList<>();
            ProcessHandle.current().children().forEach(c -> c.info().command()
                    .filter(cmd -> cmd.endsWith("/openhsm-p11-helper"))
                    .ifPresent(cmd -> helpers.add(c.pid() + " " + cmd)));
            must(helpers.size() == (forced ? 1 : 0), "helper children: " + helpers);
            if (forced) System.out.println("note helper " + helpers.get(0));
        });

        // ---- the keytool-made key pairs -------------------------------------
        Map<String, PrivateKey> priv = new HashMap<>();
        Map<String, PublicKey> pub = new HashMap<>();
        for (String[] a : new String[][] {{rsaAlias, "RSA"}, {ecAlias, "EC"}}) {
            check("keystore: " + a[0] + " is a PrivateKeyEntry with its certificate", () -> {
                must(ks.containsAlias(a[0]), "no alias " + a[0] + " in " + Collections.list(ks.aliases()));
                must(ks.isKeyEntry(a[0]), a[0] + " is not a key entry");
                KeyStore.Entry e = ks.getEntry(a[0], null);
                must(e instanceof KeyStore.PrivateKeyEntry, a[0] + " is " + e.getClass().getSimpleName());
                KeyStore.PrivateKeyEntry pe = (KeyStore.PrivateKeyEntry) e;
                must(pe.getPrivateKey().getAlgorithm().equals(a[1]), "algorithm " + pe.getPrivateKey().getAlgorithm());
                notExtractable(pe.getPrivateKey(), a[0]);
                X509Certificate c = (X509Certificate) pe.getCertificate();
                must(c.getSubjectX500Principal().getName().equals("CN=" + a[0]), "subject " + c.getSubjectX500Principal());
                // keytool self-signed it with the HSM key: check that with software.
                c.verify(c.getPublicKey(), a[1].equals("RSA") ? "SunRsaSign" : "SunEC");
                Certificate[] chain = ks.getCertificateChain(a[0]);
                must(chain != null && chain.length == 1, "chain " + Arrays.toString(chain));
                priv.put(a[0], pe.getPrivateKey());
                // The public key, re-made by the software provider from the
                // certificate, so that verification is all software.
                String kf = a[1];
                pub.put(a[0], KeyFactory.getInstance(kf, a[1].equals("RSA") ? "SunRsaSign" : "SunEC")
                        .generatePublic(new X509EncodedKeySpec(c.getPublicKey().getEncoded())));
            });
        }
        // keytool's keys were generated in the HSM (C_GenerateKeyPair, a
        // session key) and copied to the token (C_CopyObject). PKCS#11: a key
        // generated on the token, or copied from one, has CKA_LOCAL true, and
        // a key that was always sensitive and never extractable says so.
        for (String[] a : new String[][] {{rsaAlias, "0"}, {ecAlias, "4160"}}) { // CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_EC_KEY_PAIR_GEN
            check("attributes of " + a[0] + "'s private key (JDK PKCS#11 wrapper): LOCAL, ALWAYS_SENSITIVE, NEVER_EXTRACTABLE, KEY_GEN_MECHANISM", () -> {
                Map<String, Long> which = new LinkedHashMap<>();
                which.put("CKA_TOKEN", 0x1L);
                which.put("CKA_PRIVATE", 0x2L);
                which.put("CKA_SENSITIVE", 0x103L);
                which.put("CKA_EXTRACTABLE", 0x162L);
                which.put("CKA_LOCAL", 0x163L);
                which.put("CKA_NEVER_EXTRACTABLE", 0x164L);
                which.put("CKA_ALWAYS_SENSITIVE", 0x165L);
                which.put("CKA_KEY_GEN_MECHANISM", 0x166L);
                Map<String, Object> got = P11Wrapper.attributes(cfgLibrary(cfg), slot, a[0], which);
                Map<String, Object> want = new LinkedHashMap<>();
                want.put("CKA_TOKEN", true);
                want.put("CKA_PRIVATE", true);
                want.put("CKA_SENSITIVE", true);
                want.put("CKA_EXTRACTABLE", false);
                want.put("CKA_LOCAL", true);
                want.put("CKA_NEVER_EXTRACTABLE", true);
                want.put("CKA_ALWAYS_SENSITIVE", true);
                want.put("CKA_KEY_GEN_MECHANISM", Long.parseLong(a[1]));
                List<String> bad = new ArrayList<>();
                for (String k : want.keySet())
                    if (!want.get(k).equals(got.get(k))) bad.add(k + "=" + got.get(k) + " (want " + want.get(k) + ")");
                must(bad.isEmpty(), String.join(", ", bad));
            });
        }
        PrivateKey rsaPriv = priv.get(rsaAlias), ecPriv = priv.get(ecAlias);
        PublicKey rsaPub = pub.get(rsaAlias), ecPub = pub.get(ecAlias);
        byte[] msg = "openhsm: the quick brown fox jumps over the lazy dog".getBytes(StandardCharsets.UTF_8);

        // ---- signatures ------------------------------------------------------
        check("SHA256withRSA (PKCS#1 v1.5): HSM signs, SunRsaSign verifies", () -> {
            Signature s = Signature.getInstance("SHA256withRSA", p11);
            s.initSign(rsaPriv);
            s.update(msg, 0, 10);
            s.update(msg, 10, msg.length - 10);
            byte[] sig = s.sign();
            must(sig.length == 256, "signature length " + sig.length);
            Signature v = Signature.getInstance("SHA256withRSA", "SunRsaSign");
            v.initVerify(rsaPub);
            v.update(msg);
            must(v.verify(sig), "SunRsaSign rejects the HSM's signature");
            // and not for other data
            v.initVerify(rsaPub);
            v.update("other".getBytes());
            must(!v.verify(sig), "SunRsaSign accepts the signature for other data");
        });
        check("SHA256withRSA: HSM verifies (C_Verify), and rejects a changed signature", () -> {
            Signature s = Signature.getInstance("SHA256withRSA", p11);
            s.initSign(rsaPriv);
            s.update(msg);
            byte[] sig = s.sign();
            Signature v = Signature.getInstance("SHA256withRSA", p11);
            v.initVerify(rsaPub);
            v.update(msg);
            must(v.verify(sig), "the HSM rejects its own signature");
            sig[17] ^= 1;
            v.initVerify(rsaPub);
            v.update(msg);
            must(!v.verify(sig), "the HSM accepts a changed signature");
        });
        PSSParameterSpec pss = new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1);
        for (String alg : new String[] {"RSASSA-PSS", "SHA256withRSASSA-PSS"}) {
            check(alg + " (SHA-256, MGF1-SHA256, salt 32): HSM signs, SunRsaSign verifies", () -> {
                Signature s = Signature.getInstance(alg, p11);
                s.initSign(rsaPriv);
                s.setParameter(pss);
                s.update(msg);
                byte[] sig = s.sign();
                Signature v = Signature.getInstance("RSASSA-PSS", "SunRsaSign");
                v.initVerify(rsaPub);
                v.setParameter(pss);
                v.update(msg);
                must(v.verify(sig), "SunRsaSign rejects the HSM's PSS signature");
                // A salt of 32 bytes: with salt 20 the same signature must fail.
                v.initVerify(rsaPub);
                v.setParameter(new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 20, 1));
                v.update(msg);
                must(!v.verify(sig), "SunRsaSign accepts it with salt 20");
                // The HSM verifies its own PSS signature too (C_Verify with
                // CK_RSA_PKCS_PSS_PARAMS).
                Signature hv = Signature.getInstance(alg, p11);
                hv.initVerify(rsaPub);
                hv.setParameter(pss);
                hv.update(msg);
                must(hv.verify(sig), "the HSM rejects its own PSS signature");
            });
        }
        for (String alg : new String[] {"SHA256withECDSA", "SHA256withECDSAinP1363Format"}) {
            check(alg + ": HSM signs, SunEC verifies", () -> {
                Signature s = Signature.getInstance(alg, p11);
                s.initSign(ecPriv);
                s.update(msg);
                byte[] sig = s.sign();
                if (alg.endsWith("P1363Format")) must(sig.length == 64, "P1363 signature length " + sig.length);
                Signature v = Signature.getInstance(alg, "SunEC");
                v.initVerify(ecPub);
                v.update(msg);
                must(v.verify(sig), "SunEC rejects the HSM's ECDSA signature");
                v.initVerify(ecPub);
                v.update("other".getBytes());
                must(!v.verify(sig), "SunEC accepts it for other data");
            });
        }
        check("SHA256withECDSA: HSM verifies a SunEC signature (key pair made in software)", () -> {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC", "SunEC");
            g.initialize(new ECGenParameterSpec("secp256r1"));
            KeyPair kp = g.generateKeyPair();
            Signature s = Signature.getInstance("SHA256withECDSA", "SunEC");
            s.initSign(kp.getPrivate());
            s.update(msg);
            byte[] sig = s.sign();
            Signature v = Signature.getInstance("SHA256withECDSA", p11);
            v.initVerify(kp.getPublic());
            v.update(msg);
            must(v.verify(sig), "the HSM rejects SunEC's signature");
        });
        check("SHA256withRSA and RSASSA-PSS: HSM verifies SunRsaSign signatures (key pair made in software)", () -> {
            KeyPairGenerator g = KeyPairGenerator.getInstance("RSA", "SunRsaSign");
            g.initialize(2048);
            KeyPair kp = g.generateKeyPair();
            Signature s = Signature.getInstance("SHA256withRSA", "SunRsaSign");
            s.initSign(kp.getPrivate());
            s.update(msg);
            byte[] sig = s.sign();
            Signature v = Signature.getInstance("SHA256withRSA", p11);
            v.initVerify(kp.getPublic());
            v.update(msg);
            must(v.verify(sig), "PKCS#1 v1.5: the HSM rejects SunRsaSign's signature");
            s = Signature.getInstance("RSASSA-PSS", "SunRsaSign");
            s.initSign(kp.getPrivate());
            s.setParameter(pss);
            s.update(msg);
            sig = s.sign();
            v = Signature.getInstance("RSASSA-PSS", p11);
            v.initVerify(kp.getPublic());
            v.setParameter(pss);
            v.update(msg);
            must(v.verify(sig), "PSS: the HSM rejects SunRsaSign's signature");
        });
        check("KeyPairGenerator RSA 2048 and EC P-256 in the HSM (session keys): sign, software verifies", () -> {
            KeyPairGenerator g = KeyPairGenerator.getInstance("RSA", p11);
            g.initialize(2048);
            KeyPair kp = g.generateKeyPair();
            notExtractable(kp.getPrivate(), "generated RSA private key");
            must(((RSAPublicKey) kp.getPublic()).getModulus().bitLength() == 2048, "modulus size");
            Signature s = Signature.getInstance("SHA256withRSA", p11);
            s.initSign(kp.getPrivate());
            s.update(msg);
            byte[] sig = s.sign();
            PublicKey sp = KeyFactory.getInstance("RSA", "SunRsaSign").generatePublic(new X509EncodedKeySpec(kp.getPublic().getEncoded()));
            Signature v = Signature.getInstance("SHA256withRSA", "SunRsaSign");
            v.initVerify(sp);
            v.update(msg);
            must(v.verify(sig), "RSA: SunRsaSign rejects it");

            g = KeyPairGenerator.getInstance("EC", p11);
            g.initialize(new ECGenParameterSpec("secp256r1"));
            kp = g.generateKeyPair();
            notExtractable(kp.getPrivate(), "generated EC private key");
            must(((ECPublicKey) kp.getPublic()).getParams().getCurve().getField().getFieldSize() == 256, "curve size");
            s = Signature.getInstance("SHA256withECDSA", p11);
            s.initSign(kp.getPrivate());
            s.update(msg);
            sig = s.sign();
            sp = KeyFactory.getInstance("EC", "SunEC").generatePublic(new X509EncodedKeySpec(kp.getPublic().getEncoded()));
            v = Signature.getInstance("SHA256withECDSA", "SunEC");
            v.initVerify(sp);
            v.update(msg);
            must(v.verify(sig), "EC: SunEC rejects it");
        });

        // ---- RSA decryption --------------------------------------------------
        // SunPKCS11 (JDK 17) offers RSA/ECB/PKCS1Padding and RSA/ECB/NoPadding,
        // but no OAEP cipher. OAEP is checked two ways: CKM_RSA_PKCS_OAEP
        // through the JDK's own PKCS#11 wrapper (the layer under SunPKCS11),
        // and raw RSA (CKM_RSA_X_509) in the HSM through the provider with
        // the OAEP decoding done here.
        check("RSA/ECB/PKCS1Padding: SunJCE encrypts, HSM decrypts", () -> {
            byte[] pt = bytes(100);
            Cipher e = Cipher.getInstance("RSA/ECB/PKCS1Padding", "SunJCE");
            e.init(Cipher.ENCRYPT_MODE, rsaPub);
            byte[] ct = e.doFinal(pt);
            Cipher d = Cipher.getInstance("RSA/ECB/PKCS1Padding", p11);
            d.init(Cipher.DECRYPT_MODE, rsaPriv);
            same(pt, d.doFinal(ct), "plaintext");
        });
        OAEPParameterSpec oaep256 = new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, PSource.PSpecified.DEFAULT);
        OAEPParameterSpec oaepJava = new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA1, PSource.PSpecified.DEFAULT);
        // If a later JDK offers OAEP in SunPKCS11, check it too.
        boolean oaepCipher = false;
        try {
            Cipher.getInstance("RSA/ECB/OAEPWithSHA-256AndMGF1Padding", p11);
            oaepCipher = true;
        } catch (NoSuchAlgorithmException | NoSuchPaddingException e) {
            System.out.println("note SunPKCS11 has no RSA/ECB/OAEPWithSHA-256AndMGF1Padding Cipher (" + e.getMessage()
                    + "): OAEP is checked through the JDK's PKCS#11 wrapper and through raw RSA");
        }
        if (oaepCipher) {
            check("RSA/ECB/OAEPWithSHA-256AndMGF1Padding (MGF1-SHA256): SunJCE encrypts, SunPKCS11 decrypts", () -> {
                byte[] pt = bytes(64);
                Cipher e = Cipher.getInstance("RSA/ECB/OAEPWithSHA-256AndMGF1Padding", "SunJCE");
                e.init(Cipher.ENCRYPT_MODE, rsaPub, oaep256);
                byte[] ct = e.doFinal(pt);
                Cipher d = Cipher.getInstance("RSA/ECB/OAEPWithSHA-256AndMGF1Padding", p11);
                d.init(Cipher.DECRYPT_MODE, rsaPriv, oaep256);
                same(pt, d.doFinal(ct), "plaintext");
            });
        }
        for (Object[] o : new Object[][] {{oaep256, "MGF1-SHA256"}, {oaepJava, "MGF1-SHA1, Java's default for OAEPWithSHA-256AndMGF1Padding"}}) {
            OAEPParameterSpec spec = (OAEPParameterSpec) o[0];
            check("RSA OAEP SHA-256 (" + o[1] + "): SunJCE encrypts, HSM raw RSA (RSA/ECB/NoPadding) + OAEP decode", () -> {
                byte[] pt = bytes(64);
                Cipher e = Cipher.getInstance("RSA/ECB/OAEPWithSHA-256AndMGF1Padding", "SunJCE");
                e.init(Cipher.ENCRYPT_MODE, rsaPub, spec);
                byte[] ct = e.doFinal(pt);
                Cipher d = Cipher.getInstance("RSA/ECB/NoPadding", p11);
                d.init(Cipher.DECRYPT_MODE, rsaPriv);
                byte[] em = d.doFinal(ct);
                String mgfHash = ((MGF1ParameterSpec) spec.getMGFParameters()).getDigestAlgorithm();
                same(pt, oaepDecode(em, 256, "SHA-256", mgfHash), "plaintext");
            });
        }
        check("RSA OAEP SHA-256/MGF1-SHA256 via CKM_RSA_PKCS_OAEP (JDK PKCS#11 wrapper): SunJCE encrypts, HSM decrypts", () -> {
            byte[] pt = bytes(64);
            Cipher e = Cipher.getInstance("RSA/ECB/OAEPWithSHA-256AndMGF1Padding", "SunJCE");
            e.init(Cipher.ENCRYPT_MODE, rsaPub, oaep256);
            byte[] ct = e.doFinal(pt);
            same(pt, P11Wrapper.oaepDecrypt(cfgLibrary(cfg), slot, rsaAlias, ct), "plaintext");
        });

        // ---- AES -------------------------------------------------------------
        SecretKey[] aesHolder = new SecretKey[1];
        check("KeyGenerator AES-256 in the HSM (session key, not extractable)", () -> {
            KeyGenerator g = KeyGenerator.getInstance("AES", p11);
            g.init(256);
            SecretKey k = g.generateKey();
            must(k.getAlgorithm().equals("AES"), "algorithm " + k.getAlgorithm());
            notExtractable(k, "AES key");
            aesHolder[0] = k;
        });
        SecretKey aes = aesHolder[0];
        check("AES/GCM/NoPadding (tag 128, IV 12, AAD): HSM round trip, tamper rejected", () -> {
            byte[] iv = bytes(12), aad = bytes(20);
            for (int n : new int[] {0, 1, 16, 1000}) {
                byte[] pt = bytes(n);
                Cipher e = Cipher.getInstance("AES/GCM/NoPadding", p11);
                e.init(Cipher.ENCRYPT_MODE, aes, new GCMParameterSpec(128, iv));
                e.updateAAD(aad);
                byte[] ct = e.doFinal(pt);
                must(ct.length == n + 16, "ciphertext length " + ct.length + " for " + n);
                Cipher d = Cipher.getInstance("AES/GCM/NoPadding", p11);
                d.init(Cipher.DECRYPT_MODE, aes, new GCMParameterSpec(128, iv));
                d.updateAAD(aad);
                same(pt, d.doFinal(ct), "plaintext (" + n + " bytes)");
                ct[ct.length - 1] ^= 1;
                Cipher d2 = Cipher.getInstance("AES/GCM/NoPadding", p11);
                d2.init(Cipher.DECRYPT_MODE, aes, new GCMParameterSpec(128, iv));
                d2.updateAAD(aad);
                mustThrow(AEADBadTagException.class, "changed tag", () -> d2.doFinal(ct));
                iv = bytes(12); // GCM: a fresh IV for each encryption with the key
            }
        });
        check("AES/GCM/NoPadding: multi-part update()+doFinal() in the HSM", () -> {
            byte[] iv = bytes(12), pt = bytes(100);
            Cipher e = Cipher.getInstance("AES/GCM/NoPadding", p11);
            e.init(Cipher.ENCRYPT_MODE, aes, new GCMParameterSpec(128, iv));
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            for (int off = 0; off < pt.length; off += 33) {
                byte[] u = e.update(pt, off, Math.min(33, pt.length - off));
                if (u != null) out.write(u);
            }
            out.write(e.doFinal());
            byte[] ct = out.toByteArray();
            Cipher d = Cipher.getInstance("AES/GCM/NoPadding", p11);
            d.init(Cipher.DECRYPT_MODE, aes, new GCMParameterSpec(128, iv));
            same(pt, d.doFinal(ct), "plaintext");
        });
        check("AES/CBC/PKCS5Padding: HSM round trip (one-shot and multi-part)", () -> {
            for (int n : new int[] {0, 15, 16, 17, 1000}) {
                byte[] iv = bytes(16), pt = bytes(n);
                Cipher e = Cipher.getInstance("AES/CBC/PKCS5Padding", p11);
                e.init(Cipher.ENCRYPT_MODE, aes, new IvParameterSpec(iv));
                byte[] ct = e.doFinal(pt);
                must(ct.length == (n / 16 + 1) * 16, "ciphertext length " + ct.length + " for " + n);
                Cipher d = Cipher.getInstance("AES/CBC/PKCS5Padding", p11);
                d.init(Cipher.DECRYPT_MODE, aes, new IvParameterSpec(iv));
                same(pt, d.doFinal(ct), "one-shot plaintext (" + n + ")");
                // multi-part decryption in pieces of 7 bytes
                d.init(Cipher.DECRYPT_MODE, aes, new IvParameterSpec(iv));
                java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
                for (int off = 0; off < ct.length; off += 7) {
                    byte[] u = d.update(ct, off, Math.min(7, ct.length - off));
                    if (u != null) out.write(u);
                }
                out.write(d.doFinal());
                same(pt, out.toByteArray(), "multi-part plaintext (" + n + ")");
            }
        });

        // Cross-checks with a known key. The HSM's own keys are not
        // extractable, so a known AES key is put into the HSM and the HSM's
        // output is compared with SunJCE's for the same key and IV. Two ways:
        // SecretKeyFactory on the PKCS#11 provider (C_CreateObject of a
        // session secret key), and KeyStore.setEntry (a token key).
        byte[] kAES = bytes(32);
        SecretKeySpec kAESspec = new SecretKeySpec(kAES, "AES");
        SecretKey[] imported = new SecretKey[2];
        check("AES key imported with SecretKeyFactory(\"AES\", SunPKCS11) (session object)", () -> {
            SecretKey k = SecretKeyFactory.getInstance("AES", p11).generateSecret(kAESspec);
            must(k.getClass().getName().startsWith("sun.security.pkcs11."), "not a PKCS#11 key: " + k.getClass());
            imported[0] = k;
        });
        // SunPKCS11 caches the session object it made for a SecretKeySpec
        // and hands it back on the next conversion of the same key, even to
        // KeyStore.setEntry (which then stores no token object): the
        // KeyStore path gets a key of its own.
        byte[] kAES2 = bytes(32);
        SecretKeySpec kAES2spec = new SecretKeySpec(kAES2, "AES");
        String skAlias = "jaes-" + tag;
        check("AES key imported with KeyStore.setEntry(SecretKeyEntry) (token object " + skAlias + ")", () -> {
            ks.setEntry(skAlias, new KeyStore.SecretKeyEntry(kAES2spec), null);
            must(ks.entryInstanceOf(skAlias, KeyStore.SecretKeyEntry.class), skAlias + " is not a SecretKeyEntry");
            Key k = ks.getKey(skAlias, null);
            must(k.getClass().getName().startsWith("sun.security.pkcs11."), "not a PKCS#11 key: " + k.getClass());
            must(k.getAlgorithm().equals("AES"), "algorithm " + k.getAlgorithm());
            imported[1] = (SecretKey) k;
        });
        String[] how = {"SecretKeyFactory", "KeyStore"};
        SecretKeySpec[] known = {kAESspec, kAES2spec};
        for (int i = 0; i < 2; i++) {
            int ii = i;
            check("AES/GCM/NoPadding: HSM (key via " + how[i] + ") = SunJCE, both ways", () -> {
                must(imported[ii] != null, "no imported key");
                byte[] iv = bytes(12), aad = bytes(13), pt = bytes(77);
                Cipher h = Cipher.getInstance("AES/GCM/NoPadding", p11);
                h.init(Cipher.ENCRYPT_MODE, imported[ii], new GCMParameterSpec(128, iv));
                h.updateAAD(aad);
                byte[] hct = h.doFinal(pt);
                Cipher s = Cipher.getInstance("AES/GCM/NoPadding", "SunJCE");
                s.init(Cipher.ENCRYPT_MODE, known[ii], new GCMParameterSpec(128, iv));
                s.updateAAD(aad);
                byte[] sct = s.doFinal(pt);
                same(sct, hct, "HSM ciphertext||tag vs SunJCE");
                // and the HSM decrypts what SunJCE made with a new IV
                byte[] iv2 = bytes(12);
                s = Cipher.getInstance("AES/GCM/NoPadding", "SunJCE");
                s.init(Cipher.ENCRYPT_MODE, known[ii], new GCMParameterSpec(128, iv2));
                s.updateAAD(aad);
                byte[] sct2 = s.doFinal(pt);
                Cipher hd = Cipher.getInstance("AES/GCM/NoPadding", p11);
                hd.init(Cipher.DECRYPT_MODE, imported[ii], new GCMParameterSpec(128, iv2));
                hd.updateAAD(aad);
                same(pt, hd.doFinal(sct2), "HSM decryption of SunJCE's ciphertext");
            });
            check("AES/CBC/PKCS5Padding: HSM (key via " + how[i] + ") = SunJCE, both ways", () -> {
                must(imported[ii] != null, "no imported key");
                for (int n : new int[] {0, 31, 32, 100}) {
                    byte[] iv = bytes(16), pt = bytes(n);
                    Cipher h = Cipher.getInstance("AES/CBC/PKCS5Padding", p11);
                    h.init(Cipher.ENCRYPT_MODE, imported[ii], new IvParameterSpec(iv));
                    byte[] hct = h.doFinal(pt);
                    Cipher s = Cipher.getInstance("AES/CBC/PKCS5Padding", "SunJCE");
                    s.init(Cipher.ENCRYPT_MODE, known[ii], new IvParameterSpec(iv));
                    same(s.doFinal(pt), hct, "HSM ciphertext vs SunJCE (" + n + ")");
                    Cipher hd = Cipher.getInstance("AES/CBC/PKCS5Padding", p11);
                    hd.init(Cipher.DECRYPT_MODE, imported[ii], new IvParameterSpec(iv));
                    same(pt, hd.doFinal(hct), "HSM decryption (" + n + ")");
                }
            });
        }
        check("AES/CBC/PKCS5Padding multi-part encryption (update in pieces, doFinal) in the HSM = SunJCE", () -> {
            must(imported[0] != null, "no imported key");
            byte[] iv = bytes(16), pt = bytes(123);
            Cipher h = Cipher.getInstance("AES/CBC/PKCS5Padding", p11);
            h.init(Cipher.ENCRYPT_MODE, imported[0], new IvParameterSpec(iv));
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            for (int off = 0; off < pt.length; off += 10) {
                byte[] u = h.update(pt, off, Math.min(10, pt.length - off));
                if (u != null) out.write(u);
            }
            out.write(h.doFinal());
            Cipher s = Cipher.getInstance("AES/CBC/PKCS5Padding", "SunJCE");
            s.init(Cipher.ENCRYPT_MODE, kAESspec, new IvParameterSpec(iv));
            same(s.doFinal(pt), out.toByteArray(), "HSM vs SunJCE");
        });
        check("AES GCM and CBC with direct ByteBuffers (the provider's native-address path) = SunJCE", () -> {
            must(imported[0] != null, "no imported key");
            byte[] pt = bytes(300);
            for (String[] t : new String[][] {{"AES/GCM/NoPadding", "12"}, {"AES/CBC/PKCS5Padding", "16"}}) {
                byte[] iv = bytes(Integer.parseInt(t[1]));
                java.security.spec.AlgorithmParameterSpec ps = t[0].contains("GCM") ? new GCMParameterSpec(128, iv) : new IvParameterSpec(iv);
                Cipher h = Cipher.getInstance(t[0], p11);
                h.init(Cipher.ENCRYPT_MODE, imported[0], ps);
                java.nio.ByteBuffer in = java.nio.ByteBuffer.allocateDirect(pt.length);
                in.put(pt).flip();
                java.nio.ByteBuffer out = java.nio.ByteBuffer.allocateDirect(h.getOutputSize(pt.length));
                h.doFinal(in, out);
                out.flip();
                byte[] hct = new byte[out.remaining()];
                out.get(hct);
                Cipher s = Cipher.getInstance(t[0], "SunJCE");
                s.init(Cipher.ENCRYPT_MODE, kAESspec, ps);
                same(s.doFinal(pt), hct, t[0] + ": HSM vs SunJCE");
                Cipher hd = Cipher.getInstance(t[0], p11);
                hd.init(Cipher.DECRYPT_MODE, imported[0], ps);
                java.nio.ByteBuffer cin = java.nio.ByteBuffer.allocateDirect(hct.length);
                cin.put(hct).flip();
                java.nio.ByteBuffer pout = java.nio.ByteBuffer.allocateDirect(hd.getOutputSize(hct.length));
                hd.doFinal(cin, pout);
                pout.flip();
                byte[] back = new byte[pout.remaining()];
                pout.get(back);
                same(pt, back, t[0] + ": HSM decryption");
            }
        });
        check("AES-128 GCM and CBC: Cipher.init with a raw SecretKeySpec (provider imports it) = SunJCE", () -> {
            SecretKeySpec k = new SecretKeySpec(bytes(16), "AES");
            byte[] iv = bytes(12), pt = bytes(50);
            Cipher h = Cipher.getInstance("AES/GCM/NoPadding", p11);
            h.init(Cipher.ENCRYPT_MODE, k, new GCMParameterSpec(128, iv));
            byte[] hct = h.doFinal(pt);
            Cipher s = Cipher.getInstance("AES/GCM/NoPadding", "SunJCE");
            s.init(Cipher.ENCRYPT_MODE, k, new GCMParameterSpec(128, iv));
            same(s.doFinal(pt), hct, "GCM: HSM vs SunJCE");
            byte[] iv16 = bytes(16);
            h = Cipher.getInstance("AES/CBC/PKCS5Padding", p11);
            h.init(Cipher.ENCRYPT_MODE, k, new IvParameterSpec(iv16));
            hct = h.doFinal(pt);
            s = Cipher.getInstance("AES/CBC/PKCS5Padding", "SunJCE");
            s.init(Cipher.ENCRYPT_MODE, k, new IvParameterSpec(iv16));
            same(s.doFinal(pt), hct, "HSM vs SunJCE");
        });
        check("KeyStore.deleteEntry(" + skAlias + ")", () -> {
            ks.deleteEntry(skAlias);
            must(!ks.containsAlias(skAlias), skAlias + " is still there");
        });

        // ---- HMAC ------------------------------------------------------------
        SecretKey[] hmacHolder = new SecretKey[1];
        check("KeyGenerator HmacSHA256 in the HSM (generic secret session key, not extractable)", () -> {
            KeyGenerator g = KeyGenerator.getInstance("HmacSHA256", p11);
            g.init(256);
            SecretKey k = g.generateKey();
            notExtractable(k, "HMAC key");
            hmacHolder[0] = k;
        });
        check("HmacSHA256 with the HSM key: deterministic, one-shot = multi-part, data-dependent", () -> {
            SecretKey k = hmacHolder[0];
            must(k != null, "no key");
            Mac m = Mac.getInstance("HmacSHA256", p11);
            m.init(k);
            byte[] a = m.doFinal(msg);
            must(a.length == 32, "MAC length " + a.length);
            m.update(msg, 0, 5);
            m.update(msg, 5, msg.length - 5);
            same(a, m.doFinal(), "multi-part MAC");
            must(!Arrays.equals(a, m.doFinal("other".getBytes())), "same MAC for other data");
            // A second key gives another MAC.
            KeyGenerator g = KeyGenerator.getInstance("HmacSHA256", p11);
            g.init(256);
            m.init(g.generateKey());
            must(!Arrays.equals(a, m.doFinal(msg)), "another key gives the same MAC");
        });
        byte[] kHMAC = bytes(32);
        SecretKeySpec kHMACspec = new SecretKeySpec(kHMAC, "HmacSHA256");
        check("HmacSHA256: HSM with a known key (Mac.init imports it as a generic secret) = SunJCE", () -> {
            for (int n : new int[] {0, 1, 64, 1000}) {
                byte[] d = bytes(n);
                Mac h = Mac.getInstance("HmacSHA256", p11);
                h.init(kHMACspec);
                Mac s = Mac.getInstance("HmacSHA256", "SunJCE");
                s.init(kHMACspec);
                same(s.doFinal(d), h.doFinal(d), "MAC of " + n + " bytes");
            }
        });
        String hkAlias = "jhmac-" + tag;
        SecretKeySpec kHMAC2spec = new SecretKeySpec(bytes(32), "HmacSHA256"); // not cached: see AES above
        check("HmacSHA256: HSM with a known key stored by KeyStore.setEntry (token object) = SunJCE", () -> {
            ks.setEntry(hkAlias, new KeyStore.SecretKeyEntry(kHMAC2spec), null);
            Key k = ks.getKey(hkAlias, null);
            must(k != null && k.getClass().getName().startsWith("sun.security.pkcs11."), "not a PKCS#11 key: " + k);
            Mac h = Mac.getInstance("HmacSHA256", p11);
            h.init(k);
            Mac s = Mac.getInstance("HmacSHA256", "SunJCE");
            s.init(kHMAC2spec);
            same(s.doFinal(msg), h.doFinal(msg), "MAC");
            ks.deleteEntry(hkAlias);
            must(!ks.containsAlias(hkAlias), hkAlias + " is still there after deleteEntry");
        });

        check("SecureRandom PKCS11 gives bytes", () -> {
            SecureRandom r = SecureRandom.getInstance("PKCS11", p11);
            byte[] a = new byte[32], b = new byte[32];
            r.nextBytes(a);
            r.nextBytes(b);
            must(!Arrays.equals(a, b) && !Arrays.equals(a, new byte[32]), "not random");
        });

        System.out.println("P11Check: " + pass + " passed, " + fail + " failed");
        System.exit(fail == 0 ? 0 : 1);
    }

    static String cfgLibrary(String cfg) throws Exception {
        for (String l : java.nio.file.Files.readAllLines(java.nio.file.Paths.get(cfg))) {
            String[] kv = l.split("=", 2);
            if (kv.length == 2 && kv[0].trim().equals("library")) return kv[1].trim();
        }
        throw new IllegalArgumentException("no library in " + cfg);
    }

    // oaepDecode is EME-OAEP decoding (RFC 8017, 7.1.2 step 3) of the raw
    // RSA output em for a k-byte modulus, empty label.
    static byte[] oaepDecode(byte[] em, int k, String hash, String mgfHash) throws Exception {
        if (em.length < k) { // a provider may drop leading zero bytes
            byte[] t = new byte[k];
            System.arraycopy(em, 0, t, k - em.length, em.length);
            em = t;
        }
        must(em.length == k, "raw RSA output is " + em.length + " bytes");
        MessageDigest md = MessageDigest.getInstance(hash);
        int h = md.getDigestLength();
        byte[] lHash = md.digest(new byte[0]);
        must(em[0] == 0, "first byte is not 0");
        byte[] seed = Arrays.copyOfRange(em, 1, 1 + h);
        byte[] db = Arrays.copyOfRange(em, 1 + h, k);
        xor(seed, mgf1(db, h, mgfHash));
        xor(db, mgf1(seed, db.length, mgfHash));
        must(Arrays.equals(Arrays.copyOf(db, h), lHash), "label hash differs");
        int i = h;
        while (i < db.length && db[i] == 0) i++;
        must(i < db.length && db[i] == 1, "no 0x01 separator");
        return Arrays.copyOfRange(db, i + 1, db.length);
    }

    static void xor(byte[] a, byte[] b) {
        for (int i = 0; i < a.length; i++) a[i] ^= b[i];
    }

    static byte[] mgf1(byte[] seed, int n, String hash) throws Exception {
        MessageDigest md = MessageDigest.getInstance(hash);
        byte[] out = new byte[n];
        for (int c = 0, off = 0; off < n; c++) {
            md.update(seed);
            md.update(new byte[] {(byte) (c >>> 24), (byte) (c >>> 16), (byte) (c >>> 8), (byte) c});
            byte[] d = md.digest();
            System.arraycopy(d, 0, out, off, Math.min(d.length, n - off));
            off += d.length;
        }
        return out;
    }
}
