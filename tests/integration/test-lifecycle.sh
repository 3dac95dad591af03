#!/usr/bin/env bash
# Daemon lifecycle: start from a config file, an idle daemon sleeps (under 1%
# of a CPU), SIGTERM detaches every port (promiscuous mode dropped; the tap
# xbrd created stays for the next run, see test-save-restart.sh) and exits 0;
# the control socket is root-only.
. "$(dirname "$0")/lib.sh"

make_switch_ns
for i in 1 2 3; do add_host "$i"; done
cat >"$WORK/xbrd.conf" <<CONF
# bridges and ports to recreate at start
add-br br0
add-port br0 v1
add-port br0 v2
add-port br0 ${P}tap --type tap   # the host's own port
set-ageing br0 120
CONF
start_xbrd --config "$WORK/xbrd.conf"
wait_forwarding br0

ports=$(xc -j show | jq -r '[.[0].ports[].name] | join(",")')
[ "$ports" = "v1,v2,${P}tap" ] || fail "config recreated ports '$ports'"
[ "$(xc -j show | jq '.[0].ageing')" = 120 ] || fail "config's set-ageing not applied"
ok "config file recreated br0 with v1, v2 and a tap"

mode=$(stat -c %a "$SOCK")
[ "$mode" = 600 ] || fail "control socket mode $mode, expected 600"
ok "control socket is mode 0600"

promisc() { in_sw ip -d link show "$1" | grep -o 'promiscuity [0-9]*' | cut -d' ' -f2; }
[ "$(promisc v1)" -ge 1 ] || fail "v1 not promiscuous while attached"
in_h 1 ping -c 1 -W 2 10.123.0.2 >/dev/null || fail "ping through config-made bridge"

# Idle: CPU time of xbrd over 10 s, from /proc (utime + stime, in ticks).
sleep 1
ticks() { awk '{print $14 + $15}' "/proc/$XBRD_PID/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks); sleep 10; t1=$(ticks)
used=$((t1 - t0))
pct=$(awk -v u="$used" -v hz="$hz" 'BEGIN { printf "%.2f", 100 * u / hz / 10 }')
echo "idle xbrd with 3 ports: $used ticks in 10 s = $pct% of one CPU"
[ $((used * 100)) -lt $((hz * 10)) ] || fail "idle xbrd used $pct% of a CPU (limit 1%)"
ok "idle daemon uses $pct% of a CPU"

# An attached interface that is deleted: the port goes away by itself and
# the daemon does not spin on the dead socket.
in_sw ip link add "${P}x" type veth peer name "${P}y"
xc add-port br0 "${P}x"
in_sw ip link del "${P}x"
for _ in $(seq 30); do
    xc -j show | jq -e --arg n "${P}x" '[.[0].ports[].name] | index($n) == null' >/dev/null && break
    sleep 0.1
done
xc -j show | jq -e --arg n "${P}x" '[.[0].ports[].name] | index($n) == null' >/dev/null \
    || fail "port of a deleted interface still listed after 3 s"
t0=$(ticks); sleep 2; t1=$(ticks)
[ $(((t1 - t0) * 100)) -lt $((hz * 2)) ] || fail "xbrd busy ($((t1 - t0)) ticks in 2 s) after an interface vanished"
ok "deleted interface: port removed, daemon idle again"

# A second daemon on the same socket is refused.
out=$(in_sw "$XBRD" --socket "$SOCK" 2>&1) && fail "second xbrd on the same socket started"
echo "$out" | grep -q "already serving" || fail "second xbrd said: $out"
ok "a second daemon on the same socket is refused"

kill -TERM "$XBRD_PID"
rc=0; wait "$XBRD_PID" || rc=$?
XBRD_PID=""
[ "$rc" = 0 ] || fail "xbrd exited $rc on SIGTERM"
[ "$(promisc v1)" = 0 ] || fail "v1 still promiscuous after shutdown"
[ "$(promisc v2)" = 0 ] || fail "v2 still promiscuous after shutdown"
in_sw ip link show "${P}tap" 2>&1 | grep -q NO-CARRIER || fail "tap ${P}tap not kept (without carrier) after shutdown"
[ -e "$SOCK" ] && fail "control socket left behind"
grep -q "xbrd stopped" "$WORK/xbrd.log" || fail "no clean-stop message in the log"
ok "SIGTERM: exit 0, promiscuous mode dropped, tap kept without carrier, socket removed"

# SIGKILL: the kernel still drops promiscuous mode with the fds; the tap
# (persistent) stays, and the next xbrd attaches to it again.
start_xbrd --config "$WORK/xbrd.conf"
kill -KILL "$XBRD_PID"; wait "$XBRD_PID" 2>/dev/null || true; XBRD_PID=""
[ "$(promisc v1)" = 0 ] || fail "v1 still promiscuous after SIGKILL"
in_sw ip link show "${P}tap" >/dev/null 2>&1 || fail "tap gone after SIGKILL"
ok "after SIGKILL nothing is left promiscuous, the tap is kept"

# --idle-spin-us 0: a worker sleeps as soon as its queues are empty, so every
# frame of a slow stream wakes it; each still arrives. Bad values are refused.
out=$(in_sw "$XBRD" --socket "$SOCK" --idle-spin-us 1000001 2>&1) && fail "--idle-spin-us 1000001 accepted"
echo "$out" | grep -q "idle-spin-us must be 0..1000000" || fail "--idle-spin-us 1000001 said: $out"
start_xbrd --config "$WORK/xbrd.conf" --idle-spin-us 0
wait_forwarding br0
in_h 1 ping -c 20 -i 0.05 -W 2 10.123.0.2 >"$WORK/ping" 2>&1 || { cat "$WORK/ping"; fail "ping with --idle-spin-us 0"; }
grep -q " 0% packet loss" "$WORK/ping" || fail "ping with --idle-spin-us 0 lost replies: $(tail -2 "$WORK/ping")"
ok "--idle-spin-us 0: 20 of 20 pings answered, each waking a sleeping worker; out-of-range values refused"
