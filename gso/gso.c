/* Software segmentation of TCP super-frames (see gso.h). */
#include "gso/gso.h"

#include <string.h>

#include <linux/virtio_net.h>

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

static uint32_t sum16(uint32_t sum, const uint8_t *d, uint32_t len)
{
    uint64_t s = sum;
    uint32_t i = 0;
    for (; i + 1 < len; i += 2)
        s += (uint32_t)(d[i] << 8 | d[i + 1]);
    if (i < len)
        s += (uint32_t)d[i] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint32_t)s;
}

uint16_t gso_csum(uint32_t sum, const uint8_t *d, uint32_t len)
{
    return (uint16_t)~sum16(sum, d, len);
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

int gso_tcp_init(struct gso_tcp *g, const uint8_t *frame, uint32_t len, uint8_t gso_type,
                 uint16_t mss)
{
    uint8_t type = gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    uint32_t off = 14;
    uint16_t et;

    memset(g, 0, sizeof(*g));
    if (mss == 0 || len < 14 || (type != VIRTIO_NET_HDR_GSO_TCPV4 && type != VIRTIO_NET_HDR_GSO_TCPV6))
        return -1;
    et = be16(frame + 12);
    for (unsigned tags = 0; (et == 0x8100 || et == 0x88a8) && tags < 2; tags++) {
        if (len < off + 4)
            return -1;
        et = be16(frame + off + 2);
        off += 4;
    }
    g->l3 = off;
    g->end = len;
    if (type == VIRTIO_NET_HDR_GSO_TCPV4) {
        if (et != 0x0800 || len < off + 20 || (frame[off] >> 4) != 4)
            return -1;
        uint32_t ihl = (uint32_t)(frame[off] & 15) * 4, tot = be16(frame + off + 2);
        if (ihl < 20 || len < off + ihl || frame[off + 9] != 6 ||
            (be16(frame + off + 6) & 0x3fff) != 0) /* a fragment: not TCP GSO */
            return -1;
        /* Padding after the IP packet is not payload; a length of 0 (or one
         * past the frame) is what super-frames may carry. */
        if (tot >= ihl + 20 && off + tot < len)
            g->end = off + tot;
        g->ip_id = be16(frame + off + 4);
        g->l4 = off + ihl;
    } else {
        if (et != 0x86dd || len < off + 40 || (frame[off] >> 4) != 6 || frame[off + 6] != 6)
            return -1; /* extension headers are not segmented */
        uint32_t pl = be16(frame + off + 4);
        if (pl >= 20 && off + 40 + pl < len)
            g->end = off + 40 + pl;
        g->v6 = true;
        g->l4 = off + 40;
    }
    if (g->end < g->l4 + 20)
        return -1;
    uint32_t doff = (uint32_t)(frame[g->l4 + 12] >> 4) * 4;
    if (doff < 20 || g->l4 + doff > g->end)
        return -1;
    g->frame = frame;
    g->hdr_len = g->l4 + doff;
    g->mss = mss;
    g->off = g->hdr_len;
    g->seq = (uint32_t)frame[g->l4 + 4] << 24 | (uint32_t)frame[g->l4 + 5] << 16 |
             (uint32_t)frame[g->l4 + 6] << 8 | frame[g->l4 + 7];
    uint32_t payload = g->end - g->hdr_len;
    g->n = payload ? (payload + mss - 1) / mss : 1;
    return 0;
}

unsigned gso_tcp_count(const struct gso_tcp *g)
{
    return g->n;
}

uint32_t gso_tcp_next_len(const struct gso_tcp *g)
{
    if (g->idx >= g->n)
        return 0;
    uint32_t left = g->end - g->off;
    return g->hdr_len + (left < g->mss ? left : g->mss);
}

uint32_t gso_tcp_next(struct gso_tcp *g, uint8_t *out)
{
    uint32_t seg = gso_tcp_next_len(g);
    if (!seg)
        return 0;
    uint32_t pl = seg - g->hdr_len, done = g->off - g->hdr_len;
    bool first = g->idx == 0, last = g->idx + 1 == g->n;
    memcpy(out, g->frame, g->hdr_len);
    memcpy(out + g->hdr_len, g->frame + g->off, pl);

    uint8_t *ip = out + g->l3, *tcp = out + g->l4;
    uint32_t l4len = seg - g->l4;
    uint32_t pseudo;
    if (g->v6) {
        put16(ip + 4, seg - g->l3 - 40);
        pseudo = sum16(0, ip + 8, 32) + 6 + l4len;
    } else {
        put16(ip + 2, seg - g->l3);
        put16(ip + 4, (uint32_t)(g->ip_id + g->idx) & 0xffff);
        put16(ip + 10, 0);
        put16(ip + 10, gso_csum(0, ip, g->l4 - g->l3));
        pseudo = sum16(0, ip + 12, 8) + 6 + l4len;
    }
    uint32_t seq = g->seq + done;
    tcp[4] = (uint8_t)(seq >> 24);
    tcp[5] = (uint8_t)(seq >> 16);
    tcp[6] = (uint8_t)(seq >> 8);
    tcp[7] = (uint8_t)seq;
    if (!last)
        tcp[13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
    if (!first)
        tcp[13] &= (uint8_t)~TCP_CWR;
    put16(tcp + 16, 0);
    put16(tcp + 16, gso_csum(pseudo, tcp, l4len));

    g->off += pl;
    g->idx++;
    return seg;
}
