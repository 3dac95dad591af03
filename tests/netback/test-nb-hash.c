/* Receive-side hashing (netback/nb-hash.c) against the Microsoft RSS
 * verification suite ("Verifying the RSS Hash Calculation": the 40-byte
 * key and the IPv4/IPv6 2-tuple and 4-tuple results also in Intel's 82599
 * datasheet, 7.1.2.8.3), then the frame parsing that picks a netif.h hash
 * type the way Linux netback's xenvif_set_skb_hash() does, then the queue
 * mapping of xenvif_select_queue(). */
#include "test.h"

#include "netback/nb-private.h"
#include "util/util.h"

#include <arpa/inet.h>

static const uint8_t ms_key[40] = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

struct v4 {
    const char *dst, *src;
    uint16_t dport, sport;
    uint32_t l3, l4;
};
static const struct v4 v4s[] = {
    {"161.142.100.80", "66.9.149.187", 1766, 2794, 0x323e8fc2, 0x51ccc178},
    {"65.69.140.83", "199.92.111.2", 4739, 14230, 0xd718262a, 0xc626b0ea},
    {"12.22.207.184", "24.19.198.95", 38024, 12898, 0xd2d0a5de, 0x5c2b394a},
    {"209.142.163.6", "38.27.205.30", 2217, 48228, 0x82989176, 0xafc7327f},
    {"202.188.127.2", "153.39.163.191", 1303, 44251, 0x5d1809c5, 0x10e828a2},
};
static const struct v4 v6s[] = {
    {"3ffe:2501:200:3::1", "3ffe:2501:200:1fff::7", 1766, 2794, 0x2cc18cd5, 0x40207d3d},
    {"ff02::1", "3ffe:501:8::260:97ff:fe40:efab", 4739, 14230, 0x0f0c461c, 0xdde51bbf},
    {"fe80::200:f8ff:fe21:67cf", "3ffe:1900:4545:3:200:f8ff:fe21:67cf", 38024, 44251,
     0x4b61e985, 0x02d1feef},
};

static struct nb_hash toeplitz(uint32_t flags)
{
    struct nb_hash h;
    memset(&h, 0, sizeof(h));
    h.alg = XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ;
    h.flags = flags;
    memcpy(h.key, ms_key, sizeof(ms_key));
    return h;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* An Ethernet frame (VLAN-tagged if vlan) with IPv4 and a TCP/UDP header. */
static uint32_t frame4(uint8_t *f, const struct v4 *t, uint8_t proto, bool vlan, uint16_t frag)
{
    uint32_t o = 12;
    memset(f, 0, 128);
    if (vlan) {
        put16(f + o, 0x8100);
        put16(f + o + 2, 7);
        o += 4;
    }
    put16(f + o, 0x0800);
    o += 2;
    f[o] = 0x45;
    put16(f + o + 6, frag);
    f[o + 9] = proto;
    ASSERT_EQ(inet_pton(AF_INET, t->src, f + o + 12), 1);
    ASSERT_EQ(inet_pton(AF_INET, t->dst, f + o + 16), 1);
    put16(f + o + 20, t->sport);
    put16(f + o + 22, t->dport);
    return o + 40;
}

/* The same with IPv6; ext: a hop-by-hop (0) or fragment (44) header first. */
static uint32_t frame6(uint8_t *f, const struct v4 *t, uint8_t proto, int ext)
{
    uint32_t o = 14, l4 = 14 + 40;
    memset(f, 0, 160);
    put16(f + 12, 0x86dd);
    f[o] = 0x60;
    f[o + 6] = ext >= 0 ? (uint8_t)ext : proto;
    ASSERT_EQ(inet_pton(AF_INET6, t->src, f + o + 8), 1);
    ASSERT_EQ(inet_pton(AF_INET6, t->dst, f + o + 24), 1);
    if (ext >= 0) {
        f[l4] = proto; /* next header; length 0 = 8 bytes */
        l4 += 8;
    }
    put16(f + l4, t->sport);
    put16(f + l4 + 2, t->dport);
    return l4 + 20;
}

TEST(toeplitz_ms_ipv4_vectors)
{
    for (unsigned i = 0; i < XBR_ARRAY_SIZE(v4s); i++) {
        uint8_t in[12];
        ASSERT_EQ(inet_pton(AF_INET, v4s[i].src, in), 1);
        ASSERT_EQ(inet_pton(AF_INET, v4s[i].dst, in + 4), 1);
        put16(in + 8, v4s[i].sport);
        put16(in + 10, v4s[i].dport);
        ASSERT_EQ(nb_toeplitz(ms_key, sizeof(ms_key), in, 8), v4s[i].l3);
        ASSERT_EQ(nb_toeplitz(ms_key, sizeof(ms_key), in, 12), v4s[i].l4);
    }
}

TEST(toeplitz_ms_ipv6_vectors)
{
    for (unsigned i = 0; i < XBR_ARRAY_SIZE(v6s); i++) {
        uint8_t in[36];
        ASSERT_EQ(inet_pton(AF_INET6, v6s[i].src, in), 1);
        ASSERT_EQ(inet_pton(AF_INET6, v6s[i].dst, in + 16), 1);
        put16(in + 32, v6s[i].sport);
        put16(in + 34, v6s[i].dport);
        ASSERT_EQ(nb_toeplitz(ms_key, sizeof(ms_key), in, 32), v6s[i].l3);
        ASSERT_EQ(nb_toeplitz(ms_key, sizeof(ms_key), in, 36), v6s[i].l4);
    }
}

TEST(toeplitz_short_key_is_zero_padded)
{
    /* netif.h: octets the frontend did not set are zero; a key of 0 octets
     * hashes everything to 0. */
    uint8_t in[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, key[40] = {0};
    memcpy(key, ms_key, 16);
    ASSERT_EQ(nb_toeplitz(ms_key, 16, in, 12), nb_toeplitz(key, 40, in, 12));
    ASSERT_EQ(nb_toeplitz(key, 0, in, 12), 0);
}

TEST(frame_ipv4_types)
{
    uint8_t f[128];
    uint32_t hv;
    for (unsigned i = 0; i < XBR_ARRAY_SIZE(v4s); i++) {
        const struct v4 *t = &v4s[i];
        struct nb_hash all = toeplitz(XEN_NETIF_CTRL_HASH_TYPE_IPV4 |
                                      XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP);
        struct nb_hash l3 = toeplitz(XEN_NETIF_CTRL_HASH_TYPE_IPV4);
        struct nb_hash l4 = toeplitz(XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP);
        uint32_t len = frame4(f, t, 6, false, 0);
        /* TCP: the maximal enabled type (netif.h) */
        ASSERT_EQ(nb_hash_frame(&all, f, len, &hv), _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP);
        ASSERT_EQ(hv, t->l4);
        ASSERT_EQ(nb_hash_frame(&l3, f, len, &hv), _XEN_NETIF_CTRL_HASH_TYPE_IPV4);
        ASSERT_EQ(hv, t->l3);
        /* VLAN-tagged: the same */
        len = frame4(f, t, 6, true, 0);
        ASSERT_EQ(nb_hash_frame(&all, f, len, &hv), _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP);
        ASSERT_EQ(hv, t->l4);
        /* UDP: addresses only, or nothing when only the TCP type is on */
        len = frame4(f, t, 17, false, 0);
        ASSERT_EQ(nb_hash_frame(&all, f, len, &hv), _XEN_NETIF_CTRL_HASH_TYPE_IPV4);
        ASSERT_EQ(hv, t->l3);
        ASSERT_EQ(nb_hash_frame(&l4, f, len, &hv), -1);
        ASSERT_EQ(hv, 0);
        /* a fragment (MF set, or an offset) has no ports to hash */
        len = frame4(f, t, 6, false, 0x2000);
        ASSERT_EQ(nb_hash_frame(&all, f, len, &hv), _XEN_NETIF_CTRL_HASH_TYPE_IPV4);
        ASSERT_EQ(hv, t->l3);
        len = frame4(f, t, 6, false, 0x0010);
        ASSERT_EQ(nb_hash_frame(&l4, f, len, &hv), -1);
        /* IPv6 types do not apply to IPv4 */
        struct nb_hash v6only = toeplitz(XEN_NETIF_CTRL_HASH_TYPE_IPV6 |
                                         XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP);
        len = frame4(f, t, 6, false, 0);
        ASSERT_EQ(nb_hash_frame(&v6only, f, len, &hv), -1);
    }
}

TEST(frame_ipv6_types)
{
    uint8_t f[160];
    uint32_t hv;
    struct nb_hash all = toeplitz(XEN_NETIF_CTRL_HASH_TYPE_IPV6 |
                                  XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP);
    struct nb_hash l3 = toeplitz(XEN_NETIF_CTRL_HASH_TYPE_IPV6);
    for (unsigned i = 0; i < XBR_ARRAY_SIZE(v6s); i++) {
        const struct v4 *t = &v6s[i];
        uint32_t len = frame6(f, t, 6, -1);
        ASSERT_EQ(nb_hash_frame(&all, f, len, &hv), _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP);
        ASSERT_EQ(hv, t->l4);
        ASSERT_EQ(nb_hash_frame(&l3, f, len, &hv), _XEN_NETIF_CTRL_HASH_TYPE_IPV6);
        ASSERT_EQ(hv, t->l3);
        /* a hop-by-hop header before TCP: still the 4-tuple */
        len = frame6(f, t, 6, 0);
        ASSERT_EQ(nb_hash_frame(&all, f, len, &hv), _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP);
        ASSERT_EQ(hv, t->l4);
        /* a fragment header: addresses only */
        len = frame6(f, t, 6, 44);
        ASSERT_EQ(nb_hash_frame(&all, f, len, &hv), _XEN_NETIF_CTRL_HASH_TYPE_IPV6);
        ASSERT_EQ(hv, t->l3);
        /* UDP */
        len = frame6(f, t, 17, -1);
        ASSERT_EQ(nb_hash_frame(&all, f, len, &hv), _XEN_NETIF_CTRL_HASH_TYPE_IPV6);
        ASSERT_EQ(hv, t->l3);
    }
}

TEST(frame_no_hash)
{
    uint8_t f[160];
    uint32_t hv = 1;
    struct nb_hash all = toeplitz(0xf), none = toeplitz(0xf), zero = toeplitz(0);
    none.alg = XEN_NETIF_CTRL_HASH_ALGORITHM_NONE;
    uint32_t len = frame4(f, &v4s[0], 6, false, 0);
    ASSERT_EQ(nb_hash_frame(&none, f, len, &hv), -1);
    ASSERT_EQ(hv, 0);
    ASSERT_EQ(nb_hash_frame(&zero, f, len, &hv), -1);
    /* not IP, an IPv4 header that says version 6, truncated headers */
    put16(f + 12, 0x88b5);
    ASSERT_EQ(nb_hash_frame(&all, f, len, &hv), -1);
    len = frame4(f, &v4s[0], 6, false, 0);
    f[14] = 0x65;
    ASSERT_EQ(nb_hash_frame(&all, f, len, &hv), -1);
    len = frame4(f, &v4s[0], 6, false, 0);
    for (uint32_t cut = 0; cut < 14 + 20; cut++)
        ASSERT_EQ(nb_hash_frame(&all, f, cut, &hv), -1);
    /* ports cut off: the addresses still hash */
    ASSERT_EQ(nb_hash_frame(&all, f, 14 + 20 + 3, &hv), _XEN_NETIF_CTRL_HASH_TYPE_IPV4);
    ASSERT_EQ(hv, v4s[0].l3);
    len = frame6(f, &v6s[0], 6, 0);
    for (uint32_t cut = 0; cut < 14 + 40; cut++)
        ASSERT_EQ(nb_hash_frame(&all, f, cut, &hv), -1);
    ASSERT_EQ(nb_hash_frame(&all, f, 14 + 40 + 4, &hv), _XEN_NETIF_CTRL_HASH_TYPE_IPV6);
}

TEST(queue_mapping)
{
    struct nb_hash h = toeplitz(0xf);
    /* no table: modulo the queue count */
    ASSERT_EQ(nb_hash_queue(&h, 0x51ccc178, 4), 0x51ccc178 % 4);
    ASSERT_EQ(nb_hash_queue(&h, 7, 3), 1);
    /* a table: hash modulo its size indexes it */
    h.size = 128;
    for (unsigned i = 0; i < 128; i++)
        h.mapping[i] = (i * 7 + 3) % 4;
    ASSERT_EQ(nb_hash_queue(&h, 0x51ccc178, 4), ((0x51ccc178 % 128) * 7 + 3) % 4);
    h.size = 5;
    ASSERT_EQ(nb_hash_queue(&h, 12, 4), h.mapping[2]);
    /* an entry that does not fit the queue count never picks past it */
    h.mapping[2] = 9;
    ASSERT_LT(nb_hash_queue(&h, 12, 4), 4);
}

TEST_MAIN()
