/* xbr-frametool — send and count raw Ethernet test frames, for the
 * integration tests and the benchmarks.
 *
 *   xbr-frametool send  IFACE --dst MAC [--src MAC] [--count N] [--size BYTES]
 *                       [--tag T] [--rate PPS] [--seconds S] [--random-src]
 *                       [--vlan VID [--qinq]]
 *   xbr-frametool send  IFACE --bpdu [--count N]   (an 802.1D Config BPDU
 *                       claiming root with priority 0, from IFACE's MAC)
 *   xbr-frametool count IFACE [--tag T] [--seconds S] [--expect N] [--vlan VID]
 *
 * Test frames carry EtherType 0x88b5 (IEEE local experimental) and a payload
 * "XBRT" + 32-bit tag + 32-bit sequence, so a counter never mistakes the
 * kernel's own chatter (IPv6 ND, ...) for test traffic. `send` stops after
 * --count frames or --seconds, whichever comes first (every load is bounded).
 * `count` prints "count N" and exits after --seconds, or as soon as --expect
 * frames arrived. --vlan sends the frames with an 802.1Q tag of VID (an
 * 802.1ad one with --qinq); `count --vlan VID` counts only frames that came
 * tagged with VID (0: untagged ones), inline or as the kernel reports a tag
 * it took out (PACKET_AUXDATA). Both exit non-zero on any setup error. */
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TEST_ETHERTYPE 0x88b5
#define MAGIC "XBRT"

struct opts {
    const char *cmd, *ifname;
    uint8_t dst[6], src[6];
    bool have_dst, have_src, random_src, bpdu;
    uint64_t count, size, tag, rate, expect, vlan;
    bool have_vlan, qinq;
    double seconds;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "xbr-frametool: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static int open_socket(const char *ifname, int proto)
{
    unsigned idx = if_nametoindex(ifname);
    if (!idx)
        die("no such interface: %s", ifname);
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons((uint16_t)proto));
    if (fd < 0)
        die("socket: %s", strerror(errno));
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons((uint16_t)proto),
                              .sll_ifindex = (int)idx};
    if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
        die("bind: %s", strerror(errno));
    /* A counter that loses the CPU for a while (tests run in parallel on
     * few cores) must still count a burst of thousands: the default buffer
     * holds a few hundred small frames. */
    int big = 16 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    return fd;
}

static void get_mac(const char *ifname, uint8_t mac[6])
{
    char path[128], buf[32];
    snprintf(path, sizeof(path), "/sys/class/net/%s/address", ifname);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(buf, sizeof(buf), f))
        die("cannot read the MAC of %s", ifname);
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    if (xbr_mac_parse(buf, mac) < 0)
        die("bad MAC of %s", ifname);
}

static int do_send(const struct opts *o)
{
    int fd = open_socket(o->ifname, 0);
    uint8_t frame[9216];
    size_t size = o->size < 60 ? 60 : o->size;
    if (size > sizeof(frame))
        die("--size too large (max 9216)");
    uint8_t src[6];
    if (o->have_src)
        memcpy(src, o->src, 6);
    else
        get_mac(o->ifname, src);
    memset(frame, 0, sizeof(frame));
    memcpy(frame, o->dst, 6);
    if (o->bpdu) {
        /* 802.3 length 38, LLC 42 42 03, Config BPDU (clause 9.3.1): root
         * and bridge id 0000.<src>, cost 0, port 8001, times 0/20/2/15 s. */
        static const uint8_t head[] = {0x00, 0x26, 0x42, 0x42, 0x03, 0, 0, 0, 0, 0x00};
        memcpy(frame + 12, head, sizeof(head));
        memcpy(frame + 24, src, 6);     /* root id: priority 0 (bytes 22-23 zero) */
        memcpy(frame + 36, src, 6);     /* bridge id */
        frame[42] = 0x80, frame[43] = 0x01;
        frame[46] = 20, frame[48] = 2, frame[50] = 15; /* max age, hello, fwd delay (x256) */
    } else {
        frame[12] = TEST_ETHERTYPE >> 8;
        frame[13] = TEST_ETHERTYPE & 0xff;
        memcpy(frame + 14, MAGIC, 4);
        uint32_t tag = htonl((uint32_t)o->tag);
        memcpy(frame + 18, &tag, 4);
    }

    if (o->have_vlan) {
        /* The tag goes after the MACs; the rest moves up by 4. */
        if (size + 4 > sizeof(frame))
            die("--size too large with --vlan");
        memmove(frame + 16, frame + 12, size - 12);
        frame[12] = o->qinq ? 0x88 : 0x81;
        frame[13] = o->qinq ? 0xa8 : 0x00;
        frame[14] = (uint8_t)(o->vlan >> 8);
        frame[15] = (uint8_t)o->vlan;
        size += 4;
    }
    const size_t seq_at = o->have_vlan ? 26 : 22;

    uint64_t start = xbr_now_ns(), sent = 0, failed = 0;
    uint64_t deadline = start + (uint64_t)(o->seconds * 1e9);
    uint32_t rnd = (uint32_t)start | 1;
    while (sent < o->count && xbr_now_ns() < deadline) {
        memcpy(frame + 6, src, 6);
        if (o->random_src) {
            rnd ^= rnd << 13, rnd ^= rnd >> 17, rnd ^= rnd << 5; /* xorshift32 */
            frame[6] = 0x02; /* locally administered unicast */
            memcpy(frame + 8, &rnd, 4);
        }
        uint32_t seq = htonl((uint32_t)sent);
        if (!o->bpdu)
            memcpy(frame + seq_at, &seq, 4);
        if (send(fd, frame, size, 0) == (ssize_t)size)
            sent++;
        else if (errno == ENOBUFS || errno == EAGAIN)
            failed++, usleep(50);
        else
            die("send: %s", strerror(errno));
        if (o->rate) {
            uint64_t due = start + sent * 1000000000ull / o->rate;
            uint64_t now = xbr_now_ns();
            if (due > now) {
                struct timespec ts = {(time_t)((due - now) / 1000000000ull),
                                      (long)((due - now) % 1000000000ull)};
                nanosleep(&ts, NULL);
            }
        }
    }
    printf("sent %llu\n", (unsigned long long)sent);
    close(fd);
    return sent == o->count || o->count == UINT64_MAX ? 0 : 1;
}

static int do_count(const struct opts *o)
{
    int fd = open_socket(o->ifname, ETH_P_ALL);
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0)
        die("PACKET_AUXDATA: %s", strerror(errno));
    uint8_t frame[65536];
    uint64_t n = 0;
    uint64_t deadline = xbr_now_ns() + (uint64_t)(o->seconds * 1e9);
    uint32_t want = htonl((uint32_t)o->tag);

    /* Tell the caller we are listening (tests wait for this line). */
    printf("ready\n");
    fflush(stdout);
    while (!(o->expect && n >= o->expect)) {
        int64_t left_ms = (int64_t)(deadline - xbr_now_ns()) / 1000000;
        if (left_ms <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left_ms) <= 0)
            continue;
        struct sockaddr_ll from;
        union {
            struct cmsghdr h;
            uint8_t buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
        } cb;
        struct iovec iov = {.iov_base = frame, .iov_len = sizeof(frame)};
        struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
                            .msg_iovlen = 1, .msg_control = cb.buf,
                            .msg_controllen = sizeof(cb.buf)};
        ssize_t r = recvmsg(fd, &mh, MSG_DONTWAIT);
        if (r < 26 || from.sll_pkttype == PACKET_OUTGOING)
            continue;
        int vid = -1; /* -1: untagged */
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            struct tpacket_auxdata aux;
            if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA)
                continue;
            memcpy(&aux, CMSG_DATA(c), sizeof(aux));
            if (aux.tp_status & TP_STATUS_VLAN_VALID)
                vid = aux.tp_vlan_tci & 0xfff;
        }
        if (vid < 0 && r >= 30 && frame[12] == 0x81 && frame[13] == 0x00) {
            vid = (frame[14] << 8 | frame[15]) & 0xfff;
            memmove(frame + 12, frame + 16, (size_t)r - 16);
            r -= 4;
        }
        if (o->have_vlan && vid != (o->vlan ? (int)o->vlan : -1))
            continue;
        if (frame[12] != (TEST_ETHERTYPE >> 8) || frame[13] != (TEST_ETHERTYPE & 0xff) ||
            memcmp(frame + 14, MAGIC, 4))
            continue;
        if (o->tag != UINT64_MAX && memcmp(frame + 18, &want, 4))
            continue;
        if (o->have_dst && memcmp(frame, o->dst, 6))
            continue;
        n++;
    }
    printf("count %llu\n", (unsigned long long)n);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.count = 1, .size = 60, .tag = UINT64_MAX, .seconds = 10};
    if (argc < 3 || (strcmp(argv[1], "send") && strcmp(argv[1], "count"))) {
        fprintf(stderr, "usage: xbr-frametool send|count IFACE [options] (see the source)\n");
        return 2;
    }
    o.cmd = argv[1];
    o.ifname = argv[2];
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u;
        if (!strcmp(a, "--random-src")) {
            o.random_src = true;
            continue;
        }
        if (!strcmp(a, "--qinq")) {
            o.qinq = true;
            continue;
        }
        if (!strcmp(a, "--bpdu")) {
            o.bpdu = true;
            (void)xbr_mac_parse("01:80:c2:00:00:00", o.dst);
            o.have_dst = true;
            continue;
        }
        if (!v)
            die("%s needs a value", a);
        i++;
        if (!strcmp(a, "--dst") || !strcmp(a, "--src")) {
            bool d = a[2] == 'd';
            if (xbr_mac_parse(v, d ? o.dst : o.src) < 0)
                die("bad MAC %s", v);
            *(d ? &o.have_dst : &o.have_src) = true;
        } else if (!strcmp(a, "--seconds")) {
            o.seconds = atof(v);
            if (o.seconds <= 0 || o.seconds > 600)
                die("--seconds must be in (0, 600]: %s", v);
        } else if (xbr_parse_uint(v, 0, UINT64_MAX - 1, &u) == 0) {
            if (!strcmp(a, "--count"))
                o.count = u;
            else if (!strcmp(a, "--size"))
                o.size = u;
            else if (!strcmp(a, "--tag"))
                o.tag = u & 0xffffffffu;
            else if (!strcmp(a, "--rate"))
                o.rate = u;
            else if (!strcmp(a, "--expect"))
                o.expect = u;
            else if (!strcmp(a, "--vlan") && u <= 4095)
                o.vlan = u, o.have_vlan = true;
            else
                die("unknown option %s", a);
        } else {
            die("bad value for option: %s", a);
        }
    }
    if (!strcmp(o.cmd, "send")) {
        if (!o.have_dst)
            die("send needs --dst MAC");
        if (o.tag == UINT64_MAX)
            o.tag = 0;
        return do_send(&o);
    }
    return do_count(&o);
}
