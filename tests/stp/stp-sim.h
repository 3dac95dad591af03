/* stp-sim.h — bridges and LANs in memory, for the RSTP engine's tests (the
 * OVS tests/test-stp.c habit).
 *
 * A LAN is a broadcast medium: a frame sent by one attached port reaches
 * every other attached port after `latency_ms` (1 ms by default). A
 * point-to-point link is a LAN with two ports; a hub, or any device that
 * forwards BPDUs, is a LAN with more. Time is simulated in 1 ms steps: each
 * step ticks every engine by 1 ms and delivers the frames that are due, so
 * everything is deterministic and no test sleeps.
 *
 * The datapath state of every port is what the engine last told through
 * set_port_state(), which is what a real datapath would obey; the loop check
 * (sim_loop_free) looks only at that.
 */
#ifndef XBR_TESTS_STP_SIM_H
#define XBR_TESTS_STP_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stp/stp.h"

#define SIM_MAX_BRIDGES 16
#define SIM_MAX_PORTS 16 /* port numbers 1..15 */
#define SIM_MAX_LANS 48
#define SIM_MAX_QUEUE 8192

struct sim;

struct sim_port {
    bool exists;
    int lan; /* -1: not attached */
    bool have_state;
    enum stp_port_state state;
    uint64_t fwd_at_ms;   /* sim time it last became forwarding */
    unsigned discards;    /* forwarding/learning -> discarding/disabled */
    unsigned flushes;
    unsigned shuts;
    char shut_why[160];
    unsigned tx_frames;
    uint8_t last_tx[STP_BPDU_FRAME_LEN];
    size_t last_tx_len;
};

struct sim_bridge {
    struct sim *sim;
    int idx;
    char name[16];
    uint8_t mac[6];
    struct stp *stp;
    bool legacy; /* a 802.1D-1998 bridge: STP only, RST BPDUs discarded */
    unsigned flush_all;
    struct sim_port port[SIM_MAX_PORTS];
};

struct sim_lan {
    bool used;
    bool up;
    bool full_duplex;
    uint32_t speed_mbps;
};

struct sim_frame {
    uint64_t due;
    int lan;
    int from_b;
    unsigned from_p;
    size_t len;
    uint8_t data[STP_BPDU_FRAME_LEN];
};

struct sim {
    uint64_t now;
    unsigned latency_ms;
    int nb, nl;
    struct sim_bridge br[SIM_MAX_BRIDGES];
    struct sim_lan lan[SIM_MAX_LANS];
    struct sim_frame q[SIM_MAX_QUEUE];
    unsigned qhead, qlen;
    uint64_t queue_overflows;
    uint64_t frames_delivered;
    /* Optional: return false to drop a frame before it reaches (b, p). */
    bool (*rx_filter)(struct sim *s, int b, unsigned p, const uint8_t *frame, size_t len);
    /* Optional: sees every frame an engine sends. */
    void (*tx_hook)(struct sim *s, int b, unsigned p, const uint8_t *frame, size_t len);
    void *user;
};

struct sim *sim_new(void);
void sim_free(struct sim *s);

/* A bridge with MAC 02:00:00:00:00:<mac_last> and the given priority. Its
 * engine clock is offset by a per-bridge phase so that bridges do not all
 * tick on the same millisecond. */
int sim_bridge(struct sim *s, const char *name, unsigned priority, uint8_t mac_last);
/* Same, as a legacy 802.1D-1998 bridge (force-version stp, and RST BPDUs are
 * dropped on receipt like any unknown BPDU type). */
int sim_legacy_bridge(struct sim *s, const char *name, unsigned priority, uint8_t mac_last);
/* Adds port p (1..15), link down until attached. cfg NULL = uplink. */
void sim_port(struct sim *s, int b, unsigned p, const struct stp_port_config *cfg);
/* A LAN; full duplex makes p2p auto true on its ports. */
int sim_lan(struct sim *s, bool full_duplex);
/* Attaches port (b, p) to lan and brings its link up. */
void sim_attach(struct sim *s, int lan, int b, unsigned p);
/* Unplugs port (b, p): link down. */
void sim_detach(struct sim *s, int b, unsigned p);
/* A point-to-point link between two ports (both added if missing). */
int sim_link(struct sim *s, int b1, unsigned p1, int b2, unsigned p2);
/* Cuts a LAN: every attached port goes link down; frames in flight are lost. */
void sim_lan_cut(struct sim *s, int lan);
/* Puts a frame on a LAN as if sent by something that is not a bridge port. */
void sim_inject(struct sim *s, int lan, const void *frame, size_t len);

/* Runs ms milliseconds. */
void sim_run(struct sim *s, unsigned ms);
/* Runs until cond holds (checked every ms) or max_ms passed; returns the ms
 * it took, or max_ms + 1 if it never held. */
unsigned sim_run_until(struct sim *s, unsigned max_ms, bool (*cond)(struct sim *s));

enum stp_port_role sim_role(struct sim *s, int b, unsigned p);
enum stp_port_state sim_state(struct sim *s, int b, unsigned p);
struct stp_port_status sim_port_status(struct sim *s, int b, unsigned p);
struct stp_bridge_status sim_bridge_status(struct sim *s, int b);
uint64_t sim_bridge_id(struct sim *s, int b);

/* No cycle of forwarding ports through bridges and LANs. */
bool sim_loop_free(struct sim *s);
/* Every bridge with an attached port reaches every other one through
 * forwarding ports and up LANs. */
bool sim_connected(struct sim *s);
/* Counts attached ports (on up LANs) in a datapath state. */
unsigned sim_count_state(struct sim *s, enum stp_port_state st);
/* Every bridge with an attached port agrees on the root; the callbacks' states match the engines'
 * status; no engine hit its state machine bound. */
bool sim_consistent(struct sim *s);
/* Zeroes the per-port flush/tx/discard counters. */
void sim_reset_counters(struct sim *s);

#endif
