/* Packet capture: `xbrctl capture PORT [FILTER]` streams a port's frames,
 * as the worker sees them, in the pcap format.
 *
 * Why in the daemon
 *   A netback vif is not a kernel interface, so tcpdump cannot see it; and
 *   an AF_PACKET port's frames that the bridge sends never pass a tap the
 *   kernel would show either. The worker is the one place that sees every
 *   frame of every port.
 *
 * Shape
 *   The control thread compiles the filter with libpcap (pcap_compile on a
 *   dead DLT_EN10MB handle) and publishes the capture on the port's
 *   capture list (RCU). A worker that receives from or sends to the port
 *   runs the filter (pcap_offline_filter, a pure function of the program
 *   and the frame) and copies the frames that match, already as pcap
 *   records, into its own ring of the capture: single producer (worker w),
 *   single consumer (the control thread). A full ring drops the frame and
 *   counts it: the worker never waits. The control thread empties the rings
 *   every CAPTURE_TICK_MS into a socket pair whose other end went to xbrctl
 *   with the reply (SCM_RIGHTS), behind a pcap file header. It never blocks
 *   either: what the socket does not take stays in the rings, which then
 *   fill and drop. The capture ends when xbrctl goes away (its end of the
 *   socket closes), when COUNT frames were streamed, or with its port.
 *
 * Order: each worker's records are in order; with several workers the
 * stream interleaves them in batches (timestamps tell the true order).
 *
 * The kernel fast path forwards some frames between AF_PACKET ports
 * without the worker; a port with a capture is taken out of it for the
 * capture's life (xbr_fastpath_port_hold), so the capture misses nothing. */
#include "bridge/private.h"
#include "ctl/ctl.h"
#include "util/util.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#define CAPTURE_MAX 8u                 /* daemon-wide */
#define CAPTURE_RING_SIZE (1u << 20)   /* bytes per worker, a power of two */
#define CAPTURE_SNAPLEN_MAX 262144u    /* tcpdump's default */
#define CAPTURE_TICK_MS 5u
#define CAPTURE_OUT_SIZE (CAPTURE_SNAPLEN_MAX + 256u * 1024u)
#define CAPTURE_SOCKBUF (4u << 20)

/* A pcap record header (the file format's, host byte order). */
struct pcap_rec {
    uint32_t ts_sec, ts_usec, incl_len, orig_len;
};

/* One worker's ring: head is written by the worker only, tail by the
 * control thread only; both count bytes since the start (never wrap in
 * practice) and each record is 8-byte aligned in the ring. */
struct capture_ring {
    uint64_t head;
    uint64_t captured; /* records put (worker) */
    uint64_t dropped;  /* matched, but the ring was full (worker) */
    uint64_t tail __attribute__((aligned(64)));
    uint8_t data[CAPTURE_RING_SIZE];
};

struct xbr_capture {
    unsigned id;
    struct port *port;
    char port_name[IF_NAMESIZE], bridge_name[IF_NAMESIZE];
    unsigned dir;       /* XBR_CAP_IN | XBR_CAP_OUT */
    uint32_t snaplen;
    bool has_filter;
    struct bpf_program prog;
    char *filter_text;
    uint64_t count;     /* 0: unlimited */
    uint64_t streamed;  /* records written to the stream (control thread) */
    int fd;             /* our end of the stream */
    int timer_fd;
    uint8_t *out;       /* bytes taken from the rings, not yet sent */
    size_t out_len, out_off;
    unsigned next_ring; /* round robin between the workers' rings */
    struct capture_ring *ring[XBR_MAX_WORKERS];
};

static struct xbr_capture *captures[CAPTURE_MAX];
static unsigned next_id = 1;

/* ---- datapath (workers) ---- */

static inline void ring_copy_in(struct capture_ring *r, uint64_t pos, const void *src, size_t len)
{
    size_t off = (size_t)(pos & (CAPTURE_RING_SIZE - 1));
    size_t first = len < CAPTURE_RING_SIZE - off ? len : CAPTURE_RING_SIZE - off;
    memcpy(r->data + off, src, first);
    memcpy(r->data, (const uint8_t *)src + first, len - first);
}

static inline void ring_copy_out(const struct capture_ring *r, uint64_t pos, void *dst,
                                 size_t len)
{
    size_t off = (size_t)(pos & (CAPTURE_RING_SIZE - 1));
    size_t first = len < CAPTURE_RING_SIZE - off ? len : CAPTURE_RING_SIZE - off;
    memcpy(dst, r->data + off, first);
    memcpy((uint8_t *)dst + first, r->data, len - first);
}

static inline uint64_t rec_space(uint32_t incl_len)
{
    return (sizeof(struct pcap_rec) + incl_len + 7u) & ~(uint64_t)7u;
}

static void capture_one(unsigned w, struct xbr_capture *c, const struct pkt *p,
                        const struct timespec *ts)
{
    if (c->has_filter) {
        struct pcap_pkthdr h = {.caplen = p->len, .len = p->len};
        if (!pcap_offline_filter(&c->prog, &h, p->data))
            return;
    }
    struct capture_ring *r = c->ring[w];
    struct pcap_rec rec = {
        .ts_sec = (uint32_t)ts->tv_sec,
        .ts_usec = (uint32_t)(ts->tv_nsec / 1000),
        .incl_len = p->len < c->snaplen ? p->len : c->snaplen,
        .orig_len = p->len,
    };
    uint64_t need = rec_space(rec.incl_len);
    uint64_t head = r->head;
    uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
    if (need > CAPTURE_RING_SIZE - (head - tail)) {
        __atomic_store_n(&r->dropped, r->dropped + 1, __ATOMIC_RELAXED);
        return;
    }
    ring_copy_in(r, head, &rec, sizeof(rec));
    ring_copy_in(r, head + sizeof(rec), p->data, rec.incl_len);
    __atomic_store_n(&r->head, head + need, __ATOMIC_RELEASE);
    __atomic_store_n(&r->captured, r->captured + 1, __ATOMIC_RELAXED);
}

void xbr_capture_rx(unsigned w, const struct capture_list *cl, const struct pkt *pkts, unsigned n)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    for (unsigned k = 0; k < cl->n; k++) {
        struct xbr_capture *c = cl->c[k];
        if (!(c->dir & XBR_CAP_IN))
            continue;
        for (unsigned i = 0; i < n; i++)
            if (!(pkts[i].flags & XBR_PKT_LEARN_ONLY))
                capture_one(w, c, &pkts[i], &ts);
    }
}

void xbr_capture_tx(unsigned w, const struct capture_list *cl, struct pkt *const *pkts,
                    unsigned n)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    for (unsigned k = 0; k < cl->n; k++) {
        struct xbr_capture *c = cl->c[k];
        if (!(c->dir & XBR_CAP_OUT))
            continue;
        for (unsigned i = 0; i < n; i++)
            capture_one(w, c, pkts[i], &ts);
    }
}

/* ---- control thread ---- */

const char *xbr_dir_name(unsigned dir)
{
    return dir == XBR_CAP_IN ? "in" : dir == XBR_CAP_OUT ? "out" : "both";
}

int xbr_dir_parse(const char *s, unsigned *dir)
{
    if (!strcmp(s, "in"))
        *dir = XBR_CAP_IN;
    else if (!strcmp(s, "out"))
        *dir = XBR_CAP_OUT;
    else if (!strcmp(s, "both"))
        *dir = XBR_CAP_IN | XBR_CAP_OUT;
    else
        return -EINVAL;
    return 0;
}

static void capture_totals(const struct xbr_capture *c, uint64_t *captured, uint64_t *dropped)
{
    *captured = *dropped = 0;
    for (unsigned w = 0; w < xbr_n_workers(); w++) {
        *captured += __atomic_load_n(&c->ring[w]->captured, __ATOMIC_RELAXED);
        *dropped += __atomic_load_n(&c->ring[w]->dropped, __ATOMIC_RELAXED);
    }
}

/* Publishes p's capture list without c (or with it, when adding). */
static void list_publish(struct port *p, struct xbr_capture *add, const struct xbr_capture *del)
{
    struct capture_list *old = p->captures;
    struct capture_list *n = xbr_xzalloc(sizeof(*n));
    for (unsigned i = 0; old && i < old->n; i++)
        if (old->c[i] != del)
            n->c[n->n++] = old->c[i];
    if (add)
        n->c[n->n++] = add;
    if (!n->n) {
        free(n);
        n = NULL;
    }
    rcu_assign_pointer(p->captures, n);
    urcu_qsbr_synchronize_rcu(); /* no worker still holds old, or is inside del */
    free(old);
}

static void capture_free(struct xbr_capture *c)
{
    if (c->timer_fd >= 0) {
        xbr_loop_del_fd(c->timer_fd);
        close(c->timer_fd);
    }
    if (c->fd >= 0) {
        xbr_loop_del_fd(c->fd);
        close(c->fd);
    }
    if (c->has_filter)
        pcap_freecode(&c->prog);
    for (unsigned w = 0; w < XBR_MAX_WORKERS; w++)
        free(c->ring[w]);
    free(c->filter_text);
    free(c->out);
    free(c);
}

static void capture_end(struct xbr_capture *c, const char *why)
{
    if (c->port) {
        list_publish(c->port, NULL, c);
        xbr_fastpath_port_hold(c->port, false);
        c->port = NULL;
    }
    uint64_t captured, dropped;
    capture_totals(c, &captured, &dropped);
    xbr_info("capture %u on %s ended (%s): %llu frames captured, %llu streamed, %llu dropped",
             c->id, c->port_name, why, (unsigned long long)captured,
             (unsigned long long)c->streamed, (unsigned long long)dropped);
    for (unsigned i = 0; i < CAPTURE_MAX; i++)
        if (captures[i] == c)
            captures[i] = NULL;
    capture_free(c);
}

/* Moves whole records from the rings to the out buffer. */
static bool capture_refill(struct xbr_capture *c)
{
    bool any = false;
    unsigned nw = xbr_n_workers();
    c->out_len = c->out_off = 0;
    for (unsigned k = 0; k < nw; k++) {
        struct capture_ring *r = c->ring[(c->next_ring + k) % nw];
        uint64_t tail = r->tail;
        uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
        while (tail != head && (!c->count || c->streamed < c->count)) {
            struct pcap_rec rec;
            ring_copy_out(r, tail, &rec, sizeof(rec));
            size_t len = sizeof(rec) + rec.incl_len;
            if (c->out_len + len > CAPTURE_OUT_SIZE)
                break;
            ring_copy_out(r, tail, c->out + c->out_len, len);
            c->out_len += len;
            tail += rec_space(rec.incl_len);
            c->streamed++;
            any = true;
        }
        __atomic_store_n(&r->tail, tail, __ATOMIC_RELEASE);
    }
    c->next_ring = (c->next_ring + 1) % nw;
    return any;
}

/* Sends what is pending and refills; returns false once the capture ended. */
static bool capture_pump(struct xbr_capture *c)
{
    for (;;) {
        while (c->out_off < c->out_len) {
            ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return true; /* the client is slow: the rings take the pressure */
            if (n <= 0) {
                capture_end(c, "the client went away");
                return false;
            }
            c->out_off += (size_t)n;
        }
        if (c->count && c->streamed >= c->count) {
            capture_end(c, "count reached");
            return false;
        }
        if (!capture_refill(c))
            return true;
    }
}

static void on_timer(int fd, uint32_t events, void *aux)
{
    (void)events;
    uint64_t n;
    (void)!read(fd, &n, sizeof(n));
    (void)capture_pump(aux);
}

/* The client never writes after its request: readable means gone (or a
 * client sending junk, which is read and ignored). */
static void on_stream(int fd, uint32_t events, void *aux)
{
    char junk[256];
    ssize_t n = recv(fd, junk, sizeof(junk), MSG_DONTWAIT);
    if ((events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) || n == 0 ||
        (n < 0 && errno != EAGAIN && errno != EINTR))
        capture_end(aux, "the client went away");
}

void xbr_capture_port_removing(struct port *p)
{
    for (unsigned i = 0; i < CAPTURE_MAX; i++)
        if (captures[i] && captures[i]->port == p) {
            /* Stream what is there, then end: the client sees EOF. */
            struct xbr_capture *c = captures[i];
            if (capture_pump(c))
                capture_end(c, "its port was removed");
        }
}

void xbr_capture_fini(void)
{
    for (unsigned i = 0; i < CAPTURE_MAX; i++)
        if (captures[i])
            capture_end(captures[i], "xbrd is stopping");
}

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

static int capture_setup_stream(struct xbr_capture *c, int *client_fd, char *err, size_t errlen)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(err, errlen, "socketpair: %s", strerror(errno));
        return -errno;
    }
    int sz = (int)CAPTURE_SOCKBUF;
    if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
        (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    c->fd = sv[0];
    c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec it = {.it_interval = {0, CAPTURE_TICK_MS * 1000000L},
                            .it_value = {0, CAPTURE_TICK_MS * 1000000L}};
    if (c->timer_fd < 0 || timerfd_settime(c->timer_fd, 0, &it, NULL) < 0 ||
        xbr_loop_add_fd(c->timer_fd, EPOLLIN, on_timer, c) < 0 ||
        xbr_loop_add_fd(c->fd, EPOLLIN | EPOLLRDHUP, on_stream, c) < 0) {
        snprintf(err, errlen, "cannot watch the capture stream: %s", strerror(errno));
        close(sv[1]);
        return -EIO;
    }
    *client_fd = sv[1];
    return 0;
}

/* capture PORT [--bridge BR] [--direction in|out|both] [-c COUNT] [-s SNAPLEN] [FILTER...] */
static int cmd_capture(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                       void *aux)
{
    (void)aux;
    const char *port_name = argv[0], *br_name = NULL;
    unsigned dir = XBR_CAP_IN | XBR_CAP_OUT;
    uint64_t count = 0, snaplen = CAPTURE_SNAPLEN_MAX;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (!strcmp(a, "--bridge") && has_val) {
            br_name = argv[++i];
        } else if (!strcmp(a, "--direction") && has_val) {
            if (xbr_dir_parse(argv[++i], &dir) < 0)
                return ERR("invalid direction '%s' (in, out or both)", argv[i]);
        } else if (!strcmp(a, "-c") && has_val) {
            if (xbr_parse_uint(argv[++i], 1, UINT64_MAX, &count) < 0)
                return ERR("invalid count '%s'", argv[i]);
        } else if (!strcmp(a, "-s") && has_val) {
            if (xbr_parse_uint(argv[++i], 14, CAPTURE_SNAPLEN_MAX, &snaplen) < 0)
                return ERR("invalid snap length '%s' (14-%u)", argv[i], CAPTURE_SNAPLEN_MAX);
        } else if (a[0] == '-' && a[1]) {
            return ERR("unknown or incomplete option '%s' (capture PORT [--bridge BR] "
                       "[--direction in|out|both] [-c COUNT] [-s SNAPLEN] [FILTER...])",
                       a);
        } else {
            break; /* the filter expression */
        }
    }
    struct port *p;
    if (br_name) {
        struct xbr_bridge *br = xbr_ctl_get_bridge(br_name, err, errlen);
        if (!br || !(p = xbr_ctl_get_port(br, port_name, err, errlen)))
            return -ENOENT;
    } else if (!(p = xbr_port_find_any(port_name))) {
        snprintf(err, errlen, "no bridge has a port named %s", port_name);
        return -ENOENT;
    }
    unsigned slot = 0;
    while (slot < CAPTURE_MAX && captures[slot])
        slot++;
    if (slot == CAPTURE_MAX) {
        snprintf(err, errlen, "%u captures are running already", CAPTURE_MAX);
        return -EBUSY;
    }
    if (p->captures && p->captures->n == XBR_PORT_CAPTURES) {
        snprintf(err, errlen, "%s has %u captures running already", p->name, XBR_PORT_CAPTURES);
        return -EBUSY;
    }

    /* The filter: the rest of the words, as tcpdump joins them. */
    size_t flen = 1;
    for (int k = i; k < argc; k++)
        flen += strlen(argv[k]) + 1;
    char *filter = xbr_xzalloc(flen);
    for (int k = i; k < argc; k++) {
        if (k > i)
            strcat(filter, " ");
        strcat(filter, argv[k]);
    }

    struct xbr_capture *c = xbr_xzalloc(sizeof(*c));
    c->fd = c->timer_fd = -1;
    c->dir = dir;
    c->snaplen = (uint32_t)snaplen;
    c->count = count;
    c->filter_text = filter;
    if (filter[0]) {
        pcap_t *dead = pcap_open_dead(DLT_EN10MB, (int)snaplen);
        if (!dead) {
            capture_free(c);
            return ERR("libpcap: cannot open a dead handle");
        }
        if (pcap_compile(dead, &c->prog, filter, 1, PCAP_NETMASK_UNKNOWN) < 0) {
            snprintf(err, errlen, "invalid filter '%s': %s", filter, pcap_geterr(dead));
            pcap_close(dead);
            capture_free(c);
            return -EINVAL;
        }
        pcap_close(dead);
        c->has_filter = true;
    }
    for (unsigned w = 0; w < xbr_n_workers(); w++)
        c->ring[w] = xbr_xzalloc(sizeof(*c->ring[w]));
    c->out = xbr_xzalloc(CAPTURE_OUT_SIZE);
    /* The stream starts with the pcap file header. */
    struct {
        uint32_t magic;
        uint16_t major, minor;
        int32_t thiszone;
        uint32_t sigfigs, snaplen, linktype;
    } fh = {0xa1b2c3d4u, 2, 4, 0, 0, c->snaplen, DLT_EN10MB};
    memcpy(c->out, &fh, sizeof(fh));
    c->out_len = sizeof(fh);

    int client_fd = -1;
    int r = capture_setup_stream(c, &client_fd, err, errlen);
    if (r < 0) {
        capture_free(c);
        return r;
    }
    c->id = next_id++;
    c->port = p;
    snprintf(c->port_name, sizeof(c->port_name), "%s", p->name);
    snprintf(c->bridge_name, sizeof(c->bridge_name), "%s", p->bridge->name);
    captures[slot] = c;
    xbr_fastpath_port_hold(p, true); /* before the first frame is due */
    list_publish(p, c, NULL);
    ctl_out_pass_fd(o, client_fd);
    xbr_info("capture %u on %s (bridge %s, %s%s%s)", c->id, p->name, p->bridge->name,
             xbr_dir_name(dir), filter[0] ? ", filter: " : "", filter);
    ctl_out_open_object(o, NULL);
    ctl_out_u64(o, "id", "capture %llu", c->id);
    ctl_out_str(o, "port", " on %s", p->name);
    ctl_out_str(o, "bridge", " (bridge %s", p->bridge->name);
    ctl_out_str(o, "direction", ", %s)\n", xbr_dir_name(dir));
    ctl_out_close_object(o);
    return 0;
}

static int cmd_capture_show(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                            void *aux)
{
    (void)argc, (void)argv, (void)err, (void)errlen, (void)aux;
    ctl_out_open_array(o, NULL);
    for (unsigned i = 0; i < CAPTURE_MAX; i++) {
        const struct xbr_capture *c = captures[i];
        if (!c)
            continue;
        uint64_t captured, dropped;
        capture_totals(c, &captured, &dropped);
        ctl_out_open_object(o, NULL);
        ctl_out_u64(o, "id", "capture %llu:", c->id);
        ctl_out_str(o, "port", " port %s", c->port_name);
        ctl_out_str(o, "bridge", " bridge %s", c->bridge_name);
        ctl_out_str(o, "direction", " direction %s", xbr_dir_name(c->dir));
        ctl_out_u64(o, "snaplen", " snaplen %llu", c->snaplen);
        ctl_out_u64(o, "count", " count %llu\n", c->count);
        ctl_out_str(o, "filter", "    filter '%s'\n", c->filter_text);
        ctl_out_u64(o, "captured", "    captured %llu", captured);
        ctl_out_u64(o, "streamed", " streamed %llu", c->streamed);
        ctl_out_u64(o, "dropped", " dropped %llu\n", dropped);
        ctl_out_close_object(o);
    }
    ctl_out_close_array(o);
    return 0;
}

void xbr_capture_register_commands(void)
{
    (void)ctl_register("capture", 1, -1,
                       "PORT [--bridge BR] [--direction in|out|both] [-c COUNT] [-s SNAPLEN] "
                       "[-w FILE|-] [FILTER...]", /* xbrctl takes -w itself */
                       cmd_capture, NULL);
    (void)ctl_register("capture show", 0, 0, "", cmd_capture_show, NULL);
}
