// Package httpapi is the HTTP handler of the KMS API: AWS JSON 1.1 with
// SigV4, as AWS KMS speaks it, so the AWS SDKs, the AWS CLI and the tools
// built on them work against it unchanged. It sits above kms/call's
// contract and knows nothing of keys: it frames, authenticates, validates
// (kms/model), calls the Service, answers, and reports each request to the
// audit trail.
//
// # Contract
//
// New(Config) is an http.Handler. It serves two routes:
//
//   - POST / with X-Amz-Target: TrentService.<Operation> and Content-Type:
//     application/x-amz-json-1.1: the API.
//   - GET or HEAD /healthz: the readiness check (Health check, below).
//
// Every other request is a refused API request (Framing, below). A request
// to the API goes through these steps, in this order, and the first that
// refuses it answers:
//
//  1. Framing: the method, the path, the Content-Type and the target,
//     read from the headers alone.
//  2. The body, read whole, at most MaxBody bytes (Body size, below).
//  3. SigV4 (kms/sigv4's Verifier) over the body read: nothing that
//     depends on who is asking happens before it.
//  4. model.Validate(op, body): the only reading of the body.
//  5. Service.Call with a call.Request (the principal, access key ID and
//     region of the signature, the client's IP, the request ID).
//  6. The output, written with model.Marshal.
//
// Every answer of the API carries x-amzn-RequestId (a random version 4
// UUID, made here), Content-Type: application/x-amz-json-1.1 and a
// Content-Length. Success is 200 with the output's JSON ({} for an empty
// output). An error is {"__type": "<Exception>", "message": "..."}, the
// message left out when there is none, with HTTP 400, except the 5xx of
// kmserr's table (KMSInternalException 500, KeyUnavailableException 500,
// DependencyTimeoutException 503) and 413 for a body over the bound. The
// AWS SDKs read the exception from __type and the message from message,
// and retry 500, 502, 503 and 504 (aws-sdk-go-v2: smithy-go's awsjson
// protocol and aws/retry).
//
// # Framing
//
// AWS's JSON services share one front end; its answers to malformed
// requests were recorded by kinesalite [K] (Kinesis, JSON 1.1) and
// dynalite [D] (DynamoDB, JSON 1.0), and one shows in an AWS SDK issue
// [N]. Several of them are XML or have no message; this handler answers
// every one as JSON, so a client's JSON error decoder always works.
//
//	request                     answer here                                  AWS
//	not POST (GET / etc.)       400 AccessDeniedException "Unable to          same exception and message,
//	                            determine service/operation name to be        as XML with 403 [K]
//	                            authorized"
//	POST, path other than /     400 UnknownOperationException "The KMS API    ours: AWS ignores the path [K][D]
//	                            is served at POST / only."
//	Content-Type not            400 UnknownOperationException "Content-Type   404 <UnknownOperationException/>,
//	application/x-amz-json-1.1  must be application/x-amz-json-1.1."          no message [K][D]; the message is ours
//	(parameters and case are
//	ignored, as MIME says)
//	no X-Amz-Target, more than  400 UnknownOperationException, no message     the same [K][D][N]
//	one, another prefix than
//	TrentService., or an
//	operation the model lacks
//	body over MaxBody           413 RequestEntityTooLargeException            413 with an empty body [K][D];
//	                            "Request body is larger than the N bytes      the exception is AWS Lambda's
//	                            this service accepts."                        name for this fault, the message ours
//	body unreadable (the        400 SerializationException "The request       ours
//	client went away)           body could not be read."
//
// The target is matched exactly, case included, as [K] and [D] match it.
// Framing comes before SigV4, as on AWS [K]: these answers
// tell an unsigned client nothing about keys. SigV4's refusals are
// kms/sigv4's codes and messages with 400 (sigv4/errors.go cites AWS for
// each); like AWS's, some messages quote the client's own Authorization
// header or canonical request back to it. After SigV4, kms/model answers
// SerializationException, ValidationException or UnknownOperationException
// in AWS's form. moto (5.2.1, moto/core/responses.py), a test double, is
// no reference here: it takes the operation from the target's last dot
// and raises NotImplementedError for one it lacks.
//
// # Errors
//
// An error from any step is answered by the first of these that applies
// (errors.As, so wrapped errors count):
//
//	*kmserr.Error        its Type and Message, its Status()
//	*model.Error         its Exception and Message, 400
//	*sigv4.Error         its Code and Message, 400
//	body over the bound  RequestEntityTooLargeException, 413
//	*hsmerr.Error        hsmerr.KMSException(err) with its Msg (safe to
//	                     send), kmserr's status for that exception
//	anything else, an    KMSInternalException, 500, with
//	*hsmerr.Error whose  kmserr.InternalMessage: the cause stays in the log
//	exception is "" or   (this covers a Secrets that cannot answer, an
//	KMSInternalException output that does not marshal, and a panic in
//	                     the operation, which is recovered)
//
// Every 5xx answer is logged at Error level with the request ID, the
// operation, the exception and the cause (err.Error()). Nothing else is
// logged: not the body, not the plaintext or ciphertext, not the
// Authorization header or any secret.
//
// # Body size
//
// The body is read before SigV4 (the signature covers its hash), so the
// bound is what an unauthenticated client can make a node hold per
// request. DefaultMaxBody is 2 MiB: the largest valid requests, with every
// string member at its maximum length in the longest characters its
// pattern allows and every character \u-escaped (Python's json, which
// botocore uses, escapes every non-ASCII character so), fit with a quarter
// to spare (TestDefaultMaxBodyHoldsTheLargestRequests builds, validates and
// serves each):
//
//	PutKeyPolicy        811,854 bytes  131,072-character policy (6 bytes each)
//	                                   and a 2,048-character KeyId (12 each)
//	CreateKey         1,118,674 bytes  that policy, an 8,192-character
//	                                   description, 50 tags (AWS's quota per
//	                                   key; the model leaves Tags unbounded)
//	Decrypt           1,544,596 bytes  ten 8,192-character grant tokens, a
//	DeriveSharedSecret 1,548,607 bytes 262,144-byte attestation document in
//	                                   base64 with every '/' escaped
//
// Written as the SDKs write them (ASCII unescaped) the same requests are
// under 500 KiB; the attestation document alone is ~350 KiB of base64. The
// model leaves encryption contexts unbounded: one that does not fit is
// refused as too large, and so is a valid request padded with whitespace
// past the bound. The server that mounts the handler should bound its
// connections, since each may hold up to MaxBody.
//
// # Audit
//
// Every request but the health check, allowed or refused at any step,
// gives Audit exactly one audit.KMSEvent, before its answer is written:
// Time (Unix seconds at arrival), Principal (the verified principal when
// SigV4 passed; else the access key ID of the Authorization header's
// Credential, when it is 1..128 characters of [A-Za-z0-9_]; else ""), Op
// (the target's operation when it is one of the model's, even if a later
// check refused the request; else ""), Key (call.Request.KeyARN, set by
// the operation), ContextKeys (the keys of EncryptionContext,
// SourceEncryptionContext and DestinationEncryptionContext, merged,
// sorted, once each; never a value), Source (the IP of RemoteAddr: behind
// a TCP proxy, the proxy's), RequestID and Error (the exception answered,
// "" on success). A client that retries makes one event per attempt.
//
// # Health check
//
// GET or HEAD /healthz needs no signature and leaves no audit event: 200
// "ok" when Ready is nil or returns nil, else 503 with Ready's error text
// (text/plain; it must not hold secrets). It is for load balancers:
// haproxy's `option httpchk GET /healthz` with `http-check expect status
// 200`. It is ours; AWS has no such route. A check on any other route
// (haproxy's default is OPTIONS /) is a refused API request, and each one
// lands in the audit trail.
//
// # Sources
//
//   - [K] mhart/kinesalite, index.js: Kinesis's answers to a wrong method,
//     content type, target, and an oversized body, in the order checked.
//   - [D] mhart/dynalite, index.js: DynamoDB's, for the same faults.
//   - [N] aws/aws-sdk-net#1536: CloudWatch Logs (JSON 1.1) answering an
//     unknown operation with 400 and {"__type":"UnknownOperationException"}.
//   - aws-sdk-go-v2 v1.48.0 / smithy-go v1.28.9: the request ID is read
//     from x-amzn-RequestId (aws/middleware/request_id_retriever.go), the
//     exception from X-Amzn-ErrorType or __type with any "prefix#" or
//     ":suffix" dropped (transport/http/protocol/internal/json/error.go),
//     retries on 500/502/503/504 (aws/retry/standard.go).
package httpapi
