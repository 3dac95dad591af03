/* xs-tree — the node store of xs-sim, the test xenstore daemon.
 *
 * A store is a tree of nodes reached from a root pointer. Nodes are
 * reference-counted and shared copy-on-write between versions of the tree:
 * a transaction starts by taking a reference on the live root (O(1)), and
 * its first change to a node copies that node and the path above it, so a
 * transaction costs memory in proportion to what it changes, not to the size
 * of the store. Committing a transaction is swapping root pointers.
 *
 * Every node holds a value (binary, may contain NULs), an ordered list of
 * children (insertion order, as xenstored returns them) and a permission
 * list in xenstored's form: entry 0 names the owner and, in its `perms`, the
 * access of every domain not listed; entries 1..n grant access to one domain
 * each. See xsim_perm_for() for how a domain's rights are derived.
 *
 * Paths handed to this module are canonical (validated by xsim_path_check):
 * absolute, '/'-separated, no empty component, no trailing '/', except the
 * root "/" itself.
 *
 * Errors are returned as negative errno values. Nothing here logs.
 * Single-threaded: the server's event loop is the only caller.
 */
#ifndef XBR_XS_TREE_H
#define XBR_XS_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <xenstore_lib.h> /* XS_PERM_READ / XS_PERM_WRITE */

/* Highest domid a permission or a connection can name (DOMID_FIRST_RESERVED - 1). */
#define XSIM_DOMID_MAX 0x7fefu

/* Bounds that keep the store's memory finite whatever the clients do. */
#define XSIM_MAX_NODES_LIVE (256u * 1024u) /* node objects, all versions together */
#define XSIM_MAX_PERMS 64u                 /* entries in one permission list */

struct xsim_perm {
    uint32_t id;   /* domid */
    uint32_t perms; /* XS_PERM_READ | XS_PERM_WRITE */
};

struct xsim_perms {
    uint32_t num; /* >= 1 */
    struct xsim_perm p[];
};

struct xsim_node {
    uint32_t refs;
    uint32_t vlen;
    char *name; /* last path component; "" for the root */
    char *val;  /* vlen bytes, not NUL-terminated (NULL when vlen == 0) */
    struct xsim_perms *perms; /* owned by this node */
    struct xsim_node **kids;
    uint32_t nkids, kcap;
    uint32_t kids_bytes; /* sum of (strlen(kid name) + 1): XS_DIRECTORY's size */
    uint64_t gen;        /* changes on every change of this node */
};

/* A new tree: the root "/" owned by dom0, no access for others ("n0"). */
struct xsim_node *xsim_tree_new(void);
void xsim_node_get(struct xsim_node *n);
void xsim_node_put(struct xsim_node *n); /* NULL ok */

/* Number of node objects alive (all tree versions). */
size_t xsim_nodes_live(void);

/* Validation of a canonical absolute path (see the header comment);
 * also enforces XENSTORE_ABS_PATH_MAX and xenstored's character set
 * [A-Za-z0-9-/_@]. */
bool xsim_path_valid(const char *path);

/* The node at `path`, or NULL. Borrowed reference. */
struct xsim_node *xsim_lookup(struct xsim_node *root, const char *path);
/* The deepest existing node on the way to `path` that is not `path` itself
 * (its closest existing ancestor). Never NULL for a valid path. */
struct xsim_node *xsim_lookup_ancestor(struct xsim_node *root, const char *path);
/* The parent of `path` if it exists (NULL for the root or a missing parent). */
struct xsim_node *xsim_lookup_parent(struct xsim_node *root, const char *path);

/* Makes the node at `path` (which must exist) and every node above it
 * private to the tree rooted at *rootp (copying shared ones), and returns it.
 * NULL with *err = -ENOMEM / -ENOSPC when out of memory or node budget. */
struct xsim_node *xsim_cow(struct xsim_node **rootp, const char *path, int *err);

/* Creates `path` and any missing ancestors, each inheriting the permissions
 * of its parent; when `owner` >= 0 the new nodes' owner is replaced by it
 * (unprivileged domains own what they create). The new leaf gets the given
 * value. Returns the leaf, NULL and *err on failure (nothing changed then,
 * apart from copy-on-write duplicates that are equal to what they replace). */
struct xsim_node *xsim_create(struct xsim_node **rootp, const char *path, const void *val,
                              uint32_t vlen, long owner, uint64_t gen, int *err);

/* Replaces a (private, from xsim_cow) node's value. 0 or -ENOMEM. */
int xsim_node_set_value(struct xsim_node *n, const void *val, uint32_t vlen, uint64_t gen);

/* Removes `path` (must exist, not the root) with its subtree; `parent` must
 * be the private parent from xsim_cow(). */
void xsim_remove_child(struct xsim_node *parent, const char *name, uint64_t gen);

/* Calls fn(path, node, parent, arg) for every node of the subtree at `path`,
 * children before their parent (the order xenstored fires removal watches in).
 * Stops early and returns fn's value when fn returns non-zero. */
typedef int (*xsim_walk_fn)(const char *path, const struct xsim_node *node,
                            const struct xsim_node *parent, void *arg);
int xsim_walk_post(const struct xsim_node *node, const struct xsim_node *parent,
                   const char *path, xsim_walk_fn fn, void *arg);

/* Nodes of the tree owned by `domid` (for the per-domain quota). */
size_t xsim_count_owned(const struct xsim_node *root, uint32_t domid);
/* Nodes xsim_create() would have to make for `path`. */
unsigned xsim_count_missing(struct xsim_node *root, const char *path);

/* Permissions. */
struct xsim_perms *xsim_perms_new(uint32_t num); /* zeroed; NULL on ENOMEM */
struct xsim_perms *xsim_perms_dup(const struct xsim_perms *p);
size_t xsim_perms_size(const struct xsim_perms *p);
/* Parses `num` NUL-separated strings ("r1", "b0", "n7", "w2"). 0 or -EINVAL. */
int xsim_perms_parse(const char *strings, size_t len, struct xsim_perms **out);
/* Formats as NUL-separated strings into buf; returns the length or -E2BIG. */
int xsim_perms_format(const struct xsim_perms *p, char *buf, size_t size);
/* What `domid` may do with a node having these permissions:
 * XS_PERM_READ|XS_PERM_WRITE, plus XS_PERM_OWNER for the owner and for a
 * privileged domain (xenstored's perm_for_conn()). */
uint32_t xsim_perm_for(const struct xsim_perms *p, uint32_t domid, bool privileged);

#endif
