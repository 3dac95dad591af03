/* xensim-netfront — a simulated guest's network interface, for shell tests.
 *
 * Runs as domain --domid (XENSIM_DOMID is set from it) against the world in
 * $XENSIM_DIR and the xenstore of $XENSIM_XS_DIR (default $XENSIM_DIR when
 * xs-sim serves it). Prints one "SUMMARY key value ..." line at the end and
 * exits 0 when the command did what it was asked, 1 when it did not, 2 on a
 * usage error. See `xensim-netfront --help`.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static const char usage_text[] =
    "usage: xensim-netfront --domid N [options] COMMAND [command options]\n"
    "options:\n"
    "  --domid N            the guest domain (required)\n"
    "  --devid N            vif device id (default 0)\n"
    "  --queues N           queues wanted (default 1)\n"
    "  --mac MAC            attach: the vif's MAC (default 00:16:3e:00:<domid>:<devid>)\n"
    "  --ip A.B.C.D         our IPv4 address (echo, ping)\n"
    "  --rx-buffers N       RX buffers kept posted per queue (default 256)\n"
    "  --no-split --no-sg --no-gso --no-csum   features not used / advertised\n"
    "  --timeout MS         handshake / close waits (default 10000)\n"
    "  --attack NAME[=N]    misbehave (list-attacks shows them)\n"
    "commands:\n"
    "  attach [--backend-domid N] [--bridge NAME]   toolstack: create the vif in xenstore\n"
    "  detach [--backend-domid N]                   toolstack: remove it as libxl does\n"
    "  destroy                                      toolstack: the domain dies\n"
    "  connect [--hold SEC]        connect, stay SEC seconds (0: none; default: until\n"
    "                              SIGTERM/SIGINT), close\n"
    "  send --count N --size S|--size MIN:MAX [--dst MAC] [--gso MSS] [--slot-bytes B]\n"
    "       [--first-offset O] [--interval-us U] [--queue Q]   send test frames\n"
    "  recv --count N [--wait MS]  receive N test frames and check them (--wait: total, ms)\n"
    "  echo [--count N] [--hold SEC] [--reflect]   answer ARP and ICMP echo for --ip\n"
    "       (until N answered, SEC passed, or SIGTERM);\n"
    "       --reflect also sends test frames back to their sender\n"
    "  ping --target A.B.C.D [--count N] [--wait MS]   ARP, then ICMP echo requests\n"
    "  attack [--hold SEC]         connect, run --attack once, stay SEC (default 1), report,\n"
    "                              close\n"
    "  list-attacks\n";

struct cli {
    uint32_t domid, devid;
    struct netfront_opts o;
    uint8_t mac[6];
    bool have_mac;
    uint32_t ip;
    bool have_ip;
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
           "%s%s\n",
           cmd, st->tx_packets, st->tx_bytes, st->tx_slots, st->tx_rsp_okay, st->tx_rsp_error,
           st->tx_rsp_dropped, st->tx_bad_rsp, st->rx_packets, st->rx_bytes, st->rx_gso,
           st->rx_errors, st->rx_bad, st->events, st->notifies, extra ? " " : "",
           extra ? extra : "");
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
        } else {
            goto usage;
        }
    }
    if (smin < 30) {
        fputs("xensim-netfront: frames must be at least 30 bytes\n", stderr);
        return 2;
    }
    nf = open_connected(c);
    if (!nf)
        return 1;
    for (uint64_t i = 0; i < count && !stop; i++) {
        size_t len = smin + (smax > smin ? rng_next(&rng) % (smax - smin + 1) : 0);
        bool tcp = mss && len >= 70; /* with --gso, TCP/IPv4 frames where they fit */
        bool gso = tcp && len > 14 + 20 + 20 + mss;
        struct netfront_tx_opts o = {
            .queue = queue,
            .gso_type = gso ? XEN_NETIF_GSO_TYPE_TCPV4 : 0,
            .gso_size = (uint16_t)mss,
            .csum_blank = tcp,
            .first_offset = (uint16_t)first,
            .slot_bytes = (uint16_t)slot,
        };
        int r;

        (void)netfront_test_frame(frame, len, (uint32_t)i, dst, netfront_mac(nf), tcp, tcp);
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

static int cmd_recv(struct cli *c, int argc, char **argv)
{
    uint64_t count = 1, wait_ms = 10000, ok = 0, bad = 0, other = 0;
    static uint8_t buf[NETFRONT_MAX_FRAME];
    struct netfront *nf;
    uint64_t deadline;
    char extra[160];

    for (int i = 0; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--count")) {
            if (parse_u(argv[i + 1], UINT32_MAX, &count) < 0)
                return 2;
        } else if (!strcmp(argv[i], "--wait")) {
            if (parse_u(argv[i + 1], UINT32_MAX, &wait_ms) < 0)
                return 2;
        } else {
            fputs(usage_text, stderr);
            return 2;
        }
    }
    nf = open_connected(c);
    if (!nf)
        return 1;
    deadline = xbr_now_ms() + wait_ms;
    while (ok + bad < count && !stop && xbr_now_ms() < deadline) {
        uint64_t left = deadline - xbr_now_ms();
        ssize_t n = netfront_recv(nf, buf, sizeof(buf), (int)XBR_MIN(left, 200u), NULL);
        uint32_t seq;
        if (n == -ETIMEDOUT)
            continue;
        if (n < 0) {
            fprintf(stderr, "xensim-netfront: recv: %s\n", strerror((int)-n));
            break;
        }
        switch (netfront_test_frame_check(buf, (size_t)XBR_MIN((size_t)n, sizeof(buf)), &seq)) {
        case 0: ok++; break;
        case -EBADMSG: bad++; break;
        default: other++; break;
        }
    }
    (void)snprintf(extra, sizeof(extra), "ok %" PRIu64 " bad %" PRIu64 " other %" PRIu64, ok,
                   bad, other);
    return finish(nf, "recv", ok == count && bad == 0, extra);
}

/* ---- ARP / ICMP --------------------------------------------------------------- */

static uint16_t ip_csum(const uint8_t *p, size_t len)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

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

static int cmd_echo(struct cli *c, int argc, char **argv)
{
    uint64_t count = 0, hold_s = UINT64_MAX, answered = 0, reflected = 0;
    bool reflect = false;
    static uint8_t buf[NETFRONT_MAX_FRAME];
    struct netfront *nf;
    uint64_t end;
    char extra[96];

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
    if (!c->have_ip && !reflect) {
        fputs("xensim-netfront: echo needs --ip (or --reflect)\n", stderr);
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
        if (r > 0) {
            answered++;
        } else if (r == 0 && reflect && netfront_test_frame_check(buf, (size_t)n, NULL) == 0) {
            memcpy(buf, buf + 6, 6);
            memcpy(buf + 6, netfront_mac(nf), 6);
            if (netfront_send(nf, buf, (size_t)n, NULL) == 0)
                reflected++;
        }
    }
    (void)snprintf(extra, sizeof(extra), "answered %" PRIu64 " reflected %" PRIu64, answered,
                   reflected);
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
