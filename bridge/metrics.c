/* Prometheus text exposition of `show`, `stats` and `stp show` (see
 * metrics.h). The handlers print into a visitor; the visitor buffers one
 * entity (a bridge or a port) until its object closes, because some of its
 * labels (the port's type) come after its first numbers, then files each
 * number under its metric family. Families are written at the end, each
 * with its HELP and TYPE and all of its samples together, as the format
 * wants. */
#include "bridge/metrics.h"
#include "bridge/private.h"
#include "ctl/ctl.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum mtype { M_UNTYPED, M_GAUGE, M_COUNTER };
static const char *const mtype_names[] = {"untyped", "gauge", "counter"};

struct sample {
    char *labels; /* {a="b",...} or "" */
    char value[24];
};

struct family {
    char *name;
    char *help;
    enum mtype type;
    struct sample *s;
    size_t n;
};

struct expo {
    struct family *f;
    size_t n;
};

/* Label values: backslash, double quote and newline escaped. */
static void label_append(char *buf, size_t cap, const char *k, const char *v)
{
    size_t len = strlen(buf);
    if (len + 1 >= cap)
        return;
    len += (size_t)snprintf(buf + len, cap - len, "%s%s=\"", len > 1 ? "," : "", k);
    for (const char *c = v; *c && len + 4 < cap; c++) {
        if (*c == '\\' || *c == '"') {
            buf[len++] = '\\';
            buf[len++] = *c;
        } else if (*c == '\n') {
            buf[len++] = '\\';
            buf[len++] = 'n';
        } else {
            buf[len++] = *c;
        }
    }
    if (len + 2 < cap)
        buf[len++] = '"';
    buf[len] = '\0';
}

static void expo_add(struct expo *e, const char *name, enum mtype type, const char *help,
                     const char *labels, const char *value)
{
    struct family *f = NULL;
    for (size_t i = 0; i < e->n && !f; i++)
        if (!strcmp(e->f[i].name, name))
            f = &e->f[i];
    if (!f) {
        e->f = xbr_grow_one(e->f, e->n, sizeof(*e->f));
        f = &e->f[e->n++];
        f->name = xbr_xstrdup(name);
        f->help = xbr_xstrdup(help);
        f->type = type;
    }
    f->s = xbr_grow_one(f->s, f->n, sizeof(*f->s));
    f->s[f->n].labels = xbr_xstrdup(labels);
    snprintf(f->s[f->n].value, sizeof(f->s[f->n].value), "%s", value);
    f->n++;
}

static void expo_write(struct expo *e, struct ctl_out *o)
{
    for (size_t i = 0; i < e->n; i++) {
        struct family *f = &e->f[i];
        ctl_out_text(o, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                     mtype_names[f->type]);
        for (size_t j = 0; j < f->n; j++) {
            ctl_out_text(o, "%s%s %s\n", f->name, f->s[j].labels, f->s[j].value);
            free(f->s[j].labels);
        }
        free(f->s);
        free(f->name);
        free(f->help);
    }
    free(e->f);
    e->f = NULL;
    e->n = 0;
}

/* ---- what each number is ---- */

enum source { SRC_SHOW, SRC_STATS, SRC_STP };
static const char *const source_cmd[] = {"show", "stats", "stp show"};

/* Numbers that are counters (they only grow) and gauges, by their place:
 * "<source>:<entity>:<container>:<key>", where container is the object
 * they sit in ("" at the entity's level, or "*" for any key in it). */
static const char *const counters[] = {
    "stats:port:stats:*",
    "stats:port:netback_stats:*",
    "stats:bridge:fdb:learned",
    "stats:bridge:fdb:moved",
    "stats:bridge:fdb:aged",
    "stats:bridge:fdb:limit_port_hits",
    "stats:bridge:fdb:limit_total_hits",
    "stp:bridge::topology_change_count",
    "stp:port::bpdu_rx",
    "stp:port::bpdu_tx",
    "stp:port::bpdu_rx_dropped",
    "stp:port::bpdu_guard_trips",
    "stp:port::root_guard_trips",
    "stp:port::forwarding_transitions",
    "stp:port:bpdu_rx_drops:*",
    "stats:port::rx_copied",
    "stats:port::tx_kicks",
    "stats:port::tx_ring_full",
    "stats:port::tx_no_frame",
    "stats:port::tx_csum_sw",
    "stats:port::tx_gso_dropped",
    "stats:port::tx_gso_segmented",
    "stats:port:ctrl_ring:requests",
    "stats:port:ctrl_ring:deferred",
    "stats:port:ctrl_ring:failed",
    "stats:port:ctrl_ring:hashed",
    "stats:port:multicast_control:adds",
    "stats:port:multicast_control:dels",
    "stats:port:multicast_control:filtered",
    "stats:port:multicast_control:refused",
    "stats:port:vxlan:rx_truncated",
    "stats:port:vxlan:rx_oversized",
    "stats:port:vxlan:rx_bad_flags",
    "stats:port:vxlan:rx_wrong_vni",
    "stats:port:vxlan:rx_inner_runt",
    "stats:port:vxlan:rx_vtep_limit",
    "stats:port:vxlan:rx_handoff_full",
    "stats:port:vxlan:tx_bad_offload",
    "stats:port:vxlan:tx_gso_segmented",
    "stats:port:vxlan:tx_errors",
    "stats:port:vxlan:vtep_resets",
};
static const char *const gauges[] = {
    "show:bridge::n_ports",
    "show:bridge::ageing",
    "stats:bridge:fdb:entries",
    "stats:bridge:fdb:static",
    "stats:bridge:fdb:limit",
    "stats:bridge:fdb:limit_per_port",
    "stats:bridge:fdb:buckets",
    "stats:port::port_no",
    "stats:port::mtu",
    "stats:port::fdb_entries",
    "stats:port::queues",
    "stats:port::ifindex",
    "stats:port::rx_slots",
    "stats:port::rx_slot_size",
    "stats:port::workers",
    "stats:port:ctrl_ring:hash_flags",
    "stats:port:ctrl_ring:mapping_size",
    "stats:port:multicast_control:addresses",
    "stats:port::guest_domid",
    "stats:port::rate_bytes",
    "stats:port::rate_usec",
    "stats:port:rings:tx_pending",
    "stats:port:rings:rx_posted",
    "stats:port:vxlan:vni",
    "stats:port:vxlan:dstport",
    "stats:port:vxlan:vteps",
    "stats:port:vxlan:vteps_max",
    "stp:bridge::root_path_cost",
    "stp:bridge::max_age",
    "stp:bridge::hello_time",
    "stp:bridge::forward_delay",
    "stp:bridge::tx_hold_count",
    "stp:bridge::bridge_max_age",
    "stp:bridge::bridge_hello_time",
    "stp:bridge::bridge_forward_delay",
    "stp:bridge::time_since_topology_change_ms",
    "stp:port::port_id",
    "stp:port::path_cost",
    "stp:port::designated_port",
    "stp:port::designated_cost",
};

static bool place_in(const char *const *list, size_t n, const char *src, const char *ent,
                     const char *cont, const char *key)
{
    char exact[160], any[160];
    snprintf(exact, sizeof(exact), "%s:%s:%s:%s", src, ent, cont, key);
    snprintf(any, sizeof(any), "%s:%s:%s:*", src, ent, cont);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], exact) || !strcmp(list[i], any))
            return true;
    return false;
}

/* ---- the visitor ---- */

/* One number of the entity being read. */
struct item {
    char cont[32];     /* containing object or array key, "" at entity level */
    char key[40];
    char extra_k[16];  /* an extra label (queue, reason), or "" */
    char extra_v[24];
    bool is_bool;
    char value[24];
};

struct entity {
    bool open;
    int depth;            /* nesting depth of its object */
    struct item *items;
    size_t n;
    char info[1024];      /* string labels, for the *_info metric */
    char name[64];        /* port name / bridge name */
    char type[16];        /* port class */
};

struct walk {
    struct expo *e;
    enum source src;
    char bridge[IF_NAMESIZE];
    int depth;
    char keys[16][32];    /* key of the container at each depth */
    bool arrays[16];
    struct entity port, br;
    int elem_depth;       /* depth of an object inside an array within a port */
    int skip_depth;       /* ignoring everything inside this depth (0: nothing) */
    char elem_k[16], elem_v[24];
};

/* The family of an item, and its type. */
static void family_of(const struct walk *w, const struct entity *en, const struct item *it,
                      char *name, size_t cap, enum mtype *type)
{
    const char *ent = en == &w->port ? "port" : "bridge";
    const char *src = w->src == SRC_SHOW ? "show" : w->src == SRC_STATS ? "stats" : "stp";
    bool core_stats = !strcmp(it->cont, "stats");
    bool netback = !strcmp(en->type, "netback");
    /* Port fields the core prints for every port; the rest is the class's. */
    static const char *const core[] = {"port_no", "mtu", "link_up", "fdb_entries"};
    bool is_core = core_stats;
    for (size_t i = 0; !it->cont[0] && i < XBR_ARRAY_SIZE(core); i++)
        is_core |= !strcmp(it->key, core[i]);

    char prefix[48];
    if (w->src == SRC_STP)
        snprintf(prefix, sizeof(prefix), "xbr_stp_%s", en == &w->port ? "port_" : "");
    else if (en == &w->br)
        snprintf(prefix, sizeof(prefix), "xbr_bridge_");
    else if (is_core)
        snprintf(prefix, sizeof(prefix), "xbr_port_");
    else
        snprintf(prefix, sizeof(prefix), "xbr_%s_", netback ? "vif" : en->type);

    /* Containers: "stats", "netback_stats" and "vxlan" (already the type's
     * prefix) add nothing to the name, the FDB object and arrays (rings ->
     * ring) do. */
    char mid[40] = "";
    if (it->cont[0] && !core_stats && strcmp(it->cont, "netback_stats") &&
        strcmp(it->cont, "vxlan")) {
        size_t l = strlen(it->cont);
        snprintf(mid, sizeof(mid), "%.*s_", (int)(l > 1 && it->cont[l - 1] == 's' &&
                                                  strcmp(it->cont, "bpdu_rx_drops")
                                                      ? l - 1
                                                      : l),
                 it->cont);
    }
    if (it->is_bool)
        *type = M_GAUGE;
    else if (place_in(counters, XBR_ARRAY_SIZE(counters), src, ent, it->cont, it->key))
        *type = M_COUNTER;
    else if (place_in(gauges, XBR_ARRAY_SIZE(gauges), src, ent, it->cont, it->key))
        *type = M_GAUGE;
    else
        *type = M_UNTYPED;
    if (!strcmp(it->cont, "bpdu_rx_drops")) /* one family, the reason as a label */
        snprintf(name, cap, "%sbpdu_rx_drops_by_reason_total", prefix);
    else
        snprintf(name, cap, "%s%s%s%s", prefix, mid, it->key, *type == M_COUNTER ? "_total" : "");
}

static void entity_labels(const struct walk *w, const struct entity *en, char *buf, size_t cap)
{
    buf[0] = '{';
    buf[1] = '\0';
    label_append(buf, cap, "bridge", w->bridge);
    if (en == &w->port) {
        unsigned domid, devid;
        char tail;
        label_append(buf, cap, "port", en->name);
        if (en->type[0])
            label_append(buf, cap, "type", en->type);
        if (!strcmp(en->type, "netback") &&
            sscanf(en->name, "vif%u.%u%c", &domid, &devid, &tail) == 2) {
            char d[16];
            snprintf(d, sizeof(d), "%u", domid);
            label_append(buf, cap, "domid", d);
            snprintf(d, sizeof(d), "%u", devid);
            label_append(buf, cap, "devid", d);
        }
    }
}

static void entity_flush(struct walk *w, struct entity *en)
{
    char base[512], labels[1600], name[128], help[256];
    entity_labels(w, en, base, sizeof(base));
    for (size_t i = 0; i < en->n; i++) {
        const struct item *it = &en->items[i];
        enum mtype type;
        family_of(w, en, it, name, sizeof(name), &type);
        snprintf(labels, sizeof(labels), "%s", base);
        if (it->extra_k[0])
            label_append(labels, sizeof(labels), it->extra_k, it->extra_v);
        snprintf(labels + strlen(labels), sizeof(labels) - strlen(labels), "}");
        snprintf(help, sizeof(help), "xbrctl %s: %s%s%s%s", source_cmd[w->src],
                 en == &w->port ? "ports[]." : "", it->cont, it->cont[0] ? "." : "", it->key);
        expo_add(w->e, name, type, help, labels, it->value);
    }
    if (en->info[0]) {
        snprintf(labels, sizeof(labels), "%s%s}", base, en->info);
        const char *ent = en == &w->port ? "port" : "bridge";
        if (w->src == SRC_STP)
            snprintf(name, sizeof(name), "xbr_stp_%sinfo", en == &w->port ? "port_" : "");
        else
            snprintf(name, sizeof(name), "xbr_%s_info", ent);
        snprintf(help, sizeof(help), "xbrctl %s: the %s's text fields as labels",
                 source_cmd[w->src], ent);
        expo_add(w->e, name, M_GAUGE, help, labels, "1");
    }
    free(en->items);
    memset(en, 0, sizeof(*en));
}

static void add_item(struct walk *w, const char *key, const char *value, bool is_bool)
{
    struct entity *en = w->port.open ? &w->port : &w->br;
    if (!en->open || !key)
        return;
    /* Inside the port's own array elements (netback rings), the element's
     * first number labels the rest. */
    bool in_elem = w->port.open && w->elem_depth && w->depth == w->elem_depth;
    if (in_elem && !w->elem_k[0]) {
        snprintf(w->elem_k, sizeof(w->elem_k), "%s", key);
        snprintf(w->elem_v, sizeof(w->elem_v), "%s", value);
        return;
    }
    en->items = xbr_grow_one(en->items, en->n, sizeof(*en->items));
    struct item *it = &en->items[en->n++];
    int cd = in_elem ? w->depth - 1 : w->depth;
    if (cd > en->depth)
        snprintf(it->cont, sizeof(it->cont), "%s", w->keys[cd]);
    snprintf(it->key, sizeof(it->key), "%s", key);
    if (in_elem) {
        snprintf(it->extra_k, sizeof(it->extra_k), "%s", w->elem_k);
        snprintf(it->extra_v, sizeof(it->extra_v), "%s", w->elem_v);
    } else if (!strcmp(it->cont, "bpdu_rx_drops")) {
        snprintf(it->extra_k, sizeof(it->extra_k), "reason");
        snprintf(it->extra_v, sizeof(it->extra_v), "%s", key);
    }
    it->is_bool = is_bool;
    snprintf(it->value, sizeof(it->value), "%s", value);
}

static void on_visit(const struct ctl_visit *v, void *aux)
{
    struct walk *w = aux;
    char num[24];
    if (w->skip_depth) {
        if (v->kind == CTL_VISIT_OPEN_OBJECT || v->kind == CTL_VISIT_OPEN_ARRAY)
            w->depth++;
        else if (v->kind == CTL_VISIT_CLOSE_OBJECT || v->kind == CTL_VISIT_CLOSE_ARRAY) {
            if (w->depth-- == w->skip_depth)
                w->skip_depth = 0;
        }
        return;
    }
    switch (v->kind) {
    case CTL_VISIT_OPEN_OBJECT:
    case CTL_VISIT_OPEN_ARRAY:
        if (w->depth + 1 >= (int)XBR_ARRAY_SIZE(w->keys))
            return;
        w->depth++;
        snprintf(w->keys[w->depth], sizeof(w->keys[0]), "%s", v->key ? v->key : "");
        w->arrays[w->depth] = v->kind == CTL_VISIT_OPEN_ARRAY;
        if (v->kind != CTL_VISIT_OPEN_OBJECT)
            return;
        if (!w->br.open && !w->port.open) {
            /* The bridge: the top object (show: an element of the top array). */
            w->br.open = true;
            w->br.depth = w->depth;
        } else if (w->br.open && !w->port.open && w->arrays[w->depth - 1] &&
                   !strcmp(w->keys[w->depth - 1], "ports")) {
            if (w->src == SRC_SHOW) {
                /* show's ports are stats' ports with fewer counters (the
                 * same printer): they come from stats. */
                w->skip_depth = w->depth;
                return;
            }
            w->port.open = true;
            w->port.depth = w->depth;
        } else if (w->port.open && w->arrays[w->depth - 1]) {
            w->elem_depth = w->depth;
            w->elem_k[0] = '\0';
        }
        return;
    case CTL_VISIT_CLOSE_OBJECT:
    case CTL_VISIT_CLOSE_ARRAY:
        if (w->port.open && w->depth == w->port.depth)
            entity_flush(w, &w->port);
        else if (w->br.open && w->depth == w->br.depth)
            entity_flush(w, &w->br);
        else if (w->elem_depth == w->depth)
            w->elem_depth = 0;
        if (w->depth > 0)
            w->depth--;
        return;
    case CTL_VISIT_STR: {
        struct entity *en = w->port.open ? &w->port : &w->br;
        if (!en->open || !v->key)
            return;
        bool at_entity = w->depth == en->depth;
        if (at_entity && (!strcmp(v->key, "name") || !strcmp(v->key, "bridge"))) {
            if (en == &w->br)
                return; /* the bridge label is known already */
            snprintf(en->name, sizeof(en->name), "%s", v->str);
        } else if (at_entity && !strcmp(v->key, "type") && en == &w->port) {
            snprintf(en->type, sizeof(en->type), "%s", v->str);
        } else {
            label_append(en->info, sizeof(en->info), v->key, v->str);
            /* label_append starts with a comma only after the first; the
             * info labels always follow the entity's labels. */
            if (en->info[0] != ',') {
                memmove(en->info + 1, en->info, strlen(en->info) + 1);
                en->info[0] = ',';
            }
        }
        return;
    }
    case CTL_VISIT_NULL:
        return; /* absent (no root port, no topology change yet) */
    case CTL_VISIT_U64:
        /* show's bridge fdb_entries and limits are stats' fdb.entries and
         * fdb.limit*: one series each. */
        if (w->src == SRC_SHOW && v->key &&
            (!strcmp(v->key, "fdb_entries") || !strcmp(v->key, "fdb_limit") ||
             !strcmp(v->key, "fdb_limit_per_port")))
            return;
        snprintf(num, sizeof(num), "%llu", (unsigned long long)v->u64);
        add_item(w, v->key, num, false);
        return;
    case CTL_VISIT_I64:
        snprintf(num, sizeof(num), "%lld", (long long)v->i64);
        add_item(w, v->key, num, false);
        return;
    case CTL_VISIT_BOOL:
        add_item(w, v->key, v->u64 ? "1" : "0", true);
        return;
    }
}

static void walk_command(struct expo *e, enum source src, const char *bridge)
{
    char err[256], *argv[3];
    int argc = 0;
    char c1[16], c2[16], br[IF_NAMESIZE];
    snprintf(br, sizeof(br), "%s", bridge);
    if (src == SRC_STP) {
        snprintf(c1, sizeof(c1), "stp");
        snprintf(c2, sizeof(c2), "show");
        argv[argc++] = c1;
        argv[argc++] = c2;
    } else {
        snprintf(c1, sizeof(c1), "%s", source_cmd[src]);
        argv[argc++] = c1;
    }
    argv[argc++] = br;
    struct walk w = {.e = e, .src = src};
    snprintf(w.bridge, sizeof(w.bridge), "%s", bridge);
    struct ctl_out *o = ctl_out_new_visitor(on_visit, &w);
    if (ctl_dispatch(argc, argv, CTL_F_JSON, o, err, sizeof(err)) < 0)
        xbr_debug("metrics: %s %s: %s", source_cmd[src], bridge, err);
    ctl_out_free(o);
    free(w.port.items);
    free(w.br.items);
}

void xbr_metrics_render(struct ctl_out *o)
{
    struct expo e = {0};
    char v[32], labels[64];
    snprintf(labels, sizeof(labels), "{version=\"%s\"}", XBR_VERSION);
    expo_add(&e, "xbr_build_info", M_GAUGE, "xbrd's version", labels, "1");
    snprintf(v, sizeof(v), "%u", xbr_n_workers());
    expo_add(&e, "xbr_workers", M_GAUGE, "poll-mode worker threads", "", v);
    snprintf(v, sizeof(v), "%lld", (long long)time(NULL));
    expo_add(&e, "xbr_metrics_timestamp_seconds", M_GAUGE,
             "when xbrd rendered these metrics (Unix time): stale after a crash", "", v);
    for (size_t i = 0; i < xbr_bridge_count(); i++) {
        const char *name = xbr_bridge_at(i)->name;
        walk_command(&e, SRC_SHOW, name);
        walk_command(&e, SRC_STATS, name);
        walk_command(&e, SRC_STP, name);
    }
    expo_write(&e, o);
}

/* ---- the textfile ---- */

static char *mpath;
static int mtfd = -1;

static int write_file(char *err, size_t errlen)
{
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", mpath) >= sizeof(tmp)) {
        snprintf(err, errlen, "metrics file name too long");
        return -ENAMETOOLONG;
    }
    struct ctl_out *o = ctl_out_new(false);
    xbr_metrics_render(o);
    size_t len;
    const char *d = ctl_out_data(o, &len);
    /* A fresh file of our own (O_EXCL underneath), never one somebody left
     * there for us to follow or truncate; then readable by node_exporter. */
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd >= 0 && fchmod(fd, 0644) < 0) {
        (void)close(fd);
        (void)unlink(tmp);
        fd = -1;
    }
    int r = 0;
    if (fd < 0) {
        r = -errno;
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
    } else {
        size_t off = 0;
        while (off < len) {
            ssize_t n = write(fd, d + off, len - off);
            if (n < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
                break;
            }
            off += (size_t)n;
        }
        if (close(fd) < 0 && !r) {
            r = -errno;
            snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        }
        /* node_exporter must never read half a file: rename is atomic. */
        if (!r && rename(tmp, mpath) < 0) {
            r = -errno;
            snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, mpath, strerror(errno));
        }
        if (r)
            (void)unlink(tmp);
    }
    ctl_out_free(o);
    return r;
}

static void on_metrics_tick(int fd, uint32_t events, void *aux)
{
    (void)events, (void)aux;
    uint64_t exp;
    static bool failing;
    char err[512];
    if (read(fd, &exp, sizeof(exp)) != sizeof(exp))
        return;
    int r = write_file(err, sizeof(err));
    if (r < 0 && !failing)
        xbr_warn("metrics: %s (retrying every interval)", err);
    else if (r == 0 && failing)
        xbr_info("metrics: %s written again", mpath);
    failing = r < 0;
}

int xbr_metrics_start(const char *path, unsigned interval_s, char *err, size_t errlen)
{
    mpath = xbr_xstrdup(path);
    int r = write_file(err, errlen);
    if (r < 0) {
        free(mpath);
        mpath = NULL;
        return r;
    }
    mtfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = {.it_interval = {interval_s, 0}, .it_value = {interval_s, 0}};
    if (mtfd < 0 || timerfd_settime(mtfd, 0, &its, NULL) < 0 ||
        xbr_loop_add_fd(mtfd, EPOLLIN, on_metrics_tick, NULL) < 0) {
        snprintf(err, errlen, "metrics timer: %s", strerror(errno));
        xbr_metrics_stop();
        return -EIO;
    }
    xbr_info("metrics: %s every %u s", path, interval_s);
    return 0;
}

void xbr_metrics_stop(void)
{
    if (mtfd >= 0) {
        xbr_loop_del_fd(mtfd);
        close(mtfd);
        mtfd = -1;
    }
    if (mpath) {
        (void)unlink(mpath); /* no stale numbers for node_exporter to serve */
        free(mpath);
        mpath = NULL;
    }
}
