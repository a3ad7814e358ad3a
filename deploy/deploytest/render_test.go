// Package deploytest checks the deployment files under deploy/: it lints and
// renders the Helm chart (deploy/helm/replicator) with Helm's own Go
// packages, decodes every rendered object strictly into its Kubernetes API
// type (an unknown or misspelled field fails), evaluates each pod against
// the "restricted" Pod Security Standard with the admission controller's own
// checks, and asserts what the replicator needs: a PersistentVolume and one
// replica for the embedded buffer, probes, secrets only from Secret objects,
// pinned images, the alert rules of deploy/prometheus/alerts.yaml, the
// NATS cluster's configuration as nats-server itself reads it (client and
// route authentication), and NetworkPolicies that admit exactly the
// connections the pods need (evaluated against the rendered pods' labels).
// The
// plain manifests in deploy/kubernetes/ are the chart's renderings, checked
// in; this test fails when they are out of date, and
//
//	cd deploy/deploytest && go test -run TestManifests -update
//
// (or `make deploy-manifests`) rewrites them and the chart's copy of the
// alert rules.
//
// It is a module of its own so that Helm and the Kubernetes API packages do
// not become dependencies of the replicator; `make test` runs it.
package deploytest

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	natsserver "github.com/nats-io/nats-server/v2/server"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite deploy/kubernetes/*.yaml and the chart's files/alerts.yaml")

const (
	chartDir   = "../helm/replicator"
	alertsFile = "../prometheus/alerts.yaml"
	// The release name and namespace of the checked-in renderings. The
	// objects carry no namespace: apply them with `kubectl -n NS`.
	releaseName = "replicator"
	namespace   = "replicator"
	metricsPort = 9187
	dataMount   = "/var/lib/replicator"
)

// A layout is one value set of the chart and its checked-in rendering.
type layout struct {
	name       string
	valuesFile string // relative to the chart; "" for values.yaml alone
	manifest   string
	embedded   bool
}

var layouts = []layout{
	{name: "embedded", manifest: "../kubernetes/replicator.yaml", embedded: true},
	{name: "external-nats", valuesFile: "ci/external-nats-values.yaml", manifest: "../kubernetes/replicator-external-nats.yaml"},
}

// render renders the chart as `helm template replicator deploy/helm/replicator
// --namespace replicator [-f valuesFile]` does, in Helm's install order.
// overrides replace top-level values of valuesFile; Helm merges maps among
// them into the chart's defaults key by key.
func render(t *testing.T, valuesFile string, overrides map[string]any) (string, error) {
	t.Helper()
	return renderRelease(t, releaseName, valuesFile, overrides)
}

// renderRelease is render with another release name (in the same namespace).
func renderRelease(t *testing.T, releaseName, valuesFile string, overrides map[string]any) (string, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	vals := map[string]any{}
	if valuesFile != "" {
		v, err := chartutil.ReadValuesFile(filepath.Join(chartDir, valuesFile))
		if err != nil {
			t.Fatalf("read %s: %v", valuesFile, err)
		}
		vals = v.AsMap()
	}
	for k, v := range overrides {
		vals[k] = v
	}
	rv, err := chartutil.ToRenderValues(chrt, vals, chartutil.ReleaseOptions{
		Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true,
	}, nil)
	if err != nil {
		return "", err
	}
	files, err := engine.Render(chrt, rv)
	if err != nil {
		return "", err
	}
	for name := range files {
		if !strings.HasSuffix(name, ".yaml") {
			delete(files, name) // _helpers.tpl, NOTES.txt
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return "", err
	}
	if len(hooks) > 0 {
		t.Fatalf("the chart has hooks; the plain manifests would lose them")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated from the Helm chart deploy/helm/replicator; do not edit.\n")
	fmt.Fprintf(&b, "# Regenerate with `make deploy-manifests`. Equivalent to:\n")
	fmt.Fprintf(&b, "#   helm template %s deploy/helm/replicator --namespace %s", releaseName, namespace)
	if valuesFile != "" {
		fmt.Fprintf(&b, " \\\n#     -f deploy/helm/replicator/%s", valuesFile)
	}
	fmt.Fprintf(&b, "\n# Apply with: kubectl apply -n NAMESPACE -f FILE (create the Secrets first, see README.md).\n")
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, strings.TrimSpace(m.Content))
	}
	return b.String(), nil
}

// objects is a rendering decoded into typed objects.
type objects struct {
	configMaps   []*corev1.ConfigMap
	services     []*corev1.Service
	statefulSets []*appsv1.StatefulSet
	monitors     []*monitoringv1.ServiceMonitor
	rules        []*monitoringv1.PrometheusRule
	policies     []*networkingv1.NetworkPolicy
}

// decode splits a multi-document YAML stream and decodes each document into
// its Kubernetes type, rejecting unknown fields and duplicate keys.
func decode(t *testing.T, stream string) objects {
	t.Helper()
	var objs objects
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(stream, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		js, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, doc)
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(js, &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var into any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ConfigMap":
			o := &corev1.ConfigMap{}
			objs.configMaps, into = append(objs.configMaps, o), o
		case "v1 Service":
			o := &corev1.Service{}
			objs.services, into = append(objs.services, o), o
		case "apps/v1 StatefulSet":
			o := &appsv1.StatefulSet{}
			objs.statefulSets, into = append(objs.statefulSets, o), o
		case "monitoring.coreos.com/v1 ServiceMonitor":
			o := &monitoringv1.ServiceMonitor{}
			objs.monitors, into = append(objs.monitors, o), o
		case "monitoring.coreos.com/v1 PrometheusRule":
			o := &monitoringv1.PrometheusRule{}
			objs.rules, into = append(objs.rules, o), o
		case "networking.k8s.io/v1 NetworkPolicy":
			o := &networkingv1.NetworkPolicy{}
			objs.policies, into = append(objs.policies, o), o
		default:
			// A Secret in particular: the chart must never render one.
			t.Fatalf("document %d: unexpected kind %q %q", i, tm.APIVersion, tm.Kind)
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(into); err != nil {
			t.Fatalf("document %d (%s): %v\n%s", i, tm.Kind, err, doc)
		}
	}
	return objs
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func TestLint(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			vals := map[string]any{}
			if l.valuesFile != "" {
				v, err := chartutil.ReadValuesFile(filepath.Join(chartDir, l.valuesFile))
				if err != nil {
					t.Fatal(err)
				}
				vals = v.AsMap()
			}
			// As `helm lint --strict`: warnings fail too.
			res := lint.All(chartDir, vals, namespace, false)
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				} else {
					t.Logf("helm lint: %s", m)
				}
			}
		})
	}
}

// TestManifests checks that deploy/kubernetes/ holds the chart's current
// renderings and that the chart carries the current alert rules.
func TestManifests(t *testing.T) {
	canonical, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(chartDir, "files", "alerts.yaml")
	if *update {
		if err := os.WriteFile(copyPath, canonical, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := os.ReadFile(copyPath); err != nil || !bytes.Equal(got, canonical) {
		t.Errorf("%s differs from %s (err %v); run `make deploy-manifests`", copyPath, alertsFile, err)
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			out, err := render(t, l.valuesFile, nil)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(l.manifest, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(l.manifest)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != out {
				t.Errorf("%s is not the chart's current rendering; run `make deploy-manifests`", l.manifest)
			}
		})
	}
}

// TestLayouts checks the renderings (and so the checked-in manifests, which
// TestManifests keeps equal to them).
func TestLayouts(t *testing.T) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			out, err := render(t, l.valuesFile, nil)
			if err != nil {
				t.Fatal(err)
			}
			objs := decode(t, out)
			checkNoSecretsInConfigMaps(t, objs)
			checkAlertRules(t, objs)
			checkMonitoring(t, objs)
			for _, sts := range objs.statefulSets {
				checkRestricted(t, evaluator, sts)
				checkImagesPinned(t, sts)
				checkSecretEnv(t, sts)
			}
			rep := find(t, objs.statefulSets, releaseName)
			checkReplicator(t, l, rep, find(t, objs.configMaps, releaseName))
			checkNetworkPolicyObjects(t, objs)
			if l.embedded {
				if len(objs.statefulSets) != 1 {
					t.Errorf("embedded layout: %d StatefulSets, want only the replicator", len(objs.statefulSets))
				}
			} else {
				checkNATSCluster(t, find(t, objs.statefulSets, releaseName+"-nats"), find(t, objs.configMaps, releaseName+"-nats"), rep)
			}
		})
	}
}

func find[T interface{ GetName() string }](t *testing.T, objs []T, name string) T {
	t.Helper()
	for _, o := range objs {
		if o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no object named %q", name)
	var zero T
	return zero
}

// checkRestricted evaluates the pod template with the Pod Security Admission
// controller's checks at the "restricted" level, and asserts the fields
// that level needs explicitly too.
func checkRestricted(t *testing.T, ev policy.Evaluator, sts *appsv1.StatefulSet) {
	t.Helper()
	pod := sts.Spec.Template
	results := ev.EvaluatePod(psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}, &pod.ObjectMeta, &pod.Spec)
	if agg := policy.AggregateCheckResults(results); !agg.Allowed {
		t.Errorf("%s: violates the restricted Pod Security Standard: %s (%s)", sts.Name, agg.ForbiddenReason(), strings.Join(agg.ForbiddenDetails, "; "))
	}
	psc := pod.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: pod securityContext must set runAsNonRoot: true and a non-zero runAsUser", sts.Name)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile must be RuntimeDefault", sts.Name)
	}
	if psc == nil || psc.FSGroup == nil {
		t.Errorf("%s: pod securityContext needs fsGroup so the volume is writable", sts.Name)
	}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s/%s: no securityContext", sts.Name, c.Name)
			continue
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s/%s: allowPrivilegeEscalation must be false", sts.Name, c.Name)
		case sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
			t.Errorf("%s/%s: capabilities must drop ALL and add none", sts.Name, c.Name)
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
			t.Errorf("%s/%s: runAsNonRoot must be true", sts.Name, c.Name)
		case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
			t.Errorf("%s/%s: seccompProfile must be RuntimeDefault", sts.Name, c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s/%s: the root filesystem should be read-only", sts.Name, c.Name)
		}
	}
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Errorf("%s: the pod needs no API token; set automountServiceAccountToken: false", sts.Name)
	}
}

var digestRE = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)

// checkImagesPinned: an exact tag (not latest, not a bare major) or a digest.
func checkImagesPinned(t *testing.T, sts *appsv1.StatefulSet) {
	t.Helper()
	for _, c := range sts.Spec.Template.Spec.Containers {
		img := c.Image
		if digestRE.MatchString(img) {
			continue
		}
		i := strings.LastIndex(img, ":")
		if i < 0 || strings.Contains(img[i:], "/") {
			t.Errorf("%s/%s: image %q has no tag", sts.Name, c.Name, img)
			continue
		}
		tag := img[i+1:]
		if tag == "latest" || !regexp.MustCompile(`^v?\d+\.\d+\.\d+`).MatchString(tag) {
			t.Errorf("%s/%s: image %q is not pinned to an exact version or a digest", sts.Name, c.Name, img)
		}
		if c.ImagePullPolicy == corev1.PullAlways {
			t.Errorf("%s/%s: pullPolicy Always with a pinned image", sts.Name, c.Name)
		}
	}
}

// checkSecretEnv: connection strings come from Secret objects, never literals.
func checkSecretEnv(t *testing.T, sts *appsv1.StatefulSet) {
	t.Helper()
	for _, c := range sts.Spec.Template.Spec.Containers {
		byName := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			byName[e.Name] = e
			if credentialsRE.MatchString(e.Value) && !strings.Contains(e.Value, ":$(") {
				t.Errorf("%s/%s: env %s holds a credential literally", sts.Name, c.Name, e.Name)
			}
		}
		for _, name := range []string{"REPLICATOR_SOURCE_URI", "REPLICATOR_TARGET_URL", "NATS_PASSWORD", "NATS_ROUTE_PASSWORD"} {
			e, ok := byName[name]
			if !ok {
				continue
			}
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("%s/%s: env %s must come from a secretKeyRef", sts.Name, c.Name, name)
			}
		}
		if e, ok := byName["REPLICATOR_BUFFER_NATS_URL"]; ok && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			// Allowed only as a reference to a secret-backed variable.
			if !strings.Contains(e.Value, "$(NATS_PASSWORD)") {
				t.Errorf("%s/%s: REPLICATOR_BUFFER_NATS_URL is neither from a Secret nor built from one", sts.Name, c.Name)
			}
			if _, ok := byName["NATS_PASSWORD"]; !ok {
				t.Errorf("%s/%s: REPLICATOR_BUFFER_NATS_URL refers to $(NATS_PASSWORD), which is not defined", sts.Name, c.Name)
			}
		}
		// Kubernetes expands $(VAR) only for variables defined earlier in
		// the list; a later or unknown one stays literally in the value.
		defined := map[string]bool{}
		for _, e := range c.Env {
			for _, m := range envRefRE.FindAllStringSubmatch(e.Value, -1) {
				if !defined[m[1]] {
					t.Errorf("%s/%s: env %s refers to $(%s), which is not defined before it", sts.Name, c.Name, e.Name, m[1])
				}
			}
			defined[e.Name] = true
		}
	}
}

// envRefRE matches a Kubernetes dependent-variable reference $(VAR).
var envRefRE = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// credentialsRE matches user:password@ in a URL.
var credentialsRE = regexp.MustCompile(`://[^/\s:@]+:[^@\s]+@`)

// checkNoSecretsInConfigMaps: no credentials in any ConfigMap, and the
// replicator's config leaves its connection strings to the environment.
func checkNoSecretsInConfigMaps(t *testing.T, objs objects) {
	t.Helper()
	passwordRE := regexp.MustCompile(`(?im)^\s*(password|pass|token|secret)\s*[:=]\s*(\S+)`)
	for _, cm := range objs.configMaps {
		if len(cm.BinaryData) > 0 {
			t.Errorf("ConfigMap %s: unexpected binaryData", cm.Name)
		}
		for key, v := range cm.Data {
			if credentialsRE.MatchString(v) {
				t.Errorf("ConfigMap %s/%s holds a URL with credentials", cm.Name, key)
			}
			for _, m := range passwordRE.FindAllStringSubmatch(v, -1) {
				if !strings.HasPrefix(m[2], "$") { // an environment reference
					t.Errorf("ConfigMap %s/%s holds a literal %s", cm.Name, key, m[1])
				}
			}
		}
	}
}

// replicatorConfig is the part of the config file the checks read.
type replicatorConfig struct {
	Source  map[string]any `json:"source"`
	Target  map[string]any `json:"target"`
	Buffer  map[string]any `json:"buffer"`
	Metrics map[string]any `json:"metrics"`
}

func checkReplicator(t *testing.T, l layout, sts *appsv1.StatefulSet, cm *corev1.ConfigMap) {
	t.Helper()
	var cfg replicatorConfig
	if err := yaml.Unmarshal([]byte(cm.Data["replicator.yaml"]), &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	// Secrets: from the environment only (or ${VAR} references).
	for _, kv := range []struct {
		section map[string]any
		key     string
	}{{cfg.Source, "uri"}, {cfg.Target, "url"}, {cfg.Buffer, "nats_url"}} {
		if v, _ := kv.section[kv.key].(string); v != "" && !strings.HasPrefix(v, "${") {
			t.Errorf("config: %s is set in the ConfigMap; it must come from the Secret", kv.key)
		}
	}
	if got := cfg.Metrics["listen"]; got != fmt.Sprintf("0.0.0.0:%d", metricsPort) {
		t.Errorf("config: metrics.listen = %v; in a pod it must listen on 0.0.0.0:%d", got, metricsPort)
	}

	spec := sts.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("replicator pod: %d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	if !reflect.DeepEqual(c.Args, []string{"run", "--config", "/etc/replicator/replicator.yaml"}) {
		t.Errorf("replicator args = %q", c.Args)
	}
	if spec.TerminationGracePeriodSeconds == nil || *spec.TerminationGracePeriodSeconds < 60 {
		t.Errorf("terminationGracePeriodSeconds must leave `run` time to drain (>= 60 s)")
	}

	// Probes: startup generous (the first start's snapshot), then liveness on
	// /healthz and readiness on /readyz, all on the metrics port.
	var port int32
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			port = p.ContainerPort
		}
	}
	if port != metricsPort {
		t.Errorf("metrics containerPort = %d, want %d", port, metricsPort)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"startup", c.StartupProbe, "/healthz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: missing or not HTTP", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "metrics" {
			t.Errorf("%s probe: GET %s on %s, want %s on metrics", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}
	if sp := c.StartupProbe; sp != nil && sp.PeriodSeconds*sp.FailureThreshold < 3600 {
		t.Errorf("startup probe allows %d s; the first snapshot needs hours", sp.PeriodSeconds*sp.FailureThreshold)
	}

	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	var claims []string
	for _, pvc := range sts.Spec.VolumeClaimTemplates {
		claims = append(claims, pvc.Name)
	}
	env := map[string]bool{}
	for _, e := range c.Env {
		env[e.Name] = true
	}
	if l.embedded {
		if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 1 {
			t.Errorf("embedded buffer: replicas must be 1")
		}
		if !reflect.DeepEqual(claims, []string{"data"}) || mounts["data"] != dataMount {
			t.Errorf("embedded buffer: want the PersistentVolumeClaim template data mounted at %s; claims %v, mounts %v", dataMount, claims, mounts)
		}
		if dir, _ := cfg.Buffer["data_dir"].(string); !strings.HasPrefix(dir, dataMount+"/") {
			t.Errorf("embedded buffer: buffer.data_dir = %q, not on the volume %s", dir, dataMount)
		}
		if env["REPLICATOR_BUFFER_NATS_URL"] {
			t.Errorf("embedded buffer: REPLICATOR_BUFFER_NATS_URL is set")
		}
		if r := sts.Spec.PersistentVolumeClaimRetentionPolicy; r == nil || r.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
			t.Errorf("embedded buffer: the claim must be retained when the StatefulSet is deleted")
		}
		// A second replica is refused.
		if _, err := render(t, l.valuesFile, map[string]any{"replicaCount": 2}); err == nil || !strings.Contains(err.Error(), "replicaCount must be 1") {
			t.Errorf("replicaCount 2 with the embedded buffer: err = %v, want a refusal", err)
		}
	} else {
		if len(claims) != 0 {
			t.Errorf("external NATS: the replicator needs no volume, has %v", claims)
		}
		if !env["REPLICATOR_BUFFER_NATS_URL"] {
			t.Errorf("external NATS: REPLICATOR_BUFFER_NATS_URL is not set")
		}
		if fmt.Sprint(cfg.Buffer["replicas"]) != "3" {
			t.Errorf("external NATS: buffer.replicas = %v, want 3", cfg.Buffer["replicas"])
		}
	}
}

func checkNATSCluster(t *testing.T, sts *appsv1.StatefulSet, cm *corev1.ConfigMap, rep *appsv1.StatefulSet) {
	t.Helper()
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 {
		t.Errorf("NATS cluster: replicas must be 3")
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Errorf("NATS cluster: each node needs a PersistentVolumeClaim for JetStream")
	}
	conf := cm.Data["nats.conf"]
	for _, want := range []string{"jetstream {", "store_dir: /data/", "cluster {", "password: $NATS_PASSWORD", "server_name: $SERVER_NAME"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nats.conf lacks %q", want)
		}
	}
	checkNATSAuth(t, sts, cm, rep)
}

// Secret values for checkNATSAuth, shaped like `openssl rand -hex 24`
// (one starts with digits, which the NATS config lexer must still read as a
// string).
var fakeSecrets = map[string]string{
	"password":       "0123456789abcdef0123456789abcdef0123456789abcdef",
	"route-password": "f3e2d1c0b9a8f3e2d1c0b9a8f3e2d1c0b9a8f3e2d1c0b9a8",
}

// podEnv returns a container's environment as the kubelet builds it for
// pod podName: secretKeyRefs from fakeSecrets (all from secretName),
// metadata.name, and $(VAR) expanded from the variables before it.
func podEnv(t *testing.T, c corev1.Container, podName, secretName string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = envRefRE.ReplaceAllStringFunc(e.Value, func(ref string) string {
				if v, ok := env[envRefRE.FindStringSubmatch(ref)[1]]; ok {
					return v
				}
				return ref
			})
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := fakeSecrets[ref.Key]
			if !ok || ref.Name != secretName {
				t.Errorf("%s: env %s reads Secret %s key %s; want the NATS Secret %s with a key of %v", podName, e.Name, ref.Name, ref.Key, secretName, fakeSecrets)
			}
			env[e.Name] = v
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			env[e.Name] = podName
		}
	}
	return env
}

// checkNATSAuth reads each node's nats.conf with nats-server's own config
// parser, in the environment Kubernetes gives that pod, and checks that
// clients and routes authenticate with the passwords of the Secret: every
// route URL a node opens carries the user and password that the nodes'
// cluster authorization demands, and the replicator's URLs carry the
// client credentials.
func checkNATSAuth(t *testing.T, sts *appsv1.StatefulSet, cm *corev1.ConfigMap, rep *appsv1.StatefulSet) {
	t.Helper()
	c := sts.Spec.Template.Spec.Containers[0]
	// The config is read by the nats-server version of this module's
	// go.mod; the image must run the same.
	gomod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/nats-io/nats-server/v2 v(\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatalf("go.mod does not require github.com/nats-io/nats-server/v2")
	}
	if !strings.Contains(c.Image, ":"+string(m[1])) {
		t.Errorf("NATS image %s; this test reads nats.conf with nats-server %s (deploy/deploytest/go.mod): keep them equal", c.Image, m[1])
	}
	var secretName string
	keys := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			keys[e.Name] = e.ValueFrom.SecretKeyRef.Key
			secretName = e.ValueFrom.SecretKeyRef.Name
		}
	}
	if keys["NATS_PASSWORD"] == "" || keys["NATS_ROUTE_PASSWORD"] == "" || keys["NATS_PASSWORD"] == keys["NATS_ROUTE_PASSWORD"] {
		t.Fatalf("NATS pod: want NATS_PASSWORD and NATS_ROUTE_PASSWORD from two keys of the Secret, have %v", keys)
	}
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = int(p.ContainerPort)
	}
	confFile := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(confFile, []byte(cm.Data["nats.conf"]), 0o600); err != nil {
		t.Fatal(err)
	}
	replicas := int(*sts.Spec.Replicas)
	var clientUser, clientPass string
	for i := 0; i < replicas; i++ {
		pod := fmt.Sprintf("%s-%d", sts.Name, i)
		env := podEnv(t, c, pod, secretName)
		for k, v := range env {
			t.Setenv(k, v)
		}
		opts, err := natsserver.ProcessConfigFile(confFile)
		if err != nil {
			t.Fatalf("%s: nats-server rejects nats.conf: %v", pod, err)
		}
		if opts.ServerName != pod {
			t.Errorf("%s: server_name %q", pod, opts.ServerName)
		}
		if opts.Port != ports["client"] || opts.Cluster.Port != ports["cluster"] || opts.HTTPPort != ports["monitor"] {
			t.Errorf("%s: nats.conf listens on %d/%d/%d, container ports %v", pod, opts.Port, opts.Cluster.Port, opts.HTTPPort, ports)
		}
		clientUser, clientPass = opts.Username, opts.Password
		if clientUser == "" || clientPass != fakeSecrets[keys["NATS_PASSWORD"]] {
			t.Errorf("%s: client authorization %q/%q, want a user with the Secret's %s", pod, clientUser, clientPass, keys["NATS_PASSWORD"])
		}
		routeUser, routePass := opts.Cluster.Username, opts.Cluster.Password
		if routeUser == "" || routePass != fakeSecrets[keys["NATS_ROUTE_PASSWORD"]] {
			t.Errorf("%s: cluster authorization %q/%q, want a user with the Secret's %s", pod, routeUser, routePass, keys["NATS_ROUTE_PASSWORD"])
		}
		if routeUser == clientUser {
			t.Errorf("%s: routes and clients share the user %q", pod, routeUser)
		}
		// Each route: a node of this StatefulSet by its stable DNS name,
		// with the credentials the cluster authorization accepts.
		var hosts []string
		for _, r := range opts.Routes {
			pass, _ := r.User.Password()
			if r.User.Username() != routeUser || pass != routePass {
				t.Errorf("%s: route %s does not carry the cluster credentials", pod, r.Redacted())
			}
			if r.Port() != fmt.Sprint(opts.Cluster.Port) {
				t.Errorf("%s: route %s is not on the route port %d", pod, r.Redacted(), opts.Cluster.Port)
			}
			hosts = append(hosts, r.Hostname())
		}
		var want []string
		for j := 0; j < replicas; j++ {
			want = append(want, fmt.Sprintf("%s-%d.%s", sts.Name, j, sts.Spec.ServiceName))
		}
		if !reflect.DeepEqual(hosts, want) {
			t.Errorf("%s: routes to %v, want %v", pod, hosts, want)
		}
	}

	// The replicator's URLs: every node's client port with the client user.
	rc := rep.Spec.Template.Spec.Containers[0]
	var repSecret string
	for _, e := range rc.Env {
		if e.Name == "NATS_PASSWORD" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			repSecret = e.ValueFrom.SecretKeyRef.Name
			if e.ValueFrom.SecretKeyRef.Key != keys["NATS_PASSWORD"] {
				t.Errorf("replicator: NATS_PASSWORD from key %s, the NATS pods use %s", e.ValueFrom.SecretKeyRef.Key, keys["NATS_PASSWORD"])
			}
		}
	}
	if repSecret != secretName {
		t.Errorf("replicator: NATS_PASSWORD from Secret %q, the NATS pods use %q", repSecret, secretName)
	}
	renv := podEnv(t, withoutEnv(rc, "REPLICATOR_SOURCE_URI", "REPLICATOR_TARGET_URL"), rep.Name+"-0", secretName)
	urls := strings.Split(renv["REPLICATOR_BUFFER_NATS_URL"], ",")
	if len(urls) != replicas {
		t.Errorf("replicator: %d NATS URLs, want %d", len(urls), replicas)
	}
	for j, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("replicator: NATS URL %d: %v", j, err)
			continue
		}
		pass, _ := u.User.Password()
		if u.User.Username() != clientUser || pass != clientPass {
			t.Errorf("replicator: NATS URL %s does not carry the client credentials", u.Redacted())
		}
		if want := fmt.Sprintf("%s-%d.%s:%d", sts.Name, j, sts.Spec.ServiceName, ports["client"]); u.Host != want {
			t.Errorf("replicator: NATS URL %d is %s, want %s", j, u.Host, want)
		}
	}
}

func withoutEnv(c corev1.Container, names ...string) corev1.Container {
	var env []corev1.EnvVar
	for _, e := range c.Env {
		if !slices.Contains(names, e.Name) {
			env = append(env, e)
		}
	}
	c.Env = env
	return c
}

// checkAlertRules: the PrometheusRule carries exactly the groups of
// deploy/prometheus/alerts.yaml.
func checkAlertRules(t *testing.T, objs objects) {
	t.Helper()
	if len(objs.rules) != 1 {
		t.Fatalf("%d PrometheusRules, want 1", len(objs.rules))
	}
	raw, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		t.Fatal(err)
	}
	var want monitoringv1.PrometheusRuleSpec
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&want); err != nil {
		t.Fatalf("%s as a PrometheusRule spec: %v", alertsFile, err)
	}
	got := objs.rules[0].Spec
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("PrometheusRule spec differs from %s:\n got %s\nwant %s", alertsFile, g, w)
	}
	var alerts []string
	for _, g := range got.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
		}
	}
	sort.Strings(alerts)
	if len(alerts) < 10 || !strings.Contains(strings.Join(alerts, ","), "ReplicatorDown") {
		t.Errorf("PrometheusRule alerts: %v", alerts)
	}
}

// checkMonitoring: the ServiceMonitor selects the metrics Service, which
// selects the replicator pods and names the port the ServiceMonitor scrapes.
func checkMonitoring(t *testing.T, objs objects) {
	t.Helper()
	svc := find(t, objs.services, releaseName)
	sts := find(t, objs.statefulSets, releaseName)
	if sts.Spec.ServiceName != svc.Name {
		t.Errorf("StatefulSet serviceName %q, want %q", sts.Spec.ServiceName, svc.Name)
	}
	podLabels := sts.Spec.Template.Labels
	for k, v := range svc.Spec.Selector {
		if podLabels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pod labels", k, v)
		}
	}
	for k, v := range sts.Spec.Selector.MatchLabels {
		if podLabels[k] != v {
			t.Errorf("StatefulSet selector %s=%s does not match its pod labels", k, v)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].Port != metricsPort || svc.Spec.Ports[0].TargetPort.String() != "metrics" {
		t.Errorf("Service ports = %+v, want metrics %d", svc.Spec.Ports, metricsPort)
	}
	if len(objs.monitors) != 1 {
		t.Fatalf("%d ServiceMonitors, want 1", len(objs.monitors))
	}
	sm := objs.monitors[0]
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selector %s=%s does not match the Service labels", k, v)
		}
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints = %+v", sm.Spec.Endpoints)
	}
}

// checkNetworkPolicyObjects validates every NetworkPolicy as the API
// server's validation does (names, selectors, ports, CIDRs), refuses rules
// that would admit everything (a rule without sources or without ports, an
// empty selector), and checks that there is one policy per StatefulSet,
// named after it, whose podSelector is the StatefulSet's own selector and
// matches that StatefulSet's pod template and no other.
func checkNetworkPolicyObjects(t *testing.T, objs objects) {
	t.Helper()
	if len(objs.policies) != len(objs.statefulSets) {
		t.Errorf("%d NetworkPolicies for %d StatefulSets, want one each", len(objs.policies), len(objs.statefulSets))
	}
	for _, np := range objs.policies {
		for _, err := range validateNetworkPolicy(np) {
			t.Errorf("NetworkPolicy %s: %v", np.Name, err)
		}
		var selected []string
		for _, sts := range objs.statefulSets {
			if selectorMatches(t, &np.Spec.PodSelector, sts.Spec.Template.Labels) {
				selected = append(selected, sts.Name)
			}
		}
		if !reflect.DeepEqual(selected, []string{np.Name}) {
			t.Errorf("NetworkPolicy %s selects the pods of %v, want those of StatefulSet %s only", np.Name, selected, np.Name)
		}
		for _, sts := range objs.statefulSets {
			if sts.Name == np.Name && !reflect.DeepEqual(np.Spec.PodSelector, *sts.Spec.Selector) {
				t.Errorf("NetworkPolicy %s: podSelector %v, want the StatefulSet's selector %v", np.Name, np.Spec.PodSelector, *sts.Spec.Selector)
			}
		}
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			t.Errorf("NetworkPolicy %s does not isolate its pods for ingress", np.Name)
		}
		for i, r := range np.Spec.Ingress {
			if len(r.From) == 0 || len(r.Ports) == 0 {
				t.Errorf("NetworkPolicy %s: ingress rule %d admits every source or every port: %+v", np.Name, i, r)
			}
			for _, p := range r.From {
				if isEmptySelector(p.PodSelector) && p.NamespaceSelector == nil || isEmptySelector(p.NamespaceSelector) && p.PodSelector == nil {
					t.Errorf("NetworkPolicy %s: ingress rule %d admits every pod of a namespace or every namespace: %+v", np.Name, i, p)
				}
			}
		}
	}
}

func isEmptySelector(s *metav1.LabelSelector) bool {
	return s != nil && len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
}

// validateNetworkPolicy checks what the API server's validation of a
// networking.k8s.io/v1 NetworkPolicy checks beyond the decoding.
func validateNetworkPolicy(np *networkingv1.NetworkPolicy) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	for _, msg := range validation.IsDNS1123Subdomain(np.Name) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), np.Name, msg))
	}
	selOpts := metav1validation.LabelSelectorValidationOptions{}
	errs = append(errs, metav1validation.ValidateLabelSelector(&np.Spec.PodSelector, selOpts, spec.Child("podSelector"))...)
	seen := map[networkingv1.PolicyType]bool{}
	for i, pt := range np.Spec.PolicyTypes {
		if pt != networkingv1.PolicyTypeIngress && pt != networkingv1.PolicyTypeEgress || seen[pt] {
			errs = append(errs, field.Invalid(spec.Child("policyTypes").Index(i), pt, "unknown or repeated"))
		}
		seen[pt] = true
	}
	ports := func(path *field.Path, ps []networkingv1.NetworkPolicyPort) {
		for i, p := range ps {
			pp := path.Index(i)
			if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP && *p.Protocol != corev1.ProtocolUDP && *p.Protocol != corev1.ProtocolSCTP {
				errs = append(errs, field.NotSupported(pp.Child("protocol"), *p.Protocol, []string{"TCP", "UDP", "SCTP"}))
			}
			if p.Port == nil {
				if p.EndPort != nil {
					errs = append(errs, field.Forbidden(pp.Child("endPort"), "needs port"))
				}
				continue
			}
			var msgs []string
			if p.Port.Type == intstr.Int {
				msgs = validation.IsValidPortNum(int(p.Port.IntVal))
				if p.EndPort != nil && *p.EndPort < p.Port.IntVal {
					msgs = append(msgs, "endPort below port")
				}
			} else {
				msgs = validation.IsValidPortName(p.Port.StrVal)
				if p.EndPort != nil {
					msgs = append(msgs, "endPort with a named port")
				}
			}
			for _, m := range msgs {
				errs = append(errs, field.Invalid(pp.Child("port"), p.Port.String(), m))
			}
		}
	}
	peers := func(path *field.Path, ps []networkingv1.NetworkPolicyPeer) {
		for i, p := range ps {
			pp := path.Index(i)
			n := 0
			if p.PodSelector != nil || p.NamespaceSelector != nil {
				n++
				if p.PodSelector != nil {
					errs = append(errs, metav1validation.ValidateLabelSelector(p.PodSelector, selOpts, pp.Child("podSelector"))...)
				}
				if p.NamespaceSelector != nil {
					errs = append(errs, metav1validation.ValidateLabelSelector(p.NamespaceSelector, selOpts, pp.Child("namespaceSelector"))...)
				}
			}
			if p.IPBlock != nil {
				n++
				_, cidr, err := net.ParseCIDR(p.IPBlock.CIDR)
				if err != nil {
					errs = append(errs, field.Invalid(pp.Child("ipBlock", "cidr"), p.IPBlock.CIDR, err.Error()))
					continue
				}
				cidrBits, _ := cidr.Mask.Size()
				for j, ex := range p.IPBlock.Except {
					ip, exNet, err := net.ParseCIDR(ex)
					exBits := 0
					if exNet != nil {
						exBits, _ = exNet.Mask.Size()
					}
					if err != nil || !cidr.Contains(ip) || exBits <= cidrBits {
						errs = append(errs, field.Invalid(pp.Child("ipBlock", "except").Index(j), ex, "must be a CIDR strictly within "+p.IPBlock.CIDR))
					}
				}
			}
			if n != 1 {
				errs = append(errs, field.Invalid(pp, p, "needs exactly one of podSelector/namespaceSelector or ipBlock"))
			}
		}
	}
	for i, r := range np.Spec.Ingress {
		ports(spec.Child("ingress").Index(i).Child("ports"), r.Ports)
		peers(spec.Child("ingress").Index(i).Child("from"), r.From)
	}
	for i, r := range np.Spec.Egress {
		ports(spec.Child("egress").Index(i).Child("ports"), r.Ports)
		peers(spec.Child("egress").Index(i).Child("to"), r.To)
	}
	return errs
}

func selectorMatches(t *testing.T, sel *metav1.LabelSelector, lbls map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("label selector %v: %v", sel, err)
	}
	return s.Matches(labels.Set(lbls))
}

// An endpoint is a pod (name, namespace, labels, named ports) or, without a
// namespace, an address outside the cluster.
type endpoint struct {
	name      string
	namespace string
	labels    map[string]string
	ports     map[string]int32
	ip        string
}

// world: the pods and addresses around a release, in the namespaces
// replicator (the release's), monitoring, default, tools, kube-system, db.
// Every namespace carries its name as kubernetes.io/metadata.name, as the
// API server sets it.
var world = []endpoint{
	{name: "prometheus", namespace: "monitoring", labels: map[string]string{"app.kubernetes.io/name": "prometheus", "prometheus": "k8s"}},
	{name: "grafana", namespace: "monitoring", labels: map[string]string{"app.kubernetes.io/name": "grafana"}},
	{name: "prometheus-in-default", namespace: "default", labels: map[string]string{"app.kubernetes.io/name": "prometheus"}},
	{name: "prometheus-in-release-ns", namespace: namespace, labels: map[string]string{"app.kubernetes.io/name": "prometheus"}},
	{name: "neighbour", namespace: namespace, labels: map[string]string{"app": "neighbour"}},
	{name: "nats-box", namespace: namespace, labels: map[string]string{"app": "nats-box"}},
	{name: "tools-nats-box", namespace: "tools", labels: map[string]string{"app.kubernetes.io/name": "nats-box"}},
	{name: "coredns", namespace: "kube-system", labels: map[string]string{"k8s-app": "kube-dns"}},
	{name: "postgres", namespace: "db", labels: map[string]string{"app": "postgres"}},
	{name: "mongo", ip: "10.20.1.5"},
	{name: "mongo-excepted", ip: "10.20.9.9"},
	{name: "internet", ip: "192.0.2.10"},
}

// cluster evaluates NetworkPolicies as the Kubernetes network model defines
// them: a pod selected by a policy of a type (Ingress, Egress) accepts for
// that direction only what a rule of such a policy allows; a connection
// needs the source's egress and the destination's ingress.
type cluster struct {
	policies []*networkingv1.NetworkPolicy
}

// releasePods: pods 0 and 1 (as far as the replicas go) of every
// StatefulSet, with their template's labels and named ports, and the
// rendered policies, in the release's namespace.
func (c *cluster) add(objs objects) []endpoint {
	var pods []endpoint
	for _, sts := range objs.statefulSets {
		ports := map[string]int32{}
		for _, ctr := range sts.Spec.Template.Spec.Containers {
			for _, p := range ctr.Ports {
				ports[p.Name] = p.ContainerPort
			}
		}
		for i := 0; i < int(*sts.Spec.Replicas) && i < 2; i++ {
			pods = append(pods, endpoint{name: fmt.Sprintf("%s-%d", sts.Name, i), namespace: namespace, labels: sts.Spec.Template.Labels, ports: ports})
		}
	}
	for _, np := range objs.policies {
		np := np.DeepCopy()
		np.Namespace = namespace // applied with kubectl -n / helm --namespace
		c.policies = append(c.policies, np)
	}
	return pods
}

func hasType(np *networkingv1.NetworkPolicy, typ networkingv1.PolicyType) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		return typ == networkingv1.PolicyTypeIngress || len(np.Spec.Egress) > 0
	}
	return slices.Contains(np.Spec.PolicyTypes, typ)
}

func peerMatches(t *testing.T, policyNS string, p networkingv1.NetworkPolicyPeer, e endpoint) bool {
	if p.IPBlock != nil {
		// Pod addresses are not modelled: an ipBlock stands for addresses
		// outside the cluster.
		if e.ip == "" {
			return false
		}
		ip := net.ParseIP(e.ip)
		_, cidr, _ := net.ParseCIDR(p.IPBlock.CIDR)
		if cidr == nil || !cidr.Contains(ip) {
			return false
		}
		for _, ex := range p.IPBlock.Except {
			if _, n, _ := net.ParseCIDR(ex); n != nil && n.Contains(ip) {
				return false
			}
		}
		return true
	}
	if e.namespace == "" {
		return false
	}
	if p.NamespaceSelector != nil {
		if !selectorMatches(t, p.NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": e.namespace}) {
			return false
		}
	} else if e.namespace != policyNS {
		return false
	}
	return p.PodSelector == nil || selectorMatches(t, p.PodSelector, e.labels)
}

func portMatches(ports []networkingv1.NetworkPolicyPort, pr probe, dst endpoint) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		switch {
		case proto != pr.proto:
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.String:
			if n, ok := dst.ports[p.Port.StrVal]; ok && n == pr.port {
				return true
			}
		default:
			end := p.Port.IntVal
			if p.EndPort != nil {
				end = *p.EndPort
			}
			if pr.port >= p.Port.IntVal && pr.port <= end {
				return true
			}
		}
	}
	return false
}

// admits: do the policies selecting self, for direction typ, allow the
// connection with other to dst's port?
func (c *cluster) admits(t *testing.T, typ networkingv1.PolicyType, self, other, dst endpoint, pr probe) bool {
	if self.namespace == "" {
		return true
	}
	isolated := false
	for _, np := range c.policies {
		if np.Namespace != self.namespace || !hasType(np, typ) || !selectorMatches(t, &np.Spec.PodSelector, self.labels) {
			continue
		}
		isolated = true
		if typ == networkingv1.PolicyTypeIngress {
			for _, r := range np.Spec.Ingress {
				if (len(r.From) == 0 || slices.ContainsFunc(r.From, func(p networkingv1.NetworkPolicyPeer) bool { return peerMatches(t, np.Namespace, p, other) })) && portMatches(r.Ports, pr, dst) {
					return true
				}
			}
		} else {
			for _, r := range np.Spec.Egress {
				if (len(r.To) == 0 || slices.ContainsFunc(r.To, func(p networkingv1.NetworkPolicyPeer) bool { return peerMatches(t, np.Namespace, p, other) })) && portMatches(r.Ports, pr, dst) {
					return true
				}
			}
		}
	}
	return !isolated
}

type probe struct {
	port  int32
	proto corev1.Protocol
}

func (p probe) String() string {
	if p.proto == corev1.ProtocolTCP {
		return fmt.Sprint(p.port)
	}
	return fmt.Sprintf("%d/%s", p.port, p.proto)
}

func tcp(ports ...int32) []probe {
	var ps []probe
	for _, p := range ports {
		ps = append(ps, probe{p, corev1.ProtocolTCP})
	}
	return ps
}

// connections lists "src -> dst:port" for every allowed connection.
func (c *cluster) connections(t *testing.T, srcs, dsts []endpoint, probes []probe) []string {
	var out []string
	for _, s := range srcs {
		for _, d := range dsts {
			if s.name == d.name || d.namespace == "" && s.namespace == "" {
				continue
			}
			for _, pr := range probes {
				if c.admits(t, networkingv1.PolicyTypeEgress, s, d, d, pr) && c.admits(t, networkingv1.PolicyTypeIngress, d, s, d, pr) {
					out = append(out, fmt.Sprintf("%s -> %s:%s", s.name, d.name, pr))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func diffLists(t *testing.T, what string, got, want []string) {
	t.Helper()
	sort.Strings(want)
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("%s: %s is allowed, should not be", what, g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s: %s is refused, should be allowed", what, w)
		}
	}
}

func valuesYAML(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Ports probed: the replicator's metrics port, NATS client, route and
// monitoring ports, one nobody listens on; DNS, MongoDB, PostgreSQL, HTTPS.
var (
	ingressProbes = tcp(metricsPort, 4222, 6222, 8222, 8080)
	egressProbes  = append([]probe{{53, corev1.ProtocolUDP}, {53, corev1.ProtocolTCP}}, tcp(27017, 5432, 443, metricsPort, 4222, 6222, 8222)...)
)

// releaseIngress: the connections into the pods of the release with full
// name fn that the default values allow.
func releaseIngress(fn string, nats bool) []string {
	want := []string{"prometheus -> " + fn + "-0:9187"}
	if nats {
		want = append(want,
			"prometheus -> "+fn+"-nats-0:8222", "prometheus -> "+fn+"-nats-1:8222",
			fn+"-0 -> "+fn+"-nats-0:4222", fn+"-0 -> "+fn+"-nats-1:4222",
			fn+"-nats-0 -> "+fn+"-nats-1:6222", fn+"-nats-1 -> "+fn+"-nats-0:6222")
	}
	return want
}

// TestNetworkPolicies renders the chart with several values and evaluates
// its NetworkPolicies against the rendered pods' labels and a set of pods
// and addresses around them: every connection into the release's pods (and,
// with egress restricted, out of them) must be exactly the listed ones.
func TestNetworkPolicies(t *testing.T) {
	const ext = "ci/external-nats-values.yaml"
	for _, tc := range []struct {
		name, valuesFile, values string
		ingress                  []string
		egress                   []string // nil: egress unrestricted
		policies                 int
	}{
		{name: "embedded", ingress: releaseIngress("replicator", false), policies: 1},
		{name: "external-nats", valuesFile: ext, ingress: releaseIngress("replicator", true), policies: 2},
		{name: "disabled", values: "networkPolicy: {enabled: false}"},
		{name: "external-nats disabled", valuesFile: ext, values: "networkPolicy: {enabled: false}"},
		{
			name: "no prometheus", valuesFile: ext, values: "networkPolicy: {prometheus: []}", policies: 2,
			ingress: []string{
				"replicator-0 -> replicator-nats-0:4222", "replicator-0 -> replicator-nats-1:4222",
				"replicator-nats-0 -> replicator-nats-1:6222", "replicator-nats-1 -> replicator-nats-0:6222",
			},
		},
		{
			name: "prometheus anywhere by pod label", valuesFile: ext, policies: 2,
			values: `networkPolicy:
  prometheus:
    - namespaceSelector: {}
      podSelector: {matchLabels: {app.kubernetes.io/name: prometheus}}`,
			ingress: append(releaseIngress("replicator", true),
				"prometheus-in-default -> replicator-0:9187", "prometheus-in-default -> replicator-nats-0:8222", "prometheus-in-default -> replicator-nats-1:8222",
				"prometheus-in-release-ns -> replicator-0:9187", "prometheus-in-release-ns -> replicator-nats-0:8222", "prometheus-in-release-ns -> replicator-nats-1:8222"),
		},
		{
			name: "nats clients", valuesFile: ext, policies: 2,
			values: `networkPolicy:
  natsClients:
    - podSelector: {matchLabels: {app: nats-box}}
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: tools}}
      podSelector: {matchLabels: {app.kubernetes.io/name: nats-box}}`,
			ingress: append(releaseIngress("replicator", true),
				"nats-box -> replicator-nats-0:4222", "nats-box -> replicator-nats-1:4222",
				"tools-nats-box -> replicator-nats-0:4222", "tools-nats-box -> replicator-nats-1:4222"),
		},
		{
			name: "egress restricted", valuesFile: ext, policies: 2,
			values: `networkPolicy:
  egress:
    restrict: true
    to:
      - {cidr: 10.20.0.0/16, except: [10.20.9.0/24], ports: [27017]}
    extraRules:
      - to:
          - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: db}}
            podSelector: {matchLabels: {app: postgres}}
        ports: [{port: 5432, protocol: TCP}]`,
			ingress: releaseIngress("replicator", true),
			egress: []string{
				"replicator-0 -> coredns:53/UDP", "replicator-0 -> coredns:53", "replicator-0 -> mongo:27017", "replicator-0 -> postgres:5432",
				"replicator-0 -> replicator-nats-0:4222", "replicator-0 -> replicator-nats-1:4222",
				"replicator-nats-0 -> coredns:53/UDP", "replicator-nats-0 -> coredns:53", "replicator-nats-1 -> coredns:53/UDP", "replicator-nats-1 -> coredns:53",
				"replicator-nats-0 -> replicator-nats-1:6222", "replicator-nats-1 -> replicator-nats-0:6222",
			},
		},
		{
			name: "embedded egress restricted", policies: 1,
			values: `networkPolicy:
  egress:
    restrict: true
    to:
      - {cidr: 10.20.0.0/16, except: [10.20.9.0/24], ports: [27017, 5432]}`,
			ingress: releaseIngress("replicator", false),
			egress:  []string{"replicator-0 -> coredns:53/UDP", "replicator-0 -> coredns:53", "replicator-0 -> mongo:27017", "replicator-0 -> mongo:5432"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var overrides map[string]any
			if tc.values != "" {
				overrides = valuesYAML(t, tc.values)
			}
			out, err := render(t, tc.valuesFile, overrides)
			if err != nil {
				t.Fatal(err)
			}
			objs := decode(t, out)
			if len(objs.policies) != tc.policies {
				t.Fatalf("%d NetworkPolicies, want %d", len(objs.policies), tc.policies)
			}
			if tc.policies == 0 {
				return
			}
			for _, np := range objs.policies {
				for _, err := range validateNetworkPolicy(np) {
					t.Errorf("NetworkPolicy %s: %v", np.Name, err)
				}
			}
			c := &cluster{}
			pods := c.add(objs)
			all := append(append([]endpoint{}, world...), pods...)
			diffLists(t, "ingress", c.connections(t, all, pods, ingressProbes), tc.ingress)
			out2 := c.connections(t, pods, world, egressProbes)
			if tc.egress != nil {
				diffLists(t, "egress", append(out2, c.connections(t, pods, pods, egressProbes)...), tc.egress)
				return
			}
			if want := len(pods) * len(world) * len(egressProbes); len(out2) != want {
				t.Errorf("egress is restricted by default: %d of %d connections out allowed", len(out2), want)
			}
			for _, np := range objs.policies {
				if hasType(np, networkingv1.PolicyTypeEgress) {
					t.Errorf("NetworkPolicy %s restricts egress by default", np.Name)
				}
			}
		})
	}

	// Two releases in one namespace: neither admits the other's pods.
	t.Run("two releases", func(t *testing.T) {
		c := &cluster{}
		var pods []endpoint
		for _, rel := range []string{releaseName, "other"} {
			out, err := renderRelease(t, rel, ext, nil)
			if err != nil {
				t.Fatal(err)
			}
			pods = append(pods, c.add(decode(t, out))...)
		}
		all := append(append([]endpoint{}, world...), pods...)
		diffLists(t, "ingress", c.connections(t, all, pods, ingressProbes),
			append(releaseIngress("replicator", true), releaseIngress("other-replicator", true)...))
	})

	// DNS to any destination when networkPolicy.egress.dns is empty.
	t.Run("dns anywhere", func(t *testing.T) {
		out, err := render(t, "", valuesYAML(t, "networkPolicy: {egress: {restrict: true, dns: []}}"))
		if err != nil {
			t.Fatal(err)
		}
		c := &cluster{}
		pods := c.add(decode(t, out))
		var want []string
		for _, w := range world {
			want = append(want, "replicator-0 -> "+w.name+":53/UDP", "replicator-0 -> "+w.name+":53")
		}
		diffLists(t, "egress", c.connections(t, pods, world, egressProbes), want)
	})

	// A replicator named "nats" would carry the NATS pods' labels.
	t.Run("nameOverride nats", func(t *testing.T) {
		if _, err := render(t, ext, map[string]any{"nameOverride": "nats"}); err == nil || !strings.Contains(err.Error(), "nameOverride") {
			t.Errorf("nameOverride nats with the NATS cluster: err = %v, want a refusal", err)
		}
	})
}

// TestDockerfile: pinned base images, a non-root user, the version stamped,
// and a .dockerignore that keeps local state out of the build context.
func TestDockerfile(t *testing.T) {
	df, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, users []string
	for _, line := range strings.Split(string(df), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, f[1])
		case "USER":
			users = append(users, f[1])
		}
	}
	if len(froms) < 2 {
		t.Errorf("want a build stage and a runtime stage, FROM lines: %v", froms)
	}
	for _, img := range froms {
		if !regexp.MustCompile(`^[^@]+:[^@/]+@sha256:[0-9a-f]{64}$`).MatchString(img) {
			t.Errorf("base image %q is not pinned as name:tag@sha256:digest", img)
		}
	}
	if len(users) == 0 || !regexp.MustCompile(`^[1-9][0-9]*(:[1-9][0-9]*)?$`).MatchString(users[len(users)-1]) {
		t.Errorf("the runtime stage must end with a numeric non-root USER, have %v", users)
	}
	if !strings.Contains(string(df), "-X github.com/mongopg/replicator/replicator.version=${VERSION}") {
		t.Errorf("the Dockerfile does not stamp the version with -ldflags -X ...replicator.version=${VERSION}")
	}
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(ignore), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{".git", "bin/", ".demo/", "replicator-data/"} {
		if !lines[want] {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}
