// Package infra holds Gwook's deployment and observability files rather
// than Go code: Kubernetes manifests (k8s/), Terraform for Pub/Sub and IAM
// (terraform/), and Prometheus alerts and a Grafana dashboard
// (observability/). Its tests check those files against the code (ports,
// settings, metric names and label values) so that neither drifts from the
// other. README.md documents them.
package infra
