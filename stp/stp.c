/* stp.c — the RSTP engine: IEEE 802.1D-2004 clause 17 state machines.
 *
 * How it is built
 *   Every state machine of clause 17 is one function, headed by its clause
 *   and named after it; its variables carry the standard's names in
 *   snake_case (rcvdMsg -> rcvd_msg, edgeDelayWhile -> edge_delay_while).
 *   A machine function evaluates the exit conditions of its current state
 *   (global transitions such as BEGIN first), and when one holds, enters the
 *   new state, runs that state's entry actions and returns true. Unconditional
 *   transitions (UCT) are taken on the next evaluation. The driver,
 *   run_machines(), re-evaluates all machines until none moves, with a safety
 *   bound (counted in sm_bound_hits, never logged).
 *
 *   The machines of the standard are concurrent; the driver picks one fair
 *   interleaving: all machines but Port Transmit first, until they settle,
 *   then Port Transmit. So a BPDU always carries settled information and a
 *   change that ripples through several machines costs one BPDU, not five
 *   (TxHoldCount is precious, 17.13).
 *
 *   Time: stp_tick() accumulates milliseconds and runs the Port Timers
 *   machine (17.22) once per whole second, then the other machines. Every
 *   other input (a BPDU, a link change, a parameter) runs the machines at
 *   once, so a BPDU is answered in the same call that delivered it.
 *
 * Where this follows later corrections instead of the 802.1D-2004 text (each
 * is marked "deviation" below):
 *   - recordDispute() sets disputed and clears agreed (as 802.1Q-2005 does);
 *     the 2004 text sets agreed, which defeats the dispute mechanism.
 *   - rcvInfo() sets rcvdTcn for a TCN BPDU (as 802.1Q-2005 does): the 2004
 *     OTHER state calls no setTcFlags(), so a TCN would otherwise be lost.
 *   - DISABLE_PORT sets role = DisabledPort, not selectedRole: with the 2004
 *     text a port whose role selection ran before it left INIT_PORT can be
 *     stuck with role == selectedRole in the Disabled states.
 *   - Bridge Detection leaves EDGE when AutoEdge is turned off on a port that
 *     is not AdminEdge (as 802.1Q-2011 does).
 *   - Port Transmit re-initialises while the port is disabled (802.1Q-2011),
 *     so a port that comes up starts with newInfo set and txCount zero.
 *   - A root port that speaks STP (sendRSTP false) sends a TCN only while
 *     tcWhile runs: a legacy root port sends nothing else, and the 2004 text
 *     would send a spurious TCN after every agreement.
 *   - A Designated Port that receives inferior designated information
 *     answers at once (newInfo), as an 802.1D-1998 bridge replies to an
 *     inferior Configuration BPDU: the sender learns
 *     it is not designated in milliseconds instead of a Hello Time. This is
 *     what makes two ports of this bridge on one LAN (a hub, or a guest that
 *     bridges two vifs) fall back to Backup before anything forwards.
 *   - Received timer values are clamped to the 17.14 ranges (counted).
 *   - A port's own BPDU coming back to it is dropped for RST BPDUs too, as
 *     9.3.4 a) asks for Config BPDUs.
 */
#include "stp/stp.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 17.14 Table 17-1 / 17-2 values and limits. */
#define MIGRATE_TIME 3u
#define DEFAULT_BRIDGE_PRIORITY 32768u
#define DEFAULT_PORT_PRIORITY 128u
#define DEFAULT_HELLO_TIME 2u
#define DEFAULT_MAX_AGE 20u
#define DEFAULT_FORWARD_DELAY 15u
#define DEFAULT_TX_HOLD_COUNT 6u
#define DEFAULT_AGEING_TIME 300u
#define MIN_HELLO_TIME 1u
#define MAX_HELLO_TIME 10u
#define MIN_MAX_AGE 6u
#define MAX_MAX_AGE 40u
#define MIN_FORWARD_DELAY 4u
#define MAX_FORWARD_DELAY 30u
#define MAX_PATH_COST 200000000u
#define UNKNOWN_SPEED_PATH_COST 20000u /* as 1 Gb/s */

#define SM_MAX_ITERATIONS 1000
#define MAX_TICKS_PER_CALL 1024u
#define MAC_MASK 0x0000ffffffffffffull
#define PORT_NUMBER_MASK 0x0fffu

/* Timer values, whole seconds (17.19.22 portTimes and friends). */
struct stp_times {
    uint16_t message_age;
    uint16_t max_age;
    uint16_t hello_time;
    uint16_t forward_delay;
};

/* 17.5/17.6 priority vector: {RootBridgeID : RootPathCost :
 * DesignatedBridgeID : DesignatedPortID}. The fifth component, the receiving
 * Bridge Port ID, is added where it matters (root port selection). */
struct prio_vector {
    uint64_t root_id;
    uint32_t root_cost;
    uint64_t bridge_id;
    uint16_t port_id;
};

/* 17.19.10 infoIs */
enum info_is { INFO_DISABLED, INFO_AGED, INFO_MINE, INFO_RECEIVED };

/* rcvdInfo (17.19), the result of rcvInfo() (17.21.8) */
enum rcvd_info {
    SUPERIOR_DESIGNATED_INFO,
    REPEATED_DESIGNATED_INFO,
    INFERIOR_DESIGNATED_INFO,
    INFERIOR_ROOT_ALTERNATE_INFO,
    OTHER_INFO,
};

/* States, one enum per machine. */
enum prx_state { PRX_DISCARD, PRX_RECEIVE };
enum ppm_state { PPM_CHECKING_RSTP, PPM_SELECTING_STP, PPM_SENSING };
enum bdm_state { BDM_EDGE, BDM_NOT_EDGE };
enum ptx_state {
    PTX_TRANSMIT_INIT,
    PTX_IDLE,
    PTX_TRANSMIT_PERIODIC,
    PTX_TRANSMIT_CONFIG,
    PTX_TRANSMIT_TCN,
    PTX_TRANSMIT_RSTP,
};
enum pim_state {
    PIM_DISABLED,
    PIM_AGED,
    PIM_UPDATE,
    PIM_CURRENT,
    PIM_RECEIVE,
    PIM_SUPERIOR_DESIGNATED,
    PIM_REPEATED_DESIGNATED,
    PIM_INFERIOR_DESIGNATED,
    PIM_NOT_DESIGNATED,
    PIM_OTHER,
};
enum prs_state { PRS_INIT_BRIDGE, PRS_ROLE_SELECTION };
enum prt_state {
    PRT_INIT_PORT,
    PRT_DISABLE_PORT,
    PRT_DISABLED_PORT,
    PRT_ROOT_PORT,
    PRT_ROOT_PROPOSED,
    PRT_ROOT_AGREED,
    PRT_REROOT,
    PRT_ROOT_FORWARD,
    PRT_ROOT_LEARN,
    PRT_REROOTED,
    PRT_DESIGNATED_PORT,
    PRT_DESIGNATED_PROPOSE,
    PRT_DESIGNATED_SYNCED,
    PRT_DESIGNATED_RETIRED,
    PRT_DESIGNATED_FORWARD,
    PRT_DESIGNATED_LEARN,
    PRT_DESIGNATED_DISCARD,
    PRT_ALTERNATE_PORT,
    PRT_ALTERNATE_PROPOSED,
    PRT_ALTERNATE_AGREED,
    PRT_BLOCK_PORT,
    PRT_BACKUP_PORT,
};
enum pst_state { PST_DISCARDING, PST_LEARNING, PST_FORWARDING };
enum tcm_state {
    TCM_INACTIVE,
    TCM_LEARNING,
    TCM_DETECTED,
    TCM_ACTIVE,
    TCM_NOTIFIED_TCN,
    TCM_NOTIFIED_TC,
    TCM_PROPAGATING,
    TCM_ACKNOWLEDGED,
};

/* A received BPDU after validation, as the Port Information machine needs
 * it: the payload behind rcvdBpdu, from which rcvInfo() takes msgPriority
 * and msgTimes (17.19). */
struct rx_msg {
    enum stp_bpdu_type type;
    enum stp_bpdu_role role; /* Config BPDUs convey Designated (17.21.8) */
    uint8_t flags;
    struct prio_vector prio;
    struct stp_times times;
};

struct stp_port {
    struct stp *stp;
    unsigned port_no;
    uint8_t mac[6];
    struct stp_port_config cfg;

    /* Link and administrative state, not in clause 17. */
    bool link_up;
    uint32_t speed_mbps;
    bool duplex_full;
    bool shut;     /* by BPDU guard */
    bool begin;    /* BEGIN for this port's machines (port added) */
    bool deleting; /* being removed: no callback names it any more */
    bool have_state;
    enum stp_port_state reported;
    bool fdb_dirty; /* the datapath may hold addresses learned here */
    bool tx_held;   /* a BPDU is waiting for txCount (counted once) */
    bool flush_pending; /* fdbFlush done, callback due at the end of the run */
    bool restricted_blocking;

    /* 17.19 per-port variables */
    bool port_enabled;      /* 17.19.18 */
    uint16_t port_id;       /* 17.19.19 */
    uint32_t port_path_cost; /* 17.19.20 */
    bool oper_p2p;          /* operPointToPointMAC (6.4.3) */
    bool agree, agreed, disputed, fdb_flush, forward, forwarding;
    bool learn, learning, mcheck, new_info, oper_edge;
    bool proposed, proposing;
    bool rcvd_bpdu, rcvd_msg, rcvd_rstp, rcvd_stp, rcvd_tc, rcvd_tc_ack, rcvd_tcn;
    bool re_root, reselect, selected, send_rstp, sync, synced;
    bool tc_ack, tc_prop, updt_info;
    enum info_is info_is;
    enum rcvd_info rcvd_info;
    enum stp_port_role role, selected_role;
    struct prio_vector designated_priority, msg_priority, port_priority;
    struct stp_times designated_times, msg_times, port_times;
    unsigned tx_count;

    /* 17.17 timers, seconds */
    uint16_t edge_delay_while, fd_while, hello_when, mdelay_while;
    uint16_t rb_while, rcvd_info_while, rr_while, tc_while;

    struct rx_msg rx;

    /* machine states */
    enum prx_state prx;
    enum ppm_state ppm;
    enum bdm_state bdm;
    enum ptx_state ptx;
    enum pim_state pim;
    enum prt_state prt;
    enum pst_state pst;
    enum tcm_state tcm;

    struct stp_port_counters c;
};

struct stp {
    char name[32];
    struct stp_callbacks cb;
    void *aux;
    uint8_t mac[6];
    bool enabled;
    bool begin; /* 17.18.1 BEGIN */
    bool in_run;

    /* 17.13 management parameters */
    unsigned priority;
    enum stp_version force_version;
    unsigned tx_hold_count;
    unsigned ageing_time;

    /* 17.18 per-bridge variables */
    uint64_t bridge_id;                /* 17.18.2 BridgeIdentifier */
    struct prio_vector bridge_priority; /* 17.18.3 BridgePriority */
    struct stp_times bridge_times;     /* 17.18.4 BridgeTimes */
    struct stp_port *root_port;        /* 17.18.5 rootPortId */
    uint16_t root_port_id;
    struct prio_vector root_priority;  /* 17.18.6 */
    struct stp_times root_times;       /* 17.18.7 */
    enum prs_state prs;

    struct stp_port **ports; /* sorted by port_no */
    unsigned n_ports, cap_ports;

    uint64_t now_ms;
    uint32_t ms_acc;
    uint64_t tc_count;
    uint16_t tc_active_while; /* seconds: a TC was detected or heard lately */
    bool has_tc;
    uint64_t last_tc_ms;
    uint64_t sm_bound_hits;
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

static uint64_t make_bridge_id(unsigned priority, const uint8_t mac[6])
{
    uint64_t id = (uint64_t)(priority & 0xffffu) << 48;
    for (int i = 0; i < 6; i++)
        id |= (uint64_t)mac[i] << (8 * (5 - i));
    return id;
}

/* 9.2.7: 4-bit priority (configured in steps of 16) and 12-bit number. */
static uint16_t make_port_id(uint8_t priority, unsigned port_no)
{
    return (uint16_t)(((unsigned)(priority & 0xf0u) << 8) | (port_no & PORT_NUMBER_MASK));
}

/* 17.14 Table 17-3: 20 Tb/s divided by the speed. */
static uint32_t auto_path_cost(uint32_t speed_mbps)
{
    if (speed_mbps == 0)
        return UNKNOWN_SPEED_PATH_COST;
    uint32_t c = 20000000u / speed_mbps;
    return c ? c : 1;
}

static uint32_t sat_add32(uint32_t a, uint32_t b)
{
    return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

/* Lexicographic comparison of the first four components (17.6): <0 when
 * a is better (numerically lower). */
static int pv_cmp(const struct prio_vector *a, const struct prio_vector *b)
{
    if (a->root_id != b->root_id)
        return a->root_id < b->root_id ? -1 : 1;
    if (a->root_cost != b->root_cost)
        return a->root_cost < b->root_cost ? -1 : 1;
    if (a->bridge_id != b->bridge_id)
        return a->bridge_id < b->bridge_id ? -1 : 1;
    if (a->port_id != b->port_id)
        return a->port_id < b->port_id ? -1 : 1;
    return 0;
}

enum msg_cmp { MSG_INFERIOR, MSG_SUPERIOR, MSG_SAME };

/* 17.6: a message priority vector is superior to the port priority vector
 * if it is better, or if it comes from the same Designated Bridge (address)
 * and Designated Port (number) — then it replaces what that port said
 * before, even if worse. Identical vectors are MSG_SAME. */
static enum msg_cmp msg_vs_port(const struct prio_vector *msg, const struct prio_vector *port)
{
    int c = pv_cmp(msg, port);
    if (c == 0)
        return MSG_SAME;
    if (c < 0)
        return MSG_SUPERIOR;
    if ((msg->bridge_id & MAC_MASK) == (port->bridge_id & MAC_MASK) &&
        (msg->port_id & PORT_NUMBER_MASK) == (port->port_id & PORT_NUMBER_MASK))
        return MSG_SUPERIOR;
    return MSG_INFERIOR;
}

static bool times_equal(const struct stp_times *a, const struct stp_times *b)
{
    return a->message_age == b->message_age && a->max_age == b->max_age &&
           a->hello_time == b->hello_time && a->forward_delay == b->forward_delay;
}

#define FOR_EACH_PORT(p_, stp_)                                                          \
    for (unsigned i_##p_ = 0; i_##p_ < (stp_)->n_ports && ((p_) = (stp_)->ports[i_##p_]); \
         i_##p_++)

static struct stp_port *port_lookup(const struct stp *stp, unsigned port_no)
{
    unsigned lo = 0, hi = stp->n_ports;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        struct stp_port *p = stp->ports[mid];
        if (p->port_no == port_no)
            return p;
        if (p->port_no < port_no)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* 17.20 derived conditions and parameters */

static bool rstp_version(const struct stp *stp) /* 17.20.11 */
{
    return stp->force_version >= STP_VERSION_RSTP;
}

static unsigned fwd_delay(const struct stp_port *p) /* 17.20.6 FwdDelay */
{
    return p->designated_times.forward_delay;
}

static unsigned hello_time(const struct stp_port *p) /* 17.20.7 HelloTime */
{
    return p->designated_times.hello_time;
}

static unsigned max_age(const struct stp_port *p) /* 17.20.8 MaxAge */
{
    return p->designated_times.max_age;
}

static unsigned forward_delay(const struct stp_port *p) /* 17.20.5 forwardDelay */
{
    return p->send_rstp ? hello_time(p) : fwd_delay(p);
}

static unsigned edge_delay(const struct stp_port *p) /* 17.20.4 EdgeDelay */
{
    return p->oper_p2p ? MIGRATE_TIME : max_age(p);
}

/* 17.20.3 allSynced (with 802.1Q-2005's reading: selected, role settled, no
 * pending update, and synced or the Root Port itself). */
static bool all_synced(const struct stp *stp)
{
    struct stp_port *q;
    FOR_EACH_PORT (q, stp) {
        if (!q->selected || q->role != q->selected_role || q->updt_info)
            return false;
        if (!q->synced && q->role != STP_ROLE_ROOT)
            return false;
    }
    return true;
}

/* 17.20.10 reRooted: rrWhile is zero on every other port. */
static bool re_rooted(const struct stp_port *p)
{
    struct stp_port *q;
    FOR_EACH_PORT (q, p->stp) {
        if (q != p && q->rr_while != 0)
            return false;
    }
    return true;
}

static bool topology_change_running(const struct stp *stp)
{
    struct stp_port *q;
    FOR_EACH_PORT (q, stp) {
        if (q->tc_while)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------------ */
/* Datapath procedures (17.21.3-6) and fdbFlush (17.19.7)                    */

static enum stp_port_state visible_state(const struct stp_port *p)
{
    if (!p->port_enabled)
        return STP_STATE_DISABLED;
    if (!p->stp->enabled)
        return STP_STATE_FORWARDING;
    if (p->forwarding)
        return STP_STATE_FORWARDING;
    if (p->learning)
        return STP_STATE_LEARNING;
    return STP_STATE_DISCARDING;
}

/* enableLearning() / disableLearning() / enableForwarding() /
 * disableForwarding(): the callback returns when the datapath has been told,
 * which is what "the procedure does not complete until ..." asks. */
static void report_state(struct stp_port *p)
{
    struct stp *stp = p->stp;
    enum stp_port_state s = visible_state(p);

    if (p->deleting || (p->have_state && p->reported == s))
        return;
    if (s == STP_STATE_FORWARDING)
        p->c.fwd_transitions++;
    if (s == STP_STATE_LEARNING || s == STP_STATE_FORWARDING)
        p->fdb_dirty = true;
    p->have_state = true;
    p->reported = s;
    if (stp->cb.set_port_state)
        stp->cb.set_port_state(stp->aux, p->port_no, s);
}

/* fdbFlush is "reset by the filtering database once the entries are
 * removed": the flush is owed to the caller at the end of this run of the
 * machines (emit_fdb_flushes), still inside the same stp_* call, so it is
 * reset at once. With stpVersion the standard asks for rapid ageing instead
 * of a flush; a flush is the stronger of the two, and the TC flag, repeated
 * in every BPDU while the change lasts, repeats it. */
static void do_fdb_flush(struct stp_port *p)
{
    if (!p->fdb_flush)
        return;
    p->fdb_flush = false;
    if (p->deleting || !p->fdb_dirty)
        return; /* nothing was learned here since the last flush */
    p->fdb_dirty = p->learning || p->forwarding || !p->stp->enabled;
    p->flush_pending = true;
}

/* One callback per flushed port, or one STP_ALL_PORTS when every port was
 * flushed (BEGIN): the datapath walks its table once instead of n times. */
static void emit_fdb_flushes(struct stp *stp)
{
    struct stp_port *p;
    unsigned n = 0;

    FOR_EACH_PORT (p, stp) {
        n += p->flush_pending;
    }
    if (!n)
        return;
    bool all = n == stp->n_ports && n > 1;
    FOR_EACH_PORT (p, stp) {
        if (!p->flush_pending)
            continue;
        p->flush_pending = false;
        if (!all && stp->cb.flush_fdb)
            stp->cb.flush_fdb(stp->aux, p->port_no);
    }
    if (all && stp->cb.flush_fdb)
        stp->cb.flush_fdb(stp->aux, STP_ALL_PORTS);
}

/* ------------------------------------------------------------------------ */
/* BPDU transmission: 17.21.19 txConfig, 17.21.20 txRstp, 17.21.21 txTcn     */

static uint16_t time_encode(unsigned seconds)
{
    return (uint16_t)(seconds * 256u);
}

static bool may_transmit(const struct stp_port *p)
{
    return p->port_enabled && !p->cfg.bpdu_filter && !p->deleting && p->stp->enabled &&
           p->role != STP_ROLE_DISABLED;
}

static void send_bpdu(struct stp_port *p, const struct stp_bpdu *b)
{
    uint8_t frame[STP_BPDU_FRAME_LEN];
    size_t len = stp_bpdu_encode(b, p->mac, frame, sizeof(frame));

    if (len)
        p->stp->cb.send_bpdu(p->stp->aux, p->port_no, frame, len);
}

static void fill_priority_and_times(const struct stp_port *p, struct stp_bpdu *b)
{
    b->root_id = p->designated_priority.root_id;
    b->root_path_cost = p->designated_priority.root_cost;
    b->bridge_id = p->designated_priority.bridge_id;
    b->port_id = p->designated_priority.port_id;
    b->message_age = time_encode(p->designated_times.message_age);
    b->max_age = time_encode(p->designated_times.max_age);
    b->hello_time = time_encode(p->designated_times.hello_time);
    b->forward_delay = time_encode(p->designated_times.forward_delay);
}

static void tx_config(struct stp_port *p)
{
    struct stp_bpdu b = {.type = STP_BPDU_CONFIG, .version = 0};

    if (!may_transmit(p))
        return;
    fill_priority_and_times(p, &b);
    if (p->tc_while)
        b.flags |= STP_FLAG_TC;
    if (p->tc_ack)
        b.flags |= STP_FLAG_TC_ACK;
    p->c.tx_config++;
    send_bpdu(p, &b);
}

static void tx_rstp(struct stp_port *p)
{
    struct stp_bpdu b = {.type = STP_BPDU_RST, .version = 2};
    unsigned role;

    if (!may_transmit(p))
        return;
    fill_priority_and_times(p, &b);
    switch (p->role) { /* 9.2.9 */
    case STP_ROLE_ROOT:
        role = STP_BPDU_ROLE_ROOT;
        break;
    case STP_ROLE_DESIGNATED:
        role = STP_BPDU_ROLE_DESIGNATED;
        break;
    default:
        role = STP_BPDU_ROLE_ALT_BACKUP;
        break;
    }
    b.flags = (uint8_t)(role << STP_FLAG_ROLE_SHIFT);
    if (p->agree)
        b.flags |= STP_FLAG_AGREEMENT;
    if (p->proposing)
        b.flags |= STP_FLAG_PROPOSAL;
    if (p->tc_while)
        b.flags |= STP_FLAG_TC;
    if (p->learning)
        b.flags |= STP_FLAG_LEARNING;
    if (p->forwarding)
        b.flags |= STP_FLAG_FORWARDING;
    p->c.tx_rst++;
    send_bpdu(p, &b);
}

static void tx_tcn(struct stp_port *p)
{
    struct stp_bpdu b = {.type = STP_BPDU_TCN, .version = 0};

    if (!may_transmit(p))
        return;
    p->c.tx_tcn++;
    send_bpdu(p, &b);
}

/* ------------------------------------------------------------------------ */
/* 17.21 procedures used by several machines                                */

/* 17.21.1 betterorsameInfo */
static bool better_or_same_info(const struct stp_port *p, enum info_is new_info_is)
{
    if (new_info_is == INFO_RECEIVED && p->info_is == INFO_RECEIVED)
        return pv_cmp(&p->msg_priority, &p->port_priority) <= 0;
    if (new_info_is == INFO_MINE && p->info_is == INFO_MINE)
        return pv_cmp(&p->designated_priority, &p->port_priority) <= 0;
    return false;
}

/* 17.21.2 clearReselectTree */
static void clear_reselect_tree(struct stp *stp)
{
    struct stp_port *q;
    FOR_EACH_PORT (q, stp) {
        q->reselect = false;
    }
}

/* Management's Topology Change Count and time since the last one: one event
 * per topology change seen here, detected locally (DETECTED) or heard
 * (NOTIFIED_TC, NOTIFIED_TCN), however many BPDUs repeat it: events closer
 * than the time a TC lasts (tcWhile: HelloTime + 1 with RSTP, MaxAge +
 * FwdDelay with STP) are the same one. A leaf bridge counts the change too,
 * although it starts no tcWhile of its own. */
static void note_topology_change(struct stp_port *p)
{
    struct stp *stp = p->stp;
    unsigned window = p->send_rstp ? hello_time(p) + 1u
                                   : (unsigned)stp->root_times.max_age + stp->root_times.forward_delay;

    if (stp->tc_active_while == 0)
        stp->tc_count++;
    if (stp->tc_active_while < window)
        stp->tc_active_while = (uint16_t)window;
    stp->has_tc = true;
    stp->last_tc_ms = stp->now_ms;
}

/* 17.21.7 newTcWhile */
static void new_tc_while(struct stp_port *p)
{
    struct stp *stp = p->stp;

    if (p->tc_while != 0)
        return;
    if (p->send_rstp) {
        p->tc_while = (uint16_t)(hello_time(p) + 1);
        p->new_info = true;
    } else {
        p->tc_while = (uint16_t)(stp->root_times.max_age + stp->root_times.forward_delay);
    }
}

/* 17.21.8 rcvInfo */
static enum rcvd_info rcv_info(struct stp_port *p)
{
    const struct rx_msg *m = &p->rx;

    if (m->type == STP_BPDU_TCN) {
        p->rcvd_tcn = true; /* deviation: see the top of the file */
        return OTHER_INFO;
    }
    p->msg_priority = m->prio;
    p->msg_times = m->times;

    enum msg_cmp c = msg_vs_port(&p->msg_priority, &p->port_priority);
    if (m->role == STP_BPDU_ROLE_DESIGNATED) {
        if (c == MSG_SUPERIOR ||
            (c == MSG_SAME && !times_equal(&p->msg_times, &p->port_times)))
            return SUPERIOR_DESIGNATED_INFO;
        if (c == MSG_SAME)
            return REPEATED_DESIGNATED_INFO;
        return INFERIOR_DESIGNATED_INFO;
    }
    if ((m->role == STP_BPDU_ROLE_ROOT || m->role == STP_BPDU_ROLE_ALT_BACKUP) &&
        pv_cmp(&p->msg_priority, &p->port_priority) >= 0)
        return INFERIOR_ROOT_ALTERNATE_INFO;
    return OTHER_INFO;
}

/* 17.21.9 recordAgreement */
static void record_agreement(struct stp_port *p)
{
    if (rstp_version(p->stp) && p->oper_p2p && (p->rx.flags & STP_FLAG_AGREEMENT)) {
        p->agreed = true;
        p->proposing = false;
    } else {
        p->agreed = false;
    }
}

/* 17.21.10 recordDispute (deviation: the 802.1Q-2005 wording) */
static void record_dispute(struct stp_port *p)
{
    if (p->rx.type == STP_BPDU_RST && (p->rx.flags & STP_FLAG_LEARNING)) {
        p->disputed = true;
        p->agreed = false;
    }
}

/* 17.21.11 recordProposal */
static void record_proposal(struct stp_port *p)
{
    if (p->rx.role == STP_BPDU_ROLE_DESIGNATED && (p->rx.flags & STP_FLAG_PROPOSAL))
        p->proposed = true;
}

/* 17.21.12 recordPriority */
static void record_priority(struct stp_port *p)
{
    p->port_priority = p->msg_priority;
}

/* 17.21.13 recordTimes */
static void record_times(struct stp_port *p)
{
    p->port_times = p->msg_times;
}

/* 17.21.14 setSelectedTree: reselect was just cleared for every port. */
static void set_selected_tree(struct stp *stp)
{
    struct stp_port *q;
    FOR_EACH_PORT (q, stp) {
        if (q->reselect)
            return;
    }
    FOR_EACH_PORT (q, stp) {
        q->selected = true;
    }
}

/* 17.21.15 setSyncTree */
static void set_sync_tree(struct stp *stp)
{
    struct stp_port *q;
    FOR_EACH_PORT (q, stp) {
        q->sync = true;
    }
}

/* 17.21.16 setReRootTree */
static void set_re_root_tree(struct stp *stp)
{
    struct stp_port *q;
    FOR_EACH_PORT (q, stp) {
        q->re_root = true;
    }
}

/* 17.21.17 setTcFlags */
static void set_tc_flags(struct stp_port *p)
{
    if (p->rx.type == STP_BPDU_TCN) {
        p->rcvd_tcn = true;
        return;
    }
    if (p->rx.flags & STP_FLAG_TC)
        p->rcvd_tc = true;
    if (p->rx.flags & STP_FLAG_TC_ACK)
        p->rcvd_tc_ack = true;
}

/* 17.21.18 setTcPropTree */
static void set_tc_prop_tree(struct stp_port *p)
{
    struct stp_port *q;
    FOR_EACH_PORT (q, p->stp) {
        if (q != p)
            q->tc_prop = true;
    }
}

/* 17.21.22 updtBPDUVersion */
static void updt_bpdu_version(struct stp_port *p)
{
    if (p->rx.type == STP_BPDU_RST)
        p->rcvd_rstp = true;
    else
        p->rcvd_stp = true;
}

/* 17.21.23 updtRcvdInfoWhile */
static void updt_rcvd_info_while(struct stp_port *p)
{
    if ((unsigned)p->port_times.message_age + 1 <= p->port_times.max_age)
        p->rcvd_info_while = (uint16_t)(3u * p->port_times.hello_time);
    else
        p->rcvd_info_while = 0;
}

/* 17.21.24 updtRoleDisabledTree */
static void updt_role_disabled_tree(struct stp *stp)
{
    struct stp_port *q;
    FOR_EACH_PORT (q, stp) {
        q->selected_role = STP_ROLE_DISABLED;
    }
}

/* 17.21.25 updtRolesTree */
static void updt_roles_tree(struct stp *stp)
{
    struct stp_port *q, *root_port = NULL;
    struct prio_vector root = stp->bridge_priority;
    uint16_t root_port_id = 0;
    uint64_t own_address = stp->bridge_id & MAC_MASK;

    /* a), b): the best root path priority vector, ties broken by the
     * receiving port's identifier (the fifth component, 17.6). Information
     * that this bridge itself sent (another port on the same LAN) is not a
     * path to the root (b.1); a restricted port (root guard) is never the
     * root port (b.2, 802.1Q-2005 13.26.23). */
    FOR_EACH_PORT (q, stp) {
        if (q->info_is != INFO_RECEIVED || q->cfg.root_guard)
            continue;
        if ((q->port_priority.bridge_id & MAC_MASK) == own_address)
            continue;
        struct prio_vector cand = q->port_priority;
        cand.root_cost = sat_add32(cand.root_cost, q->port_path_cost);
        int c = pv_cmp(&cand, &root);
        if (c < 0 || (c == 0 && root_port && q->port_id < root_port_id)) {
            root = cand;
            root_port = q;
            root_port_id = q->port_id;
        }
    }
    stp->root_priority = root;
    stp->root_port = root_port;
    stp->root_port_id = root_port_id;

    /* Root guard bookkeeping: a restricted port holding information that
     * would have made it the root port is blocking because of the guard. */
    FOR_EACH_PORT (q, stp) {
        bool blocking = false;
        if (q->cfg.root_guard && q->info_is == INFO_RECEIVED &&
            (q->port_priority.bridge_id & MAC_MASK) != own_address) {
            struct prio_vector cand = q->port_priority;
            cand.root_cost = sat_add32(cand.root_cost, q->port_path_cost);
            blocking = pv_cmp(&cand, &root) < 0;
        }
        if (blocking && !q->restricted_blocking)
            q->c.root_guard_trips++;
        q->restricted_blocking = blocking;
    }

    /* c) rootTimes */
    if (root_port) {
        stp->root_times = root_port->port_times;
        stp->root_times.message_age = (uint16_t)(stp->root_times.message_age + 1);
    } else {
        stp->root_times = stp->bridge_times;
    }

    /* d) designatedPriority, e) designatedTimes */
    FOR_EACH_PORT (q, stp) {
        q->designated_priority.root_id = root.root_id;
        q->designated_priority.root_cost = root.root_cost;
        q->designated_priority.bridge_id = stp->bridge_id;
        q->designated_priority.port_id = q->port_id;
        q->designated_times = stp->root_times;
        q->designated_times.hello_time = stp->bridge_times.hello_time;
    }

    /* f) .. l) roles */
    FOR_EACH_PORT (q, stp) {
        switch (q->info_is) {
        case INFO_DISABLED: /* f) */
            q->selected_role = STP_ROLE_DISABLED;
            break;
        case INFO_AGED: /* g) */
            q->updt_info = true;
            q->selected_role = STP_ROLE_DESIGNATED;
            break;
        case INFO_MINE: /* h) */
            q->selected_role = STP_ROLE_DESIGNATED;
            if (pv_cmp(&q->port_priority, &q->designated_priority) != 0 ||
                !times_equal(&q->port_times, &q->designated_times))
                q->updt_info = true;
            break;
        case INFO_RECEIVED:
            if (q == root_port) { /* i) */
                q->selected_role = STP_ROLE_ROOT;
                q->updt_info = false;
            } else if (pv_cmp(&q->designated_priority, &q->port_priority) >= 0) {
                if ((q->port_priority.bridge_id & MAC_MASK) != own_address)
                    q->selected_role = STP_ROLE_ALTERNATE; /* j) */
                else
                    q->selected_role = STP_ROLE_BACKUP; /* k) */
                q->updt_info = false;
            } else { /* l) */
                q->selected_role = STP_ROLE_DESIGNATED;
                q->updt_info = true;
            }
            break;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* The state machines                                                        */

/* 17.22 Port Timers state machine: one TICK. */
static void port_timers_sm(struct stp_port *p)
{
    uint16_t *timers[] = {
        &p->hello_when, &p->tc_while,  &p->fd_while,       &p->rcvd_info_while,
        &p->rr_while,   &p->rb_while,  &p->mdelay_while,   &p->edge_delay_while,
    };
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        if (*timers[i])
            (*timers[i])--;
    }
    if (p->tx_count)
        p->tx_count--;
}

/* 17.23 Port Receive state machine */
static bool port_receive_sm(struct stp_port *p, bool begin)
{
    enum prx_state next;

    if (begin || ((p->rcvd_bpdu || p->edge_delay_while != MIGRATE_TIME) && !p->port_enabled)) {
        next = PRX_DISCARD;
    } else {
        switch (p->prx) {
        case PRX_DISCARD:
            if (!(p->rcvd_bpdu && p->port_enabled))
                return false;
            next = PRX_RECEIVE;
            break;
        case PRX_RECEIVE:
            if (!(p->rcvd_bpdu && p->port_enabled && !p->rcvd_msg))
                return false;
            next = PRX_RECEIVE;
            break;
        default:
            return false;
        }
    }

    p->prx = next;
    switch (next) {
    case PRX_DISCARD:
        p->rcvd_bpdu = p->rcvd_rstp = p->rcvd_stp = false;
        p->rcvd_msg = false;
        p->edge_delay_while = MIGRATE_TIME;
        break;
    case PRX_RECEIVE:
        updt_bpdu_version(p);
        p->oper_edge = p->rcvd_bpdu = false;
        p->rcvd_msg = true;
        p->edge_delay_while = MIGRATE_TIME;
        break;
    }
    return true;
}

/* 17.24 Port Protocol Migration state machine */
static bool port_protocol_migration_sm(struct stp_port *p, bool begin)
{
    struct stp *stp = p->stp;
    enum ppm_state next;

    if (begin) {
        next = PPM_CHECKING_RSTP;
    } else {
        switch (p->ppm) {
        case PPM_CHECKING_RSTP:
            if (p->mdelay_while != MIGRATE_TIME && !p->port_enabled)
                next = PPM_CHECKING_RSTP;
            else if (p->mdelay_while == 0)
                next = PPM_SENSING;
            else
                return false;
            break;
        case PPM_SELECTING_STP:
            if (p->mdelay_while == 0 || !p->port_enabled || p->mcheck)
                next = PPM_SENSING;
            else
                return false;
            break;
        case PPM_SENSING:
            if (!p->port_enabled || p->mcheck ||
                (rstp_version(stp) && !p->send_rstp && p->rcvd_rstp))
                next = PPM_CHECKING_RSTP;
            else if (p->send_rstp && p->rcvd_stp)
                next = PPM_SELECTING_STP;
            else
                return false;
            break;
        default:
            return false;
        }
    }

    p->ppm = next;
    switch (next) {
    case PPM_CHECKING_RSTP:
        p->mcheck = false;
        p->send_rstp = rstp_version(stp);
        p->mdelay_while = MIGRATE_TIME;
        break;
    case PPM_SELECTING_STP:
        p->send_rstp = false;
        p->mdelay_while = MIGRATE_TIME;
        break;
    case PPM_SENSING:
        p->rcvd_rstp = p->rcvd_stp = false;
        break;
    }
    return true;
}

/* 17.25 Bridge Detection state machine */
static bool bridge_detection_sm(struct stp_port *p, bool begin)
{
    enum bdm_state next;
    bool admin_edge = p->cfg.admin_edge, auto_edge = p->cfg.auto_edge;

    if (begin) {
        next = admin_edge ? BDM_EDGE : BDM_NOT_EDGE;
    } else {
        switch (p->bdm) {
        case BDM_EDGE:
            /* deviation: 802.1Q-2011 adds !AutoEdge */
            if (((!p->port_enabled || !auto_edge) && !admin_edge) || !p->oper_edge)
                next = BDM_NOT_EDGE;
            else
                return false;
            break;
        case BDM_NOT_EDGE:
            if ((!p->port_enabled && admin_edge) ||
                (p->edge_delay_while == 0 && auto_edge && p->send_rstp && p->proposing))
                next = BDM_EDGE;
            else
                return false;
            break;
        default:
            return false;
        }
    }

    p->bdm = next;
    p->oper_edge = next == BDM_EDGE;
    return true;
}

/* 17.26 Port Transmit state machine */
static bool port_transmit_sm(struct stp_port *p, bool begin)
{
    struct stp *stp = p->stp;
    enum ptx_state next;

    /* deviation: held in TRANSMIT_INIT while the port is disabled
     * (802.1Q-2011), so that coming up means newInfo and txCount 0: the
     * first BPDU leaves at once. */
    if (begin || (!p->port_enabled && p->ptx != PTX_TRANSMIT_INIT)) {
        next = PTX_TRANSMIT_INIT;
    } else {
        switch (p->ptx) {
        case PTX_TRANSMIT_INIT:
            if (!p->port_enabled)
                return false;
            next = PTX_IDLE;
            break;
        case PTX_TRANSMIT_PERIODIC:
        case PTX_TRANSMIT_CONFIG:
        case PTX_TRANSMIT_TCN:
        case PTX_TRANSMIT_RSTP:
            next = PTX_IDLE;
            break;
        case PTX_IDLE:
            /* All transitions are qualified by selected && !updtInfo. */
            if (!p->selected || p->updt_info)
                return false;
            if (p->hello_when == 0) {
                next = PTX_TRANSMIT_PERIODIC;
                break;
            }
            if (!p->new_info || p->role == STP_ROLE_DISABLED)
                return false;
            if (!p->send_rstp && p->role == STP_ROLE_ROOT && p->tc_while == 0) {
                p->new_info = false; /* deviation: nothing to tell a legacy root */
                return false;
            }
            if (!p->send_rstp && p->role != STP_ROLE_ROOT && p->role != STP_ROLE_DESIGNATED)
                return false; /* a legacy Alternate Port is silent */
            if (p->tx_count >= stp->tx_hold_count) {
                if (!p->tx_held)
                    p->c.tx_held++;
                p->tx_held = true;
                return false;
            }
            p->tx_held = false;
            if (p->send_rstp)
                next = PTX_TRANSMIT_RSTP;
            else if (p->role == STP_ROLE_ROOT)
                next = PTX_TRANSMIT_TCN;
            else
                next = PTX_TRANSMIT_CONFIG;
            break;
        default:
            return false;
        }
    }

    p->ptx = next;
    switch (next) {
    case PTX_TRANSMIT_INIT:
        p->new_info = true;
        p->tx_count = 0;
        break;
    case PTX_IDLE:
        p->hello_when = (uint16_t)hello_time(p);
        break;
    case PTX_TRANSMIT_PERIODIC:
        p->new_info = p->new_info || p->role == STP_ROLE_DESIGNATED ||
                      (p->role == STP_ROLE_ROOT && p->tc_while != 0);
        break;
    case PTX_TRANSMIT_CONFIG:
        p->new_info = false;
        tx_config(p);
        p->tx_count++;
        p->tc_ack = false;
        break;
    case PTX_TRANSMIT_TCN:
        p->new_info = false;
        tx_tcn(p);
        p->tx_count++;
        break;
    case PTX_TRANSMIT_RSTP:
        p->new_info = false;
        tx_rstp(p);
        p->tx_count++;
        p->tc_ack = false;
        break;
    }
    return true;
}

/* 17.27 Port Information state machine */
static bool port_information_sm(struct stp_port *p, bool begin)
{
    enum pim_state next;

    if (begin || (!p->port_enabled && p->info_is != INFO_DISABLED)) {
        next = PIM_DISABLED;
    } else {
        switch (p->pim) {
        case PIM_DISABLED:
            if (p->port_enabled)
                next = PIM_AGED;
            else if (p->rcvd_msg)
                next = PIM_DISABLED;
            else
                return false;
            break;
        case PIM_AGED:
            if (!(p->selected && p->updt_info))
                return false;
            next = PIM_UPDATE;
            break;
        case PIM_UPDATE:
        case PIM_SUPERIOR_DESIGNATED:
        case PIM_REPEATED_DESIGNATED:
        case PIM_INFERIOR_DESIGNATED:
        case PIM_NOT_DESIGNATED:
        case PIM_OTHER:
            next = PIM_CURRENT;
            break;
        case PIM_CURRENT:
            if (p->selected && p->updt_info)
                next = PIM_UPDATE;
            else if (p->info_is == INFO_RECEIVED && p->rcvd_info_while == 0 && !p->updt_info &&
                     !p->rcvd_msg)
                next = PIM_AGED;
            else if (p->rcvd_msg && !p->updt_info)
                next = PIM_RECEIVE;
            else
                return false;
            break;
        case PIM_RECEIVE:
            switch (p->rcvd_info) {
            case SUPERIOR_DESIGNATED_INFO:
                next = PIM_SUPERIOR_DESIGNATED;
                break;
            case REPEATED_DESIGNATED_INFO:
                next = PIM_REPEATED_DESIGNATED;
                break;
            case INFERIOR_DESIGNATED_INFO:
                next = PIM_INFERIOR_DESIGNATED;
                break;
            case INFERIOR_ROOT_ALTERNATE_INFO:
                next = PIM_NOT_DESIGNATED;
                break;
            default:
                next = PIM_OTHER;
                break;
            }
            break;
        default:
            return false;
        }
    }

    p->pim = next;
    switch (next) {
    case PIM_DISABLED:
        p->rcvd_msg = false;
        p->proposing = p->proposed = p->agree = p->agreed = false;
        p->rcvd_info_while = 0;
        p->info_is = INFO_DISABLED;
        p->reselect = true;
        p->selected = false;
        break;
    case PIM_AGED:
        p->info_is = INFO_AGED;
        p->reselect = true;
        p->selected = false;
        break;
    case PIM_UPDATE:
        p->proposing = p->proposed = false;
        p->agreed = p->agreed && better_or_same_info(p, INFO_MINE);
        p->synced = p->synced && p->agreed;
        p->port_priority = p->designated_priority;
        p->port_times = p->designated_times;
        p->updt_info = false;
        p->info_is = INFO_MINE;
        p->new_info = true;
        break;
    case PIM_CURRENT:
        break;
    case PIM_RECEIVE:
        p->rcvd_info = rcv_info(p);
        break;
    case PIM_SUPERIOR_DESIGNATED:
        p->agreed = p->proposing = false;
        record_proposal(p);
        set_tc_flags(p);
        p->agree = p->agree && better_or_same_info(p, INFO_RECEIVED);
        record_priority(p);
        record_times(p);
        updt_rcvd_info_while(p);
        p->info_is = INFO_RECEIVED;
        p->reselect = true;
        p->selected = false;
        p->rcvd_msg = false;
        break;
    case PIM_REPEATED_DESIGNATED:
        record_proposal(p);
        set_tc_flags(p);
        updt_rcvd_info_while(p);
        p->rcvd_msg = false;
        break;
    case PIM_INFERIOR_DESIGNATED:
        record_dispute(p);
        p->rcvd_msg = false;
        /* deviation: answer inferior information at once (see top) */
        if (p->role == STP_ROLE_DESIGNATED)
            p->new_info = true;
        break;
    case PIM_NOT_DESIGNATED:
        record_agreement(p);
        set_tc_flags(p);
        p->rcvd_msg = false;
        break;
    case PIM_OTHER:
        p->rcvd_msg = false;
        break;
    }
    return true;
}

/* 17.28 Port Role Selection state machine */
static bool port_role_selection_sm(struct stp *stp)
{
    enum prs_state next;
    struct stp_port *q;

    if (stp->begin) {
        next = PRS_INIT_BRIDGE;
    } else {
        switch (stp->prs) {
        case PRS_INIT_BRIDGE:
            next = PRS_ROLE_SELECTION;
            break;
        case PRS_ROLE_SELECTION: {
            bool reselect = false;
            FOR_EACH_PORT (q, stp) {
                reselect |= q->reselect;
            }
            if (!reselect)
                return false;
            next = PRS_ROLE_SELECTION;
            break;
        }
        default:
            return false;
        }
    }

    stp->prs = next;
    switch (next) {
    case PRS_INIT_BRIDGE:
        updt_role_disabled_tree(stp);
        break;
    case PRS_ROLE_SELECTION:
        clear_reselect_tree(stp);
        updt_roles_tree(stp);
        set_selected_tree(stp);
        break;
    }
    return true;
}

/* 17.29 Port Role Transitions state machine */
static bool port_role_transitions_sm(struct stp_port *p, bool begin)
{
    struct stp *stp = p->stp;
    bool ready = p->selected && !p->updt_info;
    enum prt_state next;

    if (begin) {
        next = PRT_INIT_PORT;
    } else if (ready && p->role != p->selected_role) {
        switch (p->selected_role) {
        case STP_ROLE_DISABLED:
            next = PRT_DISABLE_PORT;
            break;
        case STP_ROLE_ROOT:
            next = PRT_ROOT_PORT;
            break;
        case STP_ROLE_DESIGNATED:
            next = PRT_DESIGNATED_PORT;
            break;
        default:
            next = PRT_BLOCK_PORT;
            break;
        }
    } else {
        switch (p->prt) {
        /* Disabled Port role transitions */
        case PRT_INIT_PORT:
            next = PRT_DISABLE_PORT;
            break;
        case PRT_DISABLE_PORT:
            if (!(ready && !p->learning && !p->forwarding))
                return false;
            next = PRT_DISABLED_PORT;
            break;
        case PRT_DISABLED_PORT:
            if (!(ready && (p->fd_while != max_age(p) || p->sync || p->re_root || !p->synced)))
                return false;
            next = PRT_DISABLED_PORT;
            break;

        /* Root Port role transitions */
        case PRT_ROOT_PROPOSED:
        case PRT_ROOT_AGREED:
        case PRT_REROOT:
        case PRT_ROOT_FORWARD:
        case PRT_ROOT_LEARN:
        case PRT_REROOTED:
            next = PRT_ROOT_PORT;
            break;
        case PRT_ROOT_PORT: {
            if (!ready)
                return false;
            bool may_go = p->fd_while == 0 ||
                          (re_rooted(p) && p->rb_while == 0 && rstp_version(stp));
            if (p->proposed && !p->agree)
                next = PRT_ROOT_PROPOSED;
            else if ((all_synced(stp) && !p->agree) || (p->proposed && p->agree))
                next = PRT_ROOT_AGREED;
            else if (!p->forward && !p->re_root)
                next = PRT_REROOT;
            else if (p->rr_while != fwd_delay(p))
                next = PRT_ROOT_PORT;
            else if (p->re_root && p->forward)
                next = PRT_REROOTED;
            else if (may_go && !p->learn)
                next = PRT_ROOT_LEARN;
            else if (may_go && p->learn && !p->forward)
                next = PRT_ROOT_FORWARD;
            else
                return false;
            break;
        }

        /* Designated Port role transitions */
        case PRT_DESIGNATED_PROPOSE:
        case PRT_DESIGNATED_SYNCED:
        case PRT_DESIGNATED_RETIRED:
        case PRT_DESIGNATED_FORWARD:
        case PRT_DESIGNATED_LEARN:
        case PRT_DESIGNATED_DISCARD:
            next = PRT_DESIGNATED_PORT;
            break;
        case PRT_DESIGNATED_PORT: {
            if (!ready)
                return false;
            bool may_go = (p->fd_while == 0 || p->agreed || p->oper_edge) &&
                          (p->rr_while == 0 || !p->re_root) && !p->sync;
            /* Discarding first: it is the transition that keeps loops out. */
            if (((p->sync && !p->synced) || (p->re_root && p->rr_while != 0) || p->disputed) &&
                !p->oper_edge && (p->learn || p->forward))
                next = PRT_DESIGNATED_DISCARD;
            else if (!p->forward && !p->agreed && !p->proposing && !p->oper_edge)
                next = PRT_DESIGNATED_PROPOSE;
            else if ((!p->learning && !p->forwarding && !p->synced) || (p->agreed && !p->synced) ||
                     (p->oper_edge && !p->synced) || (p->sync && p->synced))
                next = PRT_DESIGNATED_SYNCED;
            else if (p->rr_while == 0 && p->re_root)
                next = PRT_DESIGNATED_RETIRED;
            else if (may_go && !p->learn)
                next = PRT_DESIGNATED_LEARN;
            else if (may_go && p->learn && !p->forward)
                next = PRT_DESIGNATED_FORWARD;
            else
                return false;
            break;
        }

        /* Alternate and Backup Port role transitions */
        case PRT_ALTERNATE_PROPOSED:
        case PRT_ALTERNATE_AGREED:
        case PRT_BACKUP_PORT:
            next = PRT_ALTERNATE_PORT;
            break;
        case PRT_BLOCK_PORT:
            if (!(ready && !p->learning && !p->forwarding))
                return false;
            next = PRT_ALTERNATE_PORT;
            break;
        case PRT_ALTERNATE_PORT:
            if (!ready)
                return false;
            if (p->proposed && !p->agree)
                next = PRT_ALTERNATE_PROPOSED;
            else if ((all_synced(stp) && !p->agree) || (p->proposed && p->agree))
                next = PRT_ALTERNATE_AGREED;
            else if (p->fd_while != forward_delay(p) || p->sync || p->re_root || !p->synced)
                next = PRT_ALTERNATE_PORT;
            else if (p->rb_while != 2 * hello_time(p) && p->role == STP_ROLE_BACKUP)
                next = PRT_BACKUP_PORT;
            else
                return false;
            break;
        default:
            return false;
        }
    }

    p->prt = next;
    switch (next) {
    case PRT_INIT_PORT:
        p->role = STP_ROLE_DISABLED;
        p->learn = p->forward = false;
        p->synced = false;
        p->sync = p->re_root = true;
        p->rr_while = (uint16_t)fwd_delay(p);
        p->fd_while = (uint16_t)max_age(p);
        p->rb_while = 0;
        break;
    case PRT_DISABLE_PORT:
        p->role = STP_ROLE_DISABLED; /* deviation: see the top of the file */
        p->learn = p->forward = false;
        break;
    case PRT_DISABLED_PORT:
        p->fd_while = (uint16_t)max_age(p);
        p->synced = true;
        p->rr_while = 0;
        p->sync = p->re_root = false;
        break;
    case PRT_ROOT_PROPOSED:
        set_sync_tree(stp);
        p->proposed = false;
        break;
    case PRT_ROOT_AGREED:
        p->proposed = p->sync = false;
        p->agree = true;
        p->new_info = true;
        break;
    case PRT_REROOT:
        set_re_root_tree(stp);
        break;
    case PRT_ROOT_FORWARD:
        p->fd_while = 0;
        p->forward = true;
        break;
    case PRT_ROOT_LEARN:
        p->fd_while = (uint16_t)forward_delay(p);
        p->learn = true;
        break;
    case PRT_REROOTED:
        p->re_root = false;
        break;
    case PRT_ROOT_PORT:
        p->role = STP_ROLE_ROOT;
        p->rr_while = (uint16_t)fwd_delay(p);
        break;
    case PRT_DESIGNATED_PROPOSE:
        p->proposing = true;
        p->edge_delay_while = (uint16_t)edge_delay(p);
        p->new_info = true;
        break;
    case PRT_DESIGNATED_SYNCED:
        p->rr_while = 0;
        p->synced = true;
        p->sync = false;
        break;
    case PRT_DESIGNATED_RETIRED:
        p->re_root = false;
        break;
    case PRT_DESIGNATED_FORWARD:
        p->forward = true;
        p->fd_while = 0;
        p->agreed = p->send_rstp;
        break;
    case PRT_DESIGNATED_LEARN:
        p->learn = true;
        p->fd_while = (uint16_t)forward_delay(p);
        break;
    case PRT_DESIGNATED_DISCARD:
        p->learn = p->forward = p->disputed = false;
        p->fd_while = (uint16_t)forward_delay(p);
        break;
    case PRT_DESIGNATED_PORT:
        p->role = STP_ROLE_DESIGNATED;
        break;
    case PRT_ALTERNATE_PROPOSED:
        set_sync_tree(stp);
        p->proposed = false;
        break;
    case PRT_ALTERNATE_AGREED:
        p->proposed = false;
        p->agree = true;
        p->new_info = true;
        break;
    case PRT_BLOCK_PORT:
        p->role = p->selected_role;
        p->learn = p->forward = false;
        break;
    case PRT_BACKUP_PORT:
        p->rb_while = (uint16_t)(2 * hello_time(p));
        break;
    case PRT_ALTERNATE_PORT:
        p->fd_while = (uint16_t)forward_delay(p);
        p->synced = true;
        p->rr_while = 0;
        p->sync = p->re_root = false;
        break;
    }
    return true;
}

/* 17.30 Port State Transition state machine */
static bool port_state_transition_sm(struct stp_port *p, bool begin)
{
    enum pst_state next;

    if (begin) {
        next = PST_DISCARDING;
    } else {
        switch (p->pst) {
        case PST_DISCARDING:
            if (!p->learn)
                return false;
            next = PST_LEARNING;
            break;
        case PST_LEARNING:
            if (!p->learn)
                next = PST_DISCARDING;
            else if (p->forward)
                next = PST_FORWARDING;
            else
                return false;
            break;
        case PST_FORWARDING:
            if (p->forward)
                return false;
            next = PST_DISCARDING;
            break;
        default:
            return false;
        }
    }

    p->pst = next;
    switch (next) {
    case PST_DISCARDING: /* disableLearning(); disableForwarding(); */
        p->learning = false;
        p->forwarding = false;
        break;
    case PST_LEARNING: /* enableLearning(); */
        p->learning = true;
        break;
    case PST_FORWARDING: /* enableForwarding(); */
        p->forwarding = true;
        break;
    }
    report_state(p);
    return true;
}

/* 17.31 Topology Change state machine */
static bool topology_change_sm(struct stp_port *p, bool begin)
{
    enum tcm_state next;
    bool root_or_designated = p->role == STP_ROLE_ROOT || p->role == STP_ROLE_DESIGNATED;
    bool any_rcvd = p->rcvd_tc || p->rcvd_tcn || p->rcvd_tc_ack || p->tc_prop;

    if (begin) {
        next = TCM_INACTIVE;
    } else {
        switch (p->tcm) {
        case TCM_INACTIVE:
            if (!(p->learn && !p->fdb_flush))
                return false;
            next = TCM_LEARNING;
            break;
        case TCM_LEARNING:
            if (!root_or_designated && !(p->learn || p->learning) && !any_rcvd)
                next = TCM_INACTIVE;
            else if (any_rcvd)
                next = TCM_LEARNING;
            else if (root_or_designated && p->forward && !p->oper_edge)
                next = TCM_DETECTED;
            else
                return false;
            break;
        case TCM_DETECTED:
        case TCM_NOTIFIED_TC:
        case TCM_PROPAGATING:
        case TCM_ACKNOWLEDGED:
            next = TCM_ACTIVE;
            break;
        case TCM_NOTIFIED_TCN:
            next = TCM_NOTIFIED_TC;
            break;
        case TCM_ACTIVE:
            if (!root_or_designated || p->oper_edge)
                next = TCM_LEARNING;
            else if (p->rcvd_tcn)
                next = TCM_NOTIFIED_TCN;
            else if (p->rcvd_tc)
                next = TCM_NOTIFIED_TC;
            else if (p->tc_prop && !p->oper_edge)
                next = TCM_PROPAGATING;
            else if (p->rcvd_tc_ack)
                next = TCM_ACKNOWLEDGED;
            else
                return false;
            break;
        default:
            return false;
        }
    }

    p->tcm = next;
    switch (next) {
    case TCM_INACTIVE:
        p->fdb_flush = true;
        p->tc_while = 0;
        p->tc_ack = false;
        do_fdb_flush(p);
        break;
    case TCM_LEARNING:
        p->rcvd_tc = p->rcvd_tcn = p->rcvd_tc_ack = false;
        p->tc_prop = false;
        break;
    case TCM_DETECTED:
        note_topology_change(p);
        new_tc_while(p);
        set_tc_prop_tree(p);
        p->new_info = true;
        break;
    case TCM_ACTIVE:
        break;
    case TCM_NOTIFIED_TCN:
        note_topology_change(p);
        new_tc_while(p);
        break;
    case TCM_NOTIFIED_TC:
        note_topology_change(p);
        p->rcvd_tcn = p->rcvd_tc = false;
        if (p->role == STP_ROLE_DESIGNATED)
            p->tc_ack = true;
        set_tc_prop_tree(p);
        break;
    case TCM_PROPAGATING:
        new_tc_while(p);
        p->fdb_flush = true;
        p->tc_prop = false;
        do_fdb_flush(p);
        break;
    case TCM_ACKNOWLEDGED:
        p->tc_while = 0;
        p->rcvd_tc_ack = false;
        break;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* The driver                                                                */

/* Runs every machine until none moves. Port Transmit runs only once the
 * others have settled (see the top of the file). */
static void run_machines(struct stp *stp)
{
    struct stp_port *p;
    int i;

    if (!stp->enabled || stp->in_run)
        return;
    stp->in_run = true;
    for (i = 0; i < SM_MAX_ITERATIONS; i++) {
        bool changed = port_role_selection_sm(stp);
        FOR_EACH_PORT (p, stp) {
            bool begin = stp->begin || p->begin;
            changed |= port_receive_sm(p, begin);
            changed |= port_protocol_migration_sm(p, begin);
            changed |= bridge_detection_sm(p, begin);
            changed |= port_information_sm(p, begin);
            changed |= port_role_transitions_sm(p, begin);
            changed |= port_state_transition_sm(p, begin);
            changed |= topology_change_sm(p, begin);
            if (begin)
                changed |= port_transmit_sm(p, true);
            p->begin = false;
        }
        stp->begin = false;
        if (changed)
            continue;
        FOR_EACH_PORT (p, stp) {
            changed |= port_transmit_sm(p, false);
        }
        if (!changed)
            break;
    }
    if (i == SM_MAX_ITERATIONS)
        stp->sm_bound_hits++;
    FOR_EACH_PORT (p, stp) {
        report_state(p);
    }
    emit_fdb_flushes(stp);
    stp->in_run = false;
}

/* ------------------------------------------------------------------------ */
/* Object life cycle                                                         */

static void bridge_update_identity(struct stp *stp)
{
    stp->bridge_id = make_bridge_id(stp->priority, stp->mac);
    stp->bridge_priority.root_id = stp->bridge_id;
    stp->bridge_priority.root_cost = 0;
    stp->bridge_priority.bridge_id = stp->bridge_id;
    stp->bridge_priority.port_id = 0;
}

/* Resets a port's protocol variables before BEGIN: what no BEGIN state
 * initialises starts from the bridge's own information. */
static void port_reset_protocol(struct stp_port *p)
{
    struct stp *stp = p->stp;

    p->agree = p->agreed = p->disputed = p->fdb_flush = false;
    p->forward = p->forwarding = p->learn = p->learning = false;
    p->mcheck = p->new_info = p->proposed = p->proposing = false;
    p->rcvd_bpdu = p->rcvd_msg = p->rcvd_rstp = p->rcvd_stp = false;
    p->rcvd_tc = p->rcvd_tc_ack = p->rcvd_tcn = false;
    p->re_root = p->reselect = p->selected = p->sync = p->synced = false;
    p->tc_ack = p->tc_prop = p->updt_info = false;
    p->send_rstp = rstp_version(stp);
    p->oper_edge = p->cfg.admin_edge;
    p->info_is = INFO_DISABLED;
    p->rcvd_info = OTHER_INFO;
    p->role = p->selected_role = STP_ROLE_DISABLED;
    p->designated_priority = stp->bridge_priority;
    p->designated_priority.port_id = p->port_id;
    p->port_priority = p->designated_priority;
    p->msg_priority = p->designated_priority;
    p->designated_times = p->port_times = p->msg_times = stp->bridge_times;
    p->tx_count = 0;
    p->edge_delay_while = p->fd_while = p->hello_when = p->mdelay_while = 0;
    p->rb_while = p->rcvd_info_while = p->rr_while = p->tc_while = 0;
    p->restricted_blocking = false;
    p->begin = true;
}

static void bridge_begin(struct stp *stp)
{
    struct stp_port *p;

    stp->root_port = NULL;
    stp->root_port_id = 0;
    stp->root_priority = stp->bridge_priority;
    stp->root_times = stp->bridge_times;
    FOR_EACH_PORT (p, stp) {
        port_reset_protocol(p);
    }
    stp->begin = true;
}

void stp_port_config_uplink(struct stp_port_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof(*cfg));
    cfg->priority = DEFAULT_PORT_PRIORITY;
    cfg->path_cost = 0;
    cfg->admin_edge = false;
    cfg->auto_edge = true;
    cfg->p2p = STP_P2P_AUTO;
}

void stp_port_config_guest(struct stp_port_config *cfg)
{
    if (!cfg)
        return;
    stp_port_config_uplink(cfg);
    cfg->admin_edge = true;
    cfg->bpdu_guard = true;
}

struct stp *stp_create(const char *name, const uint8_t bridge_mac[6],
                       const struct stp_callbacks *cb, void *aux)
{
    if (!name || !bridge_mac || !cb || !cb->send_bpdu)
        return NULL;
    struct stp *stp = calloc(1, sizeof(*stp));
    if (!stp)
        return NULL;
    snprintf(stp->name, sizeof(stp->name), "%s", name);
    stp->cb = *cb;
    stp->aux = aux;
    memcpy(stp->mac, bridge_mac, 6);
    stp->enabled = true;
    stp->priority = DEFAULT_BRIDGE_PRIORITY;
    stp->force_version = STP_VERSION_RSTP;
    stp->tx_hold_count = DEFAULT_TX_HOLD_COUNT;
    stp->ageing_time = DEFAULT_AGEING_TIME;
    stp->bridge_times.message_age = 0;
    stp->bridge_times.max_age = DEFAULT_MAX_AGE;
    stp->bridge_times.hello_time = DEFAULT_HELLO_TIME;
    stp->bridge_times.forward_delay = DEFAULT_FORWARD_DELAY;
    bridge_update_identity(stp);
    bridge_begin(stp);
    run_machines(stp);
    return stp;
}

void stp_destroy(struct stp *stp)
{
    if (!stp)
        return;
    for (unsigned i = 0; i < stp->n_ports; i++)
        free(stp->ports[i]);
    free(stp->ports);
    free(stp);
}

static bool port_config_valid(const struct stp_port_config *cfg)
{
    return (cfg->priority & 0x0f) == 0 && cfg->priority <= 240 &&
           cfg->path_cost <= MAX_PATH_COST &&
           (cfg->p2p == STP_P2P_AUTO || cfg->p2p == STP_P2P_YES || cfg->p2p == STP_P2P_NO);
}

static void port_update_link_derived(struct stp_port *p)
{
    p->port_enabled = p->link_up && !p->shut;
    p->port_path_cost = p->cfg.path_cost ? p->cfg.path_cost : auto_path_cost(p->speed_mbps);
    switch (p->cfg.p2p) {
    case STP_P2P_YES:
        p->oper_p2p = true;
        break;
    case STP_P2P_NO:
        p->oper_p2p = false;
        break;
    default:
        p->oper_p2p = p->duplex_full;
        break;
    }
}

int stp_port_add(struct stp *stp, unsigned port_no, const uint8_t port_mac[6],
                 const struct stp_port_config *cfg)
{
    struct stp_port_config def;

    if (!stp || !port_mac || port_no > STP_MAX_PORT_NO)
        return -EINVAL;
    if (!cfg) {
        stp_port_config_uplink(&def);
        cfg = &def;
    }
    if (!port_config_valid(cfg))
        return -EINVAL;
    if (stp->in_run)
        return -EBUSY; /* called from a callback: the port table is in use */
    if (port_lookup(stp, port_no))
        return -EEXIST;
    if (stp->n_ports == stp->cap_ports) {
        unsigned cap = stp->cap_ports ? stp->cap_ports * 2 : 8;
        struct stp_port **v = realloc(stp->ports, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        stp->ports = v;
        stp->cap_ports = cap;
    }
    struct stp_port *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->stp = stp;
    p->port_no = port_no;
    memcpy(p->mac, port_mac, 6);
    p->cfg = *cfg;
    p->link_up = true;
    p->speed_mbps = 0;
    p->duplex_full = true;
    p->port_id = make_port_id(cfg->priority, port_no);
    port_update_link_derived(p);

    unsigned at = stp->n_ports;
    while (at > 0 && stp->ports[at - 1]->port_no > port_no) {
        stp->ports[at] = stp->ports[at - 1];
        at--;
    }
    stp->ports[at] = p;
    stp->n_ports++;

    port_reset_protocol(p);
    /* The datapath learns the port's first state at once: discarding
     * (forwarding if the engine is disabled). */
    report_state(p);
    run_machines(stp);
    return 0;
}

void stp_port_del(struct stp *stp, unsigned port_no)
{
    struct stp_port *p = stp ? port_lookup(stp, port_no) : NULL;

    if (!p || stp->in_run)
        return; /* in_run: called from a callback, which is not allowed */
    p->deleting = true;
    p->link_up = false;
    port_update_link_derived(p);
    run_machines(stp);

    unsigned i = 0;
    while (stp->ports[i] != p)
        i++;
    memmove(&stp->ports[i], &stp->ports[i + 1], (stp->n_ports - i - 1) * sizeof(*stp->ports));
    stp->n_ports--;
    if (stp->root_port == p)
        stp->root_port = NULL; /* cannot happen: a disabled port is never root */
    free(p);
    /* Its information is gone: choose roles again without it. */
    struct stp_port *q;
    FOR_EACH_PORT (q, stp) {
        q->reselect = true;
        q->selected = false;
    }
    run_machines(stp);
}

void stp_port_set_link(struct stp *stp, unsigned port_no, bool up, uint32_t speed_mbps,
                       bool duplex_full)
{
    struct stp_port *p = stp ? port_lookup(stp, port_no) : NULL;

    if (!p)
        return;
    uint32_t old_cost = p->port_path_cost;
    p->link_up = up;
    if (up) {
        p->speed_mbps = speed_mbps;
        p->duplex_full = duplex_full;
    }
    port_update_link_derived(p);
    if (p->port_path_cost != old_cost) { /* 17.13: reselect on a cost change */
        p->reselect = true;
        p->selected = false;
    }
    report_state(p);
    run_machines(stp);
}

/* BPDU guard: the port is shut before the BPDU is looked at any further. */
static void bpdu_guard_trip(struct stp_port *p, const struct stp_bpdu *b)
{
    struct stp *stp = p->stp;
    char why[128], id[STP_ID_STRLEN];

    p->c.bpdu_guard_trips++;
    p->shut = true;
    port_update_link_derived(p);
    report_state(p);
    if (b->type == STP_BPDU_TCN)
        snprintf(why, sizeof(why), "BPDU guard: TCN BPDU received");
    else
        snprintf(why, sizeof(why), "BPDU guard: %s BPDU received from bridge %s",
                 b->type == STP_BPDU_RST ? "RST" : "Config", stp_id_format(b->bridge_id, id));
    if (stp->cb.port_shut)
        stp->cb.port_shut(stp->aux, p->port_no, why);
    run_machines(stp);
}

static uint16_t time_decode_clamped(uint16_t raw, unsigned lo, unsigned hi, bool *clamped)
{
    unsigned s = ((unsigned)raw + 128u) / 256u;
    if (s < lo) {
        s = lo;
        *clamped = true;
    } else if (s > hi) {
        s = hi;
        *clamped = true;
    }
    return (uint16_t)s;
}

void stp_rx_bpdu(struct stp *stp, unsigned port_no, const void *frame, size_t len)
{
    struct stp_port *p = stp ? port_lookup(stp, port_no) : NULL;
    struct stp_bpdu b;

    if (!p || !stp->enabled)
        return; /* disabled: BPDUs are not the engine's business */
    if (p->cfg.bpdu_filter) {
        p->c.rx_filtered++;
        return;
    }
    if (!p->port_enabled) {
        p->c.rx_ignored++;
        return;
    }
    enum stp_rx_result r = stp_bpdu_decode(frame, len, &b);
    if (r != STP_RX_OK) {
        p->c.rx_drop[r]++;
        return;
    }
    if (p->cfg.bpdu_guard) {
        bpdu_guard_trip(p, &b);
        return;
    }
    /* 9.3.4 a): "... do not match the values that would be transmitted in a
     * BPDU from this Port" — the port hears itself (a reflecting device). */
    if (b.type != STP_BPDU_TCN && b.bridge_id == stp->bridge_id && b.port_id == p->port_id) {
        p->c.rx_drop[STP_RX_OWN_BPDU]++;
        return;
    }

    struct rx_msg *m = &p->rx;
    memset(m, 0, sizeof(*m));
    m->type = b.type;
    switch (b.type) {
    case STP_BPDU_TCN:
        p->c.rx_tcn++;
        break;
    case STP_BPDU_CONFIG:
        p->c.rx_config++;
        break;
    case STP_BPDU_RST:
        p->c.rx_rst++;
        break;
    }
    if (b.type != STP_BPDU_TCN) {
        bool clamped = false;
        m->flags = b.flags;
        m->role = (enum stp_bpdu_role)((b.flags & STP_FLAG_ROLE_MASK) >> STP_FLAG_ROLE_SHIFT);
        /* A Config BPDU conveys a Designated Port Role and only the TC and TC
         * Ack flags (9.3.1, 17.21.8); so does an RST BPDU whose role is
         * Unknown (9.2.9 NOTE). */
        if (b.type == STP_BPDU_CONFIG || m->role == STP_BPDU_ROLE_UNKNOWN) {
            m->role = STP_BPDU_ROLE_DESIGNATED;
            m->flags &= STP_FLAG_TC | STP_FLAG_TC_ACK;
        }
        m->prio.root_id = b.root_id;
        m->prio.root_cost = b.root_path_cost;
        m->prio.bridge_id = b.bridge_id;
        m->prio.port_id = b.port_id;
        m->times.max_age = time_decode_clamped(b.max_age, MIN_MAX_AGE, MAX_MAX_AGE, &clamped);
        m->times.hello_time =
            time_decode_clamped(b.hello_time, MIN_HELLO_TIME, MAX_HELLO_TIME, &clamped);
        m->times.forward_delay =
            time_decode_clamped(b.forward_delay, MIN_FORWARD_DELAY, MAX_FORWARD_DELAY, &clamped);
        m->times.message_age = time_decode_clamped(b.message_age, 0, MAX_MAX_AGE, &clamped);
        if (clamped)
            p->c.timers_clamped++;
    }
    p->rcvd_bpdu = true;
    run_machines(stp);
}

void stp_tick(struct stp *stp, uint32_t elapsed_ms)
{
    struct stp_port *p;

    if (!stp)
        return;
    stp->now_ms += elapsed_ms;
    if (!stp->enabled)
        return;
    uint64_t acc = (uint64_t)stp->ms_acc + elapsed_ms;
    uint64_t ticks = acc / 1000u;
    stp->ms_acc = (uint32_t)(acc % 1000u);
    if (ticks > MAX_TICKS_PER_CALL)
        ticks = MAX_TICKS_PER_CALL;
    while (ticks--) {
        FOR_EACH_PORT (p, stp) {
            port_timers_sm(p);
        }
        if (stp->tc_active_while)
            stp->tc_active_while--;
        run_machines(stp);
    }
}

void stp_set_enabled(struct stp *stp, bool enabled)
{
    struct stp_port *p;

    if (!stp || stp->enabled == enabled)
        return;
    stp->enabled = enabled;
    if (enabled) {
        bridge_begin(stp);
        run_machines(stp);
    } else {
        FOR_EACH_PORT (p, stp) {
            report_state(p);
        }
    }
}

int stp_port_reenable(struct stp *stp, unsigned port_no)
{
    struct stp_port *p = stp ? port_lookup(stp, port_no) : NULL;

    if (!p)
        return -ENODEV;
    if (!p->shut)
        return -EALREADY;
    p->shut = false;
    port_update_link_derived(p);
    report_state(p);
    run_machines(stp);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Parameters                                                                */

static int set_err(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int set_err(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Decimal, digits only, whole string. */
static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;

    if (!s || !*s)
        return -EINVAL;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(*c - '0');
        if (v > UINT32_MAX)
            return -ERANGE;
    }
    if (v < min || v > max)
        return -ERANGE;
    *out = (uint32_t)v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (!strcmp(s, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcmp(s, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

static int param_number(const char *key, const char *value, uint32_t min, uint32_t max,
                        uint32_t *out, char *err, size_t errlen)
{
    int rc = parse_u32(value, min, max, out);
    if (rc == -EINVAL)
        return set_err(err, errlen, rc, "%s: '%s' is not a number", key, value ? value : "");
    if (rc)
        return set_err(err, errlen, rc, "%s: %s is out of range %" PRIu32 "..%" PRIu32, key,
                       value, min, max);
    return 0;
}

static int param_bool(const char *key, const char *value, bool *out, char *err, size_t errlen)
{
    if (parse_bool(value, out))
        return set_err(err, errlen, -EINVAL, "%s: '%s' is not yes or no", key,
                       value ? value : "");
    return 0;
}

/* 17.14: 2 * (Bridge Forward Delay - 1) >= Bridge Max Age >=
 * 2 * (Bridge Hello Time + 1). */
static int check_timer_relation(unsigned hello, unsigned max_age_s, unsigned fwd, char *err,
                                size_t errlen)
{
    if (2 * (fwd - 1) < max_age_s)
        return set_err(err, errlen, -EINVAL,
                       "max-age %u exceeds 2 * (forward-delay - 1) = %u (802.1D 17.14)",
                       max_age_s, 2 * (fwd - 1));
    if (max_age_s < 2 * (hello + 1))
        return set_err(err, errlen, -EINVAL,
                       "max-age %u is below 2 * (hello-time + 1) = %u (802.1D 17.14)", max_age_s,
                       2 * (hello + 1));
    return 0;
}

static void reselect_all(struct stp *stp)
{
    struct stp_port *q;
    FOR_EACH_PORT (q, stp) {
        q->reselect = true;
        q->selected = false;
    }
}

int stp_set_param(struct stp *stp, const char *key, const char *value, char *err, size_t errlen)
{
    uint32_t v;
    bool b;
    int rc;

    if (!stp || !key || !value)
        return set_err(err, errlen, -EINVAL, "missing key or value");

    if (!strcmp(key, "priority")) {
        if ((rc = param_number(key, value, 0, 61440, &v, err, errlen)))
            return rc;
        if (v % 4096)
            return set_err(err, errlen, -EINVAL,
                           "priority: %" PRIu32 " is not a multiple of 4096 (802.1D 17.13)",
                           v);
        stp->priority = v;
        bridge_update_identity(stp);
        reselect_all(stp);
    } else if (!strcmp(key, "hello-time") || !strcmp(key, "max-age") ||
               !strcmp(key, "forward-delay")) {
        struct stp_times t = stp->bridge_times;
        if (!strcmp(key, "hello-time")) {
            if ((rc = param_number(key, value, MIN_HELLO_TIME, MAX_HELLO_TIME, &v, err, errlen)))
                return rc;
            t.hello_time = (uint16_t)v;
        } else if (!strcmp(key, "max-age")) {
            if ((rc = param_number(key, value, MIN_MAX_AGE, MAX_MAX_AGE, &v, err, errlen)))
                return rc;
            t.max_age = (uint16_t)v;
        } else {
            if ((rc = param_number(key, value, MIN_FORWARD_DELAY, MAX_FORWARD_DELAY, &v, err,
                                   errlen)))
                return rc;
            t.forward_delay = (uint16_t)v;
        }
        if ((rc = check_timer_relation(t.hello_time, t.max_age, t.forward_delay, err, errlen)))
            return rc;
        stp->bridge_times = t;
        reselect_all(stp);
    } else if (!strcmp(key, "force-version")) {
        enum stp_version fv;
        if (!strcmp(value, "stp"))
            fv = STP_VERSION_STP;
        else if (!strcmp(value, "rstp"))
            fv = STP_VERSION_RSTP;
        else
            return set_err(err, errlen, -EINVAL, "force-version: '%s' is not stp or rstp",
                           value);
        if (fv != stp->force_version) {
            /* Restart the protocol: rstpVersion is read by several machines
             * and a clean BEGIN is the only state the standard vouches for. */
            stp->force_version = fv;
            if (stp->enabled)
                bridge_begin(stp);
        }
    } else if (!strcmp(key, "tx-hold-count")) {
        if ((rc = param_number(key, value, 1, 10, &v, err, errlen)))
            return rc;
        stp->tx_hold_count = v;
        struct stp_port *q;
        FOR_EACH_PORT (q, stp) {
            q->tx_count = 0; /* 17.13: a new TxHoldCount clears txCount */
        }
    } else if (!strcmp(key, "ageing-time") || !strcmp(key, "ageing")) {
        if ((rc = param_number(key, value, 10, 1000000, &v, err, errlen)))
            return rc;
        stp->ageing_time = v;
    } else if (!strcmp(key, "enabled")) {
        if ((rc = param_bool(key, value, &b, err, errlen)))
            return rc;
        stp_set_enabled(stp, b);
        return 0;
    } else {
        return set_err(err, errlen, -ENOENT, "unknown bridge parameter '%s'", key);
    }
    run_machines(stp);
    return 0;
}

int stp_port_set_param(struct stp *stp, unsigned port_no, const char *key, const char *value,
                       char *err, size_t errlen)
{
    struct stp_port *p = stp ? port_lookup(stp, port_no) : NULL;
    uint32_t v;
    bool b;
    int rc;

    if (!stp || !key || !value)
        return set_err(err, errlen, -EINVAL, "missing key or value");
    if (!p)
        return set_err(err, errlen, -ENODEV, "no port %u", port_no);

    if (!strcmp(key, "priority")) {
        if ((rc = param_number(key, value, 0, 240, &v, err, errlen)))
            return rc;
        if (v % 16)
            return set_err(err, errlen, -EINVAL,
                           "priority: %" PRIu32 " is not a multiple of 16 (802.1D 17.13)", v);
        p->cfg.priority = (uint8_t)v;
        p->port_id = make_port_id(p->cfg.priority, p->port_no);
        p->reselect = true;
        p->selected = false;
    } else if (!strcmp(key, "path-cost")) {
        if (!strcmp(value, "auto"))
            v = 0;
        else if ((rc = param_number(key, value, 0, MAX_PATH_COST, &v, err, errlen)))
            return rc;
        p->cfg.path_cost = v;
        port_update_link_derived(p);
        p->reselect = true;
        p->selected = false;
    } else if (!strcmp(key, "admin-edge")) {
        if ((rc = param_bool(key, value, &b, err, errlen)))
            return rc;
        p->cfg.admin_edge = b;
        /* Take effect now, not at the next link change: restart the Bridge
         * Detection machine from its BEGIN state. */
        p->bdm = b ? BDM_EDGE : BDM_NOT_EDGE;
        p->oper_edge = b;
    } else if (!strcmp(key, "auto-edge")) {
        if ((rc = param_bool(key, value, &b, err, errlen)))
            return rc;
        p->cfg.auto_edge = b;
    } else if (!strcmp(key, "point-to-point") || !strcmp(key, "p2p")) {
        if (!strcmp(value, "auto"))
            p->cfg.p2p = STP_P2P_AUTO;
        else if (!parse_bool(value, &b))
            p->cfg.p2p = b ? STP_P2P_YES : STP_P2P_NO;
        else
            return set_err(err, errlen, -EINVAL, "%s: '%s' is not auto, yes or no", key, value);
        port_update_link_derived(p);
    } else if (!strcmp(key, "bpdu-guard")) {
        if ((rc = param_bool(key, value, &b, err, errlen)))
            return rc;
        p->cfg.bpdu_guard = b;
    } else if (!strcmp(key, "root-guard")) {
        if ((rc = param_bool(key, value, &b, err, errlen)))
            return rc;
        p->cfg.root_guard = b;
        reselect_all(stp);
    } else if (!strcmp(key, "bpdu-filter")) {
        if ((rc = param_bool(key, value, &b, err, errlen)))
            return rc;
        p->cfg.bpdu_filter = b;
    } else if (!strcmp(key, "mcheck")) {
        if ((rc = param_bool(key, value, &b, err, errlen)))
            return rc;
        if (!b)
            return set_err(err, errlen, -EINVAL, "mcheck: only 'yes' makes sense");
        p->mcheck = true; /* 17.19.13 */
    } else {
        return set_err(err, errlen, -ENOENT, "unknown port parameter '%s'", key);
    }
    run_machines(stp);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Introspection                                                             */

void stp_get_bridge_status(const struct stp *stp, struct stp_bridge_status *st)
{
    if (!stp || !st)
        return;
    memset(st, 0, sizeof(*st));
    snprintf(st->name, sizeof(st->name), "%s", stp->name);
    st->enabled = stp->enabled;
    st->force_version = stp->force_version;
    st->bridge_id = stp->bridge_id;
    st->root_id = stp->root_priority.root_id;
    st->root_path_cost = stp->root_priority.root_cost;
    st->root_port = stp->root_port ? stp->root_port->port_no : STP_NO_PORT;
    st->root_port_id = stp->root_port ? stp->root_port_id : 0;
    st->is_root = stp->root_port == NULL;
    st->max_age = stp->root_times.max_age;
    st->hello_time = stp->root_times.hello_time;
    st->forward_delay = stp->root_times.forward_delay;
    st->message_age = stp->root_times.message_age;
    st->bridge_max_age = stp->bridge_times.max_age;
    st->bridge_hello_time = stp->bridge_times.hello_time;
    st->bridge_forward_delay = stp->bridge_times.forward_delay;
    st->tx_hold_count = stp->tx_hold_count;
    st->ageing_time = stp->ageing_time;
    st->topology_change =
        stp->enabled && (topology_change_running(stp) || stp->tc_active_while != 0);
    st->topology_change_count = stp->tc_count;
    st->has_tc = stp->has_tc;
    st->time_since_tc_ms = stp->has_tc ? stp->now_ms - stp->last_tc_ms : 0;
    st->now_ms = stp->now_ms;
    st->n_ports = stp->n_ports;
    st->sm_bound_hits = stp->sm_bound_hits;
}

int stp_get_port_status(const struct stp *stp, unsigned port_no, struct stp_port_status *st)
{
    const struct stp_port *p = stp ? port_lookup(stp, port_no) : NULL;

    if (!p || !st)
        return -ENODEV;
    memset(st, 0, sizeof(*st));
    st->port_no = p->port_no;
    st->port_id = p->port_id;
    st->role = stp->enabled ? p->role : STP_ROLE_DISABLED;
    st->state = visible_state(p);
    st->link_up = p->link_up;
    st->enabled = p->port_enabled;
    st->shut_by_guard = p->shut;
    st->admin_edge = p->cfg.admin_edge;
    st->auto_edge = p->cfg.auto_edge;
    st->oper_edge = p->oper_edge;
    st->admin_p2p = p->cfg.p2p;
    st->oper_p2p = p->oper_p2p;
    st->bpdu_guard = p->cfg.bpdu_guard;
    st->root_guard = p->cfg.root_guard;
    st->bpdu_filter = p->cfg.bpdu_filter;
    st->root_guard_blocking = p->restricted_blocking;
    st->priority = p->cfg.priority;
    st->path_cost = p->port_path_cost;
    st->path_cost_auto = p->cfg.path_cost == 0;
    st->protocol = p->send_rstp ? STP_VERSION_RSTP : STP_VERSION_STP;
    st->designated_root = p->port_priority.root_id;
    st->designated_cost = p->port_priority.root_cost;
    st->designated_bridge = p->port_priority.bridge_id;
    st->designated_port = p->port_priority.port_id;
    st->proposing = p->proposing;
    st->agreed = p->agreed;
    st->fd_while = p->fd_while;
    st->tc_while = p->tc_while;
    st->rcvd_info_while = p->rcvd_info_while;
    st->edge_delay_while = p->edge_delay_while;
    st->hello_when = p->hello_when;
    st->counters = p->c;
    return 0;
}

unsigned stp_get_ports(const struct stp *stp, unsigned *ports, unsigned max)
{
    if (!stp)
        return 0;
    for (unsigned i = 0; i < stp->n_ports && i < max && ports; i++)
        ports[i] = stp->ports[i]->port_no;
    return stp->n_ports;
}

const char *stp_state_name(enum stp_port_state state)
{
    switch (state) {
    case STP_STATE_DISABLED:
        return "disabled";
    case STP_STATE_DISCARDING:
        return "discarding";
    case STP_STATE_LEARNING:
        return "learning";
    case STP_STATE_FORWARDING:
        return "forwarding";
    }
    return "unknown";
}

const char *stp_role_name(enum stp_port_role role)
{
    switch (role) {
    case STP_ROLE_DISABLED:
        return "disabled";
    case STP_ROLE_ROOT:
        return "root";
    case STP_ROLE_DESIGNATED:
        return "designated";
    case STP_ROLE_ALTERNATE:
        return "alternate";
    case STP_ROLE_BACKUP:
        return "backup";
    }
    return "unknown";
}

const char *stp_version_name(enum stp_version v)
{
    return v >= STP_VERSION_RSTP ? "rstp" : "stp";
}

const char *stp_p2p_name(enum stp_p2p p2p)
{
    switch (p2p) {
    case STP_P2P_AUTO:
        return "auto";
    case STP_P2P_YES:
        return "yes";
    case STP_P2P_NO:
        return "no";
    }
    return "unknown";
}

const char *stp_rx_result_name(enum stp_rx_result r)
{
    switch (r) {
    case STP_RX_OK:
        return "ok";
    case STP_RX_TRUNCATED:
        return "truncated";
    case STP_RX_BAD_DST:
        return "bad-dst";
    case STP_RX_BAD_SRC:
        return "bad-src";
    case STP_RX_BAD_LENGTH:
        return "bad-length";
    case STP_RX_BAD_LLC:
        return "bad-llc";
    case STP_RX_BAD_PROTOCOL:
        return "bad-protocol";
    case STP_RX_BAD_VERSION:
        return "bad-version";
    case STP_RX_BAD_TYPE:
        return "bad-type";
    case STP_RX_BAD_MSG_AGE:
        return "msg-age";
    case STP_RX_OWN_BPDU:
        return "own-bpdu";
    case STP_RX__MAX:
        break;
    }
    return "unknown";
}

char *stp_id_format(uint64_t id, char buf[STP_ID_STRLEN])
{
    snprintf(buf, STP_ID_STRLEN, "%04x.%012" PRIx64, (unsigned)(id >> 48), (uint64_t)(id & MAC_MASK));
    return buf;
}
