/* xensim.c — the simulated hypervisor's world: creation and attachment,
 * the lock, domains, handles, pool pages, reaping, counters.
 * See xensim-int.h for the layout and xensim.h for the API.
 */
#include "xensim-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xen/xen.h>

__thread struct xs_world *xs_w;
static pthread_mutex_t attach_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t align_page(uint64_t v)
{
    return (v + XS_PAGE_SIZE - 1) & ~(uint64_t)(XS_PAGE_SIZE - 1);
}

static void layout(struct xs_hdr *h, uint32_t nr_pages)
{
    uint64_t off = align_page(sizeof(*h));

    h->hdr_size = sizeof(*h);
    h->nr_pages = nr_pages;
    h->off_doms = off;
    off = align_page(off + sizeof(struct xs_dom) * XS_MAX_DOMS);
    h->off_gnt = off;
    off = align_page(off + sizeof(struct xs_gnt) * (uint64_t)XS_MAX_DOMS * XS_MAX_GREFS);
    h->off_ports = off;
    off = align_page(off + sizeof(struct xs_port) * (uint64_t)XS_MAX_DOMS * XS_MAX_PORTS);
    h->off_handles = off;
    off = align_page(off + sizeof(struct xs_handle) * XS_MAX_HANDLES);
    h->off_hrings = off;
    off = align_page(off + sizeof(uint32_t) * (uint64_t)XS_MAX_HANDLES * XS_HRING);
    h->off_maps = off;
    off = align_page(off + sizeof(struct xs_map) * (uint64_t)XS_MAX_MAPS);
    h->off_pages = off;
    off = align_page(off + sizeof(struct xs_page) * (uint64_t)nr_pages);
    h->off_pool = off;
    h->file_size = off + (uint64_t)nr_pages * XS_PAGE_SIZE;
}

static int join_path(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static uint64_t random_id(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
}

/* Initialises an empty, flock()ed world file. */
static int world_init_fd(int fd, uint32_t nr_pages)
{
    struct xs_hdr tmp = {0};
    pthread_mutexattr_t ma;
    struct xs_hdr *h;
    struct xs_dom *doms;
    int r;

    layout(&tmp, nr_pages);
    if (ftruncate(fd, (off_t)tmp.file_size) < 0)
        return -errno;
    h = mmap(NULL, tmp.off_pool, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED)
        return -errno;
    *h = tmp;
    h->magic = XS_MAGIC;
    h->version = XS_VERSION;
    h->world_id = random_id();
    h->copy_check = XENSIM_COPY_GNTDEV;
    h->page_free = -1;
    h->map_free = -1;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    r = pthread_mutex_init(&h->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    if (r) {
        (void)munmap(h, tmp.off_pool);
        return -r;
    }
    doms = (struct xs_dom *)((char *)h + h->off_doms);
    for (unsigned i = 0; i < XS_MAX_DOMS; i++)
        doms[i].domid = -1;
    /* dom0 always exists. */
    doms[0].domid = 0;
    doms[0].state = XS_DOM_ALIVE;
    doms[0].gen = 1;
    doms[0].nr_grant_frames = 1;
    doms[0].next_ref = GNTTAB_NR_RESERVED_ENTRIES;
    atomic_store_explicit((_Atomic uint32_t *)&h->ready, 1, memory_order_release);
    (void)munmap(h, tmp.off_pool);
    return 0;
}

static int world_create_at(const char *dir, unsigned nr_pages, bool excl)
{
    char path[PATH_MAX];
    struct stat st;
    int fd, r;

    if (nr_pages == 0)
        nr_pages = XS_DEFAULT_PAGES;
    if (nr_pages > XS_MAX_PAGES)
        return -ERANGE;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return -errno;
    if ((r = join_path(path, sizeof(path), dir, "ev")) < 0)
        return r;
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return -errno;
    if ((r = join_path(path, sizeof(path), dir, "world")) < 0)
        return r;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (excl ? O_EXCL : 0), 0600);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX) < 0) {
        r = -errno;
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        r = -errno;
        goto out;
    }
    if (st.st_size != 0)
        r = excl ? -EEXIST : 0;
    else
        r = world_init_fd(fd, nr_pages);
out:
    (void)close(fd); /* drops the flock */
    return r;
}

XS_EXPORT int xensim_world_create(const char *dir, unsigned nr_pages)
{
    if (!dir || !*dir)
        return -EINVAL;
    return world_create_at(dir, nr_pages, true);
}

XS_EXPORT int xensim_world_destroy(const char *dir)
{
    char path[PATH_MAX];
    DIR *d;
    struct dirent *de;
    int r;

    if (!dir || !*dir)
        return -EINVAL;
    if ((r = join_path(path, sizeof(path), dir, "ev")) < 0)
        return r;
    d = opendir(path);
    if (d) {
        while ((de = readdir(d))) {
            char p2[PATH_MAX];
            if (de->d_name[0] == '.')
                continue;
            if (snprintf(p2, sizeof(p2), "%s/%s", path, de->d_name) < (int)sizeof(p2))
                (void)unlink(p2);
        }
        closedir(d);
        (void)rmdir(path);
    }
    if ((r = join_path(path, sizeof(path), dir, "world")) < 0)
        return r;
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    (void)rmdir(dir);
    return 0;
}

static void world_detach(struct xs_world *w)
{
    if (!w)
        return;
    if (w->hdr)
        (void)munmap(w->hdr, w->meta_len);
    if (w->pool)
        (void)munmap(w->pool, w->pool_len);
    if (w->fd >= 0)
        (void)close(w->fd);
    free(w->dir);
    free(w);
}

static struct xs_world *world_attach(const char *dir)
{
    struct xs_world *w;
    struct xs_hdr h;
    struct stat st;
    char path[PATH_MAX];
    int r;

    r = world_create_at(dir, 0, false);
    if (r < 0) {
        errno = -r;
        return NULL;
    }
    w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->fd = -1;
    w->dir = strdup(dir);
    if (!w->dir)
        goto fail;
    if ((r = join_path(path, sizeof(path), dir, "world")) < 0) {
        errno = -r;
        goto fail;
    }
    w->fd = open(path, O_RDWR | O_CLOEXEC);
    if (w->fd < 0 || fstat(w->fd, &st) < 0)
        goto fail;
    w->dev = st.st_dev;
    w->ino = st.st_ino;
    if (pread(w->fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.magic != XS_MAGIC ||
        h.version != XS_VERSION || h.hdr_size != sizeof(h) || !h.ready) {
        errno = EPROTO;
        goto fail;
    }
    w->meta_len = h.off_pool;
    w->hdr = mmap(NULL, w->meta_len, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd, 0);
    if (w->hdr == MAP_FAILED) {
        w->hdr = NULL;
        goto fail;
    }
    /* The pool as well, once per process: a grant copy is then a memcpy,
     * as Xen's is, not a pread/pwrite pair on the world file. */
    w->pool_len = (size_t)(h.file_size - h.off_pool);
    w->pool = mmap(NULL, w->pool_len, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd,
                   (off_t)h.off_pool);
    if (w->pool == MAP_FAILED) {
        w->pool = NULL;
        goto fail;
    }
    w->doms = (struct xs_dom *)((char *)w->hdr + h.off_doms);
    w->gnt = (struct xs_gnt *)((char *)w->hdr + h.off_gnt);
    w->ports = (struct xs_port *)((char *)w->hdr + h.off_ports);
    w->handles = (struct xs_handle *)((char *)w->hdr + h.off_handles);
    w->hrings = (uint32_t *)((char *)w->hdr + h.off_hrings);
    w->maps = (struct xs_map *)((char *)w->hdr + h.off_maps);
    w->pages = (struct xs_page *)((char *)w->hdr + h.off_pages);
    return w;
fail:
    r = errno;
    world_detach(w);
    errno = r;
    return NULL;
}

#define XS_MAX_ATTACHED 32u
static struct xs_world *attached[XS_MAX_ATTACHED];

struct xs_world *xs_world_get(void)
{
    const char *dir = getenv(XENSIM_ENV_DIR);
    struct xs_world *w = NULL;
    char path[PATH_MAX];
    struct stat st;
    bool have_st;

    if (!dir || !*dir) {
        errno = ENOENT; /* like a missing /dev/xen/gntdev */
        return NULL;
    }
    have_st = join_path(path, sizeof(path), dir, "world") == 0 && stat(path, &st) == 0;
    pthread_mutex_lock(&attach_lock);
    for (unsigned i = 0; i < XS_MAX_ATTACHED; i++) {
        struct xs_world *a = attached[i];
        if (!a)
            continue;
        if (!strcmp(a->dir, dir) && have_st && a->dev == st.st_dev && a->ino == st.st_ino) {
            w = a;
        } else if (a->users == 0) {
            /* nobody uses it: forget it (its file may be gone) */
            world_detach(a);
            attached[i] = NULL;
        }
    }
    if (!w) {
        unsigned i = 0;
        while (i < XS_MAX_ATTACHED && attached[i])
            i++;
        if (i == XS_MAX_ATTACHED) {
            pthread_mutex_unlock(&attach_lock);
            errno = EMFILE;
            return NULL;
        }
        w = world_attach(dir);
        attached[i] = w;
    }
    if (w)
        w->users++;
    pthread_mutex_unlock(&attach_lock);
    xs_w = w;
    return w;
}

void xs_world_put(struct xs_world *w)
{
    pthread_mutex_lock(&attach_lock);
    if (w && w->users)
        w->users--;
    pthread_mutex_unlock(&attach_lock);
}

void xs_lock(void)
{
    int r = pthread_mutex_lock(&xs_w->hdr->lock);
    if (r == EOWNERDEAD)
        (void)pthread_mutex_consistent(&xs_w->hdr->lock);
}

void xs_unlock(void)
{
    (void)pthread_mutex_unlock(&xs_w->hdr->lock);
}

int xs_self_domid(void)
{
    const char *s = getenv(XENSIM_ENV_DOMID);
    char *end;
    unsigned long v;

    if (!s || !*s)
        return 0;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v >= DOMID_FIRST_RESERVED) {
        errno = EINVAL;
        return -1;
    }
    return (int)v;
}

/* ---- domains ---------------------------------------------------------- */

int xs_dom_find(uint32_t domid)
{
    for (unsigned i = 0; i < XS_MAX_DOMS; i++)
        if (xs_w->doms[i].domid == (int32_t)domid)
            return (int)i;
    return -1;
}

static void dom_revive(int slot, uint32_t domid)
{
    struct xs_dom *d = &xs_w->doms[slot];
    uint32_t gen = d->gen;
    uint32_t pages = d->domid == (int32_t)domid ? d->nr_pages : 0;

    memset(d, 0, sizeof(*d));
    d->domid = (int32_t)domid;
    d->state = XS_DOM_ALIVE;
    d->gen = gen + 1;
    d->nr_grant_frames = 1;
    d->next_ref = GNTTAB_NR_RESERVED_ENTRIES;
    d->nr_pages = pages; /* pages of its former life still mapped by others */
}

int xs_dom_get_alive(uint32_t domid, bool create)
{
    int slot = xs_dom_find(domid);

    if (slot >= 0 && xs_w->doms[slot].state == XS_DOM_ALIVE)
        return slot;
    if (!create)
        return -ESRCH;
    if (domid >= DOMID_FIRST_RESERVED)
        return -EINVAL;
    if (slot < 0) {
        /* A free slot, else a dead domain's slot that nothing refers to. */
        for (unsigned i = 0; i < XS_MAX_DOMS && slot < 0; i++)
            if (xs_w->doms[i].state == XS_DOM_FREE)
                slot = (int)i;
        for (unsigned i = 0; i < XS_MAX_DOMS && slot < 0; i++)
            if (xs_w->doms[i].state == XS_DOM_DEAD && xs_w->doms[i].nr_pages == 0 &&
                xs_w->doms[i].nr_maps == 0)
                slot = (int)i;
        if (slot < 0)
            return -ENOSPC;
        /* Its grant table and ports are clean: a dead domain was cleaned
         * when it died, a free slot never used. */
    }
    dom_revive(slot, domid);
    return slot;
}

XS_EXPORT int xensim_domain_create(uint32_t domid)
{
    int r;

    if (!xs_world_get())
        return -errno;
    xs_lock();
    r = xs_dom_get_alive(domid, true);
    xs_unlock();
    xs_world_put(xs_w);
    return r < 0 ? r : 0;
}

static void dom_destroy_locked(int slot)
{
    struct xs_dom *d = &xs_w->doms[slot];

    for (uint32_t ref = 0; ref < XS_MAX_GREFS; ref++) {
        struct xs_gnt *g = xs_gnt_at(slot, ref);
        if (g->in_use && !g->revoke_pending)
            xs_gnt_revoke_locked(slot, ref);
    }
    for (uint32_t port = 1; port < XS_MAX_PORTS; port++)
        if (xs_port_at(slot, port)->state != XS_PORT_FREE)
            xs_port_close_locked(slot, port);
    for (unsigned i = 0; i < XS_MAX_HANDLES; i++) {
        struct xs_handle *h = &xs_w->handles[i];
        if (h->kind == XS_H_GNTSHR && h->domid == d->domid)
            h->nr_shared = 0;
    }
    d->state = XS_DOM_DEAD;
    d->gen++;
    xs_virq_raise_locked(VIRQ_DOM_EXC);
}

XS_EXPORT int xensim_domain_destroy(uint32_t domid)
{
    int slot, r = 0;

    if (domid == 0)
        return -EPERM;
    if (!xs_world_get())
        return -errno;
    xs_lock();
    slot = xs_dom_find(domid);
    if (slot < 0 || xs_w->doms[slot].state != XS_DOM_ALIVE)
        r = -ESRCH;
    else
        dom_destroy_locked(slot);
    xs_unlock();
    xs_world_put(xs_w);
    return r;
}

XS_EXPORT int xensim_set_copy_check(enum xensim_copy_check mode)
{
    if (mode != XENSIM_COPY_GNTDEV && mode != XENSIM_COPY_XEN)
        return -EINVAL;
    if (!xs_world_get())
        return -errno;
    xs_lock();
    xs_w->hdr->copy_check = mode;
    xs_unlock();
    xs_world_put(xs_w);
    return 0;
}

/* ---- handles ---------------------------------------------------------- */

/* Field 22 of /proc/<pid>/stat (start time in clock ticks), and whether the
 * process is a zombie. 0 when the process does not exist. */
static uint64_t proc_starttime(pid_t pid, bool *zombie)
{
    char path[64], buf[1024], *p;
    uint64_t v = 0;
    ssize_t n;
    int fd;

    *zombie = false;
    (void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    (void)close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    p = strrchr(buf, ')');
    if (!p)
        return 0;
    p += 2; /* state */
    *zombie = *p == 'Z' || *p == 'X';
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (p)
        v = strtoull(p, NULL, 10);
    return v;
}

static bool handle_owner_alive(const struct xs_handle *h)
{
    bool zombie;
    uint64_t st;

    if (h->pid == getpid())
        return true;
    if (kill(h->pid, 0) < 0 && errno == ESRCH)
        return false;
    st = proc_starttime(h->pid, &zombie);
    return st != 0 && st == h->starttime && !zombie;
}

int xs_handle_alloc(enum xs_handle_kind kind, int domid)
{
    struct xs_handle *h;
    bool zombie;
    uint32_t gen;
    int slot = -1, dom;

    dom = xs_dom_get_alive((uint32_t)domid, true);
    if (dom < 0)
        return dom;
    for (int pass = 0; pass < 2 && slot < 0; pass++) {
        if (pass == 1)
            xs_reap_locked();
        for (unsigned i = 0; i < XS_MAX_HANDLES && slot < 0; i++)
            if (xs_w->handles[i].kind == XS_H_FREE)
                slot = (int)i;
    }
    if (slot < 0)
        return -EMFILE;
    h = &xs_w->handles[slot];
    gen = h->gen;
    memset(h, 0, sizeof(*h));
    h->gen = gen + 1;
    h->kind = kind;
    h->domid = domid;
    h->dom_gen = xs_w->doms[dom].gen;
    h->pid = getpid();
    h->starttime = proc_starttime(h->pid, &zombie);
    h->restrict_domid = UINT32_MAX;
    switch (kind) {
    case XS_H_GNTTAB: xs_w->doms[dom].nr_gnttab_h++; break;
    case XS_H_GNTSHR: xs_w->doms[dom].nr_gntshr_h++; break;
    case XS_H_EVTCHN: xs_w->doms[dom].nr_evtchn_h++; break;
    default: break;
    }
    return slot;
}

bool xs_handle_valid(int slot)
{
    struct xs_handle *h = &xs_w->handles[slot];
    int dom = xs_dom_find((uint32_t)h->domid);
    return dom >= 0 && xs_w->doms[dom].state == XS_DOM_ALIVE &&
           xs_w->doms[dom].gen == h->dom_gen;
}

void xs_handle_free(int slot)
{
    struct xs_handle *h = &xs_w->handles[slot];
    int dom = xs_dom_find((uint32_t)h->domid);

    if (dom >= 0) {
        struct xs_dom *d = &xs_w->doms[dom];
        switch (h->kind) {
        case XS_H_GNTTAB: if (d->nr_gnttab_h) d->nr_gnttab_h--; break;
        case XS_H_GNTSHR: if (d->nr_gntshr_h) d->nr_gntshr_h--; break;
        case XS_H_EVTCHN: if (d->nr_evtchn_h) d->nr_evtchn_h--; break;
        default: break;
        }
    }
    h->kind = XS_H_FREE;
    h->pid = 0;
}

void xs_reap_locked(void)
{
    for (unsigned i = 0; i < XS_MAX_HANDLES; i++) {
        struct xs_handle *h = &xs_w->handles[i];
        if (h->kind == XS_H_FREE || handle_owner_alive(h))
            continue;
        switch (h->kind) {
        case XS_H_GNTTAB: xs_gnttab_release_locked((int)i, false); break;
        case XS_H_GNTSHR: xs_gntshr_release_locked((int)i); break;
        case XS_H_EVTCHN: {
            char path[PATH_MAX];
            xs_evtchn_release_locked((int)i);
            if (xs_fifo_path((int)i, h->gen, path, sizeof(path)) == 0)
                (void)unlink(path);
            break;
        }
        default: break;
        }
        xs_handle_free((int)i);
        xs_w->hdr->nr_reaped++;
    }
}

XS_EXPORT int xensim_reap(void)
{
    uint64_t before;
    int n;

    if (!xs_world_get())
        return -errno;
    xs_lock();
    before = xs_w->hdr->nr_reaped;
    xs_reap_locked();
    n = (int)(xs_w->hdr->nr_reaped - before);
    xs_unlock();
    xs_world_put(xs_w);
    return n;
}

/* ---- pool pages ------------------------------------------------------- */

int64_t xs_page_alloc(int dom)
{
    struct xs_hdr *hdr = xs_w->hdr;
    uint32_t page;

    if (hdr->page_free >= 0) {
        page = (uint32_t)hdr->page_free;
        hdr->page_free = xs_w->pages[page].next_free;
    } else if (hdr->page_bump < hdr->nr_pages) {
        page = hdr->page_bump++;
    } else {
        return -ENOMEM;
    }
    xs_w->pages[page].owner = dom;
    xs_w->pages[page].refs = 1;
    xs_w->pages[page].next_free = -1;
    xs_w->pages[page].ref = 0;
    xs_w->doms[dom].nr_pages++;
    hdr->pages_used++;
    return page;
}

void xs_page_put(uint32_t page)
{
    struct xs_page *p = &xs_w->pages[page];

    if (p->refs == 0 || --p->refs)
        return;
    if (p->owner >= 0 && xs_w->doms[p->owner].nr_pages)
        xs_w->doms[p->owner].nr_pages--;
    p->owner = -1;
    /* Give the memory back and make sure the next owner starts from zeroes. */
    if (fallocate(xs_w->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)xs_page_off(page),
                  XS_PAGE_SIZE) < 0) {
        static const char zero[XS_PAGE_SIZE];
        (void)!pwrite(xs_w->fd, zero, sizeof(zero), (off_t)xs_page_off(page));
    }
    p->next_free = xs_w->hdr->page_free;
    xs_w->hdr->page_free = (int32_t)page;
    xs_w->hdr->pages_used--;
}

/* ---- counters --------------------------------------------------------- */

static void fill_stats(int slot, struct xensim_dom_stats *st)
{
    const struct xs_dom *d = &xs_w->doms[slot];

    memset(st, 0, sizeof(*st));
    st->domid = d->domid;
    st->alive = d->state == XS_DOM_ALIVE;
    st->pages = d->nr_pages;
    st->grants = d->nr_grants;
    st->pinned = d->nr_pinned;
    st->maps = d->nr_maps;
    st->ports = d->nr_ports;
    st->gnttab_handles = d->nr_gnttab_h;
    st->gntshr_handles = d->nr_gntshr_h;
    st->evtchn_handles = d->nr_evtchn_h;
    st->copy_ok = d->nr_copy_ok;
    st->copy_err = d->nr_copy_err;
    st->map_err = d->nr_map_err;
    st->notify = d->nr_notify;
}

XS_EXPORT int xensim_dom_stats(uint32_t domid, struct xensim_dom_stats *st)
{
    int slot, r = 0;

    if (!st)
        return -EINVAL;
    if (!xs_world_get())
        return -errno;
    xs_lock();
    xs_reap_locked();
    slot = xs_dom_find(domid);
    if (slot < 0)
        r = -ENOENT;
    else
        fill_stats(slot, st);
    xs_unlock();
    xs_world_put(xs_w);
    return r;
}

XS_EXPORT int xensim_dom_list(struct xensim_dom_stats *out, unsigned max)
{
    int n = 0;

    if (!xs_world_get())
        return -errno;
    xs_lock();
    xs_reap_locked();
    for (unsigned i = 0; i < XS_MAX_DOMS; i++) {
        if (xs_w->doms[i].state == XS_DOM_FREE)
            continue;
        if ((unsigned)n < max)
            fill_stats((int)i, &out[n]);
        n++;
    }
    xs_unlock();
    xs_world_put(xs_w);
    return n;
}

XS_EXPORT int xensim_grant_entry(uint32_t domid, uint32_t ref, uint16_t *flags,
                                 uint16_t *granted_to)
{
    int slot, r = 0;

    if (ref >= XS_MAX_GREFS)
        return -EINVAL;
    if (!xs_world_get())
        return -errno;
    xs_lock();
    slot = xs_dom_find(domid);
    if (slot < 0) {
        r = -ENOENT;
    } else {
        const struct xs_gnt *g = xs_gnt_at(slot, ref);
        if (flags)
            *flags = g->e.flags;
        if (granted_to)
            *granted_to = g->e.domid;
    }
    xs_unlock();
    xs_world_put(xs_w);
    return r;
}
