#!/usr/bin/env bash
# Smoke test of bench/xbr-latency (root; meson test latency-smoke, suite
# integration). Two namespaces ${P}a/${P}b joined by a bare veth pair
# pa <-> pb (no switch), then, each phase checking its own result:
#   1. bad arguments: exit 2 and a message naming the argument
#   2. the reflector ignores garbage (wrong magic, short, replies, broadcast,
#      wrong version) and reflects a valid probe with only MACs + op changed
#   3. ping 2000 probes at 2000/s, 60 and 1514 bytes: recv == sent, lost 0,
#      0 < p50 <= p99 <= p99.9 <= max, the JSON agrees with the SUMMARY
#   4. hostile replies injected towards ping (sequence out of range, bad
#      send time, wrong kind/session/magic, short, a duplicate): all ignored
#      or counted as a duplicate, nothing else disturbed
#   5. no reflector: exit 1 and "timeout"
#   6. SIGINT stops ping early with a SUMMARY and exit 0; reflect --seconds
#      stops by itself; the long-running reflector's count adds up
# Every command is bounded (timeout, or the tool's own --seconds); the
# namespaces are removed on exit whatever happened.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAT=${XBR_LATENCY:-$ROOT/build/bench/xbr-latency}
[ -x "$LAT" ] || { echo "FAIL: $LAT: not an executable (set XBR_LATENCY)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "FAIL: latency-smoke needs root (network namespaces)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "FAIL: latency-smoke needs python3" >&2; exit 1; }

P="xl$$"
NA="${P}a" NB="${P}b"
WORK=$(mktemp -d /tmp/xbr-latency-smoke.XXXXXX)
BG=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for p in "${BG[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${BG[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del "$NA" 2>/dev/null || true
    ip netns del "$NB" 2>/dev/null || true
    # Sanitizer builds report on stderr; a clean exit code is not enough.
    if grep -l -E "ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:" "$WORK"/*.err \
        2>/dev/null; then
        echo "FAIL: sanitizer report (files above)" >&2
        grep -h -A 20 -E "Sanitizer|runtime error" "$WORK"/*.err | head -60 >&2
        rc=1
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
# Not for background jobs: a backgrounded function is a subshell, and $!
# would be its pid; `ip netns exec` execs the tool in place.
in_a() { ip netns exec "$NA" "$@"; }
in_b() { ip netns exec "$NB" "$@"; }

# sum_get FILE KEY: the value after KEY on FILE's "SUMMARY latency" line.
sum_get() {
    local v
    v=$(awk -v k="$2" '$1 == "SUMMARY" && $2 == "latency" {
            for (i = 3; i < NF; i += 2) if ($i == k) { print $(i + 1); exit } }' "$1")
    [ -n "$v" ] || fail "no '$2' in the SUMMARY of $1: $(cat "$1")"
    echo "$v"
}

# json_get FILE KEY: a top-level value of the JSON object in FILE.
json_get() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# wait_for FILE REGEX: up to 5 s for a line (a background tool saying ready).
wait_for() {
    for _ in $(seq 100); do
        grep -q -E "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    fail "no /$2/ in $1 within 5 s: $(cat "$1" "${1%.out}.err" 2>/dev/null)"
}

ip netns add "$NA"
ip netns add "$NB"
ip link add pa netns "$NA" type veth peer name pb netns "$NB"
ip -n "$NA" link set pa up
ip -n "$NB" link set pb up
MAC_A=$(in_a cat /sys/class/net/pa/address)
MAC_B=$(in_b cat /sys/class/net/pb/address)

# ---- 1. bad arguments ----
# usage_err REGEX ARGS...: in namespace a, xbr-latency ARGS must exit 2 and
# say something matching REGEX on stderr.
usage_err() {
    local re=$1 rc=0 out
    shift
    out=$(in_a timeout -k 2 10 "$LAT" "$@" 2>&1 >/dev/null) || rc=$?
    [ "$rc" = 2 ] || fail "'xbr-latency $*' exited $rc, want 2 (said: $out)"
    ! grep -q -E "Sanitizer|runtime error:" <<<"$out" || fail "sanitizer report: $out"
    grep -q -E -- "$re" <<<"$out" || fail "'xbr-latency $*' said '$out', want /$re/"
    ok "exit 2: xbr-latency $* -> $(head -n 1 <<<"$out")"
}
usage_err 'usage'
usage_err "unknown command 'frob'" frob --dev pa
usage_err 'ping needs --dst' ping --dev pa
usage_err 'needs --dev' ping --dst "$MAC_B"
usage_err 'needs --dev' reflect
usage_err '^xbr-latency: --dst zz: not a MAC' ping --dev pa --dst zz
usage_err '^xbr-latency: --dst ff:ff:ff:ff:ff:ff: want the unicast' \
    ping --dev pa --dst ff:ff:ff:ff:ff:ff
usage_err "^xbr-latency: --dst .*own MAC" ping --dev pa --dst "$MAC_A"
usage_err '^xbr-latency: --count 10000001: out of range, want 1..10000000' \
    ping --dev pa --dst "$MAC_B" --count 10000001
usage_err '^xbr-latency: --count 0: out of range, want 1..10000000' \
    ping --dev pa --dst "$MAC_B" --count 0
usage_err '^xbr-latency: --count 1e3: not a number' ping --dev pa --dst "$MAC_B" --count 1e3
usage_err '^xbr-latency: --size 59: out of range, want 60..1514' \
    ping --dev pa --dst "$MAC_B" --size 59
usage_err '^xbr-latency: --size 1515: out of range' ping --dev pa --dst "$MAC_B" --size 1515
usage_err '^xbr-latency: --rate 0: out of range' ping --dev pa --dst "$MAC_B" --rate 0
usage_err '^xbr-latency: --rate -5: not a number' ping --dev pa --dst "$MAC_B" --rate -5
usage_err '^xbr-latency: --warmup x: not a number' ping --dev pa --dst "$MAC_B" --warmup x
usage_err '^xbr-latency: --seconds 0:' ping --dev pa --dst "$MAC_B" --seconds 0
usage_err '^xbr-latency: --seconds abc:' reflect --dev pb --seconds abc
usage_err '^xbr-latency: --dev nosuch0: no such interface' ping --dev nosuch0 --dst "$MAC_B"
usage_err '^xbr-latency: --dev lo: not an Ethernet interface' reflect --dev lo
usage_err "^xbr-latency: --json $WORK/no/such/dir.json:" \
    ping --dev pa --dst "$MAC_B" --json "$WORK/no/such/dir.json"
usage_err "unrecognized option '--bogus'" ping --dev pa --dst "$MAC_B" --bogus 1
usage_err "unrecognized option '--dst'" reflect --dev pa --dst "$MAC_B"
usage_err "requires an argument" ping --dev pa --dst "$MAC_B" --rate
usage_err "unexpected argument 'extra'" ping --dev pa --dst "$MAC_B" extra

# ---- frames from outside: a small AF_PACKET helper ----
cat >"$WORK/frames.py" <<'EOF'
# frames.py garbage IF DSTMAC   -- send bad probes, then one good one, and
#                                   check its reflection
# frames.py hostile IF          -- capture one measured probe on IF, then
#                                   forge replies to its sender
import select, socket, struct, sys, time

ETH_P = 0x88B6
mode, ifname = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P))
s.bind((ifname, ETH_P))
me = s.getsockname()[4][:6]

def probe(dst, src, op=1, kind=1, session=0x5EC, seq=0, ts=None, magic=b"XBRL",
          ver=1, size=60, ethertype=ETH_P):
    ts = time.monotonic_ns() if ts is None else ts
    f = dst + src + struct.pack("!H", ethertype) + magic + bytes([ver, op, kind, 0])
    f += struct.pack("!IIQ", session, seq, ts)
    return f + bytes(max(0, size - len(f)))

def die(msg):
    print("frames.py: " + msg, file=sys.stderr)
    sys.exit(1)

if mode == "garbage":
    dst = bytes.fromhex(sys.argv[3].replace(":", ""))
    bad = [
        probe(dst, me, magic=b"XBRT"),                    # wrong magic
        probe(dst, me)[:20],                              # short
        probe(dst, me, op=2),                             # a reply, not a request
        probe(b"\xff" * 6, me),                           # broadcast, not for us
        probe(dst, me, ver=9),                            # unknown version
        dst + me + b"\x88\xb6" + bytes(range(46)),        # junk payload
    ]
    for f in bad:
        s.send(f)
    s.send(probe(dst, me, ethertype=0x88B5))  # another EtherType: never seen
    good = probe(dst, me, seq=77, size=100)
    s.send(good)
    deadline = time.monotonic() + 3
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            die("no reflection of the valid probe within 3 s")
        r = s.recv(4096)
        if r[19:20] != b"\x02":
            continue
        want = good[6:12] + good[0:6] + good[12:19] + b"\x02" + good[20:]
        if r != want:
            die("reflection differs:\n got %s\nwant %s" % (r.hex(), want.hex()))
        print("reflected-ok %d" % len(bad))
        break
elif mode == "hostile":
    print("ready", flush=True)
    deadline = time.monotonic() + 15
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            die("no measured probe seen within 15 s")
        f, addr = s.recvfrom(4096)
        if addr[2] == socket.PACKET_HOST and len(f) >= 38 and f[14:18] == b"XBRL" \
           and f[19] == 1 and f[20] == 1:
            break
    session, seq, ts = struct.unpack("!IIQ", f[22:38])
    pinger, reflector = f[6:12], f[0:6]
    def reply(**kw):
        args = dict(op=2, kind=1, session=session, seq=seq, ts=ts, size=len(f))
        args.update(kw)
        return probe(pinger, reflector, **args)
    bad = [
        reply(seq=0xFFFFFFFF),               # sequence far out of range
        reply(seq=int(sys.argv[3])),         # one past --count
        reply(kind=7),                       # unknown kind
        reply(ts=0xFFFFFFFFFFFFFFFF),        # sent in the future
        reply(ts=0),                         # sent before the run
        reply()[:20],                        # short
        reply(magic=b"XBRT"),                # wrong magic
        reply(session=session ^ 1),          # another run
        reply(op=1),                         # a request, not a reply
        reply(kind=0, seq=0xFFFFFFF0),       # warmup, out of range
    ]
    for b in bad:
        s.send(b)
    s.send(reply())                          # a duplicate of a real reply
    print("forged %d bad + 1 duplicate for seq %d" % (len(bad), seq))
else:
    die("unknown mode " + mode)
EOF

# ---- 2. the reflector ignores garbage ----
ip netns exec "$NB" "$LAT" reflect --dev pb --seconds 20 >"$WORK/refl1.out" 2>"$WORK/refl1.err" &
R1=$!
BG+=("$R1")
wait_for "$WORK/refl1.out" '^xbr-latency reflect: ready on pb'
out=$(in_a timeout -k 2 10 python3 "$WORK/frames.py" garbage pa "$MAC_B") ||
    fail "garbage phase: $out"
[ "$out" = "reflected-ok 6" ] || fail "garbage phase said '$out'"
kill -TERM "$R1"
rc=0
wait "$R1" || rc=$?
[ "$rc" = 0 ] || fail "reflect exited $rc on SIGTERM: $(cat "$WORK/refl1.err")"
grep -q -x 'SUMMARY reflect reflected 1 ignored 6' "$WORK/refl1.out" ||
    fail "reflector after garbage: $(cat "$WORK/refl1.out")"
ok "reflector ignored 6 bad frames, reflected the good one with only MACs + op changed"

# ---- 3. clean runs ----
ip netns exec "$NB" "$LAT" reflect --dev pb --seconds 60 >"$WORK/refl2.out" 2>"$WORK/refl2.err" &
R2=$!
BG+=("$R2")
wait_for "$WORK/refl2.out" '^xbr-latency reflect: ready on pb'
REPLIES=0 # replies ping counted (measured + warmup): each was a reflection

# check_run NAME SENT: the invariants of a clean run's SUMMARY and JSON.
check_run() {
    local f="$WORK/$1.out" j="$WORK/$1.json" sent recv
    grep -c '^SUMMARY latency ' "$f" | grep -q -x 1 || fail "$1: not exactly one SUMMARY line"
    local n='[0-9]+' x='[0-9]+\.[0-9]'
    grep -q -E "^SUMMARY latency sent $n recv $n lost $n rate $n size $n p50_us $x p90_us $x \
p99_us $x p999_us $x max_us $x min_us $x mean_us $x dup $n reorder $n\$" "$f" ||
        fail "$1: SUMMARY not in the documented format: $(grep SUMMARY "$f")"
    sent=$(sum_get "$f" sent) recv=$(sum_get "$f" recv)
    [ "$sent" = "$2" ] || fail "$1: sent $sent, want $2"
    [ "$recv" = "$sent" ] || fail "$1: recv $recv != sent $sent"
    [ "$(sum_get "$f" lost)" = 0 ] || fail "$1: lost $(sum_get "$f" lost)"
    [ "$(sum_get "$f" dup)" = 0 ] || fail "$1: dup on a bare veth"
    [ "$(sum_get "$f" reorder)" = 0 ] || fail "$1: reorder on a bare veth"
    awk -v mn="$(sum_get "$f" min_us)" -v p50="$(sum_get "$f" p50_us)" \
        -v p90="$(sum_get "$f" p90_us)" -v p99="$(sum_get "$f" p99_us)" \
        -v p999="$(sum_get "$f" p999_us)" -v mx="$(sum_get "$f" max_us)" \
        -v mean="$(sum_get "$f" mean_us)" 'BEGIN {
            exit !(p50 > 0 && mn <= p50 && p50 <= p90 && p90 <= p99 && p99 <= p999 &&
                   p999 <= mx && mn <= mean && mean <= mx) }' ||
        fail "$1: percentiles out of order: $(grep SUMMARY "$f")"
    # The JSON carries the same figures.
    python3 - "$f" "$j" <<'EOF' || fail "$1: JSON and SUMMARY disagree"
import json, sys
summary = open(sys.argv[1]).read().split("SUMMARY latency ", 1)[1].split()
s = dict(zip(summary[0::2], summary[1::2]))
j = json.load(open(sys.argv[2]))
for k, v in s.items():
    if float(j[k]) != float(v):
        sys.exit("%s: SUMMARY %s, JSON %s" % (k, v, j[k]))
EOF
    REPLIES=$((REPLIES + recv + $(json_get "$j" warmup_recv)))
    ok "$1: $(grep '^SUMMARY' "$f")"
}

in_a timeout -k 2 30 "$LAT" ping --dev pa --dst "$MAC_B" --count 2000 --rate 2000 \
    --json "$WORK/small.json" >"$WORK/small.out" 2>"$WORK/small.err" ||
    fail "ping (60 B) exited $?: $(cat "$WORK/small.out" "$WORK/small.err")"
check_run small 2000
in_a timeout -k 2 30 "$LAT" ping --dev pa --dst "$MAC_B" --count 2000 --rate 2000 --size 1514 \
    --json "$WORK/large.json" >"$WORK/large.out" 2>"$WORK/large.err" ||
    fail "ping (1514 B) exited $?: $(cat "$WORK/large.out" "$WORK/large.err")"
check_run large 2000
grep -q ' size 1514 ' "$WORK/large.out" || fail "large: size not 1514 in the SUMMARY"

# ---- 4. hostile replies towards ping ----
ip netns exec "$NB" timeout -k 2 30 python3 "$WORK/frames.py" hostile pb 3000 \
    >"$WORK/hostile.out" 2>"$WORK/hostile.err" &
H=$!
BG+=("$H")
wait_for "$WORK/hostile.out" '^ready'
in_a timeout -k 2 30 "$LAT" ping --dev pa --dst "$MAC_B" --count 3000 --rate 1000 \
    --json "$WORK/hostile-ping.json" >"$WORK/hostile-ping.out" 2>"$WORK/hostile-ping.err" ||
    fail "ping under forged replies exited $?: $(cat "$WORK"/hostile-ping.{out,err})"
rc=0
wait "$H" || rc=$?
[ "$rc" = 0 ] || fail "forging replies failed: $(cat "$WORK/hostile.out" "$WORK/hostile.err")"
f="$WORK/hostile-ping.out"
[ "$(sum_get "$f" sent)" = 3000 ] && [ "$(sum_get "$f" recv)" = 3000 ] &&
    [ "$(sum_get "$f" lost)" = 0 ] && [ "$(sum_get "$f" dup)" = 1 ] ||
    fail "ping under forged replies: $(grep SUMMARY "$f")"
ign=$(json_get "$WORK/hostile-ping.json" ignored)
[ "$ign" = 10 ] || fail "ping ignored $ign frames, want the 10 forged ones"
REPLIES=$((REPLIES + 3000 + $(json_get "$WORK/hostile-ping.json" warmup_recv)))
ok "ping ignored 10 forged replies and counted 1 duplicate ($(tail -n 1 "$WORK/hostile.out"))"

# ---- 5. nobody answers ----
rc=0
in_a timeout -k 2 10 "$LAT" ping --dev pa --dst 02:00:00:00:00:99 --count 20 --rate 100 \
    --warmup 0 >"$WORK/none.out" 2>"$WORK/none.err" || rc=$?
[ "$rc" = 1 ] || fail "ping to nobody exited $rc, want 1"
grep -q 'no probe came back: timeout' "$WORK/none.err" ||
    fail "ping to nobody said: $(cat "$WORK/none.err")"
[ "$(sum_get "$WORK/none.out" sent)" = 20 ] && [ "$(sum_get "$WORK/none.out" recv)" = 0 ] ||
    fail "ping to nobody: $(grep SUMMARY "$WORK/none.out")"
ok "no reply: exit 1, $(head -c 60 "$WORK/none.err")..."

# ---- 6. signals and --seconds ----
ip netns exec "$NA" "$LAT" ping --dev pa --dst "$MAC_B" --count 1000000 --rate 1000 --seconds 20 \
    --json "$WORK/int.json" >"$WORK/int.out" 2>"$WORK/int.err" &
PI=$!
BG+=("$PI")
sleep 1
t0=$(date +%s%N)
kill -INT "$PI"
rc=0
wait "$PI" || rc=$?
t1=$(date +%s%N)
[ "$rc" = 0 ] || fail "ping exited $rc on SIGINT: $(cat "$WORK/int.err")"
[ $(((t1 - t0) / 1000000)) -lt 1000 ] || fail "ping took $(((t1 - t0) / 1000000)) ms to stop"
sent=$(sum_get "$WORK/int.out" sent)
recv=$(sum_get "$WORK/int.out" recv)
[ "$sent" -gt 100 ] && [ "$sent" -lt 5000 ] && [ "$recv" -gt 0 ] ||
    fail "ping after SIGINT: $(grep SUMMARY "$WORK/int.out")"
grep -q 'stopped by signal 2' "$WORK/int.err" || fail "ping did not say it was interrupted"
REPLIES=$((REPLIES + recv + $(json_get "$WORK/int.json" warmup_recv)))
ok "SIGINT: ping stopped in $(((t1 - t0) / 1000000)) ms, sent $sent recv $recv"

kill -TERM "$R2"
rc=0
wait "$R2" || rc=$?
[ "$rc" = 0 ] || fail "reflect exited $rc on SIGTERM: $(cat "$WORK/refl2.err")"
refl=$(awk '$1 == "SUMMARY" && $2 == "reflect" { print $4 }' "$WORK/refl2.out")
ign=$(awk '$1 == "SUMMARY" && $2 == "reflect" { print $6 }' "$WORK/refl2.out")
# Ignored: exactly the 20 probes of phase 5, addressed to somebody else.
[ -n "$refl" ] && [ "$refl" -ge "$REPLIES" ] && [ "$ign" = 20 ] ||
    fail "reflector: $(grep SUMMARY "$WORK/refl2.out"), ping counted $REPLIES replies"
ok "reflector: reflected $refl (ping counted $REPLIES replies), ignored the 20 not for it"

t0=$(date +%s%N)
in_b timeout -k 2 10 "$LAT" reflect --dev pb --seconds 1 >"$WORK/refl3.out" 2>"$WORK/refl3.err" ||
    fail "reflect --seconds 1 exited $?"
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
[ "$ms" -ge 900 ] && [ "$ms" -lt 3000 ] || fail "reflect --seconds 1 ran $ms ms"
grep -q -x 'SUMMARY reflect reflected 0 ignored 0' "$WORK/refl3.out" ||
    fail "reflect --seconds 1: $(cat "$WORK/refl3.out")"
ok "reflect --seconds 1 stopped by itself after $ms ms"

echo "PASS: latency-smoke"
