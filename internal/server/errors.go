package server

import (
	"errors"
	"fmt"
	"net/http"
)

// The error codes of the API (SPEC.md section 8), each with its status.
const (
	codeBadRequest   = "BadRequest"
	codeUnauthorized = "Unauthorized"
	codeForbidden    = "Forbidden"
	codeNotFound     = "NotFound"
	codeConflict     = "Conflict"
	codeTooMany      = "TooManyRequests"
	codeInternal     = "InternalError"
	codeLoading      = "Loading"
	// codeUnavailable is a question about a tenant whose bucket no
	// process holds for the moment (SPEC.md section 10).
	codeUnavailable = "Unavailable"
)

var statusOf = map[string]int{
	codeBadRequest:   http.StatusBadRequest,
	codeUnauthorized: http.StatusUnauthorized,
	codeForbidden:    http.StatusForbidden,
	codeNotFound:     http.StatusNotFound,
	codeConflict:     http.StatusConflict,
	codeTooMany:      http.StatusTooManyRequests,
	codeInternal:     http.StatusInternalServerError,
	codeLoading:      http.StatusServiceUnavailable,
	codeUnavailable:  http.StatusServiceUnavailable,
}

// apiError is an error a handler returns to say what the caller gets.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter, in seconds, goes in the Retry-After header of a 429 or
	// a 503.
	RetryAfter int `json:"-"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, args ...any) error {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// asAPIError returns what the caller is told of err: an apiError as it is,
// anything else as an internal error that says nothing of its cause.
func asAPIError(err error) (*apiError, bool) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae, true
	}
	return &apiError{Code: codeInternal, Message: "the service failed; the operator's log says why"}, false
}
