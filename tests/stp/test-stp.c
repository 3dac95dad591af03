/* test-stp.c — the RSTP engine against textbook topologies, simulated in
 * memory (stp-sim.h), plus the BPDU codec, parameters and hostile input.
 *
 * Conventions: sim bridge "X" with mac_last n has the MAC 02:00:00:00:00:0n
 * and the bridge id (priority << 48) | that MAC; port numbers are 1..15.
 * Times are simulated milliseconds; nothing sleeps.
 */
#include "test.h"

#include <errno.h>

#include "stp-sim.h"
#include "stp/stp.h"

#define ID(prio, last) (((uint64_t)(prio) << 48) | 0x020000000000ull | (uint64_t)(last))

#define ASSERT_ROLE(s, b, p, r) ASSERT_STREQ(stp_role_name(sim_role(s, b, p)), stp_role_name(r))
#define ASSERT_STATE(s, b, p, st)                                                          \
    ASSERT_STREQ(stp_state_name(sim_state(s, b, p)), stp_state_name(st))

static struct stp_port_config uplink(void)
{
    struct stp_port_config c;
    stp_port_config_uplink(&c);
    return c;
}

static struct stp_port_config guest(void)
{
    struct stp_port_config c;
    stp_port_config_guest(&c);
    return c;
}

/* Every attached port has settled: root and designated ports forward,
 * alternate and backup ports discard; no loop; one tree; one root. */
static bool attached(struct sim *s, int b)
{
    for (unsigned p = 1; p < SIM_MAX_PORTS; p++)
        if (s->br[b].port[p].lan >= 0 && s->lan[s->br[b].port[p].lan].up)
            return true;
    return false;
}

static bool converged(struct sim *s)
{
    uint64_t root = 0;
    bool first = true;
    for (int b = 0; b < s->nb; b++) {
        if (!attached(s, b))
            continue;
        struct stp_bridge_status bs = sim_bridge_status(s, b);
        if (first)
            root = bs.root_id;
        else if (bs.root_id != root)
            return false;
        first = false;
        for (unsigned p = 1; p < SIM_MAX_PORTS; p++) {
            struct sim_port *sp = &s->br[b].port[p];
            if (sp->lan < 0 || !s->lan[sp->lan].up)
                continue;
            enum stp_port_role r = sim_role(s, b, p);
            if ((r == STP_ROLE_ROOT || r == STP_ROLE_DESIGNATED) &&
                sp->state != STP_STATE_FORWARDING)
                return false;
            if ((r == STP_ROLE_ALTERNATE || r == STP_ROLE_BACKUP) &&
                sp->state != STP_STATE_DISCARDING)
                return false;
            if (r == STP_ROLE_DISABLED)
                return false;
        }
    }
    return sim_loop_free(s) && sim_connected(s);
}

/* Runs ms milliseconds and fails the test at the first millisecond where the
 * forwarding ports make a loop. */
static void run_loop_checked(struct sim *s, unsigned ms)
{
    for (unsigned i = 0; i < ms; i++) {
        sim_run(s, 1);
        if (!sim_loop_free(s)) {
            fprintf(stderr, "  forwarding loop at t=%llu ms\n", (unsigned long long)s->now);
            ASSERT_TRUE(sim_loop_free(s));
        }
    }
}

static unsigned count_role(struct sim *s, enum stp_port_role r)
{
    unsigned n = 0;
    for (int b = 0; b < s->nb; b++)
        for (unsigned p = 1; p < SIM_MAX_PORTS; p++)
            if (s->br[b].port[p].lan >= 0 && s->lan[s->br[b].port[p].lan].up &&
                sim_role(s, b, p) == r)
                n++;
    return n;
}

static size_t make_bpdu(uint8_t *buf, enum stp_bpdu_type type, uint8_t flags, uint64_t root,
                        uint32_t cost, uint64_t bridge, uint16_t port)
{
    struct stp_bpdu b = {
        .type = type,
        .version = type == STP_BPDU_RST ? 2 : 0,
        .flags = flags,
        .root_id = root,
        .root_path_cost = cost,
        .bridge_id = bridge,
        .port_id = port,
        .message_age = 0,
        .max_age = 20 * 256,
        .hello_time = 2 * 256,
        .forward_delay = 15 * 256,
    };
    static const uint8_t src[6] = {0x02, 0xee, 0, 0, 0, 1};
    return stp_bpdu_encode(&b, src, buf, STP_BPDU_FRAME_LEN);
}

#define RST_DESIGNATED (STP_BPDU_ROLE_DESIGNATED << STP_FLAG_ROLE_SHIFT)

/* ------------------------------------------------------------------------ */
/* Root election and tie-breaks                                               */

TEST(root_election_by_priority)
{
    struct sim *s = sim_new();
    int a = sim_bridge(s, "A", 32768, 1);
    int b = sim_bridge(s, "B", 32768, 2);
    int c = sim_bridge(s, "C", 4096, 3); /* worst MAC, best priority */
    sim_link(s, a, 1, b, 1);
    sim_link(s, b, 2, c, 1);
    sim_link(s, c, 2, a, 2);
    sim_run(s, 3000);
    ASSERT_TRUE(converged(s));
    ASSERT_TRUE(sim_consistent(s));
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(sim_bridge_status(s, i).root_id, ID(4096, 3));
    ASSERT_TRUE(sim_bridge_status(s, c).is_root);
    ASSERT_EQ(sim_bridge_status(s, c).root_port, STP_NO_PORT);
    /* Both of C's ports are designated; A and B have root ports toward C and
     * the A-B link is cut at B (B's id is worse, so A is designated there). */
    ASSERT_ROLE(s, c, 1, STP_ROLE_DESIGNATED);
    ASSERT_ROLE(s, c, 2, STP_ROLE_DESIGNATED);
    ASSERT_ROLE(s, a, 2, STP_ROLE_ROOT);
    ASSERT_ROLE(s, b, 2, STP_ROLE_ROOT);
    ASSERT_ROLE(s, a, 1, STP_ROLE_DESIGNATED);
    ASSERT_ROLE(s, b, 1, STP_ROLE_ALTERNATE);
    ASSERT_STATE(s, b, 1, STP_STATE_DISCARDING);
    ASSERT_EQ(sim_count_state(s, STP_STATE_DISCARDING), 1);
    ASSERT_EQ(sim_bridge_status(s, a).root_path_cost, 20000); /* 1 Gb/s */
    sim_free(s);
}

TEST(root_election_by_mac_and_priority_change)
{
    struct sim *s = sim_new();
    int a = sim_bridge(s, "A", 32768, 0x31);
    int b = sim_bridge(s, "B", 32768, 0x12); /* lowest MAC */
    int c = sim_bridge(s, "C", 32768, 0x23);
    sim_link(s, a, 1, b, 1);
    sim_link(s, b, 2, c, 1);
    sim_run(s, 3000);
    ASSERT_TRUE(converged(s));
    ASSERT_TRUE(sim_bridge_status(s, b).is_root);
    ASSERT_EQ(sim_bridge_status(s, a).root_id, ID(32768, 0x12));
    ASSERT_EQ(sim_bridge_status(s, a).root_port, 1);
    ASSERT_EQ(sim_bridge_status(s, c).root_port, 1);

    /* Management makes C the root: the tree turns around at once. */
    char err[128];
    ASSERT_EQ(stp_set_param(s->br[c].stp, "priority", "4096", err, sizeof(err)), 0);
    sim_run(s, 2000);
    ASSERT_TRUE(converged(s));
    ASSERT_TRUE(sim_bridge_status(s, c).is_root);
    ASSERT_EQ(sim_bridge_status(s, a).root_id, ID(4096, 0x23));
    ASSERT_ROLE(s, b, 2, STP_ROLE_ROOT);
    ASSERT_ROLE(s, b, 1, STP_ROLE_DESIGNATED);
    ASSERT_EQ(sim_bridge_status(s, a).root_path_cost, 40000);
    ASSERT_TRUE(sim_consistent(s));
    sim_free(s);
}

TEST(path_cost_decides_root_port)
{
    struct sim *s = sim_new();
    char err[128];
    int a = sim_bridge(s, "A", 4096, 1);
    int b = sim_bridge(s, "B", 32768, 2);
    int c = sim_bridge(s, "C", 32768, 3);
    sim_link(s, a, 1, b, 1);
    sim_link(s, b, 2, c, 1);
    sim_link(s, a, 2, c, 2);
    /* A-B and B-C are 10 Gb/s (2000 each), A-C is 1 Gb/s (20000): C goes
     * around through B (4000 < 20000). */
    ASSERT_EQ(stp_port_set_param(s->br[b].stp, 1, "path-cost", "2000", err, sizeof(err)), 0);
    ASSERT_EQ(stp_port_set_param(s->br[c].stp, 1, "path-cost", "2000", err, sizeof(err)), 0);
    sim_run(s, 3000);
    ASSERT_TRUE(converged(s));
    ASSERT_ROLE(s, c, 1, STP_ROLE_ROOT);
    ASSERT_ROLE(s, c, 2, STP_ROLE_ALTERNATE);
    ASSERT_ROLE(s, a, 2, STP_ROLE_DESIGNATED);
    ASSERT_EQ(sim_bridge_status(s, c).root_path_cost, 4000);
    ASSERT_EQ(sim_port_status(s, c, 2).path_cost, 20000);
    ASSERT_TRUE(sim_port_status(s, c, 2).path_cost_auto);

    /* Make the direct link cheaper than the detour: it becomes the root
     * port, and the detour's far end blocks instead. */
    ASSERT_EQ(stp_port_set_param(s->br[c].stp, 2, "path-cost", "3000", err, sizeof(err)), 0);
    sim_run(s, 2000);
    ASSERT_TRUE(converged(s));
    ASSERT_ROLE(s, c, 2, STP_ROLE_ROOT);
    ASSERT_EQ(sim_bridge_status(s, c).root_path_cost, 3000);
    ASSERT_EQ(sim_count_state(s, STP_STATE_DISCARDING), 1);
    ASSERT_TRUE(sim_consistent(s));
    sim_free(s);
}

TEST(equal_cost_tie_broken_by_designated_bridge)
{
    struct sim *s = sim_new();
    int a = sim_bridge(s, "A", 4096, 1);
    int b = sim_bridge(s, "B", 32768, 2);
    int c = sim_bridge(s, "C", 32768, 3);
    int d = sim_bridge(s, "D", 32768, 4);
    sim_link(s, a, 1, b, 1);
    sim_link(s, a, 2, c, 1);
    sim_link(s, d, 1, c, 2); /* D's lower port number faces the worse bridge */
    sim_link(s, d, 2, b, 2);
    sim_run(s, 3000);
    ASSERT_TRUE(converged(s));
    /* D reaches the root at 40000 through B or C: B's id is lower. */
    ASSERT_ROLE(s, d, 2, STP_ROLE_ROOT);
    ASSERT_ROLE(s, d, 1, STP_ROLE_ALTERNATE);
    ASSERT_EQ(sim_port_status(s, d, 2).designated_bridge, ID(32768, 2));
    ASSERT_TRUE(sim_consistent(s));
    sim_free(s);
}

TEST(port_id_tie_breaks)
{
    struct sim *s = sim_new();
    char err[128];
    int a = sim_bridge(s, "A", 4096, 1);
    int b = sim_bridge(s, "B", 32768, 2);
    /* Two parallel links: B picks the one whose designated port id is lower. */
    sim_link(s, a, 1, b, 1);
    sim_link(s, a, 2, b, 2);
    sim_run(s, 3000);
    ASSERT_TRUE(converged(s));
    ASSERT_ROLE(s, b, 1, STP_ROLE_ROOT);
    ASSERT_ROLE(s, b, 2, STP_ROLE_ALTERNATE);
    ASSERT_EQ(sim_port_status(s, b, 1).designated_port, 0x8001);

    /* A's port 2 gets a better priority: 0x1002 < 0x8001 flips the choice. */
    ASSERT_EQ(stp_port_set_param(s->br[a].stp, 2, "priority", "16", err, sizeof(err)), 0);
    sim_run(s, 2000);
    ASSERT_TRUE(converged(s));
    ASSERT_ROLE(s, b, 2, STP_ROLE_ROOT);
    ASSERT_ROLE(s, b, 1, STP_ROLE_ALTERNATE);
    ASSERT_EQ(sim_port_status(s, b, 2).designated_port, 0x1002);
    sim_free(s);

    /* Fifth component: two ports of B hear the same designated port of A on
     * one LAN; B's own port id decides (17.6). */
    s = sim_new();
    a = sim_bridge(s, "A", 4096, 1);
    b = sim_bridge(s, "B", 32768, 2);
    sim_port(s, a, 1, NULL);
    sim_port(s, b, 1, NULL);
    sim_port(s, b, 2, NULL);
    int hub = sim_lan(s, false);
    sim_attach(s, hub, a, 1);
    sim_attach(s, hub, b, 1);
    sim_attach(s, hub, b, 2);
    sim_run(s, 30000);
    ASSERT_TRUE(converged(s));
    ASSERT_ROLE(s, b, 1, STP_ROLE_ROOT);
    ASSERT_ROLE(s, b, 2, STP_ROLE_ALTERNATE); /* the LAN's designated bridge is A */
    ASSERT_EQ(stp_port_set_param(s->br[b].stp, 2, "priority", "64", err, sizeof(err)), 0);
    sim_run(s, 30000);
    ASSERT_TRUE(converged(s));
    ASSERT_ROLE(s, b, 2, STP_ROLE_ROOT);
    ASSERT_ROLE(s, b, 1, STP_ROLE_ALTERNATE);
    ASSERT_EQ(sim_port_status(s, b, 2).port_id, 0x4002);
    ASSERT_TRUE(sim_consistent(s));
    sim_free(s);
}

/* ------------------------------------------------------------------------ */
/* Alternate and backup, the outage                                           */

TEST(backup_port_on_shared_lan)
{
    struct sim *s = sim_new();
    int a = sim_bridge(s, "A", 4096, 1);
    int b = sim_bridge(s, "B", 32768, 2);
    sim_port(s, a, 1, NULL);
    sim_port(s, a, 2, NULL);
    sim_port(s, b, 1, NULL);
    int hub = sim_lan(s, false); /* half duplex: a real shared LAN */
    sim_attach(s, hub, a, 1);
    sim_attach(s, hub, a, 2);
    sim_attach(s, hub, b, 1);
    run_loop_checked(s, 40000);
    ASSERT_TRUE(converged(s));
    ASSERT_ROLE(s, a, 1, STP_ROLE_DESIGNATED);
    ASSERT_ROLE(s, a, 2, STP_ROLE_BACKUP);
    ASSERT_STATE(s, a, 2, STP_STATE_DISCARDING);
    ASSERT_ROLE(s, b, 1, STP_ROLE_ROOT);
    /* The backup port holds A's own port 1 as the LAN's designated port. */
    ASSERT_EQ(sim_port_status(s, a, 2).designated_bridge, ID(4096, 1));
    ASSERT_EQ(sim_port_status(s, a, 2).designated_port, 0x8001);
    ASSERT_TRUE(sim_consistent(s));
    sim_free(s);
}

static int outage_bridge;
static bool both_ports_forwarding_seen;

static bool outage_settled(struct sim *s)
{
    enum stp_port_role r1 = sim_role(s, outage_bridge, 1), r2 = sim_role(s, outage_bridge, 2);
    return (r1 == STP_ROLE_BACKUP) != (r2 == STP_ROLE_BACKUP);
}

static void outage_watch(struct sim *s, unsigned ms)
{
    for (unsigned i = 0; i < ms; i++) {
        sim_run(s, 1);
        if (sim_state(s, outage_bridge, 1) == STP_STATE_FORWARDING &&
            sim_state(s, outage_bridge, 2) == STP_STATE_FORWARDING)
            both_ports_forwarding_seen = true;
    }
}

/* The xenbr0 outage: eth0, already bridged through vif0.0, is added to the
 * same bridge. Two ports of one bridge on one segment through a device that
 * forwards BPDUs (full duplex, so p2p auto says point-to-point). */
TEST(outage_two_ports_through_bpdu_forwarding_device)
{
    for (int legacy = 0; legacy < 2; legacy++) {
        struct sim *s = sim_new();
        int x = legacy ? sim_legacy_bridge(s, "X", 32768, 1) : sim_bridge(s, "X", 32768, 1);
        outage_bridge = x;
        both_ports_forwarding_seen = false;
        sim_port(s, x, 1, NULL);
        sim_port(s, x, 2, NULL);
        int dev = sim_lan(s, true);
        sim_attach(s, dev, x, 1);
        /* Port 1 alone: RSTP makes it an edge after 3 s; STP has no edge
         * detection and waits MaxAge + FwdDelay (17.29). */
        sim_run(s, legacy ? 40000 : 5000);
        ASSERT_STATE(s, x, 1, STP_STATE_FORWARDING);
        sim_attach(s, dev, x, 2); /* the fatal `brctl addif` */
        unsigned took = sim_run_until(s, 10000, outage_settled);
        outage_watch(s, 60000);
        ASSERT_FALSE(both_ports_forwarding_seen);
        ASSERT_TRUE(sim_loop_free(s));
        ASSERT_EQ(sim_count_state(s, STP_STATE_FORWARDING), 1);
        ASSERT_EQ(sim_count_state(s, STP_STATE_DISCARDING), 1);
        ASSERT_ROLE(s, x, 2, STP_ROLE_BACKUP);
        ASSERT_ROLE(s, x, 1, STP_ROLE_DESIGNATED);
        ASSERT_TRUE(sim_consistent(s));
        if (!legacy) {
            /* RSTP: port 2's first BPDU reaches port 1, which answers at
             * once: milliseconds, not a Hello Time. */
            fprintf(stderr, "  rstp: backup after %u ms\n", took);
            ASSERT_LE(took, 10);
        } else {
            fprintf(stderr, "  stp: backup after %u ms\n", took);
            ASSERT_LE(took, 2500);
        }
        sim_free(s);
    }
}

/* The same outage with guest-style ports (edge + BPDU guard): the guest
 * bridges its two vifs. Edge ports forward at once, so the loop exists until
 * the first BPDU crosses it: one millisecond here. */
TEST(outage_guest_bridging_two_vifs_trips_bpdu_guard)
{
    struct sim *s = sim_new();
    struct stp_port_config g = guest();
    int x = sim_bridge(s, "X", 32768, 1);
    sim_port(s, x, 1, &g);
    sim_port(s, x, 2, &g);
    int guest_bridge = sim_lan(s, true);
    sim_attach(s, guest_bridge, x, 1);
    sim_run(s, 3000);
    ASSERT_STATE(s, x, 1, STP_STATE_FORWARDING);
    sim_attach(s, guest_bridge, x, 2);
    ASSERT_STATE(s, x, 2, STP_STATE_FORWARDING); /* edge: at once */
    sim_run(s, 2);
    ASSERT_TRUE(sim_loop_free(s));
    unsigned shut = (sim_state(s, x, 1) == STP_STATE_DISABLED) +
                    (sim_state(s, x, 2) == STP_STATE_DISABLED);
    ASSERT_EQ(shut, 1);
    unsigned p = sim_state(s, x, 1) == STP_STATE_DISABLED ? 1 : 2;
    ASSERT_EQ(s->br[x].port[p].shuts, 1);
    ASSERT_TRUE(strstr(s->br[x].port[p].shut_why, "BPDU guard") != NULL);
    ASSERT_TRUE(sim_port_status(s, x, p).shut_by_guard);
    ASSERT_EQ(sim_port_status(s, x, p).counters.bpdu_guard_trips, 1);

    /* The admin re-enables with the loop still there: it trips again. */
    ASSERT_EQ(stp_port_reenable(s->br[x].stp, p), 0);
    sim_run(s, 3000);
    ASSERT_EQ(sim_count_state(s, STP_STATE_DISABLED), 1);
    ASSERT_TRUE(sim_loop_free(s));
    ASSERT_TRUE(sim_consistent(s));
    sim_free(s);
}

/* The literal xenbr0 shape: vif0.0 (dom0's own vif: a guest-style port) and
 * eth0 (its other end, added as an uplink) are two ports of the same bridge
 * on the same wire. Whatever order they come up in, the loop is over within
 * a couple of milliseconds and what stays is one forwarding port. */
TEST(outage_vif0_and_eth0_on_one_bridge)
{
    for (int order = 0; order < 2; order++) {
        struct sim *s = sim_new();
        struct stp_port_config g = guest();
        int x = sim_bridge(s, "X", 32768, 1);
        sim_port(s, x, 1, &g);    /* vif0.0 */
        sim_port(s, x, 2, NULL);  /* eth0 */
        int wire = sim_lan(s, true);
        unsigned first = order ? 2 : 1, second = order ? 1 : 2;
        sim_attach(s, wire, x, first);
        sim_run(s, 5000);
        ASSERT_STATE(s, x, first, STP_STATE_FORWARDING); /* alone: edge */
        sim_attach(s, wire, x, second);
        unsigned loop_ms = sim_loop_free(s) ? 0 : 1;
        for (int t = 0; t < 30000; t++) {
            sim_run(s, 1);
            loop_ms += !sim_loop_free(s);
        }
        fprintf(stderr, "  %s first: loop lasted %u ms\n", order ? "eth0" : "vif0.0", loop_ms);
        ASSERT_LE(loop_ms, 2);
        ASSERT_STATE(s, x, 1, STP_STATE_DISABLED); /* BPDU guard */
        ASSERT_TRUE(sim_port_status(s, x, 1).shut_by_guard);
        ASSERT_STATE(s, x, 2, STP_STATE_FORWARDING);
        ASSERT_TRUE(sim_consistent(s));
        sim_free(s);
    }
}

/* ------------------------------------------------------------------------ */
/* Rapid transitions                                                          */

static bool all_forwarding_or_blocked(struct sim *s)
{
    return converged(s);
}

TEST(proposal_agreement_is_fast_and_stp_is_not)
{
    for (int legacy = 0; legacy < 2; legacy++) {
        struct sim *s = sim_new();
        int br[5];
        for (int i = 0; i < 4; i++) {
            char name[2] = {(char)('A' + i), 0};
            br[i] = legacy ? sim_legacy_bridge(s, name, i ? 32768 : 4096, (uint8_t)(i + 1))
                           : sim_bridge(s, name, i ? 32768 : 4096, (uint8_t)(i + 1));
            sim_port(s, br[i], 1, NULL);
            sim_port(s, br[i], 2, NULL);
        }
        sim_run(s, 10);
        /* A chain A-B-C-D, every link up at the same instant. */
        for (int i = 0; i < 3; i++) {
            int l = sim_lan(s, true);
            sim_attach(s, l, br[i], 2);
            sim_attach(s, l, br[i + 1], 1);
        }
        uint64_t t0 = s->now;
        unsigned took = sim_run_until(s, 60000, all_forwarding_or_blocked);
        fprintf(stderr, "  %s chain of 4: converged after %u ms\n", legacy ? "stp" : "rstp",
                took);
        ASSERT_TRUE(sim_consistent(s));
        if (!legacy) {
            /* Far less than the 30 s of forward delay, and less than even one
             * Hello Time: every hop is a proposal and an agreement. */
            ASSERT_LT(took, 500);
            for (int i = 1; i < 4; i++)
                ASSERT_LT(s->br[br[i]].port[1].fwd_at_ms - t0, 500);
        } else {
            /* The STP timers: a port enabled from DISABLED_PORT waits
             * fdWhile = MaxAge (20 s), then learns for FwdDelay (15 s):
             * 35 s (an 802.1D-1998 bridge: 2 x 15 s). */
            ASSERT_GE(took, 29000);
            ASSERT_LE(took, 36000);
        }

        /* A new bridge E joins at the end of the converged chain. */
        sim_run(s, 5000);
        br[4] = legacy ? sim_legacy_bridge(s, "E", 32768, 5) : sim_bridge(s, "E", 32768, 5);
        sim_port(s, br[4], 1, NULL);
        sim_port(s, br[3], 3, NULL);
        int l = sim_lan(s, true);
        t0 = s->now;
        sim_attach(s, l, br[3], 3);
        sim_attach(s, l, br[4], 1);
        took = sim_run_until(s, 60000, all_forwarding_or_blocked);
        fprintf(stderr, "  %s: new bridge forwarding after %u ms\n", legacy ? "stp" : "rstp",
                took);
        if (!legacy) {
            ASSERT_LT(took, 100);
            ASSERT_LT(s->br[br[4]].port[1].fwd_at_ms - t0, 100);
            ASSERT_LT(s->br[br[3]].port[3].fwd_at_ms - t0, 100);
        } else {
            ASSERT_GE(took, 29000);
        }
        ASSERT_TRUE(sim_consistent(s));
        sim_free(s);
    }
}

TEST(port_add_discards_and_sends_bpdu_at_once)
{
    struct sim *s = sim_new();
    int a = sim_bridge(s, "A", 32768, 1);
    struct stp_port_config c = uplink();
    uint8_t mac[6] = {0x02, 0x01, 0, 0, 0, 7};

    /* Straight through the API (not sim_port, which takes the link down). */
    ASSERT_EQ(stp_port_add(s->br[a].stp, 7, mac, &c), 0);
    ASSERT_TRUE(s->br[a].port[7].have_state);
    ASSERT_STATE(s, a, 7, STP_STATE_DISCARDING);
    ASSERT_EQ(s->br[a].port[7].tx_frames, 1);
    struct stp_bpdu bpdu;
    ASSERT_EQ(stp_bpdu_decode(s->br[a].port[7].last_tx, s->br[a].port[7].last_tx_len, &bpdu),
              STP_RX_OK);
    ASSERT_EQ(bpdu.type, STP_BPDU_RST);
    ASSERT_EQ(bpdu.version, 2);
    ASSERT_EQ((bpdu.flags & STP_FLAG_ROLE_MASK) >> STP_FLAG_ROLE_SHIFT, STP_BPDU_ROLE_DESIGNATED);
    ASSERT_TRUE(bpdu.flags & STP_FLAG_PROPOSAL);
    ASSERT_EQ(bpdu.root_id, ID(32768, 1));
    ASSERT_EQ(bpdu.bridge_id, ID(32768, 1));
    ASSERT_EQ(bpdu.port_id, 0x8007);
    ASSERT_EQ(bpdu.max_age, 20 * 256);
    ASSERT_EQ(bpdu.hello_time, 2 * 256);
    ASSERT_EQ(bpdu.forward_delay, 15 * 256);
    ASSERT_MEMEQ(s->br[a].port[7].last_tx + 6, mac, 6); /* source: the port's MAC */
    ASSERT_EQ(s->br[a].port[7].last_tx_len, STP_BPDU_FRAME_LEN);

    /* A guest port forwards at once. */
    struct stp_port_config g = guest();
    ASSERT_EQ(stp_port_add(s->br[a].stp, 8, mac, &g), 0);
    ASSERT_STATE(s, a, 8, STP_STATE_FORWARDING);
    ASSERT_TRUE(sim_port_status(s, a, 8).oper_edge);
    ASSERT_EQ(stp_port_add(s->br[a].stp, 8, mac, &g), -EEXIST);
    ASSERT_EQ(stp_port_add(s->br[a].stp, 4096, mac, &g), -EINVAL);
    g.priority = 17;
    ASSERT_EQ(stp_port_add(s->br[a].stp, 9, mac, &g), -EINVAL);
    unsigned ports[4];
    ASSERT_EQ(stp_get_ports(s->br[a].stp, ports, 4), 2);
    ASSERT_EQ(ports[0], 7);
    ASSERT_EQ(ports[1], 8);
    sim_free(s);
}

TEST(edge_ports)
{
    struct sim *s = sim_new();
    char err[128];
    int a = sim_bridge(s, "A", 32768, 1);
    struct stp_port_config e = uplink();
    e.admin_edge = true;
    sim_port(s, a, 1, &e);
    int host = sim_lan(s, true);
    sim_attach(s, host, a, 1);
    ASSERT_STATE(s, a, 1, STP_STATE_FORWARDING); /* same instant */
    ASSERT_TRUE(sim_port_status(s, a, 1).oper_edge);

    /* A BPDU arrives: the port is no edge any more (it stays designated and
     * forwarding: the sender's information is inferior). */
    uint8_t f[STP_BPDU_FRAME_LEN];
    size_t n = make_bpdu(f, STP_BPDU_RST, RST_DESIGNATED, ID(61440, 9), 0, ID(61440, 9), 0x8001);
    sim_inject(s, host, f, n);
    sim_run(s, 1);
    ASSERT_FALSE(sim_port_status(s, a, 1).oper_edge);
    ASSERT_TRUE(sim_port_status(s, a, 1).admin_edge);
    ASSERT_ROLE(s, a, 1, STP_ROLE_DESIGNATED);
    ASSERT_EQ(sim_port_status(s, a, 1).counters.rx_rst, 1);
    /* A link bounce restores the administrative edge. */
    sim_detach(s, a, 1);
    sim_attach(s, host, a, 1);
    ASSERT_TRUE(sim_port_status(s, a, 1).oper_edge);
    ASSERT_STATE(s, a, 1, STP_STATE_FORWARDING);

    /* auto-edge: an uplink-style port toward a host that sends no BPDU
     * becomes edge after EdgeDelay = MigrateTime (3 s) on a p2p link. */
    sim_port(s, a, 2, NULL);
    int host2 = sim_lan(s, true);
    uint64_t t0 = s->now;
    sim_attach(s, host2, a, 2);
    sim_run(s, 2900);
    ASSERT_STATE(s, a, 2, STP_STATE_DISCARDING);
    sim_run(s, 1100);
    ASSERT_STATE(s, a, 2, STP_STATE_FORWARDING);
    ASSERT_TRUE(sim_port_status(s, a, 2).oper_edge);
    ASSERT_GE(s->br[a].port[2].fwd_at_ms - t0, 2900);

    /* Without auto-edge the same port waits for fdWhile: MaxAge from the
     * disabled state, then forwardDelay (HelloTime with RSTP) twice. */
    sim_port(s, a, 3, NULL);
    ASSERT_EQ(stp_port_set_param(s->br[a].stp, 3, "auto-edge", "no", err, sizeof(err)), 0);
    int host3 = sim_lan(s, true);
    t0 = s->now;
    sim_attach(s, host3, a, 3);
    sim_run(s, 21000);
    ASSERT_STATE(s, a, 3, STP_STATE_LEARNING);
    sim_run(s, 2500);
    ASSERT_STATE(s, a, 3, STP_STATE_FORWARDING);
    ASSERT_FALSE(sim_port_status(s, a, 3).oper_edge);
    ASSERT_GE(s->br[a].port[3].fwd_at_ms - t0, 21000);

    /* admin-edge set on a live port takes effect at once. */
    ASSERT_EQ(stp_port_set_param(s->br[a].stp, 3, "admin-edge", "yes", err, sizeof(err)), 0);
    ASSERT_TRUE(sim_port_status(s, a, 3).oper_edge);
    ASSERT_TRUE(sim_consistent(s));
    sim_free(s);
}

/* ------------------------------------------------------------------------ */
/* Topology change                                                            */

static bool tc_quiet(struct sim *s)
{
    for (int b = 0; b < s->nb; b++)
        if (sim_bridge_status(s, b).topology_change)
            return false;
    return true;
}

TEST(topology_change_reaches_every_bridge_and_flushes)
{
    struct sim *s = sim_new();
    struct stp_port_config g = guest();
    int a = sim_bridge(s, "A", 4096, 1);
    int b = sim_bridge(s, "B", 32768, 2);
    int c = sim_bridge(s, "C", 32768, 3);
    int d = sim_bridge(s, "D", 32768, 4);
    int f = sim_bridge(s, "F", 32768, 6);
    sim_link(s, a, 1, b, 1);
    sim_link(s, b, 2, c, 1);
    sim_link(s, c, 2, d, 1);
    sim_link(s, a, 2, f, 1);
    int br[] = {a, b, c, d, f};
    for (int i = 0; i < 5; i++) { /* every bridge has a guest */
        sim_port(s, br[i], 9, &g);
        sim_attach(s, sim_lan(s, true), br[i], 9);
    }
    sim_run(s, 3000);
    ASSERT_TRUE(converged(s));
    ASSERT_LT(sim_run_until(s, 20000, tc_quiet), 20000);
    sim_reset_counters(s);
    uint64_t before[5];
    for (int i = 0; i < 5; i++)
        before[i] = sim_bridge_status(s, br[i]).topology_change_count;

    /* A new bridge E behind D: D's new port goes forwarding -> TC. */
    int e = sim_bridge(s, "E", 32768, 5);
    sim_link(s, d, 3, e, 1);
    sim_run(s, 2000);
    ASSERT_TRUE(converged(s));
    for (int i = 0; i < 5; i++) {
        struct stp_bridge_status bs = sim_bridge_status(s, br[i]);
        ASSERT_GT(bs.topology_change_count, before[i]);
        ASSERT_TRUE(bs.has_tc);
        ASSERT_LT(bs.time_since_tc_ms, 2000);
    }
    /* Flushed: every non-edge port but the one the TC came in on. */
    ASSERT_GE(s->br[d].port[1].flushes, 1); /* D -> C */
    ASSERT_EQ(s->br[d].port[3].flushes, 0); /* where it came from */
    ASSERT_GE(s->br[c].port[1].flushes, 1);
    ASSERT_EQ(s->br[c].port[2].flushes, 0);
    ASSERT_GE(s->br[b].port[1].flushes, 1);
    ASSERT_EQ(s->br[b].port[2].flushes, 0);
    ASSERT_GE(s->br[a].port[2].flushes, 1); /* on to F */
    ASSERT_EQ(s->br[a].port[1].flushes, 0);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(s->br[br[i]].port[9].flushes, 0); /* edge ports keep theirs */
    ASSERT_EQ(s->br[a].flush_all, 0);
    ASSERT_TRUE(sim_consistent(s));
    /* And it ends: tcWhile runs out everywhere. */
    ASSERT_LT(sim_run_until(s, 10000, tc_quiet), 10000);
    sim_free(s);
}

/* ------------------------------------------------------------------------ */
/* Legacy STP: migration (17.24) and TCN                                      */

TEST(migration_on_shared_lan_and_mcheck)
{
    struct sim *s = sim_new();
    char err[128];
    int a = sim_bridge(s, "A", 4096, 1);
    int b = sim_bridge(s, "B", 32768, 2);
    int l = sim_legacy_bridge(s, "L", 32768, 3);
    sim_port(s, a, 1, NULL);
    sim_port(s, b, 1, NULL);
    int hub = sim_lan(s, false);
    sim_attach(s, hub, a, 1);
    sim_attach(s, hub, b, 1);
    sim_link(s, a, 2, b, 2);
    sim_run(s, 40000);
    ASSERT_TRUE(converged(s));
    ASSERT_EQ(sim_port_status(s, a, 1).protocol, STP_VERSION_RSTP);
    ASSERT_EQ(sim_port_status(s, b, 1).protocol, STP_VERSION_RSTP);

    /* A legacy bridge appears on the hub: its Config BPDUs make both RSTP
     * ports on that LAN fall back to STP; the p2p link stays RSTP. */
    sim_port(s, l, 1, NULL);
    sim_attach(s, hub, l, 1);
    run_loop_checked(s, 45000);
    ASSERT_TRUE(converged(s));
    ASSERT_EQ(sim_port_status(s, a, 1).protocol, STP_VERSION_STP);
    ASSERT_EQ(sim_port_status(s, b, 1).protocol, STP_VERSION_STP);
    ASSERT_EQ(sim_port_status(s, a, 2).protocol, STP_VERSION_RSTP);
    ASSERT_EQ(sim_port_status(s, b, 2).protocol, STP_VERSION_RSTP);
    ASSERT_GT(sim_port_status(s, a, 1).counters.tx_config, 0);
    ASSERT_EQ(sim_bridge_status(s, l).root_id, ID(4096, 1));
    ASSERT_ROLE(s, l, 1, STP_ROLE_ROOT);
    ASSERT_ROLE(s, a, 1, STP_ROLE_DESIGNATED);
    ASSERT_TRUE(sim_consistent(s));

    /* It leaves. Nobody on the hub sends RST BPDUs, so the ports stay STP
     * until management forces a migration check. */
    sim_detach(s, l, 1);
    sim_run(s, 10000);
    ASSERT_EQ(sim_port_status(s, a, 1).protocol, STP_VERSION_STP);
    ASSERT_EQ(sim_port_status(s, b, 1).protocol, STP_VERSION_STP);
    ASSERT_EQ(stp_port_set_param(s->br[a].stp, 1, "mcheck", "yes", err, sizeof(err)), 0);
    ASSERT_EQ(sim_port_status(s, a, 1).protocol, STP_VERSION_RSTP);
    sim_run(s, 5000);
    ASSERT_EQ(sim_port_status(s, a, 1).protocol, STP_VERSION_RSTP);
    ASSERT_EQ(sim_port_status(s, b, 1).protocol, STP_VERSION_RSTP);
    ASSERT_TRUE(converged(s));
    ASSERT_TRUE(sim_consistent(s));
    sim_free(s);
}

TEST(migration_back_when_legacy_peer_upgrades)
{
    struct sim *s = sim_new();
    char err[128];
    int a = sim_bridge(s, "A", 4096, 1);
    int l = sim_legacy_bridge(s, "L", 32768, 2);
    sim_link(s, a, 1, l, 1);
    sim_run(s, 40000);
    ASSERT_TRUE(converged(s));
    ASSERT_EQ(sim_port_status(s, a, 1).protocol, STP_VERSION_STP);
    ASSERT_ROLE(s, l, 1, STP_ROLE_ROOT);

    /* The peer becomes an RSTP bridge (no link change): its first RST BPDU
     * brings A's port back within the migration time. */
    s->br[l].legacy = false;
    ASSERT_EQ(stp_set_param(s->br[l].stp, "force-version", "rstp", err, sizeof(err)), 0);
    sim_run(s, 4000);
    ASSERT_EQ(sim_port_status(s, a, 1).protocol, STP_VERSION_RSTP);
    ASSERT_EQ(sim_port_status(s, l, 1).protocol, STP_VERSION_RSTP);
    ASSERT_TRUE(converged(s));

    /* And a legacy peer plugged in place of it is detected again. */
    int l2 = sim_legacy_bridge(s, "L2", 32768, 3);
    sim_port(s, l2, 1, NULL);
    sim_lan_cut(s, 0);
    int lan = sim_lan(s, true);
    sim_attach(s, lan, a, 1);
    sim_attach(s, lan, l2, 1);
    sim_run(s, 40000);
    ASSERT_EQ(sim_port_status(s, a, 1).protocol, STP_VERSION_STP);
    ASSERT_TRUE(converged(s));
    ASSERT_TRUE(sim_consistent(s));
    sim_free(s);
}

static bool tca_seen;
static int tca_bridge;

static void watch_tca(struct sim *s, int b, unsigned p, const uint8_t *frame, size_t len)
{
    (void)s;
    (void)p;
    if (b == tca_bridge && len > 21 && frame[20] == STP_BPDU_CONFIG && (frame[21] & STP_FLAG_TC_ACK))
        tca_seen = true;
}

TEST(tcn_from_legacy_bridge_is_acked_and_propagated)
{
    struct sim *s = sim_new();
    int a = sim_bridge(s, "A", 4096, 1);
    int b = sim_bridge(s, "B", 32768, 2);
    int l = sim_legacy_bridge(s, "L", 32768, 3);
    sim_link(s, a, 1, l, 1);
    sim_link(s, a, 2, b, 1);
    sim_run(s, 40000);
    ASSERT_TRUE(converged(s));
    /* An STP topology change lasts MaxAge + FwdDelay (35 s) after the last
     * notification. */
    ASSERT_LT(sim_run_until(s, 90000, tc_quiet), 90000);
    sim_reset_counters(s);
    uint64_t b_tc = sim_bridge_status(s, b).topology_change_count;
    tca_bridge = a;
    tca_seen = false;
    s->tx_hook = watch_tca;

    /* A topology change behind the legacy bridge. */
    int c = sim_bridge(s, "C", 32768, 4);
    sim_link(s, l, 2, c, 1);
    sim_run(s, 40000);
    ASSERT_TRUE(converged(s));
    ASSERT_GE(sim_port_status(s, l, 1).counters.tx_tcn, 1);
    ASSERT_LE(sim_port_status(s, l, 1).counters.tx_tcn, 3); /* stops once acked */
    ASSERT_GE(sim_port_status(s, a, 1).counters.rx_tcn, 1);
    ASSERT_TRUE(tca_seen);
    ASSERT_GE(s->br[a].port[2].flushes, 1); /* propagated toward B */
    ASSERT_GT(sim_bridge_status(s, b).topology_change_count, b_tc);
    ASSERT_EQ(sim_port_status(s, l, 1).tc_while, 0);
    ASSERT_EQ(sim_port_status(s, c, 1).protocol, STP_VERSION_STP);
    ASSERT_TRUE(sim_consistent(s));
    s->tx_hook = NULL;
    sim_free(s);
}

/* ------------------------------------------------------------------------ */
/* Guards and filter                                                          */

TEST(bpdu_guard_shuts_and_reenable)
{
    struct sim *s = sim_new();
    struct stp_port_config g = guest();
    int a = sim_bridge(s, "A", 32768, 1);
    sim_port(s, a, 5, &g);
    int vif = sim_lan(s, true);
    sim_attach(s, vif, a, 5);
    ASSERT_STATE(s, a, 5, STP_STATE_FORWARDING);

    /* Garbage to the STP address does not trip the guard (it is counted). */
    uint8_t junk[20] = {0x01, 0x80, 0xc2, 0, 0, 0, 2, 0, 0, 0, 0, 9, 0, 6, 0x42, 0x42, 3, 0, 0, 0};
    sim_inject(s, vif, junk, sizeof(junk));
    sim_run(s, 1);
    ASSERT_STATE(s, a, 5, STP_STATE_FORWARDING);
    ASSERT_EQ(sim_port_status(s, a, 5).counters.rx_drop[STP_RX_BAD_LENGTH] +
                  sim_port_status(s, a, 5).counters.rx_drop[STP_RX_TRUNCATED],
              1);

    uint8_t f[STP_BPDU_FRAME_LEN];
    size_t n = make_bpdu(f, STP_BPDU_CONFIG, 0, ID(0, 9), 0, ID(0, 9), 0x8001);
    sim_inject(s, vif, f, n);
    sim_run(s, 1);
    ASSERT_STATE(s, a, 5, STP_STATE_DISABLED);
    struct stp_port_status ps = sim_port_status(s, a, 5);
    ASSERT_TRUE(ps.shut_by_guard);
    ASSERT_FALSE(ps.enabled);
    ASSERT_EQ(ps.role, STP_ROLE_DISABLED);
    ASSERT_EQ(ps.counters.bpdu_guard_trips, 1);
    ASSERT_EQ(s->br[a].port[5].shuts, 1);
    ASSERT_TRUE(strstr(s->br[a].port[5].shut_why, "0000.020000000009") != NULL);
    /* The superior root it announced was never believed. */
    ASSERT_TRUE(sim_bridge_status(s, a).is_root);

    /* While shut: more BPDUs are ignored, nothing is sent. */
    s->br[a].port[5].tx_frames = 0;
    sim_inject(s, vif, f, n);
    sim_run(s, 5000);
    ASSERT_EQ(sim_port_status(s, a, 5).counters.bpdu_guard_trips, 1);
    ASSERT_GE(sim_port_status(s, a, 5).counters.rx_ignored, 1);
    ASSERT_EQ(s->br[a].port[5].tx_frames, 0);

    ASSERT_EQ(stp_port_reenable(s->br[a].stp, 5), 0);
    ASSERT_STATE(s, a, 5, STP_STATE_FORWARDING);
    ASSERT_FALSE(sim_port_status(s, a, 5).shut_by_guard);
    ASSERT_EQ(stp_port_reenable(s->br[a].stp, 5), -EALREADY);
    ASSERT_EQ(stp_port_reenable(s->br[a].stp, 6), -ENODEV);
    ASSERT_TRUE(sim_consistent(s));
    sim_free(s);
}

TEST(root_guard_keeps_the_root)
{
    struct sim *s = sim_new();
    char err[128];
    int a = sim_bridge(s, "A", 8192, 1);  /* the legitimate root */
    int b = sim_bridge(s, "B", 32768, 2); /* ours: port 2 faces a customer */
    int c = sim_bridge(s, "C", 0, 3);     /* the customer claims the root */
    sim_link(s, a, 1, b, 1);
    sim_port(s, b, 2, NULL);
    ASSERT_EQ(stp_port_set_param(s->br[b].stp, 2, "root-guard", "yes", err, sizeof(err)), 0);
    sim_run(s, 3000);
    sim_link(s, b, 2, c, 1);
    run_loop_checked(s, 5000);
    struct stp_bridge_status bs = sim_bridge_status(s, b);
    ASSERT_EQ(bs.root_id, ID(8192, 1));
    ASSERT_EQ(bs.root_port, 1);
    ASSERT_ROLE(s, b, 2, STP_ROLE_ALTERNATE);
    ASSERT_STATE(s, b, 2, STP_STATE_DISCARDING);
    ASSERT_TRUE(sim_port_status(s, b, 2).root_guard_blocking);
    ASSERT_EQ(sim_port_status(s, b, 2).counters.root_guard_trips, 1);
    ASSERT_EQ(sim_bridge_status(s, a).root_id, ID(8192, 1));

    /* The customer stops claiming: the port comes back as designated. */
    ASSERT_EQ(stp_set_param(s->br[c].stp, "priority", "61440", err, sizeof(err)), 0);
    run_loop_checked(s, 5000);
    ASSERT_ROLE(s, b, 2, STP_ROLE_DESIGNATED);
    ASSERT_STATE(s, b, 2, STP_STATE_FORWARDING);
    ASSERT_FALSE(sim_port_status(s, b, 2).root_guard_blocking);
    ASSERT_TRUE(converged(s));

    /* Without the guard the customer would have taken the root. */
    ASSERT_EQ(stp_set_param(s->br[c].stp, "priority", "0", err, sizeof(err)), 0);
    ASSERT_EQ(stp_port_set_param(s->br[b].stp, 2, "root-guard", "no", err, sizeof(err)), 0);
    sim_run(s, 3000);
    ASSERT_EQ(sim_bridge_status(s, b).root_id, ID(0, 3));
    ASSERT_TRUE(converged(s));
    sim_free(s);
}

TEST(bpdu_filter_neither_sends_nor_listens)
{
    struct sim *s = sim_new();
    struct stp_port_config fc = uplink();
    fc.bpdu_filter = true;
    int a = sim_bridge(s, "A", 32768, 1);
    int b = sim_bridge(s, "B", 4096, 2);
    sim_port(s, a, 1, &fc);
    sim_link(s, a, 1, b, 1);
    sim_run(s, 10000);
    ASSERT_EQ(s->br[a].port[1].tx_frames, 0);
    ASSERT_EQ(sim_port_status(s, a, 1).counters.tx_rst, 0);
    ASSERT_GT(sim_port_status(s, a, 1).counters.rx_filtered, 0);
    ASSERT_EQ(sim_port_status(s, a, 1).counters.rx_rst, 0);
    /* A never heard B: it believes itself root, and the port ends up
     * forwarding (as an edge, after the edge delay). */
    ASSERT_TRUE(sim_bridge_status(s, a).is_root);
    ASSERT_STATE(s, a, 1, STP_STATE_FORWARDING);
    ASSERT_TRUE(sim_port_status(s, a, 1).oper_edge);
    sim_free(s);
}

/* ------------------------------------------------------------------------ */
/* Rings, failover, reconvergence                                            */

TEST(ring_blocks_exactly_one_port_and_reconverges)
{
    enum { N = 6 };
    struct sim *s = sim_new();
    int br[N], lan[N];
    for (int i = 0; i < N; i++) {
        char name[3] = {'R', (char)('0' + i), 0};
        br[i] = sim_bridge(s, name, 32768, (uint8_t)(0x10 + i));
    }
    for (int i = 0; i < N; i++)
        lan[i] = sim_link(s, br[i], 2, br[(i + 1) % N], 1);
    run_loop_checked(s, 3000);
    ASSERT_TRUE(converged(s));
    ASSERT_TRUE(sim_consistent(s));
    ASSERT_EQ(sim_count_state(s, STP_STATE_DISCARDING), 1);
    ASSERT_EQ(sim_count_state(s, STP_STATE_FORWARDING), 2 * N - 1);
    ASSERT_EQ(count_role(s, STP_ROLE_ALTERNATE), 1);
    ASSERT_EQ(count_role(s, STP_ROLE_ROOT), N - 1);
    ASSERT_TRUE(sim_bridge_status(s, br[0]).is_root);

    /* Cut the root's link to R1: R1 loses its root port and has no
     * alternate; the ring's blocked port must open. */
    sim_lan_cut(s, lan[0]);
    unsigned took = sim_run_until(s, 30000, converged);
    fprintf(stderr, "  ring: reconverged %u ms after the cut\n", took);
    ASSERT_LT(took, 1000);
    run_loop_checked(s, 3000);
    ASSERT_TRUE(converged(s));
    ASSERT_EQ(sim_count_state(s, STP_STATE_DISCARDING), 0);
    ASSERT_EQ(sim_count_state(s, STP_STATE_FORWARDING), 2 * (N - 1));
    ASSERT_TRUE(sim_consistent(s));

    /* Cut another link: the network splits in two trees, each loop-free. */
    sim_lan_cut(s, lan[3]);
    run_loop_checked(s, 5000);
    ASSERT_EQ(sim_count_state(s, STP_STATE_DISCARDING), 0);
    sim_free(s);
}

TEST(ring_survives_root_failure)
{
    enum { N = 5 };
    struct sim *s = sim_new();
    int br[N];
    for (int i = 0; i < N; i++) {
        char name[3] = {'R', (char)('0' + i), 0};
        br[i] = sim_bridge(s, name, 32768, (uint8_t)(0x10 + i));
    }
    int lans[N];
    for (int i = 0; i < N; i++)
        lans[i] = sim_link(s, br[i], 2, br[(i + 1) % N], 1);
    sim_run(s, 3000);
    ASSERT_TRUE(converged(s));
    /* The root dies: both its links go down. The old root's information can
     * circulate (RSTP's count to infinity) but Max Age ends it. */
    sim_lan_cut(s, lans[0]);
    sim_lan_cut(s, lans[N - 1]);
    s->br[br[0]].port[1].lan = -1; /* R0 is gone from the picture */
    unsigned took = sim_run_until(s, 60000, converged);
    fprintf(stderr, "  ring: new root after %u ms\n", took);
    ASSERT_LT(took, 60000);
    for (int i = 1; i < N; i++)
        ASSERT_EQ(sim_bridge_status(s, br[i]).root_id, ID(32768, 0x11));
    sim_run(s, 5000);
    ASSERT_TRUE(converged(s));
    sim_free(s);
}

TEST(alternate_takes_over_in_milliseconds)
{
    struct sim *s = sim_new();
    int a = sim_bridge(s, "A", 4096, 1);
    int b = sim_bridge(s, "B", 32768, 2);
    int c = sim_bridge(s, "C", 32768, 3);
    int ab = sim_link(s, a, 1, b, 1);
    sim_link(s, a, 2, c, 1);
    sim_link(s, b, 2, c, 2);
    sim_run(s, 3000);
    ASSERT_TRUE(converged(s));
    ASSERT_ROLE(s, c, 2, STP_ROLE_ALTERNATE);
    /* B's root port link dies (C's alternate is no help to B; B reroutes
     * through C, whose designated port to B must go forwarding). */
    uint64_t t0 = s->now;
    sim_lan_cut(s, ab);
    unsigned took = sim_run_until(s, 10000, converged);
    fprintf(stderr, "  triangle: failover in %u ms\n", took);
    ASSERT_LT(took, 50);
    ASSERT_ROLE(s, b, 2, STP_ROLE_ROOT);
    ASSERT_ROLE(s, c, 2, STP_ROLE_DESIGNATED);
    ASSERT_LT(s->br[b].port[2].fwd_at_ms - t0, 50);
    ASSERT_TRUE(sim_consistent(s));

    /* Removing the root port through the API does the same on C. */
    stp_port_del(s->br[c].stp, 1);
    s->br[c].port[1].exists = false;
    s->br[c].port[1].lan = -1;
    sim_detach(s, a, 2);
    /* C's news may wait for txCount (TxHoldCount per second, 17.26). */
    sim_run(s, 1100);
    ASSERT_TRUE(converged(s));
    ASSERT_ROLE(s, b, 2, STP_ROLE_DESIGNATED);
    ASSERT_ROLE(s, c, 2, STP_ROLE_ROOT); /* B (lower MAC) is the root now */
    ASSERT_TRUE(sim_bridge_status(s, b).is_root);
    sim_free(s);
}

static int uni_from;
static bool drop_from_a(struct sim *s, int b, unsigned p, const uint8_t *frame, size_t len)
{
    (void)s;
    (void)p;
    (void)frame;
    (void)len;
    return b != uni_from; /* A's frames are lost on the way to B */
}

/* A unidirectional link: B stops hearing A. B's information ages out
 * (3 x Hello), B's port turns designated and keeps forwarding; A hears an
 * inferior designated port that is learning/forwarding — a dispute — and
 * blocks its side, so no loop forms. */
TEST(dispute_blocks_unidirectional_link)
{
    struct sim *s = sim_new();
    int a = sim_bridge(s, "A", 4096, 1);
    int b = sim_bridge(s, "B", 32768, 2);
    sim_link(s, a, 1, b, 1);
    sim_run(s, 3000);
    ASSERT_TRUE(converged(s));
    sim_reset_counters(s);
    uni_from = b; /* frames delivered to B are dropped */
    s->rx_filter = drop_from_a;
    /* rcvdInfoWhile = 3 x Hello from the last BPDU heard (0..2 s ago) */
    sim_run(s, 3500);
    ASSERT_ROLE(s, b, 1, STP_ROLE_ROOT); /* not aged yet */
    sim_run(s, 3500);
    ASSERT_ROLE(s, b, 1, STP_ROLE_DESIGNATED);
    ASSERT_TRUE(sim_bridge_status(s, b).is_root);
    ASSERT_GE(s->br[a].port[1].discards, 1);
    s->rx_filter = NULL;
    sim_run(s, 5000);
    ASSERT_TRUE(converged(s));
    ASSERT_ROLE(s, b, 1, STP_ROLE_ROOT);
    sim_free(s);
}

TEST(own_bpdu_echo_is_dropped)
{
    struct sim *s = sim_new();
    int a = sim_bridge(s, "A", 32768, 1);
    sim_port(s, a, 1, NULL);
    int lan = sim_lan(s, true);
    sim_attach(s, lan, a, 1);
    sim_run(s, 100);
    ASSERT_GT(s->br[a].port[1].last_tx_len, 0);
    /* A reflector sends the port's own BPDU back to it. */
    for (int i = 0; i < 3; i++) {
        sim_inject(s, lan, s->br[a].port[1].last_tx, s->br[a].port[1].last_tx_len);
        sim_run(s, 1000);
    }
    ASSERT_EQ(sim_port_status(s, a, 1).counters.rx_drop[STP_RX_OWN_BPDU], 3);
    ASSERT_EQ(sim_port_status(s, a, 1).counters.rx_rst, 0);
    ASSERT_ROLE(s, a, 1, STP_ROLE_DESIGNATED);
    sim_free(s);
}

/* ------------------------------------------------------------------------ */
/* Engine controls                                                            */

TEST(disabled_engine_forwards_everything_silently)
{
    struct sim *s = sim_new();
    struct stp_port_config g = guest();
    int a = sim_bridge(s, "A", 32768, 1);
    int b = sim_bridge(s, "B", 4096, 2);
    sim_link(s, a, 1, b, 1);
    sim_link(s, a, 2, b, 2);
    sim_port(s, a, 3, &g);
    sim_attach(s, sim_lan(s, true), a, 3);
    sim_run(s, 3000);
    ASSERT_STATE(s, a, 2, STP_STATE_DISCARDING);

    stp_set_enabled(s->br[a].stp, false);
    ASSERT_STATE(s, a, 1, STP_STATE_FORWARDING);
    ASSERT_STATE(s, a, 2, STP_STATE_FORWARDING);
    ASSERT_STATE(s, a, 3, STP_STATE_FORWARDING);
    sim_reset_counters(s);
    uint8_t f[STP_BPDU_FRAME_LEN];
    size_t n = make_bpdu(f, STP_BPDU_RST, RST_DESIGNATED, ID(0, 9), 0, ID(0, 9), 0x8001);
    stp_rx_bpdu(s->br[a].stp, 3, f, n); /* a guest port: not the engine's business now */
    sim_run(s, 10000);
    for (unsigned p = 1; p <= 3; p++)
        ASSERT_EQ(s->br[a].port[p].tx_frames, 0);
    ASSERT_EQ(sim_port_status(s, a, 3).counters.bpdu_guard_trips, 0);
    ASSERT_FALSE(sim_bridge_status(s, a).enabled);
    ASSERT_EQ(sim_port_status(s, a, 1).role, STP_ROLE_DISABLED);
    sim_detach(s, a, 2);
    ASSERT_STATE(s, a, 2, STP_STATE_DISABLED);
    sim_attach(s, 1, a, 2);
    ASSERT_STATE(s, a, 2, STP_STATE_FORWARDING);

    /* Enabled again: BEGIN; everything discards until RSTP says so, and
     * what was learned while forwarding blindly goes, in one flush. */
    char err[64];
    ASSERT_EQ(stp_set_param(s->br[a].stp, "enabled", "yes", err, sizeof(err)), 0);
    ASSERT_EQ(s->br[a].flush_all, 1);
    ASSERT_EQ(s->br[a].port[1].flushes + s->br[a].port[2].flushes, 0);
    ASSERT_TRUE(sim_bridge_status(s, a).enabled);
    ASSERT_STATE(s, a, 3, STP_STATE_FORWARDING); /* edge */
    sim_run(s, 3000);
    ASSERT_TRUE(converged(s));
    ASSERT_STATE(s, a, 2, STP_STATE_DISCARDING);
    ASSERT_TRUE(sim_consistent(s));
    sim_free(s);
}

static unsigned held_tx;
static void count_tx(struct sim *s, int b, unsigned p, const uint8_t *frame, size_t len)
{
    (void)s;
    (void)b;
    (void)frame;
    (void)len;
    if (p == 1)
        held_tx++;
}

TEST(tx_hold_count_limits_bpdus)
{
    for (unsigned hold = 1; hold <= 6; hold += 5) {
        struct sim *s = sim_new();
        char v[8], err[128];
        int a = sim_bridge(s, "A", 4096, 1);
        snprintf(v, sizeof(v), "%u", hold);
        ASSERT_EQ(stp_set_param(s->br[a].stp, "tx-hold-count", v, err, sizeof(err)), 0);
        sim_port(s, a, 1, NULL);
        int lan = sim_lan(s, true);
        sim_attach(s, lan, a, 1);
        sim_run(s, 5000);
        held_tx = 0;
        s->tx_hook = count_tx;
        /* A neighbour shouting inferior designated information every 10 ms:
         * each one asks for an answer. */
        uint8_t f[STP_BPDU_FRAME_LEN];
        size_t n = make_bpdu(f, STP_BPDU_RST, RST_DESIGNATED, ID(61440, 9), 0, ID(61440, 9),
                             0x8001);
        for (int i = 0; i < 1000; i++) {
            sim_inject(s, lan, f, n);
            sim_run(s, 10);
        }
        fprintf(stderr, "  tx-hold-count %u: %u BPDUs in 10 s\n", hold, held_tx);
        /* A burst of `hold`, then one per second (txCount drops by one per
         * tick, 17.22): hold + 10, give or take the phase of the ticks. */
        ASSERT_LE(held_tx, hold + 11);
        ASSERT_GE(held_tx, hold + 9);
        ASSERT_GT(sim_port_status(s, a, 1).counters.tx_held, 0);
        s->tx_hook = NULL;
        sim_free(s);
    }
}

/* ------------------------------------------------------------------------ */
/* Parameters and status                                                      */

TEST(bridge_parameters_validated)
{
    struct sim *s = sim_new();
    int a = sim_bridge(s, "A", 32768, 1);
    struct stp *stp = s->br[a].stp;
    char err[160];

    ASSERT_EQ(stp_set_param(stp, "priority", "4097", err, sizeof(err)), -EINVAL);
    ASSERT_TRUE(strstr(err, "multiple of 4096") != NULL);
    ASSERT_EQ(stp_set_param(stp, "priority", "65536", err, sizeof(err)), -ERANGE);
    ASSERT_EQ(stp_set_param(stp, "priority", "-1", err, sizeof(err)), -EINVAL);
    ASSERT_EQ(stp_set_param(stp, "priority", "", err, sizeof(err)), -EINVAL);
    ASSERT_EQ(stp_set_param(stp, "priority", "99999999999999999999", err, sizeof(err)),
              -ERANGE);
    /* 2 * (15 - 1) = 28 < 40 */
    ASSERT_EQ(stp_set_param(stp, "max-age", "40", err, sizeof(err)), -EINVAL);
    ASSERT_TRUE(strstr(err, "forward-delay") != NULL);
    ASSERT_EQ(sim_bridge_status(s, a).bridge_max_age, 20); /* unchanged */
    ASSERT_EQ(stp_set_param(stp, "forward-delay", "30", err, sizeof(err)), 0);
    ASSERT_EQ(stp_set_param(stp, "max-age", "40", err, sizeof(err)), 0);
    /* 40 >= 2 * (10 + 1) holds; 2 * (6 + 1) = 14 > 12 does not */
    ASSERT_EQ(stp_set_param(stp, "hello-time", "10", err, sizeof(err)), 0);
    ASSERT_EQ(stp_set_param(stp, "max-age", "12", err, sizeof(err)), -EINVAL);
    ASSERT_TRUE(strstr(err, "hello-time") != NULL);
    ASSERT_EQ(stp_set_param(stp, "hello-time", "11", err, sizeof(err)), -ERANGE);
    ASSERT_EQ(stp_set_param(stp, "hello-time", "0", err, sizeof(err)), -ERANGE);
    ASSERT_EQ(stp_set_param(stp, "forward-delay", "3", err, sizeof(err)), -ERANGE);
    ASSERT_EQ(stp_set_param(stp, "tx-hold-count", "0", err, sizeof(err)), -ERANGE);
    ASSERT_EQ(stp_set_param(stp, "tx-hold-count", "10", err, sizeof(err)), 0);
    ASSERT_EQ(stp_set_param(stp, "force-version", "mstp", err, sizeof(err)), -EINVAL);
    ASSERT_EQ(stp_set_param(stp, "force-version", "stp", err, sizeof(err)), 0);
    ASSERT_EQ(stp_set_param(stp, "ageing-time", "5", err, sizeof(err)), -ERANGE);
    ASSERT_EQ(stp_set_param(stp, "ageing-time", "600", err, sizeof(err)), 0);
    ASSERT_EQ(stp_set_param(stp, "enabled", "maybe", err, sizeof(err)), -EINVAL);
    ASSERT_EQ(stp_set_param(stp, "colour", "blue", err, sizeof(err)), -ENOENT);
    ASSERT_TRUE(strstr(err, "colour") != NULL);
    ASSERT_EQ(stp_set_param(stp, "priority", NULL, err, sizeof(err)), -EINVAL);
    ASSERT_EQ(stp_set_param(stp, "priority", "8192", NULL, 0), 0);

    struct stp_bridge_status bs = sim_bridge_status(s, a);
    ASSERT_STREQ(bs.name, "A");
    ASSERT_EQ(bs.bridge_id, ID(8192, 1));
    ASSERT_EQ(bs.bridge_max_age, 40);
    ASSERT_EQ(bs.bridge_hello_time, 10);
    ASSERT_EQ(bs.bridge_forward_delay, 30);
    ASSERT_EQ(bs.max_age, 40); /* the root's times: ours */
    ASSERT_EQ(bs.tx_hold_count, 10);
    ASSERT_EQ(bs.ageing_time, 600);
    ASSERT_EQ(bs.force_version, STP_VERSION_STP);
    ASSERT_TRUE(bs.is_root);
    char id[STP_ID_STRLEN];
    ASSERT_STREQ(stp_id_format(bs.bridge_id, id), "2000.020000000001");
    sim_free(s);
}

TEST(port_parameters_validated)
{
    struct sim *s = sim_new();
    int a = sim_bridge(s, "A", 32768, 1);
    struct stp *stp = s->br[a].stp;
    char err[160];
    sim_port(s, a, 1, NULL);

    ASSERT_EQ(stp_port_set_param(stp, 1, "priority", "17", err, sizeof(err)), -EINVAL);
    ASSERT_TRUE(strstr(err, "multiple of 16") != NULL);
    ASSERT_EQ(stp_port_set_param(stp, 1, "priority", "256", err, sizeof(err)), -ERANGE);
    ASSERT_EQ(stp_port_set_param(stp, 1, "priority", "240", err, sizeof(err)), 0);
    ASSERT_EQ(sim_port_status(s, a, 1).port_id, 0xf001);
    ASSERT_EQ(stp_port_set_param(stp, 1, "path-cost", "200000001", err, sizeof(err)), -ERANGE);
    ASSERT_EQ(stp_port_set_param(stp, 1, "path-cost", "1", err, sizeof(err)), 0);
    ASSERT_EQ(sim_port_status(s, a, 1).path_cost, 1);
    ASSERT_EQ(stp_port_set_param(stp, 1, "path-cost", "auto", err, sizeof(err)), 0);
    ASSERT_TRUE(sim_port_status(s, a, 1).path_cost_auto);
    stp_port_set_link(stp, 1, true, 10000, true);
    ASSERT_EQ(sim_port_status(s, a, 1).path_cost, 2000);
    stp_port_set_link(stp, 1, true, 100, false);
    ASSERT_EQ(sim_port_status(s, a, 1).path_cost, 200000);
    ASSERT_FALSE(sim_port_status(s, a, 1).oper_p2p); /* auto: half duplex */
    ASSERT_EQ(stp_port_set_param(stp, 1, "point-to-point", "yes", err, sizeof(err)), 0);
    ASSERT_TRUE(sim_port_status(s, a, 1).oper_p2p);
    ASSERT_EQ(sim_port_status(s, a, 1).admin_p2p, STP_P2P_YES);
    ASSERT_EQ(stp_port_set_param(stp, 1, "point-to-point", "maybe", err, sizeof(err)), -EINVAL);
    ASSERT_EQ(stp_port_set_param(stp, 1, "p2p", "auto", err, sizeof(err)), 0);
    ASSERT_FALSE(sim_port_status(s, a, 1).oper_p2p);
    ASSERT_EQ(stp_port_set_param(stp, 1, "bpdu-guard", "on", err, sizeof(err)), 0);
    ASSERT_TRUE(sim_port_status(s, a, 1).bpdu_guard);
    ASSERT_EQ(stp_port_set_param(stp, 1, "bpdu-filter", "true", err, sizeof(err)), 0);
    ASSERT_TRUE(sim_port_status(s, a, 1).bpdu_filter);
    ASSERT_EQ(stp_port_set_param(stp, 1, "root-guard", "1", err, sizeof(err)), 0);
    ASSERT_TRUE(sim_port_status(s, a, 1).root_guard);
    ASSERT_EQ(stp_port_set_param(stp, 1, "admin-edge", "x", err, sizeof(err)), -EINVAL);
    ASSERT_EQ(stp_port_set_param(stp, 1, "mcheck", "no", err, sizeof(err)), -EINVAL);
    ASSERT_EQ(stp_port_set_param(stp, 1, "speed", "10", err, sizeof(err)), -ENOENT);
    ASSERT_EQ(stp_port_set_param(stp, 2, "priority", "16", err, sizeof(err)), -ENODEV);
    struct stp_port_status ps;
    ASSERT_EQ(stp_get_port_status(stp, 2, &ps), -ENODEV);

    ASSERT_STREQ(stp_state_name(STP_STATE_DISCARDING), "discarding");
    ASSERT_STREQ(stp_state_name(STP_STATE_LEARNING), "learning");
    ASSERT_STREQ(stp_state_name(STP_STATE_FORWARDING), "forwarding");
    ASSERT_STREQ(stp_state_name(STP_STATE_DISABLED), "disabled");
    ASSERT_STREQ(stp_role_name(STP_ROLE_ROOT), "root");
    ASSERT_STREQ(stp_role_name(STP_ROLE_DESIGNATED), "designated");
    ASSERT_STREQ(stp_role_name(STP_ROLE_ALTERNATE), "alternate");
    ASSERT_STREQ(stp_role_name(STP_ROLE_BACKUP), "backup");
    ASSERT_STREQ(stp_role_name(STP_ROLE_DISABLED), "disabled");
    ASSERT_STREQ(stp_version_name(STP_VERSION_STP), "stp");
    ASSERT_STREQ(stp_version_name(STP_VERSION_RSTP), "rstp");
    ASSERT_STREQ(stp_p2p_name(STP_P2P_AUTO), "auto");
    ASSERT_STREQ(stp_rx_result_name(STP_RX_OWN_BPDU), "own-bpdu");
    ASSERT_STREQ(stp_rx_result_name(STP_RX_BAD_MSG_AGE), "msg-age");
    sim_free(s);
}

TEST(create_rejects_bad_arguments)
{
    struct stp_callbacks none = {0};
    uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
    ASSERT_TRUE(stp_create("x", mac, &none, NULL) == NULL);
    ASSERT_TRUE(stp_create(NULL, mac, &none, NULL) == NULL);
    stp_destroy(NULL);
    /* NULL engines are tolerated everywhere. */
    stp_tick(NULL, 10);
    stp_rx_bpdu(NULL, 1, mac, 6);
    stp_port_del(NULL, 1);
    stp_port_set_link(NULL, 1, true, 0, true);
    ASSERT_EQ(stp_port_reenable(NULL, 1), -ENODEV);
}

/* ------------------------------------------------------------------------ */
/* The codec and hostile input                                                */

TEST(bpdu_codec_round_trip_and_rejects)
{
    uint8_t f[STP_BPDU_FRAME_LEN];
    struct stp_bpdu in = {
        .type = STP_BPDU_RST, .version = 2, .flags = 0x7f, .root_id = 0x1234020000000001ull,
        .root_path_cost = 0xdeadbeef, .bridge_id = 0x8000020000000002ull, .port_id = 0x8003,
        .message_age = 256, .max_age = 5120, .hello_time = 512, .forward_delay = 3840,
    };
    uint8_t src[6] = {2, 1, 2, 3, 4, 5};
    struct stp_bpdu out;
    ASSERT_EQ(stp_bpdu_encode(&in, src, f, sizeof(f) - 1), 0);
    ASSERT_EQ(stp_bpdu_encode(&in, src, f, sizeof(f)), 60);
    ASSERT_EQ(f[12], 0);
    ASSERT_EQ(f[13], 39); /* LLC 3 + RST 36 */
    ASSERT_EQ(stp_bpdu_decode(f, 60, &out), STP_RX_OK);
    ASSERT_EQ(out.type, in.type);
    ASSERT_EQ(out.flags, in.flags);
    ASSERT_EQ(out.root_id, in.root_id);
    ASSERT_EQ(out.root_path_cost, in.root_path_cost);
    ASSERT_EQ(out.bridge_id, in.bridge_id);
    ASSERT_EQ(out.port_id, in.port_id);
    ASSERT_EQ(out.message_age, in.message_age);
    ASSERT_EQ(out.max_age, in.max_age);
    ASSERT_EQ(out.hello_time, in.hello_time);
    ASSERT_EQ(out.forward_delay, in.forward_delay);
    ASSERT_EQ(stp_bpdu_decode(f, 14 + 39, &out), STP_RX_OK); /* unpadded */
    ASSERT_EQ(stp_bpdu_decode(f, 14 + 38, &out), STP_RX_TRUNCATED);

    in.type = STP_BPDU_CONFIG;
    in.version = 0;
    ASSERT_EQ(stp_bpdu_encode(&in, src, f, sizeof(f)), 60);
    ASSERT_EQ(f[13], 38);
    ASSERT_EQ(stp_bpdu_decode(f, 60, &out), STP_RX_OK);
    ASSERT_EQ(out.type, STP_BPDU_CONFIG);
    f[13] = 37; /* Config BPDU of 34 octets */
    ASSERT_EQ(stp_bpdu_decode(f, 60, &out), STP_RX_TRUNCATED);

    in.type = STP_BPDU_TCN;
    ASSERT_EQ(stp_bpdu_encode(&in, src, f, sizeof(f)), 60);
    ASSERT_EQ(f[13], 7);
    ASSERT_EQ(stp_bpdu_decode(f, 21, &out), STP_RX_OK);
    ASSERT_EQ(out.type, STP_BPDU_TCN);
    ASSERT_EQ(stp_bpdu_decode(f, 20, &out), STP_RX_TRUNCATED);
    in.type = (enum stp_bpdu_type)0x55;
    ASSERT_EQ(stp_bpdu_encode(&in, src, f, sizeof(f)), 0);

    /* One malformation at a time, from a valid RST frame. */
    in.type = STP_BPDU_RST;
    in.version = 2;
    uint8_t good[STP_BPDU_FRAME_LEN];
    stp_bpdu_encode(&in, src, good, sizeof(good));
    struct {
        size_t off;
        uint8_t val;
        enum stp_rx_result want;
    } cases[] = {
        {0, 0x00, STP_RX_BAD_DST},      {5, 0x01, STP_RX_BAD_DST},
        {6, 0x03, STP_RX_BAD_SRC},      {12, 0x81, STP_RX_BAD_LENGTH}, /* 0x8127 */
        {12, 0x06, STP_RX_BAD_LENGTH},  {14, 0xaa, STP_RX_BAD_LLC},
        {15, 0x43, STP_RX_BAD_LLC},     {16, 0x13, STP_RX_BAD_LLC},
        {17, 0x01, STP_RX_BAD_PROTOCOL}, {18, 0x01, STP_RX_BAD_PROTOCOL},
        {19, 0x01, STP_RX_BAD_VERSION}, {20, 0x03, STP_RX_BAD_TYPE},
        {20, 0x81, STP_RX_BAD_TYPE},    {44, 0x14, STP_RX_BAD_MSG_AGE}, /* age 20 s */
        {46, 0x00, STP_RX_BAD_MSG_AGE}, /* max age < 1 s */
        {19, 0x03, STP_RX_OK},          /* an MSTP BPDU's CIST part */
        {52, 0x55, STP_RX_OK},          /* Version 1 Length is not checked */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(f, good, sizeof(f));
        f[cases[i].off] = cases[i].val;
        enum stp_rx_result r = stp_bpdu_decode(f, sizeof(f), &out);
        if (r != cases[i].want)
            fprintf(stderr, "  case %zu: got %s\n", i, stp_rx_result_name(r));
        ASSERT_EQ(r, cases[i].want);
    }
    /* Length field: 2 (no room for LLC) and larger than the frame. */
    memcpy(f, good, sizeof(f));
    f[12] = 0;
    f[13] = 2;
    ASSERT_EQ(stp_bpdu_decode(f, sizeof(f), &out), STP_RX_BAD_LENGTH);
    f[13] = 200;
    ASSERT_EQ(stp_bpdu_decode(f, sizeof(f), &out), STP_RX_TRUNCATED);
    f[13] = 6; /* LLC + 3 octets of BPDU */
    ASSERT_EQ(stp_bpdu_decode(f, sizeof(f), &out), STP_RX_TRUNCATED);
    for (size_t len = 0; len < 14 + 39; len++)
        ASSERT_NE(stp_bpdu_decode(good, len, &out), STP_RX_OK);
    ASSERT_EQ(stp_bpdu_decode(NULL, 60, &out), STP_RX_TRUNCATED);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Thousands of random, truncated and mutated frames at a live bridge: no
 * crash, no out-of-bounds read (the ASan build), the drop counters move, and
 * once the noise stops the real topology comes back. */
TEST(fuzz_hostile_bpdus)
{
    struct sim *s = sim_new();
    int a = sim_bridge(s, "A", 4096, 1);
    int b = sim_bridge(s, "B", 32768, 2);
    sim_link(s, a, 1, b, 1);
    sim_link(s, a, 2, b, 2);
    sim_run(s, 3000);
    ASSERT_TRUE(converged(s));
    uint8_t good[STP_BPDU_FRAME_LEN], f[128];
    size_t good_len = s->br[a].port[1].last_tx_len;
    memcpy(good, s->br[a].port[1].last_tx, good_len);

    for (int i = 0; i < 100000; i++) {
        size_t len;
        uint64_t r = rng();
        switch (r % 6) {
        case 0: /* random bytes, random length */
            len = (size_t)(rng() % sizeof(f));
            for (size_t k = 0; k < len; k++)
                f[k] = (uint8_t)rng();
            if (rng() & 1)
                memcpy(f, good, len < 17 ? len : 17); /* plausible headers */
            break;
        case 1: /* truncated */
            len = (size_t)(rng() % good_len);
            memcpy(f, good, len);
            break;
        case 2: /* a few flipped bytes */
            len = good_len;
            memcpy(f, good, len);
            for (int k = 0; k < 1 + (int)(rng() % 4); k++)
                f[rng() % len] ^= (uint8_t)(1u << (rng() % 8));
            break;
        case 3: /* header fields with random values */
            len = good_len;
            memcpy(f, good, len);
            f[12 + rng() % 9] = (uint8_t)rng();
            break;
        case 4: { /* a well-formed BPDU carrying nonsense */
            struct stp_bpdu x = {
                .type = (rng() & 1) ? STP_BPDU_RST : STP_BPDU_CONFIG, .version = 2,
                .flags = (uint8_t)rng(), .root_id = rng(), .root_path_cost = (uint32_t)rng(),
                .bridge_id = rng(), .port_id = (uint16_t)rng(), .message_age = (uint16_t)rng(),
                .max_age = (uint16_t)rng(), .hello_time = (uint16_t)rng(),
                .forward_delay = (uint16_t)rng(),
            };
            len = stp_bpdu_encode(&x, good + 6, f, sizeof(f));
            break;
        }
        default: /* a TCN, or a frame longer than any BPDU */
            len = (rng() & 1) ? 21 : sizeof(f);
            memcpy(f, good, good_len);
            if (len == 21) {
                f[13] = 7;
                f[20] = STP_BPDU_TCN;
            } else {
                memset(f + good_len, 0xff, sizeof(f) - good_len);
            }
            break;
        }
        unsigned port = 1 + (unsigned)(rng() % 2);
        stp_rx_bpdu(s->br[b].stp, port, f, len);
        if ((i & 31) == 0)
            sim_run(s, 1);
        struct stp_port_status ps = sim_port_status(s, b, port);
        ASSERT_LE(ps.role, STP_ROLE_BACKUP);
        ASSERT_LE(ps.state, STP_STATE_FORWARDING);
    }
    struct stp_port_counters c1 = sim_port_status(s, b, 1).counters;
    struct stp_port_counters c2 = sim_port_status(s, b, 2).counters;
    for (int r = STP_RX_TRUNCATED; r <= STP_RX_BAD_MSG_AGE; r++) {
        if (c1.rx_drop[r] + c2.rx_drop[r] == 0)
            fprintf(stderr, "  no drop counted as %s\n", stp_rx_result_name((enum stp_rx_result)r));
        ASSERT_GT(c1.rx_drop[r] + c2.rx_drop[r], 0);
    }
    ASSERT_GT(c1.timers_clamped + c2.timers_clamped, 0);
    ASSERT_GT(c1.rx_tcn + c2.rx_tcn, 0);

    /* Quiet again: nonsense ages out and the real tree returns. */
    sim_run(s, 60000);
    ASSERT_TRUE(converged(s));
    ASSERT_TRUE(sim_bridge_status(s, a).is_root);
    ASSERT_EQ(sim_bridge_status(s, b).root_id, ID(4096, 1));
    ASSERT_TRUE(sim_consistent(s));
    sim_free(s);
}

/* Random management and link events interleaved with traffic: the engine
 * must never crash, loop on itself, or leave the datapath out of step. */
TEST(chaos_api_sequence)
{
    static const char *const bkeys[] = {"priority", "hello-time", "max-age", "forward-delay",
                                        "force-version", "tx-hold-count", "enabled", "bogus"};
    static const char *const pkeys[] = {"priority",   "path-cost",  "admin-edge",
                                        "auto-edge",  "point-to-point", "bpdu-guard",
                                        "root-guard", "bpdu-filter", "mcheck"};
    static const char *const vals[] = {"0",   "1",  "2",   "4",     "16",  "20",  "30",   "4096",
                                       "yes", "no", "auto", "stp",  "rstp", "",   "-1", "99999999999"};
    struct sim *s = sim_new();
    int br[3];
    for (int i = 0; i < 3; i++) {
        char name[2] = {(char)('A' + i), 0};
        br[i] = sim_bridge(s, name, 32768, (uint8_t)(i + 1));
    }
    int lans[4];
    lans[0] = sim_link(s, br[0], 1, br[1], 1);
    lans[1] = sim_link(s, br[1], 2, br[2], 1);
    lans[2] = sim_link(s, br[2], 2, br[0], 2);
    lans[3] = sim_lan(s, false);
    char err[128];
    for (int i = 0; i < 3000; i++) {
        int b = br[rng() % 3];
        struct stp *stp = s->br[b].stp;
        unsigned p = 1 + (unsigned)(rng() % 3);
        switch (rng() % 6) {
        case 0:
            stp_set_param(stp, bkeys[rng() % 8], vals[rng() % 16], err, sizeof(err));
            break;
        case 1:
            stp_port_set_param(stp, p, pkeys[rng() % 9], vals[rng() % 16], err, sizeof(err));
            break;
        case 2:
            if (s->br[b].port[p].exists && s->br[b].port[p].lan < 0 && (rng() & 1))
                sim_attach(s, lans[3], b, p);
            else if (s->br[b].port[p].exists && s->br[b].port[p].lan == lans[3])
                sim_detach(s, b, p);
            break;
        case 3:
            stp_port_reenable(stp, p);
            break;
        case 4:
            stp_tick(stp, (uint32_t)(rng() % 5000));
            break;
        default:
            sim_run(s, (unsigned)(rng() % 50));
            break;
        }
    }
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(sim_bridge_status(s, br[i]).sm_bound_hits, 0);
    for (int b = 0; b < 3; b++) {
        for (unsigned p = 1; p <= 3; p++) {
            struct sim_port *sp = &s->br[br[b]].port[p];
            if (!sp->exists)
                continue;
            ASSERT_TRUE(sp->have_state);
            ASSERT_EQ(sim_port_status(s, br[b], p).state, sp->state);
        }
    }

    /* Back to a sane configuration (the chaos may have left a BPDU filter,
     * which legitimately allows loops): the network must converge. */
    static const char *const bridge_reset[][2] = {
        {"enabled", "yes"},  {"force-version", "rstp"}, {"forward-delay", "30"},
        {"max-age", "40"},   {"hello-time", "2"},       {"max-age", "20"},
        {"forward-delay", "15"}, {"priority", "32768"}, {"tx-hold-count", "6"},
    };
    static const char *const port_reset[][2] = {
        {"bpdu-filter", "no"}, {"bpdu-guard", "no"}, {"root-guard", "no"},
        {"admin-edge", "no"},  {"auto-edge", "yes"}, {"point-to-point", "auto"},
        {"path-cost", "auto"}, {"priority", "128"},
    };
    for (int b = 0; b < 3; b++) {
        struct stp *stp = s->br[br[b]].stp;
        for (size_t k = 0; k < sizeof(bridge_reset) / sizeof(bridge_reset[0]); k++)
            ASSERT_EQ(stp_set_param(stp, bridge_reset[k][0], bridge_reset[k][1], err,
                                    sizeof(err)),
                      0);
        for (unsigned p = 1; p <= 2; p++) {
            for (size_t k = 0; k < sizeof(port_reset) / sizeof(port_reset[0]); k++)
                ASSERT_EQ(stp_port_set_param(stp, p, port_reset[k][0], port_reset[k][1], err,
                                             sizeof(err)),
                          0);
            stp_port_reenable(stp, p);
        }
        if (s->br[br[b]].port[3].exists && s->br[br[b]].port[3].lan >= 0)
            sim_detach(s, br[b], 3);
    }
    sim_run(s, 60000);
    ASSERT_TRUE(converged(s));
    ASSERT_TRUE(sim_consistent(s));
    ASSERT_EQ(sim_count_state(s, STP_STATE_DISCARDING), 1);
    sim_free(s);
}

TEST(tick_handles_huge_jumps)
{
    struct sim *s = sim_new();
    int a = sim_bridge(s, "A", 4096, 1);
    int b = sim_bridge(s, "B", 32768, 2);
    sim_link(s, a, 1, b, 1);
    sim_run(s, 3000);
    /* The host was suspended for days: one call, bounded work. */
    stp_tick(s->br[b].stp, 0xffffffffu);
    stp_tick(s->br[b].stp, 0xffffffffu);
    ASSERT_GE(sim_bridge_status(s, b).now_ms, 2 * 0xffffffffull);
    sim_run(s, 5000);
    ASSERT_TRUE(converged(s));
    sim_free(s);
}

TEST_MAIN()
