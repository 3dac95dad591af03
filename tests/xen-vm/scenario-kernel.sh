#!/bin/sh
# Kernel-only scenario (runs in dom0): the kernel's xen-netback and a kernel bridge xenbr0 with
# peth0 (QEMU's e1000, wired to the host namespace's tap) enslaved, then the standard workload
# (workload.sh): two PV guests with the stock xen-netfront (gA 2 queues, gB 1), pings
# guest→host and guest→guest, TCP transfers with an md5 of the payload, and the throughput of
# each transfer as METRIC kernel.* lines. scenario-xbr.sh runs the same after its xbr part; this
# one is for debugging the rig without xbr.
. /usr/lib/xbrvm/lib.sh
. /usr/lib/xbrvm/workload.sh
DP=kernel
expect kernel.dom0-bridge kernel.dom0-ping-host
wl_expect
wl_kernel_setup
wl_dom0_ping
wl_run
exit $XBRVM_FAILS
