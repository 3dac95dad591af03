#!/bin/sh
# xbr on real Xen (runs in dom0, busybox sh). Part 1: xbrd is the only vif backend (xen-netback
# is not loaded) and the standard workload runs through it, then the checks only a real
# hypervisor and the stock xen-netfront can answer: GSO end to end, MTU-sized and fragmented
# ICMP, destroy/create and a guest's own reboot without leaked grant mappings or event-channel
# bindings, xbrd killed with SIGKILL and restarted under running guests, and the seed's loop
# (dom0's eth0 bridged twice), IPv6 (ICMPv6 and TCP, guest to guest and to the host), and
# `xl network-detach` / `network-attach` of a running guest's vif. Throughout, xbrd's log and
# counters are checked at every step: an error line, a protocol violation, a refused connect, a
# disconnect nobody asked for or a drop counter that moved fails the run. Part 2: xbrd stops and the same workload runs through the kernel's
# xen-netback and a kernel bridge, so that the xbr/kernel throughput ratio comes from one VM run.
#
# Needs in dom0 (run-xbr.sh puts them there): /usr/sbin/xbrd, /usr/sbin/xbrctl,
# /usr/local/bin/xbr-frametool, /etc/xen/scripts/vif-xbr, and /etc/xbr/xbrd.conf (the shipped
# bridge/xbrd.conf). xbrd is started as bridge/xbrd.service starts it, the vifs use the xl vif
# line the README gives: what the README says about a real host is what this runs.
. /usr/lib/xbrvm/lib.sh
. /usr/lib/xbrvm/workload.sh

XBRD_LOG=/var/log/xbrd.log
XBRD_CONF=/etc/xbr/xbrd.conf
XBRD_OPTS="-w 2"   # two workers: guests get up to two queues
XBRD_PID=""
DOM0_IP=10.99.0.2/24

# ---- helpers --------------------------------------------------------------------------------

# xbrd_start — start xbrd as the systemd unit does (ExecStart) and wait for its control socket.
# dom0's own address lives on the tap port named like the bridge (see xbrd.conf), so that
# whatever used the kernel bridge's xenbr0 interface keeps working.
xbrd_start() {
    xbrd $XBRD_OPTS -c $XBRD_CONF >> $XBRD_LOG 2>&1 &
    XBRD_PID=$!
    wait_for 10 xbrctl show || return 1
    xbr_has_port peth0 && xbr_has_port xenbr0 || return 1
    ip addr add $DOM0_IP dev xenbr0 2>/dev/null
    ip link set xenbr0 up
}
# xbr_port_line NAME — the port's line in `xbrctl show` (name type state role ...), and fields of it.
xbr_port_line() { xbrctl show xenbr0 2>/dev/null | awk -v n="$1" '$1 == n { print; exit }'; }
xbr_has_port() { [ -n "$(xbr_port_line "$1")" ]; }
xbr_vifs() { xbrctl show xenbr0 | awk '/^  vif/ { print $1 }' | sort | tr '\n' ' '; }
xbr_port_state() { xbr_port_line "$1" | awk '{ print $3 }'; }
xbr_port_role() { xbr_port_line "$1" | awk '{ print $4 }'; }
# What xbrd holds from the hypervisor: grant mappings (one VMA of /dev/xen/gntdev per mapped
# ring page) and event channels bound through /dev/xen/evtchn (the kernel names each binding's
# interrupt "evtchn:<comm>"). The kernel's view, not xbrd's own bookkeeping.
xbr_maps() { grep -c /dev/xen/gntdev /proc/$XBRD_PID/maps 2>/dev/null || true; }
xbr_evtchns() { grep -c 'evtchn:xbrd' /proc/interrupts 2>/dev/null || true; }
xbr_holdings() { echo "gntdev maps $(xbr_maps), evtchn bindings $(xbr_evtchns)"; }
# Total guest queues connected to xbrd (each: one TX and one RX ring, two event channels).
xbr_queues() { xbrctl show xenbr0 | sed -n 's/.* queues \([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }'; }
# Sum of the netback GSO counters over all vif ports: "from-guest N gso M" / "to-guest N gso M".
xbr_gso() { xbrctl show xenbr0 | sed -n "s/.*$1 [0-9]* gso \([0-9]*\).*/\1/p" | awk '{ s += $1 } END { print s + 0 }'; }
guest_refresh_domid() { xl domid "$1" > $XBRVM_RUN/domid.$1 2>/dev/null; }
# port_gone NAME — not (or no longer: vif teardown is async) in `xbrctl show`
port_gone() { ! xbr_has_port "$1"; }
port_forwarding() { for p in "$@"; do [ "$(xbr_port_state "$p")" = forwarding ] || return 1; done; }
no_holdings() { [ "$(xbr_maps)" = 0 ] && [ "$(xbr_evtchns)" = 0 ]; }

# xbr_unexpected_drops — "port:counter=N" for every drop counter of every port that should
# never move on this rig: frames lost by the bridge or by netback (runts, bad sources, the
# port's own drops, full BPDU queues, MTU, a full TX, bad/spoofed/bad-offload frames from a
# guest, frames to a guest without buffers, unsegmented GSO, too big). Not counted: STP's
# discarding and link-local drops, and frames whose destination is their ingress port
# (filtered): the bridge is meant to drop those.
xbr_unexpected_drops() {
    xbrctl stats xenbr0 2>/dev/null | awk '
        NF >= 3 && ($2 == "afpacket" || $2 == "tap" || $2 == "netback") { port = $1; next }
        /rx drops:|tx drops:|from-guest|to-guest/ {
            for (i = 1; i < NF; i++) {
                k = $i; v = $(i + 1)
                if (k == "dropped" || v !~ /^[0-9]+$/) continue
                if ($0 ~ /tx drops:/ && k == "full") k = "tx-full"
                if (k ~ /^(runt|bad-source|port|bpdu-queue|mtu|tx-full|bad|spoofed|bad-offload|no-buffers|gso-unsupported|too-big)$/ && v > 0)
                    printf "%s:%s=%s\n", port, k, v
            }
        }'
}
# xbr_new_drops — what xbr_unexpected_drops shows beyond the last call's figures (the same
# port and counter; a port that is new starts from 0), as "port:counter=+N ".
XBR_DROPS_SEEN=$XBRVM_RUN/drops.seen
xbr_new_drops() {
    mkdir -p $XBRVM_RUN; touch $XBR_DROPS_SEEN
    xbr_unexpected_drops > $XBR_DROPS_SEEN.now
    awk -F= 'NR == FNR { seen[$1] = $2; next } $2 - seen[$1] > 0 { printf "%s=+%d ", $1, $2 - seen[$1] }' \
        $XBR_DROPS_SEEN $XBR_DROPS_SEEN.now
    mv $XBR_DROPS_SEEN.now $XBR_DROPS_SEEN
}
# The same for the kernel's tx_dropped of every interface (a send the kernel refused).
XBR_KDROPS_SEEN=$XBRVM_RUN/kdrops.seen
xbr_new_kernel_drops() {
    mkdir -p $XBRVM_RUN; touch $XBR_KDROPS_SEEN
    for v in /sys/class/net/*/statistics/tx_dropped; do
        n=${v#/sys/class/net/}; echo "${n%%/*}=$(cat $v)"
    done > $XBR_KDROPS_SEEN.now
    awk -F= 'NR == FNR { seen[$1] = $2; next } $2 - seen[$1] > 0 { printf "%s:tx_dropped=+%d ", $1, $2 - seen[$1] }' \
        $XBR_KDROPS_SEEN $XBR_KDROPS_SEEN.now
    mv $XBR_KDROPS_SEEN.now $XBR_KDROPS_SEEN
}
# xbr_check NAME [VIF...] — RESULT xbr.clean-NAME: since the last check xbrd logged no error
# (<3>), no protocol violation and no refused connect, disconnected no vif but the VIFs named
# (the step's planned lifecycle), and no drop counter above moved; netback counts no violation.
# A failure also shows which interfaces' kernel tx_dropped moved.
XBR_LOG_MARK=0
xbr_check() {
    local name=$1 total new bad="" v disc drops kdrops viol; shift
    total=$(wc -l < $XBRD_LOG)
    new=$(tail -n +$((XBR_LOG_MARK + 1)) $XBRD_LOG | head -n $((total - XBR_LOG_MARK)))
    XBR_LOG_MARK=$total
    bad=$(echo "$new" | grep -E '^<[0-3]>|protocol violation|cannot connect' | head -3 | tr '\n' ' ')
    disc=$(echo "$new" | sed -n 's/.*netback: \(vif[0-9.]*\) disconnected.*/\1/p' | tr '\n' ' ')
    for v in $disc; do
        case " $* " in *" $v "*) ;; *) bad="$bad unplanned disconnect of $v;" ;; esac
    done
    drops=$(xbr_new_drops) kdrops=$(xbr_new_kernel_drops)
    viol=$(xbrctl vif show 2>/dev/null | sed -n 's/^netback: violations \([0-9]*\).*/\1/p')
    [ "${viol:-x}" = 0 ] || bad="$bad netback violations ${viol:-?};"
    [ -z "$drops" ] || bad="$bad drops: $drops"
    if [ -z "$bad" ]; then
        result xbr.clean-$name PASS "$(echo "$new" | grep -c .) new log lines, disconnects: ${disc:-none}(planned: ${*:-none}), no drop counter moved"
    else
        result xbr.clean-$name FAIL "$bad${kdrops:+ kernel: $kdrops}"
        xbrctl stats xenbr0; echo "$new" | tail -20
    fi
}

expect xbr.no-kernel-netback xbr.xbrd-up xbr.dom0-ping-host
DP=xbr; wl_expect
expect xbr.gso-end-to-end xbr.ping-mtu xbr.ping-fragmented \
       xbr.holdings-connected xbr.destroy-port-leaves xbr.create-port-back xbr.create-traffic \
       xbr.reboot-port-back xbr.reboot-traffic xbr.holdings-after-lifecycle \
       xbr.restart-pickup xbr.restart-guests-untouched xbr.restart-traffic \
       xbr.loop-refused xbr.loop-blocked xbr.loop-no-storm \
       xbr.holdings-released xbr.xbrd-stop \
       xbr.ping6-gA-gB xbr.ping6-gB-host xbr.tcp6-gA-gB xbr.tcp6-gB-host \
       xbr.net-detach-port-leaves xbr.net-detach-released xbr.net-attach-port-back \
       xbr.net-attach-ping xbr.net-attach-tcp xbr.net-attach-holdings \
       xbr.clean-workload xbr.clean-lifecycle xbr.clean-restart xbr.clean-end
DP=kernel; wl_expect; expect kernel.dom0-bridge kernel.dom0-ping-host

# ---- part 1: xbr ------------------------------------------------------------------------------
DP=xbr VIFEXTRA=bridge=xenbr0,script=vif-xbr XBRVM_ON_REBOOT=restart
wl_port_ok() { xbr_has_port "vif$1.0"; }

if [ -d /sys/module/xen_netback ]; then
    result xbr.no-kernel-netback FAIL "xen-netback is loaded: it would serve the vifs"
else
    result xbr.no-kernel-netback PASS "xen-netback not loaded: xbrd is the only vif backend"
fi

modload tun    # (a real dom0 autoloads it; nothing autoloads modules here)
if xbrd_start; then
    result xbr.xbrd-up PASS "pid $XBRD_PID: $(xbrctl show xenbr0 | head -1)"
else
    result xbr.xbrd-up FAIL "$(tail -5 $XBRD_LOG | tr '\n' ' ')"
    cat $XBRD_LOG
    exit $XBRVM_FAILS
fi
# peth0 hears no BPDU: RSTP makes it an edge port after the 3 s migrate time.
wait_for 15 port_forwarding peth0
wl_dom0_ping

t_run=$(cut -d' ' -f1 /proc/uptime)
wl_guests
wl_pings
wl_tcp

# GSO end to end: netfront sent TSO frames (from-guest gso) and received GRO'd/GSO frames back
# (to-guest gso) during the guest-to-guest transfers; the transfers' md5s were checked above.
gin=$(xbr_gso from-guest) gout=$(xbr_gso to-guest)
if [ "$gin" -gt 0 ] && [ "$gout" -gt 0 ]; then
    result xbr.gso-end-to-end PASS "GSO frames from guests $gin, to guests $gout"
else
    result xbr.gso-end-to-end FAIL "GSO frames from guests $gin, to guests $gout"
    xbrctl show xenbr0
fi
wl_ping_check xbr.ping-mtu gA $WL_B_IP "-s 1472"          # 1500-byte IP packets, unfragmented
wl_ping_check xbr.ping-fragmented gA $WL_HOST "-s 4000"   # 3 fragments each way, via peth0

# IPv6: neighbour discovery (multicast through the bridge), ICMPv6 and TCP with the stock
# netfront's IPv6 checksum and TSO offloads, guest to guest and to the host through peth0.
wl_ping_check xbr.ping6-gA-gB gA $WL_B_IP6
wl_ping_check xbr.ping6-gB-host gB $WL_HOST6
TCP_REPEAT_SAVED=$TCP_REPEAT TCP_REPEAT=1
wl_tcp_guest gA gB $WL_B_IP6 tcp6-gA-gB
wl_tcp_host gB $WL_HOST6 tcp6-gB-host
TCP_REPEAT=$TCP_REPEAT_SAVED
xbr_check workload

# What a healthy xbrd holds with both guests up: 2 mappings and 2 bindings per queue.
nq=$(xbr_queues) maps0=$(xbr_maps) ev0=$(xbr_evtchns)
if [ "$nq" -gt 0 ] && [ "$maps0" = $((2 * nq)) ] && [ "$ev0" = $((2 * nq)) ]; then
    result xbr.holdings-connected PASS "$nq queues: $(xbr_holdings)"
else
    result xbr.holdings-connected FAIL "$nq queues: $(xbr_holdings) (expected $((2 * nq)) each)"
fi

# -- lifecycle: xl destroy + xl create of gB
dB=$(guest_domid gB) || dB=none
guest_destroy gB
if [ $dB != none ] && wait_for 30 port_gone vif$dB.0; then
    result xbr.destroy-port-leaves PASS "vif$dB.0 left xenbr0: $(xbr_holdings)"
else
    result xbr.destroy-port-leaves FAIL "vif$dB.0 still a port: $(xbr_port_line vif$dB.0)"
fi
WL_UP=gA
if guest_create gB /etc/xbrvm/gB.cfg && guest_wait_ready gB 120; then
    WL_UP="gA gB"; dB2=$(guest_domid gB)
    if wait_for 20 xbr_has_port vif$dB2.0; then
        result xbr.create-port-back PASS "gB is domain $dB2, vif$dB2.0 on xenbr0"
    else
        result xbr.create-port-back FAIL "vif$dB2.0 not a port"
    fi
    wl_ping_check xbr.create-traffic gA $WL_B_IP
else
    result xbr.create-port-back FAIL "gB did not come back: $(tail -3 /var/log/xen/xl-create-gB.log | tr '\n' ' ')"
    result xbr.create-traffic FAIL "no gB"
fi

# -- lifecycle: gA reboots itself; xl (on_reboot=restart) builds a new domain
dA=$(guest_domid gA) || dA=none
dA_old=$dA
gexec gA 20 "(sleep 1; reboot -f) >/dev/null 2>&1 &"
_new_gA() { d=$(xl domid gA 2>/dev/null) && [ -n "$d" ] && [ "$d" != "$dA" ]; }
if wait_for 90 _new_gA && guest_refresh_domid gA && guest_wait_ready gA 120; then
    dA2=$(guest_domid gA)
    if wait_for 20 xbr_has_port vif$dA2.0 && port_gone vif$dA.0; then
        result xbr.reboot-port-back PASS "gA rebooted: domain $dA -> $dA2, vif$dA.0 gone, vif$dA2.0 on xenbr0"
    else
        result xbr.reboot-port-back FAIL "after the reboot: $(xbr_vifs)"
    fi
    wl_ping_check xbr.reboot-traffic gA $WL_HOST
else
    result xbr.reboot-port-back FAIL "gA (domain $dA) did not come back: $(xl list | tail -n +2 | tr '\n' ' ')"
    result xbr.reboot-traffic FAIL "no gA"
    WL_UP=gB
fi

# The same guests are up again: xbrd must hold exactly what it held before.
if [ "$maps0" -gt 0 ] && [ "$(xbr_maps)" = "$maps0" ] && [ "$(xbr_evtchns)" = "$ev0" ]; then
    result xbr.holdings-after-lifecycle PASS "$(xbr_holdings), as before destroy/create/reboot"
else
    result xbr.holdings-after-lifecycle FAIL "$(xbr_holdings); before: gntdev maps $maps0, evtchn bindings $ev0"
fi

# -- toolstack lifecycle: xl network-detach and network-attach of gA's running vif
dA=$(guest_domid gA) || dA=none
maps1=$(xbr_maps) ev1=$(xbr_evtchns)
nqA=$(xbrctl show xenbr0 | awk -v p=vif$dA.0 '$1 == p { f = 1; next } f && /queues/ { sub(/.*queues /, ""); print $1; exit }')
_detached() { port_gone vif$dA.0 && ! xenstore-read /local/domain/0/backend/vif/$dA/0/state >/dev/null 2>&1; }
if [ "$dA" != none ] && timeout 60 xl network-detach gA 0 > /var/log/xen/xl-detach.log 2>&1 && wait_for 30 _detached; then
    result xbr.net-detach-port-leaves PASS "xl network-detach gA 0: vif$dA.0 left xenbr0, backend directory gone"
else
    result xbr.net-detach-port-leaves FAIL "vif$dA.0: $(xbr_port_line vif$dA.0); $(tail -3 /var/log/xen/xl-detach.log | tr '\n' ' ')"
fi
_released() { [ "$(xbr_maps)" = $((maps1 - 2 * ${nqA:-0})) ] && [ "$(xbr_evtchns)" = $((ev1 - 2 * ${nqA:-0})) ]; }
if [ -n "$nqA" ] && wait_for 10 _released; then
    result xbr.net-detach-released PASS "gA's $nqA queue(s) released: $(xbr_holdings) (was $maps1 / $ev1)"
else
    result xbr.net-detach-released FAIL "gA had ${nqA:-?} queue(s); now $(xbr_holdings), before $maps1 / $ev1"
fi
gexec gA 20 "ls /sys/class/net"; say "gA's interfaces after the detach: $(echo $GOUT)"
_attached() { xbr_has_port vif$dA.0 && xs_is /local/domain/0/backend/vif/$dA/0/state 4; }
# (xl network-attach takes the vif spec as separate KEY=VALUE arguments)
if timeout 60 xl network-attach gA mac=$WL_A_MAC bridge=xenbr0 script=vif-xbr > /var/log/xen/xl-attach.log 2>&1 \
   && wait_for 30 _attached && gexec gA 60 "xbr-ifup"; then
    result xbr.net-attach-port-back PASS "xl network-attach: vif$dA.0 on xenbr0 again, $(xbr_port_line vif$dA.0 | awk '{print $3}'); guest: $GOUT"
else
    result xbr.net-attach-port-back FAIL "vif$dA.0: $(xbr_port_line vif$dA.0); guest: $GOUT; $(tail -3 /var/log/xen/xl-attach.log | tr '\n' ' ')"
fi
wait_for 15 port_forwarding vif$dA.0
wl_ping_check xbr.net-attach-ping gA $WL_B_IP
wl_payloads        # gA and gB are new domains since the first transfers: new payloads
TCP_REPEAT=1 wl_tcp_guest gA gB $WL_B_IP net-attach-tcp; TCP_REPEAT=$TCP_REPEAT_SAVED
if [ "$(xbr_maps)" = "$maps1" ] && [ "$(xbr_evtchns)" = "$ev1" ]; then
    result xbr.net-attach-holdings PASS "$(xbr_holdings), as before the detach"
else
    result xbr.net-attach-holdings FAIL "$(xbr_holdings); before the detach: $maps1 / $ev1"
fi
xbr_check lifecycle vif$dB.0 vif$dA_old.0 vif$dA.0

# -- xbrd killed with SIGKILL under running guests, started again
# (gexec must run in this shell, not in $(...): it counts its requests)
gexec gA 20 "cat /sys/class/net/eth0/carrier_changes"; cc0=$GOUT
vifs0=$(xbr_vifs)
kill -KILL $XBRD_PID; wait $XBRD_PID 2>/dev/null
say "xbrd killed; vifs were: $vifs0"
xbrd_start
_picked_up() { [ "$(xbr_vifs)" = "$vifs0" ]; }
if [ -n "$vifs0" ] && wait_for 20 _picked_up; then
    result xbr.restart-pickup PASS "new xbrd $XBRD_PID took back ${vifs0}from xenstore: $(xbr_holdings)"
else
    result xbr.restart-pickup FAIL "vif ports now: $(xbr_vifs), before: $vifs0"
    tail -20 $XBRD_LOG
fi
wait_for 15 port_forwarding peth0
wl_ping_check xbr.restart-traffic gA $WL_B_IP
XBR_LOG_MARK=$(grep -n 'xbrd .*worker(s), control socket' $XBRD_LOG | tail -1 | cut -d: -f1)
XBR_LOG_MARK=$((XBR_LOG_MARK - 1))   # the new xbrd's log from its first line
: > $XBR_DROPS_SEEN                   # and its counters from zero
xbr_check restart
fe_states=""
for g in $WL_UP; do fe_states="$fe_states $g:$(xenstore-read /local/domain/$(guest_domid $g)/device/vif/0/state)"; done
gexec gA 20 "cat /sys/class/net/eth0/carrier_changes"; cc1=$GOUT
if [ -n "$cc0" ] && [ "$cc0" = "$cc1" ] && ! echo "$fe_states" | grep -qv ':4'; then
    result xbr.restart-guests-untouched PASS "frontends stayed Connected ($fe_states), gA eth0 carrier changes $cc0 -> $cc1"
else
    result xbr.restart-guests-untouched FAIL "frontends:$fe_states, gA eth0 carrier changes '$cc0' -> '$cc1'"
fi

# -- the seed's loop: dom0's eth0 bridged through vif0.0 and then added again
modload veth
ip link add eth0 type veth peer name vif0.0
ip link add probe type veth peer name probe-h     # probe-h sends broadcasts into xenbr0
ip link add count type veth peer name count-h     # count-h counts what xenbr0 delivers
for i in eth0 vif0.0 probe probe-h count count-h; do ip link set $i up; done
xbrctl add-port xenbr0 vif0.0 && xbrctl add-port xenbr0 probe && xbrctl add-port xenbr0 count
wait_for 15 port_forwarding vif0.0 probe count     # edge ports after 3 s without BPDUs
if out=$(xbrctl add-port xenbr0 eth0 2>&1); then
    result xbr.loop-refused FAIL "add-port eth0 was accepted: $out"
else
    result xbr.loop-refused PASS "$out"
fi
xbrctl add-port xenbr0 eth0 --force
# Blocked: one end of the veth pair is a backup port (it hears the bridge's own BPDUs from the
# other end) and discards. The other end may still be on its way to forwarding.
_backup_discarding() { [ "$(xbr_port_role "$1")" = backup ] && [ "$(xbr_port_state "$1")" = discarding ]; }
_loop_decided() { _backup_discarding eth0 || _backup_discarding vif0.0; }
if wait_for 15 _loop_decided; then
    result xbr.loop-blocked PASS "forced: eth0 $(xbr_port_state eth0)/$(xbr_port_role eth0), vif0.0 $(xbr_port_state vif0.0)/$(xbr_port_role vif0.0)"
else
    result xbr.loop-blocked FAIL "eth0 $(xbr_port_line eth0); vif0.0 $(xbr_port_line vif0.0)"
fi
xbr-frametool count count-h --tag 7 --seconds 8 > /run/xbrvm/loop.count 2>&1 &
cpid=$!
sleep 0.5
xbr-frametool send probe-h --dst ff:ff:ff:ff:ff:ff --count 200 --rate 100 --tag 7
wait $cpid
n=$(sed -n 's/^count \([0-9]*\).*/\1/p' /run/xbrvm/loop.count)
if [ "${n:-0}" = 200 ]; then
    result xbr.loop-no-storm PASS "200 broadcasts sent, $n delivered: one copy each"
else
    result xbr.loop-no-storm FAIL "200 broadcasts sent, ${n:-?} delivered: $(cat /run/xbrvm/loop.count | tr '\n' ' ')"
fi
for p in eth0 vif0.0 probe count; do xbrctl del-port xenbr0 $p; done
ip link del eth0; ip link del probe; ip link del count

xbr_check end
[ $XBRVM_FAILS -gt 0 ] && { dump_diag; xbrctl show; tail -30 $XBRD_LOG; }
wl_destroy
metric xbr.workload.secs "$(awk -v a="$t_run" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }')" s
if wait_for 20 no_holdings; then
    result xbr.holdings-released PASS "no guest left: $(xbr_holdings)"
else
    result xbr.holdings-released FAIL "no guest left but $(xbr_holdings)"
fi
kill -TERM $XBRD_PID; wait $XBRD_PID; rc=$?
# xbrd's tap outlives it (dom0 keeps its address across restarts); moving back to the kernel's
# bridge, as an admin would, deletes it.
if [ $rc = 0 ] && [ -e /sys/class/net/xenbr0 ] && ip addr show xenbr0 | grep -q "${DOM0_IP%/*}"; then
    result xbr.xbrd-stop PASS "SIGTERM: exit 0, tap xenbr0 kept with dom0's address"
else
    result xbr.xbrd-stop FAIL "SIGTERM: exit $rc; xenbr0 $([ -e /sys/class/net/xenbr0 ] && echo kept || echo gone)"
fi
ip link del xenbr0 2>/dev/null
grep -E 'violation|ERROR|error' $XBRD_LOG | head -5
say "xbrd log: $(wc -l < $XBRD_LOG) lines"

# ---- part 2: the kernel's xen-netback and bridge, same workload -------------------------------
wl_kernel_setup
wl_dom0_ping
wl_run
exit $XBRVM_FAILS
