// Package deploy checks the deployment files (k8s/, docker-compose.yml,
// haproxy/) against each other and against the node they run: manifests
// decode strictly into the Kubernetes API types, every reference resolves,
// and every probe path is one the node really serves. No cluster and no
// Docker needed; the integration suite (tests/integration) runs them.
package deploy
