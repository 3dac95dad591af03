/* xbr-latency — round-trip latency through a switch, on raw Ethernet.
 *
 *   xbr-latency reflect --dev IF [--seconds S]
 *   xbr-latency ping --dev IF --dst MAC [--rate PPS] [--count N] [--size BYTES]
 *                    [--seconds S] [--warmup N] [--json FILE]
 *
 * `reflect` answers every probe addressed to IF's MAC: it swaps the MAC
 * addresses, marks the frame as a reply and sends it back out of IF. `ping`
 * sends --count probes (default 10000) at --rate per second (default 1000)
 * from IF's MAC to --dst, after --warmup uncounted ones (default 100) that
 * let the switch learn both addresses, and measures each round trip.
 *
 * Everything goes through AF_PACKET sockets bound to the interface and to our
 * EtherType, with the qdisc bypassed, so what is measured is the switch and
 * the two veth hops, not an IP stack or a queueing discipline.
 *
 * Probe layout (all integers big-endian), --size bytes long without FCS:
 *    0  dst MAC, src MAC, EtherType 0x88b6 (IEEE local experimental; the
 *       integration tests use 0x88b5 so the two never meet)
 *   14  magic "XBRL"
 *   18  version (1)
 *   19  op: 1 request, 2 reply
 *   20  kind: 0 warmup, 1 measured
 *   21  reserved (0)
 *   22  session: random per ping run, so replies to another run (or to
 *       another pinger on the same segment) are ignored
 *   26  sequence number within its kind
 *   30  send time, CLOCK_MONOTONIC ns
 *   38  zeros up to --size
 * The reflector changes nothing but the MACs and the op byte. Flipping op is
 * what stops two reflectors from bouncing one probe between them forever:
 * they only answer requests, and only those addressed to their own MAC
 * (PACKET_HOST), so a reflected frame is never reflected again.
 *
 * Output of ping: one human line, then
 *   SUMMARY latency sent N recv N lost N rate PPS size BYTES p50_us X p90_us X
 *           p99_us X p999_us X max_us X min_us X mean_us X dup N reorder N
 * (one line; microseconds with one decimal; rate and size are the requested
 * ones; percentiles are nearest-rank over every measured round trip, 0.0 when
 * none came back). --json FILE writes the same figures and a few more as one
 * JSON object (latencies are null when none came back).
 * `reflect` prints "SUMMARY reflect reflected N ignored N" when it stops.
 *
 * Exit status: 0 when at least one probe came back (ping) or the reflector
 * stopped normally; 1 when nothing came back (timeout) or the socket failed
 * mid-run; 2 when the run could not start: a bad argument (the message names
 * it) or a setup failure.
 *
 * Every run is bounded by --seconds (reflect: 600; ping: the time the probes
 * take at --rate, plus 5 s) and stops early on SIGINT/SIGTERM, still printing
 * its SUMMARY. Both sides check every field of every frame they accept.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#include "util/util.h"

#define LAT_ETHERTYPE 0x88b6
#define LAT_MAGIC "XBRL"
#define LAT_VERSION 1
enum { OP_REQUEST = 1, OP_REPLY = 2 };
enum { KIND_WARMUP = 0, KIND_MEASURED = 1 };

#define OFF_MAGIC 14
#define OFF_VERSION 18
#define OFF_OP 19
#define OFF_KIND 20
#define OFF_SESSION 22
#define OFF_SEQ 26
#define OFF_TIME 30
#define PROBE_HDR_LEN 38

#define MIN_SIZE 60   /* ETH_ZLEN: the shortest valid Ethernet frame */
#define MAX_SIZE 1514 /* standard MTU + header */
#define MAX_COUNT 10000000u /* one 8-byte slot per probe is kept: 80 MB */
#define MAX_RATE 1000000u
#define MAX_WARMUP 1000000u
#define MAX_SECONDS 86400.0

#define NS_PER_S 1000000000ull
/* Replies are awaited this long after the last probe of a phase. */
#define STRAGGLER_NS NS_PER_S
/* How long before a send is due the loop stops sleeping and spins (see
 * ping_phase_run()). Wakeups from a sleep are late by a few to a few tens of µs on
 * an idle VM; the margin absorbs that. */
#define SPIN_NS 50000ull
/* A send this late means the probe itself was descheduled: the schedule is
 * moved back rather than the missed probes sent as one burst, which would
 * queue in the switch and charge our stall to it. */
#define PACING_RESET_NS 1000000ull
/* No sleep is longer than this, so a signal that lands between the check of
 * the stop flag and the start of the sleep delays the exit by at most this. */
#define MAX_SLEEP_NS 100000000ull
/* Room for a burst of replies while the receiver is descheduled: 4 MB hold
 * ~1800 full-size frames (each costs ~2.3 KB of socket memory). */
#define RCVBUF_BYTES (4 << 20)

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

/* Usage errors and setup failures: exit 2 with one line naming the culprit. */
static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("xbr-latency: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void usage(FILE *f)
{
    fputs("usage: xbr-latency reflect --dev IF [--seconds S]\n"
          "       xbr-latency ping --dev IF --dst MAC [--rate PPS] [--count N] [--size BYTES]\n"
          "                        [--seconds S] [--warmup N] [--json FILE]\n"
          "  --dev IF       the Ethernet interface to use (its MAC is the probes' source)\n"
          "  --dst MAC      the MAC of the reflector's interface\n"
          "  --rate PPS     probes per second (1..1000000, default 1000)\n"
          "  --count N      measured probes (1..10000000, default 10000)\n"
          "  --size BYTES   frame length without FCS (60..1514, default 60)\n"
          "  --warmup N     uncounted probes sent first (0..1000000, default 100)\n"
          "  --seconds S    bound on the run (reflect: 600; ping: probes/rate + 5)\n"
          "  --json FILE    also write the results as a JSON object\n",
          f);
}

/* ---- frame fields ---- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static uint64_t get_be64(const uint8_t *p) { return (uint64_t)get_be32(p) << 32 | get_be32(p + 4); }

/* EtherType, magic and version: the part both sides check first. */
static bool probe_header_ok(const uint8_t *f, size_t len)
{
    return len >= PROBE_HDR_LEN && f[12] == (LAT_ETHERTYPE >> 8) &&
           f[13] == (LAT_ETHERTYPE & 0xff) && !memcmp(f + OFF_MAGIC, LAT_MAGIC, 4) &&
           f[OFF_VERSION] == LAT_VERSION;
}

/* ---- sockets ---- */

struct lat_if {
    const char *name;
    int fd;
    uint8_t mac[XBR_ETH_ALEN];
};

static void set_int_opt(int fd, int level, int opt, int val, const char *what)
{
    if (setsockopt(fd, level, opt, &val, sizeof(val)) < 0)
        xbr_debug("xbr-latency: %s not available: %s", what, strerror(errno));
}

/* A packet socket on --dev that sees only our EtherType, writes straight to
 * the driver (PACKET_QDISC_BYPASS: no qdisc, no per-frame queueing jitter)
 * and never gets its own frames back (PACKET_IGNORE_OUTGOING, Linux 4.20+;
 * without it the receive paths still drop PACKET_OUTGOING frames). */
static void lat_if_open(struct lat_if *lif, const char *name)
{
    struct ifreq ifr;
    unsigned idx = if_nametoindex(name);

    lif->name = name;
    if (!idx || strlen(name) >= sizeof(ifr.ifr_name))
        die_usage("--dev %s: no such interface", name);
    lif->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(LAT_ETHERTYPE));
    if (lif->fd < 0)
        die_usage("AF_PACKET socket: %s (needs CAP_NET_RAW)", strerror(errno));

    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, name, strlen(name) + 1);
    if (ioctl(lif->fd, SIOCGIFHWADDR, &ifr) < 0)
        die_usage("--dev %s: cannot read its MAC: %s", name, strerror(errno));
    if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
        die_usage("--dev %s: not an Ethernet interface", name);
    memcpy(lif->mac, ifr.ifr_hwaddr.sa_data, XBR_ETH_ALEN);
    if (ioctl(lif->fd, SIOCGIFFLAGS, &ifr) < 0)
        die_usage("--dev %s: cannot read its flags: %s", name, strerror(errno));
    if (!(ifr.ifr_flags & IFF_UP))
        die_usage("--dev %s: interface is down", name);

    struct sockaddr_ll sll = {.sll_family = AF_PACKET,
                              .sll_protocol = htons(LAT_ETHERTYPE),
                              .sll_ifindex = (int)idx};
    if (bind(lif->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
        die_usage("--dev %s: bind: %s", name, strerror(errno));

    set_int_opt(lif->fd, SOL_PACKET, PACKET_QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS");
#ifdef PACKET_IGNORE_OUTGOING
    set_int_opt(lif->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING");
#endif
    /* FORCE goes past net.core.rmem_max but needs CAP_NET_ADMIN. */
    int rcvbuf = RCVBUF_BYTES;
    if (setsockopt(lif->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
        set_int_opt(lif->fd, SOL_SOCKET, SO_RCVBUF, rcvbuf, "SO_RCVBUF");
}

static void install_signals(void)
{
    /* No SA_RESTART: a blocking recv must return EINTR so the loop sees the
     * flag at once. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGINT, &sa, NULL);
    (void)sigaction(SIGTERM, &sa, NULL);
}

static double parse_seconds(const char *s)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0 && v <= MAX_SECONDS))
        die_usage("--seconds %s: want a number of seconds in (0, %.0f]", s, MAX_SECONDS);
    return v;
}

static uint64_t parse_bounded(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    uint64_t v;
    int r = xbr_parse_uint(s, min, max, &v);

    if (r == -ERANGE)
        die_usage("%s %s: out of range, want %" PRIu64 "..%" PRIu64, opt, s, min, max);
    if (r < 0)
        die_usage("%s %s: not a number", opt, s);
    return v;
}

/* ---- reflect ---- */

struct reflect_opts {
    const char *dev;
    double seconds;
};

static int reflect_run(const struct reflect_opts *o)
{
    /* Large enough for a jumbo frame; anything longer is reported by
     * MSG_TRUNC and ignored rather than reflected truncated. */
    static uint8_t buf[16384];
    struct lat_if lif;
    uint64_t reflected = 0, ignored = 0, send_errors = 0;
    int rc = 0;
    char macbuf[XBR_MAC_STRLEN];

    lat_if_open(&lif, o->dev);
    /* One blocking recv per frame is the cheapest wait there is; the
     * timeout only bounds how late we notice --seconds or a signal that
     * raced with the call. */
    struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t)(MAX_SLEEP_NS / 1000)};
    if (setsockopt(lif.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
        die_usage("SO_RCVTIMEO: %s", strerror(errno));
    install_signals();

    uint64_t deadline = xbr_now_ns() + (uint64_t)(o->seconds * 1e9);
    printf("xbr-latency reflect: ready on %s (%s), up to %.1f s\n", lif.name,
           xbr_mac_format(lif.mac, macbuf), o->seconds);
    fflush(stdout);

    while (!stop_signal && xbr_now_ns() < deadline) {
        struct sockaddr_ll from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = recvfrom(lif.fd, buf, sizeof(buf), MSG_TRUNC, (struct sockaddr *)&from,
                             &fromlen);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                continue;
            fprintf(stderr, "xbr-latency: recv on %s: %s\n", lif.name, strerror(errno));
            rc = 1;
            break;
        }
        if (from.sll_pkttype == PACKET_OUTGOING)
            continue; /* our own reflection, on kernels without IGNORE_OUTGOING */
        size_t len = (size_t)n;
        if (len > sizeof(buf) || len < MIN_SIZE || from.sll_pkttype != PACKET_HOST ||
            !probe_header_ok(buf, len) || buf[OFF_OP] != OP_REQUEST) {
            ignored++;
            continue;
        }
        memcpy(buf, buf + 6, XBR_ETH_ALEN);
        memcpy(buf + 6, lif.mac, XBR_ETH_ALEN); /* == the old dst: it was PACKET_HOST */
        buf[OFF_OP] = OP_REPLY;
        if (send(lif.fd, buf, len, MSG_DONTWAIT) == n) {
            reflected++;
        } else if (errno == ENOBUFS || errno == EAGAIN) {
            send_errors++; /* the ping counts it as lost */
        } else {
            fprintf(stderr, "xbr-latency: send on %s: %s\n", lif.name, strerror(errno));
            rc = 1;
            break;
        }
    }
    close(lif.fd);
    printf("xbr-latency reflect: %s: reflected %" PRIu64 ", ignored %" PRIu64
           ", send errors %" PRIu64 "%s\n",
           lif.name, reflected, ignored, send_errors,
           stop_signal ? " (stopped by signal)" : rc ? "" : " (--seconds reached)");
    printf("SUMMARY reflect reflected %" PRIu64 " ignored %" PRIu64 "\n", reflected, ignored);
    return rc;
}

/* ---- ping ---- */

struct ping_opts {
    const char *dev, *json;
    uint8_t dst[XBR_ETH_ALEN];
    bool have_dst, have_seconds;
    uint64_t rate, count, size, warmup;
    double seconds;
};

#define RTT_NONE UINT64_MAX

struct pinger {
    const struct ping_opts *o;
    struct lat_if lif;
    uint8_t frame[MAX_SIZE];
    uint32_t session;
    uint64_t start_ns, deadline_ns;
    /* rtt_ns[seq] of measured probe seq, RTT_NONE until its reply is in. */
    uint64_t *rtt_ns;
    uint32_t max_seq_seen; /* valid once recv > 0 */
    bool fatal, timed_out;
    /* Counters. Warmup replies only feed warmup_recv. */
    uint64_t sent, recv, dup, reorder, ignored, send_errors, warmup_recv;
    uint64_t first_send_ns, last_send_ns, max_lag_ns, pacing_resets;
};

struct ping_phase {
    uint8_t kind;
    uint64_t n;        /* probes to send */
    uint64_t start_ns; /* probe i is due at start_ns + i / rate */
    uint64_t next;     /* next sequence number to send */
    uint64_t sent, recv_before;
};

static uint64_t phase_recv(const struct pinger *p, uint8_t kind)
{
    return kind == KIND_WARMUP ? p->warmup_recv : p->recv;
}

static uint64_t phase_due(const struct pinger *p, const struct ping_phase *ph, uint64_t i)
{
    /* i < 1e7 and 1e9 ns: no overflow, and no drift from a summed interval. */
    return ph->start_ns + i * NS_PER_S / p->o->rate;
}

static void ping_send(struct pinger *p, struct ping_phase *ph)
{
    uint64_t seq = ph->next++;

    p->frame[OFF_KIND] = ph->kind;
    put_be32(p->frame + OFF_SEQ, (uint32_t)seq);
    uint64_t t = xbr_now_ns();
    put_be64(p->frame + OFF_TIME, t);
    ssize_t n = send(p->lif.fd, p->frame, p->o->size, MSG_DONTWAIT);
    if (n == (ssize_t)p->o->size) {
        ph->sent++;
        if (ph->kind == KIND_MEASURED) {
            if (!p->sent)
                p->first_send_ns = t;
            p->last_send_ns = t;
            p->sent++;
        }
    } else if (n >= 0 || errno == ENOBUFS || errno == EAGAIN) {
        p->send_errors++; /* this sequence number is simply never answered */
    } else {
        fprintf(stderr, "xbr-latency: send on %s: %s\n", p->lif.name, strerror(errno));
        p->fatal = true;
    }
}

/* Accepts one received frame, taken off the socket at rx_ns. Anything that
 * is not a reply to a probe this run sent is counted as ignored. */
static void ping_account(struct pinger *p, const uint8_t *f, size_t len,
                         const struct sockaddr_ll *from, uint64_t rx_ns)
{
    if (from->sll_pkttype == PACKET_OUTGOING)
        return;
    if (from->sll_pkttype != PACKET_HOST || !probe_header_ok(f, len) || f[OFF_OP] != OP_REPLY ||
        get_be32(f + OFF_SESSION) != p->session) {
        p->ignored++;
        return;
    }
    uint8_t kind = f[OFF_KIND];
    uint32_t seq = get_be32(f + OFF_SEQ);
    uint64_t tx_ns = get_be64(f + OFF_TIME);
    /* The send time must lie within this run, and the sequence number
     * within what this kind sends: checked before it indexes anything. */
    if (tx_ns < p->start_ns || tx_ns > rx_ns) {
        p->ignored++;
        return;
    }
    if (kind == KIND_WARMUP && seq < p->o->warmup) {
        p->warmup_recv++; /* duplicates too: warmup figures are not reported */
        return;
    }
    if (kind != KIND_MEASURED || seq >= p->o->count) {
        p->ignored++;
        return;
    }
    if (p->rtt_ns[seq] != RTT_NONE) {
        p->dup++;
        return;
    }
    p->rtt_ns[seq] = rx_ns - tx_ns;
    if (p->recv && seq < p->max_seq_seen)
        p->reorder++;
    else
        p->max_seq_seen = seq;
    p->recv++;
}

/* Takes one frame off the socket if there is one. Returns true if the loop
 * should look again at once (a frame or EINTR), false when the socket is
 * empty (or broken: p->fatal). */
static bool ping_try_recv(struct pinger *p)
{
    uint8_t buf[MAX_SIZE + 64];
    struct sockaddr_ll from;
    socklen_t fromlen = sizeof(from);
    ssize_t n = recvfrom(p->lif.fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
                         (struct sockaddr *)&from, &fromlen);
    uint64_t rx_ns = xbr_now_ns(); /* first thing after the frame is ours */

    if (n < 0) {
        if (errno == EINTR)
            return true;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            fprintf(stderr, "xbr-latency: recv on %s: %s\n", p->lif.name, strerror(errno));
            p->fatal = true;
        }
        return false;
    }
    if ((size_t)n > sizeof(buf))
        p->ignored++; /* longer than any probe */
    else
        ping_account(p, buf, (size_t)n, &from, rx_ns);
    return true;
}

/* Sends one phase's probes on schedule and receives replies until all of
 * them are back or STRAGGLER_NS after the last send.
 *
 * Why one thread: on a small machine the switch and the reflector need the
 * other cores, and a second probe thread would compete with them (and with
 * its sibling) and make its own wakeups the noisy part of the figure. One
 * loop does both jobs: while a send is far off it sleeps in ppoll(), which
 * also wakes the moment a reply arrives; in the last SPIN_NS before a send it
 * spins on a non-blocking recv, which paces sends to within a µs or so and
 * catches replies with no wakeup at all. At high rates (interval < SPIN_NS)
 * it spins all the time: one core, by design. Each reply is timestamped
 * right after the recv that returns it; the one bias is a reply that lands
 * while send() runs, which waits for that call (about a µs). Sends keep an
 * absolute schedule (no drift), except after a stall of the prober itself
 * (PACING_RESET_NS); the worst lag and the resets are reported. */
static void ping_phase_run(struct pinger *p, uint8_t kind, uint64_t n)
{
    struct ping_phase ph = {.kind = kind, .n = n, .recv_before = phase_recv(p, kind)};
    uint64_t last_send = 0;

    ph.start_ns = xbr_now_ns();
    while (!stop_signal && !p->fatal) {
        uint64_t now = xbr_now_ns();
        if (now >= p->deadline_ns) {
            p->timed_out = true;
            break;
        }
        bool sent_now = false;
        if (ph.next < ph.n && now >= phase_due(p, &ph, ph.next)) {
            uint64_t lag = now - phase_due(p, &ph, ph.next);
            p->max_lag_ns = XBR_MAX(p->max_lag_ns, lag);
            if (lag > PACING_RESET_NS) {
                ph.start_ns += lag;
                p->pacing_resets++;
            }
            ping_send(p, &ph);
            last_send = now;
            sent_now = true;
        }
        /* A receive after every send, so that a rate we cannot keep up
         * with still alternates sends and receives instead of starving
         * the receive side. */
        if (ping_try_recv(p) || (sent_now && !p->fatal))
            continue;
        if (p->fatal)
            break;

        uint64_t wake;
        if (ph.next < ph.n) {
            wake = phase_due(p, &ph, ph.next);
            wake = wake > SPIN_NS ? wake - SPIN_NS : 0;
        } else {
            if (phase_recv(p, kind) - ph.recv_before >= ph.sent || ph.n == 0)
                break; /* every reply is in */
            wake = last_send + STRAGGLER_NS;
            if (now >= wake)
                break;
        }
        wake = XBR_MIN(wake, p->deadline_ns);
        if (wake <= now)
            continue; /* spin */
        uint64_t sleep_ns = XBR_MIN(wake - now, MAX_SLEEP_NS);
        struct timespec ts = {.tv_sec = (time_t)(sleep_ns / NS_PER_S),
                              .tv_nsec = (long)(sleep_ns % NS_PER_S)};
        struct pollfd pfd = {.fd = p->lif.fd, .events = POLLIN};
        if (ppoll(&pfd, 1, &ts, NULL) < 0 && errno != EINTR) {
            fprintf(stderr, "xbr-latency: ppoll: %s\n", strerror(errno));
            p->fatal = true;
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

struct ping_stats {
    uint64_t n;
    uint64_t min, max, p50, p90, p99, p999;
    double mean;
};

/* Nearest rank: the smallest sample with at least permille/1000 of all the
 * samples at or below it. Integer arithmetic, so p99.9 of 2000 is exactly
 * the 1998th. */
static uint64_t percentile(const uint64_t *sorted, uint64_t n, uint64_t permille)
{
    uint64_t rank = (n * permille + 999) / 1000;
    return sorted[rank ? rank - 1 : 0];
}

/* Gathers the measured round trips at the front of rtt_ns and sorts them
 * (the per-sequence table is not needed any more). */
static void ping_stats_compute(struct pinger *p, struct ping_stats *s)
{
    uint64_t n = 0;
    double sum = 0; /* exact enough, and 1e7 samples of hours cannot overflow it */

    memset(s, 0, sizeof(*s));
    for (uint64_t i = 0; i < p->o->count; i++)
        if (p->rtt_ns[i] != RTT_NONE)
            p->rtt_ns[n++] = p->rtt_ns[i];
    s->n = n;
    if (!n)
        return;
    qsort(p->rtt_ns, n, sizeof(p->rtt_ns[0]), cmp_u64);
    for (uint64_t i = 0; i < n; i++)
        sum += (double)p->rtt_ns[i];
    s->min = p->rtt_ns[0];
    s->max = p->rtt_ns[n - 1];
    s->p50 = percentile(p->rtt_ns, n, 500);
    s->p90 = percentile(p->rtt_ns, n, 900);
    s->p99 = percentile(p->rtt_ns, n, 990);
    s->p999 = percentile(p->rtt_ns, n, 999);
    s->mean = sum / (double)n;
}

static double us(uint64_t ns) { return (double)ns / 1000.0; }

static double achieved_rate(const struct pinger *p)
{
    if (p->sent < 2 || p->last_send_ns <= p->first_send_ns)
        return 0;
    return (double)(p->sent - 1) * 1e9 / (double)(p->last_send_ns - p->first_send_ns);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_us(FILE *f, const char *key, uint64_t ns, bool have)
{
    if (have)
        fprintf(f, ",\"%s\":%.1f", key, us(ns));
    else
        fprintf(f, ",\"%s\":null", key);
}

static int ping_write_json(FILE *f, const char *path, const struct pinger *p,
                           const struct ping_stats *s)
{
    const struct ping_opts *o = p->o;
    char src[XBR_MAC_STRLEN], dst[XBR_MAC_STRLEN];
    bool have = s->n > 0;

    fputs("{\"tool\":\"xbr-latency\",\"dev\":", f);
    json_string(f, o->dev);
    fprintf(f, ",\"src\":\"%s\",\"dst\":\"%s\"", xbr_mac_format(p->lif.mac, src),
            xbr_mac_format(o->dst, dst));
    fprintf(f,
            ",\"sent\":%" PRIu64 ",\"recv\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"dup\":%" PRIu64
            ",\"reorder\":%" PRIu64 ",\"ignored\":%" PRIu64 ",\"send_errors\":%" PRIu64
            ",\"count\":%" PRIu64 ",\"warmup\":%" PRIu64 ",\"warmup_recv\":%" PRIu64
            ",\"rate\":%" PRIu64 ",\"rate_achieved\":%.1f,\"max_send_lag_us\":%.1f"
            ",\"pacing_resets\":%" PRIu64 ",\"size\":%" PRIu64,
            p->sent, p->recv, p->sent - p->recv, p->dup, p->reorder, p->ignored, p->send_errors,
            o->count, o->warmup, p->warmup_recv, o->rate, achieved_rate(p), us(p->max_lag_ns),
            p->pacing_resets, o->size);
    json_us(f, "p50_us", s->p50, have);
    json_us(f, "p90_us", s->p90, have);
    json_us(f, "p99_us", s->p99, have);
    json_us(f, "p999_us", s->p999, have);
    json_us(f, "max_us", s->max, have);
    json_us(f, "min_us", s->min, have);
    if (have)
        fprintf(f, ",\"mean_us\":%.1f", s->mean / 1000.0);
    else
        fputs(",\"mean_us\":null", f);
    fprintf(f, ",\"timed_out\":%s,\"interrupted\":%s}\n", p->timed_out ? "true" : "false",
            stop_signal ? "true" : "false");
    if (fflush(f) != 0 || ferror(f)) {
        fprintf(stderr, "xbr-latency: --json %s: write failed: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Touches every page now, so that no page fault lands in a measurement. */
static uint64_t *alloc_prefaulted(uint64_t n)
{
    uint64_t *a = malloc(n * sizeof(*a));
    if (!a) {
        fprintf(stderr, "xbr-latency: out of memory for %" PRIu64 " samples\n", n);
        exit(2);
    }
    for (uint64_t i = 0; i < n; i++)
        a[i] = RTT_NONE;
    return a;
}

static uint32_t random_session(void)
{
    uint32_t v;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
        return v;
    return (uint32_t)xbr_now_ns() ^ (uint32_t)getpid() << 16;
}

static int ping_run(const struct ping_opts *o)
{
    struct pinger p = {.o = o};
    struct ping_stats s;
    char src[XBR_MAC_STRLEN], dst[XBR_MAC_STRLEN];
    FILE *json = NULL;
    double seconds = o->seconds;

    lat_if_open(&p.lif, o->dev);
    if (!memcmp(p.lif.mac, o->dst, XBR_ETH_ALEN))
        die_usage("--dst %s: that is %s's own MAC; want the reflector's",
                  xbr_mac_format(o->dst, dst), o->dev);
    /* Opened before the run, so that a bad path costs no measurement. */
    if (o->json && !(json = fopen(o->json, "w")))
        die_usage("--json %s: %s", o->json, strerror(errno));
    if (!o->have_seconds)
        seconds = (double)(o->count + o->warmup) / (double)o->rate + 5;
    p.rtt_ns = alloc_prefaulted(o->count);
    p.session = random_session();
    /* Sleeps end when asked, not up to 50 µs later (the default slack). */
    (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    install_signals();

    memcpy(p.frame, o->dst, XBR_ETH_ALEN);
    memcpy(p.frame + 6, p.lif.mac, XBR_ETH_ALEN);
    p.frame[12] = LAT_ETHERTYPE >> 8;
    p.frame[13] = LAT_ETHERTYPE & 0xff;
    memcpy(p.frame + OFF_MAGIC, LAT_MAGIC, 4);
    p.frame[OFF_VERSION] = LAT_VERSION;
    p.frame[OFF_OP] = OP_REQUEST;
    put_be32(p.frame + OFF_SESSION, p.session);

    p.start_ns = xbr_now_ns();
    p.deadline_ns = p.start_ns + (uint64_t)(seconds * 1e9);
    if (o->warmup)
        ping_phase_run(&p, KIND_WARMUP, o->warmup);
    if (o->warmup && !p.warmup_recv && !stop_signal && !p.fatal && !p.timed_out)
        fprintf(stderr, "xbr-latency: no warmup reply within 1 s; measuring anyway\n");
    p.max_lag_ns = p.pacing_resets = 0; /* only the measured phase's pacing is reported */
    if (!stop_signal && !p.fatal && !p.timed_out)
        ping_phase_run(&p, KIND_MEASURED, o->count);
    close(p.lif.fd);

    if (p.timed_out && p.sent < o->count)
        fprintf(stderr, "xbr-latency: --seconds %.1f reached after %" PRIu64 " of %" PRIu64
                        " probes\n", seconds, p.sent, o->count);
    if (stop_signal)
        fprintf(stderr, "xbr-latency: stopped by signal %d\n", (int)stop_signal);

    ping_stats_compute(&p, &s);
    printf("xbr-latency ping: %s %s -> %s: %" PRIu64 " B at %" PRIu64 "/s (achieved %.1f/s,"
           " max send lag %.1f us, %" PRIu64 " pacing resets): sent %" PRIu64 " recv %" PRIu64 " lost %" PRIu64
           " dup %" PRIu64 " reorder %" PRIu64 " ignored %" PRIu64 " send errors %" PRIu64
           "; rtt us min %.1f mean %.1f p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f\n",
           o->dev, xbr_mac_format(p.lif.mac, src), xbr_mac_format(o->dst, dst), o->size,
           o->rate, achieved_rate(&p), us(p.max_lag_ns), p.pacing_resets, p.sent, p.recv, p.sent - p.recv, p.dup,
           p.reorder, p.ignored, p.send_errors, us(s.min), s.mean / 1000.0, us(s.p50),
           us(s.p90), us(s.p99), us(s.p999), us(s.max));
    printf("SUMMARY latency sent %" PRIu64 " recv %" PRIu64 " lost %" PRIu64 " rate %" PRIu64
           " size %" PRIu64 " p50_us %.1f p90_us %.1f p99_us %.1f p999_us %.1f max_us %.1f"
           " min_us %.1f mean_us %.1f dup %" PRIu64 " reorder %" PRIu64 "\n",
           p.sent, p.recv, p.sent - p.recv, o->rate, o->size, us(s.p50), us(s.p90), us(s.p99),
           us(s.p999), us(s.max), us(s.min), s.mean / 1000.0, p.dup, p.reorder);
    fflush(stdout);

    int rc = 0;
    if (json) {
        if (ping_write_json(json, o->json, &p, &s) < 0)
            rc = 1;
        if (fclose(json) != 0 && !rc) {
            fprintf(stderr, "xbr-latency: --json %s: %s\n", o->json, strerror(errno));
            rc = 1;
        }
    }
    free(p.rtt_ns);
    if (p.fatal)
        return 1;
    if (!p.recv) {
        fprintf(stderr,
                "xbr-latency: no probe came back: timeout (%s). Is `xbr-latency reflect` "
                "running on the interface whose MAC is --dst %s, and does the path forward "
                "EtherType 0x88b6?\n",
                p.sent ? "waited 1 s after the last probe" : "no probe was sent", dst);
        return 1;
    }
    return rc;
}

/* ---- command line ---- */

enum { OPT_DEV = 1000, OPT_DST, OPT_RATE, OPT_COUNT, OPT_SIZE, OPT_SECONDS, OPT_WARMUP, OPT_JSON };

static const struct option reflect_longopts[] = {
    {"dev", required_argument, NULL, OPT_DEV},
    {"seconds", required_argument, NULL, OPT_SECONDS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const struct option ping_longopts[] = {
    {"dev", required_argument, NULL, OPT_DEV},
    {"dst", required_argument, NULL, OPT_DST},
    {"rate", required_argument, NULL, OPT_RATE},
    {"count", required_argument, NULL, OPT_COUNT},
    {"size", required_argument, NULL, OPT_SIZE},
    {"seconds", required_argument, NULL, OPT_SECONDS},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"json", required_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int main(int argc, char **argv)
{
    bool is_ping;
    int c;

    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "ping"))
        is_ping = true;
    else if (!strcmp(argv[1], "reflect"))
        is_ping = false;
    else
        die_usage("unknown command '%s' (want ping or reflect; --help for usage)", argv[1]);

    /* getopt_long names an unknown option or a missing value itself, after
     * argv[0] of what it parses: make that "xbr-latency ping", not "ping". */
    static char ping_name[] = "xbr-latency ping", reflect_name[] = "xbr-latency reflect";
    const char *cmd = argv[1];
    argv[1] = is_ping ? ping_name : reflect_name;

    struct reflect_opts ro = {.seconds = 600};
    struct ping_opts po = {.rate = 1000, .count = 10000, .size = MIN_SIZE, .warmup = 100};
    const struct option *longopts = is_ping ? ping_longopts : reflect_longopts;

    opterr = 1;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DEV:
            ro.dev = po.dev = optarg;
            break;
        case OPT_SECONDS:
            ro.seconds = po.seconds = parse_seconds(optarg);
            po.have_seconds = true;
            break;
        case OPT_DST:
            if (xbr_mac_parse(optarg, po.dst) < 0)
                die_usage("--dst %s: not a MAC address (want aa:bb:cc:dd:ee:ff)", optarg);
            if (xbr_mac_is_multicast(po.dst) || xbr_mac_is_zero(po.dst))
                die_usage("--dst %s: want the unicast MAC of the reflector's interface "
                          "(it answers only frames addressed to it)", optarg);
            po.have_dst = true;
            break;
        case OPT_RATE:
            po.rate = parse_bounded("--rate", optarg, 1, MAX_RATE);
            break;
        case OPT_COUNT:
            if (xbr_parse_uint(optarg, 0, UINT64_MAX, &po.count) < 0)
                die_usage("--count %s: not a number", optarg);
            if (po.count < 1 || po.count > MAX_COUNT)
                die_usage("--count %s: out of range, want 1..%u (every sample is kept in "
                          "memory)", optarg, MAX_COUNT);
            break;
        case OPT_SIZE:
            po.size = parse_bounded("--size", optarg, MIN_SIZE, MAX_SIZE);
            break;
        case OPT_WARMUP:
            po.warmup = parse_bounded("--warmup", optarg, 0, MAX_WARMUP);
            break;
        case OPT_JSON:
            if (!*optarg)
                die_usage("--json: empty file name");
            po.json = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "xbr-latency: bad arguments for '%s' (--help for usage)\n", cmd);
            return 2;
        }
    }
    if (optind < argc - 1)
        die_usage("unexpected argument '%s'", argv[optind + 1]);
    if (!ro.dev)
        die_usage("%s needs --dev IF", cmd);
    if (!is_ping)
        return reflect_run(&ro);
    if (!po.have_dst)
        die_usage("ping needs --dst MAC (the MAC of the reflector's interface)");
    return ping_run(&po);
}
