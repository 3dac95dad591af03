#!/usr/bin/env bash
# Interop with the Linux kernel bridge's spanning tree (legacy 802.1D STP):
# a triangle of xbr (X) and two kernel bridges (A, B), each in its own
# namespace, a host on each bridge.
#
#        h1            h2
#        |             |
#        A ---- ab/ba -- B         A: kernel, priority 4096  -> root
#         \            /           X: xbr,    priority 8192
#       ax \          / bx         B: kernel, priority 32768
#        xa \        / xb          every loop link costs 100
#             X (xbr)
#             |
#             h3
#
# Expected: A is root everywhere; on the B-X link X's root cost equals B's
# and X's bridge id is lower, so X's xb is designated and the one blocking
# port of the loop is the kernel's bx. X's loop ports hear only Config
# BPDUs and must migrate to legacy STP ("protocol": "stp"). Every host
# reaches every other. Cutting A-X (carrier loss on X's root port) must
# move X's root port to xb and unblock bx (after B's copy of X's old
# information ages out: legacy STP ignores X's inferior claim to be root);
# healing it must bring back the same single blocked port, xa migrating to
# STP again. Timers are lowered to keep this short.
. "$(dirname "$0")/lib.sh"

KA="${P}ka"
KB="${P}kb"
FD=4 HELLO=1 MAXAGE=6 # xbr's legal minimums (2*(FD-1) >= MAXAGE >= 2*(HELLO+1))
COST=100

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
now() { echo "${EPOCHREALTIME/./}"; } # microseconds
ms_since() { echo $((($(now) - $1) / 1000)); }

# ---- topology ----------------------------------------------------------------
make_switch_ns
add_host 3 # h3 (10.123.0.3) on xbr port v3

for ns in "$KA" "$KB"; do
    ip netns add "$ns"
    HOSTS+=("$ns")
    ip -n "$ns" link set dev lo up
    in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip -n "$KA" link add name kbr type bridge stp_state 1 priority 4096 \
    forward_delay $((FD * 100)) hello_time $((HELLO * 100)) max_age $((MAXAGE * 100))
ip -n "$KB" link add name kbr type bridge stp_state 1 priority 32768 \
    forward_delay $((FD * 100)) hello_time $((HELLO * 100)) max_age $((MAXAGE * 100))

# kport NS IFNAME: enslave to the namespace's kernel bridge with cost COST.
kport() {
    ip -n "$1" link set dev "$2" master kbr
    bridge -n "$1" link set dev "$2" cost "$COST"
    ip -n "$1" link set dev "$2" up
}

ip link add name ab netns "$KA" type veth peer name ba netns "$KB"
ip link add name ax netns "$KA" type veth peer name xa netns "$SW"
ip link add name bx netns "$KB" type veth peer name xb netns "$SW"
kport "$KA" ab; kport "$KA" ax
kport "$KB" ba; kport "$KB" bx
ip -n "$SW" link set dev xa up
ip -n "$SW" link set dev xb up

# Hosts h1 on A (port ah) and h2 on B (port bh).
for i in 1 2; do
    ns="${P}h$i" k=$KA kp=ah
    [ "$i" = 2 ] && k=$KB kp=bh
    ip netns add "$ns"
    HOSTS+=("$ns")
    ip link add name "$kp" netns "$k" type veth peer name eth0 netns "$ns"
    ip -n "$ns" link set dev lo up
    in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n "$ns" addr add "10.123.0.$i/24" dev eth0
    ip -n "$ns" link set dev eth0 up
    kport "$k" "$kp"
done
in_h 3 sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip -n "$KA" link set dev kbr up
ip -n "$KB" link set dev kbr up

start_xbrd
xc add-br br0
xc stp set br0 priority 8192
xc stp set br0 max-age "$MAXAGE"
xc stp set br0 hello-time "$HELLO"
xc stp set br0 forward-delay "$FD"
T0=$(now)
for p in xa xb v3; do xc add-port br0 "$p"; done
xc port set br0 xa path-cost "$COST"
xc port set br0 xb path-cost "$COST"

# ---- observation ---------------------------------------------------------------
kroot() { in_ns "$1" cat /sys/class/net/kbr/bridge/root_id; }
kid() { in_ns "$1" cat /sys/class/net/kbr/bridge/bridge_id; }
kstate() { bridge -n "$1" -j link show dev "$2" | jq -r '.[0].state'; }
xport() { xc -j stp show br0 | jq -c --arg p "$1" '.ports[] | select(.name == $p)'; }

# loop_states: one line "A/ax=forwarding A/ab=... X/xa=root:forwarding:stp ...".
loop_states() {
    local out="" j
    for p in ax ab; do out+="A/$p=$(kstate "$KA" $p) "; done
    for p in ba bx; do out+="B/$p=$(kstate "$KB" $p) "; done
    j=$(xc -j stp show br0)
    out+=$(jq -r '[.ports[] | select(.name == "xa" or .name == "xb")] | sort_by(.name) |
                  map("X/\(.name)=\(.role):\(.state):\(.protocol)") | join(" ")' <<<"$j")
    echo "$out"
}

n_blocking() { tr ' ' '\n' <<<"$1" | grep -c -E '=blocking$|:discarding:' || true; }

# wait_loop EXPECTED SECONDS: until the loop ports read exactly EXPECTED.
wait_loop() {
    local want=$1 deadline=$(($(now) + $2 * 1000000)) s
    while :; do
        s=$(loop_states)
        [ "$s" = "$want" ] && return 0
        [ "$(now)" -lt "$deadline" ] || break
        sleep 0.2
    done
    fail "loop ports after $2 s: $s (expected $want)"
}

# wait_ping I ADDR SECONDS: host I reaches ADDR within SECONDS.
wait_ping() {
    local deadline=$(($(now) + $3 * 1000000))
    until in_h "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1; do
        [ "$(now)" -lt "$deadline" ] || fail "h$1 cannot reach $2 within $3 s: $(loop_states)"
    done
}

mac_of() { in_h "$1" cat /sys/class/net/eth0/address; }

# fdbs_for I: where each bridge forwards host I's MAC now.
fdbs_for() {
    local m
    m=$(mac_of "$1")
    echo "h$1 $m: A $(bridge -n "$KA" fdb show br kbr | grep -i "^$m " | awk '{print $3}' | xargs)" \
         "B $(bridge -n "$KB" fdb show br kbr | grep -i "^$m " | awk '{print $3}' | xargs)" \
         "X $(xc -j fdb show br0 | jq -r --arg m "$m" '[.[] | select(.mac == $m) | .port] | join(",")')"
}

# announce: each host broadcasts one frame, so every bridge on the tree
# learns where it is now. Needed after a topology change because of the
# kernel bridge: during a TC it lowers its ageing time to 2 x forward delay
# but does not reschedule its FDB garbage collection, which was armed for
# the normal ageing time (300 s); an entry left on a port that just went
# blocking (B's entry for h3 on bx after the heal) then outlives the TC by
# minutes (seen: "used 1/10 ... stale" with the bridge's gc_timer at 264 s).
# Real hosts re-announce themselves soon enough (ARP); the test does it now.
announce() {
    local i
    for i in 1 2 3; do
        in_h "$i" "$FRAMETOOL" send eth0 --dst ff:ff:ff:ff:ff:ff --count 1 >/dev/null
    done
    sleep 0.2
}

# all_pings: every host reaches every other, at once.
all_pings() {
    local a b
    announce
    for a in 1 2 3; do
        for b in 1 2 3; do
            [ "$a" = "$b" ] && continue
            in_h "$a" ping -c 2 -i 0.2 -W 2 "10.123.0.$b" >/dev/null \
                || fail "h$a -> h$b: no reply ($(loop_states); $(fdbs_for "$a"); $(fdbs_for "$b"))"
        done
    done
}

# ---- 1. convergence --------------------------------------------------------
STEADY="A/ax=forwarding A/ab=forwarding B/ba=forwarding B/bx=blocking X/xa=root:forwarding:stp X/xb=designated:forwarding:stp"
# Kernel ports listen and learn for 2 x forward delay; leave as much again.
wait_loop "$STEADY" $((4 * FD + 10))
conv_ms=$(ms_since "$T0")
s=$(loop_states)
echo "converged in $conv_ms ms: $s"
[ "$(n_blocking "$s")" = 1 ] || fail "expected exactly one blocking port: $s"

root_a=$(kid "$KA")
[ "$(kroot "$KA")" = "$root_a" ] || fail "A does not think it is root: root $(kroot "$KA"), id $root_a"
[ "${root_a%%.*}" = 1000 ] || fail "A's bridge id $root_a lacks priority 4096"
[ "$(kroot "$KB")" = "$root_a" ] || fail "B's root $(kroot "$KB") is not A ($root_a)"
j=$(xc -j stp show br0)
[ "$(jq -r .root_id <<<"$j")" = "$root_a" ] || fail "xbr's root $(jq -r .root_id <<<"$j") is not A ($root_a)"
[ "$(jq -r .is_root <<<"$j")" = false ] || fail "xbr thinks it is root: $j"
[ "$(jq -r .root_port <<<"$j")" = xa ] || fail "xbr's root port is $(jq -r .root_port <<<"$j"), not xa"
[ "$(jq -r .root_path_cost <<<"$j")" = "$COST" ] || fail "xbr's root path cost $(jq -r .root_path_cost <<<"$j") != $COST"
# B's designated bridge on bx must be xbr: B believed xbr's Config BPDUs.
x_id=$(jq -r .bridge_id <<<"$j")
[ "${x_id%%.*}" = 2000 ] || fail "xbr's bridge id $x_id lacks priority 8192"
b_desig=$(in_ns "$KB" cat /sys/class/net/bx/brport/designated_bridge)
[ "$b_desig" = "$x_id" ] || fail "B's designated bridge on bx is $b_desig, not xbr ($x_id)"
ok "root is A ($root_a) on all three bridges; the one blocking port is B's bx (designated bridge xbr $x_id); xbr's ports migrated to STP"

for p in xa xb; do
    [ "$(xport $p | jq .bpdu_rx_dropped)" = 0 ] || fail "xbr dropped BPDUs from the kernel on $p: $(xport $p)"
done
ok "xbr dropped no BPDU from the kernel bridges"

# Hosts: the host ports listen/learn for 2 x FD on the kernel bridges.
wait_ping 1 10.123.0.2 $((2 * FD + 10))
all_pings
ok "all hosts reach each other"

# ---- 2. cut A-X (xbr's root port) -----------------------------------------
T1=$(now)
# Carrier loss, as a pulled cable: A's end goes down, xbr only sees its xa
# lose carrier (the port stays, disabled).
ip -n "$KA" link set dev ax down
CUT="A/ab=forwarding B/ba=forwarding B/bx=forwarding X/xb=root:forwarding:stp"
loop_states_cut() {
    local out="" j
    out+="A/ab=$(kstate "$KA" ab) "
    for p in ba bx; do out+="B/$p=$(kstate "$KB" $p) "; done
    j=$(xc -j stp show br0)
    out+=$(jq -r '[.ports[] | select(.name == "xb") | "X/\(.name)=\(.role):\(.state):\(.protocol)"] | join(" ")' <<<"$j")
    echo "$out"
}
# B keeps X's old information on bx until it ages out (MAXAGE), then bx
# listens and learns (2 x FD).
deadline=$(($(now) + (MAXAGE + 4 * FD + 10) * 1000000))
while s=$(loop_states_cut); [ "$s" != "$CUT" ]; do
    [ "$(now)" -lt "$deadline" ] || fail "after cutting A-X: $s (expected $CUT)"
    sleep 0.2
done
reconv_ms=$(ms_since "$T1")
j=$(xc -j stp show br0)
[ "$(jq -r .root_id <<<"$j")" = "$root_a" ] || fail "after the cut xbr's root is $(jq -r .root_id <<<"$j")"
[ "$(kroot "$KB")" = "$root_a" ] || fail "after the cut B's root is $(kroot "$KB")"
[ "$(xport xa | jq -r '.role + ":" + .state')" = disabled:disabled ] \
    || fail "xa without carrier is not disabled: $(xport xa)"
wait_ping 3 10.123.0.1 10
reconv_ping_ms=$(ms_since "$T1")
all_pings
echo "reconverged after the cut in $reconv_ms ms (pings through at $reconv_ping_ms ms): $s"
ok "A-X cut: xbr's root port moved to xb, B's bx unblocked, all hosts reach each other"

# ---- 3. heal A-X -----------------------------------------------------------
T2=$(now)
ip -n "$KA" link set dev ax up # xa must migrate to STP again
wait_loop "$STEADY" $((4 * FD + 10))
heal_ms=$(ms_since "$T2")
s=$(loop_states)
[ "$(n_blocking "$s")" = 1 ] || fail "after healing: expected exactly one blocking port: $s"
wait_ping 3 10.123.0.1 $((2 * FD + 10))
all_pings
echo "healed in $heal_ms ms: $s"
ok "A-X restored: xbr's xa back to root port (STP again), B's bx blocking again, all hosts reach each other"
echo "SUMMARY stp-kernel converge_ms $conv_ms reconverge_ms $reconv_ms reconverge_ping_ms $reconv_ping_ms heal_ms $heal_ms"
