/* fuzz-stp.c — libFuzzer target: the input is a script of events for one
 * engine with three ports (frames, ticks, link changes, parameters). Frames
 * the engine sends on port 1 come back on port 2 and 3 (a reflecting hub),
 * so its own BPDUs are part of the mix. It looks for crashes and
 * out-of-bounds access (build with sanitizers) and for the state machines
 * failing to settle (sm_bound_hits), which aborts.
 *
 *   meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
 *     --native-file <clang> ; ninja -C build-fuzz tests/stp/fuzz-stp
 *   ./build-fuzz/tests/stp/fuzz-stp -max_total_time=60
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stp/stp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct echo {
    uint8_t frame[STP_BPDU_FRAME_LEN];
    size_t len;
    bool pending;
};

static void on_send(void *aux, unsigned port_no, const void *frame, size_t len)
{
    struct echo *e = aux;
    if (port_no == 1 && len <= sizeof(e->frame)) {
        memcpy(e->frame, frame, len);
        e->len = len;
        e->pending = true;
    }
}

static const char *const bkeys[] = {"priority", "hello-time", "max-age", "forward-delay",
                                    "force-version", "tx-hold-count", "enabled"};
static const char *const pkeys[] = {"priority",   "path-cost",  "admin-edge",
                                    "auto-edge",  "point-to-point", "bpdu-guard",
                                    "root-guard", "bpdu-filter", "mcheck"};
static const char *const vals[] = {"0",  "2",   "4",    "16",  "20",  "30",  "4096",
                                   "yes", "no", "auto", "stp", "rstp", "x",  ""};

#define N(a) (sizeof(a) / sizeof((a)[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
    struct echo e = {0};
    struct stp_callbacks cb = {.send_bpdu = on_send};
    struct stp *stp = stp_create("fuzz", mac, &cb, &e);
    char err[96];

    if (!stp)
        abort();
    for (unsigned p = 1; p <= 3; p++) {
        struct stp_port_config c;
        stp_port_config_uplink(&c);
        stp_port_add(stp, p, mac, &c);
    }
    size_t i = 0;
    while (i < size) {
        uint8_t op = data[i++];
        unsigned port = 1 + (op >> 4) % 3;
        switch (op & 7) {
        case 0:
        case 1: { /* a frame: length byte, then bytes */
            if (i >= size)
                break;
            size_t len = data[i++];
            if (len > size - i)
                len = size - i;
            stp_rx_bpdu(stp, port, data + i, len);
            i += len;
            break;
        }
        case 2: /* ticks */
            if (i + 1 < size) {
                stp_tick(stp, (uint32_t)data[i] * 40u + data[i + 1]);
                i += 2;
            }
            break;
        case 3:
            stp_port_set_link(stp, port, op & 8, (op & 8) ? 1000u : 0u, true);
            break;
        case 4:
            if (i + 1 < size) {
                stp_set_param(stp, bkeys[data[i] % N(bkeys)], vals[data[i + 1] % N(vals)], err,
                              sizeof(err));
                i += 2;
            }
            break;
        case 5:
            if (i + 1 < size) {
                stp_port_set_param(stp, port, pkeys[data[i] % N(pkeys)],
                                   vals[data[i + 1] % N(vals)], err, sizeof(err));
                i += 2;
            }
            break;
        case 6:
            stp_port_reenable(stp, port);
            break;
        default: /* the hub reflects what port 1 sent */
            if (e.pending) {
                e.pending = false;
                stp_rx_bpdu(stp, 2, e.frame, e.len);
                stp_rx_bpdu(stp, 3, e.frame, e.len);
            }
            break;
        }
        struct stp_bridge_status bs;
        stp_get_bridge_status(stp, &bs);
        if (bs.sm_bound_hits)
            abort();
        struct stp_port_status ps;
        if (stp_get_port_status(stp, port, &ps) || ps.role > STP_ROLE_BACKUP ||
            ps.state > STP_STATE_FORWARDING)
            abort();
    }
    stp_destroy(stp);
    return 0;
}
