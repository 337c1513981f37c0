#!/usr/bin/env bash
# Installs what building and testing the agent needs on Debian 12, as root.
# Idempotent: installed packages are left alone and apt is asked only when one is missing.
#   deploy/host/deps.sh          build dependencies
#   deploy/host/deps.sh --tests  also the VM test bed (qemu, busybox, Debian's kernel)
set -euo pipefail
cd "$(dirname "$0")/../.."

[ "$(id -u)" = 0 ] || { echo "deps.sh: run as root (apt-get, BPF)" >&2; exit 1; }
command -v cargo >/dev/null || {
    echo "deps.sh: a Rust toolchain (1.85 or later, e.g. from rustup) must be on PATH" >&2
    exit 1
}

# clang/llvm compile the BPF programs, libelf/zlib/pkg-config build libbpf,
# protoc builds the gRPC API.
packages=(clang llvm libelf-dev zlib1g-dev pkg-config protobuf-compiler make gcc)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--tests" ]; then
    tests/vm/prepare.sh
fi
