# Netback scenarios against the Xen simulator: xs-sim (xenstore), a
# libxensim world (grant tables, event channels), xbrd-sim as dom0's
# backend, and xensim-netfront processes as guests.
#   nb-test.sh ping|sizes|cycles|destroy|restart|bridge-wait|multiqueue|csum-burst|gso-segment|ipv6|gso-uplink|rx-queue
#   nb-test.sh attack NAME
#   nb-test.sh workers-default|ctrl-ring|ctrl-attack|mcast|xs-write-loop
#   nb-test.sh xs CASE        (hostile xenstore values, see t_xs)
set -euo pipefail

: "${XBRD:?}" "${XBRCTL:?}" "${XS_SIM:?}" "${XENSIM_CTL:?}" "${NETFRONT:?}"

if [ "$(id -u)" != 0 ]; then
    echo "FAIL: netback tests need root" >&2
    exit 1
fi

WORK=$(mktemp -d /tmp/xbr-nb.XXXXXX)
SOCK="$WORK/xbrd.sock"
export XENSIM_DIR="$WORK/world" XENSIM_XS_DIR="$WORK/xs"
XS_PID="" XBRD_PID="" NS="nb$$"
BG=()

log_tail() {
    [ -s "$WORK/xbrd.log" ] && { echo "---- xbrd log (tail) ----" >&2; tail -n 40 "$WORK/xbrd.log" >&2; }
    return 0
}
fail() { echo "FAIL: $*" >&2; log_tail; exit 1; }
ok() { echo "ok: $*"; }

cleanup() {
    local rc=$?
    for p in "${BG[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "$XBRD_PID" ] && kill -0 "$XBRD_PID" 2>/dev/null; then
        kill -TERM "$XBRD_PID" 2>/dev/null || true
        local x=0
        wait "$XBRD_PID" 2>/dev/null || x=$?
        [ "$x" = 0 ] || { echo "FAIL: xbrd exited $x on SIGTERM" >&2; rc=1; }
    fi
    if grep -q -E "ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:" "$WORK/xbrd.log" 2>/dev/null; then
        echo "FAIL: sanitizer report in xbrd's log" >&2
        grep -A 20 -E "Sanitizer|runtime error" "$WORK/xbrd.log" | head -60 >&2
        rc=1
    fi
    [ -n "$XS_PID" ] && kill -TERM "$XS_PID" 2>/dev/null && wait "$XS_PID" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    ip link del "${NS}h" 2>/dev/null || true
    ip link del "${NS}e" 2>/dev/null || true
    [ "$rc" = 0 ] || log_tail
    "$XENSIM_CTL" destroy >/dev/null 2>&1 || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

# NB_FRONT_OPTS (e.g. --no-csum, --no-sg, --no-gso, --no-split): every
# simulated guest runs without those features, so the whole set also covers
# feature-poor frontends. Only the receiving side is the point: a sender
# keeps SG and GSO (a super-frame's source must be able to send one).
if [ -n "${NB_FRONT_OPTS:-}" ]; then
    NETFRONT_BIN=$NETFRONT
    NETFRONT="$WORK/netfront"
    cat >"$NETFRONT" <<EOF
#!/bin/bash
opts=($NB_FRONT_OPTS)
for a in "\$@"; do
    [ "\$a" = send ] || continue
    keep=(); for o in "\${opts[@]}"; do case \$o in --no-sg|--no-gso) ;; *) keep+=("\$o") ;; esac; done
    opts=("\${keep[@]}"); break
done
exec "$NETFRONT_BIN" "\${opts[@]}" "\$@"
EOF
    chmod +x "$NETFRONT"
    echo "frontends run with: $NB_FRONT_OPTS"
fi
front_has() { case " ${NB_FRONT_OPTS:-} " in *" $1 "*) return 0 ;; esac; return 1; }

start_sim() {
    mkdir -p "$XENSIM_XS_DIR"
    "$XENSIM_CTL" create >/dev/null
    "$XS_SIM" --dir "$XENSIM_XS_DIR" --pid-file "$WORK/xs.pid" 2>"$WORK/xs.log" &
    XS_PID=$!
    for _ in $(seq 100); do [ -S "$XENSIM_XS_DIR/dom0" ] && return 0; sleep 0.05; done
    fail "xs-sim did not start"
}

start_xbrd() { # [xbrd args...]
    XENSTORED_PATH="$XENSIM_XS_DIR/dom0" XENSIM_DOMID=0 \
        "$XBRD" -s "$SOCK" "$@" >>"$WORK/xbrd.log" 2>&1 &
    XBRD_PID=$!
    for _ in $(seq 100); do [ -S "$SOCK" ] && ctl version >/dev/null 2>&1 && break; sleep 0.05; done
    ctl version >/dev/null || fail "xbrd did not start"
    for _ in $(seq 100); do grep -q "netback: serving" "$WORK/xbrd.log" && return 0; sleep 0.05; done
    fail "netback did not start"
}

ctl() { "$XBRCTL" --socket "$SOCK" "$@"; }
# hotplug online|offline XENBUS_PATH — the shipped vif hotplug script against this xbrd.
hotplug() { XENBUS_PATH=$2 XBRCTL=$XBRCTL XBR_SOCKET=$SOCK sh "$(dirname "$0")/../../netback/vif-xbr" "$1"; }
nf() { "$NETFRONT" "$@"; }
mac_of() { printf '00:16:3e:00:%02x:%02x' "$1" "${2:-0}"; }
attach() { # domid [bridge]
    nf --domid "$1" --mac "$(mac_of "$1")" attach --bridge "${2:-xenbr0}" >/dev/null ||
        fail "attach dom$1"
}

# Waits until vif<d>.0 is (1) or is not (0) a port of some bridge.
wait_port() { # name 1|0 [tries]
    local n=${3:-100}
    for _ in $(seq "$n"); do
        if ctl -j show | grep -q "\"name\": *\"$1\""; then
            [ "$2" = 1 ] && return 0
        else
            [ "$2" = 0 ] && return 0
        fi
        sleep 0.1
    done
    return 1
}

# Waits until no port of any bridge is still discarding/learning (STP).
wait_forwarding() {
    for _ in $(seq 100); do
        ctl -j show | grep -q '"stp_state": *"\(discarding\|learning\)"' || return 0
        sleep 0.1
    done
    fail "ports never reached forwarding"
}

summary_field() { # key <<< "SUMMARY ..." line
    sed -n "s/.* $1 \([^ ]*\).*/\1/p" | head -1
}

dom0_clean() {
    "$XENSIM_CTL" reap >/dev/null 2>&1 || true
    local st
    st=$("$XENSIM_CTL" stats 0)
    local maps ports
    maps=$(echo "$st" | sed -n 's/.* maps \([0-9]*\).*/\1/p')
    ports=$(echo "$st" | sed -n 's/.* ports \([0-9]*\).*/\1/p')
    [ "$maps" = 0 ] && [ "$ports" = 0 ] || fail "dom0 still holds maps/ports: $st"
}

violations() { ctl -j vif show | sed -n 's/^{"violations": *\([0-9]*\).*/\1/p; s/.*"violations": *\([0-9]*\), *"connects".*/\1/p' | head -1; }

# Two guests exchange n frames from A to B; prints B's summary.
# Every frame must arrive: the sender stays at most 4 frames (4 super-frames
# of up to 46 segments: fewer than the receiver's 256 buffers) ahead of what
# the receiver has taken, so a simulated guest starved of CPU on a loaded
# machine is waited for, not overrun into its RX queue's (counted) drops.
exchange() { # domA domB count sizes [extra send args...]
    local a=$1 b=$2 count=$3 size=$4
    shift 4
    "$NETFRONT" --domid "$b" recv --count "$count" --wait 30000 --progress "$WORK/progress.$b" \
        >"$WORK/recv.$b" 2>&1 &
    local rpid=$!
    wait_port "vif$b.0" 1 || fail "vif$b.0 never became a port"
    nf --domid "$a" send --count "$count" --size "$size" --dst "$(mac_of "$b")" \
        --interval-us 200 --window 4 --progress "$WORK/progress.$b" "$@" >"$WORK/send.$a" 2>&1 ||
        { cat "$WORK/send.$a" >&2; fail "send failed"; }
    wait "$rpid" || { cat "$WORK/recv.$b" >&2; fail "recv dom$b failed"; }
    grep SUMMARY "$WORK/recv.$b"
}

setup_two() {
    start_sim
    start_xbrd "$@"
    ctl add-br xenbr0 >/dev/null
    attach 1
    attach 2
}

t_ping() {
    start_sim
    start_xbrd
    ctl add-br xenbr0 >/dev/null
    ip netns add "$NS"
    ip link add "${NS}h" type veth peer name eth0 netns "$NS"
    ip link set "${NS}h" up
    ip -n "$NS" addr add 10.77.0.1/24 dev eth0
    ip -n "$NS" link set eth0 up
    ip -n "$NS" link set lo up
    ctl add-port xenbr0 "${NS}h" >/dev/null
    attach 1
    wait_forwarding
    nf --domid 1 --ip 10.77.0.2 ping --target 10.77.0.1 --count 5 --wait 10000 >"$WORK/ping" 2>&1 ||
        { cat "$WORK/ping" >&2; fail "guest -> host ping"; }
    ok "guest pings the host: $(grep -o 'ping_replies [0-9]*' "$WORK/ping")"
    "$NETFRONT" --domid 1 --ip 10.77.0.2 echo --hold 8 >"$WORK/echo" 2>&1 &
    BG+=($!)
    wait_port vif1.0 1 || fail "vif1.0 not a port"
    ip netns exec "$NS" ping -c 3 -W 2 10.77.0.2 >/dev/null || fail "host -> guest ping"
    ok "host pings the guest"
    ctl show | grep -q "vif1.0" || fail "xbrctl show lists no vif"
    ctl -j show | grep -q '"type": *"netback"' || fail "-j show lacks type netback"
    ok "show lists the vif as netback"
}

t_sizes() {
    setup_two
    local s
    s=$(exchange 1 2 400 60:1514)
    echo "$s"
    [ "$(echo "$s" | summary_field bad)" = 0 ] || fail "corrupted frames: $s"
    ok "400 frames 60..1514 bytes"
    # A frame longer than the headers xbrd copies (256 B) is copied once,
    # from the sender's grants straight into the receiver's buffers; a
    # shorter one is copied in whole, as before. (Read while guest 2 is
    # still attached: its counters go with its vif.)
    local d0 d1 d2
    "$NETFRONT" --domid 2 recv --count 201 --wait 30000 >"$WORK/recv.2" 2>&1 &
    local rpid=$!
    wait_port vif2.0 1 || fail "vif2.0 never became a port"
    d0=$(port_json vif2.0 .netback_stats.to_guest_direct)
    one_copy_send() { # count size
        nf --domid 1 send --count "$1" --size "$2" --dst "$(mac_of 2)" --interval-us 200 \
            >"$WORK/send.1" 2>&1 || { cat "$WORK/send.1" >&2; fail "send failed"; }
    }
    one_copy_direct() { # expected: waits until the counter reaches it
        local v
        for _ in $(seq 100); do
            v=$(port_json vif2.0 .netback_stats.to_guest_direct)
            [ "$v" = "$1" ] && break
            sleep 0.05
        done
        echo "$v"
    }
    one_copy_send 100 256
    sleep 0.2
    d1=$(port_json vif2.0 .netback_stats.to_guest_direct)
    [ "$d1" = "$d0" ] || fail "frames of 256 B went grant to grant ($d0 -> $d1)"
    one_copy_send 100 1514
    d2=$(one_copy_direct $((d1 + 100)))
    [ "$d2" = $((d1 + 100)) ] || fail "100 frames of 1514 B: to_guest_direct $d1 -> $d2"
    one_copy_send 1 60
    wait "$rpid" || { cat "$WORK/recv.2" >&2; fail "recv dom2 failed"; }
    s=$(grep SUMMARY "$WORK/recv.2")
    [ "$(echo "$s" | summary_field ok)" = 201 ] && [ "$(echo "$s" | summary_field bad)" = 0 ] ||
        fail "one-copy frames lost or corrupted: $s"
    ok "guest to guest in one copy: 100 of 100 frames of 1514 B, none of 256 B, all intact"
    # Non-GSO frames longer than the MTU (1500) are dropped by the bridge
    # (as the kernel bridge would); multi-slot frames within it:
    s=$(exchange 1 2 200 60:1514 --slot-bytes 100)
    [ "$(echo "$s" | summary_field bad)" = 0 ] || fail "corrupted frames: $s"
    ok "200 frames in slots of at most 100 bytes (up to 16 slots)"
    s=$(exchange 1 2 200 70:65535 --gso 1448)
    echo "$s"
    gso_check "$s" "200 TCP/GSO frames up to 64 KiB"
    s=$(exchange 2 1 100 70:65535 --gso 1448 --first-offset 100)
    gso_check "$s" "GSO the other way, unaligned first slot"
}

# A receiver's summary after GSO traffic: super-frames as GSO to a guest that
# can take them, in segments (reassembled and checked by the guest: seq, IP
# id, PSH, checksums) to one without SG, GSO or csum offload.
gso_check() { # summary what
    local s=$1
    [ "$(echo "$s" | summary_field bad)" = 0 ] || fail "corrupted frames: $s"
    [ "$(echo "$s" | summary_field seg_bad)" = 0 ] && [ "$(echo "$s" | summary_field csum_bad)" = 0 ] &&
        [ "$(echo "$s" | summary_field offload_bad)" = 0 ] || fail "segments or offloads wrong: $s"
    if front_has --no-gso || front_has --no-sg || front_has --no-csum; then
        [ "$(echo "$s" | summary_field rx_gso)" = 0 ] || fail "GSO frames reached a guest without GSO: $s"
        [ "$(echo "$s" | summary_field reassembled)" -gt 0 ] || fail "no super-frame arrived in segments: $s"
        ok "$2: in software segments ($(echo "$s" | grep -o 'segments [0-9]*'), $(echo "$s" | grep -o 'reassembled [0-9]*'))"
    else
        [ "$(echo "$s" | summary_field rx_gso)" -gt 0 ] || fail "no GSO frame arrived as GSO: $s"
        ok "$2: as GSO"
    fi
}

# Super-frames from a guest to guests that cannot take them: without GSO,
# without SG, without csum offload. Each must get every one, cut into the
# segments a TCP sender would have sent (the guest reassembles them and
# checks sequence numbers, IP ids, PSH on the last only, IPv4 and TCP
# checksums); xbrd counts what it segmented.
t_gso_segment() {
    setup_two
    local f s seg nseg
    for f in --no-gso --no-sg --no-csum; do
        "$NETFRONT" --domid 2 "$f" recv --count 101 --wait 30000 --progress "$WORK/progress.2" \
            >"$WORK/recv.2" 2>&1 &
        local rpid=$!
        wait_port vif2.0 1 || fail "vif2.0"
        wait_forwarding
        nf --domid 1 send --count 100 --size 3000:65535 --gso 1448 --dst "$(mac_of 2)" \
            --interval-us 200 --window 4 --progress "$WORK/progress.2" >"$WORK/send.1" 2>&1 ||
            { cat "$WORK/send.1" >&2; fail "send"; }
        sleep 0.3
        seg=$(port_json vif2.0 .netback_stats.to_guest_segmented)
        nseg=$(port_json vif2.0 .netback_stats.to_guest_segments)
        nf --domid 1 send --count 1 --size 70 --tcp --dst "$(mac_of 2)" >/dev/null || fail "last frame"
        wait "$rpid" || { cat "$WORK/recv.2" >&2; fail "$f: guest 2 did not get all frames"; }
        s=$(grep SUMMARY "$WORK/recv.2")
        [ "$(echo "$s" | summary_field reassembled)" = 100 ] && [ "$(echo "$s" | summary_field seg_bad)" = 0 ] &&
            [ "$(echo "$s" | summary_field csum_bad)" = 0 ] && [ "$(echo "$s" | summary_field offload_bad)" = 0 ] &&
            [ "$(echo "$s" | summary_field rx_gso)" = 0 ] || fail "$f: $s"
        [ "$seg" = 100 ] || fail "$f: xbrd counted '$seg' segmented super-frames, expected 100"
        [ "$nseg" = "$(echo "$s" | summary_field segments)" ] ||
            fail "$f: xbrd made '$nseg' segments, the guest got $(echo "$s" | summary_field segments)"
        ok "$f: 100 super-frames delivered as $nseg segments, all checked"
        wait_port vif2.0 0 || fail "vif2.0 still a port"
    done
}

# IPv6 through netback. (a) The host's kernel pings the guest over IPv6:
# its Neighbour Solicitation (to the solicited-node multicast group) and
# echo requests reach the guest, whose advertisement (target link-layer
# option) and replies reach the kernel, which must take them — its
# neighbour entry holds the guest's MAC and every echo is answered. (b)
# TCP/IPv6 test frames guest to guest, full and partial checksums: every
# one intact; the full ones verify at the receiver, the partial ones arrive
# csum_blank to a guest with IPv6 checksum offload and finished by xbr
# (verified) for one without. (c) 64 KiB TCP/IPv6 super-frames: GSO type
# TCPV6 at a guest with GSO, else segmented by xbr (counted) and
# reassembled by the guest, which checks each segment's checksums.
t_ipv6() {
    start_sim
    start_xbrd
    ctl add-br xenbr0 >/dev/null
    ip netns add "$NS"
    ip link add "${NS}h" type veth peer name eth0 netns "$NS"
    ip link set "${NS}h" up
    ip -n "$NS" link set lo up
    ip -n "$NS" link set eth0 up
    ip -n "$NS" addr add fd00:77::1/64 dev eth0 nodad
    ctl add-port xenbr0 "${NS}h" >/dev/null
    attach 1
    attach 2
    "$NETFRONT" --domid 1 --ip6 fd00:77::2 echo --hold 30 >"$WORK/echo6" 2>&1 &
    local epid=$! out s
    BG+=($epid)
    wait_port vif1.0 1 || fail "vif1.0 not a port"
    wait_forwarding
    out=$(ip netns exec "$NS" ping -6 -c 3 -i 0.3 -W 3 fd00:77::2 2>&1) || true
    echo "$out" | grep -q "3 packets transmitted, 3 received" || fail "host -> guest ping -6: $out"
    ip -n "$NS" -6 neigh show fd00:77::2 dev eth0 | grep -q "lladdr $(mac_of 1)" ||
        fail "the kernel's neighbour entry: $(ip -n "$NS" -6 neigh show dev eth0)"
    kill -TERM "$epid"
    wait "$epid" || { cat "$WORK/echo6" >&2; fail "echo --ip6 failed"; }
    s=$(grep SUMMARY "$WORK/echo6")
    [ "$(echo "$s" | summary_field na)" -ge 1 ] && [ "$(echo "$s" | summary_field echo6)" -ge 3 ] &&
        [ "$(echo "$s" | summary_field icmp6_bad)" = 0 ] || fail "guest's ICMPv6: $s"
    ok "kernel pings the guest over IPv6: 3 of 3, NDP resolved to $(mac_of 1) ($(echo "$s" | grep -o 'na [0-9]* echo6 [0-9]* icmp6_bad [0-9]*'))"
    wait_port vif1.0 0 || fail "vif1.0 still a port"

    local csum_part=400
    front_has --no-csum || csum_part=0 # offloaded: arrives csum_blank, not verified
    s=$(exchange 1 2 400 90:1514 --tcp6 --full-csum)
    [ "$(echo "$s" | summary_field bad)" = 0 ] && [ "$(echo "$s" | summary_field csum_ok)" = 400 ] &&
        [ "$(echo "$s" | summary_field csum_bad)" = 0 ] && [ "$(echo "$s" | summary_field offload_bad)" = 0 ] ||
        fail "TCP/IPv6, full checksums: $s"
    ok "400 TCP/IPv6 frames 90..1514 bytes, full checksums: all intact and verified"
    s=$(exchange 1 2 400 90:1514 --tcp6)
    [ "$(echo "$s" | summary_field bad)" = 0 ] && [ "$(echo "$s" | summary_field csum_ok)" = "$csum_part" ] &&
        [ "$(echo "$s" | summary_field csum_blank)" = $((400 - csum_part)) ] &&
        [ "$(echo "$s" | summary_field csum_bad)" = 0 ] && [ "$(echo "$s" | summary_field offload_bad)" = 0 ] ||
        fail "TCP/IPv6, partial checksums: $s"
    ok "400 TCP/IPv6 frames, partial checksums: all intact ($(echo "$s" | grep -o 'csum_ok [0-9]*'), $(echo "$s" | grep -o 'csum_blank [0-9]*'))"

    local seg nseg
    "$NETFRONT" --domid 2 recv --count 101 --wait 30000 --progress "$WORK/progress.2" \
        >"$WORK/recv.2" 2>&1 &
    local rpid=$!
    wait_port vif2.0 1 || fail "vif2.0"
    wait_forwarding
    # A window, as exchange(): a super-frame is up to 46 segments for a guest
    # without GSO to check, and all must arrive.
    nf --domid 1 send --count 100 --size 3000:65535 --gso 1440 --tcp6 --dst "$(mac_of 2)" \
        --interval-us 200 --window 4 --progress "$WORK/progress.2" >"$WORK/send.1" 2>&1 ||
        { cat "$WORK/send.1" >&2; fail "send"; }
    sleep 0.3
    seg=$(port_json vif2.0 .netback_stats.to_guest_segmented)
    nseg=$(port_json vif2.0 .netback_stats.to_guest_segments)
    nf --domid 1 send --count 1 --size 90 --tcp6 --dst "$(mac_of 2)" >/dev/null || fail "last frame"
    wait "$rpid" || { cat "$WORK/recv.2" >&2; fail "guest 2 did not get all 101 frames"; }
    s=$(grep SUMMARY "$WORK/recv.2")
    [ "$(echo "$s" | summary_field bad)" = 0 ] && [ "$(echo "$s" | summary_field seg_bad)" = 0 ] &&
        [ "$(echo "$s" | summary_field csum_bad)" = 0 ] && [ "$(echo "$s" | summary_field offload_bad)" = 0 ] &&
        [ "$(echo "$s" | summary_field gso_tcpv4)" = 0 ] || fail "TCP/IPv6 super-frames: $s"
    if front_has --no-gso || front_has --no-sg || front_has --no-csum; then
        [ "$(echo "$s" | summary_field rx_gso)" = 0 ] && [ "$(echo "$s" | summary_field reassembled)" = 100 ] ||
            fail "super-frames to a guest without GSO: $s"
        [ "$seg" = 100 ] || fail "xbrd counted '$seg' segmented super-frames, expected 100"
        [ "$nseg" = "$(echo "$s" | summary_field segments)" ] ||
            fail "xbrd made '$nseg' segments, the guest got $(echo "$s" | summary_field segments)"
        ok "100 TCP/IPv6 super-frames up to 64 KiB: segmented by xbr into $nseg segments, reassembled, checksums verified"
    else
        [ "$(echo "$s" | summary_field gso_tcpv6)" = 100 ] && [ "$(echo "$s" | summary_field rx_gso)" = 100 ] &&
            [ "$seg" = 0 ] || fail "super-frames to a guest with GSO (xbr segmented '$seg'): $s"
        ok "100 TCP/IPv6 super-frames up to 64 KiB: delivered as GSO type TCPV6"
    fi
}

# xbrctl capture of a vif (not a kernel interface: only xbrd sees its
# frames), read back by tcpdump: the frames one guest sent the other, with
# their MACs and length; the filter keeps anything else out.
t_capture() {
    setup_two
    wait_forwarding
    "$NETFRONT" --domid 2 recv --count 50 --wait 30000 >"$WORK/recv.2" 2>&1 &
    local rpid=$!
    wait_port vif2.0 1 || fail "vif2.0 never became a port"
    ctl capture vif2.0 -c 50 -w "$WORK/vif.pcap" ether src "$(mac_of 1)" 2>"$WORK/cap.err" &
    local cpid=$!
    for _ in $(seq 100); do [ "$(ctl -j capture show | grep -c '"port"')" = 1 ] && break; sleep 0.05; done
    # 1000 B: longer than what xbrd copies from the sender up front, so the
    # capture needs the rest filled in before it sees the frame.
    nf --domid 1 send --count 50 --size 1000 --dst "$(mac_of 2)" --interval-us 200 \
        >"$WORK/send.1" 2>&1 || { cat "$WORK/send.1" >&2; fail "send failed"; }
    wait "$rpid" || { cat "$WORK/recv.2" >&2; fail "recv dom2 failed"; }
    [ "$(grep SUMMARY "$WORK/recv.2" | summary_field bad)" = 0 ] ||
        fail "corrupted frames through the capture: $(grep SUMMARY "$WORK/recv.2")"
    timeout 10 tail --pid=$cpid -f /dev/null || fail "capture of vif2.0 did not end after 50 frames"
    wait "$cpid" || fail "xbrctl capture failed: $(cat "$WORK/cap.err")"
    local n all
    n=$(tcpdump -r "$WORK/vif.pcap" -e -nn 2>/dev/null |
        grep -c "$(mac_of 1) > $(mac_of 2), .*length 1000" || true)
    all=$(tcpdump -r "$WORK/vif.pcap" -nn 2>/dev/null | grep -c "^[0-9][0-9]:" || true)
    [ "$n" = 50 ] && [ "$all" = 50 ] || fail "capture of vif2.0: $n of $all frames as sent, expected 50 of 50"
    ok "capture of vif2.0 read by tcpdump -r: 50 frames $(mac_of 1) > $(mac_of 2), 1000 bytes"
}

t_cycles() {
    start_sim
    start_xbrd
    ctl add-br xenbr0 >/dev/null
    attach 1
    local i
    for i in $(seq 100); do
        nf --domid 1 connect --hold 0 >/dev/null 2>&1 || fail "connect cycle $i"
    done
    ok "100 connect/disconnect cycles"
    wait_port vif1.0 0 || fail "vif1.0 still a port after the guest closed"
    dom0_clean
    ok "no mapping or event channel left in dom0"
    [ "$(ctl -j vif show | grep -o '"connects": *[0-9]*' | tail -1 | grep -o '[0-9]*$')" -ge 100 ] ||
        fail "fewer than 100 connects counted"
    local fds
    fds=$(ls /proc/"$XBRD_PID"/fd | wc -l)
    for i in $(seq 20); do nf --domid 1 connect --hold 0 >/dev/null 2>&1 || fail "connect"; done
    [ "$(ls /proc/"$XBRD_PID"/fd | wc -l)" -le "$fds" ] || fail "fd count grew: $fds -> $(ls /proc/"$XBRD_PID"/fd | wc -l)"
    ok "no fd leak over 20 more cycles"
}

t_destroy() {
    start_sim
    start_xbrd
    ctl add-br xenbr0 >/dev/null
    attach 1
    "$NETFRONT" --domid 1 connect >/dev/null 2>&1 &
    local g=$!
    BG+=($g)
    wait_port vif1.0 1 || fail "vif1.0 not a port"
    ok "port appears"
    # The hotplug script as libxl runs it: XENBUS_PATH relative to dom0's home; other
    # toolstacks give it absolute. A path that is not a vif backend, or a vif xbrd does not
    # know, fails the attach.
    local p
    for p in backend/vif/1/0 /local/domain/0/backend/vif/1/0; do
        hotplug online "$p" >"$WORK/hp" 2>&1 || { cat "$WORK/hp" >&2; fail "vif-xbr online $p"; }
    done
    for p in backend/vbd/1/0 backend/vif/1 /local/domain/5/backend/vif/1/0; do
        hotplug online "$p" >"$WORK/hp" 2>&1 && fail "vif-xbr online $p succeeded"
        grep -q "not a vif backend path" "$WORK/hp" || { cat "$WORK/hp" >&2; fail "vif-xbr online $p: no reason given"; }
    done
    ok "vif-xbr online: relative and absolute paths attach, others fail with a reason"
    nf --domid 1 --timeout 5000 detach >"$WORK/detach" 2>&1 || { cat "$WORK/detach" >&2; fail "toolstack detach: backend did not reach Closed"; }
    ok "toolstack detach: state 5 + online=0 answered with 6"
    wait_port vif1.0 0 || fail "vif1.0 still a port"
    kill "$g" 2>/dev/null || true
    wait "$g" 2>/dev/null || true
    ctl -j vif show | grep -q '"vif1.0"' && fail "vif1.0 still known after its directory went"
    dom0_clean
    ok "port gone, nothing left mapped"
    # And a domain that dies under a connected vif.
    attach 2
    "$NETFRONT" --domid 2 connect >/dev/null 2>&1 &
    g=$!
    BG+=($g)
    wait_port vif2.0 1 || fail "vif2.0 not a port"
    nf --domid 2 destroy >/dev/null 2>&1 || true
    wait_port vif2.0 0 || fail "vif2.0 still a port after its domain died"
    kill "$g" 2>/dev/null || true
    sleep 0.3
    dom0_clean
    ok "dead domain torn down"
}

t_restart() {
    setup_two
    # Guest 2 stays connected across the restart and must receive after it.
    "$NETFRONT" --domid 2 recv --count 50 --wait 40000 >"$WORK/recv.2" 2>&1 &
    local rpid=$!
    "$NETFRONT" --domid 1 connect --hold 30 >/dev/null 2>&1 &
    local c1=$!
    BG+=($c1)
    wait_port vif1.0 1 && wait_port vif2.0 1 || fail "vifs not up"
    kill -KILL "$XBRD_PID"
    wait "$XBRD_PID" 2>/dev/null || true
    XBRD_PID=""
    ok "xbrd killed with two guests connected"
    rm -f "$SOCK"
    start_xbrd
    ctl add-br xenbr0 >/dev/null
    wait_port vif1.0 1 && wait_port vif2.0 1 || fail "vifs not picked up after restart"
    ok "vifs picked up again"
    kill "$c1" 2>/dev/null || true
    wait "$c1" 2>/dev/null || true
    wait_port vif1.0 0 || fail "vif1.0 did not close"
    nf --domid 1 send --count 50 --size 60:1514 --dst "$(mac_of 2)" --interval-us 1000 \
        >"$WORK/send.1" 2>&1 || { cat "$WORK/send.1" >&2; fail "send after restart"; }
    wait "$rpid" || { cat "$WORK/recv.2" >&2; fail "guest 2 got nothing after the restart"; }
    grep -q " ok 50 bad 0" "$WORK/recv.2" || fail "$(cat "$WORK/recv.2")"
    ok "a guest connected across the restart receives again"
}

t_bridge_wait() {
    start_sim
    start_xbrd
    attach 1 xenbr7
    "$NETFRONT" --domid 1 connect --hold 6 >/dev/null 2>&1 &
    BG+=($!)
    sleep 1
    grep -q "bridge xenbr7 does not exist" "$WORK/xbrd.log" || fail "no log about the missing bridge"
    ctl add-br xenbr7 >/dev/null
    wait_port vif1.0 1 30 || fail "vif did not join the bridge once it existed"
    ok "vif waits for its bridge and joins it"
}

t_multiqueue() {
    start_sim
    start_xbrd --workers 2
    ctl add-br xenbr0 >/dev/null
    attach 1
    attach 2
    local s
    s=$(exchange 1 2 300 60:1514 --queue 0 --slot-bytes 700)
    [ "$(echo "$s" | summary_field bad)" = 0 ] || fail "$s"
    ok "2 workers: single-queue guests (shared RX)"
    "$NETFRONT" --domid 2 --queues 2 recv --count 200 --wait 30000 >"$WORK/r2" 2>&1 &
    local r=$!
    wait_port vif2.0 1 || fail "vif2.0"
    nf --domid 1 --queues 2 send --count 200 --size 60:1514 --dst "$(mac_of 2)" --interval-us 200 >/dev/null 2>&1 || fail "send mq"
    wait "$r" || { cat "$WORK/r2" >&2; fail "recv mq"; }
    ok "2-queue guests"
}

# TCP frames with partial checksums (csum_blank, as a Linux guest sends
# them), back to back, to a frontend without csum offload: netback finishes
# each checksum in software, and every frame of every burst must arrive with
# IPv4 and TCP checksums that verify (the guest checks each one). 200 frames:
# fewer than the 256 buffers the guest keeps posted, so none may be missing.
t_csum_burst() {
    setup_two
    "$NETFRONT" --domid 2 --no-csum recv --count 201 --wait 30000 >"$WORK/recv.2" 2>&1 &
    local rpid=$! nb
    wait_port vif2.0 1 || fail "vif2.0"
    wait_forwarding
    [ "$(port_json vif2.0 .csum_offload)" = false ] || fail "vif2.0 shows csum offload on"
    nf --domid 1 send --count 200 --size 70:1514 --tcp --dst "$(mac_of 2)" >"$WORK/send.1" 2>&1 ||
        { cat "$WORK/send.1" >&2; fail "send"; }
    sleep 0.3
    nb=$(port_json vif2.0 .netback_stats.to_guest_no_buffers)
    # the 201st frame, once the counter is read (the guest leaves after it)
    nf --domid 1 send --count 1 --size 70 --tcp --dst "$(mac_of 2)" >/dev/null || fail "last frame"
    wait "$rpid" || { cat "$WORK/recv.2" >&2; fail "guest 2 did not get all 201 frames"; }
    local s
    s=$(grep SUMMARY "$WORK/recv.2")
    [ "$(echo "$s" | summary_field csum_ok)" -ge 201 ] && [ "$(echo "$s" | summary_field csum_bad)" = 0 ] &&
        [ "$(echo "$s" | summary_field offload_bad)" = 0 ] || fail "checksums: $s"
    [ "$nb" = 0 ] || fail "'$nb' frames dropped for want of buffers"
    ok "201 csum_blank TCP frames, back to back, to a no-csum guest: all delivered, checksums verified ($(echo "$s" | grep -o 'csum_ok [0-9]* csum_bad [0-9]*'))"
}

# Super-frames from the uplink: a host namespace writes TCP/IPv4 GSO frames
# (virtio-net header, PACKET_VNET_HDR) into a veth whose other end is an
# AF_PACKET port of the bridge, so xbr receives them as GSO frames. A guest
# with GSO must get them as GSO (proving the path carried super-frames), a
# guest without must get every one in segments that reassemble and check.
# Small super-frames too: for those the kernel's hdr_len is the whole frame
# (the linear length), which the bridge's MTU check once took for the headers.
gso_uplink_send() { # dst-mac count
    cat >"$WORK/gso-send.py" <<'PY'
import socket, struct, sys, zlib
dev, dst, count = sys.argv[1], bytes.fromhex(sys.argv[2].replace(':', '')), int(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.setsockopt(263, 15, 1)  # SOL_PACKET, PACKET_VNET_HDR
s.bind((dev, 0))
src = s.getsockname()[4]
def csum(b):
    if len(b) % 2: b += b'\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return t
for seq in range(count):
    n = 2000 + seq * 1500  # 2000..30500 bytes
    x = (seq * 2654435761 + 1) & 0xffffffff
    pat = bytearray()
    for _ in range(n - 70):
        x ^= (x << 13) & 0xffffffff; x ^= x >> 17; x ^= (x << 5) & 0xffffffff
        pat.append(x & 0xff)
    pl = b'XSIM' + struct.pack('!III', seq, n, zlib.crc32(bytes(pat))) + bytes(pat)
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, n - 14, seq, 0x4000, 64, 6, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    ip = ip[:10] + struct.pack('!H', 0xffff ^ csum(ip)) + ip[12:]
    ps = csum(ip[12:20] + struct.pack('!HH', 6, n - 34))
    tcp = struct.pack('!HHIIBBHHH', 12345, 80, seq * 65536, 0, 0x50, 0x18, 65535, ps, 0)
    # flags NEEDS_CSUM, GSO_TCPV4, hdr_len, gso_size 1448, csum_start 34, csum_offset 16
    vnet = struct.pack('=BBHHHH', 1, 1, 54, 1448, 34, 16)
    s.send(vnet + dst + src + b'\x08\x00' + ip + tcp + pl)
PY
    ip netns exec "$NS" python3 "$WORK/gso-send.py" eth0 "$1" "$2" || fail "GSO sender"
}

t_gso_uplink() {
    start_sim
    start_xbrd
    ctl add-br xenbr0 >/dev/null
    ctl stp set xenbr0 enabled no >/dev/null
    ip netns add "$NS"
    ip link add "${NS}h" type veth peer name eth0 netns "$NS"
    ip link set "${NS}h" up
    ip -n "$NS" link set eth0 up
    ctl add-port xenbr0 "${NS}h" >/dev/null
    attach 1
    local nsmac f s seg
    nsmac=$(ip -n "$NS" -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
    for f in "" --no-gso --no-sg --no-csum; do
        "$NETFRONT" --domid 1 $f recv --from "$nsmac" --count 21 --wait 20000 >"$WORK/recv.1" 2>&1 &
        local rpid=$!
        wait_port vif1.0 1 || fail "vif1.0"
        sleep 0.5
        gso_uplink_send "$(mac_of 1)" 20
        sleep 0.3
        seg=$(port_json vif1.0 .netback_stats.to_guest_segmented)
        gso_uplink_send "$(mac_of 1)" 1
        wait "$rpid" || { cat "$WORK/recv.1" >&2; fail "${f:-default}: not all 21 super-frames arrived"; }
        s=$(grep SUMMARY "$WORK/recv.1")
        [ "$(echo "$s" | summary_field bad)" = 0 ] && [ "$(echo "$s" | summary_field seg_bad)" = 0 ] &&
            [ "$(echo "$s" | summary_field csum_bad)" = 0 ] && [ "$(echo "$s" | summary_field offload_bad)" = 0 ] ||
            fail "${f:-default}: $s"
        if [ -z "$f" ]; then
            [ "$(echo "$s" | summary_field rx_gso)" -ge 20 ] || fail "super-frames from the uplink did not arrive as GSO: $s"
            ok "uplink super-frames reach a GSO guest as GSO ($(echo "$s" | grep -o 'rx_gso [0-9]*'))"
        else
            [ "$(echo "$s" | summary_field reassembled)" -ge 20 ] && [ "$seg" -ge 20 ] ||
                fail "$f: reassembled $(echo "$s" | summary_field reassembled), xbr segmented '$seg': $s"
            ok "$f: 21 uplink super-frames in $(echo "$s" | summary_field segments) segments, reassembled and checked (xbr segmented $seg)"
        fi
        wait_port vif1.0 0 || fail "vif1.0 still a port"
    done
}

# The RX queue. A guest momentarily short of buffers (16 posted) gets a
# back-to-back burst of 300 all the same: what does not fit waits and goes on
# as it posts more. A guest that never posts holds at most 512 KiB queued
# (the rest dropped-full) and loses the queued frames after 10 s
# (dropped-stalled), as Linux's rx queue with its drain timeout.
t_rx_queue() {
    setup_two
    attach 3
    "$NETFRONT" --domid 2 --rx-buffers 16 recv --from "$(mac_of 1)" --count 301 --wait 30000 \
        >"$WORK/recv.2" 2>&1 &
    local rpid=$! q nb
    wait_port vif2.0 1 || fail "vif2.0"
    wait_forwarding
    nf --domid 1 send --count 300 --size 60:1514 --dst "$(mac_of 2)" >"$WORK/send.1" 2>&1 ||
        { cat "$WORK/send.1" >&2; fail "send"; }
    sleep 0.5
    q=$(port_json vif2.0 .netback_stats.rx_queued) nb=$(port_json vif2.0 .netback_stats.to_guest_no_buffers)
    nf --domid 1 send --count 1 --size 60 --dst "$(mac_of 2)" >/dev/null || fail "last frame"
    wait "$rpid" || { cat "$WORK/recv.2" >&2; fail "a guest with 16 buffers lost frames of a burst"; }
    grep -q " ok 301 bad 0 " "$WORK/recv.2" || fail "$(grep SUMMARY "$WORK/recv.2")"
    [ "$q" -ge 1 ] || fail "rx_queued '$q': the burst never needed the queue"
    [ "$nb" = 0 ] || fail "$nb frames dropped for want of buffers"
    ok "301 frames to a guest with 16 buffers: all delivered in order, $q waited in the RX queue"
    wait_port vif2.0 0 || fail "vif2.0 still a port"

    "$NETFRONT" --domid 3 --attack no-rx-buffers attack --hold 14 >"$WORK/attack" 2>&1 &
    local apid=$!
    wait_port vif3.0 1 || fail "vif3.0"
    wait_forwarding
    nf --domid 1 send --count 400 --size 1514 --dst "$(mac_of 3)" >/dev/null 2>&1 || fail "send to the staller"
    sleep 0.3
    local full bytes frames queued t0
    full=$(port_json vif3.0 .netback_stats.rx_dropped_full) bytes=$(port_json vif3.0 .netback_stats.rx_queue_bytes)
    frames=$(port_json vif3.0 .netback_stats.rx_queue_frames) queued=$(port_json vif3.0 .netback_stats.rx_queued)
    echo "no-rx-buffers: queued $queued, now $frames frames / $bytes bytes, dropped-full $full"
    [ "$bytes" -le 524288 ] && [ "$bytes" -gt 400000 ] || fail "queue holds $bytes bytes: not bounded at 512 KiB"
    [ "$queued" = "$frames" ] || fail "queued $queued but $frames in the queue"
    [ $(( queued + full )) -ge 400 ] && [ "$full" -ge 1 ] || fail "dropped-full $full + queued $queued < 400"
    t0=$(date +%s)
    # The burst's frames expire together; BPDUs keep arriving behind them.
    local stalled=0 st
    for _ in $(seq 120); do
        st=$(port_json vif3.0 .netback_stats)
        stalled=$(echo "$st" | jq .rx_dropped_stalled)
        [ "$stalled" -ge "$queued" ] && break
        sleep 0.1
    done
    [ "$stalled" -ge "$queued" ] && [ "$(echo "$st" | jq .rx_queue_bytes)" -lt 10000 ] ||
        fail "after $(( $(date +%s) - t0 )) s: dropped-stalled $stalled of $queued: $st"
    [ "$(echo "$st" | jq .to_guest_no_buffers)" = "$(echo "$st" | jq '.rx_dropped_full + .rx_dropped_stalled')" ] ||
        fail "no-buffers != full + stalled: $st"
    ok "a guest that never posts: $queued frames ($bytes bytes, at most 512 KiB) held, dropped-stalled after $(( $(date +%s) - t0 )) s (drain timeout 10 s), $full dropped-full"
    wait "$apid" || true
    [ "$(grep '^SUMMARY cmd attack' "$WORK/attack" | summary_field backend_state)" = 4 ] || fail "the staller was disconnected"
}

# Attacks, each with the outcome for the attacker itself (guest 3), as
# Linux netback treats the same input:
#   deliver   legal though unusual: the crafted packet (a test frame, sent to
#             guest 5) arrives intact, answered NETIF_RSP_OKAY
#   drop      the packet is dropped and counted by its counter (from_guest_bad:
#             20..21 slots, a first size short of its slots), answered with
#             NETIF_RSP_ERROR; the vif stays connected; nothing arrives
#   copyfail  a grant the copy cannot use fails its packet only (TX:
#             from_guest_copy_failed, NETIF_RSP_ERROR; RX: to_guest_copy_failed,
#             the guest sees error responses); the vif stays connected
#   nobuf     the guest posts no RX buffers: frames to it wait in its bounded
#             RX queue (rx_queued; their expiry is t_rx_queue's)
#   fatal     a ring-level violation: disconnected, with the reason logged once
#   race      the guest rewrites a pushed request: xbrd must read it once.
#             What that one read saw depends on timing (a torn mix of good and
#             bad fields is a violation for Linux too), so either outcome is
#             right, but never two packets from one request
#   survive   only the daemon and the other guests are judged
# In every case guests 1 -> 2 keep forwarding meanwhile, intact.
attack_kind() {
    case "$1" in
    too-many-slots|too-many-slots=19|zero-frag|tiny-first-slot|tiny-frags) echo deliver ;;
    too-many-slots=20|too-many-slots=21|size-short) echo drop ;;
    bad-gref|unused-gref|foreign-gref|tail-bad-gref|rx-readonly|rx-bad-gref) echo copyfail ;;
    no-rx-buffers) echo nobuf ;;
    fatal-slots|fatal-slots=23|cross-page|size-long|bad-extra-type|extra-unterminated|\
    gso-size-zero|gso-bad-type|unterminated|req-prod-jump|rx-req-prod-jump) echo fatal ;;
    rewrite) echo race ;;
    evtchn-flood|revoke-gref|tail-revoke|vanish) echo survive ;;
    *) echo unknown ;;
    esac
}
# What a fatal attack's log line must say.
attack_reason() {
    case "$1" in
    fatal-slots*) echo "too many slots in one packet (malicious)" ;;
    cross-page) echo "slot crosses a page boundary" ;;
    size-long) echo "first slot crosses a page boundary" ;;
    bad-extra-type) echo "invalid extra info type" ;;
    extra-unterminated) echo "extra info runs past req_prod" ;;
    gso-size-zero) echo "GSO size 0" ;;
    gso-bad-type) echo "bad GSO type" ;;
    unterminated) echo "NETTXF_more_data chain runs past req_prod" ;;
    req-prod-jump) echo "TX req_prod" ;;
    rx-req-prod-jump) echo "RX req_prod" ;;
    esac
}

# Polls a counter of vif3.0 (the attacker, while it holds its connection)
# until it is at least 1; prints the last value.
attacker_counter() { # field
    local v=""
    for _ in $(seq 40); do
        v=$(port_json vif3.0 ".netback_stats.$1" 2>/dev/null || true)
        [ -n "$v" ] && [ "$v" != null ] && [ "$v" -ge 1 ] && break
        sleep 0.05
    done
    echo "${v:-none}"
}

t_attack() {
    local a=$1 kind
    kind=$(attack_kind "$a")
    [ "$kind" != unknown ] || fail "unknown attack $a"
    setup_two
    attach 3
    attach 4
    attach 5
    # Guest 3 is the attacker; 1 -> 2 traffic must keep flowing meanwhile.
    "$NETFRONT" --domid 2 recv --from "$(mac_of 1)" --count 300 --wait 60000 >"$WORK/recv.2" 2>&1 &
    local rpid=$!
    # Guest 5 receives what the attacker sends: one intact frame, or none.
    local want5=1 wait5=20000
    [ "$kind" = deliver ] || wait5=5000 # expecting nothing: "ok 0"
    "$NETFRONT" --domid 5 recv --from "$(mac_of 3)" --count "$want5" --wait "$wait5" >"$WORK/recv.5" 2>&1 &
    local r5=$!
    wait_port vif2.0 1 && wait_port vif5.0 1 || fail "vif2.0 / vif5.0"
    "$NETFRONT" --domid 1 send --count 300 --size 60:1514 --dst "$(mac_of 2)" --interval-us 5000 \
        >"$WORK/send.1" 2>&1 &
    local spid=$!
    "$NETFRONT" --domid 3 --attack "$a" --attack-dst "$(mac_of 5)" attack --hold 3 >"$WORK/attack" 2>&1 &
    local apid=$!
    wait_port vif3.0 1 || true
    # Frames towards the attacker, for the attacks on its RX ring: unknown
    # unicast is flooded to it.
    sleep 0.5
    nf --domid 4 send --count 20 --size 60:3000 --dst "$(mac_of 3)" --interval-us 20000 \
        >/dev/null 2>&1 || true
    local counter="" cval=""
    case $kind in
    drop) counter=from_guest_bad ;;
    copyfail) case $a in rx-*) counter=to_guest_copy_failed ;; *) counter=from_guest_copy_failed ;; esac ;;
    nobuf) counter=rx_queued ;;
    esac
    [ -n "$counter" ] && cval=$(attacker_counter "$counter")
    local bad_now
    bad_now=$(port_json vif3.0 .netback_stats.from_guest_bad 2>/dev/null || true)
    wait "$apid" || true
    cat "$WORK/attack"
    wait "$spid" || { cat "$WORK/send.1" >&2; fail "guest 1 could not send during the attack"; }
    wait "$rpid" || { cat "$WORK/recv.2" >&2; fail "guest 2 lost traffic during the attack"; }
    local s
    s=$(grep SUMMARY "$WORK/recv.2")
    [ "$(echo "$s" | summary_field bad)" = 0 ] || fail "corruption during the attack: $s"
    ok "other guests kept forwarding ($(echo "$s" | grep -o 'ok [0-9]* bad [0-9]*'))"
    kill -0 "$XBRD_PID" || fail "xbrd died"
    local r5rc=0
    wait "$r5" || r5rc=$?
    local s5 as bs an v
    s5=$(grep SUMMARY "$WORK/recv.5" || true)
    as=$(grep "^SUMMARY cmd attack " "$WORK/attack" | tail -1)
    [ -n "$as" ] || fail "no SUMMARY line from the attacker"
    an=$(echo "$as" | sed -n 's/.* attack \([^ ]*\).*/\1/p')
    bs=$(echo "$as" | summary_field backend_state)
    [ "$an" = "${a%%=*}" ] || fail "attacker ran attack '$an', not $a: $as"
    v=$(ctl -j vif show vif3.0 | grep -o '"violations": *[0-9]*' | tail -1 | grep -o '[0-9]*$')
    if [ "$kind" = race ]; then
        local got
        got=$(echo "$s5" | summary_field ok)
        [ "${got:-0}" -le 1 ] || fail "$a: one request arrived ${got} times (read twice): $s5"
        [ "$(echo "$s5" | summary_field bad)" = 0 ] || [ -z "$s5" ] || fail "$a: corrupted at guest 5: $s5"
        if [ "${v:-0}" -ge 1 ]; then
            [ "$(grep -c "vif3.0: frontend protocol violation" "$WORK/xbrd.log")" = 1 ] ||
                fail "violation logged other than once"
            ok "$a: read once, mid-rewrite: an invalid request, the vif disconnected, logged once"
        else
            ok "$a: read once: ${got:-0} frame at guest 5, attacker still connected (backend_state $bs)"
        fi
    elif [ "$kind" = fatal ]; then
        [ "${v:-0}" -ge 1 ] || fail "attack $a not counted as a violation"
        local why
        why=$(attack_reason "$a")
        [ "$(grep -c "vif3.0: frontend protocol violation" "$WORK/xbrd.log")" = 1 ] ||
            fail "violation logged other than once"
        grep "vif3.0: frontend protocol violation" "$WORK/xbrd.log" | grep -qF "$why" ||
            fail "violation logged without the reason '$why': $(grep 'protocol violation' "$WORK/xbrd.log")"
        case "$bs" in
        5|6) ;;
        *) fail "backend not Closing/Closed after attack $a: backend_state '${bs}' ($as)" ;;
        esac
        echo "$s5" | grep -q " ok 0 " || fail "a frame of the fatal attack $a arrived: $s5"
        ok "attacker disconnected (backend_state $bs), counted, reason: $why"
    else
        [ "${v:-0}" = 0 ] || fail "attack $a ($kind) was counted as a violation"
        grep -q "vif3.0: frontend protocol violation" "$WORK/xbrd.log" && fail "attack $a ($kind) disconnected the vif"
        case $a in vanish) ;; *) [ "$bs" = 4 ] || fail "attacker not connected after $a: backend_state '$bs'" ;; esac
        case $kind in
        deliver)
            [ "$r5rc" = 0 ] && echo "$s5" | grep -q " ok 1 bad 0 " ||
                fail "the legal packet of $a did not arrive intact at guest 5: $s5"
            [ "$(echo "$as" | summary_field tx_rsp_okay)" -ge 1 ] && [ "$(echo "$as" | summary_field tx_rsp_error)" = 0 ] ||
                fail "attacker's packet not answered OKAY: $as"
            [ "${bad_now:-0}" = 0 ] || fail "from_guest_bad $bad_now for a legal packet"
            ok "$a: legal, delivered intact to guest 5, answered OKAY, attacker still connected" ;;
        drop|copyfail)
            [ "$cval" != none ] && [ "$cval" -ge 1 ] || fail "$a: $counter is '$cval', expected >= 1"
            echo "$s5" | grep -q " ok 0 " || fail "a frame of $a arrived: $s5"
            case $a in
            rx-*) [ "$(echo "$as" | summary_field rx_errors)" -ge 1 ] || fail "$a: the attacker saw no error responses: $as" ;;
            *) [ "$(echo "$as" | summary_field tx_rsp_error)" -ge 1 ] || fail "$a: not answered NETIF_RSP_ERROR: $as" ;;
            esac
            ok "$a: dropped, $counter $cval, error responses, attacker still connected" ;;
        nobuf)
            # What happens to them later (dropped-stalled, dropped-full, at
            # most 512 KiB held) is t_rx_queue's.
            [ "$cval" != none ] && [ "$cval" -ge 1 ] || fail "$a: $counter is '$cval', expected >= 1"
            ok "$a: frames to the guest held in its bounded RX queue ($counter $cval), attacker still connected" ;;
        survive)
            ok "attack $a survived (violations ${v:-0}, backend_state $bs)" ;;
        esac
    fi
    wait_port vif3.0 0 || fail "vif3.0 still a port after the attacker left"
    sleep 0.3
    "$XENSIM_CTL" reap >/dev/null 2>&1 || true
}

# ---- control plane: worker default, control ring, multicast control, xenstore ----
# (nb-test.sh ctrl-* / xs-* / workers-default / mcast; one function per test.)

# Traffic guest 1 -> guest 2 that must flow while something else goes on.
bg_traffic_start() { # count
    "$NETFRONT" --domid 2 recv --count "$1" --wait 60000 >"$WORK/bg.recv" 2>&1 &
    BG_R=$!
    wait_port vif2.0 1 || fail "vif2.0"
    "$NETFRONT" --domid 1 send --count "$1" --size 60:1514 --dst "$(mac_of 2)" \
        --interval-us 5000 >"$WORK/bg.send" 2>&1 &
    BG_S=$!
    # Both connected before anything else starts: xs-sim fails every
    # transaction that overlaps any commit (xenstored only those touching the
    # same nodes), and a flood of writes would starve a later handshake.
    wait_port vif1.0 1 || fail "vif1.0"
}
bg_traffic_check() {
    wait "$BG_S" || { cat "$WORK/bg.send" >&2; fail "guest 1 could not send meanwhile"; }
    wait "$BG_R" || { cat "$WORK/bg.recv" >&2; fail "guest 2 lost traffic meanwhile"; }
    local s
    s=$(grep SUMMARY "$WORK/bg.recv")
    [ "$(echo "$s" | summary_field bad)" = 0 ] || fail "corruption meanwhile: $s"
    ok "other guests kept forwarding ($(echo "$s" | grep -o 'ok [0-9]* bad [0-9]*'))"
}
# vif_json VIF PATH — a field of the vif in `xbrctl -j vif show` (jq path, e.g.
# .connects or .xenstore.events); port_json PORT PATH — of the port in `-j show`.
vif_json() { ctl -j vif show "$1" | jq -r ".vifs[] | select(.name == \"$1\") | $2"; }
port_json() { ctl -j show | jq -r ".[].ports[] | select(.name == \"$1\") | $2"; }
proc_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
proc_rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

# Without -w, xbrd runs one worker per CPU it may use (capped at 8): a guest
# asking for 8 queues gets that many; -w still decides when given.
t_workers_default() {
    local n want
    start_sim
    want=$(nproc); [ "$want" -gt 8 ] && want=8
    for run in affinity-1 default w3; do
        case $run in
        affinity-1) XENSTORED_PATH="$XENSIM_XS_DIR/dom0" XENSIM_DOMID=0 \
                        taskset -c 0 "$XBRD" -s "$SOCK" >>"$WORK/xbrd.log" 2>&1 &
                    XBRD_PID=$!; want1=1 ;;
        default) start_xbrd; want1=$want ;;
        w3) start_xbrd -w 3; want1=3 ;;
        esac
        for _ in $(seq 100); do grep -q "netback: serving" "$WORK/xbrd.log" && break; sleep 0.05; done
        ctl add-br xenbr0 >/dev/null || fail "add-br ($run)"
        grep -q "xbrd .*: $want1 worker(s)" "$WORK/xbrd.log" || fail "$run: xbrd did not start $want1 worker(s)"
        attach 1
        n=$(nf --domid 1 --queues 8 connect --hold 0 | sed -n 's/^CONNECTED .* queues \([0-9]*\)$/\1/p')
        [ "$n" = "$want1" ] || fail "$run: a guest asking for 8 queues got '$n', expected $want1"
        ok "$run: $want1 worker(s), a guest asking for 8 queues gets $n"
        kill -TERM "$XBRD_PID"; wait "$XBRD_PID" || fail "xbrd exit status"
        XBRD_PID=""; : >"$WORK/xbrd.log"; rm -f "$SOCK"
    done
}

# feature-ctrl-ring: every request against Linux netback's answers, then a
# 4-queue guest with Toeplitz on: each frame's hash extra is the hash of its
# own headers and it arrives on the queue the guest's table names.
t_ctrl_ring() {
    start_sim
    start_xbrd --workers 4
    ctl add-br xenbr0 >/dev/null
    attach 1
    attach 2
    nf --domid 2 --ctrl-ring --queues 4 ctrl-check >"$WORK/ctrl" 2>&1 || { cat "$WORK/ctrl" >&2; fail "ctrl-check"; }
    grep -q " ctrl_ok 25 ctrl_wrong 0" "$WORK/ctrl" || { cat "$WORK/ctrl" >&2; fail "control ring answers"; }
    ok "25 control-ring requests answered as Linux netback answers them"
    "$NETFRONT" --domid 2 --ctrl-ring --queues 4 recv --hash --count 501 --wait 40000 >"$WORK/r2" 2>&1 &
    local r=$!
    wait_port vif2.0 1 || fail "vif2.0"
    for _ in $(seq 50); do [ "$(port_json vif2.0 .ctrl_ring.hash)" = toeplitz ] && break; sleep 0.1; done
    [ "$(port_json vif2.0 .ctrl_ring.hash)" = toeplitz ] || fail "vif2.0 never showed hash toeplitz: $(ctl show)"
    [ "$(port_json vif2.0 .ctrl_ring.present)" = true ] || fail "no control ring shown"
    nf --domid 1 send --count 400 --size 70:1514 --flows 64 --dst "$(mac_of 2)" --interval-us 300 >/dev/null ||
        fail "send TCP flows"
    nf --domid 1 send --count 100 --size 60:1514 --dst "$(mac_of 2)" --interval-us 300 >/dev/null ||
        fail "send raw frames"
    local hashed
    sleep 0.5
    hashed=$(port_json vif2.0 .ctrl_ring.hashed)
    # the 501st frame, once the counter is read (the guest leaves after it)
    nf --domid 1 send --count 1 --size 60 --dst "$(mac_of 2)" >/dev/null || fail "last frame"
    wait "$r" || { cat "$WORK/r2" >&2; fail "recv with hashing"; }
    local s
    s=$(grep SUMMARY "$WORK/r2")
    [ "$(echo "$s" | summary_field hash_ok)" = 501 ] && [ "$(echo "$s" | summary_field hash_bad)" = 0 ] ||
        fail "hash or queue wrong: $s"
    [ "$(echo "$s" | summary_field queues_used)" -ge 3 ] || fail "64 flows used fewer than 3 of 4 queues: $s"
    [ "${hashed:-0}" -ge 500 ] || fail "xbrd counted ${hashed:-0} hashed frames, expected >= 500"
    ok "501 frames: hash extra = Toeplitz of their headers (TCP 4-tuple; none for non-IP), queue = table entry; $(echo "$s" | summary_field queues_used) queues used"
    dom0_clean
}

# A control ring flooded with requests gets a bounded share of the control
# thread; one whose req_prod jumps is a protocol violation.
t_ctrl_attack() {
    setup_two
    attach 3
    bg_traffic_start 300
    local c0 t0 c1 t1 s
    c0=$(proc_cpu_ticks "$XBRD_PID"); t0=$(date +%s%N)
    nf --domid 3 --ctrl-ring --attack ctrl-flood=2000 attack --hold 0 >"$WORK/attack" 2>&1 ||
        { cat "$WORK/attack" >&2; fail "ctrl-flood attacker"; }
    c1=$(proc_cpu_ticks "$XBRD_PID"); t1=$(date +%s%N)
    s=$(grep SUMMARY "$WORK/attack")
    local sent got ms cpu_ms
    sent=$(echo "$s" | summary_field ctrl_requests) got=$(echo "$s" | summary_field ctrl_responses)
    ms=$(( (t1 - t0) / 1000000 )) cpu_ms=$(( (c1 - c0) * 1000 / $(getconf CLK_TCK) ))
    echo "ctrl-flood: $sent requests posted, $got answered in ${ms} ms; xbrd CPU ${cpu_ms} ms"
    [ "$got" -gt 100 ] || fail "a flooded control ring got $got answers: starved"
    [ "$got" -le $(( ms * 1000 / 1000 + 256 )) ] || fail "$got answers in $ms ms: more than the budget (640/s)"
    [ "$cpu_ms" -lt $(( ms / 5 )) ] || fail "xbrd used ${cpu_ms} ms of CPU in ${ms} ms of control-ring flood"
    [ "$(echo "$s" | summary_field backend_state)" = 4 ] || fail "flooding its own control ring disconnected the guest: $s"
    ok "ctrl-flood: answered at the budget's pace ($got in $ms ms), xbrd CPU ${cpu_ms} ms, guest still connected"
    nf --domid 3 --ctrl-ring --attack ctrl-req-prod-jump attack --hold 1 >"$WORK/attack" 2>&1 || true
    s=$(grep "^SUMMARY cmd attack" "$WORK/attack")
    case "$(echo "$s" | summary_field backend_state)" in
    5|6) ;;
    *) cat "$WORK/attack" >&2; fail "ctrl-req-prod-jump: backend not Closing/Closed: $s" ;;
    esac
    [ "$(vif_json vif3.0 .violations)" = 1 ] || fail "ctrl-req-prod-jump not counted as a violation"
    grep -q "vif3.0: frontend protocol violation, disconnecting: control ring req_prod" "$WORK/xbrd.log" ||
        fail "no log line for ctrl-req-prod-jump"
    ok "ctrl-req-prod-jump: disconnected, counted, logged"
    bg_traffic_check
}

# feature-multicast-control: a guest that asked for it gets only the groups
# it subscribed (and broadcast); 64 addresses at most; one without it gets
# everything.
t_mcast() {
    start_sim
    start_xbrd --workers 2
    ctl add-br xenbr0 >/dev/null
    ctl stp set xenbr0 enabled no >/dev/null   # no BPDUs: the counts below are exact
    attach 1; attach 2; attach 3
    "$NETFRONT" --domid 2 --mcast-control recv --count 31 --wait 30000 \
        --mcast-add 01:00:5e:01:02:03 --mcast-add 01:00:5e:01:02:04 --mcast-del 01:00:5e:01:02:04 \
        --mcast-fill 70 >"$WORK/r2" 2>&1 &
    local r2=$!
    "$NETFRONT" --domid 3 recv --count 51 --wait 30000 >"$WORK/r3" 2>&1 &
    local r3=$!
    wait_port vif2.0 1 && wait_port vif3.0 1 || fail "vifs"
    for _ in $(seq 50); do [ "$(port_json vif2.0 .multicast_control.addresses)" = 64 ] && break; sleep 0.1; done
    [ "$(port_json vif2.0 .multicast_control.filtering)" = true ] || fail "vif2.0 does not filter"
    local d
    for d in 01:00:5e:09:09:09:10 01:00:5e:01:02:04:10 01:00:5e:01:02:03:20 ff:ff:ff:ff:ff:ff:10; do
        nf --domid 1 send --count "${d##*:}" --size 60 --dst "${d%:*}" --interval-us 500 >/dev/null ||
            fail "send to ${d%:*}"
    done
    sleep 0.5
    local filtered refused addrs
    filtered=$(port_json vif2.0 .multicast_control.filtered) refused=$(port_json vif2.0 .multicast_control.refused) addrs=$(port_json vif2.0 .multicast_control.addresses)
    [ "$(port_json vif3.0 .multicast_control.filtered)" = 0 ] || fail "vif3.0 (no multicast control) filtered frames"
    nf --domid 1 send --count 1 --size 60 --dst ff:ff:ff:ff:ff:ff >/dev/null || fail "last broadcast"
    wait "$r2" || { cat "$WORK/r2" >&2; fail "guest 2"; }
    wait "$r3" || { cat "$WORK/r3" >&2; fail "guest 3"; }
    local s2 s3
    s2=$(grep SUMMARY "$WORK/r2") s3=$(grep SUMMARY "$WORK/r3")
    echo "$s2" | grep -q " ok 31 bad 0 " || fail "guest 2 received: $s2"
    [ "$(echo "$s2" | summary_field mcast_unwanted)" = 0 ] || fail "unsubscribed groups reached guest 2: $s2"
    [ "$(echo "$s2" | summary_field mcast_ok)" = 66 ] && [ "$(echo "$s2" | summary_field mcast_err)" = 7 ] ||
        fail "subscriptions: expected 66 accepted (63 + 3 ops) and 7 refused past 64: $s2"
    [ "$filtered" = 20 ] && [ "$refused" = 7 ] && [ "$addrs" = 64 ] ||
        fail "xbrd: filtered '$filtered' (20), refused '$refused' (7), addresses '$addrs' (64)"
    echo "$s3" | grep -q " ok 51 bad 0 " || fail "guest 3 (no multicast control) received: $s3"
    ok "multicast control: subscribed group and broadcast delivered (31), 20 frames to other groups filtered, 64 addresses kept, 7 refused; a guest without it got all 51"
}

# Hostile xenstore values, one test each: the attacker (guest 3) is refused
# with the right reason and counted as it should be; guests 1 and 2 keep
# forwarding meanwhile.
t_xs() {
    local name=$1 reason violation=0 connects=0
    local -a opt=()
    local bridge=xenbr0 huge
    huge=$(printf '7%.0s' $(seq 2000))
    case $name in
    queues-zero) opt=(--xs-set multi-queue-num-queues=0); reason="bad number of queues" ;;
    queues-huge) opt=(--xs-set multi-queue-num-queues=99999999999999999999999); reason="bad number of queues" ;;
    queues-garbage) opt=(--xs-set multi-queue-num-queues=2x); reason="bad number of queues" ;;
    queues-no-dirs) opt=(--xs-set multi-queue-num-queues=2); reason="queue-0: missing or bad tx-ring-ref" ;;
    ring-ref-garbage) opt=(--xs-set tx-ring-ref=-1); reason="missing or bad tx-ring-ref" ;;
    ring-ref-absurd) opt=(--xs-set rx-ring-ref=4294967295); reason="cannot map rx-ring-ref 4294967295"; violation=1 ;;
    ring-ref-twice) opt=(--xs-set rx-ring-ref=@tx-ring-ref); reason="is given for two rings"; violation=1 ;;
    evtchn-garbage) opt=(--no-split --xs-set event-channel=0x10); reason="missing or bad event-channel" ;;
    evtchn-missing) opt=(--no-split --xs-rm event-channel); reason="missing or bad event-channel" ;;
    evtchn-unbound) opt=(--no-split --xs-set event-channel=999); reason="cannot bind event channel 999"; violation=1 ;;
    evtchn-foreign) opt=(--attack foreign-evtchn); reason="cannot bind event channel"; violation=1 ;;
    no-rx-copy) opt=(--xs-set request-rx-copy=0); reason="does not support request-rx-copy" ;;
    ctrl-no-evtchn) opt=(--ctrl-ring --xs-rm event-channel-ctrl); reason="missing or bad ctrl-ring-ref / event-channel-ctrl" ;;
    ctrl-ref-absurd) opt=(--ctrl-ring --xs-set ctrl-ring-ref=4294967295); reason="cannot map ctrl-ring-ref"; violation=1 ;;
    huge-strings) opt=(--xs-set "tx-ring-ref=$huge" --xs-set "feature-sg=$huge" --xs-set "xbr-junk=$huge")
                  reason="missing or bad tx-ring-ref" ;;
    huge-queues) opt=(--xs-set "multi-queue-num-queues=$huge"); reason="bad number of queues" ;;
    mac-backend) reason="backend mac 'not-a-mac' is missing or not a MAC address" ;;
    mac-frontend) opt=(--xs-set mac=zz:zz:zz --xs-set "feature-gso-tcpv4=$huge"); reason=""; connects=1 ;;
    bridge-long) bridge=xenbr0-but-much-too-long-for-ifnamsiz; reason="bridge name is longer than 15 characters" ;;
    bridge-vlan-zero) bridge=xenbr0.0; reason="invalid VLAN id '0' (1-4094)" ;;
    bridge-vlan-huge) bridge=xenbr0.10:4095; reason="invalid VLAN id '4095' (1-4094)" ;;
    bridge-vlan-junk) bridge=xenbr0.10x; reason="unexpected 'x'" ;;
    bridge-vlan-empty) bridge=xenbr0.10::20; reason="a VLAN id must follow ':'" ;;
    *) fail "unknown xenstore case $name" ;;
    esac
    setup_two
    nf --domid 3 --mac "$(mac_of 3)" attach --bridge "$bridge" >/dev/null || fail "attach dom3"
    [ "$name" = mac-backend ] && { nf --domid 3 backend-set mac not-a-mac || fail "backend-set"; }
    bg_traffic_start 200
    local out rc=0
    out=$(nf --domid 3 --timeout 4000 "${opt[@]}" connect --hold 1 2>&1) || rc=$?
    if [ "$connects" = 1 ]; then
        [ $rc = 0 ] || { echo "$out" >&2; fail "$name: a legal frontend was refused"; }
        [ "$(vif_json vif3.0 .mac)" = "$(mac_of 3)" ] || fail "$name: vif3.0 took mac '$(vif_json vif3.0 .mac)', not the backend's"
        [ "$(vif_json vif3.0 .connects)" = 1 ] || fail "$name: connects $(vif_json vif3.0 .connects)"
        ok "$name: values xbrd does not use changed nothing: connected with the backend's mac"
    else
        [ $rc != 0 ] || { echo "$out" >&2; fail "$name: the frontend connected"; }
        [ "$(vif_json vif3.0 .connected)" = false ] || fail "$name: vif3.0 connected"
        [ "$(vif_json vif3.0 .connects)" = 0 ] || fail "$name: vif3.0 connected at some point"
        local le
        le=$(vif_json vif3.0 .last_error)
        case "$le" in *"$reason"*) ;; *) fail "$name: last_error '$le', expected '$reason'" ;; esac
        [ "$(vif_json vif3.0 .violations)" = "$violation" ] ||
            fail "$name: violations $(vif_json vif3.0 .violations), expected $violation"
        local what="cannot connect"
        [ "$violation" = 1 ] && what="frontend protocol violation, disconnecting"
        [ "$(grep -c "vif3.0: $what: .*$reason" "$WORK/xbrd.log")" = 1 ] ||
            fail "$name: expected one log line 'vif3.0: $what: ...$reason'"
        case "$(vif_json vif3.0 .backend_state)" in 5|6) ;; *) fail "$name: backend state $(vif_json vif3.0 .backend_state)" ;; esac
        ok "$name: refused ($what: $le), backend state $(vif_json vif3.0 .backend_state)"
    fi
    wait_port vif3.0 0 || fail "vif3.0 still a port"
    bg_traffic_check
    kill -0 "$XBRD_PID" || fail "xbrd died"
}

# XSA-349 class: a guest writing its xenstore directory in a loop. xbrd
# watches its state node only, rate-limits evaluations and suspends the watch
# of a flood: bounded CPU and memory, counted; the guest stays connected.
t_xs_write_loop() {
    setup_two
    attach 3
    bg_traffic_start 300
    local c0 m0 t0 c1 m1 t1 s ms cpu_ms
    c0=$(proc_cpu_ticks "$XBRD_PID") m0=$(proc_rss_kb "$XBRD_PID") t0=$(date +%s%N)
    nf --domid 3 --attack xs-write-loop=4000 attack --hold 1 >"$WORK/attack" 2>&1 ||
        { cat "$WORK/attack" >&2; fail "xs-write-loop attacker"; }
    c1=$(proc_cpu_ticks "$XBRD_PID") m1=$(proc_rss_kb "$XBRD_PID") t1=$(date +%s%N)
    s=$(grep SUMMARY "$WORK/attack")
    ms=$(( (t1 - t0) / 1000000 )) cpu_ms=$(( (c1 - c0) * 1000 / $(getconf CLK_TCK) ))
    local writes events susp deferred
    writes=$(echo "$s" | summary_field xs_writes)
    events=$(vif_json vif3.0 .xenstore.events) susp=$(vif_json vif3.0 .xenstore.watch_suspensions)
    deferred=$(vif_json vif3.0 .xenstore.deferred)
    echo "xs-write-loop: $writes writes; xbrd: $events events, $deferred deferred, $susp suspension(s), CPU ${cpu_ms} ms in ${ms} ms, RSS ${m0} -> ${m1} kB"
    [ "$writes" -gt 5000 ] || fail "the attacker wrote only $writes times: no flood to defend against"
    [ "$(echo "$s" | summary_field backend_state)" = 4 ] || fail "writing its own directory disconnected the guest: $s"
    [ "$events" -gt 100 ] || fail "xbrd counted $events events for the flood"
    [ "$susp" -ge 1 ] || fail "the flood never suspended the watch"
    [ "$events" -lt $(( writes / 4 )) ] || fail "$events events for $writes writes: the watch was not suspended"
    [ "$cpu_ms" -lt $(( ms / 10 )) ] || fail "xbrd used ${cpu_ms} ms of CPU in ${ms} ms of xenstore flood"
    [ $(( m1 - m0 )) -lt 1536 ] || fail "xbrd grew by $(( m1 - m0 )) kB during the flood"
    grep -q "vif3.0: frontend fired .* xenstore events within a second" "$WORK/xbrd.log" || fail "no log line"
    ok "xs-write-loop: $writes writes cost xbrd ${cpu_ms} ms CPU and $(( m1 - m0 )) kB; $events events counted, watch suspended $susp time(s); guest stayed connected"
    bg_traffic_check
}

[ "${NB_LIB:-}" = 1 ] && return 0
# `vif antispoof on` from the configuration file (it used to fail there: the
# command was registered only once netback started, after the file): a guest
# whose frames carry another source MAC than its vif's is dropped and counted,
# a guest sending from its own MAC is delivered; save keeps the setting and a
# reload without the line puts the default (off) back.
t_antispoof_config() {
    start_sim
    printf 'add-br xenbr0\nvif antispoof on\n' >"$WORK/xbrd.conf"
    start_xbrd -c "$WORK/xbrd.conf"
    grep -q "xbrd.conf:2: vif antispoof on" "$WORK/xbrd.log" || fail "the file's vif antispoof line was not applied"
    attach 1
    attach 2
    attach 3
    # dom1's backend says another MAC than its frontend sends from.
    nf --domid 1 backend-set mac 00:16:3e:00:09:09 >/dev/null || fail "backend-set mac"
    # The counters live with the port: read them while dom1 still sends.
    "$NETFRONT" --domid 2 recv --count 1 --wait 3000 >"$WORK/recv.spoof" 2>&1 &
    local rpid=$!
    wait_port vif2.0 1 || fail "vif2.0 never became a port"
    nf --domid 1 send --count 1000 --size 100 --dst "$(mac_of 2)" --interval-us 3000 \
        >"$WORK/send.1" 2>&1 &
    local spid=$! spoofed=0
    for _ in $(seq 50); do
        spoofed=$(port_json vif1.0 .netback_stats.from_guest_spoofed 2>/dev/null || echo 0)
        [ "${spoofed:-0}" -ge 50 ] 2>/dev/null && break
        sleep 0.1
    done
    [ "${spoofed:-0}" -ge 50 ] 2>/dev/null || fail "dom1's spoofed frames: counted '$spoofed', not >= 50"
    if wait "$rpid"; then fail "dom2 received a frame from the spoofing dom1: $(cat "$WORK/recv.spoof")"; fi
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    local s
    s=$(exchange 3 2 50 100)
    [ "$(echo "$s" | summary_field ok)" = 50 ] || fail "dom3 sends from its own MAC, yet: $s"
    ok "antispoof from the file: spoofed frames dropped and counted ($spoofed), none delivered; 50 honest delivered"
    ctl save | grep -qx "vif antispoof on" || fail "save lacks vif antispoof on"
    printf 'add-br xenbr0\n' >"$WORK/xbrd.conf"
    ctl reload >/dev/null || fail "reload failed"
    ! ctl save | grep -q "vif antispoof" || fail "reload without the line left antispoof on"
    printf 'add-br xenbr0\nvif antispoof maybe\n' >"$WORK/xbrd.conf"
    ! ctl reload >/dev/null 2>"$WORK/reload.err" || fail "reload took 'vif antispoof maybe'"
    grep -q "usage: vif antispoof on|off" "$WORK/reload.err" || fail "bad value: $(cat "$WORK/reload.err")"
    ok "save writes it, reload takes it back, a bad value is refused"
}

# What libxl writes to the backend beyond the handshake: vifname= names the
# port (unless another vif has the name); keys xbr does not implement
# (gatewaydev=, for vif-route and vif-nat) are named in the log once, not
# ignored silently; rate= is not one.
t_vif_keys() {
    start_sim
    attach 1
    nf --domid 1 backend-set vifname web0 >/dev/null || fail "backend-set vifname"
    nf --domid 1 backend-set rate 10000000,50000 >/dev/null || fail "backend-set rate"
    nf --domid 1 backend-set gatewaydev eth0 >/dev/null || fail "backend-set gatewaydev"
    attach 2
    nf --domid 2 backend-set vifname web0 >/dev/null || fail "backend-set vifname"
    start_xbrd
    ctl add-br xenbr0 >/dev/null
    "$NETFRONT" --domid 1 connect >/dev/null 2>&1 &
    BG+=($!)
    wait_port web0 1 || fail "dom1's vif did not become port web0"
    ok "vifname=web0 names dom1's port"
    grep -q "web0: backend key(s) not implemented by xbr, ignored: gatewaydev$" "$WORK/xbrd.log" ||
        fail "gatewaydev= not named in the log (alone: rate= is implemented)"
    [ "$(grep -c "backend key(s) not implemented" "$WORK/xbrd.log")" = 1 ] ||
        fail "unimplemented keys logged other than once"
    grep -q "vif2.0: vifname 'web0' is not a free interface name; keeping vif2.0" "$WORK/xbrd.log" ||
        fail "dom2's clashing vifname not refused in the log"
    local s
    s=$(exchange 1 2 20 100)
    [ "$(echo "$s" | summary_field ok)" = 20 ] || fail "web0 -> vif2.0: $s"
    ok "unimplemented keys logged once; a clashing vifname keeps vif2.0, which forwards"
}

# vif-xbr as libxl runs it for an HVM guest's emulated NIC (type_if=tap,
# vif=the device model's tap): add puts the tap on the vif line's bridge as an
# edge port, remove takes it off. A failure reaches the toolstack as
# hotplug-error / hotplug-status=error, through xenstore-write (here a stand-in
# on PATH that records what it was asked; on real Xen, xl prints the error).
t_hotplug() {
    start_sim
    start_xbrd
    ctl add-br xenbr0 >/dev/null
    local tap="${NS}e" bin="$WORK/bin"
    ip tuntap add dev "$tap" mode tap || fail "cannot create tap $tap"
    mkdir -p "$bin"
    printf '#!/bin/sh\nprintf "%%s\\n" "$*" >>"%s"\n' "$WORK/xs-writes" >"$bin/xenstore-write"
    chmod +x "$bin/xenstore-write"
    local be=/local/domain/0/backend/vif/7/0
    PATH="$bin:$PATH" type_if=tap vif="$tap" XBR_BRIDGE=xenbr0 hotplug add "$be" >"$WORK/hp" 2>&1 ||
        { cat "$WORK/hp" >&2; fail "vif-xbr add (tap)"; }
    wait_port "$tap" 1 || fail "the emulated NIC's tap is not a port"
    [ "$(port_json "$tap" .type)" = afpacket ] || fail "$tap: type $(port_json "$tap" .type)"
    ctl save | grep -q "port set xenbr0 $tap admin-edge yes" || fail "$tap is not an edge port: $(ctl save)"
    grep -qx "$be/hotplug-status connected" "$WORK/xs-writes" || fail "add wrote no hotplug-status connected: $(cat "$WORK/xs-writes")"
    ok "type_if=tap add: $tap on xenbr0 as an edge port, hotplug-status connected"
    PATH="$bin:$PATH" type_if=tap vif="$tap" XBR_BRIDGE=xenbr0 hotplug add "$be" >"$WORK/hp" 2>&1 &&
        fail "a second add of the same tap succeeded"
    grep -q "^$be/hotplug-error xbrctl add-port xenbr0 $tap: .* $be/hotplug-status error$" "$WORK/xs-writes" ||
        fail "the failed add wrote no hotplug-error: $(cat "$WORK/xs-writes")"
    PATH="$bin:$PATH" type_if=tap vif="$tap" XBR_BRIDGE=xenbr0 hotplug remove "$be" >"$WORK/hp" 2>&1 ||
        fail "vif-xbr remove (tap)"
    wait_port "$tap" 0 || fail "the tap is still a port after remove"
    # bridge=xenbr0.10:20: the emulated NIC in the vif's VLANs; a bad one refused.
    PATH="$bin:$PATH" type_if=tap vif="$tap" XBR_BRIDGE=xenbr0.10:20 hotplug add "$be" >"$WORK/hp" 2>&1 ||
        { cat "$WORK/hp" >&2; fail "vif-xbr add (tap, xenbr0.10:20)"; }
    [ "$(ctl -j vlan show xenbr0 | jq -r --arg p "$tap" '.[] | select(.port == $p) | "\(.mode) \(.pvid) \(.tagged)"')" = "trunk 10 20" ] ||
        fail "tap on xenbr0.10:20: $(ctl vlan show xenbr0)"
    PATH="$bin:$PATH" type_if=tap vif="$tap" XBR_BRIDGE=xenbr0.10:20 hotplug remove "$be" >"$WORK/hp" 2>&1 ||
        fail "vif-xbr remove (tap, xenbr0.10:20)"
    wait_port "$tap" 0 || fail "the tap is still a port after remove"
    : >"$WORK/xs-writes"
    PATH="$bin:$PATH" type_if=tap vif="$tap" XBR_BRIDGE=xenbr0.0x hotplug add "$be" >"$WORK/hp" 2>&1 &&
        fail "add with bridge=xenbr0.0x succeeded"
    grep -q "^$be/hotplug-error bridge 'xenbr0.0x' is not NAME" "$WORK/xs-writes" ||
        fail "bad bridge= wrote no hotplug-error: $(cat "$WORK/xs-writes")"
    PATH="$bin:$PATH" type_if=tap vif="$tap" XBR_BRIDGE=xenbr0.0 hotplug add "$be" >"$WORK/hp" 2>&1 &&
        fail "add with bridge=xenbr0.0 succeeded"
    wait_port "$tap" 0 || fail "the tap stayed a port after a refused VLAN"
    ok "type_if=tap with bridge=xenbr0.10:20: trunk 20 native 10; malformed bridge= and VID 0 refused"
    : >"$WORK/xs-writes"
    PATH="$bin:$PATH" hotplug online "$be" >"$WORK/hp" 2>&1 && fail "online of a vif xbrd does not know succeeded"
    grep -q "^$be/hotplug-error xbrd cannot serve $be: .* $be/hotplug-status error$" "$WORK/xs-writes" ||
        fail "online's failure wrote no hotplug-error: $(cat "$WORK/xs-writes")"
    ok "a failed add or online reaches the toolstack as hotplug-error; remove takes the tap off"
    # online of a PV vif: what would refuse it at connect fails the hotplug
    # now, with the reason (xl create prints it), before the guest boots.
    local d reason
    for d in 1 2 3 4; do
        case $d in
        1) attach 1 xenbr0 ;;
        2) attach 2 xenbr9; reason="bridge xenbr9 does not exist" ;;
        3) attach 3 xenbr0.4095; reason="bridge refused: .*4095" ;;
        4) attach 4 xenbr0; nf --domid 4 backend-set ip 10.0.0.300 >/dev/null || fail "backend-set ip" ;;
        esac
        : >"$WORK/xs-writes"
        be=/local/domain/0/backend/vif/$d/0
        if [ $d = 1 ]; then
            PATH="$bin:$PATH" hotplug online "$be" >"$WORK/hp" 2>&1 ||
                { cat "$WORK/hp" >&2; fail "online of a good vif failed"; }
            grep -qx "$be/hotplug-status connected" "$WORK/xs-writes" ||
                fail "online wrote no hotplug-status connected: $(cat "$WORK/xs-writes")"
            continue
        fi
        [ $d = 4 ] && reason="ip refused: .*10.0.0.300"
        PATH="$bin:$PATH" hotplug online "$be" >"$WORK/hp" 2>&1 && fail "online of dom$d's vif succeeded"
        grep -q "^$be/hotplug-error xbrd cannot serve $be: xbrctl: $reason.* $be/hotplug-status error$" "$WORK/xs-writes" ||
            fail "dom$d: hotplug-error is not '$reason': $(cat "$WORK/xs-writes")"
    done
    ok "online refuses a missing bridge, a bad VLAN and a bad ip= with the reason; a good vif is connected"
}

# rate= (backend key "BYTES,USEC", as libxl writes it): the guest's TX held
# to the configured rate (Linux netback's credit scheduler) within 10% over
# 5 s, and a change of the key applied to the connected vif at once.
rx_bytes_of() { ctl -j stats xenbr0 | jq -r --arg p "$1" '.ports[] | select(.name == $p) | .stats.rx_bytes'; }
rate_window() { # PORT SECONDS: bytes/s received from PORT over SECONDS
    local a b
    a=$(rx_bytes_of "$1")
    sleep "$2"
    b=$(rx_bytes_of "$1")
    echo $(((b - a) / $2))
}
t_rate() {
    start_sim
    start_xbrd
    ctl add-br xenbr0 >/dev/null
    attach 1
    attach 2
    nf --domid 1 backend-set rate 125000,10000 >/dev/null || fail "backend-set rate" # 12.5 MB/s
    "$NETFRONT" --domid 2 connect >/dev/null 2>&1 &
    BG+=($!)
    wait_port vif2.0 1 || fail "vif2.0 not a port"
    "$NETFRONT" --domid 1 send --count 4000000000 --size 1000 --dst "$(mac_of 2)" >"$WORK/send.1" 2>&1 &
    BG+=($!)
    wait_port vif1.0 1 || fail "vif1.0 not a port"
    [ "$(port_json vif1.0 .rate_bytes)/$(port_json vif1.0 .rate_usec)" = 125000/10000 ] ||
        fail "vif1.0 shows rate $(port_json vif1.0 .rate_bytes)/$(port_json vif1.0 .rate_usec)"
    sleep 1
    local r
    r=$(rate_window vif1.0 5)
    [ "$r" -ge 11250000 ] && [ "$r" -le 13750000 ] || fail "rate 12.5 MB/s: measured $r B/s over 5 s"
    [ "$(port_json vif1.0 .netback_stats.from_guest_rate_limited)" -gt 0 ] || fail "never rate-limited"
    ok "rate=125000,10000: guest TX at $r B/s over 5 s (12.5 MB/s +-10%)"
    nf --domid 1 backend-set rate 50000,10000 >/dev/null || fail "backend-set rate (change)" # 5 MB/s
    sleep 1
    r=$(rate_window vif1.0 3)
    [ "$r" -ge 4500000 ] && [ "$r" -le 5500000 ] || fail "rate changed to 5 MB/s: measured $r B/s"
    ok "rate changed to 50000,10000 on the connected vif: $r B/s (5 MB/s +-10%)"
    grep -q "vif1.0: rate 50000 bytes per 10000 us" "$WORK/xbrd.log" || fail "the change is not logged"
}

# ip= anti-spoofing (the backend key, as vif-bridge applies it with
# iptables): a guest sends IPv4 only from its addresses and ARPs only for
# them; everything else is dropped and counted by reason. The peer is a
# kernel's IPv4 stack in a namespace.
# bridge=xenbr0.10 / .20 (vif-openvswitch's syntax): each vif lands in its
# VLAN from its first frame. dom1 and dom3 in VLAN 10, dom2 in VLAN 20 with
# the same IP as dom3: dom1's ARP and pings reach dom3 only. dom4 on
# xenbr0.10:20:30 is a trunk of 20 and 30 with 10 untagged.
t_vlan() {
    start_sim
    start_xbrd
    ctl add-br xenbr0 >/dev/null
    attach 1 xenbr0.10
    attach 2 xenbr0.20
    attach 3 xenbr0.10
    attach 4 xenbr0.10:20:30
    "$NETFRONT" --domid 3 --ip 10.77.0.3 echo --hold 12 >"$WORK/echo3" 2>&1 &
    local e3=$!
    "$NETFRONT" --domid 2 --ip 10.77.0.3 echo --hold 12 >"$WORK/echo2" 2>&1 &
    local e2=$!
    "$NETFRONT" --domid 4 --ip 10.77.0.4 echo --hold 12 >"$WORK/echo4" 2>&1 &
    local e4=$!
    BG+=("$e3" "$e2" "$e4")
    for d in 2 3 4; do wait_port "vif$d.0" 1 || fail "vif$d.0 not a port"; done
    local vj
    vj=$(ctl -j vlan show xenbr0)
    [ "$(jq -r '.[] | select(.port == "vif2.0") | "\(.mode) \(.pvid)"' <<<"$vj")" = "access 20" ] &&
        [ "$(jq -r '.[] | select(.port == "vif3.0") | "\(.mode) \(.pvid)"' <<<"$vj")" = "access 10" ] &&
        [ "$(jq -r '.[] | select(.port == "vif4.0") | "\(.mode) \(.pvid) \(.tagged)"' <<<"$vj")" = "trunk 10 20,30" ] ||
        fail "vlan show: $vj"
    [ "$(vif_json vif4.0 .vlan)" = "trunk 20,30 native 10" ] || fail "vif show vlan: $(vif_json vif4.0 .vlan)"
    ok "bridge=xenbr0.10 / .20 / .10:20:30: access 10, access 20, trunk 20,30 native 10"
    wait_forwarding
    nf --domid 1 --ip 10.77.0.1 ping --target 10.77.0.3 --count 3 --wait 10000 >"$WORK/ping" 2>&1 ||
        { cat "$WORK/ping" >&2; fail "dom1 (VLAN 10) -> dom3 (VLAN 10) ping"; }
    nf --domid 1 --ip 10.77.0.1 ping --target 10.77.0.4 --count 3 --wait 10000 >"$WORK/ping4" 2>&1 ||
        { cat "$WORK/ping4" >&2; fail "dom1 (VLAN 10) -> dom4 (native 10) ping"; }
    wait "$e3" "$e2" "$e4" 2>/dev/null || true
    local a2 a3
    a3=$(grep -o 'answered [0-9]*' "$WORK/echo3" | awk '{print $2}')
    a2=$(grep -o 'answered [0-9]*' "$WORK/echo2" | awk '{print $2}')
    [ "${a3:-0}" -ge 3 ] || fail "dom3 answered ${a3:-none}: $(cat "$WORK/echo3")"
    [ "${a2:-x}" = 0 ] || fail "dom2 (VLAN 20) answered ${a2:-none}: VLAN 10 leaked: $(cat "$WORK/echo2")"
    ok "dom1 reaches dom3 and dom4 in VLAN 10 (dom3 answered $a3), dom2 in VLAN 20 saw nothing of it"
}

t_ip_filter() {
    start_sim
    start_xbrd
    ctl add-br xenbr0 >/dev/null
    ip netns add "$NS"
    ip link add "${NS}h" type veth peer name eth0 netns "$NS"
    ip link set "${NS}h" up
    ip -n "$NS" addr add 10.77.0.1/24 dev eth0
    ip -n "$NS" link set eth0 up
    ctl add-port xenbr0 "${NS}h" >/dev/null
    attach 1
    nf --domid 1 backend-set ip 10.77.0.2 >/dev/null || fail "backend-set ip"
    wait_forwarding
    nf --domid 1 --ip 10.77.0.2 ping --target 10.77.0.1 --count 3 --wait 10000 >"$WORK/ping" 2>&1 ||
        { cat "$WORK/ping" >&2; fail "a guest pinging from its own ip= address"; }
    ok "ip=10.77.0.2: the guest's own ARP and ICMP pass"
    # dom3 claims 10.77.0.3 but was given 10.77.0.9: its ARP replies stop.
    attach 3
    nf --domid 3 backend-set ip 10.77.0.9 >/dev/null || fail "backend-set ip"
    "$NETFRONT" --domid 3 --ip 10.77.0.3 echo --hold 8 >"$WORK/echo3" 2>&1 &
    BG+=($!)
    wait_port vif3.0 1 || fail "vif3.0 not a port"
    ip netns exec "$NS" ping -c 2 -W 1 10.77.0.3 >/dev/null 2>&1 && fail "a spoofed ARP reply got through"
    local n
    n=$(port_json vif3.0 .netback_stats.from_guest_arp_spoofed)
    [ "${n:-0}" -ge 1 ] || fail "spoofed ARP replies not counted ($n)"
    [ "$(port_json vif3.0 .antispoof)" = true ] || fail "ip= did not turn MAC anti-spoofing on"
    ok "ARP for an address not in ip=: dropped, counted ($n); MAC anti-spoofing on with ip="
    # dom4 sends TCP/IPv4 test frames from 10.0.0.1 with ip=10.0.0.7: dropped.
    attach 2
    attach 4
    nf --domid 4 backend-set ip 10.0.0.7 >/dev/null || fail "backend-set ip"
    "$NETFRONT" --domid 2 recv --count 1 --wait 3000 --from "$(mac_of 4)" >"$WORK/recv.ip" 2>&1 &
    local rpid=$!
    wait_port vif2.0 1 || fail "vif2.0 not a port"
    nf --domid 4 send --count 1000 --size 100 --tcp --dst "$(mac_of 2)" --interval-us 3000 \
        >"$WORK/send.4" 2>&1 &
    local spid=$!
    for _ in $(seq 50); do
        n=$(port_json vif4.0 .netback_stats.from_guest_ip_spoofed 2>/dev/null || echo 0)
        [ "${n:-0}" -ge 20 ] 2>/dev/null && break
        sleep 0.1
    done
    [ "${n:-0}" -ge 20 ] 2>/dev/null || fail "IPv4 from a source not in ip=: counted '$n'"
    if wait "$rpid"; then fail "a frame with a spoofed IPv4 source arrived"; fi
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    ok "IPv4 from a source not in ip=: dropped and counted ($n), none delivered"
    # IPv6: from fd00::1 (the test frames' source) with ip= not naming it
    # (dom4 again), then from a guest whose ip= does.
    "$NETFRONT" --domid 2 recv --count 1 --wait 3000 --from "$(mac_of 4)" >"$WORK/recv.ip6" 2>&1 &
    rpid=$!
    nf --domid 4 send --count 1000 --size 120 --tcp6 --dst "$(mac_of 2)" --interval-us 3000 \
        >"$WORK/send.4" 2>&1 &
    spid=$!
    n=0
    for _ in $(seq 50); do
        n=$(port_json vif4.0 .netback_stats.from_guest_ip_spoofed 2>/dev/null || echo 0)
        [ "${n:-0}" -ge 20 ] 2>/dev/null && break
        sleep 0.1
    done
    [ "${n:-0}" -ge 20 ] 2>/dev/null || fail "IPv6 from a source not in ip=: counted '$n'"
    if wait "$rpid"; then fail "a frame with a spoofed IPv6 source arrived"; fi
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    attach 6
    nf --domid 6 backend-set ip "10.0.0.7 fd00::1" >/dev/null || fail "backend-set ip"
    local s
    s=$(exchange 6 2 50 120 --tcp6)
    [ "$(echo "$s" | summary_field ok)" = 50 ] || fail "IPv6 from the guest's own ip= address: $s"
    ok "IPv6: a source not in ip= dropped and counted ($n); the guest's own (ip=\"10.0.0.7 fd00::1\") delivered"
    # A bad ip= refuses the vif with the reason, as vif-bridge's iptables would.
    attach 5
    nf --domid 5 backend-set ip 10.0.0.300 >/dev/null || fail "backend-set ip"
    "$NETFRONT" --domid 5 --timeout 3000 connect --hold 0 >/dev/null 2>&1 || true
    for _ in $(seq 30); do
        grep -q "vif5.0.*ip= address '10.0.0.300' is not an IPv4 or IPv6 address" "$WORK/xbrd.log" && break
        sleep 0.1
    done
    grep -q "vif5.0.*ip= address '10.0.0.300' is not an IPv4 or IPv6 address" "$WORK/xbrd.log" ||
        fail "a bad ip= was not refused with its reason"
    ok "a bad ip= refuses the vif with the reason"
}

case "${1:-}" in
ping) t_ping ;;
ip-filter) t_ip_filter ;;
vlan) t_vlan ;;
rate) t_rate ;;
hotplug) t_hotplug ;;
vif-keys) t_vif_keys ;;
antispoof-config) t_antispoof_config ;;
sizes) t_sizes ;;
capture) t_capture ;;
cycles) t_cycles ;;
destroy) t_destroy ;;
restart) t_restart ;;
bridge-wait) t_bridge_wait ;;
multiqueue) t_multiqueue ;;
csum-burst) t_csum_burst ;;
gso-segment) t_gso_segment ;;
ipv6) t_ipv6 ;;
gso-uplink) t_gso_uplink ;;
rx-queue) t_rx_queue ;;
attack) t_attack "${2:?attack name}" ;;
workers-default) t_workers_default ;;
ctrl-ring) t_ctrl_ring ;;
ctrl-attack) t_ctrl_attack ;;
mcast) t_mcast ;;
xs) t_xs "${2:?xenstore case}" ;;
xs-write-loop) t_xs_write_loop ;;
*) echo "usage: $0 TEST" >&2; exit 2 ;;
esac
