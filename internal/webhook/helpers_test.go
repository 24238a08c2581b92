package webhook_test

import (
	"encoding/base64"
	"strings"
)

// testSecrets returns n distinct valid secrets of 24, 32, 40... bytes.
func testSecrets(n int) []string {
	secrets := make([]string, n)
	for i := range secrets {
		key := []byte(strings.Repeat(string(rune('a'+i)), 24+8*i))
		secrets[i] = "whsec_" + base64.StdEncoding.EncodeToString(key)
	}
	return secrets
}
