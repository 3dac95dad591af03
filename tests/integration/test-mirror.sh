#!/usr/bin/env bash
# Port mirroring (SPAN, as OVS mirrors): tcpdump on the mirror output's
# peer sees a copy of every frame of the source ports, in the selected
# directions, once per mirror, and nothing else; the output port takes no
# part in forwarding (not flooded to, nothing learned or forwarded from
# it); normal forwarding is unchanged; mirrors are saved and restored.
. "$(dirname "$0")/lib.sh"

make_switch_ns
for i in 1 2 3 4; do
    add_host "$i"
    in_h "$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n "${P}h$i" link set eth0 address "02:cb:00:00:00:0$i"
done
MAC1=02:cb:00:00:00:01 MAC2=02:cb:00:00:00:02 MAC3=02:cb:00:00:00:03 MAC4=02:cb:00:00:00:04
start_xbrd
xc add-br br0
for i in 1 2 3 4; do xc add-port br0 "v$i"; done
wait_forwarding br0
for i in 1 2 3; do in_h "$i" "$FRAMETOOL" send eth0 --dst ff:ff:ff:ff:ff:ff --tag 90 --count 1 >/dev/null; done

attached() { xc -j fastpath show | jq -r --arg p "$1" '.bridges[0].ports[] | select(.name == $p) | .attached'; }
fp_loaded=$(attached v1)
send() { # FROM DST-MAC COUNT SIZE
    in_h "$1" "$FRAMETOOL" send eth0 --dst "$2" --tag 5 --count "$3" --size "$4" --rate 5000 >/dev/null
}
# tcpdump on h4 (the output port's peer), started and stopped around traffic.
spy_start() {
    # Not through in_h: $! must be tcpdump itself, which ip netns exec becomes.
    ip netns exec "${P}h4" tcpdump -i eth0 -Q in --immediate-mode -U -n -w "$WORK/spy.pcap" ether proto 0x88b5 2>"$WORK/spy.err" &
    SPY=$!
    for _ in $(seq 100); do grep -q "listening on" "$WORK/spy.err" && return 0; sleep 0.05; done
    fail "tcpdump on h4 did not start"
}
# spy_stop: SPY_FLOWS gets "src>dst len count;" per flow h4 saw.
spy_stop() {
    sleep 0.3
    kill -INT "$SPY"; wait "$SPY" 2>/dev/null || true
    SPY_FLOWS=$(tcpdump -r "$WORK/spy.pcap" -e -nn 2>/dev/null |
        sed -n 's/^[^ ]* \([0-9a-f:]*\) > \([0-9a-f:]*\), ethertype [^,]*, length \([0-9]*\).*/\1>\2 \3/p' |
        sort | uniq -c | awk '{printf "%s %s %s;", $2, $3, $1}')
}
expect_flows() { # WHAT EXPECTED
    [ "$SPY_FLOWS" = "$2" ] || fail "$1: h4 saw '$SPY_FLOWS', expected '$2'"
    ok "$1: h4 saw exactly '$2'"
}

# 1. Both directions of v1 to v4.
xc mirror add br0 m1 --src v1 --dst v4
xc mirror show br0
[ "$(xc -j mirror show br0 | jq -c '.[0] | [.name, .direction, .src, .dst, .active]')" = '["m1","both",["v1"],"v4",true]' ] ||
    fail "mirror show -j: $(xc -j mirror show br0)"
if [ "$fp_loaded" = true ]; then
    [ "$(attached v1)" = false ] && [ "$(attached v4)" = false ] ||
        fail "a mirrored port stayed in the kernel fast path"
fi
count_start h2 2 --tag 5 --seconds 4 --expect 100
spy_start
send 1 $MAC2 100 100   # in on v1: mirrored
send 2 $MAC1 60 120    # out on v1: mirrored
send 3 $MAC2 70 140    # neither: not mirrored
send 4 ff:ff:ff:ff:ff:ff 50 160 # from the output port: discarded
spy_stop
count_result h2
[ "$COUNT" = 100 ] || fail "h2 received $COUNT of h1's 100 frames while mirrored"
expect_flows "mirror of v1 (both)" "$MAC1>$MAC2 100 100;$MAC2>$MAC1 120 60;"
[ "$(json_stat br0 v4 rx_drop_mirror_output)" = 50 ] || fail "v4 did not count its 50 frames as mirror-output drops"
xc -j fdb show br0 | jq -e --arg m $MAC4 'any(.[]; .mac == $m)' >/dev/null && fail "$MAC4 was learned on the mirror output"
ok "normal forwarding intact (100 of 100); the output port's 50 frames discarded, its source not learned"

# 2. Two sources, both directions: a frame between them is copied once;
#    flooding does reach the sources (and so the mirror), never v4 directly.
xc mirror del br0 m1
xc mirror add br0 m2 --src v1,v2 --dst v4
count_start h3 3 --tag 5 --seconds 4
spy_start
send 1 $MAC2 25 100    # in on v1 and out on v2: one copy
send 3 ff:ff:ff:ff:ff:ff 30 200 # flooded out of v1 and v2 (and v4 is no flood target): one copy
spy_stop
expect_flows "mirror of v1,v2 (both)" "$MAC1>$MAC2 100 25;$MAC3>ff:ff:ff:ff:ff:ff 200 30;"
count_result h3
[ "$COUNT" = 0 ] || fail "h3 saw $COUNT frames between h1 and h2"

# 3. Direction in only: what v1 sends is not copied, nor the flood.
xc mirror del br0 m2
xc mirror add br0 m3 --src v1 --direction in --dst v4
spy_start
send 1 $MAC3 20 300
send 3 $MAC1 20 310
send 2 ff:ff:ff:ff:ff:ff 10 320
spy_stop
expect_flows "mirror of v1 (in)" "$MAC1>$MAC3 300 20;"

# 4. Without the mirror, v4 is an ordinary port again (flooded to), and the
#    ports go back to the fast path.
xc mirror del br0 m3
[ "$(xc -j mirror show | jq length)" = 0 ] || fail "mirror show not empty after del"
spy_start
send 3 ff:ff:ff:ff:ff:ff 10 330
spy_stop
expect_flows "no mirror: v4 flooded to" "$MAC3>ff:ff:ff:ff:ff:ff 330 10;"
if [ "$fp_loaded" = true ]; then
    [ "$(attached v1)" = true ] && [ "$(attached v4)" = true ] ||
        fail "ports did not go back to the fast path after their mirror"
    ok "mirrored ports left the kernel fast path and went back after"
fi

# 5. Refusals.
expect_fail "cannot be both a source and the output" xc mirror add br0 x --src v1,v4 --dst v4
expect_fail "no output port" xc mirror add br0 x --src v1
expect_fail "invalid mirror name" xc mirror add br0 'a/b' --src v1 --dst v4
expect_fail "invalid direction" xc mirror add br0 x --src v1 --direction up --dst v4
expect_fail "no bridge named" xc mirror add nobr x --src v1 --dst v4
expect_fail "no mirror named" xc mirror del br0 nothere
xc mirror add br0 a --src v1 --dst v4
expect_fail "already the output of mirror a" xc mirror add br0 b --src v2 --dst v4
expect_fail "is the output of mirror a" xc mirror add br0 b --src v4 --dst v3
expect_fail "has a mirror named a" xc mirror add br0 a --src v2 --dst v3

# 6. Saved and restored: save writes it, a restart from the saved file
#    brings it back, and it mirrors again.
xc mirror add br0 b --src v2,v3 --direction out --dst vgone
xc save >"$WORK/saved.conf"
grep -qx "mirror add br0 a --src v1 --direction both --dst v4" "$WORK/saved.conf" || fail "save lacks mirror a: $(cat "$WORK/saved.conf")"
before=$(xc -j mirror show | jq -c '[.[] | {name, direction, src, dst, active}]')
[ "$(xc -j mirror show | jq -r '.[1].active')" = false ] || fail "mirror b with an absent output shows active"
kill -TERM "$XBRD_PID"; wait "$XBRD_PID" || fail "xbrd exited $? on SIGTERM"
XBRD_PID=""
start_xbrd -c "$WORK/saved.conf"
wait_forwarding br0
after=$(xc -j mirror show | jq -c '[.[] | {name, direction, src, dst, active}]')
[ "$before" = "$after" ] || fail "mirrors after restart: $after, before: $before"
spy_start
send 1 $MAC2 15 400
spy_stop
expect_flows "mirror restored from the saved file" "$MAC1>$MAC2 400 15;"

# 7. A reload applies an edited file's mirrors: one changed, one dropped.
sed -i -e 's/^mirror add br0 a --src v1 --direction both --dst v4$/mirror add br0 a --src v1,v2 --direction in --dst v4/' \
    -e '/^mirror add br0 b /d' "$WORK/saved.conf"
xc reload >/dev/null
got=$(xc -j mirror show | jq -c '[.[] | {name, direction, src, dst}]')
[ "$got" = '[{"name":"a","direction":"in","src":["v1","v2"],"dst":"v4"}]' ] || fail "mirrors after reload: $got"
ok "reload changed mirror a and removed mirror b"

# 8. A mirror outlives its output port: inactive while it is gone, at work
#    again (and the port out of the fast path) once it is back.
xc del-port br0 v4
[ "$(xc -j mirror show | jq -r '.[0].active')" = false ] || fail "mirror a active without its output port"
xc add-port br0 v4
[ "$(xc -j mirror show | jq -r '.[0].active')" = true ] || fail "mirror a inactive with its output port back"
if [ "$fp_loaded" = true ]; then
    [ "$(attached v4)" = false ] || fail "the re-added output port went into the fast path"
fi
wait_forwarding br0
spy_start
send 1 $MAC2 10 410
send 3 ff:ff:ff:ff:ff:ff 10 420
spy_stop
expect_flows "mirror a with its output port re-added" "$MAC1>$MAC2 410 10;"
