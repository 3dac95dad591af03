/* Control commands of the switching core: bridges, ports, the FDB and
 * counters. Every handler checks all of its arguments before it changes
 * anything, so a refused request leaves the daemon as it was. */
#include "bridge/config.h"
#include "bridge/metrics.h"
#include "bridge/private.h"
#include "ctl/ctl.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

static const char *const stp_state_names[] = {
    [PORT_STP_DISABLED] = "disabled",
    [PORT_STP_DISCARDING] = "discarding",
    [PORT_STP_LEARNING] = "learning",
    [PORT_STP_FORWARDING] = "forwarding",
};

struct xbr_bridge *xbr_ctl_get_bridge(const char *name, char *err, size_t errlen)
{
    struct xbr_bridge *br = xbr_bridge_find(name);
    if (!br)
        snprintf(err, errlen, "no bridge named %s", name);
    return br;
}

struct port *xbr_ctl_get_port(struct xbr_bridge *br, const char *name, char *err, size_t errlen)
{
    struct port *p = xbr_port_find(br, name);
    if (!p)
        snprintf(err, errlen, "bridge %s has no port named %s", br->name, name);
    return p;
}


static int parse_vlan(const char *s, uint16_t *vlan, char *err, size_t errlen)
{
    uint64_t v;
    if (xbr_parse_uint(s, 1, XBR_VLAN_MAX, &v) < 0)
        return ERR("invalid VLAN id '%s' (1-%u)", s, XBR_VLAN_MAX);
    *vlan = (uint16_t)v;
    return 0;
}

/* ---- show ---- */

static void print_port_stats(struct ctl_out *o, const struct port_stats *s, bool detailed)
{
    uint64_t rx_drop = s->rx_drop_runt + s->rx_drop_state + s->rx_drop_linklocal +
                       s->rx_drop_filtered + s->rx_drop_src + s->rx_drop_port +
                       s->rx_drop_bpdu_queue + s->rx_drop_mirror + s->rx_drop_vlan;
    uint64_t tx_drop = s->tx_drop_mtu + s->tx_drop_full;

    ctl_out_open_object(o, "stats");
    ctl_out_u64(o, "rx_packets", "    rx %llu packets", s->rx_packets);
    ctl_out_u64(o, "rx_bytes", " %llu bytes", s->rx_bytes);
    ctl_out_u64(o, "rx_dropped", " %llu dropped\n", rx_drop);
    ctl_out_u64(o, "tx_packets", "    tx %llu packets", s->tx_packets);
    ctl_out_u64(o, "tx_bytes", " %llu bytes", s->tx_bytes);
    ctl_out_u64(o, "tx_dropped", " %llu dropped\n", tx_drop);
    if (detailed) {
        ctl_out_u64(o, "rx_flooded", "    flooded %llu\n", s->rx_flooded);
        ctl_out_text(o, "    rx drops:");
        ctl_out_u64(o, "rx_drop_runt", " runt %llu", s->rx_drop_runt);
        ctl_out_u64(o, "rx_drop_stp_state", " stp-state %llu", s->rx_drop_state);
        ctl_out_u64(o, "rx_drop_link_local", " link-local %llu", s->rx_drop_linklocal);
        ctl_out_u64(o, "rx_drop_filtered", " filtered %llu", s->rx_drop_filtered);
        ctl_out_u64(o, "rx_drop_bad_source", " bad-source %llu", s->rx_drop_src);
        ctl_out_u64(o, "rx_drop_port", " port %llu", s->rx_drop_port);
        ctl_out_u64(o, "rx_drop_bpdu_queue", " bpdu-queue %llu", s->rx_drop_bpdu_queue);
        ctl_out_u64(o, "rx_drop_mirror_output", " mirror-output %llu", s->rx_drop_mirror);
        ctl_out_u64(o, "rx_drop_vlan", " vlan %llu\n", s->rx_drop_vlan);
        ctl_out_u64(o, "rx_bpdu", "    bpdus to stp %llu\n", s->rx_bpdu);
        ctl_out_text(o, "    tx drops:");
        ctl_out_u64(o, "tx_drop_mtu", " mtu %llu", s->tx_drop_mtu);
        ctl_out_u64(o, "tx_drop_full", " full %llu\n", s->tx_drop_full);
        ctl_out_text(o, "    fdb:");
        ctl_out_u64(o, "fdb_learned", " learned %llu", s->fdb_learned);
        ctl_out_u64(o, "fdb_moved", " moved %llu", s->fdb_moved);
        ctl_out_u64(o, "fdb_limit_hits", " limit-hits %llu\n", s->fdb_limit);
        ctl_out_u64(o, "fast_rx_packets", "    kernel fast path: rx %llu", s->fast_rx_packets);
        ctl_out_u64(o, "fast_tx_packets", " tx %llu\n", s->fast_tx_packets);
    }
    ctl_out_close_object(o);
}

static void print_port(struct ctl_out *o, struct port *p, bool detailed)
{
    char mac[XBR_MAC_STRLEN];
    struct port_stats st;

    xbr_port_get_stats(p, &st);
    ctl_out_open_object(o, NULL);
    ctl_out_str(o, "name", "  %-15s", p->name);
    ctl_out_u64(o, "port_no", NULL, p->no);
    ctl_out_str(o, "type", " %-9s", p->cls->type);
    ctl_out_str(o, "stp_state", " %-11s", stp_state_names[p->stp_state]);
    ctl_out_str(o, "stp_role", " %-11s", xbr_stp_port_role(p));
    ctl_out_str(o, "mac", " %s", xbr_mac_format(p->mac, mac));
    ctl_out_u64(o, "mtu", " mtu %llu", p->mtu);
    ctl_out_bool(o, "link_up", " link-up %s", p->link_up);
    if (p->fastpath)
        ctl_out_text(o, " fastpath");
    ctl_out_bool(o, "fastpath", NULL, p->fastpath);
    ctl_out_u64(o, "fdb_entries", " fdb %llu\n", fdb_port_count(p->bridge->fdb, p->no));
    if (p->cls->show)
        p->cls->show(p, o);
    print_port_stats(o, &st, detailed);
    ctl_out_close_object(o);
}

static void print_bridge(struct ctl_out *o, struct xbr_bridge *br)
{
    struct fdb_stats fs;
    fdb_get_stats(br->fdb, &fs);
    const struct port_table *t = br->ports;

    ctl_out_open_object(o, NULL);
    ctl_out_str(o, "name", "%s:", br->name);
    ctl_out_u64(o, "n_ports", " %llu ports,", t->n_ports);
    ctl_out_bool(o, "stp_enabled", " stp %s,", br->stp_enabled);
    ctl_out_bool(o, "fastpath", " fastpath %s,", br->fastpath);
    ctl_out_u64(o, "ageing", " ageing %llu s,", fdb_get_ageing(br->fdb));
    ctl_out_u64(o, "fdb_entries", " %llu fdb entries", fs.entries);
    ctl_out_u64(o, "fdb_limit", " (limit %llu", fs.max_entries);
    ctl_out_u64(o, "fdb_limit_per_port", ", %llu per port)\n", fs.max_per_port);
    ctl_out_open_array(o, "ports");
    for (unsigned i = 0; i < t->n_ports; i++)
        print_port(o, t->slot[t->list[i]], false);
    ctl_out_close_array(o);
    ctl_out_close_object(o);
}

static int cmd_show(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen, void *aux)
{
    (void)aux;
    struct xbr_bridge *only = NULL;
    if (argc == 1 && !(only = xbr_ctl_get_bridge(argv[0], err, errlen)))
        return -ENOENT;
    ctl_out_open_array(o, NULL);
    if (!only && xbr_bridge_count() == 0)
        ctl_out_text(o, "no bridges (xbrctl add-br NAME)\n");
    for (size_t i = 0; i < xbr_bridge_count(); i++) {
        struct xbr_bridge *br = xbr_bridge_at(i);
        if (!only || only == br)
            print_bridge(o, br);
    }
    ctl_out_close_array(o);
    return 0;
}

/* ---- bridges and ports ---- */

static int cmd_add_br(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                      void *aux)
{
    (void)argc, (void)o, (void)aux;
    return xbr_bridge_add(argv[0], err, errlen);
}

static int cmd_del_br(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                      void *aux)
{
    (void)argc, (void)o, (void)aux;
    return xbr_bridge_del(argv[0], err, errlen);
}

static int cmd_add_port(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                        void *aux)
{
    (void)o, (void)aux;
    const char *type = "afpacket";
    unsigned flags = 0;
    int port_no = -1;
    /* The vxlan options, handed to its parser as option-value pairs. */
    char *vx_argv[16];
    int vx_argc = 0;

    for (int i = 2; i < argc; i++) {
        uint64_t no;
        if (!strcmp(argv[i], "--type") && i + 1 < argc)
            type = argv[++i];
        else if (!strncmp(argv[i], "--type=", 7))
            type = argv[i] + 7;
        else if (!strcmp(argv[i], "--force"))
            flags |= XBR_PORT_F_FORCE;
        else if (!strcmp(argv[i], "--port-no") && i + 1 < argc) {
            if (xbr_parse_uint(argv[++i], 0, XBR_MAX_PORTS - 1, &no) < 0)
                return ERR("invalid port number '%s' (0-%d)", argv[i], XBR_MAX_PORTS - 1);
            port_no = (int)no;
        } else if ((!strcmp(argv[i], "--vni") || !strcmp(argv[i], "--local") ||
                    !strcmp(argv[i], "--remote") || !strcmp(argv[i], "--group") ||
                    !strcmp(argv[i], "--dstport")) &&
                   i + 1 < argc && vx_argc + 2 <= (int)XBR_ARRAY_SIZE(vx_argv)) {
            vx_argv[vx_argc++] = argv[i];
            vx_argv[vx_argc++] = argv[++i];
        } else
            return ERR("unknown option '%s' (add-port BR NAME [--type afpacket|afxdp|tap|vxlan] "
                       "[--force] [--port-no N] [--vni N --local IP [--remote IP[,IP...]] "
                       "[--group MCAST] [--dstport PORT]])",
                       argv[i]);
    }
    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    const struct port_class *cls = xbr_port_class_find(type);
    if (!cls || !strcmp(type, "netback"))
        /* netback ports come from xenstore, not from add-port */
        return ERR("unknown port type '%s' (afpacket, afxdp, tap or vxlan)", type);
    struct xbr_vxlan_config *vx = NULL;
    if (cls == &port_vxlan_class) {
        vx = xbr_xzalloc(sizeof(*vx));
        int r = xbr_vxlan_parse_args(vx_argc, vx_argv, vx, err, errlen);
        if (r < 0) {
            free(vx);
            return r;
        }
    } else if (vx_argc) {
        return ERR("%s is an option of vxlan ports only", vx_argv[0]);
    }
    int r = xbr_port_add_at(br, port_no, argv[1], cls, flags, vx, err, errlen);
    free(vx);
    if (r == 0)
        xbr_cfg_note_port(argv[1], flags);
    return r;
}

static int cmd_del_port(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                        void *aux)
{
    (void)argc, (void)o, (void)aux;
    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    return xbr_port_del(br, argv[1], err, errlen);
}

/* ---- fdb ---- */

struct fdb_rows {
    struct fdb_entry_info *e;
    size_t n, cap;
};

static int collect_entry(const struct fdb_entry_info *e, void *aux)
{
    struct fdb_rows *rows = aux;
    if (rows->n == rows->cap) {
        rows->cap = rows->cap ? rows->cap * 2 : 64;
        struct fdb_entry_info *n = realloc(rows->e, rows->cap * sizeof(*n));
        if (!n)
            abort();
        rows->e = n;
    }
    rows->e[rows->n++] = *e;
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct fdb_entry_info *x = a, *y = b;
    if (x->port != y->port)
        return x->port < y->port ? -1 : 1;
    if (x->vlan != y->vlan)
        return x->vlan < y->vlan ? -1 : 1;
    return memcmp(x->mac, y->mac, 6);
}

static int cmd_fdb_show(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                        void *aux)
{
    (void)argc, (void)aux;
    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    struct fdb_rows rows = {0};
    (void)fdb_foreach(br->fdb, xbr_now_coarse_s(), collect_entry, &rows);
    if (rows.n)
        qsort(rows.e, rows.n, sizeof(*rows.e), cmp_entry);

    const struct port_table *t = br->ports;
    ctl_out_text(o, "%-17s  %4s  %-15s  %-7s  %s\n", "mac", "vlan", "port", "type", "age");
    ctl_out_open_array(o, NULL);
    for (size_t i = 0; i < rows.n; i++) {
        const struct fdb_entry_info *e = &rows.e[i];
        char mac[XBR_MAC_STRLEN];
        const struct port *p = e->port < XBR_MAX_PORTS ? t->slot[e->port] : NULL;
        ctl_out_open_object(o, NULL);
        ctl_out_str(o, "mac", "%-17s", xbr_mac_format(e->mac, mac));
        ctl_out_u64(o, "vlan", "  %4llu", e->vlan);
        ctl_out_str_or_null(o, "port", "  %-15s", p ? p->name : NULL);
        ctl_out_bool(o, "static", NULL, e->is_static);
        ctl_out_text(o, "  %-7s", e->is_static ? "static" : "learned");
        ctl_out_u64(o, "age", "  %llu", e->age_s);
        struct in6_addr ra;
        char rs[INET6_ADDRSTRLEN];
        if (p && p->cls->tunnel && xbr_vxlan_remote_addr(p, e->remote, &ra))
            ctl_out_str(o, "dst", "  dst %s", xbr_vxlan_format_ip(&ra, rs));
        ctl_out_text(o, "\n");
        ctl_out_close_object(o);
    }
    ctl_out_close_array(o);
    free(rows.e);
    return 0;
}

/* Parses "MAC" plus an optional trailing "vlan VID" (words[0..n)). */
static int parse_mac_vlan(int n, char **words, uint8_t mac[6], uint16_t *vlan,
                          const char *usage, char *err, size_t errlen)
{
    if (xbr_mac_parse(words[0], mac) < 0)
        return ERR("invalid MAC address '%s' (expected aa:bb:cc:dd:ee:ff)", words[0]);
    *vlan = XBR_VLAN_DEFAULT;
    if (n == 3 && !strcmp(words[1], "vlan"))
        return parse_vlan(words[2], vlan, err, errlen);
    if (n != 1)
        return ERR("usage: %s", usage);
    return 0;
}

/* fdb add BR MAC PORT [vlan VID] [dst IP] */
static int cmd_fdb_add(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                       void *aux)
{
    (void)o, (void)aux;
    uint8_t mac[6];
    uint16_t vlan = XBR_VLAN_DEFAULT;

    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    /* A trailing "dst IP": the remote VTEP behind a vxlan port. */
    const char *dst = NULL;
    if (argc >= 5 && !strcmp(argv[argc - 2], "dst")) {
        dst = argv[argc - 1];
        argc -= 2;
    }
    /* The port name sits between the MAC and the optional vlan words. */
    char *words[3] = {argv[1], argc > 3 ? argv[3] : NULL, argc > 4 ? argv[4] : NULL};
    if (parse_mac_vlan(argc - 2, words, mac, &vlan, "fdb add BR MAC PORT [vlan VID] [dst IP]",
                       err, errlen) < 0)
        return -EINVAL;
    if (xbr_mac_is_multicast(mac) || xbr_mac_is_zero(mac))
        return ERR("%s is a multicast or zero address; only unicast addresses can be "
                   "forwarding entries",
                   argv[1]);
    struct port *p = xbr_ctl_get_port(br, argv[2], err, errlen);
    if (!p)
        return -ENOENT;
    uint32_t remote = FDB_REMOTE_NONE;
    if (dst) {
        struct in6_addr a;
        if (!p->cls->tunnel)
            return ERR("dst is for tunnel (vxlan) ports; %s is of type %s", p->name,
                       p->cls->type);
        if (xbr_vxlan_parse_ip(dst, &a) < 0)
            return ERR("invalid dst address '%s'", dst);
        remote = xbr_vxlan_remote_handle(p, &a);
        if (remote == FDB_REMOTE_NONE)
            return ERR("%s: the VTEP table is full (%u addresses)", p->name,
                       XBR_VXLAN_MAX_VTEPS);
    }
    int r = fdb_add_static_remote(br->fdb, vlan, mac, p->no, remote);
    if (r < 0)
        return ERR("cannot add %s: %s", argv[1], strerror(-r));
    xbr_fastpath_fdb_changed(br, vlan, mac);
    return 0;
}

/* fdb del BR MAC [vlan VID] */
static int cmd_fdb_del(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                       void *aux)
{
    (void)o, (void)aux;
    uint8_t mac[6];
    uint16_t vlan = XBR_VLAN_DEFAULT;

    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    if (parse_mac_vlan(argc - 1, argv + 1, mac, &vlan, "fdb del BR MAC [vlan VID]", err,
                       errlen) < 0)
        return -EINVAL;
    if (fdb_del(br->fdb, vlan, mac) < 0) {
        snprintf(err, errlen, "%s has no entry for %s (vlan %u)", br->name, argv[1], vlan);
        return -ENOENT;
    }
    return 0;
}

/* fdb flush BR [PORT] [--static] */
static int cmd_fdb_flush(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                         void *aux)
{
    (void)aux;
    bool with_static = false;
    uint32_t port = FDB_ALL_PORTS;
    const char *port_name = NULL;

    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--static"))
            with_static = true;
        else if (!port_name)
            port_name = argv[i];
        else
            return ERR("usage: fdb flush BR [PORT] [--static]");
    }
    if (port_name) {
        struct port *p = xbr_ctl_get_port(br, port_name, err, errlen);
        if (!p)
            return -ENOENT;
        port = p->no;
    }
    size_t n = fdb_flush(br->fdb, port, with_static);
    ctl_out_open_object(o, NULL);
    ctl_out_u64(o, "flushed", "%llu entries flushed\n", n);
    ctl_out_close_object(o);
    return 0;
}

static int cmd_set_ageing(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                          void *aux)
{
    (void)argc, (void)o, (void)aux;
    uint64_t s;
    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    /* 802.1D-2004 7.9.2 allows 10..1000000 s; we also accept shorter times
     * (as the kernel bridge does), useful in tests, but not 0. */
    if (xbr_parse_uint(argv[1], 1, 1000000, &s) < 0)
        return ERR("invalid ageing time '%s' (1-1000000 seconds)", argv[1]);
    fdb_set_ageing(br->fdb, (uint32_t)s);
    xbr_fastpath_ageing_changed(br);
    return 0;
}

/* set-fdb-limit BR N [--per-port M]  |  set-fdb-limit BR --per-port M
 * The learned-entry limits of a bridge (a flood defence, and what the table
 * is sized for).  Lowering one below what is held keeps the entries and
 * stops learning until they age out; the reply says so. */
static int cmd_set_fdb_limit(int argc, char **argv, struct ctl_out *o, char *err,
                             size_t errlen, void *aux)
{
    (void)aux;
    static const char usage[] = "usage: set-fdb-limit BR N [--per-port M] | "
                                "set-fdb-limit BR --per-port M";
    const char *total_s = NULL, *port_s = NULL;
    uint64_t total = 0, per_port = 0;

    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--per-port") || !strncmp(argv[i], "--per-port=", 11)) {
            if (port_s)
                return ERR("%s", usage);
            if (argv[i][10] == '=')
                port_s = argv[i] + 11;
            else if (i + 1 < argc)
                port_s = argv[++i];
            else
                return ERR("--per-port needs a number (%s)", usage);
        } else if (!total_s && strncmp(argv[i], "--", 2)) {
            total_s = argv[i];
        } else {
            return ERR("%s", usage);
        }
    }
    if (!total_s && !port_s)
        return ERR("%s", usage);
    if (total_s && xbr_parse_uint(total_s, 1, FDB_MAX_ENTRIES_LIMIT, &total) < 0)
        return ERR("invalid FDB limit '%s' (1-%u learned entries)", total_s,
                   FDB_MAX_ENTRIES_LIMIT);
    if (port_s && xbr_parse_uint(port_s, 1, FDB_MAX_ENTRIES_LIMIT, &per_port) < 0)
        return ERR("invalid per-port FDB limit '%s' (1-%u learned entries)", port_s,
                   FDB_MAX_ENTRIES_LIMIT);
    struct fdb_stats fs;
    fdb_get_stats(br->fdb, &fs);
    int r = fdb_set_limits(br->fdb, (uint32_t)total, (uint32_t)per_port);
    if (r < 0) {
        snprintf(err, errlen, "cannot size %s's forwarding database for %llu entries: %s",
                 br->name, total ? (unsigned long long)total : (unsigned long long)fs.max_entries,
                 strerror(-r));
        return r;
    }
    fdb_get_stats(br->fdb, &fs);
    const uint32_t learned = fs.entries - fs.static_entries;
    unsigned ports_over = 0;
    const struct port_table *t = br->ports;
    for (unsigned i = 0; i < t->n_ports; i++)
        ports_over += fdb_port_count(br->fdb, t->list[i]) > fs.max_per_port;

    ctl_out_open_object(o, NULL);
    ctl_out_str(o, "bridge", "%s:", br->name);
    ctl_out_u64(o, "fdb_limit", " fdb limit %llu learned entries,", fs.max_entries);
    ctl_out_u64(o, "fdb_limit_per_port", " %llu per port;", fs.max_per_port);
    ctl_out_u64(o, "fdb_buckets", " table of %llu buckets\n", fs.buckets);
    ctl_out_u64(o, "fdb_learned", NULL, learned);
    ctl_out_u64(o, "ports_over_limit", NULL, ports_over);
    if (learned > fs.max_entries)
        ctl_out_text(o, "  %u learned entries, over the limit, are kept until they age out; "
                        "nothing new is learned meanwhile\n", learned);
    if (ports_over)
        ctl_out_text(o, "  %u port(s) hold more than %u entries: kept, and those ports learn "
                        "nothing new until below\n", ports_over, fs.max_per_port);
    ctl_out_close_object(o);
    return 0;
}

/* ---- stats ---- */

static int cmd_stats(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                     void *aux)
{
    (void)aux;
    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    struct port *only = NULL;
    if (argc == 2 && !(only = xbr_ctl_get_port(br, argv[1], err, errlen)))
        return -ENOENT;

    struct fdb_stats fs;
    fdb_get_stats(br->fdb, &fs);
    ctl_out_open_object(o, NULL);
    ctl_out_str(o, "bridge", "%s\n", br->name);
    ctl_out_open_object(o, "fdb");
    ctl_out_u64(o, "entries", "  fdb: %llu entries", fs.entries);
    ctl_out_u64(o, "static", " (%llu static)", fs.static_entries);
    ctl_out_u64(o, "learned", ", learned %llu", fs.learned);
    ctl_out_u64(o, "moved", ", moved %llu", fs.moved);
    ctl_out_u64(o, "aged", ", aged %llu", fs.aged);
    ctl_out_u64(o, "limit_port_hits", ", port-limit hits %llu", fs.limit_port);
    ctl_out_u64(o, "limit_total_hits", ", table-limit hits %llu\n", fs.limit_total);
    ctl_out_u64(o, "limit", "  limit %llu learned entries", fs.max_entries);
    ctl_out_u64(o, "limit_per_port", ", %llu per port", fs.max_per_port);
    ctl_out_u64(o, "buckets", "; table of %llu buckets\n", fs.buckets);
    ctl_out_close_object(o);
    ctl_out_open_array(o, "ports");
    const struct port_table *t = br->ports;
    for (unsigned i = 0; i < t->n_ports; i++) {
        struct port *p = t->slot[t->list[i]];
        if (!only || only == p)
            print_port(o, p, true);
    }
    ctl_out_close_array(o);
    ctl_out_close_object(o);
    return 0;
}

/* ---- names, for scripts and shell completion (ovs-vsctl list-br habit) ---- */

static int cmd_list_br(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                       void *aux)
{
    (void)argc, (void)argv, (void)err, (void)errlen, (void)aux;
    ctl_out_open_array(o, NULL);
    for (size_t i = 0; i < xbr_bridge_count(); i++)
        ctl_out_str(o, NULL, "%s\n", xbr_bridge_at(i)->name);
    ctl_out_close_array(o);
    return 0;
}

static int cmd_list_ports(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                          void *aux)
{
    (void)aux;
    struct xbr_bridge *only = NULL;
    if (argc == 1 && !(only = xbr_ctl_get_bridge(argv[0], err, errlen)))
        return -ENOENT;
    ctl_out_open_array(o, NULL);
    for (size_t i = 0; i < xbr_bridge_count(); i++) {
        struct xbr_bridge *br = xbr_bridge_at(i);
        const struct port_table *t = br->ports;
        for (unsigned j = 0; (!only || only == br) && j < t->n_ports; j++)
            ctl_out_str(o, NULL, "%s\n", t->slot[t->list[j]]->name);
    }
    ctl_out_close_array(o);
    return 0;
}

/* ---- service: log level, configuration, metrics ---- */

static int cmd_log_level(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                         void *aux)
{
    (void)aux;
    enum xbr_log_level lv;
    if (argc == 1) {
        if (xbr_log_level_parse(argv[0], &lv) < 0)
            return ERR("unknown log level '%s' (err, warn, info, debug)", argv[0]);
        enum xbr_log_level was = xbr_log_get_level();
        /* Said at the more verbose of the two levels, while it still shows. */
        if (lv < was)
            xbr_log(was, "log level %s (was %s)", xbr_log_level_name(lv),
                    xbr_log_level_name(was));
        xbr_log_set_level(lv);
        if (lv >= was)
            xbr_log(lv, "log level %s (was %s)", xbr_log_level_name(lv),
                    xbr_log_level_name(was));
    }
    ctl_out_open_object(o, NULL);
    ctl_out_str(o, "level", "%s\n", xbr_log_level_name(xbr_log_get_level()));
    ctl_out_close_object(o);
    return 0;
}

static int cmd_save(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                    void *aux)
{
    (void)argc, (void)argv, (void)aux;
    if (ctl_out_is_json(o))
        return ERR("save writes the configuration file format, not JSON");
    xbr_cfg_save(o);
    return 0;
}

static int cmd_reload(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                      void *aux)
{
    (void)argc, (void)argv, (void)aux;
    unsigned changes;
    int r = xbr_cfg_reload(false, &changes, err, errlen);
    if (r < 0)
        return r;
    ctl_out_open_object(o, NULL);
    ctl_out_str(o, "file", "%s applied:", xbr_cfg_path());
    ctl_out_u64(o, "changes", " %llu change(s)\n", changes);
    ctl_out_close_object(o);
    return 0;
}

static int cmd_metrics(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                       void *aux)
{
    (void)argc, (void)argv, (void)aux;
    if (ctl_out_is_json(o))
        return ERR("metrics are in the Prometheus text format; -j stats has the JSON");
    xbr_metrics_render(o);
    return 0;
}

static int cmd_help(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                    void *aux)
{
    (void)argc, (void)argv, (void)err, (void)errlen, (void)aux;
    ctl_out_text(o, "commands:\n");
    ctl_print_help(o);
    return 0;
}

static int cmd_version(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                       void *aux)
{
    (void)argc, (void)argv, (void)err, (void)errlen, (void)aux;
    ctl_out_open_object(o, NULL);
    ctl_out_str(o, "version", "xbrd %s\n", XBR_VERSION);
    ctl_out_u64(o, "workers", NULL, xbr_n_workers());
    ctl_out_close_object(o);
    return 0;
}

void xbr_ctl_register_commands(void)
{
    static const struct {
        const char *name;
        int min, max;
        const char *usage;
        ctl_handler_fn *fn;
    } cmds[] = {
        {"help", 0, 0, "", cmd_help},
        {"version", 0, 0, "", cmd_version},
        {"show", 0, 1, "[BR]", cmd_show},
        {"add-br", 1, 1, "BR", cmd_add_br},
        {"del-br", 1, 1, "BR", cmd_del_br},
        {"add-port", 2, 17,
         "BR NAME [--type afpacket|afxdp|tap|vxlan] [--force] [--port-no N] [--vni N --local IP "
         "[--remote IP[,IP...]] [--group MCAST] [--dstport PORT]]",
         cmd_add_port},
        {"del-port", 2, 2, "BR PORT", cmd_del_port},
        {"fdb show", 1, 1, "BR", cmd_fdb_show},
        {"fdb add", 3, 7, "BR MAC PORT [vlan VID] [dst IP]", cmd_fdb_add},
        {"fdb del", 2, 4, "BR MAC [vlan VID]", cmd_fdb_del},
        {"fdb flush", 1, 3, "BR [PORT] [--static]", cmd_fdb_flush},
        {"set-ageing", 2, 2, "BR SECONDS", cmd_set_ageing},
        {"set-fdb-limit", 2, 4, "BR N [--per-port M] | BR --per-port M", cmd_set_fdb_limit},
        {"stats", 1, 2, "BR [PORT]", cmd_stats},
        {"list-br", 0, 0, "", cmd_list_br},
        {"list-ports", 0, 1, "[BR]", cmd_list_ports},
        {"log-level", 0, 1, "[err|warn|info|debug]", cmd_log_level},
        {"save", 0, 0, "[FILE]", cmd_save}, /* xbrctl writes FILE itself */
        {"reload", 0, 0, "", cmd_reload},
        {"metrics", 0, 0, "", cmd_metrics},
    };
    for (size_t i = 0; i < XBR_ARRAY_SIZE(cmds); i++)
        (void)ctl_register(cmds[i].name, cmds[i].min, cmds[i].max, cmds[i].usage, cmds[i].fn,
                           NULL);
}
