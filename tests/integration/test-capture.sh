#!/usr/bin/env bash
# xbrctl capture of AF_PACKET ports, read back by tcpdump: the frames sent
# with their lengths and MACs, in and out; a libpcap filter that limits what
# is captured; COUNT, the client going away, a bad filter; and a port the
# kernel fast path forwards leaves it for the capture's life, so that the
# capture sees every frame (then goes back).
. "$(dirname "$0")/lib.sh"

make_switch_ns
for i in 1 2 3; do
    add_host "$i"
    in_h "$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n "${P}h$i" link set eth0 address "02:ca:00:00:00:0$i"
done
MAC1=02:ca:00:00:00:01 MAC2=02:ca:00:00:00:02 MAC3=02:ca:00:00:00:03
start_xbrd
xc add-br br0
for i in 1 2 3; do xc add-port br0 "v$i"; done
wait_forwarding br0
for i in 1 2 3; do in_h "$i" "$FRAMETOOL" send eth0 --dst ff:ff:ff:ff:ff:ff --tag 90 --count 1 >/dev/null; done

attached() { xc -j fastpath show | jq -r --arg p "$1" '.bridges[0].ports[] | select(.name == $p) | .attached'; }
fp_loaded=$(attached v1)
# wait_capture N: N captures running.
wait_capture() {
    for _ in $(seq 100); do
        [ "$(xc -j capture show | jq length)" = "$1" ] && return 0
        sleep 0.05
    done
    fail "$(xc -j capture show | jq length) captures running, expected $1"
}
# flows FILE: "src>dst len" and how often, from tcpdump's reading of FILE.
flows() {
    tcpdump -r "$1" -e -nn 2>/dev/null |
        sed -n 's/^[^ ]* \([0-9a-f:]*\) > \([0-9a-f:]*\), ethertype [^,]*, length \([0-9]*\).*/\1>\2 \3/p' |
        sort | uniq -c | awk '{print $2 " " $3 " " $1}'
}

# 1. Both directions of v1, known unicast (the fast path's case), 30 frames
#    of 100 bytes in and 20 of 200 bytes out; COUNT ends the capture.
xc capture v1 -c 50 -w "$WORK/c1.pcap" ether proto 0x88b5 2>"$WORK/c1.err" &
CAP=$!
wait_capture 1
if [ "$fp_loaded" = true ]; then
    [ "$(attached v1)" = false ] || fail "v1 stayed in the kernel fast path during its capture"
fi
in_h 1 "$FRAMETOOL" send eth0 --dst $MAC2 --tag 1 --count 30 --size 100 --rate 2000 >/dev/null
in_h 2 "$FRAMETOOL" send eth0 --dst $MAC1 --tag 1 --count 20 --size 200 --rate 2000 >/dev/null
timeout 10 tail --pid=$CAP -f /dev/null || fail "capture -c 50 did not end after 50 frames"
wait $CAP || fail "xbrctl capture failed: $(cat "$WORK/c1.err")"
got=$(flows "$WORK/c1.pcap" | tr '\n' ';')
want="$MAC1>$MAC2 100 30;$MAC2>$MAC1 200 20;"
[ "$got" = "$want" ] || fail "capture of v1 read back as '$got', expected '$want'"
ok "capture of v1, read by tcpdump -r: 30 frames $MAC1>$MAC2 of 100 B, 20 $MAC2>$MAC1 of 200 B"
wait_capture 0
if [ "$fp_loaded" = true ]; then
    for _ in $(seq 50); do [ "$(attached v1)" = true ] && break; sleep 0.05; done
    [ "$(attached v1)" = true ] || fail "v1 did not go back to the fast path after its capture"
    ok "v1 left the kernel fast path for its capture and went back after"
fi

# 2. A filter and a direction: of what v2 sends, only h3's frames (the
#    filter leaves h1's out, the direction what h2 sends to h3), through
#    stdout into tcpdump -r -.
xc capture v2 --direction out -c 25 -w - not ether src $MAC1 >"$WORK/c2.pcap" 2>"$WORK/c2.err" &
CAP=$!
wait_capture 1
in_h 1 "$FRAMETOOL" send eth0 --dst $MAC2 --tag 2 --count 40 --size 80 --rate 2000 >/dev/null
in_h 2 "$FRAMETOOL" send eth0 --dst $MAC3 --tag 2 --count 40 --size 80 --rate 2000 >/dev/null
[ "$(xc -j capture show | jq '.[0].captured')" = 0 ] || fail "the filter let other frames in: $(xc capture show)"
in_h 3 "$FRAMETOOL" send eth0 --dst $MAC2 --tag 2 --count 25 --size 300 --rate 2000 >/dev/null
timeout 10 tail --pid=$CAP -f /dev/null || fail "filtered capture did not end"
wait $CAP || fail "xbrctl capture failed: $(cat "$WORK/c2.err")"
got=$(tcpdump -r - -e -nn <"$WORK/c2.pcap" 2>/dev/null | grep -c "$MAC3 > $MAC2, ethertype Unknown (0x88b5), length 300" || true)
total=$(tcpdump -r - -nn <"$WORK/c2.pcap" 2>/dev/null | grep -c "^[0-9][0-9]:" || true)
[ "$got" = 25 ] && [ "$total" = 25 ] || fail "filtered capture: $got of $total frames from h3, expected 25 of 25"
ok "filter 'not ether src $MAC1' --direction out: 25 of 25 frames from h3, none of h1's 40 or of the 40 v2 received"

# 2b. A tap port (dom0's own interface on a Xen host): a ping through it,
#     and the filter language beyond MACs (icmp).
xc add-port br0 "${P}tap" --type tap
in_sw ip addr add 10.123.0.100/24 dev "${P}tap"
in_sw ip link set "${P}tap" up
TAPMAC=$(in_sw cat "/sys/class/net/${P}tap/address")
in_h 1 ping -c 1 -W 2 10.123.0.100 >/dev/null || true # ARP settled first
xc capture "${P}tap" -c 4 -w "$WORK/tap.pcap" icmp 2>"$WORK/tap.err" &
CAP=$!
wait_capture 1
in_h 1 ping -c 2 -i 0.2 -W 2 10.123.0.100 >/dev/null || fail "ping h1 -> tap"
timeout 10 tail --pid=$CAP -f /dev/null || fail "capture of the tap port did not end after 4 frames"
wait $CAP || fail "xbrctl capture failed: $(cat "$WORK/tap.err")"
req=$(tcpdump -r "$WORK/tap.pcap" -e -nn 2>/dev/null | grep -c "$MAC1 > $TAPMAC, ethertype IPv4 (0x0800), length 98: 10.123.0.1 > 10.123.0.100: ICMP echo request" || true)
rep=$(tcpdump -r "$WORK/tap.pcap" -e -nn 2>/dev/null | grep -c "$TAPMAC > $MAC1, ethertype IPv4 (0x0800), length 98: 10.123.0.100 > 10.123.0.1: ICMP echo reply" || true)
[ "$req" = 2 ] && [ "$rep" = 2 ] || fail "capture of the tap: $req requests, $rep replies: $(tcpdump -r "$WORK/tap.pcap" -e -nn 2>&1)"
ok "capture of a tap port with filter 'icmp': 2 echo requests $MAC1 > $TAPMAC and 2 replies, 98 B"

# 3. The capture ends when its client goes away, and leaves nothing. (Not
#    through xc: $! must be xbrctl itself, which ip netns exec becomes.)
fds_before=$(ls /proc/$XBRD_PID/fd | wc -l)
ip netns exec "$SW" "$XBRCTL" --socket "$SOCK" capture v3 -w "$WORK/c3.pcap" &
CAP=$!
wait_capture 1
[ "$(ls /proc/$XBRD_PID/fd | wc -l)" -gt "$fds_before" ] || fail "a running capture holds no descriptor?"
kill $CAP; wait $CAP 2>/dev/null || true
wait_capture 0
grep -q "capture .* on v3 ended (the client went away)" "$WORK/xbrd.log" || fail "no end logged for v3's capture"
fds_after=$(ls /proc/$XBRD_PID/fd | wc -l)
[ "$fds_after" = "$fds_before" ] || fail "xbrd holds $fds_after descriptors after the capture, $fds_before before"
ok "a capture whose client is killed ends in xbrd and leaves no descriptor behind ($fds_after)"

# 4. Refusals: a filter libpcap cannot compile, no such port, bad options.
expect_fail "invalid filter" xc capture v1 ether hst nowhere
expect_fail "no bridge has a port named" xc capture nosuch
expect_fail "invalid direction" xc capture v1 --direction sideways
expect_fail "invalid snap length" xc capture v1 -s 5
wait_capture 0

# 5. A capture on a port being removed ends, and the stream ends with it.
xc capture v3 -w "$WORK/c5.pcap" &
CAP=$!
wait_capture 1
xc del-port br0 v3
timeout 10 tail --pid=$CAP -f /dev/null || fail "capture of a removed port did not end"
wait $CAP || fail "capture of a removed port failed"
tcpdump -r "$WORK/c5.pcap" >/dev/null 2>&1 || fail "stream of a removed port is not a pcap file"
ok "removing a captured port ends its capture cleanly"

# 6. Lossy, counted, never in the way: a reader that stops reading (xbrctl
#    blocked on a pipe nobody drains) fills the socket, then the rings;
#    the workers drop what does not fit and count it, and forwarding goes
#    on untouched: every frame reaches h2, and each one the filter matched
#    was either captured or counted as dropped.
ip netns exec "$SW" "$XBRCTL" --socket "$SOCK" capture v1 --direction in -w - ether proto 0x88b5 \
    2>/dev/null | sleep 60 &
STALL=$!
wait_capture 1
count_start h2s 2 --tag 6 --seconds 8 --expect 12000
in_h 1 "$FRAMETOOL" send eth0 --dst $MAC2 --tag 6 --count 12000 --size 1500 --rate 20000 >/dev/null
count_result h2s
[ "$COUNT" = 12000 ] || fail "h2 received $COUNT of 12000 frames while a stalled capture ran"
settle br0 v1
cs=$(xc -j capture show)
captured=$(echo "$cs" | jq '.[0].captured') dropped=$(echo "$cs" | jq '.[0].dropped')
[ "$dropped" -gt 0 ] || fail "a stalled capture dropped nothing: $cs"
[ $((captured + dropped)) = 12000 ] || fail "captured $captured + dropped $dropped != the 12000 frames sent"
kill $STALL 2>/dev/null || true
wait_capture 0
ok "stalled reader: forwarding untouched (12000 of 12000), $captured captured + $dropped dropped (counted) = 12000"

# 7. xbrd stopping with a capture running: it exits cleanly, the stream ends.
ip netns exec "$SW" "$XBRCTL" --socket "$SOCK" capture v1 -w "$WORK/c6.pcap" &
CAP=$!
wait_capture 1
kill -TERM "$XBRD_PID"
wait "$XBRD_PID" || fail "xbrd exited $? on SIGTERM with a capture running"
XBRD_PID=""
timeout 10 tail --pid=$CAP -f /dev/null || fail "the capture stream did not end with xbrd"
wait $CAP || true
grep -q "capture .* on v1 ended (xbrd is stopping)" "$WORK/xbrd.log" || fail "no end logged for the last capture"
ok "xbrd stops cleanly with a capture running, and the stream ends"
