#!/usr/bin/env bash
# xbrctl save, then a restart with the saved file, reproduces `show -j`
# (modulo counters) and the saved file itself. dom0's tap survives xbrd:
# after SIGKILL (and SIGTERM) the tap keeps its address and routes, the next
# xbrd attaches to it again and the address answers through the bridge;
# del-port deletes a tap xbrd created, and leaves one somebody else made.
. "$(dirname "$0")/lib.sh"

make_switch_ns
for i in 1 2 3; do add_host "$i"; done
TAP="${P}t"
cat >"$WORK/start.conf" <<CONF
add-br br0
add-port br0 v1
add-port br0 v2
add-port br0 v3
add-port br0 $TAP --type tap
CONF
start_xbrd --config "$WORK/start.conf"
# Run-time changes the start file does not have: a hole in the port numbers
# (v2 goes), bridge and port settings, a static entry, a second bridge.
xc del-port br0 v2
xc set-ageing br0 77
xc stp set br0 priority 8192
xc stp set br0 max-age 6
xc stp set br0 forward-delay 4   # (the saved file has them the other way round)
xc port set br0 v3 path-cost 1234
xc port set br0 v1 bpdu-guard yes
xc fdb add br0 02:00:00:00:01:01 v3 vlan 7
xc add-br br1
xc add-port br1 v2
xc stp set br1 enabled no
wait_forwarding br0

# dom0's side: an address and a route on the tap.
in_sw ip addr add 10.123.0.100/24 dev "$TAP"
in_sw ip link set "$TAP" up
in_sw ip route add 10.200.0.0/24 via 10.123.0.1 dev "$TAP"
in_h 1 ping -c 2 -i 0.2 -W 2 10.123.0.100 >/dev/null || fail "h1 -> tap before any restart"

# show -j without what traffic moves (counters, learned-entry counts) and
# with ports sorted by name is what must come back.
state() {
    xc -j show | jq -S '[.[] | del(.fdb_entries) | .ports |= (map(del(.stats, .fdb_entries, .rx_copied, .tx_kicks, .tx_ring_full)) | sort_by(.name))]'
}
xc save "$WORK/saved.conf"
[ -s "$WORK/saved.conf" ] || fail "save wrote nothing"
echo "---- saved ----"; cat "$WORK/saved.conf"
grep -q -- "add-port br0 $TAP --type tap" "$WORK/saved.conf" || fail "saved file lacks the tap"
grep -q -- "add-port br0 v3 --port-no 2" "$WORK/saved.conf" || fail "v3's port number not saved"
xc save >"$WORK/stdout.conf"
diff "$WORK/saved.conf" "$WORK/stdout.conf" || fail "save FILE and save differ"
expect_fail "save writes the configuration file format" xc -j save
before=$(state)

# A clean stop: the tap stays (no carrier) with its address and route.
kill -TERM "$XBRD_PID"; wait "$XBRD_PID" || fail "xbrd exited $? on SIGTERM"; XBRD_PID=""
in_sw ip link show "$TAP" | grep -q NO-CARRIER || fail "tap gone or still up after SIGTERM: $(in_sw ip link show "$TAP" 2>&1)"
in_sw ip -4 addr show "$TAP" | grep -q 10.123.0.100/24 || fail "tap lost its address on SIGTERM"
ok "SIGTERM: the tap stays, without carrier, with its address"

start_xbrd --config "$WORK/saved.conf"
wait_forwarding br0
after=$(state)
if [ "$before" != "$after" ]; then
    diff <(echo "$before") <(echo "$after") >&2
    fail "show -j after a restart with the saved file differs"
fi
xc save "$WORK/saved2.conf"
diff "$WORK/saved.conf" "$WORK/saved2.conf" || fail "saving again after the restart gives another file"
[ "$(xc -j fdb show br0 | jq -c '[.[] | select(.static) | {mac, vlan, port}]')" = \
  '[{"mac":"02:00:00:00:01:01","vlan":7,"port":"v3"}]' ] || fail "static entry not restored"
ok "save + restart: show -j identical modulo counters, and the same saved file"
in_h 1 ping -c 2 -i 0.2 -W 2 10.123.0.100 >/dev/null || fail "h1 -> tap after the SIGTERM restart"

# SIGKILL: nothing runs to keep the tap, the kernel keeps it (persistent).
mac_before=$(in_sw cat "/sys/class/net/$TAP/address")
kill -KILL "$XBRD_PID"; wait "$XBRD_PID" 2>/dev/null || true; XBRD_PID=""
in_sw ip link show "$TAP" >/dev/null 2>&1 || fail "tap gone after SIGKILL"
in_sw ip -4 addr show "$TAP" | grep -q 10.123.0.100/24 || fail "tap lost its address after SIGKILL"
in_h 1 ping -c 1 -W 1 10.123.0.100 >/dev/null 2>&1 && fail "tap answered with no xbrd running"
start_xbrd --config "$WORK/saved.conf"
wait_forwarding br0
in_h 1 ping -c 3 -i 0.2 -W 2 10.123.0.100 >/dev/null || fail "dom0's tap address does not answer after SIGKILL + restart"
in_sw ip route show 10.200.0.0/24 | grep -q "via 10.123.0.1 dev $TAP" || fail "route via the tap lost"
[ "$(in_sw cat "/sys/class/net/$TAP/address")" = "$mac_before" ] || fail "tap MAC changed across the restart"
[ "$(xc -j show br0 | jq -r --arg t "$TAP" '.[0].ports[] | select(.name == $t) | .owner')" = xbrd ] ||
    fail "re-attached tap not recognised as xbrd's"
ok "SIGKILL + restart: tap kept its address, route and MAC; the address answers through the bridge"

# del-port deletes a tap xbrd made; an external tap is only detached.
xc del-port br0 "$TAP"
in_sw ip link show "$TAP" >/dev/null 2>&1 && fail "del-port left xbrd's tap behind"
in_sw ip tuntap add mode tap multi_queue vnet_hdr name "${P}x"
xc add-port br0 "${P}x" --type tap
[ "$(xc -j show br0 | jq -r --arg t "${P}x" '.[0].ports[] | select(.name == $t) | .owner')" = external ] ||
    fail "an external tap was taken for xbrd's"
xc del-port br0 "${P}x"
in_sw ip link show "${P}x" >/dev/null 2>&1 || fail "del-port deleted a tap xbrd did not create"
ok "del-port deletes xbrd's tap and leaves an external one"
