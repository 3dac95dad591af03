/* xs-tree — copy-on-write node store of xs-sim. See xs-tree.h. */
#include "xs-tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xen/io/xs_wire.h>

static size_t nodes_live;

size_t xsim_nodes_live(void) { return nodes_live; }

/* ---- permissions ------------------------------------------------------ */

size_t xsim_perms_size(const struct xsim_perms *p)
{
    return sizeof(*p) + (size_t)p->num * sizeof(p->p[0]);
}

struct xsim_perms *xsim_perms_new(uint32_t num)
{
    struct xsim_perms *p;

    if (num == 0 || num > XSIM_MAX_PERMS)
        return NULL;
    p = calloc(1, sizeof(*p) + (size_t)num * sizeof(p->p[0]));
    if (p)
        p->num = num;
    return p;
}

struct xsim_perms *xsim_perms_dup(const struct xsim_perms *p)
{
    struct xsim_perms *d = malloc(xsim_perms_size(p));

    if (d)
        memcpy(d, p, xsim_perms_size(p));
    return d;
}

static int parse_one_perm(const char *s, struct xsim_perm *out)
{
    unsigned long id = 0;
    const char *q;

    switch (s[0]) {
    case 'n': out->perms = 0; break;
    case 'r': out->perms = XS_PERM_READ; break;
    case 'w': out->perms = XS_PERM_WRITE; break;
    case 'b': out->perms = XS_PERM_READ | XS_PERM_WRITE; break;
    default: return -EINVAL;
    }
    if (!s[1])
        return -EINVAL;
    for (q = s + 1; *q; q++) {
        if (*q < '0' || *q > '9')
            return -EINVAL;
        id = id * 10 + (unsigned long)(*q - '0');
        if (id > 0xffff) /* domid_t */
            return -EINVAL;
    }
    out->id = (uint32_t)id;
    return 0;
}

int xsim_perms_parse(const char *strings, size_t len, struct xsim_perms **out)
{
    struct xsim_perms *p;
    uint32_t num = 0, i;
    size_t off;

    /* Only NUL-terminated strings count; trailing bytes without a NUL are
     * ignored, as xenstored's xs_count_strings() does. */
    for (off = 0; off < len; off++)
        if (strings[off] == '\0')
            num++;
    if (num == 0)
        return -EINVAL;
    if (num > XSIM_MAX_PERMS)
        return -ENOSPC;
    p = xsim_perms_new(num);
    if (!p)
        return -ENOMEM;
    for (i = 0, off = 0; i < num; i++) {
        int r = parse_one_perm(strings + off, &p->p[i]);

        if (r < 0) {
            free(p);
            return r;
        }
        off += strlen(strings + off) + 1;
    }
    *out = p;
    return 0;
}

int xsim_perms_format(const struct xsim_perms *p, char *buf, size_t size)
{
    static const char letter[4] = {'n', 'r', 'w', 'b'};
    size_t used = 0;

    for (uint32_t i = 0; i < p->num; i++) {
        int n = snprintf(buf + used, size - used, "%c%u",
                         letter[p->p[i].perms & (XS_PERM_READ | XS_PERM_WRITE)], p->p[i].id);
        if (n < 0 || (size_t)n + 1 > size - used)
            return -E2BIG;
        used += (size_t)n + 1; /* keep the NUL as separator */
    }
    return (int)used;
}

uint32_t xsim_perm_for(const struct xsim_perms *p, uint32_t domid, bool privileged)
{
    if (privileged || p->p[0].id == domid)
        return XS_PERM_READ | XS_PERM_WRITE | XS_PERM_OWNER;
    for (uint32_t i = 1; i < p->num; i++)
        if (p->p[i].id == domid)
            return p->p[i].perms & (XS_PERM_READ | XS_PERM_WRITE);
    return p->p[0].perms & (XS_PERM_READ | XS_PERM_WRITE);
}

/* ---- nodes ------------------------------------------------------------ */

static struct xsim_node *node_alloc(const char *name, size_t namelen)
{
    struct xsim_node *n;

    if (nodes_live >= XSIM_MAX_NODES_LIVE)
        return NULL;
    n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->name = strndup(name, namelen);
    if (!n->name) {
        free(n);
        return NULL;
    }
    n->refs = 1;
    nodes_live++;
    return n;
}

static void node_free(struct xsim_node *n)
{
    for (uint32_t i = 0; i < n->nkids; i++)
        xsim_node_put(n->kids[i]);
    free(n->kids);
    free(n->name);
    free(n->val);
    free(n->perms);
    free(n);
    nodes_live--;
}

void xsim_node_get(struct xsim_node *n) { n->refs++; }

void xsim_node_put(struct xsim_node *n)
{
    if (n && --n->refs == 0)
        node_free(n);
}

struct xsim_node *xsim_tree_new(void)
{
    struct xsim_node *root = node_alloc("", 0);

    if (!root)
        return NULL;
    root->perms = xsim_perms_new(1); /* "n0" */
    if (!root->perms) {
        node_free(root);
        return NULL;
    }
    return root;
}

/* A private copy of n sharing n's children. */
static struct xsim_node *node_clone(const struct xsim_node *n)
{
    struct xsim_node *c = node_alloc(n->name, strlen(n->name));

    if (!c)
        return NULL;
    c->perms = xsim_perms_dup(n->perms);
    if (!c->perms)
        goto fail;
    if (n->vlen) {
        c->val = malloc(n->vlen);
        if (!c->val)
            goto fail;
        memcpy(c->val, n->val, n->vlen);
        c->vlen = n->vlen;
    }
    if (n->nkids) {
        c->kids = malloc(n->nkids * sizeof(*c->kids));
        if (!c->kids)
            goto fail;
        memcpy(c->kids, n->kids, n->nkids * sizeof(*c->kids));
        c->nkids = c->kcap = n->nkids;
        for (uint32_t i = 0; i < c->nkids; i++)
            xsim_node_get(c->kids[i]);
    }
    c->kids_bytes = n->kids_bytes;
    c->gen = n->gen;
    return c;
fail:
    node_free(c);
    return NULL;
}

static long find_kid(const struct xsim_node *n, const char *name, size_t len)
{
    for (uint32_t i = 0; i < n->nkids; i++)
        if (strlen(n->kids[i]->name) == len && !memcmp(n->kids[i]->name, name, len))
            return (long)i;
    return -1;
}

/* Iterates over the components of a canonical path. */
struct comp_iter {
    const char *p;
    const char *c;
    size_t len;
};

static bool comp_next(struct comp_iter *it)
{
    const char *e;

    if (!*it->p)
        return false;
    e = strchrnul(it->p, '/');
    it->c = it->p;
    it->len = (size_t)(e - it->p);
    it->p = *e ? e + 1 : e;
    return true;
}

static void comp_init(struct comp_iter *it, const char *path) { it->p = path + 1; }

bool xsim_path_valid(const char *path)
{
    size_t len = strlen(path);

    if (path[0] != '/' || len > XENSTORE_ABS_PATH_MAX)
        return false;
    if (len > 1 && path[len - 1] == '/')
        return false;
    if (strstr(path, "//"))
        return false;
    return strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-/_@") ==
           len;
}

struct xsim_node *xsim_lookup(struct xsim_node *root, const char *path)
{
    struct comp_iter it;
    struct xsim_node *n = root;

    comp_init(&it, path);
    while (comp_next(&it)) {
        long k = find_kid(n, it.c, it.len);

        if (k < 0)
            return NULL;
        n = n->kids[k];
    }
    return n;
}

struct xsim_node *xsim_lookup_ancestor(struct xsim_node *root, const char *path)
{
    struct comp_iter it;
    struct xsim_node *n = root, *prev = root;

    comp_init(&it, path);
    while (comp_next(&it)) {
        long k = find_kid(n, it.c, it.len);

        if (k < 0)
            return n;
        prev = n;
        n = n->kids[k];
    }
    return prev;
}

struct xsim_node *xsim_lookup_parent(struct xsim_node *root, const char *path)
{
    struct comp_iter it;
    struct xsim_node *n = root, *prev = NULL;

    comp_init(&it, path);
    while (comp_next(&it)) {
        long k = find_kid(n, it.c, it.len);

        if (k < 0)
            return *it.p ? NULL : n; /* only the last component may be missing */
        prev = n;
        n = n->kids[k];
    }
    return prev;
}

static int make_private(struct xsim_node **slot)
{
    struct xsim_node *c;

    if ((*slot)->refs == 1)
        return 0;
    c = node_clone(*slot);
    if (!c)
        return nodes_live >= XSIM_MAX_NODES_LIVE ? -ENOSPC : -ENOMEM;
    (*slot)->refs--; /* still referenced by another version */
    *slot = c;
    return 0;
}

/* Copy-on-write walk down `len` bytes of `path` (a canonical prefix). */
static struct xsim_node *cow_prefix(struct xsim_node **rootp, const char *path, size_t len,
                                    int *err)
{
    struct xsim_node **slot = rootp;
    struct comp_iter it;
    int r;

    if ((r = make_private(slot)) < 0)
        goto fail;
    comp_init(&it, path);
    while ((size_t)(it.p - path) < len && comp_next(&it)) {
        long k = find_kid(*slot, it.c, it.len);

        if (k < 0) {
            r = -ENOENT;
            goto fail;
        }
        slot = &(*slot)->kids[k];
        if ((r = make_private(slot)) < 0)
            goto fail;
    }
    return *slot;
fail:
    *err = r;
    return NULL;
}

struct xsim_node *xsim_cow(struct xsim_node **rootp, const char *path, int *err)
{
    return cow_prefix(rootp, path, strlen(path), err);
}

static int kids_reserve(struct xsim_node *n, uint32_t extra)
{
    struct xsim_node **k;
    uint32_t cap;

    if (n->nkids + extra <= n->kcap)
        return 0;
    cap = n->kcap ? n->kcap * 2 : 4;
    while (cap < n->nkids + extra)
        cap *= 2;
    k = realloc(n->kids, cap * sizeof(*k));
    if (!k)
        return -ENOMEM;
    n->kids = k;
    n->kcap = cap;
    return 0;
}

static void kids_append(struct xsim_node *parent, struct xsim_node *kid, uint64_t gen)
{
    parent->kids[parent->nkids++] = kid;
    parent->kids_bytes += (uint32_t)strlen(kid->name) + 1;
    parent->gen = gen;
}

int xsim_node_set_value(struct xsim_node *n, const void *val, uint32_t vlen, uint64_t gen)
{
    char *v = NULL;

    if (vlen) {
        v = malloc(vlen);
        if (!v)
            return -ENOMEM;
        memcpy(v, val, vlen);
    }
    free(n->val);
    n->val = v;
    n->vlen = vlen;
    n->gen = gen;
    return 0;
}

struct xsim_node *xsim_create(struct xsim_node **rootp, const char *path, const void *val,
                              uint32_t vlen, long owner, uint64_t gen, int *err)
{
    struct xsim_node *anc, *head = NULL, *leaf = NULL, *parent;
    struct comp_iter it;
    size_t existing = 1; /* bytes of `path` naming the deepest existing node */
    unsigned missing = 0;
    int r;

    /* How much of the path exists already? */
    anc = *rootp;
    comp_init(&it, path);
    while (comp_next(&it)) {
        long k = find_kid(anc, it.c, it.len);

        if (k < 0) {
            missing = 1;
            while (comp_next(&it))
                missing++;
            break;
        }
        anc = anc->kids[k];
        existing = (size_t)(it.c + it.len - path);
    }
    if (!missing) {
        *err = -EEXIST;
        return NULL;
    }
    if (nodes_live + missing + 64 > XSIM_MAX_NODES_LIVE) {
        *err = -ENOSPC;
        return NULL;
    }

    anc = cow_prefix(rootp, path, existing, err);
    if (!anc)
        return NULL;
    if ((r = kids_reserve(anc, 1)) < 0)
        goto fail;

    /* Build the missing chain detached, then hang it in one step, so that a
     * failure half-way leaves the tree as it was. */
    parent = anc;
    comp_init(&it, path + (existing > 1 ? existing : 0));
    while (comp_next(&it)) {
        struct xsim_node *n = node_alloc(it.c, it.len);

        r = -ENOMEM;
        if (!n)
            goto fail;
        n->perms = xsim_perms_dup(parent->perms);
        if (!n->perms) {
            node_free(n);
            goto fail;
        }
        if (owner >= 0)
            n->perms->p[0].id = (uint32_t)owner;
        n->gen = gen;
        if (!head) {
            head = n;
        } else if (kids_reserve(parent, 1) < 0) {
            node_free(n);
            goto fail;
        } else {
            kids_append(parent, n, gen);
        }
        parent = leaf = n;
    }
    if (vlen && (r = xsim_node_set_value(leaf, val, vlen, gen)) < 0)
        goto fail;
    kids_append(anc, head, gen);
    return leaf;
fail:
    xsim_node_put(head);
    *err = r;
    return NULL;
}

void xsim_remove_child(struct xsim_node *parent, const char *name, uint64_t gen)
{
    long k = find_kid(parent, name, strlen(name));

    if (k < 0)
        return;
    parent->kids_bytes -= (uint32_t)strlen(parent->kids[k]->name) + 1;
    xsim_node_put(parent->kids[k]);
    memmove(&parent->kids[k], &parent->kids[k + 1],
            (parent->nkids - (uint32_t)k - 1) * sizeof(parent->kids[0]));
    parent->nkids--;
    parent->gen = gen;
}

/* `buf` holds the node's path (length len) and has room for
 * XENSTORE_ABS_PATH_MAX + 1 bytes; children are appended and cut off again. */
static int walk_post(const struct xsim_node *node, const struct xsim_node *parent, char *buf,
                     size_t len, xsim_walk_fn fn, void *arg)
{
    int r;

    for (uint32_t i = 0; i < node->nkids; i++) {
        const char *name = node->kids[i]->name;
        size_t nl = strlen(name), sep = (len > 1);

        if (len + sep + nl > XENSTORE_ABS_PATH_MAX)
            continue; /* cannot exist: paths are validated on creation */
        if (sep)
            buf[len] = '/';
        memcpy(buf + len + sep, name, nl + 1);
        r = walk_post(node->kids[i], node, buf, len + sep + nl, fn, arg);
        buf[len] = '\0';
        if (r)
            return r;
    }
    return fn(buf, node, parent, arg);
}

int xsim_walk_post(const struct xsim_node *node, const struct xsim_node *parent,
                   const char *path, xsim_walk_fn fn, void *arg)
{
    char buf[XENSTORE_ABS_PATH_MAX + 1];
    size_t len = strlen(path);

    if (len > XENSTORE_ABS_PATH_MAX)
        return -EINVAL;
    memcpy(buf, path, len + 1);
    return walk_post(node, parent, buf, len, fn, arg);
}

size_t xsim_count_owned(const struct xsim_node *root, uint32_t domid)
{
    size_t n = root->perms->p[0].id == domid;

    for (uint32_t i = 0; i < root->nkids; i++)
        n += xsim_count_owned(root->kids[i], domid);
    return n;
}

unsigned xsim_count_missing(struct xsim_node *root, const char *path)
{
    struct comp_iter it;
    struct xsim_node *n = root;
    unsigned missing = 0;

    comp_init(&it, path);
    while (comp_next(&it)) {
        long k = n ? find_kid(n, it.c, it.len) : -1;

        if (k < 0) {
            n = NULL;
            missing++;
        } else {
            n = n->kids[k];
        }
    }
    return missing;
}
