#!/usr/bin/env bash
# The service manager's protocol without systemd: a datagram socket where
# $NOTIFY_SOCKET points, as systemd makes it. READY=1 comes once the config
# file is applied; WATCHDOG=1 comes every half WATCHDOG_USEC while the workers
# make progress, and stops while one worker thread is frozen (ptrace); SIGHUP
# gives RELOADING=1 then READY=1; SIGTERM STOPPING=1. The unit passes
# `systemd-analyze verify` (and a broken copy of it does not).
. "$(dirname "$0")/lib.sh"
: "${XBR_SRCDIR:?XBR_SRCDIR must point at the source tree}"
: "${XBR_BUILDDIR:?XBR_BUILDDIR must point at the build tree}"

PY=/usr/bin/python3
HELPER="$(dirname "$0")/notify-helper.py"
NLOG="$WORK/notify.log"
make_switch_ns
for i in 1 2; do add_host "$i"; done
printf 'add-br br0\nadd-port br0 v1\nadd-port br0 v2\n' >"$WORK/xbrd.conf"

"$PY" "$HELPER" listen "$WORK/notify" "$NLOG" --on-ready "$XBRCTL" --socket "$SOCK" -j show &
LISTEN_PID=$!
trap 'rc=$?; set +e; kill $LISTEN_PID 2>/dev/null; wait $LISTEN_PID 2>/dev/null; (exit $rc); cleanup' EXIT
for _ in $(seq 50); do grep -q LISTENING "$NLOG" 2>/dev/null && break; sleep 0.1; done

# Busy polling: the worker never sleeps, so it is always inside its loop
# (online for RCU) and freezing it must hold up the grace periods.
export NOTIFY_SOCKET="$WORK/notify" WATCHDOG_USEC=1000000
start_xbrd --config "$WORK/xbrd.conf" --busy-poll --workers 1
unset NOTIFY_SOCKET WATCHDOG_USEC

for _ in $(seq 50); do [ -s "$NLOG.ready" ] && break; sleep 0.1; done
[ -s "$NLOG.ready" ] || fail "no READY=1: $(cat "$NLOG")"
[ "$(jq -r '[.[0].ports[].name] | join(",")' "$NLOG.ready")" = v1,v2 ] ||
    fail "at READY=1 the config was not applied yet: $(cat "$NLOG.ready")"
[ "$(grep -c ' READY=1$' "$NLOG")" = 1 ] || fail "READY=1 not exactly once"
grep -q " MAINPID=$XBRD_PID$" "$NLOG" || fail "no MAINPID=$XBRD_PID"
ok "READY=1 once, after the configuration was applied (the ports were there)"

wd_count() { grep -c ' WATCHDOG=1$' "$NLOG" || true; }
sleep 3
n1=$(wd_count)
[ "$n1" -ge 5 ] || fail "$n1 WATCHDOG=1 in the first 3 s, expected one per 0.5 s"
ok "WATCHDOG=1 every half period ($n1 in the first 3 s)"

tid=""
for t in /proc/"$XBRD_PID"/task/*; do
    [ "$(cat "$t/comm")" = xbr-worker0 ] && tid=${t##*/}
done
[ -n "$tid" ] || fail "no xbr-worker0 thread"
"$PY" "$HELPER" freeze "$tid" 3 >"$WORK/freeze.out" 2>&1 &
FREEZE_PID=$!
for _ in $(seq 50); do grep -q frozen "$WORK/freeze.out" && break; sleep 0.05; done
grep -q frozen "$WORK/freeze.out" || fail "could not freeze the worker: $(cat "$WORK/freeze.out")"
a=$(wd_count); sleep 2.5; b=$(wd_count)
wait "$FREEZE_PID" || fail "freeze helper: $(cat "$WORK/freeze.out")"
[ $((b - a)) -le 1 ] || fail "$((b - a)) WATCHDOG=1 while a worker was frozen"
grep -q "watchdog: a worker has not passed a quiescent state" "$WORK/xbrd.log" ||
    fail "no log line about the stuck worker"
sleep 2
c=$(wd_count)
[ $((c - b)) -ge 2 ] || fail "WATCHDOG=1 did not come back after the worker ran again"
grep -q "watchdog: the workers make progress again" "$WORK/xbrd.log" || fail "no recovery log line"
ok "a frozen worker stops WATCHDOG=1 ($((b - a)) in 2.5 s), a running one brings it back"

printf 'add-br br0\nadd-port br0 v1\n' >"$WORK/xbrd.conf"
kill -HUP "$XBRD_PID"
for _ in $(seq 50); do [ "$(grep -c ' READY=1$' "$NLOG")" = 2 ] && break; sleep 0.1; done
r=$(grep -n ' RELOADING=1$' "$NLOG" | tail -1 | cut -d: -f1)
y=$(grep -n ' READY=1$' "$NLOG" | tail -1 | cut -d: -f1)
[ -n "$r" ] && [ -n "$y" ] && [ "$r" -lt "$y" ] || fail "SIGHUP: no RELOADING=1 then READY=1: $(tail -5 "$NLOG")"
[ "$(xc -j show br0 | jq -r '[.[0].ports[].name] | join(",")')" = v1 ] || fail "SIGHUP did not apply the file"
ok "SIGHUP: RELOADING=1, the file applied, READY=1"

kill -TERM "$XBRD_PID"; wait "$XBRD_PID" || fail "xbrd exited $? on SIGTERM"; XBRD_PID=""
grep -q ' STOPPING=1$' "$NLOG" || fail "no STOPPING=1"
ok "SIGTERM: STOPPING=1, exit 0"

# The unit, with this build's binaries, man pages and paths.
mkdir -p "$WORK/unit/sbin" "$WORK/unit/etc/xbr" "$WORK/unit/doc" "$WORK/unit/man/man8"
ln -s "$XBRD" "$WORK/unit/sbin/xbrd"
ln -s "$XBRCTL" "$WORK/unit/sbin/xbrctl"
cp "$XBR_SRCDIR/README.md" "$WORK/unit/doc/"
for m in xbrd.8 xbrctl.8; do
    [ -f "$XBR_BUILDDIR/doc/$m" ] || fail "man page $m not built (scdoc missing?)"
    ln -s "$XBR_BUILDDIR/doc/$m" "$WORK/unit/man/man8/$m"
done
sed -e "s|@sbindir@|$WORK/unit/sbin|g; s|@sysconfdir@|$WORK/unit/etc|g; s|@docdir@|$WORK/unit/doc|g" \
    "$XBR_SRCDIR/bridge/xbrd.service.in" >"$WORK/unit/xbrd.service"
out=$(MANPATH="$WORK/unit/man" systemd-analyze verify "$WORK/unit/xbrd.service" 2>&1) ||
    fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify said: $out"
sed -e 's/^Type=notify/Type=notifyy/' "$WORK/unit/xbrd.service" >"$WORK/unit/broken.service"
out=$(MANPATH="$WORK/unit/man" systemd-analyze verify "$WORK/unit/broken.service" 2>&1) || true
echo "$out" | grep -q "Failed to parse service type" ||
    fail "systemd-analyze verify said nothing of a broken unit ('$out'): it checks nothing"
grep -q '^Type=notify$' "$WORK/unit/xbrd.service" && grep -q '^WatchdogSec=' "$WORK/unit/xbrd.service" ||
    fail "the unit is not Type=notify with a watchdog"
ok "systemd-analyze verify passes for the unit (and fails a broken copy)"
