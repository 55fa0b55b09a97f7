package xks

// The JSON bodies of the spec's four operations. Field names are the
// spec's; the []byte fields are standard Base64 on the wire, as the spec
// says, which encoding/json does for []byte. The KMS's client side
// (issue 11, not yet written) can use the same types.

// RequestMetadata is the requestMetadata object of every request. Which
// fields are required depends on the operation (see validate). Fields the
// spec may add later are ignored.
type RequestMetadata struct {
	AWSPrincipalARN string `json:"awsPrincipalArn,omitempty"`
	AWSSourceVPC    string `json:"awsSourceVpc,omitempty"`
	AWSSourceVPCE   string `json:"awsSourceVpce,omitempty"`
	KMSKeyARN       string `json:"kmsKeyArn,omitempty"`
	KMSOperation    string `json:"kmsOperation,omitempty"`
	KMSRequestID    string `json:"kmsRequestId,omitempty"`
	KMSViaService   string `json:"kmsViaService,omitempty"`
}

// HealthRequest is GetHealthStatus's request.
type HealthRequest struct {
	RequestMetadata *RequestMetadata `json:"requestMetadata"`
}

// FleetDetail is one entry of ekmFleetDetails.
type FleetDetail struct {
	ID           string `json:"id"`
	Model        string `json:"model"`
	HealthStatus string `json:"healthStatus"`
}

// HealthResponse is GetHealthStatus's response.
type HealthResponse struct {
	XKSProxyFleetSize int           `json:"xksProxyFleetSize"`
	XKSProxyVendor    string        `json:"xksProxyVendor"`
	XKSProxyModel     string        `json:"xksProxyModel"`
	EKMVendor         string        `json:"ekmVendor"`
	EKMFleetDetails   []FleetDetail `json:"ekmFleetDetails"`
}

// MetadataRequest is GetKeyMetadata's request.
type MetadataRequest struct {
	RequestMetadata *RequestMetadata `json:"requestMetadata"`
}

// MetadataResponse is GetKeyMetadata's response.
type MetadataResponse struct {
	KeySpec   string   `json:"keySpec"`
	KeyUsage  []string `json:"keyUsage"`
	KeyStatus string   `json:"keyStatus"`
}

// EncryptRequest is Encrypt's request. Plaintext is a pointer so that an
// absent field (refused) differs from an empty one.
type EncryptRequest struct {
	RequestMetadata                       *RequestMetadata `json:"requestMetadata"`
	Plaintext                             *[]byte          `json:"plaintext"`
	EncryptionAlgorithm                   string           `json:"encryptionAlgorithm"`
	AdditionalAuthenticatedData           []byte           `json:"additionalAuthenticatedData,omitempty"`
	CiphertextDataIntegrityValueAlgorithm string           `json:"ciphertextDataIntegrityValueAlgorithm,omitempty"`
}

// EncryptResponse is Encrypt's response.
type EncryptResponse struct {
	Ciphertext                   []byte `json:"ciphertext"`
	CiphertextMetadata           []byte `json:"ciphertextMetadata,omitempty"`
	InitializationVector         []byte `json:"initializationVector"`
	AuthenticationTag            []byte `json:"authenticationTag"`
	CiphertextDataIntegrityValue []byte `json:"ciphertextDataIntegrityValue,omitempty"`
}

// DecryptRequest is Decrypt's request.
type DecryptRequest struct {
	RequestMetadata             *RequestMetadata `json:"requestMetadata"`
	Ciphertext                  *[]byte          `json:"ciphertext"`
	CiphertextMetadata          []byte           `json:"ciphertextMetadata,omitempty"`
	EncryptionAlgorithm         string           `json:"encryptionAlgorithm"`
	AdditionalAuthenticatedData []byte           `json:"additionalAuthenticatedData,omitempty"`
	InitializationVector        []byte           `json:"initializationVector"`
	AuthenticationTag           []byte           `json:"authenticationTag"`
}

// DecryptResponse is Decrypt's response.
type DecryptResponse struct {
	Plaintext []byte `json:"plaintext"`
}

// ErrorResponse is the body of every error answer of the API.
type ErrorResponse struct {
	ErrorName    string `json:"errorName"`
	ErrorMessage string `json:"errorMessage,omitempty"`
}
