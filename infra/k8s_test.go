package infra_test

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/gwook/gwook/internal/config"
)

// secretExample is the Secret's example, kept out of kustomization.yaml so
// that an apply never overwrites the real Secret.
const secretExample = "secret.example.yaml"

// nonrootUID is the nonroot user of the distroless image (Dockerfile).
const nonrootUID = 65532

// secretVars are the variables that hold credentials: they belong in the
// Secret, never in the ConfigMap.
var secretVars = []string{"AUTH_PASSWORD", "SVIX_AUTH_TOKEN", "PUBSUB_VERIFICATION_TOKEN", "SENTRY_DSN"}

// requiredSecrets must be in the Secret: the Svix token always, the
// password because the ConfigMap sets AUTH_USERNAME, the DSN because the
// ConfigMap configures Sentry.
var requiredSecrets = []string{"AUTH_PASSWORD", "SVIX_AUTH_TOKEN", "SENTRY_DSN"}

// serviceMonitor is the part of the Prometheus Operator's CRD the manifest
// uses; decoding strictly into it catches misspelt fields.
type serviceMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		JobLabel  string               `json:"jobLabel,omitempty"`
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// kustomization is the part of kustomize's Kustomization the file uses.
type kustomization struct {
	metav1.TypeMeta `json:",inline"`
	Resources       []string         `json:"resources"`
	Images          []kustomizeImage `json:"images,omitempty"`
}

// kustomizeImage replaces a container image's name and tag.
type kustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
}

// manifests are the decoded files of infra/k8s, one resource per file.
type manifests struct {
	serviceAccount *corev1.ServiceAccount
	configMap      *corev1.ConfigMap
	secret         *corev1.Secret
	deployment     *appsv1.Deployment
	service        *corev1.Service
	hpa            *autoscalingv2.HorizontalPodAutoscaler
	pdb            *policyv1.PodDisruptionBudget
	serviceMonitor *serviceMonitor
	kustomization  *kustomization
	files          []string // every file name, sorted
}

// kinds maps each kind to its apiVersion and the field of manifests it
// decodes into.
var kinds = map[string]struct {
	apiVersion string
	target     func(m *manifests) any
}{
	"ServiceAccount":          {"v1", func(m *manifests) any { m.serviceAccount = new(corev1.ServiceAccount); return m.serviceAccount }},
	"ConfigMap":               {"v1", func(m *manifests) any { m.configMap = new(corev1.ConfigMap); return m.configMap }},
	"Secret":                  {"v1", func(m *manifests) any { m.secret = new(corev1.Secret); return m.secret }},
	"Deployment":              {"apps/v1", func(m *manifests) any { m.deployment = new(appsv1.Deployment); return m.deployment }},
	"Service":                 {"v1", func(m *manifests) any { m.service = new(corev1.Service); return m.service }},
	"HorizontalPodAutoscaler": {"autoscaling/v2", func(m *manifests) any { m.hpa = new(autoscalingv2.HorizontalPodAutoscaler); return m.hpa }},
	"PodDisruptionBudget":     {"policy/v1", func(m *manifests) any { m.pdb = new(policyv1.PodDisruptionBudget); return m.pdb }},
	"ServiceMonitor":          {"monitoring.coreos.com/v1", func(m *manifests) any { m.serviceMonitor = new(serviceMonitor); return m.serviceMonitor }},
	"Kustomization":           {"kustomize.config.k8s.io/v1beta1", func(m *manifests) any { m.kustomization = new(kustomization); return m.kustomization }},
}

// loadManifests decodes every YAML file in infra/k8s strictly (unknown or
// duplicate fields fail) into the type its kind names, and checks that
// each kind appears exactly once and that no file pins a namespace.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := &manifests{}
	seen := map[string]string{}
	for _, path := range paths {
		name := filepath.Base(path)
		m.files = append(m.files, name)
		data := readFile(t, path)
		if strings.Contains("\n"+string(data), "\n---") {
			t.Errorf("%s: one resource per file, found a document separator", name)
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(data, &tm); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		k, ok := kinds[tm.Kind]
		if !ok {
			t.Errorf("%s: kind %q has no decoder here; add it to kinds", name, tm.Kind)
			continue
		}
		if tm.APIVersion != k.apiVersion {
			t.Errorf("%s: %s has apiVersion %q, want %q", name, tm.Kind, tm.APIVersion, k.apiVersion)
		}
		if other, dup := seen[tm.Kind]; dup {
			t.Errorf("%s: a second %s (the first is in %s)", name, tm.Kind, other)
			continue
		}
		seen[tm.Kind] = name
		if err := yaml.UnmarshalStrict(data, k.target(m)); err != nil {
			t.Errorf("%s: does not decode strictly into a %s: %v", name, tm.Kind, err)
			continue
		}
		var meta struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal(data, &meta); err == nil && meta.Metadata.Namespace != "" {
			t.Errorf("%s: sets namespace %q; the manifests are namespace-agnostic", name, meta.Metadata.Namespace)
		}
	}
	for kind := range kinds {
		if _, ok := seen[kind]; !ok {
			t.Errorf("no %s in %s", kind, k8sDir)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return m
}

// container is the Deployment's only container.
func (m *manifests) container(t *testing.T) corev1.Container {
	t.Helper()
	cs := m.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("the Deployment has %d containers, want 1", len(cs))
	}
	return cs[0]
}

// containerPort returns the number of the container port named name.
func (m *manifests) containerPort(t *testing.T, name string) int32 {
	t.Helper()
	for _, p := range m.container(t).Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("the container has no port named %q", name)
	return 0
}

// resolve returns the container port number an IntOrString port refers to.
func (m *manifests) resolve(t *testing.T, port intstr.IntOrString) int32 {
	t.Helper()
	if port.Type == intstr.Int {
		return port.IntVal
	}
	return m.containerPort(t, port.StrVal)
}

// env is what the pod's environment holds from the ConfigMap and the Secret.
func (m *manifests) env() map[string]string {
	env := maps.Clone(m.configMap.Data)
	maps.Copy(env, m.secret.StringData)
	for k, v := range m.secret.Data {
		env[k] = string(v)
	}
	return env
}

func TestManifestsDecodeStrictly(t *testing.T) {
	m := loadManifests(t)
	t.Logf("decoded %d files: %s", len(m.files), strings.Join(m.files, ", "))
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	m := loadManifests(t)
	var want []string
	for _, f := range m.files {
		if f != "kustomization.yaml" && f != secretExample {
			want = append(want, f)
		}
	}
	got := slices.Sorted(slices.Values(m.kustomization.Resources))
	if !slices.Equal(got, want) {
		t.Errorf("kustomization.yaml resources = %v, want every manifest but the Secret example: %v", got, want)
	}
	image := m.container(t).Image
	if !slices.ContainsFunc(m.kustomization.Images, func(i kustomizeImage) bool {
		return i.Name == image && i.NewName != "" && i.NewTag != ""
	}) {
		t.Errorf("kustomization.yaml sets no newName and newTag for the container image %q", image)
	}
}

func TestDeploymentServesOnTheConfiguredPorts(t *testing.T) {
	m := loadManifests(t)
	cm := m.configMap.Data
	httpPort, err := strconv.Atoi(setting(t, cm, "HTTP_SERVER_PORT"))
	if err != nil {
		t.Fatal(err)
	}
	metricsPort, err := strconv.Atoi(setting(t, cm, "METRICS_PORT"))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.containerPort(t, "http"); int(got) != httpPort {
		t.Errorf("container port http = %d, want HTTP_SERVER_PORT = %d", got, httpPort)
	}
	if metricsPort == 0 {
		t.Fatal("METRICS_PORT is 0: /metrics would be on the traffic port, which the Service exposes")
	}
	if got := m.containerPort(t, "metrics"); int(got) != metricsPort {
		t.Errorf("container port metrics = %d, want METRICS_PORT = %d", got, metricsPort)
	}

	c := m.container(t)
	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"liveness", c.LivenessProbe, "/health"},
		{"readiness", c.ReadinessProbe, "/ready"},
		{"startup", c.StartupProbe, "/health"},
	}
	for _, p := range probes {
		if p.probe == nil {
			if p.name != "startup" {
				t.Errorf("no %s probe", p.name)
			}
			continue
		}
		g := p.probe.HTTPGet
		if g == nil {
			t.Errorf("%s probe: not an HTTP GET", p.name)
			continue
		}
		if g.Path != p.path {
			t.Errorf("%s probe: path %q, want %q", p.name, g.Path, p.path)
		}
		if g.Port.Type == intstr.String && g.Port.StrVal != "http" {
			t.Errorf("%s probe: port %q, want the port named http", p.name, g.Port.StrVal)
		}
		if got := m.resolve(t, g.Port); int(got) != httpPort {
			t.Errorf("%s probe: port %d, want HTTP_SERVER_PORT = %d", p.name, got, httpPort)
		}
	}

	// The Service sends port 80 to http and exposes metrics for Prometheus.
	ports := map[string]corev1.ServicePort{}
	for _, p := range m.service.Spec.Ports {
		ports[p.Name] = p
	}
	if p, ok := ports["http"]; !ok || p.Port != 80 || m.resolve(t, p.TargetPort) != int32(httpPort) {
		t.Errorf("Service port http = %+v, want 80 to container port %d", p, httpPort)
	}
	if !labels.SelectorFromSet(m.service.Spec.Selector).Matches(labels.Set(m.deployment.Spec.Template.Labels)) {
		t.Errorf("the Service's selector %v does not match the pod labels %v", m.service.Spec.Selector, m.deployment.Spec.Template.Labels)
	}

	// Annotation-based scraping.
	a := m.deployment.Spec.Template.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(metricsPort) || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("pod scrape annotations = %v, want scrape true, port %d, path /metrics", a, metricsPort)
	}

	// The ServiceMonitor: Service selected by labels, endpoint port by name.
	sm := m.serviceMonitor
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(m.service.Labels)) {
		t.Errorf("the ServiceMonitor's selector %v does not match the Service's labels %v", sel, m.service.Labels)
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("the ServiceMonitor has %d endpoints, want 1", len(sm.Spec.Endpoints))
	}
	e := sm.Spec.Endpoints[0]
	sp, ok := ports[e.Port]
	if !ok {
		t.Fatalf("the ServiceMonitor scrapes Service port %q, which the Service does not have", e.Port)
	}
	if got := m.resolve(t, sp.TargetPort); int(got) != metricsPort || e.Path != "/metrics" {
		t.Errorf("the ServiceMonitor scrapes container port %d at %q, want METRICS_PORT = %d at /metrics", got, e.Path, metricsPort)
	}
	if sm.Spec.JobLabel != "" && m.service.Labels[sm.Spec.JobLabel] == "" {
		t.Errorf("the ServiceMonitor's jobLabel %q is not a label of the Service", sm.Spec.JobLabel)
	}
}

func TestConfigMapAndSecretHoldOnlyWhatGwookReads(t *testing.T) {
	m := loadManifests(t)
	vars := config.Variables()
	secrets := map[string]string{}
	maps.Copy(secrets, m.secret.StringData)
	for k, v := range m.secret.Data {
		secrets[k] = string(v)
	}
	for k := range m.configMap.Data {
		if !readByBinary(vars, k) {
			t.Errorf("ConfigMap key %s is not a variable Gwook reads", k)
		}
		if slices.Contains(secretVars, k) {
			t.Errorf("ConfigMap key %s is a credential; it belongs in the Secret", k)
		}
		if _, ok := secrets[k]; ok {
			t.Errorf("%s is in both the ConfigMap and the Secret", k)
		}
	}
	for k, v := range secrets {
		if !readByBinary(vars, k) {
			t.Errorf("Secret key %s is not a variable Gwook reads", k)
		}
		if !strings.Contains(v, "REPLACE-ME") {
			t.Errorf("%s: Secret value %s is not marked as a placeholder (REPLACE-ME)", secretExample, k)
		}
	}
	for _, k := range requiredSecrets {
		if _, ok := secrets[k]; !ok {
			t.Errorf("the Secret has no %s", k)
		}
	}

	// The pod gets both, under the names the files give them.
	var fromCM, fromSecret bool
	for _, src := range m.container(t).EnvFrom {
		fromCM = fromCM || (src.ConfigMapRef != nil && src.ConfigMapRef.Name == m.configMap.Name)
		fromSecret = fromSecret || (src.SecretRef != nil && src.SecretRef.Name == m.secret.Name)
	}
	if !fromCM || !fromSecret {
		t.Errorf("the container's envFrom does not take ConfigMap %q and Secret %q", m.configMap.Name, m.secret.Name)
	}
}

// TestConfigurationLoads runs Gwook's own configuration checks on what the
// pod's environment would hold: every value parses, and the combination
// is accepted (authentication, timeouts within the write timeout).
func TestConfigurationLoads(t *testing.T) {
	m := loadManifests(t)
	if _, err := config.Load(context.Background(), envconfig.MapLookuper(m.env())); err != nil {
		t.Fatalf("Gwook would refuse to start with the ConfigMap and Secret: %v", err)
	}
}

// TestGracefulShutdownFitsGracePeriod checks the pod's grace period
// against the shutdown timing Gwook reads from the ConfigMap and the
// Secret, its defaults filling what they leave out. (config.Load itself
// checks that the graceful timeout outlasts the request budget.)
func TestGracefulShutdownFitsGracePeriod(t *testing.T) {
	m := loadManifests(t)
	cfg, err := config.Load(context.Background(), envconfig.MapLookuper(m.env()))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DrainDelay <= 0 {
		t.Error("HTTP_SERVER_DRAIN_DELAY is 0: the pod would close its listener while endpoints still send to it")
	}
	gp := m.deployment.Spec.Template.Spec.TerminationGracePeriodSeconds
	if gp == nil {
		t.Fatal("terminationGracePeriodSeconds is not set")
	}
	if grace := time.Duration(*gp) * time.Second; grace <= cfg.ShutdownBudget() {
		t.Errorf("terminationGracePeriodSeconds = %s, want more than the shutdown budget %s",
			grace, cfg.DescribeShutdownBudget())
	}
}

func TestPodRunsLockedDown(t *testing.T) {
	m := loadManifests(t)
	pod := m.deployment.Spec.Template.Spec
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != nonrootUID {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and runAsUser %d", psc, nonrootUID)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod securityContext: want seccompProfile RuntimeDefault")
	}
	c := m.container(t)
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("the container has no securityContext")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("container: want readOnlyRootFilesystem")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("container: want allowPrivilegeEscalation false")
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("container: privileged")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Error("container: want capabilities drop [ALL] and nothing added")
	case sc.RunAsUser != nil && *sc.RunAsUser != nonrootUID:
		t.Errorf("container: runAsUser %d, want %d", *sc.RunAsUser, nonrootUID)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[r]
		lim, okLim := c.Resources.Limits[r]
		if !okReq || !okLim {
			t.Errorf("container: want a %s request and limit", r)
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("container: %s request %s above its limit %s", r, req.String(), lim.String())
		}
	}
}

func TestAvailability(t *testing.T) {
	m := loadManifests(t)
	d := m.deployment
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Error("the Deployment wants at least 2 replicas")
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the Deployment's selector does not match its pod labels (%v)", err)
	}

	h := m.hpa.Spec
	if h.ScaleTargetRef.Kind != "Deployment" || h.ScaleTargetRef.Name != d.Name || h.ScaleTargetRef.APIVersion != "apps/v1" {
		t.Errorf("the HPA scales %+v, want Deployment %s", h.ScaleTargetRef, d.Name)
	}
	if h.MinReplicas == nil || *h.MinReplicas < 2 || h.MaxReplicas < *h.MinReplicas {
		t.Errorf("the HPA scales between %v and %d, want at least 2 and max >= min", h.MinReplicas, h.MaxReplicas)
	}
	if d.Spec.Replicas != nil && h.MinReplicas != nil && *d.Spec.Replicas != *h.MinReplicas {
		t.Errorf("Deployment replicas %d differ from the HPA's minReplicas %d", *d.Spec.Replicas, *h.MinReplicas)
	}
	cpu := slices.ContainsFunc(h.Metrics, func(ms autoscalingv2.MetricSpec) bool {
		return ms.Type == autoscalingv2.ResourceMetricSourceType && ms.Resource != nil && ms.Resource.Name == corev1.ResourceCPU
	})
	if !cpu {
		t.Error("the HPA does not scale on CPU")
	}

	p := m.pdb.Spec
	psel, err := metav1.LabelSelectorAsSelector(p.Selector)
	if err != nil || !psel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the PodDisruptionBudget's selector does not match the pod labels (%v)", err)
	}
	// A budget that allows no eviction at the minimum scale blocks node drains.
	if p.MinAvailable == nil || p.MinAvailable.Type != intstr.Int || h.MinReplicas == nil || p.MinAvailable.IntVal >= *h.MinReplicas {
		t.Errorf("the PodDisruptionBudget's minAvailable %v must be a number below the HPA's minReplicas", p.MinAvailable)
	}

	// Replicas share applications, endpoints and tokens only through
	// PostgreSQL; each would otherwise keep its own SQLite file.
	if !strings.HasPrefix(m.env()["DATABASE_URL"], "postgres://") {
		t.Error("several replicas need DATABASE_URL (PostgreSQL) in the ConfigMap or the Secret")
	}

	if got := d.Spec.Template.Spec.ServiceAccountName; got != m.serviceAccount.Name {
		t.Errorf("the pods run as service account %q, want %q", got, m.serviceAccount.Name)
	}
}
