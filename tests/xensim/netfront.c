/* netfront.c — user-space Xen netfront. See netfront.h.
 *
 * Ring ownership, as the protocol has it (xen/io/netif.h, xen/io/ring.h):
 * the frontend produces requests (req_prod) and consumes responses
 * (rsp_cons); the backend the reverse. Everything the backend writes into a
 * shared ring is read once into a local copy (RING_COPY_RESPONSE) and
 * checked before use: a netfront is a test tool for backends, and a buggy
 * backend must show up as counters (rx_bad, tx_bad_rsp), not as a crash here.
 */
#include "netfront.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>
#include <zlib.h>

/* ring.h wants the kernel's barriers. */
#ifndef mb
#define mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define wmb() __atomic_thread_fence(__ATOMIC_RELEASE)
#endif
#include <xen/io/netif.h>
#include <xen/io/xenbus.h>

#include "util/util.h"
#include "xensim.h"

#define NF_PAGE 4096u
#define NF_TX_RING_SIZE __CONST_RING_SIZE(netif_tx, 4096)
#define NF_RX_RING_SIZE __CONST_RING_SIZE(netif_rx, 4096)
#define NF_MAX_PLAN 64u            /* slots one crafted packet may take */
#define NF_MAX_RX_SLOTS 19u        /* MAX_SKB_FRAGS + 2: more is a backend bug */
#define NF_DEFAULT_TIMEOUT_MS 10000
#define NF_SEND_WAIT_MS 1000
#define NF_BACKLOG 512u            /* frames received while the caller was not receiving */
#define NF_BAD_GREF (1u << 20)     /* beyond any grant table: GNTST_bad_gntref */
#define NF_UNUSED_GREF 5u          /* reserved entry never granted: GNTST_general_error */

struct nf_queue {
    unsigned id;
    netif_tx_front_ring_t tx;
    netif_rx_front_ring_t rx;
    void *tx_sring, *rx_sring;
    uint32_t tx_ring_ref, rx_ring_ref;
    evtchn_port_t port_tx, port_rx;
    uint8_t *tx_pages;                       /* NF_TX_RING_SIZE pages */
    uint32_t tx_refs[NF_TX_RING_SIZE];
    uint16_t tx_free[NF_TX_RING_SIZE];
    unsigned tx_nfree;
    bool tx_inflight[NF_TX_RING_SIZE];
    int16_t tx_status[NF_TX_RING_SIZE];      /* last response per id */
    uint8_t *rx_pages;                       /* NF_RX_RING_SIZE pages */
    uint32_t rx_refs[NF_RX_RING_SIZE];
    unsigned rx_target;
    bool set_up;
};

struct netfront {
    uint32_t domid, devid, be_domid;
    struct netfront_opts o;
    xengntshr_handle *gs;
    xenevtchn_handle *ev;
    struct xs_handle *xs;
    char fe_path[128], be_path[256];
    uint8_t mac[6];
    /* backend features */
    unsigned be_max_queues;
    bool be_mq; /* the backend wrote multi-queue-max-queues */
    bool be_split, be_sg, be_gso4, be_gso6;
    unsigned nq;
    struct nf_queue q[NETFRONT_MAX_QUEUES];
    unsigned rx_rr;
    /* control ring and multicast control */
    bool be_ctrl, be_mcast;
    void *ctrl_sring, *ctrl_data;
    uint32_t ctrl_ref, ctrl_data_ref;
    evtchn_port_t ctrl_port;
    xen_netif_ctrl_front_ring_t ctrl;
    uint16_t ctrl_id;
    bool connected, broken;
    struct netfront_stats st;
    /* A guest's RX path never waits for its TX path: frames that arrive while
     * the caller sends (or flushes, or polls) wait here for netfront_recv(). */
    struct {
        uint8_t *data;
        size_t len;
        struct netfront_rx_info info;
    } backlog[NF_BACKLOG];
    unsigned bl_head, bl_count;
    uint8_t scratch[NETFRONT_MAX_FRAME];
};

struct nf_slot {
    uint32_t gref;
    uint16_t off, size, flags;
    int id;                 /* -1 for an extra-info slot */
    bool extra;
    struct netif_extra_info ex;
};

/* ---- small helpers ----------------------------------------------------- */

static int now_ms_left(uint64_t deadline)
{
    uint64_t now = xbr_now_ms();
    return now >= deadline ? 0 : (int)XBR_MIN(deadline - now, (uint64_t)INT_MAX);
}

static int timeout_of(const struct netfront *nf)
{
    return nf->o.timeout_ms > 0 ? nf->o.timeout_ms : NF_DEFAULT_TIMEOUT_MS;
}

/* Connects to xenstore as domain `domid`. With the xenstore simulator
 * (tests/xensim/xs-sim) a domain is the socket it connects to: DIR/dom<N>,
 * DIR from $XENSIM_XS_DIR, else $XENSIM_DIR when it holds a dom0 socket.
 * Otherwise libxenstore's usual choice ($XENSTORED_PATH, /dev/xen/xenbus). */
static struct xs_handle *xs_open_as(uint32_t domid)
{
    const char *dir = getenv("XENSIM_XS_DIR");
    char path[PATH_MAX], *saved = NULL;
    const char *old;
    struct xs_handle *h;
    struct stat sb;

    if (!dir || !*dir) {
        dir = getenv(XENSIM_ENV_DIR);
        if (dir && *dir) {
            if (snprintf(path, sizeof(path), "%s/dom0", dir) >= (int)sizeof(path) ||
                stat(path, &sb) < 0 || !S_ISSOCK(sb.st_mode))
                dir = NULL;
        }
    }
    if (!dir || !*dir)
        return xs_open(0);
    if (snprintf(path, sizeof(path), "%s/dom%u", dir, domid) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    old = getenv("XENSTORED_PATH");
    if (old)
        saved = strdup(old);
    (void)setenv("XENSTORED_PATH", path, 1);
    h = xs_open(0);
    if (saved) {
        (void)setenv("XENSTORED_PATH", saved, 1);
        free(saved);
    } else {
        (void)unsetenv("XENSTORED_PATH");
    }
    return h;
}

static char *xs_readf(struct xs_handle *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static char *xs_readf(struct xs_handle *h, const char *fmt, ...)
{
    char path[512];
    unsigned len;
    va_list ap;
    char *v;

    va_start(ap, fmt);
    if (vsnprintf(path, sizeof(path), fmt, ap) >= (int)sizeof(path)) {
        va_end(ap);
        errno = ENAMETOOLONG;
        return NULL;
    }
    va_end(ap);
    v = xs_read(h, XBT_NULL, path, &len);
    return v;
}

/* Reads an unsigned number; `def` when missing or unparsable. */
static unsigned xs_read_uint(struct xs_handle *h, const char *dir, const char *key, unsigned def)
{
    char *v = xs_readf(h, "%s/%s", dir, key), *end;
    unsigned long n;

    if (!v)
        return def;
    errno = 0;
    n = strtoul(v, &end, 10);
    if (errno || end == v || *end || n > UINT_MAX)
        n = def;
    free(v);
    return (unsigned)n;
}

static int xs_printf(struct xs_handle *h, xs_transaction_t t, const char *dir, const char *key,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int xs_printf(struct xs_handle *h, xs_transaction_t t, const char *dir, const char *key,
                     const char *fmt, ...)
{
    char path[512], val[128];
    va_list ap;
    int n;

    if (snprintf(path, sizeof(path), "%s/%s", dir, key) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    va_start(ap, fmt);
    n = vsnprintf(val, sizeof(val), fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof(val))
        return -EINVAL;
    if (!xs_write(h, t, path, val, (unsigned)n))
        return -(errno ? errno : EIO);
    return 0;
}

/* Drains libxenstore's queue of watch events (we re-read state anyway). */
static void xs_drain_watches(struct xs_handle *h)
{
    char **v;
    while ((v = xs_check_watch(h)))
        free(v);
}

/* Reads the XenbusState at path/state: 0 if missing. */
static int read_state(struct xs_handle *h, const char *path)
{
    char *v = xs_readf(h, "%s/state", path);
    int s;

    if (!v)
        return errno == ENOENT ? 0 : -(errno ? errno : EIO);
    s = atoi(v);
    free(v);
    return s;
}

/* Waits until path/state satisfies `ok` (a bit set of states); returns the
 * state, or -ETIMEDOUT. A watch on path/state must be set up. */
static int wait_state(struct xs_handle *h, const char *path, uint32_t ok, int timeout_ms)
{
    uint64_t deadline = xbr_now_ms() + (uint64_t)timeout_ms;

    for (;;) {
        struct pollfd pfd = {.fd = xs_fileno(h), .events = POLLIN};
        int s;

        xs_drain_watches(h);
        s = read_state(h, path);
        if (s >= 0 && s < 32 && (ok & (1u << s)))
            return s;
        if (now_ms_left(deadline) == 0)
            return -ETIMEDOUT;
        if (pfd.fd >= 0)
            (void)poll(&pfd, 1, XBR_MIN(now_ms_left(deadline), 100));
        else
            (void)usleep(10000);
    }
}

static int switch_state(struct netfront *nf, int state)
{
    return xs_printf(nf->xs, XBT_NULL, nf->fe_path, "state", "%d", state);
}

/* ---- attacks ----------------------------------------------------------- */

static const struct {
    const char *name, *help;
} attacks[NF_ATTACK__COUNT] = {
    [NF_ATTACK_NONE] = {"none", "behave"},
    [NF_ATTACK_TOO_MANY_SLOTS] = {"too-many-slots",
        "one packet in N slots (default 19): more than XEN_NETIF_NR_SLOTS_MIN (18) the protocol "
        "allows; Linux netback drops 20..21 and still accepts 19"},
    [NF_ATTACK_FATAL_SLOTS] = {"fatal-slots",
        "one packet in N slots (default 22): Linux netback's fatal_skb_slots threshold, "
        "treated as malicious (XSA-39): the vif is disconnected"},
    [NF_ATTACK_ZERO_FRAG] = {"zero-frag",
        "a following slot of size 0 inside a packet: legal (netif.h, Linux); XSA-448 was a "
        "backend crashing on one"},
    [NF_ATTACK_CROSS_PAGE] = {"cross-page",
        "a slot whose offset + size crosses the page (offset 4000, size 200): fatal (XSA-39)"},
    [NF_ATTACK_SIZE_SHORT] = {"size-short",
        "first request's size smaller than the following slots' total (\"slot size > remaining "
        "size\", buggy >= 64 KiB frontends): drop, not fatal"},
    [NF_ATTACK_SIZE_LONG] = {"size-long",
        "first request's size larger than all the data, so the first slot would extend past "
        "its page: fatal (XSA-39)"},
    [NF_ATTACK_TINY_FIRST_SLOT] = {"tiny-first-slot",
        "TCP/IPv4 packet whose first slot holds N bytes (default 10) of the headers, the rest "
        "in the following slots (XSA-423)"},
    [NF_ATTACK_TINY_FRAGS] = {"tiny-frags",
        "a packet split into N slots (default 18) of 6 bytes, smaller than the header copy "
        "area (XSA-432)"},
    [NF_ATTACK_BAD_EXTRA_TYPE] = {"bad-extra-type",
        "extra-info slot of type N (default XEN_NETIF_EXTRA_TYPE_MAX; 0 is NONE): fatal"},
    [NF_ATTACK_EXTRA_UNTERMINATED] = {"extra-unterminated",
        "extra-info chain with XEN_NETIF_EXTRA_FLAG_MORE running past req_prod: fatal"},
    [NF_ATTACK_GSO_SIZE_ZERO] = {"gso-size-zero", "GSO extra info with gso.size 0: fatal"},
    [NF_ATTACK_GSO_BAD_TYPE] = {"gso-bad-type", "GSO extra info with gso.type N (default 7)"},
    [NF_ATTACK_UNTERMINATED] = {"unterminated",
        "last pushed slot has NETTXF_more_data: the packet asks for slots that do not exist"},
    [NF_ATTACK_REQ_PROD_JUMP] = {"req-prod-jump",
        "TX req_prod moved more than a ring ahead of the responses (by N, default 2 rings)"},
    [NF_ATTACK_RX_REQ_PROD_JUMP] = {"rx-req-prod-jump",
        "RX req_prod moved more than a ring ahead (stale requests would be reused)"},
    [NF_ATTACK_BAD_GREF] = {"bad-gref",
        "TX request with a grant ref beyond the grant table (GNTST_bad_gntref): that packet "
        "fails (NETIF_RSP_ERROR), as in Linux"},
    [NF_ATTACK_UNUSED_GREF] = {"unused-gref",
        "TX request with a ref inside the table that grants nothing (GNTST_general_error)"},
    [NF_ATTACK_FOREIGN_GREF] = {"foreign-gref",
        "TX request with a ref granted to another domain (GNTST_general_error)"},
    [NF_ATTACK_REVOKE_GREF] = {"revoke-gref",
        "TX request whose grant is revoked N microseconds (default 0) after the push"},
    [NF_ATTACK_TAIL_BAD_GREF] = {"tail-bad-gref",
        "a 9000-byte GSO packet whose last slot has a grant ref beyond the table: a bad "
        "grant past the headers fails the packet too (NETIF_RSP_ERROR)"},
    [NF_ATTACK_TAIL_REVOKE] = {"tail-revoke",
        "a 9000-byte GSO packet whose last slot's grant is revoked N microseconds (default 0) "
        "after the push"},
    [NF_ATTACK_RX_READONLY] = {"rx-readonly",
        "RX buffers granted read-only: the backend's copies into them fail"},
    [NF_ATTACK_RX_BAD_GREF] = {"rx-bad-gref", "RX requests posted with invalid grant refs"},
    [NF_ATTACK_REWRITE] = {"rewrite",
        "after pushing a valid request keep rewriting it (size, offset, flags, gref) for N ms "
        "(default 200): a backend that reads the ring twice sees two packets (XSA-155)"},
    [NF_ATTACK_NO_RX_BUFFERS] = {"no-rx-buffers",
        "never post RX buffers: the backend must not queue without bound (XSA-392)"},
    [NF_ATTACK_EVTCHN_FLOOD] = {"evtchn-flood",
        "notify the backend in a tight loop for N ms (default 1000) (XSA-332)"},
    [NF_ATTACK_VANISH] = {"vanish",
        "the domain dies without closing: grants revoked, ports closed, xenstore home removed, "
        "@releaseDomain"},
    [NF_ATTACK_FOREIGN_EVTCHN] = {"foreign-evtchn",
        "event channels offered to the guest's own domain, not the backend: the backend "
        "cannot bind them and must refuse the vif"},
    [NF_ATTACK_XS_WRITE_LOOP] = {"xs-write-loop",
        "after connecting, write the frontend's state node (same value), nodes below it and "
        "other keys of its directory in a loop for N ms (default 3000) (XSA-349 class)"},
    [NF_ATTACK_CTRL_REQ_PROD_JUMP] = {"ctrl-req-prod-jump",
        "control ring req_prod moved 2 rings ahead (needs --ctrl-ring): fatal"},
    [NF_ATTACK_CTRL_FLOOD] = {"ctrl-flood",
        "keep the control ring full of requests for N ms (default 2000) (needs --ctrl-ring)"},
};

const char *netfront_attack_name(enum netfront_attack a)
{
    return (unsigned)a < NF_ATTACK__COUNT ? attacks[a].name : NULL;
}

const char *netfront_attack_help(enum netfront_attack a)
{
    return (unsigned)a < NF_ATTACK__COUNT ? attacks[a].help : NULL;
}

int netfront_attack_parse(const char *s, enum netfront_attack *a, unsigned *arg)
{
    const char *eq;
    size_t n;

    if (!s || !a)
        return -EINVAL;
    eq = strchr(s, '=');
    n = eq ? (size_t)(eq - s) : strlen(s);
    for (unsigned i = 0; i < NF_ATTACK__COUNT; i++) {
        if (strlen(attacks[i].name) != n || strncmp(attacks[i].name, s, n))
            continue;
        if (arg) {
            uint64_t v = 0;
            if (eq && xbr_parse_uint(eq + 1, 0, UINT32_MAX, &v) < 0)
                return -EINVAL;
            *arg = (unsigned)v;
        }
        *a = (enum netfront_attack)i;
        return 0;
    }
    return -ENOENT;
}

/* ---- queues: rings, buffers, event channels ----------------------------- */

static void queue_teardown(struct netfront *nf, struct nf_queue *q)
{
    if (q->port_rx && q->port_rx != q->port_tx)
        (void)xenevtchn_unbind(nf->ev, q->port_rx);
    if (q->port_tx)
        (void)xenevtchn_unbind(nf->ev, q->port_tx);
    q->port_tx = q->port_rx = 0;
    if (q->tx_sring)
        (void)xengntshr_unshare(nf->gs, q->tx_sring, 1);
    if (q->rx_sring)
        (void)xengntshr_unshare(nf->gs, q->rx_sring, 1);
    if (q->tx_pages)
        (void)xengntshr_unshare(nf->gs, q->tx_pages, NF_TX_RING_SIZE);
    if (q->rx_pages)
        (void)xengntshr_unshare(nf->gs, q->rx_pages, NF_RX_RING_SIZE);
    q->tx_sring = q->rx_sring = NULL;
    q->tx_pages = q->rx_pages = NULL;
    q->set_up = false;
}

static int queue_setup(struct netfront *nf, struct nf_queue *q, unsigned id, bool split)
{
    bool rx_writable = nf->o.attack != NF_ATTACK_RX_READONLY;
    netif_tx_sring_t *txs;
    netif_rx_sring_t *rxs;
    int port;

    memset(q, 0, sizeof(*q));
    q->id = id;
    q->tx_sring = xengntshr_share_pages(nf->gs, nf->be_domid, 1, &q->tx_ring_ref, 1);
    q->rx_sring = xengntshr_share_pages(nf->gs, nf->be_domid, 1, &q->rx_ring_ref, 1);
    q->tx_pages = xengntshr_share_pages(nf->gs, nf->be_domid, NF_TX_RING_SIZE, q->tx_refs, 0);
    q->rx_pages = xengntshr_share_pages(nf->gs, nf->be_domid, NF_RX_RING_SIZE, q->rx_refs,
                                        rx_writable);
    if (!q->tx_sring || !q->rx_sring || !q->tx_pages || !q->rx_pages)
        goto fail;
    txs = q->tx_sring;
    rxs = q->rx_sring;
    SHARED_RING_INIT(txs);
    FRONT_RING_INIT(&q->tx, txs, NF_PAGE);
    SHARED_RING_INIT(rxs);
    FRONT_RING_INIT(&q->rx, rxs, NF_PAGE);
    for (unsigned i = 0; i < NF_TX_RING_SIZE; i++)
        q->tx_free[i] = (uint16_t)(NF_TX_RING_SIZE - 1 - i);
    q->tx_nfree = NF_TX_RING_SIZE;
    q->rx_target = nf->o.rx_buffers ? XBR_MIN(nf->o.rx_buffers, NF_RX_RING_SIZE)
                                    : NF_RX_RING_SIZE;
    /* foreign-evtchn: ports the backend's domain may not bind. */
    uint32_t evdom = nf->o.attack == NF_ATTACK_FOREIGN_EVTCHN ? nf->domid : nf->be_domid;
    port = xenevtchn_bind_unbound_port(nf->ev, evdom);
    if (port < 0)
        goto fail;
    q->port_tx = q->port_rx = (evtchn_port_t)port;
    if (split) {
        port = xenevtchn_bind_unbound_port(nf->ev, evdom);
        if (port < 0)
            goto fail;
        q->port_rx = (evtchn_port_t)port;
    }
    q->set_up = true;
    return 0;
fail:
    port = -(errno ? errno : EIO);
    queue_teardown(nf, q);
    return port;
}

static void notify_port(struct netfront *nf, evtchn_port_t port)
{
    if (xenevtchn_notify(nf->ev, port) == 0)
        nf->st.notifies++;
}

/* Posts RX buffers up to the target and notifies if the backend asked. */
static void rx_refill(struct netfront *nf, struct nf_queue *q)
{
    bool posted = false;
    int notify;

    if (nf->o.attack == NF_ATTACK_NO_RX_BUFFERS || !q->set_up)
        return;
    while (q->rx.req_prod_pvt - q->rx.rsp_cons < q->rx_target) {
        RING_IDX i = q->rx.req_prod_pvt;
        netif_rx_request_t *req = RING_GET_REQUEST(&q->rx, i);
        unsigned id = i & (NF_RX_RING_SIZE - 1);

        req->id = (uint16_t)id;
        req->pad = 0;
        req->gref = nf->o.attack == NF_ATTACK_RX_BAD_GREF ? NF_BAD_GREF + id : q->rx_refs[id];
        q->rx.req_prod_pvt = i + 1;
        nf->st.rx_posted++;
        posted = true;
    }
    if (!posted)
        return;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&q->rx, notify);
    if (notify)
        notify_port(nf, q->port_rx);
}

/* Takes every pending event off the event channel and unmasks it. */
static void drain_events(struct netfront *nf)
{
    struct pollfd pfd = {.fd = xenevtchn_fd(nf->ev), .events = POLLIN};

    while (poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN)) {
        int port = xenevtchn_pending(nf->ev);
        if (port < 0)
            break;
        nf->st.events++;
        (void)xenevtchn_unmask(nf->ev, (evtchn_port_t)port);
    }
}

static int wait_events(struct netfront *nf, int timeout_ms)
{
    struct pollfd pfd = {.fd = xenevtchn_fd(nf->ev), .events = POLLIN};
    int r = poll(&pfd, 1, timeout_ms);

    if (r < 0)
        return errno == EINTR ? 0 : -errno;
    if (r > 0)
        drain_events(nf);
    return r;
}

/* Collects TX responses. */
static void tx_gc(struct netfront *nf, struct nf_queue *q)
{
    int more;

    if (!q->set_up)
        return;
    do {
        RING_IDX prod = __atomic_load_n(&q->tx.sring->rsp_prod, __ATOMIC_ACQUIRE);
        RING_IDX cons = q->tx.rsp_cons;

        if (prod - cons > RING_SIZE(&q->tx)) {
            nf->st.tx_bad_rsp++;
            nf->broken = true; /* responses nobody asked for */
            return;
        }
        for (; cons != prod; cons++) {
            netif_tx_response_t rsp;

            RING_COPY_RESPONSE(&q->tx, cons, &rsp);
            if (rsp.status == NETIF_RSP_NULL) {
                nf->st.tx_rsp_null++;
                continue;
            }
            if (rsp.id >= NF_TX_RING_SIZE || !q->tx_inflight[rsp.id]) {
                nf->st.tx_bad_rsp++;
                continue;
            }
            q->tx_inflight[rsp.id] = false;
            q->tx_status[rsp.id] = rsp.status;
            q->tx_free[q->tx_nfree++] = rsp.id;
            if (rsp.status == NETIF_RSP_OKAY)
                nf->st.tx_rsp_okay++;
            else if (rsp.status == NETIF_RSP_DROPPED)
                nf->st.tx_rsp_dropped++;
            else
                nf->st.tx_rsp_error++;
        }
        q->tx.rsp_cons = prod;
        RING_FINAL_CHECK_FOR_RESPONSES(&q->tx, more);
    } while (more);
}

static void gc_all(struct netfront *nf)
{
    for (unsigned i = 0; i < nf->nq; i++)
        tx_gc(nf, &nf->q[i]);
}

static ssize_t rx_take(struct netfront *nf, struct nf_queue *q, uint8_t *buf, size_t cap,
                       struct netfront_rx_info *info);

/* Moves every complete received frame into the backlog. */
static void rx_backlog_fill(struct netfront *nf)
{
    for (unsigned i = 0; i < nf->nq; i++) {
        struct netfront_rx_info info;
        ssize_t n;

        while ((n = rx_take(nf, &nf->q[i], nf->scratch, sizeof(nf->scratch), &info)) >= 0 ||
               n == -EIO) {
            unsigned slot;
            if (n < 0)
                continue;
            if (nf->bl_count == NF_BACKLOG) {
                nf->st.rx_dropped++;
                continue;
            }
            slot = (nf->bl_head + nf->bl_count) % NF_BACKLOG;
            nf->backlog[slot].data = malloc((size_t)n ? (size_t)n : 1);
            if (!nf->backlog[slot].data) {
                nf->st.rx_dropped++;
                continue;
            }
            memcpy(nf->backlog[slot].data, nf->scratch, (size_t)n);
            nf->backlog[slot].len = (size_t)n;
            nf->backlog[slot].info = info;
            nf->bl_count++;
        }
    }
}

/* ---- open / connect / close -------------------------------------------- */

static void ctrl_teardown(struct netfront *nf);

static void nf_free(struct netfront *nf)
{
    if (!nf)
        return;
    ctrl_teardown(nf);
    for (unsigned i = 0; i < NETFRONT_MAX_QUEUES; i++)
        if (nf->q[i].set_up)
            queue_teardown(nf, &nf->q[i]);
    if (nf->ev)
        (void)xenevtchn_close(nf->ev);
    if (nf->gs)
        (void)xengntshr_close(nf->gs);
    if (nf->xs)
        xs_close(nf->xs);
    for (unsigned i = 0; i < nf->bl_count; i++)
        free(nf->backlog[(nf->bl_head + i) % NF_BACKLOG].data);
    free(nf);
}

static int setup_queues(struct netfront *nf, unsigned nq, bool split)
{
    for (unsigned i = 0; i < nq; i++) {
        int r = queue_setup(nf, &nf->q[i], i, split);
        if (r < 0)
            return r;
    }
    nf->nq = nq;
    return 0;
}

struct netfront *netfront_open(uint32_t domid, uint32_t devid, const struct netfront_opts *opts)
{
    struct netfront *nf = calloc(1, sizeof(*nf));
    int err = 0;

    if (!nf)
        return NULL;
    if (opts)
        nf->o = *opts;
    if (nf->o.queues == 0)
        nf->o.queues = 1;
    if (nf->o.queues > NETFRONT_MAX_QUEUES || (unsigned)nf->o.attack >= NF_ATTACK__COUNT) {
        err = EINVAL;
        goto fail;
    }
    nf->domid = domid;
    nf->devid = devid;
    nf->gs = xengntshr_open(NULL, 0);
    nf->ev = xenevtchn_open(NULL, 0);
    if (!nf->gs || !nf->ev)
        goto fail_errno;
    if (nf->o.no_xenstore) {
        nf->be_domid = nf->o.backend_domid;
        memcpy(nf->mac, nf->o.mac, 6);
        nf->be_max_queues = NETFRONT_MAX_QUEUES;
        nf->be_sg = nf->be_gso4 = nf->be_gso6 = true;
        nf->be_split = !nf->o.no_split_evtchn;
        if ((err = -setup_queues(nf, nf->o.queues, nf->be_split)) != 0)
            goto fail;
        return nf;
    }

    nf->xs = xs_open_as(domid);
    if (!nf->xs)
        goto fail_errno;
    (void)snprintf(nf->fe_path, sizeof(nf->fe_path), "/local/domain/%u/device/vif/%u", domid,
                   devid);
    {
        char *be = xs_readf(nf->xs, "%s/backend", nf->fe_path);
        char *mac = xs_readf(nf->xs, "%s/mac", nf->fe_path);
        unsigned beid = xs_read_uint(nf->xs, nf->fe_path, "backend-id", UINT_MAX);
        if (!be || !mac || beid == UINT_MAX || strlen(be) >= sizeof(nf->be_path) ||
            xbr_mac_parse(mac, nf->mac) < 0) {
            free(be);
            free(mac);
            err = ENODEV;
            goto fail;
        }
        strcpy(nf->be_path, be);
        nf->be_domid = beid;
        free(be);
        free(mac);
    }
    return nf;
fail_errno:
    err = errno ? errno : EIO;
fail:
    nf_free(nf);
    errno = err;
    return NULL;
}

static int write_queue_keys(struct netfront *nf, xs_transaction_t t, const struct nf_queue *q,
                            const char *dir)
{
    int r;

    if ((r = xs_printf(nf->xs, t, dir, "tx-ring-ref", "%u", q->tx_ring_ref)) ||
        (r = xs_printf(nf->xs, t, dir, "rx-ring-ref", "%u", q->rx_ring_ref)))
        return r;
    if (q->port_tx == q->port_rx)
        return xs_printf(nf->xs, t, dir, "event-channel", "%u", q->port_tx);
    if ((r = xs_printf(nf->xs, t, dir, "event-channel-tx", "%u", q->port_tx)))
        return r;
    return xs_printf(nf->xs, t, dir, "event-channel-rx", "%u", q->port_rx);
}

/* Keys of an earlier connection with another layout (flat or queue-N, split
 * event channels or not) must not mislead the backend when the vif
 * reconnects. */
static void xs_rmf(struct xs_handle *h, xs_transaction_t t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void xs_rmf(struct xs_handle *h, xs_transaction_t t, const char *fmt, ...)
{
    char path[512];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(path, sizeof(path), fmt, ap) < (int)sizeof(path))
        (void)xs_rm(h, t, path);
    va_end(ap);
}

static void remove_stale_keys(struct netfront *nf, xs_transaction_t t)
{
    static const char *const flat[] = {"tx-ring-ref", "rx-ring-ref", "event-channel",
                                       "event-channel-tx", "event-channel-rx"};
    bool split = nf->q[0].port_tx != nf->q[0].port_rx;

    if (nf->nq == 1) {
        xs_rmf(nf->xs, t, "%s/multi-queue-num-queues", nf->fe_path);
        for (unsigned i = 0; i < NETFRONT_MAX_QUEUES; i++)
            xs_rmf(nf->xs, t, "%s/queue-%u", nf->fe_path, i);
    } else {
        for (unsigned i = 0; i < XBR_ARRAY_SIZE(flat); i++)
            xs_rmf(nf->xs, t, "%s/%s", nf->fe_path, flat[i]);
        for (unsigned i = nf->nq; i < NETFRONT_MAX_QUEUES; i++)
            xs_rmf(nf->xs, t, "%s/queue-%u", nf->fe_path, i);
    }
    for (unsigned i = 0; i < nf->nq; i++) {
        char dir[192];
        if (nf->nq == 1)
            (void)snprintf(dir, sizeof(dir), "%s", nf->fe_path);
        else
            (void)snprintf(dir, sizeof(dir), "%s/queue-%u", nf->fe_path, i);
        if (split) {
            xs_rmf(nf->xs, t, "%s/event-channel", dir);
        } else {
            xs_rmf(nf->xs, t, "%s/event-channel-tx", dir);
            xs_rmf(nf->xs, t, "%s/event-channel-rx", dir);
        }
    }
}

/* The control ring's keys, request-multicast-control, then the caller's
 * hostile overrides; in the handshake transaction. */
static int publish_ctrl(struct netfront *nf, xs_transaction_t t)
{
    int r = 0;

    xs_rmf(nf->xs, t, "%s/ctrl-ring-ref", nf->fe_path);
    xs_rmf(nf->xs, t, "%s/event-channel-ctrl", nf->fe_path);
    xs_rmf(nf->xs, t, "%s/request-multicast-control", nf->fe_path);
    if (nf->ctrl_sring) {
        r = xs_printf(nf->xs, t, nf->fe_path, "ctrl-ring-ref", "%u", nf->ctrl_ref);
        if (!r)
            r = xs_printf(nf->xs, t, nf->fe_path, "event-channel-ctrl", "%u", nf->ctrl_port);
    }
    if (!r && nf->o.mcast_control && nf->be_mcast)
        r = xs_printf(nf->xs, t, nf->fe_path, "request-multicast-control", "1");
    for (unsigned i = 0; !r && i < nf->o.n_xs_overrides; i++) {
        const char *kv = nf->o.xs_overrides[i], *eq = strchr(kv, '=');
        char path[512];
        if (!eq) {
            xs_rmf(nf->xs, t, "%s/%s", nf->fe_path, kv);
            continue;
        }
        if (snprintf(path, sizeof(path), "%s/%.*s", nf->fe_path, (int)(eq - kv), kv) >=
            (int)sizeof(path))
            return -ENAMETOOLONG;
        /* "KEY=@OTHER": the value just written for OTHER (a ring ref given
         * twice, say). */
        char *ref = NULL;
        if (eq[1] == '@') {
            char other[512];
            unsigned len;
            (void)snprintf(other, sizeof(other), "%s/%s", nf->fe_path, eq + 2);
            if (!(ref = xs_read(nf->xs, t, other, &len)))
                return -ENOENT;
        }
        const char *val = ref ? ref : eq + 1;
        if (!xs_write(nf->xs, t, path, val, (unsigned)strlen(val)))
            r = -(errno ? errno : EIO);
        free(ref);
    }
    return r;
}

/* talk_to_netback(): all keys in one transaction, retried on EAGAIN. */
static int publish(struct netfront *nf)
{
    for (int tries = 0; tries < 100; tries++) {
        xs_transaction_t t = xs_transaction_start(nf->xs);
        int r = 0;

        if (t == XBT_NULL)
            return -(errno ? errno : EIO);
        remove_stale_keys(nf, t);
        /* As Linux netfront: the queue count whenever the backend offered
         * multi-queue (so also "1"), but one queue's keys stay flat. */
        if (nf->nq == 1) {
            if (nf->be_mq)
                r = xs_printf(nf->xs, t, nf->fe_path, "multi-queue-num-queues", "1");
            if (!r)
                r = write_queue_keys(nf, t, &nf->q[0], nf->fe_path);
        } else {
            r = xs_printf(nf->xs, t, nf->fe_path, "multi-queue-num-queues", "%u", nf->nq);
            for (unsigned i = 0; !r && i < nf->nq; i++) {
                char dir[192];
                (void)snprintf(dir, sizeof(dir), "%s/queue-%u", nf->fe_path, i);
                r = write_queue_keys(nf, t, &nf->q[i], dir);
            }
        }
        if (!r)
            r = xs_printf(nf->xs, t, nf->fe_path, "request-rx-copy", "1");
        if (!r)
            r = xs_printf(nf->xs, t, nf->fe_path, "feature-rx-notify", "1");
        if (!r)
            r = xs_printf(nf->xs, t, nf->fe_path, "feature-sg", "%d", !nf->o.no_sg);
        if (!r)
            r = xs_printf(nf->xs, t, nf->fe_path, "feature-gso-tcpv4", "%d", !nf->o.no_gso);
        if (!r)
            r = xs_printf(nf->xs, t, nf->fe_path, "feature-gso-tcpv6", "%d", !nf->o.no_gso);
        if (!r)
            r = xs_printf(nf->xs, t, nf->fe_path, "feature-ipv6-csum-offload", "%d",
                          !nf->o.no_csum_offload);
        /* Linux netfront's way of saying it cannot take partial checksums
         * (the key is negative: absent means offload on). */
        if (!r)
            r = xs_printf(nf->xs, t, nf->fe_path, "feature-no-csum-offload", "%d",
                          nf->o.no_csum_offload);
        if (!r)
            r = publish_ctrl(nf, t);
        if (r) {
            (void)xs_transaction_end(nf->xs, t, true);
            return r;
        }
        if (xs_transaction_end(nf->xs, t, false))
            return 0;
        if (errno != EAGAIN)
            return -(errno ? errno : EIO);
    }
    return -EAGAIN;
}

static int ctrl_setup(struct netfront *nf);

int netfront_connect(struct netfront *nf)
{
    unsigned nq;
    int r;

    if (!nf)
        return -EINVAL;
    if (nf->connected)
        return 0;
    if (nf->o.no_xenstore) {
        for (unsigned i = 0; i < nf->nq; i++)
            rx_refill(nf, &nf->q[i]);
        nf->connected = true;
        return 0;
    }
    if (!xs_watch(nf->xs, nf->be_path, "backend"))
        return -(errno ? errno : EIO);
    /* A reconnect after an earlier close (the driver probed again): the
     * frontend announces Initialising, and a backend that went Closed
     * prepares for it by going back to InitWait (Linux netback's "prepare
     * for reconnect"). Its Closed is then the old state, not an answer. */
    bool reprobe = read_state(nf->xs, nf->fe_path) != XenbusStateInitialising;
    if (reprobe && (r = switch_state(nf, XenbusStateInitialising)) < 0)
        return r;
    r = wait_state(nf->xs, nf->be_path,
                   reprobe ? 1u << XenbusStateInitWait
                           : 1u << XenbusStateInitWait | 1u << XenbusStateClosing |
                                 1u << XenbusStateClosed,
                   timeout_of(nf));
    if (r < 0)
        return r;
    if (r != XenbusStateInitWait)
        return -ECONNREFUSED;

    if (!xs_read_uint(nf->xs, nf->be_path, "feature-rx-copy", 0))
        return -EPROTONOSUPPORT; /* Linux: "backend does not support copying receive path" */
    nf->be_max_queues = xs_read_uint(nf->xs, nf->be_path, "multi-queue-max-queues", 1);
    nf->be_mq = xs_read_uint(nf->xs, nf->be_path, "multi-queue-max-queues", 0) > 0;
    nf->be_split = xs_read_uint(nf->xs, nf->be_path, "feature-split-event-channels", 0) &&
                   !nf->o.no_split_evtchn;
    nf->be_sg = xs_read_uint(nf->xs, nf->be_path, "feature-sg", 0);
    nf->be_gso4 = xs_read_uint(nf->xs, nf->be_path, "feature-gso-tcpv4", 0);
    nf->be_gso6 = xs_read_uint(nf->xs, nf->be_path, "feature-gso-tcpv6", 0);
    nf->be_ctrl = xs_read_uint(nf->xs, nf->be_path, "feature-ctrl-ring", 0);
    nf->be_mcast = xs_read_uint(nf->xs, nf->be_path, "feature-multicast-control", 0);
    nq = XBR_MIN(nf->o.queues, XBR_MAX(nf->be_max_queues, 1u));
    if ((r = setup_queues(nf, nq, nf->be_split)) < 0)
        return r;
    if (nf->o.ctrl_ring && nf->be_ctrl && (r = ctrl_setup(nf)) < 0)
        return r;
    if ((r = publish(nf)) < 0)
        return r;
    /* xennet_connect(): kick every queue and post RX buffers, then switch. */
    for (unsigned i = 0; i < nf->nq; i++) {
        notify_port(nf, nf->q[i].port_tx);
        if (nf->q[i].port_rx != nf->q[i].port_tx)
            notify_port(nf, nf->q[i].port_rx);
        rx_refill(nf, &nf->q[i]);
    }
    if ((r = switch_state(nf, XenbusStateConnected)) < 0)
        return r;
    r = wait_state(nf->xs, nf->be_path,
                   1u << XenbusStateConnected | 1u << XenbusStateClosing |
                       1u << XenbusStateClosed,
                   timeout_of(nf));
    if (r < 0)
        return r;
    if (r != XenbusStateConnected)
        return -ECONNREFUSED;
    nf->connected = true;
    return 0;
}

int netfront_close(struct netfront *nf)
{
    int r = 0;

    if (!nf)
        return 0;
    if (nf->xs && nf->fe_path[0]) {
        /* xennet_remove(): Closing, wait for the backend, Closed, wait. */
        int s = read_state(nf->xs, nf->be_path);
        if (s > 0 && s != XenbusStateClosed) {
            (void)switch_state(nf, XenbusStateClosing);
            s = wait_state(nf->xs, nf->be_path,
                           1u << XenbusStateClosing | 1u << XenbusStateClosed | 1u,
                           timeout_of(nf));
            if (s < 0)
                r = s;
        }
        (void)switch_state(nf, XenbusStateClosed);
        s = wait_state(nf->xs, nf->be_path, 1u << XenbusStateClosed | 1u, timeout_of(nf));
        if (s < 0 && !r)
            r = s;
    }
    nf_free(nf);
    return r;
}

int netfront_toolstack_destroy_domain(uint32_t domid)
{
    struct xs_handle *h;
    char path[64];
    int r = xensim_domain_destroy(domid);

    h = xs_open_as(0);
    if (!h)
        return r < 0 ? r : -(errno ? errno : EIO);
    (void)snprintf(path, sizeof(path), "/local/domain/%u", domid);
    (void)xs_rm(h, XBT_NULL, path);
    (void)xs_release_domain(h, domid);
    xs_close(h);
    return r;
}

void netfront_vanish(struct netfront *nf)
{
    if (!nf)
        return;
    (void)netfront_toolstack_destroy_domain(nf->domid);
    /* The domain is dead: closing our handles releases nothing more. */
    nf_free(nf);
}

/* ---- TX ---------------------------------------------------------------- */

static unsigned flow_queue(const struct netfront *nf, const uint8_t *f, size_t len)
{
    uint32_t h = 2166136261u;
    size_t n = 12;

    if (nf->nq <= 1)
        return 0;
    if (len >= 38 && f[12] == 0x08 && f[13] == 0x00) {
        size_t ihl = (size_t)(f[14] & 15) * 4;
        f += 14 + 12; /* saddr, daddr, then ports */
        n = 8 + (len >= 14 + ihl + 4 ? 4 : 0);
        if (n == 12 && ihl != 20)
            n = 8;
    }
    for (size_t i = 0; i < n; i++)
        h = (h ^ f[i]) * 16777619u;
    return h % nf->nq;
}

static void plan_release(struct nf_queue *q, struct nf_slot *plan, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (!plan[i].extra && plan[i].id >= 0)
            q->tx_free[q->tx_nfree++] = (uint16_t)plan[i].id;
}

/* Lays `frame` out in slots of the given sizes (chunks[0] at first_off) and
 * copies the data into the TX pages. Ids are taken from the free list. The
 * extra slot (if gso) is placed right after the first. */
static int plan_frame(struct netfront *nf, struct nf_queue *q, const uint8_t *frame, size_t len,
                      const uint16_t *chunks, unsigned nchunks, unsigned first_off,
                      const struct netfront_tx_opts *o, struct nf_slot *plan, unsigned *nplan)
{
    unsigned n = 0;
    size_t pos = 0;

    (void)nf;
    if (nchunks + 1 > NF_MAX_PLAN || nchunks > q->tx_nfree)
        return -ENOBUFS;
    for (unsigned c = 0; c < nchunks; c++) {
        struct nf_slot *s = &plan[n++];
        unsigned off = c == 0 ? first_off : 0;
        uint16_t id = q->tx_free[--q->tx_nfree];
        size_t fit = off < NF_PAGE ? NF_PAGE - off : 0;

        memset(s, 0, sizeof(*s));
        s->id = id;
        s->gref = q->tx_refs[id];
        s->off = (uint16_t)off;
        s->size = chunks[c];
        memcpy(q->tx_pages + (size_t)id * NF_PAGE + off, frame + pos,
               XBR_MIN(XBR_MIN((size_t)chunks[c], fit), len - pos));
        pos += XBR_MIN((size_t)chunks[c], len - pos);
        if (c + 1 < nchunks)
            s->flags |= NETTXF_more_data;
        if (c == 0 && o && o->gso_type) {
            struct nf_slot *e = &plan[n++];
            memset(e, 0, sizeof(*e));
            e->extra = true;
            e->id = -1;
            e->ex.type = XEN_NETIF_EXTRA_TYPE_GSO;
            e->ex.u.gso.size = o->gso_size;
            e->ex.u.gso.type = o->gso_type;
            s->flags |= NETTXF_extra_info;
        }
    }
    plan[0].size = (uint16_t)len;
    if (o && o->csum_blank)
        plan[0].flags |= NETTXF_csum_blank | NETTXF_data_validated;
    else if (o && o->data_validated)
        plan[0].flags |= NETTXF_data_validated;
    *nplan = n;
    return 0;
}

/* Splits len bytes into page-bounded chunks. */
static unsigned chunk_frame(size_t len, unsigned first_off, unsigned slot_bytes,
                            uint16_t *chunks, unsigned max)
{
    unsigned n = 0;
    size_t pos = 0;

    if (slot_bytes == 0 || slot_bytes > NF_PAGE)
        slot_bytes = NF_PAGE;
    while (pos < len || n == 0) {
        size_t room = (n == 0 ? NF_PAGE - first_off : NF_PAGE);
        size_t c = XBR_MIN(XBR_MIN(room, (size_t)slot_bytes), len - pos);
        if (n == max)
            return max + 1;
        chunks[n++] = (uint16_t)c;
        pos += c;
    }
    return n;
}

/* Writes the plan into the ring, pushes, notifies if needed. */
static void commit_plan(struct netfront *nf, struct nf_queue *q, const struct nf_slot *plan,
                        unsigned n, bool push)
{
    int notify;

    for (unsigned i = 0; i < n; i++) {
        RING_IDX idx = q->tx.req_prod_pvt++;
        if (plan[i].extra) {
            memcpy(RING_GET_REQUEST(&q->tx, idx), &plan[i].ex, sizeof(plan[i].ex));
        } else {
            netif_tx_request_t *req = RING_GET_REQUEST(&q->tx, idx);
            req->gref = plan[i].gref;
            req->offset = plan[i].off;
            req->flags = plan[i].flags;
            req->id = (uint16_t)plan[i].id;
            req->size = plan[i].size;
            q->tx_inflight[plan[i].id] = true;
            nf->st.tx_slots++;
        }
    }
    if (!push)
        return;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&q->tx, notify);
    if (notify)
        notify_port(nf, q->port_tx);
}

/* Waits until queue q has `slots` free ring entries and ids. */
static int tx_wait_space(struct netfront *nf, struct nf_queue *q, unsigned slots, unsigned ids)
{
    uint64_t deadline = xbr_now_ms() + NF_SEND_WAIT_MS;

    for (;;) {
        tx_gc(nf, q);
        if (nf->broken)
            return -EPROTO;
        if (RING_FREE_REQUESTS(&q->tx) >= slots && q->tx_nfree >= ids)
            return 0;
        rx_backlog_fill(nf);
        if (now_ms_left(deadline) == 0)
            return -ENOBUFS;
        (void)wait_events(nf, XBR_MIN(now_ms_left(deadline), 10));
    }
}

int netfront_send(struct netfront *nf, const void *frame, size_t len,
                  const struct netfront_tx_opts *o)
{
    uint16_t chunks[NF_MAX_PLAN];
    struct nf_slot plan[NF_MAX_PLAN];
    unsigned nchunks, nplan, first_off = o ? o->first_offset : 0;
    struct nf_queue *q;
    int r;

    if (!nf || !frame || len < 14 || len > NETFRONT_MAX_FRAME || first_off >= NF_PAGE)
        return -EINVAL;
    if (!nf->connected || !nf->nq)
        return -ENOTCONN;
    if (o && o->gso_type &&
        ((o->gso_type == XEN_NETIF_GSO_TYPE_TCPV4 && (!nf->be_gso4 || nf->o.no_gso)) ||
         (o->gso_type == XEN_NETIF_GSO_TYPE_TCPV6 && (!nf->be_gso6 || nf->o.no_gso)) ||
         o->gso_type > XEN_NETIF_GSO_TYPE_TCPV6 || o->gso_size == 0))
        return -EOPNOTSUPP;
    q = &nf->q[o && o->queue >= 0 ? (unsigned)o->queue % nf->nq : flow_queue(nf, frame, len)];
    nchunks = chunk_frame(len, first_off, o ? o->slot_bytes : 0, chunks, NF_MAX_PLAN - 1);
    if (nchunks > XEN_NETIF_NR_SLOTS_MIN) {
        /* More slots than a backend must accept: like xennet_start_xmit()
         * ("skb rides the rocket"), linearize into whole pages. */
        nchunks = chunk_frame(len, first_off, NF_PAGE, chunks, NF_MAX_PLAN - 1);
        nf->st.tx_linearized++;
    }
    if (nchunks > XEN_NETIF_NR_SLOTS_MIN)
        return -EMSGSIZE;
    if (nchunks > 1 && (!nf->be_sg || nf->o.no_sg))
        return -EMSGSIZE;
    if ((r = tx_wait_space(nf, q, nchunks + 1, nchunks)) < 0)
        return r;
    if ((r = plan_frame(nf, q, frame, len, chunks, nchunks, first_off, o, plan, &nplan)) < 0)
        return r;
    commit_plan(nf, q, plan, nplan, true);
    nf->st.tx_packets++;
    nf->st.tx_bytes += len;
    return 0;
}

int netfront_flush(struct netfront *nf, int timeout_ms)
{
    uint64_t deadline = xbr_now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);

    if (!nf)
        return -EINVAL;
    for (;;) {
        bool idle = true;
        gc_all(nf);
        for (unsigned i = 0; i < nf->nq; i++)
            if (nf->q[i].tx_nfree != NF_TX_RING_SIZE)
                idle = false;
        if (idle)
            return 0;
        if (nf->broken)
            return -EPROTO;
        rx_backlog_fill(nf);
        if (now_ms_left(deadline) == 0)
            return -ETIMEDOUT;
        (void)wait_events(nf, XBR_MIN(now_ms_left(deadline), 10));
    }
}

int netfront_poll(struct netfront *nf, int timeout_ms)
{
    int r;

    if (!nf)
        return -EINVAL;
    r = wait_events(nf, timeout_ms);
    gc_all(nf);
    if (nf->connected)
        rx_backlog_fill(nf);
    return r < 0 ? r : 0;
}

/* ---- RX ---------------------------------------------------------------- */

/* Takes one complete frame off queue q. Returns its length (> 0 or 0 for an
 * empty frame: *got set), -EAGAIN when no complete frame is there, -EIO when
 * a frame was consumed and dropped (errors, backend bugs). */
static ssize_t rx_take(struct netfront *nf, struct nf_queue *q, uint8_t *buf, size_t cap,
                       struct netfront_rx_info *info)
{
    RING_IDX prod, cons = q->rx.rsp_cons, idx;
    netif_rx_response_t first, r;
    size_t total = 0;
    unsigned slots = 0;
    bool bad = false, err = false;
    uint8_t gso_type = 0;
    uint16_t gso_size = 0;
    int hash_type = -1;
    uint8_t hash_alg = 0;
    uint32_t hash = 0;

    prod = __atomic_load_n(&q->rx.sring->rsp_prod, __ATOMIC_ACQUIRE);
    if (prod == cons)
        return -EAGAIN;
    if (prod - cons > RING_SIZE(&q->rx) || prod - cons > q->rx.req_prod_pvt - cons) {
        nf->st.rx_bad++;
        nf->broken = true; /* more responses than requests */
        return -EPROTO;
    }
    RING_COPY_RESPONSE(&q->rx, cons, &first);
    idx = cons + 1;
    if (first.flags & NETRXF_extra_info) {
        struct netif_extra_info ex;
        do {
            netif_rx_response_t raw;
            if (idx == prod)
                return -EAGAIN;
            RING_COPY_RESPONSE(&q->rx, idx, &raw);
            memcpy(&ex, &raw, sizeof(ex));
            idx++;
            if (ex.type == XEN_NETIF_EXTRA_TYPE_GSO) {
                gso_type = ex.u.gso.type;
                gso_size = ex.u.gso.size;
            } else if (ex.type == XEN_NETIF_EXTRA_TYPE_HASH) {
                hash_type = ex.u.hash.type;
                hash_alg = ex.u.hash.algorithm;
                hash = (uint32_t)ex.u.hash.value[0] | (uint32_t)ex.u.hash.value[1] << 8 |
                       (uint32_t)ex.u.hash.value[2] << 16 | (uint32_t)ex.u.hash.value[3] << 24;
            } else if (ex.type == XEN_NETIF_EXTRA_TYPE_NONE ||
                       ex.type >= XEN_NETIF_EXTRA_TYPE_MAX) {
                bad = true;
            }
        } while ((ex.flags & XEN_NETIF_EXTRA_FLAG_MORE) && idx - cons < NF_MAX_RX_SLOTS + 4);
        if (ex.flags & XEN_NETIF_EXTRA_FLAG_MORE)
            bad = true;
    }
    r = first;
    for (RING_IDX at = cons;;) {
        slots++;
        if (r.id != (at & (NF_RX_RING_SIZE - 1)))
            bad = true;
        if (r.status < 0) {
            err = true;
        } else if (r.offset + (unsigned)r.status > NF_PAGE) {
            bad = true;
        } else if (!bad && !err) {
            const uint8_t *src = q->rx_pages + (size_t)(at & (NF_RX_RING_SIZE - 1)) * NF_PAGE +
                                 r.offset;
            if (total < cap)
                memcpy(buf + total, src, XBR_MIN((size_t)r.status, cap - total));
            total += (size_t)r.status;
        }
        if (!(r.flags & NETRXF_more_data))
            break;
        if (slots >= NF_MAX_RX_SLOTS) {
            bad = true; /* "Too many slots" */
            break;
        }
        if (idx == prod)
            return -EAGAIN; /* the rest is not there yet */
        at = idx;
        RING_COPY_RESPONSE(&q->rx, idx, &r);
        idx++;
    }
    q->rx.rsp_cons = idx;
    nf->st.rx_slots += slots;
    rx_refill(nf, q);
    if (bad || err) {
        if (bad)
            nf->st.rx_bad++;
        if (err)
            nf->st.rx_errors++;
        return -EIO;
    }
    nf->st.rx_packets++;
    nf->st.rx_bytes += total;
    if (gso_type)
        nf->st.rx_gso++;
    if (info) {
        info->queue = q->id;
        info->flags = first.flags;
        info->gso_type = gso_type;
        info->gso_size = gso_size;
        info->slots = slots;
        info->len = total;
        info->hash_type = hash_type;
        info->hash_alg = hash_alg;
        info->hash = hash;
    }
    return (ssize_t)total;
}

ssize_t netfront_recv(struct netfront *nf, void *buf, size_t cap, int timeout_ms,
                      struct netfront_rx_info *info)
{
    uint64_t deadline = xbr_now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);

    if (!nf || (!buf && cap))
        return -EINVAL;
    if (!nf->connected || !nf->nq)
        return -ENOTCONN;
    if (nf->bl_count) {
        unsigned slot = nf->bl_head;
        size_t n = nf->backlog[slot].len;
        if (buf)
            memcpy(buf, nf->backlog[slot].data, XBR_MIN(n, cap));
        if (info)
            *info = nf->backlog[slot].info;
        free(nf->backlog[slot].data);
        nf->backlog[slot].data = NULL;
        nf->bl_head = (nf->bl_head + 1) % NF_BACKLOG;
        nf->bl_count--;
        return (ssize_t)n;
    }
    for (;;) {
        bool more = false;

        for (unsigned k = 0; k < nf->nq; k++) {
            struct nf_queue *q = &nf->q[(nf->rx_rr + k) % nf->nq];
            ssize_t n;
            while ((n = rx_take(nf, q, buf, cap, info)) == -EIO)
                ;
            if (n >= 0) {
                nf->rx_rr = (nf->rx_rr + k + 1) % nf->nq;
                return n;
            }
            if (n == -EPROTO)
                return n;
        }
        gc_all(nf);
        for (unsigned k = 0; k < nf->nq; k++) {
            int m;
            RING_FINAL_CHECK_FOR_RESPONSES(&nf->q[k].rx, m);
            more |= m != 0;
        }
        if (more)
            continue;
        if (timeout_ms >= 0 && now_ms_left(deadline) == 0)
            return -ETIMEDOUT;
        (void)wait_events(nf, timeout_ms < 0 ? 100 : XBR_MIN(now_ms_left(deadline), 100));
    }
}

/* ---- attacks ------------------------------------------------------------ */

/* A TCP/IPv4 frame of len bytes (len >= 54), payload bytes patterned. */
static void tcp4_frame(uint8_t *f, size_t len, const uint8_t *src_mac)
{
    static const uint8_t dst[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

    memset(f, 0, len);
    memcpy(f, dst, 6);
    memcpy(f + 6, src_mac, 6);
    f[12] = 0x08;
    f[14] = 0x45;
    f[16] = (uint8_t)((len - 14) >> 8);
    f[17] = (uint8_t)(len - 14);
    f[22] = 64;
    f[23] = 6;
    f[26] = 10, f[29] = 1;
    f[30] = 10, f[33] = 2;
    f[34] = 0x30, f[35] = 0x39; /* 12345 -> 80 */
    f[37] = 80;
    f[46] = 0x50;
    f[47] = 0x18;
    for (size_t i = 54; i < len; i++)
        f[i] = (uint8_t)(i * 7);
}

static struct nf_queue *attack_queue(struct netfront *nf)
{
    return &nf->q[0];
}

static int attack_packet(struct netfront *nf)
{
    struct nf_queue *q = attack_queue(nf);
    enum netfront_attack a = nf->o.attack;
    unsigned arg = nf->o.attack_arg, n = 0, nplan = 0, first_off = 0;
    uint16_t chunks[NF_MAX_PLAN];
    struct nf_slot plan[NF_MAX_PLAN];
    struct netfront_tx_opts o = {.queue = 0};
    static uint8_t frame[NETFRONT_MAX_FRAME];
    size_t len = 0;
    uint32_t extra_ref = 0;
    void *extra_page = NULL;
    int r;

    switch (a) {
    case NF_ATTACK_TOO_MANY_SLOTS:
    case NF_ATTACK_FATAL_SLOTS:
        n = arg ? arg : (a == NF_ATTACK_TOO_MANY_SLOTS ? 19 : 22);
        if (n < 1 || n > NF_MAX_PLAN - 1)
            return -EINVAL;
        for (unsigned i = 0; i < n; i++)
            chunks[i] = 64;
        len = (size_t)n * 64;
        break;
    case NF_ATTACK_TINY_FRAGS:
        n = arg ? arg : 18;
        if (n < 1 || n > NF_MAX_PLAN - 1)
            return -EINVAL;
        for (unsigned i = 0; i < n; i++)
            chunks[i] = 6;
        len = (size_t)n * 6;
        break;
    case NF_ATTACK_TINY_FIRST_SLOT:
        len = 200;
        chunks[0] = (uint16_t)(arg && arg < 190 ? arg : 10);
        chunks[1] = (uint16_t)(len - chunks[0]);
        n = 2;
        break;
    case NF_ATTACK_ZERO_FRAG:
        len = 300;
        chunks[0] = 100, chunks[1] = 0, chunks[2] = 200;
        n = 3;
        break;
    case NF_ATTACK_SIZE_SHORT:
    case NF_ATTACK_SIZE_LONG:
        len = 300;
        chunks[0] = 100, chunks[1] = 200;
        n = 2;
        break;
    case NF_ATTACK_TAIL_BAD_GREF:
    case NF_ATTACK_TAIL_REVOKE:
        len = 9000;
        chunks[0] = 4000, chunks[1] = 4000, chunks[2] = 1000;
        n = 3;
        o.gso_type = XEN_NETIF_GSO_TYPE_TCPV4;
        o.gso_size = 1448;
        o.csum_blank = true;
        break;
    case NF_ATTACK_GSO_SIZE_ZERO:
    case NF_ATTACK_GSO_BAD_TYPE:
    case NF_ATTACK_BAD_EXTRA_TYPE:
    case NF_ATTACK_EXTRA_UNTERMINATED:
        len = 3000;
        chunks[0] = 3000;
        n = 1;
        o.gso_type = XEN_NETIF_GSO_TYPE_TCPV4;
        o.gso_size = 1448;
        o.csum_blank = true;
        break;
    default:
        len = 200;
        chunks[0] = 200;
        n = 1;
        break;
    }
    {
        static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        const uint8_t *dst = nf->o.have_attack_dst ? nf->o.attack_dst : bcast;
        if (len < 30)
            memset(frame, 0xab, len);
        else if (netfront_test_frame(frame, len, 0xa77ac000u + (uint32_t)a, dst, nf->mac,
                                     len >= 70, o.csum_blank) < 0)
            tcp4_frame(frame, len, nf->mac);
    }
    if ((r = tx_wait_space(nf, q, n + 2, n)) < 0)
        return r;
    if ((r = plan_frame(nf, q, frame, len, chunks, n, first_off, &o, plan, &nplan)) < 0)
        return r;

    switch (a) {
    case NF_ATTACK_CROSS_PAGE:
        plan[0].off = 4000;
        break;
    case NF_ATTACK_SIZE_SHORT:
        plan[0].size = 150; /* < 200 in the next slot */
        break;
    case NF_ATTACK_SIZE_LONG:
        plan[0].size = (uint16_t)(len + 8000);
        break;
    case NF_ATTACK_GSO_SIZE_ZERO:
        plan[1].ex.u.gso.size = 0;
        break;
    case NF_ATTACK_GSO_BAD_TYPE:
        plan[1].ex.u.gso.type = (uint8_t)(arg ? arg : 7);
        break;
    case NF_ATTACK_BAD_EXTRA_TYPE:
        plan[1].ex.type = (uint8_t)(arg ? arg : XEN_NETIF_EXTRA_TYPE_MAX);
        break;
    case NF_ATTACK_EXTRA_UNTERMINATED:
        plan[1].ex.flags = XEN_NETIF_EXTRA_FLAG_MORE; /* and nothing after it */
        break;
    case NF_ATTACK_UNTERMINATED:
        plan[nplan - 1].flags |= NETTXF_more_data;
        break;
    case NF_ATTACK_BAD_GREF:
        plan[0].gref = NF_BAD_GREF;
        break;
    case NF_ATTACK_UNUSED_GREF:
        plan[0].gref = NF_UNUSED_GREF;
        break;
    case NF_ATTACK_TAIL_BAD_GREF:
        plan[nplan - 1].gref = NF_BAD_GREF;
        break;
    case NF_ATTACK_FOREIGN_GREF:
    case NF_ATTACK_REVOKE_GREF:
    case NF_ATTACK_TAIL_REVOKE: {
        /* A page of its own: granted to someone else, or to the backend
         * and revoked right after the push. tail-revoke: the last slot's. */
        uint32_t to = a == NF_ATTACK_FOREIGN_GREF ? nf->be_domid + 100 : nf->be_domid;
        struct nf_slot *sl = a == NF_ATTACK_TAIL_REVOKE ? &plan[nplan - 1] : &plan[0];
        size_t from = a == NF_ATTACK_TAIL_REVOKE ? len - sl->size : 0;
        extra_page = xengntshr_share_pages(nf->gs, to, 1, &extra_ref, 0);
        if (!extra_page) {
            r = -errno;
            plan_release(q, plan, nplan);
            return r;
        }
        memcpy((uint8_t *)extra_page + sl->off, frame + from,
               XBR_MIN(len - from, (size_t)NF_PAGE - sl->off));
        sl->gref = extra_ref;
        break;
    }
    default:
        break;
    }
    commit_plan(nf, q, plan, nplan, true);
    nf->st.tx_packets++;
    nf->st.tx_bytes += len;

    if (a == NF_ATTACK_REVOKE_GREF || a == NF_ATTACK_TAIL_REVOKE) {
        if (arg)
            (void)usleep(arg);
        (void)xengntshr_unshare(nf->gs, extra_page, 1);
        extra_page = NULL;
    } else if (a == NF_ATTACK_REWRITE) {
        RING_IDX idx = q->tx.req_prod_pvt - 1;
        volatile netif_tx_request_t *req = RING_GET_REQUEST(&q->tx, idx);
        netif_tx_request_t good = *(netif_tx_request_t *)RING_GET_REQUEST(&q->tx, idx);
        uint64_t end = xbr_now_ms() + (arg ? arg : 200);
        unsigned i = 0;

        notify_port(nf, q->port_tx);
        while (xbr_now_ms() < end) {
            for (unsigned k = 0; k < 1000; k++, i++) {
                req->size = (i & 1) ? 0xffff : good.size;
                req->offset = (i & 2) ? 4000 : good.offset;
                req->flags = (i & 4) ? (good.flags | NETTXF_more_data | NETTXF_extra_info)
                                     : good.flags;
                req->gref = (i & 8) ? NF_BAD_GREF : good.gref;
            }
            notify_port(nf, q->port_tx);
        }
        req->size = good.size;
        req->offset = good.offset;
        req->flags = good.flags;
        req->gref = good.gref;
    }
    /* Give the backend a moment, collect what it answers. */
    (void)wait_events(nf, 50);
    tx_gc(nf, q);
    if (extra_page)
        (void)xengntshr_unshare(nf->gs, extra_page, 1);
    return 0;
}

static int xs_write_loop(struct netfront *nf);
static int ctrl_attack(struct netfront *nf);

int netfront_run_attack(struct netfront *nf)
{
    struct nf_queue *q;

    if (!nf)
        return -EINVAL;
    if (!nf->connected || !nf->nq)
        return -ENOTCONN;
    q = attack_queue(nf);
    switch (nf->o.attack) {
    case NF_ATTACK_NONE:
    case NF_ATTACK_RX_READONLY:
    case NF_ATTACK_RX_BAD_GREF:
    case NF_ATTACK_NO_RX_BUFFERS:
        return 0; /* in effect since open/connect */
    case NF_ATTACK_REQ_PROD_JUMP: {
        unsigned by = nf->o.attack_arg ? nf->o.attack_arg : 2 * RING_SIZE(&q->tx);
        __atomic_store_n(&q->tx.sring->req_prod, q->tx.rsp_cons + by, __ATOMIC_RELEASE);
        notify_port(nf, q->port_tx);
        (void)wait_events(nf, 50);
        return 0;
    }
    case NF_ATTACK_RX_REQ_PROD_JUMP: {
        unsigned by = nf->o.attack_arg ? nf->o.attack_arg : 2 * RING_SIZE(&q->rx);
        __atomic_store_n(&q->rx.sring->req_prod, q->rx.rsp_cons + by, __ATOMIC_RELEASE);
        notify_port(nf, q->port_rx);
        (void)wait_events(nf, 50);
        return 0;
    }
    case NF_ATTACK_EVTCHN_FLOOD: {
        uint64_t end = xbr_now_ms() + (nf->o.attack_arg ? nf->o.attack_arg : 1000);
        while (xbr_now_ms() < end) {
            for (unsigned i = 0; i < nf->nq; i++) {
                notify_port(nf, nf->q[i].port_tx);
                if (nf->q[i].port_rx != nf->q[i].port_tx)
                    notify_port(nf, nf->q[i].port_rx);
            }
            drain_events(nf);
        }
        return 0;
    }
    case NF_ATTACK_VANISH:
        netfront_vanish(nf);
        return 0;
    case NF_ATTACK_FOREIGN_EVTCHN:
        return 0; /* the handshake itself */
    case NF_ATTACK_XS_WRITE_LOOP:
        return xs_write_loop(nf);
    case NF_ATTACK_CTRL_REQ_PROD_JUMP:
    case NF_ATTACK_CTRL_FLOOD:
        return ctrl_attack(nf);
    default:
        return attack_packet(nf);
    }
}

/* ---- accessors ----------------------------------------------------------- */

void netfront_get_stats(const struct netfront *nf, struct netfront_stats *st)
{
    if (nf && st)
        *st = nf->st;
}

unsigned netfront_num_queues(const struct netfront *nf)
{
    return nf ? nf->nq : 0;
}

int netfront_queue_info(const struct netfront *nf, unsigned q, struct netfront_queue_info *qi)
{
    if (!nf || !qi || q >= nf->nq)
        return -EINVAL;
    qi->tx_ring_ref = nf->q[q].tx_ring_ref;
    qi->rx_ring_ref = nf->q[q].rx_ring_ref;
    qi->evtchn_tx = nf->q[q].port_tx;
    qi->evtchn_rx = nf->q[q].port_rx;
    return 0;
}

const uint8_t *netfront_mac(const struct netfront *nf)
{
    return nf ? nf->mac : NULL;
}

int netfront_backend_state(struct netfront *nf)
{
    if (!nf || !nf->xs)
        return -ENOTCONN;
    return read_state(nf->xs, nf->be_path);
}

int netfront_fd(const struct netfront *nf)
{
    return nf ? xenevtchn_fd(nf->ev) : -1;
}

/* ---- toolstack ------------------------------------------------------------ */

static int set_perms(struct xs_handle *h, xs_transaction_t t, const char *path, uint32_t owner,
                     uint32_t reader)
{
    struct xs_permissions p[2] = {
        {.id = owner, .perms = XS_PERM_NONE},
        {.id = reader, .perms = XS_PERM_READ},
    };
    return xs_set_permissions(h, t, path, p, 2) ? 0 : -(errno ? errno : EIO);
}

int netfront_toolstack_attach(uint32_t backend_domid, uint32_t domid, uint32_t devid,
                              const uint8_t mac[6], const char *bridge)
{
    char fe[128], be[128], dom[64], macs[XBR_MAC_STRLEN];
    struct xs_handle *h;
    int r = 0;

    if (!mac || domid == 0)
        return -EINVAL;
    (void)xensim_domain_create(domid); /* fine without a world too */
    h = xs_open_as(0);
    if (!h)
        return -(errno ? errno : EIO);
    (void)xs_introduce_domain(h, domid, 0, 0); /* xs-sim: DIR/dom<domid> appears */
    (void)snprintf(dom, sizeof(dom), "/local/domain/%u", domid);
    (void)snprintf(fe, sizeof(fe), "%s/device/vif/%u", dom, devid);
    (void)snprintf(be, sizeof(be), "/local/domain/%u/backend/vif/%u/%u", backend_domid, domid,
                   devid);
    (void)xbr_mac_format(mac, macs);
    for (int tries = 0; tries < 100; tries++) {
        xs_transaction_t t = xs_transaction_start(h);
        char device[96];

        if (t == XBT_NULL) {
            r = -(errno ? errno : EIO);
            break;
        }
        (void)snprintf(device, sizeof(device), "%s/device", dom);
        r = 0;
        if (!xs_mkdir(h, t, dom) || !xs_mkdir(h, t, device) || !xs_mkdir(h, t, fe) ||
            !xs_mkdir(h, t, be))
            r = -(errno ? errno : EIO);
        /* libxl: the domain's home is dom0's, readable by the domain; its
         * device tree and the frontend are the domain's, readable by the
         * backend; the backend directory is the backend's, readable by it. */
        if (!r)
            r = set_perms(h, t, dom, 0, domid);
        if (!r)
            r = set_perms(h, t, device, domid, backend_domid);
        if (!r) {
            char vif[112];
            (void)snprintf(vif, sizeof(vif), "%s/device/vif", dom);
            r = set_perms(h, t, vif, domid, backend_domid);
        }
        if (!r)
            r = set_perms(h, t, fe, domid, backend_domid);
        if (!r)
            r = set_perms(h, t, be, backend_domid, domid);
        if (!r)
            r = xs_printf(h, t, dom, "domid", "%u", domid);
        if (!r)
            r = xs_printf(h, t, dom, "name", "xensim-%u", domid);
        if (!r)
            r = xs_printf(h, t, fe, "backend", "%s", be);
        if (!r)
            r = xs_printf(h, t, fe, "backend-id", "%u", backend_domid);
        if (!r)
            r = xs_printf(h, t, fe, "state", "%d", XenbusStateInitialising);
        if (!r)
            r = xs_printf(h, t, fe, "handle", "%u", devid);
        if (!r)
            r = xs_printf(h, t, fe, "mac", "%s", macs);
        if (!r)
            r = xs_printf(h, t, be, "frontend", "%s", fe);
        if (!r)
            r = xs_printf(h, t, be, "frontend-id", "%u", domid);
        if (!r)
            r = xs_printf(h, t, be, "online", "1");
        if (!r)
            r = xs_printf(h, t, be, "state", "%d", XenbusStateInitialising);
        if (!r)
            r = xs_printf(h, t, be, "script", "/etc/xen/scripts/vif-bridge");
        if (!r)
            r = xs_printf(h, t, be, "mac", "%s", macs);
        if (!r)
            r = xs_printf(h, t, be, "handle", "%u", devid);
        if (!r)
            r = xs_printf(h, t, be, "type", "vif");
        if (!r && bridge)
            r = xs_printf(h, t, be, "bridge", "%s", bridge);
        if (r) {
            (void)xs_transaction_end(h, t, true);
            break;
        }
        if (xs_transaction_end(h, t, false))
            break;
        if (errno != EAGAIN) {
            r = -(errno ? errno : EIO);
            break;
        }
    }
    xs_close(h);
    return r;
}

int netfront_toolstack_detach(uint32_t backend_domid, uint32_t domid, uint32_t devid,
                              int timeout_ms)
{
    char fe[128], be[128];
    struct xs_handle *h;
    int r = 0, s;

    h = xs_open_as(0);
    if (!h)
        return -(errno ? errno : EIO);
    (void)snprintf(fe, sizeof(fe), "/local/domain/%u/device/vif/%u", domid, devid);
    (void)snprintf(be, sizeof(be), "/local/domain/%u/backend/vif/%u/%u", backend_domid, domid,
                   devid);
    /* libxl__initiate_device_generic_remove(): online 0, state Closing. */
    if ((r = xs_printf(h, XBT_NULL, be, "online", "0")) == 0 &&
        read_state(h, be) != XenbusStateClosed)
        r = xs_printf(h, XBT_NULL, be, "state", "%d", XenbusStateClosing);
    if (!r && xs_watch(h, be, "detach")) {
        s = wait_state(h, be, 1u << XenbusStateClosed | 1u, timeout_ms);
        if (s < 0)
            r = s; /* libxl removes anyway after its timeout */
        (void)xs_unwatch(h, be, "detach");
    }
    (void)xs_rm(h, XBT_NULL, be);
    (void)xs_rm(h, XBT_NULL, fe);
    xs_close(h);
    return r;
}

/* ---- test frames ------------------------------------------------------------ */

/* zlib's CRC-32 (the IEEE one): several bytes per step, where a table
 * lookup per byte made the simulated guests, not xbrd, what netback-bench
 * measured at 1514 B. */
uint32_t netfront_crc32(const void *data, size_t len)
{
    return (uint32_t)crc32_z(0, data, len);
}

/* The test frames' payload: one pseudo-random block, made once, each frame
 * taking its bytes from an offset its sequence number picks. Cheap enough
 * that the senders keep up with xbrd, and still different frame to frame
 * (a misplaced or stale chunk breaks the CRC). */
#define TF_PATTERN_SPAN 4093u /* offsets: a prime, so neighbours differ */
static const uint8_t *tf_pattern(void)
{
    static uint8_t block[NETFRONT_MAX_FRAME + TF_PATTERN_SPAN];
    static bool ready;
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        uint32_t x = 2654435761u;
        for (size_t i = 0; i < sizeof(block); i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            block[i] = (uint8_t)x;
        }
        __atomic_store_n(&ready, true, __ATOMIC_RELEASE);
    }
    return block;
}

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

#define TF_HDR 16u

/* The TCP header of a test frame at tcp, its checksum over the pseudo-header
 * sum psum (addresses, protocol, length) and the segment's tl bytes. */
static void test_frame_tcp(uint8_t *tcp, size_t tl, uint32_t seq, uint32_t psum,
                           bool csum_partial)
{
    put_be16(tcp, 12345);
    put_be16(tcp + 2, 80);
    put_be32(tcp + 4, seq * 65536u);
    tcp[12] = 0x50;
    tcp[13] = 0x18; /* PSH ACK */
    put_be16(tcp + 14, 65535);
    if (csum_partial)
        put_be16(tcp + 16, csum_fold(psum));
    else
        put_be16(tcp + 16, (uint16_t)~csum_fold(csum_add(psum, tcp, tl)));
}

int netfront_test_frame_kind(uint8_t *buf, size_t len, uint32_t seq, const uint8_t dst[6],
                             const uint8_t src[6], enum netfront_tf_kind kind, bool csum_partial)
{
    size_t off = kind == NF_TF_TCP4 ? 14 + 20 + 20 : kind == NF_TF_TCP6 ? 14 + 40 + 20 : 14;
    uint8_t *pl;

    if (!buf || !dst || !src || kind > NF_TF_TCP6 || len < off + TF_HDR ||
        len > NETFRONT_MAX_FRAME)
        return -EINVAL;
    memset(buf, 0, off);
    memcpy(buf, dst, 6);
    memcpy(buf + 6, src, 6);
    pl = buf + off;
    memcpy(pl, "XSIM", 4);
    put_be32(pl + 4, seq);
    put_be32(pl + 8, (uint32_t)len);
    memcpy(buf + off + TF_HDR, tf_pattern() + (seq * 2654435761u) % TF_PATTERN_SPAN,
           len - off - TF_HDR);
    put_be32(pl + 12, netfront_crc32(pl + TF_HDR, len - off - TF_HDR));
    if (kind == NF_TF_RAW) {
        put_be16(buf + 12, NETFRONT_TEST_ETHERTYPE);
        return 0;
    }
    if (kind == NF_TF_TCP6) {
        uint8_t *ip = buf + 14;
        put_be16(buf + 12, 0x86dd);
        ip[0] = 0x60;
        put_be16(ip + 4, (uint16_t)(len - 54));
        ip[6] = 6;
        ip[7] = 64;
        ip[8] = 0xfd, ip[23] = 1;  /* fd00::1 */
        ip[24] = 0xfd, ip[39] = 2; /* fd00::2 */
        test_frame_tcp(buf + 54, len - 54, seq, csum_add(0, ip + 8, 32) + 6 + (uint32_t)(len - 54),
                       csum_partial);
        return 0;
    }
    put_be16(buf + 12, 0x0800);
    uint8_t *ip = buf + 14;
    ip[0] = 0x45;
    put_be16(ip + 2, (uint16_t)(len - 14));
    put_be16(ip + 4, (uint16_t)seq);
    ip[6] = 0x40; /* DF */
    ip[8] = 64;
    ip[9] = 6;
    ip[12] = 10, ip[15] = 1;
    ip[16] = 10, ip[19] = 2;
    put_be16(ip + 10, (uint16_t)~csum_fold(csum_add(0, ip, 20)));
    test_frame_tcp(buf + 34, len - 34, seq, csum_add(0, ip + 12, 8) + 6 + (uint32_t)(len - 34),
                   csum_partial);
    return 0;
}

int netfront_test_frame(uint8_t *buf, size_t len, uint32_t seq, const uint8_t dst[6],
                        const uint8_t src[6], bool tcp4, bool csum_partial)
{
    return netfront_test_frame_kind(buf, len, seq, dst, src, tcp4 ? NF_TF_TCP4 : NF_TF_RAW,
                                    csum_partial);
}

int netfront_test_frame_check(const uint8_t *buf, size_t len, uint32_t *seq)
{
    size_t off;

    if (!buf || len < 14 + TF_HDR)
        return -ENOMSG;
    if (buf[12] == (NETFRONT_TEST_ETHERTYPE >> 8) && buf[13] == (NETFRONT_TEST_ETHERTYPE & 0xff))
        off = 14;
    else if (buf[12] == 0x08 && buf[13] == 0x00 && len >= 34 && buf[23] == 6)
        off = 14 + (size_t)(buf[14] & 15) * 4 + 20;
    else if (buf[12] == 0x86 && buf[13] == 0xdd && len >= 54 && (buf[14] >> 4) == 6 &&
             buf[20] == 6)
        off = 14 + 40 + 20;
    else
        return -ENOMSG;
    if (len < off + TF_HDR || memcmp(buf + off, "XSIM", 4))
        return -ENOMSG;
    if (get_be32(buf + off + 8) != len ||
        get_be32(buf + off + 12) != netfront_crc32(buf + off + TF_HDR, len - off - TF_HDR))
        return -EBADMSG;
    if (seq)
        *seq = get_be32(buf + off + 4);
    return 0;
}

/* ---- control ring, multicast control, xenstore misbehaviour --------------- */

#define NF_CTRL_WAIT_MS 2000

static int ctrl_setup(struct netfront *nf)
{
    int port;

    nf->ctrl_sring = xengntshr_share_pages(nf->gs, nf->be_domid, 1, &nf->ctrl_ref, 1);
    /* The key and mapping tables: a page the backend may only read. */
    nf->ctrl_data = xengntshr_share_pages(nf->gs, nf->be_domid, 1, &nf->ctrl_data_ref, 0);
    if (!nf->ctrl_sring || !nf->ctrl_data)
        goto fail;
    SHARED_RING_INIT((xen_netif_ctrl_sring_t *)nf->ctrl_sring);
    FRONT_RING_INIT(&nf->ctrl, (xen_netif_ctrl_sring_t *)nf->ctrl_sring, NF_PAGE);
    port = xenevtchn_bind_unbound_port(nf->ev, nf->be_domid);
    if (port < 0)
        goto fail;
    nf->ctrl_port = (evtchn_port_t)port;
    return 0;
fail:
    port = -(errno ? errno : EIO);
    ctrl_teardown(nf);
    return port;
}

static void ctrl_teardown(struct netfront *nf)
{
    if (nf->ctrl_port)
        (void)xenevtchn_unbind(nf->ev, nf->ctrl_port);
    if (nf->ctrl_sring)
        (void)xengntshr_unshare(nf->gs, nf->ctrl_sring, 1);
    if (nf->ctrl_data)
        (void)xengntshr_unshare(nf->gs, nf->ctrl_data, 1);
    nf->ctrl_port = 0;
    nf->ctrl_sring = nf->ctrl_data = NULL;
}

bool netfront_has_ctrl(const struct netfront *nf)
{
    return nf && nf->ctrl_sring && nf->connected;
}

int netfront_ctrl_page(struct netfront *nf, const void *data, size_t len, uint32_t *ref)
{
    if (!netfront_has_ctrl(nf))
        return -ENOTSUP;
    if (len > NF_PAGE)
        return -EINVAL;
    memset(nf->ctrl_data, 0, NF_PAGE);
    memcpy(nf->ctrl_data, data, len);
    *ref = nf->ctrl_data_ref;
    return 0;
}

/* Posts one request (no wait). */
static void ctrl_post(struct netfront *nf, uint16_t id, uint16_t type, uint32_t d0, uint32_t d1,
                      uint32_t d2)
{
    struct xen_netif_ctrl_request *req = RING_GET_REQUEST(&nf->ctrl, nf->ctrl.req_prod_pvt);
    int notify;

    req->id = id;
    req->type = type;
    req->data[0] = d0;
    req->data[1] = d1;
    req->data[2] = d2;
    nf->ctrl.req_prod_pvt++;
    nf->st.ctrl_requests++;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&nf->ctrl, notify);
    if (notify)
        notify_port(nf, nf->ctrl_port);
}

int netfront_ctrl(struct netfront *nf, uint16_t type, uint32_t d0, uint32_t d1, uint32_t d2,
                  uint32_t *data)
{
    uint64_t deadline = xbr_now_ms() + NF_CTRL_WAIT_MS;
    uint16_t id;

    if (!netfront_has_ctrl(nf))
        return -ENOTSUP;
    if (RING_FULL(&nf->ctrl))
        return -EBUSY;
    id = ++nf->ctrl_id;
    ctrl_post(nf, id, type, d0, d1, d2);
    for (;;) {
        RING_IDX prod = __atomic_load_n(&nf->ctrl.sring->rsp_prod, __ATOMIC_ACQUIRE);
        if (prod - nf->ctrl.rsp_cons > RING_SIZE(&nf->ctrl)) {
            nf->broken = true;
            return -EPROTO;
        }
        while (nf->ctrl.rsp_cons != prod) {
            struct xen_netif_ctrl_response rsp;
            RING_COPY_RESPONSE(&nf->ctrl, nf->ctrl.rsp_cons, &rsp);
            nf->ctrl.rsp_cons++;
            nf->st.ctrl_responses++;
            if (rsp.id == id) {
                if (rsp.type != type)
                    return -EPROTO;
                if (data)
                    *data = rsp.data;
                return (int)rsp.status;
            }
        }
        if (now_ms_left(deadline) == 0)
            return -ETIMEDOUT;
        (void)wait_events(nf, XBR_MIN(now_ms_left(deadline), 10));
        rx_backlog_fill(nf);
    }
}

int netfront_set_toeplitz(struct netfront *nf, const uint8_t *key, unsigned keylen,
                          uint32_t flags, const uint32_t *mapping, unsigned n,
                          uint16_t *failed_type)
{
    uint32_t ref, data = 0;
    int r;
#define NF_CTRL_STEP(type_, d0_, d1_, d2_)                                       \
    do {                                                                         \
        r = netfront_ctrl(nf, (type_), (d0_), (d1_), (d2_), &data);              \
        if (r != XEN_NETIF_CTRL_STATUS_SUCCESS) {                                \
            if (failed_type)                                                     \
                *failed_type = (type_);                                          \
            return r < 0 ? r : -EPROTO;                                          \
        }                                                                        \
    } while (0)

    NF_CTRL_STEP(XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM, XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ,
                 0, 0);
    NF_CTRL_STEP(XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS, 0, 0, 0);
    if ((flags & data) != flags) {
        if (failed_type)
            *failed_type = XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS;
        return -EPROTO;
    }
    NF_CTRL_STEP(XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, flags, 0, 0);
    if ((r = netfront_ctrl_page(nf, key, keylen, &ref)) < 0)
        return r;
    NF_CTRL_STEP(XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, ref, keylen, 0);
    if (n) {
        NF_CTRL_STEP(XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE, 0, 0, 0);
        if (data < n) {
            if (failed_type)
                *failed_type = XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE;
            return -EPROTO;
        }
        NF_CTRL_STEP(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, n, 0, 0);
        if ((r = netfront_ctrl_page(nf, mapping, n * sizeof(uint32_t), &ref)) < 0)
            return r;
        NF_CTRL_STEP(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, ref, n, 0);
    }
#undef NF_CTRL_STEP
    return 0;
}

bool netfront_mcast_filtering(const struct netfront *nf)
{
    return nf && nf->o.mcast_control && nf->be_mcast;
}

int netfront_mcast(struct netfront *nf, bool add, const uint8_t mac[6], int16_t *status)
{
    struct nf_queue *q;
    struct nf_slot plan[2];
    uint64_t deadline;
    uint16_t id;
    int r;

    if (!nf || !nf->connected || !nf->nq)
        return -ENOTCONN;
    q = &nf->q[0];
    if ((r = tx_wait_space(nf, q, 2, 1)) < 0)
        return r;
    id = q->tx_free[--q->tx_nfree];
    /* A dummy request: no data, one extra slot (netif.h). */
    memset(plan, 0, sizeof(plan));
    plan[0].id = id;
    plan[0].gref = q->tx_refs[id];
    plan[0].flags = NETTXF_extra_info;
    plan[1].extra = true;
    plan[1].id = -1;
    plan[1].ex.type = add ? XEN_NETIF_EXTRA_TYPE_MCAST_ADD : XEN_NETIF_EXTRA_TYPE_MCAST_DEL;
    memcpy(plan[1].ex.u.mcast.addr, mac, 6);
    commit_plan(nf, q, plan, 2, true);
    deadline = xbr_now_ms() + NF_SEND_WAIT_MS;
    while (q->tx_inflight[id]) {
        tx_gc(nf, q);
        if (nf->broken)
            return -EPROTO;
        if (!q->tx_inflight[id])
            break;
        if (now_ms_left(deadline) == 0)
            return -ETIMEDOUT;
        (void)wait_events(nf, XBR_MIN(now_ms_left(deadline), 10));
        rx_backlog_fill(nf);
    }
    *status = q->tx_status[id];
    return 0;
}

/* xs-write-loop: what a guest can do to its own xenstore directory, as fast
 * as xenstore takes it: rewrite "state" with the value it has (a watch fires
 * on every write), create and rewrite nodes below it, and write other keys.
 * Everything it created is removed at the end; the vif stays Connected. */
static int xs_write_loop(struct netfront *nf)
{
    uint64_t end = xbr_now_ms() + (nf->o.attack_arg ? nf->o.attack_arg : 3000);
    char path[256], val[16];
    int r = 0;

    for (unsigned i = 0; xbr_now_ms() < end; i++) {
        unsigned k = i % 32;
        switch (i % 3) {
        case 0:
            (void)snprintf(path, sizeof(path), "%s/state", nf->fe_path);
            (void)snprintf(val, sizeof(val), "%d", XenbusStateConnected);
            break;
        case 1:
            (void)snprintf(path, sizeof(path), "%s/state/xbr-junk-%u", nf->fe_path, k);
            (void)snprintf(val, sizeof(val), "%u", i);
            break;
        default:
            (void)snprintf(path, sizeof(path), "%s/xbr-junk-%u", nf->fe_path, k);
            (void)snprintf(val, sizeof(val), "%u", i);
            break;
        }
        if (!xs_write(nf->xs, XBT_NULL, path, val, (unsigned)strlen(val))) {
            r = -(errno ? errno : EIO);
            break;
        }
        nf->st.xs_writes++;
        if ((i & 255) == 0) { /* keep the rings serviced meanwhile */
            gc_all(nf);
            rx_backlog_fill(nf);
        }
    }
    for (unsigned k = 0; k < 32; k++) {
        xs_rmf(nf->xs, XBT_NULL, "%s/state/xbr-junk-%u", nf->fe_path, k);
        xs_rmf(nf->xs, XBT_NULL, "%s/xbr-junk-%u", nf->fe_path, k);
    }
    return r;
}

static int ctrl_attack(struct netfront *nf)
{
    if (!netfront_has_ctrl(nf))
        return -ENOTSUP;
    if (nf->o.attack == NF_ATTACK_CTRL_REQ_PROD_JUMP) {
        __atomic_store_n(&nf->ctrl.sring->req_prod,
                         nf->ctrl.rsp_cons + 2 * RING_SIZE(&nf->ctrl), __ATOMIC_RELEASE);
        notify_port(nf, nf->ctrl_port);
        (void)wait_events(nf, 50);
        return 0;
    }
    /* ctrl-flood: keep every free slot filled with a cheap request. */
    uint64_t end = xbr_now_ms() + (nf->o.attack_arg ? nf->o.attack_arg : 2000);
    while (xbr_now_ms() < end) {
        RING_IDX prod = __atomic_load_n(&nf->ctrl.sring->rsp_prod, __ATOMIC_ACQUIRE);
        if (prod - nf->ctrl.rsp_cons > RING_SIZE(&nf->ctrl))
            return -EPROTO;
        nf->st.ctrl_responses += prod - nf->ctrl.rsp_cons;
        nf->ctrl.rsp_cons = prod;
        while (!RING_FULL(&nf->ctrl))
            ctrl_post(nf, ++nf->ctrl_id, XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE, 0, 0, 0);
        notify_port(nf, nf->ctrl_port);
        drain_events(nf);
        gc_all(nf);
        rx_backlog_fill(nf);
    }
    return 0;
}

int netfront_toolstack_set_backend(uint32_t backend_domid, uint32_t domid, uint32_t devid,
                                   const char *key, const char *value)
{
    struct xs_handle *h = xs_open_as(0);
    char path[256];
    int r = 0;

    if (!h)
        return -(errno ? errno : EIO);
    if (snprintf(path, sizeof(path), "/local/domain/%u/backend/vif/%u/%u/%s", backend_domid,
                 domid, devid, key) >= (int)sizeof(path))
        r = -ENAMETOOLONG;
    else if (!xs_write(h, XBT_NULL, path, value, (unsigned)strlen(value)))
        r = -(errno ? errno : EIO);
    xs_close(h);
    return r;
}
