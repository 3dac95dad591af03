/* The configuration file: parsing into a desired state, the three-way apply
 * and `save` (see config.h for the semantics). */
#include "bridge/config.h"
#include "bridge/private.h"
#include "ctl/ctl.h"
#include "stp/stp.h"
#include "util/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 24
#define VAL_MAX 24
#define TYPE_MAX 16

struct cfg_kv {
    char key[KEY_MAX];
    char value[VAL_MAX]; /* canonical form: decimal, yes/no, auto, stp/rstp */
    unsigned line;
};

struct cfg_port {
    char name[IF_NAMESIZE];
    char type[TYPE_MAX];
    bool force;
    int port_no; /* -1: any */
    unsigned line;
    struct cfg_kv *kv;
    size_t n_kv;
    struct xbr_vxlan_config *vx; /* vxlan ports: their settings */
    char *vlan;          /* "port set BR PORT vlan ...", canonical; NULL: not in the file */
    unsigned vlan_line;
};

struct cfg_fdb {
    uint8_t mac[6];
    uint16_t vlan;
    char port[IF_NAMESIZE];
    unsigned line;
    bool has_dst; /* dst IP: the VTEP behind a vxlan port */
    struct in6_addr dst;
};

struct cfg_mirror {
    struct mirror_spec spec;
    unsigned line;
};

struct cfg_bridge {
    char name[IF_NAMESIZE];
    unsigned line;
    struct cfg_mirror *mirrors;
    size_t n_mirrors;
    struct cfg_kv *kv; /* "ageing" (set-ageing) and the stp keys */
    size_t n_kv;
    struct cfg_port *ports;
    size_t n_ports;
    struct cfg_fdb *fdb;
    size_t n_fdb;
};

struct xbr_cfg {
    struct cfg_bridge *br;
    size_t n_br;
    int vif_antispoof; /* "vif antispoof on|off": 1, 0; -1 not in the file */
    unsigned vif_antispoof_line;
};

static char *cfg_path;
static struct xbr_cfg *applied; /* the file applied last */
static bool vif_antispoof_live; /* netback's setting, as it last told us (save) */
static char (*forced)[IF_NAMESIZE]; /* ports added with --force */
static size_t n_forced;

static const char *const bridge_keys[] = {
    /* in the order save writes them */
    "ageing", "fastpath", "fdb-limit", "fdb-limit-per-port", "enabled", "priority",
    "forward-delay", "max-age", "hello-time", "force-version", "tx-hold-count",
};
static const char *const port_keys[] = {
    "priority", "path-cost", "admin-edge", "auto-edge", "point-to-point",
    "bpdu-guard", "root-guard", "bpdu-filter",
};

void xbr_cfg_set_path(const char *path)
{
    free(cfg_path);
    cfg_path = path ? xbr_xstrdup(path) : NULL;
}

const char *xbr_cfg_path(void) { return cfg_path; }

static void cfg_free(struct xbr_cfg *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_br; i++) {
        for (size_t j = 0; j < c->br[i].n_ports; j++) {
            free(c->br[i].ports[j].kv);
            free(c->br[i].ports[j].vlan);
            free(c->br[i].ports[j].vx);
        }
        free(c->br[i].ports);
        free(c->br[i].kv);
        free(c->br[i].fdb);
        free(c->br[i].mirrors);
    }
    free(c->br);
    free(c);
}

void xbr_cfg_fini(void)
{
    cfg_free(applied);
    applied = NULL;
    xbr_cfg_set_path(NULL);
    free(forced);
    forced = NULL;
    n_forced = 0;
}

void xbr_cfg_note_port(const char *name, unsigned flags)
{
    size_t i = 0;
    while (i < n_forced && strcmp(forced[i], name))
        i++;
    if (flags & XBR_PORT_F_FORCE) {
        if (i == n_forced) {
            forced = xbr_grow_one(forced, n_forced, sizeof(*forced));
            (void)xbr_strlcpy(forced[n_forced++], name, IF_NAMESIZE);
        }
    } else if (i < n_forced) {
        memmove(&forced[i], &forced[i + 1], (n_forced - i - 1) * sizeof(*forced));
        n_forced--;
    }
}

static bool was_forced(const char *name)
{
    for (size_t i = 0; i < n_forced; i++)
        if (!strcmp(forced[i], name))
            return true;
    return false;
}

/* ---- canonical values ---- */

static int canon_bool(const char *v, char out[VAL_MAX])
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < XBR_ARRAY_SIZE(yes); i++) {
        if (!strcmp(v, yes[i]))
            return snprintf(out, VAL_MAX, "yes"), 0;
        if (!strcmp(v, no[i]))
            return snprintf(out, VAL_MAX, "no"), 0;
    }
    return -EINVAL;
}

static int canon_uint(const char *v, uint64_t max, char out[VAL_MAX])
{
    uint64_t n;
    if (xbr_parse_uint(v, 0, max, &n) < 0)
        return -EINVAL;
    snprintf(out, VAL_MAX, "%llu", (unsigned long long)n);
    return 0;
}

/* Bridge key and value as the file has them -> canonical. The range checks
 * are the command handlers' (at apply time). */
static int canon_bridge(const char *key, const char *v, char out[VAL_MAX])
{
    if (!strcmp(key, "enabled"))
        return canon_bool(v, out);
    if (!strcmp(key, "force-version")) {
        if (strcmp(v, "stp") && strcmp(v, "rstp"))
            return -EINVAL;
        snprintf(out, VAL_MAX, "%s", v);
        return 0;
    }
    for (size_t i = 0; i < XBR_ARRAY_SIZE(bridge_keys); i++)
        if (!strcmp(key, bridge_keys[i]))
            return canon_uint(v, UINT32_MAX, out);
    return -ENOENT;
}

static int canon_port(const char *key, const char *v, char out[VAL_MAX])
{
    if (!strcmp(key, "priority"))
        return canon_uint(v, UINT32_MAX, out);
    if (!strcmp(key, "path-cost")) {
        if (!strcmp(v, "auto") || !strcmp(v, "0"))
            return snprintf(out, VAL_MAX, "auto"), 0;
        return canon_uint(v, UINT32_MAX, out);
    }
    if (!strcmp(key, "point-to-point")) {
        if (!strcmp(v, "auto"))
            return snprintf(out, VAL_MAX, "auto"), 0;
        return canon_bool(v, out);
    }
    for (size_t i = 0; i < XBR_ARRAY_SIZE(port_keys); i++)
        if (!strcmp(key, port_keys[i]))
            return canon_bool(v, out);
    return -ENOENT;
}

/* ---- parsing ---- */

static struct cfg_bridge *cfg_bridge(const struct xbr_cfg *c, const char *name)
{
    for (size_t i = 0; i < c->n_br; i++)
        if (!strcmp(c->br[i].name, name))
            return &c->br[i];
    return NULL;
}

static struct cfg_port *cfg_port(const struct cfg_bridge *b, const char *name)
{
    for (size_t i = 0; b && i < b->n_ports; i++)
        if (!strcmp(b->ports[i].name, name))
            return &b->ports[i];
    return NULL;
}

static struct cfg_port *cfg_port_any(const struct xbr_cfg *c, const char *name,
                                     struct cfg_bridge **in)
{
    for (size_t i = 0; c && i < c->n_br; i++) {
        struct cfg_port *p = cfg_port(&c->br[i], name);
        if (p) {
            if (in)
                *in = &c->br[i];
            return p;
        }
    }
    return NULL;
}

static const struct cfg_kv *kv_find(const struct cfg_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(kv[i].key, key))
            return &kv[i];
    return NULL;
}

static struct cfg_kv *kv_find_mut(struct cfg_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(kv[i].key, key))
            return &kv[i];
    return NULL;
}

static void kv_set(struct cfg_kv **kv, size_t *n, const char *key, const char *value,
                   unsigned line)
{
    struct cfg_kv *e = kv_find_mut(*kv, *n, key);
    if (!e) {
        *kv = xbr_grow_one(*kv, *n, sizeof(**kv));
        e = &(*kv)[(*n)++];
        snprintf(e->key, sizeof(e->key), "%s", key);
    }
    snprintf(e->value, sizeof(e->value), "%s", value);
    e->line = line;
}

#define PERR(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

static int check_name(const char *what, const char *name, char *err, size_t errlen)
{
    if (!name[0] || strlen(name) >= IF_NAMESIZE || strchr(name, '/'))
        return PERR("invalid %s name '%s'", what, name);
    return 0;
}

static int need_bridge(struct xbr_cfg *c, const char *name, struct cfg_bridge **b, char *err,
                       size_t errlen)
{
    *b = cfg_bridge(c, name);
    if (!*b)
        return PERR("bridge %s is not declared (add-br %s comes first)", name, name);
    return 0;
}

/* The declared port PORT of bridge BR, for `port set BR PORT ...`. */
static int need_port(struct xbr_cfg *c, const char *br, const char *port, struct cfg_port **p,
                     char *err, size_t errlen)
{
    struct cfg_bridge *b;
    int r = need_bridge(c, br, &b, err, errlen);
    if (r < 0)
        return r;
    *p = cfg_port(b, port);
    if (!*p)
        return PERR("port %s of bridge %s is not declared (add-port %s %s comes first)", port, br,
                    br, port);
    return 0;
}

/* One statement (argv[0..argc)) into c. */
static int parse_statement(struct xbr_cfg *c, int argc, char **argv, unsigned line, char *err,
                           size_t errlen)
{
    struct cfg_bridge *b;
    char val[VAL_MAX];
    int r;
    const char *cmd = argv[0];

    if (!strcmp(cmd, "add-br")) {
        if (argc != 2)
            return PERR("usage: add-br BR");
        if ((r = check_name("bridge", argv[1], err, errlen)) < 0)
            return r;
        if ((b = cfg_bridge(c, argv[1])))
            return PERR("bridge %s is already declared at line %u", argv[1], b->line);
        c->br = xbr_grow_one(c->br, c->n_br, sizeof(*c->br));
        b = &c->br[c->n_br++];
        snprintf(b->name, sizeof(b->name), "%s", argv[1]);
        b->line = line;
        return 0;
    }
    if (!strcmp(cmd, "add-port")) {
        if (argc < 3)
            return PERR("usage: add-port BR NAME [--type afpacket|afxdp|tap] [--force] [--port-no N]");
        if ((r = need_bridge(c, argv[1], &b, err, errlen)) < 0)
            return r;
        if ((r = check_name("port", argv[2], err, errlen)) < 0)
            return r;
        struct cfg_bridge *other;
        struct cfg_port *dup = cfg_port_any(c, argv[2], &other);
        if (dup)
            return PERR("port %s is already declared at line %u (bridge %s)", argv[2], dup->line,
                        other->name);
        struct cfg_port p = {.port_no = -1, .line = line};
        snprintf(p.name, sizeof(p.name), "%s", argv[2]);
        snprintf(p.type, sizeof(p.type), "afpacket");
        char *vx_argv[16];
        int vx_argc = 0;
        for (int i = 3; i < argc; i++) {
            uint64_t no;
            if ((!strcmp(argv[i], "--vni") || !strcmp(argv[i], "--local") ||
                 !strcmp(argv[i], "--remote") || !strcmp(argv[i], "--group") ||
                 !strcmp(argv[i], "--dstport")) &&
                i + 1 < argc && vx_argc + 2 <= (int)XBR_ARRAY_SIZE(vx_argv)) {
                vx_argv[vx_argc++] = argv[i];
                vx_argv[vx_argc++] = argv[++i];
            } else if (!strcmp(argv[i], "--type") && i + 1 < argc)
                snprintf(p.type, sizeof(p.type), "%s", argv[++i]);
            else if (!strncmp(argv[i], "--type=", 7))
                snprintf(p.type, sizeof(p.type), "%s", argv[i] + 7);
            else if (!strcmp(argv[i], "--force"))
                p.force = true;
            else if (!strcmp(argv[i], "--port-no") && i + 1 < argc) {
                if (xbr_parse_uint(argv[++i], 0, XBR_MAX_PORTS - 1, &no) < 0)
                    return PERR("invalid port number '%s' (0-%d)", argv[i], XBR_MAX_PORTS - 1);
                p.port_no = (int)no;
            } else
                return PERR("unknown option '%s' (add-port BR NAME [--type "
                            "afpacket|afxdp|tap|vxlan] [--force] [--port-no N] [vxlan options])",
                            argv[i]);
        }
        if (strcmp(p.type, "afpacket") && strcmp(p.type, "afxdp") && strcmp(p.type, "tap") &&
            strcmp(p.type, "vxlan"))
            return PERR("unknown port type '%s' (afpacket, afxdp, tap or vxlan)", p.type);
        if (!strcmp(p.type, "vxlan")) {
            char verr[200];
            struct xbr_vxlan_config vx;
            if (xbr_vxlan_parse_args(vx_argc, vx_argv, &vx, verr, sizeof(verr)) < 0)
                return PERR("%s", verr);
            p.vx = xbr_xzalloc(sizeof(*p.vx));
            *p.vx = vx;
        } else if (vx_argc) {
            return PERR("%s is an option of vxlan ports only", vx_argv[0]);
        }
        for (size_t i = 0; p.port_no >= 0 && i < b->n_ports; i++)
            if (b->ports[i].port_no == p.port_no) {
                free(p.vx);
                return PERR("port number %d is already %s's (line %u)", p.port_no,
                            b->ports[i].name, b->ports[i].line);
            }
        b->ports = xbr_grow_one(b->ports, b->n_ports, sizeof(*b->ports));
        b->ports[b->n_ports++] = p;
        return 0;
    }
    if (!strcmp(cmd, "set-ageing")) {
        uint64_t s;
        if (argc != 3)
            return PERR("usage: set-ageing BR SECONDS");
        if ((r = need_bridge(c, argv[1], &b, err, errlen)) < 0)
            return r;
        if (xbr_parse_uint(argv[2], 1, 1000000, &s) < 0)
            return PERR("invalid ageing time '%s' (1-1000000 seconds)", argv[2]);
        snprintf(val, sizeof(val), "%llu", (unsigned long long)s);
        kv_set(&b->kv, &b->n_kv, "ageing", val, line);
        return 0;
    }
    if (!strcmp(cmd, "set-fdb-limit")) {
        /* set-fdb-limit BR N [--per-port M] | set-fdb-limit BR --per-port M */
        const char *total = NULL, *per_port = NULL;
        uint64_t v;
        if (argc < 3 || argc > 5)
            return PERR("usage: set-fdb-limit BR N [--per-port M]");
        if ((r = need_bridge(c, argv[1], &b, err, errlen)) < 0)
            return r;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--per-port") && i + 1 < argc && !per_port)
                per_port = argv[++i];
            else if (!total && strncmp(argv[i], "--", 2))
                total = argv[i];
            else
                return PERR("usage: set-fdb-limit BR N [--per-port M]");
        }
        if (total && xbr_parse_uint(total, 1, FDB_MAX_ENTRIES_LIMIT, &v) < 0)
            return PERR("invalid FDB limit '%s' (1-%u learned entries)", total,
                        FDB_MAX_ENTRIES_LIMIT);
        if (total)
            kv_set(&b->kv, &b->n_kv, "fdb-limit", total, line);
        if (per_port && xbr_parse_uint(per_port, 1, FDB_MAX_ENTRIES_LIMIT, &v) < 0)
            return PERR("invalid per-port FDB limit '%s' (1-%u learned entries)", per_port,
                        FDB_MAX_ENTRIES_LIMIT);
        if (per_port)
            kv_set(&b->kv, &b->n_kv, "fdb-limit-per-port", per_port, line);
        return 0;
    }
    if (!strcmp(cmd, "set-fastpath")) {
        if (argc != 3)
            return PERR("usage: set-fastpath BR on|off");
        if ((r = need_bridge(c, argv[1], &b, err, errlen)) < 0)
            return r;
        if (strcmp(argv[2], "on") && strcmp(argv[2], "off"))
            return PERR("set-fastpath: expected on or off, not '%s'", argv[2]);
        kv_set(&b->kv, &b->n_kv, "fastpath", argv[2], line);
        return 0;
    }
    if (!strcmp(cmd, "stp") && argc >= 2 && !strcmp(argv[1], "set")) {
        if (argc != 5)
            return PERR("usage: stp set BR KEY VALUE");
        if ((r = need_bridge(c, argv[2], &b, err, errlen)) < 0)
            return r;
        if (!strcmp(argv[3], "ageing") || !strcmp(argv[3], "ageing-time"))
            return PERR("the FDB ageing time is set with set-ageing BR SECONDS");
        r = canon_bridge(argv[3], argv[4], val);
        if (r == -ENOENT)
            return PERR("unknown bridge setting '%s' (enabled, priority, hello-time, max-age, "
                        "forward-delay, force-version, tx-hold-count)",
                        argv[3]);
        if (r < 0)
            return PERR("invalid value '%s' for %s", argv[4], argv[3]);
        kv_set(&b->kv, &b->n_kv, argv[3], val, line);
        return 0;
    }
    if (!strcmp(cmd, "port") && argc >= 5 && !strcmp(argv[1], "set") &&
        !strcmp(argv[4], "vlan")) {
        struct cfg_port *p;
        if ((r = need_port(c, argv[2], argv[3], &p, err, errlen)) < 0)
            return r;
        struct port_vlan v;
        if (xbr_vlan_parse(argc - 5, argv + 5, &v, err, errlen) < 0)
            return -EINVAL;
        free(p->vlan);
        p->vlan = xbr_xzalloc(XBR_VLAN_SPEC_MAX);
        xbr_vlan_format(&v, p->vlan, XBR_VLAN_SPEC_MAX);
        p->vlan_line = line;
        return 0;
    }
    if (!strcmp(cmd, "port") && argc >= 2 && !strcmp(argv[1], "set")) {
        if (argc != 6)
            return PERR("usage: port set BR PORT KEY VALUE");
        struct cfg_port *p;
        if ((r = need_port(c, argv[2], argv[3], &p, err, errlen)) < 0)
            return r;
        const char *key = !strcmp(argv[4], "p2p") ? "point-to-point" : argv[4];
        r = canon_port(key, argv[5], val);
        if (r == -ENOENT)
            return PERR("unknown port setting '%s' (priority, path-cost, admin-edge, auto-edge, "
                        "point-to-point, bpdu-guard, root-guard, bpdu-filter)",
                        argv[4]);
        if (r < 0)
            return PERR("invalid value '%s' for %s", argv[5], key);
        kv_set(&p->kv, &p->n_kv, key, val, line);
        return 0;
    }
    if (!strcmp(cmd, "fdb") && argc >= 2 && !strcmp(argv[1], "add")) {
        struct cfg_fdb e = {.line = line};
        uint64_t vid = XBR_VLAN_DEFAULT;
        if (argc >= 7 && !strcmp(argv[argc - 2], "dst")) {
            if (xbr_vxlan_parse_ip(argv[argc - 1], &e.dst) < 0)
                return PERR("invalid dst address '%s'", argv[argc - 1]);
            e.has_dst = true;
            argc -= 2;
        }
        if (argc != 5 && !(argc == 7 && !strcmp(argv[5], "vlan")))
            return PERR("usage: fdb add BR MAC PORT [vlan VID] [dst IP]");
        if ((r = need_bridge(c, argv[2], &b, err, errlen)) < 0)
            return r;
        if (xbr_mac_parse(argv[3], e.mac) < 0 || xbr_mac_is_multicast(e.mac) ||
            xbr_mac_is_zero(e.mac))
            return PERR("'%s' is not a unicast MAC address", argv[3]);
        const struct cfg_port *fp = cfg_port(b, argv[4]);
        if (!fp)
            return PERR("port %s of bridge %s is not declared", argv[4], argv[2]);
        if (e.has_dst && !fp->vx)
            return PERR("dst is for vxlan ports; %s is not one", argv[4]);
        if (argc == 7 && xbr_parse_uint(argv[6], 1, XBR_VLAN_MAX, &vid) < 0)
            return PERR("invalid VLAN id '%s' (1-%u)", argv[6], XBR_VLAN_MAX);
        e.vlan = (uint16_t)vid;
        snprintf(e.port, sizeof(e.port), "%s", argv[4]);
        /* Duplicates (the later line wins) are resolved once the whole file
         * is read (sort_fdb): a file may hold a million entries. */
        b->fdb = xbr_grow_one(b->fdb, b->n_fdb, sizeof(*b->fdb));
        b->fdb[b->n_fdb++] = e;
        return 0;
    }
    if (!strcmp(cmd, "mirror") && argc >= 2 && !strcmp(argv[1], "add")) {
        struct cfg_mirror m = {.line = line};
        if (argc < 4)
            return PERR("usage: mirror add BR NAME --src PORT[,PORT...] [--direction "
                        "in|out|both] --dst PORT");
        if ((r = need_bridge(c, argv[2], &b, err, errlen)) < 0)
            return r;
        /* Ports need not be declared: a mirror may watch netback vifs. */
        if ((r = xbr_mirror_parse(argc - 3, argv + 3, &m.spec, err, errlen)) < 0)
            return r;
        for (size_t i = 0; i < b->n_mirrors; i++)
            if (!strcmp(b->mirrors[i].spec.name, m.spec.name))
                return PERR("mirror %s of bridge %s is already declared at line %u",
                            m.spec.name, b->name, b->mirrors[i].line);
        b->mirrors = xbr_grow_one(b->mirrors, b->n_mirrors, sizeof(*b->mirrors));
        b->mirrors[b->n_mirrors++] = m;
        return 0;
    }
    if (!strcmp(cmd, "vif") && argc >= 2 && !strcmp(argv[1], "antispoof")) {
        if (argc != 3 || (strcmp(argv[2], "on") && strcmp(argv[2], "off")))
            return PERR("usage: vif antispoof on|off");
        c->vif_antispoof = !strcmp(argv[2], "on");
        c->vif_antispoof_line = line;
        return 0;
    }
    return PERR("'%s%s%s' is not a configuration statement (add-br, add-port, set-ageing, "
                "set-fastpath, set-fdb-limit, stp set, port set, fdb add, mirror add, "
                "vif antispoof)",
                cmd, argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
}

/* Orders a (vlan, mac) key like cmp_static below. */
static int cmp_key(uint16_t va, const uint8_t *ma, uint16_t vb, const uint8_t *mb)
{
    if (va != vb)
        return va < vb ? -1 : 1;
    return memcmp(ma, mb, 6);
}

static int cmp_cfg_fdb(const void *a, const void *b)
{
    const struct cfg_fdb *x = a, *y = b;
    int c = cmp_key(x->vlan, x->mac, y->vlan, y->mac);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* Sorts a bridge's static entries by key and keeps the last line of each
 * key, so that lookups are binary searches (sorted_fdb_has). */
static void sort_fdb(struct cfg_bridge *b)
{
    if (b->n_fdb < 2)
        return;
    qsort(b->fdb, b->n_fdb, sizeof(*b->fdb), cmp_cfg_fdb);
    size_t out = 0;
    for (size_t i = 0; i < b->n_fdb; i++) {
        if (out && !cmp_key(b->fdb[out - 1].vlan, b->fdb[out - 1].mac, b->fdb[i].vlan,
                            b->fdb[i].mac))
            out--; /* the later line wins */
        b->fdb[out++] = b->fdb[i];
    }
    b->n_fdb = out;
}

static bool sorted_fdb_has(const struct cfg_bridge *b, uint16_t vlan, const uint8_t *mac)
{
    size_t lo = 0, hi = b->n_fdb;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_key(b->fdb[mid].vlan, b->fdb[mid].mac, vlan, mac);
        if (!c)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* Parses path. strict: the first bad line fails the whole file (NULL, err
 * says where); otherwise bad lines are logged and skipped. */
static struct xbr_cfg *cfg_parse(const char *path, bool strict, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct xbr_cfg *c = xbr_xzalloc(sizeof(*c));
    c->vif_antispoof = -1;
    char line[4096];
    unsigned lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *argv[CTL_MAX_ARGS + 1], *save = NULL, lerr[512];
        int argc = 0;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(lerr, sizeof(lerr), "line longer than %zu characters", sizeof(line) - 2);
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n')
                ;
            goto bad;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        for (char *tok = strtok_r(line, " \t\r\n", &save); tok;
             tok = strtok_r(NULL, " \t\r\n", &save)) {
            if (argc == (int)CTL_MAX_ARGS) {
                snprintf(lerr, sizeof(lerr), "more than %u words", CTL_MAX_ARGS);
                goto bad;
            }
            argv[argc++] = tok;
        }
        if (!argc)
            continue;
        argv[argc] = NULL;
        if (parse_statement(c, argc, argv, lineno, lerr, sizeof(lerr)) == 0)
            continue;
    bad:
        if (strict) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, lerr);
            fclose(f);
            cfg_free(c);
            return NULL;
        }
        xbr_err("%s:%u: %s (line skipped)", path, lineno, lerr);
    }
    fclose(f);
    for (size_t i = 0; i < c->n_br; i++)
        sort_fdb(&c->br[i]);
    return c;
}

/* ---- running state ---- */

/* The values a fresh bridge has (from a throwaway engine, so that they
 * cannot drift from the engine's defaults). */
static void no_send(void *aux, unsigned port_no, const void *frame, size_t len)
{
    (void)aux, (void)port_no, (void)frame, (void)len;
}

/* A bridge's settings that are not the STP engine's. */
struct br_vals {
    uint32_t ageing;
    bool fastpath;
    uint32_t fdb_limit, fdb_limit_per_port;
};

static void bridge_values(const struct stp_bridge_status *bs, const struct br_vals *bv,
                          const char *key, char out[VAL_MAX])
{
    out[0] = '\0';
    if (!strcmp(key, "ageing"))
        snprintf(out, VAL_MAX, "%u", bv->ageing);
    else if (!strcmp(key, "fastpath"))
        snprintf(out, VAL_MAX, "%s", bv->fastpath ? "on" : "off");
    else if (!strcmp(key, "fdb-limit"))
        snprintf(out, VAL_MAX, "%u", bv->fdb_limit);
    else if (!strcmp(key, "fdb-limit-per-port"))
        snprintf(out, VAL_MAX, "%u", bv->fdb_limit_per_port);
    else if (!strcmp(key, "enabled"))
        snprintf(out, VAL_MAX, "%s", bs->enabled ? "yes" : "no");
    else if (!strcmp(key, "priority"))
        snprintf(out, VAL_MAX, "%llu", (unsigned long long)(bs->bridge_id >> 48));
    else if (!strcmp(key, "forward-delay"))
        snprintf(out, VAL_MAX, "%u", bs->bridge_forward_delay);
    else if (!strcmp(key, "max-age"))
        snprintf(out, VAL_MAX, "%u", bs->bridge_max_age);
    else if (!strcmp(key, "hello-time"))
        snprintf(out, VAL_MAX, "%u", bs->bridge_hello_time);
    else if (!strcmp(key, "force-version"))
        snprintf(out, VAL_MAX, "%s", stp_version_name(bs->force_version));
    else if (!strcmp(key, "tx-hold-count"))
        snprintf(out, VAL_MAX, "%u", bs->tx_hold_count);
}

static void bridge_default(const char *key, char out[VAL_MAX])
{
    static struct stp_bridge_status defaults;
    static bool have;
    if (!have) {
        static const struct stp_callbacks cb = {.send_bpdu = no_send};
        static const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 1};
        struct stp *s = stp_create("defaults", mac, &cb, NULL);
        if (!s)
            abort();
        stp_get_bridge_status(s, &defaults);
        stp_destroy(s);
        have = true;
    }
    /* A new bridge takes the fast path wherever it is loaded. */
    const struct br_vals bv = {.ageing = FDB_DEFAULT_AGEING_S, .fastpath = xbr_fastpath_loaded(),
                               .fdb_limit = FDB_DEFAULT_MAX_ENTRIES,
                               .fdb_limit_per_port = FDB_DEFAULT_MAX_PER_PORT};
    bridge_values(&defaults, &bv, key, out);
}

static void bridge_live(struct xbr_bridge *br, const char *key, char out[VAL_MAX])
{
    struct stp_bridge_status bs;
    stp_get_bridge_status(br->stp, &bs);
    struct fdb_stats fs;
    fdb_get_stats(br->fdb, &fs);
    const struct br_vals bv = {.ageing = fdb_get_ageing(br->fdb), .fastpath = br->fastpath,
                               .fdb_limit = fs.max_entries,
                               .fdb_limit_per_port = fs.max_per_port};
    bridge_values(&bs, &bv, key, out);
}

static void port_values(const struct stp_port_config *c, const char *key, char out[VAL_MAX])
{
    out[0] = '\0';
    if (!strcmp(key, "priority"))
        snprintf(out, VAL_MAX, "%u", c->priority);
    else if (!strcmp(key, "path-cost")) {
        if (c->path_cost)
            snprintf(out, VAL_MAX, "%u", c->path_cost);
        else
            snprintf(out, VAL_MAX, "auto");
    } else if (!strcmp(key, "admin-edge"))
        snprintf(out, VAL_MAX, "%s", c->admin_edge ? "yes" : "no");
    else if (!strcmp(key, "auto-edge"))
        snprintf(out, VAL_MAX, "%s", c->auto_edge ? "yes" : "no");
    else if (!strcmp(key, "point-to-point"))
        snprintf(out, VAL_MAX, "%s", stp_p2p_name(c->p2p));
    else if (!strcmp(key, "bpdu-guard"))
        snprintf(out, VAL_MAX, "%s", c->bpdu_guard ? "yes" : "no");
    else if (!strcmp(key, "root-guard"))
        snprintf(out, VAL_MAX, "%s", c->root_guard ? "yes" : "no");
    else if (!strcmp(key, "bpdu-filter"))
        snprintf(out, VAL_MAX, "%s", c->bpdu_filter ? "yes" : "no");
}

static void port_default(const struct port_class *cls, const char *key, char out[VAL_MAX])
{
    struct stp_port_config c;
    xbr_stp_port_default_config(cls, &c);
    port_values(&c, key, out);
}

static int port_live(const struct port *p, const char *key, char out[VAL_MAX])
{
    struct stp_port_status st;
    if (stp_get_port_status(p->bridge->stp, p->no, &st) < 0) {
        out[0] = '\0';
        return -ENODEV;
    }
    struct stp_port_config c = {
        .priority = st.priority,
        .path_cost = st.path_cost_auto ? 0 : st.path_cost,
        .admin_edge = st.admin_edge,
        .auto_edge = st.auto_edge,
        .p2p = st.admin_p2p,
        .bpdu_guard = st.bpdu_guard,
        .root_guard = st.root_guard,
        .bpdu_filter = st.bpdu_filter,
    };
    port_values(&c, key, out);
    return 0;
}

static bool is_class(const struct port *p, const char *type) { return !strcmp(p->cls->type, type); }

struct static_rows {
    struct fdb_entry_info *e;
    size_t n;
};

static int collect_static(const struct fdb_entry_info *e, void *aux)
{
    struct static_rows *rows = aux;
    if (!e->is_static)
        return 0;
    rows->e = xbr_grow_one(rows->e, rows->n, sizeof(*rows->e));
    rows->e[rows->n++] = *e;
    return 0;
}

static int cmp_static(const void *a, const void *b)
{
    const struct fdb_entry_info *x = a, *y = b;
    return cmp_key(x->vlan, x->mac, y->vlan, y->mac);
}

/* The live static entry for (vlan, mac) in rows (sorted), or NULL. */
static const struct fdb_entry_info *live_find(const struct static_rows *rows, uint16_t vlan,
                                              const uint8_t *mac)
{
    struct fdb_entry_info key = {.vlan = vlan};
    memcpy(key.mac, mac, 6);
    return rows->n ? bsearch(&key, rows->e, rows->n, sizeof(*rows->e), cmp_static) : NULL;
}

static struct static_rows live_static(const struct xbr_bridge *br)
{
    struct static_rows rows = {0};
    (void)fdb_foreach(br->fdb, xbr_now_coarse_s(), collect_static, &rows);
    if (rows.n)
        qsort(rows.e, rows.n, sizeof(*rows.e), cmp_static);
    return rows;
}

/* ---- applying ---- */

struct apply {
    const char *path;
    unsigned changes, failed;
    char first_err[400];
};

/* Runs one command through the control handlers. Logs what happened,
 * unless quiet and it failed (a retry will come). */
static bool run_cmd(struct apply *a, unsigned line, bool quiet, const char *cmd)
{
    char buf[XBR_VXLAN_ARGS_MAX + 1024], err[400], *argv[CTL_MAX_ARGS + 1], *save = NULL;
    int argc = 0;
    snprintf(buf, sizeof(buf), "%s", cmd);
    for (char *t = strtok_r(buf, " ", &save); t && argc < (int)CTL_MAX_ARGS;
         t = strtok_r(NULL, " ", &save))
        argv[argc++] = t;
    argv[argc] = NULL;
    struct ctl_out *o = ctl_out_new(false);
    int r = ctl_dispatch(argc, argv, 0, o, err, sizeof(err));
    ctl_out_free(o);
    if (r < 0) {
        if (quiet)
            return false;
        if (line)
            xbr_err("%s:%u: %s: %s", a->path, line, cmd, err);
        else
            xbr_err("%s: %s: %s", a->path, cmd, err);
        if (!a->failed++)
            snprintf(a->first_err, sizeof(a->first_err), "%s:%u: %.300s", a->path, line, err);
        return false;
    }
    a->changes++;
    if (line)
        xbr_info("config %s:%u: %s", a->path, line, cmd);
    else
        xbr_info("config %s: %s (no longer in the file)", a->path, cmd);
    return true;
}

static bool run(struct apply *a, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool run(struct apply *a, unsigned line, const char *fmt, ...)
{
    /* A vxlan port's remote list fits, and a mirror's 32 source ports. */
    char cmd[XBR_VXLAN_ARGS_MAX + 1024];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return run_cmd(a, line, false, cmd);
}

/* The settings to make: new file's keys whose value differs from the
 * running one, and keys only the old file had, back to their default. */
struct pending {
    char key[KEY_MAX];
    char value[VAL_MAX];
    unsigned line;
};

static size_t settings_todo(const char *const *keys, size_t n_keys, const struct cfg_kv *nkv,
                            size_t n_nkv, const struct cfg_kv *okv, size_t n_okv,
                            void (*live)(void *obj, const char *key, char out[VAL_MAX]),
                            void (*dflt)(void *obj, const char *key, char out[VAL_MAX]),
                            void *obj, struct pending *out)
{
    size_t n = 0;
    for (size_t i = 0; i < n_keys; i++) {
        const struct cfg_kv *nv = kv_find(nkv, n_nkv, keys[i]);
        const struct cfg_kv *ov = kv_find(okv, n_okv, keys[i]);
        char want[VAL_MAX], now[VAL_MAX];
        unsigned line;
        if (nv) {
            snprintf(want, sizeof(want), "%s", nv->value);
            line = nv->line;
        } else if (ov) {
            dflt(obj, keys[i], want);
            line = 0;
        } else {
            continue; /* no file manages it */
        }
        live(obj, keys[i], now);
        if (!strcmp(want, now))
            continue;
        snprintf(out[n].key, sizeof(out[n].key), "%s", keys[i]);
        snprintf(out[n].value, sizeof(out[n].value), "%s", want);
        out[n].line = line;
        n++;
    }
    return n;
}

static void br_live_cb(void *obj, const char *key, char out[VAL_MAX]) { bridge_live(obj, key, out); }
static void br_dflt_cb(void *obj, const char *key, char out[VAL_MAX])
{
    (void)obj;
    bridge_default(key, out);
}
static void port_live_cb(void *obj, const char *key, char out[VAL_MAX])
{
    (void)port_live(obj, key, out);
}
static void port_dflt_cb(void *obj, const char *key, char out[VAL_MAX])
{
    port_default(((struct port *)obj)->cls, key, out);
}

static void apply_bridge_settings(struct apply *a, struct xbr_bridge *br,
                                  const struct cfg_bridge *nb, const struct cfg_bridge *ob)
{
    struct pending todo[XBR_ARRAY_SIZE(bridge_keys)];
    size_t n = settings_todo(bridge_keys, XBR_ARRAY_SIZE(bridge_keys), nb->kv, nb->n_kv,
                             ob ? ob->kv : NULL, ob ? ob->n_kv : 0, br_live_cb, br_dflt_cb, br,
                             todo);
    /* The timers' valid values depend on each other (802.1D 17.14): what
     * fails now may succeed once another timer moved, so retry while that
     * makes progress, quietly, and report only the last round's failures. */
    char cmds[XBR_ARRAY_SIZE(bridge_keys)][128];
    bool done[XBR_ARRAY_SIZE(bridge_keys)] = {0};
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(todo[i].key, "ageing"))
            snprintf(cmds[i], sizeof(cmds[i]), "set-ageing %s %s", br->name, todo[i].value);
        else if (!strcmp(todo[i].key, "fastpath"))
            snprintf(cmds[i], sizeof(cmds[i]), "set-fastpath %s %s", br->name, todo[i].value);
        else if (!strcmp(todo[i].key, "fdb-limit"))
            snprintf(cmds[i], sizeof(cmds[i]), "set-fdb-limit %s %s", br->name, todo[i].value);
        else if (!strcmp(todo[i].key, "fdb-limit-per-port"))
            snprintf(cmds[i], sizeof(cmds[i]), "set-fdb-limit %s --per-port %s", br->name,
                     todo[i].value);
        else
            snprintf(cmds[i], sizeof(cmds[i]), "stp set %s %s %s", br->name, todo[i].key,
                     todo[i].value);
    }
    for (bool progress = true; progress;) {
        progress = false;
        for (size_t i = 0; i < n; i++)
            if (!done[i] && run_cmd(a, todo[i].line, true, cmds[i]))
                done[i] = progress = true;
    }
    for (size_t i = 0; i < n; i++)
        if (!done[i])
            (void)run_cmd(a, todo[i].line, false, cmds[i]);
}

static void apply_port_settings(struct apply *a, struct port *p, const struct cfg_port *np,
                                const struct cfg_port *op)
{
    struct pending todo[XBR_ARRAY_SIZE(port_keys)];
    size_t n = settings_todo(port_keys, XBR_ARRAY_SIZE(port_keys), np->kv, np->n_kv,
                             op ? op->kv : NULL, op ? op->n_kv : 0, port_live_cb, port_dflt_cb,
                             p, todo);
    for (size_t i = 0; i < n; i++)
        (void)run(a, todo[i].line, "port set %s %s %s %s", p->bridge->name, p->name,
                  todo[i].key, todo[i].value);
    /* The VLAN mode as the file says, or back to the default when only the
     * old file had one; otherwise what runs stays. */
    if (np->vlan || (op && op->vlan)) {
        char live[XBR_VLAN_SPEC_MAX];
        const char *want = np->vlan ? np->vlan : "access 1"; /* the default's canonical form */
        xbr_vlan_format(xbr_vlan_of(p), live, sizeof(live));
        if (strcmp(live, want))
            (void)run(a, np->vlan ? np->vlan_line : 0, "port set %s %s vlan %s",
                      p->bridge->name, p->name, want);
    }
}

/* Does the running port p match its declaration? (Settings aside.) */
static bool port_matches(const struct port *p, const struct cfg_bridge *b,
                         const struct cfg_port *cp)
{
    return !strcmp(p->bridge->name, b->name) && is_class(p, cp->type) &&
           (cp->port_no < 0 || (unsigned)cp->port_no == p->no) &&
           (!cp->vx || xbr_vxlan_config_equal(p, cp->vx));
}

static void apply_removals(struct apply *a, const struct xbr_cfg *n, const struct xbr_cfg *o)
{
    /* Bridges the old file had and the new one does not. */
    for (size_t i = 0; o && i < o->n_br; i++)
        if (!cfg_bridge(n, o->br[i].name) && xbr_bridge_find(o->br[i].name))
            (void)run(a, 0, "del-br %s", o->br[i].name);
    /* Ports the old file had and the new one does not (anywhere). */
    for (size_t i = 0; o && i < o->n_br; i++)
        for (size_t j = 0; j < o->br[i].n_ports; j++) {
            const struct cfg_port *op = &o->br[i].ports[j];
            struct xbr_bridge *br = xbr_bridge_find(o->br[i].name);
            struct port *p = br ? xbr_port_find(br, op->name) : NULL;
            if (p && !is_class(p, "netback") && !cfg_port_any(n, op->name, NULL))
                (void)run(a, 0, "del-port %s %s", br->name, op->name);
        }
    /* Ports that run otherwise than the new file declares them. */
    for (size_t i = 0; i < n->n_br; i++)
        for (size_t j = 0; j < n->br[i].n_ports; j++) {
            const struct cfg_port *np = &n->br[i].ports[j];
            struct port *p = xbr_port_find_any(np->name);
            if (!p || port_matches(p, &n->br[i], np))
                continue;
            if (is_class(p, "netback")) {
                xbr_err("%s:%u: %s is a netback vif port of bridge %s; not touched", a->path,
                        np->line, np->name, p->bridge->name);
                a->failed++;
                continue;
            }
            (void)run(a, np->line, "del-port %s %s", p->bridge->name, np->name);
        }
    /* Mirrors the old file had and the new one does not. */
    for (size_t i = 0; o && i < o->n_br; i++) {
        const struct cfg_bridge *nb = cfg_bridge(n, o->br[i].name);
        struct xbr_bridge *br = xbr_bridge_find(o->br[i].name);
        char desc[1024];
        for (size_t j = 0; nb && br && j < o->br[i].n_mirrors; j++) {
            const char *name = o->br[i].mirrors[j].spec.name;
            bool still = false;
            for (size_t k = 0; k < nb->n_mirrors; k++)
                still |= !strcmp(nb->mirrors[k].spec.name, name);
            if (!still && xbr_mirror_describe(br, name, desc, sizeof(desc)) == 0)
                (void)run(a, 0, "mirror del %s %s", br->name, name);
        }
    }
    /* Static entries the old file had and the new one does not. */
    for (size_t i = 0; o && i < o->n_br; i++) {
        const struct cfg_bridge *nb = cfg_bridge(n, o->br[i].name);
        struct xbr_bridge *br = xbr_bridge_find(o->br[i].name);
        if (!nb || !br)
            continue;
        struct static_rows live = live_static(br);
        for (size_t j = 0; j < o->br[i].n_fdb; j++) {
            const struct cfg_fdb *oe = &o->br[i].fdb[j];
            bool still = sorted_fdb_has(nb, oe->vlan, oe->mac);
            bool running = live_find(&live, oe->vlan, oe->mac) != NULL;
            char mac[XBR_MAC_STRLEN];
            if (!still && running)
                (void)run(a, 0, "fdb del %s %s vlan %u", br->name, xbr_mac_format(oe->mac, mac),
                          oe->vlan);
        }
        free(live.e);
    }
}

static void apply_creations(struct apply *a, const struct xbr_cfg *n, const struct xbr_cfg *o)
{
    for (size_t i = 0; i < n->n_br; i++) {
        const struct cfg_bridge *nb = &n->br[i];
        const struct cfg_bridge *ob = o ? cfg_bridge(o, nb->name) : NULL;
        struct xbr_bridge *br = xbr_bridge_find(nb->name);
        if (!br) {
            if (!run(a, nb->line, "add-br %s", nb->name))
                continue;
            br = xbr_bridge_find(nb->name);
            ob = NULL; /* a new bridge has the defaults, whatever the old file said */
        }
        apply_bridge_settings(a, br, nb, ob);

        for (size_t j = 0; j < nb->n_ports; j++) {
            const struct cfg_port *np = &nb->ports[j];
            const struct cfg_port *op = ob ? cfg_port(ob, np->name) : NULL;
            struct port *p = xbr_port_find(br, np->name);
            if (!p) {
                char no[32] = "", vx[XBR_VXLAN_ARGS_MAX] = "";
                if (np->port_no >= 0)
                    snprintf(no, sizeof(no), " --port-no %d", np->port_no);
                if (np->vx) {
                    vx[0] = ' ';
                    (void)xbr_vxlan_format_config(np->vx, vx + 1, sizeof(vx) - 1);
                }
                if (!run(a, np->line, "add-port %s %s --type %s%s%s%s", nb->name, np->name,
                         np->type, np->force ? " --force" : "", no, vx))
                    continue;
                p = xbr_port_find(br, np->name);
                op = NULL; /* a new port has the defaults */
            }
            if (p && !is_class(p, "netback"))
                apply_port_settings(a, p, np, op);
        }

        struct static_rows live = live_static(br);
        for (size_t j = 0; j < nb->n_fdb; j++) {
            const struct cfg_fdb *e = &nb->fdb[j];
            struct port *p = xbr_port_find(br, e->port);
            if (!p)
                continue; /* its port failed: already reported */
            const struct fdb_entry_info *le = live_find(&live, e->vlan, e->mac);
            bool ok = le && le->port == p->no;
            struct in6_addr ld;
            bool live_dst = ok && p->cls->tunnel && xbr_vxlan_remote_addr(p, le->remote, &ld);
            if (ok && (live_dst != e->has_dst || (e->has_dst && memcmp(&ld, &e->dst, sizeof(ld)))))
                ok = false;
            char mac[XBR_MAC_STRLEN], dst[64] = "", ip[INET6_ADDRSTRLEN];
            if (e->has_dst)
                snprintf(dst, sizeof(dst), " dst %s", xbr_vxlan_format_ip(&e->dst, ip));
            if (!ok)
                (void)run(a, e->line, "fdb add %s %s %s vlan %u%s", br->name,
                          xbr_mac_format(e->mac, mac), e->port, e->vlan, dst);
        }
        free(live.e);

        /* Mirrors: one that runs otherwise is made again. */
        for (size_t j = 0; j < nb->n_mirrors; j++) {
            const struct cfg_mirror *m = &nb->mirrors[j];
            char want[1024], have[1024];
            xbr_mirror_format(&m->spec, want, sizeof(want));
            bool running = xbr_mirror_describe(br, m->spec.name, have, sizeof(have)) == 0;
            if (running && !strcmp(want, have))
                continue;
            if (running && !run(a, m->line, "mirror del %s %s", br->name, m->spec.name))
                continue;
            (void)run(a, m->line, "mirror add %s %s %s", br->name, m->spec.name, want);
        }
    }
}

int xbr_cfg_reload(bool at_start, unsigned *n_changes, char *err, size_t errlen)
{
    if (n_changes)
        *n_changes = 0;
    if (!cfg_path) {
        snprintf(err, errlen, "xbrd was started without a configuration file (-c FILE)");
        return -ENOENT;
    }
    struct xbr_cfg *n = cfg_parse(cfg_path, !at_start, err, errlen);
    if (!n) {
        if (at_start)
            xbr_err("%s", err);
        return at_start ? -ENOENT : -EINVAL;
    }
    struct apply a = {.path = cfg_path};
    apply_removals(&a, n, applied);
    apply_creations(&a, n, applied);
    /* Netback's setting, for vifs that connect from now on: set where the
     * file says something new, back to the default where it no longer does. */
    if (n->vif_antispoof >= 0 && n->vif_antispoof != (int)vif_antispoof_live)
        (void)run(&a, n->vif_antispoof_line, "vif antispoof %s", n->vif_antispoof ? "on" : "off");
    else if (n->vif_antispoof < 0 && applied && applied->vif_antispoof >= 0 && vif_antispoof_live)
        (void)run(&a, 0, "vif antispoof off");
    cfg_free(applied);
    applied = n;
    if (n_changes)
        *n_changes = a.changes;
    if (a.failed) {
        snprintf(err, errlen, "%u change(s) failed, first %s", a.failed, a.first_err);
        xbr_warn("%s: %u change(s) made, %u failed; xbrd runs with the rest", cfg_path,
                 a.changes, a.failed);
        return -EIO;
    }
    xbr_info("%s applied: %u change(s)", cfg_path, a.changes);
    return 0;
}

/* ---- save ---- */

void xbr_cfg_note_vif_antispoof(bool on) { vif_antispoof_live = on; }

void xbr_cfg_save(struct ctl_out *o)
{
    ctl_out_text(o, "# xbrd %s running configuration (xbrctl save): one xbrctl command per "
                    "line.\n",
                 XBR_VERSION);
    if (vif_antispoof_live)
        ctl_out_text(o, "vif antispoof on\n");
    for (size_t i = 0; i < xbr_bridge_count(); i++) {
        struct xbr_bridge *br = xbr_bridge_at(i);
        char now[VAL_MAX], dflt[VAL_MAX];
        ctl_out_text(o, "add-br %s\n", br->name);
        for (size_t k = 0; k < XBR_ARRAY_SIZE(bridge_keys); k++) {
            bridge_live(br, bridge_keys[k], now);
            bridge_default(bridge_keys[k], dflt);
            if (strcmp(now, dflt) == 0)
                continue;
            if (!strcmp(bridge_keys[k], "ageing"))
                ctl_out_text(o, "set-ageing %s %s\n", br->name, now);
            else if (!strcmp(bridge_keys[k], "fastpath"))
                ctl_out_text(o, "set-fastpath %s %s\n", br->name, now);
            else if (!strcmp(bridge_keys[k], "fdb-limit"))
                ctl_out_text(o, "set-fdb-limit %s %s\n", br->name, now);
            else if (!strcmp(bridge_keys[k], "fdb-limit-per-port"))
                ctl_out_text(o, "set-fdb-limit %s --per-port %s\n", br->name, now);
            else
                ctl_out_text(o, "stp set %s %s %s\n", br->name, bridge_keys[k], now);
        }
        /* Ports in the order show lists them. A port number is written
         * where adding them in this order would not give it back. */
        const struct port_table *t = br->ports;
        bool used[XBR_MAX_PORTS] = {0};
        for (unsigned j = 0; j < t->n_ports; j++) {
            struct port *p = t->slot[t->list[j]];
            if (is_class(p, "netback")) {
                ctl_out_text(o, "# %s: netback vif, joins by itself from xenstore\n", p->name);
                continue;
            }
            unsigned next = 0;
            while (used[next])
                next++;
            used[p->no] = true;
            ctl_out_text(o, "add-port %s %s", br->name, p->name);
            if (!is_class(p, "afpacket"))
                ctl_out_text(o, " --type %s", p->cls->type);
            if (p->cls == &port_vxlan_class) {
                char vx[XBR_VXLAN_ARGS_MAX];
                if (xbr_vxlan_format_args(p, vx, sizeof(vx)) == 0)
                    ctl_out_text(o, " %s", vx);
            }
            if (was_forced(p->name))
                ctl_out_text(o, " --force");
            if (p->no != next)
                ctl_out_text(o, " --port-no %u", p->no);
            ctl_out_text(o, "\n");
        }
        for (unsigned j = 0; j < t->n_ports; j++) {
            struct port *p = t->slot[t->list[j]];
            if (is_class(p, "netback"))
                continue;
            for (size_t k = 0; k < XBR_ARRAY_SIZE(port_keys); k++) {
                if (port_live(p, port_keys[k], now) < 0)
                    continue;
                port_default(p->cls, port_keys[k], dflt);
                if (strcmp(now, dflt))
                    ctl_out_text(o, "port set %s %s %s %s\n", br->name, p->name, port_keys[k],
                                 now);
            }
            const struct port_vlan *v = xbr_vlan_of(p);
            if (!xbr_vlan_is_default(v)) {
                char spec[XBR_VLAN_SPEC_MAX];
                xbr_vlan_format(v, spec, sizeof(spec));
                ctl_out_text(o, "port set %s %s vlan %s\n", br->name, p->name, spec);
            }
        }
        struct static_rows live = live_static(br);
        for (size_t k = 0; k < live.n; k++) {
            const struct fdb_entry_info *e = &live.e[k];
            const struct port *p = e->port < XBR_MAX_PORTS ? t->slot[e->port] : NULL;
            char mac[XBR_MAC_STRLEN], dst[64] = "", ip[INET6_ADDRSTRLEN];
            if (!p)
                continue;
            struct in6_addr ra;
            if (p->cls->tunnel && xbr_vxlan_remote_addr(p, e->remote, &ra))
                snprintf(dst, sizeof(dst), " dst %s", xbr_vxlan_format_ip(&ra, ip));
            if (is_class(p, "netback"))
                ctl_out_text(o, "# fdb add %s %s %s vlan %u: on a netback vif, not saved\n",
                             br->name, xbr_mac_format(e->mac, mac), p->name, e->vlan);
            else if (e->vlan != XBR_VLAN_DEFAULT)
                ctl_out_text(o, "fdb add %s %s %s vlan %u%s\n", br->name,
                             xbr_mac_format(e->mac, mac), p->name, e->vlan, dst);
            else
                ctl_out_text(o, "fdb add %s %s %s%s\n", br->name, xbr_mac_format(e->mac, mac),
                             p->name, dst);
        }
        free(live.e);
        for (unsigned k = 0; k < xbr_mirror_count(br); k++) {
            char desc[1024];
            const char *name = xbr_mirror_name(br, k);
            if (xbr_mirror_describe(br, name, desc, sizeof(desc)) == 0)
                ctl_out_text(o, "mirror add %s %s %s\n", br->name, name, desc);
        }
    }
}
