/* netback's control side: xenstore discovery and the vif handshake, all on
 * the daemon's control thread.
 *
 * One watch on /local/domain/<self>/backend/vif finds vifs (toolstack
 * writes) and sees toolstack requests (online=0, state 5); one watch per
 * vif on its frontend's state node follows the guest; @releaseDomain catches
 * dying domains. Every event ends in vif_evaluate(), which reads the whole
 * state again and acts; it is idempotent, so our own writes echoing back
 * as watch events are harmless. A 100 ms timer (NB_TICK_MS) picks up
 * datapath verdicts (a hostile frontend: dp->fatal) and retries vifs whose
 * bridge does not exist yet.
 *
 * A guest owns its frontend directory and may write it in a loop (the
 * XSA-349 class: a backend's watch turned into a work queue without end).
 * So: only the frontend's "state" node is watched (the other keys are read
 * when the state says Connected, as Linux netback does); an event costs O(1)
 * (its token names the vif); at most NB_XS_EVENTS_PER_WAKE events are taken
 * per wake-up so the control socket and the other vifs are served in
 * between; evaluations of one vif are rate-limited by a token bucket
 * (NB_EVAL_BURST, NB_EVAL_RATE a second) and the rest are coalesced into one
 * deferred evaluation; a vif whose frontend fires more than NB_XS_FLOOD
 * events in a second has its watch removed (events still queued for it
 * carry an older token generation and cost one comparison each) for a
 * back-off that doubles up to
 * NB_XS_BACKOFF_MAX_MS, while its state is polled once a second. Each of
 * these is counted per vif (xbrctl vif show) and logged at most
 * NB_LOG_BURST times per NB_LOG_WINDOW_MS per vif.
 *
 * Backend states we write: InitWait (2) with our features; Connected (4)
 * once the rings are mapped and the port is on its bridge; Closing (5)
 * when we disconnect a misbehaving guest or the frontend closes; Closed (6)
 * when the frontend is closed/gone or the toolstack set online=0.
 *
 * Restart: a vif found with backend and frontend both Connected is mapped
 * again from the refs in xenstore and resumed from the rings' shared
 * rsp_prod, without writing anything the guest watches. For the same reason
 * a clean stop (SIGTERM) leaves xenstore as it is: it unmaps and unbinds,
 * and the next xbrd picks the guests up exactly as after SIGKILL.
 */
#include "netback/netback.h"
#include "netback/nb-private.h"
#include "ctl/ctl.h"
#include "bridge/config.h"
#include "util/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <xen/io/xenbus.h>
#include <xenstore.h>

#define NB_TICK_MS 100u
#define NB_RETRY_MS 1000u
#define NB_PATH 160
/* xenstore work bounds (see the top of this file). */
#define NB_XS_EVENTS_PER_WAKE 128u
#define NB_EVAL_BURST 64u
#define NB_EVAL_RATE 32u
#define NB_XS_FLOOD 256u
#define NB_XS_BACKOFF_MS 5000u
#define NB_XS_BACKOFF_MAX_MS 60000u
#define NB_XS_POLL_MS 1000u
#define NB_LOG_BURST 20u
#define NB_LOG_WINDOW_MS 10000u

/* bridge=NAME.VID:VID:...: at most this many VIDs after the name. */
#define NB_VLAN_MAX_VIDS 64
#define NB_VLAN_SPEC_MAX (NB_VLAN_MAX_VIDS * 5 + 32)

struct nb_vif {
    struct nb_vif *next;
    unsigned domid, devid;
    char name[IF_NAMESIZE];
    char be[NB_PATH], fe[NB_PATH];
    char bridge[IF_NAMESIZE];
    /* The VLAN mode bridge= asks for ("access 10", "trunk 20,30 native 10";
     * "" for the default), as `port set ... vlan` words. */
    char vlan[NB_VLAN_SPEC_MAX];
    bool bad_bridge;           /* bridge= refused: why in bridge_error */
    char bridge_error[160];
    uint8_t mac[6];
    uint32_t mtu;
    uint64_t rate_bytes, rate_usec; /* rate= as applied (0 bytes: none) */
    bool fe_watched;
    char fe_token[48];         /* "nb-fe:<domid>:<devid>:<gen>", unique per watch */
    unsigned watch_gen;        /* bumped by every fe_watch() */
    struct nb_dp *dp;          /* non-NULL while the port exists */
    bool tearing_down;
    bool port_lost;            /* someone removed our port (del-port, del-br) */
    bool waiting_bridge;       /* logged once per wait */
    uint64_t retry_at;
    uint64_t connects, violations;
    char last_error[160];
    /* xenstore work accounting and bounds */
    uint64_t xs_events;        /* frontend watch events */
    uint64_t xs_evals;         /* evaluations run */
    uint64_t xs_deferred;      /* events folded into a later evaluation */
    uint64_t xs_suspends;      /* times the frontend watch was suspended */
    unsigned tokens;           /* evaluations allowed now */
    uint64_t tokens_at;        /* when the bucket was last refilled (ms) */
    bool eval_pending;         /* an evaluation the bucket held back */
    unsigned win_events;       /* frontend events in the current second */
    uint64_t win_start;
    uint64_t suspended_until;  /* 0, or when the frontend is watched again */
    uint64_t next_poll;        /* while suspended */
    unsigned backoff_ms;
    unsigned log_n;            /* log lines in the current window */
    uint64_t log_window;
    uint64_t log_suppressed;
};

static struct {
    bool started;
    struct xs_handle *xs;
    unsigned self;
    char root[64];
    xengnttab_handle *map_gt;
    xengnttab_handle *copy_gt[XBR_MAX_WORKERS];
    unsigned n_workers;
    int tfd;
    struct nb_vif *vifs;
    uint64_t violations, connects;
    uint64_t xs_events;        /* every watch event taken, all vifs */
    bool antispoof;
} nb = {.tfd = -1};

/* ---- xenstore helpers ---- */

static char *xs_get(const char *dir, const char *key)
{
    char path[NB_PATH + 64];
    unsigned len;
    snprintf(path, sizeof(path), "%s/%s", dir, key);
    return xs_read(nb.xs, XBT_NULL, path, &len);
}

static bool xs_get_uint(const char *dir, const char *key, uint64_t max, uint64_t *out)
{
    char *v = xs_get(dir, key);
    bool ok = v && xbr_parse_uint(v, 0, max, out) == 0;
    free(v);
    return ok;
}

static uint64_t xs_get_uint_def(const char *dir, const char *key, uint64_t max, uint64_t def)
{
    uint64_t v;
    return xs_get_uint(dir, key, max, &v) ? v : def;
}

static void xs_put(const char *dir, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void xs_put(const char *dir, const char *key, const char *fmt, ...)
{
    char path[NB_PATH + 64], val[64];
    va_list ap;
    snprintf(path, sizeof(path), "%s/%s", dir, key);
    va_start(ap, fmt);
    int n = vsnprintf(val, sizeof(val), fmt, ap);
    va_end(ap);
    if (!xs_write(nb.xs, XBT_NULL, path, val, (unsigned)n))
        xbr_debug("netback: cannot write %s: %s", path, strerror(errno));
}

static int be_state(const struct nb_vif *v)
{
    return (int)xs_get_uint_def(v->be, "state", 6, 0);
}

static void set_be_state(struct nb_vif *v, int state)
{
    if (be_state(v) != state) {
        xbr_debug("netback: %s backend state -> %d", v->name, state);
        xs_put(v->be, "state", "%d", state);
    }
}

/* ---- vifs ---- */

static struct nb_vif *vif_find(unsigned domid, unsigned devid)
{
    for (struct nb_vif *v = nb.vifs; v; v = v->next)
        if (v->domid == domid && v->devid == devid)
            return v;
    return NULL;
}

/* One line about a vif, at most NB_LOG_BURST per NB_LOG_WINDOW_MS: a guest
 * that makes us refuse, connect or disconnect it in a loop must not flood
 * the log. What was held back is counted and announced. */
static void vif_log(struct nb_vif *v, enum xbr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void vif_log(struct nb_vif *v, enum xbr_log_level level, const char *fmt, ...)
{
    uint64_t now = xbr_now_ms();
    char line[512];
    va_list ap;

    if (now - v->log_window >= NB_LOG_WINDOW_MS) {
        if (v->log_n > NB_LOG_BURST)
            xbr_warn("netback: %s: %u log lines suppressed in the last %u s", v->name,
                     v->log_n - NB_LOG_BURST, NB_LOG_WINDOW_MS / 1000);
        v->log_window = now;
        v->log_n = 0;
    }
    if (++v->log_n > NB_LOG_BURST) {
        v->log_suppressed++;
        return;
    }
    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    xbr_log(level, "netback: %s%s", v->name, line);
}

void nb_vif_port_closed(struct nb_vif *vif)
{
    vif->dp = NULL;
    if (!vif->tearing_down)
        vif->port_lost = true; /* not ours: del-port or del-br */
}

/* Takes the port off its bridge (which unmaps and unbinds through close())
 * and leaves xenstore alone. */
static void vif_teardown(struct nb_vif *v)
{
    if (!v->dp)
        return;
    struct port *p = xbr_port_find_any(v->name);
    char err[256];
    v->tearing_down = true;
    if (p && p->priv == v->dp && xbr_port_del(p->bridge, v->name, err, sizeof(err)) == 0) {
        /* close() ran: v->dp is NULL now */
    } else {
        nb_dp_free(v->dp);
        v->dp = NULL;
    }
    v->tearing_down = false;
    vif_log(v, XBR_LOG_INFO, " disconnected");
}

static bool fe_watch(struct nb_vif *v)
{
    char path[NB_PATH + 8];
    snprintf(path, sizeof(path), "%s/state", v->fe);
    snprintf(v->fe_token, sizeof(v->fe_token), "nb-fe:%u:%u:%u", v->domid, v->devid,
             ++v->watch_gen);
    v->fe_watched = xs_watch(nb.xs, path, v->fe_token);
    return v->fe_watched;
}

static void fe_unwatch(struct nb_vif *v)
{
    char path[NB_PATH + 8];
    if (!v->fe_watched)
        return;
    snprintf(path, sizeof(path), "%s/state", v->fe);
    /* Events still queued for this watch are dropped on arrival: their token
     * has an older generation. (libxenstore's XS_UNWATCH_FILTER would drop
     * them here, but leaks each message body it drops.) */
    (void)xs_unwatch(nb.xs, path, v->fe_token);
    v->fe_watched = false;
}

static void vif_free(struct nb_vif *v)
{
    vif_teardown(v);
    fe_unwatch(v);
    for (struct nb_vif **pp = &nb.vifs; *pp; pp = &(*pp)->next)
        if (*pp == v) {
            *pp = v->next;
            break;
        }
    xbr_info("netback: %s removed", v->name);
    free(v);
}

/* The backend keys libxl writes (xl-network-configuration) that xbr acts
 * on, and the ones it and the frontend handshake write themselves. Any
 * other key is named in the log once, when the vif is found: an admin
 * moving from vif-bridge must not lose `rate=` or `ip=` without a word. */
static bool be_key_known(const char *k)
{
    static const char *const known[] = {
        "frontend", "frontend-id", "online", "state", "script", "mac", "bridge", "handle",
        "type", "mtu", "vifname", "rate", "ip", "hotplug-status", "hotplug-error", "request-rx-copy",
    };
    static const char *const prefixes[] = {"feature-", "multi-queue-"};
    for (size_t i = 0; i < XBR_ARRAY_SIZE(known); i++)
        if (!strcmp(k, known[i]))
            return true;
    for (size_t i = 0; i < XBR_ARRAY_SIZE(prefixes); i++)
        if (!strncmp(k, prefixes[i], strlen(prefixes[i])))
            return true;
    return false;
}

static void log_unimplemented_keys(const struct nb_vif *v)
{
    unsigned n = 0;
    char **keys = xs_directory(nb.xs, XBT_NULL, v->be, &n);
    char list[256] = "";
    size_t used = 0;
    unsigned shown = 0, unknown = 0;
    for (unsigned i = 0; keys && i < n && i < 256; i++) {
        if (be_key_known(keys[i]))
            continue;
        unknown++;
        int w = snprintf(list + used, sizeof(list) - used, "%s%.40s", shown ? ", " : "", keys[i]);
        if (w > 0 && (size_t)w < sizeof(list) - used) {
            used += (size_t)w;
            shown++;
        }
    }
    free(keys);
    if (unknown)
        xbr_warn("netback: %s: backend key(s) not implemented by xbr, ignored: %s%s", v->name,
                 list, unknown > shown ? ", ..." : "");
}

/* vifname= (libxl writes it to the backend): the port's name, when it is a
 * name an interface could have and no other vif has taken it. */
static void apply_vifname(struct nb_vif *v)
{
    char *s = xs_get(v->be, "vifname");
    if (!s || !s[0]) {
        free(s);
        return;
    }
    bool ok = strlen(s) < sizeof(v->name) && strcmp(s, ".") && strcmp(s, "..");
    for (const char *c = s; ok && *c; c++)
        ok = *c > ' ' && *c < 0x7f && *c != '/' && *c != ':';
    for (const struct nb_vif *o = nb.vifs; ok && o; o = o->next)
        ok = strcmp(o->name, s) != 0;
    if (ok)
        (void)xbr_strlcpy(v->name, s, sizeof(v->name));
    else
        xbr_warn("netback: %s: vifname '%.40s' is not a free interface name; keeping %s",
                 v->name, s, v->name);
    free(s);
}

/* bridge= as Xen's vif-openvswitch reads it: NAME[.VID][:VID[:VID...]].
 * NAME.10 puts the vif in VLAN 10 (an access port, OVS tag=10); NAME:20:30
 * makes it a trunk of 20 and 30 (trunks=20,30); NAME.10:20:30 a trunk of
 * 20 and 30 with 10 untagged (OVS vlan_mode=native-untagged). False, with
 * the reason in v->bridge_error, for anything else. */
static bool parse_bridge(struct nb_vif *v, const char *s)
{
#define BAD(...) (snprintf(v->bridge_error, sizeof(v->bridge_error), __VA_ARGS__), false)
    size_t n = strcspn(s, ".:");
    if (n == 0)
        return BAD("no bridge name before the VLAN");
    if (n >= sizeof(v->bridge))
        return BAD("the bridge name is longer than %u characters", IF_NAMESIZE - 1);
    memcpy(v->bridge, s, n);
    v->bridge[n] = '\0';
    const char *p = s + n;
    unsigned long access = 0, trunk[NB_VLAN_MAX_VIDS];
    unsigned n_trunk = 0;
    for (bool first = true; *p; first = false) {
        char sep = *p++;
        if (sep == '.' && !first)
            return BAD("'.' after the first VLAN (NAME[.VID][:VID...])");
        if (sep != '.' && sep != ':')
            return BAD("unexpected '%c' (NAME[.VID][:VID...])", sep);
        char *end;
        if (*p < '0' || *p > '9')
            return BAD("a VLAN id must follow '%c' (NAME[.VID][:VID...])", sep);
        errno = 0;
        unsigned long vid = strtoul(p, &end, 10);
        if (errno || vid < 1 || vid > 4094)
            return BAD("invalid VLAN id '%.*s' (1-4094)", (int)(end - p), p);
        p = end;
        if (*p && *p != ':')
            return BAD("unexpected '%c' (NAME[.VID][:VID...])", *p);
        if (sep == '.')
            access = vid;
        else if (n_trunk == NB_VLAN_MAX_VIDS)
            return BAD("more than %u trunk VLANs", NB_VLAN_MAX_VIDS);
        else
            trunk[n_trunk++] = vid;
    }
    if (!n_trunk) {
        if (access)
            snprintf(v->vlan, sizeof(v->vlan), "access %lu", access);
        return true;
    }
    size_t len = (size_t)snprintf(v->vlan, sizeof(v->vlan), "trunk ");
    for (unsigned i = 0; i < n_trunk; i++)
        len += (size_t)snprintf(v->vlan + len, sizeof(v->vlan) - len, "%s%lu", i ? "," : "",
                                trunk[i]);
    if (access)
        snprintf(v->vlan + len, sizeof(v->vlan) - len, " native %lu", access);
    return true;
#undef BAD
}

static struct nb_vif *vif_create(unsigned domid, unsigned devid)
{
    char be[NB_PATH];
    snprintf(be, sizeof(be), "%s/%u/%u", nb.root, domid, devid);
    char *fe = xs_get(be, "frontend");
    if (!fe)
        return NULL; /* not written yet (or gone): a later event brings it */
    if (strlen(fe) >= NB_PATH || strncmp(fe, "/local/domain/", 14) != 0) {
        xbr_warn("netback: %s: ignoring vif with bad frontend path", be);
        free(fe);
        return NULL;
    }
    struct nb_vif *v = xbr_xzalloc(sizeof(*v));
    v->domid = domid;
    v->devid = devid;
    snprintf(v->name, sizeof(v->name), "vif%u.%u", domid, devid);
    v->tokens = NB_EVAL_BURST;
    v->tokens_at = v->win_start = v->log_window = xbr_now_ms();
    v->backoff_ms = NB_XS_BACKOFF_MS;
    (void)xbr_strlcpy(v->be, be, sizeof(v->be));
    (void)xbr_strlcpy(v->fe, fe, sizeof(v->fe));
    free(fe);
    uint64_t fid;
    if (xs_get_uint(be, "frontend-id", 0x7fef, &fid) && fid != domid)
        xbr_warn("netback: %s: frontend-id %llu differs from the path's domain %u; using %u",
                 v->name, (unsigned long long)fid, domid, domid);
    char *s = xs_get(be, "bridge");
    /* No bridge named: xenbr0, as libxl's default. A name no interface can
     * have, or a malformed VLAN part, is refused at connect (logged), not
     * quietly replaced by another bridge or VLAN. */
    if (!s || !s[0])
        (void)xbr_strlcpy(v->bridge, "xenbr0", sizeof(v->bridge));
    else
        v->bad_bridge = !parse_bridge(v, s);
    if (v->bad_bridge)
        xbr_err("netback: %s: bridge '%s' refused: %s", v->name, s, v->bridge_error);
    free(s);
    v->mtu = (uint32_t)xs_get_uint_def(be, "mtu", 65535, 1500);
    if (v->mtu < 68)
        v->mtu = 1500;
    apply_vifname(v);
    log_unimplemented_keys(v);
    if (!fe_watch(v))
        xbr_warn("netback: %s: cannot watch %s/state (%s); its state is polled",
                 v->name, v->fe, strerror(errno));
    v->next = nb.vifs;
    nb.vifs = v;
    xbr_info("netback: %s found (frontend %s, bridge %s)", v->name, v->fe, v->bridge);
    return v;
}

static void vif_fail(struct nb_vif *v, bool violation, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void vif_fail(struct nb_vif *v, bool violation, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(v->last_error, sizeof(v->last_error), fmt, ap);
    va_end(ap);
    if (violation) {
        v->violations++;
        nb.violations++;
        vif_log(v, XBR_LOG_ERR, ": frontend protocol violation, disconnecting: %s",
                v->last_error);
    } else {
        vif_log(v, XBR_LOG_ERR, ": cannot connect: %s", v->last_error);
    }
    vif_teardown(v);
    set_be_state(v, XenbusStateClosing);
}

static void write_features(struct nb_vif *v)
{
    xs_put(v->be, "feature-sg", "1");
    xs_put(v->be, "feature-gso-tcpv4", "1");
    xs_put(v->be, "feature-gso-tcpv6", "1");
    xs_put(v->be, "feature-ipv6-csum-offload", "1");
    xs_put(v->be, "feature-rx-copy", "1");
    xs_put(v->be, "feature-rx-flip", "0");
    xs_put(v->be, "feature-split-event-channels", "1");
    xs_put(v->be, "multi-queue-max-queues", "%u", nb.n_workers);
    xs_put(v->be, "feature-ctrl-ring", "1");
    /* Static multicast control only: request-multicast-control is sampled at
     * connect (no feature-dynamic-multicast-control, so no second watch on a
     * node the guest owns). */
    xs_put(v->be, "feature-multicast-control", "1");
}

static bool read_queue(struct nb_vif *v, const char *dir, struct nb_queue *q)
{
    uint64_t a, b;
    if (!xs_get_uint(dir, "tx-ring-ref", UINT32_MAX, &a) ||
        !xs_get_uint(dir, "rx-ring-ref", UINT32_MAX, &b)) {
        vif_fail(v, false, "%s: missing or bad tx-ring-ref / rx-ring-ref", dir);
        return false;
    }
    q->tx_ref = (uint32_t)a;
    q->rx_ref = (uint32_t)b;
    if (xs_get_uint(dir, "event-channel", UINT32_MAX, &a)) {
        q->rport_tx = q->rport_rx = (uint32_t)a;
    } else if (xs_get_uint(dir, "event-channel-tx", UINT32_MAX, &a) &&
               xs_get_uint(dir, "event-channel-rx", UINT32_MAX, &b)) {
        q->rport_tx = (uint32_t)a;
        q->rport_rx = (uint32_t)b;
    } else {
        vif_fail(v, false, "%s: missing or bad event-channel", dir);
        return false;
    }
    return true;
}

/* The backend's ip= into f: 1 when set, 0 when absent or empty, -1 when
 * malformed (why says how). Read at connect and by `vif online`. */
static int read_ip_filter(const struct nb_vif *v, struct nb_ipfilter *f, char *why,
                          size_t whylen)
{
    char *ips = xs_get(v->be, "ip");
    int r = 0;
    if (ips && ips[0])
        r = nb_ip_parse(ips, f, why, whylen) < 0 ? -1 : 1;
    free(ips);
    return r;
}

static void vif_connect(struct nb_vif *v)
{
    if (v->bad_bridge) {
        vif_fail(v, false, "bridge: %s", v->bridge_error);
        return;
    }
    struct xbr_bridge *br = xbr_bridge_find(v->bridge);
    if (!br) {
        if (!v->waiting_bridge)
            xbr_warn("netback: %s: bridge %s does not exist; the vif waits for it "
                     "(retried every %u ms)", v->name, v->bridge, NB_RETRY_MS);
        v->waiting_bridge = true;
        v->retry_at = xbr_now_ms() + NB_RETRY_MS;
        return;
    }
    v->waiting_bridge = false;

    uint64_t nq = 1;
    char *mq = xs_get(v->fe, "multi-queue-num-queues");
    bool have_mq = mq != NULL;
    free(mq);
    if (have_mq && (!xs_get_uint(v->fe, "multi-queue-num-queues", 64, &nq) || nq < 1 ||
                    nq > nb.n_workers)) {
        vif_fail(v, false, "frontend asks for a bad number of queues (max %u)", nb.n_workers);
        return;
    }
    if (xs_get_uint_def(v->fe, "request-rx-copy", 1, 0) != 1) {
        vif_fail(v, false, "frontend does not support request-rx-copy");
        return;
    }

    /* The toolstack's mac (backend directory, not the guest's copy): as in
     * Linux netback, a vif without a valid one does not connect. */
    char *mac = xs_get(v->be, "mac");
    if (!mac || xbr_mac_parse(mac, v->mac) < 0) {
        vif_fail(v, false, "backend mac %s%.40s%s is missing or not a MAC address",
                 mac ? "'" : "", mac ? mac : "", mac ? "'" : "");
        free(mac);
        return;
    }
    free(mac);

    /* feature-ctrl-ring: both keys or neither. */
    uint64_t ctrl_ref = 0, ctrl_port = 0;
    char *cr = xs_get(v->fe, "ctrl-ring-ref");
    bool have_ctrl = cr != NULL;
    free(cr);
    if (have_ctrl && (!xs_get_uint(v->fe, "ctrl-ring-ref", UINT32_MAX, &ctrl_ref) ||
                      !xs_get_uint(v->fe, "event-channel-ctrl", UINT32_MAX, &ctrl_port))) {
        vif_fail(v, false, "missing or bad ctrl-ring-ref / event-channel-ctrl");
        return;
    }

    struct nb_dp *dp = nb_dp_alloc((unsigned)nq, nb.n_workers);
    nb_ctrl_init(dp);
    dp->domid = (uint16_t)v->domid;
    /* Hashing sends any worker's frames to any queue: lock the RX side. */
    if (have_ctrl)
        dp->rx_shared = true;
    dp->mcast_ctrl = xs_get_uint_def(v->fe, "request-multicast-control", 1, 0);
    dp->sg = xs_get_uint_def(v->fe, "feature-sg", 1, 0);
    dp->gso4 = xs_get_uint_def(v->fe, "feature-gso-tcpv4", 1, 0);
    dp->gso6 = xs_get_uint_def(v->fe, "feature-gso-tcpv6", 1, 0);
    dp->csum = !xs_get_uint_def(v->fe, "feature-no-csum-offload", 1, 0);
    dp->ipv6_csum = xs_get_uint_def(v->fe, "feature-ipv6-csum-offload", 1, 0);
    dp->rx_notify = xs_get_uint_def(v->fe, "feature-rx-notify", 1, 0);
    /* ip= (as vif-bridge applies it at hotplug: read once per connect).
     * A bad one refuses the vif, as vif-bridge's failing iptables would. */
    char why[160];
    int ipr = read_ip_filter(v, &dp->ipf, why, sizeof(why));
    if (ipr < 0) {
        nb_dp_free(dp);
        vif_fail(v, false, "%s", why);
        return;
    }
    dp->ip_filter = ipr > 0;
    /* MAC anti-spoofing: bridge-wide (vif antispoof), and always with ip=. */
    dp->antispoof = (nb.antispoof || dp->ip_filter) && !xbr_mac_is_zero(v->mac);
    memcpy(dp->mac, v->mac, 6);
    if (v->rate_bytes)
        nb_dp_set_rate(dp, v->rate_bytes, v->rate_usec);
    dp->map_gt = nb.map_gt;
    dp->copy_gt = nb.copy_gt;
    for (unsigned i = 0; i < nq; i++) {
        char dir[NB_PATH + 16];
        /* One queue's keys are flat even when multi-queue-num-queues is
         * written (Linux netfront writes "1" whenever we offer queues). */
        if (nq > 1)
            snprintf(dir, sizeof(dir), "%s/queue-%u", v->fe, i);
        else
            snprintf(dir, sizeof(dir), "%s", v->fe);
        if (!read_queue(v, dir, &dp->q[i])) {
            nb_dp_free(dp);
            return;
        }
    }
    /* One grant for two rings would make us answer into our own requests:
     * refuse it before mapping anything. */
    uint32_t refs[2 * 64 + 1];
    unsigned nrefs = 0;
    for (unsigned i = 0; i < nq; i++) {
        refs[nrefs++] = dp->q[i].tx_ref;
        refs[nrefs++] = dp->q[i].rx_ref;
    }
    if (have_ctrl)
        refs[nrefs++] = (uint32_t)ctrl_ref;
    for (unsigned i = 0; i < nrefs; i++)
        for (unsigned j = i + 1; j < nrefs; j++)
            if (refs[i] == refs[j]) {
                nb_dp_free(dp);
                vif_fail(v, true, "grant %u is given for two rings", refs[i]);
                return;
            }
    char err[256];
    if (nb_dp_map(dp, err, sizeof(err)) < 0 ||
        (have_ctrl &&
         nb_ctrl_map(dp, (uint32_t)ctrl_ref, (uint32_t)ctrl_port, err, sizeof(err)) < 0)) {
        nb_dp_free(dp);
        vif_fail(v, true, "%s", err); /* refs or ports the guest gave are bad */
        return;
    }
    /* The VLAN from bridge= is the port's from its first frame. */
    if ((v->vlan[0] ? xbr_port_add_vlan(br, v->name, &nb_port_class, 0, dp, v->vlan, err,
                                        sizeof(err))
                    : xbr_port_add(br, v->name, &nb_port_class, 0, dp, err, sizeof(err))) < 0) {
        nb_dp_free(dp);
        vif_fail(v, false, "cannot join bridge %s: %s", v->bridge, err);
        return;
    }
    dp->vif = v;
    v->dp = dp;
    struct port *p = xbr_port_find_any(v->name);
    if (p)
        __atomic_store_n(&p->mtu, v->mtu, __ATOMIC_RELAXED);
    v->connects++;
    nb.connects++;
    v->last_error[0] = 0;
    set_be_state(v, XenbusStateConnected);
    vif_log(v, XBR_LOG_INFO, " connected to %s: %u queue(s)%s%s%s%s%s", v->bridge, dp->nq,
            dp->sg ? ", sg" : "", dp->gso4 ? ", gso" : "", dp->rx_shared ? ", shared rx" : "",
            dp->ctrl ? ", ctrl ring" : "", dp->mcast_ctrl ? ", multicast control" : "");
}

/* rate= as libxl writes it to the backend: "BYTES,USEC", BYTES per USEC
 * microseconds of guest TX (Linux's xen_net_read_rate). Absent, or not
 * that shape: no limit (logged when it is there but bad). Applied to a
 * connected vif at once, as Linux's watch on the key does. */
static void apply_rate(struct nb_vif *v)
{
    uint64_t bytes = 0, usec = 0;
    char *s = xs_get(v->be, "rate");
    if (s) {
        char *comma = strchr(s, ',');
        if (comma)
            *comma = '\0';
        if (!comma || xbr_parse_uint(s, 1, 1ull << 48, &bytes) < 0 ||
            xbr_parse_uint(comma + 1, 1, 1000000000u, &usec) < 0) {
            if (comma)
                *comma = ',';
            vif_log(v, XBR_LOG_WARN, ": rate '%.40s' is not BYTES,USEC: no limit", s);
            bytes = usec = 0;
        }
        free(s);
    }
    if (bytes == v->rate_bytes && usec == v->rate_usec)
        return;
    v->rate_bytes = bytes;
    v->rate_usec = usec;
    if (v->dp)
        nb_dp_set_rate(v->dp, bytes, usec);
    if (bytes)
        vif_log(v, XBR_LOG_INFO, ": rate %llu bytes per %llu us (%.1f Mbit/s)",
                (unsigned long long)bytes, (unsigned long long)usec, (double)bytes * 8 / (double)usec);
    else
        vif_log(v, XBR_LOG_INFO, ": no rate limit");
}

/* Reads everything again and does what the states ask. May free v. */
static void vif_evaluate(struct nb_vif *v)
{
    char *fe = xs_get(v->be, "frontend");
    if (!fe) {
        /* The toolstack removed the backend directory. */
        vif_free(v);
        return;
    }
    free(fe);
    apply_rate(v);
    int bs = be_state(v);
    uint64_t online = xs_get_uint_def(v->be, "online", 1, 1);
    int fs = (int)xs_get_uint_def(v->fe, "state", 7, 0);

    if (!online) {
        /* Toolstack removal (libxl: online=0, state Closing, wait for
         * Closed): answer Closed whatever the guest does. */
        vif_teardown(v);
        if (bs != XenbusStateClosed)
            set_be_state(v, XenbusStateClosed);
        return;
    }
    switch (fs) {
    case XenbusStateInitialising:
    case XenbusStateInitWait:
    case XenbusStateInitialised:
        vif_teardown(v); /* a guest that reset its netfront */
        if (bs != XenbusStateInitWait) {
            write_features(v);
            set_be_state(v, XenbusStateInitWait);
        }
        break;
    case XenbusStateConnected:
        /* InitWait: the normal handshake. Connected without a port: xbrd
         * restarted (or the bridge was missing); pick the rings up again. */
        if (!v->dp && (bs == XenbusStateInitWait || bs == XenbusStateConnected))
            vif_connect(v);
        break;
    case XenbusStateClosing:
        vif_teardown(v);
        if (bs != XenbusStateClosed && bs != XenbusStateClosing)
            set_be_state(v, XenbusStateClosing);
        break;
    default: /* Closed, Unknown, gone: the frontend is not there */
        vif_teardown(v);
        if (bs != XenbusStateClosed && bs != 0)
            set_be_state(v, XenbusStateClosed);
        break;
    }
}

/* ---- bounded work per vif ---- */

static bool take_token(struct nb_vif *v, uint64_t now)
{
    uint64_t add = (now - v->tokens_at) * NB_EVAL_RATE / 1000u;
    if (add) {
        v->tokens = (unsigned)XBR_MIN((uint64_t)v->tokens + add, (uint64_t)NB_EVAL_BURST);
        v->tokens_at += add * 1000u / NB_EVAL_RATE;
        if (v->tokens == NB_EVAL_BURST)
            v->tokens_at = now;
    }
    if (!v->tokens)
        return false;
    v->tokens--;
    return true;
}

/* Something about v changed: evaluate now if its budget allows, else once
 * later (on_tick). May free v. */
static void vif_kick(struct nb_vif *v)
{
    if (take_token(v, xbr_now_ms())) {
        v->eval_pending = false;
        v->xs_evals++;
        vif_evaluate(v);
    } else {
        v->eval_pending = true;
        v->xs_deferred++;
    }
}

/* An event from the frontend's own node (guest-controlled). May free v. */
static void vif_fe_event(struct nb_vif *v)
{
    uint64_t now = xbr_now_ms();
    v->xs_events++;
    if (now - v->win_start >= 1000u) {
        if (v->win_events <= NB_XS_FLOOD / 4)
            v->backoff_ms = NB_XS_BACKOFF_MS; /* a calm second forgives */
        v->win_start = now;
        v->win_events = 0;
    }
    if (++v->win_events > NB_XS_FLOOD && v->fe_watched) {
        fe_unwatch(v);
        v->xs_suspends++;
        v->suspended_until = now + v->backoff_ms;
        v->next_poll = now + NB_XS_POLL_MS;
        vif_log(v, XBR_LOG_WARN,
                ": frontend fired %u xenstore events within a second; not watching it for "
                "%u s (its state is polled every %u ms meanwhile)",
                v->win_events, v->backoff_ms / 1000, NB_XS_POLL_MS);
        v->backoff_ms = XBR_MIN(v->backoff_ms * 2, NB_XS_BACKOFF_MAX_MS);
        v->eval_pending = true; /* look once more at what it left */
        return;
    }
    vif_kick(v);
}

static void scan_all(void)
{
    unsigned nd = 0;
    char **doms = xs_directory(nb.xs, XBT_NULL, nb.root, &nd);
    for (unsigned i = 0; doms && i < nd; i++) {
        uint64_t domid;
        if (xbr_parse_uint(doms[i], 1, 0x7fef, &domid) < 0)
            continue;
        char dir[NB_PATH];
        unsigned nv = 0;
        snprintf(dir, sizeof(dir), "%s/%s", nb.root, doms[i]);
        char **devs = xs_directory(nb.xs, XBT_NULL, dir, &nv);
        for (unsigned j = 0; devs && j < nv; j++) {
            uint64_t devid;
            if (xbr_parse_uint(devs[j], 0, 999, &devid) < 0)
                continue;
            struct nb_vif *v = vif_find((unsigned)domid, (unsigned)devid);
            if (!v)
                v = vif_create((unsigned)domid, (unsigned)devid);
            if (v)
                vif_kick(v);
        }
        free(devs);
    }
    free(doms);
}

static void on_backend_event(const char *path)
{
    size_t rl = strlen(nb.root);
    if (strncmp(path, nb.root, rl) != 0 || (path[rl] && path[rl] != '/'))
        return;
    unsigned domid, devid;
    int used = 0;
    if (sscanf(path + rl, "/%u/%u%n", &domid, &devid, &used) == 2 &&
        (path[rl + (size_t)used] == 0 || path[rl + (size_t)used] == '/')) {
        if (domid == 0 || domid > 0x7fef || devid > 999)
            return;
        struct nb_vif *v = vif_find(domid, devid);
        if (!v)
            v = vif_create(domid, devid);
        if (v)
            vif_kick(v);
        return;
    }
    scan_all(); /* the root or a domain directory: look at everything */
}

static void evaluate_all(void)
{
    struct nb_vif *v = nb.vifs, *next;
    for (; v; v = next) {
        next = v->next;
        vif_kick(v);
    }
}

static void on_xs(int fd, uint32_t events, void *aux)
{
    (void)fd, (void)events, (void)aux;
    char **vec;
    /* Bounded per wake-up: the watch fd stays readable while events are
     * queued, so the loop comes back after serving everything else. */
    for (unsigned k = 0; k < NB_XS_EVENTS_PER_WAKE && (vec = xs_check_watch(nb.xs)); k++) {
        const char *path = vec[XS_WATCH_PATH], *token = vec[XS_WATCH_TOKEN];
        unsigned domid, devid, gen;
        int used = 0;
        nb.xs_events++;
        if (!strcmp(token, "nb-be")) {
            on_backend_event(path);
        } else if (sscanf(token, "nb-fe:%u:%u:%u%n", &domid, &devid, &gen, &used) == 3 &&
                   !token[used]) {
            struct nb_vif *v = vif_find(domid, devid);
            if (v && v->fe_watched && gen == v->watch_gen)
                vif_fe_event(v);
        } else if (!strcmp(token, "nb-rel")) {
            evaluate_all(); /* a frontend gone with its domain reads as Unknown */
        }
        free(vec);
    }
}

static void on_tick(int fd, uint32_t events, void *aux)
{
    (void)events, (void)aux;
    uint64_t exp;
    if (read(fd, &exp, sizeof(exp)) != sizeof(exp))
        return;
    uint64_t now = xbr_now_ms();
    struct nb_vif *v = nb.vifs, *next;
    for (; v; v = next) {
        next = v->next;
        if (v->dp) {
            nb_ctrl_tick(v->dp); /* control-ring work the budget held back */
            nb_dp_rx_expire(v->dp); /* RX queue: frames a guest left too long */
        }
        if (v->dp && atomic_load_explicit(&v->dp->fatal, memory_order_acquire) == 2) {
            char why[sizeof(v->dp->why)];
            memcpy(why, v->dp->why, sizeof(why));
            vif_fail(v, true, "%s", why);
        } else if (v->port_lost) {
            v->port_lost = false;
            xbr_warn("netback: %s was removed from its bridge; disconnecting the guest",
                     v->name);
            set_be_state(v, XenbusStateClosing);
        } else if (v->waiting_bridge && now >= v->retry_at) {
            vif_kick(v);
        } else if (v->suspended_until && now >= v->suspended_until) {
            v->suspended_until = 0;
            if (!fe_watch(v)) /* the watch's first event evaluates it */
                v->suspended_until = now + NB_XS_POLL_MS;
        } else if (v->suspended_until && now >= v->next_poll) {
            v->next_poll = now + NB_XS_POLL_MS;
            vif_kick(v);
        } else if (v->eval_pending) {
            vif_kick(v);
        }
    }
}

/* ---- control commands ---- */

static int cmd_vif_show(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                        void *aux)
{
    (void)aux;
    char mac[XBR_MAC_STRLEN];
    if (!nb.started) {
        snprintf(err, errlen, "netback is not running (no xenstore or grant device)");
        return -ENODEV;
    }
    ctl_out_open_object(o, NULL);
    ctl_out_u64(o, "violations", "netback: violations %llu", nb.violations);
    ctl_out_u64(o, "connects", " connects %llu", nb.connects);
    ctl_out_u64(o, "xenstore_events", " xenstore-events %llu\n", nb.xs_events);
    ctl_out_open_array(o, "vifs");
    for (struct nb_vif *v = nb.vifs; v; v = v->next) {
        if (argc == 1 && strcmp(argv[0], v->name) != 0)
            continue;
        ctl_out_open_object(o, NULL);
        ctl_out_str(o, "name", "%-12s", v->name);
        ctl_out_u64(o, "domid", " dom %llu", v->domid);
        ctl_out_u64(o, "devid", " dev %llu", v->devid);
        ctl_out_str(o, "bridge", " bridge %s", v->bridge);
        ctl_out_str(o, "vlan", " vlan %s", v->vlan[0] ? v->vlan : "default");
        ctl_out_str(o, "mac", " mac %s", xbr_mac_format(v->mac, mac));
        ctl_out_u64(o, "rate_bytes", " rate %llu", v->rate_bytes);
        ctl_out_u64(o, "rate_usec", "/%llu us", v->rate_usec);
        ctl_out_i64(o, "backend_state", " be %lld", be_state(v));
        ctl_out_i64(o, "frontend_state", " fe %lld",
                    (int64_t)xs_get_uint_def(v->fe, "state", 7, 0));
        ctl_out_bool(o, "connected", " connected %s", v->dp != NULL);
        ctl_out_bool(o, "waiting_bridge", " waiting-bridge %s", v->waiting_bridge);
        ctl_out_u64(o, "queues", " queues %llu", v->dp ? v->dp->nq : 0);
        ctl_out_u64(o, "connects", " connects %llu", v->connects);
        ctl_out_u64(o, "violations", " violations %llu", v->violations);
        ctl_out_str_or_null(o, "last_error", " error %s\n",
                            v->last_error[0] ? v->last_error : NULL);
        ctl_out_open_object(o, "xenstore");
        ctl_out_u64(o, "events", "    xenstore: events %llu", v->xs_events);
        ctl_out_u64(o, "evaluations", " evaluations %llu", v->xs_evals);
        ctl_out_u64(o, "deferred", " deferred %llu", v->xs_deferred);
        ctl_out_u64(o, "watch_suspensions", " watch-suspensions %llu", v->xs_suspends);
        ctl_out_bool(o, "watched", " watched %s", v->fe_watched);
        ctl_out_u64(o, "log_suppressed", " log-suppressed %llu\n", v->log_suppressed);
        ctl_out_close_object(o);
        ctl_out_close_object(o);
    }
    ctl_out_close_array(o);
    ctl_out_close_object(o);
    return 0;
}

/* Hotplug script: "online PATH" / "offline PATH" with libxl's XENBUS_PATH.
 * libxl passes it relative to the backend domain's home ("backend/vif/3/0",
 * a xenstore relative path); other toolstacks pass it absolute. */
static int vif_from_path(const char *arg, struct nb_vif **out, char *err, size_t errlen)
{
    size_t rl = strlen(nb.root);
    unsigned domid, devid;
    int used = 0;
    char abs[256];
    const char *path = arg;
    if (!nb.started) {
        snprintf(err, errlen, "netback is not running");
        return -ENODEV;
    }
    if (arg[0] != '/') {
        snprintf(abs, sizeof(abs), "/local/domain/%u/%s", nb.self, arg);
        path = abs;
    }
    if (strncmp(path, nb.root, rl) != 0 ||
        sscanf(path + rl, "/%u/%u%n", &domid, &devid, &used) != 2 || path[rl + (size_t)used]) {
        snprintf(err, errlen, "%s is not a vif backend path under %s", arg, nb.root);
        return -EINVAL;
    }
    *out = vif_find(domid, devid);
    if (!*out)
        *out = vif_create(domid, devid);
    return 0;
}

static int cmd_vif_online(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                          void *aux)
{
    (void)argc, (void)o, (void)aux;
    struct nb_vif *v;
    int r = vif_from_path(argv[0], &v, err, errlen);
    if (r < 0)
        return r;
    if (!v) {
        snprintf(err, errlen, "no vif at %s", argv[0]);
        return -ENOENT;
    }
    /* What would refuse this vif at connect, known before its frontend
     * connects: fail the hotplug with it, so `xl create` and `xl
     * network-attach` print why instead of starting a guest whose vif
     * never comes up. */
    if (v->bad_bridge) {
        snprintf(err, errlen, "bridge refused: %s", v->bridge_error);
        return -EINVAL;
    }
    if (!xbr_bridge_find(v->bridge)) {
        snprintf(err, errlen, "bridge %s does not exist (xbrctl show lists the bridges)",
                 v->bridge);
        return -ENOENT;
    }
    struct nb_ipfilter f;
    char why[160];
    if (read_ip_filter(v, &f, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "ip refused: %s", why);
        return -EINVAL;
    }
    ctl_out_text(o, "%s bridge %s\n", v->name, v->bridge);
    vif_evaluate(v);
    return 0;
}

static int cmd_vif_offline(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                           void *aux)
{
    (void)argc, (void)o, (void)aux;
    struct nb_vif *v;
    int r = vif_from_path(argv[0], &v, err, errlen);
    if (r < 0)
        return r;
    if (v)
        vif_evaluate(v); /* online=0 already: tears down; gone: frees */
    return 0;
}

static int cmd_vif_antispoof(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                             void *aux)
{
    (void)argc, (void)o, (void)aux;
    if (!strcmp(argv[0], "on"))
        nb.antispoof = true;
    else if (!strcmp(argv[0], "off"))
        nb.antispoof = false;
    else {
        snprintf(err, errlen, "expected on or off");
        return -EINVAL;
    }
    xbr_cfg_note_vif_antispoof(nb.antispoof);
    return 0; /* applies to vifs connecting from now on */
}

/* ---- start / stop ---- */

void nb_register_commands(void)
{
    static bool registered;
    if (registered)
        return;
    registered = true;
    (void)ctl_register("vif show", 0, 1, "[VIF]", cmd_vif_show, NULL);
    (void)ctl_register("vif online", 1, 1, "BACKEND_PATH", cmd_vif_online, NULL);
    (void)ctl_register("vif offline", 1, 1, "BACKEND_PATH", cmd_vif_offline, NULL);
    (void)ctl_register("vif antispoof", 1, 1, "on|off", cmd_vif_antispoof, NULL);
}

int nb_start(char *err, size_t errlen)
{
    const char *self = getenv("XBR_NETBACK_DOMID");
    uint64_t d = 0;
    if (self && xbr_parse_uint(self, 0, 0x7fef, &d) < 0) {
        snprintf(err, errlen, "bad XBR_NETBACK_DOMID '%s'", self);
        return -EINVAL;
    }
    nb.self = (unsigned)d;
    snprintf(nb.root, sizeof(nb.root), "/local/domain/%u/backend/vif", nb.self);
    nb.n_workers = xbr_n_workers();

    nb.xs = xs_open(0);
    if (!nb.xs) {
        snprintf(err, errlen, "cannot open xenstore: %s", strerror(errno));
        return -ENODEV;
    }
    nb.map_gt = xengnttab_open(NULL, 0);
    for (unsigned i = 0; nb.map_gt && i < nb.n_workers; i++)
        if (!(nb.copy_gt[i] = xengnttab_open(NULL, 0)))
            break;
    if (!nb.map_gt || !nb.copy_gt[nb.n_workers - 1]) {
        snprintf(err, errlen, "cannot open the grant device: %s", strerror(errno));
        nb_stop();
        return -ENODEV;
    }
    nb.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = {.it_interval = {0, NB_TICK_MS * 1000000},
                             .it_value = {0, NB_TICK_MS * 1000000}};
    if (nb.tfd < 0 || timerfd_settime(nb.tfd, 0, &its, NULL) < 0 ||
        xbr_loop_add_fd(nb.tfd, EPOLLIN, on_tick, NULL) < 0) {
        snprintf(err, errlen, "timerfd: %s", strerror(errno));
        nb_stop();
        return -EIO;
    }
    if (!xs_watch(nb.xs, nb.root, "nb-be") || !xs_watch(nb.xs, "@releaseDomain", "nb-rel") ||
        xbr_loop_add_fd(xs_fileno(nb.xs), EPOLLIN, on_xs, NULL) < 0) {
        snprintf(err, errlen, "cannot watch %s: %s", nb.root, strerror(errno));
        nb_stop();
        return -EIO;
    }
    xbr_port_class_register(&nb_port_class);
    nb.started = true;
    xbr_info("netback: serving %s (%u queue(s) per guest at most)", nb.root, nb.n_workers);
    scan_all(); /* the initial watch event will do it again, harmlessly */
    return 0;
}

void nb_stop(void)
{
    while (nb.vifs) {
        struct nb_vif *v = nb.vifs;
        vif_teardown(v);
        fe_unwatch(v);
        nb.vifs = v->next;
        free(v);
    }
    if (nb.xs) {
        xbr_loop_del_fd(xs_fileno(nb.xs));
        xs_close(nb.xs);
        nb.xs = NULL;
    }
    if (nb.tfd >= 0) {
        xbr_loop_del_fd(nb.tfd);
        close(nb.tfd);
        nb.tfd = -1;
    }
    for (unsigned i = 0; i < XBR_MAX_WORKERS; i++)
        if (nb.copy_gt[i]) {
            (void)xengnttab_close(nb.copy_gt[i]);
            nb.copy_gt[i] = NULL;
        }
    if (nb.map_gt) {
        (void)xengnttab_close(nb.map_gt);
        nb.map_gt = NULL;
    }
    nb.started = false;
}
