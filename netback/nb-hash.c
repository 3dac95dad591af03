/* Receive-side hashing as netif.h defines it for feature-ctrl-ring: which
 * bytes of a frame a hash type covers, the Toeplitz hash over them, and the
 * queue the mapping table picks. Pure (no I/O, no global state): the
 * datapath calls it per frame, the unit tests check it against the
 * Microsoft RSS verification suite.
 *
 * The Toeplitz function is the reference one that Xen's netif.h carries
 * (XEN_NETIF_DEFINE_TOEPLITZ), the same code Linux netback uses, rather
 * than one written here.
 *
 * Which type applies follows Linux netback's xenvif_set_skb_hash(): the
 * frontend enables types with SET_HASH_FLAGS; a TCP segment that is not a
 * fragment gets the 4-tuple type when enabled, otherwise an IP packet gets
 * the address-only type when enabled, otherwise no hash (value 0, no extra
 * info). */
#define XEN_NETIF_DEFINE_TOEPLITZ
#include "netback/nb-private.h"

#include <netinet/in.h>

uint32_t nb_toeplitz(const uint8_t *key, unsigned keylen, const uint8_t *buf, unsigned len)
{
    return xen_netif_toeplitz_hash(key, keylen, buf, len);
}

/* IPv6 extension headers Linux's flow dissector walks before the transport
 * header; a fragment header makes the packet a fragment (no ports). */
static bool ipv6_skip_ext(const uint8_t *d, uint32_t len, uint32_t *off, uint8_t *nh,
                          bool *frag)
{
    for (unsigned i = 0; i < 8; i++) {
        switch (*nh) {
        case IPPROTO_HOPOPTS:
        case IPPROTO_ROUTING:
        case IPPROTO_DSTOPTS:
            if (*off + 8 > len)
                return false;
            *nh = d[*off];
            *off += 8u + (uint32_t)d[*off + 1] * 8u;
            break;
        case IPPROTO_FRAGMENT:
            if (*off + 8 > len)
                return false;
            *frag = true;
            *nh = d[*off];
            *off += 8;
            break;
        default:
            return true;
        }
    }
    return true; /* too deep: treat what follows as not TCP */
}

int nb_hash_frame(const struct nb_hash *h, const uint8_t *d, uint32_t len, uint32_t *hash)
{
    uint32_t off = 14;
    uint16_t et;
    uint8_t buf[36];
    unsigned n;
    int type;

    *hash = 0;
    if (h->alg != XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ || len < 14)
        return -1;
    et = (uint16_t)(d[12] << 8 | d[13]);
    if (et == 0x8100 || et == 0x88a8) {
        if (len < 18)
            return -1;
        et = (uint16_t)(d[16] << 8 | d[17]);
        off = 18;
    }
    if (et == 0x0800) {
        if (!(h->flags & (XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP)))
            return -1;
        if (len < off + 20 || (d[off] >> 4) != 4)
            return -1;
        uint32_t ihl = (uint32_t)(d[off] & 15) * 4;
        bool frag = ((d[off + 6] << 8 | d[off + 7]) & 0x3fff) != 0; /* MF or an offset */
        bool tcp = d[off + 9] == IPPROTO_TCP && !frag && ihl >= 20 && len >= off + ihl + 4;
        memcpy(buf, d + off + 12, 8);
        if (tcp && (h->flags & XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP)) {
            memcpy(buf + 8, d + off + ihl, 4);
            n = 12;
            type = _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP;
        } else if (h->flags & XEN_NETIF_CTRL_HASH_TYPE_IPV4) {
            n = 8;
            type = _XEN_NETIF_CTRL_HASH_TYPE_IPV4;
        } else {
            return -1;
        }
    } else if (et == 0x86dd) {
        if (!(h->flags & (XEN_NETIF_CTRL_HASH_TYPE_IPV6 | XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP)))
            return -1;
        if (len < off + 40 || (d[off] >> 4) != 6)
            return -1;
        uint8_t nh = d[off + 6];
        uint32_t l4 = off + 40;
        bool frag = false;
        bool tcp = ipv6_skip_ext(d, len, &l4, &nh, &frag) && nh == IPPROTO_TCP && !frag &&
                   len >= l4 + 4;
        memcpy(buf, d + off + 8, 32);
        if (tcp && (h->flags & XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP)) {
            memcpy(buf + 32, d + l4, 4);
            n = 36;
            type = _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP;
        } else if (h->flags & XEN_NETIF_CTRL_HASH_TYPE_IPV6) {
            n = 32;
            type = _XEN_NETIF_CTRL_HASH_TYPE_IPV6;
        } else {
            return -1;
        }
    } else {
        return -1;
    }
    *hash = nb_toeplitz(h->key, NB_HASH_KEY_MAX, buf, n);
    return type;
}

unsigned nb_hash_queue(const struct nb_hash *h, uint32_t hash, unsigned nq)
{
    /* Linux xenvif_select_queue(): the table when one is set, else modulo.
     * Table entries were checked against the queue count when they were set;
     * the modulo keeps a bad one from ever indexing past the queues. */
    uint32_t size = h->size;
    if (size == 0 || size > NB_HASH_MAPPING_MAX)
        return hash % nq;
    return h->mapping[hash % size] % nq;
}
