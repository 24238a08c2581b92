package ingest

import (
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/pipeline"
)

// TestDecodePulledLikeWrappedPush checks that a pulled message decodes as
// the wrapped push of the same message does, the entry aside.
func TestDecodePulledLikeWrappedPush(t *testing.T) {
	for name, data := range map[string]string{
		"valid":     validEvent,
		"invalid":   `{"id":"evt_2","type":"","source":"s","project":"p","user_id":"u","time":"yesterday","data":{}}`,
		"not JSON":  `{"id":`,
		"too large": validEvent + "                                        ",
	} {
		t.Run(name, func(t *testing.T) {
			pushed := Decode(http.Header{}, wrapped(t, "messageId", "publishTime", b64(data)), len(validEvent)+10)
			pulled := DecodePulled(&Pulled{
				Subscription: "projects/p/subscriptions/s", ID: "m-42", Data: []byte(data),
				Attributes:      map[string]string{"origin": "billing"},
				PublishTime:     time.Date(2026, 1, 2, 15, 4, 6, 0, time.FixedZone("CET", 3600)).Add(time.Hour),
				DeliveryAttempt: 3, OrderingKey: "k1",
			}, len(validEvent)+10)
			want := pushed.Delivery
			want.Entry, want.Wrapped = pipeline.EntryPull, false
			want.PublishTime = "2026-01-02T15:04:06Z"
			if !reflect.DeepEqual(pulled.Delivery, want) {
				t.Errorf("delivery = %+v, want %+v", pulled.Delivery, want)
			}
			if !reflect.DeepEqual(pulled.Event, pushed.Event) {
				t.Errorf("event = %+v, want %+v", pulled.Event, pushed.Event)
			}
			if (pulled.Err == nil) != (pushed.Err == nil) || pulled.Err != nil && pulled.Err.Error() != pushed.Err.Error() {
				t.Errorf("err = %v, want %v", pulled.Err, pushed.Err)
			}
			if string(pulled.Body) != data {
				t.Errorf("body = %q, want the data %q (what a dead letter of an undecodable event carries)", pulled.Body, data)
			}
		})
	}
}

func TestDecodePulledWithoutData(t *testing.T) {
	m := DecodePulled(&Pulled{Subscription: "projects/p/subscriptions/s", ID: "m-1"}, 0)
	var invalid *event.InvalidError
	if !errors.As(m.Err, &invalid) || invalid.Reason != "pulled message has no data" {
		t.Errorf("err = %v", m.Err)
	}
	if m.Delivery.Entry != pipeline.EntryPull || m.Delivery.MessageID != "m-1" || m.Delivery.PublishTime != "" {
		t.Errorf("delivery = %+v", m.Delivery)
	}
}
