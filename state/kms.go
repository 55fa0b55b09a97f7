package state

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"unicode"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/seal"
)

// The KMS's replicated state (docs/kms.md, "State"): keys, aliases and
// principals are rows of the meta table, each MACed under the domain key
// and bound to its meta key, so an edited store file is refused, not
// trusted; they travel in the snapshot stream with the rest of meta. Key
// material is not in these rows: every key version is one or two HSM
// objects of the crypto user KMSUser, made by the engine before the command
// and checked here like any new object.
//
// The actor of a KMS API command is a principal (KMSCommand.Principal),
// never a user: Command.Actor stays empty. Principal management is a crypto
// officer's (Command.Actor). The nodes' own upkeep (deletion windows,
// scheduled rotation, expired imported material) has no actor: apply
// decides from the command's time whether each change is due.

// KMSUser is the crypto user that owns every KMS key's material.
const KMSUser = "kmsuser"

// KMS ops.
const (
	OpKMSPrincipalCreate Op = "kms_principal_create" // Actor (CO), KMS.Principal, KMS.PrincipalRow; User: kmsuser when none exists
	OpKMSPrincipalDelete Op = "kms_principal_delete" // Actor (CO), KMS.Name
	OpKMSPrincipalRotate Op = "kms_principal_rotate" // Actor (CO), KMS.PrincipalRow (same name, new access key)
	OpKMSCreateKey       Op = "kms_create_key"       // KMS.Principal, KMS.Key, Objects (version 1; none for EXTERNAL)
	OpKMSUpdateKey       Op = "kms_update_key"       // KMS.Principal, KMS.Region, KMS.KeyID, KMS.Change and its fields
	OpKMSRotateKey       Op = "kms_rotate_key"       // KMS.Principal ("" for a scheduled rotation), KMS.Region, KMS.KeyID, Objects
	OpKMSImportParams    Op = "kms_import_params"    // KMS.Principal, KMS.Region, KMS.KeyID, KMS.Import, Objects (the wrapping key pair)
	OpKMSImportMaterial  Op = "kms_import_material"  // KMS.Principal, KMS.Region, KMS.KeyID, KMS.TokenHash, KMS.Expires, Objects (the material)
	OpKMSDeleteMaterial  Op = "kms_delete_material"  // KMS.Principal, KMS.Region, KMS.KeyID
	OpKMSAlias           Op = "kms_alias"            // KMS.Principal, KMS.Region, KMS.Change, KMS.Alias, KMS.KeyID
	OpKMSUpkeep          Op = "kms_upkeep"           // KMS.Keys ("region/id"): what the node believes is due
)

// Key states, as AWS names them.
const (
	KMSEnabled         = "Enabled"
	KMSDisabled        = "Disabled"
	KMSPendingDeletion = "PendingDeletion"
	KMSPendingImport   = "PendingImport"
)

// Key origins.
const (
	KMSOriginKMS      = "AWS_KMS"
	KMSOriginExternal = "EXTERNAL"
)

// kms_update_key changes (KMSCommand.Change).
const (
	KMSChangeEnable          = "enable"
	KMSChangeDisable         = "disable"
	KMSChangeDescription     = "description"
	KMSChangeSchedule        = "schedule_deletion"
	KMSChangeCancel          = "cancel_deletion"
	KMSChangeEnableRotation  = "enable_rotation"
	KMSChangeDisableRotation = "disable_rotation"
	KMSChangePolicy          = "put_policy"
	KMSChangeTag             = "tag"
	KMSChangeUntag           = "untag"
	// kms_alias changes.
	KMSAliasCreate = "create"
	KMSAliasUpdate = "update"
	KMSAliasDelete = "delete"
)

// Limits apply enforces, as AWS's quotas and rules state them.
const (
	KMSMinPendingDays      = 7
	KMSMaxPendingDays      = 30
	KMSMinRotationDays     = 90
	KMSMaxRotationDays     = 2560
	KMSMaxOnDemand         = 25 // RotateKeyOnDemand per key
	KMSMaxTags             = 50
	KMSImportTokenLifetime = 24 * 3600
	kmsMaxVersions         = 1 << 16
	kmsMaxUpkeepKeys       = 1000
	// KMSMaxAliases bounds one region's aliases.
	KMSMaxAliases = 10000
	day           = 86400
)

// KMSKeySpecs is every key spec and the key usages it may have; the first
// usage is the default. Only SYMMETRIC_DEFAULT keys rotate or take
// imported material here (AWS also imports asymmetric and HMAC material;
// this service does not, and says so: docs/kms.md).
var KMSKeySpecs = map[string][]string{
	"SYMMETRIC_DEFAULT": {"ENCRYPT_DECRYPT"},
	"RSA_2048":          {"ENCRYPT_DECRYPT", "SIGN_VERIFY"},
	"RSA_3072":          {"ENCRYPT_DECRYPT", "SIGN_VERIFY"},
	"RSA_4096":          {"ENCRYPT_DECRYPT", "SIGN_VERIFY"},
	"ECC_NIST_P256":     {"SIGN_VERIFY"},
	"ECC_NIST_P384":     {"SIGN_VERIFY"},
	"ECC_NIST_P521":     {"SIGN_VERIFY"},
	"ECC_SECG_P256K1":   {"SIGN_VERIFY"},
	"HMAC_224":          {"GENERATE_VERIFY_MAC"},
	"HMAC_256":          {"GENERATE_VERIFY_MAC"},
	"HMAC_384":          {"GENERATE_VERIFY_MAC"},
	"HMAC_512":          {"GENERATE_VERIFY_MAC"},
	// ML-DSA (FIPS 204), as AWS KMS has them: signing only.
	"ML_DSA_44": {"SIGN_VERIFY"},
	"ML_DSA_65": {"SIGN_VERIFY"},
	"ML_DSA_87": {"SIGN_VERIFY"},
}

// KMSKeyObjects is how many HSM objects one version of a key spec has: a
// key pair for RSA, ECC and ML-DSA, one secret key otherwise.
func KMSKeyObjects(spec string) int {
	if strings.HasPrefix(spec, "RSA_") || strings.HasPrefix(spec, "ECC_") || strings.HasPrefix(spec, "ML_DSA_") {
		return 2
	}
	return 1
}

// KMSCommand is the payload of a KMS command; which fields an op reads is
// listed with the op.
type KMSCommand struct {
	Principal    string        `json:"principal,omitempty"`
	Region       string        `json:"region,omitempty"`
	KeyID        string        `json:"key_id,omitempty"`
	Change       string        `json:"change,omitempty"`
	Key          *KMSKey       `json:"key,omitempty"`
	Description  string        `json:"description,omitempty"`
	Days         int           `json:"days,omitempty"`
	Policy       string        `json:"policy,omitempty"`
	Tags         []KMSTag      `json:"tags,omitempty"`
	TagKeys      []string      `json:"tag_keys,omitempty"`
	Alias        string        `json:"alias,omitempty"`
	Name         string        `json:"name,omitempty"`
	PrincipalRow *KMSPrincipal `json:"principal_row,omitempty"`
	Import       *KMSImport    `json:"import,omitempty"`
	TokenHash    []byte        `json:"token_hash,omitempty"`
	Expires      int64         `json:"expires,omitempty"`
	Keys         []string      `json:"keys,omitempty"`
	// Account is the cluster's account, for the ARNs of messages.
	Account string `json:"account,omitempty"`
	// Custom key stores (state/kms_stores.go).
	HSMCluster *KMSHSMCluster `json:"hsm_cluster,omitempty"`
	Store      *KMSKeyStore   `json:"store,omitempty"`
	// Access is what the serving node authorized for a principal's
	// command; apply decides it again at its index (state/kms_access.go).
	Access []KMSAccess `json:"access,omitempty"`
	// Grant and GrantID are kms_grant's (state/kms_grants.go).
	Grant   *KMSGrant `json:"grant,omitempty"`
	GrantID string    `json:"grant_id,omitempty"`
}

// KMSKey is a key's row.
type KMSKey struct {
	ID          string `json:"id"` // the key ID, a UUID
	Region      string `json:"region"`
	Account     string `json:"account"`
	Description string `json:"description,omitempty"`
	KeySpec     string `json:"key_spec"`
	KeyUsage    string `json:"key_usage"`
	Origin      string `json:"origin"`
	State       string `json:"state"`
	Created     int64  `json:"created"` // Unix seconds
	CreatedBy   string `json:"created_by,omitempty"`
	// DeletionDate and PendingDays are set while PendingDeletion.
	DeletionDate int64 `json:"deletion_date,omitempty"`
	PendingDays  int   `json:"pending_days,omitempty"`
	// Versions are the backing keys, oldest first; the last encrypts.
	// Objects of a version are its HSM objects ([secret] or [public,
	// private]); a version of imported material that was deleted has none.
	Versions []KMSKeyVersion `json:"versions"`
	// RotationDays is the automatic rotation period, 0 when off.
	RotationDays int      `json:"rotation_days,omitempty"`
	NextRotation int64    `json:"next_rotation,omitempty"`
	OnDemand     int      `json:"on_demand,omitempty"` // on-demand rotations done
	Tags         []KMSTag `json:"tags,omitempty"`
	Policy       string   `json:"policy"`
	// Imported material: its expiry (0: none), the MAC of the material
	// (reimport must bring the same), and the pending import parameters.
	MaterialExpires int64      `json:"material_expires,omitempty"`
	MaterialMAC     []byte     `json:"material_mac,omitempty"`
	Import          *KMSImport `json:"import,omitempty"`
	// CustomKeyStoreID names the custom key store that keeps the material
	// (Origin AWS_CLOUDHSM); its versions then have no objects here. A key
	// of Origin EXTERNAL_KEY_STORE has its inner layer's AES key here (its
	// versions' objects) and names its external key by XksKeyID.
	CustomKeyStoreID string `json:"custom_key_store_id,omitempty"`
	XksKeyID         string `json:"xks_key_id,omitempty"`
}

// KMSKeyVersion is one backing key.
type KMSKeyVersion struct {
	N       int      `json:"n"` // 1, 2, ...
	Objects []uint64 `json:"objects,omitempty"`
	Created int64    `json:"created"`
	// Rotation is "" for the first version, else AUTOMATIC or ON_DEMAND.
	Rotation string `json:"rotation,omitempty"`
}

// KMSTag is one tag.
type KMSTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// KMSImport is a key's pending import parameters: the wrapping key pair
// (HSM objects of KMSUser), the SHA-256 of the import token, and when the
// token expires.
type KMSImport struct {
	Objects   []uint64 `json:"objects"`
	TokenHash []byte   `json:"token_hash"`
	Expires   int64    `json:"expires"`
	Algorithm string   `json:"algorithm"`
	Spec      string   `json:"spec"`
}

// KMSAlias is an alias's row.
type KMSAlias struct {
	Name    string `json:"name"` // alias/...
	Region  string `json:"region"`
	KeyID   string `json:"key_id"`
	Created int64  `json:"created"`
	Updated int64  `json:"updated"`
}

// KMSPrincipal is a principal's row. Secret is sealed under the domain key
// (seal.Sealer.Seal with KMSSecretOwner), never stored in the clear.
type KMSPrincipal struct {
	Name        string `json:"name"`
	AccessKeyID string `json:"access_key_id"`
	Secret      []byte `json:"secret"`
	Created     int64  `json:"created"`
	// Policy is the principal's identity policy (an IAM policy document),
	// "" for none (state/kms_access.go).
	Policy string `json:"policy,omitempty"`
}

// KMSSecretOwner is the owner string a principal's secret is sealed to.
func KMSSecretOwner(accessKeyID string) string { return "kms principal " + accessKeyID }

// Meta keys of the rows.
const (
	KMSKeyPrefix       = "kms/key/"       // + region + "/" + key ID
	KMSAliasPrefix     = "kms/alias/"     // + region + "/" + alias name
	KMSPrincipalPrefix = "kms/principal/" // + name
	kmsAccessKeyPrefix = "kms/akid/"      // + access key ID -> principal name
)

// KMSKeyMeta is the meta key of a key's row.
func KMSKeyMeta(region, id string) string { return KMSKeyPrefix + region + "/" + id }

// KMSAliasMeta is the meta key of an alias's row.
func KMSAliasMeta(region, name string) string { return KMSAliasPrefix + region + "/" + name }

// kmsRow is a row's stored form.
type kmsRow struct {
	Row json.RawMessage `json:"row"`
	MAC []byte          `json:"mac"`
}

// KMSRow decodes a stored row into v after checking its MAC; a row that
// fails is an integrity failure, never data.
func KMSRow(s *seal.Sealer, key string, stored []byte, v any) error {
	var r kmsRow
	if err := json.Unmarshal(stored, &r); err != nil {
		return hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "KMS row %q is malformed", key)
	}
	if !hmac.Equal(r.MAC, s.RowMAC(key, r.Row)) {
		return hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "KMS row %q failed its integrity check", key)
	}
	if err := json.Unmarshal(r.Row, v); err != nil {
		return hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "KMS row %q is malformed", key)
	}
	return nil
}

// ReadKMSRow reads and checks one row; ErrNotFound when absent.
func ReadKMSRow(get func(string) ([]byte, error), s *seal.Sealer, key string, v any) error {
	b, err := get(key)
	if err != nil {
		return err
	}
	return KMSRow(s, key, b, v)
}

func putKMSRow(tx Tx, s *seal.Sealer, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b, err := json.Marshal(kmsRow{Row: raw, MAC: s.RowMAC(key, raw)})
	if err != nil {
		return err
	}
	return tx.PutMeta(key, b)
}

// readRow reads a row in apply: an integrity failure stops the node (as a
// user's or object's does), absence is ErrNotFound.
func readRow(tx Tx, s *seal.Sealer, key string, v any) error {
	err := ReadKMSRow(tx.Meta, s, key, v)
	if err != nil && !errors.Is(err, ErrNotFound) && isApplyRefusal(err) {
		return corrupt(tx, err)
	}
	return err
}

// KMSPrincipalByAccessKey finds the principal of an access key (for
// SigV4): ErrNotFound when no principal has it.
func KMSPrincipalByAccessKey(get func(string) ([]byte, error), s *seal.Sealer, akid string) (*KMSPrincipal, error) {
	var name string
	if err := ReadKMSRow(get, s, kmsAccessKeyPrefix+akid, &name); err != nil {
		return nil, err
	}
	var p KMSPrincipal
	if err := ReadKMSRow(get, s, KMSPrincipalPrefix+name, &p); err != nil {
		return nil, err
	}
	if p.AccessKeyID != akid {
		return nil, ErrNotFound
	}
	return &p, nil
}

// Arn is the key's ARN.
func (k *KMSKey) Arn() string { return KMSArn(k.Region, k.Account, "key/"+k.ID) }

// KMSArn makes an ARN of the aws partition.
func KMSArn(region, account, resource string) string {
	return "arn:aws:kms:" + region + ":" + account + ":" + resource
}

// Current is the version new encryptions use.
func (k *KMSKey) Current() *KMSKeyVersion {
	if len(k.Versions) == 0 {
		return nil
	}
	return &k.Versions[len(k.Versions)-1]
}

// Version returns version n, or nil.
func (k *KMSKey) Version(n int) *KMSKeyVersion {
	if n < 1 || n > len(k.Versions) {
		return nil
	}
	return &k.Versions[n-1]
}

// Rotates says whether the key's spec and origin can rotate.
func (k *KMSKey) Rotates() bool {
	return k.KeySpec == "SYMMETRIC_DEFAULT" && k.Origin == KMSOriginKMS
}

// kmsApply holds the KMS ops' apply functions; applyTable takes them in.
var kmsApply = map[Op]applyFunc{
	OpKMSPrincipalCreate: applyKMSPrincipalCreate,
	OpKMSPrincipalDelete: applyKMSPrincipalDelete,
	OpKMSPrincipalRotate: applyKMSPrincipalRotate,
	OpKMSCreateKey:       applyKMSCreateKey,
	OpKMSUpdateKey:       applyKMSUpdateKey,
	OpKMSRotateKey:       applyKMSRotateKey,
	OpKMSImportParams:    applyKMSImportParams,
	OpKMSImportMaterial:  applyKMSImportMaterial,
	OpKMSDeleteMaterial:  applyKMSDeleteMaterial,
	OpKMSAlias:           applyKMSAlias,
	OpKMSUpkeep:          applyKMSUpkeep,
	OpKMSHSMCluster:      applyKMSHSMCluster,
	OpKMSKeyStore:        applyKMSKeyStore,
	OpKMSKeyStoreState:   applyKMSKeyStoreState,
	OpKMSPrincipalPolicy: applyKMSPrincipalPolicy, // state/kms_access.go
	OpKMSGrant:           applyKMSGrant,           // state/kms_grants.go
}

// IsKMSWrite says whether op changes the KMS's keys, aliases or
// principals: the cluster acknowledges these only once every node that
// serves has applied them, so a client reads its own writes anywhere.
func IsKMSWrite(op Op) bool { _, ok := kmsApply[op]; return ok }

// checkKMSPrincipal is the authority rule of a KMS API command: its
// principal exists at this index, and the key policies, its identity
// policy and the grants at this index allow what the command does
// (checkKMSAccess).
func checkKMSPrincipal(tx Tx, s *seal.Sealer, c *Command, system bool) error {
	if c.Actor != "" {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%s is made by a principal, not a user", c.Op)
	}
	if c.KMS == nil {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%s without its KMS payload", c.Op)
	}
	if c.KMS.Principal == "" {
		if system {
			return nil // the nodes' upkeep: the op checks it is due
		}
		return hsmerr.KMSf("AccessDeniedException", "%s needs a principal", c.Op)
	}
	var p KMSPrincipal
	err := readRow(tx, s, KMSPrincipalPrefix+c.KMS.Principal, &p)
	if errors.Is(err, ErrNotFound) {
		return hsmerr.KMSf("AccessDeniedException", "The principal %s no longer exists", c.KMS.Principal)
	}
	if err != nil {
		return err
	}
	return checkKMSAccess(tx, s, c, &p)
}

// ---- principals ----

// ValidKMSPrincipalName is object.CheckKMSPrincipalName as a refusal.
func ValidKMSPrincipalName(name string) error {
	if err := object.CheckKMSPrincipalName(name); err != nil {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%v", err)
	}
	return nil
}

// validAccessKeyID accepts what this service makes: AKIA and 16 of A-Z2-7.
func validAccessKeyID(id string) bool {
	if len(id) != 20 || !strings.HasPrefix(id, "AKIA") {
		return false
	}
	for _, r := range id[4:] {
		if !(r >= 'A' && r <= 'Z' || r >= '2' && r <= '7') {
			return false
		}
	}
	return true
}

func checkPrincipalRow(s *seal.Sealer, p *KMSPrincipal) error {
	if p == nil {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "no principal")
	}
	if err := ValidKMSPrincipalName(p.Name); err != nil {
		return err
	}
	if !validAccessKeyID(p.AccessKeyID) {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "bad access key ID")
	}
	if err := CheckKMSIdentityPolicy(p.Policy); err != nil {
		return err
	}
	secret, err := s.Open(0, KMSSecretOwner(p.AccessKeyID), p.Secret)
	if err != nil || len(secret) != 40 {
		clear(secret)
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the principal's secret does not open for its access key")
	}
	clear(secret)
	return nil
}

func applyKMSPrincipalCreate(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if c.KMS == nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "no principal")
	}
	p := c.KMS.PrincipalRow
	if err := checkPrincipalRow(s, p); err != nil {
		return nil, err
	}
	// kmsuser: made with the first principal, from the command's user (a
	// random password nobody keeps), and only as a crypto user.
	u, err := tx.User(KMSUser)
	switch {
	case errors.Is(err, ErrNotFound):
		if c.User == nil || c.User.Name != KMSUser || c.User.Role != object.RoleCU {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the first principal must bring the crypto user %s", KMSUser)
		}
		if err := createUser(tx, s, c); err != nil {
			return nil, err
		}
		if err := claimKMSUser(tx, s, c.Time); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case u.Role != object.RoleCU:
		return nil, hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "the user %s exists and is not a crypto user", KMSUser)
	default:
		claimed, err := kmsUserClaimed(tx, s)
		if err != nil {
			return nil, err
		}
		if !claimed {
			return nil, hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "a crypto officer made the crypto user %s on this cluster (for another cluster's KMS to use it as a custom key store), so this cluster's KMS cannot have principals: delete that user first", KMSUser)
		}
	}
	var old KMSPrincipal
	if err := readRow(tx, s, KMSPrincipalPrefix+p.Name, &old); err == nil {
		return nil, hsmerr.KMSf("AlreadyExistsException", "The principal %s already exists", p.Name)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if _, err := tx.Meta(kmsAccessKeyPrefix + p.AccessKeyID); err == nil {
		return nil, hsmerr.Errorf(ck.CKR_FUNCTION_FAILED, "access key ID collision")
	}
	np := *p
	np.Created = c.Time
	if err := putKMSRow(tx, s, KMSPrincipalPrefix+p.Name, np); err != nil {
		return nil, err
	}
	return nil, putKMSRow(tx, s, kmsAccessKeyPrefix+p.AccessKeyID, p.Name)
}

func principalFor(tx Tx, s *seal.Sealer, name string) (*KMSPrincipal, error) {
	var p KMSPrincipal
	err := readRow(tx, s, KMSPrincipalPrefix+name, &p)
	if errors.Is(err, ErrNotFound) {
		return nil, hsmerr.KMSf("NotFoundException", "The principal %s does not exist", name)
	}
	return &p, err
}

func applyKMSPrincipalDelete(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if c.KMS == nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "no principal")
	}
	p, err := principalFor(tx, s, c.KMS.Name)
	if err != nil {
		return nil, err
	}
	if err := tx.DeleteMeta(kmsAccessKeyPrefix + p.AccessKeyID); err != nil {
		return nil, err
	}
	return nil, tx.DeleteMeta(KMSPrincipalPrefix + p.Name)
}

func applyKMSPrincipalRotate(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if c.KMS == nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "no principal")
	}
	np := c.KMS.PrincipalRow
	if err := checkPrincipalRow(s, np); err != nil {
		return nil, err
	}
	p, err := principalFor(tx, s, np.Name)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Meta(kmsAccessKeyPrefix + np.AccessKeyID); err == nil {
		return nil, hsmerr.Errorf(ck.CKR_FUNCTION_FAILED, "access key ID collision")
	}
	if err := tx.DeleteMeta(kmsAccessKeyPrefix + p.AccessKeyID); err != nil {
		return nil, err
	}
	p.AccessKeyID, p.Secret = np.AccessKeyID, np.Secret
	if err := putKMSRow(tx, s, KMSPrincipalPrefix+p.Name, p); err != nil {
		return nil, err
	}
	return nil, putKMSRow(tx, s, kmsAccessKeyPrefix+p.AccessKeyID, p.Name)
}

// ---- keys ----

func validKMSRegion(r string) bool {
	if len(r) == 0 || len(r) > 32 {
		return false
	}
	for _, c := range r {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// keyFor reads the command's key. A key of another region does not exist
// here, as in AWS.
func keyFor(tx Tx, s *seal.Sealer, c *Command) (*KMSKey, error) {
	if !validKMSRegion(c.KMS.Region) {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "bad region")
	}
	var k KMSKey
	err := readRow(tx, s, KMSKeyMeta(c.KMS.Region, c.KMS.KeyID), &k)
	if errors.Is(err, ErrNotFound) {
		return nil, hsmerr.KMSf("NotFoundException", "Key '%s' does not exist", KMSArn(c.KMS.Region, c.KMS.Account, "key/"+c.KMS.KeyID))
	}
	if err != nil {
		return nil, err
	}
	return &k, nil
}

func putKey(tx Tx, s *seal.Sealer, k *KMSKey) error {
	return putKMSRow(tx, s, KMSKeyMeta(k.Region, k.ID), k)
}

// KMSMaterialLabel is the CKA_LABEL of a key version's objects.
func KMSMaterialLabel(keyID string) string { return "kms:" + keyID }

// newKMSObjects checks the objects of a new key version (or import
// parameters) and stores them as KMSUser's: n of them, labelled with the
// key ID, passing every rule create_objects applies.
func newKMSObjects(tx Tx, s *seal.Sealer, c *Command, keyID string, n int) ([]uint64, error) {
	if len(c.Objects) != n {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%s needs %d objects", c.Op, n)
	}
	for _, o := range c.Objects {
		if o == nil || o.Owner != KMSUser || string(o.Attrs[ck.CKA_LABEL]) != KMSMaterialLabel(keyID) {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "KMS key material belongs to %s and is labelled with its key", KMSUser)
		}
		if o.Attrs.Bool(ck.CKA_EXTRACTABLE) && o.Class() != ck.CKO_PUBLIC_KEY {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "KMS key material is never extractable")
		}
	}
	u, err := userFor(tx, s, KMSUser)
	if err != nil {
		return nil, err
	}
	if u.Role != object.RoleCU {
		return nil, hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "%s is not a crypto user", KMSUser)
	}
	return putNewObjects(tx, s, KMSUser, c.Objects)
}

// destroyKMSObjects removes objects of KMSUser; ones already gone are
// skipped.
func destroyKMSObjects(tx Tx, s *seal.Sealer, ids []uint64) ([]uint64, error) {
	var done []uint64
	for _, id := range ids {
		o, err := loadObject(tx, s, id)
		if hsmerr.IsRV(err, ck.CKR_OBJECT_HANDLE_INVALID) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if o.Owner != KMSUser {
			return nil, hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "object %d is not KMS material", id)
		}
		if err := addOwned(tx, KMSUser, -1); err != nil {
			return nil, err
		}
		if err := tx.DeleteObject(id); err != nil {
			return nil, err
		}
		done = append(done, id)
	}
	return done, nil
}

// CheckKMSTags is the service's rule for tags beyond the model's lengths:
// AWS's tag characters (Unicode letters, digits and white space, and
// _ . : / = + - @), no aws: prefix, no key twice, at most KMSMaxTags.
func CheckKMSTags(tags []KMSTag) error {
	if len(tags) > KMSMaxTags {
		return hsmerr.KMSf("TagException", "A key may have at most %d tags", KMSMaxTags)
	}
	seen := map[string]bool{}
	for _, t := range tags {
		if !tagChars(t.Key) || !tagChars(t.Value) {
			return hsmerr.KMSf("TagException", "Tag keys and values may hold only Unicode letters, digits, white space and _ . : / = + - @")
		}
		if strings.HasPrefix(t.Key, "aws:") {
			return hsmerr.KMSf("TagException", "Tags beginning with aws: are reserved.")
		}
		if seen[t.Key] {
			return hsmerr.KMSf("TagException", "Duplicate tag keys")
		}
		seen[t.Key] = true
	}
	return nil
}

func tagChars(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsNumber(r) && !unicode.Is(unicode.Z, r) && !strings.ContainsRune("_.:/=+-@", r) {
			return false
		}
	}
	return true
}

func applyKMSCreateKey(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	k := c.KMS.Key
	if k == nil || k.ID == "" || len(k.ID) > 64 || strings.ContainsAny(k.ID, "/:") || !validKMSRegion(k.Region) || len(k.Account) != 12 {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "kms_create_key needs a key ID, region and account")
	}
	usages, ok := KMSKeySpecs[k.KeySpec]
	if !ok || !slices.Contains(usages, k.KeyUsage) {
		return nil, hsmerr.KMSf("ValidationException", "KeySpec %s does not support KeyUsage %s", k.KeySpec, k.KeyUsage)
	}
	if err := CheckKMSTags(k.Tags); err != nil {
		return nil, err
	}
	var old KMSKey
	if err := readRow(tx, s, KMSKeyMeta(k.Region, k.ID), &old); err == nil {
		return nil, hsmerr.Errorf(ck.CKR_FUNCTION_FAILED, "key ID collision")
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	nk := &KMSKey{ID: k.ID, Region: k.Region, Account: k.Account, Description: k.Description, KeySpec: k.KeySpec,
		KeyUsage: k.KeyUsage, Origin: k.Origin, Created: c.Time, CreatedBy: c.KMS.Principal, Tags: k.Tags, Policy: k.Policy,
		Versions: []KMSKeyVersion{}}
	var ids []uint64
	switch k.Origin {
	case KMSOriginKMS:
		var err error
		if ids, err = newKMSObjects(tx, s, c, k.ID, KMSKeyObjects(k.KeySpec)); err != nil {
			return nil, err
		}
		nk.State = KMSEnabled
		nk.Versions = []KMSKeyVersion{{N: 1, Objects: ids, Created: c.Time}}
	case KMSOriginExternal:
		if k.KeySpec != "SYMMETRIC_DEFAULT" {
			return nil, hsmerr.KMSf("UnsupportedOperationException", "This service imports key material for SYMMETRIC_DEFAULT keys only")
		}
		if len(c.Objects) != 0 {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "a key of EXTERNAL origin is made without material")
		}
		nk.State = KMSPendingImport
	case KMSOriginCloudHSM:
		if err := checkStoreKey(tx, s, c, k); err != nil {
			return nil, err
		}
		nk.State, nk.CustomKeyStoreID = KMSEnabled, k.CustomKeyStoreID
		nk.Versions = []KMSKeyVersion{{N: 1, Created: c.Time}}
	case KMSOriginExternalKS:
		if err := checkXKSKey(tx, s, k); err != nil {
			return nil, err
		}
		var err error
		if ids, err = newKMSObjects(tx, s, c, k.ID, KMSKeyObjects(k.KeySpec)); err != nil {
			return nil, err
		}
		nk.State, nk.CustomKeyStoreID, nk.XksKeyID = KMSEnabled, k.CustomKeyStoreID, k.XksKeyID
		nk.Versions = []KMSKeyVersion{{N: 1, Objects: ids, Created: c.Time}}
	default:
		return nil, hsmerr.KMSf("UnsupportedOperationException", "Origin %s is not supported", k.Origin)
	}
	return ids, putKey(tx, s, nk)
}

// invalidState is AWS's refusal of an operation in the key's state.
func invalidState(k *KMSKey) error {
	if k.State == KMSPendingDeletion {
		return hsmerr.KMSf("KMSInvalidStateException", "%s is pending deletion.", k.Arn())
	}
	return hsmerr.KMSf("KMSInvalidStateException", "%s is %s", k.Arn(), strings.ToLower(k.State))
}

// kmsKeyChanges is kms_update_key's table: one function per change. Each
// checks the key's state and applies; the row is written after.
var kmsKeyChanges = map[string]func(k *KMSKey, c *Command) error{
	KMSChangeEnable: func(k *KMSKey, c *Command) error {
		if k.State != KMSEnabled && k.State != KMSDisabled {
			return invalidState(k)
		}
		k.State = KMSEnabled
		return nil
	},
	KMSChangeDisable: func(k *KMSKey, c *Command) error {
		if k.State != KMSEnabled && k.State != KMSDisabled {
			return invalidState(k)
		}
		k.State = KMSDisabled
		return nil
	},
	KMSChangeDescription: func(k *KMSKey, c *Command) error {
		if k.State == KMSPendingDeletion {
			return invalidState(k)
		}
		k.Description = c.KMS.Description
		return nil
	},
	KMSChangeSchedule: func(k *KMSKey, c *Command) error {
		d := c.KMS.Days
		if d < KMSMinPendingDays || d > KMSMaxPendingDays {
			return hsmerr.KMSf("ValidationException", "1 validation error detected: Value '%d' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between %d and %d", d, KMSMinPendingDays, KMSMaxPendingDays)
		}
		if k.State == KMSPendingDeletion {
			return invalidState(k)
		}
		k.State, k.PendingDays, k.DeletionDate = KMSPendingDeletion, d, c.Time+int64(d)*day
		return nil
	},
	KMSChangeCancel: func(k *KMSKey, c *Command) error {
		if k.State != KMSPendingDeletion {
			return invalidState(k)
		}
		k.State, k.PendingDays, k.DeletionDate = KMSDisabled, 0, 0
		if cur := k.Current(); cur == nil || len(cur.Objects) == 0 {
			k.State = KMSPendingImport
		}
		return nil
	},
	KMSChangeEnableRotation: func(k *KMSKey, c *Command) error {
		if err := rotationAllowed(k); err != nil {
			return err
		}
		d := c.KMS.Days
		if d < KMSMinRotationDays || d > KMSMaxRotationDays {
			return hsmerr.KMSf("ValidationException", "1 validation error detected: Value '%d' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value between %d and %d", d, KMSMinRotationDays, KMSMaxRotationDays)
		}
		k.RotationDays = d
		if k.NextRotation == 0 || k.NextRotation > c.Time+int64(d)*day {
			k.NextRotation = c.Time + int64(d)*day
		}
		return nil
	},
	KMSChangeDisableRotation: func(k *KMSKey, c *Command) error {
		if err := rotationAllowed(k); err != nil {
			return err
		}
		k.RotationDays, k.NextRotation = 0, 0
		return nil
	},
	KMSChangePolicy: func(k *KMSKey, c *Command) error {
		if k.State == KMSPendingDeletion {
			return invalidState(k)
		}
		k.Policy = c.KMS.Policy
		return nil
	},
	KMSChangeTag: func(k *KMSKey, c *Command) error {
		if k.State == KMSPendingDeletion {
			return invalidState(k)
		}
		if err := CheckKMSTags(c.KMS.Tags); err != nil {
			return err
		}
		for _, t := range c.KMS.Tags {
			i := slices.IndexFunc(k.Tags, func(o KMSTag) bool { return o.Key == t.Key })
			if i >= 0 {
				k.Tags[i].Value = t.Value
			} else {
				k.Tags = append(k.Tags, t)
			}
		}
		if len(k.Tags) > KMSMaxTags {
			return hsmerr.KMSf("LimitExceededException", "A key may have at most %d tags", KMSMaxTags)
		}
		return nil
	},
	KMSChangeUntag: func(k *KMSKey, c *Command) error {
		if k.State == KMSPendingDeletion {
			return invalidState(k)
		}
		k.Tags = slices.DeleteFunc(k.Tags, func(t KMSTag) bool { return slices.Contains(c.KMS.TagKeys, t.Key) })
		return nil
	},
}

// rotationAllowed is AWS's rule for the rotation operations: symmetric
// keys of AWS_KMS origin, not disabled, not pending deletion.
func rotationAllowed(k *KMSKey) error {
	if !k.Rotates() {
		return hsmerr.KMSf("UnsupportedOperationException", "%s does not support automatic key rotation", k.Arn())
	}
	switch k.State {
	case KMSDisabled:
		return hsmerr.KMSf("DisabledException", "%s is disabled.", k.Arn())
	case KMSEnabled:
		return nil
	}
	return invalidState(k)
}

func applyKMSUpdateKey(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	change := kmsKeyChanges[c.KMS.Change]
	if change == nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "unknown key change %q", c.KMS.Change)
	}
	k, err := keyFor(tx, s, c)
	if err != nil {
		return nil, err
	}
	if err := change(k, c); err != nil {
		return nil, err
	}
	return nil, putKey(tx, s, k)
}

// applyKMSRotateKey adds a version. A principal's is on demand (at most
// KMSMaxOnDemand per key); one without a principal is the nodes' scheduled
// rotation, applied only when rotation is on and due by the command's time.
func applyKMSRotateKey(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	k, err := keyFor(tx, s, c)
	if err != nil {
		return nil, err
	}
	if err := rotationAllowed(k); err != nil {
		return nil, err
	}
	kind := "ON_DEMAND"
	if c.KMS.Principal == "" {
		if k.RotationDays == 0 || k.NextRotation > c.Time {
			return nil, hsmerr.KMSf("KMSInvalidStateException", "%s is not due for rotation", k.Arn())
		}
		kind = "AUTOMATIC"
		k.NextRotation = c.Time + int64(k.RotationDays)*day
	} else {
		if k.OnDemand >= KMSMaxOnDemand {
			return nil, hsmerr.KMSf("LimitExceededException", "%s has reached the limit of %d on-demand rotations", k.Arn(), KMSMaxOnDemand)
		}
		k.OnDemand++
	}
	if len(k.Versions) >= kmsMaxVersions {
		return nil, hsmerr.KMSf("LimitExceededException", "%s has too many versions", k.Arn())
	}
	ids, err := newKMSObjects(tx, s, c, k.ID, 1)
	if err != nil {
		return nil, err
	}
	k.Versions = append(k.Versions, KMSKeyVersion{N: len(k.Versions) + 1, Objects: ids, Created: c.Time, Rotation: kind})
	return ids, putKey(tx, s, k)
}

func importAllowed(k *KMSKey) error {
	if k.Origin != KMSOriginExternal {
		return hsmerr.KMSf("UnsupportedOperationException", "%s origin is %s which is invalid for this operation.", k.Arn(), k.Origin)
	}
	if k.State == KMSPendingDeletion {
		return invalidState(k)
	}
	return nil
}

// applyKMSImportParams records new import parameters: a wrapping key pair
// and the import token's hash, valid for 24 hours; earlier ones end.
func applyKMSImportParams(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	k, err := keyFor(tx, s, c)
	if err != nil {
		return nil, err
	}
	if err := importAllowed(k); err != nil {
		return nil, err
	}
	im := c.KMS.Import
	if im == nil || len(im.TokenHash) != sha256.Size || im.Algorithm == "" || im.Spec == "" {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "kms_import_params needs the token hash, algorithm and spec")
	}
	ids, err := newKMSObjects(tx, s, c, k.ID, 2)
	if err != nil {
		return nil, err
	}
	var gone []uint64
	if k.Import != nil {
		if gone, err = destroyKMSObjects(tx, s, k.Import.Objects); err != nil {
			return nil, err
		}
	}
	k.Import = &KMSImport{Objects: ids, TokenHash: im.TokenHash, Expires: c.Time + KMSImportTokenLifetime, Algorithm: im.Algorithm, Spec: im.Spec}
	return append(ids, gone...), putKey(tx, s, k)
}

// applyKMSImportMaterial takes imported material that the node unwrapped
// with the import parameters: the token must be the current one and not
// expired, and material imported again must be the same material.
func applyKMSImportMaterial(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	k, err := keyFor(tx, s, c)
	if err != nil {
		return nil, err
	}
	if err := importAllowed(k); err != nil {
		return nil, err
	}
	if k.Import == nil || !hmac.Equal(k.Import.TokenHash, c.KMS.TokenHash) {
		return nil, hsmerr.KMSf("InvalidImportTokenException", "Import token is invalid for this key")
	}
	if c.Time > k.Import.Expires {
		return nil, hsmerr.KMSf("ExpiredImportTokenException", "Import token expired")
	}
	if c.KMS.Expires != 0 && c.KMS.Expires <= c.Time {
		return nil, hsmerr.KMSf("ValidationException", "ValidTo must be in the future")
	}
	if len(c.Objects) != 1 || c.Objects[0] == nil || c.Objects[0].Sealed == nil || c.Objects[0].Owner != KMSUser {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "kms_import_material needs the material")
	}
	material, err := s.Open(c.Objects[0].ID, KMSUser, c.Objects[0].Sealed)
	if err != nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the material does not open for its object")
	}
	mac := s.RowMAC("kms material "+k.ID, material)
	clear(material)
	if k.MaterialMAC != nil && !hmac.Equal(k.MaterialMAC, mac) {
		return nil, hsmerr.KMSf("IncorrectKeyMaterialException", "The key material is not the key material previously imported into this KMS key")
	}
	var changed []uint64
	cur := k.Current()
	if cur == nil || len(cur.Objects) == 0 {
		ids, err := newKMSObjects(tx, s, c, k.ID, 1)
		if err != nil {
			return nil, err
		}
		changed = ids
		if cur == nil {
			k.Versions = append(k.Versions, KMSKeyVersion{N: 1, Objects: ids, Created: c.Time})
		} else {
			cur.Objects = ids
		}
	}
	gone, err := destroyKMSObjects(tx, s, k.Import.Objects)
	if err != nil {
		return nil, err
	}
	changed = append(changed, gone...)
	k.Import = nil
	k.MaterialMAC = mac
	k.MaterialExpires = c.KMS.Expires
	if k.State == KMSPendingImport {
		k.State = KMSEnabled
	}
	return changed, putKey(tx, s, k)
}

// deleteMaterial destroys a key's imported material: the key waits for an
// import again.
func deleteMaterial(tx Tx, s *seal.Sealer, k *KMSKey) ([]uint64, error) {
	var changed []uint64
	for i := range k.Versions {
		gone, err := destroyKMSObjects(tx, s, k.Versions[i].Objects)
		if err != nil {
			return nil, err
		}
		changed = append(changed, gone...)
		k.Versions[i].Objects = nil
	}
	k.MaterialExpires = 0
	if k.State != KMSPendingDeletion {
		k.State = KMSPendingImport
	}
	return changed, nil
}

func applyKMSDeleteMaterial(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	k, err := keyFor(tx, s, c)
	if err != nil {
		return nil, err
	}
	if err := importAllowed(k); err != nil {
		return nil, err
	}
	changed, err := deleteMaterial(tx, s, k)
	if err != nil {
		return nil, err
	}
	return changed, putKey(tx, s, k)
}

// ---- aliases ----

// CheckKMSAliasName is the service's rule for alias names beyond the
// model's pattern: the alias/ prefix, and alias/aws/ is AWS's.
func CheckKMSAliasName(name string) error {
	if !strings.HasPrefix(name, "alias/") || len(name) == len("alias/") {
		return hsmerr.KMSf("ValidationException", "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")
	}
	if strings.HasPrefix(name, "alias/aws/") {
		return hsmerr.KMSf("NotAuthorizedException", "Cannot create alias with prefix 'alias/aws/'")
	}
	return nil
}

// aliasTarget reads an alias's new target: it must exist and not be
// pending deletion.
func aliasTarget(tx Tx, s *seal.Sealer, c *Command) (*KMSKey, error) {
	k, err := keyFor(tx, s, c)
	if err != nil {
		return nil, err
	}
	if k.State == KMSPendingDeletion {
		return nil, invalidState(k)
	}
	return k, nil
}

// SameKMSKeyType is UpdateAlias's rule: the new key has the old one's type
// (symmetric, asymmetric or HMAC) and usage.
func SameKMSKeyType(a, b *KMSKey) bool {
	kind := func(k *KMSKey) string {
		switch {
		case k.KeySpec == "SYMMETRIC_DEFAULT":
			return "symmetric"
		case strings.HasPrefix(k.KeySpec, "HMAC_"):
			return "hmac"
		}
		return "asymmetric"
	}
	return kind(a) == kind(b) && a.KeyUsage == b.KeyUsage
}

func applyKMSAlias(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if !validKMSRegion(c.KMS.Region) {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "bad region")
	}
	name := c.KMS.Alias
	if err := CheckKMSAliasName(name); err != nil {
		return nil, err
	}
	key := KMSAliasMeta(c.KMS.Region, name)
	var a KMSAlias
	err := readRow(tx, s, key, &a)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	switch c.KMS.Change {
	case KMSAliasCreate:
		if exists {
			var k KMSKey
			if err := readRow(tx, s, KMSKeyMeta(a.Region, a.KeyID), &k); err == nil {
				return nil, hsmerr.KMSf("AlreadyExistsException", "An alias with the name %s already exists", KMSArn(c.KMS.Region, k.Account, name))
			}
			return nil, hsmerr.KMSf("AlreadyExistsException", "An alias with the name %s already exists", name)
		}
		k, err := aliasTarget(tx, s, c)
		if err != nil {
			return nil, err
		}
		if n, err := tx.MetaKeys(KMSAliasPrefix+c.KMS.Region+"/", KMSMaxAliases); err != nil {
			return nil, err
		} else if len(n) >= KMSMaxAliases {
			return nil, hsmerr.KMSf("LimitExceededException", "A region may have at most %d aliases", KMSMaxAliases)
		}
		return nil, putKMSRow(tx, s, key, KMSAlias{Name: name, Region: k.Region, KeyID: k.ID, Created: c.Time, Updated: c.Time})
	case KMSAliasUpdate:
		if !exists {
			return nil, hsmerr.KMSf("NotFoundException", "Alias %s is not found.", name)
		}
		k, err := aliasTarget(tx, s, c)
		if err != nil {
			return nil, err
		}
		var old KMSKey
		if err := readRow(tx, s, KMSKeyMeta(a.Region, a.KeyID), &old); err == nil && !SameKMSKeyType(&old, k) {
			return nil, hsmerr.KMSf("ValidationException", "%s is not the same type or usage as the alias's current key %s", k.Arn(), old.Arn())
		} else if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		a.KeyID, a.Updated = k.ID, c.Time
		return nil, putKMSRow(tx, s, key, a)
	case KMSAliasDelete:
		if !exists {
			return nil, hsmerr.KMSf("NotFoundException", "Alias %s is not found.", name)
		}
		return nil, tx.DeleteMeta(key)
	}
	return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "unknown alias change %q", c.KMS.Change)
}

// ---- upkeep ----

// applyKMSUpkeep does what time decided for the keys the node names:
// a key whose deletion window ended is destroyed (its material in the HSM,
// its row, its aliases), and imported material past its expiry is
// deleted. A named key with nothing due is left alone: the node's view may
// be older than the log's.
func applyKMSUpkeep(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if c.KMS == nil || len(c.KMS.Keys) == 0 || len(c.KMS.Keys) > kmsMaxUpkeepKeys {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "kms_upkeep names 1 to %d keys", kmsMaxUpkeepKeys)
	}
	var changed []uint64
	for _, rk := range c.KMS.Keys {
		region, id, ok := strings.Cut(rk, "/")
		if !ok || !validKMSRegion(region) || id == "" {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "bad key %q", rk)
		}
		var k KMSKey
		err := readRow(tx, s, KMSKeyMeta(region, id), &k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		switch {
		case k.State == KMSPendingDeletion && k.DeletionDate <= c.Time:
			ids, err := deleteKey(tx, s, &k)
			if err != nil {
				return nil, err
			}
			if err := deleteKMSGrants(tx, s, &k, c.Time); err != nil {
				return nil, err
			}
			changed = append(changed, ids...)
		case k.MaterialExpires != 0 && k.MaterialExpires <= c.Time:
			ids, err := deleteMaterial(tx, s, &k)
			if err != nil {
				return nil, err
			}
			changed = append(changed, ids...)
			if err := putKey(tx, s, &k); err != nil {
				return nil, err
			}
		}
	}
	return changed, nil
}

// deleteKey destroys a key: every version's objects, the import
// parameters, its aliases and its row.
func deleteKey(tx Tx, s *seal.Sealer, k *KMSKey) ([]uint64, error) {
	var ids []uint64
	for _, v := range k.Versions {
		ids = append(ids, v.Objects...)
	}
	if k.Import != nil {
		ids = append(ids, k.Import.Objects...)
	}
	gone, err := destroyKMSObjects(tx, s, ids)
	if err != nil {
		return nil, err
	}
	prefix := KMSAliasPrefix + k.Region + "/"
	keys, err := tx.MetaKeys(prefix, KMSMaxAliases+1)
	if err != nil {
		return nil, err
	}
	for _, key := range keys {
		var a KMSAlias
		if err := readRow(tx, s, key, &a); err != nil {
			return nil, err
		}
		if a.KeyID == k.ID {
			if err := tx.DeleteMeta(key); err != nil {
				return nil, err
			}
		}
	}
	return gone, tx.DeleteMeta(KMSKeyMeta(k.Region, k.ID))
}
