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

if ! command -v ovs-vswitchd >/dev/null || ! command -v ovsdb-server >/dev/null; then
    fail "Open vSwitch not installed (apt-get install openvswitch-switch)"
fi

R="${P}r"
O="${P}o"
OVSDIR="$WORK/ovs"
export OVS_RUNDIR="$OVSDIR" OVS_DBDIR="$OVSDIR" OVS_LOGDIR="$OVSDIR" OVS_SYSCONFDIR="$OVSDIR"
vs() { ovs-vsctl --db="unix:$OVSDIR/db.sock" --timeout=10 "$@"; }
oa() { ovs-appctl -t "$OVSDIR/vswitchd.ctl" --timeout=10 "$@"; }

ovs_stop() {
    local d pid
    for d in vswitchd ovsdb; do
        [ -s "$OVSDIR/$d.pid" ] || continue
        pid=$(cat "$OVSDIR/$d.pid")
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
}
on_exit() {
    local rc=$?
    set +e
    if [ "$rc" != 0 ] && [ -s "$OVSDIR/vswitchd.log" ]; then
        echo "---- ovs-vswitchd log (tail) ----" >&2
        tail -n 30 "$OVSDIR/vswitchd.log" >&2
    fi
    ovs_stop
    (exit "$rc")
    cleanup
}
trap on_exit EXIT

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
guest() { # guest I NS PEERNAME
    local ns="${P}h$1"
    ip netns add "$ns"
    HOSTS+=("$ns")
    ip link add "$3" netns "$2" type veth peer name eth0 netns "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "10.123.0.$1/24" dev eth0
    ip -n "$ns" link set eth0 mtu 1400 up
    ip netns exec "$ns" ethtool -K eth0 rx off >/dev/null
    ip -n "$2" link set "$3" up
}
guest 1 "$SW" g1
guest 2 "$O" o2
ip netns exec "${P}h2" ethtool -K eth0 tx off >/dev/null

# ---- OVS, userspace datapath ----
mkdir -p "$OVSDIR"
ovsdb-tool create "$OVSDIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ip netns exec "$O" ovsdb-server "$OVSDIR/conf.db" --remote="punix:$OVSDIR/db.sock" \
    --pidfile="$OVSDIR/ovsdb.pid" --unixctl="$OVSDIR/ovsdb.ctl" --detach --no-chdir \
    --log-file="$OVSDIR/ovsdb.log" 2>>"$OVSDIR/stderr"
vs --no-wait init
ip netns exec "$O" ovs-vswitchd "unix:$OVSDIR/db.sock" \
    --pidfile="$OVSDIR/vswitchd.pid" --unixctl="$OVSDIR/vswitchd.ctl" --detach --no-chdir \
    --log-file="$OVSDIR/vswitchd.log" 2>>"$OVSDIR/stderr"
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

head -c 1048576 /dev/urandom >"$WORK/blob"
want=$(sha256sum <"$WORK/blob" | cut -d' ' -f1)
tcp_check() { # tcp_check FROM TO TOADDR
    ip netns exec "${P}h$2" timeout 15 socat -u TCP-LISTEN:5001,reuseaddr "OPEN:$WORK/got.$2,creat,trunc" &
    local lpid=$!
    sleep 0.3
    ip netns exec "${P}h$1" timeout 15 socat -u "OPEN:$WORK/blob" "TCP:$3:5001" ||
        fail "TCP h$1 -> h$2 failed"
    wait "$lpid" || fail "TCP receiver on h$2 failed"
    [ "$(sha256sum <"$WORK/got.$2" | cut -d' ' -f1)" = "$want" ] || fail "TCP h$1 -> h$2: bytes differ"
}
tcp_check 1 2 10.123.0.2
tcp_check 2 1 10.123.0.1
ok "TCP xbr -> OVS and back: 1 MiB each way intact (guests verify checksums)"
