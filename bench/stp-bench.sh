#!/usr/bin/env bash
# stp-bench.sh [--quick] [--json FILE] — spanning-tree benchmark of four
# switches in one run: xbr (RSTP), the Linux kernel bridge (STP) with default
# timers ("kernel") and with minimum timers ("kernel-fast": forward delay 2 s,
# the kernel's minimum, hello 1 s, max age 6 s), and Open vSwitch RSTP
# (userspace "netdev" datapath, private ovsdb-server/ovs-vswitchd).
#
# (a) block: the switch has port va forwarding to a hub (a kernel bridge with
#     STP off in its own namespace: it floods everything, BPDUs included);
#     port vb is wired to the same hub but its cable is unplugged (the hub
#     end is down). Host h1 on the hub sends 1000 tagged broadcasts/s
#     (3000 in all), host h2 on the hub counts them. At T0 the hub end of vb
#     is brought up, closing the loop.
#       block_ms: T0 -> first poll (every ~20 ms) showing exactly one of va/vb
#                 forwarding and the other in its final blocked state
#                 (xbr/OVS: alternate|backup discarding; kernel: blocking).
#       leaked:   copies of the tagged broadcasts counted by h2 beyond the
#                 one copy each that was sent, in a window from 0.5 s before
#                 T0 to ~4 s after it (negative: frames were lost instead).
# (b) reconverge: two instances A (priority 4096, root) and B of the same
#     switch joined by two veth links (a1-b1, a2-b2), host h1 on A, h2 on B.
#     h1 sends 1000 tagged broadcasts/s, h2 captures them (tcpdump, kernel
#     timestamps). Once the tree is steady (A: both links forwarding; B: one
#     link forwarding, the other alternate/blocking) the A end of B's
#     forwarding link is set down at Tc.
#       reconverge_ms: Tc -> the first frame received after the largest gap
#                      in the stream that follows Tc.
#     Kernel default timers: the bridges are brought up with forward delay
#     2 s (to avoid a 30 s start) and set to 15 s once converged, before the
#     cut: the measurement itself uses the default 15 s.
#
# Medians of 3 runs (1 with --quick), with min-max. The kernel-default runs
# (dominated by its 30 s listening+learning) go in the background, in
# parallel with the others, in namespaces of their own.
# Everything lives in namespaces named sb<pid>..., deleted on exit; daemons
# are stopped by pid; every load is bounded in count and time.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
XBRD=${XBRD:-$BUILD/bridge/xbrd}
XBRCTL=${XBRCTL:-$BUILD/ctl/xbrctl}
FRAMETOOL=${FRAMETOOL:-$BUILD/tests/tools/xbr-frametool}

RUNS=3
JSON=""
while [ $# -gt 0 ]; do
    case $1 in
    --quick) RUNS=1 ;;
    --json) JSON=${2:?--json needs a file}; shift ;;
    -h | --help) sed -n '2,35p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--quick] [--json FILE]" >&2; exit 2 ;;
    esac
    shift
done

[ "$(id -u)" = 0 ] || { echo "stp-bench: needs root (network namespaces)" >&2; exit 1; }
for b in "$XBRD" "$XBRCTL" "$FRAMETOOL"; do
    [ -x "$b" ] || { echo "stp-bench: $b missing (ninja -C build)" >&2; exit 1; }
done
for t in jq tcpdump; do
    command -v $t >/dev/null || { echo "stp-bench: $t missing" >&2; exit 1; }
done
if ! command -v ovs-vswitchd >/dev/null || ! command -v ovsdb-server >/dev/null; then
    echo "stp-bench: installing openvswitch-switch" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q openvswitch-switch >&2
    # The package starts the system's daemons; this benchmark uses its own.
fi

PFX="sb$$"
WORK=$(mktemp -d /tmp/stp-bench.XXXXXX)
RATE=1000
T_START=${EPOCHREALTIME/./}

now() { echo "${EPOCHREALTIME/./}"; } # microseconds
log() { echo "[$(( ($(now) - T_START) / 1000000 ))s] $*" >&2; }

# ---- processes and namespaces ---------------------------------------------
# Every daemon's pid goes to $WORK/pids.TAG (TAG: one run); stopped in
# reverse order by pid: TERM, then KILL after 3 s.
reg_pid() { echo "$2" >>"$WORK/pids.$1"; }
stop_pids() { # FILE
    local pid
    [ -s "$1" ] || return 0
    for pid in $(tac "$1"); do
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -f "$1"
}
del_ns() { # PREFIX
    local n
    for n in $(ip netns list | awk '{print $1}' | grep "^$1" || true); do
        ip netns del "$n" 2>/dev/null || true
    done
}
teardown() { # TAG
    stop_pids "$WORK/pids.$1"
    del_ns "$PFX$1"
}
BG_PIDS=()
cleanup() {
    local rc=$? f p
    set +e
    for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    for f in "$WORK"/pids.*; do [ -e "$f" ] && stop_pids "$f"; done
    del_ns "$PFX"
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ns_add() { # NAME
    ip netns add "$1"
    ip -n "$1" link set lo up
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# ---- xbr ---------------------------------------------------------------------
xbr_start() { # TAG NS SOCK
    ip netns exec "$2" "$XBRD" --socket "$3" >"$3.log" 2>&1 &
    local pid=$!
    reg_pid "$1" "$pid"
    for _ in $(seq 100); do
        ip netns exec "$2" "$XBRCTL" --socket "$3" version >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$3.log" >&2; return 1; }
        sleep 0.05
    done
    echo "xbrd did not answer on $3" >&2
    return 1
}
xcn() { local ns=$1 sock=$2; shift 2; ip netns exec "$ns" "$XBRCTL" --socket "$sock" "$@"; }
# xbr_states NS SOCK PORT...: "role:state" per port, lower case.
xbr_states() { # NS SOCK BRIDGE PORT...
    local ns=$1 sock=$2 br=$3 j p out=""
    shift 3
    j=$(xcn "$ns" "$sock" -j stp show "$br")
    for p in "$@"; do
        out+="$(jq -r --arg p "$p" '.ports[] | select(.name == $p) | "\(.role):\(.state)"' <<<"$j") "
    done
    echo "${out% }"
}

# ---- kernel bridge -------------------------------------------------------------
kstate_name() { case $1 in 0) echo disabled ;; 1) echo listening ;; 2) echo learning ;; 3) echo forwarding ;; 4) echo blocking ;; *) echo "?$1" ;; esac; }
k_states() { # NS PORT...
    local ns=$1 p out=""
    shift
    for p in "$@"; do out+="$(kstate_name "$(ip netns exec "$ns" cat "/sys/class/net/$p/brport/state")") "; done
    echo "${out% }"
}
# k_bridge NS FAST PRIO: br0 with STP on. Always starts with forward delay
# 2 s (ports forward after 4 s); k_timers sets the timers to measure with.
k_bridge() {
    local hello=200 maxage=2000
    [ "$2" = 1 ] && hello=100 maxage=600
    ip -n "$1" link add name br0 type bridge stp_state 1 priority "$3" \
        forward_delay 200 hello_time "$hello" max_age "$maxage"
    ip -n "$1" link set br0 up
}
k_timers() { # NS FAST
    [ "$2" = 1 ] || ip -n "$1" link set br0 type bridge forward_delay 1500
}
k_port() { ip -n "$1" link set "$2" master br0; ip -n "$1" link set "$2" up; }

# ---- Open vSwitch ----------------------------------------------------------------
OVSDIR=""
vs() { ovs-vsctl --db="unix:$OVSDIR/db.sock" --timeout=10 "$@"; }
oa() { ovs-appctl -t "$OVSDIR/vswitchd.ctl" --timeout=10 "$@"; }
ovs_start() { # TAG NS
    OVSDIR="$WORK/ovs.$1"
    mkdir -p "$OVSDIR"
    export OVS_RUNDIR="$OVSDIR" OVS_DBDIR="$OVSDIR" OVS_LOGDIR="$OVSDIR" OVS_SYSCONFDIR="$OVSDIR"
    ovsdb-tool create "$OVSDIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ip netns exec "$2" ovsdb-server "$OVSDIR/conf.db" --remote="punix:$OVSDIR/db.sock" \
        --pidfile="$OVSDIR/ovsdb.pid" --unixctl="$OVSDIR/ovsdb.ctl" --detach --no-chdir \
        --log-file="$OVSDIR/ovsdb.log" >/dev/null 2>>"$OVSDIR/stderr"
    reg_pid "$1" "$(cat "$OVSDIR/ovsdb.pid")"
    vs --no-wait init
    ip netns exec "$2" ovs-vswitchd "unix:$OVSDIR/db.sock" \
        --pidfile="$OVSDIR/vswitchd.pid" --unixctl="$OVSDIR/vswitchd.ctl" --detach --no-chdir \
        --log-file="$OVSDIR/vswitchd.log" >/dev/null 2>>"$OVSDIR/stderr"
    reg_pid "$1" "$(cat "$OVSDIR/vswitchd.pid")"
}
ovs_states() { # BRIDGE PORT...
    local br=$1 s p out=""
    shift
    s=$(oa rstp/show "$br")
    for p in "$@"; do
        out+="$(awk -v p="$p" '$1 == p { print tolower($2) ":" tolower($3) }' <<<"$s") "
    done
    echo "${out% }"
}

# one_blocked "S1 S2": exactly one forwarding, the other in its final blocked state.
is_fwd() { [[ $1 == *forwarding ]]; }
is_blk() { [[ $1 == blocking || $1 == alternate:discarding || $1 == backup:discarding ]]; }
one_blocked() {
    local a=${1% *} b=${1#* }
    { is_fwd "$a" && is_blk "$b"; } || { is_blk "$a" && is_fwd "$b"; }
}

# ---- (a) time to block a new loop, frames leaked ------------------------------------
# block_run TYPE RUN: prints "block_ms leaked" (NA when not measured).
block_run() {
    local type=$1 tag="$1$2a" sw hub h1 h2 sock="" get st t0 t blk=NA spid cpid sent cnt
    tag=${tag//-/}
    sw="$PFX${tag}sw" hub="$PFX${tag}hub" h1="$PFX${tag}h1" h2="$PFX${tag}h2"
    for n in "$sw" "$hub" "$h1" "$h2"; do ns_add "$n"; done
    ip -n "$hub" link add hub type bridge stp_state 0 forward_delay 0
    ip -n "$hub" link set hub up
    for x in a b; do
        ip link add "v$x" netns "$sw" type veth peer name "h$x" netns "$hub"
        ip -n "$hub" link set "h$x" master hub
    done
    ip -n "$hub" link set ha up # hb stays down: vb's cable is unplugged
    for i in 1 2; do
        ip link add "hh$i" netns "$hub" type veth peer name eth0 netns "$PFX${tag}h$i"
        ip -n "$hub" link set "hh$i" master hub
        ip -n "$hub" link set "hh$i" up
        ip -n "$PFX${tag}h$i" link set eth0 up
    done
    case $type in
    xbr)
        sock="$WORK/$tag.sock"
        xbr_start "$tag" "$sw" "$sock"
        xcn "$sw" "$sock" add-br br0 >/dev/null
        # Negative control of the leak counter (debugging): xbr without STP.
        [ -z "${STP_BENCH_XBR_NOSTP:-}" ] || xcn "$sw" "$sock" stp set br0 enabled no >/dev/null
        ip -n "$sw" link set va up
        ip -n "$sw" link set vb up
        xcn "$sw" "$sock" add-port br0 va >/dev/null
        xcn "$sw" "$sock" add-port br0 vb >/dev/null
        get() { xbr_states "$sw" "$sock" br0 va vb; }
        ;;
    kernel | kernel-fast)
        local fast=0
        [ "$type" = kernel-fast ] && fast=1
        k_bridge "$sw" $fast 32768
        k_port "$sw" va
        k_port "$sw" vb
        get() { k_states "$sw" va vb; }
        ;;
    ovs)
        ovs_start "$tag" "$sw"
        ip -n "$sw" link set va up
        ip -n "$sw" link set vb up
        vs add-br br0 -- set bridge br0 datapath_type=netdev rstp_enable=true \
            other_config:rstp-address=02:00:00:0f:0a:01
        vs add-port br0 va -- set port va other_config:rstp-port-num=1
        vs add-port br0 vb -- set port vb other_config:rstp-port-num=2
        get() { ovs_states br0 va vb; }
        ;;
    esac
    # Wait for va forwarding (vb: no carrier).
    local dl=$(($(now) + 45000000))
    while [ "$(now)" -lt "$dl" ]; do
        st=$(get)
        is_fwd "${st% *}" && break
        sleep 0.1
    done
    is_fwd "${st% *}" || { echo "$type: va not forwarding after 45 s: $st" >&2; teardown "$tag"; echo "RESULT NA NA"; return; }
    [ "$type" = kernel ] && k_timers "$sw" 0
    sleep 0.5
    ip netns exec "$h2" "$FRAMETOOL" count eth0 --tag 77 --seconds 4.5 >"$WORK/$tag.count" 2>&1 &
    cpid=$!
    for _ in $(seq 100); do grep -q ready "$WORK/$tag.count" && break; sleep 0.02; done
    ip netns exec "$h1" "$FRAMETOOL" send eth0 --dst ff:ff:ff:ff:ff:ff --tag 77 \
        --rate $RATE --count $((3 * RATE)) --seconds 4 >"$WORK/$tag.send" 2>&1 &
    spid=$!
    sleep 0.5
    t0=$(now)
    ip -n "$hub" link set hb up # the loop is closed
    while :; do
        st=$(get)
        t=$(now)
        if one_blocked "$st"; then blk=$(((t - t0) / 1000)); break; fi
        [ $((t - t0)) -lt 15000000 ] || { echo "$type: not blocked after 15 s: $st" >&2; break; }
        sleep 0.02
    done
    wait "$spid" || true
    wait "$cpid" || true
    ip -n "$hub" link set hb down # ends a storm, if any
    sent=$(sed -n 's/^sent //p' "$WORK/$tag.send")
    cnt=$(sed -n 's/^count //p' "$WORK/$tag.count")
    log "$type run $2 (a): loop closed; final states va/vb: $st; block_ms $blk; sent ${sent:-?} counted ${cnt:-?}"
    teardown "$tag"
    if [ -n "$sent" ] && [ -n "$cnt" ]; then echo "RESULT $blk $((cnt - sent))"; else echo "RESULT $blk NA"; fi
}

# ---- (b) reconvergence after a link cut ------------------------------------------------
reconv_run() {
    local type=$1 tag="$1$2b" na nb h1 h2 sa="" sb="" st t0 tc spid tpid n=0 active res=NA stream
    tag=${tag//-/}
    na="$PFX${tag}A" nb="$PFX${tag}B" h1="$PFX${tag}h1" h2="$PFX${tag}h2"
    stream=15
    [ "$type" = kernel ] && stream=45
    for x in "$h1" "$h2"; do ns_add "$x"; done
    if [ "$type" = ovs ]; then
        ns_add "$na"
        nb=$na # one vswitchd, two bridges
    else
        ns_add "$na"
        ns_add "$nb"
    fi
    for l in 1 2; do ip link add "a$l" netns "$na" type veth peer name "b$l" netns "$nb"; done
    ip link add ah netns "$na" type veth peer name eth0 netns "$h1"
    ip link add bh netns "$nb" type veth peer name eth0 netns "$h2"
    ip -n "$h1" link set eth0 up
    ip -n "$h2" link set eth0 up
    case $type in
    xbr)
        sa="$WORK/$tag.A.sock" sb="$WORK/$tag.B.sock"
        xbr_start "$tag" "$na" "$sa"
        xbr_start "$tag" "$nb" "$sb"
        for s in A B; do
            local ns=$na sock=$sa p=a
            [ $s = B ] && ns=$nb sock=$sb p=b
            # Distinct names: xbr derives the bridge MAC from /etc/machine-id
            # and the bridge name, and namespaces share the machine-id.
            xcn "$ns" "$sock" add-br "br$s" >/dev/null
            [ $s = A ] && xcn "$ns" "$sock" stp set "br$s" priority 4096 >/dev/null
            for i in 1 2 h; do ip -n "$ns" link set "$p$i" up; xcn "$ns" "$sock" add-port "br$s" "$p$i" >/dev/null; done
            xcn "$ns" "$sock" port set "br$s" "${p}h" admin-edge yes >/dev/null
        done
        get() { echo "$(xbr_states "$na" "$sa" brA a1 a2) $(xbr_states "$nb" "$sb" brB b1 b2)"; }
        ;;
    kernel | kernel-fast)
        local fast=0
        [ "$type" = kernel-fast ] && fast=1
        k_bridge "$na" $fast 4096
        k_bridge "$nb" $fast 32768
        for i in 1 2 h; do k_port "$na" "a$i"; k_port "$nb" "b$i"; done
        get() { echo "$(k_states "$na" a1 a2) $(k_states "$nb" b1 b2)"; }
        ;;
    ovs)
        ovs_start "$tag" "$na"
        for i in 1 2 h; do ip -n "$na" link set "a$i" up; ip -n "$na" link set "b$i" up; done
        vs add-br brA -- set bridge brA datapath_type=netdev rstp_enable=true \
            other_config:rstp-priority=4096 other_config:rstp-address=02:00:00:0f:0b:01
        vs add-br brB -- set bridge brB datapath_type=netdev rstp_enable=true \
            other_config:rstp-address=02:00:00:0f:0b:02
        for s in a b; do
            local br=brA
            [ $s = b ] && br=brB
            vs add-port $br ${s}1 -- set port ${s}1 other_config:rstp-port-num=1
            vs add-port $br ${s}2 -- set port ${s}2 other_config:rstp-port-num=2
            vs add-port $br ${s}h -- set port ${s}h other_config:rstp-port-num=3 \
                other_config:rstp-port-admin-edge=true
        done
        get() { echo "$(ovs_states brA a1 a2) $(ovs_states brB b1 b2)"; }
        ;;
    esac
    # Steady: A's links both forwarding, B one forwarding and one blocked.
    local ok=0 dl=$(($(now) + 45000000))
    while [ "$(now)" -lt "$dl" ]; do
        st=$(get)
        read -r s1 s2 s3 s4 <<<"$st"
        [ -z "${STP_BENCH_DEBUG:-}" ] || echo "steady? $st" >&2
        if is_fwd "$s1" && is_fwd "$s2" && one_blocked "$s3 $s4"; then ok=1; break; fi
        sleep 0.1
    done
    [ $ok = 1 ] || { echo "$type: not steady after 45 s: $st" >&2; teardown "$tag"; echo "RESULT NA"; return; }
    if [ "$type" = kernel ]; then k_timers "$na" 0; k_timers "$nb" 0; sleep 3; fi # 15 s from now on
    active=1
    is_fwd "$s4" && active=2
    ip netns exec "$h2" tcpdump -i eth0 -tt -n -l -p --immediate-mode -B 4096 'ether proto 0x88b5' \
        >"$WORK/$tag.cap" 2>"$WORK/$tag.tcpdump" &
    tpid=$!
    reg_pid "$tag" "$tpid"
    for _ in $(seq 100); do grep -q listening "$WORK/$tag.tcpdump" && break; sleep 0.02; done
    ip netns exec "$h1" "$FRAMETOOL" send eth0 --dst ff:ff:ff:ff:ff:ff --tag 78 \
        --rate $RATE --count $((stream * RATE)) --seconds "$stream" >/dev/null 2>&1 &
    spid=$!
    reg_pid "$tag" "$spid"
    sleep 1
    n=$(wc -l <"$WORK/$tag.cap")
    [ "$n" -gt $((RATE / 2)) ] || echo "$type: only $n frames in the first second before the cut" >&2
    tc=$(now)
    ip -n "$na" link set "a$active" down # cut the active link
    # Until 0.5 s of frames after the cut, or the stream's end.
    local tcs="${tc:0:-6}.${tc: -6}"
    while kill -0 "$spid" 2>/dev/null; do
        n=$(awk -v t="$tcs" '$1 > t + 0.0 { n++ } END { print n + 0 }' "$WORK/$tag.cap")
        [ "$n" -ge $((RATE / 2 + 50)) ] && break
        sleep 0.1
    done
    st=$(get)
    sleep 0.1
    kill -TERM "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    kill -TERM "$tpid" 2>/dev/null || true
    wait "$tpid" 2>/dev/null || true
    # The largest gap that ends after the cut (it may start before it); reconverge = end of
    # that gap - Tc. A switch that fails over without a visible interruption (OVS moves to its
    # alternate port in a few ms) gets the first frame after the cut, not "not measured".
    res=$(awk -v t="$tcs" '
        $1 + 0 >= t - 0.2 { if (have && $1 > t && $1 - prev > gap) { gap = $1 - prev; end = $1 } prev = $1; have = 1 }
        END { if (end > 0 && end > t) printf "%d\n", (end - t) * 1000; else print "NA" }' "$WORK/$tag.cap")
    log "$type run $2 (b): cut link $active; after: $st; reconverge_ms $res"
    teardown "$tag"
    echo "RESULT $res"
}

# ---- driver -------------------------------------------------------------------
run_type() { # TYPE: RUNS x (a) and (b), results to $WORK/res.TYPE
    local type=$1 r a b
    for r in $(seq "$RUNS"); do
        a=$(block_run "$type" "$r" | sed -n 's/^RESULT //p')
        b=$(reconv_run "$type" "$r" | sed -n 's/^RESULT //p')
        [ -n "$a" ] || a="NA NA"
        [ -n "$b" ] || b=NA
        echo "$a $b" >>"$WORK/res.$type"
    done
}

TYPES=(xbr kernel kernel-fast ovs)
[ -n "${STP_BENCH_ONLY:-}" ] && read -r -a TYPES <<<"$STP_BENCH_ONLY" # debugging: a subset
log "stp-bench: $RUNS run(s) per switch (${TYPES[*]}); kernel (default timers) in the background"
for t in "${TYPES[@]}"; do
    [ "$t" = kernel ] || continue
    run_type kernel 2>"$WORK/bg.kernel.err" &
    BG_PIDS+=($!)
done
for t in "${TYPES[@]}"; do [ "$t" = kernel ] || run_type "$t"; done
if [ ${#BG_PIDS[@]} -gt 0 ]; then
    wait "${BG_PIDS[0]}" || true
    cat "$WORK/bg.kernel.err" >&2
fi
BG_PIDS=()

# ---- report ------------------------------------------------------------------------
# stat COLUMN TYPE: "median min max" over numeric values (NA if none).
stat() {
    local vals
    vals=$(awk -v c="$1" '$c ~ /^-?[0-9]+$/ { print $c }' "$WORK/res.$2" 2>/dev/null | sort -n)
    [ -n "$vals" ] || { echo "NA NA NA"; return; }
    awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2); print m, v[1], v[NR] }' <<<"$vals"
}
bad=0
printf '\n%-12s %-26s %-26s %-26s %s\n' switch "block_ms med (min-max)" "leaked med (min-max)" "reconverge_ms med (min-max)" runs
json="{\"runs\": $RUNS, \"rate_pps\": $RATE, \"switches\": {"
sep=""
for t in "${TYPES[@]}"; do
    read -r bm bl bh <<<"$(stat 1 "$t")"
    read -r lm ll lh <<<"$(stat 2 "$t")"
    read -r rm rl rh <<<"$(stat 3 "$t")"
    n=$(wc -l <"$WORK/res.$t" 2>/dev/null || echo 0)
    printf '%-12s %-26s %-26s %-26s %s\n' "$t" "$bm ($bl-$bh)" "$lm ($ll-$lh)" "$rm ($rl-$rh)" "$n"
    # Missing or absurd figures.
    if [ "$(grep -c NA "$WORK/res.$t" 2>/dev/null || true)" != 0 ] || [ "$n" != "$RUNS" ]; then
        echo "stp-bench: $t: a figure is missing: $(tr '\n' ';' <"$WORK/res.$t" 2>/dev/null)" >&2; bad=1
    fi
    if [ "$bm" != NA ] && { [ "$bh" -gt 60000 ] || [ "$bl" -lt 0 ]; }; then echo "stp-bench: $t: absurd block_ms" >&2; bad=1; fi
    if [ "$lm" != NA ] && [ "$ll" -lt -$((RATE / 10)) ]; then echo "stp-bench: $t: $ll frames lost closing the loop" >&2; bad=1; fi
    if [ "$rm" != NA ] && { [ "$rh" -gt 60000 ] || [ "$rl" -lt 0 ]; }; then echo "stp-bench: $t: absurd reconverge_ms" >&2; bad=1; fi
    if [ "$t" = xbr ] && [ "$bm" != NA ] && { [ "$bh" -gt 5000 ] || [ "$lh" -gt "$RATE" ]; }; then
        echo "stp-bench: xbr took $bh ms to block / leaked $lh frames" >&2; bad=1
    fi
    echo "SUMMARY stp switch $t block_ms $bm leaked $lm reconverge_ms $rm" >>"$WORK/summary"
    jr() { awk -v c="$1" '{ printf "%s%s", (NR > 1 ? ", " : ""), ($c ~ /^-?[0-9]+$/ ? $c : "null") }' "$WORK/res.$t" 2>/dev/null; }
    jv() { [ "$1" = NA ] && echo null || echo "$1"; }
    json+="$sep\"$t\": {\"block_ms\": {\"median\": $(jv "$bm"), \"min\": $(jv "$bl"), \"max\": $(jv "$bh"), \"runs\": [$(jr 1)]},"
    json+=" \"leaked\": {\"median\": $(jv "$lm"), \"min\": $(jv "$ll"), \"max\": $(jv "$lh"), \"runs\": [$(jr 2)]},"
    json+=" \"reconverge_ms\": {\"median\": $(jv "$rm"), \"min\": $(jv "$rl"), \"max\": $(jv "$rh"), \"runs\": [$(jr 3)]}}"
    sep=", "
done
json+="}, \"seconds\": $(( ($(now) - T_START) / 1000000 ))}"
echo
cat "$WORK/summary"
if [ -n "$JSON" ]; then jq . <<<"$json" >"$JSON"; fi
log "done"
exit $bad
