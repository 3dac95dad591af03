#!/usr/bin/env bash
# Metrics: xbrd -m writes a Prometheus textfile; the real consumer,
# node_exporter's textfile collector (Debian: prometheus-node-exporter),
# accepts it and serves it; prometheus_client's parser (python3-prometheus-
# client) reads the scrape, and every counter equals `xbrctl -j stats`.
# The file is removed when xbrd stops.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3   # Debian's, where python3-prometheus-client lives
NODE_EXPORTER=$(command -v prometheus-node-exporter || command -v node_exporter || true)
[ -n "$NODE_EXPORTER" ] || fail "node_exporter missing (Debian: prometheus-node-exporter)"
"$PY" -c 'import prometheus_client.parser' 2>/dev/null ||
    fail "prometheus_client missing (Debian: python3-prometheus-client)"
CHECK="$(dirname "$0")/check-metrics.py"

make_switch_ns
for i in 1 2; do add_host "$i"; done
mkdir "$WORK/textfile"
PROM="$WORK/textfile/xbr.prom"
cat >"$WORK/xbrd.conf" <<CONF
add-br br0
add-port br0 v1
add-port br0 v2
add-port br0 ${P}t --type tap
CONF
start_xbrd --config "$WORK/xbrd.conf" --metrics-file "$PROM" --metrics-interval 1
wait_forwarding br0
[ -s "$PROM" ] || fail "no metrics file at start"
# No BPDUs (and so no counter moving by itself) while we compare.
xc stp set br0 enabled no

# Traffic: pings, and frames to an unknown MAC (flooded).
in_h 1 ping -c 5 -i 0.1 -W 2 10.123.0.2 >/dev/null || fail "h1 -> h2"
in_h 1 "$FRAMETOOL" send eth0 --dst 02:00:00:00:99:99 --count 50 >/dev/null
settle br0 v1

# node_exporter in the switch namespace, on its loopback only.
port=$((20000 + $$ % 20000))
ip netns exec "$SW" "$NODE_EXPORTER" --collector.disable-defaults --collector.textfile \
    --collector.textfile.directory="$WORK/textfile" \
    --web.listen-address="127.0.0.1:$port" >"$WORK/node_exporter.log" 2>&1 &
NE_PID=$!
trap 'rc=$?; set +e; kill $NE_PID 2>/dev/null; wait $NE_PID 2>/dev/null; (exit $rc); cleanup' EXIT
scrape() {
    in_sw "$PY" -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
        "http://127.0.0.1:$port/metrics"
}
for _ in $(seq 50); do scrape >"$WORK/scrape" 2>/dev/null && break; sleep 0.1; done
[ -s "$WORK/scrape" ] || fail "node_exporter does not answer: $(cat "$WORK/node_exporter.log")"

# A consistent pair: the counters did not move for longer than two file
# writes around the scrape, so the file node_exporter read has them too.
consistent=0
for _ in $(seq 10); do
    xc -j stats br0 >"$WORK/stats1.json"
    sleep 2.5
    scrape >"$WORK/scrape"
    xc -j stats br0 >"$WORK/stats2.json"
    if cmp -s "$WORK/stats1.json" "$WORK/stats2.json"; then consistent=1; break; fi
done
[ "$consistent" = 1 ] || fail "counters never stood still for 2.5 s"
grep -q '^node_textfile_scrape_error 0$' "$WORK/scrape" ||
    fail "node_exporter refused the file: $(grep textfile "$WORK/scrape"; tail -5 "$WORK/node_exporter.log")"
grep -q '^xbr_port_rx_packets_total{bridge="br0",port="v1",type="afpacket"}' "$WORK/scrape" ||
    fail "node_exporter does not serve xbr's metrics"
ok "node_exporter's textfile collector accepted the file (node_textfile_scrape_error 0)"
out=$("$PY" "$CHECK" "$WORK/scrape" "$WORK/stats1.json") || fail "$out"
echo "$out"
[ "$(jq '.ports[] | select(.name == "v1") | .stats.rx_packets' "$WORK/stats1.json")" -ge 55 ] ||
    fail "the traffic did not show in the counters"
ok "the scrape, parsed by prometheus_client, equals xbrctl -j stats"

# xbrctl metrics renders the same exposition on demand (compared with stats
# read just before and after it, unchanged in between).
consistent=0
for _ in $(seq 10); do
    xc -j stats br0 >"$WORK/stats1.json"
    xc metrics >"$WORK/direct.prom"
    xc -j stats br0 >"$WORK/stats2.json"
    if cmp -s "$WORK/stats1.json" "$WORK/stats2.json"; then consistent=1; break; fi
    sleep 0.5
done
[ "$consistent" = 1 ] || fail "counters never stood still around xbrctl metrics"
out=$("$PY" "$CHECK" "$WORK/direct.prom" "$WORK/stats1.json") || fail "xbrctl metrics: $out"
expect_fail "Prometheus text format" xc -j metrics
ok "xbrctl metrics parses and matches too"

kill -TERM "$XBRD_PID"; wait "$XBRD_PID" || fail "xbrd exited $? on SIGTERM"; XBRD_PID=""
[ -e "$PROM" ] && fail "metrics file left behind after a clean stop"
ok "the metrics file is removed on a clean stop"
