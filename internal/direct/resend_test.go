package direct_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/gwook/gwook/internal/direct"
	"github.com/gwook/gwook/internal/store"
)

func TestResend(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		createApp(t, st, "app")
		createApp(t, st, "other")
		secretA, secretB := store.NewEndpointSecret(), store.NewEndpointSecret()
		failing := newReceiver(t, []string{secretA}, 500, 500, 500)
		healthy := newReceiver(t, []string{secretB})
		epA := createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: failing.URL, Secret: secretA})
		epB := createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: healthy.URL, Secret: secretB})
		q := newQueue(t, st, "10ms,20ms", nil, direct.Options{})
		startQueue(t, q)
		ev := newEvent("ev", "t")
		res := send(t, q, "app", ev)
		if d := waitDone(t, st, res.MessageID, epA.ID); d.Status != store.DeliveryFailed || d.Attempts != 3 {
			t.Fatalf("delivery to A %+v, want failed after 3 attempts", d)
		}
		if d := waitDone(t, st, res.MessageID, epB.ID); d.Status != store.DeliveryDelivered {
			t.Fatalf("delivery to B %+v, want delivered", d)
		}

		// Resending to A alone: one more attempt, which the endpoint now
		// answers, under the same webhook-id.
		if err := q.Resend(ctxFor(t), "app", res.MessageID, epA.ID); err != nil {
			t.Fatalf("resending to A: %v", err)
		}
		if d := waitDone(t, st, res.MessageID, epA.ID); d.Status != store.DeliveryDelivered || d.Attempts != 4 {
			t.Fatalf("delivery to A after the resend %+v, want delivered at the 4th attempt", d)
		}
		if got := attemptStatuses(t, st, res.MessageID, epA.ID); !slices.Equal(got, []int{500, 500, 500, 204}) {
			t.Fatalf("attempts to A %v", got)
		}
		whs, err := failing.WaitFor(1, waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		checkWebhook(t, whs[0], res.MessageID, ev.Raw)
		if n := healthy.requests.Load(); n != 1 {
			t.Fatalf("B received %d requests after a resend to A, want 1", n)
		}

		// Resending the whole message: both again, B's second under the
		// same webhook-id as its first.
		if err := q.Resend(ctxFor(t), "app", res.MessageID, ""); err != nil {
			t.Fatalf("resending: %v", err)
		}
		for _, ep := range []string{epA.ID, epB.ID} {
			if d := waitDone(t, st, res.MessageID, ep); d.Status != store.DeliveryDelivered {
				t.Fatalf("delivery to %s after the resend %+v", ep, d)
			}
		}
		whs, err = healthy.WaitFor(2, waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		checkWebhook(t, whs[0], res.MessageID, ev.Raw)
		checkWebhook(t, whs[1], res.MessageID, ev.Raw)
		if _, err := failing.WaitFor(2, waitTimeout); err != nil {
			t.Fatal(err)
		}

		// What is not resent.
		ctx := ctxFor(t)
		for _, tc := range []struct {
			name               string
			app, msg, endpoint string
			want               error
		}{
			{"unknown message", "app", "msg_nope", "", store.ErrNotFound},
			{"another application's message", "other", res.MessageID, "", store.ErrNotFound},
			{"an endpoint the message was not for", "app", res.MessageID, "ep_nope", direct.ErrNoDelivery},
		} {
			if err := q.Resend(ctx, tc.app, tc.msg, tc.endpoint); !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
		}

		// A message for no endpoint has nothing to resend.
		if err := st.DisableEndpoint(ctx, "app", epA.ID); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteEndpoint(ctx, "app", epB.ID); err != nil {
			t.Fatal(err)
		}
		none := send(t, q, "app", newEvent("ev-2", "t"))
		if none.Endpoints != 0 {
			t.Fatalf("%+v, want a message for no endpoint", none)
		}
		if err := q.Resend(ctx, "app", none.MessageID, ""); !errors.Is(err, direct.ErrNoDelivery) {
			t.Errorf("resending a message for no endpoint: %v, want ErrNoDelivery", err)
		}
		// A disabled or deleted endpoint is not sent to.
		before := failing.requests.Load() + healthy.requests.Load()
		if err := q.Resend(ctx, "app", res.MessageID, epA.ID); !errors.Is(err, direct.ErrEndpointDisabled) {
			t.Errorf("resending to a disabled endpoint: %v, want ErrEndpointDisabled", err)
		}
		if err := q.Resend(ctx, "app", res.MessageID, epB.ID); !errors.Is(err, direct.ErrEndpointDeleted) {
			t.Errorf("resending to a deleted endpoint: %v, want ErrEndpointDeleted", err)
		}
		if err := q.Resend(ctx, "app", res.MessageID, ""); err == nil {
			t.Error("resending a message whose endpoints are all disabled or deleted: no error")
		}
		for _, ep := range []string{epA.ID, epB.ID} {
			if d, _ := deliveryOf(ctx, st, res.MessageID, ep); d.Status != store.DeliveryDelivered {
				t.Errorf("refused resend changed the delivery to %s: %+v", ep, d)
			}
		}
		if after := failing.requests.Load() + healthy.requests.Load(); after != before {
			t.Errorf("%d requests after refused resends, want none", after-before)
		}
	})
}
