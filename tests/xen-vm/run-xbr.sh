#!/bin/bash
# meson test entry point for xbr on real Xen (scenario-xbr.sh), then the xbr/kernel ratio:
#   run-xbr.sh XBRD XBRCTL FRAMETOOL XBR_BENCH [CONSOLE_LOG]
# Builds the images if needed (tests/xen-vm/cache, or $XBRVM_CACHE), boots Xen in QEMU with the
# given binaries and netback/vif-xbr in dom0, runs scenario-xbr.sh (xbrd as the only vif
# backend, then the kernel's xen-netback for comparison), and prints the throughput ratios
# with `xbr-bench xen` (both orders: the kernel also runs before xbr unless XBRVM_KERNEL_FIRST=0).
# Each transfer runs $XBRVM_TCP_REPEAT times (default 3; the figure is the
# median). Fails when not root (CI runs as root).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 4 ] || { echo "usage: $0 XBRD XBRCTL FRAMETOOL XBR_BENCH [CONSOLE_LOG]" >&2; exit 2; }
xbrd=$1 xbrctl=$2 frametool=$3 bench=$4 log=${5:-}
if [ "$(id -u)" -ne 0 ]; then echo "xen-vm: FAIL: needs root (apt, network namespace, tap)" >&2; exit 1; fi
for f in "$xbrd" "$xbrctl" "$frametool"; do [ -x "$f" ] || { echo "xen-vm: FAIL: $f is not built" >&2; exit 1; }; done

extra=$(mktemp -d /tmp/xbrvm-extra.XXXXXX)
trap 'rm -rf "$extra"' EXIT
install -D -m 0755 "$here/../../netback/vif-xbr" "$extra/etc/xen/scripts/vif-xbr"
install -D -m 0644 "$here/../../bridge/xbrd.conf" "$extra/etc/xbr/xbrd.conf"
[ -n "$log" ] || log=$(mktemp /tmp/xbrvm-xbr.XXXXXX.log)

# The whole test ends within meson's timeout (meson.build: 1300 s): download, a hung boot and
# its retry included (run-vm.sh only retries when a whole 900 s run still fits).
rc=0
deadline=$(( $(date +%s) + ${XBRVM_BUDGET:-1270} ))
"$here/run-vm.sh" --scenario "$here/scenario-xbr.sh" --timeout 900 --boot-timeout 150 \
    --deadline "$deadline" \
    --bin "$xbrd:/usr/sbin/xbrd" --bin "$xbrctl:/usr/sbin/xbrctl" --bin "$frametool" \
    --extra "$extra" --log "$log" \
    ${XBRVM_PAYLOAD_MIB:+--env PAYLOAD_MIB=$XBRVM_PAYLOAD_MIB} \
    ${XBRVM_XBRD_OPTS:+--env "XBRD_OPTS=$XBRVM_XBRD_OPTS"} \
    --env TCP_REPEAT="${XBRVM_TCP_REPEAT:-3}" --env KERNEL_FIRST="${XBRVM_KERNEL_FIRST:-1}" || rc=$?

# The ratio: both datapaths' METRIC lines are in the one results file.
echo "---- xbr / kernel xen-netback, same VM run (emulated: read the ratio, not the absolute numbers)"
if [ -f "$log.results" ] && grep -q '^METRIC xbr\.tcp' "$log.results" && grep -q '^METRIC kernel\.tcp' "$log.results"; then
    python3 "$bench" xen --xen-results "$log.results" || rc=1
else
    echo "no throughput figures for both datapaths (see the results above)"
    rc=1
fi
exit $rc
