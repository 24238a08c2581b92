package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gwook/gwook/internal/direct"
	"github.com/gwook/gwook/internal/store"
)

// messagesSummarySuffix ends the summary of each messages operation: they
// exist under either backend, and answer 404 under Svix.
const messagesSummarySuffix = " (DELIVERY_BACKEND=direct only; 404 under Svix)"

type messageOut struct {
	ID        string    `json:"id" example:"msg_2cY7sWq0mZ8kR1vB5nHj3d" doc:"the webhook-id of its attempts"`
	EventID   string    `json:"event_id"`
	EventType string    `json:"event_type"`
	CreatedAt time.Time `json:"created_at"`
	Status    string    `json:"status" enum:"pending,delivered,failed" doc:"pending while a delivery to one of its endpoints is pending; else failed when one failed; else delivered, which a message that matched no endpoint is too"`
}

type deliveryOut struct {
	EndpointID string    `json:"endpoint_id"`
	Status     string    `json:"status" enum:"pending,delivered,failed"`
	Attempts   int       `json:"attempts" doc:"attempts made"`
	LastError  *string   `json:"last_error" doc:"why the last attempt failed or the delivery was given up; null when it did not fail"`
	UpdatedAt  time.Time `json:"updated_at"`
}

type attemptOut struct {
	EndpointID     string    `json:"endpoint_id"`
	At             time.Time `json:"at" doc:"when the attempt started"`
	ResponseStatus *int      `json:"response_status" doc:"null when no response came"`
	DurationMS     int64     `json:"duration_ms"`
	Error          *string   `json:"error" doc:"why the attempt failed; null when it succeeded"`
}

type messageDetailOut struct {
	messageOut
	Deliveries []deliveryOut `json:"deliveries" nullable:"false" doc:"one per endpoint the message went to, by endpoint id"`
	Attempts   []attemptOut  `json:"attempts" nullable:"false" doc:"every attempt, to every endpoint, oldest first"`
}

type messageOutput struct {
	Body messageDetailOut
}

type messagePath struct {
	AppID     string `path:"app_id" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$"`
	MessageID string `path:"message_id" maxLength:"64"`
}

type listMessagesInput struct {
	AppID  string `path:"app_id" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$"`
	Limit  int    `query:"limit" minimum:"1" maximum:"250" default:"50" doc:"Page size"`
	Cursor string `query:"cursor" maxLength:"512" doc:"next_cursor of the previous page"`
}

type resendInput struct {
	AppID     string      `path:"app_id" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$"`
	MessageID string      `path:"message_id" maxLength:"64"`
	Body      *resendBody `required:"false"`
}

type resendBody struct {
	EndpointID string `json:"endpoint_id,omitempty" maxLength:"64" doc:"the one endpoint to send to again; default: every enabled endpoint the message went to"`
}

// statusOf is a message's status from its deliveries.
func statusOf(deliveries []store.Delivery) store.DeliveryStatus {
	status := store.DeliveryDelivered
	for _, d := range deliveries {
		switch d.Status {
		case store.DeliveryPending:
			return store.DeliveryPending
		case store.DeliveryFailed:
			status = store.DeliveryFailed
		}
	}
	return status
}

func messageOutOf(m store.Message, deliveries []store.Delivery) messageOut {
	return messageOut{ID: m.ID, EventID: m.EventID, EventType: m.EventType, CreatedAt: utc(m.CreatedAt),
		Status: string(statusOf(deliveries))}
}

// nonZero is v, or nil for the zero value.
func nonZero[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

func (s *server) registerMessages() {
	const path = "/applications/{app_id}/messages"
	huma.Register(s.api, operation(http.MethodGet, path, "list-messages",
		"List the events delivered or being delivered to an application, oldest first"+messagesSummarySuffix,
		http.StatusOK, http.StatusNotFound),
		func(ctx context.Context, in *listMessagesInput) (*listOutput[messageOut], error) {
			if err := s.messagesAllowed(ctx, readApp, in.AppID); err != nil {
				return nil, err
			}
			page, err := s.Store.ListMessages(ctx, in.AppID, pageOf(in.Limit, in.Cursor))
			if err != nil {
				return nil, s.storeError(ctx, err, "application", in.AppID)
			}
			ids := make([]string, len(page.Items))
			for i, m := range page.Items {
				ids[i] = m.ID
			}
			deliveries, err := s.Store.DeliveriesOf(ctx, ids)
			if err != nil {
				return nil, s.storeError(ctx, err, "application", in.AppID)
			}
			out := make([]messageOut, 0, len(page.Items))
			for _, m := range page.Items {
				out = append(out, messageOutOf(m, deliveries[m.ID]))
			}
			return listOf(store.Page[messageOut]{Items: out, NextCursor: page.NextCursor}, func(m messageOut) messageOut { return m }), nil
		})
	huma.Register(s.api, operation(http.MethodGet, path+"/{message_id}", "get-message",
		"Get a message with its deliveries and every attempt"+messagesSummarySuffix, http.StatusOK, http.StatusNotFound),
		func(ctx context.Context, in *messagePath) (*messageOutput, error) {
			if err := s.messagesAllowed(ctx, readApp, in.AppID); err != nil {
				return nil, err
			}
			return s.message(ctx, in.AppID, in.MessageID)
		})
	op := operation(http.MethodPost, path+"/{message_id}/resend", "resend-message",
		"Send a message again, to one endpoint or every enabled endpoint it went to: each delivery is pending again, "+
			"with a new attempt under the same webhook-id"+messagesSummarySuffix, http.StatusAccepted, http.StatusNotFound)
	huma.Register(s.api, op,
		func(ctx context.Context, in *resendInput) (*messageOutput, error) {
			if err := s.messagesAllowed(ctx, changeApp, in.AppID); err != nil {
				return nil, err
			}
			var endpointID string
			if in.Body != nil {
				endpointID = in.Body.EndpointID
			}
			if err := s.Messages.Resend(ctx, in.AppID, in.MessageID, endpointID); err != nil {
				return nil, s.resendError(ctx, err, in.MessageID, endpointID)
			}
			return s.message(ctx, in.AppID, in.MessageID)
		})
}

// messagesAllowed authorizes a messages operation on the application: 404
// under the Svix backend, which keeps no messages, or for an application
// that does not exist.
func (s *server) messagesAllowed(ctx context.Context, a access, appID string) error {
	if _, err := authorize(ctx, a, appID); err != nil {
		return err
	}
	if s.Messages == nil {
		return newProblem(ctx, http.StatusNotFound, "messages are kept only with DELIVERY_BACKEND=direct")
	}
	if !s.Catalog.HasApplication(appID) {
		return notFound(ctx, "application", appID)
	}
	return nil
}

// message answers the message id of the application appID in full.
func (s *server) message(ctx context.Context, appID, id string) (*messageOutput, error) {
	m, err := s.Store.GetMessage(ctx, appID, id)
	if err != nil {
		return nil, s.storeError(ctx, err, "message", id)
	}
	deliveries, err := s.Store.ListDeliveries(ctx, m.ID)
	if err != nil {
		return nil, s.storeError(ctx, err, "message", id)
	}
	out := messageDetailOut{messageOut: messageOutOf(m, deliveries),
		Deliveries: make([]deliveryOut, 0, len(deliveries)), Attempts: []attemptOut{}}
	for _, d := range deliveries {
		out.Deliveries = append(out.Deliveries, deliveryOut{EndpointID: d.EndpointID, Status: string(d.Status),
			Attempts: d.Attempts, LastError: nonZero(d.LastError), UpdatedAt: utc(d.UpdatedAt)})
	}
	opts := store.ListOptions{Limit: store.MaxLimit}
	for {
		page, err := s.Store.ListAttempts(ctx, m.ID, opts)
		if err != nil {
			return nil, s.storeError(ctx, err, "message", id)
		}
		for _, a := range page.Items {
			out.Attempts = append(out.Attempts, attemptOut{EndpointID: a.EndpointID, At: utc(a.At),
				ResponseStatus: nonZero(a.ResponseStatus), DurationMS: a.Duration.Milliseconds(), Error: nonZero(a.Error)})
		}
		if page.NextCursor == "" {
			break
		}
		opts.Cursor = page.NextCursor
	}
	return &messageOutput{Body: out}, nil
}

// resendError answers an error of direct.Queue.Resend.
func (s *server) resendError(ctx context.Context, err error, messageID, endpointID string) error {
	switch {
	case errors.Is(err, direct.ErrPending), errors.Is(err, store.ErrConflict):
		return newProblem(ctx, http.StatusConflict, "message "+quote(messageID)+" is still being delivered: it is attempted on its schedule; resend it once it is delivered or failed")
	case errors.Is(err, store.ErrNotFound):
		return s.storeError(ctx, err, "message", messageID)
	case errors.Is(err, direct.ErrNoDelivery) && endpointID == "":
		return newProblem(ctx, http.StatusBadRequest, "message "+quote(messageID)+" matched no endpoint: there is nothing to resend")
	case errors.Is(err, direct.ErrNoDelivery):
		return newProblem(ctx, http.StatusNotFound, "message "+quote(messageID)+" was not for endpoint "+quote(endpointID))
	case errors.Is(err, direct.ErrEndpointDeleted) && endpointID != "":
		return newProblem(ctx, http.StatusNotFound, "endpoint "+quote(endpointID)+" was deleted, so the message is not sent to it")
	case errors.Is(err, direct.ErrEndpointDisabled) && endpointID != "":
		return newProblem(ctx, http.StatusBadRequest, "endpoint "+quote(endpointID)+" is disabled: enable it to resend to it")
	case errors.Is(err, direct.ErrEndpointDeleted), errors.Is(err, direct.ErrEndpointDisabled):
		return newProblem(ctx, http.StatusBadRequest, "every endpoint message "+quote(messageID)+" went to is disabled or deleted")
	}
	return s.storeError(ctx, err, "message", messageID)
}
