#!/usr/bin/env bash
# 802.1Q VLANs: access and trunk ports against real peers. xbr's trunk t1
# goes to a Linux bridge with vlan_filtering 1, its trunk t2 to Open
# vSwitch (trunks=/tag=); hosts in VLAN 10 and 20 on each of the three
# switches. Checked: the two VLANs are isolated end to end (tcpdump on the
# VLAN-20 hosts sees nothing of VLAN 10), the tags on the wire, per-VLAN
# learning (one MAC in both VLANs, on different ports), a native VLAN,
# tagged and 802.1ad frames on an access port and a VID outside a trunk's
# set dropped and counted, the ports with a VLAN mode kept out of the
# kernel fast path, and the mode in `vlan show`, `save` and the config file.
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-ovs.sh
. "$(dirname "$0")/lib-ovs.sh"

KB="${P}kb"
OVSNS="${P}ovs"
trap ovs_on_exit EXIT

SAME_MAC=02:00:00:0a:0a:01

# ---- topology ----------------------------------------------------------------
#   h1 (v1, access 10)  h2 (v2, access 20)  h7 (v7, default: access 1)
#   h8 (v8, trunk 10,20: a raw tagged end, xbr-frametool)
#   xbr t2 == o1 OVS ob (userspace datapath): h5 (o5, tag=10), h6 (o6, tag=20)
#   xbr t1 == k1 Linux bridge kbr, vlan_filtering 1: h3 (k3, pvid 10),
#   h4 (k4, pvid 20) -- where the kernel has CONFIG_BRIDGE_VLAN_FILTERING.
make_switch_ns
ip netns add "$OVSNS"
HOSTS+=("$OVSNS")
ip netns add "$KB"
HOSTS+=("$KB")
for ns in "$KB" "$OVSNS"; do
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
KBR=0
if ip -n "$KB" link add kbr type bridge vlan_filtering 1 stp_state 0 2>/dev/null; then
    KBR=1
else
    echo "note: this kernel has no VLAN-filtering bridge (CONFIG_BRIDGE_VLAN_FILTERING): the Linux-bridge peer is not built"
fi
add_host 1
add_host 2
add_host 7
add_host 8
add_host 5 "$OVSNS" o5
add_host 6 "$OVSNS" o6
HOSTS_ALL="1 2 5 6 7 8"
if ((KBR)); then
    add_host 3 "$KB" k3
    add_host 4 "$KB" k4
    HOSTS_ALL="$HOSTS_ALL 3 4"
fi
for i in $HOSTS_ALL; do in_h "$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
# h1 and h2 share one MAC: only per-VLAN learning lets both talk at once.
for i in 1 2; do
    in_h "$i" ip link set eth0 down
    in_h "$i" ip link set eth0 address "$SAME_MAC"
    in_h "$i" ip link set eth0 up
done
ip link add t2 netns "$SW" type veth peer name o1 netns "$OVSNS"
ip -n "$SW" link set t2 up
ovs_start "$OVSNS"
vs add-br ob -- set bridge ob datapath_type=netdev fail-mode=standalone
vs add-port ob o1 -- set port o1 trunks=10,20 vlan_mode=trunk
vs add-port ob o5 -- set port o5 tag=10
vs add-port ob o6 -- set port o6 tag=20
ip -n "$OVSNS" link set o1 up
if ((KBR)); then
    ip link add t1 netns "$SW" type veth peer name k1 netns "$KB"
    ip -n "$SW" link set t1 up
    for p in k1 k3 k4; do ip -n "$KB" link set "$p" master kbr up; done
    ip -n "$KB" link set kbr up
    bridge -n "$KB" vlan del dev k1 vid 1
    bridge -n "$KB" vlan add dev k1 vid 10
    bridge -n "$KB" vlan add dev k1 vid 20
    bridge -n "$KB" vlan del dev k3 vid 1
    bridge -n "$KB" vlan add dev k3 vid 10 pvid untagged
    bridge -n "$KB" vlan del dev k4 vid 1
    bridge -n "$KB" vlan add dev k4 vid 20 pvid untagged
fi

start_xbrd
xc add-br br0
XPORTS="v1 v2 v7 v8 t2"
((KBR)) && XPORTS="$XPORTS t1"
for p in $XPORTS; do xc add-port br0 "$p"; done
xc port set br0 v1 vlan access 10
xc port set br0 v2 vlan access 20
xc port set br0 v8 vlan trunk 10,20
xc port set br0 t2 vlan trunk 10,20
((KBR)) && xc port set br0 t1 vlan trunk 10,20
wait_forwarding br0

# ---- CLI: bad input refused, show -------------------------------------------
expect_fail "invalid VLAN id '0'" xc port set br0 v1 vlan access 0
expect_fail "invalid VLAN id '4095'" xc port set br0 v1 vlan access 4095
expect_fail "invalid VLAN id '5000'" xc port set br0 v8 vlan trunk 10,5000
expect_fail "invalid VLAN range" xc port set br0 v8 vlan trunk 30-20
expect_fail "invalid VLAN list" xc port set br0 v8 vlan trunk 10,,20
expect_fail "invalid VLAN id '0'" xc port set br0 v8 vlan trunk 10 native 0
expect_fail "usage: vlan access VID" xc port set br0 v1 vlan bogus 10
expect_fail "invalid VLAN id '0'" xc fdb add br0 02:00:00:00:00:99 v1 vlan 0
vj=$(xc -j vlan show br0)
jq -e --argjson n "$(wc -w <<<"$XPORTS")" 'length == $n and
    (.[] | select(.port == "v1") | .mode == "access" and .pvid == 10) and
    (.[] | select(.port == "v7") | .mode == "access" and .pvid == 1) and
    (.[] | select(.port == "v8") | .mode == "trunk" and .pvid == null and .tagged == "10,20")' \
    <<<"$vj" >/dev/null || fail "vlan show -j: $vj"
xc vlan show br0 | grep -q -E '^t2 +trunk +- +10,20$' || fail "vlan show: $(xc vlan show br0)"
ok "vlan show (text and -j), bad VIDs refused"

# ---- fast path: ports with a VLAN mode stay out ------------------------------
if [ "$(xc -j fastpath show | jq -r '.loaded')" = true ]; then
    attached() { xc -j fastpath show | jq -r --arg p "$1" '.bridges[0].ports[] | select(.name == $p) | .attached'; }
    for p in v1 v2 v8 t2; do
        [ "$(attached "$p")" = false ] || fail "$p (vlan mode) is attached to the fast path"
    done
    [ "$(attached v7)" = true ] || fail "v7 (default vlan) is not in the fast path: $(xc -j fastpath show)"
    # Back to the default: attached again.
    xc port set br0 v8 vlan access 1
    [ "$(attached v8)" = true ] || fail "v8 back to access 1 is not in the fast path"
    xc port set br0 v8 vlan trunk 10,20
    [ "$(attached v8)" = false ] || fail "v8 (trunk again) is attached to the fast path"
    ok "fast path: ports with a VLAN mode held out, access-1 ones attached (and back)"
else
    fail "fast path not loaded: $(xc -j fastpath show)"
fi

# ---- reachability and isolation ----------------------------------------------
# reach: 2 replies within 5 s (ping stops at the second). Right after a change (a port moved
# to another VLAN, a restart) ARP may still be waiting out an unanswered probe of the noreach
# before it, ~1 s. noreach: 2 pings, 1 s each, none answered.
reach() { in_h "$1" ping -c 2 -i 0.2 -w 5 -q "10.123.0.$2" >/dev/null || fail "h$1 cannot reach h$2 (${3:-})"; }
noreach() { if in_h "$1" ping -c 2 -i 0.2 -W 1 -q "10.123.0.$2" >/dev/null; then fail "h$1 reaches h$2 across VLANs (${3:-})"; fi; }
# Frames in a capture matching a filter (a capture cut short still counts).
pcount() { { tcpdump -n -r "$1" "${@:2}" 2>/dev/null || true; } | wc -l; }
V10="host 10.123.0.1 or host 10.123.0.3 or host 10.123.0.5"
in_h 6 timeout 30 tcpdump -U -n -i eth0 -w "$WORK/h6.pcap" "$V10" 2>/dev/null &
TD6=$!
ip netns exec "$OVSNS" timeout 30 tcpdump -U -n -i o1 -w "$WORK/o1.pcap" 2>/dev/null &
TDO=$!
TDK=""
if ((KBR)); then
    in_h 4 timeout 30 tcpdump -U -n -i eth0 -w "$WORK/h4.pcap" "$V10" 2>/dev/null &
    TD4=$!
    ip netns exec "$KB" timeout 30 tcpdump -U -n -i k1 -w "$WORK/k1.pcap" 2>/dev/null &
    TDK="$TD4 $!"
fi
sleep 1.5
reach 1 5 "VLAN 10 to OVS"
reach 2 6 "VLAN 20 to OVS"
noreach 1 6 "10 -> 20"
noreach 5 2 "10 -> 20"
noreach 1 7 "10 -> 1"
noreach 7 2 "1 -> 20"
noreach 7 5 "1 -> 10 over the trunk"
if ((KBR)); then
    reach 1 3 "VLAN 10 to the Linux bridge"
    reach 3 5 "VLAN 10, Linux bridge to OVS through xbr"
    reach 2 4 "VLAN 20 to the Linux bridge"
    noreach 1 4 "10 -> 20"
    noreach 3 6 "10 -> 20"
fi
ok "VLAN 10 and 20 each reach their hosts behind the trunk(s), never the other VLAN or VLAN 1"
for p in $XPORTS; do
    [ "$p" = v7 ] && continue
    [ "$(json_stat br0 "$p" fast_rx_packets)" = 0 ] && [ "$(json_stat br0 "$p" fast_tx_packets)" = 0 ] ||
        fail "$p (vlan mode) has frames through the kernel fast path"
done
ok "no frame of a VLAN port went through the kernel fast path"

# h1 and h2 (one MAC) in both VLANs at once: two entries, on v1 and v2.
fj=$(xc -j fdb show br0)
jq -e --arg m "$SAME_MAC" '[.[] | select(.mac == $m)] | length == 2 and
    any(.[]; .vlan == 10 and .port == "v1") and any(.[]; .vlan == 20 and .port == "v2")' <<<"$fj" >/dev/null ||
    fail "per-VLAN FDB: $(jq -c --arg m "$SAME_MAC" '[.[] | select(.mac == $m)]' <<<"$fj")"
h5=$(host_mac 5)
jq -e --arg m "$h5" 'any(.[]; .mac == $m and .vlan == 10 and .port == "t2")' <<<"$fj" >/dev/null ||
    fail "h5 not learned in VLAN 10 on t2: $fj"
reach 1 5 "after h2 used the same MAC"
reach 2 6 "after h1 used the same MAC"
ok "per-VLAN FDB: $SAME_MAC on v1 in VLAN 10 and on v2 in VLAN 20, both forwarding"

# The raw trunk end: frames it sends tagged 10 reach h1 (untagged) and not
# h2; a broadcast from h5 reaches it tagged 10.
count_start r1 1 --tag 770 --seconds 3
count_start r2 2 --tag 770 --seconds 3
count_start r8 8 --tag 770 --vlan 10 --seconds 3
in_h 8 "$FRAMETOOL" send eth0 --dst ff:ff:ff:ff:ff:ff --vlan 10 --tag 770 --count 5 >/dev/null
in_h 5 "$FRAMETOOL" send eth0 --dst ff:ff:ff:ff:ff:ff --tag 770 --count 7 >/dev/null
count_result r1
c1=$COUNT
count_result r2
c2=$COUNT
count_result r8
[ "$c1" = 12 ] && [ "$c2" = 0 ] && [ "$COUNT" = 7 ] ||
    fail "trunk v8: h1 got $c1 (want 12), h2 $c2 (want 0), h8 $COUNT tagged 10 (want 7)"
ok "trunk v8: tagged-10 frames in, VLAN 10 out tagged 10"

# A static entry in VLAN 10 matches there only.
xc fdb add br0 02:00:00:00:77:01 v1 vlan 10
xc -j fdb show br0 | jq -e 'any(.[]; .mac == "02:00:00:00:77:01" and .vlan == 10 and .static)' >/dev/null ||
    fail "static entry in VLAN 10 missing"
count_start s1 1 --tag 771 --seconds 3
count_start s2 2 --tag 771 --seconds 3
in_h 5 "$FRAMETOOL" send eth0 --dst 02:00:00:00:77:01 --tag 771 --count 5 >/dev/null
in_h 6 "$FRAMETOOL" send eth0 --dst 02:00:00:00:77:01 --tag 771 --count 5 >/dev/null
count_result s1
c1=$COUNT
count_result s2
c2=$COUNT
# h6's frames (VLAN 20, unknown there) are flooded in VLAN 20: h2 gets them.
[ "$c1" = 5 ] && [ "$c2" = 5 ] || fail "static entry (VLAN 10): h1 got $c1 (want 5), h2 $c2 (want 5)"
ok "fdb add ... vlan 10: matched in VLAN 10 only (VLAN 20 floods the same MAC)"

sleep 1
kill "$TD6" "$TDO" $TDK 2>/dev/null || true
wait "$TD6" "$TDO" $TDK 2>/dev/null || true
n6=$(pcount "$WORK/h6.pcap")
[ "$n6" = 0 ] || fail "VLAN 20 host h6 saw $n6 frames of VLAN 10: $(tcpdump -n -r "$WORK/h6.pcap" 2>/dev/null | head -3)"
# FILE XMAC: frames tagged 10, tagged 20, and untagged ones xbr forwarded
# (not what the switch side of the veth, XMAC, sent itself: BPDUs, IPv6).
trunk_tags() {
    echo "$(pcount "$1" 'vlan 10')" "$(pcount "$1" 'vlan 20')" "$(pcount "$1" "not ether src $2 and not vlan")"
}
read -r t10 t20 un <<<"$(trunk_tags "$WORK/o1.pcap" "$(in_sw cat /sys/class/net/t2/address)")"
[ "$t10" -gt 0 ] && [ "$t20" -gt 0 ] && [ "$un" = 0 ] ||
    fail "trunk t2: $t10 frames tagged 10, $t20 tagged 20, $un untagged (want >0, >0, 0)"
if ((KBR)); then
    n4=$(pcount "$WORK/h4.pcap")
    [ "$n4" = 0 ] || fail "VLAN 20 host h4 saw $n4 frames of VLAN 10"
    read -r t10 t20 un <<<"$(trunk_tags "$WORK/k1.pcap" "$(in_sw cat /sys/class/net/t1/address)")"
    [ "$t10" -gt 0 ] && [ "$t20" -gt 0 ] && [ "$un" = 0 ] ||
        fail "trunk t1: $t10 frames tagged 10, $t20 tagged 20, $un untagged"
fi
ok "tcpdump: no VLAN 10 frame on the VLAN 20 host(s); the trunk carries tags 10 and 20, nothing untagged"

# ---- drops: tagged on an access port, VID outside a trunk, 802.1ad -----------
drops() { json_stat br0 "$1" rx_drop_vlan; }
# drop_test PORT FROM TAG "HOSTS" ARGS...: host FROM (on PORT) sends 10
# broadcast test frames per ARGS (xbr-frametool options, "" for untagged);
# none may reach HOSTS, and PORT's rx_drop_vlan must grow by all of them.
drop_test() {
    local port=$1 from=$2 tag=$3 hosts=$4 h a d0 d1
    shift 4
    d0=$(drops "$port")
    for h in $hosts; do count_start "d$h" "$h" --tag "$tag" --seconds 3; done
    for a in "$@"; do
        # shellcheck disable=SC2086 # the options' words
        in_h "$from" "$FRAMETOOL" send eth0 --dst ff:ff:ff:ff:ff:ff --tag "$tag" --count 10 $a >/dev/null
    done
    for h in $hosts; do
        count_result "d$h"
        [ "$COUNT" = 0 ] || fail "$port: $COUNT frames that should be dropped reached h$h"
    done
    settle br0 "$port"
    d1=$(drops "$port")
    [ $((d1 - d0)) -eq $(($# * 10)) ] || fail "$port rx_drop_vlan went $d0 -> $d1, want +$(($# * 10))"
    DROPS="$d0 -> $d1"
}
drop_test v1 1 772 "2 6" "--vlan 20" "--vlan 10 --qinq"
ok "access port v1: 10 frames tagged 20 and 10 with an 802.1ad tag dropped, counted ($DROPS)"
# On the trunk: a VID it does not carry (30), untagged with no native VLAN,
# a priority tag (VID 0, untagged), an 802.1ad tag.
drop_test v8 8 773 "1 5" "--vlan 30" "" "--vlan 0" "--vlan 10 --qinq"
ok "trunk v8 (10,20, no native): VID 30, untagged, priority-tagged, 802.1ad dropped, counted ($DROPS)"

# A priority tag on an access port is untagged: it is forwarded.
count_start p5 5 --tag 774 --seconds 3
in_h 1 "$FRAMETOOL" send eth0 --dst ff:ff:ff:ff:ff:ff --vlan 0 --tag 774 --count 4 >/dev/null
count_result p5
[ "$COUNT" = 4 ] || fail "priority-tagged frames from access port v1: h5 got $COUNT of 4"
ok "priority tag (VID 0) on access port v1 taken as untagged: VLAN 10"

# ---- native VLAN -------------------------------------------------------------
# t2 carries 20 tagged and 10 untagged; so does o1 on OVS (native-untagged).
xc port set br0 t2 vlan trunk 20 native 10
vs set port o1 vlan_mode=native-untagged tag=10 trunks=10,20
[ "$(xc -j vlan show br0 | jq -r '.[] | select(.port == "t2") | "\(.pvid) \(.tagged)"')" = "10 20" ] ||
    fail "native: $(xc vlan show br0)"
sleep 1
ip netns exec "$OVSNS" timeout 20 tcpdump -U -n -i o1 -w "$WORK/o1n.pcap" 2>/dev/null &
TDO=$!
sleep 1
reach 1 5 "native VLAN 10 untagged on t2"
reach 2 6 "VLAN 20 tagged next to native 10"
noreach 1 6 "native 10 -> 20"
noreach 5 2 "native 10 -> 20"
sleep 0.5
kill "$TDO" 2>/dev/null || true
wait "$TDO" 2>/dev/null || true
# (A filter without "vlan" matches untagged frames only.)
u=$(pcount "$WORK/o1n.pcap" 'icmp and (host 10.123.0.1 or host 10.123.0.5)')
t=$(pcount "$WORK/o1n.pcap" 'vlan 20 and icmp')
t10=$(pcount "$WORK/o1n.pcap" 'vlan 10')
[ "$u" -gt 0 ] && [ "$t" -gt 0 ] && [ "$t10" = 0 ] ||
    fail "native: $u untagged VLAN-10 pings, $t tagged-20, $t10 tagged-10 frames on o1"
ok "native VLAN 10 untagged on the trunk next to tagged 20 (OVS vlan_mode=native-untagged)"

# ---- save, config file, reload -----------------------------------------------
xc save "$WORK/saved.conf"
grep -qx 'port set br0 v1 vlan access 10' "$WORK/saved.conf" || fail "save: $(cat "$WORK/saved.conf")"
grep -qx 'port set br0 t2 vlan trunk 20 native 10' "$WORK/saved.conf" || fail "save: $(cat "$WORK/saved.conf")"
grep -qx 'fdb add br0 02:00:00:00:77:01 v1 vlan 10' "$WORK/saved.conf" || fail "save (fdb): $(cat "$WORK/saved.conf")"
if grep -q 'v7 vlan' "$WORK/saved.conf"; then fail "save wrote the default VLAN mode of v7"; fi
ok "save writes the VLAN modes that are not the default"

for p in $XPORTS; do xc port set br0 "$p" vlan access 1; done
[ "$(xc -j vlan show br0 | jq '[.[] | select(.mode == "access" and .pvid == 1)] | length')" = "$(wc -w <<<"$XPORTS")" ] ||
    fail "reset to access 1: $(xc vlan show br0)"
kill -TERM "$XBRD_PID"
wait "$XBRD_PID" || fail "xbrd exited non-zero on TERM"
XBRD_PID=""
start_xbrd --config "$WORK/saved.conf"
wait_forwarding br0
[ "$(xc -j vlan show br0 | jq -r '.[] | select(.port == "t2") | "\(.mode) \(.pvid) \(.tagged)"')" = "trunk 10 20" ] ||
    fail "config file: $(xc vlan show br0)"
reach 1 5 "after restart from the saved file"
reach 2 6 "after restart from the saved file"
noreach 1 6 "after restart"
# Edit the file: v1 to VLAN 20, by reload.
sed -i 's/^port set br0 v1 vlan access 10$/port set br0 v1 vlan access 20/' "$WORK/saved.conf"
xc reload >/dev/null
[ "$(xc -j vlan show br0 | jq -r '.[] | select(.port == "v1") | .pvid')" = 20 ] ||
    fail "reload: $(xc vlan show br0)"
reach 1 6 "h1 moved to VLAN 20 by reload"
# Dropped from the file: back to the default.
sed -i '/^port set br0 v2 vlan/d' "$WORK/saved.conf"
xc reload >/dev/null
[ "$(xc -j vlan show br0 | jq -r '.[] | select(.port == "v2") | .pvid')" = 1 ] ||
    fail "reload (line removed): $(xc vlan show br0)"
echo 'port set br0 v7 vlan access 0' >>"$WORK/saved.conf"
expect_fail "invalid VLAN id '0'" xc reload
ok "config file: modes applied at start, changed and reset by reload, VID 0 refused"
