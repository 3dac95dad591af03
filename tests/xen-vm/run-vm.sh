#!/bin/bash
# Boot Xen 4.17 + a Linux dom0 under QEMU (TCG, no KVM needed), run a scenario in dom0, read its
# results from the serial console.
#
#   run-vm.sh --scenario FILE [options]
#     --scenario FILE     dom0 runs it as /scenario.sh (busybox sh), then powers off
#     --extra DIR         copy DIR's tree into dom0's root (repeatable)
#     --bin FILE[:DEST]   copy an executable and its shared libraries (ldd on this host) into
#                         dom0, at DEST (default /usr/local/bin/NAME) (repeatable)
#     --env NAME=VALUE    exported to the scenario via /etc/xbrvm/env (repeatable)
#     --expect NAME       a RESULT that must appear, besides the scenario's EXPECT lines
#     --log FILE          console log (default CACHE/logs/SCENARIO-DATE.log); FILE.results
#                         gets the RESULT/METRIC lines
#     --timeout SECS      hard bound on one VM run (default 420); the scenario gets SECS-60
#     --boot-timeout SECS dom0 must print XBRVM-DOM0-UP by then (default 180), else QEMU is
#                         killed and the boot retried, --boot-retries N times (default 1)
#     --deadline EPOCH    everything, image download and retries included, ends by then
#                         (default: $XBRVM_DEADLINE, else none): a retry starts only if a
#                         whole --timeout run still fits, and the download gets what is
#                         left after one such run
#     --cache DIR         image cache (default tests/xen-vm/cache or $XBRVM_CACHE)
#     --no-build          do not (re)run build-images.sh
#     --verbose           stream the console to stderr while it runs
#
# Network: QEMU's e1000 (dom0's peth0) is wired to a tap inside a network namespace created for
# this run (deleted afterwards); the namespace holds 10.99.0.1/24 and fd00:99::1/64 and the
# host-side services (lib/host-services.py: a TCP sink on 5002, both families). No address is
# configured outside the namespace.
# Exit status: 0 when the scenario finished, printed at least one RESULT, all of them PASS and
# every expected one present; 1 otherwise (the console tail is printed); 77 when it cannot run
# here (not root).
set -eu
XBRVM_DIR=$(cd "$(dirname "$0")" && pwd)
. "$XBRVM_DIR/lib/common.sh"

SCENARIO="" LOG="" TIMEOUT=420 CACHE=${XBRVM_CACHE:-$XBRVM_DIR/cache} BUILD=1 VERBOSE=0
EXTRAS=() BINS=() ENVS=() EXPECTS=()
QEMU_MEM=2048 QEMU_SMP=2 DOM0_MEM=768 BOOT_TIMEOUT=180 BOOT_RETRIES=1
DEADLINE=${XBRVM_DEADLINE:-}
while [ $# -gt 0 ]; do
    case $1 in
    --scenario) SCENARIO=$2; shift 2 ;;
    --extra) EXTRAS+=("$2"); shift 2 ;;
    --bin) BINS+=("$2"); shift 2 ;;
    --env) ENVS+=("$2"); shift 2 ;;
    --expect) EXPECTS+=("$2"); shift 2 ;;
    --log) LOG=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --boot-timeout) BOOT_TIMEOUT=$2; shift 2 ;;
    --boot-retries) BOOT_RETRIES=$2; shift 2 ;;
    --deadline) DEADLINE=$2; shift 2 ;;
    --cache) CACHE=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --verbose) VERBOSE=1; shift ;;
    -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done
[ -n "$SCENARIO" ] || die "--scenario FILE is required"
[ -f "$SCENARIO" ] || die "no scenario file $SCENARIO"
case $TIMEOUT in ''|*[!0-9]*) die "--timeout wants seconds" ;; esac
[ "$TIMEOUT" -ge 120 ] || die "--timeout below 120 s cannot boot Xen under emulation"
case $DEADLINE in ''|*[!0-9]*) [ -z "$DEADLINE" ] || die "--deadline wants seconds since the epoch" ;; esac
# left — seconds until the deadline (a large number without one)
left() { if [ -n "$DEADLINE" ]; then echo $((DEADLINE - $(date +%s))); else echo 999999; fi; }
[ "$(left)" -ge "$TIMEOUT" ] || die "only $(left) s left before the deadline, a run needs $TIMEOUT"
if [ "$(id -u)" -ne 0 ]; then echo "xen-vm: FAIL: needs root (network namespace, tap)" >&2; exit 1; fi
need_cmds qemu-system-x86_64:qemu-system-x86 python3:python3-minimal ip:iproute2 cpio:cpio \
          timeout:coreutils tar:tar

mkdir -p "$CACHE"; CACHE=$(cd "$CACHE" && pwd)
# The download may use what a run leaves of the budget, less a margin.
if [ "$BUILD" = 1 ]; then
    XBRVM_DOWNLOAD_BUDGET=$(( $(left) - TIMEOUT - 10 )) "$XBRVM_DIR/build-images.sh" "$CACHE" \
        || die "build-images.sh failed"
fi
[ "$(left)" -ge "$TIMEOUT" ] || die "images took until $(left) s before the deadline; a run needs $TIMEOUT"
OUT=$CACHE/out
for f in xen vmlinux dom0.cpio; do [ -s "$OUT/$f" ] || die "missing $OUT/$f (run build-images.sh)"; done

sname=$(basename "$SCENARIO" .sh)
if [ -z "$LOG" ]; then mkdir -p "$CACHE/logs"; LOG=$CACHE/logs/$sname-$(date +%Y%m%d-%H%M%S).log; fi
mkdir -p "$(dirname "$LOG")"; LOG=$(cd "$(dirname "$LOG")" && pwd)/$(basename "$LOG")
RUN=$(mktemp -d /tmp/xbrvm-run.XXXXXX)
NS=xbrvm-$$
SVC_PID="" TAIL_PID="" QEMU_PID=""
cleanup() {
    local rc=$?
    set +e
    {
        [ -n "$TAIL_PID" ] && kill "$TAIL_PID"
        [ -n "$QEMU_PID" ] && kill "$QEMU_PID" && wait "$QEMU_PID"
        [ -n "$SVC_PID" ] && kill "$SVC_PID" && wait "$SVC_PID"
    } 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -rf "$RUN"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the per-run overlay: scenario, extras, binaries, env — appended to the base initramfs ----
O=$RUN/overlay
base_tree "$O"
install -D -m 0755 "$SCENARIO" "$O/scenario.sh"
for d in "${EXTRAS[@]}"; do
    [ -d "$d" ] || die "--extra $d: not a directory"
    tar -C "$d" -cf - . | tar -C "$O" -xf - --keep-directory-symlink --no-same-owner || die "copying --extra $d failed"
done
for b in "${BINS[@]}"; do
    src=${b%%:*} dest=${b#*:}; [ "$dest" = "$b" ] && dest=/usr/local/bin/$(basename "$src")
    copy_with_libs "$O" "$src" "$dest"
done
mkdir -p "$O/etc/xbrvm"
: > "$O/etc/xbrvm/env"
for e in "${ENVS[@]}"; do
    case $e in [A-Za-z_]*=*) printf 'export %s=%q\n' "${e%%=*}" "${e#*=}" >> "$O/etc/xbrvm/env" ;;
               *) die "--env wants NAME=VALUE, got '$e'" ;; esac
done
mk_cpio "$O" "$RUN/overlay.cpio"
cat "$OUT/dom0.cpio" "$RUN/overlay.cpio" > "$RUN/dom0.cpio"
case "$OUT$RUN" in *,*|*' '*) die "image paths may not contain commas or spaces (QEMU multiboot -initrd)" ;; esac

# ---- network namespace with the tap QEMU attaches to, and the host-side services --------------
ip netns add "$NS" || die "cannot create network namespace $NS"
ip -n "$NS" link set lo up
# IPv6 only on the tap (fd00:99::1, no DAD): no router solicitations or MLD from other
# interfaces in the namespace.
ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || true
ip -n "$NS" tuntap add dev xbrtap0 mode tap || die "cannot create tap in $NS"
ip netns exec "$NS" sysctl -qw net.ipv6.conf.xbrtap0.disable_ipv6=0 net.ipv6.conf.xbrtap0.accept_dad=0 \
    || die "cannot enable IPv6 on the tap"
ip -n "$NS" addr add 10.99.0.1/24 dev xbrtap0
ip -n "$NS" -6 addr add fd00:99::1/64 dev xbrtap0 nodad
ip -n "$NS" link set xbrtap0 up
ip netns exec "$NS" timeout $((TIMEOUT * (BOOT_RETRIES + 1) + 30)) python3 "$XBRVM_DIR/lib/host-services.py" \
    --addr 10.99.0.1 --addr6 fd00:99::1 --lifetime $((TIMEOUT * (BOOT_RETRIES + 1) + 20)) --log "$LOG.host" &
SVC_PID=$!

# ---- QEMU -------------------------------------------------------------------------------------
# qemu64: `-cpu max` gave random dom0 crashes under TCG. Dom0's command line travels inside the
# multiboot module string and therefore must not contain commas.
XEN_CMDLINE="console=com1 com1=115200,8n1 dom0_mem=${DOM0_MEM}M,max:${DOM0_MEM}M dom0_max_vcpus=$QEMU_SMP"
# One boot attempt: QEMU in the background, watched. Under TCG a boot very rarely hangs before
# dom0's init runs (seen once: no output after "Poking KASLR"); that is not the code under test,
# so a boot that shows no XBRVM-DOM0-UP within BOOT_TIMEOUT seconds is killed and retried.
run_qemu() {
    local waited=0 booted=0
    local DOM0_CMDLINE="console=hvc0 earlyprintk=xen xbrvm.timeout=$((TIMEOUT - 60))"
    : > "$LOG"
    if [ "$VERBOSE" = 1 ]; then tail -n +1 -f "$LOG" >&2 & TAIL_PID=$!; fi
    ip netns exec "$NS" timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
        -accel tcg,thread=multi -cpu qemu64 -machine pc -smp "$QEMU_SMP" -m "$QEMU_MEM" \
        -nodefaults -display none -monitor none -serial stdio -no-reboot \
        -kernel "$OUT/xen" -append "$XEN_CMDLINE" \
        -initrd "$OUT/vmlinux $DOM0_CMDLINE,$RUN/dom0.cpio" \
        -netdev tap,id=n0,ifname=xbrtap0,script=no,downscript=no \
        -device e1000,netdev=n0,mac=52:54:00:99:00:02 \
        < /dev/null >> "$LOG" 2>&1 &
    QEMU_PID=$!
    while kill -0 "$QEMU_PID" 2>/dev/null; do
        if [ $booted = 0 ]; then
            if grep -aq '^XBRVM-DOM0-UP' "$LOG"; then
                booted=1
                log "dom0 up after ${waited}s"
            elif [ $waited -ge "$BOOT_TIMEOUT" ]; then
                log "no dom0 after ${BOOT_TIMEOUT}s: boot hang, killing QEMU"
                kill "$QEMU_PID" 2>/dev/null
                wait "$QEMU_PID" 2>/dev/null
                QEMU_PID=""
                return 200
            fi
        fi
        sleep 1; waited=$((waited + 1))
    done
    wait "$QEMU_PID"; local rc=$?
    QEMU_PID=""
    return $rc
}
log "booting Xen under QEMU TCG (bound ${TIMEOUT}s, boot ${BOOT_TIMEOUT}s), console: $LOG"
t0=$(date +%s.%N)
attempt=1
while :; do
    set +e; run_qemu; qrc=$?; set -e
    if [ -n "$TAIL_PID" ]; then sleep 0.5; kill "$TAIL_PID" 2>/dev/null; TAIL_PID=""; fi
    [ $qrc -eq 200 ] && [ $attempt -le "$BOOT_RETRIES" ] || break
    if [ "$(left)" -lt "$TIMEOUT" ]; then
        log "boot hang, and only $(left) s left before the deadline: no retry (a run needs $TIMEOUT)"
        break
    fi
    mv "$LOG" "$LOG.hang$attempt"
    log "retrying the boot (attempt $((attempt + 1)); the hung console is in $LOG.hang$attempt)"
    attempt=$((attempt + 1))
done
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

# ---- results ----------------------------------------------------------------------------------
tr -d '\r' < "$LOG" | grep -aE '^(EXPECT|RESULT|METRIC|XBRVM-END|XBRVM-FATAL|XBRVM-SCENARIO-TIMEOUT)' > "$LOG.results" || true
fail=0 npass=0 nfail=0 nmiss=0 reasons=()
if [ $qrc -eq 124 ] || [ $qrc -eq 137 ]; then fail=1; reasons+=("QEMU killed after ${TIMEOUT}s"); fi
if [ $qrc -eq 200 ]; then fail=1; reasons+=("dom0 did not boot within ${BOOT_TIMEOUT}s, $attempt attempt(s)"); fi
if ! grep -q '^XBRVM-END' "$LOG.results"; then fail=1; reasons+=("no XBRVM-END marker (qemu rc=$qrc)"); fi
grep '^XBRVM-FATAL\|^XBRVM-SCENARIO-TIMEOUT' "$LOG.results" >/dev/null && { fail=1; reasons+=("$(grep '^XBRVM-FATAL\|^XBRVM-SCENARIO-TIMEOUT' "$LOG.results" | head -1)"); }
endrc=$(sed -n 's/^XBRVM-END rc=\([0-9]*\).*/\1/p' "$LOG.results" | tail -1)
[ -n "$endrc" ] && [ "$endrc" != 0 ] && { fail=1; reasons+=("scenario exit status $endrc"); }
npass=$(grep -c '^RESULT [^ ]* PASS' "$LOG.results" || true)
nfail=$(grep -c '^RESULT [^ ]* FAIL' "$LOG.results" || true)
[ "$nfail" -gt 0 ] && { fail=1; reasons+=("$nfail FAIL result(s)"); }
[ $((npass + nfail)) -gt 0 ] || { fail=1; reasons+=("no RESULT lines"); }
for n in $(sed -n 's/^EXPECT \([^ ]*\).*/\1/p' "$LOG.results") "${EXPECTS[@]}"; do
    grep -q "^RESULT $n " "$LOG.results" || { nmiss=$((nmiss + 1)); fail=1; reasons+=("missing RESULT $n"); }
done

echo "---- xen-vm $sname: results (console: $LOG)"
grep -E '^(RESULT|METRIC)' "$LOG.results" || true
echo "xen-vm $sname: ${npass} PASS, ${nfail} FAIL, ${nmiss} missing; wall ${secs}s (qemu rc=$qrc, boot attempts $attempt)"
if [ $fail -ne 0 ]; then
    echo "---- last 120 console lines:"
    tr -d '\r' < "$LOG" | tail -n 120
    echo "---- host services log:"
    tail -n 20 "$LOG.host" 2>/dev/null || true
    printf 'xen-vm %s FAILED: %s\n' "$sname" "$(IFS=';'; echo "${reasons[*]}")"
    exit 1
fi
echo "xen-vm $sname: OK"
