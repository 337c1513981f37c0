#!/usr/bin/env bash
# Renders the plain manifests from the Helm chart with its default values, and copies the
# CRDs that crds/ generates. deploy/tests/chart.rs fails when deploy/manifests/ is stale.
#   deploy/render.sh          writes deploy/manifests/
#   deploy/render.sh DIR [HELM ARGS...]
#                             writes into DIR instead, passing HELM ARGS (e.g. --set) to
#                             `helm template`; the tests use this
# $HELM names the helm binary (default: helm on PATH).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/manifests}"
shift || true
mkdir -p "$out"
{
    echo "# Rendered by deploy/render.sh from deploy/helm/tetra (default values); do not edit."
    "${HELM:-helm}" template tetra "$here/helm/tetra" --namespace kube-system "$@"
} >"$out/tetra.yaml"
cp "$here/../crds/yaml/cilium.io_tracingpolicies.yaml" \
   "$here/../crds/yaml/cilium.io_tracingpoliciesnamespaced.yaml" "$out/"
