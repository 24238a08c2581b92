package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/validation"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/httpapi"
)

// problemTypeBase prefixes each problem's type, as on /notifications.
const problemTypeBase = "urn:gwook:problem:"

// Problem is the RFC 9457 body of every error the API answers.
type Problem struct {
	Type   string `json:"type" doc:"urn:gwook:problem: and the kind of error, for clients to switch on"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Errors lists every broken rule of a 400.
	Errors    []event.FieldError `json:"errors,omitempty" doc:"Every broken rule of a 400"`
	RequestID string             `json:"request_id,omitempty"`
}

func (p *Problem) Error() string  { return p.Detail }
func (p *Problem) GetStatus() int { return p.Status }

// ContentType makes Huma send the problem as application/problem+json.
func (p *Problem) ContentType(string) string { return "application/problem+json" }

// problemKinds names the kind of error each status means.
var problemKinds = map[int]string{
	http.StatusBadRequest:            "invalid",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "not_found",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusConflict:              "conflict",
	http.StatusRequestEntityTooLarge: "too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusBadGateway:            "svix",
	http.StatusServiceUnavailable:    "unavailable",
}

// newProblem makes a problem of status. A 422, which Huma answers to a body
// that breaks the schema, becomes a 400: the API answers every invalid
// request alike, unknown fields included.
func newProblem(ctx context.Context, status int, detail string, errs ...error) *Problem {
	if status == http.StatusUnprocessableEntity {
		status = http.StatusBadRequest
	}
	kind, ok := problemKinds[status]
	if !ok {
		kind = "error"
		if status >= 500 {
			kind = "internal"
		}
	}
	p := &Problem{Type: problemTypeBase + kind, Title: http.StatusText(status), Status: status, Detail: detail,
		RequestID: httpapi.RequestID(ctx)}
	for _, err := range errs {
		if err == nil {
			continue
		}
		var d huma.ErrorDetailer
		if errors.As(err, &d) {
			p.Errors = append(p.Errors, fieldError(d.ErrorDetail()))
		} else {
			p.Errors = append(p.Errors, event.FieldError{Rule: "valid", Detail: err.Error()})
		}
	}
	if status == http.StatusBadRequest && (p.Detail == "" || p.Detail == "validation failed") {
		p.Detail = "the request is invalid: see errors"
	}
	return p
}

// invalid is a 400 listing broken rules.
func invalid(ctx context.Context, errs ...event.FieldError) *Problem {
	p := newProblem(ctx, http.StatusBadRequest, "")
	p.Errors = errs
	return p
}

// fieldError turns Huma's validation detail into Gwook's {field, rule,
// detail}: the field without Huma's "body." prefix, and the rule named
// after the JSON Schema keyword that failed.
func fieldError(d *huma.ErrorDetail) event.FieldError {
	field := d.Location
	for _, prefix := range []string{"body.", "path.", "query.", "header."} {
		if strings.HasPrefix(field, prefix) {
			field = strings.TrimPrefix(field, prefix)
			break
		}
	}
	if field == "body" {
		field = ""
	}
	rule := ruleOf(d.Message)
	if rule == "required" {
		// "expected required property name to be present": the field is
		// the missing property.
		var name string
		if _, err := fmt.Sscanf(d.Message, "expected required property %s to be present", &name); err == nil {
			field = joinField(field, name)
		}
	}
	if rule == "unknown_field" {
		return event.FieldError{Field: field, Rule: rule, Detail: "unknown field " + field}
	}
	return event.FieldError{Field: field, Rule: rule, Detail: d.Message}
}

func joinField(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// rules maps the start of each of Huma's validation messages to the rule it
// reports.
var rules = []struct{ prefix, rule string }{
	{validation.MsgUnexpectedProperty, "unknown_field"},
	{prefixOf(validation.MsgExpectedRequiredProperty), "required"},
	{prefixOf(validation.MsgExpectedMinLength), "min_length"},
	{prefixOf(validation.MsgExpectedMaxLength), "max_length"},
	{prefixOf(validation.MsgExpectedMatchPattern), "pattern"},
	{prefixOf(validation.MsgExpectedMinItems), "min_items"},
	{prefixOf(validation.MsgExpectedMaxItems), "max_items"},
	{prefixOf(validation.MsgExpectedOneOf), "enum"},
	{prefixOf(validation.MsgExpectedMinimumNumber), "minimum"},
	{prefixOf(validation.MsgExpectedMaximumNumber), "maximum"},
	{validation.MsgExpectedArrayItemsUnique, "unique"},
	{validation.MsgExpectedRFC3339DateTime, "date_time"},
	{validation.MsgExpectedBoolean, "type"},
	{validation.MsgExpectedNumber, "type"},
	{validation.MsgExpectedInteger, "type"},
	{validation.MsgExpectedString, "type"},
	{validation.MsgExpectedArray, "type"},
	{validation.MsgExpectedObject, "type"},
}

func prefixOf(format string) string {
	before, _, _ := strings.Cut(format, "%")
	return before
}

func ruleOf(message string) string {
	for _, r := range rules {
		if strings.HasPrefix(message, r.prefix) {
			return r.rule
		}
	}
	return "valid"
}

func init() {
	// Huma makes every error through this function; Gwook's are RFC 9457
	// problems carrying the request's id.
	huma.NewErrorWithContext = func(ctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
		if ctx == nil {
			return newProblem(context.Background(), status, msg, errs...)
		}
		return newProblem(ctx.Context(), status, msg, errs...)
	}
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		return newProblem(context.Background(), status, msg, errs...)
	}
}

func fieldErr(field, rule, detail string) event.FieldError {
	return event.FieldError{Field: field, Rule: rule, Detail: detail}
}
