# Shared helpers for the network-namespace integration tests.
# Each test builds its own switch namespace and hosts, named with a prefix
# unique to the test run, and deletes them on exit, whatever happened.
set -euo pipefail

: "${XBRD:?XBRD must point at the xbrd binary}"
: "${XBRCTL:?XBRCTL must point at the xbrctl binary}"
: "${FRAMETOOL:?FRAMETOOL must point at xbr-frametool}"

if [ "$(id -u)" != 0 ]; then
    echo "FAIL: integration tests need root (network namespaces)" >&2
    exit 1
fi

P="xt$$"                     # namespace / interface prefix for this run
SW="${P}sw"                  # the namespace xbrd runs in
WORK=$(mktemp -d /tmp/xbr-test.XXXXXX)
SOCK="$WORK/xbrd.sock"
XBRD_PID=""
HOSTS=()

dump_logs() {
    if [ -s "$WORK/xbrd.log" ]; then
        echo "---- xbrd log (tail) ----" >&2
        tail -n 40 "$WORK/xbrd.log" >&2
    fi
}

fail() {
    echo "FAIL: $*" >&2
    dump_logs
    exit 1
}

ok() { echo "ok: $*"; }

cleanup() {
    local rc=$?
    if [ -n "$XBRD_PID" ] && kill -0 "$XBRD_PID" 2>/dev/null; then
        # The kernel fast path must never lose a frame between its socket
        # filter and its tc program, whatever the test did.
        local orphaned
        orphaned=$(xc -j fastpath show 2>/dev/null | jq -r '.orphaned // 0' 2>/dev/null || echo 0)
        if [ "${orphaned:-0}" != 0 ]; then
            echo "FAIL: the fast path lost $orphaned frames (verdicts no tc run took)" >&2
            rc=1
        fi
        kill -TERM "$XBRD_PID" 2>/dev/null || true
        local xrc=0
        wait "$XBRD_PID" 2>/dev/null || xrc=$?
        if [ "$xrc" != 0 ]; then
            echo "FAIL: xbrd exited $xrc on SIGTERM" >&2
            rc=1
        fi
    fi
    for h in "${HOSTS[@]}"; do ip netns del "$h" 2>/dev/null || true; done
    ip netns del "$SW" 2>/dev/null || true
    if [ "$rc" != 0 ]; then dump_logs; fi
    # Sanitizer reports go to the log; a clean exit code is not enough.
    if grep -q -E "ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:" "$WORK/xbrd.log" 2>/dev/null; then
        echo "FAIL: sanitizer report in xbrd's log" >&2
        grep -A 20 -E "Sanitizer|runtime error" "$WORK/xbrd.log" | head -60 >&2
        rc=1
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

in_sw() { ip netns exec "$SW" "$@"; }
in_h() { local i=$1; shift; ip netns exec "${P}h$i" "$@"; }
xc() { in_sw "$XBRCTL" --socket "$SOCK" "$@"; }

# make_switch_ns: the namespace that holds xbrd and the switch-side ends.
make_switch_ns() {
    ip netns add "$SW"
    in_sw ip link set lo up
}

# add_host I [NS PEER]: namespace ${P}hI with eth0 (10.123.0.I/24,
# fd00:123::I/64) wired to vI in the switch namespace (or to PEER in NS).
add_host() {
    local i=$1 ns="${P}h$1" sw=${2:-$SW} peer=${3:-v$1}
    ip netns add "$ns"
    HOSTS+=("$ns")
    ip link add "$peer" netns "$sw" type veth peer name eth0 netns "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "10.123.0.$i/24" dev eth0
    ip -n "$ns" addr add "fd00:123::$i/64" dev eth0 nodad
    ip -n "$ns" link set eth0 up
    ip -n "$sw" link set "$peer" up
}

# add_guest I NS PEER: add_host with receive checksum offload off on eth0,
# so that hI's kernel verifies every checksum it receives (a veth would
# otherwise mark frames as already checked).
add_guest() {
    add_host "$@"
    ip netns exec "${P}h$1" ethtool -K eth0 rx off >/dev/null
}

# tcp_check FROM TO TOADDR MIB: MIB MiB of random bytes over TCP from host
# FROM to host TO (socat), compared at the end; TO's kernel must have
# counted no checksum error (see add_guest).
tcp_check() {
    head -c $(($4 * 1048576)) /dev/urandom >"$WORK/tcp.blob"
    ip netns exec "${P}h$2" nstat -n >/dev/null 2>&1 || true
    ip netns exec "${P}h$2" timeout 20 socat -u TCP-LISTEN:5001,reuseaddr \
        "OPEN:$WORK/tcp.got,creat,trunc" &
    local lpid=$! bad
    sleep 0.3
    ip netns exec "${P}h$1" timeout 20 socat -u "OPEN:$WORK/tcp.blob" "TCP:$3:5001" ||
        fail "TCP h$1 -> h$2 failed"
    wait "$lpid" || fail "TCP receiver on h$2 failed"
    cmp -s "$WORK/tcp.blob" "$WORK/tcp.got" || fail "TCP h$1 -> h$2: the bytes differ"
    bad=$(ip netns exec "${P}h$2" nstat -az TcpInCsumErrors 2>/dev/null |
        awk '/TcpInCsumErrors/ {print $2}')
    [ "${bad:-0}" = 0 ] || fail "h$2 counted $bad TCP checksum errors"
}

host_mac() { in_h "$1" cat /sys/class/net/eth0/address; }

start_xbrd() {
    # Not through in_sw: a backgrounded function is a subshell, and $! would
    # be its pid rather than xbrd's. ip netns exec execs xbrd in place.
    ip netns exec "$SW" "$XBRD" --socket "$SOCK" ${XBRD_ARGS:-} "$@" >"$WORK/xbrd.log" 2>&1 &
    XBRD_PID=$!
    for _ in $(seq 100); do
        if xc version >/dev/null 2>&1; then return 0; fi
        kill -0 "$XBRD_PID" 2>/dev/null || fail "xbrd exited at start"
        sleep 0.05
    done
    fail "xbrd did not answer on $SOCK within 5 s"
}

# expect_fail REGEX CMD...: CMD must exit non-zero and say something
# matching REGEX on stderr.
expect_fail() {
    local re=$1; shift
    local out rc=0
    out=$("$@" 2>&1 >/dev/null) || rc=$?
    [ "$rc" != 0 ] || fail "'$*' succeeded but should have failed"
    echo "$out" | grep -q -E "$re" || fail "'$*' said '$out', expected /$re/"
    ok "refused: $* -> $out"
}

# count_start NAME I ARGS...: start counting test frames on host I's eth0 in
# the background; count_result NAME waits for it and sets COUNT (not in a
# $(...) subshell: only this shell can wait for its children).
count_start() {
    local name=$1 i=$2; shift 2
    in_h "$i" "$FRAMETOOL" count eth0 "$@" >"$WORK/count.$name" 2>&1 &
    eval "COUNT_PID_$name=$!"
    for _ in $(seq 100); do
        grep -q ready "$WORK/count.$name" 2>/dev/null && return 0
        sleep 0.02
    done
    fail "frame counter $name did not start"
}

count_result() {
    local name=$1 pid
    eval "pid=\$COUNT_PID_$name"
    wait "$pid" || fail "frame counter $name failed: $(cat "$WORK/count.$name")"
    COUNT=$(sed -n 's/^count //p' "$WORK/count.$name")
    [ -n "$COUNT" ] || fail "frame counter $name printed no count"
}

json_stat() { # json_stat BR PORT KEY
    xc -j stats "$1" "$2" | jq -r ".ports[0].stats.$3"
}

# settle BR PORT: wait (up to 10 s) until PORT's rx_packets stops moving, i.e.
# the daemon has drained what the senders left in its rings.
settle() {
    local last=-1 now
    for _ in $(seq 40); do
        now=$(json_stat "$1" "$2" rx_packets) || fail "stats of $2 unreadable"
        [ "$now" = "$last" ] && return 0
        last=$now
        sleep 0.25
    done
    fail "$2 still receiving after 10 s"
}

# wait_forwarding BR: every port of BR forwarding (spanning tree lets a new
# uplink forward once it has seen no BPDU for the edge delay, ~3 s).
wait_forwarding() {
    for _ in $(seq 100); do
        xc -j show "$1" | jq -e '.[0].ports | all(.stp_state == "forwarding")' >/dev/null && return 0
        sleep 0.1
    done
    fail "ports of $1 not forwarding after 10 s: $(xc -j show "$1" | jq -c '[.[0].ports[] | {name, stp_state}]')"
}
