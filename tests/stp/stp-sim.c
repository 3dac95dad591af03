/* stp-sim.c — see stp-sim.h. */
#include "stp-sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void cb_send(void *aux, unsigned port_no, const void *frame, size_t len)
{
    struct sim_bridge *br = aux;
    struct sim *s = br->sim;

    if (port_no >= SIM_MAX_PORTS)
        abort();
    struct sim_port *sp = &br->port[port_no];
    sp->tx_frames++;
    sp->last_tx_len = len < sizeof(sp->last_tx) ? len : sizeof(sp->last_tx);
    memcpy(sp->last_tx, frame, sp->last_tx_len);
    if (s->tx_hook)
        s->tx_hook(s, br->idx, port_no, frame, len);
    if (sp->lan < 0 || !s->lan[sp->lan].up)
        return;
    if (s->qlen == SIM_MAX_QUEUE) {
        s->queue_overflows++;
        return;
    }
    struct sim_frame *f = &s->q[(s->qhead + s->qlen++) % SIM_MAX_QUEUE];
    f->due = s->now + s->latency_ms;
    f->lan = sp->lan;
    f->from_b = br->idx;
    f->from_p = port_no;
    f->len = len < sizeof(f->data) ? len : sizeof(f->data);
    memcpy(f->data, frame, f->len);
}

static void cb_state(void *aux, unsigned port_no, enum stp_port_state st)
{
    struct sim_bridge *br = aux;
    struct sim_port *sp = &br->port[port_no % SIM_MAX_PORTS];

    if (sp->have_state &&
        (sp->state == STP_STATE_FORWARDING || sp->state == STP_STATE_LEARNING) &&
        (st == STP_STATE_DISCARDING || st == STP_STATE_DISABLED))
        sp->discards++;
    if (st == STP_STATE_FORWARDING)
        sp->fwd_at_ms = br->sim->now;
    sp->have_state = true;
    sp->state = st;
}

static void cb_flush(void *aux, unsigned port_no)
{
    struct sim_bridge *br = aux;

    if (port_no == STP_ALL_PORTS)
        br->flush_all++;
    else
        br->port[port_no % SIM_MAX_PORTS].flushes++;
}

static void cb_shut(void *aux, unsigned port_no, const char *why)
{
    struct sim_bridge *br = aux;
    struct sim_port *sp = &br->port[port_no % SIM_MAX_PORTS];

    sp->shuts++;
    snprintf(sp->shut_why, sizeof(sp->shut_why), "%s", why);
}

static const struct stp_callbacks sim_callbacks = {
    .send_bpdu = cb_send,
    .set_port_state = cb_state,
    .flush_fdb = cb_flush,
    .port_shut = cb_shut,
};

struct sim *sim_new(void)
{
    struct sim *s = calloc(1, sizeof(*s));
    if (!s)
        abort();
    s->latency_ms = 1;
    return s;
}

void sim_free(struct sim *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nb; i++)
        stp_destroy(s->br[i].stp);
    free(s);
}

static int new_bridge(struct sim *s, const char *name, unsigned priority, uint8_t mac_last,
                      bool legacy)
{
    char v[16], err[128];

    if (s->nb == SIM_MAX_BRIDGES)
        abort();
    int b = s->nb++;
    struct sim_bridge *br = &s->br[b];
    memset(br, 0, sizeof(*br));
    br->sim = s;
    br->idx = b;
    br->legacy = legacy;
    snprintf(br->name, sizeof(br->name), "%s", name);
    uint8_t mac[6] = {0x02, 0, 0, 0, 0, mac_last};
    memcpy(br->mac, mac, 6);
    for (unsigned p = 0; p < SIM_MAX_PORTS; p++)
        br->port[p].lan = -1;
    br->stp = stp_create(name, mac, &sim_callbacks, br);
    if (!br->stp)
        abort();
    snprintf(v, sizeof(v), "%u", priority);
    if (stp_set_param(br->stp, "priority", v, err, sizeof(err)))
        abort();
    if (legacy && stp_set_param(br->stp, "force-version", "stp", err, sizeof(err)))
        abort();
    /* Phase: this engine's seconds start part-way through the sim's. */
    stp_tick(br->stp, (uint32_t)((b * 337u) % 1000u));
    return b;
}

int sim_bridge(struct sim *s, const char *name, unsigned priority, uint8_t mac_last)
{
    return new_bridge(s, name, priority, mac_last, false);
}

int sim_legacy_bridge(struct sim *s, const char *name, unsigned priority, uint8_t mac_last)
{
    return new_bridge(s, name, priority, mac_last, true);
}

void sim_port(struct sim *s, int b, unsigned p, const struct stp_port_config *cfg)
{
    struct sim_bridge *br = &s->br[b];

    if (p == 0 || p >= SIM_MAX_PORTS || br->port[p].exists)
        abort();
    uint8_t mac[6] = {0x02, 0x01, 0, 0, (uint8_t)b, (uint8_t)p};
    if (stp_port_add(br->stp, p, mac, cfg))
        abort();
    br->port[p].exists = true;
    stp_port_set_link(br->stp, p, false, 0, false);
}

int sim_lan(struct sim *s, bool full_duplex)
{
    if (s->nl == SIM_MAX_LANS)
        abort();
    int l = s->nl++;
    s->lan[l].used = true;
    s->lan[l].up = true;
    s->lan[l].full_duplex = full_duplex;
    s->lan[l].speed_mbps = 1000;
    return l;
}

void sim_attach(struct sim *s, int lan, int b, unsigned p)
{
    struct sim_port *sp = &s->br[b].port[p];

    if (!sp->exists || sp->lan >= 0)
        abort();
    sp->lan = lan;
    stp_port_set_link(s->br[b].stp, p, true, s->lan[lan].speed_mbps, s->lan[lan].full_duplex);
}

void sim_detach(struct sim *s, int b, unsigned p)
{
    struct sim_port *sp = &s->br[b].port[p];

    sp->lan = -1;
    stp_port_set_link(s->br[b].stp, p, false, 0, false);
}

int sim_link(struct sim *s, int b1, unsigned p1, int b2, unsigned p2)
{
    if (!s->br[b1].port[p1].exists)
        sim_port(s, b1, p1, NULL);
    if (!s->br[b2].port[p2].exists)
        sim_port(s, b2, p2, NULL);
    int l = sim_lan(s, true);
    sim_attach(s, l, b1, p1);
    sim_attach(s, l, b2, p2);
    return l;
}

void sim_lan_cut(struct sim *s, int lan)
{
    s->lan[lan].up = false;
    for (int b = 0; b < s->nb; b++) {
        for (unsigned p = 1; p < SIM_MAX_PORTS; p++) {
            if (s->br[b].port[p].lan == lan)
                sim_detach(s, b, p);
        }
    }
}

void sim_inject(struct sim *s, int lan, const void *frame, size_t len)
{
    if (s->qlen == SIM_MAX_QUEUE) {
        s->queue_overflows++;
        return;
    }
    struct sim_frame *f = &s->q[(s->qhead + s->qlen++) % SIM_MAX_QUEUE];
    f->due = s->now;
    f->lan = lan;
    f->from_b = -1;
    f->from_p = 0;
    f->len = len < sizeof(f->data) ? len : sizeof(f->data);
    memcpy(f->data, frame, f->len);
}

static bool is_rst(const uint8_t *frame, size_t len)
{
    return len > 20 && frame[20] == STP_BPDU_RST;
}

static void deliver(struct sim *s, const struct sim_frame *f)
{
    if (!s->lan[f->lan].up)
        return;
    for (int b = 0; b < s->nb; b++) {
        struct sim_bridge *br = &s->br[b];
        for (unsigned p = 1; p < SIM_MAX_PORTS; p++) {
            if (br->port[p].lan != f->lan || (b == f->from_b && p == f->from_p))
                continue;
            if (br->legacy && is_rst(f->data, f->len))
                continue; /* 802.1D-1998: unknown BPDU type, discarded */
            if (s->rx_filter && !s->rx_filter(s, b, p, f->data, f->len))
                continue;
            s->frames_delivered++;
            stp_rx_bpdu(br->stp, p, f->data, f->len);
        }
    }
}

static void deliver_due(struct sim *s)
{
    /* Frames sent while delivering are due later (latency >= 1), or now
     * with latency 0: the bound keeps a zero-latency storm finite. */
    for (unsigned n = 0; s->qlen && n < 100000; n++) {
        struct sim_frame *f = &s->q[s->qhead];
        if (f->due > s->now)
            break;
        struct sim_frame copy = *f;
        s->qhead = (s->qhead + 1) % SIM_MAX_QUEUE;
        s->qlen--;
        deliver(s, &copy);
    }
}

void sim_run(struct sim *s, unsigned ms)
{
    deliver_due(s);
    for (unsigned i = 0; i < ms; i++) {
        s->now++;
        for (int b = 0; b < s->nb; b++)
            stp_tick(s->br[b].stp, 1);
        deliver_due(s);
    }
}

unsigned sim_run_until(struct sim *s, unsigned max_ms, bool (*cond)(struct sim *s))
{
    deliver_due(s);
    for (unsigned t = 0; t <= max_ms; t++) {
        if (cond(s))
            return t;
        sim_run(s, 1);
    }
    return max_ms + 1;
}

struct stp_port_status sim_port_status(struct sim *s, int b, unsigned p)
{
    struct stp_port_status st;
    if (stp_get_port_status(s->br[b].stp, p, &st))
        memset(&st, 0xff, sizeof(st));
    return st;
}

struct stp_bridge_status sim_bridge_status(struct sim *s, int b)
{
    struct stp_bridge_status st;
    stp_get_bridge_status(s->br[b].stp, &st);
    return st;
}

uint64_t sim_bridge_id(struct sim *s, int b)
{
    return sim_bridge_status(s, b).bridge_id;
}

enum stp_port_role sim_role(struct sim *s, int b, unsigned p)
{
    return sim_port_status(s, b, p).role;
}

enum stp_port_state sim_state(struct sim *s, int b, unsigned p)
{
    return s->br[b].port[p].state;
}

/* Union-find over bridges (0..nb-1) and LANs (nb + lan). */
static int uf_find(int *parent, int x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static bool build_forwarding_graph(struct sim *s, int *parent)
{
    bool loop_free = true;

    for (int i = 0; i < SIM_MAX_BRIDGES + SIM_MAX_LANS; i++)
        parent[i] = i;
    for (int b = 0; b < s->nb; b++) {
        for (unsigned p = 1; p < SIM_MAX_PORTS; p++) {
            struct sim_port *sp = &s->br[b].port[p];
            if (sp->lan < 0 || !s->lan[sp->lan].up || sp->state != STP_STATE_FORWARDING)
                continue;
            int x = uf_find(parent, b), y = uf_find(parent, SIM_MAX_BRIDGES + sp->lan);
            if (x == y)
                loop_free = false;
            else
                parent[x] = y;
        }
    }
    return loop_free;
}

bool sim_loop_free(struct sim *s)
{
    int parent[SIM_MAX_BRIDGES + SIM_MAX_LANS];
    return build_forwarding_graph(s, parent);
}

bool sim_connected(struct sim *s)
{
    int parent[SIM_MAX_BRIDGES + SIM_MAX_LANS];
    int first = -1;

    build_forwarding_graph(s, parent);
    for (int b = 0; b < s->nb; b++) {
        bool attached = false;
        for (unsigned p = 1; p < SIM_MAX_PORTS; p++)
            attached |= s->br[b].port[p].lan >= 0;
        if (!attached)
            continue;
        if (first < 0)
            first = b;
        else if (uf_find(parent, first) != uf_find(parent, b))
            return false;
    }
    return true;
}

unsigned sim_count_state(struct sim *s, enum stp_port_state st)
{
    unsigned n = 0;
    for (int b = 0; b < s->nb; b++) {
        for (unsigned p = 1; p < SIM_MAX_PORTS; p++) {
            struct sim_port *sp = &s->br[b].port[p];
            if (sp->lan >= 0 && s->lan[sp->lan].up && sp->state == st)
                n++;
        }
    }
    return n;
}

bool sim_consistent(struct sim *s)
{
    uint64_t root = 0;
    bool ok = true;

    bool first = true;
    for (int b = 0; b < s->nb; b++) {
        struct stp_bridge_status bs = sim_bridge_status(s, b);
        bool attached = false;
        for (unsigned p = 1; p < SIM_MAX_PORTS; p++)
            attached |= s->br[b].port[p].lan >= 0 && s->lan[s->br[b].port[p].lan].up;
        if (bs.sm_bound_hits) {
            fprintf(stderr, "  %s: state machine bound hit %llu times\n", s->br[b].name,
                    (unsigned long long)bs.sm_bound_hits);
            ok = false;
        }
        if (!attached) {
            /* a bridge on its own is its own root */
        } else if (first) {
            root = bs.root_id;
            first = false;
        } else if (bs.root_id != root) {
            fprintf(stderr, "  %s disagrees on the root\n", s->br[b].name);
            ok = false;
        }
        for (unsigned p = 1; p < SIM_MAX_PORTS; p++) {
            struct sim_port *sp = &s->br[b].port[p];
            if (!sp->exists)
                continue;
            struct stp_port_status ps = sim_port_status(s, b, p);
            if (!sp->have_state || ps.state != sp->state) {
                fprintf(stderr, "  %s.%u: callback state %s, status %s\n", s->br[b].name, p,
                        stp_state_name(sp->state), stp_state_name(ps.state));
                ok = false;
            }
        }
    }
    return ok;
}

void sim_reset_counters(struct sim *s)
{
    for (int b = 0; b < s->nb; b++) {
        s->br[b].flush_all = 0;
        for (unsigned p = 0; p < SIM_MAX_PORTS; p++) {
            s->br[b].port[p].flushes = 0;
            s->br[b].port[p].tx_frames = 0;
            s->br[b].port[p].discards = 0;
            s->br[b].port[p].shuts = 0;
        }
    }
}
