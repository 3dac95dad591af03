#!/usr/bin/env bash
# Every bad control request gets a clear message and a non-zero exit, and
# leaves the daemon's state exactly as it was.
. "$(dirname "$0")/lib.sh"

make_switch_ns
for i in 1 2 3; do add_host "$i"; done
start_xbrd
xc add-br br0
xc add-port br0 v1
xc add-port br0 v2
xc fdb add br0 02:00:00:00:00:01 v1

# The parts of the state that requests could change (counters can't).
state() {
    { xc -j show | jq -c '[.[] | {name, ageing, ports: [.ports[] | {name, type}]}]'
      xc -j fdb show br0 | jq -c '[.[] | select(.static)]'; } 2>&1
}
before=$(state)

expect_fail "unknown command 'bogus'" xc bogus
expect_fail "unknown command 'fdb bogus'" xc fdb bogus br0
expect_fail "usage: fdb show BR" xc fdb show
expect_fail "usage: add-br BR" xc add-br
expect_fail "already exists" xc add-br br0
expect_fail "invalid bridge name" xc add-br "this-name-is-far-too-long"
expect_fail "no bridge named nobr" xc del-br nobr
expect_fail "no bridge named nobr" xc add-port nobr v3
expect_fail "no such interface: nosuchif" xc add-port br0 nosuchif
expect_fail "v1 is already a port of bridge br0" xc add-port br0 v1
expect_fail "invalid port number '5000'" xc add-port br0 v3 --port-no 5000
expect_fail "invalid port number '-1'" xc add-port br0 v3 --port-no -1
expect_fail "port number 0 of bridge br0 is taken by v1" xc add-port br0 v3 --port-no 0
expect_fail "unknown log level 'loud'" xc log-level loud
expect_fail "without a configuration file" xc reload
expect_fail "save writes the configuration file format" xc -j save
expect_fail "unknown port type 'bogus'" xc add-port br0 v3 --type bogus
expect_fail "unknown option '--bogus'" xc add-port br0 v3 --bogus
expect_fail "has no port named nosuch" xc del-port br0 nosuch
expect_fail "invalid MAC address 'zz:zz'" xc fdb add br0 zz:zz v1
expect_fail "invalid MAC address" xc fdb add br0 02:00:00:00:00:01:02 v1
expect_fail "multicast or zero" xc fdb add br0 01:00:5e:00:00:01 v1
expect_fail "multicast or zero" xc fdb add br0 00:00:00:00:00:00 v1
expect_fail "has no port named nosuch" xc fdb add br0 02:00:00:00:00:02 nosuch
expect_fail "invalid VLAN id" xc fdb add br0 02:00:00:00:00:02 v1 vlan 5000
expect_fail "no entry" xc fdb del br0 02:00:00:00:00:77
expect_fail "invalid ageing time" xc set-ageing br0 abc
expect_fail "invalid ageing time" xc set-ageing br0 0
expect_fail "invalid ageing time" xc set-ageing br0 -5
expect_fail "has no port named nosuch" xc stats br0 nosuch
expect_fail "has no port named nosuch" xc fdb flush br0 nosuch

# Interfaces that must not be attached.
xc add-br br1
expect_fail "v1 is already a port of bridge br0" xc add-port br1 v1
xc del-br br1
in_sw ip link add "${P}kbr" type bridge
in_sw ip link set v3 master "${P}kbr"
expect_fail "v3 is already enslaved to kernel bridge ${P}kbr" xc add-port br0 v3
in_sw ip link set v3 nomaster
expect_fail "loopback" xc add-port br0 lo
# A veth whose other end is already on the bridge closes a loop.
in_sw ip link add "${P}a" type veth peer name "${P}b"
xc add-port br0 "${P}a"
expect_fail "${P}b is the other end of ${P}a, which is already a port of br0" xc add-port br0 "${P}b"
xc del-port br0 "${P}a"
# A tap name that exists as something else.
expect_fail "not a free multi-queue tap" xc add-port br0 v3 --type tap

# Talking to no daemon at all.
expect_fail "cannot reach xbrd" "$XBRCTL" --socket "$WORK/nothing.sock" show

after=$(state)
[ "$before" = "$after" ] || fail "state changed by refused requests:
before: $before
after:  $after"
ok "daemon state unchanged after every refused request"
xc show >/dev/null || fail "daemon stopped answering"
ok "daemon still serving"
