package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/kms/sigv4"
)

// The handler's own refusals (see the package doc, Framing, for the
// source of each).
var (
	// AWS's exception and message; AWS sends them as XML with 403.
	errMethod = &kmserr.Error{Type: kmserr.AccessDenied,
		Message: "Unable to determine service/operation name to be authorized"}
	// Ours: AWS ignores the path.
	errPath = &kmserr.Error{Type: kmserr.UnknownOperation,
		Message: "The KMS API is served at POST / only."}
	// AWS's exception (sent as XML with 404, no message); the message is ours.
	errContentType = &kmserr.Error{Type: kmserr.UnknownOperation,
		Message: "Content-Type must be " + ContentType + "."}
	// AWS's answer exactly: no message.
	errUnknownOperation = &kmserr.Error{Type: kmserr.UnknownOperation}
	// Ours: the body could not be read (the client went away or stalled).
	errUnreadable = &kmserr.Error{Type: kmserr.Serialization,
		Message: "The request body could not be read."}
)

// RequestEntityTooLarge is the exception of a body over MaxBody, sent with
// HTTP 413: AWS Lambda's name for the same fault (see the package doc).
const RequestEntityTooLarge = "RequestEntityTooLargeException"

// tooLargeError is a body over the bound.
type tooLargeError struct{ max int64 }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("Request body is larger than the %d bytes this service accepts.", e.max)
}

func errTooLarge(max int64) error { return &tooLargeError{max: max} }

// answer is an error as the client sees it.
type answer struct {
	typ, msg string
	status   int
	internal bool // the cause is ours: log it, answer InternalMessage
}

// answerFor maps an error to its answer (the package doc, Errors).
func answerFor(err error) answer {
	var (
		ke *kmserr.Error
		me *model.Error
		se *sigv4.Error
		he *hsmerr.Error
		tl *tooLargeError
	)
	switch {
	case errors.As(err, &ke) && ke.Type != "":
		return answer{typ: ke.Type, msg: ke.Message, status: ke.Status()}
	case errors.As(err, &me) && me.Exception != "":
		return fromKMS(me.Exception, me.Message)
	case errors.As(err, &se) && se.Code != "":
		return answer{typ: se.Code, msg: se.Message, status: se.HTTPStatus()}
	case errors.As(err, &tl):
		return answer{typ: RequestEntityTooLarge, msg: tl.Error(), status: http.StatusRequestEntityTooLarge}
	case errors.As(err, &he):
		if typ := hsmerr.KMSException(err); typ != "" && typ != kmserr.Internal {
			return fromKMS(typ, he.Msg)
		}
	}
	return answer{typ: kmserr.Internal, msg: kmserr.InternalMessage,
		status: (&kmserr.Error{Type: kmserr.Internal}).Status(), internal: true}
}

func fromKMS(typ, msg string) answer {
	e := &kmserr.Error{Type: typ, Message: msg}
	return answer{typ: typ, msg: msg, status: e.Status()}
}

// errorBody is the JSON of an error answer.
type errorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message,omitempty"`
}

// body is the answer's JSON. '<', '>' and '&' stay as they are (AWS's
// messages quote the client's headers); invalid UTF-8 becomes U+FFFD.
func (a answer) body() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(errorBody{Type: a.typ, Message: a.msg}); err != nil {
		panic(err) // two strings always encode
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
