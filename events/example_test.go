package events_test

import (
	"encoding/json"
	"fmt"

	"github.com/gwook/gwook/events"
)

// A producer marshals the data of a user.signed_up event; the nullable
// referral_code is written as null.
func Example() {
	data, _ := json.Marshal(events.UserSignedUpData{
		Email: "maria.lopez@example.com", Name: "María López",
		Plan: events.UserSignedUpDataPlanPro, SignupMethod: events.UserSignedUpDataSignupMethodGoogleOauth,
	})
	fmt.Println(string(data))
	// Output: {"email":"maria.lopez@example.com","marketing_opt_in":false,"name":"María López","plan":"pro","referral_code":null,"signup_method":"google_oauth"}
}
