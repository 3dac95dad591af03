#!/usr/bin/env bash
# Netback throughput: simulated guest -> xbr -> simulated guest, through
# xbrd-sim (xbrd linked with libxensim) against xs-sim, one worker.
#
#   bench/netback-bench.sh [--quick] [--json FILE] [--runs N] [--seconds S]
#                          [--xbrd P] [--xbrctl P] [--xs-sim P] [--xensim-ctl P]
#                          [--netfront P]
#
# Binaries default to $XBRD, $XBRCTL, $XS_SIM, $XENSIM_CTL, $NETFRONT, else
# to the build dir $BUILD (default build/, relative to the repo root).
#
# Per figure: guest 2 runs `xensim-netfront recv`, guest 1 runs
# `xensim-netfront send` with an unbounded count; once frames flow, xbrd's
# counters (xbrctl -j stats) and its CPU time (/proc/PID/stat utime+stime,
# all threads) are sampled, again after S seconds, and the sender and the
# receiver are then stopped with SIGTERM (both print a SUMMARY line).
#   mpps / gbps       frames / bytes delivered into guest 2's RX ring
#                     (vif2.0 to_guest / tx_bytes) per wall-clock second
#   cpu_s_per_mframe  xbrd CPU seconds per million frames taken from guest 1
#                     (vif1.0 from_guest), delivered or dropped
# Medians of N runs (default 3), with min-max. The simulated guests are
# ordinary processes that build and check every frame, so on a small machine
# they compete with xbrd for cores: these are figures for the whole simulated
# path, not for xbrd alone; cpu_s_per_mframe is the per-core figure.
#
# Sanity checks (every run; exit 1 when one fails): frames flowed in the
# window; no corrupted frame; frames received by guest 2 == frames sent by
# guest 1 - frames xbrd counted as dropped towards vif2.0 (tx_dropped);
# xbrd still alive. --quick: one short run per figure, for CI.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
XBRD=${XBRD:-$BUILD/tests/netback/xbrd-sim}
XBRCTL=${XBRCTL:-$BUILD/ctl/xbrctl}
XS_SIM=${XS_SIM:-$BUILD/tests/xensim/xs-sim}
XENSIM_CTL=${XENSIM_CTL:-$BUILD/tests/xensim/xensim-ctl}
NETFRONT=${NETFRONT:-$BUILD/tests/xensim/xensim-netfront}
QUICK=0 JSON="" RUNS="" SECONDS_WIN=""

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --json) JSON=${2:?}; shift ;;
    --runs) RUNS=${2:?}; shift ;;
    --seconds) SECONDS_WIN=${2:?}; shift ;;
    --xbrd) XBRD=${2:?}; shift ;;
    --xbrctl) XBRCTL=${2:?}; shift ;;
    --xs-sim) XS_SIM=${2:?}; shift ;;
    --xensim-ctl) XENSIM_CTL=${2:?}; shift ;;
    --netfront) NETFRONT=${2:?}; shift ;;
    -h|--help) usage ;;
    *) echo "netback-bench: unknown argument $1" >&2; usage ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    RUNS=${RUNS:-1} SECONDS_WIN=${SECONDS_WIN:-0.25}
else
    RUNS=${RUNS:-3} SECONDS_WIN=${SECONDS_WIN:-2}
fi
for b in "$XBRD" "$XBRCTL" "$XS_SIM" "$XENSIM_CTL" "$NETFRONT"; do
    [ -x "$b" ] || { echo "netback-bench: $b: not an executable (build first, or set the path)" >&2; exit 2; }
done
for t in python3 jq; do command -v $t >/dev/null || { echo "netback-bench: needs $t" >&2; exit 2; }; done

WORK=$(mktemp -d /tmp/xbr-nbbench.XXXXXX)
SOCK="$WORK/xbrd.sock"
export XENSIM_DIR="$WORK/world" XENSIM_XS_DIR="$WORK/xs"
XS_PID="" XBRD_PID="" WATCHDOG=""
BG=()
FAILED=0
HZ=$(getconf CLK_TCK)

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for p in "${BG[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${BG[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "$XBRD_PID" ]; then kill -TERM "$XBRD_PID" 2>/dev/null || true; wait "$XBRD_PID" 2>/dev/null || true; fi
    if [ -n "$XS_PID" ]; then kill -TERM "$XS_PID" 2>/dev/null || true; wait "$XS_PID" 2>/dev/null || true; fi
    if [ -n "$WATCHDOG" ]; then
        pkill -P "$WATCHDOG" sleep 2>/dev/null || true # its sleep, by parent pid
        kill "$WATCHDOG" 2>/dev/null || true
        wait "$WATCHDOG" 2>/dev/null || true
    fi
    "$XENSIM_CTL" destroy >/dev/null 2>&1 || true
    if [ "$rc" != 0 ] && [ -s "$WORK/xbrd.log" ]; then
        echo "---- xbrd log (tail) ----" >&2
        tail -n 20 "$WORK/xbrd.log" >&2
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "netback-bench: FAIL: $*" >&2; exit 1; }

# Bounded in time: the whole script is killed past its budget.
budget=$(python3 -c "print(int(60 + 3 * $RUNS * ($SECONDS_WIN + 8)))")
( sleep "$budget" </dev/null >/dev/null 2>&1
  echo "netback-bench: FAIL: over the ${budget}s budget" >&2; kill -TERM $$ ) &
WATCHDOG=$!

ctl() { timeout 10 "$XBRCTL" --socket "$SOCK" "$@"; }

mkdir -p "$XENSIM_XS_DIR"
"$XENSIM_CTL" create >/dev/null
"$XS_SIM" --dir "$XENSIM_XS_DIR" --pid-file "$WORK/xs.pid" 2>"$WORK/xs.log" &
XS_PID=$!
for _ in $(seq 100); do [ -S "$XENSIM_XS_DIR/dom0" ] && break; sleep 0.05; done
[ -S "$XENSIM_XS_DIR/dom0" ] || die "xs-sim did not start"
XENSTORED_PATH="$XENSIM_XS_DIR/dom0" XENSIM_DOMID=0 \
    "$XBRD" -s "$SOCK" --workers 1 >>"$WORK/xbrd.log" 2>&1 &
XBRD_PID=$!
for _ in $(seq 100); do ctl version >/dev/null 2>&1 && break; sleep 0.05; done
ctl version >/dev/null 2>&1 || die "xbrd did not start"
for _ in $(seq 100); do grep -q "netback: serving" "$WORK/xbrd.log" && break; sleep 0.05; done
grep -q "netback: serving" "$WORK/xbrd.log" || die "netback did not start"
ctl add-br xenbr0 >/dev/null
# No BPDUs towards the guests, ports forward at once.
ctl stp set xenbr0 enabled no >/dev/null
MAC1=00:16:3e:00:01:00 MAC2=00:16:3e:00:02:00
"$NETFRONT" --domid 1 --mac $MAC1 attach --bridge xenbr0 >/dev/null || die "attach dom1"
"$NETFRONT" --domid 2 --mac $MAC2 attach --bridge xenbr0 >/dev/null || die "attach dom2"

# Prints "now cpu_ticks v1_from_guest v2_to_guest v2_tx_bytes v2_dropped v2_queued"
# (-1 for a port that is not there). v2_dropped: what vif2.0 could not take
# (tx_dropped: no guest buffer and its RX queue full); v2_queued: frames
# waiting in that queue for the guest's buffers now (not yet either).
sample() {
    local now cpu j
    now=$(date +%s.%N)
    cpu=$(awk '{print $14 + $15}' "/proc/$XBRD_PID/stat" 2>/dev/null) || die "xbrd is gone"
    j=$(ctl -j stats xenbr0) || die "xbrctl stats failed"
    echo "$now $cpu $(jq -r '[.ports[]? | {(.name): .}] | add // {} |
        [(.["vif1.0"].netback_stats.from_guest // -1), (.["vif2.0"].netback_stats.to_guest // -1),
         (.["vif2.0"].stats.tx_bytes // -1),
         (.["vif2.0"].stats.tx_dropped // -1),
         (.["vif2.0"].netback_stats.rx_queue_frames // -1)] | map(tostring) | join(" ")' <<<"$j")"
}

# Waits up to $2 seconds for process $1 to exit.
wait_exit() { # pid seconds
    local n
    n=$(( ${2} * 50 ))
    while [ "$n" -gt 0 ] && kill -0 "$1" 2>/dev/null; do sleep 0.02; n=$((n - 1)); done
    ! kill -0 "$1" 2>/dev/null
}

field() { sed -n "s/.* $1 \([^ ]*\).*/\1/p" | head -1; } # key <<< SUMMARY line

# One measurement; sets RESULT="mpps gbps cpu_s_per_mframe delivered dropped wall_s cpu_s".
run_one() { # size gso(0|1) tag
    local size=$1 gso=$2 tag=$3 s0 s1 sf rpid spid i
    local -a gsoargs=()
    [ "$gso" = 1 ] && gsoargs=(--gso 1448)
    "$NETFRONT" --domid 2 recv --count 4000000000 --wait 120000 >"$WORK/recv.$tag" 2>&1 &
    rpid=$!; BG+=("$rpid")
    for i in $(seq 100); do
        s0=$(sample); [ "$(echo "$s0" | cut -d' ' -f4)" != -1 ] && break; sleep 0.05
    done
    [ "$(echo "$s0" | cut -d' ' -f4)" != -1 ] || die "$tag: vif2.0 never became a port"
    local base_deliv base_drop
    base_deliv=$(echo "$s0" | cut -d' ' -f4) base_drop=$(echo "$s0" | cut -d' ' -f6)
    "$NETFRONT" --domid 1 send --count 4000000000 --size "$size" "${gsoargs[@]}" --dst $MAC2 \
        >"$WORK/send.$tag" 2>&1 &
    spid=$!; BG+=("$spid")
    # Wait for frames to flow, then a short warm-up.
    for i in $(seq 200); do
        s0=$(sample)
        [ "$(echo "$s0" | cut -d' ' -f3)" -gt 0 ] && [ "$(echo "$s0" | cut -d' ' -f4)" -gt "$base_deliv" ] && break
        kill -0 "$spid" 2>/dev/null || { cat "$WORK/send.$tag" >&2; die "$tag: sender exited"; }
        sleep 0.05
    done
    sleep 0.1
    s0=$(sample)
    sleep "$SECONDS_WIN"
    s1=$(sample)
    kill -TERM "$spid" 2>/dev/null || true
    wait_exit "$spid" 15 || die "$tag: sender did not stop"
    wait "$spid" 2>/dev/null || true
    # The sender's port goes away once it has closed; then vif2.0's counters are final.
    for i in $(seq 100); do
        sf=$(sample); [ "$(echo "$sf" | cut -d' ' -f3)" = -1 ] && break; sleep 0.02
    done
    # ... and stay put, with nothing left in its RX queue.
    local prev=""
    for i in $(seq 50); do
        sf=$(sample)
        [ "$(echo "$sf" | cut -d' ' -f4-)" = "$prev" ] && [ "$(echo "$sf" | cut -d' ' -f7)" -le 0 ] && break
        prev=$(echo "$sf" | cut -d' ' -f4-); sleep 0.05
    done
    kill -TERM "$rpid" 2>/dev/null || true
    wait_exit "$rpid" 15 || die "$tag: receiver did not stop"
    wait "$rpid" 2>/dev/null || true
    for i in $(seq 100); do [ "$(sample | cut -d' ' -f4)" = -1 ] && break; sleep 0.05; done

    local ss rs sent ok bad other deliv drop
    ss=$(grep '^SUMMARY' "$WORK/send.$tag" || true)
    rs=$(grep '^SUMMARY' "$WORK/recv.$tag" || true)
    [ -n "$ss" ] && [ -n "$rs" ] || { cat "$WORK/send.$tag" "$WORK/recv.$tag" >&2; die "$tag: no SUMMARY from a guest"; }
    sent=$(echo "$ss" | field sent) ok=$(echo "$rs" | field ok)
    bad=$(echo "$rs" | field bad) other=$(echo "$rs" | field other)
    deliv=$(( $(echo "$sf" | cut -d' ' -f4) - base_deliv ))
    drop=$(( $(echo "$sf" | cut -d' ' -f6) - base_drop ))
    {
        echo "$tag: sent $sent received ok $ok bad $bad other $other; xbrd: delivered $deliv dropped $drop"
    } >>"$WORK/detail"
    local why=""
    [ "$bad" = 0 ] || why+=" $bad corrupted frames;"
    [ "$sent" -gt 0 ] || why+=" nothing sent;"
    [ "$ok" = $((sent - drop)) ] || why+=" received $ok != sent $sent - dropped $drop;"
    [ "$deliv" = $((ok + other)) ] || why+=" xbrd delivered $deliv but guest 2 got $((ok + other));"
    if [ -n "$why" ]; then
        echo "netback-bench: FAIL: $tag:$why" >&2
        echo "  send: $ss" >&2
        echo "  recv: $rs" >&2
        FAILED=1
    fi
    RESULT=$(python3 - "$s0" "$s1" "$HZ" <<'EOF'
import sys
a = [float(x) for x in sys.argv[1].split()]; b = [float(x) for x in sys.argv[2].split()]
hz = float(sys.argv[3]); dt = b[0] - a[0]; cpu = (b[1] - a[1]) / hz
fin = b[2] - a[2]; dlv = b[3] - a[3]; byt = b[4] - a[4]; drp = b[5] - a[5]
if dlv <= 0 or fin <= 0 or dt <= 0:
    print("0 0 0 %d %d %.3f %.3f" % (dlv, drp, dt, cpu)); sys.exit(0)
print("%.4f %.4f %.4f %d %d %.3f %.3f" % (dlv / dt / 1e6, byt * 8 / dt / 1e9,
      cpu / (fin / 1e6), dlv, drp, dt, cpu))
EOF
)
}

CONFIGS=("64 0" "1514 0" "65535 1")
declare -A RES
printf '%-7s %-3s %-4s  %-10s %-10s %-14s %s\n' size gso run mpps gbps "cpu_s/Mframe" "delivered/dropped in window, wall s, xbrd cpu s"
for cfg in "${CONFIGS[@]}"; do
    read -r size gso <<<"$cfg"
    for r in $(seq "$RUNS"); do
        run_one "$size" "$gso" "s${size}g${gso}r$r"
        read -r mpps gbps cpf dlv drp dt cpu <<<"$RESULT"
        printf '%-7s %-3s %-4s  %-10s %-10s %-14s %s\n' "$size" "$gso" "$r" "$mpps" "$gbps" "$cpf" "$dlv/$drp, $dt, $cpu"
        RES[$size.$gso]+="$mpps $gbps $cpf;"
        if [ "$dlv" -le 0 ] || [ "$mpps" = 0 ]; then
            echo "netback-bench: FAIL: size $size gso $gso: no frame delivered in the window" >&2
            FAILED=1
        fi
    done
done
[ -s "$WORK/detail" ] && sed 's/^/  /' "$WORK/detail"

ARGS=()
for cfg in "${CONFIGS[@]}"; do
    read -r size gso <<<"$cfg"
    ARGS+=("$size" "$gso" "${RES[$size.$gso]}")
done
python3 - "$JSON" "$RUNS" "$SECONDS_WIN" "$QUICK" "${ARGS[@]}" <<'EOF'
import json, statistics, sys
jpath, runs, win, quick = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
a = sys.argv[5:]
out = []
print("\n%-6s %-4s %-26s %-26s %-26s" % ("size", "gso", "Mpps median [min-max]",
      "Gbit/s median [min-max]", "CPU s per Mframe [min-max]"))
for i in range(0, len(a), 3):
    size, gso = int(a[i]), int(a[i + 1])
    rows = [[float(x) for x in r.split()] for r in a[i + 2].split(";") if r.strip()]
    cols = list(zip(*rows))
    med = [statistics.median(c) for c in cols]
    fmt = lambda k, p: "%.*f [%.*f-%.*f]" % (p, med[k], p, min(cols[k]), p, max(cols[k]))
    print("%-6d %-4d %-26s %-26s %-26s" % (size, gso, fmt(0, 3), fmt(1, 2), fmt(2, 3)))
    out.append({"size": size, "gso": gso, "runs": len(rows),
                "mpps": med[0], "mpps_min": min(cols[0]), "mpps_max": max(cols[0]),
                "gbps": med[1], "gbps_min": min(cols[1]), "gbps_max": max(cols[1]),
                "cpu_s_per_mframe": med[2], "cpu_s_per_mframe_min": min(cols[2]),
                "cpu_s_per_mframe_max": max(cols[2])})
print()
for o in out:
    print("SUMMARY netback size %d gso %d mpps %.4f gbps %.4f cpu_s_per_mframe %.4f"
          % (o["size"], o["gso"], o["mpps"], o["gbps"], o["cpu_s_per_mframe"]))
if jpath:
    with open(jpath, "w") as f:
        json.dump({"bench": "netback", "workers": 1, "runs": runs, "seconds": win,
                   "quick": quick, "figures": out}, f, indent=1)
        f.write("\n")
EOF
kill -0 "$XBRD_PID" 2>/dev/null || die "xbrd died"
[ "$FAILED" = 0 ] || die "sanity checks failed (see above)"
exit 0
