# Helpers for dom0 scenarios (busybox sh). Installed in dom0 as /usr/lib/xbrvm/lib.sh; a scenario
# starts with `. /usr/lib/xbrvm/lib.sh`.
#
# Output protocol (read by run-vm.sh from the serial console):
#   EXPECT name            a RESULT the runner must see (declare them all up front)
#   RESULT name PASS|FAIL  detail...
#   METRIC name value unit
# Guest protocol (domU/init's agent, through xenstore /local/domain/<id>/data/xbrtest):
#   state=ready once netfront is up and the IP is configured; dom0 writes cmd="N COMMAND"; the
#   guest runs `sh -c COMMAND`, writes out="RC<newline>last 3000 bytes of output", then done=N.

XBRVM_FAILS=0

# busybox ash runs its own applets ahead of PATH (standalone shell), and busybox's ip cannot
# name a veth peer: scenarios get the real iproute2 that build-images.sh installed.
if [ -x /usr/local/sbin/ip ]; then ip() { /usr/local/sbin/ip "$@"; }; fi
if [ -x /usr/local/sbin/bridge ]; then bridge() { /usr/local/sbin/bridge "$@"; }; fi

say() { echo "[$(cut -d' ' -f1 /proc/uptime)] $*"; }
expect() { for n in "$@"; do echo "EXPECT $n"; done; }
result() { # NAME PASS|FAIL DETAIL...
    local name=$1 st=$2; shift 2
    [ "$st" = PASS ] || XBRVM_FAILS=$((XBRVM_FAILS + 1))
    echo "RESULT $name $st $*"
}
check() { # NAME DETAIL -- CMD...: PASS if CMD exits 0
    local name=$1 detail=$2; shift 2; [ "${1:-}" = -- ] && shift
    if "$@"; then result "$name" PASS "$detail"; else result "$name" FAIL "$detail (rc=$?)"; fi
}
metric() { echo "METRIC $1 $2 $3"; }

# modload NAME — insmod a module and its dependencies (from the image's pruned modules.dep).
modload() {
    local name=$1 kdir line dep
    kdir=/lib/modules/$(uname -r)
    line=$(grep -E "(^|/)${name}\.ko(\.[gx]z|\.zst)?:" "$kdir/modules.dep") || { echo "modload: no module $name" >&2; return 1; }
    for dep in $(echo "${line#*:}" | awk '{for (i = NF; i > 0; i--) print $i}') "${line%%:*}"; do
        local base=${dep##*/}; base=${base%%.ko*}
        [ -d "/sys/module/$(echo "$base" | tr - _)" ] && continue
        insmod "$kdir/$dep" || { echo "modload: insmod $dep failed" >&2; return 1; }
    done
}

# Under emulation a fork+exec of a dynamically linked tool costs ~0.1 s in dom0 and ~0.2 s in a
# PV guest: never poll xenstore in a loop; block on xenstore-watch instead (xs_until).

# wait_for SECONDS CMD... — poll CMD every 0.2 s until it succeeds; 1 on timeout. For things
# that xenstore cannot signal (a netdev going away...).
wait_for() {
    local t=$1 i=0; shift
    while ! "$@" >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -gt $((t * 5)) ] && return 1
        sleep 0.2
    done
}
xs_is() { [ "$(xenstore-read "$1" 2>/dev/null)" = "$2" ]; }

# xs_until SECONDS PATH FIRST CHECK... — watch PATH (and below); once the watch is registered
# run the command FIRST (a function name, or ""), then run CHECK now and on every event until
# it succeeds. 0 when CHECK succeeded, 1 on timeout, 2 when FIRST failed.
XBRVM_RUN=/run/xbrvm
_xs_n=0
xs_until() {
    local t=$1 path=$2 first=$3 fifo wpid rc=1; shift 3
    mkdir -p $XBRVM_RUN
    _xs_n=$((_xs_n + 1)); fifo=$XBRVM_RUN/watch.$$.$_xs_n
    rm -f "$fifo"; mkfifo "$fifo" || return 1
    timeout "$t" xenstore-watch "$path" > "$fifo" 2>/dev/null &
    wpid=$!
    exec 3< "$fifo"
    if read -r _ <&3; then   # the first event: the watch is registered
        if [ -n "$first" ] && ! "$first"; then
            rc=2
        else
            "$@" && rc=0
            while [ $rc != 0 ] && read -r _ <&3; do "$@" && rc=0; done
        fi
    fi
    exec 3<&-
    kill $wpid 2>/dev/null; wait $wpid 2>/dev/null
    rm -f "$fifo"
    return $rc
}

# guest_cfg NAME IP/PREFIX MAC MAXQUEUES [VIFSPEC_EXTRA] [MEMORY_MB] [IP6/PREFIX] — print an xl
# config for a PV guest that boots the dom0 kernel with the test initramfs. $XBRVM_ON_REBOOT:
# what xl does when the guest reboots itself (default destroy; restart makes a new domain).
guest_cfg() {
    local name=$1 ip=$2 mac=$3 mq=$4 vifextra=${5:-} mem=${6:-160} ip6=${7:-}
    cat <<CFG
name = "$name"
type = "pv"
kernel = "/boot/vmlinux"
ramdisk = "/boot/domU.cpio"
extra = "console=hvc0 xbr.name=$name xbr.ip=$ip${ip6:+ xbr.ip6=$ip6} xbr.mq=$mq"
memory = $mem
vcpus = 1
on_crash = "destroy"
on_reboot = "${XBRVM_ON_REBOOT:-destroy}"
vif = [ 'mac=$mac${vifextra:+,$vifextra}' ]
CFG
}

# guest_create NAME CFGFILE — xl create, bounded; its log goes to /var/log/xen/xl-create-NAME.log.
guest_create() {
    mkdir -p $XBRVM_RUN; rm -f $XBRVM_RUN/domid.$1
    if timeout 120 xl create "$2" > "/var/log/xen/xl-create-$1.log" 2>&1; then
        xl domid "$1" > $XBRVM_RUN/domid.$1 2>/dev/null && return 0
    fi
    local rc=$?; say "xl create $1 failed (rc=$rc):"; tail -20 "/var/log/xen/xl-create-$1.log"; return $rc
}
# guest_destroy NAME — xl destroy, bounded.
guest_destroy() { rm -f $XBRVM_RUN/domid.$1; timeout 60 xl destroy "$1"; }
# guest_domid NAME — the domid (cached at creation: xl is slow to start under emulation).
guest_domid() {
    local d
    if [ -f $XBRVM_RUN/domid.$1 ]; then read -r d < $XBRVM_RUN/domid.$1; else d=$(xl domid "$1" 2>/dev/null); fi
    [ -n "$d" ] && echo "$d"
}
guest_xs() { local d; d=$(guest_domid "$1") && echo "/local/domain/$d/data/xbrtest"; }
# guest_wait_ready NAME SECONDS
guest_wait_ready() {
    local p; p=$(guest_xs "$1") || return 1
    xs_until "$2" "$p/state" "" xs_is "$p/state" ready
}
# gexec NAME SECONDS CMD — run CMD in the guest through the agent (it writes cmd="SEQ CMD",
# the guest answers out="RC\nOUTPUT-TAIL" then done=SEQ); sets GOUT and GRC.
# Returns GRC (or 124 when the guest did not answer in time).
XBRVM_SEQ=0
_gexec_post() { xenstore-write "$_G_P/cmd" "$XBRVM_SEQ $_G_CMD"; }
gexec() {
    local name=$1 t=$2 v
    GOUT="" GRC=124 _G_CMD=$3
    _G_P=$(guest_xs "$name") || { GOUT="no such guest $name"; return 124; }
    XBRVM_SEQ=$((XBRVM_SEQ + 1))
    if ! xs_until "$t" "$_G_P/done" _gexec_post xs_is "$_G_P/done" "$XBRVM_SEQ"; then
        GOUT="guest $name did not finish '$_G_CMD' within ${t}s"; return 124
    fi
    v=$(xenstore-read -R "$_G_P/out")
    GRC=${v%%[!0-9]*}; GRC=${GRC:-125}
    case $v in *"
"*) GOUT=${v#*"
"} ;; *) GOUT="" ;; esac
    return "$GRC"
}
# ping_received TEXT — the "N packets received" count in ping's output (empty if none).
ping_received() { echo "$1" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p'; }
# field KEY TEXT — the value of KEY=value in TEXT (first match).
field() { echo "$2" | sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p; s/^$1=\([^[:space:]]*\).*/\1/p" | head -1; }

# guest_console NAME [LINES] — the tail of the guest's console log (xenconsoled).
guest_console() {
    local f=/var/log/xen/console/guest-$1.log
    [ -f "$f" ] && tail -n "${2:-40}" "$f" | sed "s/^/[console $1] /"
}
dump_diag() { # after a failure: what dom0 knows
    say "---- diagnostics"
    xl list 2>&1
    ip -d link show 2>&1 | grep -v '^ *link/' | head -40
    bridge link show 2>&1
    xenstore-ls -f /local/domain/0/backend 2>/dev/null | head -80
    tail -20 /var/log/xen/vif-hotplug.log 2>/dev/null
    for f in /var/log/xen/console/guest-*.log; do [ -f "$f" ] && { n=${f##*/guest-}; guest_console "${n%.log}" 30; }; done
    dmesg | tail -30
    say "---- end of diagnostics"
}
