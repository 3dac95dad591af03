/* stp-bpdu.c — BPDU encoding and validation (IEEE 802.1D-2004 clause 9).
 *
 * Frame layout (802.3 with LLC; the BPDU formats of 9.3):
 *
 *   0  dst 01:80:c2:00:00:00     6  src (port MAC)     12  length (LLC + BPDU)
 *   14 DSAP 0x42  15 SSAP 0x42  16 control 0x03 (UI)
 *   17 BPDU: Protocol Identifier (2) = 0, Version (1), Type (1)
 *      Config / RST only: Flags (1), Root Identifier (8), Root Path Cost (4),
 *      Bridge Identifier (8), Port Identifier (2), Message Age (2),
 *      Max Age (2), Hello Time (2), Forward Delay (2)        -> 35 octets
 *      RST only: Version 1 Length (1) = 0                     -> 36 octets
 *      TCN: nothing after the Type                            ->  4 octets
 *
 * Decoding is hostile-input code: every read is bounded by both the buffer
 * length and the 802.3 length field, and a frame is accepted only when it is
 * a complete BPDU of its type (9.3.4). Octets beyond the BPDU (padding, the
 * MSTP extension of a version 3 BPDU) are ignored, as 9.3.4 asks for forward
 * compatibility.
 */
#include "stp/stp.h"

#include <string.h>

enum {
    ETH_HDR_LEN = 14,
    LLC_LEN = 3,
    BPDU_TCN_LEN = 4,
    BPDU_CONFIG_LEN = 35,
    BPDU_RST_LEN = 36,
    LLC_SAP_BSPAN = 0x42,
    LLC_UI = 0x03,
    ETH_MAX_LEN_FIELD = 1500, /* above this the field is not a length */
};

static const uint8_t stp_group_address[6] = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x00};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

size_t stp_bpdu_encode(const struct stp_bpdu *b, const uint8_t src_mac[6], void *buf_,
                       size_t size)
{
    uint8_t *buf = buf_;
    size_t blen;

    if (!b || !src_mac || !buf)
        return 0;
    switch (b->type) {
    case STP_BPDU_CONFIG:
        blen = BPDU_CONFIG_LEN;
        break;
    case STP_BPDU_RST:
        blen = BPDU_RST_LEN;
        break;
    case STP_BPDU_TCN:
        blen = BPDU_TCN_LEN;
        break;
    default:
        return 0;
    }
    if (size < STP_BPDU_FRAME_LEN)
        return 0;

    memset(buf, 0, STP_BPDU_FRAME_LEN);
    memcpy(buf, stp_group_address, 6);
    memcpy(buf + 6, src_mac, 6);
    put16(buf + 12, (uint16_t)(LLC_LEN + blen));
    buf[14] = LLC_SAP_BSPAN;
    buf[15] = LLC_SAP_BSPAN;
    buf[16] = LLC_UI;

    uint8_t *q = buf + ETH_HDR_LEN + LLC_LEN;
    put16(q, 0);
    q[2] = b->version;
    q[3] = (uint8_t)b->type;
    if (b->type == STP_BPDU_TCN)
        return STP_BPDU_FRAME_LEN;
    q[4] = b->flags;
    put64(q + 5, b->root_id);
    put32(q + 13, b->root_path_cost);
    put64(q + 17, b->bridge_id);
    put16(q + 25, b->port_id);
    put16(q + 27, b->message_age);
    put16(q + 29, b->max_age);
    put16(q + 31, b->hello_time);
    put16(q + 33, b->forward_delay);
    /* RST: q[35], Version 1 Length, is 0 (9.3.3) and already zeroed. */
    return STP_BPDU_FRAME_LEN;
}

enum stp_rx_result stp_bpdu_decode(const void *frame, size_t len, struct stp_bpdu *b)
{
    const uint8_t *f = frame;

    if (!f || !b || len < ETH_HDR_LEN)
        return STP_RX_TRUNCATED;
    if (memcmp(f, stp_group_address, 6) != 0)
        return STP_RX_BAD_DST;
    if (f[6] & 1)
        return STP_RX_BAD_SRC;

    /* 802.3 length: the LLC PDU that follows; anything after it is padding.
     * Values above 1500 are EtherTypes (a VLAN tag, Ethernet II): a BPDU is
     * never sent that way. */
    size_t llc_len = get16(f + 12);
    if (llc_len > ETH_MAX_LEN_FIELD || llc_len < LLC_LEN)
        return STP_RX_BAD_LENGTH;
    if (llc_len > len - ETH_HDR_LEN)
        return STP_RX_TRUNCATED;
    if (f[14] != LLC_SAP_BSPAN || f[15] != LLC_SAP_BSPAN || f[16] != LLC_UI)
        return STP_RX_BAD_LLC;

    const uint8_t *q = f + ETH_HDR_LEN + LLC_LEN;
    size_t n = llc_len - LLC_LEN;
    if (n < BPDU_TCN_LEN)
        return STP_RX_TRUNCATED;
    if (get16(q) != 0)
        return STP_RX_BAD_PROTOCOL;

    memset(b, 0, sizeof(*b));
    b->version = q[2];
    switch (q[3]) {
    case STP_BPDU_CONFIG: /* 9.3.4 a): any version, 35 octets or more */
        if (n < BPDU_CONFIG_LEN)
            return STP_RX_TRUNCATED;
        b->type = STP_BPDU_CONFIG;
        break;
    case STP_BPDU_TCN: /* 9.3.4 b) */
        b->type = STP_BPDU_TCN;
        return STP_RX_OK;
    case STP_BPDU_RST: /* 9.3.4 c): version 2 or later (MSTP's 3 included) */
        if (b->version < 2)
            return STP_RX_BAD_VERSION;
        if (n < BPDU_RST_LEN)
            return STP_RX_TRUNCATED;
        b->type = STP_BPDU_RST;
        break;
    default:
        return STP_RX_BAD_TYPE;
    }

    b->flags = q[4];
    b->root_id = get64(q + 5);
    b->root_path_cost = get32(q + 13);
    b->bridge_id = get64(q + 17);
    b->port_id = get16(q + 25);
    b->message_age = get16(q + 27);
    b->max_age = get16(q + 29);
    b->hello_time = get16(q + 31);
    b->forward_delay = get16(q + 33);

    /* 9.3.4 a) asks this of Config BPDUs; information that old is aged out
     * at once by updtRcvdInfoWhile() (17.21.23) anyway, so an RST BPDU
     * carrying it is dropped here too rather than flapping the roles. */
    if (b->message_age >= b->max_age)
        return STP_RX_BAD_MSG_AGE;
    return STP_RX_OK;
}
