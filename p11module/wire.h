/* wire.h: the ids of the functions that cross from C to Go in a frame,
 * and their items (docs/pkcs11-library.md). p11module/core/wire.go holds the
 * same list; a test checks that they agree. Request items come before "->",
 * reply items after it; "-" means none. C_Initialize's b is the
 * credentials a privileged parent kept (NULL for none), its e the reason of
 * a failure, for the host's log. */
#ifndef OPENHSM_WIRE_H
#define OPENHSM_WIRE_H

#define WIRE_INITIALIZE                 1 /* u b -> e */
#define WIRE_FINALIZE                   2 /* - */
#define WIRE_GETINFO                    3 /* -> s */
#define WIRE_GETSLOTLIST                4 /* u h -> h */
#define WIRE_GETSLOTINFO                5 /* u -> s */
#define WIRE_GETTOKENINFO               6 /* u -> s */
#define WIRE_GETMECHANISMLIST           7 /* u h -> h */
#define WIRE_GETMECHANISMINFO           8 /* u u -> s */
#define WIRE_INITTOKEN                  9 /* u b b */
#define WIRE_INITPIN                   10 /* u b */
#define WIRE_SETPIN                    11 /* u b b */
#define WIRE_OPENSESSION               12 /* u u -> p */
#define WIRE_CLOSESESSION              13 /* u */
#define WIRE_CLOSEALLSESSIONS          14 /* u */
#define WIRE_GETSESSIONINFO            15 /* u -> s */
#define WIRE_GETOPERATIONSTATE         16 /* u o -> o */
#define WIRE_SETOPERATIONSTATE         17 /* u b u u */
#define WIRE_LOGIN                     18 /* u u b */
#define WIRE_LOGOUT                    19 /* u */
#define WIRE_CREATEOBJECT              20 /* u t -> p */
#define WIRE_COPYOBJECT                21 /* u u t -> p */
#define WIRE_DESTROYOBJECT             22 /* u u */
#define WIRE_GETOBJECTSIZE             23 /* u u -> p */
#define WIRE_GETATTRIBUTEVALUE         24 /* u u g -> g */
#define WIRE_SETATTRIBUTEVALUE         25 /* u u t */
#define WIRE_FINDOBJECTSINIT           26 /* u t */
#define WIRE_FINDOBJECTS               27 /* u h -> h */
#define WIRE_FINDOBJECTSFINAL          28 /* u */
#define WIRE_ENCRYPTINIT               29 /* u m u */
#define WIRE_ENCRYPT                   30 /* u b o -> o */
#define WIRE_ENCRYPTUPDATE             31 /* u b o -> o */
#define WIRE_ENCRYPTFINAL              32 /* u o -> o */
#define WIRE_DECRYPTINIT               33 /* u m u */
#define WIRE_DECRYPT                   34 /* u b o -> o */
#define WIRE_DECRYPTUPDATE             35 /* u b o -> o */
#define WIRE_DECRYPTFINAL              36 /* u o -> o */
#define WIRE_DIGESTINIT                37 /* u m */
#define WIRE_DIGEST                    38 /* u b o -> o */
#define WIRE_DIGESTUPDATE              39 /* u b */
#define WIRE_DIGESTKEY                 40 /* u u */
#define WIRE_DIGESTFINAL               41 /* u o -> o */
#define WIRE_SIGNINIT                  42 /* u m u */
#define WIRE_SIGN                      43 /* u b o -> o */
#define WIRE_SIGNUPDATE                44 /* u b */
#define WIRE_SIGNFINAL                 45 /* u o -> o */
#define WIRE_SIGNRECOVERINIT           46 /* u m u */
#define WIRE_SIGNRECOVER               47 /* u b o -> o */
#define WIRE_VERIFYINIT                48 /* u m u */
#define WIRE_VERIFY                    49 /* u b b */
#define WIRE_VERIFYUPDATE              50 /* u b */
#define WIRE_VERIFYFINAL               51 /* u b */
#define WIRE_VERIFYRECOVERINIT         52 /* u m u */
#define WIRE_VERIFYRECOVER             53 /* u b o -> o */
#define WIRE_DIGESTENCRYPTUPDATE       54 /* u b o -> o */
#define WIRE_DECRYPTDIGESTUPDATE       55 /* u b o -> o */
#define WIRE_SIGNENCRYPTUPDATE         56 /* u b o -> o */
#define WIRE_DECRYPTVERIFYUPDATE       57 /* u b o -> o */
#define WIRE_GENERATEKEY               58 /* u m t -> p */
#define WIRE_GENERATEKEYPAIR           59 /* u m t t -> p p */
#define WIRE_WRAPKEY                   60 /* u m u u o -> o */
#define WIRE_UNWRAPKEY                 61 /* u m u b t -> p */
#define WIRE_DERIVEKEY                 62 /* u m u t -> p */
#define WIRE_SEEDRANDOM                63 /* u b */
#define WIRE_GENERATERANDOM            64 /* u u -> b */
#define WIRE_LOGINUSER                 65 /* u u b b */
#define WIRE_SESSIONCANCEL             66 /* u u */

/* Message-based functions (v3.0), ids 70 to 89. x is a message parameter
 * (pParameter, ulParameterLen, flattened by its size: see frame.h), y the
 * parameter outputs written back into it (a generated IV, a tag). */
#define WIRE_MESSAGEENCRYPTINIT        70 /* u u x u */
#define WIRE_ENCRYPTMESSAGE            71 /* u x b b o -> o y */
#define WIRE_ENCRYPTMESSAGEBEGIN       72 /* u x b -> y */
#define WIRE_ENCRYPTMESSAGENEXT        73 /* u x b o u -> o y */
#define WIRE_MESSAGEENCRYPTFINAL       74 /* u */
#define WIRE_MESSAGEDECRYPTINIT        75 /* u u x u */
#define WIRE_DECRYPTMESSAGE            76 /* u x b b o -> o */
#define WIRE_DECRYPTMESSAGEBEGIN       77 /* u x b */
#define WIRE_DECRYPTMESSAGENEXT        78 /* u x b o u -> o */
#define WIRE_MESSAGEDECRYPTFINAL       79 /* u */
#define WIRE_MESSAGESIGNINIT           80 /* u m u */
#define WIRE_SIGNMESSAGE               81 /* u x b o -> o */
#define WIRE_SIGNMESSAGEBEGIN          82 /* u x */
#define WIRE_SIGNMESSAGENEXT           83 /* u x b o u -> o */
#define WIRE_MESSAGESIGNFINAL          84 /* u */
#define WIRE_MESSAGEVERIFYINIT         85 /* u m u */
#define WIRE_VERIFYMESSAGE             86 /* u x b b */
#define WIRE_VERIFYMESSAGEBEGIN        87 /* u x */
#define WIRE_VERIFYMESSAGENEXT         88 /* u x b b */
#define WIRE_MESSAGEVERIFYFINAL        89 /* u */

/* Operation life cycle and slot events: ids 96-99. */
#define WIRE_WAITFORSLOTEVENT          96 /* u u -> p */

/* PKCS#11 v3.2 key encapsulation (the post-quantum block, 90-95). */
#define WIRE_ENCAPSULATEKEY            90 /* u m u t o -> o p */
#define WIRE_DECAPSULATEKEY            91 /* u m u t b -> p */

#define WIRE_MAX_FUNCTION 96

/* The in-process C_Initialize answers this when the config file asks for
 * the helper ([pkcs11] force_helper): C then starts the helper and sends
 * C_Initialize there. It never reaches an application. */
#define WIRE_RV_USE_HELPER 0xC8454C50UL

#endif
