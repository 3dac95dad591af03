#!/usr/bin/env bash
# Limits that protect the bridge: frames longer than the egress MTU are
# dropped and counted; a host spraying random source MACs hits its per-port
# FDB limit without evicting anyone else's entries.
. "$(dirname "$0")/lib.sh"

make_switch_ns
for i in 1 2 3; do
    add_host "$i"
    in_h "$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
start_xbrd
xc add-br br0
for i in 1 2 3; do xc add-port br0 "v$i"; done
wait_forwarding br0

# MTU: v3 (switch side) at 1000; 1400-byte broadcasts reach h2, not h3.
in_sw ip link set v3 mtu 1000
sleep 1.5 # the daemon re-reads MTUs every second
[ "$(xc -j show | jq '.[0].ports[] | select(.name == "v3") | .mtu')" = 1000 ] \
    || fail "MTU change of v3 not picked up"
count_start m2 2 --tag 31 --seconds 4 --expect 50
count_start m3 3 --tag 31 --seconds 4
in_h 1 "$FRAMETOOL" send eth0 --dst ff:ff:ff:ff:ff:ff --size 1400 --tag 31 --count 50 --rate 10000 >/dev/null
settle br0 v1
count_result m2; n2=$COUNT; count_result m3; n3=$COUNT
[ "$n2" = 50 ] || fail "h2 got $n2 of 50 1400-byte frames"
[ "$n3" = 0 ] || fail "h3 got $n3 frames larger than v3's MTU"
drops=$(json_stat br0 v3 tx_drop_mtu)
[ "$drops" -ge 50 ] || fail "v3 tx_drop_mtu is $drops, expected >= 50"
ok "frames over the egress MTU dropped and counted (h2 50/50, h3 0, tx_drop_mtu $drops)"
in_sw ip link set v3 mtu 1500

# Per-port FDB limit: h1 sprays 30000 random source MACs.
for i in 2 3; do in_h "$i" "$FRAMETOOL" send eth0 --dst ff:ff:ff:ff:ff:ff >/dev/null; done
in_h 1 "$FRAMETOOL" send eth0 --dst ff:ff:ff:ff:ff:ff --random-src --count 30000 --rate 20000 >/dev/null
settle br0 v1
v1=$(xc -j show | jq '.[0].ports[] | select(.name == "v1") | .fdb_entries')
limit_hits=$(json_stat br0 v1 fdb_limit_hits)
[ "$v1" -le 8192 ] || fail "v1 holds $v1 entries, over the per-port limit of 8192"
[ "$limit_hits" -gt 0 ] || fail "no per-port limit hits counted on v1"
for i in 2 3; do
    mac=$(host_mac "$i")
    port=$(xc -j fdb show br0 | jq -r --arg m "$mac" '[.[] | select(.mac == $m) | .port] | first // "none"')
    [ "$port" = "v$i" ] || fail "h$i's entry is gone ($port) after h1's MAC spray"
done
h3mac=$(host_mac 3)
count_start u3 3 --tag 32 --seconds 4 --expect 100
count_start u2 2 --tag 32 --seconds 4
in_h 1 "$FRAMETOOL" send eth0 --dst "$h3mac" --tag 32 --count 100 --rate 20000 >/dev/null
count_result u3; n3=$COUNT; count_result u2; n2=$COUNT
[ "$n3" = 100 ] && [ "$n2" = 0 ] || fail "after the spray, unicast to h3: h3 $n3/100, h2 $n2"
ok "MAC spray: v1 capped at $v1 entries, $limit_hits limit hits, others' entries and unicast intact"
