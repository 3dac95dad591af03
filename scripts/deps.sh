# Sourced by scripts/demo and scripts/test: installs the Debian 12 packages
# that are missing (nothing else), so both commands work on a fresh machine.
# Usage: xbr_install_deps demo|test

xbr_install_deps() {
    local pkgs=(
        build-essential meson ninja-build pkg-config   # toolchain
        liburcu-dev                                    # lock-free FDB (cds_lfht), RCU
        libxen-dev                                     # gnttab, evtchn, xenstore (netback)
        zlib1g-dev                                     # CRC-32 of the simulated netfront's test frames
        libbpf-dev clang bpftool                       # kernel fast path: BPF programs built with clang, loaded with libbpf
        libxdp-dev                                     # AF_XDP ports (libxdp's xsk sockets and default XDP program)
        libsystemd-dev                                 # sd_notify: Type=notify unit, watchdog
        libpcap-dev                                    # xbrctl capture: filters compiled with pcap_compile, run by xbrd (pcap_offline_filter)
        scdoc                                          # man pages xbrd(8), xbrctl(8), xbr-bench(1)
        iproute2 iputils-ping procps                   # namespaces, veth, ping
    )
    if [ "$1" = test ]; then
        pkgs+=(
            jq socat python3                           # integration tests, benchmarks
            ethtool                                    # AF_XDP and VXLAN tests: veth ends without checksum offload
            clang libclang-rt-14-dev                   # libFuzzer targets
            qemu-system-x86 busybox-static cpio xz-utils kmod  # real-Xen VM suite
            openvswitch-switch                         # STP and VXLAN interop tests with Open vSwitch (netdev datapath)
            netsniff-ng gnuplot-nox tcpdump            # xbr-bench: trafgen generates, gnuplot draws --plot, tcpdump times the STP bench;
                                                       # capture/mirror tests: tcpdump reads the pcap streams and watches the mirror output;
                                                       # VXLAN test: tcpdump sees BPDUs inside VXLAN
            prometheus-node-exporter python3-prometheus-client  # metrics test: the textfile's real consumer, and a real parser
            systemd                                    # systemd-analyze verify of the unit (no systemd needs to run)
            debhelper lintian dpkg-dev man-db bash-completion  # package suite: build the .debs, lint, man and completion
        )
    fi
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> installing: ${missing[*]}"
        if [ "$(id -u)" != 0 ]; then
            echo "error: run as root (packages to install, network namespaces to create)" >&2
            exit 1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
}
