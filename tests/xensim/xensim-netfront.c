/* xensim-netfront — a simulated guest's network interface, for shell tests.
 *
 * Runs as domain --domid (XENSIM_DOMID is set from it) against the world in
 * $XENSIM_DIR and the xenstore of $XENSIM_XS_DIR (default $XENSIM_DIR when
 * xs-sim serves it). Prints one "SUMMARY key value ..." line at the end and
 * exits 0 when the command did what it was asked, 1 when it did not, 2 on a
 * usage error. See `xensim-netfront --help`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The reference Toeplitz function of netif.h: the guest's own check of the
 * hashes a backend hands it. */
#define XEN_NETIF_DEFINE_TOEPLITZ
#include <xen/io/netif.h>

#include "netfront.h"
#include "util/util.h"
#include "xensim.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* The receiver's count of test frames, shared with a sender through a file
 * both map (recv --progress, send --window): flow control for tests, so a
 * simulated guest starved of CPU on a loaded machine is waited for instead
 * of overrun (a real switch would drop, and count it, as xbrd does). */
static _Atomic uint64_t *progress_map(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    void *p;

    if (fd < 0 || ftruncate(fd, sizeof(uint64_t)) < 0) {
        fprintf(stderr, "xensim-netfront: %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    p = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        fprintf(stderr, "xensim-netfront: mmap %s: %s\n", path, strerror(errno));
        return NULL;
    }
    return p;
}

static const char usage_text[] =
    "usage: xensim-netfront --domid N [options] COMMAND [command options]\n"
    "options:\n"
    "  --domid N            the guest domain (required)\n"
    "  --devid N            vif device id (default 0)\n"
    "  --queues N           queues wanted (default 1)\n"
    "  --mac MAC            attach: the vif's MAC (default 00:16:3e:00:<domid>:<devid>)\n"
    "  --ip A.B.C.D         our IPv4 address (echo, ping)\n"
    "  --ip6 ADDR           our IPv6 address (echo)\n"
    "  --rx-buffers N       RX buffers kept posted per queue (default 256)\n"
    "  --no-split --no-sg --no-gso --no-csum   features not used / advertised\n"
    "  --timeout MS         handshake / close waits (default 10000)\n"
    "  --attack NAME[=N]    misbehave (list-attacks shows them)\n"
    "  --attack-dst MAC     where a crafted packet goes (default broadcast); it is a test\n"
    "                       frame, so a recv there can check it arrived intact\n"
    "  --ctrl-ring          provide a control ring (feature-ctrl-ring)\n"
    "  --mcast-control      ask for multicast filtering (request-multicast-control)\n"
    "  --xs-set KEY=VALUE   write KEY (below the frontend directory) last in the handshake\n"
    "  --xs-rm KEY          remove KEY last in the handshake (both repeatable)\n"
    "commands:\n"
    "  attach [--backend-domid N] [--bridge NAME]   toolstack: create the vif in xenstore\n"
    "  detach [--backend-domid N]                   toolstack: remove it as libxl does\n"
    "  destroy                                      toolstack: the domain dies\n"
    "  connect [--hold SEC]        connect, stay SEC seconds (0: none; default: until\n"
    "                              SIGTERM/SIGINT), close\n"
    "  send --count N --size S|--size MIN:MAX [--dst MAC] [--gso MSS] [--slot-bytes B]\n"
    "       [--first-offset O] [--interval-us U] [--queue Q] [--tcp|--tcp6] [--full-csum]\n"
    "       [--flows N] [--window N --progress FILE]\n"
    "                              send test frames (--tcp: TCP/IPv4 ones from 70 bytes,\n"
    "                              --tcp6: TCP/IPv6 ones from 90, GSO type TCPV6 with --gso;\n"
    "                              their checksum left partial (csum_blank) unless\n"
    "                              --full-csum, super-frames always; --flows: N source\n"
    "                              ports in turn; --window: at most N frames ahead of the\n"
    "                              receiver whose recv --progress is FILE, a failure if it\n"
    "                              makes no progress for 10 s)\n"
    "  recv --count N [--wait MS] [--hash] [--mcast-add MAC] [--mcast-del MAC]\n"
    "       [--mcast-fill N] [--from MAC] [--progress FILE]\n"
    "                              receive N test frames and check them (--wait:\n"
    "                              total, ms; --from: only frames from MAC count;\n"
    "                              --progress: keep the count in FILE for send --window);\n"
    "                              --hash: turn on Toeplitz (needs --ctrl-ring) and check each\n"
    "                              frame's hash and queue; --mcast-*: subscribe / unsubscribe\n"
    "                              (in order; --mcast-fill: N more addresses) and count frames\n"
    "                              to groups not subscribed\n"
    "  ctrl-check                  control-ring requests, valid and not, against Linux\n"
    "                              netback's answers (needs --ctrl-ring)\n"
    "  backend-set KEY VALUE [--backend-domid N]   toolstack: write the backend's KEY\n"
    "  echo [--count N] [--hold SEC] [--reflect]   answer ARP and ICMP echo for --ip,\n"
    "       neighbour solicitations and ICMPv6 echo for --ip6\n"
    "       (until N answered, SEC passed, or SIGTERM);\n"
    "       --reflect also sends test frames back to their sender\n"
    "  ping --target A.B.C.D [--count N] [--wait MS]   ARP, then ICMP echo requests\n"
    "  attack [--hold SEC]         connect, run --attack once, stay SEC (default 1), report,\n"
    "                              close\n"
    "  list-attacks\n";

#define CLI_MAX_XS 32

struct cli {
    uint32_t domid, devid;
    struct netfront_opts o;
    const char *xs[CLI_MAX_XS];
    uint8_t mac[6];
    bool have_mac;
    uint32_t ip;
    bool have_ip;
    uint8_t ip6[16];
    bool have_ip6;
};

static int parse_ip(const char *s, uint32_t *out)
{
    unsigned a, b, c, d;
    char tail;

    if (sscanf(s, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 || b > 255 ||
        c > 255 || d > 255)
        return -EINVAL;
    *out = a << 24 | b << 16 | c << 8 | d;
    return 0;
}

static int parse_u(const char *s, uint64_t max, uint64_t *v)
{
    int r = xbr_parse_uint(s, 0, max, v);
    if (r < 0)
        fprintf(stderr, "xensim-netfront: bad number '%s'\n", s);
    return r;
}

static void print_stats(const char *cmd, const struct netfront_stats *st, const char *extra)
{
    printf("SUMMARY cmd %s tx %" PRIu64 " tx_bytes %" PRIu64 " tx_slots %" PRIu64
           " tx_rsp_okay %" PRIu64 " tx_rsp_error %" PRIu64 " tx_rsp_dropped %" PRIu64
           " tx_bad_rsp %" PRIu64 " rx %" PRIu64 " rx_bytes %" PRIu64 " rx_gso %" PRIu64
           " rx_errors %" PRIu64 " rx_bad %" PRIu64 " events %" PRIu64 " notifies %" PRIu64
           " ctrl_requests %" PRIu64 " ctrl_responses %" PRIu64 " xs_writes %" PRIu64 "%s%s\n",
           cmd, st->tx_packets, st->tx_bytes, st->tx_slots, st->tx_rsp_okay, st->tx_rsp_error,
           st->tx_rsp_dropped, st->tx_bad_rsp, st->rx_packets, st->rx_bytes, st->rx_gso,
           st->rx_errors, st->rx_bad, st->events, st->notifies, st->ctrl_requests,
           st->ctrl_responses, st->xs_writes, extra ? " " : "", extra ? extra : "");
    fflush(stdout);
}

static struct netfront *open_connected(struct cli *c)
{
    struct netfront *nf = netfront_open(c->domid, c->devid, &c->o);
    int r;

    if (!nf) {
        fprintf(stderr, "xensim-netfront: open dom%u vif %u: %s\n", c->domid, c->devid,
                strerror(errno));
        return NULL;
    }
    r = netfront_connect(nf);
    if (r < 0) {
        fprintf(stderr, "xensim-netfront: connect: %s\n", strerror(-r));
        (void)netfront_close(nf);
        return NULL;
    }
    return nf;
}

static int finish(struct netfront *nf, const char *cmd, int ok, const char *extra)
{
    struct netfront_stats st;
    int r;

    (void)netfront_flush(nf, 1000);
    netfront_get_stats(nf, &st);
    print_stats(cmd, &st, extra);
    r = netfront_close(nf);
    if (r < 0)
        fprintf(stderr, "xensim-netfront: close: %s\n", strerror(-r));
    return ok ? 0 : 1;
}

/* Keeps the vif serviced for sec seconds (< 0: until a signal). */
static void hold(int64_t sec, struct netfront *nf)
{
    uint64_t end = sec >= 0 ? xbr_now_ms() + (uint64_t)sec * 1000u : UINT64_MAX;
    while (!stop && xbr_now_ms() < end)
        (void)netfront_poll(nf, 100);
}

/* "--hold SEC" as the only option; *sec keeps its default otherwise. */
static int parse_hold(int argc, char **argv, int64_t *sec)
{
    uint64_t v;

    if (argc == 0)
        return 0;
    if (argc != 2 || strcmp(argv[0], "--hold") || parse_u(argv[1], 86400, &v) < 0) {
        fputs(usage_text, stderr);
        return -1;
    }
    *sec = (int64_t)v;
    return 0;
}

/* ---- send / recv ---------------------------------------------------------- */

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static int cmd_send(struct cli *c, int argc, char **argv)
{
    uint64_t count = 1, smin = 60, smax = 60, mss = 0, slot = 0, first = 0, interval = 0;
    uint64_t flows = 0, window = 0;
    const char *progress = NULL;
    _Atomic uint64_t *peer = NULL;
    bool tcp_all = false, v6 = false, full_csum = false;
    int queue = -1;
    uint8_t dst[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static uint8_t frame[NETFRONT_MAX_FRAME];
    struct netfront *nf;
    uint64_t sent = 0, failed = 0;
    uint32_t rng = 0x12345678u ^ c->domid;
    char extra[128];

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t q;
        if (!strcmp(a, "--tcp") || !strcmp(a, "--tcp6")) {
            tcp_all = true;
            v6 = v6 || a[5] == '6';
            continue;
        }
        if (!strcmp(a, "--full-csum")) {
            full_csum = true;
            continue;
        }
        if (!v)
            goto usage;
        i++;
        if (!strcmp(a, "--count")) {
            if (parse_u(v, UINT32_MAX, &count) < 0)
                return 2;
        } else if (!strcmp(a, "--size")) {
            const char *colon = strchr(v, ':');
            if (colon) {
                char lo[32];
                if ((size_t)(colon - v) >= sizeof(lo))
                    goto usage;
                memcpy(lo, v, (size_t)(colon - v));
                lo[colon - v] = 0;
                if (parse_u(lo, NETFRONT_MAX_FRAME, &smin) < 0 ||
                    parse_u(colon + 1, NETFRONT_MAX_FRAME, &smax) < 0 || smin > smax)
                    return 2;
            } else {
                if (parse_u(v, NETFRONT_MAX_FRAME, &smin) < 0)
                    return 2;
                smax = smin;
            }
        } else if (!strcmp(a, "--dst")) {
            if (xbr_mac_parse(v, dst) < 0)
                goto usage;
        } else if (!strcmp(a, "--gso")) {
            if (parse_u(v, 65535, &mss) < 0)
                return 2;
        } else if (!strcmp(a, "--slot-bytes")) {
            if (parse_u(v, 4096, &slot) < 0)
                return 2;
        } else if (!strcmp(a, "--first-offset")) {
            if (parse_u(v, 4095, &first) < 0)
                return 2;
        } else if (!strcmp(a, "--interval-us")) {
            if (parse_u(v, 10000000, &interval) < 0)
                return 2;
        } else if (!strcmp(a, "--queue")) {
            if (parse_u(v, NETFRONT_MAX_QUEUES - 1, &q) < 0)
                return 2;
            queue = (int)q;
        } else if (!strcmp(a, "--flows")) {
            if (parse_u(v, 50000, &flows) < 0)
                return 2;
            tcp_all = true;
        } else if (!strcmp(a, "--window")) {
            if (parse_u(v, UINT32_MAX, &window) < 0 || !window)
                return 2;
        } else if (!strcmp(a, "--progress")) {
            progress = v;
        } else {
            goto usage;
        }
    }
    if (flows && full_csum) {
        fputs("xensim-netfront: --flows rewrites ports after the checksum: not with --full-csum\n",
              stderr);
        return 2;
    }
    if (smin < 30) {
        fputs("xensim-netfront: frames must be at least 30 bytes\n", stderr);
        return 2;
    }
    if (!window != !progress) {
        fputs("xensim-netfront: send --window and --progress go together\n", stderr);
        return 2;
    }
    if (progress && !(peer = progress_map(progress)))
        return 1;
    nf = open_connected(c);
    if (!nf)
        return 1;
    for (uint64_t i = 0; i < count && !stop; i++) {
        if (peer) {
            uint64_t seen = atomic_load(peer), since = xbr_now_ms();
            while (i - seen >= window && !stop) {
                uint64_t now = atomic_load(peer);
                if (now != seen) {
                    seen = now;
                    since = xbr_now_ms();
                } else if (xbr_now_ms() - since > 10000) {
                    fprintf(stderr, "xensim-netfront: the receiver stopped at %" PRIu64
                            " frames; %" PRIu64 " sent\n", seen, i);
                    (void)snprintf(extra, sizeof(extra), "sent %" PRIu64 " failed %" PRIu64
                                   " receiver_stalled 1", sent, failed);
                    return finish(nf, "send", false, extra);
                }
                (void)usleep(200);
            }
        }
        size_t len = smin + (smax > smin ? rng_next(&rng) % (smax - smin + 1) : 0);
        /* with --gso, --tcp or --tcp6, TCP frames where they fit */
        size_t hdrs = v6 ? 14 + 40 + 20 : 14 + 20 + 20;
        bool tcp = (mss || tcp_all) && len >= (v6 ? NETFRONT_TF_MIN_TCP6 : NETFRONT_TF_MIN_TCP4);
        bool gso = mss && tcp && len > hdrs + mss;
        /* A super-frame's checksum is always left to the backend (netif.h:
         * GSO implies csum_blank); --full-csum fills it in on the others. */
        bool partial = tcp && (gso || !full_csum);
        struct netfront_tx_opts o = {
            .queue = queue,
            .gso_type = !gso ? 0 : v6 ? XEN_NETIF_GSO_TYPE_TCPV6 : XEN_NETIF_GSO_TYPE_TCPV4,
            .gso_size = (uint16_t)mss,
            .csum_blank = partial,
            .first_offset = (uint16_t)first,
            .slot_bytes = (uint16_t)slot,
        };
        int r;

        (void)netfront_test_frame_kind(frame, len, (uint32_t)i, dst, netfront_mac(nf),
                                       !tcp ? NF_TF_RAW : v6 ? NF_TF_TCP6 : NF_TF_TCP4, partial);
        if (tcp && flows) {
            /* Another source port per flow; the checksum is left partial
             * (csum_blank), and the pseudo-header it holds has no ports. */
            uint16_t sport = (uint16_t)(12345 + i % flows);
            frame[hdrs - 20] = (uint8_t)(sport >> 8);
            frame[hdrs - 19] = (uint8_t)sport;
        }
        r = netfront_send(nf, frame, len, &o);
        if (r < 0) {
            fprintf(stderr, "xensim-netfront: send #%" PRIu64 " (%zu bytes): %s\n", i, len,
                    strerror(-r));
            failed++;
            if (r == -EPROTO || r == -ENOTCONN)
                break;
        } else {
            sent++;
        }
        if (interval)
            (void)usleep((useconds_t)interval);
    }
    (void)snprintf(extra, sizeof(extra), "sent %" PRIu64 " failed %" PRIu64, sent, failed);
    return finish(nf, "send", failed == 0 && sent == count, extra);
usage:
    fputs(usage_text, stderr);
    return 2;
}

/* The Microsoft RSS verification key, as a Windows PV driver would set it. */
static const uint8_t rss_key[40] = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};
#define RSS_TABLE 128u

/* What the frame's hash must be, computed here from the frame's own bytes
 * (IPv4 only: what this tool sends): the hash type, or -1 for none. */
static int expected_hash(const uint8_t *f, size_t len, uint32_t *h)
{
    uint8_t in[12];
    *h = 0;
    if (len < 34 || f[12] != 0x08 || f[13] != 0x00 || (f[14] >> 4) != 4)
        return -1;
    size_t ihl = (size_t)(f[14] & 15) * 4;
    bool frag = ((f[20] << 8 | f[21]) & 0x3fff) != 0;
    memcpy(in, f + 26, 8);
    if (f[23] == 6 && !frag && len >= 14 + ihl + 4) {
        memcpy(in + 8, f + 14 + ihl, 4);
        *h = xen_netif_toeplitz_hash(rss_key, sizeof(rss_key), in, 12);
        return _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP;
    }
    *h = xen_netif_toeplitz_hash(rss_key, sizeof(rss_key), in, 8);
    return _XEN_NETIF_CTRL_HASH_TYPE_IPV4;
}

#define MAX_GROUPS 256

/* The Internet checksum (RFC 1071): csum_acc adds len bytes to an unfolded
 * sum, csum_done folds and complements it (0 over data holding a right
 * checksum). */
static uint32_t csum_acc(uint32_t sum, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    return sum;
}

static uint16_t csum_done(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static uint16_t ip_csum(const uint8_t *p, size_t len)
{
    return csum_done(csum_acc(0, p, len));
}

/* The checksum of an IPv6 upper-layer packet (l4, len bytes, next header
 * nh) of the IPv6 header ip6, over the pseudo-header of RFC 8200 8.1. */
static uint16_t ip6_l4_csum(const uint8_t *ip6, uint8_t nh, const uint8_t *l4, size_t len)
{
    return csum_done(csum_acc(csum_acc(0, ip6 + 8, 32) + nh + (uint32_t)len, l4, len));
}

/* A TCP/IPv4 or TCP/IPv6 frame (no options, no extension headers): the
 * offset of its TCP header, its end (by the IP length; 0 if that is past
 * len) and whether it is IPv6; false for anything else. */
static bool tcp_frame(const uint8_t *f, size_t len, size_t *l4, size_t *end, bool *v6)
{
    if (len >= 34 && f[12] == 0x08 && f[13] == 0x00 && (f[14] >> 4) == 4 && f[23] == 6) {
        size_t ihl = (size_t)(f[14] & 15) * 4, tot = (size_t)(f[16] << 8 | f[17]);
        *l4 = 14 + ihl;
        *end = ihl >= 20 && tot >= ihl + 20 && 14 + tot <= len ? 14 + tot : 0;
        *v6 = false;
        return true;
    }
    if (len >= 54 && f[12] == 0x86 && f[13] == 0xdd && (f[14] >> 4) == 6 && f[20] == 6) {
        size_t pl = (size_t)(f[18] << 8 | f[19]);
        *l4 = 54;
        *end = pl >= 20 && 54 + pl <= len ? 54 + pl : 0;
        *v6 = true;
        return true;
    }
    return false;
}

/* What a frontend that turned offloads off must get, checked on each frame:
 * without csum offload no partial checksum (NETRXF_csum_blank), without GSO
 * or SG no GSO frame, without SG one slot, a GSO type that is the frame's
 * (TCPV4 for IPv4, TCPV6 for IPv6); and the IP and TCP checksums of every
 * TCP/IPv4 and TCP/IPv6 frame not marked csum_blank must verify. */
struct rx_check {
    uint64_t csum_ok, csum_bad, offload_bad, blank, gso4, gso6;
    /* Segments of a super-frame (sent by another guest with --gso) that
     * reach a frontend without GSO: reassembled in order and checked as one
     * test frame; IPv4 ids consecutive, PSH on the last segment only. */
    uint8_t *asm_buf;
    size_t asm_len, asm_want;
    uint32_t next_seq;
    uint16_t next_id;
    uint64_t segments, seg_bad, reassembled;
};

static void rx_check_frame(const struct cli *c, struct rx_check *k, const uint8_t *f,
                           size_t len, const struct netfront_rx_info *info)
{
    bool blank = info->flags & NETRXF_csum_blank, v6 = false, tcp;
    size_t l4 = 0, end = 0;

    if ((c->o.no_csum_offload && blank) ||
        ((c->o.no_gso || c->o.no_sg) && info->gso_type) || (c->o.no_sg && info->slots > 1))
        k->offload_bad++;
    tcp = tcp_frame(f, len, &l4, &end, &v6);
    if (info->gso_type) {
        if (!tcp || info->gso_type != (v6 ? XEN_NETIF_GSO_TYPE_TCPV6 : XEN_NETIF_GSO_TYPE_TCPV4))
            k->offload_bad++;
        else if (v6)
            k->gso6++;
        else
            k->gso4++;
    }
    if (!tcp)
        return;
    if (blank) {
        k->blank++;
        return;
    }
    if (!end || (!v6 && ip_csum(f + 14, l4 - 14) != 0)) {
        k->csum_bad++;
        return;
    }
    uint16_t cs = v6 ? ip6_l4_csum(f + 14, 6, f + l4, end - l4)
                     : csum_done(csum_acc(csum_acc(0, f + 26, 8) + 6 + (uint32_t)(end - l4),
                                          f + l4, end - l4));
    if (cs != 0) {
        k->csum_bad++;
        return;
    }
    k->csum_ok++;
}

/* A TCP/IPv4 or TCP/IPv6 segment of a test frame: returns 1 and sets *done
 * (the whole frame, in k->asm_buf, *done_len bytes) when it completed one, 0
 * when it was taken as a piece, -1 when it is not a segment (a whole frame). */
static int rx_reassemble(struct rx_check *k, const uint8_t *f, size_t len, size_t *done_len)
{
    size_t off, end;
    bool v6;
    if (!tcp_frame(f, len, &off, &end, &v6) || len < off + 20)
        return -1;
    size_t doff = (size_t)(f[off + 12] >> 4) * 4, pl = off + doff;
    uint32_t seq = (uint32_t)f[off + 4] << 24 | (uint32_t)f[off + 5] << 16 |
                   (uint32_t)f[off + 6] << 8 | f[off + 7];
    /* IPv6 has no id in its fixed header (RFC 8200): only IPv4's is checked. */
    uint16_t id = v6 ? 0 : (uint16_t)(f[18] << 8 | f[19]);
    uint8_t tflags = f[off + 13];
    if (pl > len)
        return -1;
    if (len >= pl + 12 && !memcmp(f + pl, "XSIM", 4)) {
        size_t want = (size_t)f[pl + 8] << 24 | (size_t)f[pl + 9] << 16 |
                      (size_t)f[pl + 10] << 8 | f[pl + 11];
        if (want <= len || want > NETFRONT_MAX_FRAME)
            return -1; /* a whole frame */
        if (k->asm_want)
            k->seg_bad++; /* the previous one never completed */
        if (!k->asm_buf)
            k->asm_buf = malloc(NETFRONT_MAX_FRAME);
        if (!k->asm_buf)
            return -1;
        memcpy(k->asm_buf, f, len);
        k->asm_len = len;
        k->asm_want = want;
    } else {
        if (!k->asm_want)
            return -1;
        if (seq != k->next_seq || id != k->next_id || k->asm_len + (len - pl) > k->asm_want) {
            k->seg_bad++;
            k->asm_want = 0;
            return 0;
        }
        memcpy(k->asm_buf + k->asm_len, f + pl, len - pl);
        k->asm_len += len - pl;
    }
    k->segments++;
    k->next_seq = seq + (uint32_t)(len - pl);
    k->next_id = v6 ? 0 : (uint16_t)(id + 1);
    bool last = k->asm_len == k->asm_want;
    /* The test frames carry PSH|ACK: PSH only on the last segment. */
    if ((bool)(tflags & 0x08) != last || !(tflags & 0x10))
        k->seg_bad++;
    if (!last)
        return 0;
    k->asm_want = 0;
    k->reassembled++;
    *done_len = k->asm_len;
    return 1;
}


static int cmd_recv(struct cli *c, int argc, char **argv)
{
    uint64_t count = 1, wait_ms = 10000, ok = 0, bad = 0, other = 0, fill = 0;
    uint64_t hash_ok = 0, hash_bad = 0, mcast_ok = 0, mcast_err = 0, unwanted = 0;
    static uint8_t buf[NETFRONT_MAX_FRAME];
    struct { bool add; uint8_t mac[6]; } ops[64];
    unsigned nops = 0, queues_seen = 0;
    uint8_t groups[MAX_GROUPS][6];
    unsigned ngroups = 0;
    bool hash = false;
    uint32_t table[RSS_TABLE];
    struct netfront *nf;
    uint64_t deadline;
    char extra[600];
    struct rx_check chk = {0};
    uint8_t from[6];
    bool have_from = false;
    _Atomic uint64_t *progress = NULL;

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--hash")) {
            hash = true;
            continue;
        }
        if (!v)
            goto usage;
        i++;
        if (!strcmp(a, "--count")) {
            if (parse_u(v, UINT32_MAX, &count) < 0)
                return 2;
        } else if (!strcmp(a, "--wait")) {
            if (parse_u(v, UINT32_MAX, &wait_ms) < 0)
                return 2;
        } else if ((!strcmp(a, "--mcast-add") || !strcmp(a, "--mcast-del")) &&
                   nops < XBR_ARRAY_SIZE(ops)) {
            ops[nops].add = a[8] == 'a';
            if (xbr_mac_parse(v, ops[nops].mac) < 0)
                goto usage;
            nops++;
        } else if (!strcmp(a, "--from")) {
            if (xbr_mac_parse(v, from) < 0)
                goto usage;
            have_from = true;
        } else if (!strcmp(a, "--mcast-fill")) {
            if (parse_u(v, MAX_GROUPS - 64, &fill) < 0)
                return 2;
        } else if (!strcmp(a, "--progress")) {
            if (!(progress = progress_map(v)))
                return 1;
            atomic_store(progress, 0); /* before connecting: a sender waits for that */
        } else {
            goto usage;
        }
    }
    if (hash && !c->o.ctrl_ring) {
        fputs("xensim-netfront: recv --hash needs --ctrl-ring\n", stderr);
        return 2;
    }
    nf = open_connected(c);
    if (!nf)
        return 1;
    if (hash) {
        uint16_t failed = 0;
        int r;
        /* A table no modulo of the queue count reproduces. */
        for (unsigned i = 0; i < RSS_TABLE; i++)
            table[i] = (i * 7 + 3) % netfront_num_queues(nf);
        r = netfront_set_toeplitz(nf, rss_key, sizeof(rss_key), 0xf, table, RSS_TABLE, &failed);
        if (r < 0) {
            fprintf(stderr, "xensim-netfront: turning Toeplitz on failed at request type %u: %s\n",
                    failed, strerror(-r));
            return finish(nf, "recv", 0, "hash_setup failed");
        }
    }
    /* Subscriptions, in order; what the backend accepted is the list. */
    for (unsigned k = 0; k < nops + fill; k++) {
        uint8_t mac[6] = {0x33, 0x33, 0xff, 0x00, (uint8_t)((k - nops) >> 8), (uint8_t)(k - nops)};
        bool add = k < nops ? ops[k].add : true;
        if (k < nops)
            memcpy(mac, ops[k].mac, 6);
        int16_t st = 0;
        int r = netfront_mcast(nf, add, mac, &st);
        if (r < 0) {
            fprintf(stderr, "xensim-netfront: multicast request: %s\n", strerror(-r));
            return finish(nf, "recv", 0, "mcast failed");
        }
        if (st == NETIF_RSP_OKAY) {
            mcast_ok++;
            if (add && ngroups < MAX_GROUPS) {
                memcpy(groups[ngroups++], mac, 6);
            } else if (!add) {
                for (unsigned g = 0; g < ngroups; g++)
                    if (!memcmp(groups[g], mac, 6)) {
                        memmove(groups[g], groups[g + 1], (ngroups - g - 1) * 6);
                        ngroups--;
                        break;
                    }
            }
        } else {
            mcast_err++;
        }
    }
    deadline = xbr_now_ms() + wait_ms;
    while (ok + bad < count && !stop && xbr_now_ms() < deadline) {
        uint64_t left = deadline - xbr_now_ms();
        struct netfront_rx_info info;
        ssize_t n = netfront_recv(nf, buf, sizeof(buf), (int)XBR_MIN(left, 200u), &info);
        size_t got;
        uint32_t seq;
        if (n == -ETIMEDOUT)
            continue;
        if (n < 0) {
            fprintf(stderr, "xensim-netfront: recv: %s\n", strerror((int)-n));
            break;
        }
        got = (size_t)XBR_MIN((size_t)n, sizeof(buf));
        if (have_from && (got < 12 || memcmp(buf + 6, from, 6)))
            continue; /* --from: only that sender's frames count */
        queues_seen |= 1u << info.queue;
        if (netfront_mcast_filtering(nf) && got >= 6 && (buf[0] & 1) &&
            memcmp(buf, "\xff\xff\xff\xff\xff\xff", 6)) {
            bool sub = false;
            for (unsigned g = 0; g < ngroups && !sub; g++)
                sub = !memcmp(groups[g], buf, 6);
            unwanted += !sub;
        }
        rx_check_frame(c, &chk, buf, got, &info);
        const uint8_t *fr = buf;
        size_t whole = 0;
        int ra = rx_reassemble(&chk, buf, got, &whole);
        if (ra == 0)
            continue; /* a piece of a super-frame */
        if (ra == 1) {
            fr = chk.asm_buf;
            got = whole;
        }
        int tf = netfront_test_frame_check(fr, got, &seq);
        /* Hashes are checked on test frames: anything else may have come
         * before the hash was on (a BPDU at connect). */
        if (hash && tf == 0) {
            uint32_t want;
            int type = expected_hash(fr, got, &want);
            unsigned q = table[want % RSS_TABLE];
            if (info.hash_type == type && (type < 0 || (info.hash == want &&
                info.hash_alg == XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ)) && info.queue == q) {
                hash_ok++;
            } else {
                hash_bad++;
                if (hash_bad <= 5)
                    fprintf(stderr, "xensim-netfront: hash: got type %d value 0x%08x on queue %u, "
                            "expected type %d value 0x%08x on queue %u\n", info.hash_type,
                            info.hash, info.queue, type, want, q);
            }
        }
        switch (tf) {
        case 0: ok++; break;
        case -EBADMSG: bad++; break;
        default: other++; break;
        }
        if (progress)
            atomic_store(progress, ok + bad);
    }
    (void)snprintf(extra, sizeof(extra),
                   "ok %" PRIu64 " bad %" PRIu64 " other %" PRIu64 " hash_ok %" PRIu64
                   " hash_bad %" PRIu64 " queues_used %d mcast_ok %" PRIu64 " mcast_err %" PRIu64
                   " mcast_unwanted %" PRIu64 " csum_ok %" PRIu64 " csum_bad %" PRIu64
                   " offload_bad %" PRIu64 " segments %" PRIu64 " seg_bad %" PRIu64
                   " reassembled %" PRIu64 " csum_blank %" PRIu64 " gso_tcpv4 %" PRIu64
                   " gso_tcpv6 %" PRIu64,
                   ok, bad, other, hash_ok, hash_bad, __builtin_popcount(queues_seen), mcast_ok,
                   mcast_err, unwanted, chk.csum_ok, chk.csum_bad, chk.offload_bad, chk.segments,
                   chk.seg_bad, chk.reassembled, chk.blank, chk.gso4, chk.gso6);
    free(chk.asm_buf);
    return finish(nf, "recv",
                  ok == count && bad == 0 && hash_bad == 0 && unwanted == 0 && chk.csum_bad == 0 &&
                      chk.offload_bad == 0 && chk.seg_bad == 0,
                  extra);
usage:
    fputs(usage_text, stderr);
    return 2;
}

/* ctrl-check: each request Linux netback's control ring answers, with the
 * status it gives, in an order where each result depends on the earlier
 * ones (the algorithm gates the flags; the size bounds the table). */
static int cmd_ctrl_check(struct cli *c, int argc, char **argv)
{
    enum { S = XEN_NETIF_CTRL_STATUS_SUCCESS, NS = XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED,
           INV = XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER };
    struct netfront *nf;
    uint64_t good = 0, wrong = 0;
    uint32_t ref = 0, data, table[RSS_TABLE + 1];
    char extra[96];
    (void)argv;

    if (argc || !c->o.ctrl_ring) {
        fputs("xensim-netfront: ctrl-check needs --ctrl-ring and no arguments\n", stderr);
        return 2;
    }
    nf = open_connected(c);
    if (!nf)
        return 1;
    if (!netfront_has_ctrl(nf)) {
        fputs("xensim-netfront: the backend offered no control ring\n", stderr);
        return finish(nf, "ctrl-check", 0, "no_ctrl_ring 1");
    }
    unsigned nq = netfront_num_queues(nf);
#define CHECK(what, type, d0, d1, d2, want, want_data)                                      \
    do {                                                                                    \
        data = 0xdeadbeef;                                                                  \
        int r_ = netfront_ctrl(nf, (type), (d0), (d1), (d2), &data);                        \
        bool ok_ = r_ == (int)(want) && ((want_data) < 0 || data == (uint32_t)(want_data)); \
        printf("CTRL %-40s status %d data 0x%x: %s\n", (what), r_, data, ok_ ? "ok" : "WRONG"); \
        if (ok_)                                                                            \
            good++;                                                                         \
        else                                                                                \
            wrong++;                                                                        \
    } while (0)
    CHECK("invalid type 0", XEN_NETIF_CTRL_TYPE_INVALID, 0, 0, 0, NS, -1);
    CHECK("flags before an algorithm", XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS, 0, 0, 0, NS, -1);
    CHECK("set flags before an algorithm", XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, 1, 0, 0, INV, -1);
    CHECK("unknown algorithm 7", XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM, 7, 0, 0, INV, -1);
    CHECK("toeplitz", XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM,
          XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ, 0, 0, S, -1);
    CHECK("supported flags", XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS, 0, 0, 0, S, 0xf);
    CHECK("unknown flag 0x10", XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, 0x10, 0, 0, INV, -1);
    CHECK("all flags", XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, 0xf, 0, 0, S, -1);
    (void)netfront_ctrl_page(nf, rss_key, sizeof(rss_key), &ref);
    CHECK("key of 41 octets", XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, ref, 41, 0, INV, -1);
    CHECK("key from a bad grant", XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, 1u << 20, 40, 0, INV, -1);
    CHECK("key of 40 octets", XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, ref, 40, 0, S, -1);
    CHECK("empty key", XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, ref, 0, 0, S, -1);
    CHECK("mapping size", XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE, 0, 0, 0, S, RSS_TABLE);
    CHECK("mapping size 129", XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, RSS_TABLE + 1, 0, 0,
          INV, -1);
    CHECK("mapping size 128", XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, RSS_TABLE, 0, 0, S, -1);
    for (unsigned i = 0; i <= RSS_TABLE; i++)
        table[i] = i % nq;
    table[5] = nq; /* one queue that does not exist */
    (void)netfront_ctrl_page(nf, table, sizeof(table), &ref);
    CHECK("mapping naming a queue past the last", XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, ref,
          RSS_TABLE, 0, INV, -1);
    CHECK("mapping past the size", XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, ref, 4, RSS_TABLE - 2,
          INV, -1);
    CHECK("mapping offset wrapping", XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, ref, 2, 0xffffffffu,
          INV, -1);
    CHECK("mapping longer than a page", XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, ref, 1025, 0, INV,
          -1);
    CHECK("mapping from a bad grant", XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, 1u << 20, 4, 0, INV,
          -1);
    CHECK("mapping of the good entries", XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, ref, 5, 0, S, -1);
    CHECK("static grants (not offered)", XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE, 0, 0, 0, NS,
          -1);
    CHECK("type 99", 99, 0, 0, 0, NS, -1);
    CHECK("algorithm none", XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM,
          XEN_NETIF_CTRL_HASH_ALGORITHM_NONE, 0, 0, S, -1);
    CHECK("flags once off again", XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS, 0, 0, 0, NS, -1);
#undef CHECK
    (void)snprintf(extra, sizeof(extra), "ctrl_ok %" PRIu64 " ctrl_wrong %" PRIu64, good,
                   wrong);
    return finish(nf, "ctrl-check", wrong == 0, extra);
}

/* ---- ARP / ICMP --------------------------------------------------------------- */

static uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void arp_frame(uint8_t *f, uint16_t op, const uint8_t *sha, uint32_t spa,
                      const uint8_t *tha, uint32_t tpa, const uint8_t *dst)
{
    memset(f, 0, 60);
    memcpy(f, dst, 6);
    memcpy(f + 6, sha, 6);
    f[12] = 0x08, f[13] = 0x06;
    f[14] = 0, f[15] = 1;   /* Ethernet */
    f[16] = 8, f[17] = 0;   /* IPv4 */
    f[18] = 6, f[19] = 4;
    f[20] = 0, f[21] = (uint8_t)op;
    memcpy(f + 22, sha, 6);
    be32_put(f + 28, spa);
    memcpy(f + 32, tha, 6);
    be32_put(f + 38, tpa);
}

/* Answers ARP requests for our IP and ICMP echo requests to it. Returns 1
 * when the frame was answered, 0 when it was not for us, -errno. */
static int answer(struct netfront *nf, uint32_t ip, uint8_t *f, size_t len)
{
    const uint8_t *mac = netfront_mac(nf);

    if (len >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 1 && be32_at(f + 38) == ip) {
        uint8_t r[60], sha[6];
        memcpy(sha, f + 22, 6);
        arp_frame(r, 2, mac, ip, sha, be32_at(f + 28), sha);
        return netfront_send(nf, r, sizeof(r), NULL) < 0 ? -EIO : 1;
    }
    if (len >= 42 && f[12] == 0x08 && f[13] == 0x00 && (f[14] >> 4) == 4 && f[23] == 1 &&
        be32_at(f + 30) == ip) {
        size_t ihl = (size_t)(f[14] & 15) * 4, tot = (size_t)f[16] << 8 | f[17];
        uint8_t *icmp = f + 14 + ihl;
        if (ihl < 20 || tot < ihl + 8 || 14 + tot > len || icmp[0] != 8)
            return 0;
        memcpy(f, f + 6, 6);
        memcpy(f + 6, mac, 6);
        memcpy(f + 30, f + 26, 4);
        be32_put(f + 26, ip);
        f[22] = 64;
        f[24] = f[25] = 0;
        {
            uint16_t c = ip_csum(f + 14, ihl);
            f[24] = (uint8_t)(c >> 8), f[25] = (uint8_t)c;
        }
        icmp[0] = 0;
        icmp[2] = icmp[3] = 0;
        {
            uint16_t c = ip_csum(icmp, tot - ihl);
            icmp[2] = (uint8_t)(c >> 8), icmp[3] = (uint8_t)c;
        }
        return netfront_send(nf, f, 14 + tot, NULL) < 0 ? -EIO : 1;
    }
    return 0;
}

/* ---- ICMPv6: neighbour discovery and echo ------------------------------------ */

struct icmp6_count {
    uint64_t na, echo, bad; /* advertisements sent, echo replies sent, bad checksums */
};

/* Answers, for our IPv6 address ip6, Neighbour Solicitations (RFC 4861 7.2.4:
 * an advertisement with our link-layer address as target option, solicited
 * unless the solicitation came from :: for DAD, then to all-nodes) and ICMPv6
 * echo requests (RFC 4443 4.2). Only packets whose ICMPv6 checksum verifies
 * are answered; the others are counted in k->bad. Returns 1 when the frame
 * was answered, 0 when it was not for us, -errno. */
static int answer6(struct netfront *nf, const uint8_t ip6[16], uint8_t *f, size_t len,
                   struct icmp6_count *k)
{
    static const uint8_t all_nodes[16] = {0xff, 2, [15] = 1};
    const uint8_t *mac = netfront_mac(nf);
    uint8_t *ip = f + 14, *icmp = f + 54, snm[16] = {0xff, 2, [11] = 1, [12] = 0xff};

    if (len < 54 + 8 || f[12] != 0x86 || f[13] != 0xdd || (ip[0] >> 4) != 6 || ip[6] != 58)
        return 0;
    size_t plen = (size_t)(ip[4] << 8 | ip[5]);
    if (plen < 8 || 54 + plen > len)
        return 0;
    memcpy(snm + 13, ip6 + 13, 3);
    bool to_us = !memcmp(ip + 24, ip6, 16);
    if (icmp[0] == 135 && plen >= 24 && (to_us || !memcmp(ip + 24, snm, 16)) &&
        !memcmp(icmp + 8, ip6, 16)) {
        if (ip6_l4_csum(ip, 58, icmp, plen) != 0 || ip[7] != 255 || icmp[1] != 0) {
            k->bad++;
            return 0;
        }
        static const uint8_t unspec[16];
        bool dad = !memcmp(ip + 8, unspec, 16);
        uint8_t r[14 + 40 + 32] = {0}, *rip = r + 14, *na = r + 54;
        if (dad) {
            r[0] = 0x33, r[1] = 0x33, r[5] = 1; /* 33:33:00:00:00:01 */
            memcpy(rip + 24, all_nodes, 16);
        } else {
            memcpy(r, f + 6, 6);
            memcpy(rip + 24, ip + 8, 16);
        }
        memcpy(r + 6, mac, 6);
        r[12] = 0x86, r[13] = 0xdd;
        rip[0] = 0x60;
        rip[5] = 32;
        rip[6] = 58;
        rip[7] = 255;
        memcpy(rip + 8, ip6, 16);
        na[0] = 136;
        na[4] = dad ? 0x20 : 0x60; /* Solicited (not for DAD), Override */
        memcpy(na + 8, ip6, 16);
        na[24] = 2, na[25] = 1;    /* target link-layer address, 8 octets */
        memcpy(na + 26, mac, 6);
        uint16_t cs = ip6_l4_csum(rip, 58, na, 32);
        na[2] = (uint8_t)(cs >> 8), na[3] = (uint8_t)cs;
        if (netfront_send(nf, r, sizeof(r), NULL) < 0)
            return -EIO;
        k->na++;
        return 1;
    }
    if (icmp[0] == 128 && to_us) {
        if (ip6_l4_csum(ip, 58, icmp, plen) != 0 || icmp[1] != 0) {
            k->bad++;
            return 0;
        }
        memcpy(f, f + 6, 6);
        memcpy(f + 6, mac, 6);
        memcpy(ip + 24, ip + 8, 16);
        memcpy(ip + 8, ip6, 16);
        ip[7] = 64;
        icmp[0] = 129;
        icmp[2] = icmp[3] = 0;
        uint16_t cs = ip6_l4_csum(ip, 58, icmp, plen);
        icmp[2] = (uint8_t)(cs >> 8), icmp[3] = (uint8_t)cs;
        if (netfront_send(nf, f, 54 + plen, NULL) < 0)
            return -EIO;
        k->echo++;
        return 1;
    }
    return 0;
}

static int cmd_echo(struct cli *c, int argc, char **argv)
{
    uint64_t count = 0, hold_s = UINT64_MAX, answered = 0, reflected = 0;
    struct icmp6_count k6 = {0};
    bool reflect = false;
    static uint8_t buf[NETFRONT_MAX_FRAME];
    struct netfront *nf;
    uint64_t end;
    char extra[160];

    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--reflect")) {
            reflect = true;
        } else if (i + 1 < argc && !strcmp(argv[i], "--count")) {
            if (parse_u(argv[++i], UINT32_MAX, &count) < 0)
                return 2;
        } else if (i + 1 < argc && !strcmp(argv[i], "--hold")) {
            if (parse_u(argv[++i], 86400, &hold_s) < 0)
                return 2;
        } else {
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (!c->have_ip && !c->have_ip6 && !reflect) {
        fputs("xensim-netfront: echo needs --ip or --ip6 (or --reflect)\n", stderr);
        return 2;
    }
    nf = open_connected(c);
    if (!nf)
        return 1;
    end = hold_s != UINT64_MAX ? xbr_now_ms() + hold_s * 1000 : UINT64_MAX;
    while (!stop && xbr_now_ms() < end && (!count || answered + reflected < count)) {
        ssize_t n = netfront_recv(nf, buf, sizeof(buf), 200, NULL);
        int r;
        if (n == -ETIMEDOUT)
            continue;
        if (n < 0) {
            fprintf(stderr, "xensim-netfront: recv: %s\n", strerror((int)-n));
            break;
        }
        if ((size_t)n > sizeof(buf))
            continue;
        r = c->have_ip ? answer(nf, c->ip, buf, (size_t)n) : 0;
        if (r == 0 && c->have_ip6)
            r = answer6(nf, c->ip6, buf, (size_t)n, &k6);
        if (r > 0) {
            answered++;
        } else if (r == 0 && reflect && netfront_test_frame_check(buf, (size_t)n, NULL) == 0) {
            memcpy(buf, buf + 6, 6);
            memcpy(buf + 6, netfront_mac(nf), 6);
            if (netfront_send(nf, buf, (size_t)n, NULL) == 0)
                reflected++;
        }
    }
    (void)snprintf(extra, sizeof(extra),
                   "answered %" PRIu64 " reflected %" PRIu64 " na %" PRIu64 " echo6 %" PRIu64
                   " icmp6_bad %" PRIu64,
                   answered, reflected, k6.na, k6.echo, k6.bad);
    return finish(nf, "echo", !count || answered + reflected >= count, extra);
}

static int cmd_ping(struct cli *c, int argc, char **argv)
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, zero[6];
    uint64_t count = 3, wait_ms = 5000, replies = 0;
    uint32_t target = 0;
    bool have_target = false, resolved = false;
    uint8_t tmac[6], f[128];
    static uint8_t buf[NETFRONT_MAX_FRAME];
    struct netfront *nf;
    char extra[96];

    for (int i = 0; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--target")) {
            if (parse_ip(argv[i + 1], &target) < 0)
                return 2;
            have_target = true;
        } else if (!strcmp(argv[i], "--count")) {
            if (parse_u(argv[i + 1], 1000000, &count) < 0)
                return 2;
        } else if (!strcmp(argv[i], "--wait")) {
            if (parse_u(argv[i + 1], UINT32_MAX, &wait_ms) < 0)
                return 2;
        } else {
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (!have_target || !c->have_ip) {
        fputs("xensim-netfront: ping needs --ip and --target\n", stderr);
        return 2;
    }
    nf = open_connected(c);
    if (!nf)
        return 1;
    for (uint64_t seq = 0; seq < count && !stop; seq++) {
        uint64_t deadline = xbr_now_ms() + wait_ms;
        bool got = false;

        if (!resolved)
            arp_frame(f, 1, netfront_mac(nf), c->ip, zero, target, bcast);
        else {
            /* ICMP echo request, 56 bytes of data as ping(8) sends. */
            uint8_t *ip = f + 14, *icmp = f + 34;
            uint16_t cs;
            memset(f, 0, 98);
            memcpy(f, tmac, 6);
            memcpy(f + 6, netfront_mac(nf), 6);
            f[12] = 0x08;
            ip[0] = 0x45;
            ip[3] = 84;
            ip[8] = 64;
            ip[9] = 1;
            be32_put(ip + 12, c->ip);
            be32_put(ip + 16, target);
            cs = ip_csum(ip, 20);
            ip[10] = (uint8_t)(cs >> 8), ip[11] = (uint8_t)cs;
            icmp[0] = 8;
            icmp[4] = 0x58, icmp[5] = 0x53; /* id "XS" */
            icmp[6] = (uint8_t)(seq >> 8), icmp[7] = (uint8_t)seq;
            for (int k = 8; k < 64; k++)
                icmp[k] = (uint8_t)k;
            cs = ip_csum(icmp, 64);
            icmp[2] = (uint8_t)(cs >> 8), icmp[3] = (uint8_t)cs;
        }
        if (netfront_send(nf, f, resolved ? 98 : 60, NULL) < 0)
            break;
        while (!got && !stop && xbr_now_ms() < deadline) {
            ssize_t n = netfront_recv(nf, buf, sizeof(buf), 100, NULL);
            if (n == -ETIMEDOUT)
                continue;
            if (n < 0 || (size_t)n > sizeof(buf))
                break;
            if (answer(nf, c->ip, buf, (size_t)n) != 0)
                continue;
            if (!resolved && n >= 42 && buf[12] == 0x08 && buf[13] == 0x06 && buf[21] == 2 &&
                be32_at(buf + 28) == target) {
                memcpy(tmac, buf + 22, 6);
                resolved = got = true;
                seq--; /* the ARP exchange is not a ping */
            } else if (resolved && n >= 42 && buf[12] == 0x08 && buf[13] == 0x00 &&
                       buf[23] == 1 && buf[34] == 0 && be32_at(buf + 26) == target &&
                       buf[38] == 0x58 && buf[39] == 0x53) {
                replies++;
                got = true;
            }
        }
        if (!resolved)
            break;
        if (got && seq + 1 < count)
            (void)usleep(100000);
    }
    (void)snprintf(extra, sizeof(extra), "resolved %d ping_sent %" PRIu64 " ping_replies %" PRIu64,
                   resolved, count, replies);
    return finish(nf, "ping", resolved && replies == count, extra);
}

/* ---- attack / connect / toolstack --------------------------------------------- */

static int cmd_attack(struct cli *c, int argc, char **argv)
{
    int64_t hold_s = 1;
    struct netfront *nf;
    struct netfront_stats st;
    char extra[160];
    int r, s;

    if (parse_hold(argc, argv, &hold_s) < 0)
        return 2;
    if (c->o.attack == NF_ATTACK_NONE) {
        fputs("xensim-netfront: attack needs --attack NAME\n", stderr);
        return 2;
    }
    nf = open_connected(c);
    if (!nf)
        return 1;
    if (c->o.attack == NF_ATTACK_VANISH) {
        netfront_get_stats(nf, &st);
        r = netfront_run_attack(nf); /* frees nf */
        print_stats("attack", &st, "attack vanish");
        return r < 0 ? 1 : 0;
    }
    r = netfront_run_attack(nf);
    if (r < 0)
        fprintf(stderr, "xensim-netfront: attack %s: %s\n", netfront_attack_name(c->o.attack),
                strerror(-r));
    hold(hold_s, nf);
    s = netfront_backend_state(nf);
    (void)snprintf(extra, sizeof(extra), "attack %s backend_state %d",
                   netfront_attack_name(c->o.attack), s);
    netfront_get_stats(nf, &st);
    print_stats("attack", &st, extra);
    (void)netfront_close(nf);
    return r < 0 ? 1 : 0;
}

static int cmd_connect(struct cli *c, int argc, char **argv)
{
    int64_t hold_s = -1;
    struct netfront *nf;

    if (parse_hold(argc, argv, &hold_s) < 0)
        return 2;
    nf = open_connected(c);
    if (!nf)
        return 1;
    printf("CONNECTED dom %u vif %u queues %u\n", c->domid, c->devid, netfront_num_queues(nf));
    fflush(stdout);
    hold(hold_s, nf);
    return finish(nf, "connect", 1, NULL);
}

static int backend_arg(int argc, char **argv, uint64_t *be, const char **bridge)
{
    for (int i = 0; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--backend-domid")) {
            if (parse_u(argv[i + 1], 0x7fef, be) < 0)
                return -1;
        } else if (bridge && !strcmp(argv[i], "--bridge")) {
            *bridge = argv[i + 1];
        } else {
            return -1;
        }
    }
    return argc % 2 ? -1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"domid", required_argument, NULL, 'd'},
        {"devid", required_argument, NULL, 'v'},
        {"queues", required_argument, NULL, 'q'},
        {"mac", required_argument, NULL, 'm'},
        {"ip", required_argument, NULL, 'i'},
        {"rx-buffers", required_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, 't'},
        {"attack", required_argument, NULL, 'a'},
        {"no-split", no_argument, NULL, 1},
        {"no-sg", no_argument, NULL, 2},
        {"no-gso", no_argument, NULL, 3},
        {"no-csum", no_argument, NULL, 4},
        {"ctrl-ring", no_argument, NULL, 5},
        {"mcast-control", no_argument, NULL, 6},
        {"xs-set", required_argument, NULL, 7},
        {"xs-rm", required_argument, NULL, 8},
        {"attack-dst", required_argument, NULL, 9},
        {"ip6", required_argument, NULL, 10},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli c = {.devid = 0};
    bool have_domid = false;
    const char *cmd;
    char buf[16];
    uint64_t v;
    int opt;

    while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            if (parse_u(optarg, 0x7fef, &v) < 0)
                return 2;
            c.domid = (uint32_t)v;
            have_domid = true;
            break;
        case 'v':
            if (parse_u(optarg, UINT32_MAX, &v) < 0)
                return 2;
            c.devid = (uint32_t)v;
            break;
        case 'q':
            if (parse_u(optarg, NETFRONT_MAX_QUEUES, &v) < 0)
                return 2;
            c.o.queues = (unsigned)v;
            break;
        case 'm':
            if (xbr_mac_parse(optarg, c.mac) < 0) {
                fprintf(stderr, "xensim-netfront: bad MAC '%s'\n", optarg);
                return 2;
            }
            c.have_mac = true;
            break;
        case 'i':
            if (parse_ip(optarg, &c.ip) < 0) {
                fprintf(stderr, "xensim-netfront: bad IPv4 address '%s'\n", optarg);
                return 2;
            }
            c.have_ip = true;
            break;
        case 'r':
            if (parse_u(optarg, 256, &v) < 0)
                return 2;
            c.o.rx_buffers = (unsigned)v;
            break;
        case 't':
            if (parse_u(optarg, INT32_MAX, &v) < 0)
                return 2;
            c.o.timeout_ms = (int)v;
            break;
        case 'a':
            if (netfront_attack_parse(optarg, &c.o.attack, &c.o.attack_arg) < 0) {
                fprintf(stderr, "xensim-netfront: unknown attack '%s' (see list-attacks)\n",
                        optarg);
                return 2;
            }
            break;
        case 1: c.o.no_split_evtchn = true; break;
        case 2: c.o.no_sg = true; break;
        case 3: c.o.no_gso = true; break;
        case 4: c.o.no_csum_offload = true; break;
        case 5: c.o.ctrl_ring = true; break;
        case 6: c.o.mcast_control = true; break;
        case 7:
        case 8:
            if (c.o.n_xs_overrides == CLI_MAX_XS || (opt == 7) != (strchr(optarg, '=') != NULL) ||
                optarg[0] == '=' || !optarg[0]) {
                fprintf(stderr, "xensim-netfront: --xs-set KEY=VALUE / --xs-rm KEY (at most %d)\n",
                        CLI_MAX_XS);
                return 2;
            }
            c.xs[c.o.n_xs_overrides++] = optarg;
            c.o.xs_overrides = c.xs;
            break;
        case 9:
            if (xbr_mac_parse(optarg, c.o.attack_dst) < 0) {
                fprintf(stderr, "xensim-netfront: bad MAC '%s'\n", optarg);
                return 2;
            }
            c.o.have_attack_dst = true;
            break;
        case 10:
            if (inet_pton(AF_INET6, optarg, c.ip6) != 1) {
                fprintf(stderr, "xensim-netfront: bad IPv6 address '%s'\n", optarg);
                return 2;
            }
            c.have_ip6 = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        fputs(usage_text, stderr);
        return 2;
    }
    cmd = argv[optind++];
    argc -= optind;
    argv += optind;
    if (!strcmp(cmd, "list-attacks")) {
        for (unsigned a = 1; a < NF_ATTACK__COUNT; a++)
            printf("%-20s %s\n", netfront_attack_name((enum netfront_attack)a),
                   netfront_attack_help((enum netfront_attack)a));
        return 0;
    }
    if (!have_domid || c.domid == 0) {
        fputs("xensim-netfront: --domid N (N > 0) is required\n", stderr);
        return 2;
    }
    (void)snprintf(buf, sizeof(buf), "%u", c.domid);
    if (setenv(XENSIM_ENV_DOMID, buf, 1) < 0)
        return 1;
    if (!c.have_mac) {
        c.mac[0] = 0x00, c.mac[1] = 0x16, c.mac[2] = 0x3e, c.mac[3] = 0x00;
        c.mac[4] = (uint8_t)c.domid, c.mac[5] = (uint8_t)c.devid;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    if (!strcmp(cmd, "attach") || !strcmp(cmd, "detach")) {
        uint64_t be = 0;
        const char *bridge = NULL;
        int r;
        if (backend_arg(argc, argv, &be, cmd[0] == 'a' ? &bridge : NULL) < 0) {
            fputs(usage_text, stderr);
            return 2;
        }
        if (cmd[0] == 'a')
            r = netfront_toolstack_attach((uint32_t)be, c.domid, c.devid, c.mac, bridge);
        else
            r = netfront_toolstack_detach((uint32_t)be, c.domid, c.devid,
                                          c.o.timeout_ms ? c.o.timeout_ms : 10000);
        if (r < 0) {
            fprintf(stderr, "xensim-netfront %s: %s\n", cmd, strerror(-r));
            return 1;
        }
        return 0;
    }
    if (!strcmp(cmd, "backend-set")) {
        uint64_t be = 0;
        int r;
        if (argc < 2 || backend_arg(argc - 2, argv + 2, &be, NULL) < 0) {
            fputs(usage_text, stderr);
            return 2;
        }
        r = netfront_toolstack_set_backend((uint32_t)be, c.domid, c.devid, argv[0], argv[1]);
        if (r < 0) {
            fprintf(stderr, "xensim-netfront backend-set: %s\n", strerror(-r));
            return 1;
        }
        return 0;
    }
    if (!strcmp(cmd, "ctrl-check"))
        return cmd_ctrl_check(&c, argc, argv);
    if (!strcmp(cmd, "destroy")) {
        int r = netfront_toolstack_destroy_domain(c.domid);
        if (r < 0) {
            fprintf(stderr, "xensim-netfront destroy: %s\n", strerror(-r));
            return 1;
        }
        return 0;
    }
    if (!strcmp(cmd, "connect"))
        return cmd_connect(&c, argc, argv);
    if (!strcmp(cmd, "send"))
        return cmd_send(&c, argc, argv);
    if (!strcmp(cmd, "recv"))
        return cmd_recv(&c, argc, argv);
    if (!strcmp(cmd, "echo"))
        return cmd_echo(&c, argc, argv);
    if (!strcmp(cmd, "ping"))
        return cmd_ping(&c, argc, argv);
    if (!strcmp(cmd, "attack"))
        return cmd_attack(&c, argc, argv);
    fputs(usage_text, stderr);
    return 2;
}
