# Open vSwitch for the interop tests (after lib.sh): ovsdb-server and
# ovs-vswitchd run from a private directory (nothing under /run/openvswitch),
# ovs-vswitchd inside the test's OVS namespace; ovs_stop ends both by pid.
if ! command -v ovs-vswitchd >/dev/null || ! command -v ovsdb-server >/dev/null; then
    fail "Open vSwitch not installed (apt-get install openvswitch-switch)"
fi

OVSDIR="$WORK/ovs"
export OVS_RUNDIR="$OVSDIR" OVS_DBDIR="$OVSDIR" OVS_LOGDIR="$OVSDIR" OVS_SYSCONFDIR="$OVSDIR"

vs() { ovs-vsctl --db="unix:$OVSDIR/db.sock" --timeout=10 "$@"; }
oa() { ovs-appctl -t "$OVSDIR/vswitchd.ctl" --timeout=10 "$@"; }

# ovs_start NS: a fresh database and both daemons, vswitchd in NS.
ovs_start() {
    mkdir -p "$OVSDIR"
    ovsdb-tool create "$OVSDIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ip netns exec "$1" ovsdb-server "$OVSDIR/conf.db" --remote="punix:$OVSDIR/db.sock" \
        --pidfile="$OVSDIR/ovsdb.pid" --unixctl="$OVSDIR/ovsdb.ctl" --detach --no-chdir \
        --log-file="$OVSDIR/ovsdb.log" 2>>"$OVSDIR/stderr"
    vs --no-wait init
    ip netns exec "$1" ovs-vswitchd "unix:$OVSDIR/db.sock" \
        --pidfile="$OVSDIR/vswitchd.pid" --unixctl="$OVSDIR/vswitchd.ctl" --detach --no-chdir \
        --log-file="$OVSDIR/vswitchd.log" 2>>"$OVSDIR/stderr"
}

# Stop ovs-vswitchd, then ovsdb-server, by pid (TERM, then KILL after 5 s).
ovs_stop() {
    local d pid
    for d in vswitchd ovsdb; do
        [ -s "$OVSDIR/$d.pid" ] || continue
        pid=$(cat "$OVSDIR/$d.pid")
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
}

# The last lines of vswitchd's log, when the test failed.
ovs_dump_log() {
    if [ "$1" != 0 ] && [ -s "$OVSDIR/vswitchd.log" ]; then
        echo "---- ovs-vswitchd log (tail) ----" >&2
        tail -n 30 "$OVSDIR/vswitchd.log" >&2
    fi
}

# An EXIT trap for tests whose only extra is OVS: its log when they failed,
# both daemons stopped, then lib.sh's cleanup with the test's status.
ovs_on_exit() {
    local rc=$?
    set +e
    ovs_dump_log "$rc"
    ovs_stop
    (exit "$rc")
    cleanup
}
