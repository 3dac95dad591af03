/* libFuzzer target: the TX request parser on arbitrary ring contents, with
 * an oracle.
 *
 * The input is a 256-slot TX ring's slots (12 bytes each, the rest zero)
 * preceded by two bytes: the number of requests the "frontend" claims to
 * have produced (req_prod - req_cons, bounded by the ring size, as the
 * caller guarantees) and a starting index. Every frame is parsed until the
 * ring is used up or a fatal verdict. Each verdict is compared with a
 * reference model of netif.h's TX rules (model() below: written as the
 * rules read, not as nb-tx.c is structured), so a wrong verdict fails, not
 * only a crash.
 *
 * Built twice: as the libFuzzer target (-Dfuzz=true, clang), and with
 * NB_TX_RANDOM_MAIN as a plain test that feeds it a fixed number of
 * shaped random rings (suite fast), so every build checks the oracle. */
#include "netback/nb-private.h"

#include <stdio.h>
#include <stdlib.h>

#define RING_SLOTS 256u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the reference model ----
 * A packet is a first request, optionally followed (NETTXF_extra_info) by
 * extra-info slots chained with XEN_NETIF_EXTRA_FLAG_MORE, then by the
 * requests NETTXF_more_data chains. What xbr does with it, as Linux netback:
 *   fatal (disconnect): a chain or extra list running past req_prod; an
 *     extra of type NONE or >= MAX, a type twice, a GSO extra with size 0 or
 *     a type other than TCPv4/v6; a packet of 22 or more data slots; a
 *     following slot with offset + size past its page; the first slot's own
 *     data (its size minus the followers') past its page;
 *   multicast control: an MCAST_ADD/DEL extra makes the request a dummy,
 *     ending after its extras (ADD wins over DEL);
 *   drop: 20 or 21 data slots; followers adding up to more than the first
 *     size; a packet shorter than 14 bytes (a first slot may hold fewer: the
 *     frame is what must have an Ethernet header). Fatal conditions anywhere
 *     in the packet win over drop ones, except the first slot's page check,
 *     which is made on a packet not already dropped. */
struct model_out {
    enum nb_tx_verdict v;
    unsigned n_slots, n_data;
    uint32_t len, own;   /* whole frame, first slot's own data */
    uint8_t mcast_op;
    uint8_t gso_type;
};

static netif_tx_request_t slot(const union netif_tx_sring_entry *ring, RING_IDX i)
{
    return ring[i % RING_SLOTS].req;
}

static struct model_out model(const union netif_tx_sring_entry *ring, RING_IDX cons,
                              RING_IDX prod)
{
    struct model_out m = {.v = NB_TX_FATAL};
    RING_IDX i = cons;
    netif_tx_request_t first = slot(ring, i++);
    bool seen[XEN_NETIF_EXTRA_TYPE_MAX] = {false};
    uint8_t mcast = 0;

    if (first.flags & NETTXF_extra_info) {
        for (;;) {
            if (i == prod)
                return m;
            netif_tx_request_t raw = slot(ring, i++);
            struct netif_extra_info ex;
            memcpy(&ex, &raw, sizeof(ex));
            if (ex.type == XEN_NETIF_EXTRA_TYPE_NONE || ex.type >= XEN_NETIF_EXTRA_TYPE_MAX ||
                seen[ex.type])
                return m;
            seen[ex.type] = true;
            if (ex.type == XEN_NETIF_EXTRA_TYPE_GSO) {
                if (ex.u.gso.size == 0 || (ex.u.gso.type != XEN_NETIF_GSO_TYPE_TCPV4 &&
                                           ex.u.gso.type != XEN_NETIF_GSO_TYPE_TCPV6))
                    return m;
                m.gso_type = ex.u.gso.type;
            }
            if (ex.type == XEN_NETIF_EXTRA_TYPE_MCAST_ADD)
                mcast = XEN_NETIF_EXTRA_TYPE_MCAST_ADD;
            if (ex.type == XEN_NETIF_EXTRA_TYPE_MCAST_DEL && !mcast)
                mcast = XEN_NETIF_EXTRA_TYPE_MCAST_DEL;
            if (!(ex.flags & XEN_NETIF_EXTRA_FLAG_MORE))
                break;
        }
        if (mcast) {
            m.v = NB_TX_MCAST;
            m.mcast_op = mcast;
            m.n_slots = i - cons;
            return m;
        }
    }
    /* The data chain, all of it. */
    netif_tx_request_t chain[RING_SLOTS];
    unsigned n = 0;
    netif_tx_request_t last = first;
    while (last.flags & NETTXF_more_data) {
        if (i == prod || 1 + n + 1 >= 22) /* past req_prod, or a 22nd data slot */
            return m;
        last = chain[n++] = slot(ring, i++);
    }
    uint64_t followers = 0;
    for (unsigned k = 0; k < n; k++) {
        if ((uint32_t)chain[k].offset + chain[k].size > 4096)
            return m;
        followers += chain[k].size;
    }
    m.n_slots = i - cons;
    m.n_data = 1 + n;
    m.len = first.size;
    if (1 + n >= 20 || followers > first.size) {
        m.v = NB_TX_DROP;
        return m;
    }
    m.own = first.size - (uint32_t)followers;
    if ((uint32_t)first.offset + m.own > 4096)
        return m;
    m.v = first.size < 14 ? NB_TX_DROP : NB_TX_OK;
    return m;
}

static void wrong(const char *what, enum nb_tx_verdict got, enum nb_tx_verdict want,
                  const struct nb_tx_frame *f)
{
    fprintf(stderr, "nb_tx_parse disagrees with the model: %s (verdict %d, model %d, why %s)\n",
            what, got, want, f->why ? f->why : "-");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static union netif_tx_sring_entry ring[RING_SLOTS];
    struct nb_tx_frame f;

    if (size < 2)
        return 0;
    unsigned avail = data[0] + 1u; /* 1..256 */
    RING_IDX cons = (RING_IDX)data[1] * 0x01010101u; /* exercise wrap-around */
    data += 2;
    size -= 2;
    memset(ring, 0, sizeof(ring));
    memcpy(ring, data, size < sizeof(ring) ? size : sizeof(ring));

    RING_IDX prod = cons + avail;
    while (cons != prod) {
        enum nb_tx_verdict v = nb_tx_parse(ring, RING_SLOTS, cons, prod, &f);
        struct model_out m = model(ring, cons, prod);
        if (v != m.v)
            wrong("verdict", v, m.v, &f);
        if (v == NB_TX_FATAL) {
            if (!f.why)
                abort();
            break;
        }
        /* A verdict other than fatal consumed at least one slot, no more
         * than were there, within the per-frame bounds, and as many as the
         * model says. */
        if (f.n_slots == 0 || f.n_slots > prod - cons || f.n_slots > NB_TX_MAX_SLOTS ||
            f.n_data > NB_TX_MAX_DATA)
            abort();
        if (f.n_slots != m.n_slots)
            wrong("slots consumed", v, m.v, &f);
        if (v == NB_TX_MCAST && f.mcast_op != m.mcast_op)
            wrong("multicast op", v, m.v, &f);
        if (v == NB_TX_OK) {
            uint32_t total = 0;
            for (unsigned i = 0; i < f.n_data; i++) {
                if ((uint32_t)f.data[i].offset + f.data[i].size > NB_PAGE)
                    abort();
                total += f.data[i].size;
            }
            if (total != f.len || f.len < 14)
                abort();
            if (f.n_data != m.n_data || f.len != m.len || f.data[0].size != m.own ||
                f.gso_type != m.gso_type)
                wrong("frame layout", v, m.v, &f);
        }
        cons += f.n_slots;
    }
    return 0;
}

#ifdef NB_TX_RANDOM_MAIN
/* Rings shaped to reach every rule: packets laid out whole (extras, then a
 * chain of 1..24 data slots, mostly around the 19..22 limits), whose first
 * size is usually the sum of the slots and sometimes a little off, with
 * offsets near the page end now and then and a flag flipped at times. */
static uint32_t rng_state = 0x9e3779b9u;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void shape_ring(union netif_tx_sring_entry *ring)
{
    unsigned s = 0;
    while (s < RING_SLOTS) {
        netif_tx_request_t *first = &ring[s++].req;
        memset(first, 0, sizeof(*first));
        first->gref = rnd();
        first->id = (uint16_t)rnd();
        first->offset = (uint16_t)(rnd() % 4 == 0 ? 4096 - rnd() % 300 : rnd() % 64);
        if (rnd() % 6 == 0) { /* extra info: 1..3 slots */
            first->flags |= NETTXF_extra_info;
            unsigned n_ex = 1 + rnd() % 3;
            for (unsigned e = 0; e < n_ex && s < RING_SLOTS; e++) {
                struct netif_extra_info ex;
                memset(&ex, 0, sizeof(ex));
                ex.type = (uint8_t)(rnd() % 8 ? 1 + rnd() % 4 : rnd() % 6);
                ex.flags = e + 1 < n_ex ? XEN_NETIF_EXTRA_FLAG_MORE : 0;
                if (ex.type == XEN_NETIF_EXTRA_TYPE_GSO) {
                    ex.u.gso.size = (uint16_t)(rnd() % 8 ? 1448 : 0);
                    ex.u.gso.type = (uint8_t)(rnd() % 8 ? 1 + rnd() % 2 : rnd() % 4);
                }
                memset(&ring[s].req, 0, sizeof(ring[s].req));
                memcpy(&ring[s++].req, &ex, sizeof(ex));
            }
        }
        unsigned len = rnd() % 3 == 0 ? 18 + rnd() % 5 : 1 + rnd() % 24;
        uint32_t own = rnd() % 4 ? 14 + rnd() % 200 : rnd() % 20, sum = own;
        netif_tx_request_t *prev = first;
        for (unsigned k = 1; k < len && s < RING_SLOTS; k++) {
            netif_tx_request_t *r = &ring[s++].req;
            memset(r, 0, sizeof(*r));
            r->gref = rnd();
            r->id = (uint16_t)rnd();
            r->offset = (uint16_t)(rnd() % 40 == 0 ? 4096 - rnd() % 100 : rnd() % 64);
            r->size = (uint16_t)(rnd() % 10 == 0 ? 0 : rnd() % 200);
            sum += r->size;
            prev->flags |= NETTXF_more_data;
            prev = r;
        }
        first->size = (uint16_t)(rnd() % 8 ? sum : sum + (rnd() % 64) - 32);
        if (rnd() % 30 == 0) /* a chain cut short or run on */
            prev->flags ^= NETTXF_more_data;
    }
}

int main(int argc, char **argv)
{
    unsigned iters = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 200000u;
    static uint8_t buf[2 + RING_SLOTS * 12];
    unsigned verdicts[4] = {0};
    for (unsigned it = 0; it < iters; it++) {
        buf[0] = (uint8_t)(rnd() % 128);
        buf[1] = (uint8_t)rnd();
        /* Shaped in an aligned ring, then laid into the fuzzer's byte
         * input (which, like any fuzzer input, is not aligned). */
        static union netif_tx_sring_entry ring[RING_SLOTS];
        shape_ring(ring);
        memcpy(buf + 2, ring, sizeof(ring));
        for (RING_IDX c = 0, p = buf[0] + 1u; c != p;) { /* tally verdicts */
            struct nb_tx_frame f;
            RING_IDX base = (RING_IDX)buf[1] * 0x01010101u;
            enum nb_tx_verdict v = nb_tx_parse(ring, RING_SLOTS, base + c, base + p, &f);
            verdicts[v]++;
            if (v == NB_TX_FATAL)
                break;
            c += f.n_slots;
        }
        (void)LLVMFuzzerTestOneInput(buf, sizeof(buf));
    }
    printf("%u rings: ok %u, drop %u, fatal %u, mcast %u verdicts agreed with the model\n", iters,
           verdicts[NB_TX_OK], verdicts[NB_TX_DROP], verdicts[NB_TX_FATAL], verdicts[NB_TX_MCAST]);
    /* Every verdict must have been reached, or the shaping is broken. */
    return verdicts[NB_TX_OK] && verdicts[NB_TX_DROP] && verdicts[NB_TX_FATAL] &&
                   verdicts[NB_TX_MCAST]
               ? 0
               : 1;
}
#endif
