/* gso.h — software segmentation of TCP super-frames.
 *
 * A GSO super-frame (virtio-net metadata: VIRTIO_NET_HDR_GSO_TCPV4 / _TCPV6
 * with gso_size, the MSS) is cut into the frames a TCP sender would have
 * sent: each segment carries a copy of the Ethernet (up to two VLAN tags),
 * IP and TCP headers and at most MSS bytes of payload, with
 *   - IPv4: total length, an IP id one more than the previous segment's
 *     (the first keeps the super-frame's), header checksum recomputed;
 *     IPv6: payload length;
 *   - TCP: sequence number advanced by the payload before it, FIN and PSH on
 *     the last segment only, CWR on the first only (as Linux's
 *     tcp_gso_segment), and a full checksum (pseudo-header included): the
 *     segments need no checksum offload at the receiver.
 * This is what the kernel's stack does for Linux netback when a frontend
 * did not advertise feature-gso-tcpv4/6 or feature-sg, and what any port
 * that must hand a super-frame to a peer without TSO can use.
 *
 * The headers are parsed here, not taken from the metadata (hdr_len and
 * csum_start come from outside and are not trusted). Only TCP over IPv4 or
 * IPv6 without extension headers is segmented; anything else is refused.
 * Pure: no allocation, no global state.
 */
#ifndef XBR_GSO_H
#define XBR_GSO_H

#include <stdbool.h>
#include <stdint.h>

/* One super-frame being segmented; its memory must stay valid meanwhile. */
struct gso_tcp {
    const uint8_t *frame;
    uint32_t end;        /* frame length, trimmed to the IP length when shorter */
    uint32_t l3, l4;     /* IP and TCP header offsets */
    uint32_t hdr_len;    /* Ethernet + IP + TCP headers */
    uint16_t mss;
    bool v6;
    uint32_t off;        /* next payload byte */
    uint32_t seq;        /* the super-frame's sequence number */
    uint16_t ip_id;
    unsigned idx, n;     /* next segment, segments in all */
};

/* Prepares frame (len bytes, gso_type a VIRTIO_NET_HDR_GSO_TCPV4/6, with or
 * without the ECN bit) for segments of at most mss payload bytes. Returns 0,
 * or -1 when it is not a TCP super-frame of that type with sane headers. */
int gso_tcp_init(struct gso_tcp *g, const uint8_t *frame, uint32_t len, uint8_t gso_type,
                 uint16_t mss);
/* Segments in all (at least 1: a super-frame without payload is one). */
unsigned gso_tcp_count(const struct gso_tcp *g);
/* Length of the next segment, 0 when all were made. */
uint32_t gso_tcp_next_len(const struct gso_tcp *g);
/* Writes the next segment (gso_tcp_next_len() bytes) into out and returns
 * its length, or 0 when all were made. */
uint32_t gso_tcp_next(struct gso_tcp *g, uint8_t *out);

/* The Internet checksum (RFC 1071) of len bytes, added to sum (a partial
 * sum, host order, unfolded), folded and complemented. */
uint16_t gso_csum(uint32_t sum, const uint8_t *d, uint32_t len);

#endif
