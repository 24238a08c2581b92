package svixserver

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	validationerrors "github.com/pb33f/libopenapi-validator/errors"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// SpecPathEnv names the environment variable that, when set, gives the path
// of Svix's OpenAPI document instead of the copy in the Svix Go module.
const SpecPathEnv = "SVIX_OPENAPI_PATH"

// svixModule is the Go module whose source tree ships Svix's OpenAPI document.
const svixModule = "github.com/svix/svix-webhooks"

// specFileInModule is the OpenAPI document's path inside svixModule.
const specFileInModule = "codegen/lib-openapi.json"

// The Svix OpenAPI document is large (about 2.5 MB) and takes seconds to
// load, so it is loaded once per process and shared by every Server.
var (
	specOnce      sync.Once
	specValidator validator.Validator
	specErr       error
)

// sharedSpecValidator returns the validator for Svix's OpenAPI document,
// loading the document on first use.
func sharedSpecValidator() (validator.Validator, error) {
	specOnce.Do(func() {
		specValidator, specErr = loadSpecValidator()
	})
	return specValidator, specErr
}

// SpecPath returns the path of the Svix OpenAPI document the servers
// validate against: the value of SVIX_OPENAPI_PATH if set, otherwise
// codegen/lib-openapi.json in the Svix module directory reported by
// `go list -m`.
func SpecPath() (string, error) {
	if p := os.Getenv(SpecPathEnv); p != "" {
		return p, nil
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", svixModule)
	cmd.Dir = moduleRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locate module %s (set %s to the OpenAPI document instead): %w: %s",
			svixModule, SpecPathEnv, err, strings.TrimSpace(stderr.String()))
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("module %s is not downloaded (run `go mod download %s` or set %s)",
			svixModule, svixModule, SpecPathEnv)
	}
	return filepath.Join(dir, filepath.FromSlash(specFileInModule)), nil
}

// moduleRoot returns the root of the module this package was built from,
// or "" (the working directory) when that source tree is not available.
func moduleRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return ""
	}
	return root
}

// openAPIVersionField matches the document's top-level version declaration.
var openAPIVersionField = regexp.MustCompile(`"openapi"\s*:\s*"3\.1\.[0-9]+"`)

// downgradeToOpenAPI30 rewrites the document's declared version from 3.1 to
// 3.0.3. Svix declares 3.1.0 but writes its schemas in 3.0 style
// (`nullable: true`), which a 3.1 validator would ignore, rejecting nulls
// the real API accepts. Only the first occurrence, the top-level field, is
// rewritten, and its length is kept so error line and column numbers still
// point into the original file.
func downgradeToOpenAPI30(spec []byte) ([]byte, error) {
	loc := openAPIVersionField.FindIndex(spec)
	if loc == nil {
		return nil, errors.New(`no "openapi": "3.1.x" field found`)
	}
	out := make([]byte, 0, len(spec))
	out = append(out, spec[:loc[0]]...)
	out = append(out, `"openapi": "3.0.3"`...)
	out = append(out, spec[loc[1]:]...)
	return out, nil
}

// loadSpecValidator reads, patches and compiles Svix's OpenAPI document.
func loadSpecValidator() (validator.Validator, error) {
	path, err := SpecPath()
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read Svix OpenAPI document: %w", err)
	}
	spec, err := downgradeToOpenAPI30(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("build model of %s: %w", path, err)
	}
	keepOnlyServedPaths(&model.Model)
	return validator.NewValidatorFromV3Model(&model.Model), nil
}

// servedPaths are the OpenAPI paths the server implements.
var servedPaths = map[string]bool{
	"/api/v1/app":                                               true,
	"/api/v1/app/{app_id}":                                      true,
	"/api/v1/app/{app_id}/msg":                                  true,
	"/api/v1/app/{app_id}/endpoint":                             true,
	"/api/v1/app/{app_id}/endpoint/{endpoint_id}":               true,
	"/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret":        true,
	"/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate": true,
	"/api/v1/event-type":                                        true,
	"/api/v1/event-type/{event_type_name}":                      true,
	"/api/v1/health":                                            true,
}

// keepOnlyServedPaths removes the paths the server does not implement from
// the model. The validator compiles the schemas of every operation up
// front, which for all of Svix's API takes seconds (nearly a minute under
// the race detector); the components, and the positions that validation
// errors report in the original file, are left as they are.
func keepOnlyServedPaths(doc *v3.Document) {
	if doc.Paths == nil || doc.Paths.PathItems == nil {
		return
	}
	var unserved []string
	for p := range doc.Paths.PathItems.KeysFromOldest() {
		if !servedPaths[p] {
			unserved = append(unserved, p)
		}
	}
	for _, p := range unserved {
		doc.Paths.PathItems.Delete(p)
	}
}

// validateRequest checks r against the Svix OpenAPI document and returns
// the mismatches found, if any. The request body must be replayable.
func validateRequest(v validator.Validator, r *http.Request) []*validationerrors.ValidationError {
	ok, errs := v.ValidateHttpRequestSync(r)
	if ok {
		return nil
	}
	return errs
}
