#!/usr/bin/env bash
# FDB behaviour through the daemon: ageing after the configured time,
# per-port and whole-bridge flush, static entries (used for forwarding, not
# aged, not moved by learning, kept by a plain flush).
. "$(dirname "$0")/lib.sh"

make_switch_ns
for i in 1 2 3; do
    add_host "$i"
    # No IPv6 chatter (MLD, RS) to re-learn addresses behind the test's back.
    in_h "$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
start_xbrd
xc add-br br0
for i in 1 2 3; do xc add-port br0 "v$i"; done
wait_forwarding br0
h1=$(host_mac 1); h2=$(host_mac 2); h3=$(host_mac 3)

# Learning through one test frame, not pings: a ping leaves ARP state whose
# delayed unicast probe (5 s later) would re-learn an address mid-test.
learn() { for i in "$@"; do in_h "$i" "$FRAMETOOL" send eth0 --dst ff:ff:ff:ff:ff:ff >/dev/null; done; }

# Not a pipeline inside $(...): a dead daemon must fail the test, not read
# as "no such entry".
fdb_port() {
    local j
    j=$(xc -j fdb show br0) || fail "xbrctl fdb show failed"
    jq -r --arg m "$1" '[.[] | select(.mac == $m) | .port] | first // "none"' <<<"$j"
}
fdb_has() {
    local p
    p=$(fdb_port "$1") || exit 1
    [ "$p" != none ]
}

# JSON shape of fdb show.
learn 1 2
xc -j fdb show br0 | jq -e 'type == "array" and length >= 2 and
    all(.[]; has("mac") and has("vlan") and has("port") and has("static") and has("age"))' >/dev/null \
    || fail "fdb show -j has the wrong shape: $(xc -j fdb show br0)"
ok "fdb show -j: array of {mac, vlan, port, static, age}"

# Ageing: 2 s.
xc set-ageing br0 2
[ "$(xc -j show br0 | jq '.[0].ageing')" = 2 ] || fail "ageing not set to 2"
fdb_has "$h1" || fail "h1 not learned"
sleep 4.5
fdb_has "$h1" && fail "h1 still in the FDB 4.5 s after its last frame with ageing 2 s"
fdb_has "$h2" && fail "h2 still in the FDB after ageing"
ok "learned entries aged out after the configured 2 s"
aged=$(xc -j stats br0 | jq '.fdb.aged')
[ "$aged" -ge 2 ] || fail "aged counter is $aged"

# Ageing precision: entries are aged a slice per 100 ms tick, so one goes
# within a tick or so of its time being up.  Its time is counted in whole
# seconds of the daemon's clock from its last frame: with ageing 2 s it may
# go between 1 and 2 s after that frame, never before 1 s, and (allowing
# 0.4 s for the polls and a busy machine) not later than 2.4 s.  The old
# once-a-second walk took up to 3 s.
now() { date +%s.%N; }
in_h 1 "$FRAMETOOL" send eth0 --dst ff:ff:ff:ff:ff:ff >/dev/null
t0=$(now)
fdb_has "$h1" || fail "h1 not learned for the precision check"
gone=""
while :; do
    t=$(now)
    if ! fdb_has "$h1"; then gone=$t; break; fi
    awk -v t="$t" -v t0="$t0" 'BEGIN { exit !(t - t0 > 4) }' && break
    sleep 0.03
done
[ -n "$gone" ] || fail "h1 still in the FDB 4 s after its frame with ageing 2 s"
age=$(awk -v a="$gone" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
awk -v x="$age" 'BEGIN { exit !(x >= 0.95 && x <= 2.4) }' \
    || fail "h1 aged out $age s after its last frame (ageing 2 s: expected 1..2.4 s)"
ok "ageing precision: an entry with ageing 2 s went $age s after its last frame"
xc set-ageing br0 300

# Static entry: forwarding uses it, learning does not move it, ageing
# leaves it, a plain flush keeps it.
S=02:00:00:00:00:99
xc fdb add br0 "$S" v3
count_start a3 3 --tag 21 --seconds 4 --expect 200
count_start a2 2 --tag 21 --seconds 4
in_h 1 "$FRAMETOOL" send eth0 --dst "$S" --tag 21 --count 200 --rate 20000 >/dev/null
count_result a3; n3=$COUNT; count_result a2; n2=$COUNT
[ "$n3" = 200 ] && [ "$n2" = 0 ] || fail "static entry: h3 got $n3/200, h2 got $n2 (want 0)"
ok "static entry steers frames to its port only (200 at h3, 0 at h2)"

in_h 2 "$FRAMETOOL" send eth0 --src "$S" --dst ff:ff:ff:ff:ff:ff --count 5 >/dev/null
[ "$(fdb_port "$S")" = v3 ] || fail "static entry moved to $(fdb_port "$S") by learning"
[ "$(xc -j fdb show br0 | jq -r --arg m "$S" '.[] | select(.mac == $m) | .static')" = true ] \
    || fail "static flag lost"
ok "learning does not move a static entry"

# Per-port flush.
learn 1 2 3
fdb_has "$h1" && fdb_has "$h2" && fdb_has "$h3" || fail "hosts not learned before flush"
xc fdb flush br0 v1 >/dev/null
fdb_has "$h1" && fail "h1 survived 'fdb flush br0 v1'"
fdb_has "$h2" || fail "h2 was flushed by a flush of v1"
ok "fdb flush BR PORT removes only that port's entries"

# Whole-bridge flush keeps static entries unless --static.
xc set-ageing br0 1
sleep 2.5
fdb_has "$S" || fail "static entry aged out"
ok "static entry not aged"
xc set-ageing br0 300
learn 1 2
out=$(xc fdb flush br0)
echo "$out" | grep -q "entries flushed" || fail "flush said '$out'"
fdb_has "$h1" && fail "learned entry survived a bridge flush"
fdb_has "$S" || fail "plain flush removed the static entry"
xc fdb flush br0 --static >/dev/null
fdb_has "$S" && fail "flush --static kept the static entry"
ok "fdb flush BR keeps static entries; --static removes them too"

# fdb del.
xc fdb add br0 "$S" v2
xc fdb del br0 "$S"
fdb_has "$S" && fail "fdb del left the entry"
expect_fail "no entry" xc fdb del br0 "$S"
ok "fdb del"
