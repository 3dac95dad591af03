/* xs-sim — a small xenstore daemon for tests, speaking the real wire protocol.
 *
 * The unmodified libxenstore (xs_open(0)) connects to the Unix socket named
 * by $XENSTORED_PATH — both its "daemon socket" and its "xenbus device"
 * attempts read that variable, so /dev/xen/xenbus is never opened — and
 * exchanges struct xsd_sockmsg frames (xen/io/xs_wire.h) over it.
 *
 * Domain identity. xenstored knows who is talking from the ring a request
 * arrives on. Here each simulated domain gets its own listening socket,
 * DIR/dom<ID>; whoever connects to DIR/dom1 *is* domain 1. A process chooses
 * its identity with XENSTORED_PATH=DIR/dom<ID> before xs_open(). DIR/dom0
 * exists from the start; DIR/dom<N> appears when domain N is introduced
 * (XS_INTRODUCE from dom0, i.e. xs_introduce_domain(), or --domain N on the
 * command line) and disappears when it is released (XS_RELEASE,
 * xs_release_domain()), which also closes domain N's connections and fires
 * @releaseDomain — the way tests simulate a guest dying.
 *
 * Semantics follow C xenstored 4.17 where a client can see them: error
 * strings, watch matching (a change fires watches on the node and on its
 * ancestors; a removal fires every removed node, children first), the
 * initial watch event, relative paths, permission rules (dom0 privileged;
 * owner has full access; a missing node reports ENOENT only to those who
 * may read its closest existing ancestor), unprivileged domains owning what
 * they create, quotas. Transactions take a copy-on-write snapshot of the
 * whole store and conflict (EAGAIN) if anything at all was committed since
 * they started — coarser than xenstored's per-node check, never wrong in the
 * other direction.
 *
 * Single-threaded poll() loop. Every client is hostile: a frame longer than
 * XENSTORE_PAYLOAD_MAX drops the connection; malformed requests get an
 * XS_ERROR reply; a client that stops reading is first not read from (its
 * replies are pending) and then dropped when its queue of watch events
 * exceeds a bound.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <xen/io/xs_wire.h>

#include "util/util.h"
#include "xs-tree.h"

/* ---- limits (xenstored's default quotas where it has one) ------------- */

#define MAX_CONNS 512u
#define MAX_CONNS_GUEST 64u /* per unprivileged domain */
#define OUT_SOFT_MAX (64u * 1024u)   /* stop reading requests above this */
#define OUT_HARD_MAX (1024u * 1024u) /* drop the connection above this */
#define MSGS_PER_WAKEUP 64u
#define QUOTA_NODES 1000u       /* nodes an unprivileged domain may own */
#define QUOTA_ENTRY_SIZE 2048u  /* record size of one node, unprivileged */
#define QUOTA_PERMS 5u          /* permission entries per node, unprivileged */
#define QUOTA_WATCHES 128u      /* per unprivileged connection */
#define QUOTA_WATCHES_PRIV 4096u
#define QUOTA_TXNS 10u          /* open transactions, unprivileged */
#define QUOTA_TXNS_PRIV 64u
#define MAX_TXN_EVENTS 8192u    /* watch events a transaction may queue */

#define PATH_BUF (XENSTORE_ABS_PATH_MAX + 1)

/* ---- data ------------------------------------------------------------- */

struct outmsg {
    struct outmsg *next;
    uint32_t len; /* header + body */
    bool event;
    char data[]; /* struct xsd_sockmsg, then the body */
};

struct watch {
    struct watch *next;
    char *path;         /* canonical, or "@special" */
    char *token;
    size_t strip;       /* bytes to cut off an event path (relative watches) */
};

/* A watch event a transaction will fire when it commits, with the
 * permissions that decide who may see it, as they were at the change. */
struct qevent {
    char *path;
    uint32_t hash;
    bool exact;
    struct xsim_perms *node, *parent, *old; /* any may be NULL */
};

struct txn {
    struct txn *next;
    uint32_t id;
    struct xsim_node *root; /* private copy-on-write version of the store */
    uint64_t start_gen;
    bool dirty;
    bool failed;
    struct qevent *evs;
    uint32_t nevs, evcap;
};

struct conn {
    struct conn *next;
    int fd;
    uint32_t domid;
    bool dead;
    /* input: one frame at a time */
    struct xsd_sockmsg hdr;
    uint32_t in_got; /* bytes of header + body received */
    char body[XENSTORE_PAYLOAD_MAX + 1];
    /* output */
    struct outmsg *out, **out_tail;
    size_t out_bytes;
    uint32_t out_off; /* bytes of the head message already sent */
    struct watch *watches;
    uint32_t nwatches;
    struct txn *txns;
    uint32_t ntxns;
};

struct listener {
    struct listener *next;
    int fd;
    uint32_t domid;
    bool dynamic; /* DIR/dom<N>: removed on release */
    char *path;
};

static struct {
    struct xsim_node *root;
    uint64_t gen;      /* bumped on every committed change */
    uint64_t node_gen; /* source of per-node generations */
    struct conn *conns;
    unsigned nconns;
    struct listener *listeners;
    const char *dir;
    struct xsim_perms *spec_intro, *spec_release;
    uint8_t introduced[XSIM_DOMID_MAX / 8 + 1];
    uint32_t next_txid;
    bool verbose;
} S;

struct req {
    struct conn *c;
    struct xsd_sockmsg hdr;
    char *body; /* hdr.len bytes, followed by a NUL the server put there */
    uint32_t len;
    struct txn *tx;
    struct xsim_node **rootp; /* &S.root or &tx->root */
};

#define LOG(lvl, ...) xbr_log(lvl, "xs-sim: " __VA_ARGS__)

static bool privileged(const struct conn *c) { return c->domid == 0; }

static bool is_introduced(uint32_t d)
{
    return d == 0 || (d <= XSIM_DOMID_MAX && (S.introduced[d / 8] >> (d % 8)) & 1);
}

static void set_introduced(uint32_t d, bool on)
{
    if (d > XSIM_DOMID_MAX)
        return;
    if (on)
        S.introduced[d / 8] |= (uint8_t)(1u << (d % 8));
    else
        S.introduced[d / 8] &= (uint8_t)~(1u << (d % 8));
}

/* A client string made safe for one log line. */
static const char *printable(const char *s, size_t len, char *buf, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 5 < size; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
            buf[o++] = (char)ch;
        } else {
            (void)snprintf(buf + o, size - o, "\\x%02x", ch);
            o += 4;
        }
    }
    buf[o] = '\0';
    return buf;
}

/* ---- output ----------------------------------------------------------- */

static void conn_kill(struct conn *c, const char *why)
{
    if (c->dead)
        return;
    c->dead = true;
    if (why)
        LOG(XBR_LOG_WARN, "dropping connection of dom%u: %s", c->domid, why);
}

static void out_push(struct conn *c, uint32_t type, uint32_t req_id, uint32_t tx_id,
                     const void *body, uint32_t len, bool event)
{
    struct xsd_sockmsg h = {.type = type, .req_id = req_id, .tx_id = tx_id, .len = len};
    struct outmsg *m;

    if (c->dead)
        return;
    if (c->out_bytes + sizeof(h) + len > OUT_HARD_MAX) {
        conn_kill(c, "output queue full (client not reading)");
        return;
    }
    m = malloc(sizeof(*m) + sizeof(h) + len);
    if (!m) {
        conn_kill(c, "out of memory");
        return;
    }
    m->next = NULL;
    m->len = (uint32_t)sizeof(h) + len;
    m->event = event;
    memcpy(m->data, &h, sizeof(h));
    if (len)
        memcpy(m->data + sizeof(h), body, len);
    *c->out_tail = m;
    c->out_tail = &m->next;
    c->out_bytes += m->len;
}

static void reply(struct req *r, uint32_t type, const void *body, uint32_t len);

static void send_error(struct req *r, int err)
{
    const char *s = "EINVAL";

    for (size_t i = 0; i < XBR_ARRAY_SIZE(xsd_errors); i++)
        if (xsd_errors[i].errnum == err)
            s = xsd_errors[i].errstring;
    out_push(r->c, XS_ERROR, r->hdr.req_id, r->hdr.tx_id, s, (uint32_t)strlen(s) + 1, false);
}

static void reply(struct req *r, uint32_t type, const void *body, uint32_t len)
{
    if (len > XENSTORE_PAYLOAD_MAX) {
        send_error(r, E2BIG);
        return;
    }
    out_push(r->c, type, r->hdr.req_id, r->hdr.tx_id, body, len, false);
}

static void ack(struct req *r) { reply(r, r->hdr.type, "OK", 3); }

static void send_event(struct conn *c, const char *path, const char *token)
{
    size_t pl = strlen(path) + 1, tl = strlen(token) + 1;
    char buf[XENSTORE_PAYLOAD_MAX];

    if (pl + tl > XENSTORE_PAYLOAD_MAX)
        return; /* xenstored does not send over-long events either */
    memcpy(buf, path, pl);
    memcpy(buf + pl, token, tl);
    /* Like xenstored, drop an event identical to one still queued
     * (special "@" events excepted). */
    if (path[0] != '@') {
        for (struct outmsg *m = c->out; m; m = m->next)
            if (m->event && m->len == sizeof(struct xsd_sockmsg) + pl + tl &&
                !memcmp(m->data + sizeof(struct xsd_sockmsg), buf, pl + tl))
                return;
    }
    out_push(c, XS_WATCH_EVENT, 0, 0, buf, (uint32_t)(pl + tl), true);
}

/* ---- watches ---------------------------------------------------------- */

/* Is `child` the node `parent` or below it? */
static bool is_child(const char *child, const char *parent)
{
    size_t len = strlen(parent);

    if (!strcmp(parent, "/"))
        return child[0] == '/';
    return !strncmp(child, parent, len) && (child[len] == '/' || child[len] == '\0');
}

static bool can_read(const struct conn *c, const struct xsim_perms *p)
{
    return p && (xsim_perm_for(p, c->domid, privileged(c)) & XS_PERM_READ);
}

/* xenstored's watch_permitted(): the node (with its old or new permissions)
 * or its parent must be readable by the watcher. */
static bool watch_permitted(const struct conn *c, const struct xsim_perms *node,
                            const struct xsim_perms *parent, const struct xsim_perms *old)
{
    return privileged(c) || can_read(c, old) || can_read(c, node) || can_read(c, parent);
}

static void fire_now(const char *path, bool exact, const struct xsim_perms *node,
                     const struct xsim_perms *parent, const struct xsim_perms *old)
{
    for (struct conn *c = S.conns; c; c = c->next) {
        if (c->dead || !c->watches || !watch_permitted(c, node, parent, old))
            continue;
        for (struct watch *w = c->watches; w; w = w->next) {
            if (exact ? strcmp(path, w->path) : !is_child(path, w->path))
                continue;
            send_event(c, path + (strlen(path) >= w->strip ? w->strip : 0), w->token);
        }
    }
}

static uint32_t str_hash(const char *s)
{
    uint32_t h = 2166136261u;

    while (*s)
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

static void qevent_free(struct qevent *e)
{
    free(e->path);
    free(e->node);
    free(e->parent);
    free(e->old);
}

static struct xsim_perms *perms_dup_or_null(const struct xsim_perms *p, bool *oom)
{
    struct xsim_perms *d;

    if (!p)
        return NULL;
    d = xsim_perms_dup(p);
    if (!d)
        *oom = true;
    return d;
}

/* Inside a transaction events wait for the commit; outside they go now. */
static int fire(struct req *r, const char *path, bool exact, const struct xsim_perms *node,
                const struct xsim_perms *parent, const struct xsim_perms *old)
{
    struct txn *t = r->tx;
    struct qevent *e;
    uint32_t h;
    bool oom = false;

    if (!t) {
        fire_now(path, exact, node, parent, old);
        return 0;
    }
    h = str_hash(path);
    for (uint32_t i = 0; i < t->nevs; i++) {
        e = &t->evs[i];
        if (e->hash == h && e->exact == exact && !strcmp(e->path, path)) {
            /* Keep the first permissions seen, add later ones as "old" so
             * that whoever could see any version gets the event. */
            if (!e->old && node)
                e->old = perms_dup_or_null(node, &oom);
            return 0;
        }
    }
    if (t->nevs >= MAX_TXN_EVENTS) {
        t->failed = true;
        return ENOSPC;
    }
    if (t->nevs == t->evcap) {
        uint32_t cap = t->evcap ? t->evcap * 2 : 16;
        struct qevent *n = realloc(t->evs, cap * sizeof(*n));

        if (!n) {
            t->failed = true;
            return ENOMEM;
        }
        t->evs = n;
        t->evcap = cap;
    }
    e = &t->evs[t->nevs];
    memset(e, 0, sizeof(*e));
    e->path = strdup(path);
    e->hash = h;
    e->exact = exact;
    e->node = perms_dup_or_null(node, &oom);
    e->parent = perms_dup_or_null(parent, &oom);
    e->old = perms_dup_or_null(old, &oom);
    if (!e->path || oom) {
        qevent_free(e);
        t->failed = true;
        return ENOMEM;
    }
    t->nevs++;
    return 0;
}

static void fire_special(const char *name)
{
    const struct xsim_perms *p = !strcmp(name, "@releaseDomain") ? S.spec_release
                                                                  : S.spec_intro;

    /* The parent of a special node is "/", as in xenstored. */
    fire_now(name, true, p, S.root->perms, NULL);
}

static void watch_free(struct watch *w)
{
    free(w->path);
    free(w->token);
    free(w);
}

/* ---- transactions ----------------------------------------------------- */

static void txn_free(struct txn *t)
{
    xsim_node_put(t->root);
    for (uint32_t i = 0; i < t->nevs; i++)
        qevent_free(&t->evs[i]);
    free(t->evs);
    free(t);
}

static struct txn *txn_find(struct conn *c, uint32_t id)
{
    for (struct txn *t = c->txns; t; t = t->next)
        if (t->id == id)
            return t;
    return NULL;
}

static void txn_unlink(struct conn *c, struct txn *t)
{
    for (struct txn **p = &c->txns; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            c->ntxns--;
            return;
        }
}

/* ---- request helpers -------------------------------------------------- */

/* The request's payload must be exactly one NUL-terminated string. */
static const char *onearg(const struct req *r)
{
    if (!r->len || memchr(r->body, '\0', r->len) != r->body + r->len - 1)
        return NULL;
    return r->body;
}

/* Number of NUL-terminated strings in the payload; fills vec[0..max). */
static unsigned get_strings(const struct req *r, const char **vec, unsigned max)
{
    unsigned n = 0;
    uint32_t off = 0;

    while (off < r->len) {
        const char *nul = memchr(r->body + off, '\0', r->len - off);

        if (!nul)
            break;
        if (n < max)
            vec[n] = r->body + off;
        n++;
        off = (uint32_t)(nul - r->body) + 1;
    }
    return n;
}

static int parse_domid(const char *s, uint32_t *out)
{
    uint64_t v;

    if (!s || xbr_parse_uint(s, 0, XSIM_DOMID_MAX, &v) < 0)
        return EINVAL;
    *out = (uint32_t)v;
    return 0;
}

/* Client name (absolute, or relative to the domain's home) -> canonical path. */
static int canonicalize(const struct conn *c, const char *name, char buf[PATH_BUF])
{
    int n;
    unsigned d;
    int off = 0;

    if (!name)
        return EINVAL;
    if (name[0] == '/')
        n = snprintf(buf, PATH_BUF, "%s", name);
    else
        n = snprintf(buf, PATH_BUF, "/local/domain/%u/%s", c->domid, name);
    if (n < 0 || n >= PATH_BUF || !xsim_path_valid(buf))
        return EINVAL;
    /* An unprivileged domain's paths are limited to XENSTORE_REL_PATH_MAX
     * below a domain home (xenstored's ACC_PATHLEN quota). */
    if (!privileged(c)) {
        if (sscanf(buf, "/local/domain/%5u/%n", &d, &off) != 1)
            off = 0;
        if ((size_t)n - (size_t)off > XENSTORE_REL_PATH_MAX)
            return EINVAL;
    }
    return 0;
}

/* Looks `path` up for an access needing all of `perm`. A node the client
 * may not access is EACCES; a missing one is ENOENT only if the client has
 * (any of) `perm` on the closest existing ancestor, else EACCES, so that
 * probing does not reveal what exists where one may not look (xenstored's
 * errno_from_parents()). */
static struct xsim_node *get_node(const struct req *r, const char *path, uint32_t perm, int *err)
{
    struct xsim_node *n = xsim_lookup(*r->rootp, path);
    bool priv = privileged(r->c);

    if (n) {
        if ((xsim_perm_for(n->perms, r->c->domid, priv) & perm) == perm)
            return n;
        *err = EACCES;
        return NULL;
    }
    n = xsim_lookup_ancestor(*r->rootp, path);
    *err = (xsim_perm_for(n->perms, r->c->domid, priv) & perm) ? ENOENT : EACCES;
    return NULL;
}

/* A request that changes the store bumps the node generation counter once. */
static uint64_t next_gen(void) { return ++S.node_gen; }

/* Marks the store (or the transaction) as changed. */
static void changed(struct req *r)
{
    if (r->tx)
        r->tx->dirty = true;
    else
        S.gen++;
}

static const char *basename_of(const char *path) { return strrchr(path, '/') + 1; }

/* Fires the event for a node that was just written or created. */
static int fire_for(struct req *r, const char *path, const struct xsim_perms *old)
{
    struct xsim_node *n = xsim_lookup(*r->rootp, path);
    struct xsim_node *p = xsim_lookup_parent(*r->rootp, path);

    return fire(r, path, false, n ? n->perms : NULL, p ? p->perms : NULL, old);
}

/* Unprivileged quota on the number of nodes a domain owns. */
static int check_node_quota(const struct req *r, const char *path)
{
    if (privileged(r->c))
        return 0;
    if (xsim_count_owned(*r->rootp, r->c->domid) + xsim_count_missing(*r->rootp, path) >
        QUOTA_NODES)
        return ENOSPC;
    return 0;
}

/* ---- operations ------------------------------------------------------- */

static int op_read(struct req *r)
{
    char path[PATH_BUF];
    struct xsim_node *n;
    int err = canonicalize(r->c, onearg(r), path);

    if (err)
        return err;
    n = get_node(r, path, XS_PERM_READ, &err);
    if (!n)
        return err;
    reply(r, XS_READ, n->val, n->vlen);
    return 0;
}

/* Children names, each NUL-terminated; caller frees. */
static char *children_blob(const struct xsim_node *n)
{
    char *b = malloc(n->kids_bytes ? n->kids_bytes : 1);
    size_t o = 0;

    if (!b)
        return NULL;
    for (uint32_t i = 0; i < n->nkids; i++) {
        size_t l = strlen(n->kids[i]->name) + 1;

        memcpy(b + o, n->kids[i]->name, l);
        o += l;
    }
    return b;
}

static int op_directory(struct req *r)
{
    char path[PATH_BUF];
    struct xsim_node *n;
    char *blob;
    int err = canonicalize(r->c, onearg(r), path);

    if (err)
        return err;
    n = get_node(r, path, XS_PERM_READ, &err);
    if (!n)
        return err;
    if (n->kids_bytes > XENSTORE_PAYLOAD_MAX)
        return E2BIG; /* libxenstore falls back to XS_DIRECTORY_PART */
    blob = children_blob(n);
    if (!blob)
        return ENOMEM;
    reply(r, XS_DIRECTORY, blob, n->kids_bytes);
    free(blob);
    return 0;
}

/* path, offset -> generation, then as many children as fit from `offset`
 * (a byte offset into the children list), then an empty string at the end. */
static int op_directory_part(struct req *r)
{
    const char *vec[2];
    char path[PATH_BUF], gen[24];
    char data[XENSTORE_PAYLOAD_MAX];
    uint32_t off, len = 0, genlen, maxlen;
    uint64_t v;
    struct xsim_node *n;
    char *blob;
    int err;

    if (get_strings(r, vec, 2) != 2)
        return EINVAL;
    if ((err = canonicalize(r->c, vec[0], path)))
        return err;
    n = get_node(r, path, XS_PERM_READ, &err);
    if (!n)
        return err;
    if (xbr_parse_uint(vec[1], 0, UINT32_MAX, &v) < 0)
        return EINVAL;
    off = (uint32_t)v;
    genlen = (uint32_t)snprintf(gen, sizeof(gen), "%" PRIu64, n->gen) + 1;
    memcpy(data, gen, genlen);
    if (off >= n->kids_bytes) {
        data[genlen] = '\0';
        reply(r, XS_DIRECTORY_PART, data, genlen + 1);
        return 0;
    }
    blob = children_blob(n);
    if (!blob)
        return ENOMEM;
    maxlen = XENSTORE_PAYLOAD_MAX - genlen - 1;
    while (off + len < n->kids_bytes) {
        uint32_t l = (uint32_t)strnlen(blob + off + len, n->kids_bytes - off - len);

        if (len + l >= maxlen)
            break;
        len += l + 1;
    }
    memcpy(data + genlen, blob + off, len);
    free(blob);
    if (off + len >= n->kids_bytes)
        data[genlen + len++] = '\0';
    reply(r, XS_DIRECTORY_PART, data, genlen + len);
    return 0;
}

static int do_write(struct req *r, const char *name, const void *val, uint32_t vlen,
                    bool is_mkdir)
{
    char path[PATH_BUF];
    struct xsim_node *n;
    int err = canonicalize(r->c, name, path);

    if (err)
        return err;
    if (!privileged(r->c) && vlen + 16u >= QUOTA_ENTRY_SIZE)
        return ENOSPC;
    n = get_node(r, path, XS_PERM_WRITE, &err);
    if (n) {
        if (is_mkdir) {
            ack(r);
            return 0;
        }
        n = xsim_cow(r->rootp, path, &err);
        if (!n)
            return -err;
        if ((err = xsim_node_set_value(n, val, vlen, next_gen())) < 0)
            return -err;
    } else {
        if (err != ENOENT)
            return err;
        if ((err = check_node_quota(r, path)))
            return err;
        n = xsim_create(r->rootp, path, val, vlen, privileged(r->c) ? -1 : (long)r->c->domid,
                        next_gen(), &err);
        if (!n)
            return -err;
    }
    changed(r);
    err = fire_for(r, path, NULL);
    if (err)
        return err;
    ack(r);
    return 0;
}

static int op_write(struct req *r)
{
    const char *vec[1];
    size_t plen;

    if (get_strings(r, vec, 1) < 1)
        return EINVAL;
    plen = strlen(r->body) + 1;
    return do_write(r, r->body, r->body + plen, r->len - (uint32_t)plen, false);
}

static int op_mkdir(struct req *r) { return do_write(r, onearg(r), NULL, 0, true); }

struct rm_ctx {
    struct req *r;
    const char *root;
    int err;
};

static int rm_fire_one(const char *path, const struct xsim_node *node,
                       const struct xsim_node *parent, void *arg)
{
    struct rm_ctx *x = arg;
    int err = fire(x->r, path, strcmp(path, x->root) != 0, node->perms,
                   parent ? parent->perms : NULL, NULL);

    if (err && !x->err)
        x->err = err;
    return 0;
}

static int op_rm(struct req *r)
{
    char path[PATH_BUF], parent_path[PATH_BUF];
    struct xsim_node *n, *parent;
    struct rm_ctx x = {.r = r, .root = path};
    int err = canonicalize(r->c, onearg(r), path);

    if (err)
        return err;
    n = get_node(r, path, XS_PERM_WRITE, &err);
    if (!n) {
        /* Removing what does not exist is fine if its parent exists. */
        if (err == ENOENT && xsim_lookup_parent(*r->rootp, path)) {
            ack(r);
            return 0;
        }
        return err;
    }
    if (!strcmp(path, "/"))
        return EINVAL;
    memcpy(parent_path, path, PATH_BUF);
    *strrchr(parent_path, '/') = '\0';
    if (!parent_path[0])
        strcpy(parent_path, "/");
    parent = xsim_cow(r->rootp, parent_path, &err);
    if (!parent)
        return -err;
    n = xsim_lookup(parent, strrchr(path, '/')); /* "/<basename>" below parent */
    if (!n)
        return EIO;
    /* Fire while the nodes and their permissions still exist. */
    (void)xsim_walk_post(n, parent, path, rm_fire_one, &x);
    xsim_remove_child(parent, basename_of(path), next_gen());
    changed(r);
    if (x.err)
        return x.err;
    ack(r);
    return 0;
}

static int get_special(const char *name, struct xsim_perms ***slot)
{
    if (!strcmp(name, "@introduceDomain"))
        *slot = &S.spec_intro;
    else if (!strcmp(name, "@releaseDomain"))
        *slot = &S.spec_release;
    else
        return ENOENT;
    return 0;
}

static int reply_perms(struct req *r, const struct xsim_perms *p)
{
    char buf[XENSTORE_PAYLOAD_MAX];
    int len = xsim_perms_format(p, buf, sizeof(buf));

    if (len < 0)
        return E2BIG;
    reply(r, XS_GET_PERMS, buf, (uint32_t)len);
    return 0;
}

static int op_get_perms(struct req *r)
{
    const char *name = onearg(r);
    char path[PATH_BUF];
    struct xsim_node *n;
    struct xsim_perms **sp;
    int err;

    if (name && name[0] == '@') {
        if ((err = get_special(name, &sp)))
            return err;
        if (!can_read(r->c, *sp))
            return EACCES;
        return reply_perms(r, *sp);
    }
    if ((err = canonicalize(r->c, name, path)))
        return err;
    n = get_node(r, path, XS_PERM_READ, &err);
    if (!n)
        return err;
    return reply_perms(r, n->perms);
}

static int op_set_perms(struct req *r)
{
    const char *vec[1];
    char path[PATH_BUF];
    struct xsim_perms *perms = NULL, *old = NULL, **sp;
    struct xsim_node *n;
    size_t plen;
    int err;

    if (get_strings(r, vec, 1) < 2)
        return EINVAL;
    plen = strlen(r->body) + 1;
    err = xsim_perms_parse(r->body + plen, r->len - plen, &perms);
    if (err)
        return -err;
    if (!privileged(r->c) && perms->num > QUOTA_PERMS) {
        err = ENOSPC;
        goto out;
    }
    if (r->body[0] == '@') {
        if (get_special(r->body, &sp)) {
            err = EINVAL;
            goto out;
        }
        if ((xsim_perm_for(*sp, r->c->domid, privileged(r->c)) &
             (XS_PERM_WRITE | XS_PERM_OWNER)) != (XS_PERM_WRITE | XS_PERM_OWNER)) {
            err = EACCES;
            goto out;
        }
        free(*sp);
        *sp = perms;
        ack(r);
        return 0;
    }
    if ((err = canonicalize(r->c, r->body, path)))
        goto out;
    n = get_node(r, path, XS_PERM_WRITE | XS_PERM_OWNER, &err);
    if (!n)
        goto out;
    /* Unprivileged domains may not give a node away. */
    if (!privileged(r->c) && perms->p[0].id != n->perms->p[0].id) {
        err = EPERM;
        goto out;
    }
    n = xsim_cow(r->rootp, path, &err);
    if (!n) {
        err = -err;
        goto out;
    }
    old = n->perms;
    n->perms = perms;
    n->gen = next_gen();
    perms = NULL;
    changed(r);
    err = fire_for(r, path, old);
    if (!err)
        ack(r);
out:
    free(perms);
    free(old);
    return err;
}

static int op_watch(struct req *r)
{
    const char *vec[2];
    char path[PATH_BUF];
    struct watch *w;
    size_t strip = 0;
    int err;

    if (get_strings(r, vec, 2) != 2)
        return EINVAL;
    if (vec[0][0] == '@') {
        if (strlen(vec[0]) > XENSTORE_REL_PATH_MAX)
            return EINVAL;
        strcpy(path, vec[0]);
    } else {
        if ((err = canonicalize(r->c, vec[0], path)))
            return err;
        if (vec[0][0] != '/') /* relative: events name paths relative to home */
            strip = (size_t)snprintf(NULL, 0, "/local/domain/%u/", r->c->domid);
    }
    for (w = r->c->watches; w; w = w->next)
        if (!strcmp(w->path, path) && !strcmp(w->token, vec[1]))
            return EEXIST;
    if (r->c->nwatches >= (privileged(r->c) ? QUOTA_WATCHES_PRIV : QUOTA_WATCHES))
        return E2BIG;
    w = calloc(1, sizeof(*w));
    if (!w)
        return ENOMEM;
    w->path = strdup(path);
    w->token = strdup(vec[1]);
    w->strip = strip;
    if (!w->path || !w->token) {
        watch_free(w);
        return ENOMEM;
    }
    w->next = r->c->watches;
    r->c->watches = w;
    r->c->nwatches++;
    ack(r);
    /* xenstored fires once up front, whatever the permissions. */
    send_event(r->c, path + strip, w->token);
    return 0;
}

static int op_unwatch(struct req *r)
{
    const char *vec[2];
    char path[PATH_BUF];

    if (get_strings(r, vec, 2) != 2)
        return EINVAL;
    if (vec[0][0] == '@') {
        if (strlen(vec[0]) >= sizeof(path))
            return ENOENT;
        strcpy(path, vec[0]);
    } else if (canonicalize(r->c, vec[0], path)) {
        return ENOENT;
    }
    for (struct watch **p = &r->c->watches; *p; p = &(*p)->next) {
        struct watch *w = *p;

        if (!strcmp(w->path, path) && !strcmp(w->token, vec[1])) {
            *p = w->next;
            r->c->nwatches--;
            watch_free(w);
            ack(r);
            return 0;
        }
    }
    return ENOENT;
}

static void drop_watches_and_txns(struct conn *c)
{
    while (c->watches) {
        struct watch *w = c->watches;

        c->watches = w->next;
        watch_free(w);
    }
    c->nwatches = 0;
    while (c->txns) {
        struct txn *t = c->txns;

        c->txns = t->next;
        txn_free(t);
    }
    c->ntxns = 0;
}

static int op_reset_watches(struct req *r)
{
    drop_watches_and_txns(r->c);
    ack(r);
    return 0;
}

static int op_transaction_start(struct req *r)
{
    char id[16];
    struct txn *t;

    if (r->tx)
        return EBUSY;
    if (r->c->ntxns >= (privileged(r->c) ? QUOTA_TXNS_PRIV : QUOTA_TXNS))
        return ENOSPC;
    t = calloc(1, sizeof(*t));
    if (!t)
        return ENOMEM;
    do {
        t->id = ++S.next_txid;
    } while (t->id == 0 || txn_find(r->c, t->id));
    t->root = S.root;
    xsim_node_get(t->root);
    t->start_gen = S.gen;
    t->next = r->c->txns;
    r->c->txns = t;
    r->c->ntxns++;
    (void)snprintf(id, sizeof(id), "%u", t->id);
    reply(r, XS_TRANSACTION_START, id, (uint32_t)strlen(id) + 1);
    return 0;
}

static int op_transaction_end(struct req *r)
{
    const char *arg = onearg(r);
    struct txn *t = r->tx;
    int err = 0;

    if (!t)
        return ENOENT;
    if (!arg || (strcmp(arg, "T") && strcmp(arg, "F")))
        return EINVAL;
    txn_unlink(r->c, t);
    r->tx = NULL; /* from here on events go out, not into t */
    if (!strcmp(arg, "T")) {
        if (t->failed) {
            err = ENOSPC;
        } else if (S.gen != t->start_gen) {
            err = EAGAIN; /* something was committed since the snapshot */
        } else if (t->dirty) {
            xsim_node_put(S.root);
            S.root = t->root;
            t->root = NULL;
            S.gen++;
            for (uint32_t i = 0; i < t->nevs; i++) {
                struct qevent *e = &t->evs[i];

                fire_now(e->path, e->exact, e->node, e->parent, e->old);
            }
        }
    }
    txn_free(t);
    if (!err)
        ack(r);
    return err;
}

static int op_get_domain_path(struct req *r)
{
    char path[32];
    uint32_t d;

    if (parse_domid(onearg(r), &d))
        return EINVAL;
    (void)snprintf(path, sizeof(path), "/local/domain/%u", d);
    reply(r, XS_GET_DOMAIN_PATH, path, (uint32_t)strlen(path) + 1);
    return 0;
}

static int op_is_domain_introduced(struct req *r)
{
    uint32_t d;

    if (parse_domid(onearg(r), &d))
        return EINVAL;
    reply(r, XS_IS_DOMAIN_INTRODUCED, is_introduced(d) ? "T" : "F", 2);
    return 0;
}

static struct listener *listener_add(uint32_t domid, const char *path, bool dynamic);
static void listener_close(struct listener *l);

static int domain_introduce(uint32_t d, bool fire_event)
{
    char path[PATH_MAX];

    if (is_introduced(d))
        return 0;
    if (S.dir) {
        if (snprintf(path, sizeof(path), "%s/dom%u", S.dir, d) >= (int)sizeof(path))
            return ENAMETOOLONG;
        if (!listener_add(d, path, true))
            return EIO;
    }
    set_introduced(d, true);
    LOG(XBR_LOG_INFO, "domain %u introduced", d);
    if (fire_event)
        fire_special("@introduceDomain");
    return 0;
}

static int op_introduce(struct req *r)
{
    const char *vec[3];
    uint32_t d;
    int err;

    if (get_strings(r, vec, 3) < 3 || parse_domid(vec[0], &d) || d == 0)
        return EINVAL;
    if ((err = domain_introduce(d, true)))
        return err;
    ack(r);
    return 0;
}

static int op_release(struct req *r)
{
    uint32_t d;

    if (parse_domid(onearg(r), &d) || d == 0)
        return EINVAL;
    if (!is_introduced(d))
        return ENOENT;
    set_introduced(d, false);
    for (struct listener *l = S.listeners; l; l = l->next)
        if (l->domid == d && l->dynamic && l->fd >= 0)
            listener_close(l);
    for (struct conn *c = S.conns; c; c = c->next)
        if (c->domid == d)
            conn_kill(c, NULL);
    LOG(XBR_LOG_INFO, "domain %u released", d);
    fire_special("@releaseDomain");
    ack(r);
    return 0;
}

static int op_resume(struct req *r)
{
    uint32_t d;

    if (parse_domid(onearg(r), &d))
        return EINVAL;
    if (!is_introduced(d))
        return ENOENT;
    ack(r);
    return 0;
}

/* XS_CONTROL / XS_DEBUG: only "print <text>" (logs the text). */
static int op_control(struct req *r)
{
    const char *vec[2];
    unsigned n = get_strings(r, vec, 2);
    char buf[256];

    if (n >= 1 && !strcmp(vec[0], "print")) {
        const char *text = n >= 2 ? vec[1] : "";

        LOG(XBR_LOG_INFO, "print: %s", printable(text, strlen(text), buf, sizeof(buf)));
        ack(r);
        return 0;
    }
    return EINVAL;
}

static int op_unsupported(struct req *r) { return ENOSYS; }

#define F_NOTID 1u /* ignores the transaction id */
#define F_PRIV 2u  /* dom0 only */

static const struct {
    const char *name;
    int (*fn)(struct req *r);
    unsigned flags;
} ops[XS_TYPE_COUNT] = {
    [XS_CONTROL] = {"CONTROL", op_control, F_PRIV},
    [XS_DIRECTORY] = {"DIRECTORY", op_directory, 0},
    [XS_READ] = {"READ", op_read, 0},
    [XS_GET_PERMS] = {"GET_PERMS", op_get_perms, 0},
    [XS_WATCH] = {"WATCH", op_watch, F_NOTID},
    [XS_UNWATCH] = {"UNWATCH", op_unwatch, F_NOTID},
    [XS_TRANSACTION_START] = {"TRANSACTION_START", op_transaction_start, 0},
    [XS_TRANSACTION_END] = {"TRANSACTION_END", op_transaction_end, 0},
    [XS_INTRODUCE] = {"INTRODUCE", op_introduce, F_PRIV},
    [XS_RELEASE] = {"RELEASE", op_release, F_PRIV},
    [XS_GET_DOMAIN_PATH] = {"GET_DOMAIN_PATH", op_get_domain_path, 0},
    [XS_WRITE] = {"WRITE", op_write, 0},
    [XS_MKDIR] = {"MKDIR", op_mkdir, 0},
    [XS_RM] = {"RM", op_rm, 0},
    [XS_SET_PERMS] = {"SET_PERMS", op_set_perms, 0},
    [XS_IS_DOMAIN_INTRODUCED] = {"IS_DOMAIN_INTRODUCED", op_is_domain_introduced, F_PRIV},
    [XS_RESUME] = {"RESUME", op_resume, F_PRIV},
    [XS_SET_TARGET] = {"SET_TARGET", op_unsupported, F_PRIV},
    [XS_RESET_WATCHES] = {"RESET_WATCHES", op_reset_watches, 0},
    [XS_DIRECTORY_PART] = {"DIRECTORY_PART", op_directory_part, 0},
};

static void handle_request(struct conn *c)
{
    struct req r = {
        .c = c, .hdr = c->hdr, .body = c->body, .len = c->hdr.len, .rootp = &S.root};
    uint32_t type = c->hdr.type;
    int err;

    c->body[r.len] = '\0'; /* string functions stop here at the latest */
    if (S.verbose) {
        char buf[128];

        LOG(XBR_LOG_DEBUG, "dom%u req %u tx %u %s \"%s\"", c->domid, c->hdr.req_id,
            c->hdr.tx_id, type < XS_TYPE_COUNT && ops[type].name ? ops[type].name : "?",
            printable(r.body, r.len, buf, sizeof(buf)));
    }
    if (type >= XS_TYPE_COUNT || !ops[type].fn) {
        err = EINVAL;
    } else if ((ops[type].flags & F_PRIV) && !privileged(c)) {
        err = EACCES;
    } else if (r.hdr.tx_id && !(ops[type].flags & F_NOTID) &&
               !(r.tx = txn_find(c, r.hdr.tx_id))) {
        err = ENOENT;
    } else {
        if (r.tx)
            r.rootp = &r.tx->root;
        err = ops[type].fn(&r);
    }
    if (err) {
        if (S.verbose)
            LOG(XBR_LOG_DEBUG, "dom%u req %u -> error %d", c->domid, c->hdr.req_id, err);
        send_error(&r, err);
    }
}

/* ---- connections and listeners ---------------------------------------- */

static void conn_free(struct conn *c)
{
    drop_watches_and_txns(c);
    while (c->out) {
        struct outmsg *m = c->out;

        c->out = m->next;
        free(m);
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

static void conn_read(struct conn *c)
{
    unsigned msgs = 0;

    while (!c->dead && c->out_bytes < OUT_SOFT_MAX && msgs < MSGS_PER_WAKEUP) {
        const size_t hl = sizeof(c->hdr);
        char *dst;
        size_t want;
        ssize_t n;

        if (c->in_got < hl) {
            dst = (char *)&c->hdr + c->in_got;
            want = hl - c->in_got;
        } else {
            dst = c->body + (c->in_got - hl);
            want = hl + c->hdr.len - c->in_got;
        }
        if (want) {
            n = read(c->fd, dst, want);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    conn_kill(c, NULL);
                return;
            }
            if (n == 0) {
                if (c->in_got)
                    LOG(XBR_LOG_INFO, "dom%u closed its connection mid-message", c->domid);
                conn_kill(c, NULL);
                return;
            }
            c->in_got += (uint32_t)n;
        }
        if (c->in_got == hl && c->hdr.len > XENSTORE_PAYLOAD_MAX) {
            conn_kill(c, "request longer than XENSTORE_PAYLOAD_MAX");
            return;
        }
        if (c->in_got >= hl && c->in_got == hl + c->hdr.len) {
            handle_request(c);
            c->in_got = 0;
            msgs++;
        }
    }
}

static void conn_flush(struct conn *c)
{
    while (c->out && !c->dead) {
        struct outmsg *m = c->out;
        ssize_t n = send(c->fd, m->data + c->out_off, m->len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_kill(c, NULL);
            return;
        }
        c->out_off += (uint32_t)n;
        if (c->out_off < m->len)
            return;
        c->out = m->next;
        if (!c->out)
            c->out_tail = &c->out;
        c->out_bytes -= m->len;
        c->out_off = 0;
        free(m);
    }
}

static void conn_accept(struct listener *l)
{
    for (int i = 0; i < 16; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct conn *c;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                LOG(XBR_LOG_WARN, "accept on %s: %s", l->path, strerror(errno));
            return;
        }
        unsigned mine = 0;

        for (struct conn *o = S.conns; o; o = o->next)
            mine += (o->domid == l->domid);
        if (S.nconns >= MAX_CONNS || (l->domid != 0 && mine >= MAX_CONNS_GUEST) ||
            !(c = calloc(1, sizeof(*c)))) {
            LOG(XBR_LOG_WARN, "refusing a connection of dom%u: too many", l->domid);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->domid = l->domid;
        c->out_tail = &c->out;
        c->next = S.conns;
        S.conns = c;
        S.nconns++;
        if (S.verbose)
            LOG(XBR_LOG_DEBUG, "dom%u connected", c->domid);
    }
}

static void conns_reap(void)
{
    for (struct conn **p = &S.conns; *p;) {
        struct conn *c = *p;

        if (c->dead) {
            *p = c->next;
            S.nconns--;
            if (S.verbose)
                LOG(XBR_LOG_DEBUG, "dom%u disconnected", c->domid);
            conn_free(c);
        } else {
            p = &c->next;
        }
    }
}

static struct listener *listener_add(uint32_t domid, const char *path, bool dynamic)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct listener *l;
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        LOG(XBR_LOG_ERR, "socket path too long: %s", path);
        return NULL;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        LOG(XBR_LOG_ERR, "socket: %s", strerror(errno));
        return NULL;
    }
    (void)unlink(path); /* a stale socket of an earlier run */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
        LOG(XBR_LOG_ERR, "listen on %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    l = calloc(1, sizeof(*l));
    if (!l || !(l->path = strdup(path))) {
        free(l);
        close(fd);
        (void)unlink(path);
        return NULL;
    }
    l->fd = fd;
    l->domid = domid;
    l->dynamic = dynamic;
    l->next = S.listeners;
    S.listeners = l;
    LOG(XBR_LOG_INFO, "dom%u listens on %s", domid, path);
    return l;
}

static void listener_close(struct listener *l)
{
    if (l->fd < 0)
        return;
    close(l->fd);
    l->fd = -1;
    (void)unlink(l->path);
}

static void listeners_free(void)
{
    while (S.listeners) {
        struct listener *l = S.listeners;

        S.listeners = l->next;
        listener_close(l);
        free(l->path);
        free(l);
    }
}

/* Listeners closed by a release are kept until here, then forgotten. */
static void listeners_reap(void)
{
    for (struct listener **p = &S.listeners; *p;) {
        struct listener *l = *p;

        if (l->fd < 0) {
            *p = l->next;
            free(l->path);
            free(l);
        } else {
            p = &l->next;
        }
    }
}

/* ---- main ------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: xs-sim (--dir DIR | --socket PATH) [options]\n"
            "  --dir DIR        serve domain N on DIR/dom<N>: DIR/dom0 at once, others\n"
            "                   when introduced (XS_INTRODUCE or --domain)\n"
            "  --socket PATH    also serve dom0 on PATH\n"
            "  --domain N       domain N is introduced from the start (repeatable)\n"
            "  --ready-fd FD    write \"READY\\n\" to FD and close it once listening\n"
            "  --pid-file PATH  write the pid to PATH once listening\n"
            "  -v, --verbose    trace every request to stderr\n"
            "Clients: XENSTORED_PATH=DIR/dom<N> selects the domain a process is.\n"
            "SIGTERM/SIGINT: remove the sockets and exit 0.\n");
}

static int write_pid_file(const char *path)
{
    char tmp[PATH_MAX];
    FILE *f;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -1;
    f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%ld\n", (long)getpid());
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return -1;
    return 0;
}

static int run(int sigfd)
{
    struct pollfd *pfd = NULL;
    struct conn **pconn = NULL;
    struct listener **plis = NULL;
    size_t cap = 0;
    int rc = 0;

    for (;;) {
        size_t n = 0, nl = 0, nlis = 0;

        for (struct listener *l = S.listeners; l; l = l->next)
            nl++;
        if (1 + nl + S.nconns > cap) {
            size_t ncap = (1 + nl + S.nconns) * 2;
            struct pollfd *np = realloc(pfd, ncap * sizeof(*np));

            if (np)
                pfd = np;
            struct conn **nc = realloc(pconn, ncap * sizeof(*nc));

            if (nc)
                pconn = nc;
            struct listener **nli = realloc(plis, ncap * sizeof(*nli));

            if (nli)
                plis = nli;
            if (!np || !nc || !nli) {
                LOG(XBR_LOG_ERR, "out of memory");
                rc = 1;
                break;
            }
            cap = ncap;
        }
        pfd[n++] = (struct pollfd){.fd = sigfd, .events = POLLIN};
        for (struct listener *l = S.listeners; l; l = l->next) {
            if (l->fd < 0)
                continue;
            plis[nlis++] = l;
            pfd[n++] = (struct pollfd){.fd = l->fd, .events = POLLIN};
        }
        size_t first_conn = n;
        for (struct conn *c = S.conns; c; c = c->next) {
            short ev = 0;

            if (c->out_bytes < OUT_SOFT_MAX)
                ev |= POLLIN;
            if (c->out)
                ev |= POLLOUT;
            pconn[n - first_conn] = c;
            pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
        }
        if (poll(pfd, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            LOG(XBR_LOG_ERR, "poll: %s", strerror(errno));
            rc = 1;
            break;
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;

            if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                LOG(XBR_LOG_INFO, "signal %u, exiting", si.ssi_signo);
            break;
        }
        for (size_t i = 0; i < nlis; i++)
            if (pfd[1 + i].revents & POLLIN && plis[i]->fd >= 0)
                conn_accept(plis[i]);
        for (size_t i = first_conn; i < n; i++) {
            struct conn *c = pconn[i - first_conn];

            if (c->dead)
                continue;
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
                conn_read(c);
            /* Hung up while we were not reading (back-pressure): its
             * replies can never be delivered. */
            if ((pfd[i].revents & (POLLHUP | POLLERR)) && c->out_bytes >= OUT_SOFT_MAX)
                conn_kill(c, NULL);
            if (pfd[i].revents & POLLNVAL)
                conn_kill(c, "invalid fd");
        }
        for (struct conn *c = S.conns; c; c = c->next)
            if (c->out && !c->dead)
                conn_flush(c);
        conns_reap();
        listeners_reap();
    }
    free(pfd);
    free(pconn);
    free(plis);
    return rc;
}

int main(int argc, char **argv)
{
    const char *socket_path = NULL, *pid_file = NULL;
    uint32_t pre[64];
    unsigned npre = 0;
    long ready_fd = -1;
    sigset_t mask;
    int sigfd, rc;
    char path[PATH_MAX];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t num;

        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            S.verbose = true;
            xbr_log_max_level = XBR_LOG_DEBUG;
            continue;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--dir")) {
            S.dir = v;
        } else if (!strcmp(a, "--socket")) {
            socket_path = v;
        } else if (!strcmp(a, "--pid-file")) {
            pid_file = v;
        } else if (!strcmp(a, "--ready-fd") && xbr_parse_uint(v, 0, INT_MAX, &num) == 0) {
            ready_fd = (long)num;
        } else if (!strcmp(a, "--domain") && xbr_parse_uint(v, 1, XSIM_DOMID_MAX, &num) == 0 &&
                   npre < XBR_ARRAY_SIZE(pre)) {
            pre[npre++] = (uint32_t)num;
        } else {
            fprintf(stderr, "xs-sim: bad option %s %s\n", a, v);
            usage(stderr);
            return 2;
        }
    }
    if (!S.dir && !socket_path) {
        usage(stderr);
        return 2;
    }

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
        (sigfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
        LOG(XBR_LOG_ERR, "signalfd: %s", strerror(errno));
        return 1;
    }
    (void)signal(SIGPIPE, SIG_IGN);

    S.root = xsim_tree_new();
    S.spec_intro = xsim_perms_new(1);   /* "n0": only dom0 sees these events */
    S.spec_release = xsim_perms_new(1);
    if (!S.root || !S.spec_intro || !S.spec_release) {
        LOG(XBR_LOG_ERR, "out of memory");
        return 1;
    }
    rc = 1;
    if (S.dir) {
        if (mkdir(S.dir, 0755) < 0 && errno != EEXIST) {
            LOG(XBR_LOG_ERR, "mkdir %s: %s", S.dir, strerror(errno));
            goto out;
        }
        if (snprintf(path, sizeof(path), "%s/dom0", S.dir) >= (int)sizeof(path) ||
            !listener_add(0, path, false))
            goto out;
    }
    if (socket_path && !listener_add(0, socket_path, false))
        goto out;
    for (unsigned i = 0; i < npre; i++)
        if (domain_introduce(pre[i], false))
            goto out;
    if (pid_file && write_pid_file(pid_file) < 0) {
        LOG(XBR_LOG_ERR, "pid file %s: %s", pid_file, strerror(errno));
        goto out;
    }
    if (ready_fd >= 0) {
        if (write((int)ready_fd, "READY\n", 6) != 6)
            LOG(XBR_LOG_WARN, "ready fd %ld: %s", ready_fd, strerror(errno));
        close((int)ready_fd);
    }
    rc = run(sigfd);
out:
    while (S.conns) {
        struct conn *c = S.conns;

        S.conns = c->next;
        conn_free(c);
    }
    listeners_free();
    if (pid_file)
        (void)unlink(pid_file);
    xsim_node_put(S.root);
    free(S.spec_intro);
    free(S.spec_release);
    close(sigfd);
    if (xsim_nodes_live() != 0) {
        LOG(XBR_LOG_ERR, "leaked %zu nodes", xsim_nodes_live());
        rc = 1;
    }
    return rc;
}
