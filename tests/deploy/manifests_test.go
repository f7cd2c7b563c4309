package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// manifests is k8s/, decoded.
type manifests struct {
	files       []string // every manifest file but the kustomization
	deployment  *appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	hpa         *autoscalingv2.HorizontalPodAutoscaler
	pdb         *policyv1.PodDisruptionBudget
	kustomize   kustomization
	deployments int
}

// kustomization is the part of kustomize's Kustomization type the
// manifests use. Decoding is strict: a field not listed here fails the
// test; add it here when k8s/kustomization.yaml starts using it.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
}

// objectFor returns an empty API object for a manifest's apiVersion and
// kind; manifests of other kinds are an error, so each is checked here.
func (m *manifests) objectFor(tm metav1.TypeMeta) (any, error) {
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		m.deployments++
		m.deployment = &appsv1.Deployment{}
		return m.deployment, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "autoscaling/v2 HorizontalPodAutoscaler":
		m.hpa = &autoscalingv2.HorizontalPodAutoscaler{}
		return m.hpa, nil
	case "policy/v1 PodDisruptionBudget":
		m.pdb = &policyv1.PodDisruptionBudget{}
		return m.pdb, nil
	}
	return nil, fmt.Errorf("no check for apiVersion %q kind %q: add it to the test", tm.APIVersion, tm.Kind)
}

func (m *manifests) keep(obj any) {
	switch o := obj.(type) {
	case *corev1.Service:
		m.services[o.Name] = o
	case *corev1.ConfigMap:
		m.configMaps[o.Name] = o
	case *corev1.Secret:
		m.secrets[o.Name] = o
	}
}

// documents splits a YAML stream on its "---" separators.
func documents(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(b), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(d, "")) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// loadManifests decodes every file of k8s/ strictly: an unknown or
// misspelt field, a duplicate key or a wrong type is an error.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "k8s")
	m := &manifests{services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml") {
			continue
		}
		b := readFile(t, filepath.Join("k8s", name))
		if name == "kustomization.yaml" || name == "kustomization.yml" {
			if err := yaml.UnmarshalStrict(b, &m.kustomize); err != nil {
				t.Fatalf("k8s/%s: %v", name, err)
			}
			continue
		}
		m.files = append(m.files, name)
		for i, doc := range documents(b) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("k8s/%s document %d: %v", name, i, err)
			}
			obj, err := m.objectFor(tm)
			if err != nil {
				t.Fatalf("k8s/%s document %d: %v", name, i, err)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("k8s/%s document %d (%s): %v", name, i, tm.Kind, err)
			}
			m.keep(obj)
		}
	}
	if m.deployments != 1 || m.hpa == nil || m.pdb == nil || len(m.configMaps) == 0 || len(m.secrets) == 0 || len(m.services) < 2 {
		t.Fatalf("k8s/ holds %d Deployments, HPA %v, PDB %v, %d ConfigMaps, %d Secrets, %d Services; want one Deployment, an HPA, a PDB, a ConfigMap, a Secret and two Services",
			m.deployments, m.hpa != nil, m.pdb != nil, len(m.configMaps), len(m.secrets), len(m.services))
	}
	return m
}

func (m *manifests) podLabels() labels.Set { return m.deployment.Spec.Template.Labels }

func (m *manifests) container(t *testing.T) *corev1.Container {
	t.Helper()
	cs := m.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("the Deployment has %d containers, want 1", len(cs))
	}
	return &cs[0]
}

func TestManifestsDecodeStrictly(t *testing.T) {
	t.Parallel()
	loadManifests(t)
}

func TestKustomizationListsEveryFile(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	k := m.kustomize
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization is %s %s", k.APIVersion, k.Kind)
	}
	for _, f := range m.files {
		if !slices.Contains(k.Resources, f) {
			t.Errorf("k8s/%s is not in kustomization.yaml's resources", f)
		}
	}
	for _, r := range k.Resources {
		if !slices.Contains(m.files, r) {
			t.Errorf("kustomization.yaml lists %s, which is not a manifest in k8s/", r)
		}
	}
	image := m.container(t).Image
	name, _, _ := strings.Cut(image, ":")
	found := false
	for _, img := range k.Images {
		found = found || img.Name == name
	}
	if !found {
		t.Errorf("kustomization.yaml has no images entry for the container's image %q", name)
	}
}

func TestSelectorsMatchPods(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	pods := m.podLabels()
	check := func(what string, sel *metav1.LabelSelector) {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if s.Empty() || !s.Matches(pods) {
			t.Errorf("%s selector %q does not select the pods (labels %v)", what, s, pods)
		}
	}
	check("Deployment", m.deployment.Spec.Selector)
	check("PodDisruptionBudget", m.pdb.Spec.Selector)
	for _, c := range m.deployment.Spec.Template.Spec.TopologySpreadConstraints {
		check("topology spread constraint", c.LabelSelector)
	}
	for name, svc := range m.services {
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		if len(svc.Spec.Selector) == 0 || !sel.Matches(pods) {
			t.Errorf("Service %s selector %v does not select the pods (labels %v)", name, svc.Spec.Selector, pods)
		}
	}
}

// containerPort finds the container port a Service or probe port names.
func containerPort(c *corev1.Container, port intstr.IntOrString, proto corev1.Protocol) *corev1.ContainerPort {
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	for i, p := range c.Ports {
		pp := p.Protocol
		if pp == "" {
			pp = corev1.ProtocolTCP
		}
		if pp != proto {
			continue
		}
		if port.Type == intstr.String && p.Name == port.StrVal || port.Type == intstr.Int && p.ContainerPort == port.IntVal {
			return &c.Ports[i]
		}
	}
	return nil
}

func TestServicePortsReachContainerPorts(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	c := m.container(t)
	for name, svc := range m.services {
		for _, p := range svc.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port) // unset: the same as port
			}
			if containerPort(c, target, p.Protocol) == nil {
				t.Errorf("Service %s port %s targets %s/%s, which no container port is", name, p.Name, target.String(), p.Protocol)
			}
		}
	}
}

func TestPeersServiceIsHeadless(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	join := m.env(t)["PUSH_CLUSTER_JOIN"]
	host, port, _ := strings.Cut(join, ":")
	svc := m.services[host]
	if svc == nil {
		t.Fatalf("PUSH_CLUSTER_JOIN=%q names no Service in k8s/", join)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s: clusterIP %q, publishNotReadyAddresses %v; want a headless Service publishing unready pods, so starting nodes can join",
			host, svc.Spec.ClusterIP, svc.Spec.PublishNotReadyAddresses)
	}
	protos := map[corev1.Protocol]bool{}
	for _, p := range svc.Spec.Ports {
		if strconv.Itoa(int(p.Port)) == port {
			protos[p.Protocol] = true
		}
	}
	if !protos[corev1.ProtocolTCP] || !protos[corev1.ProtocolUDP] {
		t.Errorf("Service %s serves port %s over %v; memberlist needs TCP and UDP", host, port, protos)
	}
}

func TestProbesAreServedByTheNode(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	c := m.container(t)
	probes := map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe}
	for _, kind := range []string{"readiness", "liveness"} {
		if probes[kind] == nil {
			t.Errorf("no %s probe", kind)
		}
	}
	want := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}
	for kind, p := range probes {
		if p == nil {
			continue
		}
		get := p.HTTPGet
		if get == nil {
			t.Errorf("%s probe is not an HTTP GET", kind)
			continue
		}
		if w := want[kind]; w != "" && get.Path != w {
			t.Errorf("%s probe GETs %s, want %s", kind, get.Path, w)
		}
		if cp := containerPort(c, get.Port, corev1.ProtocolTCP); cp == nil || cp.Name != "http" {
			t.Errorf("%s probe port %s is not the container's http port", kind, get.Port.String())
		}
		if status := servedStatus(t, get.Path); status != 200 {
			t.Errorf("%s probe path %s: the node answers %d", kind, get.Path, status)
		}
	}
}

// env returns the container's environment as the kubelet builds it from
// envFrom (ConfigMaps, then Secrets, in order) and env, failing on a
// reference to an object that is not in k8s/.
func (m *manifests) env(t *testing.T) map[string]string {
	t.Helper()
	c := m.container(t)
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm := m.configMaps[from.ConfigMapRef.Name]
			if cm == nil {
				t.Fatalf("envFrom names ConfigMap %q, which k8s/ does not hold", from.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				env[from.Prefix+k] = v
			}
		case from.SecretRef != nil:
			s := m.secrets[from.SecretRef.Name]
			if s == nil {
				t.Fatalf("envFrom names Secret %q, which k8s/ does not hold", from.SecretRef.Name)
			}
			for k, v := range s.StringData {
				env[from.Prefix+k] = v
			}
			for k, v := range s.Data {
				env[from.Prefix+k] = string(v)
			}
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

func TestEnvironmentReachesTheNode(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	env := m.env(t)
	for _, k := range []string{"PUSH_REDIS_URL", "PUSH_CLUSTER_BIND", "PUSH_CLUSTER_JOIN", "PUSH_DRAIN_TIMEOUT", "PUSH_NODE_NAME"} {
		if _, ok := env[k]; !ok {
			t.Errorf("the node's environment has no %s", k)
		}
	}
	for k := range env {
		if k != "POD_IP" && !regexp.MustCompile(`^PUSH_[A-Z0-9_]+$`).MatchString(k) {
			t.Errorf("environment variable %s is not a node setting (PUSH_<FLAG>)", k)
		}
	}
	if listen := env["PUSH_LISTEN"]; listen != "" && !strings.HasSuffix(listen, ":"+strconv.Itoa(int(containerPort(m.container(t), intstr.FromString("http"), "").ContainerPort))) {
		t.Errorf("PUSH_LISTEN=%s is not the container's http port", listen)
	}
	for name, s := range m.secrets {
		for k, v := range s.StringData {
			if !strings.Contains(v, "REPLACE-ME") {
				t.Errorf("Secret %s key %s holds a value not marked as a placeholder: real secrets stay out of git", name, k)
			}
		}
	}
}

func TestGracePeriodCoversDrain(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	env := m.env(t)
	drain, err := time.ParseDuration(env["PUSH_DRAIN_TIMEOUT"])
	if err != nil {
		t.Fatalf("PUSH_DRAIN_TIMEOUT=%q: %v", env["PUSH_DRAIN_TIMEOUT"], err)
	}
	spec := m.deployment.Spec.Template.Spec
	if spec.TerminationGracePeriodSeconds == nil {
		t.Fatal("no terminationGracePeriodSeconds: the default 30s would cut the drain")
	}
	grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	var pause time.Duration
	if ls := m.container(t).Lifecycle; ls != nil && ls.PreStop != nil {
		switch {
		case ls.PreStop.Sleep != nil:
			pause = time.Duration(ls.PreStop.Sleep.Seconds) * time.Second
		default:
			t.Errorf("preStop is not a sleep: the image has no shell to run a command")
		}
	}
	// The kubelet counts the preStop hook inside the grace period.
	if grace <= pause+drain {
		t.Errorf("terminationGracePeriodSeconds %v does not cover preStop %v + drain %v", grace, pause, drain)
	}
}

func TestPodIsLockedDown(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	spec := m.deployment.Spec.Template.Spec
	c := m.container(t)
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken is not false: the node never calls the API server")
	}
	psc, csc := spec.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
		csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		t.Error("container securityContext must set readOnlyRootFilesystem true and allowPrivilegeEscalation false")
	}
	// The image's USER must be the numeric user the pod runs as, or
	// runAsNonRoot cannot verify it.
	user := regexp.MustCompile(`(?m)^USER\s+(\d+)`).FindSubmatch(readFile(t, "Dockerfile"))
	if user == nil {
		t.Fatal("the Dockerfile sets no numeric USER")
	}
	if psc == nil || psc.RunAsUser == nil || strconv.FormatInt(*psc.RunAsUser, 10) != string(user[1]) {
		t.Errorf("pod runAsUser is not the image's USER %s", user[1])
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Error("the container needs CPU and memory requests and a memory limit")
	}
}

func TestAutoscalingTargetsTheDeployment(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	ref := m.hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != m.deployment.Name {
		t.Errorf("the HPA scales %s %s %s, not the Deployment %s", ref.APIVersion, ref.Kind, ref.Name, m.deployment.Name)
	}
	min := int32(1)
	if m.hpa.Spec.MinReplicas != nil {
		min = *m.hpa.Spec.MinReplicas
	}
	if r := m.deployment.Spec.Replicas; r == nil || *r < min || *r > m.hpa.Spec.MaxReplicas {
		t.Errorf("Deployment replicas outside the HPA's %d..%d", min, m.hpa.Spec.MaxReplicas)
	}
	for _, metric := range m.hpa.Spec.Metrics {
		if metric.Resource != nil && metric.Resource.Name == corev1.ResourceCPU && m.container(t).Resources.Requests.Cpu().IsZero() {
			t.Error("the HPA scales on CPU utilization but the container requests no CPU")
		}
	}
	if m.pdb.Spec.MaxUnavailable == nil && m.pdb.Spec.MinAvailable == nil {
		t.Error("the PodDisruptionBudget bounds nothing")
	}
}

func TestDocumentsSplit(t *testing.T) {
	t.Parallel()
	docs := documents([]byte("# c\na: 1\n---\n# only a comment\n---\nb: 2\n"))
	if len(docs) != 2 || !bytes.Contains(docs[0], []byte("a: 1")) || !bytes.Contains(docs[1], []byte("b: 2")) {
		t.Errorf("documents: got %q", docs)
	}
}
