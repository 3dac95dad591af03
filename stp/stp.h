/* stp — the Rapid Spanning Tree engine of one bridge (IEEE 802.1D-2004
 * clause 17), interoperating with legacy 802.1D-1998 STP bridges through
 * protocol migration (17.24), plus the clause 9 BPDU codec.
 *
 * No I/O, no clock
 *   The engine reads no clock and touches no socket. Time comes in through
 *   stp_tick() (milliseconds; the standard's timers run in whole seconds and
 *   tick once per accumulated second), received frames come in through
 *   stp_rx_bpdu(), and everything the engine decides goes out through the
 *   callbacks in struct stp_callbacks. So the whole protocol runs in memory,
 *   deterministically, in the unit tests (tests/stp/).
 *
 * Threading and re-entrancy
 *   An engine is a plain object: the caller serialises every call on one
 *   instance (the daemon's control thread does). Callbacks are invoked
 *   synchronously from inside stp_* calls and must not call back into the
 *   same instance (queue the frame, store the state, return).
 *
 * Ports
 *   A port number is 0..STP_MAX_PORT_NO (the 12-bit Port Number of the Port
 *   Identifier, 9.2.7). A port that is added is up (link up, speed unknown,
 *   full duplex) until stp_port_set_link() says otherwise; it starts
 *   discarding, and the engine sends a BPDU on it at once so that a loop
 *   through a device that forwards BPDUs is seen in milliseconds. An edge
 *   port (admin-edge) goes forwarding at once; any other port forwards only
 *   when RSTP says so (proposal/agreement on point-to-point links, or the
 *   timers). The datapath gate is whatever set_port_state() said last.
 *   Designated ports send BPDUs every Hello Time, edge ports (guest vifs)
 *   included: that is how a guest bridging two of its vifs is caught by
 *   BPDU guard. Only bpdu-filter silences a port.
 *
 * Hostile input
 *   stp_rx_bpdu() and stp_bpdu_decode() take any bytes: every length is
 *   checked before it is read, invalid frames are dropped and counted per
 *   reason (enum stp_rx_result) — they never change protocol state.
 *
 * Libraries do not log: everything worth knowing is in the status structs.
 */
#ifndef XBR_STP_H
#define XBR_STP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stp;

#define STP_MAX_PORT_NO 4095u
#define STP_ALL_PORTS 0xffffffffu /* flush_fdb(): every port of the bridge */
#define STP_NO_PORT 0xfffffffeu   /* stp_bridge_status.root_port on the root */

/* Largest frame stp_bpdu_encode() writes (the 802.3 minimum, padded). */
#define STP_BPDU_FRAME_LEN 60u

/* The datapath gate of a port (17.30 plus "disabled" for a port that is
 * down or shut by BPDU guard). */
enum stp_port_state {
    STP_STATE_DISABLED,   /* link down or shut: nothing in, nothing out */
    STP_STATE_DISCARDING, /* BPDUs only; no learning, no forwarding */
    STP_STATE_LEARNING,   /* learn source addresses, do not forward */
    STP_STATE_FORWARDING, /* learn and forward */
};

/* 17.7 Port Roles. */
enum stp_port_role {
    STP_ROLE_DISABLED,
    STP_ROLE_ROOT,
    STP_ROLE_DESIGNATED,
    STP_ROLE_ALTERNATE,
    STP_ROLE_BACKUP,
};

/* adminPointToPointMAC: auto follows the link's duplex. */
enum stp_p2p {
    STP_P2P_AUTO,
    STP_P2P_YES,
    STP_P2P_NO,
};

/* Force Protocol Version (17.13). */
enum stp_version {
    STP_VERSION_STP = 0,  /* send only Config and TCN BPDUs (802.1D-1998) */
    STP_VERSION_RSTP = 2, /* normal: RST BPDUs, legacy peers by migration */
};

struct stp_callbacks {
    /* Sends a complete 802.3 frame on port_no: destination 01:80:c2:00:00:00,
     * source the port's MAC, length field, LLC 42 42 03, BPDU, zero padding
     * to 60 bytes. The buffer is only valid during the call. Mandatory. */
    void (*send_bpdu)(void *aux, unsigned port_no, const void *frame, size_t len);
    /* The port's datapath state changed. Called before any BPDU that relies
     * on it (an agreement is sent only after the ports it covers were told
     * to discard). Optional. */
    void (*set_port_state)(void *aux, unsigned port_no, enum stp_port_state state);
    /* Remove the addresses learned on port_no, or on every port when port_no
     * is STP_ALL_PORTS: fdbFlush (17.19.7) of the Topology Change machine.
     * A topology change flushes every non-edge port but the one it came in
     * on, one call per port; a port that stops learning is flushed too. When
     * one event flushes every port (enabling the engine restarts it) the
     * engine makes a single STP_ALL_PORTS call. A port that never learned
     * since its last flush is not named. Optional. */
    void (*flush_fdb)(void *aux, unsigned port_no);
    /* The engine shut port_no (BPDU guard); `why` is a short human sentence.
     * The port is already reported disabled; stp_port_reenable() undoes it.
     * Optional notification. */
    void (*port_shut)(void *aux, unsigned port_no, const char *why);
};

/* Per-port configuration (17.13 and the usual guard extensions). */
struct stp_port_config {
    uint8_t priority;     /* 0..240 in steps of 16 (17.13); default 128 */
    uint32_t path_cost;   /* 1..200000000, or 0 = from link speed (17.14) */
    bool admin_edge;      /* AdminEdgePort (17.13) */
    bool auto_edge;       /* AutoEdgePort (17.13) */
    enum stp_p2p p2p;     /* adminPointToPointMAC */
    bool bpdu_guard;      /* a BPDU received shuts the port */
    bool root_guard;      /* restrictedRole (802.1Q-2005 13.25.14) */
    bool bpdu_filter;     /* neither send nor process BPDUs */
};

/* An uplink: non-edge, auto-edge on, p2p auto, no guards. */
void stp_port_config_uplink(struct stp_port_config *cfg);
/* A guest vif: an end station, so admin edge and BPDU guard on (a BPDU
 * arriving there is a loop through the guest or an attack). */
void stp_port_config_guest(struct stp_port_config *cfg);

/* Creates an engine, enabled, with the 17.14 defaults (priority 32768,
 * hello 2 s, max age 20 s, forward delay 15 s, tx hold count 6, RSTP).
 * bridge_mac is the Bridge Address. Returns NULL on a NULL argument,
 * a missing send_bpdu, or out of memory. */
struct stp *stp_create(const char *name, const uint8_t bridge_mac[6],
                       const struct stp_callbacks *cb, void *aux);
/* Frees everything; no callback is made. Accepts NULL. */
void stp_destroy(struct stp *stp);

/* Adds a port (cfg NULL = uplink defaults). Returns 0, -EINVAL (bad number or
 * configuration), -EEXIST, -ENOMEM, or -EBUSY when called from a callback. */
int stp_port_add(struct stp *stp, unsigned port_no, const uint8_t port_mac[6],
                 const struct stp_port_config *cfg);
/* Removes a port; the others reconverge. No callback names the removed port
 * afterwards (its addresses are the caller's business). */
void stp_port_del(struct stp *stp, unsigned port_no);
/* Link state: portEnabled, the automatic path cost (speed 0 = unknown, taken
 * as 1 Gb/s) and, with p2p auto, operPointToPointMAC from the duplex. */
void stp_port_set_link(struct stp *stp, unsigned port_no, bool up, uint32_t speed_mbps,
                       bool duplex_full);
/* A received frame, Ethernet header included. Any bytes, any length. */
void stp_rx_bpdu(struct stp *stp, unsigned port_no, const void *frame, size_t len);
/* Advances engine time; the 1-second timers (17.22) tick once per
 * accumulated 1000 ms. At most 1024 ticks are run per call (every timer is
 * long expired by then); the rest of a larger jump only moves the clock. */
void stp_tick(struct stp *stp, uint32_t elapsed_ms);
/* Disabled: every port that is up forwards, no BPDU is sent, received BPDUs
 * are ignored (guards included). Enabling restarts the protocol (BEGIN):
 * every port discards until RSTP lets it forward. Ports shut by BPDU guard
 * stay shut either way. */
void stp_set_enabled(struct stp *stp, bool enabled);

/* Bridge parameters, as strings (the control protocol's habit):
 *   priority       0..61440, multiple of 4096            (17.13)
 *   hello-time     1..10 s (802.1D-1998's range)         (17.13)
 *   max-age        6..40 s                               (17.14)
 *   forward-delay  4..30 s                               (17.14)
 *     with 2 * (forward-delay - 1) >= max-age >= 2 * (hello-time + 1)
 *   force-version  stp | rstp                            (17.13)
 *   tx-hold-count  1..10                                 (17.14)
 *   ageing-time    10..1000000 s (stored for the caller)
 *   enabled        yes | no
 * Returns 0, -ENOENT (unknown key) or -EINVAL / -ERANGE with a sentence in
 * err (when err is not NULL). Nothing changes on error. */
int stp_set_param(struct stp *stp, const char *key, const char *value, char *err,
                  size_t errlen);
/* Port parameters:
 *   priority        0..240, multiple of 16
 *   path-cost       1..200000000 | 0 | auto
 *   admin-edge, auto-edge, bpdu-guard, root-guard, bpdu-filter   yes | no
 *   point-to-point  auto | yes | no
 *   mcheck          yes: force a migration check (mcheck, 17.19.13)
 * Returns as stp_set_param(), or -ENODEV for an unknown port. */
int stp_port_set_param(struct stp *stp, unsigned port_no, const char *key, const char *value,
                       char *err, size_t errlen);
/* Brings back a port that BPDU guard shut. Returns 0, -ENODEV, or -EALREADY
 * if it was not shut. */
int stp_port_reenable(struct stp *stp, unsigned port_no);

/* Introspection, for `xbrctl stp show`. Identifiers are the 64-bit values of
 * 9.2.5 (priority in the top 16 bits, MAC below); port ids are 9.2.7. */
struct stp_bridge_status {
    char name[32];
    bool enabled;
    enum stp_version force_version;
    uint64_t bridge_id;
    uint64_t root_id;           /* designated root */
    uint32_t root_path_cost;
    unsigned root_port;         /* port number, or STP_NO_PORT on the root */
    uint16_t root_port_id;      /* 0 on the root */
    bool is_root;
    /* Times in use (rootTimes, 17.18.7): the root's values */
    unsigned max_age, hello_time, forward_delay, message_age;
    /* Configured (BridgeTimes, 17.18.4) */
    unsigned bridge_max_age, bridge_hello_time, bridge_forward_delay;
    unsigned tx_hold_count;
    unsigned ageing_time;
    bool topology_change;       /* some port's tcWhile is running */
    uint64_t topology_change_count;
    bool has_tc;                /* a topology change was ever seen */
    uint64_t time_since_tc_ms;  /* engine time since the last one */
    uint64_t now_ms;            /* engine time */
    unsigned n_ports;
    uint64_t sm_bound_hits;     /* state machine runs cut by the safety bound */
};

/* Why a received frame was dropped (index of stp_port_counters.rx_drop). */
enum stp_rx_result {
    STP_RX_OK,
    STP_RX_TRUNCATED,    /* shorter than its headers, length field or BPDU type */
    STP_RX_BAD_DST,      /* not 01:80:c2:00:00:00 */
    STP_RX_BAD_SRC,      /* group source address */
    STP_RX_BAD_LENGTH,   /* 802.3 length field < 3, > 1500, or an EtherType */
    STP_RX_BAD_LLC,      /* not DSAP 0x42, SSAP 0x42, UI */
    STP_RX_BAD_PROTOCOL, /* Protocol Identifier not 0 (9.3.4) */
    STP_RX_BAD_VERSION,  /* RST BPDU type with version < 2 */
    STP_RX_BAD_TYPE,     /* not Config (0x00), RST (0x02), TCN (0x80) */
    STP_RX_BAD_MSG_AGE,  /* Message Age >= Max Age (9.3.4 a) */
    STP_RX_OWN_BPDU,     /* this port's own BPDU came back (9.3.4 a) */
    STP_RX__MAX
};

struct stp_port_counters {
    uint64_t rx_config, rx_tcn, rx_rst; /* valid BPDUs processed */
    uint64_t tx_config, tx_tcn, tx_rst;
    uint64_t rx_drop[STP_RX__MAX];      /* [STP_RX_OK] stays 0 */
    uint64_t rx_filtered;               /* ignored: bpdu-filter */
    uint64_t rx_ignored;                /* ignored: port down or shut */
    uint64_t timers_clamped;            /* received times outside 17.14 ranges */
    uint64_t tx_held;                   /* BPDUs delayed by TxHoldCount */
    uint64_t bpdu_guard_trips;
    uint64_t root_guard_trips;
    uint64_t fwd_transitions;           /* times the port went forwarding */
};

struct stp_port_status {
    unsigned port_no;
    uint16_t port_id;
    enum stp_port_role role;
    enum stp_port_state state;
    bool link_up;
    bool enabled;               /* portEnabled: link up and not shut */
    bool shut_by_guard;
    bool admin_edge, auto_edge, oper_edge;
    enum stp_p2p admin_p2p;
    bool oper_p2p;
    bool bpdu_guard, root_guard, bpdu_filter;
    bool root_guard_blocking;   /* superior info held back by root guard */
    uint8_t priority;
    uint32_t path_cost;
    bool path_cost_auto;
    enum stp_version protocol;  /* sendRSTP: what this port speaks now */
    /* port priority vector (17.19.21): what the LAN's designated port says */
    uint64_t designated_root;
    uint32_t designated_cost;
    uint64_t designated_bridge;
    uint16_t designated_port;
    bool proposing, agreed;
    /* some running timers (17.17), seconds */
    unsigned fd_while, tc_while, rcvd_info_while, edge_delay_while, hello_when;
    struct stp_port_counters counters;
};

void stp_get_bridge_status(const struct stp *stp, struct stp_bridge_status *st);
/* Returns 0 or -ENODEV. */
int stp_get_port_status(const struct stp *stp, unsigned port_no, struct stp_port_status *st);
/* Fills ports[] with up to max port numbers in increasing order; returns how
 * many ports exist (which may be more than max). */
unsigned stp_get_ports(const struct stp *stp, unsigned *ports, unsigned max);

const char *stp_state_name(enum stp_port_state state); /* "discarding", ... */
const char *stp_role_name(enum stp_port_role role);    /* "root", ... */
const char *stp_version_name(enum stp_version v);      /* "stp" / "rstp" */
const char *stp_p2p_name(enum stp_p2p p2p);            /* "auto" / "yes" / "no" */
const char *stp_rx_result_name(enum stp_rx_result r);  /* "truncated", ... */

/* "8000.0200000000aa": priority (hex) '.' MAC — the brctl habit. */
#define STP_ID_STRLEN 18
char *stp_id_format(uint64_t id, char buf[STP_ID_STRLEN]);

/* Clause 9 codec, public for tests, fuzzers and packet dumps. */
enum stp_bpdu_type {
    STP_BPDU_CONFIG = 0x00,
    STP_BPDU_RST = 0x02,
    STP_BPDU_TCN = 0x80,
};

/* Flags octet (9.3.1 / 9.3.3). */
#define STP_FLAG_TC 0x01u
#define STP_FLAG_PROPOSAL 0x02u
#define STP_FLAG_ROLE_MASK 0x0cu
#define STP_FLAG_ROLE_SHIFT 2
#define STP_FLAG_LEARNING 0x10u
#define STP_FLAG_FORWARDING 0x20u
#define STP_FLAG_AGREEMENT 0x40u
#define STP_FLAG_TC_ACK 0x80u

/* Port Role values in RST BPDU flags (9.2.9). */
enum stp_bpdu_role {
    STP_BPDU_ROLE_UNKNOWN = 0,
    STP_BPDU_ROLE_ALT_BACKUP = 1,
    STP_BPDU_ROLE_ROOT = 2,
    STP_BPDU_ROLE_DESIGNATED = 3,
};

/* A BPDU as on the wire; times in units of 1/256 s (9.2.8). For a TCN only
 * type and version are meaningful. */
struct stp_bpdu {
    enum stp_bpdu_type type;
    uint8_t version;
    uint8_t flags;
    uint64_t root_id;
    uint32_t root_path_cost;
    uint64_t bridge_id;
    uint16_t port_id;
    uint16_t message_age, max_age, hello_time, forward_delay;
};

/* Writes the full frame (padded to STP_BPDU_FRAME_LEN) into buf; returns its
 * length, or 0 if size is too small or the type is unknown. */
size_t stp_bpdu_encode(const struct stp_bpdu *bpdu, const uint8_t src_mac[6], void *buf,
                       size_t size);
/* Validates a received frame (Ethernet, LLC, and 9.3.4 but for the own-port
 * check, which needs the port) and decodes it. Returns STP_RX_OK and fills
 * *bpdu, or the reason it is invalid (then *bpdu is unspecified). */
enum stp_rx_result stp_bpdu_decode(const void *frame, size_t len, struct stp_bpdu *bpdu);

#endif
