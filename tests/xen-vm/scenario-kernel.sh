#!/bin/sh
# Baseline scenario (runs in dom0): the kernel's xen-netback and a kernel bridge xenbr0 with peth0
# (QEMU's e1000, wired to the host namespace's tap) enslaved, then the standard workload
# (workload.sh): two PV guests with the stock xen-netfront (gA 2 queues, gB 1), pings
# guest→host and guest→guest, TCP transfers with an md5 of the payload, and the throughput of
# each transfer as METRIC kernel.* lines (the reference for the xbr/kernel ratio).
. /usr/lib/xbrvm/lib.sh
DP=kernel
VIFEXTRA=bridge=xenbr0    # the vif script is the default, /etc/xen/scripts/vif-bridge (ours)
. /usr/lib/xbrvm/workload.sh
wl_port_ok() { [ -e /sys/class/net/vif$1.0/brport ]; }

expect dom0-bridge dom0-ping-host
wl_expect

if modload xen-netback && modload bridge \
   && ip link add xenbr0 type bridge stp_state 0 forward_delay 0 \
   && ip link set peth0 master xenbr0 && ip link set xenbr0 up \
   && ip addr add 10.99.0.2/24 dev xenbr0; then
    result dom0-bridge PASS "xenbr0 with peth0, xen-netback loaded"
else
    result dom0-bridge FAIL "bridge setup failed"
fi
ping -c 1 -w 5 $WL_HOST > /dev/null 2>&1   # ARP warm-up
out=$(ping -c 3 -w 10 $WL_HOST 2>&1)
rx=$(echo "$out" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
if [ "${rx:-0}" -eq 3 ]; then result dom0-ping-host PASS "3/3"
else result dom0-ping-host FAIL "${rx:-0}/3: $(echo "$out" | tail -2 | tr '\n' ' ')"; fi

wl_run
exit $XBRVM_FAILS
