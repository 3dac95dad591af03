#!/bin/bash
# meson test entry point for the kernel baseline (xen-netback + kernel bridge):
#   run-kernel-baseline.sh [CONSOLE_LOG]
# Builds the images if needed (tests/xen-vm/cache, or $XBRVM_CACHE), boots Xen in QEMU, runs
# scenario-kernel.sh in dom0. Fails when not root (CI runs as root).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" -ne 0 ]; then echo "xen-vm: FAIL: needs root (apt, network namespace, tap)" >&2; exit 1; fi
exec "$here/run-vm.sh" --scenario "$here/scenario-kernel.sh" --timeout 360 --boot-timeout 150 \
    ${1:+--log "$1"} ${XBRVM_PAYLOAD_MIB:+--env PAYLOAD_MIB=$XBRVM_PAYLOAD_MIB} \
    ${XBRVM_TCP_REPEAT:+--env TCP_REPEAT=$XBRVM_TCP_REPEAT}
