/* libFuzzer target: the TX request parser on arbitrary ring contents.
 *
 * The input is a 256-slot TX ring's slots (12 bytes each, the rest zero)
 * preceded by two bytes: the number of requests the "frontend" claims to
 * have produced (req_prod - req_cons, bounded by the ring size, as the
 * caller guarantees) and a starting index. Every frame is parsed until the
 * ring is used up or a fatal verdict; the invariants below must hold. */
#include "netback/nb-private.h"

#include <stdlib.h>

#define RING_SLOTS 256u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
        if (v == NB_TX_FATAL) {
            if (!f.why)
                abort();
            break;
        }
        /* A verdict other than fatal consumed at least one slot, no more
         * than were there, within the per-frame bounds. */
        if (f.n_slots == 0 || f.n_slots > prod - cons || f.n_slots > NB_TX_MAX_SLOTS ||
            f.n_data > NB_TX_MAX_DATA)
            abort();
        if (v == NB_TX_OK) {
            uint32_t total = 0;
            for (unsigned i = 0; i < f.n_data; i++) {
                if ((uint32_t)f.data[i].offset + f.data[i].size > NB_PAGE)
                    abort();
                total += f.data[i].size;
            }
            if (total != f.len || f.len < 14)
                abort();
        }
        cons += f.n_slots;
    }
    return 0;
}
