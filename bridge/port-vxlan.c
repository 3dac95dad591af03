/* vxlan port: a VXLAN tunnel endpoint (RFC 7348) on a UDP underlay, IPv4 or
 * IPv6, so that bridges on many hosts make one L2 network with each other,
 * with Linux `vxlan` devices and with Open vSwitch `type=vxlan` ports.
 *
 * Receive: one UDP socket per worker queue bound to local:dstport with
 *   SO_REUSEPORT (the kernel spreads the remote VTEPs' flows over them),
 *   read with recvmmsg straight into the worker's frame buffers. The
 *   sockets belong to an endpoint (address, UDP port) that every vxlan port
 *   on it shares: the port that reads a datagram of another VNI copies it
 *   into that port's ring for the same queue (the same worker serves both).
 *   A datagram is checked (length, RFC 7348 flags, VNI), its source address
 *   becomes a VTEP handle (below) that the bridge learns with the inner
 *   source MAC, and the inner frame goes on as a plain, fully checksummed
 *   frame.
 * Transmit: a raw IPPROTO_UDP socket per queue, because the outer UDP
 *   source port is chosen per inner flow (entropy for the underlay's ECMP
 *   and RSS, as Linux does: a hash of the inner flow mapped into
 *   32768..60999); the kernel adds the IP header. IPv6 gets its UDP checksum
 *   from the kernel (IPV6_CHECKSUM); IPv4 sends none, like Linux's default
 *   (noudpcsum). Datagrams go out in batches with sendmmsg. Frames with a
 *   partial checksum are completed, and GSO (TSO) frames are cut into
 *   segments in software first (gso/): the far end receives plain frames.
 * Where a frame goes: the FDB entry of its destination remembers the VTEP
 *   (struct pkt.remote); broadcast, multicast and unknown unicast go to every
 *   remote of the static list and to the multicast group (head-end
 *   replication). The worker never floods a frame that came from a tunnel to
 *   another tunnel port (split horizon), and a single port holds the whole
 *   mesh, so what a VTEP floods reaches local ports only.
 *
 * VTEP handles: a fixed table of at most XBR_VXLAN_MAX_VTEPS addresses, the
 * static remotes first, then addresses learned from received datagrams; an
 * FDB entry's remote is a handle (index + 1). When the table is full,
 * datagrams from further addresses are dropped and counted, and within a
 * second the control thread clears the learned VTEPs (vtep_table_clear: a
 * new table, the port's learned FDB entries flushed after a grace period, so
 * that no handle ever comes to mean another host). A flood of forged source
 * VTEPs thus fills a bounded table and costs relearning, never memory nor a
 * lasting lockout. Workers add learned addresses lock-free (an entry claimed
 * with a compare-and-swap, published in an open-addressing index with
 * another). */
#include "bridge/private.h"
#include "ctl/ctl.h"
#include "gso/gso.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#define VXLAN_HDR_LEN 8u
#define VXLAN_FLAG_I 0x08000000u
/* Outer overhead on top of the inner frame's L3 MTU: inner Ethernet 14 +
 * VXLAN 8 + UDP 8 + IP 20 (IPv4) or 40 (IPv6). */
#define VXLAN_OVERHEAD_V4 50u
#define VXLAN_OVERHEAD_V6 70u
/* The largest inner frame accepted: a 9000-byte jumbo with a VLAN tag and
 * headroom; longer datagrams are counted as oversized and dropped. */
#define VXLAN_MAX_INNER 9216u
#define VXLAN_SRC_PORT_MIN 32768u
#define VXLAN_SRC_PORT_MAX 61000u /* exclusive, as Linux's default range */
#define VXLAN_IDX_SLOTS (2u * XBR_VXLAN_MAX_VTEPS)
/* Datagrams queued per queue before a sendmmsg. */
#define VXLAN_TX_MSGS 256u
/* Room for segments cut from one GSO frame (64 KiB / smallest MSS). */
#define VXLAN_TX_SCRATCH (XBR_PKT_BUF_SIZE * 2u)

struct vxlan_vtep {
    struct in6_addr addr; /* IPv4 as v4-mapped */
    uint8_t used;         /* claimed (CAS); the address is valid once in idx */
};

/* The VTEP table (see the top), replaced as a whole when it is cleared. */
struct vtep_table {
    uint32_t n_used; /* atomic */
    uint32_t hint;   /* where the next claim starts looking, atomic */
    struct vxlan_vtep vteps[XBR_VXLAN_MAX_VTEPS];
    uint16_t idx[VXLAN_IDX_SLOTS]; /* handle, 0 = empty; CAS */
};

struct vxlan_rxq {
    struct mmsghdr msgs[XBR_BURST];
    struct iovec iov[XBR_BURST];
    struct sockaddr_in6 from[XBR_BURST];
};

/* Datagrams for this port that a sibling on the same endpoint read (queue q
 * of both is worker q's, so the ring needs no synchronisation). */
#define VXLAN_HANDOFF 32u
struct vxlan_handoff {
    unsigned head, tail, taken; /* taken: handed to the worker, freed at rx_done */
    struct {
        uint32_t len;
        struct in6_addr src;
        uint8_t data[VXLAN_HDR_LEN + VXLAN_MAX_INNER];
    } slot[VXLAN_HANDOFF];
};

/* The UDP sockets of one (family, bound address, UDP port), shared by every
 * vxlan port on it: whichever port reads a datagram hands it to the port
 * of its VNI. Control thread, except members (RCU). */
struct vxlan_members {
    unsigned n;
    struct vxlan_port *p[];
};
struct vxlan_endpoint {
    struct vxlan_endpoint *next;
    struct in6_addr bound; /* the local address, or any (ports with a group) */
    uint16_t dstport;
    unsigned refs, n_queues;
    int *fds; /* one per queue */
    struct vxlan_members *members; /* RCU */
};

struct vxlan_txq {
    int fd;
    unsigned n;        /* datagrams queued */
    size_t scratch_used;
    struct mmsghdr msgs[VXLAN_TX_MSGS];
    struct iovec iov[VXLAN_TX_MSGS][2];
    uint8_t hdr[VXLAN_TX_MSGS][16]; /* UDP + VXLAN headers */
    struct sockaddr_in6 to[VXLAN_TX_MSGS];
    uint8_t *scratch; /* completed-checksum copies and GSO segments */
};

struct vxlan_port {
    struct vxlan_port *next; /* every open vxlan port (control thread) */
    struct xbr_vxlan_config cfg;
    bool v6;
    char underlay[IF_NAMESIZE];
    unsigned n_queues;
    struct vtep_table *tab; /* RCU */
    uint64_t vtep_resets;   /* times a full table was cleared (control thread) */
    struct xbr_vxlan_stats stats[XBR_MAX_WORKERS];
    struct vxlan_rxq *rxq;
    struct vxlan_handoff **handoff; /* per queue */
    struct vxlan_endpoint *ep;
    struct vxlan_txq *txq;
};

/* Open vxlan ports and their endpoints (control thread). */
static struct vxlan_port *open_ports;
static struct vxlan_endpoint *endpoints;

/* ---- addresses ---- */

static bool is_v4mapped(const struct in6_addr *a) { return IN6_IS_ADDR_V4MAPPED(a); }

int xbr_vxlan_parse_ip(const char *s, struct in6_addr *out)
{
    struct in_addr v4;
    if (inet_pton(AF_INET, s, &v4) == 1) {
        memset(out, 0, sizeof(*out));
        out->s6_addr[10] = out->s6_addr[11] = 0xff;
        memcpy(&out->s6_addr[12], &v4, 4);
        return 0;
    }
    return inet_pton(AF_INET6, s, out) == 1 ? 0 : -EINVAL;
}

const char *xbr_vxlan_format_ip(const struct in6_addr *a, char buf[INET6_ADDRSTRLEN])
{
    if (is_v4mapped(a))
        return inet_ntop(AF_INET, &a->s6_addr[12], buf, INET6_ADDRSTRLEN);
    return inet_ntop(AF_INET6, a, buf, INET6_ADDRSTRLEN);
}

static bool ip_is_multicast(const struct in6_addr *a)
{
    return is_v4mapped(a) ? (a->s6_addr[12] & 0xf0) == 0xe0 : a->s6_addr[0] == 0xff;
}

static bool ip_is_unspecified(const struct in6_addr *a)
{
    static const uint8_t zero4[4];
    return is_v4mapped(a) ? !memcmp(&a->s6_addr[12], zero4, 4) : IN6_IS_ADDR_UNSPECIFIED(a);
}

static void to_sockaddr(const struct in6_addr *a, uint16_t port, struct sockaddr_in6 *sa,
                        socklen_t *len)
{
    memset(sa, 0, sizeof(*sa));
    if (is_v4mapped(a)) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)sa;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        memcpy(&s4->sin_addr, &a->s6_addr[12], 4);
        *len = sizeof(*s4);
    } else {
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons(port);
        sa->sin6_addr = *a;
        *len = sizeof(*sa);
    }
}

/* ---- configuration (add-port options, also the config file's) ---- */

int xbr_vxlan_parse_args(int argc, char **argv, struct xbr_vxlan_config *c, char *err,
                         size_t errlen)
{
    bool have_vni = false, have_local = false;
    memset(c, 0, sizeof(*c));
    c->dstport = XBR_VXLAN_DEFAULT_PORT;
    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (!v) {
            snprintf(err, errlen, "vxlan option %s needs a value", opt);
            return -EINVAL;
        }
        i++;
        if (!strcmp(opt, "--vni")) {
            if (xbr_parse_uint(v, 0, 0xffffff, &n) < 0) {
                snprintf(err, errlen, "invalid VNI '%s' (0-16777215)", v);
                return -EINVAL;
            }
            c->vni = (uint32_t)n;
            have_vni = true;
        } else if (!strcmp(opt, "--dstport")) {
            if (xbr_parse_uint(v, 1, 65535, &n) < 0) {
                snprintf(err, errlen, "invalid UDP port '%s' (1-65535)", v);
                return -EINVAL;
            }
            c->dstport = (uint16_t)n;
        } else if (!strcmp(opt, "--local")) {
            if (xbr_vxlan_parse_ip(v, &c->local) < 0 || ip_is_multicast(&c->local) ||
                ip_is_unspecified(&c->local)) {
                snprintf(err, errlen, "invalid local address '%s' (a unicast IPv4 or IPv6 address)",
                         v);
                return -EINVAL;
            }
            have_local = true;
        } else if (!strcmp(opt, "--group")) {
            if (xbr_vxlan_parse_ip(v, &c->group) < 0 || !ip_is_multicast(&c->group)) {
                snprintf(err, errlen, "invalid multicast group '%s'", v);
                return -EINVAL;
            }
            c->has_group = true;
        } else if (!strcmp(opt, "--remote")) {
            /* A comma-separated list, bounded: a hostile list is refused,
             * not allocated. */
            char buf[INET6_ADDRSTRLEN];
            const char *s = v;
            while (*s) {
                size_t len = strcspn(s, ",");
                if (c->n_remotes == XBR_VXLAN_MAX_REMOTES) {
                    snprintf(err, errlen, "too many remotes (at most %u)",
                             XBR_VXLAN_MAX_REMOTES);
                    return -E2BIG;
                }
                if (len == 0 || len >= sizeof(buf)) {
                    snprintf(err, errlen, "invalid remote list '%.64s'", v);
                    return -EINVAL;
                }
                memcpy(buf, s, len);
                buf[len] = '\0';
                struct in6_addr a;
                if (xbr_vxlan_parse_ip(buf, &a) < 0 || ip_is_multicast(&a) ||
                    ip_is_unspecified(&a)) {
                    snprintf(err, errlen, "invalid remote address '%s'", buf);
                    return -EINVAL;
                }
                for (unsigned k = 0; k < c->n_remotes; k++)
                    if (!memcmp(&c->remotes[k], &a, sizeof(a))) {
                        snprintf(err, errlen, "remote %s is listed twice", buf);
                        return -EINVAL;
                    }
                c->remotes[c->n_remotes++] = a;
                s += len;
                if (*s == ',')
                    s++;
            }
        } else {
            snprintf(err, errlen,
                     "unknown vxlan option '%s' (--vni N --local IP [--remote IP[,IP...]] "
                     "[--group MCAST] [--dstport PORT])",
                     opt);
            return -EINVAL;
        }
    }
    if (!have_vni || !have_local) {
        snprintf(err, errlen, "a vxlan port needs --vni N and --local IP");
        return -EINVAL;
    }
    bool v6 = !is_v4mapped(&c->local);
    for (unsigned k = 0; k < c->n_remotes; k++)
        if (!is_v4mapped(&c->remotes[k]) != v6) {
            snprintf(err, errlen, "remotes must be of the local address's family");
            return -EINVAL;
        }
    if (c->has_group && !is_v4mapped(&c->group) != v6) {
        snprintf(err, errlen, "the group must be of the local address's family");
        return -EINVAL;
    }
    return 0;
}

int xbr_vxlan_format_args(const struct port *p, char *buf, size_t len)
{
    const struct vxlan_port *vp = p->priv;
    return xbr_vxlan_format_config(&vp->cfg, buf, len);
}

int xbr_vxlan_format_config(const struct xbr_vxlan_config *c, char *buf, size_t len)
{
    char a[INET6_ADDRSTRLEN];
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - XBR_MIN(o, len), "--vni %u --local %s", c->vni,
                          xbr_vxlan_format_ip(&c->local, a));
    for (unsigned k = 0; k < c->n_remotes; k++)
        o += (size_t)snprintf(buf + o, len - XBR_MIN(o, len), "%s%s", k ? "," : " --remote ",
                              xbr_vxlan_format_ip(&c->remotes[k], a));
    if (c->has_group)
        o += (size_t)snprintf(buf + o, len - XBR_MIN(o, len), " --group %s",
                              xbr_vxlan_format_ip(&c->group, a));
    if (c->dstport != XBR_VXLAN_DEFAULT_PORT)
        o += (size_t)snprintf(buf + o, len - XBR_MIN(o, len), " --dstport %u", c->dstport);
    return o < len ? 0 : -ENOSPC;
}

bool xbr_vxlan_config_equal(const struct port *p, const struct xbr_vxlan_config *c)
{
    const struct xbr_vxlan_config *o = &((const struct vxlan_port *)p->priv)->cfg;
    return o->vni == c->vni && o->dstport == c->dstport &&
           !memcmp(&o->local, &c->local, sizeof(c->local)) && o->has_group == c->has_group &&
           (!c->has_group || !memcmp(&o->group, &c->group, sizeof(c->group))) &&
           o->n_remotes == c->n_remotes &&
           !memcmp(o->remotes, c->remotes, c->n_remotes * sizeof(c->remotes[0]));
}

/* ---- VTEP table ---- */

static inline uint32_t addr_hash(const struct in6_addr *a)
{
    uint64_t x, y;
    memcpy(&x, a->s6_addr, 8);
    memcpy(&y, a->s6_addr + 8, 8);
    uint64_t h = (x ^ (y * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
    return (uint32_t)(h >> 32);
}

/* Claims a free entry: its handle, or 0 when the table is full. */
static uint32_t vtep_claim(struct vtep_table *t)
{
    uint32_t start = __atomic_load_n(&t->hint, __ATOMIC_RELAXED);
    for (uint32_t k = 0; k < XBR_VXLAN_MAX_VTEPS; k++) {
        uint32_t i = (start + k) % XBR_VXLAN_MAX_VTEPS;
        uint8_t zero = 0;
        if (!__atomic_load_n(&t->vteps[i].used, __ATOMIC_RELAXED) &&
            __atomic_compare_exchange_n(&t->vteps[i].used, &zero, 1, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            __atomic_store_n(&t->hint, i + 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&t->n_used, 1, __ATOMIC_RELAXED);
            return i + 1;
        }
    }
    return 0;
}

static void vtep_unclaim(struct vtep_table *t, uint32_t h)
{
    __atomic_store_n(&t->vteps[h - 1].used, 0, __ATOMIC_RELEASE);
    __atomic_fetch_sub(&t->n_used, 1, __ATOMIC_RELAXED);
}

/* The handle of addr in t, adding it when learn and there is room; 0 when
 * the table is full (or !learn and unknown). Any worker, lock-free. */
static uint32_t vtep_handle(struct vtep_table *t, const struct in6_addr *addr, bool learn)
{
    uint32_t slot = addr_hash(addr) & (VXLAN_IDX_SLOTS - 1);
    uint32_t mine = 0;
    for (unsigned probe = 0; probe < VXLAN_IDX_SLOTS; probe++) {
        uint16_t *s = &t->idx[(slot + probe) & (VXLAN_IDX_SLOTS - 1)];
        uint16_t h = __atomic_load_n(s, __ATOMIC_ACQUIRE);
        if (h == 0) {
            if (!learn)
                return 0;
            if (!mine) {
                if (!(mine = vtep_claim(t)))
                    return 0;
                t->vteps[mine - 1].addr = *addr;
            }
            uint16_t expect = 0;
            if (__atomic_compare_exchange_n(s, &expect, (uint16_t)mine, false, __ATOMIC_RELEASE,
                                            __ATOMIC_ACQUIRE))
                return mine;
            h = expect; /* another worker took this slot: look at what it put */
        }
        if (!memcmp(&t->vteps[h - 1].addr, addr, sizeof(*addr))) {
            if (mine)
                vtep_unclaim(t, mine); /* never published */
            return h;
        }
    }
    if (mine)
        vtep_unclaim(t, mine);
    return 0;
}

uint32_t xbr_vxlan_remote_handle(struct port *p, const struct in6_addr *addr)
{
    struct vxlan_port *vp = p->priv;
    return vtep_handle(rcu_dereference(vp->tab), addr, true);
}

bool xbr_vxlan_remote_addr(const struct port *p, uint32_t handle, struct in6_addr *addr)
{
    const struct vxlan_port *vp = p->priv;
    const struct vtep_table *t = rcu_dereference(vp->tab);
    if (handle == FDB_REMOTE_NONE || handle > XBR_VXLAN_MAX_VTEPS ||
        !__atomic_load_n(&t->vteps[handle - 1].used, __ATOMIC_ACQUIRE))
        return false;
    *addr = t->vteps[handle - 1].addr;
    return true;
}

/* A full table is cleared of learned VTEPs (control thread, from refresh):
 * a new table keeps, under the same handles, the static remotes and the
 * VTEPs static FDB entries name; once no worker can hold a handle of the
 * old one, the port's learned FDB entries go (their next frames learn them
 * again) and the old table is freed. So a flood of forged source addresses
 * costs the mesh a relearning, never a lockout of new VTEPs. */
struct pin_walk {
    uint32_t port;
    bool *pinned;
};

static int pin_static(const struct fdb_entry_info *e, void *aux)
{
    struct pin_walk *w = aux;
    if (e->is_static && e->port == w->port && e->remote != FDB_REMOTE_NONE &&
        e->remote <= XBR_VXLAN_MAX_VTEPS)
        w->pinned[e->remote - 1] = true;
    return 0;
}

static void vtep_table_clear(struct port *p)
{
    struct vxlan_port *vp = p->priv;
    struct vtep_table *old = vp->tab, *t = xbr_xzalloc(sizeof(*t));
    bool *pinned = xbr_xzalloc(XBR_VXLAN_MAX_VTEPS * sizeof(*pinned));
    struct pin_walk w = {.port = p->no, .pinned = pinned};
    (void)fdb_foreach(p->bridge->fdb, xbr_now_coarse_s(), pin_static, &w);
    for (unsigned k = 0; k < vp->cfg.n_remotes; k++) {
        uint32_t h = vtep_handle(old, &vp->cfg.remotes[k], false);
        if (h)
            pinned[h - 1] = true;
    }
    for (uint32_t i = 0; i < XBR_VXLAN_MAX_VTEPS; i++) {
        if (!pinned[i] || !old->vteps[i].used)
            continue;
        t->vteps[i] = old->vteps[i];
        t->n_used++;
        uint32_t slot = addr_hash(&t->vteps[i].addr) & (VXLAN_IDX_SLOTS - 1);
        while (t->idx[slot])
            slot = (slot + 1) & (VXLAN_IDX_SLOTS - 1);
        t->idx[slot] = (uint16_t)(i + 1);
    }
    free(pinned);
    rcu_assign_pointer(vp->tab, t);
    urcu_qsbr_synchronize_rcu();
    size_t flushed = fdb_flush(p->bridge->fdb, p->no, false);
    free(old);
    vp->vtep_resets++;
    xbr_warn("%s: VTEP table full (%u addresses): cleared, %u kept, %zu learned entries to "
             "learn again",
             p->name, XBR_VXLAN_MAX_VTEPS, t->n_used, flushed);
}

/* ---- underlay ---- */

/* The interface that holds the local address, and its MTU. */
static int underlay_find(const struct in6_addr *local, char name[IF_NAMESIZE], uint32_t *mtu,
                         bool *up)
{
    struct ifaddrs *ifs, *i;
    int r = -EADDRNOTAVAIL;
    if (getifaddrs(&ifs) < 0)
        return -errno;
    for (i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr)
            continue;
        bool match = false;
        if (i->ifa_addr->sa_family == AF_INET && is_v4mapped(local))
            match = !memcmp(&((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr,
                            &local->s6_addr[12], 4);
        else if (i->ifa_addr->sa_family == AF_INET6 && !is_v4mapped(local))
            match = !memcmp(&((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr, local,
                            sizeof(*local));
        if (match) {
            xbr_strlcpy(name, i->ifa_name, IF_NAMESIZE);
            *up = (i->ifa_flags & IFF_UP) != 0;
            r = 0;
            break;
        }
    }
    freeifaddrs(ifs);
    if (r < 0)
        return r;
    struct ifreq ifr = {0};
    xbr_strlcpy(ifr.ifr_name, name, sizeof(ifr.ifr_name));
    r = xbr_if_ioctl(SIOCGIFMTU, &ifr);
    if (r < 0)
        return r;
    *mtu = (uint32_t)ifr.ifr_mtu;
    return 0;
}

static void set_mtu(struct port *p, struct vxlan_port *vp, uint32_t underlay_mtu)
{
    uint32_t over = vp->v6 ? VXLAN_OVERHEAD_V6 : VXLAN_OVERHEAD_V4;
    p->mtu = underlay_mtu > over + 68 ? underlay_mtu - over : 68;
}

static int rx_socket(bool v6, const struct in6_addr *bound, uint16_t dstport, char *err,
                     size_t errlen)
{
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    IPPROTO_UDP);
    if (fd < 0) {
        snprintf(err, errlen, "UDP socket: %s", strerror(errno));
        return -errno;
    }
    int one = 1, rcvbuf = 4 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (v6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    struct sockaddr_in6 sa;
    socklen_t len;
    to_sockaddr(bound, dstport, &sa, &len);
    if (bind(fd, (struct sockaddr *)&sa, len) < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot bind UDP port %u: %s", dstport, strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

/* Joins (or leaves) the port's group on every socket of its endpoint. */
static int group_membership(const struct vxlan_port *vp, bool join, char *err, size_t errlen)
{
    for (unsigned q = 0; q < vp->ep->n_queues; q++) {
        int r, fd = vp->ep->fds[q];
        if (vp->v6) {
            struct ipv6_mreq m = {.ipv6mr_multiaddr = vp->cfg.group,
                                  .ipv6mr_interface = if_nametoindex(vp->underlay)};
            r = setsockopt(fd, IPPROTO_IPV6, join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP,
                           &m, sizeof(m));
        } else {
            struct ip_mreq m;
            memcpy(&m.imr_multiaddr, &vp->cfg.group.s6_addr[12], 4);
            memcpy(&m.imr_interface, &vp->cfg.local.s6_addr[12], 4);
            r = setsockopt(fd, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &m,
                           sizeof(m));
        }
        /* A sibling with the same group joined already. */
        if (r < 0 && join && errno != EADDRINUSE) {
            snprintf(err, errlen, "cannot join the group: %s", strerror(errno));
            return -errno;
        }
    }
    return 0;
}

static void members_publish(struct vxlan_endpoint *ep, struct vxlan_port *add,
                            const struct vxlan_port *drop)
{
    struct vxlan_members *old = ep->members;
    unsigned n = old ? old->n : 0;
    struct vxlan_members *m = xbr_xzalloc(sizeof(*m) + (n + 1) * sizeof(m->p[0]));
    for (unsigned i = 0; i < n; i++)
        if (old->p[i] != drop)
            m->p[m->n++] = old->p[i];
    if (add)
        m->p[m->n++] = add;
    rcu_assign_pointer(ep->members, m);
    if (old) {
        /* No worker may still hand a datagram to a port that left. */
        urcu_qsbr_synchronize_rcu();
        free(old);
    }
}

/* The endpoint for vp (created with its sockets if new), vp a member. */
static int endpoint_attach(struct vxlan_port *vp, unsigned n_queues, char *err, size_t errlen)
{
    struct in6_addr bound = vp->cfg.local;
    if (vp->cfg.has_group) {
        /* Every address of the port: the group's datagrams arrive with the
         * group as destination. */
        struct in6_addr any = IN6ADDR_ANY_INIT;
        if (!vp->v6)
            (void)xbr_vxlan_parse_ip("0.0.0.0", &any);
        bound = any;
    }
    struct vxlan_endpoint *ep;
    for (ep = endpoints; ep; ep = ep->next)
        if (ep->dstport == vp->cfg.dstport && !memcmp(&ep->bound, &bound, sizeof(bound)))
            break;
    if (ep) {
        const struct vxlan_members *m = ep->members;
        for (unsigned i = 0; i < m->n; i++)
            if (m->p[i]->cfg.vni == vp->cfg.vni) {
                char a[INET6_ADDRSTRLEN];
                snprintf(err, errlen, "VNI %u already has a vxlan port on %s UDP port %u",
                         vp->cfg.vni, xbr_vxlan_format_ip(&bound, a), vp->cfg.dstport);
                return -EADDRINUSE;
            }
        if (ep->n_queues != n_queues) {
            snprintf(err, errlen, "internal: endpoint queue count differs");
            return -EINVAL;
        }
    } else {
        ep = xbr_xzalloc(sizeof(*ep));
        ep->bound = bound;
        ep->dstport = vp->cfg.dstport;
        ep->n_queues = n_queues;
        ep->fds = xbr_xzalloc(n_queues * sizeof(*ep->fds));
        for (unsigned q = 0; q < n_queues; q++)
            ep->fds[q] = -1;
        for (unsigned q = 0; q < n_queues; q++) {
            int fd = rx_socket(vp->v6, &bound, vp->cfg.dstport, err, errlen);
            if (fd < 0) {
                for (unsigned k = 0; k < q; k++)
                    close(ep->fds[k]);
                free(ep->fds);
                free(ep);
                return fd;
            }
            ep->fds[q] = fd;
        }
        ep->next = endpoints;
        endpoints = ep;
    }
    vp->ep = ep;
    ep->refs++;
    if (vp->cfg.has_group) {
        int r = group_membership(vp, true, err, errlen);
        if (r < 0)
            return r; /* vxlan_close detaches */
    }
    members_publish(ep, vp, NULL);
    return 0;
}

static void endpoint_detach(struct vxlan_port *vp)
{
    struct vxlan_endpoint *ep = vp->ep;
    if (!ep)
        return;
    members_publish(ep, NULL, vp);
    vp->ep = NULL;
    if (--ep->refs) {
        bool shared_group = false;
        for (unsigned i = 0; i < ep->members->n; i++)
            shared_group |= ep->members->p[i]->cfg.has_group &&
                            !memcmp(&ep->members->p[i]->cfg.group, &vp->cfg.group,
                                    sizeof(vp->cfg.group));
        if (vp->cfg.has_group && !shared_group) {
            vp->ep = ep; /* for group_membership */
            (void)group_membership(vp, false, NULL, 0);
            vp->ep = NULL;
        }
        return;
    }
    for (struct vxlan_endpoint **pp = &endpoints; *pp; pp = &(*pp)->next)
        if (*pp == ep) {
            *pp = ep->next;
            break;
        }
    for (unsigned q = 0; q < ep->n_queues; q++)
        close(ep->fds[q]);
    free(ep->fds);
    free(ep->members);
    free(ep);
}

static int tx_socket(const struct vxlan_port *vp, char *err, size_t errlen)
{
    int fam = vp->v6 ? AF_INET6 : AF_INET;
    int fd = socket(fam, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    if (fd < 0) {
        snprintf(err, errlen, "raw UDP socket (for per-flow source ports): %s",
                 strerror(errno));
        return -errno;
    }
    /* Send only: a raw socket gets a copy of every UDP datagram, which a
     * filter that accepts nothing discards. */
    struct sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);
    struct sock_fprog prog = {.len = 1, .filter = &drop};
    int sndbuf = 4 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    if (vp->v6) {
        int off = 6; /* the kernel fills in the UDP checksum */
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_CHECKSUM, &off, sizeof(off)) < 0) {
            int e = errno;
            snprintf(err, errlen, "IPV6_CHECKSUM: %s", strerror(e));
            close(fd);
            return -e;
        }
        int hops = 64, ifindex = (int)if_nametoindex(vp->underlay);
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops));
        /* The group is reached on the underlay, not the default route's. */
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof(ifindex));
        /* Our own floods must not come back to our receive sockets. */
        int loop = 0;
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop, sizeof(loop));
    } else {
        /* Like Linux's vxlan: no DF, the underlay may fragment. */
        int pmtu = IP_PMTUDISC_DONT, ttl = 64;
        (void)setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
        (void)setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl));
        struct in_addr ifaddr;
        memcpy(&ifaddr, &vp->cfg.local.s6_addr[12], 4);
        (void)setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &ifaddr, sizeof(ifaddr));
        /* Our own floods must not come back to our receive sockets. */
        unsigned char loop = 0;
        (void)setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof(loop));
    }
    struct sockaddr_in6 sa;
    socklen_t len;
    to_sockaddr(&vp->cfg.local, 0, &sa, &len);
    if (bind(fd, (struct sockaddr *)&sa, len) < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot bind to the local address: %s", strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

static void vxlan_close(struct port *p)
{
    struct vxlan_port *vp = p->priv;
    if (!vp)
        return;
    for (struct vxlan_port **pp = &open_ports; *pp; pp = &(*pp)->next)
        if (*pp == vp) {
            *pp = vp->next;
            break;
        }
    endpoint_detach(vp);
    for (unsigned q = 0; q < vp->n_queues; q++) {
        if (vp->txq && vp->txq[q].fd >= 0)
            close(vp->txq[q].fd);
        if (vp->txq)
            free(vp->txq[q].scratch);
        if (vp->handoff)
            free(vp->handoff[q]);
    }
    free(vp->handoff);
    free(vp->rxq);
    free(vp->txq);
    free(vp->tab);
    free(vp);
    p->priv = NULL;
}

static int vxlan_open(struct port *p, const struct port_open_args *args, char *err,
                      size_t errlen)
{
    const struct xbr_vxlan_config *cfg = args->class_arg;
    if (!cfg) {
        snprintf(err, errlen, "a vxlan port needs --vni N --local IP");
        return -EINVAL;
    }
    struct vxlan_port *vp = xbr_xzalloc(sizeof(*vp));
    vp->cfg = *cfg;
    vp->v6 = !is_v4mapped(&cfg->local);
    vp->n_queues = args->n_queues;
    p->priv = vp;
    uint32_t mtu;
    bool up;
    int r = underlay_find(&cfg->local, vp->underlay, &mtu, &up);
    if (r < 0) {
        char a[INET6_ADDRSTRLEN];
        snprintf(err, errlen, "local address %s is on no interface here: %s",
                 xbr_vxlan_format_ip(&cfg->local, a), strerror(-r));
        vxlan_close(p);
        return r;
    }
    set_mtu(p, vp, mtu);
    p->link_up = up;
    /* The static remotes take the first handles. */
    vp->tab = xbr_xzalloc(sizeof(*vp->tab));
    for (unsigned k = 0; k < cfg->n_remotes; k++)
        (void)vtep_handle(vp->tab, &cfg->remotes[k], true);
    vp->rxq = xbr_xzalloc(vp->n_queues * sizeof(*vp->rxq));
    vp->txq = xbr_xzalloc(vp->n_queues * sizeof(*vp->txq));
    vp->handoff = xbr_xzalloc(vp->n_queues * sizeof(*vp->handoff));
    for (unsigned q = 0; q < vp->n_queues; q++) {
        vp->txq[q].fd = -1;
        vp->handoff[q] = xbr_xzalloc(sizeof(*vp->handoff[q]));
    }
    for (unsigned q = 0; q < vp->n_queues; q++) {
        if ((r = tx_socket(vp, err, errlen)) < 0) {
            vxlan_close(p);
            return r;
        }
        vp->txq[q].fd = r;
        vp->txq[q].scratch = malloc(VXLAN_TX_SCRATCH);
        if (!vp->txq[q].scratch) {
            snprintf(err, errlen, "out of memory");
            vxlan_close(p);
            return -ENOMEM;
        }
    }
    /* A random locally administered unicast address: the port's BPDU
     * source, should STP be let through the tunnel. */
    if (getrandom(p->mac, 6, 0) != 6)
        memset(p->mac, 0x5a, 6);
    p->mac[0] = (uint8_t)((p->mac[0] & 0xfe) | 0x02);
    /* Last: from here on siblings hand datagrams to this port. */
    if ((r = endpoint_attach(vp, vp->n_queues, err, errlen)) < 0) {
        vxlan_close(p);
        return r;
    }
    vp->next = open_ports;
    open_ports = vp;
    return 0;
}

static int vxlan_refresh(struct port *p)
{
    struct vxlan_port *vp = p->priv;
    char name[IF_NAMESIZE];
    uint32_t mtu;
    bool up;
    if (__atomic_load_n(&vp->tab->n_used, __ATOMIC_RELAXED) >= XBR_VXLAN_MAX_VTEPS)
        vtep_table_clear(p);
    /* The local address going away is a link down, not the port's end:
     * it comes back with the address. */
    if (underlay_find(&vp->cfg.local, name, &mtu, &up) < 0) {
        p->link_up = false;
        return 0;
    }
    set_mtu(p, vp, mtu);
    p->link_up = up;
    return 0;
}

/* ---- receive ---- */

/* The inner frame of an accepted datagram of this port into o (data points
 * into memory that stays until rx_done); false when dropped (counted). */
static bool rx_accept(struct vxlan_port *vp, unsigned q, struct vtep_table *tab, struct pkt *o,
                      uint8_t *d, uint32_t len, const struct in6_addr *src)
{
    struct xbr_vxlan_stats *st = &vp->stats[q];
    if (XBR_UNLIKELY(len < VXLAN_HDR_LEN + 14)) {
        st->rx_inner_runt++;
        return false;
    }
    uint32_t h = vtep_handle(tab, src, true);
    if (XBR_UNLIKELY(h == 0)) {
        st->rx_vtep_limit++;
        return false;
    }
    o->data = d + VXLAN_HDR_LEN;
    o->len = len - VXLAN_HDR_LEN;
    o->remote = h;
    memset(&o->vnet, 0, sizeof(o->vnet));
    o->flags = 0;
    return true;
}

/* What siblings handed over: frames straight from the ring's slots. */
static unsigned rx_handoff(struct port *p, unsigned q, struct pkt *pkts, unsigned n)
{
    struct vxlan_port *vp = p->priv;
    struct vxlan_handoff *h = vp->handoff[q];
    struct vtep_table *tab = rcu_dereference(vp->tab);
    unsigned out = 0, dropped = 0;
    while (h->tail + h->taken != h->head && out < n) {
        unsigned i = (h->tail + h->taken++) % VXLAN_HANDOFF;
        if (rx_accept(vp, q, tab, &pkts[out], h->slot[i].data, h->slot[i].len, &h->slot[i].src))
            out++;
        else
            dropped++;
    }
    p->stats[q].rx_drop_port += dropped;
    return out;
}

static void vxlan_rx_done(struct port *p, unsigned q)
{
    struct vxlan_handoff *h = ((struct vxlan_port *)p->priv)->handoff[q];
    h->tail += h->taken;
    h->taken = 0;
}

/* The sibling port of vni on the endpoint, or NULL. */
static struct vxlan_port *member_of(const struct vxlan_endpoint *ep, uint32_t vni)
{
    const struct vxlan_members *m = rcu_dereference(ep->members);
    for (unsigned i = 0; i < m->n; i++)
        if (m->p[i]->cfg.vni == vni)
            return m->p[i];
    return NULL;
}

static unsigned vxlan_rx_burst(struct port *p, unsigned q, struct pkt *pkts, unsigned n)
{
    struct vxlan_port *vp = p->priv;
    struct vxlan_rxq *r = &vp->rxq[q];
    struct xbr_vxlan_stats *st = &vp->stats[q];
    n = XBR_MIN(n, XBR_BURST);
    if (vp->handoff[q]->tail != vp->handoff[q]->head) {
        unsigned got = rx_handoff(p, q, pkts, n);
        if (got)
            return got;
    }
    struct vtep_table *tab = rcu_dereference(vp->tab);
    for (unsigned i = 0; i < n; i++) {
        r->iov[i] = (struct iovec){.iov_base = pkts[i].buf,
                                   .iov_len = VXLAN_HDR_LEN + VXLAN_MAX_INNER};
        r->msgs[i].msg_hdr = (struct msghdr){.msg_name = &r->from[i],
                                             .msg_namelen = sizeof(r->from[i]),
                                             .msg_iov = &r->iov[i],
                                             .msg_iovlen = 1};
    }
    int got = recvmmsg(vp->ep->fds[q], r->msgs, n, MSG_DONTWAIT, NULL);
    if (got <= 0)
        return 0;
    unsigned out = 0, dropped = 0;
    for (int i = 0; i < got; i++) {
        const struct msghdr *m = &r->msgs[i].msg_hdr;
        uint32_t len = r->msgs[i].msg_len;
        uint8_t *d = pkts[i].buf;
        if (XBR_UNLIKELY(m->msg_flags & MSG_TRUNC)) {
            st->rx_oversized++;
            dropped++;
            continue;
        }
        if (XBR_UNLIKELY(len < VXLAN_HDR_LEN)) {
            st->rx_truncated++;
            dropped++;
            continue;
        }
        uint32_t w0, w1;
        memcpy(&w0, d, 4);
        memcpy(&w1, d + 4, 4);
        w0 = ntohl(w0);
        w1 = ntohl(w1);
        /* RFC 7348: the I flag and nothing else; the reserved byte after
         * the VNI zero (extensions such as GBP or GPE are not spoken). */
        if (XBR_UNLIKELY(w0 != VXLAN_FLAG_I || (w1 & 0xff))) {
            st->rx_bad_flags++;
            dropped++;
            continue;
        }
        struct in6_addr src;
        if (r->from[i].sin6_family == AF_INET) {
            const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)&r->from[i];
            memset(&src, 0, sizeof(src));
            src.s6_addr[10] = src.s6_addr[11] = 0xff;
            memcpy(&src.s6_addr[12], &s4->sin_addr, 4);
        } else {
            src = r->from[i].sin6_addr;
        }
        if ((w1 >> 8) != vp->cfg.vni) {
            /* A sibling's (same endpoint): into its ring for queue q. */
            struct vxlan_port *sib = member_of(vp->ep, w1 >> 8);
            struct vxlan_handoff *h = sib ? sib->handoff[q] : NULL;
            if (!sib) {
                st->rx_wrong_vni++;
            } else if (h->head - h->tail == VXLAN_HANDOFF) {
                sib->stats[q].rx_handoff_full++;
            } else {
                unsigned k = h->head % VXLAN_HANDOFF;
                memcpy(h->slot[k].data, d, len);
                h->slot[k].len = len;
                h->slot[k].src = src;
                h->head++;
                continue; /* not this port's drop */
            }
            dropped++;
            continue;
        }
        struct pkt *o = &pkts[out];
        if (o != &pkts[i]) {
            /* A datagram before this one was not ours: move the buffers so
             * that out's buffer holds this frame (swap, keep both). */
            uint8_t *b = o->buf;
            o->buf = pkts[i].buf;
            pkts[i].buf = b;
        }
        if (rx_accept(vp, q, tab, o, o->buf, len, &src))
            out++;
        else
            dropped++;
    }
    p->stats[q].rx_drop_port += dropped;
    return out;
}

static bool vxlan_arm(struct port *p, unsigned q, uint64_t *wake_ns)
{
    (void)wake_ns;
    const struct vxlan_handoff *h = ((struct vxlan_port *)p->priv)->handoff[q];
    return h->tail != h->head; /* a sibling left frames: do not sleep */
}

static int vxlan_wait_fd(struct port *p, unsigned q)
{
    /* The endpoint's socket, the same for every port on it (the worker's
     * epoll takes it once). */
    return ((struct vxlan_port *)p->priv)->ep->fds[q];
}

/* ---- transmit ---- */

static inline void put16(uint8_t *d, uint16_t v)
{
    d[0] = (uint8_t)(v >> 8);
    d[1] = (uint8_t)v;
}

static inline uint16_t get16(const uint8_t *d) { return (uint16_t)(d[0] << 8 | d[1]); }

/* Linux's udp_flow_src_port: a hash of the inner flow (addresses, protocol
 * and ports for IP; MAC addresses and EtherType otherwise) scaled into the
 * source port range, so one flow keeps one underlay path. */
static uint16_t flow_src_port(const uint8_t *f, uint32_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    uint32_t l2 = 14;
    uint16_t type = get16(f + 12);
    if ((type == 0x8100 || type == 0x88a8) && len >= 18) {
        type = get16(f + 16);
        l2 = 18;
    }
    const uint8_t *k = f;
    size_t klen = 14;
    uint8_t buf[40];
    if (type == 0x0800 && len >= l2 + 20) {
        const uint8_t *ip = f + l2;
        uint32_t ihl = (ip[0] & 0xfu) * 4u;
        memcpy(buf, ip + 12, 8);
        buf[8] = ip[9];
        klen = 9;
        bool frag = (get16(ip + 6) & 0x3fff) != 0;
        if (!frag && (ip[9] == 6 || ip[9] == 17) && len >= l2 + ihl + 4) {
            memcpy(buf + 9, ip + ihl, 4);
            klen = 13;
        }
        k = buf;
    } else if (type == 0x86dd && len >= l2 + 40) {
        const uint8_t *ip = f + l2;
        memcpy(buf, ip + 8, 32);
        buf[32] = ip[6];
        klen = 33;
        if ((ip[6] == 6 || ip[6] == 17) && len >= l2 + 44) {
            memcpy(buf + 33, ip + 40, 4);
            klen = 37;
        }
        k = buf;
    }
    for (size_t i = 0; i < klen; i++)
        h = (h ^ k[i]) * 0x100000001b3ull;
    uint32_t h32 = (uint32_t)(h ^ (h >> 32));
    return (uint16_t)((((uint64_t)h32 * (VXLAN_SRC_PORT_MAX - VXLAN_SRC_PORT_MIN)) >> 32) +
                      VXLAN_SRC_PORT_MIN);
}

/* Sends what is queued. reset_scratch: the queued frames were the last
 * users of the scratch copies (not so in the middle of one frame's
 * replication, whose copy the next datagrams still point at). */
static void tx_send(struct vxlan_port *vp, unsigned q, bool reset_scratch)
{
    struct vxlan_txq *t = &vp->txq[q];
    unsigned done = 0;
    while (done < t->n) {
        int r = sendmmsg(t->fd, t->msgs + done, t->n - done, MSG_DONTWAIT);
        if (r <= 0) {
            if (r < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
                /* The socket's buffer is full: the rest would fail alike. */
                vp->stats[q].tx_errors += t->n - done;
                break;
            }
            /* The first unsent datagram failed (no route, too big): count
             * it and go on with the rest. */
            vp->stats[q].tx_errors++;
            done++;
            continue;
        }
        done += (unsigned)r;
    }
    t->n = 0;
    if (reset_scratch)
        t->scratch_used = 0;
}

/* Queues one datagram of frame f (len bytes) to addr. */
static void tx_queue(struct vxlan_port *vp, unsigned q, const struct in6_addr *addr,
                     const uint8_t *f, uint32_t len, uint16_t sport)
{
    struct vxlan_txq *t = &vp->txq[q];
    if (t->n == VXLAN_TX_MSGS)
        tx_send(vp, q, false);
    unsigned i = t->n++;
    uint8_t *h = t->hdr[i];
    put16(h, sport);
    put16(h + 2, vp->cfg.dstport);
    put16(h + 4, (uint16_t)(16 + len));
    put16(h + 6, 0); /* IPv4: none (Linux's default); IPv6: the kernel's */
    uint32_t w0 = htonl(VXLAN_FLAG_I), w1 = htonl(vp->cfg.vni << 8);
    memcpy(h + 8, &w0, 4);
    memcpy(h + 12, &w1, 4);
    socklen_t alen;
    /* A raw socket's "port" is the protocol; the UDP header is ours. */
    to_sockaddr(addr, 0, &t->to[i], &alen);
    t->iov[i][0] = (struct iovec){.iov_base = h, .iov_len = 16};
    t->iov[i][1] = (struct iovec){.iov_base = (void *)(uintptr_t)f, .iov_len = len};
    t->msgs[i].msg_hdr = (struct msghdr){
        .msg_name = &t->to[i], .msg_namelen = alen, .msg_iov = t->iov[i], .msg_iovlen = 2};
}

/* Sends frame f to its VTEP, or to every static remote and the group. */
static void tx_frame(struct port *p, unsigned q, const struct pkt *pk, const uint8_t *f,
                     uint32_t len)
{
    struct vxlan_port *vp = p->priv;
    uint16_t sport = flow_src_port(f, len);
    struct in6_addr a;
    if (pk->remote != FDB_REMOTE_NONE && xbr_vxlan_remote_addr(p, pk->remote, &a)) {
        tx_queue(vp, q, &a, f, len, sport);
        return;
    }
    for (unsigned k = 0; k < vp->cfg.n_remotes; k++)
        tx_queue(vp, q, &vp->cfg.remotes[k], f, len, sport);
    if (vp->cfg.has_group)
        tx_queue(vp, q, &vp->cfg.group, f, len, sport);
}

/* Software TSO (gso/): the segments of a TCP super-frame, into scratch,
 * each sent as it is made. Returns false when the frame is malformed. */
static bool tx_gso_tcp(struct port *p, unsigned q, const struct pkt *pk)
{
    struct vxlan_port *vp = p->priv;
    struct vxlan_txq *t = &vp->txq[q];
    struct gso_tcp g;
    /* An MSS below TCP's floor (Linux's tcp_min_snd_mss, 48) would let one
     * frame turn into thousands of datagrams. */
    if (pk->vnet.gso_size < 48 ||
        gso_tcp_init(&g, pk->data, pk->len, pk->vnet.gso_type, pk->vnet.gso_size) < 0)
        return false;
    uint32_t slen;
    while ((slen = gso_tcp_next_len(&g)) != 0) {
        if (t->scratch_used + slen > VXLAN_TX_SCRATCH || t->n == VXLAN_TX_MSGS)
            tx_send(vp, q, true);
        uint8_t *s = t->scratch + t->scratch_used;
        t->scratch_used += (slen + 63) & ~63u;
        (void)gso_tcp_next(&g, s);
        tx_frame(p, q, pk, s, slen);
    }
    vp->stats[q].tx_gso_segmented++;
    return true;
}

static unsigned vxlan_tx_burst(struct port *p, unsigned q, struct pkt *const *pkts, unsigned n)
{
    struct vxlan_port *vp = p->priv;
    struct vxlan_txq *t = &vp->txq[q];
    unsigned sent = 0;
    for (unsigned i = 0; i < n; i++) {
        const struct pkt *pk = pkts[i];
        if (pk->vnet.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
            if (!(pk->vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) || !tx_gso_tcp(p, q, pk)) {
                vp->stats[q].tx_bad_offload++;
                continue;
            }
            sent++;
            continue;
        }
        if (pk->vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
            /* Complete the checksum on a copy: the frame itself may still
             * go to other ports, partial. */
            uint32_t cs = pk->vnet.csum_start, co = pk->vnet.csum_offset;
            if (cs + co + 2 > pk->len) {
                vp->stats[q].tx_bad_offload++;
                continue;
            }
            if (t->scratch_used + pk->len > VXLAN_TX_SCRATCH || t->n == VXLAN_TX_MSGS)
                tx_send(vp, q, true);
            uint8_t *s = t->scratch + t->scratch_used;
            t->scratch_used += (pk->len + 63) & ~63u;
            memcpy(s, pk->data, pk->len);
            /* The field holds the pseudo-header sum; summing it with the
             * rest gives the checksum. */
            put16(s + cs + co, gso_csum(0, s + cs, pk->len - cs));
            tx_frame(p, q, pk, s, pk->len);
        } else {
            tx_frame(p, q, pk, pk->data, pk->len);
        }
        sent++;
    }
    /* Out before returning: the caller owns the frames (no deferral). */
    if (t->n)
        tx_send(vp, q, true);
    return sent;
}

/* ---- show ---- */

void xbr_vxlan_get_stats(const struct port *p, struct xbr_vxlan_stats *sum)
{
    const struct vxlan_port *vp = p->priv;
    memset(sum, 0, sizeof(*sum));
    for (unsigned q = 0; q < vp->n_queues; q++) {
        const struct xbr_vxlan_stats *s = &vp->stats[q];
        sum->rx_truncated += s->rx_truncated;
        sum->rx_oversized += s->rx_oversized;
        sum->rx_bad_flags += s->rx_bad_flags;
        sum->rx_wrong_vni += s->rx_wrong_vni;
        sum->rx_inner_runt += s->rx_inner_runt;
        sum->rx_vtep_limit += s->rx_vtep_limit;
        sum->rx_handoff_full += s->rx_handoff_full;
        sum->tx_bad_offload += s->tx_bad_offload;
        sum->tx_gso_segmented += s->tx_gso_segmented;
        sum->tx_errors += s->tx_errors;
    }
}

static void vxlan_show(struct port *p, struct ctl_out *o)
{
    const struct vxlan_port *vp = p->priv;
    char a[INET6_ADDRSTRLEN];
    struct xbr_vxlan_stats s;
    xbr_vxlan_get_stats(p, &s);
    uint32_t nv = __atomic_load_n(&rcu_dereference(vp->tab)->n_used, __ATOMIC_RELAXED);
    ctl_out_open_object(o, "vxlan");
    ctl_out_u64(o, "vni", "    vxlan vni %llu", vp->cfg.vni);
    ctl_out_str(o, "local", " local %s", xbr_vxlan_format_ip(&vp->cfg.local, a));
    ctl_out_u64(o, "dstport", " dstport %llu", vp->cfg.dstport);
    ctl_out_str(o, "underlay", " underlay %s", vp->underlay);
    if (vp->cfg.has_group)
        ctl_out_str(o, "group", " group %s", xbr_vxlan_format_ip(&vp->cfg.group, a));
    ctl_out_open_array(o, "remotes");
    ctl_out_text(o, " remotes");
    for (unsigned k = 0; k < vp->cfg.n_remotes; k++)
        ctl_out_str(o, NULL, " %s", xbr_vxlan_format_ip(&vp->cfg.remotes[k], a));
    ctl_out_close_array(o);
    ctl_out_u64(o, "vteps", " vteps %llu", nv);
    ctl_out_u64(o, "vteps_max", "/%llu", XBR_VXLAN_MAX_VTEPS);
    ctl_out_u64(o, "vtep_resets", " (cleared %llu times)\n", vp->vtep_resets);
    ctl_out_text(o, "    vxlan drops:");
    ctl_out_u64(o, "rx_truncated", " truncated %llu", s.rx_truncated);
    ctl_out_u64(o, "rx_oversized", " oversized %llu", s.rx_oversized);
    ctl_out_u64(o, "rx_bad_flags", " bad-flags %llu", s.rx_bad_flags);
    ctl_out_u64(o, "rx_wrong_vni", " wrong-vni %llu", s.rx_wrong_vni);
    ctl_out_u64(o, "rx_inner_runt", " inner-runt %llu", s.rx_inner_runt);
    ctl_out_u64(o, "rx_vtep_limit", " vtep-limit %llu", s.rx_vtep_limit);
    ctl_out_u64(o, "rx_handoff_full", " handoff-full %llu", s.rx_handoff_full);
    ctl_out_u64(o, "tx_bad_offload", " tx-bad-offload %llu", s.tx_bad_offload);
    ctl_out_u64(o, "tx_gso_segmented", " (tso-segmented %llu)", s.tx_gso_segmented);
    ctl_out_u64(o, "tx_errors", " tx-errors %llu\n", s.tx_errors);
    ctl_out_close_object(o);
}

const struct port_class port_vxlan_class = {
    .type = "vxlan",
    .end_station = false,
    .tunnel = true,
    .open = vxlan_open,
    .close = vxlan_close,
    .rx_burst = vxlan_rx_burst,
    .rx_done = vxlan_rx_done,
    .tx_burst = vxlan_tx_burst,
    .wait_fd = vxlan_wait_fd,
    .arm = vxlan_arm,
    .refresh = vxlan_refresh,
    .show = vxlan_show,
};
