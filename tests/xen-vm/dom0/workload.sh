# The standard guest workload (busybox sh), shared by every datapath's scenario so that their
# figures compare: two PV guests on one datapath, pings, TCP transfers with checksums, teardown.
# Installed in dom0 as /usr/lib/xbrvm/workload.sh; source it after lib.sh. A scenario sets up its
# datapath, defines the hooks below if the defaults don't fit, then calls wl_run.
#
#   DP            datapath name, used in METRIC names (kernel, xbr, ...)
#   VIFEXTRA      extra vif spec for both guests, e.g. "bridge=xenbr0" or "script=vif-xbr"
#   PAYLOAD_MIB   size of each TCP transfer (default 4)
#   TCP_REPEAT    transfers per direction; the METRIC is the median (default 1)
#   wl_port_ok DOMID   hook: is the guest's vif attached to the datapath? (default: true)
#
# Guests: gA 10.99.0.11 (netfront with 2 queues), gB 10.99.0.12 (max_queues=1); the host
# namespace is 10.99.0.1 (TCP sink on 5002).

: "${DP:=unknown}" "${VIFEXTRA:=}" "${PAYLOAD_MIB:=4}" "${TCP_REPEAT:=1}"
WL_HOST=10.99.0.1
WL_A_IP=10.99.0.11 WL_B_IP=10.99.0.12
WL_A_MAC=00:16:3e:99:00:11 WL_B_MAC=00:16:3e:99:00:12
WL_HOST6=fd00:99::1 WL_A_IP6=fd00:99::11 WL_B_IP6=fd00:99::12
WL_UP=""

command -v wl_port_ok >/dev/null 2>&1 || wl_port_ok() { return 0; }

# Result names carry the datapath (xbr.ping-gA-gB, kernel.ping-gA-gB) so that one VM run can
# run the workload once per datapath.
wl_result() { local n=$1; shift; result "$DP.$n" "$@"; }
wl_expect() {
    local n
    for n in guest-create-gA guest-create-gB guest-ready-gA guest-ready-gB \
           vif-connected-gA vif-connected-gB queues-gA queues-gB \
           ping-gA-host ping-gB-host ping-gA-gB ping-gB-gA \
           tcp-gA-host tcp-gB-host tcp-gA-gB tcp-gB-gA guest-destroy; do
        expect "$DP.$n"
    done
}
_secs_since() { awk -v a="$1" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }'; }
_median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
wl_up() { case " $WL_UP " in *" $1 "*) return 0 ;; esac; return 1; }

wl_guests() {
    local g t0 d be fe bs fs hs nq want
    WL_UP=""
    guest_cfg gA $WL_A_IP/24 $WL_A_MAC 2 "$VIFEXTRA" 160 $WL_A_IP6/64 > /etc/xbrvm/gA.cfg
    guest_cfg gB $WL_B_IP/24 $WL_B_MAC 1 "$VIFEXTRA" 160 $WL_B_IP6/64 > /etc/xbrvm/gB.cfg
    for g in gA gB; do
        t0=$(cut -d' ' -f1 /proc/uptime)
        if guest_create $g /etc/xbrvm/$g.cfg; then
            wl_result guest-create-$g PASS "domid $(guest_domid $g) in $(_secs_since $t0)s"
        else
            wl_result guest-create-$g FAIL "xl create failed: $(tail -3 /var/log/xen/xl-create-$g.log | tr '\n' ' ')"
        fi
    done
    for g in gA gB; do
        t0=$(cut -d' ' -f1 /proc/uptime)
        if guest_wait_ready $g 120; then
            WL_UP="$WL_UP $g"
            wl_result guest-ready-$g PASS "agent ready after $(_secs_since $t0)s more"
        else
            wl_result guest-ready-$g FAIL "state=$(xenstore-read "$(guest_xs $g)/state" 2>/dev/null)"
        fi
    done
    for g in gA gB; do
        d=$(guest_domid $g) || { wl_result vif-connected-$g FAIL "no guest"; wl_result queues-$g FAIL "no guest"; continue; }
        be=/local/domain/0/backend/vif/$d/0 fe=/local/domain/$d/device/vif/0
        bs=$(xenstore-read $be/state 2>/dev/null) fs=$(xenstore-read $fe/state 2>/dev/null)
        hs=$(xenstore-read $be/hotplug-status 2>/dev/null)
        if [ "$bs" = 4 ] && [ "$fs" = 4 ] && wl_port_ok $d; then
            wl_result vif-connected-$g PASS "vif$d.0 backend=4 frontend=4 hotplug-status=$hs"
        else
            wl_result vif-connected-$g FAIL "vif$d.0 backend=$bs frontend=$fs hotplug-status=$hs port_ok=$(wl_port_ok $d && echo y || echo n)"
        fi
        nq=$(xenstore-read $fe/multi-queue-num-queues 2>/dev/null || echo 1)
        want=1; [ $g = gA ] && want=2
        if [ "$nq" = $want ]; then wl_result queues-$g PASS "multi-queue-num-queues=$nq"
        else wl_result queues-$g FAIL "multi-queue-num-queues=$nq, expected $want"; fi
    done
}

# wl_ping_check RESULT NAME DST [PING-ARGS] — guest NAME pings DST 3 times after one ARP
# warm-up ping; RESULT (a full name) passes on 3/3 replies.
wl_ping_check() {
    local test=$1 name=$2 dst=$3 args=${4:-} rx
    wl_up $name || { result $test FAIL "guest $name not up"; return; }
    gexec $name 60 "ping -c 1 -w 5 $args $dst >/dev/null; ping -c 3 -w 10 $args $dst"
    rx=$(ping_received "$GOUT")
    if [ "${rx:-0}" -eq 3 ]; then result $test PASS "$name -> $dst ${args:+$args }3/3 $(echo "$GOUT" | grep round-trip)"
    else result $test FAIL "$name -> $dst ${args:+$args }${rx:-0}/3 rc=$GRC: $(echo "$GOUT" | tail -3 | tr '\n' ' ')"; fi
}
# wl_ping NAME DST LABEL — the workload's $DP.ping-NAME-LABEL
wl_ping() { wl_ping_check "$DP.ping-$1-$3" "$1" "$2"; }
wl_pings() {
    wl_ping gA $WL_HOST host; wl_ping gB $WL_HOST host
    wl_ping gA $WL_B_IP gB;   wl_ping gB $WL_A_IP gA
}

# TCP: one transfer at a time, so each figure has the datapath to itself.
wl_payloads() {
    local g
    for g in $WL_UP; do
        gexec $g 120 "xbr-payload $PAYLOAD_MIB"
        eval "WL_MD5_$g=\$(field md5 \"\$GOUT\") WL_BYTES_$g=\$(field bytes \"\$GOUT\")"
        say "$g: $GOUT"
    done
}
# dom0's busy CPU time so far, in ms (all its vCPUs: user, nice, system, irq, softirq; USER_HZ
# 100): taken around each transfer, so a datapath's cost in dom0 is measured beside its speed
# (a poll-mode xbrd spins a vCPU while frames flow; the kernel's netback runs in softirq).
_dom0_busy_ms() { awk '/^cpu / { print ($2 + $3 + $4 + $7 + $8) * 10; exit }' /proc/stat; }
# _tcp_metrics TEST BPS CPU_LIST — the median bytes/s and the median CPU per MiB moved as
# METRIC lines; BPS also left in WL_BPS_<TEST>.
_tcp_metrics() {
    local cpu
    cpu=$(echo $3 | _median)
    metric $DP.$1.Bps "$2" B/s
    metric $DP.$1.dom0_cpu_ms_per_MiB "$(awk -v c="$cpu" -v m="$PAYLOAD_MIB" 'BEGIN { printf "%.1f", c / m }')" ms/MiB
    eval "WL_BPS_$(echo "$1" | tr -c 'a-zA-Z0-9\n' _)=\$2"
}
_md5_of() { eval "echo \${WL_MD5_$1:-}"; }
_bytes_of() { eval "echo \${WL_BYTES_$1:-0}"; }

# wl_tcp_host NAME [DST TEST] — guest → host sink (default $WL_HOST, result tcp-NAME-host); the
# sink measures bytes/md5/time on the host side.
wl_tcp_host() {
    local g=$1 dst=${2:-$WL_HOST} test=${3:-tcp-$1-host} i=0 sink bytes md5 bps all="" bad=""
    local c0 cpus=""
    wl_up $g || { wl_result $test FAIL "guest $g not up"; return; }
    while [ $i -lt "$TCP_REPEAT" ]; do
        i=$((i + 1))
        c0=$(_dom0_busy_ms)
        gexec $g 240 "xbr-send $dst 5002 200"
        cpus="$cpus $(($(_dom0_busy_ms) - c0))"
        say "$g: $(echo "$GOUT" | tr '\n' ' ')"
        sink=$(echo "$GOUT" | grep '^SINK')
        bytes=$(field bytes "$sink") md5=$(field md5 "$sink") bps=$(field Bps "$sink")
        if [ "$GRC" = 0 ] && [ -n "$md5" ] && [ "$md5" = "$(_md5_of $g)" ] && [ "${bytes:-0}" = "$(_bytes_of $g)" ]; then
            all="$all $bps"
        else
            bad="rc=$GRC bytes=$bytes md5=$md5 expected $(_md5_of $g)/$(_bytes_of $g): $(echo "$GOUT" | tail -2 | tr '\n' ' ')"
            break
        fi
    done
    if [ -z "$bad" ]; then
        bps=$(echo $all | _median)
        wl_result $test PASS "bytes=$bytes md5 ok Bps=$bps (runs:$all; dom0 busy ms:$cpus)"
        _tcp_metrics $test "$bps" "$cpus"
    else
        wl_result $test FAIL "$bad"
    fi
}

# wl_tcp_guest FROM TO TO_IP [TEST] — the receiver stores the stream, the sender times it (until
# the receiver closes). TEST: the result's name (default tcp-FROM-TO). Both this and
# wl_tcp_host leave the figure in WL_BPS_<TEST> too (tcp-gB-gA: WL_BPS_tcp_gB_gA).
wl_tcp_guest() {
    local from=$1 to=$2 ip=$3 test=${4:-tcp-$1-$2} port=5003 i=0 sent rx bytes md5 bps all="" bad=""
    local c0 cpus=""
    wl_up $from && wl_up $to || { wl_result $test FAIL "guests not up"; return; }
    while [ $i -lt "$TCP_REPEAT" ]; do
        i=$((i + 1))
        gexec $to 30 "xbr-listen $port 240" || { bad="listen on $to: $GOUT"; break; }
        c0=$(_dom0_busy_ms)
        gexec $from 240 "xbr-send $ip $port 200"; sent=$GOUT
        cpus="$cpus $(($(_dom0_busy_ms) - c0))"
        say "$from: $(echo "$sent" | tr '\n' ' ')"
        gexec $to 60 "xbr-rxstat $port 30"; rx=$GOUT
        say "$to: $rx"
        bytes=$(field bytes "$rx") md5=$(field md5 "$rx") bps=$(field Bps "$sent")
        if [ -n "$md5" ] && [ "$md5" = "$(_md5_of $from)" ] && [ "${bytes:-0}" = "$(_bytes_of $from)" ]; then
            all="$all $bps"
        else
            bad="received bytes=$bytes md5=$md5 expected $(_md5_of $from)/$(_bytes_of $from); sender: $(echo "$sent" | tail -2 | tr '\n' ' ')"
            break
        fi
    done
    if [ -z "$bad" ]; then
        bps=$(echo $all | _median)
        wl_result $test PASS "bytes=$bytes md5 ok Bps=$bps (runs:$all; dom0 busy ms:$cpus)"
        _tcp_metrics $test "$bps" "$cpus"
    else
        wl_result $test FAIL "$bad"
    fi
}
wl_tcp() {
    wl_payloads
    wl_tcp_host gA; wl_tcp_host gB
    wl_tcp_guest gA gB $WL_B_IP; wl_tcp_guest gB gA $WL_A_IP
}

# wl_destroy — xl destroy both; the domains, their backend dirs and vif netdevs must go.
wl_destroy() {
    local g d doms="" ok=1
    for g in gA gB; do d=$(guest_domid $g) && doms="$doms $d"; done
    for g in gA gB; do guest_domid $g >/dev/null && { guest_destroy $g || ok=0; }; done
    _wl_gone() {
        for d in $doms; do
            [ -e /sys/class/net/vif$d.0 ] && return 1
            xenstore-read /local/domain/0/backend/vif/$d >/dev/null 2>&1 && return 1
            xenstore-read /local/domain/$d >/dev/null 2>&1 && return 1
        done
        return 0
    }
    if [ $ok = 1 ] && wait_for 30 _wl_gone && [ "$(xl list | wc -l)" -eq 2 ]; then
        wl_result guest-destroy PASS "domains$doms destroyed, vifs and backend dirs gone"
    else
        wl_result guest-destroy FAIL "xl destroy ok=$ok, left: $(xl list | tail -n +3 | tr '\n' ' ') $(ls /sys/class/net | tr '\n' ' ')"
    fi
}

wl_run() {
    local t0; t0=$(cut -d' ' -f1 /proc/uptime)
    wl_guests
    wl_pings
    wl_tcp
    [ $XBRVM_FAILS -gt 0 ] && dump_diag
    wl_destroy
    metric $DP.workload.secs "$(_secs_since $t0)" s
}

# ---- the kernel datapath (the reference): xen-netback + a kernel bridge -------------------------

# wl_kernel_setup [DP] — load xen-netback and bridge, build xenbr0 with peth0 and dom0's address,
# and point the guests' vifs at it (the default vif script is /etc/xen/scripts/vif-bridge, ours).
# DP names the pass (default kernel).
wl_kernel_setup() {
    DP=${1:-kernel} VIFEXTRA=bridge=xenbr0
    wl_port_ok() { [ -e /sys/class/net/vif$1.0/brport ]; }
    if modload xen-netback && modload bridge \
       && ip link add xenbr0 type bridge stp_state 0 forward_delay 0 \
       && ip link set peth0 master xenbr0 && ip link set xenbr0 up \
       && ip addr add 10.99.0.2/24 dev xenbr0; then
        wl_result dom0-bridge PASS "xenbr0 with peth0, xen-netback loaded"
    else
        wl_result dom0-bridge FAIL "bridge setup failed"
    fi
}

# wl_kernel_teardown — undo wl_kernel_setup once its guests are gone: the bridge goes (peth0
# and dom0's address with it) and xen-netback is unloaded, so another datapath can serve vifs.
wl_kernel_teardown() {
    if ip link del xenbr0 && rmmod xen-netback && [ ! -d /sys/module/xen_netback ] &&
       [ ! -e /sys/class/net/peth0/master ]; then
        wl_result kernel-teardown PASS "xenbr0 deleted, xen-netback unloaded"
    else
        wl_result kernel-teardown FAIL "xenbr0 $([ -e /sys/class/net/xenbr0 ] && echo kept || echo gone), xen-netback $([ -d /sys/module/xen_netback ] && echo loaded || echo unloaded)"
    fi
}

# wl_dom0_ping — dom0's own address (on the datapath) reaches the host namespace.
wl_dom0_ping() {
    local out rx
    ping -c 1 -w 5 $WL_HOST > /dev/null 2>&1   # ARP warm-up
    out=$(ping -c 3 -w 10 $WL_HOST 2>&1)
    rx=$(ping_received "$out")
    if [ "${rx:-0}" -eq 3 ]; then wl_result dom0-ping-host PASS "3/3"
    else wl_result dom0-ping-host FAIL "${rx:-0}/3: $(echo "$out" | tail -2 | tr '\n' ' ')"; fi
}
