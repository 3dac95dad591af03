#!/usr/bin/env bash
# BPDU guard: a BPDU sent from a host into an edge port with guard shuts
# that port (shown in stp show, logged); the other ports keep forwarding;
# `port enable` brings it back. Malformed BPDUs are counted, never trip the
# guard, never crash the daemon.
. "$(dirname "$0")/lib.sh"

make_switch_ns
for i in 1 2 3; do add_host "$i"; in_h "$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
start_xbrd
xc add-br br0
for i in 1 2 3; do xc add-port br0 "v$i"; done
xc port set br0 v3 admin-edge yes
xc port set br0 v3 bpdu-guard yes
wait_forwarding br0

port_json() { xc -j stp show br0 | jq -c --arg p "$1" '.ports[] | select(.name == $p)'; }

# Garbage at the BPDU address: counted, guard not tripped.
in_h 3 "$FRAMETOOL" send eth0 --dst 01:80:c2:00:00:00 --count 5 >/dev/null
sleep 0.3
j=$(port_json v3)
[ "$(jq .shut_by_guard <<<"$j")" = false ] || fail "malformed BPDU tripped the guard: $j"
[ "$(jq .bpdu_rx_dropped <<<"$j")" -ge 5 ] || fail "malformed BPDUs not counted: $j"
ok "malformed BPDUs counted ($(jq .bpdu_rx_dropped <<<"$j")), guard not tripped"

# A real BPDU from host 3.
in_h 3 "$FRAMETOOL" send eth0 --bpdu >/dev/null
for _ in $(seq 30); do
    [ "$(port_json v3 | jq .shut_by_guard)" = true ] && break
    sleep 0.1
done
j=$(port_json v3)
[ "$(jq .shut_by_guard <<<"$j")" = true ] || fail "BPDU did not trip the guard: $j"
[ "$(jq -r .state <<<"$j")" = disabled ] || fail "guarded port not disabled: $j"
[ "$(jq .bpdu_guard_trips <<<"$j")" = 1 ] || fail "guard trips not counted: $j"
grep -q "port v3 shut by BPDU guard" "$WORK/xbrd.log" || fail "guard trip not logged"
[ "$(xc -j stp show br0 | jq .is_root)" = true ] || fail "the guarded BPDU's root claim was believed"
ok "BPDU on a guarded edge port: port shut, counted, logged; root claim ignored"

# Other ports keep forwarding; the shut port passes nothing.
in_h 1 ping -c 2 -i 0.2 -W 2 10.123.0.2 >/dev/null || fail "h1 -> h2 broken by the guard trip"
in_h 1 ping -c 1 -W 1 10.123.0.3 >/dev/null && fail "h1 reached h3 through a shut port"
ok "other ports keep forwarding; the shut port is cut off"

expect_fail "not shut" xc port enable br0 v1
xc port enable br0 v3
wait_forwarding br0
[ "$(port_json v3 | jq .shut_by_guard)" = false ] || fail "port still shut after port enable"
in_h 1 ping -c 2 -i 0.2 -W 2 10.123.0.3 >/dev/null || fail "h1 -> h3 after re-enable"
ok "port enable brings the port back; traffic flows"

# Settings are validated with a message and change nothing.
expect_fail "priority" xc stp set br0 priority 5
expect_fail "." xc stp set br0 bogus-key 1
expect_fail "." xc port set br0 v1 path-cost -3
expect_fail "no port named nosuch" xc port set br0 nosuch priority 16
xc stp set br0 priority 4096
[ "$(xc -j stp show br0 | jq -r .bridge_id | cut -c1-4)" = 1000 ] || fail "priority 4096 not in the bridge id"
ok "stp set / port set validate their values"

# Two hosts (here: namespaces) with the same machine id and the same bridge
# name must still have different bridge identifiers, or each would take the
# other's BPDUs for its own (cloned dom0 images, every one with xenbr0).
NS2="${P}other"
ip netns add "$NS2"
HOSTS+=("$NS2")
ip -n "$NS2" link add o0 type veth peer name o1
SOCK2="$WORK/other.sock"
ip netns exec "$NS2" "$XBRD" --socket "$SOCK2" >"$WORK/other.log" 2>&1 &
OTHER_PID=$!
for _ in $(seq 100); do
    ip netns exec "$NS2" "$XBRCTL" --socket "$SOCK2" version >/dev/null 2>&1 && break
    sleep 0.05
done
ip netns exec "$NS2" "$XBRCTL" --socket "$SOCK2" add-br br0
id1=$(xc -j stp show br0 | jq -r .bridge_id | cut -d. -f2)
id2=$(ip netns exec "$NS2" "$XBRCTL" --socket "$SOCK2" -j stp show br0 | jq -r .bridge_id | cut -d. -f2)
kill -TERM "$OTHER_PID"; wait "$OTHER_PID" || fail "second xbrd exited badly"
[ -n "$id1" ] && [ -n "$id2" ] && [ "$id1" != "$id2" ] \
    || fail "same bridge name on two hosts gave the same bridge address ($id1 / $id2)"
ok "same bridge name, same machine id, different hosts: different bridge ids ($id1, $id2)"
