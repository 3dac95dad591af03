#!/bin/bash
# Build the images for the real-Xen test rig: Xen 4.17, a Linux 6.1 dom0 kernel (uncompressed ELF),
# a busybox dom0 initramfs with the Xen toolstack and the kernel modules, and a guest (domU)
# initramfs with xen-netfront. Everything comes from Debian 12 packages (apt-get download).
#
#   build-images.sh [CACHE_DIR]        (default: tests/xen-vm/cache)
#
# $XBRVM_DOWNLOAD_BUDGET (seconds, default 900) bounds the apt-get steps together, retry
# included, so that run-vm.sh's deadline holds whatever the mirror does.
#
# Idempotent: the .debs are downloaded once into CACHE_DIR/debs (delete the folder to refresh),
# unpacked once, and the initramfs images are rebuilt only when the rig's own files change.
# Outputs, in CACHE_DIR/out: xen, vmlinux, dom0.cpio, domU.cpio (see README.md).
set -eu
XBRVM_DIR=$(cd "$(dirname "$0")" && pwd)
. "$XBRVM_DIR/lib/common.sh"

CACHE=${1:-$XBRVM_DIR/cache}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
DEBS=$CACHE/debs PKG=$CACHE/pkgroot OUT=$CACHE/out
XENVER=4.17

# Kernel modules. dom0 loads DOM0_BOOT_MODULES at boot; the rest are loaded on demand by a
# scenario with `modload NAME` (lib.sh), so an xbr scenario never gets the kernel's netback.
DOM0_BOOT_MODULES="xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc e1000"
DOM0_MODULES="$DOM0_BOOT_MODULES xen-netback xen-netfront bridge tun veth 8021q"
DOMU_MODULES="xen-netfront"

[ "$(id -u)" -eq 0 ] || die "run as root (apt-get download/install, device nodes in the images)"
need_cmds apt-get:apt dpkg-deb:dpkg cpio:cpio xz:xz-utils gzip:gzip ldd:libc-bin \
          ip:iproute2 bridge:iproute2 awk:mawk sha256sum:coreutils

# ---- 1. download the packages (re-used when present) -------------------------------------------
mkdir -p "$DEBS"
DL_END=$(( $(date +%s) + ${XBRVM_DOWNLOAD_BUDGET:-900} ))
# bounded SECS CMD... — CMD under `timeout`, at most SECS and at most what the budget has left.
bounded() {
    local t=$1 rest=$(( DL_END - $(date +%s) )); shift
    [ "$rest" -lt "$t" ] && t=$rest
    [ "$t" -ge 5 ] || { echo "download budget spent" >&2; return 124; }
    timeout "$t" "$@"
}
if [ ! -s "$DEBS/MANIFEST" ]; then
    apt_lists_ok() { apt-cache show linux-image-amd64 >/dev/null 2>&1; }
    apt_lists_ok || bounded 300 apt-get update -q >/dev/null || die "apt-get update failed"
    kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    [ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 to a versioned kernel package"
    pkgs="xen-hypervisor-$XENVER-amd64 xen-utils-$XENVER xenstore-utils $kpkg busybox-static
          libxenmisc$XENVER libxencall1 libxendevicemodel1 libxenevtchn1 libxenforeignmemory1
          libxengnttab1 libxenhypfs1 libxenstore4 libxentoolcore1 libxentoollog1 libyajl2"
    log "downloading $(echo $pkgs | wc -w) packages into $DEBS"
    rm -f "$DEBS"/*.deb
    # apt-get download runs as _apt when it can; let it write into the cache folder.
    chmod 0777 "$DEBS" 2>/dev/null || true
    # shellcheck disable=SC2086
    (cd "$DEBS" && bounded 600 apt-get download -q $pkgs >/dev/null 2>"$DEBS/download.err") || {
        # Stale lists: update once and retry, in what is left of the budget.
        bounded 300 apt-get update -q >/dev/null || true
        (cd "$DEBS" && bounded 600 apt-get download -q $pkgs >/dev/null 2>"$DEBS/download.err") \
            || die "apt-get download failed (budget ${XBRVM_DOWNLOAD_BUDGET:-900} s): $(tail -3 "$DEBS/download.err")"
    }
    (cd "$DEBS" && ls -1 ./*.deb | sed 's|^\./||') > "$DEBS/MANIFEST.tmp"
    [ "$(wc -l < "$DEBS/MANIFEST.tmp")" -eq "$(echo $pkgs | wc -w)" ] \
        || die "expected $(echo $pkgs | wc -w) .debs, got: $(tr '\n' ' ' < "$DEBS/MANIFEST.tmp")"
    mv "$DEBS/MANIFEST.tmp" "$DEBS/MANIFEST"
fi

# ---- 2. unpack ---------------------------------------------------------------------------------
if [ ! -f "$PKG/.stamp" ] || ! cmp -s "$DEBS/MANIFEST" "$PKG/.stamp"; then
    log "unpacking $(wc -l < "$DEBS/MANIFEST") packages"
    rm -rf "$PKG"; mkdir -p "$PKG"
    while read -r deb; do dpkg-deb -x "$DEBS/$deb" "$PKG" || die "dpkg-deb -x $deb failed"; done < "$DEBS/MANIFEST"
    cp "$DEBS/MANIFEST" "$PKG/.stamp"
    rm -rf "$OUT"
fi
KVER=$(ls "$PKG/lib/modules" 2>/dev/null | head -1)
[ -n "$KVER" ] || die "no kernel modules in $PKG/lib/modules"
BB=$PKG/bin/busybox
[ -x "$BB" ] || die "busybox-static did not unpack to $BB"
XENBIN=$PKG/usr/lib/xen-$XENVER/bin
mkdir -p "$OUT"

# ---- 3. Xen (uncompressed: QEMU's -kernel boots it as multiboot) and the dom0/domU kernel ------
if [ ! -s "$OUT/xen" ]; then
    gzip -dc "$PKG/boot/xen-$XENVER-amd64.gz" > "$OUT/xen.tmp" || die "cannot gunzip xen"
    mv "$OUT/xen.tmp" "$OUT/xen"
fi
if [ ! -s "$OUT/vmlinux" ]; then
    # The uncompressed ELF inside the bzImage (like the kernel's scripts/extract-vmlinux): under
    # emulation, Xen's dom0 builder and libxenguest load it much faster than they unpack the XZ.
    vmlinuz=$PKG/boot/vmlinuz-$KVER
    off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -1 | cut -d: -f1)
    [ -n "$off" ] || die "no XZ stream in $vmlinuz"
    tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream > "$OUT/vmlinux.tmp" 2>/dev/null || true
    [ "$(head -c 4 "$OUT/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] \
        || die "extracting vmlinux from $vmlinuz did not give an ELF file"
    mv "$OUT/vmlinux.tmp" "$OUT/vmlinux"
fi

# ---- 4. initramfs images (rebuilt when the rig's files change) ---------------------------------
inputs_hash=$( (cat "$DEBS/MANIFEST"; cd "$XBRVM_DIR" && find build-images.sh lib dom0 domU -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -d' ' -f1)
if [ -s "$OUT/dom0.cpio" ] && [ -s "$OUT/domU.cpio" ] && [ "$(cat "$OUT/.inputs" 2>/dev/null)" = "$inputs_hash" ]; then
    log "images up to date in $OUT"
    exit 0
fi

# Kernel modules: depmod (busybox's) once over the unpacked tree, then the closure of what we
# want, with a pruned modules.dep so busybox modprobe / our modload work in the image.
[ -s "$PKG/lib/modules/$KVER/modules.dep" ] || "$BB" depmod -b "$PKG" "$KVER" || die "depmod failed"
module_closure() { # NAME... → module paths (relative to /lib/modules/KVER), dependencies first
    local name line dep seen=" "
    for name in "$@"; do
        line=$(grep -E "(^|/)${name}\.ko(\.[gx]z|\.zst)?:" "$PKG/lib/modules/$KVER/modules.dep") \
            || die "kernel module $name not in $KVER"
        for dep in $(echo "${line#*:}" | awk '{for (i = NF; i > 0; i--) print $i}') "${line%%:*}"; do
            case $seen in *" $dep "*) ;; *) seen="$seen$dep "; echo "$dep" ;; esac
        done
    done
}
install_modules() { # ROOT NAME...
    local root=$1 m mdir; shift
    mdir=$root/usr/lib/modules/$KVER
    mkdir -p "$mdir"
    module_closure "$@" > "$mdir/xbrvm.closure"
    while read -r m; do install -D -m 0644 "$PKG/lib/modules/$KVER/$m" "$mdir/$m"; done < "$mdir/xbrvm.closure"
    grep -F -f "$mdir/xbrvm.closure" "$PKG/lib/modules/$KVER/modules.dep" \
        | awk -F: 'NR == FNR { want[$0] = 1; next } ($1 in want)' "$mdir/xbrvm.closure" - > "$mdir/modules.dep"
    cp "$PKG/lib/modules/$KVER/modules.builtin" "$mdir/" 2>/dev/null || true
    rm -f "$mdir/xbrvm.closure"
}

WORK=$CACHE/work
rm -rf "$WORK"; mkdir -p "$WORK"

# --- domU: busybox, xen-netfront, the xenstore client (the test agent talks through xenstore) ---
R=$WORK/domU
base_tree "$R"
install_busybox "$R" "$BB"
install_modules "$R" $DOMU_MODULES
copy_with_libs "$R" "$PKG/usr/bin/xenstore" /usr/bin/xenstore "$PKG"
for t in read write rm ls list exists watch chmod; do ln -sf xenstore "$R/usr/bin/xenstore-$t"; done
install -m 0755 "$XBRVM_DIR/domU/init" "$R/init"
for f in "$XBRVM_DIR"/domU/xbr-*; do install -m 0755 "$f" "$R/usr/bin/"; done
echo "$KVER" > "$R/etc/kernel-release"
mk_cpio "$R" "$OUT/domU.cpio.new"

# --- dom0: busybox, the Xen toolstack, iproute2, modules, the guest kernel + initramfs ---------
R=$WORK/dom0
base_tree "$R"
install_busybox "$R" "$BB"
install_modules "$R" $DOM0_MODULES
echo "$DOM0_BOOT_MODULES" > "$R/etc/xbrvm-boot-modules"
for b in xl xenstored xenconsoled xen-init-dom0 xenconsole; do
    [ -x "$XENBIN/$b" ] || die "missing $XENBIN/$b"
    copy_with_libs "$R" "$XENBIN/$b" "/usr/lib/xen-$XENVER/bin/$b" "$PKG"
    ln -sf "/usr/lib/xen-$XENVER/bin/$b" "$R/usr/sbin/$b"
done
copy_with_libs "$R" "$PKG/usr/bin/xenstore" /usr/bin/xenstore "$PKG"
# glibc dlopens libgcc_s for pthread_cancel/pthread_exit (xl aborts without it).
install -D -m 0644 "$(readlink -f /lib/x86_64-linux-gnu/libgcc_s.so.1)" "$R/usr/lib/x86_64-linux-gnu/libgcc_s.so.1"
for t in read write rm ls list exists watch chmod control; do ln -sf xenstore "$R/usr/bin/xenstore-$t"; done
# The real iproute2 (host's, with libs), ahead of busybox's ip in PATH: scenarios want
# `ip -s link`, `bridge fdb`, JSON output...
for b in ip bridge; do copy_with_libs "$R" "$(command -v $b)" "/usr/local/sbin/$b"; done
install -D -m 0755 "$XBRVM_DIR/dom0/init" "$R/init"
install -D -m 0644 "$XBRVM_DIR/dom0/lib.sh" "$R/usr/lib/xbrvm/lib.sh"
install -D -m 0644 "$XBRVM_DIR/dom0/workload.sh" "$R/usr/lib/xbrvm/workload.sh"
install -D -m 0755 "$XBRVM_DIR/dom0/vif-bridge" "$R/etc/xen/scripts/vif-bridge"
install -D -m 0644 "$XBRVM_DIR/dom0/xl.conf" "$R/etc/xen/xl.conf"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\n' > "$R/etc/group"
mkdir -p "$R/var/lib/xen" "$R/var/log/xen/console" "$R/var/lib/xenstored" "$R/etc/xbrvm" "$R/boot"
# Guests boot the same kernel (the ELF: libxenguest would otherwise un-XZ it in emulated dom0).
cp "$OUT/vmlinux" "$R/boot/vmlinux"
cp "$OUT/domU.cpio.new" "$R/boot/domU.cpio"
echo "$KVER" > "$R/etc/kernel-release"
mk_cpio "$R" "$OUT/dom0.cpio.new"

mv "$OUT/domU.cpio.new" "$OUT/domU.cpio"
mv "$OUT/dom0.cpio.new" "$OUT/dom0.cpio"
echo "$inputs_hash" > "$OUT/.inputs"
rm -rf "$WORK"
log "images built in $OUT: $(cd "$OUT" && du -h --apparent-size xen vmlinux dom0.cpio domU.cpio | tr '\n' ' ')"
