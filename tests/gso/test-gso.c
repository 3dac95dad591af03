/* Software segmentation (gso/gso.c) against known-good segments.
 *
 * The reference is built independently: each expected segment is the packet
 * a TCP sender would have put on the wire for that piece of the byte stream
 * (its own sequence number, IP id, flags, lengths), assembled field by field
 * here with a checksum written out from RFC 1071 / RFC 793 / RFC 8200 — not
 * with gso.c's. The super-frame is the same packet with the whole payload,
 * its checksum left partial as a GSO sender leaves it. Each segment must
 * equal its reference byte for byte. */
#include "gso/gso.h"
#include "test.h"

#include <linux/virtio_net.h>

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_CWR 0x80

struct shape {
    bool v6;
    unsigned vlans;   /* 0..2 tags */
    unsigned opt_len; /* TCP options, multiple of 4 */
};

/* Ones' complement sum of 16-bit words, the textbook way. */
static uint32_t ref_sum(const uint8_t *d, size_t len)
{
    uint32_t s = 0;
    for (size_t i = 0; i < len; i++)
        s += (i % 2 == 0) ? (uint32_t)d[i] << 8 : d[i];
    while (s > 0xffff)
        s = (s >> 16) + (s & 0xffff);
    return s;
}

static void w16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* One TCP packet; returns its length. full_csum false: the checksum field
 * holds the pseudo-header sum only (CHECKSUM_PARTIAL), as in a super-frame. */
static size_t build(uint8_t *b, const struct shape *sh, uint32_t seq, uint16_t id, uint8_t flags,
                    const uint8_t *payload, size_t plen, bool full_csum)
{
    static const uint8_t dst[6] = {0x00, 0x16, 0x3e, 0x00, 0x00, 0x02};
    static const uint8_t src[6] = {0x00, 0x16, 0x3e, 0x00, 0x00, 0x01};
    size_t o = 12, tcp_len = 20 + sh->opt_len + plen;
    memcpy(b, dst, 6);
    memcpy(b + 6, src, 6);
    for (unsigned v = 0; v < sh->vlans; v++) {
        w16(b + o, v + 1 < sh->vlans ? 0x88a8 : 0x8100);
        w16(b + o + 2, 100 + v);
        o += 4;
    }
    w16(b + o, sh->v6 ? 0x86dd : 0x0800);
    o += 2;
    uint8_t *ip = b + o, pseudo[40];
    size_t pseudo_len;
    if (sh->v6) {
        memset(ip, 0, 40);
        ip[0] = 0x60;
        w16(ip + 4, (unsigned)tcp_len);
        ip[6] = 6;
        ip[7] = 64;
        for (int i = 0; i < 16; i++) {
            ip[8 + i] = (uint8_t)(0x20 + i);
            ip[24 + i] = (uint8_t)(0x40 + i);
        }
        memcpy(pseudo, ip + 8, 32);
        memset(pseudo + 32, 0, 8);
        w16(pseudo + 34, (unsigned)tcp_len);
        pseudo[39] = 6;
        pseudo_len = 40;
        o += 40;
    } else {
        memset(ip, 0, 20);
        ip[0] = 0x45;
        w16(ip + 2, (unsigned)(20 + tcp_len));
        w16(ip + 4, id);
        ip[6] = 0x40;
        ip[8] = 64;
        ip[9] = 6;
        ip[12] = 10, ip[15] = 1;
        ip[16] = 10, ip[19] = 2;
        w16(ip + 10, ~ref_sum(ip, 20) & 0xffff);
        memcpy(pseudo, ip + 12, 8);
        pseudo[8] = 0;
        pseudo[9] = 6;
        w16(pseudo + 10, (unsigned)tcp_len);
        pseudo_len = 12;
        o += 20;
    }
    uint8_t *t = b + o;
    memset(t, 0, 20 + sh->opt_len);
    w16(t, 43210);
    w16(t + 2, 80);
    t[4] = (uint8_t)(seq >> 24), t[5] = (uint8_t)(seq >> 16), t[6] = (uint8_t)(seq >> 8),
    t[7] = (uint8_t)seq;
    t[8] = 0x11, t[11] = 0x22; /* ack */
    t[12] = (uint8_t)((20 + sh->opt_len) / 4 << 4);
    t[13] = flags;
    w16(t + 14, 501);
    for (unsigned i = 0; i < sh->opt_len; i += 4) { /* NOP NOP + timestamp-ish */
        t[20 + i] = 1, t[21 + i] = 1, t[22 + i] = 8, t[23 + i] = (uint8_t)(i + 2);
    }
    memcpy(t + 20 + sh->opt_len, payload, plen);
    uint32_t ps = ref_sum(pseudo, pseudo_len);
    if (full_csum) {
        uint32_t s = ps + ref_sum(t, tcp_len);
        while (s > 0xffff)
            s = (s >> 16) + (s & 0xffff);
        w16(t + 16, ~s & 0xffff);
    } else {
        w16(t + 16, ps);
    }
    return o + tcp_len;
}

static uint8_t payload[70000], super[70000], seg[70000], ref_seg[70000];

/* Segments a super-frame of plen payload bytes and compares every segment
 * with its reference; returns the count. */
static unsigned check_shape(const struct shape *sh, size_t plen, uint16_t mss, uint8_t flags)
{
    const uint32_t seq0 = 0xfffff000u; /* wraps during the stream */
    const uint16_t id0 = 0xfffe;       /* so does the IP id */
    for (size_t i = 0; i < plen; i++)
        payload[i] = (uint8_t)(i * 7 + (i >> 8));
    size_t len = build(super, sh, seq0, id0, flags, payload, plen, false);
    struct gso_tcp g;
    uint8_t type = sh->v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
    ASSERT_EQ(gso_tcp_init(&g, super, (uint32_t)len, type, mss), 0);
    unsigned n = plen ? (unsigned)((plen + mss - 1) / mss) : 1;
    ASSERT_EQ(gso_tcp_count(&g), n);
    for (unsigned k = 0; k < n; k++) {
        size_t off = (size_t)k * mss, pl = plen - off < mss ? plen - off : mss;
        uint8_t f = flags;
        if (k + 1 < n)
            f &= (uint8_t)~(TCP_FIN | TCP_PSH);
        if (k > 0)
            f &= (uint8_t)~TCP_CWR;
        size_t wl = build(ref_seg, sh, seq0 + (uint32_t)off, (uint16_t)(id0 + k), f, payload + off,
                          pl, true);
        ASSERT_EQ(gso_tcp_next_len(&g), wl);
        uint32_t got = gso_tcp_next(&g, seg);
        ASSERT_EQ(got, wl);
        if (memcmp(seg, ref_seg, wl)) {
            for (size_t i = 0; i < wl; i++)
                if (seg[i] != ref_seg[i]) {
                    fprintf(stderr, "  segment %u byte %zu: 0x%02x, ref_seg 0x%02x\n", k, i, seg[i],
                            ref_seg[i]);
                    break;
                }
            ASSERT_TRUE(!"segment differs from the reference");
        }
    }
    ASSERT_EQ(gso_tcp_next_len(&g), 0);
    ASSERT_EQ(gso_tcp_next(&g, seg), 0);
    return n;
}

TEST(ipv4_segments_match_reference)
{
    struct shape sh = {.v6 = false};
    ASSERT_EQ(check_shape(&sh, 64000, 1448, TCP_ACK | TCP_PSH), 45);
    ASSERT_EQ(check_shape(&sh, 1448 * 4, 1448, TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR), 4);
    ASSERT_EQ(check_shape(&sh, 1449, 1448, TCP_ACK | TCP_CWR), 2); /* 1-byte tail */
    ASSERT_EQ(check_shape(&sh, 65535 - 14 - 40, 536, TCP_ACK), 123);
}

TEST(ipv6_segments_match_reference)
{
    struct shape sh = {.v6 = true};
    ASSERT_EQ(check_shape(&sh, 64000, 1428, TCP_ACK | TCP_PSH | TCP_FIN), 45);
    ASSERT_EQ(check_shape(&sh, 3001, 1000, TCP_ACK | TCP_CWR), 4);
}

TEST(vlan_tags_and_tcp_options)
{
    struct shape a = {.v6 = false, .vlans = 1, .opt_len = 12};
    struct shape b = {.v6 = true, .vlans = 2, .opt_len = 40};
    ASSERT_EQ(check_shape(&a, 20000, 1436, TCP_ACK | TCP_PSH), 14);
    ASSERT_EQ(check_shape(&b, 20000, 1388, TCP_ACK | TCP_PSH), 15);
}

TEST(small_super_frames)
{
    struct shape sh = {.v6 = false};
    ASSERT_EQ(check_shape(&sh, 100, 1448, TCP_ACK | TCP_PSH), 1); /* fits one */
    ASSERT_EQ(check_shape(&sh, 0, 1448, TCP_ACK | TCP_FIN), 1);   /* no payload */
    struct shape s6 = {.v6 = true};
    ASSERT_EQ(check_shape(&s6, 0, 1, TCP_ACK), 1);
    ASSERT_EQ(check_shape(&s6, 7, 1, TCP_ACK | TCP_PSH), 7); /* MSS 1 */
}

TEST(ethernet_padding_is_not_payload)
{
    struct shape sh = {.v6 = false};
    size_t len = build(super, &sh, 1, 1, TCP_ACK, payload, 10, false);
    memset(super + len, 0xee, 20); /* padding after the IP packet */
    struct gso_tcp g;
    ASSERT_EQ(gso_tcp_init(&g, super, (uint32_t)len + 20, VIRTIO_NET_HDR_GSO_TCPV4, 4), 0);
    ASSERT_EQ(gso_tcp_count(&g), 3);
    uint32_t total = 0, l;
    while ((l = gso_tcp_next(&g, seg)) != 0) {
        total += l - 54;
        ASSERT_EQ(seg[l - 1] == 0xee, false);
    }
    ASSERT_EQ(total, 10);
}

TEST(refuses_what_it_cannot_segment)
{
    struct shape v4 = {.v6 = false}, v6 = {.v6 = true};
    struct gso_tcp g;
    size_t len = build(super, &v4, 1, 1, TCP_ACK, payload, 3000, false);
    ASSERT_EQ(gso_tcp_init(&g, super, (uint32_t)len, VIRTIO_NET_HDR_GSO_TCPV4, 0), -1); /* MSS 0 */
    ASSERT_EQ(gso_tcp_init(&g, super, (uint32_t)len, VIRTIO_NET_HDR_GSO_TCPV6, 1448), -1);
    ASSERT_EQ(gso_tcp_init(&g, super, (uint32_t)len, VIRTIO_NET_HDR_GSO_UDP, 1448), -1);
    ASSERT_EQ(gso_tcp_init(&g, super, (uint32_t)len, VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, 1448), 0);
    for (uint32_t cut = 0; cut < 54; cut++) /* truncated headers */
        ASSERT_EQ(gso_tcp_init(&g, super, cut, VIRTIO_NET_HDR_GSO_TCPV4, 1448), -1);
    super[23] = 17; /* UDP */
    ASSERT_EQ(gso_tcp_init(&g, super, (uint32_t)len, VIRTIO_NET_HDR_GSO_TCPV4, 1448), -1);
    super[23] = 6;
    super[20] = 0x20; /* more fragments */
    ASSERT_EQ(gso_tcp_init(&g, super, (uint32_t)len, VIRTIO_NET_HDR_GSO_TCPV4, 1448), -1);
    super[20] = 0x40;
    super[46] = 0x40; /* TCP data offset 4 words */
    ASSERT_EQ(gso_tcp_init(&g, super, (uint32_t)len, VIRTIO_NET_HDR_GSO_TCPV4, 1448), -1);
    super[46] = 0xf0; /* a 60-byte TCP header in a frame cut to 74 bytes */
    ASSERT_EQ(gso_tcp_init(&g, super, 54 + 20, VIRTIO_NET_HDR_GSO_TCPV4, 1448), -1);
    len = build(super, &v6, 1, 1, TCP_ACK, payload, 3000, false);
    ASSERT_EQ(gso_tcp_init(&g, super, (uint32_t)len, VIRTIO_NET_HDR_GSO_TCPV6, 1448), 0);
    super[20] = 0; /* hop-by-hop options: extension headers are refused */
    ASSERT_EQ(gso_tcp_init(&g, super, (uint32_t)len, VIRTIO_NET_HDR_GSO_TCPV6, 1448), -1);
}

TEST(segments_verify_as_a_receiver_checks_them)
{
    struct shape sh = {.v6 = false, .vlans = 1};
    size_t len = build(super, &sh, 7, 9, TCP_ACK | TCP_PSH, payload, 9000, false);
    struct gso_tcp g;
    ASSERT_EQ(gso_tcp_init(&g, super, (uint32_t)len, VIRTIO_NET_HDR_GSO_TCPV4, 1460), 0);
    uint32_t l;
    while ((l = gso_tcp_next(&g, seg)) != 0) {
        const uint8_t *ip = seg + 18, *t = ip + 20;
        uint8_t pseudo[12];
        ASSERT_EQ(ref_sum(ip, 20), 0xffff);
        memcpy(pseudo, ip + 12, 8);
        pseudo[8] = 0, pseudo[9] = 6;
        w16(pseudo + 10, l - 38);
        uint32_t s = ref_sum(pseudo, 12) + ref_sum(t, l - 38);
        while (s > 0xffff)
            s = (s >> 16) + (s & 0xffff);
        ASSERT_EQ(s, 0xffff);
    }
}

TEST_MAIN()
