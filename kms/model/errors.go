package model

import (
	"fmt"
	"strings"
)

// The exceptions Validate answers with; AWS answers each with HTTP 400.
const (
	ValidationException       = "ValidationException"
	SerializationException    = "SerializationException"
	UnknownOperationException = "UnknownOperationException"
)

// Error is a refused request: Exception is the AWS exception name (the
// response's __type) and Message its message, "" for none.
type Error struct {
	Exception string
	Message   string
	// Violations are a ValidationException's violations, in the order
	// of the message.
	Violations []Violation
}

// Violation is one broken constraint of a ValidationException.
type Violation struct {
	Path       string // 'tags.1.member.tagKey'
	Constraint string // "Member must have length less than or equal to 128"
	Text       string // the whole "Value ... at ... failed to satisfy constraint: ..." part
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Exception
	}
	return e.Exception + ": " + e.Message
}

func serialization(format string, args ...any) *Error {
	return &Error{Exception: SerializationException, Message: fmt.Sprintf(format, args...)}
}

func validationError(vs []Violation) *Error {
	texts := make([]string, len(vs))
	for i, v := range vs {
		texts[i] = v.Text
	}
	head := "1 validation error detected: "
	if len(vs) > 1 {
		head = fmt.Sprintf("%d validation errors detected: ", len(vs))
	}
	return &Error{Exception: ValidationException, Message: head + strings.Join(texts, "; "), Violations: vs}
}
