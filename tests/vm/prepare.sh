#!/usr/bin/env bash
# Prepare the VM test bed (test tier 3): qemu, busybox-static, and Debian's own
# kernel from the package linux-image-amd64, unpacked into a cache directory
# WITHOUT installing it on the host.
#
# Usage (as root):  tests/vm/prepare.sh [--refresh] [--modules]
#   --refresh   fetch the kernel again even if one is cached (e.g. after a
#               security update changed the candidate version)
#   --modules   also unpack /lib/modules of the kernel (not needed today:
#               everything the tests use is built into the kernel)
#
# Environment:
#   TETRA_VM_CACHE   cache directory (default /var/cache/tetra-vm)
#   TETRA_VM_KERNEL  which Debian kernel (default 6.1):
#                      6.1        linux-image-amd64 (bookworm's 6.1), in $TETRA_VM_CACHE
#                      6.1-cloud  linux-image-cloud-amd64, in $TETRA_VM_CACHE/6.1-cloud
#                      6.1-rt     linux-image-rt-amd64 (PREEMPT_RT), in $TETRA_VM_CACHE/6.1-rt
#                      6.12       the newest linux-image-6.12.*+deb12-amd64-unsigned
#                                 (bookworm-backports/updates), in $TETRA_VM_CACHE/6.12
#
# Result (the Rust harness tetra_tests::vm reads these):
#   $TETRA_VM_CACHE/vmlinuz        symlink to the unpacked kernel image
#   $TETRA_VM_CACHE/config         symlink to the kernel's config file
#   $TETRA_VM_CACHE/kernel.env     KEY=VALUE facts (package versions, paths);
#                                  written last, so its presence means "done"
#   $TETRA_VM_CACHE/config-check.txt  the feature check printed below
#
# Idempotent: installed packages and a cached kernel are left as they are.
set -euo pipefail

CACHE="${TETRA_VM_CACHE:-/var/cache/tetra-vm}"
KERNEL="${TETRA_VM_KERNEL:-6.1}"
case "$KERNEL" in
    6.1) META=linux-image-amd64 ;;
    6.1-cloud) META=linux-image-cloud-amd64 ;;
    6.1-rt) META=linux-image-rt-amd64 ;;
    6.12) META="" ;; # no meta package in bookworm: the newest versioned package
    *) echo "prepare.sh: TETRA_VM_KERNEL=$KERNEL: expected 6.1, 6.1-cloud, 6.1-rt or 6.12" >&2; exit 2 ;;
esac
# 6.1 keeps the top-level cache (the layout CI has always used); the others a subdir.
[ "$KERNEL" = 6.1 ] || CACHE="$CACHE/$KERNEL"
REFRESH=0
MODULES=0
for arg in "$@"; do
    case "$arg" in
        --refresh) REFRESH=1 ;;
        --modules) MODULES=1 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "prepare.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { echo "prepare.sh: $*" >&2; }
die() { echo "prepare.sh: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it uses apt-get); try: sudo $0"
command -v apt-get >/dev/null || die "apt-get not found: this script expects Debian 12 (bookworm)"

export DEBIAN_FRONTEND=noninteractive

# apt-get update only when there are no package lists at all, or when asked to
# (retry after a failed install/download, which usually means stale lists).
APT_UPDATED=0
apt_update() {
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        apt-get update -qq || die "apt-get update failed"
        APT_UPDATED=1
    fi
}
if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
    apt_update
fi

# --- host tools --------------------------------------------------------------
PACKAGES=(qemu-system-x86 busybox-static cpio)
missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        apt_update
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
            || die "apt-get install ${missing[*]} failed"
    fi
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing after install"
[ -x /bin/busybox ] || die "/bin/busybox missing after installing busybox-static"

# --- kernel ------------------------------------------------------------------
mkdir -p "$CACHE"

kernel_cached() {
    [ -f "$CACHE/kernel.env" ] || return 1
    local vmlinuz
    vmlinuz="$(sed -n 's/^VMLINUZ=//p' "$CACHE/kernel.env")"
    [ -n "$vmlinuz" ] && [ -f "$vmlinuz" ]
}

if [ "$REFRESH" = 1 ] || ! kernel_cached || { [ "$MODULES" = 1 ] && ! grep -q '^MODULES_DIR=/' "$CACHE/kernel.env"; }; then
    # The meta package (linux-image-amd64) depends on the concrete image package,
    # e.g. linux-image-6.1.0-56-amd64; 6.12 has none: the highest version wins.
    find_dep() {
        if [ -n "$META" ]; then
            apt-cache depends "$META" 2>/dev/null \
                | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
        else
            apt-cache pkgnames linux-image-6.12. 2>/dev/null \
                | grep -E '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' | sort -V | tail -n1
        fi
    }
    dep="$(find_dep)"
    if [ -z "$dep" ]; then
        apt_update
        dep="$(find_dep)"
    fi
    [ -n "$dep" ] || die "cannot resolve the package of kernel $KERNEL (${META:-linux-image-6.12.*+deb12-amd64-unsigned})"
    meta_version=""
    [ -z "$META" ] || meta_version="$(apt-cache policy "$META" | awk '$1 == "Candidate:" { print $2 }')"
    version="$(apt-cache policy "$dep" | awk '$1 == "Candidate:" { print $2 }')"
    krel="${dep#linux-image-}"
    krel="${krel%-unsigned}"
    log "kernel $KERNEL: package $dep $version${META:+ ($META $meta_version)}"

    work="$(mktemp -d "$CACHE/.download.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    # APT::Sandbox::User=root: the cache dir is root-only, _apt could not write it.
    if ! (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "$dep"); then
        apt_update
        (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "$dep") \
            || die "apt-get download $dep failed"
    fi
    deb="$(ls "$work"/*.deb)"
    dest="$CACHE/$krel"
    rm -rf "$dest.new"
    mkdir -p "$dest.new"
    members=(./boot)
    [ "$MODULES" = 1 ] && members+=(./lib/modules)
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dest.new" "${members[@]}" \
        || die "unpacking $deb failed"
    [ -f "$dest.new/boot/vmlinuz-$krel" ] || die "no boot/vmlinuz-$krel in $deb"
    rm -rf "$dest"
    mv "$dest.new" "$dest"
    rm -rf "$work"
    trap - EXIT

    ln -sfn "$krel/boot/vmlinuz-$krel" "$CACHE/vmlinuz"
    ln -sfn "$krel/boot/config-$krel" "$CACHE/config"
    modules_dir=""
    [ -d "$dest/lib/modules/$krel" ] && modules_dir="$dest/lib/modules/$krel"

    qemu_version="$(dpkg-query -W -f='${Version}' qemu-system-x86)"
    busybox_version="$(dpkg-query -W -f='${Version}' busybox-static)"
    tmp="$CACHE/kernel.env.tmp"
    {
        echo "KERNEL_NAME=$KERNEL"
        echo "KERNEL_PACKAGE=$dep"
        echo "KERNEL_PACKAGE_VERSION=$version"
        echo "META_PACKAGE_VERSION=$meta_version"
        echo "KERNEL_RELEASE=$krel"
        echo "VMLINUZ=$dest/boot/vmlinuz-$krel"
        echo "CONFIG=$dest/boot/config-$krel"
        echo "MODULES_DIR=$modules_dir"
        echo "QEMU_PACKAGE_VERSION=$qemu_version"
        echo "BUSYBOX_PACKAGE_VERSION=$busybox_version"
    } > "$tmp"
    mv "$tmp" "$CACHE/kernel.env"
    # Remove kernels of older releases left by a previous --refresh.
    for d in "$CACHE"/*-amd64; do
        if [ -d "$d" ] && [ "$d" != "$dest" ]; then
            rm -rf "$d"
        fi
    done
else
    log "kernel already cached (use --refresh to fetch the current candidate)"
fi

# --- feature check -------------------------------------------------------------
config="$(sed -n 's/^CONFIG=//p' "$CACHE/kernel.env")"
[ -f "$config" ] || die "kernel config $config missing"

# name:required(1)/informational(0):why
CHECKS=(
    "CONFIG_KPROBES:1:kprobe hooks"
    "CONFIG_KPROBE_EVENTS:1:kprobe_events in tracefs"
    "CONFIG_UPROBE_EVENTS:0:uprobe hooks"
    "CONFIG_BPF_SYSCALL:1:BPF"
    "CONFIG_BPF_JIT:0:BPF JIT"
    "CONFIG_BPF_EVENTS:1:BPF programs on kprobes/tracepoints"
    "CONFIG_BPF_LSM:0:BPF LSM programs (boot with lsm=...,bpf); without it LSM hooks are refused"
    "CONFIG_DEBUG_INFO_BTF:1:/sys/kernel/btf/vmlinux for CO-RE"
    "CONFIG_CGROUP_BPF:0:cgroup BPF"
    "CONFIG_BPF_KPROBE_OVERRIDE:0:bpf_override_return (Override action on kprobes)"
    "CONFIG_FUNCTION_ERROR_INJECTION:0:error injection (needed by BPF_KPROBE_OVERRIDE)"
    "CONFIG_FPROBE:0:kprobe_multi links"
    "CONFIG_SECURITYFS:1:/sys/kernel/security/lsm"
    "CONFIG_BLK_DEV_INITRD:1:initramfs"
    "CONFIG_DEVTMPFS:1:devtmpfs"
    "CONFIG_SERIAL_8250:1:serial port"
    "CONFIG_SERIAL_8250_CONSOLE:1:console=ttyS0"
    "CONFIG_VIRTIO:0:virtio (unused: the VM has no virtio devices)"
    "CONFIG_VIRTIO_CONSOLE:0:virtio console (unused)"
)
report="$CACHE/config-check.txt"
failed=0
{
    echo "kernel config: $config"
    for c in "${CHECKS[@]}"; do
        name="${c%%:*}"; rest="${c#*:}"; required="${rest%%:*}"; why="${rest#*:}"
        value="$(grep -E "^$name=" "$config" | head -n1 | cut -d= -f2- || true)"
        [ -n "$value" ] || value="not set"
        case "$value" in
            y) status="built in" ;;
            m) status="module" ;;
            *) status="$value" ;;
        esac
        mark="ok"
        if [ "$value" != y ]; then
            if [ "$required" = 1 ]; then mark="MISSING"; failed=1; else mark="note"; fi
        fi
        printf '  %-8s %-34s %-9s %s\n' "[$mark]" "$name" "$status" "$why"
    done
} > "$report"
cat "$report"
if grep -q '^CONFIG_BPF_KPROBE_OVERRIDE=y' "$config"; then :; else
    echo "note: this kernel has no bpf_override_return; Override can be tested only on LSM hooks (BPF LSM) here"
fi
echo
cat "$CACHE/kernel.env"
[ "$failed" = 0 ] || die "the kernel lacks required features (see above)"
