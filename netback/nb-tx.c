/* TX request parsing: one guest frame out of the shared TX ring.
 *
 * Everything here reads memory the frontend can rewrite at any moment, so
 * each slot is copied out with one volatile read and only the copy is used;
 * every count and size is bounded before it is trusted. The rules follow
 * Linux netback's (xenvif_count_requests / xenvif_get_extras /
 * xenvif_set_skb_gso), written afresh:
 *   - the first request's size is the whole frame; NETTXF_more_data chains
 *     the following slots, whose sizes are subtracted from it, so the
 *     first slot's own length is what remains;
 *   - 20..21 data slots: dropped (answered with errors); 22 or more: fatal;
 *   - a following slot larger than what remains of the frame: dropped;
 *   - any slot with offset + size beyond its page: fatal (XSA-39);
 *   - a following slot of size 0 is legal (netif.h and Linux accept it;
 *     XSA-448 was a backend crashing on one, not a reason to refuse it):
 *     it adds no data and costs no copy;
 *   - a chain or an extra-info list running past req_prod: fatal;
 *   - extra info of type NONE or >= XEN_NETIF_EXTRA_TYPE_MAX, or more than
 *     one per type: fatal; GSO with size 0 or a type other than TCPv4/v6:
 *     fatal;
 *   - a frame shorter than an Ethernet header: dropped;
 *   - extra info of type MCAST_ADD/DEL makes the request a multicast-control
 *     request (NB_TX_MCAST): it ends after its extras, as in Linux netback,
 *     whatever its size and flags say.
 * Also here, as pure functions: the ip= anti-spoofing filter.
 */
#include "netback/nb-private.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

static inline void copy_req(const union netif_tx_sring_entry *ring, unsigned mask, RING_IDX i,
                            netif_tx_request_t *out)
{
    /* One read of the slot through a volatile lvalue: the compiler may not
     * go back to shared memory for any field later (XSA-155). */
    *out = *(const volatile netif_tx_request_t *)&ring[i & mask].req;
}

static enum nb_tx_verdict fatal(struct nb_tx_frame *f, const char *why)
{
    f->why = why;
    return NB_TX_FATAL;
}

enum nb_tx_verdict nb_tx_parse(const union netif_tx_sring_entry *ring, unsigned ring_size,
                               RING_IDX cons, RING_IDX prod, struct nb_tx_frame *f)
{
    const unsigned mask = ring_size - 1;
    RING_IDX i = cons;
    netif_tx_request_t first, txp;
    bool drop = false;
    uint32_t remaining;
    unsigned seen_types = 0;

    f->n_slots = f->n_data = 0;
    f->gso_type = 0;
    f->gso_size = 0;
    f->mcast_op = 0;
    f->why = NULL;
    if (i == prod)
        return fatal(f, "empty ring parsed"); /* caller bug; never reached */

    copy_req(ring, mask, i++, &first);
    f->ids[f->n_slots] = first.id;
    f->is_extra[f->n_slots++] = 0;
    f->flags = first.flags;
    f->len = first.size;

    if (first.flags & NETTXF_extra_info) {
        struct netif_extra_info ex;
        do {
            if (i == prod)
                return fatal(f, "extra info runs past req_prod");
            if (f->n_slots - 1 >= NB_MAX_EXTRAS)
                return fatal(f, "too many extra info slots");
            /* Extra info occupies a request slot: copy it the same way. */
            netif_tx_request_t raw;
            copy_req(ring, mask, i++, &raw);
            memcpy(&ex, &raw, sizeof(ex));
            f->ids[f->n_slots] = 0;
            f->is_extra[f->n_slots++] = 1;
            if (ex.type == XEN_NETIF_EXTRA_TYPE_NONE || ex.type >= XEN_NETIF_EXTRA_TYPE_MAX)
                return fatal(f, "invalid extra info type");
            if (seen_types & (1u << ex.type))
                return fatal(f, "repeated extra info type");
            seen_types |= 1u << ex.type;
            if (ex.type == XEN_NETIF_EXTRA_TYPE_GSO) {
                if (ex.u.gso.size == 0)
                    return fatal(f, "GSO size 0");
                if (ex.u.gso.type != XEN_NETIF_GSO_TYPE_TCPV4 &&
                    ex.u.gso.type != XEN_NETIF_GSO_TYPE_TCPV6)
                    return fatal(f, "bad GSO type");
                f->gso_type = ex.u.gso.type;
                f->gso_size = ex.u.gso.size;
            }
            if ((ex.type == XEN_NETIF_EXTRA_TYPE_MCAST_ADD ||
                 ex.type == XEN_NETIF_EXTRA_TYPE_MCAST_DEL) &&
                f->mcast_op != XEN_NETIF_EXTRA_TYPE_MCAST_ADD) {
                f->mcast_op = ex.type;
                memcpy(f->mcast_addr, ex.u.mcast.addr, 6);
            }
            /* HASH is accepted and ignored: frames from a guest are not
             * steered by their hash. */
        } while (ex.flags & XEN_NETIF_EXTRA_FLAG_MORE);
        if (f->mcast_op)
            return NB_TX_MCAST; /* Linux: answered before the data is counted */
    }

    f->data[0] = first;
    f->n_data = 1;
    remaining = first.size;
    txp = first;
    while (txp.flags & NETTXF_more_data) {
        unsigned followers = f->n_data - 1;
        if (i == prod)
            return fatal(f, "NETTXF_more_data chain runs past req_prod");
        if (followers >= NB_FATAL_SLOTS)
            return fatal(f, "too many slots in one packet (malicious)");
        if (followers >= NB_LEGACY_SLOTS_MAX && !drop) {
            drop = true;
            f->why = "too many slots in one packet";
        }
        copy_req(ring, mask, i++, &txp);
        f->ids[f->n_slots] = txp.id;
        f->is_extra[f->n_slots++] = 0;
        f->data[f->n_data++] = txp;
        if ((uint32_t)txp.offset + txp.size > NB_PAGE)
            return fatal(f, "slot crosses a page boundary");
        if (!drop && txp.size > remaining) {
            drop = true;
            f->why = "slot larger than the rest of the packet";
        }
        if (!drop)
            remaining -= txp.size;
    }
    if (drop)
        return NB_TX_DROP;
    /* What is left of the first request's size is its own slot's data. */
    f->data[0].size = (uint16_t)remaining;
    if ((uint32_t)first.offset + remaining > NB_PAGE)
        return fatal(f, "first slot crosses a page boundary");
    if (first.size < 14) {
        f->why = "packet shorter than an Ethernet header";
        return NB_TX_DROP;
    }
    return NB_TX_OK;
}

int nb_l4_offset(const uint8_t *d, uint32_t len, uint16_t *l4, uint8_t *proto)
{
    uint32_t off = 14;
    uint16_t et;

    if (len < 14)
        return -1;
    et = (uint16_t)(d[12] << 8 | d[13]);
    if (et == 0x8100 || et == 0x88a8) {
        if (len < 18)
            return -1;
        et = (uint16_t)(d[16] << 8 | d[17]);
        off = 18;
    }
    if (et == 0x0800) {
        if (len < off + 20 || (d[off] >> 4) != 4)
            return -1;
        uint32_t ihl = (uint32_t)(d[off] & 15) * 4;
        if (ihl < 20 || len < off + ihl)
            return -1;
        *proto = d[off + 9];
        off += ihl;
    } else if (et == 0x86dd) {
        if (len < off + 40 || (d[off] >> 4) != 6)
            return -1;
        *proto = d[off + 6];
        off += 40;
    } else {
        return -1;
    }
    if (*proto == IPPROTO_TCP) {
        if (len < off + 20)
            return -1;
    } else if (*proto == IPPROTO_UDP) {
        if (len < off + 8)
            return -1;
    } else {
        return -1;
    }
    *l4 = (uint16_t)off;
    return 0;
}

/* ---- ip= anti-spoofing ------------------------------------------------- */

int nb_ip_parse(const char *s, struct nb_ipfilter *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    char buf[1024];
    if (strlen(s) >= sizeof(buf)) {
        snprintf(err, errlen, "ip= is longer than %zu characters", sizeof(buf) - 1);
        return -1;
    }
    strcpy(buf, s);
    char *save = NULL;
    for (char *t = strtok_r(buf, " ,\t", &save); t; t = strtok_r(NULL, " ,\t", &save)) {
        /* vif-bridge takes A.B.C.D/N too; a prefix here is refused
         * rather than quietly widened or narrowed. */
        if (f->n4 < NB_IP_MAX && inet_pton(AF_INET, t, &f->v4[f->n4]) == 1) {
            f->n4++;
        } else if (f->n6 < NB_IP_MAX && inet_pton(AF_INET6, t, f->v6[f->n6]) == 1) {
            f->n6++;
        } else {
            snprintf(err, errlen, "ip= address '%.60s' is not an IPv4 or IPv6 address (at most %u "
                     "of each)", t, NB_IP_MAX);
            return -1;
        }
    }
    if (!f->n4 && !f->n6) {
        snprintf(err, errlen, "ip= names no address");
        return -1;
    }
    return 0;
}

static bool has_v4(const struct nb_ipfilter *f, const uint8_t *a)
{
    uint32_t v;
    memcpy(&v, a, 4);
    for (unsigned i = 0; i < f->n4; i++)
        if (f->v4[i] == v)
            return true;
    return false;
}

static bool has_v6(const struct nb_ipfilter *f, const uint8_t *a)
{
    for (unsigned i = 0; i < f->n6; i++)
        if (!memcmp(f->v6[i], a, 16))
            return true;
    return false;
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* What vif-bridge's iptables rules let a guest with ip= send, and what
 * ebtables-style ARP filtering adds: IPv4 from its addresses (and a DHCP
 * request from 0.0.0.0), ARP whose sender address is one of them (or
 * 0.0.0.0, a probe), IPv6 from them, from link-local or :: (DAD), never a
 * DHCP/DHCPv6 server reply or a router advertisement. Other ethertypes
 * pass (as with vif-bridge); an 802.1ad outer tag does not (it would
 * hide the IP header from the filter). */
enum nb_ip_verdict nb_ip_allowed(const struct nb_ipfilter *f, const uint8_t *d, uint32_t len)
{
    uint32_t off = 14;
    if (len < 14)
        return NB_IP_BAD_SRC;
    uint16_t et = be16(d + 12);
    if (et == 0x88a8)
        return NB_IP_BAD_SRC;
    if (et == 0x8100) {
        if (len < 18)
            return NB_IP_BAD_SRC;
        et = be16(d + 16);
        off = 18;
        if (et == 0x8100 || et == 0x88a8)
            return NB_IP_BAD_SRC;
    }
    if (et == 0x0806) {
        /* Ethernet/IPv4 ARP: sender protocol address at 14 in the body. */
        if (len < off + 28 || be16(d + off) != 1 || be16(d + off + 2) != 0x0800)
            return NB_IP_BAD_ARP;
        static const uint8_t zero[4];
        return has_v4(f, d + off + 14) || !memcmp(d + off + 14, zero, 4) ? NB_IP_PASS
                                                                         : NB_IP_BAD_ARP;
    }
    if (et == 0x0800) {
        if (len < off + 20 || (d[off] >> 4) != 4)
            return NB_IP_BAD_SRC;
        uint32_t ihl = (uint32_t)(d[off] & 15) * 4;
        uint8_t proto = d[off + 9];
        bool first_frag = (be16(d + off + 6) & 0x1fff) == 0;
        if (proto == IPPROTO_UDP && first_frag && len >= off + ihl + 8 &&
            be16(d + off + ihl) == 67)
            return NB_IP_SERVER; /* DHCP server reply */
        static const uint8_t any[4];
        if (has_v4(f, d + off + 12))
            return NB_IP_PASS;
        /* A DHCP request before the guest has its address. */
        if (!memcmp(d + off + 12, any, 4) && proto == IPPROTO_UDP && len >= off + ihl + 8 &&
            be16(d + off + ihl) == 68 && be16(d + off + ihl + 2) == 67)
            return NB_IP_PASS;
        return NB_IP_BAD_SRC;
    }
    if (et == 0x86dd) {
        if (len < off + 40 || (d[off] >> 4) != 6)
            return NB_IP_BAD_SRC;
        const uint8_t *src = d + off + 8;
        uint8_t nh = d[off + 6];
        uint32_t l4 = off + 40;
        if (nh == IPPROTO_ICMPV6 && len >= l4 + 1 && d[l4] == 134)
            return NB_IP_SERVER; /* router advertisement */
        if (nh == IPPROTO_UDP && len >= l4 + 8 && be16(d + l4) == 547)
            return NB_IP_SERVER; /* DHCPv6 server */
        static const uint8_t unspec[16];
        bool link_local = src[0] == 0xfe && (src[1] & 0xc0) == 0x80;
        return has_v6(f, src) || link_local || !memcmp(src, unspec, 16) ? NB_IP_PASS
                                                                        : NB_IP_BAD_SRC;
    }
    return NB_IP_PASS;
}
