#!/usr/bin/env bash
# Metrics of netback vifs: a host pings a simulated guest through xbrd-sim; `xbrctl metrics`, parsed by prometheus_client's own parser, has
# every counter of `xbrctl -j stats`, the vif ones (from-guest, to-guest, ...)
# as xbr_vif_*_total with domid and devid labels that match the guest.
NB_LIB=1 . "$(dirname "$0")/nb-test.sh"
PY=/usr/bin/python3
CHECK="$(dirname "$0")/../integration/check-metrics.py"
"$PY" -c 'import prometheus_client.parser' 2>/dev/null ||
    fail "prometheus_client missing (Debian: python3-prometheus-client)"

# A guest that answers pings (it holds its vif connected meanwhile) and a
# host namespace on the same bridge, as in nb-test.sh ping.
start_sim
start_xbrd
ctl add-br xenbr0 >/dev/null
ip netns add "$NS"
ip link add "${NS}h" type veth peer name eth0 netns "$NS"
ip link set "${NS}h" up
ip -n "$NS" addr add 10.77.0.1/24 dev eth0
ip -n "$NS" link set eth0 up
ip -n "$NS" link set lo up
ctl add-port xenbr0 "${NS}h" >/dev/null
attach 1
"$NETFRONT" --domid 1 --ip 10.77.0.2 echo --hold 20 >"$WORK/echo" 2>&1 &
BG+=($!)
wait_port vif1.0 1 || fail "vif1.0 not a port"
wait_forwarding
ip netns exec "$NS" ping -c 5 -i 0.2 -W 2 10.77.0.2 >/dev/null || fail "host -> guest ping"
ctl stp set xenbr0 enabled no   # no BPDUs moving the counters while we compare
consistent=0
for _ in $(seq 10); do
    ctl -j stats xenbr0 >"$WORK/stats1.json"
    ctl metrics >"$WORK/metrics.prom"
    ctl -j stats xenbr0 >"$WORK/stats2.json"
    if cmp -s "$WORK/stats1.json" "$WORK/stats2.json"; then consistent=1; break; fi
    sleep 0.5
done
[ "$consistent" = 1 ] || fail "counters never stood still"
[ "$(jq '[.ports[] | select(.type == "netback")] | length' "$WORK/stats1.json")" = 1 ] ||
    fail "not one vif port: $(cat "$WORK/stats1.json")"
out=$("$PY" "$CHECK" "$WORK/metrics.prom" "$WORK/stats1.json") || fail "$out"
echo "$out"
grep -E '^xbr_vif_from_guest_total\{bridge="xenbr0",port="vif1.0",type="netback",domid="1",devid="0"\} [1-9]' \
    "$WORK/metrics.prom" >/dev/null || fail "no from-guest counter for vif1.0 with domid/devid: $(grep from_guest "$WORK/metrics.prom")"
grep -E '^xbr_vif_to_guest_total\{bridge="xenbr0",port="vif1.0",type="netback",domid="1",devid="0"\} [1-9]' \
    "$WORK/metrics.prom" >/dev/null || fail "no to-guest counter for vif1.0"
grep -E '^xbr_vif_ring_rx_posted\{bridge="xenbr0",port="vif1.0",type="netback",domid="1",devid="0",queue="0"\} ' \
    "$WORK/metrics.prom" >/dev/null || fail "no per-queue ring gauge"
ok "vif metrics: prometheus_client parses them, they equal xbrctl -j stats, with domid/devid labels"
