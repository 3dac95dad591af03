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
 */
#include "netback/nb-private.h"

#include <netinet/in.h>

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
