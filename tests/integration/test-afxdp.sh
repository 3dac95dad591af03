#!/usr/bin/env bash
# AF_XDP ports: three hosts behind --type afxdp ports (veth: native XDP, copy
# mode) and a fourth behind an AF_PACKET port. Pings both ways and address
# families, unicast stays on its path, broadcasts flood, TCP arrives intact
# between two AF_XDP ports and from an AF_PACKET port whose host leaves its
# checksums to the device (completed in software before AF_XDP sends them).
# TCP super-frames from that host, once it offloads segmentation too, are
# segmented in software for the AF_XDP port.
# Run again with --workers 2, where a veth's single queue is shared.
. "$(dirname "$0")/lib.sh"

make_switch_ns
for i in 1 2 3 4; do
    add_host "$i"
    in_h "$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=0
done
# XDP carries no checksum metadata: a veth peer must send complete checksums
# to an AF_XDP port (xbrd warns about it), as with Open vSwitch's AF_XDP.
for i in 1 2 3; do in_h "$i" ethtool -K eth0 tx off >/dev/null; done
# h4 offloads checksums (partial checksums reach xbr with its vnet header)
# but not segmentation.
in_h 4 ethtool -K eth0 tso off gso off >/dev/null
start_xbrd
xc add-br br0
for i in 1 2 3; do xc add-port br0 "v$i" --type afxdp; done
xc add-port br0 v4
wait_forwarding br0
xc show

j=$(xc -j show br0)
for i in 1 2 3; do
    p=$(jq -c --arg p "v$i" '.[0].ports[] | select(.name == $p)' <<<"$j")
    [ "$(jq -r .type <<<"$p")" = afxdp ] || fail "v$i is not an afxdp port: $p"
    [ "$(jq -r .xdp_mode <<<"$p")" = native ] || fail "v$i: a veth should get native XDP: $p"
    [ "$(jq -r .xdp_copy <<<"$p")" = copy ] || fail "v$i: a veth has no zero-copy: $p"
done
grep -q "v1: AF_XDP on a veth: its peer must not offload checksums" "$WORK/xbrd.log" ||
    fail "no warning about the veth peer's checksum offload"
ok "three AF_XDP ports in native copy mode, the veth caveat logged"

for a in 1 2 3 4; do
    for b in 1 2 3 4; do
        [ "$a" = "$b" ] && continue
        in_h "$a" ping -c 2 -i 0.1 -W 2 "10.123.0.$b" >/dev/null || fail "ping h$a -> h$b (IPv4)"
        in_h "$a" ping -6 -c 2 -i 0.1 -W 2 "fd00:123::$b" >/dev/null || fail "ping h$a -> h$b (IPv6)"
    done
done
ok "IPv4 and IPv6 pings between every pair (AF_XDP <-> AF_XDP and AF_XDP <-> AF_PACKET)"

h2mac=$(host_mac 2)
count_start h2 2 --tag 7 --seconds 4 --expect 1000
count_start h3 3 --tag 7 --seconds 4
in_h 1 "$FRAMETOOL" send eth0 --dst "$h2mac" --tag 7 --count 1000 --rate 20000 >/dev/null
count_result h2; n2=$COUNT; count_result h3; n3=$COUNT
[ "$n2/$n3" = "1000/0" ] || fail "h2/h3 received $n2/$n3 of 1000 unicast frames"
ok "1000 unicast frames h1->h2 all delivered, 0 seen by h3"

count_start h3b 3 --tag 8 --seconds 4 --expect 100
count_start h4b 4 --tag 8 --seconds 4 --expect 100
in_h 1 "$FRAMETOOL" send eth0 --dst ff:ff:ff:ff:ff:ff --tag 8 --count 100 --rate 20000 >/dev/null
count_result h3b; n3=$COUNT; count_result h4b; n4=$COUNT
[ "$n3/$n4" = "100/100" ] || fail "broadcast reached h3/h4 $n3/$n4 times of 100"
ok "broadcast flooded to the AF_XDP and the AF_PACKET port (100 of 100 each)"

tcp() { # tcp FROM TO PORT: 8 MiB, sha256 at both ends
    head -c $((8 << 20)) /dev/urandom >"$WORK/payload"
    local want got rx
    want=$(sha256sum <"$WORK/payload" | cut -d' ' -f1)
    in_h "$2" timeout 30 socat -u TCP-LISTEN:"$3",reuseaddr OPEN:"$WORK/received",creat,trunc &
    rx=$!
    sleep 0.3
    in_h "$1" timeout 30 socat -u OPEN:"$WORK/payload" TCP:10.123.0."$2":"$3" || fail "TCP h$1 -> h$2: sender failed"
    wait "$rx" || fail "TCP h$1 -> h$2: receiver failed"
    got=$(sha256sum <"$WORK/received" | cut -d' ' -f1)
    [ "$got" = "$want" ] || fail "TCP h$1 -> h$2: payload corrupted"
}
tcp 1 2 5001
ok "8 MiB TCP h1 -> h2 (AF_XDP both ends) arrived intact"
c0=$(xc -j show br0 | jq '.[0].ports[] | select(.name == "v3") | .tx_csum_sw')
tcp 4 3 5002
c1=$(xc -j show br0 | jq '.[0].ports[] | select(.name == "v3") | .tx_csum_sw')
[ "$((c1 - c0))" -gt 1000 ] || fail "only $((c1 - c0)) checksums completed in software on v3"
ok "8 MiB TCP h4 -> h3 (partial checksums from AF_PACKET, completed for AF_XDP: $((c1 - c0)))"
tcp 3 4 5003
ok "8 MiB TCP h3 -> h4 (AF_XDP -> AF_PACKET) arrived intact"

# Now h4 leaves segmentation to the device too: its TCP super-frames reach
# xbr whole (the vnet header says GSO) and are cut into segments for v3.
in_h 4 ethtool -K eth0 tso on gso on >/dev/null
s0=$(xc -j show br0 | jq '.[0].ports[] | select(.name == "v3") | .tx_gso_segmented')
tcp 4 3 5004
j=$(xc -j show br0 | jq -c '.[0].ports[] | select(.name == "v3")')
s1=$(jq .tx_gso_segmented <<<"$j")
[ "$((s1 - s0))" -gt 0 ] || fail "no super-frame was segmented for v3: $j"
[ "$(jq .tx_gso_dropped <<<"$j")" = 0 ] || fail "v3 dropped GSO frames: $j"
ok "8 MiB TCP h4 -> h3 with TSO (super-frames segmented for AF_XDP: $((s1 - s0)))"
