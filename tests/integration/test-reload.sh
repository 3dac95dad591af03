#!/usr/bin/env bash
# SIGHUP / xbrctl reload apply the configuration file's difference: a port
# added, a port removed, an ageing change, while the ports the file does not
# change keep forwarding (a 100/s ping across them loses nothing). A file with
# a syntax error is refused whole; a port added with xbrctl at run time is
# left alone; a setting dropped from the file goes back to its default.
. "$(dirname "$0")/lib.sh"

make_switch_ns
for i in 1 2 3 4; do add_host "$i"; done
CONF="$WORK/xbrd.conf"
cat >"$CONF" <<CONF
add-br br0
add-port br0 v1
add-port br0 v2
add-port br0 v3
set-ageing br0 120
port set br0 v3 path-cost 1000
CONF
start_xbrd --config "$CONF"
wait_forwarding br0

ifindex() { xc -j show br0 | jq -r --arg p "$1" '.[0].ports[] | select(.name == $p) | .ifindex'; }
ports() { xc -j show br0 | jq -r '[.[0].ports[] | "\(.name):\(.port_no)"] | join(",")'; }
[ "$(ports)" = "v1:0,v2:1,v3:2" ] || fail "start: ports $(ports)"
idx1=$(ifindex v1); idx2=$(ifindex v2)
in_h 1 ping -c 2 -i 0.2 -W 2 10.123.0.2 >/dev/null || fail "h1 -> h2 before the reload"
rx_before=$(json_stat br0 v1 rx_packets)

# A port added by hand at run time: no file declares it, so reloads leave it.
in_sw ip link add "${P}rt" type veth peer name "${P}rp"
in_sw ip link set "${P}rt" up; in_sw ip link set "${P}rp" up
xc add-port br0 "${P}rt"

# 100 pings a second from h1 to h2 (through v1 and v2) across two reloads.
in_h 1 ping -i 0.01 -c 400 -W 1 10.123.0.2 >"$WORK/ping.out" 2>&1 &
ping_pid=$!
sleep 1

# Reload 1 (SIGHUP): v4 added, v3 removed, ageing 120 -> 60.
cat >"$CONF" <<CONF
add-br br0
add-port br0 v1
add-port br0 v2
add-port br0 v4
set-ageing br0 60
CONF
kill -HUP "$XBRD_PID"
for _ in $(seq 50); do
    [ "$(xc -j show br0 | jq '.[0].ageing')" = 60 ] && break
    sleep 0.1
done
kill -0 "$XBRD_PID" || fail "xbrd exited on SIGHUP"
[ "$(xc -j show br0 | jq '.[0].ageing')" = 60 ] || fail "SIGHUP: ageing not changed"
got=$(ports)
[ "$got" = "v1:0,v2:1,${P}rt:3,v4:2" ] || fail "after SIGHUP: ports $got (v3 out, v4 in, ${P}rt kept)"
ok "SIGHUP: v4 added, v3 removed, ageing 60, the port added by hand kept"

# Reload 2 (xbrctl reload, synchronous): a syntax error refuses the whole file.
cp "$CONF" "$WORK/good.conf"
printf 'add-br br0\nadd-port br0 v1\nadd-prot br0 v2\n' >"$CONF"
expect_fail "xbrd.conf:3: .*not a configuration statement" xc reload
[ "$(ports)" = "$got" ] || fail "a refused file changed the ports: $(ports)"
cp "$WORK/good.conf" "$CONF"

# Reload 3: a setting the file had goes back to its default when dropped.
printf 'add-br br0\nadd-port br0 v1\nadd-port br0 v2\nadd-port br0 v4\nset-ageing br0 60\nport set br0 v4 priority 32\n' >"$CONF"
out=$(xc reload) || fail "xbrctl reload failed: $out"
echo "$out" | grep -q "1 change" || fail "reload 3 made other than one change: $out"
prio() { xc -j stp show br0 | jq -r --arg p "$1" '.ports[] | select(.name == $p) | .port_id'; }
[ "$(prio v4)" = "$(printf %d 0x2002)" ] || fail "v4 port id $(prio v4), expected priority 32 (0x2002)"
printf 'add-br br0\nadd-port br0 v1\nadd-port br0 v2\nadd-port br0 v4\n' >"$CONF"
out=$(xc reload) || fail "xbrctl reload failed: $out"
[ "$(prio v4)" = "$(printf %d 0x8002)" ] || fail "v4 priority not back to 128: id $(prio v4)"
[ "$(xc -j show br0 | jq '.[0].ageing')" = 300 ] || fail "ageing not back to 300 when dropped"
out=$(xc reload) || fail "xbrctl reload failed: $out"
echo "$out" | grep -q " 0 change" || fail "reloading the same file changed something: $out"
ok "xbrctl reload: syntax error refused whole; dropped settings back to defaults; same file = no change"

wait "$ping_pid" || true
tx=$(sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1/p' "$WORK/ping.out")
rx=$(sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\2/p' "$WORK/ping.out")
echo "ping across the reloads: $tx sent, $rx answered"
[ "$tx" = 400 ] && [ "$rx" = 400 ] || fail "pings lost across the reloads: $(tail -2 "$WORK/ping.out")"
[ "$(ifindex v1)" = "$idx1" ] && [ "$(ifindex v2)" = "$idx2" ] || fail "v1/v2 were re-created"
for p in v1 v2; do
    [ "$(grep -c "port $p (afpacket) added" "$WORK/xbrd.log")" = 1 ] &&
        ! grep -q "port $p removed" "$WORK/xbrd.log" || fail "$p was re-created: $(grep "port $p" "$WORK/xbrd.log")"
done
[ "$(json_stat br0 v1 rx_packets)" -ge $((rx_before + 400)) ] || fail "v1's counters were reset"
ok "untouched ports: 400 of 400 pings at 100/s answered, same sockets, counters kept"

# The new port works.
in_h 4 ping -c 2 -i 0.2 -W 2 10.123.0.1 >/dev/null || fail "h4 -> h1 through the added v4"
ok "the port the reload added forwards"

# The log level at run time: at err, an added port (an info line) is not
# logged; back at info, it is.
[ "$(xc log-level)" = info ] || fail "log level is not info at start"
[ "$(xc log-level err)" = err ] && [ "$(xc -j log-level | jq -r .level)" = err ] || fail "log-level err"
grep -q "log level err (was info)" "$WORK/xbrd.log" || fail "the change was not logged"
in_sw ip link add "${P}q1" type veth peer name "${P}q2"; in_sw ip link set "${P}q1" up
xc add-port br0 "${P}q1"
xc log-level info >/dev/null
xc del-port br0 "${P}q1"
grep -q "port ${P}q1 (afpacket) added" "$WORK/xbrd.log" && fail "an info line was logged at level err"
grep -q "port ${P}q1 removed" "$WORK/xbrd.log" || fail "info lines not logged after going back to info"
ok "log-level: err hides info lines, info shows them again"
