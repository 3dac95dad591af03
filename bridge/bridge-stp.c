/* Spanning tree glue: one RSTP engine (stp/) per bridge, driven by the
 * control thread.
 *
 * BPDUs in: a worker copies a BPDU into its own single-producer queue and
 * wakes the control thread through an eventfd; the control thread feeds it
 * to the engine. A full queue drops and counts, so a port flooding BPDUs
 * cannot load the control thread beyond XBR_BPDU_QUEUE frames per wake-up.
 * BPDUs out: the engine's send callback puts the frame into the port's
 * injection ring and wakes worker 0, which sends it on its own queue, so no
 * port queue ever has two users.
 * States: the engine's set_port_state callback writes the port's datapath
 * gate (port->stp_state), which the workers read on every burst.
 *
 * Queued BPDUs refer to their port by pointer. A port is freed only after a
 * grace period (no worker can enqueue for it any more) and after
 * xbr_stp_drain_rx() has consumed or discarded its messages. */
#include "bridge/private.h"
#include "ctl/ctl.h"
#include "stp/stp.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static struct bpdu_queue *queues; /* one per worker */
static int bpdu_efd = -1;

static struct port *port_of(struct xbr_bridge *br, unsigned no)
{
    return no < XBR_MAX_PORTS ? br->ports->slot[no] : NULL;
}

/* ---- engine callbacks (control thread, from inside the engine) ---- */

static void cb_send_bpdu(void *aux, unsigned port_no, const void *frame, size_t len)
{
    struct port *p = port_of(aux, port_no);
    if (!p || !p->inject || len > XBR_INJECT_MAX)
        return;
    struct port_inject *r = p->inject;
    uint32_t head = r->head, tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
    if (head - tail >= XBR_INJECT_SLOTS)
        return; /* worker 0 is far behind; the engine resends on its timers */
    r->slot[head % XBR_INJECT_SLOTS].len = (uint16_t)len;
    memcpy(r->slot[head % XBR_INJECT_SLOTS].data, frame, len);
    __atomic_store_n(&r->head, head + 1, __ATOMIC_RELEASE);
    xbr_worker_kick(0);
}

static void cb_set_port_state(void *aux, unsigned port_no, enum stp_port_state st)
{
    static const int map[] = {
        [STP_STATE_DISABLED] = PORT_STP_DISABLED,
        [STP_STATE_DISCARDING] = PORT_STP_DISCARDING,
        [STP_STATE_LEARNING] = PORT_STP_LEARNING,
        [STP_STATE_FORWARDING] = PORT_STP_FORWARDING,
    };
    struct port *p = port_of(aux, port_no);
    if (!p || (unsigned)st >= XBR_ARRAY_SIZE(map))
        return;
    int old = p->stp_state;
    __atomic_store_n(&p->stp_state, map[st], __ATOMIC_RELEASE);
    if (old != map[st]) {
        xbr_info("%s: port %s %s", ((struct xbr_bridge *)aux)->name, p->name,
                 stp_state_name(st));
        xbr_fastpath_port_changed(p);
    }
}

static void cb_flush_fdb(void *aux, unsigned port_no)
{
    struct xbr_bridge *br = aux;
    (void)fdb_flush(br->fdb, port_no == STP_ALL_PORTS ? FDB_ALL_PORTS : port_no, false);
}

static void cb_port_shut(void *aux, unsigned port_no, const char *why)
{
    struct xbr_bridge *br = aux;
    struct port *p = port_of(br, port_no);
    xbr_warn("%s: port %s shut by BPDU guard: %s (xbrctl port enable %s %s)", br->name,
             p ? p->name : "?", why, br->name, p ? p->name : "PORT");
}

static const struct stp_callbacks callbacks = {
    .send_bpdu = cb_send_bpdu,
    .set_port_state = cb_set_port_state,
    .flush_fdb = cb_flush_fdb,
    .port_shut = cb_port_shut,
};

/* ---- BPDUs in ---- */

bool xbr_stp_enqueue_bpdu(unsigned w, struct port *p, const struct pkt *pkt)
{
    struct bpdu_queue *q = &queues[w];
    uint32_t head = q->head, tail = __atomic_load_n(&q->tail, __ATOMIC_ACQUIRE);
    if (head - tail >= XBR_BPDU_QUEUE)
        return false;
    struct bpdu_msg *m = &q->msg[head % XBR_BPDU_QUEUE];
    m->port = p;
    m->len = (uint16_t)XBR_MIN(pkt->len, XBR_BPDU_MAX);
    memcpy(m->data, pkt->data, m->len);
    __atomic_store_n(&q->head, head + 1, __ATOMIC_RELEASE);
    uint64_t one = 1;
    (void)!write(bpdu_efd, &one, sizeof(one));
    return true;
}

void xbr_stp_drain_rx(const struct port *discard)
{
    for (unsigned w = 0; queues && w < xbr_n_workers(); w++) {
        struct bpdu_queue *q = &queues[w];
        uint32_t head = __atomic_load_n(&q->head, __ATOMIC_ACQUIRE);
        for (uint32_t t = q->tail; t != head; t++) {
            struct bpdu_msg *m = &q->msg[t % XBR_BPDU_QUEUE];
            if (m->port != discard && m->port->bridge->stp)
                stp_rx_bpdu(m->port->bridge->stp, m->port->no, m->data, m->len);
        }
        __atomic_store_n(&q->tail, head, __ATOMIC_RELEASE);
    }
}

static void on_bpdu_event(int fd, uint32_t events, void *aux)
{
    (void)events, (void)aux;
    uint64_t n;
    (void)!read(fd, &n, sizeof(n));
    xbr_stp_drain_rx(NULL);
}

/* ---- BPDUs out (worker 0) ---- */

void xbr_inject_drain(struct port *p)
{
    struct port_inject *r = p->inject;
    uint32_t tail = r->tail, head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
    if (tail == head)
        return;
    struct pkt pkts[XBR_INJECT_SLOTS], *ptrs[XBR_INJECT_SLOTS];
    unsigned n = 0;
    for (uint32_t t = tail; t != head && n < XBR_INJECT_SLOTS; t++, n++) {
        pkts[n] = (struct pkt){.data = r->slot[t % XBR_INJECT_SLOTS].data,
                               .len = r->slot[t % XBR_INJECT_SLOTS].len};
        ptrs[n] = &pkts[n];
    }
    unsigned sent = p->cls->tx_burst(p, 0, ptrs, n);
    p->stats[0].tx_packets += sent;
    for (unsigned i = 0; i < sent; i++)
        p->stats[0].tx_bytes += pkts[i].len;
    p->stats[0].tx_drop_full += n - sent;
    if (p->cls->tx_flush)
        p->cls->tx_flush(p, 0);
    __atomic_store_n(&r->tail, tail + n, __ATOMIC_RELEASE);
}

/* ---- bridges and ports ---- */

/* The lowest NIC address visible here, preferring what is most likely
 * unique: a physical device's (one with a "device" link) globally
 * administered address, then any globally administered address, then any
 * address at all (a namespace with only veths, whose random addresses are
 * locally administered). 0 if there is no device but loopback. */
static uint64_t lowest_nic_mac(void)
{
    uint64_t best[3] = {UINT64_MAX, UINT64_MAX, UINT64_MAX};
    DIR *d = opendir("/sys/class/net");
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));) {
        char path[300], buf[32], link[16];
        uint8_t mac[6];
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "lo"))
            continue;
        snprintf(path, sizeof(path), "/sys/class/net/%s/address", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        if (xbr_mac_parse(buf, mac) < 0 || xbr_mac_is_zero(mac) || xbr_mac_is_multicast(mac))
            continue;
        uint64_t v = 0;
        for (int i = 0; i < 6; i++)
            v = v << 8 | mac[i];
        snprintf(path, sizeof(path), "/sys/class/net/%s/device", e->d_name);
        bool physical = readlink(path, link, sizeof(link)) > 0;
        bool global = !(mac[0] & 0x02);
        int tier = global ? (physical ? 0 : 1) : 2;
        if (v < best[tier])
            best[tier] = v;
    }
    closedir(d);
    for (int t = 0; t < 3; t++)
        if (best[t] != UINT64_MAX)
            return best[t];
    return 0;
}

/* A locally administered bridge address that is stable across restarts
 * and unique per host: a hash of the machine id, the host's lowest NIC
 * address and the bridge name. (The kernel bridge takes its lowest port's
 * address, which changes whenever ports come and go; the machine id alone
 * is shared by cloned images, and two hosts with the same id and the same
 * bridge name would each take the other's BPDUs for their own.) */
static void derive_bridge_mac(const char *name, uint8_t mac[6])
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    char id[128] = "";
    int fd = open("/etc/machine-id", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, id, sizeof(id) - 1);
        id[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    if (!id[0])
        (void)gethostname(id, sizeof(id) - 1);
    for (const char *s = id; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    uint64_t nic = lowest_nic_mac();
    for (int i = 0; i < 6; i++)
        h = (h ^ (uint8_t)(nic >> (8 * i))) * 0x100000001b3ull;
    for (const char *s = name; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)(h >> (8 * i));
    mac[0] = (uint8_t)((mac[0] & 0xfe) | 0x02);
}

int xbr_stp_bridge_init(struct xbr_bridge *br, char *err, size_t errlen)
{
    derive_bridge_mac(br->name, br->mac);
    br->stp = stp_create(br->name, br->mac, &callbacks, br);
    if (!br->stp) {
        snprintf(err, errlen, "cannot create the spanning tree engine");
        return -ENOMEM;
    }
    /* Every bridge runs spanning tree unless told otherwise. */
    br->stp_enabled = true;
    stp_set_enabled(br->stp, true);
    return 0;
}

void xbr_stp_bridge_fini(struct xbr_bridge *br)
{
    stp_destroy(br->stp);
    br->stp = NULL;
}

void xbr_stp_port_default_config(const struct port_class *cls, struct stp_port_config *cfg)
{
    if (cls->end_station)
        stp_port_config_guest(cfg);
    else
        stp_port_config_uplink(cfg);
    if (cls->tunnel) {
        /* Like OVS's tunnel ports and the kernel's usual vxlan setups: no
         * BPDUs across the overlay (a full mesh of VTEPs would otherwise
         * have RSTP block most of it) and forwarding at once. `port set BR
         * PORT bpdu-filter no` lets spanning tree run over the tunnel. */
        cfg->bpdu_filter = true;
        cfg->admin_edge = true;
    }
}

void xbr_stp_port_added(struct port *p)
{
    struct stp_port_config cfg;
    xbr_stp_port_default_config(p->cls, &cfg);
    if (stp_port_add(p->bridge->stp, p->no, p->mac, &cfg) < 0) {
        xbr_err("%s: spanning tree refused port %s", p->bridge->name, p->name);
        return;
    }
    stp_port_set_link(p->bridge->stp, p->no, p->link_up, p->speed_mbps, true);
}

void xbr_stp_port_removing(struct port *p)
{
    xbr_stp_drain_rx(NULL);
    stp_port_del(p->bridge->stp, p->no);
}

void xbr_stp_link_changed(struct port *p)
{
    stp_port_set_link(p->bridge->stp, p->no, p->link_up, p->speed_mbps, true);
}

void xbr_stp_tick(uint32_t elapsed_ms)
{
    for (size_t i = 0; i < xbr_bridge_count(); i++)
        stp_tick(xbr_bridge_at(i)->stp, elapsed_ms);
}

const char *xbr_stp_port_role(const struct port *p)
{
    struct stp_port_status st;
    if (!p->bridge->stp || stp_get_port_status(p->bridge->stp, p->no, &st) < 0)
        return "disabled";
    return stp_role_name(st.role);
}

int xbr_stp_init(char *err, size_t errlen)
{
    queues = xbr_xzalloc(xbr_n_workers() * sizeof(*queues));
    bpdu_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (bpdu_efd < 0 || xbr_loop_add_fd(bpdu_efd, EPOLLIN, on_bpdu_event, NULL) < 0) {
        snprintf(err, errlen, "cannot set up the BPDU queue: %s", strerror(errno));
        return -errno;
    }
    return 0;
}

void xbr_stp_fini(void)
{
    if (bpdu_efd >= 0) {
        xbr_loop_del_fd(bpdu_efd);
        close(bpdu_efd);
        bpdu_efd = -1;
    }
    free(queues);
    queues = NULL;
}

/* ---- commands ---- */

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)


static void print_stp_port(struct ctl_out *o, struct xbr_bridge *br, struct port *p)
{
    struct stp_port_status st;
    char id[STP_ID_STRLEN];
    if (stp_get_port_status(br->stp, p->no, &st) < 0)
        return;
    const struct stp_port_counters *c = &st.counters;
    uint64_t drops = 0;
    for (int i = 0; i < STP_RX__MAX; i++)
        drops += c->rx_drop[i];

    ctl_out_open_object(o, NULL);
    ctl_out_str(o, "name", "  %-15s", p->name);
    ctl_out_str(o, "role", " %-10s", stp_role_name(st.role));
    ctl_out_str(o, "state", " %-10s", stp_state_name(st.state));
    ctl_out_u64(o, "port_id", " id %04llx", st.port_id);
    ctl_out_u64(o, "path_cost", " cost %llu", st.path_cost);
    ctl_out_bool(o, "edge", " edge %s", st.oper_edge);
    ctl_out_bool(o, "point_to_point", " p2p %s", st.oper_p2p);
    ctl_out_str(o, "protocol", " %s\n", stp_version_name(st.protocol));
    ctl_out_str(o, "designated_root", "      designated root %s", stp_id_format(st.designated_root, id));
    ctl_out_str(o, "designated_bridge", " bridge %s", stp_id_format(st.designated_bridge, id));
    ctl_out_u64(o, "designated_port", " port %04llx", st.designated_port);
    ctl_out_u64(o, "designated_cost", " cost %llu\n", st.designated_cost);
    ctl_out_bool(o, "admin_edge", "      admin-edge %s", st.admin_edge);
    ctl_out_bool(o, "auto_edge", " auto-edge %s", st.auto_edge);
    ctl_out_bool(o, "bpdu_guard", " bpdu-guard %s", st.bpdu_guard);
    ctl_out_bool(o, "root_guard", " root-guard %s", st.root_guard);
    ctl_out_bool(o, "bpdu_filter", " bpdu-filter %s", st.bpdu_filter);
    ctl_out_bool(o, "shut_by_guard", " shut %s\n", st.shut_by_guard);
    ctl_out_u64(o, "bpdu_rx", "      bpdus in %llu", c->rx_config + c->rx_tcn + c->rx_rst);
    ctl_out_u64(o, "bpdu_tx", " out %llu", c->tx_config + c->tx_tcn + c->tx_rst);
    ctl_out_u64(o, "bpdu_rx_dropped", " bad %llu", drops);
    ctl_out_u64(o, "bpdu_guard_trips", " guard trips %llu", c->bpdu_guard_trips);
    ctl_out_u64(o, "root_guard_trips", " root-guard trips %llu", c->root_guard_trips);
    ctl_out_u64(o, "forwarding_transitions", " to forwarding %llu\n", c->fwd_transitions);
    ctl_out_open_object(o, "bpdu_rx_drops");
    for (int i = 1; i < STP_RX__MAX; i++)
        ctl_out_u64(o, stp_rx_result_name((enum stp_rx_result)i), NULL, c->rx_drop[i]);
    ctl_out_close_object(o);
    ctl_out_close_object(o);
}

static int cmd_stp_show(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                        void *aux)
{
    (void)argc, (void)aux;
    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    struct stp_bridge_status bs;
    char id[STP_ID_STRLEN];
    stp_get_bridge_status(br->stp, &bs);
    struct port *rp = bs.is_root ? NULL : port_of(br, bs.root_port);

    ctl_out_open_object(o, NULL);
    ctl_out_str(o, "bridge", "%s", br->name);
    ctl_out_bool(o, "enabled", " stp enabled %s", bs.enabled);
    ctl_out_str(o, "force_version", " (%s)\n", stp_version_name(bs.force_version));
    ctl_out_str(o, "bridge_id", "  bridge id       %s\n", stp_id_format(bs.bridge_id, id));
    ctl_out_str(o, "root_id", "  designated root %s", stp_id_format(bs.root_id, id));
    ctl_out_bool(o, "is_root", " (this bridge is root: %s)\n", bs.is_root);
    ctl_out_str_or_null(o, "root_port", "  root port       %s", rp ? rp->name : NULL);
    ctl_out_u64(o, "root_path_cost", "   path cost %llu\n", bs.root_path_cost);
    ctl_out_u64(o, "max_age", "  max age %llu s", bs.max_age);
    ctl_out_u64(o, "hello_time", "   hello time %llu s", bs.hello_time);
    ctl_out_u64(o, "forward_delay", "   forward delay %llu s", bs.forward_delay);
    ctl_out_u64(o, "tx_hold_count", "   tx hold count %llu\n", bs.tx_hold_count);
    ctl_out_u64(o, "bridge_max_age", NULL, bs.bridge_max_age);
    ctl_out_u64(o, "bridge_hello_time", NULL, bs.bridge_hello_time);
    ctl_out_u64(o, "bridge_forward_delay", NULL, bs.bridge_forward_delay);
    ctl_out_bool(o, "topology_change", "  topology change %s", bs.topology_change);
    ctl_out_u64(o, "topology_change_count", "   count %llu", bs.topology_change_count);
    if (bs.has_tc)
        ctl_out_u64(o, "time_since_topology_change_ms", "   last %llu ms ago\n",
                    bs.time_since_tc_ms);
    else
        ctl_out_str_or_null(o, "time_since_topology_change_ms", "   last %s\n", NULL);
    ctl_out_open_array(o, "ports");
    const struct port_table *t = br->ports;
    for (unsigned i = 0; i < t->n_ports; i++)
        print_stp_port(o, br, t->slot[t->list[i]]);
    ctl_out_close_array(o);
    ctl_out_close_object(o);
    return 0;
}

/* stp set BR KEY VALUE */
static int cmd_stp_set(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                       void *aux)
{
    (void)argc, (void)o, (void)aux;
    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    int r = stp_set_param(br->stp, argv[1], argv[2], err, errlen);
    if (r < 0)
        return r;
    if (!strcmp(argv[1], "enabled")) {
        struct stp_bridge_status bs;
        stp_get_bridge_status(br->stp, &bs);
        /* With STP off the datapath passes BPDUs on, like the kernel bridge. */
        br->stp_enabled = bs.enabled;
    }
    return 0;
}

/* port set BR PORT KEY VALUE, or port set BR PORT vlan ... (vlan.c) */
static int cmd_port_set(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                        void *aux)
{
    (void)o, (void)aux;
    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    struct port *p = xbr_ctl_get_port(br, argv[1], err, errlen);
    if (!p)
        return -ENOENT;
    if (!strcmp(argv[2], "vlan"))
        return xbr_vlan_cmd(p, argc - 3, argv + 3, err, errlen);
    if (argc != 4) {
        snprintf(err, errlen, "usage: port set BR PORT KEY VALUE");
        return -EINVAL;
    }
    return stp_port_set_param(br->stp, p->no, argv[2], argv[3], err, errlen);
}

/* port enable BR PORT: bring back a port that BPDU guard shut. */
static int cmd_port_enable(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                           void *aux)
{
    (void)argc, (void)o, (void)aux;
    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    struct port *p = xbr_ctl_get_port(br, argv[1], err, errlen);
    if (!p)
        return -ENOENT;
    int r = stp_port_reenable(br->stp, p->no);
    if (r == -EALREADY)
        return ERR("port %s is not shut", p->name);
    if (r < 0)
        return ERR("cannot re-enable %s: %s", p->name, strerror(-r));
    xbr_info("%s: port %s re-enabled", br->name, p->name);
    return 0;
}

void xbr_stp_register_commands(void)
{
    (void)ctl_register("stp show", 1, 1, "BR", cmd_stp_show, NULL);
    (void)ctl_register("stp set", 3, 3,
                       "BR enabled|priority|hello-time|max-age|forward-delay|force-version|"
                       "tx-hold-count VALUE",
                       cmd_stp_set, NULL);
    (void)ctl_register("port set", 4, 7,
                       "BR PORT priority|path-cost|admin-edge|auto-edge|point-to-point|"
                       "bpdu-guard|root-guard|bpdu-filter|mcheck|vlan VALUE "
                       "(vlan: access VID, or trunk VIDS [native VID])",
                       cmd_port_set, NULL);
    (void)ctl_register("port enable", 2, 2, "BR PORT", cmd_port_enable, NULL);
}
