#!/usr/bin/python3
"""Parses a Prometheus text exposition with prometheus_client's own parser
(Debian: python3-prometheus-client) and checks it against `xbrctl -j stats`
of every bridge: each number of every port and of the bridge's FDB must be
the sample of its family with the right labels and the same value.

usage: check-metrics.py EXPOSITION STATS_JSON... (one file per bridge)
Prints one line per check; exit 1 on the first mismatch."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def die(msg):
    print("FAIL: " + msg)
    sys.exit(1)


text = open(sys.argv[1]).read()
samples = {}
types = {}
for fam in text_string_to_metric_families(text):
    types[fam.name] = fam.type
    for s in fam.samples:
        key = (s.name, tuple(sorted(s.labels.items())))
        if key in samples:
            die("duplicate series %s %s" % key)
        samples[key] = s.value
untyped = sorted(n for n, t in types.items() if t in ("untyped", "unknown"))
if untyped:
    die("families without a type: %s" % ", ".join(untyped))


def value(name, **labels):
    key = (name, tuple(sorted(labels.items())))
    if key not in samples:
        die("no sample %s%s" % (name, labels))
    return samples[key]


checked = 0
for path in sys.argv[2:]:
    st = json.load(open(path))
    br = st["bridge"]
    for k, v in st["fdb"].items():
        name = "xbr_bridge_fdb_" + k
        got = value(name + "_total", bridge=br) if (name + "_total", (("bridge", br),)) in samples \
            else value(name, bridge=br)
        if got != v:
            die("%s{bridge=%s} = %s, xbrctl stats says %s" % (name, br, got, v))
        checked += 1
    for p in st["ports"]:
        labels = {"bridge": br, "port": p["name"], "type": p["type"]}
        if p["type"] == "netback":
            dom, dev = p["name"][3:].split(".")
            labels.update(domid=dom, devid=dev)
            if int(dom) != p["guest_domid"]:
                die("%s: domid label %s, guest_domid %s" % (p["name"], dom, p["guest_domid"]))
        for k, v in p["stats"].items():
            got = value("xbr_port_%s_total" % k, **labels)
            if got != v:
                die("xbr_port_%s_total%s = %s, xbrctl stats says %s" % (k, labels, got, v))
            checked += 1
        for k in ("port_no", "mtu", "fdb_entries"):
            if value("xbr_port_" + k, **labels) != p[k]:
                die("xbr_port_%s%s != %s" % (k, labels, p[k]))
            checked += 1
        if p["type"] == "netback":
            for k, v in p["netback_stats"].items():
                got = value("xbr_vif_%s_total" % k, **labels)
                if got != v:
                    die("xbr_vif_%s_total%s = %s, xbrctl stats says %s" % (k, labels, got, v))
                checked += 1
        if p["type"] == "vxlan":
            for k, v in p["vxlan"].items():
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    continue  # addresses, the remote list: not numbers
                name = "xbr_vxlan_" + k
                total = (name + "_total", tuple(sorted(labels.items()))) in samples
                got = value(name + "_total" if total else name, **labels)
                if got != v:
                    die("%s%s = %s, xbrctl stats says %s" % (name, labels, got, v))
                checked += 1
        info = [s for (n, l), s in samples.items()
                if n == "xbr_port_info" and dict(l).get("port") == p["name"]]
        if len(info) != 1:
            die("%s: %d xbr_port_info samples" % (p["name"], len(info)))
print("ok: %d families parsed by prometheus_client, %d numbers equal xbrctl -j stats"
      % (len(types), checked))
