# shellcheck shell=bash
# Host-side helpers shared by build-images.sh and run-vm.sh (sourced, bash).

XBRVM_DIR=${XBRVM_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

log() { printf '[xen-vm %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf '[xen-vm] ERROR: %s\n' "$*" >&2; exit 1; }

# need_cmds CMD:PACKAGE ... — install the Debian packages that provide missing commands.
need_cmds() {
    local missing=() spec
    for spec in "$@"; do
        command -v "${spec%%:*}" >/dev/null 2>&1 || missing+=("${spec#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}) and not root: apt-get install ${missing[*]}"
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get"
    log "installing ${missing[*]}"
    timeout 300 apt-get update -q >/dev/null 2>&1 || log "apt-get update failed (continuing)"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
    for spec in "$@"; do
        command -v "${spec%%:*}" >/dev/null 2>&1 || die "'${spec%%:*}' still missing after installing ${spec#*:}"
    done
}

# copy_with_libs ROOT FILE [DEST] [PKGROOT]
# Copy an ELF executable (or library) into image ROOT at DEST (default: same path), plus every
# shared library it needs, resolved by ldd. Libraries are looked up first in PKGROOT (an unpacked
# tree of Debian packages) and then on the host; a library found under PKGROOT lands at its path
# relative to PKGROOT. Any "not found" is fatal.
copy_with_libs() {
    local root=$1 file=$2 dest=${3:-$2} pkgroot=${4:-} ldpath="" out lib rel
    [ -f "$file" ] || die "copy_with_libs: no such file: $file"
    install -D -m 0755 "$file" "$root$dest"
    if [ -n "$pkgroot" ]; then
        ldpath="$pkgroot/usr/lib/x86_64-linux-gnu:$pkgroot/lib/x86_64-linux-gnu:$pkgroot/usr/lib/xen-4.17/lib"
    fi
    # Not a dynamic ELF (static binary, script): nothing more to do.
    if ! out=$(LD_LIBRARY_PATH=$ldpath ldd "$file" 2>&1); then
        case $out in *"not a dynamic executable"*|*"statically linked"*) return 0 ;; esac
        die "ldd $file failed: $out"
    fi
    case $out in *"not a dynamic executable"*|*"statically linked"*) return 0 ;; esac
    if grep -q 'not found' <<<"$out"; then
        die "libraries of $file not found (install the package that ships them): $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"
    fi
    while read -r lib; do
        [ -n "$lib" ] || continue
        rel=$lib
        if [ -n "$pkgroot" ] && [ "${lib#"$pkgroot"/}" != "$lib" ]; then rel=/${lib#"$pkgroot"/}; fi
        # /lib is a symlink to usr/lib in the image (merged /usr): store under usr.
        case $rel in /lib/*|/lib64/*) rel=/usr$rel ;; esac
        [ -e "$root$rel" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$rel"
    done < <(awk '/=>/ { if ($3 ~ /^\//) print $3; next } $1 ~ /^\// { print $1 }' <<<"$out")
}

# base_tree ROOT — an empty merged-/usr root with the directories both images need.
base_tree() {
    local root=$1
    mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,dev,proc,sys,run,tmp,etc,root,mnt,var/log,var/lib}
    ln -sfn usr/bin "$root/bin"; ln -sfn usr/sbin "$root/sbin"
    ln -sfn usr/lib "$root/lib"; ln -sfn usr/lib64 "$root/lib64"
    ln -sfn ../run "$root/var/run"; ln -sfn ../run/lock "$root/var/lock"
    chmod 1777 "$root/tmp"
}

# install_busybox ROOT BUSYBOX — static busybox plus a symlink for each applet not already present.
install_busybox() {
    local root=$1 bb=$2 applet
    install -D -m 0755 "$bb" "$root/usr/bin/busybox"
    for applet in $("$bb" --list-full); do
        case $applet in bin/*|sbin/*) applet=usr/$applet ;; esac
        [ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /usr/bin/busybox "$root/$applet"
    done
}

# mk_cpio ROOT OUT — an uncompressed newc archive (uncompressed: the kernel unpacks it without
# running a decompressor under emulation; several archives may be concatenated).
mk_cpio() {
    local root=$1 out=$2
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) > "$out.tmp" \
        || die "cpio of $root failed"
    mv "$out.tmp" "$out"
}
