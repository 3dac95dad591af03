#!/usr/bin/env bash
# xbr's vxlan port against Open vSwitch's `type=vxlan` port, over a routed
# underlay:
#
#   h1 -- [A: xbrd, vxlan port vx42] -- R -- [O: OVS] -- h2
#
# OVS runs its userspace (netdev) datapath, as the kernel's openvswitch
# module may be missing: userspace tunnelling, i.e. the underlay address
# lives on the internal port of an OVS bridge (br-phy) holding the uplink,
# and the tunnel port sits on br-int (OVS's documented setup). Checked: ARP,
# ping both ways, TCP both ways with the guests verifying checksums, and
# that A learned h2 behind O's address.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# shellcheck source=lib-ovs.sh
. "$(dirname "$0")/lib-ovs.sh"

R="${P}r"
O="${P}o"

trap ovs_on_exit EXIT

# ---- underlay: A 10.201.1.2, O 10.201.5.2 (on br-phy), routed by R ----
ip netns add "$R"
HOSTS+=("$R")
ip -n "$R" link set lo up
ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1
make_switch_ns
ip netns add "$O"
HOSTS+=("$O")
ip -n "$O" link set lo up
ip link add r1 netns "$R" type veth peer name ul netns "$SW"
ip link add r5 netns "$R" type veth peer name ul netns "$O"
ip -n "$R" addr add 10.201.1.1/24 dev r1
ip -n "$R" addr add 10.201.5.1/24 dev r5
ip -n "$R" link set r1 up
ip -n "$R" link set r5 up
ip -n "$SW" addr add 10.201.1.2/24 dev ul
ip -n "$SW" link set ul up
ip -n "$SW" route add default via 10.201.1.1
ip -n "$O" link set ul up
UA=10.201.1.2 UO=10.201.5.2

# Guests, receive checksum offload off (their kernels verify checksums);
# h2's transmit offload off too: across veths nothing would complete a
# partial checksum before OVS's userspace encapsulates it.
add_guest 1 "$SW" g1
add_guest 2 "$O" o2
for i in 1 2; do ip -n "${P}h$i" link set eth0 mtu 1400; done
ip netns exec "${P}h2" ethtool -K eth0 tx off >/dev/null

# ---- OVS, userspace datapath ----
ovs_start "$O"
vs add-br br-phy -- set bridge br-phy datapath_type=netdev
vs add-port br-phy ul
ip -n "$O" addr add "$UO/24" dev br-phy
ip -n "$O" link set br-phy up
ip -n "$O" route add default via 10.201.5.1
vs add-br br-int -- set bridge br-int datapath_type=netdev
vs add-port br-int o2
vs add-port br-int vx42 -- set interface vx42 type=vxlan \
    options:remote_ip="$UA" options:local_ip="$UO" options:key=42
# OVS's tunnel routing table follows the kernel's routes on br-phy.
for _ in $(seq 50); do
    oa ovs/route/show 2>/dev/null | grep -q "br-phy" && break
    sleep 0.1
done
# The tunnel's next hop (R) must be in OVS's neighbour cache: a ping from
# O's stack through br-phy fills it (OVS snoops ARP replies).
ip netns exec "$O" ping -c 2 -i 0.2 -W 1 10.201.5.1 >/dev/null || fail "O cannot reach R"

# ---- xbr ----
start_xbrd
xc add-br br0
xc stp set br0 enabled no
xc add-port br0 g1
xc add-port br0 vx42 --type vxlan --vni 42 --local "$UA" --remote "$UO"

h1mac=$(host_mac 1)
h2mac=$(host_mac 2)
ok=0
for _ in $(seq 10); do
    if in_h 1 ping -c 1 -W 1 10.123.0.2 >/dev/null; then ok=1; break; fi
done
[ "$ok" = 1 ] || fail "h1 (xbr) cannot ping h2 (OVS vxlan): $(oa tnl/neigh/show 2>&1 | tail -3)"
in_h 1 ping -c 3 -i 0.2 -W 2 10.123.0.2 >/dev/null || fail "h1 -> h2 ping lost"
in_h 2 ping -c 3 -i 0.2 -W 2 10.123.0.1 >/dev/null || fail "h2 (OVS) cannot ping h1 (xbr)"
arp=$(ip -n "${P}h2" -j neigh show 10.123.0.1 | jq -r '.[0].lladdr')
[ "$arp" = "$h1mac" ] || fail "h2 resolved 10.123.0.1 to '$arp', expected $h1mac"
dst=$(xc -j fdb show br0 | jq -r --arg m "$h2mac" '.[] | select(.mac == $m) | "\(.port) \(.dst)"')
[ "$dst" = "vx42 $UO" ] || fail "A's entry for h2: '$dst', expected 'vx42 $UO'"
ok "xbr <-> OVS vxlan (userspace datapath): ARP, ping both ways; A learned h2 behind $UO"

tcp_check 1 2 10.123.0.2 1
tcp_check 2 1 10.123.0.1 1
ok "TCP xbr -> OVS and back: 1 MiB each way intact (guests verify checksums)"
