#!/usr/bin/env bash
# Builds the container images of the Helm chart offline, as OCI archives: nothing is
# pulled, each image is assembled FROM scratch out of files this script puts together.
#
#   deploy/images/build.sh [OUT_DIR]       (as root; OUT_DIR default: $CARGO_TARGET_DIR/images
#                                           or target/images)
#
# Writes
#   OUT_DIR/tetrad.tar          docker.io/tetra/tetrad:<appVersion>: /usr/bin/tetrad (the
#                               entrypoint), /usr/bin/tetra (so `kubectl exec ds/tetragon
#                               -c tetragon -- tetra getevents -o compact` works) and
#                               busybox's `tail`, which the export-stdout container runs
#   OUT_DIR/tetra-operator.tar  docker.io/tetra/tetra-operator:<appVersion>, user 65532
# Names and tags are the chart's defaults (tag: appVersion of deploy/helm/tetra/Chart.yaml),
# fully qualified as the kubelet normalizes `tetra/tetrad`. Load them with
#   ctr -n k8s.io images import OUT_DIR/tetrad.tar     or     podman load -i OUT_DIR/tetrad.tar
#
# The binaries are fully static (glibc's static libc, libbpf/libelf/zlib from their .a
# archives: feature tetra-agent/static), built with the cargo profile `image`, so the images
# hold no loader and no shared library. Needs buildah (Debian: apt-get install buildah) or,
# when buildah is missing, podman (apt-get install podman: `podman build` of a Containerfile
# FROM scratch, the same images), busybox-static, and the build dependencies of
# deploy/host/deps.sh.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
out="${1:-$target_dir/images}"

if command -v buildah >/dev/null; then
    builder=buildah
elif command -v podman >/dev/null; then
    builder=podman
else
    echo "build.sh: neither buildah nor podman found; install one (Debian: apt-get install buildah, or apt-get install podman)" >&2
    exit 1
fi
[ -x /bin/busybox ] || {
    echo "build.sh: /bin/busybox not found; install busybox-static (apt-get install busybox-static)" >&2
    exit 1
}
[ "$(id -u)" = 0 ] || { echo "build.sh: run as root ($builder's storage)" >&2; exit 1; }

version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$repo/deploy/helm/tetra/Chart.yaml")
[ -n "$version" ] || { echo "build.sh: no appVersion in deploy/helm/tetra/Chart.yaml" >&2; exit 1; }

# --target keeps RUSTFLAGS off build scripts and proc macros (which cannot be static) and
# puts these binaries beside, not over, the ordinary dev build.
# libbpf-sys names libelf.a and libz.a but leaves finding them to rustc: tell it where.
triple=x86_64-unknown-linux-gnu
export LIBBPF_SYS_LIBRARY_PATH
LIBBPF_SYS_LIBRARY_PATH=$(pkg-config --variable=libdir libelf)
(cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" cargo build --profile image \
    --target "$triple" --features tetra-agent/static \
    -p tetra-agent -p tetra-cli -p tetra-operator \
    --bin tetrad --bin tetra --bin tetra-operator)
bin="$target_dir/$triple/image"

mkdir -p "$out"
work=$(mktemp -d)
containers=()
tags=()
cleanup() {
    for c in "${containers[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
    for t in "${tags[@]}"; do podman rmi "$t" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# image NAME ROOTFS USER ENTRYPOINT...: an OCI archive OUT/NAME.tar of ROOTFS.
image() {
    local name=$1 rootfs=$2 user=$3 ref="docker.io/tetra/$1:$version" c
    shift 3
    local entrypoint
    entrypoint=$(printf '"%s",' "$@")
    rm -f "$out/$name.tar"
    if [ "$builder" = buildah ]; then
        c=$(buildah from scratch)
        containers+=("$c")
        buildah copy --quiet "$c" "$rootfs" / >/dev/null
        buildah config --entrypoint "[${entrypoint%,}]" --cmd '' --user "$user" \
            --env PATH=/usr/bin:/bin --workingdir / \
            --label org.opencontainers.image.title="$name" \
            --label org.opencontainers.image.version="$version" "$c"
        buildah commit --quiet --format oci --rm "$c" "oci-archive:$out/$name.tar:$ref" >/dev/null
    else
        # The same image from a Containerfile: one layer of ROOTFS, then the configuration.
        # Built under a tag of its own (removed on exit, so podman's storage keeps nothing
        # and no image the user has is touched), pushed to the archive under REF.
        local tag="localhost/tetra-build-$name:$$"
        {
            echo "FROM scratch"
            echo "COPY . /"
            echo "ENTRYPOINT [${entrypoint%,}]"
            echo "CMD []"
            echo "USER $user"
            echo "ENV PATH=/usr/bin:/bin"
            echo "WORKDIR /"
            echo "LABEL org.opencontainers.image.title=\"$name\" org.opencontainers.image.version=\"$version\""
        } >"$work/$name.Containerfile"
        tags+=("$tag")
        podman build --quiet --format oci --pull=never --network=none \
            -f "$work/$name.Containerfile" -t "$tag" "$rootfs" >/dev/null
        podman push --quiet "$tag" "oci-archive:$out/$name.tar:$ref"
    fi
    echo "$ref -> $out/$name.tar ($(du -k "$out/$name.tar" | cut -f1) KiB)"
}

# The agent: tetrad, tetra, and busybox for the export-stdout container's `tail`.
agent="$work/agent"
mkdir -p "$agent/usr/bin" "$agent/bin" "$agent/tmp" "$agent/var/run/tetragon"
install -m 0755 "$bin/tetrad" "$bin/tetra" "$agent/usr/bin/"
install -m 0755 /bin/busybox "$agent/bin/busybox"
ln -s busybox "$agent/bin/tail"
chmod 1777 "$agent/tmp"
image tetrad "$agent" 0:0 /usr/bin/tetrad

operator="$work/operator"
mkdir -p "$operator/usr/bin"
install -m 0755 "$bin/tetra-operator" "$operator/usr/bin/"
image tetra-operator "$operator" 65532:65532 /usr/bin/tetra-operator
