#!/usr/bin/env bash
# Runs every VM suite (tests/tests/vm_*.rs) on one kernel and prints how long each took.
#
# Usage (as root):  TETRA_VM_KERNEL=6.12 tests/vm/suites.sh [SUITE...]
#   TETRA_VM_KERNEL  6.1 (default), 6.1-cloud, 6.1-rt or 6.12 (see prepare.sh)
#   SUITE            e.g. vm_smoke; default: all of tests/tests/vm_*.rs
#   TETRA_VM_TIMEOUT_SCALE  multiplies the VMs' timeouts on a loaded host (see tests/src/vm.rs)
# Some suites need Tetragon's conformance corpus (TETRA_CONFORMANCE_DIR or ../shared);
# without it they print a skip, listed here as SKIPPED.
# The exit code is 1 when a suite failed; each suite's output goes to
# ${TETRA_VM_LOGS:-/tmp}/vm-suite-$TETRA_VM_KERNEL-SUITE.log, each guest's console to
# ${TETRA_VM_CONSOLE_DIR:-$TETRA_VM_LOGS/vm-console}/KERNEL-TEST-N.log.
set -uo pipefail
cd "$(dirname "$0")/../.."
kernel="${TETRA_VM_KERNEL:-6.1}"
logs="${TETRA_VM_LOGS:-/tmp}"
suites=("$@")
if [ "${#suites[@]}" = 0 ]; then
    for f in tests/tests/vm_*.rs; do suites+=("$(basename "$f" .rs)"); done
fi
TETRA_VM_KERNEL="$kernel" bash tests/vm/prepare.sh > "$logs/vm-prepare-$kernel.log" 2>&1 \
    || { cat "$logs/vm-prepare-$kernel.log"; exit 1; }
# Every guest's console, for reading a failure afterwards.
consoles="${TETRA_VM_CONSOLE_DIR:-$logs/vm-console}"
failed=0
total_start=$(date +%s)
for suite in "${suites[@]}"; do
    start=$(date +%s)
    log="$logs/vm-suite-$kernel-$suite.log"
    if TETRA_VM_KERNEL="$kernel" TETRA_VM_CONSOLE_DIR="$consoles" cargo test -q -p tetra-tests --test "$suite" -- --include-ignored > "$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed=1
    fi
    # A test lacking something optional (the conformance corpus) passes with a printed skip.
    if [ "$status" = ok ] && grep -qE ': skipped:|^SKIPPED' "$log"; then
        status=SKIPPED
    fi
    result="$(grep -E '^test result:' "$log" | tail -n1)"
    printf '%-16s %-6s %5ds  %s\n' "$suite" "$status" $(( $(date +%s) - start )) "$result"
done
printf 'kernel %s (timeout scale %s): all suites in %ds\n' "$kernel" "${TETRA_VM_TIMEOUT_SCALE:-1}" $(( $(date +%s) - total_start ))
exit "$failed"
