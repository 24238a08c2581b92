package svix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	svixgo "github.com/svix/svix-webhooks/go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/gwook/gwook/internal/truncate"
)

// MirrorApplication is a Gwook application as it is mirrored to Svix.
type MirrorApplication struct {
	ID       string // Gwook's application id, which is the Svix application's uid
	Name     string
	Metadata map[string]string // nil: none
}

// MirrorEndpoint is a Gwook endpoint as it is mirrored to Svix.
type MirrorEndpoint struct {
	ID          string // Gwook's endpoint id, which is the Svix endpoint's uid
	URL         string
	Description string
	// EventTypes are the event types the endpoint receives: nil for every
	// type, otherwise exactly these. Svix cannot say "none" (it refuses an
	// empty filterTypes), so an endpoint with an empty, non-nil EventTypes
	// is mirrored disabled.
	EventTypes []string
	Disabled   bool
	// Secret is the endpoint's signing secret ("whsec_..."), which Svix is
	// given when it creates the endpoint; empty lets Svix generate one.
	Secret string
}

// MirrorError is a mirror operation that Svix refused or that did not
// reach Svix, after any retries.
type MirrorError struct {
	Op     string // what was being done, e.g. "creating endpoint ep_1 in application usr_1"
	Status int    // Svix's last HTTP status; 0 when the last attempt got no answer
	// Detail is what Svix's answer said, shortened, with the endpoint
	// secret removed; empty when there was no answer.
	Detail string
	// Err is the transport's error, or for an answer the SDK's error
	// (status only: Svix's body is summarised in Detail).
	Err error

	// unknownEventTypes are the event types a 422 answer said Svix does
	// not have (or has archived), read from the whole body.
	unknownEventTypes []string
}

func (e *MirrorError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("svix: %s: %v", e.Op, e.Err)
	}
	msg := fmt.Sprintf("svix: %s: %d %s", e.Op, e.Status, http.StatusText(e.Status))
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap returns Err.
func (e *MirrorError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnauthorized) true when Svix answered 401 or
// 403.
func (e *MirrorError) Is(target error) bool {
	return target == ErrUnauthorized && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden)
}

// hasStatus reports whether err is a *MirrorError with Svix's status.
func hasStatus(err error, status int) bool {
	me, ok := errors.AsType[*MirrorError](err)
	return ok && me.Status == status
}

// UpsertApplication makes Svix hold app as the application whose uid is
// app.ID, with the same name and metadata: it creates it, or adopts and
// updates the one that has that uid (Svix's PUT /api/v1/app/{app_id}).
//
// Like every mirror operation it retries network errors, 429 and 5xx
// under the sender's retry policy, never another 4xx, and ends within
// RetryPolicy.MaxElapsed, each request within Config.Timeout. Its errors
// are *MirrorError; a refused token matches ErrUnauthorized.
func (s *Sender) UpsertApplication(ctx context.Context, app MirrorApplication) error {
	return s.mirror(ctx, "svix.upsert_application", []attribute.KeyValue{attribute.String("svix.app_id", app.ID)},
		func(ctx context.Context) error {
			metadata := app.Metadata
			if metadata == nil {
				metadata = map[string]string{}
			}
			// Svix's PUT replaces every field, the uid included.
			in := svixgo.ApplicationIn{Name: app.Name, Uid: &app.ID, Metadata: &metadata}
			_, err := s.request(ctx, mirrorCall{op: "creating or updating application " + app.ID, do: func(ctx context.Context) error {
				_, err := s.client.Application.Update(ctx, app.ID, in)
				return err
			}})
			return err
		})
}

// DeleteApplication deletes the Svix application whose uid is id, with its
// endpoints. An application Svix does not have counts as deleted.
func (s *Sender) DeleteApplication(ctx context.Context, id string) error {
	return s.mirror(ctx, "svix.delete_application", []attribute.KeyValue{attribute.String("svix.app_id", id)},
		func(ctx context.Context) error {
			_, err := s.request(ctx, mirrorCall{op: "deleting application " + id, do: func(ctx context.Context) error {
				return s.client.Application.Delete(ctx, id)
			}})
			if hasStatus(err, http.StatusNotFound) {
				return nil
			}
			return err
		})
}

// UpsertEndpoint makes Svix hold ep as the endpoint whose uid is ep.ID in
// the Svix application whose uid is appID, which must exist (Svix answers
// 404 otherwise): with ep's URL, description, event types (Svix's
// filterTypes) and disabled flag, and, when Svix creates it, ep's secret.
//
// It creates the endpoint and, when Svix already has one with that uid,
// replaces those fields of it instead, so that calling it again, or after
// a crash between Svix and Gwook's database, leaves exactly one endpoint
// with the uid and these values. An existing endpoint keeps its secret:
// RotateEndpointSecret changes it.
//
// Svix lets an endpoint filter only on event types it has, unarchived.
// When it refuses ep's for that reason, UpsertEndpoint makes Svix have
// the ones it named, unarchiving an archived one and creating a missing
// one (described as "Created by Gwook for an endpoint's event types"),
// and tries once more. It never changes an event type Svix has beyond
// unarchiving it: the description, schemas and the rest stay as they are.
func (s *Sender) UpsertEndpoint(ctx context.Context, appID string, ep MirrorEndpoint) error {
	return s.mirror(ctx, "svix.upsert_endpoint", endpointAttributes(appID, ep.ID), func(ctx context.Context) error {
		filterTypes, disabled := svixFilter(ep.EventTypes, ep.Disabled)
		// The endpoint is tried first and the event types made only when
		// Svix says some are missing: most upserts name event types Svix
		// already has, and so cost one or two requests, where making each
		// event type first would cost one more per type every time.
		err := s.putEndpoint(ctx, appID, ep, filterTypes, disabled)
		missing := missingEventTypes(err, filterTypes)
		if len(missing) == 0 {
			return err
		}
		for _, name := range missing {
			if err := s.ensureEventType(ctx, name); err != nil {
				return err
			}
		}
		return s.putEndpoint(ctx, appID, ep, filterTypes, disabled)
	})
}

// putEndpoint creates the endpoint ep in the application appID or, when
// Svix has one with its uid, replaces its fields, as UpsertEndpoint
// describes.
func (s *Sender) putEndpoint(ctx context.Context, appID string, ep MirrorEndpoint, filterTypes []string, disabled bool) error {
	in := svixgo.EndpointIn{Uid: &ep.ID, Url: ep.URL, Description: &ep.Description, Disabled: &disabled, FilterTypes: filterTypes}
	if ep.Secret != "" {
		in.Secret = &ep.Secret
	}
	where := fmt.Sprintf("endpoint %s in application %s", ep.ID, appID)
	_, err := s.request(ctx, mirrorCall{op: "creating " + where, secret: ep.Secret, do: func(ctx context.Context) error {
		_, err := s.client.Endpoint.Create(ctx, appID, in, nil)
		return err
	}})
	if !hasStatus(err, http.StatusConflict) {
		return err
	}
	// Svix has an endpoint with this uid. Its PUT replaces every field
	// but the secret, resetting the ones left out, the uid included.
	update := svixgo.EndpointUpdate{Uid: &ep.ID, Url: ep.URL, Description: &ep.Description, Disabled: &disabled, FilterTypes: filterTypes}
	status, err := s.request(ctx, mirrorCall{op: "updating " + where, do: func(ctx context.Context) error {
		_, err := s.client.Endpoint.Update(ctx, appID, ep.ID, update)
		return err
	}})
	if err != nil || status != http.StatusCreated || ep.Secret == "" {
		return err
	}
	// The endpoint was deleted between the two requests, and the PUT
	// created it again with a secret of Svix's: replace that one at
	// once, keeping it valid for no time at all.
	return s.rotateSecret(ctx, appID, ep.ID, ep.Secret, 0)
}

// autoEventTypeDescription describes the event types UpsertEndpoint
// creates in Svix.
const autoEventTypeDescription = "Created by Gwook for an endpoint's event types"

// missingEventTypes returns the names of filterTypes that err, Svix's
// refusal of an endpoint, says Svix does not have; none for any other
// error.
func missingEventTypes(err error, filterTypes []string) []string {
	me, ok := errors.AsType[*MirrorError](err)
	if !ok || me.Status != http.StatusUnprocessableEntity {
		return nil
	}
	var missing []string
	for _, name := range filterTypes {
		if slices.Contains(me.unknownEventTypes, name) {
			missing = append(missing, name)
		}
	}
	return missing
}

// ensureEventType makes Svix have the event type name, unarchived,
// without changing one it has. Svix's create would unarchive an archived
// one too, but replacing its description and schemas, so a PATCH that
// only unarchives comes first; only when Svix has no such event type
// (404) is it created. A 409 to the create means another request created
// it meanwhile, which is as good.
func (s *Sender) ensureEventType(ctx context.Context, name string) error {
	archived := false
	_, err := s.request(ctx, mirrorCall{op: "unarchiving event type " + name, do: func(ctx context.Context) error {
		_, err := s.client.EventType.Patch(ctx, name, svixgo.EventTypePatch{Archived: &archived})
		return err
	}})
	if !hasStatus(err, http.StatusNotFound) {
		return err
	}
	in := svixgo.EventTypeIn{Name: name, Description: autoEventTypeDescription}
	_, err = s.request(ctx, mirrorCall{op: "creating event type " + name, do: func(ctx context.Context) error {
		_, err := s.client.EventType.Create(ctx, in, nil)
		return err
	}})
	if hasStatus(err, http.StatusConflict) {
		return nil
	}
	return err
}

// svixFilter returns Svix's filterTypes and disabled flag for an endpoint
// that receives eventTypes: nil for every type, and for none (which Svix
// cannot express) no filter but disabled. Repeated types are dropped, as
// Svix wants them unique.
func svixFilter(eventTypes []string, disabled bool) ([]string, bool) {
	if eventTypes == nil {
		return nil, disabled
	}
	if len(eventTypes) == 0 {
		return nil, true
	}
	seen := make(map[string]bool, len(eventTypes))
	out := make([]string, 0, len(eventTypes))
	for _, t := range eventTypes {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out, disabled
}

// DeleteEndpoint deletes the endpoint whose uid is endpointID from the Svix
// application whose uid is appID. An endpoint or application Svix does not
// have counts as deleted.
func (s *Sender) DeleteEndpoint(ctx context.Context, appID, endpointID string) error {
	return s.mirror(ctx, "svix.delete_endpoint", endpointAttributes(appID, endpointID), func(ctx context.Context) error {
		_, err := s.request(ctx, mirrorCall{op: fmt.Sprintf("deleting endpoint %s in application %s", endpointID, appID),
			do: func(ctx context.Context) error { return s.client.Endpoint.Delete(ctx, appID, endpointID) }})
		if hasStatus(err, http.StatusNotFound) {
			return nil
		}
		return err
	})
}

// RotateEndpointSecret makes secret the signing secret of the endpoint
// whose uid is endpointID in the Svix application whose uid is appID,
// through Svix's rotation, so that Svix keeps signing with the previous
// secret too for 24 hours, as Gwook does. When secret already is the
// endpoint's secret in Svix nothing changes, so calling it again is
// harmless.
func (s *Sender) RotateEndpointSecret(ctx context.Context, appID, endpointID, secret string) error {
	return s.mirror(ctx, "svix.rotate_endpoint_secret", endpointAttributes(appID, endpointID), func(ctx context.Context) error {
		var current string
		_, err := s.request(ctx, mirrorCall{op: fmt.Sprintf("reading the secret of endpoint %s in application %s", endpointID, appID),
			secret: secret, do: func(ctx context.Context) error {
				out, err := s.client.Endpoint.GetSecret(ctx, appID, endpointID)
				if out != nil {
					current = out.Key
				}
				return err
			}})
		if err != nil {
			return err
		}
		if current == secret {
			return nil
		}
		return s.rotateSecret(ctx, appID, endpointID, secret, -1)
	})
}

// rotateSecret asks Svix to make secret the endpoint's signing secret,
// keeping the previous one valid for grace, or for Svix's default (24
// hours) when grace is negative.
func (s *Sender) rotateSecret(ctx context.Context, appID, endpointID, secret string, grace time.Duration) error {
	in := svixgo.EndpointSecretRotateIn{Key: &secret}
	if grace >= 0 {
		seconds := uint32(grace / time.Second)
		in.GracePeriodSeconds = &seconds
	}
	_, err := s.request(ctx, mirrorCall{op: fmt.Sprintf("rotating the secret of endpoint %s in application %s", endpointID, appID),
		secret: secret, do: func(ctx context.Context) error {
			return s.client.Endpoint.RotateSecret(ctx, appID, endpointID, in, nil)
		}})
	return err
}

func endpointAttributes(appID, endpointID string) []attribute.KeyValue {
	return []attribute.KeyValue{attribute.String("svix.app_id", appID), attribute.String("svix.endpoint_id", endpointID)}
}

// mirror runs one mirror operation within the retry policy's time budget
// (MaxElapsed), in a span named name.
func (s *Sender) mirror(ctx context.Context, name string, attrs []attribute.KeyValue, run func(ctx context.Context) error) error {
	if s.policy.MaxElapsed > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.policy.MaxElapsed)
		defer cancel()
	}
	ctx, span := s.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	defer span.End()
	err := run(ctx)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// mirrorCall is one request of a mirror operation.
type mirrorCall struct {
	op     string // what the request does, for errors
	secret string // a secret the request carries, kept out of errors
	do     func(ctx context.Context) error
}

// request makes c's request, retrying network errors, 429 and 5xx (waiting
// as Retry-After asks, up to RetryAfterMax) until the retry policy or ctx
// says stop; it never retries another 4xx. It returns Svix's status and
// nil for a 2xx answer, and otherwise Svix's last status and a
// *MirrorError.
func (s *Sender) request(ctx context.Context, c mirrorCall) (int, error) {
	var (
		attempts int
		last     *MirrorError // the last attempt's failure
		answered *MirrorError // the last failure that Svix answered
		status   int
	)
	attempt := func() (struct{}, error) {
		attempts++
		return struct{}{}, s.attempt(ctx, time.Time{}, attempts, c.do, func(span trace.Span, rec *attemptRecord, err error) error {
			status = rec.status
			if err == nil || (rec.status >= 200 && rec.status < 300) {
				// A 2xx whose body the SDK could not read still did its work.
				last = nil
				return nil
			}
			span.SetStatus(codes.Error, "failed")
			apiErr, ok := errors.AsType[*svixgo.Error](err)
			if !ok {
				last = &MirrorError{Op: c.op, Err: err}
				return err
			}
			code := apiErr.Status()
			last = &MirrorError{Op: c.op, Status: code, Detail: answerDetail(apiErr.Body(), c.secret), Err: errors.New(apiErr.Error())}
			if code == http.StatusUnprocessableEntity {
				last.unknownEventTypes = unknownEventTypes(apiErr.Body())
			}
			answered = last
			switch {
			case code == http.StatusUnauthorized || code == http.StatusForbidden:
				s.metrics.SvixUnauthorized()
				return backoff.Permanent(err)
			case code != http.StatusTooManyRequests && code < 500:
				return backoff.Permanent(err)
			}
			if wait, ok := parseRetryAfter(rec.retryAfter, time.Now()); ok {
				if wait > s.policy.RetryAfterMax {
					return backoff.Permanent(err)
				}
				return &backoff.RetryAfterError{Duration: wait}
			}
			return err
		})
	}
	_, _ = backoff.Retry(ctx, attempt,
		backoff.WithBackOff(s.policy.newBackOff()),
		backoff.WithMaxTries(uint(s.policy.MaxAttempts)),
		backoff.WithMaxElapsedTime(s.policy.MaxElapsed))
	if last == nil {
		return status, nil
	}
	if last.Status == 0 && ctx.Err() != nil && answered != nil {
		// The time budget ran out during the last attempt: what Svix
		// answered before is the better account of what went wrong.
		return answered.Status, answered
	}
	return last.Status, last
}

// unknownEventTypes returns the event types that a Svix 422 body says do
// not exist: Svix answers an endpoint whose filterTypes name event types
// it does not have, or has archived, with a validation error whose message
// is "The following event types don't exist: a.b, c.d". The names are
// read from the message's text after its last colon, split at every
// character an event type name cannot have, so that another list format
// is read too.
func unknownEventTypes(body []byte) []string {
	var parsed struct {
		Detail []struct {
			Msg string `json:"msg"`
		} `json:"detail"`
	}
	if json.Unmarshal(body, &parsed) != nil {
		return nil
	}
	var names []string
	for _, item := range parsed.Detail {
		if !strings.Contains(item.Msg, "don't exist") {
			continue
		}
		list := item.Msg[strings.LastIndex(item.Msg, ":")+1:]
		names = append(names, strings.FieldsFunc(list, func(r rune) bool { return !isEventTypeNameRune(r) })...)
	}
	return names
}

// isEventTypeNameRune reports whether r may be part of a Svix event type
// name, which matches ^[a-zA-Z0-9\-_.]+$.
func isEventTypeNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}

// answerDetail summarises a Svix error body for an error message: "code:
// detail" for Svix's usual errors, "loc: msg; ..." for its validation
// errors, and the body itself otherwise, shortened, with secret (and its
// part after the "whsec_" prefix) removed.
func answerDetail(body []byte, secret string) string {
	var parsed struct {
		Code   string          `json:"code"`
		Detail json.RawMessage `json:"detail"`
	}
	text := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &parsed) == nil && len(parsed.Detail) > 0 {
		var detail string
		var items []struct {
			Loc []any  `json:"loc"`
			Msg string `json:"msg"`
		}
		switch {
		case json.Unmarshal(parsed.Detail, &detail) == nil:
			text = detail
			if parsed.Code != "" {
				text = parsed.Code + ": " + detail
			}
		case json.Unmarshal(parsed.Detail, &items) == nil:
			parts := make([]string, 0, len(items))
			for _, it := range items {
				loc := make([]string, len(it.Loc))
				for i, l := range it.Loc {
					loc[i] = fmt.Sprint(l)
				}
				parts = append(parts, strings.Join(loc, ".")+": "+it.Msg)
			}
			text = strings.Join(parts, "; ")
		}
	}
	return truncate.String(redact(text, secret), maxErrorBody)
}

// redact returns text with secret, and secret's part after its "whsec_"
// prefix, replaced.
func redact(text, secret string) string {
	if secret == "" {
		return text
	}
	text = strings.ReplaceAll(text, secret, "[redacted]")
	if bare, ok := strings.CutPrefix(secret, "whsec_"); ok && bare != "" {
		text = strings.ReplaceAll(text, bare, "[redacted]")
	}
	return text
}
