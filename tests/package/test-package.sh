#!/usr/bin/env bash
# The Debian packages: dpkg-buildpackage -us -uc -b builds xbr and xbr-bench
# from a copy of the source tree; lintian reports no error; their
# dependencies resolve on this Debian (apt-get --simulate); they install into
# a fresh dpkg root (its own empty database, maintainer scripts run with
# DPKG_ROOT; the libraries are the host's, which the simulated install
# showed satisfy Depends) and purge from it again. From that root: xbrd runs
# and `xbrctl version` answers, `man xbrctl` renders, the unit verifies, and
# bash completion offers add-port (commands from the daemon), bridges and
# ports. Needs root (a network namespace), debhelper, lintian, scdoc.
set -euo pipefail
: "${XBR_SRCDIR:?XBR_SRCDIR must point at the source tree}"
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root" >&2; exit 1; }
for t in dpkg-buildpackage lintian scdoc systemd-analyze man; do
    command -v "$t" >/dev/null || { echo "FAIL: $t missing (scripts/deps.sh installs it)" >&2; exit 1; }
done
[ -r /usr/share/bash-completion/bash_completion ] || { echo "FAIL: bash-completion missing" >&2; exit 1; }

W=$(mktemp -d /tmp/xbr-pkg.XXXXXX)
NS="xpkg$$"
XPID=""
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
cleanup() {
    local rc=$?
    [ -n "$XPID" ] && kill "$XPID" 2>/dev/null && wait "$XPID" 2>/dev/null
    ip netns del "$NS" 2>/dev/null || true
    if [ "$rc" != 0 ] && [ -f "$W/build.log" ]; then tail -30 "$W/build.log" >&2; fi
    rm -rf "$W"
    exit "$rc"
}
trap cleanup EXIT

# ---- build, from a copy (dpkg-buildpackage writes into the tree and beside it)
t0=$(date +%s)
mkdir "$W/src"
tar -C "$XBR_SRCDIR" --exclude='./build*' --exclude=./.git --exclude=./obj-\* \
    --exclude=./tests/xen-vm/cache --exclude=./debian/.debhelper -cf - . | tar -C "$W/src" -xf -
(cd "$W/src" && dpkg-buildpackage -us -uc -b >"$W/build.log" 2>&1) || fail "dpkg-buildpackage failed"
ls "$W"/xbr_*.deb "$W"/xbr-bench_*.deb >/dev/null || fail "no packages built"
ok "dpkg-buildpackage -us -uc -b: $(cd "$W" && ls ./*.deb | tr '\n' ' ')in $(($(date +%s) - t0)) s"

lintian "$W"/xbr_*.changes >"$W/lintian.out" 2>&1 || true
cat "$W/lintian.out"
grep -q '^E: ' "$W/lintian.out" && fail "lintian errors"
ok "lintian: no errors ($(grep -c '^W: ' "$W/lintian.out" || true) warnings)"

apt-get install --simulate --no-install-recommends "$W"/xbr_*.deb "$W"/xbr-bench_*.deb \
    >"$W/sim.out" 2>&1 || { cat "$W/sim.out"; fail "dependencies do not resolve"; }
ok "apt-get --simulate: the packages' dependencies resolve"

# ---- install into a fresh root
R="$W/root"
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers"
: >"$R/var/lib/dpkg/status"
pkgs=("$W"/xbr_*.deb "$W"/xbr-bench_*.deb)
dpkg --root="$R" --force-script-chrootless --force-depends -i "${pkgs[@]}" >"$W/install.out" 2>&1 ||
    { cat "$W/install.out"; fail "dpkg -i into the fresh root"; }
for p in xbr xbr-bench; do
    dpkg --root="$R" -s "$p" | grep -q '^Status: install ok installed' || fail "$p not installed"
done
for f in usr/sbin/xbrd usr/sbin/xbrctl usr/sbin/xbr-bench lib/systemd/system/xbrd.service \
         etc/xen/scripts/vif-xbr etc/xbr/xbrd.conf usr/share/man/man8/xbrd.8.gz \
         usr/share/man/man1/xbr-bench.1.gz usr/share/bash-completion/completions/xbrctl; do
    [ -e "$R/$f" ] || fail "/$f not installed"
done
[ ! -e "$R/usr/bin/xbrctl" ] || fail "xbrctl in /usr/bin (the README says /usr/sbin)"
dpkg --root="$R" -s xbr | grep -q '/etc/xbr/xbrd.conf ' || fail "xbrd.conf is not a conffile"
ok "installed into a fresh dpkg root; /etc/xbr/xbrd.conf is a conffile"

# ---- the installed binaries
"$R/usr/sbin/xbrctl" --version | grep -q "^xbrctl " || fail "xbrctl --version"
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add d0 type veth peer name d1
ip -n "$NS" link set d0 up; ip -n "$NS" link set d1 up
S="$W/xbrd.sock"
printf 'add-br br0\nadd-port br0 d0\n' >"$W/xbrd.conf"
ip netns exec "$NS" "$R/usr/sbin/xbrd" --socket "$S" -c "$W/xbrd.conf" >"$W/xbrd.log" 2>&1 &
XPID=$!
for _ in $(seq 100); do "$R/usr/sbin/xbrctl" -s "$S" version >/dev/null 2>&1 && break; sleep 0.05; done
out=$("$R/usr/sbin/xbrctl" -s "$S" version) || fail "xbrctl version: $(cat "$W/xbrd.log")"
echo "$out" | grep -q "^xbrd 0\." || fail "xbrctl version said '$out'"
ok "the installed xbrd runs and the installed xbrctl version says: $out"

# ---- man pages
page=$(MANPATH="$R/usr/share/man" MANWIDTH=80 man xbrctl 2>&1) || fail "man xbrctl: $page"
echo "$page" | grep -q "xbrctl - control xbrd" || fail "man xbrctl rendered: $(echo "$page" | head -5)"
echo "$page" | grep -q "add-port" || fail "man xbrctl lacks add-port"
for m in xbrd xbr-bench; do
    MANPATH="$R/usr/share/man" man "$m" 2>/dev/null | grep -q "^NAME" || fail "man $m does not render"
done
ok "man xbrctl, xbrd and xbr-bench render"

# ---- the unit, with the root's binaries and man pages
sed -e "s|/usr/sbin/|$R/usr/sbin/|g" "$R/lib/systemd/system/xbrd.service" >"$W/xbrd.service"
grep -q "^ExecStart=$R/usr/sbin/xbrd " "$W/xbrd.service" || fail "unexpected ExecStart"
out=$(MANPATH="$R/usr/share/man" systemd-analyze verify "$W/xbrd.service" 2>&1) ||
    fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify said: $out"
ok "the installed unit passes systemd-analyze verify"

# ---- bash completion: what <TAB> offers after the words given
complete_words() { # complete_words WORD... (the last one is being completed)
    PATH="$R/usr/sbin:$PATH" bash -c '
        . /usr/share/bash-completion/bash_completion
        . "$0"
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        _xbrctl xbrctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}"' \
        "$R/usr/share/bash-completion/completions/xbrctl" "$@"
}
got=$(complete_words xbrctl --socket "$S" add-)
echo "$got" | grep -qx add-port || fail "completion of 'add-' offers: $got"
echo "$got" | grep -qx add-br || fail "completion of 'add-' offers: $got"
got=$(complete_words xbrctl --socket "$S" fdb "")
[ "$(echo "$got" | sort | tr '\n' ' ')" = "add del flush show " ] || fail "fdb <TAB> offers: $got"
got=$(complete_words xbrctl --socket "$S" del-port "")
[ "$got" = br0 ] || fail "del-port <TAB> offers '$got', not the daemon's bridge"
got=$(complete_words xbrctl --socket "$S" del-port br0 "")
[ "$got" = d0 ] || fail "del-port br0 <TAB> offers '$got', not the bridge's port"
got=$(complete_words xbrctl --socket "$S" add-port br0 d0 --type "")
[ "$(echo "$got" | tr '\n' ' ')" = "afpacket afxdp tap vxlan " ] || fail "--type <TAB> offers: $got"
got=$(complete_words xbrctl --socket "$W/nobody.sock" add-)
echo "$got" | grep -qx add-port || fail "without a daemon, 'add-' offers: $got"
ok "bash completion: add-port and the daemon's commands, bridges, ports, --type values; add-port without a daemon"

kill "$XPID"; wait "$XPID" || fail "installed xbrd exited $? on SIGTERM"; XPID=""

# ---- purge: the conffile goes too
dpkg --root="$R" --force-script-chrootless --force-depends --purge xbr-bench xbr >"$W/purge.out" 2>&1 ||
    { cat "$W/purge.out"; fail "dpkg --purge"; }
[ ! -e "$R/etc/xbr/xbrd.conf" ] && [ ! -e "$R/usr/sbin/xbrd" ] || fail "purge left files behind"
ok "purged: binaries and the conffile removed"
