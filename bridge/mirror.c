/* Port mirroring (SPAN), as Open vSwitch's mirrors do it.
 *
 * A mirror of a bridge names source ports, a direction and one output
 * port. Every frame a source port receives (in) or that the bridge sends
 * on it (out) is also sent on the output port, once per mirror, whatever
 * else happens to it. The output port is reserved for the mirror: normal
 * forwarding never sends to it (no flooding, no unicast) and what arrives
 * on it is discarded (counted as rx_drop_mirror), so nothing is learned
 * there either (OVS: "No frames other than those selected for mirroring
 * ... will be forwarded to the port, and any frames received on the port
 * will be discarded").
 *
 * Ports are named, not numbered: a mirror outlives its ports (a guest's vif
 * that comes back, a port that is added later) and applies to whichever of
 * them are there. The control thread turns the named mirrors into a table
 * by port number for the workers (struct mirror_set, RCU), again whenever
 * a port of the bridge comes or goes. Mirrored ports stay out of the
 * kernel fast path, which would forward some of their frames unseen. */
#include "bridge/private.h"
#include "ctl/ctl.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-qsbr.h>


/* A bridge's mirrors as configured (control thread only). */
struct mirror_conf {
    unsigned n;
    struct mirror_spec m[XBR_MAX_MIRRORS];
};

static struct mirror_spec *conf_find(struct xbr_bridge *br, const char *name)
{
    for (unsigned i = 0; br->mirror_conf && i < br->mirror_conf->n; i++)
        if (!strcmp(br->mirror_conf->m[i].name, name))
            return &br->mirror_conf->m[i];
    return NULL;
}

static bool spec_has_src(const struct mirror_spec *m, const char *port)
{
    for (unsigned i = 0; i < m->n_src; i++)
        if (!strcmp(m->src[i], port))
            return true;
    return false;
}

/* Is p a source or the output of some mirror of its bridge? */
static bool port_mirrored(const struct port *p)
{
    const struct mirror_conf *c = p->bridge->mirror_conf;
    for (unsigned i = 0; c && i < c->n; i++)
        if (!strcmp(c->m[i].dst, p->name) || spec_has_src(&c->m[i], p->name))
            return true;
    return false;
}

void xbr_mirror_ports_changed(struct xbr_bridge *br, const struct port_table *t,
                              struct port *gone)
{
    const struct mirror_conf *c = br->mirror_conf;
    struct mirror_set *n = NULL;

    if (!c && !br->mirrors)
        return; /* never had a mirror: nothing to redo */
    if (c && c->n) {
        n = xbr_xzalloc(sizeof(*n));
        for (unsigned i = 0; i < c->n; i++) {
            const struct mirror_spec *m = &c->m[i];
            struct port *dst = xbr_port_table_find(t, m->dst);
            if (!dst || dst == gone)
                continue; /* without its output, the mirror does nothing */
            unsigned bit = n->n++;
            n->dst_no[bit] = dst->no;
            n->is_dst[dst->no] = 1;
            for (unsigned s = 0; s < m->n_src; s++) {
                struct port *sp = xbr_port_table_find(t, m->src[s]);
                if (!sp || sp == gone)
                    continue;
                if (m->dir & XBR_CAP_IN)
                    n->in_mask[sp->no] |= 1u << bit;
                if (m->dir & XBR_CAP_OUT)
                    n->out_mask[sp->no] |= 1u << bit;
            }
        }
    }
    struct mirror_set *old = br->mirrors;
    rcu_assign_pointer(br->mirrors, n);
    urcu_qsbr_synchronize_rcu();
    free(old);

    /* The fast path lets go of mirrored ports, and takes them back after. */
    for (unsigned i = 0; i < t->n_ports; i++) {
        struct port *p = t->slot[t->list[i]];
        bool want = p != gone && port_mirrored(p);
        if (want == p->mirror_held)
            continue;
        p->mirror_held = want;
        xbr_fastpath_port_hold(p, want);
    }
}

void xbr_mirror_bridge_free(struct xbr_bridge *br)
{
    free(br->mirrors);
    br->mirrors = NULL;
    free(br->mirror_conf);
    br->mirror_conf = NULL;
}

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

static int parse_ports(const char *list, struct mirror_spec *m, char *err, size_t errlen)
{
    const char *s = list;
    m->n_src = 0;
    while (*s) {
        size_t len = strcspn(s, ",");
        if (!len || len >= IF_NAMESIZE)
            return ERR("invalid port name in '%s'", list);
        if (m->n_src == XBR_MIRROR_SRC_MAX)
            return ERR("a mirror has at most %u source ports", XBR_MIRROR_SRC_MAX);
        memcpy(m->src[m->n_src], s, len);
        m->src[m->n_src][len] = '\0';
        for (unsigned i = 0; i < m->n_src; i++)
            if (!strcmp(m->src[i], m->src[m->n_src]))
                return ERR("source port %s named twice", m->src[i]);
        m->n_src++;
        s += len;
        if (*s == ',' && !*++s)
            return ERR("invalid port list '%s'", list);
    }
    if (!m->n_src)
        return ERR("no source port given (--src PORT[,PORT...])");
    return 0;
}

/* NAME --src P[,P...] [--direction in|out|both] --dst P */
int xbr_mirror_parse(int argc, char **argv, struct mirror_spec *m, char *err, size_t errlen)
{
    *m = (struct mirror_spec){.dir = XBR_CAP_IN | XBR_CAP_OUT};
    if (argc < 1)
        return ERR("no mirror name given");
    const char *name = argv[0];
    size_t nlen = strlen(name);
    if (!nlen || nlen >= XBR_MIRROR_NAME_MAX || strspn(name, "abcdefghijklmnopqrstuvwxyz"
                                                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                             "0123456789_.-") != nlen)
        return ERR("invalid mirror name '%s' (1-%d of A-Z a-z 0-9 _ . -)", name,
                   XBR_MIRROR_NAME_MAX - 1);
    memcpy(m->name, name, nlen + 1);
    bool have_src = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            return ERR("option '%s' needs a value", a);
        const char *v = argv[++i];
        int r;
        if (!strcmp(a, "--src")) {
            if ((r = parse_ports(v, m, err, errlen)) < 0)
                return r;
            have_src = true;
        } else if (!strcmp(a, "--dst")) {
            if (!v[0] || strlen(v) >= IF_NAMESIZE)
                return ERR("invalid port name '%s'", v);
            snprintf(m->dst, sizeof(m->dst), "%s", v);
        } else if (!strcmp(a, "--direction")) {
            if (xbr_dir_parse(v, &m->dir) < 0)
                return ERR("invalid direction '%s' (in, out or both)", v);
        } else {
            return ERR("unknown option '%s' (mirror add BR NAME --src PORT[,PORT...] "
                       "[--direction in|out|both] --dst PORT)",
                       a);
        }
    }
    if (!have_src)
        return ERR("no source port given (--src PORT[,PORT...])");
    if (!m->dst[0])
        return ERR("no output port given (--dst PORT)");
    if (spec_has_src(m, m->dst))
        return ERR("%s cannot be both a source and the output of mirror %s", m->dst, m->name);
    return 0;
}

void xbr_mirror_format(const struct mirror_spec *m, char *buf, size_t len)
{
    size_t off = (size_t)snprintf(buf, len, "--src ");
    for (unsigned i = 0; i < m->n_src && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "", m->src[i]);
    if (off < len)
        snprintf(buf + off, len - off, " --direction %s --dst %s", xbr_dir_name(m->dir),
                 m->dst);
}

int xbr_mirror_describe(struct xbr_bridge *br, const char *name, char *buf, size_t len)
{
    const struct mirror_spec *m = conf_find(br, name);
    if (!m)
        return -ENOENT;
    xbr_mirror_format(m, buf, len);
    return 0;
}

unsigned xbr_mirror_count(const struct xbr_bridge *br)
{
    return br->mirror_conf ? br->mirror_conf->n : 0;
}

const char *xbr_mirror_name(const struct xbr_bridge *br, unsigned i)
{
    return br->mirror_conf->m[i].name;
}

/* Refuses what would make a port's role ambiguous: the output of two
 * mirrors, or a source of one and the output of another. */
static int check_roles(struct xbr_bridge *br, const struct mirror_spec *m, char *err,
                       size_t errlen)
{
    for (unsigned i = 0; br->mirror_conf && i < br->mirror_conf->n; i++) {
        const struct mirror_spec *o = &br->mirror_conf->m[i];
        if (!strcmp(o->dst, m->dst)) {
            snprintf(err, errlen, "%s is already the output of mirror %s", m->dst, o->name);
            return -EBUSY;
        }
        if (spec_has_src(o, m->dst)) {
            snprintf(err, errlen, "%s is a source of mirror %s, it cannot be an output",
                     m->dst, o->name);
            return -EBUSY;
        }
        for (unsigned s = 0; s < m->n_src; s++)
            if (!strcmp(o->dst, m->src[s])) {
                snprintf(err, errlen, "%s is the output of mirror %s, it cannot be a source",
                         m->src[s], o->name);
                return -EBUSY;
            }
    }
    return 0;
}

static int cmd_mirror_add(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                          void *aux)
{
    (void)o, (void)aux;
    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    struct mirror_spec m;
    int r = xbr_mirror_parse(argc - 1, argv + 1, &m, err, errlen);
    if (r < 0)
        return r;
    if (conf_find(br, m.name)) {
        snprintf(err, errlen, "bridge %s has a mirror named %s already", br->name, m.name);
        return -EEXIST;
    }
    if (xbr_mirror_count(br) == XBR_MAX_MIRRORS) {
        snprintf(err, errlen, "bridge %s has the maximum of %d mirrors", br->name,
                 XBR_MAX_MIRRORS);
        return -ENOSPC;
    }
    if ((r = check_roles(br, &m, err, errlen)) < 0)
        return r;
    if (!br->mirror_conf)
        br->mirror_conf = xbr_xzalloc(sizeof(*br->mirror_conf));
    br->mirror_conf->m[br->mirror_conf->n++] = m;
    xbr_mirror_ports_changed(br, br->ports, NULL);
    char desc[1024];
    xbr_mirror_format(&m, desc, sizeof(desc));
    xbr_info("%s: mirror %s added (%s)", br->name, m.name, desc);
    return 0;
}

static int cmd_mirror_del(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                          void *aux)
{
    (void)argc, (void)o, (void)aux;
    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    struct mirror_spec *m = conf_find(br, argv[1]);
    if (!m) {
        snprintf(err, errlen, "bridge %s has no mirror named %s", br->name, argv[1]);
        return -ENOENT;
    }
    struct mirror_conf *c = br->mirror_conf;
    size_t i = (size_t)(m - c->m);
    memmove(&c->m[i], &c->m[i + 1], (c->n - i - 1) * sizeof(c->m[0]));
    c->n--;
    xbr_mirror_ports_changed(br, br->ports, NULL);
    xbr_info("%s: mirror %s deleted", br->name, argv[1]);
    return 0;
}

static void show_bridge(struct xbr_bridge *br, struct ctl_out *o)
{
    for (unsigned i = 0; i < xbr_mirror_count(br); i++) {
        const struct mirror_spec *m = &br->mirror_conf->m[i];
        struct port *dst = xbr_port_find(br, m->dst);
        ctl_out_open_object(o, NULL);
        ctl_out_str(o, "bridge", "%s", br->name);
        ctl_out_str(o, "name", " mirror %s:", m->name);
        ctl_out_str(o, "direction", " direction %s", xbr_dir_name(m->dir));
        ctl_out_open_array(o, "src");
        ctl_out_text(o, " src");
        for (unsigned s = 0; s < m->n_src; s++)
            ctl_out_str(o, NULL, s ? ",%s" : " %s", m->src[s]);
        ctl_out_close_array(o);
        ctl_out_str(o, "dst", " dst %s", m->dst);
        /* Active: its output is a port of the bridge now. */
        ctl_out_bool(o, "active", " active %s", dst != NULL);
        struct port_stats st = {0};
        if (dst)
            xbr_port_get_stats(dst, &st);
        ctl_out_u64(o, "dst_tx_packets", " dst-tx %llu\n", st.tx_packets);
        ctl_out_close_object(o);
    }
}

static int cmd_mirror_show(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                           void *aux)
{
    (void)aux;
    struct xbr_bridge *only = NULL;
    if (argc == 1 && !(only = xbr_ctl_get_bridge(argv[0], err, errlen)))
        return -ENOENT;
    ctl_out_open_array(o, NULL);
    for (size_t i = 0; i < xbr_bridge_count(); i++) {
        struct xbr_bridge *br = xbr_bridge_at(i);
        if (!only || br == only)
            show_bridge(br, o);
    }
    ctl_out_close_array(o);
    return 0;
}

void xbr_mirror_register_commands(void)
{
    (void)ctl_register("mirror add", 4, 8,
                       "BR NAME --src PORT[,PORT...] [--direction in|out|both] --dst PORT",
                       cmd_mirror_add, NULL);
    (void)ctl_register("mirror del", 2, 2, "BR NAME", cmd_mirror_del, NULL);
    (void)ctl_register("mirror show", 0, 1, "[BR]", cmd_mirror_show, NULL);
}
