/* test-xensim — the Xen simulator (libxensim) and the user-space netfront.
 *
 * Every test runs in a fresh world under /dev/shm (XENSIM_DIR). Processes
 * that play a domain are forked children with XENSIM_DOMID set; a child never
 * uses ASSERT (that would longjmp inside the child): it reports through its
 * exit status or a pipe.
 *
 * "tb" is a tiny netback made of the same simulator calls a real one uses:
 * it maps the rings, binds the event channels, copies TX packets out with
 * grant copy, answers them, and (echo mode) sends each packet back on the RX
 * ring with the same GSO extra info. It also reports what it saw of each
 * packet, so the attack switches can be checked for doing what they say.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>

#ifndef mb
#define mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define wmb() __atomic_thread_fence(__ATOMIC_RELEASE)
#endif
#include <xen/io/netif.h>
#include <xen/io/xenbus.h>

#include "netfront.h"
#include "test.h"
#include "util/util.h"
#include "xensim.h"

#define PAGE 4096u

/* ---- fixture ------------------------------------------------------------ */

static char world_dir[128];
static int world_seq;

static void world_cleanup(void)
{
    if (world_dir[0]) {
        /* xs-sim's sockets, if it died without removing them */
        for (unsigned d = 0; d < 8; d++) {
            char path[160];
            (void)snprintf(path, sizeof(path), "%s/dom%u", world_dir, d);
            (void)unlink(path);
        }
        (void)xensim_world_destroy(world_dir);
    }
    world_dir[0] = 0;
}

static void set_domid(unsigned d)
{
    char b[16];
    (void)snprintf(b, sizeof(b), "%u", d);
    (void)setenv(XENSIM_ENV_DOMID, b, 1);
}

/* A fresh world; this process is dom0. */
static void world_fresh(void)
{
    static bool registered;

    if (!registered) {
        atexit(world_cleanup);
        registered = true;
    }
    world_cleanup();
    (void)snprintf(world_dir, sizeof(world_dir), "/dev/shm/xensim-test.%d.%d", (int)getpid(),
                   world_seq++);
    ASSERT_EQ(xensim_world_create(world_dir, 8192), 0);
    ASSERT_EQ(setenv(XENSIM_ENV_DIR, world_dir, 1), 0);
    set_domid(0);
}

static void assert_clean(unsigned domid)
{
    struct xensim_dom_stats st;

    ASSERT_EQ(xensim_dom_stats(domid, &st), 0);
    if (st.maps || st.ports || st.pinned || st.gnttab_handles || st.gntshr_handles ||
        st.evtchn_handles)
        fprintf(stderr, "  dom%u: maps %u ports %u pinned %u handles %u/%u/%u\n", domid, st.maps,
                st.ports, st.pinned, st.gnttab_handles, st.gntshr_handles, st.evtchn_handles);
    ASSERT_EQ(st.maps, 0);
    ASSERT_EQ(st.ports, 0);
    ASSERT_EQ(st.pinned, 0);
    ASSERT_EQ(st.gnttab_handles + st.gntshr_handles + st.evtchn_handles, 0);
}

/* fork(), and the child dies with the test (a failed ASSERT must not leave
 * children holding meson's output pipe). */
static pid_t fork_child(void)
{
    pid_t parent = getpid(), pid = fork();

    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(99);
    }
    return pid;
}

static int wait_child(pid_t pid)
{
    int status;

    if (waitpid(pid, &status, 0) != pid)
        return -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

static bool read_full(int fd, void *buf, size_t len, int timeout_ms)
{
    uint8_t *p = buf;

    while (len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (poll(&pfd, 1, timeout_ms) <= 0)
            return false;
        n = read(fd, p, len);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool write_full(int fd, const void *buf, size_t len)
{
    return write(fd, buf, len) == (ssize_t)len;
}

/* ---- grant tables ----------------------------------------------------------- */

/* A child that plays dom `domid`: shares `count` pages to `to_domid`
 * (writable or not), fills page i with byte 0x10+i, writes the refs to
 * `out`, waits for one byte on `in` (the parent's go: 'k' keep, 'u' unshare
 * now, 'x' exit without cleaning), reports over `out` the first byte of its
 * page 0 as it was when the go came (0xEE if dom0 wrote it), then waits for
 * the final byte and closes its handle. */
struct share_cmd {
    unsigned count;
    bool writable;
    uint32_t to_domid;
};

static void share_child(unsigned domid, struct share_cmd cmd, int in, int out)
{
    xengntshr_handle *gs;
    uint32_t refs[16];
    uint8_t *p, go, seen;

    set_domid(domid);
    gs = xengntshr_open(NULL, 0);
    if (!gs)
        _exit(10);
    p = xengntshr_share_pages(gs, cmd.to_domid, (int)cmd.count, refs, cmd.writable);
    if (!p)
        _exit(11);
    for (unsigned i = 0; i < cmd.count; i++)
        memset(p + i * PAGE, 0x10 + (int)i, PAGE);
    if (!write_full(out, refs, sizeof(refs[0]) * cmd.count))
        _exit(12);
    if (!read_full(in, &go, 1, 10000))
        _exit(13);
    seen = p[0];
    if (go == 'u')
        (void)xengntshr_unshare(gs, p, cmd.count);
    if (!write_full(out, &seen, 1))
        _exit(14);
    if (go == 'x')
        _exit(0); /* dies holding its grants: reaping must clean */
    if (!read_full(in, &go, 1, 10000))
        _exit(15);
    (void)xengntshr_close(gs);
    _exit(0);
}

struct sharer {
    pid_t pid;
    int to, from;
    uint32_t refs[16];
};

static void sharer_start(struct sharer *s, unsigned domid, unsigned count, bool writable,
                         uint32_t to_domid)
{
    int a[2], b[2];
    struct share_cmd cmd = {count, writable, to_domid};

    ASSERT_EQ(pipe(a), 0);
    ASSERT_EQ(pipe(b), 0);
    s->pid = fork_child();
    ASSERT_TRUE(s->pid >= 0);
    if (s->pid == 0) {
        close(a[1]);
        close(b[0]);
        share_child(domid, cmd, a[0], b[1]);
    }
    close(a[0]);
    close(b[1]);
    s->to = a[1];
    s->from = b[0];
    ASSERT_TRUE(read_full(s->from, s->refs, sizeof(s->refs[0]) * count, 10000));
}

/* go: 'k' keep, 'u' unshare, 'x' exit without cleaning. Returns what the
 * child saw in its page 0 byte 0. */
static uint8_t sharer_go(struct sharer *s, char go)
{
    uint8_t seen = 0;
    ASSERT_TRUE(write_full(s->to, &go, 1));
    ASSERT_TRUE(read_full(s->from, &seen, 1, 10000));
    return seen;
}

static void sharer_finish(struct sharer *s)
{
    ASSERT_TRUE(write_full(s->to, "q", 1) || errno == EPIPE);
    ASSERT_EQ(wait_child(s->pid), 0);
    close(s->to);
    close(s->from);
}

TEST(grant_map_shares_bytes_between_processes)
{
    struct sharer s;
    xengnttab_handle *gt;
    uint8_t *m;
    struct xensim_dom_stats st;

    world_fresh();
    sharer_start(&s, 1, 3, true, 0);
    gt = xengnttab_open(NULL, 0);
    ASSERT_TRUE(gt != NULL);
    m = xengnttab_map_domain_grant_refs(gt, 3, 1, s.refs, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(m != NULL);
    for (unsigned i = 0; i < 3; i++) {
        ASSERT_EQ(m[i * PAGE], 0x10 + i);
        ASSERT_EQ(m[i * PAGE + PAGE - 1], 0x10 + i);
    }
    ASSERT_EQ(xensim_dom_stats(0, &st), 0);
    ASSERT_EQ(st.maps, 3);
    ASSERT_EQ(xensim_dom_stats(1, &st), 0);
    ASSERT_EQ(st.pinned, 3);
    ASSERT_EQ(st.grants, 3);
    {
        uint16_t flags = 0, to = 99;
        ASSERT_EQ(xensim_grant_entry(1, s.refs[0], &flags, &to), 0);
        ASSERT_EQ(to, 0);
        ASSERT_TRUE(flags & GTF_permit_access);
        ASSERT_TRUE(flags & GTF_writing); /* Xen marks an entry mapped for writing */
    }
    m[0] = 0xEE; /* dom1 sees our write */
    ASSERT_EQ(sharer_go(&s, 'k'), 0xEE);
    ASSERT_EQ(xengnttab_unmap(gt, m, 2), -1); /* count must match the mapping */
    ASSERT_EQ(errno, EINVAL);
    ASSERT_EQ(xengnttab_unmap(gt, m, 3), 0);
    ASSERT_EQ(xengnttab_close(gt), 0);
    sharer_finish(&s);
    assert_clean(0);
    assert_clean(1);
    ASSERT_EQ(xensim_dom_stats(1, &st), 0);
    ASSERT_EQ(st.pages, 0);
    ASSERT_EQ(st.grants, 0);
}

TEST(grant_readonly_cannot_be_written)
{
    struct sharer s;
    xengnttab_handle *gt;
    uint8_t *m;
    pid_t pid;

    world_fresh();
    sharer_start(&s, 1, 1, false, 0);
    gt = xengnttab_open(NULL, 0);
    ASSERT_TRUE(gt != NULL);
    errno = 0;
    ASSERT_TRUE(xengnttab_map_grant_ref(gt, 1, s.refs[0], PROT_READ | PROT_WRITE) == NULL);
    ASSERT_EQ(errno, EINVAL);
    ASSERT_EQ(xensim_last_map_status(), GNTST_general_error);
    m = xengnttab_map_grant_ref(gt, 1, s.refs[0], PROT_READ);
    ASSERT_TRUE(m != NULL);
    ASSERT_EQ(m[5], 0x10);
    pid = fork_child();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        ((volatile uint8_t *)m)[0] = 1; /* must fault */
        _exit(0);
    }
    ASSERT_EQ(wait_child(pid), 128 + SIGSEGV);
    {
        /* grant copy into a read-only grant fails too, reading works */
        uint8_t buf[16] = {0};
        xengnttab_grant_copy_segment_t seg[2] = {
            {.source.virt = buf, .dest.foreign = {s.refs[0], 0, 1}, .len = 16,
             .flags = GNTCOPY_dest_gref},
            {.source.foreign = {s.refs[0], 0, 1}, .dest.virt = buf, .len = 16,
             .flags = GNTCOPY_source_gref},
        };
        ASSERT_EQ(xengnttab_grant_copy(gt, 2, seg), 0);
        ASSERT_EQ(seg[0].status, GNTST_general_error);
        ASSERT_EQ(seg[1].status, GNTST_okay);
        ASSERT_EQ(buf[15], 0x10);
    }
    ASSERT_EQ(sharer_go(&s, 'k'), 0x10);
    ASSERT_EQ(xengnttab_unmap(gt, m, 1), 0);
    ASSERT_EQ(xengnttab_close(gt), 0);
    sharer_finish(&s);
    assert_clean(0);
}

TEST(grant_map_refusals_match_xen)
{
    struct sharer s, other;
    xengnttab_handle *gt;
    uint32_t refs[2];

    world_fresh();
    sharer_start(&s, 1, 1, true, 0);
    sharer_start(&other, 2, 1, true, 7); /* granted to dom7, not to us */
    gt = xengnttab_open(NULL, 0);
    ASSERT_TRUE(gt != NULL);

    ASSERT_TRUE(xengnttab_map_grant_ref(gt, 1, 1u << 20, PROT_READ) == NULL);
    ASSERT_EQ(errno, EINVAL);
    ASSERT_EQ(xensim_last_map_status(), GNTST_bad_gntref);
    ASSERT_TRUE(xengnttab_map_grant_ref(gt, 1, 5, PROT_READ) == NULL); /* never granted */
    ASSERT_EQ(xensim_last_map_status(), GNTST_general_error);
    ASSERT_TRUE(xengnttab_map_grant_ref(gt, 2, other.refs[0], PROT_READ) == NULL);
    ASSERT_EQ(xensim_last_map_status(), GNTST_general_error);
    ASSERT_TRUE(xengnttab_map_grant_ref(gt, 42, 8, PROT_READ) == NULL); /* no such domain */
    ASSERT_EQ(xensim_last_map_status(), GNTST_bad_domain);
    /* all or nothing */
    refs[0] = s.refs[0];
    refs[1] = 1u << 20;
    ASSERT_TRUE(xengnttab_map_domain_grant_refs(gt, 2, 1, refs, PROT_READ) == NULL);
    {
        struct xensim_dom_stats st;
        ASSERT_EQ(xensim_dom_stats(0, &st), 0);
        ASSERT_EQ(st.maps, 0);
        ASSERT_EQ(st.map_err, 5);
        ASSERT_EQ(xensim_dom_stats(1, &st), 0);
        ASSERT_EQ(st.pinned, 0);
    }
    ASSERT_EQ(xengnttab_unmap(gt, (void *)0x1000, 1), -1);
    ASSERT_EQ(errno, EINVAL);
    ASSERT_EQ(xengnttab_close(gt), 0);
    (void)sharer_go(&s, 'k');
    (void)sharer_go(&other, 'k');
    sharer_finish(&s);
    sharer_finish(&other);
    assert_clean(0);
}

TEST(grant_copy_status_per_segment)
{
    struct sharer s, ro, other;
    xengnttab_handle *gt;
    uint8_t *buf;

    world_fresh();
    sharer_start(&s, 1, 2, true, 0);
    sharer_start(&ro, 2, 1, false, 0);
    sharer_start(&other, 3, 1, true, 9);
    gt = xengnttab_open(NULL, 0);
    ASSERT_TRUE(gt != NULL);
    /* a local buffer that crosses a page boundary */
    buf = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(buf != MAP_FAILED);
    memset(buf, 0, 3 * PAGE);
    {
        uint8_t *mid = buf + PAGE - 100;
        xengnttab_grant_copy_segment_t seg[] = {
            /* 0: dom1 page 0 -> local, crossing our page boundary */
            {.source.foreign = {s.refs[0], 0, 1}, .dest.virt = mid, .len = 300,
             .flags = GNTCOPY_source_gref},
            /* 1: local -> dom1 page 1 at offset 4000 (fits exactly) */
            {.source.virt = mid, .dest.foreign = {s.refs[1], 3796, 1}, .len = 300,
             .flags = GNTCOPY_dest_gref},
            /* 2: ref beyond the table */
            {.source.foreign = {1u << 20, 0, 1}, .dest.virt = buf, .len = 10,
             .flags = GNTCOPY_source_gref},
            /* 3: ref granted to dom9 */
            {.source.foreign = {other.refs[0], 0, 3}, .dest.virt = buf, .len = 10,
             .flags = GNTCOPY_source_gref},
            /* 4: read-only destination */
            {.source.virt = buf, .dest.foreign = {ro.refs[0], 0, 2}, .len = 10,
             .flags = GNTCOPY_dest_gref},
            /* 5: no such domain */
            {.source.foreign = {8, 0, 77}, .dest.virt = buf, .len = 10,
             .flags = GNTCOPY_source_gref},
            /* 6: grant to grant */
            {.source.foreign = {s.refs[0], 0, 1}, .dest.foreign = {s.refs[1], 0, 1}, .len = 64,
             .flags = GNTCOPY_source_gref | GNTCOPY_dest_gref},
            /* 7: unused ref inside the table */
            {.source.foreign = {6, 0, 1}, .dest.virt = buf, .len = 10,
             .flags = GNTCOPY_source_gref},
        };
        for (unsigned i = 0; i < XBR_ARRAY_SIZE(seg); i++)
            seg[i].status = 99;
        ASSERT_EQ(xengnttab_grant_copy(gt, XBR_ARRAY_SIZE(seg), seg), 0);
        ASSERT_EQ(seg[0].status, GNTST_okay);
        ASSERT_EQ(mid[0], 0x10);
        ASSERT_EQ(mid[299], 0x10);
        ASSERT_EQ(seg[1].status, GNTST_okay);
        ASSERT_EQ(seg[2].status, GNTST_bad_gntref);
        ASSERT_EQ(seg[3].status, GNTST_general_error);
        ASSERT_EQ(seg[4].status, GNTST_general_error);
        ASSERT_EQ(seg[5].status, GNTST_bad_domain);
        ASSERT_EQ(seg[6].status, GNTST_okay);
        ASSERT_EQ(seg[7].status, GNTST_general_error);
        /* read back what segment 1 and 6 wrote */
        memset(buf, 0, PAGE);
        {
            xengnttab_grant_copy_segment_t rd[2] = {
                {.source.foreign = {s.refs[1], 4095, 1}, .dest.virt = buf, .len = 1,
                 .flags = GNTCOPY_source_gref},
                {.source.foreign = {s.refs[1], 0, 1}, .dest.virt = buf + 1, .len = 1,
                 .flags = GNTCOPY_source_gref},
            };
            ASSERT_EQ(xengnttab_grant_copy(gt, 2, rd), 0);
            ASSERT_EQ(rd[0].status, 0);
            ASSERT_EQ(buf[0], 0x10);
            ASSERT_EQ(buf[1], 0x10);
        }
    }
    {
        /* offset + len > 4096 on a grant: gntdev refuses the whole call... */
        xengnttab_grant_copy_segment_t seg[2] = {
            {.source.foreign = {s.refs[0], 0, 1}, .dest.virt = buf, .len = 10,
             .flags = GNTCOPY_source_gref},
            {.source.foreign = {s.refs[0], 4090, 1}, .dest.virt = buf, .len = 10,
             .flags = GNTCOPY_source_gref},
        };
        ASSERT_EQ(xengnttab_grant_copy(gt, 2, seg), -1);
        ASSERT_EQ(errno, EINVAL);
        /* ...the hypercall itself reports it per segment */
        ASSERT_EQ(xensim_set_copy_check(XENSIM_COPY_XEN), 0);
        ASSERT_EQ(xengnttab_grant_copy(gt, 2, seg), 0);
        ASSERT_EQ(seg[0].status, GNTST_okay);
        ASSERT_EQ(seg[1].status, GNTST_bad_copy_arg);
        ASSERT_EQ(xensim_set_copy_check(XENSIM_COPY_GNTDEV), 0);
    }
    {
        /* local -> local is not a grant copy; a bad local buffer is EFAULT */
        xengnttab_grant_copy_segment_t seg = {.source.virt = buf, .dest.virt = buf + 8,
                                              .len = 4};
        ASSERT_EQ(xengnttab_grant_copy(gt, 1, &seg), -1);
        ASSERT_EQ(errno, EINVAL);
        seg = (xengnttab_grant_copy_segment_t){.source.foreign = {s.refs[0], 0, 1},
                                               .dest.virt = (void *)16, .len = 4,
                                               .flags = GNTCOPY_source_gref};
        ASSERT_EQ(xengnttab_grant_copy(gt, 1, &seg), -1);
        ASSERT_EQ(errno, EFAULT);
    }
    (void)munmap(buf, 3 * PAGE);
    ASSERT_EQ(xengnttab_close(gt), 0);
    (void)sharer_go(&s, 'k');
    (void)sharer_go(&ro, 'k');
    (void)sharer_go(&other, 'k');
    sharer_finish(&s);
    sharer_finish(&ro);
    sharer_finish(&other);
    assert_clean(0);
}

TEST(grant_revoked_while_mapped_stays_until_unmap)
{
    struct sharer s;
    xengnttab_handle *gt;
    struct xensim_dom_stats st;
    uint8_t *m;

    world_fresh();
    sharer_start(&s, 1, 1, true, 0);
    gt = xengnttab_open(NULL, 0);
    ASSERT_TRUE(gt != NULL);
    m = xengnttab_map_grant_ref(gt, 1, s.refs[0], PROT_READ);
    ASSERT_TRUE(m != NULL);
    (void)sharer_go(&s, 'u'); /* dom1 ends access while we map it */
    ASSERT_EQ(m[0], 0x10);    /* the page lives on */
    ASSERT_EQ(xensim_dom_stats(1, &st), 0);
    ASSERT_EQ(st.pages, 1);
    ASSERT_EQ(xengnttab_unmap(gt, m, 1), 0);
    ASSERT_EQ(xensim_dom_stats(1, &st), 0);
    ASSERT_EQ(st.pages, 0);
    ASSERT_EQ(st.grants, 0);
    /* and now the ref is gone */
    ASSERT_TRUE(xengnttab_map_grant_ref(gt, 1, s.refs[0], PROT_READ) == NULL);
    ASSERT_EQ(xensim_last_map_status(), GNTST_general_error);
    ASSERT_EQ(xengnttab_close(gt), 0);
    sharer_finish(&s);
    assert_clean(0);
    assert_clean(1);
}

TEST(dead_process_is_reaped)
{
    struct sharer s;
    struct xensim_dom_stats st;
    pid_t pid;
    int p[2];

    world_fresh();
    sharer_start(&s, 1, 2, true, 0);
    ASSERT_EQ(pipe(p), 0);
    pid = fork_child();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        /* dom0 process that maps and binds, then dies without cleaning */
        xengnttab_handle *gt = xengnttab_open(NULL, 0);
        xenevtchn_handle *ev = xenevtchn_open(NULL, 0);
        if (!gt || !ev || !xengnttab_map_domain_grant_refs(gt, 2, 1, s.refs, PROT_READ) ||
            xenevtchn_bind_unbound_port(ev, 1) < 0)
            _exit(1);
        (void)!write(p[1], "r", 1);
        _exit(0);
    }
    close(p[1]);
    {
        char c;
        ASSERT_TRUE(read_full(p[0], &c, 1, 10000));
    }
    close(p[0]);
    ASSERT_EQ(wait_child(pid), 0);
    /* the kernel would have released everything at exit; so does the reaper */
    ASSERT_EQ(xensim_dom_stats(0, &st), 0);
    ASSERT_EQ(st.maps, 0);
    ASSERT_EQ(st.ports, 0);
    ASSERT_EQ(xensim_dom_stats(1, &st), 0);
    ASSERT_EQ(st.pinned, 0);
    /* a domain process that exits holding grants is reaped too */
    (void)sharer_go(&s, 'x');
    ASSERT_EQ(wait_child(s.pid), 0);
    close(s.to);
    close(s.from);
    ASSERT_EQ(xensim_dom_stats(1, &st), 0);
    ASSERT_EQ(st.grants, 0);
    ASSERT_EQ(st.pages, 0);
    assert_clean(0);
    assert_clean(1);
}

/* ---- event channels ------------------------------------------------------------ */

static bool fd_readable(int fd, int ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, ms) == 1;
}

TEST(evtchn_notify_wakes_peer_and_masks_until_unmask)
{
    xenevtchn_handle *a, *b;
    int pa, pb;

    world_fresh();
    set_domid(1);
    a = xenevtchn_open(NULL, 0); /* dom1 */
    set_domid(0);
    b = xenevtchn_open(NULL, 0); /* dom0 */
    ASSERT_TRUE(a && b);
    pa = xenevtchn_bind_unbound_port(a, 0);
    ASSERT_GT(pa, 0);
    ASSERT_EQ(xenevtchn_bind_interdomain(b, 1, (evtchn_port_t)pa + 1), -1); /* not offered */
    ASSERT_EQ(errno, EINVAL);
    ASSERT_EQ(xenevtchn_bind_interdomain(b, 55, 1), -1);
    ASSERT_EQ(errno, ESRCH);
    pb = xenevtchn_bind_interdomain(b, 1, (evtchn_port_t)pa);
    ASSERT_GT(pb, 0);
    ASSERT_EQ(xenevtchn_bind_interdomain(b, 1, (evtchn_port_t)pa), -1); /* taken now */

    /* Xen leaves one event pending on a freshly bound port */
    ASSERT_TRUE(fd_readable(xenevtchn_fd(b), 1000));
    ASSERT_EQ(xenevtchn_pending(b), pb);
    ASSERT_EQ(xenevtchn_unmask(b, (evtchn_port_t)pb), 0);
    ASSERT_FALSE(fd_readable(xenevtchn_fd(b), 0));

    /* notify -> readable -> pending -> masked: further notifies coalesce */
    ASSERT_EQ(xenevtchn_notify(a, (evtchn_port_t)pa), 0);
    ASSERT_TRUE(fd_readable(xenevtchn_fd(b), 1000));
    ASSERT_EQ(xenevtchn_pending(b), pb);
    for (int i = 0; i < 100; i++)
        ASSERT_EQ(xenevtchn_notify(a, (evtchn_port_t)pa), 0);
    ASSERT_FALSE(fd_readable(xenevtchn_fd(b), 50));
    ASSERT_EQ(xenevtchn_unmask(b, (evtchn_port_t)pb), 0);
    ASSERT_TRUE(fd_readable(xenevtchn_fd(b), 1000)); /* the coalesced one */
    ASSERT_EQ(xenevtchn_pending(b), pb);
    ASSERT_EQ(xenevtchn_unmask(b, (evtchn_port_t)pb), 0);
    ASSERT_FALSE(fd_readable(xenevtchn_fd(b), 50));

    /* the other direction */
    ASSERT_EQ(xenevtchn_notify(b, (evtchn_port_t)pb), 0);
    ASSERT_TRUE(fd_readable(xenevtchn_fd(a), 1000));
    ASSERT_EQ(xenevtchn_pending(a), pa);
    ASSERT_EQ(xenevtchn_unmask(a, (evtchn_port_t)pa), 0);

    /* ports that are not ours */
    ASSERT_EQ(xenevtchn_notify(b, (evtchn_port_t)pa + 7), -1);
    ASSERT_EQ(errno, ENOTCONN);
    ASSERT_EQ(xenevtchn_unbind(b, 999), -1);
    ASSERT_EQ(errno, ENOTCONN);
    ASSERT_EQ(xenevtchn_unmask(b, 999), 0); /* the driver ignores it */
    ASSERT_EQ(xenevtchn_bind_virq(b, VIRQ_TIMER), -1);
    ASSERT_EQ(errno, ENOSYS);

    /* the peer closes: our port is unbound again, notify is dropped */
    ASSERT_EQ(xenevtchn_unbind(b, (evtchn_port_t)pb), 0);
    ASSERT_EQ(xenevtchn_notify(a, (evtchn_port_t)pa), 0);
    {
        /* and it can be bound again */
        int again = xenevtchn_bind_interdomain(b, 1, (evtchn_port_t)pa);
        ASSERT_GT(again, 0);
    }
    {
        struct xensim_dom_stats st;
        ASSERT_EQ(xensim_dom_stats(0, &st), 0);
        ASSERT_EQ(st.ports, 1);
        ASSERT_EQ(st.evtchn_handles, 1);
    }
    ASSERT_EQ(xenevtchn_close(b), 0);
    ASSERT_EQ(xenevtchn_close(a), 0);
    assert_clean(0);
    assert_clean(1);
}

TEST(evtchn_across_processes_and_nonblocking_pending)
{
    xenevtchn_handle *b;
    int p[2], q[2], pa = 0, pb;
    pid_t pid;

    world_fresh();
    ASSERT_EQ(pipe(p), 0);
    ASSERT_EQ(pipe(q), 0);
    pid = fork_child();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        xenevtchn_handle *a;
        char c;
        set_domid(1);
        a = xenevtchn_open(NULL, 0);
        if (!a)
            _exit(1);
        pa = xenevtchn_bind_unbound_port(a, 0);
        if (pa < 0 || !write_full(p[1], &pa, sizeof(pa)))
            _exit(2);
        for (int i = 0; i < 3; i++) {
            if (!read_full(q[0], &c, 1, 10000))
                _exit(3);
            if (xenevtchn_notify(a, (evtchn_port_t)pa) < 0)
                _exit(4);
        }
        /* wait for the parent's notify */
        if (!fd_readable(xenevtchn_fd(a), 10000) || xenevtchn_pending(a) != pa)
            _exit(5);
        (void)xenevtchn_close(a);
        _exit(0);
    }
    ASSERT_TRUE(read_full(p[0], &pa, sizeof(pa), 10000));
    b = xenevtchn_open(NULL, 0);
    ASSERT_TRUE(b != NULL);
    pb = xenevtchn_bind_interdomain(b, 1, (evtchn_port_t)pa);
    ASSERT_GT(pb, 0);
    ASSERT_EQ(xenevtchn_pending(b), pb); /* the bind's own event */
    ASSERT_EQ(xenevtchn_unmask(b, (evtchn_port_t)pb), 0);
    ASSERT_EQ(fcntl(xenevtchn_fd(b), F_SETFL, O_NONBLOCK), 0);
    ASSERT_EQ(xenevtchn_pending(b), -1);
    ASSERT_EQ(errno, EAGAIN);
    for (int i = 0; i < 3; i++) {
        ASSERT_TRUE(write_full(q[1], "n", 1));
        ASSERT_TRUE(fd_readable(xenevtchn_fd(b), 10000));
        ASSERT_EQ(xenevtchn_pending(b), pb);
        ASSERT_EQ(xenevtchn_unmask(b, (evtchn_port_t)pb), 0);
    }
    ASSERT_EQ(xenevtchn_notify(b, (evtchn_port_t)pb), 0);
    ASSERT_EQ(wait_child(pid), 0);
    ASSERT_EQ(xenevtchn_close(b), 0);
    assert_clean(0);
    assert_clean(1);
    close(p[0]), close(p[1]), close(q[0]), close(q[1]);
}

TEST(domain_destroy_revokes_and_unbinds)
{
    struct sharer s;
    xenevtchn_handle *a, *b;
    xengnttab_handle *gt;
    struct xensim_dom_stats st;
    int pa, pb, pv;
    uint8_t *m;

    world_fresh();
    sharer_start(&s, 1, 2, true, 0);
    set_domid(1);
    a = xenevtchn_open(NULL, 0);
    set_domid(0);
    b = xenevtchn_open(NULL, 0);
    gt = xengnttab_open(NULL, 0);
    ASSERT_TRUE(a && b && gt);
    pa = xenevtchn_bind_unbound_port(a, 0);
    pb = xenevtchn_bind_interdomain(b, 1, (evtchn_port_t)pa);
    ASSERT_GT(pb, 0);
    ASSERT_EQ(xenevtchn_pending(b), pb);
    ASSERT_EQ(xenevtchn_unmask(b, (evtchn_port_t)pb), 0);
    pv = xenevtchn_bind_virq(b, VIRQ_DOM_EXC);
    ASSERT_GT(pv, 0);
    m = xengnttab_map_grant_ref(gt, 1, s.refs[0], PROT_READ);
    ASSERT_TRUE(m != NULL);

    ASSERT_EQ(xensim_domain_destroy(1), 0);
    ASSERT_TRUE(fd_readable(xenevtchn_fd(b), 1000));
    ASSERT_EQ(xenevtchn_pending(b), pv); /* VIRQ_DOM_EXC */
    ASSERT_EQ(xenevtchn_notify(b, (evtchn_port_t)pb), 0); /* peer gone: dropped */
    ASSERT_EQ(m[0], 0x10);                                  /* mapping survives */
    ASSERT_TRUE(xengnttab_map_grant_ref(gt, 1, s.refs[1], PROT_READ) == NULL);
    ASSERT_EQ(xensim_last_map_status(), GNTST_bad_domain);
    ASSERT_EQ(xensim_dom_stats(1, &st), 0);
    ASSERT_FALSE(st.alive);
    ASSERT_EQ(st.ports, 0);
    ASSERT_EQ(st.pages, 1); /* the one still mapped */
    ASSERT_EQ(xengnttab_unmap(gt, m, 1), 0);
    ASSERT_EQ(xensim_dom_stats(1, &st), 0);
    ASSERT_EQ(st.pages, 0);
    ASSERT_EQ(xenevtchn_notify(a, (evtchn_port_t)pa), -1); /* a dead domain's handle */
    ASSERT_EQ(xenevtchn_close(a), 0);
    ASSERT_EQ(xenevtchn_close(b), 0);
    ASSERT_EQ(xengnttab_close(gt), 0);
    (void)sharer_go(&s, 'k');
    sharer_finish(&s);
    assert_clean(0);
}

/* ---- tb: a tiny netback ------------------------------------------------------------ */

struct tb_report {
    char what[24];          /* "packet" or the fatal condition seen */
    unsigned nslots;
    uint16_t size[64], off[64], flags[64];
    uint32_t gref[64];
    int16_t copy_status;    /* first failing grant copy status, 0 if none */
    uint8_t extra_type, gso_type;
    uint16_t gso_size;
};

struct tb_queue {
    netif_tx_back_ring_t tx;
    netif_rx_back_ring_t rx;
    void *tx_map, *rx_map;
    evtchn_port_t ltx, lrx;
    bool dead;
    /* one packet waiting for RX buffers */
    size_t pend_len;
    uint8_t pend_gso_type;
    uint16_t pend_gso_size;
};

struct tb {
    uint32_t fe;
    xengnttab_handle *gt;
    xenevtchn_handle *ev;
    unsigned nq;
    struct tb_queue q[NETFRONT_MAX_QUEUES];
    bool echo;
    int report_fd;
    unsigned packets, echoed, dropped_rx;
    uint8_t pend[NETFRONT_MAX_QUEUES][65536];
};

static int tb_attach(struct tb *t, uint32_t fe, unsigned nq, const struct netfront_queue_info *qi)
{
    t->fe = fe;
    t->nq = nq;
    t->gt = xengnttab_open(NULL, 0);
    t->ev = xenevtchn_open(NULL, 0);
    if (!t->gt || !t->ev)
        return -1;
    for (unsigned i = 0; i < nq; i++) {
        struct tb_queue *q = &t->q[i];
        int p;
        q->tx_map = xengnttab_map_grant_ref(t->gt, fe, qi[i].tx_ring_ref, PROT_READ | PROT_WRITE);
        q->rx_map = xengnttab_map_grant_ref(t->gt, fe, qi[i].rx_ring_ref, PROT_READ | PROT_WRITE);
        if (!q->tx_map || !q->rx_map)
            return -2;
        BACK_RING_INIT(&q->tx, (netif_tx_sring_t *)q->tx_map, PAGE);
        BACK_RING_INIT(&q->rx, (netif_rx_sring_t *)q->rx_map, PAGE);
        p = xenevtchn_bind_interdomain(t->ev, fe, qi[i].evtchn_tx);
        if (p < 0)
            return -3;
        q->ltx = q->lrx = (evtchn_port_t)p;
        if (qi[i].evtchn_rx != qi[i].evtchn_tx) {
            p = xenevtchn_bind_interdomain(t->ev, fe, qi[i].evtchn_rx);
            if (p < 0)
                return -4;
            q->lrx = (evtchn_port_t)p;
        }
    }
    return 0;
}

static void tb_detach(struct tb *t)
{
    for (unsigned i = 0; i < t->nq; i++) {
        struct tb_queue *q = &t->q[i];
        if (q->tx_map)
            (void)xengnttab_unmap(t->gt, q->tx_map, 1);
        if (q->rx_map)
            (void)xengnttab_unmap(t->gt, q->rx_map, 1);
        if (q->ltx)
            (void)xenevtchn_unbind(t->ev, q->ltx);
        if (q->lrx && q->lrx != q->ltx)
            (void)xenevtchn_unbind(t->ev, q->lrx);
    }
    if (t->ev)
        (void)xenevtchn_close(t->ev);
    if (t->gt)
        (void)xengnttab_close(t->gt);
}

static void tb_report(struct tb *t, const struct tb_report *r)
{
    if (t->report_fd >= 0)
        (void)!write(t->report_fd, r, sizeof(*r));
}

static void tb_fatal(struct tb *t, struct tb_queue *q, const char *what)
{
    struct tb_report r = {0};
    (void)snprintf(r.what, sizeof(r.what), "%s", what);
    tb_report(t, &r);
    q->dead = true; /* a real backend disconnects the vif */
}

/* Sends frame on the RX ring (a copy per slot into the posted buffers).
 * Returns false when there are not enough buffers (try again later). */
static bool tb_rx(struct tb *t, struct tb_queue *q, const uint8_t *f, size_t len,
                  uint8_t gso_type, uint16_t gso_size)
{
    unsigned need = (unsigned)((len + PAGE - 1) / PAGE) + (gso_type ? 1 : 0);
    RING_IDX prod = __atomic_load_n(&q->rx.sring->req_prod, __ATOMIC_ACQUIRE);
    size_t pos = 0;
    int notify;

    if (prod - q->rx.req_cons > RING_SIZE(&q->rx)) {
        tb_fatal(t, q, "rx-req-prod-jump");
        return true;
    }
    if (prod - q->rx.req_cons < need)
        return false;
    for (unsigned s = 0; pos < len || s == 0; s++) {
        netif_rx_request_t req;
        netif_rx_response_t *rsp;
        size_t chunk = len - pos < PAGE ? len - pos : PAGE;
        xengnttab_grant_copy_segment_t seg = {
            .source.virt = (void *)(uintptr_t)(f + pos),
            .len = (uint16_t)chunk,
            .flags = GNTCOPY_dest_gref,
        };

        RING_COPY_REQUEST(&q->rx, q->rx.req_cons, &req);
        q->rx.req_cons++;
        seg.dest.foreign.ref = req.gref;
        seg.dest.foreign.domid = (uint16_t)t->fe;
        if (xengnttab_grant_copy(t->gt, 1, &seg) < 0)
            seg.status = GNTST_general_error;
        rsp = RING_GET_RESPONSE(&q->rx, q->rx.rsp_prod_pvt);
        q->rx.rsp_prod_pvt++;
        rsp->id = req.id;
        rsp->offset = 0;
        rsp->flags = (uint16_t)((pos + chunk < len ? NETRXF_more_data : 0) |
                                (s == 0 && gso_type ? NETRXF_extra_info : 0));
        rsp->status = seg.status == GNTST_okay ? (int16_t)chunk : NETIF_RSP_ERROR;
        if (seg.status != GNTST_okay) {
            struct tb_report r = {.copy_status = seg.status};
            (void)snprintf(r.what, sizeof(r.what), "rx-copy");
            tb_report(t, &r);
        }
        pos += chunk;
        if (s == 0 && gso_type) {
            struct netif_extra_info ex = {.type = XEN_NETIF_EXTRA_TYPE_GSO};
            ex.u.gso.type = gso_type;
            ex.u.gso.size = gso_size;
            q->rx.req_cons++; /* the extra slot takes a request */
            memcpy(RING_GET_RESPONSE(&q->rx, q->rx.rsp_prod_pvt), &ex, sizeof(ex));
            q->rx.rsp_prod_pvt++;
        }
    }
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&q->rx, notify);
    if (notify)
        (void)xenevtchn_notify(t->ev, q->lrx);
    t->echoed++;
    return true;
}

static void tb_tx_respond(struct tb *t, struct tb_queue *q, const netif_tx_request_t *txp,
                          unsigned n, unsigned extras, int16_t st)
{
    for (unsigned i = 0; i < n; i++) {
        netif_tx_response_t *r = RING_GET_RESPONSE(&q->tx, q->tx.rsp_prod_pvt++);
        r->id = txp[i].id;
        r->status = st;
        if (i == 0)
            for (unsigned e = 0; e < extras; e++)
                RING_GET_RESPONSE(&q->tx, q->tx.rsp_prod_pvt++)->status = NETIF_RSP_NULL;
    }
}

/* Consumes TX requests, as defensively as a netback must. */
static void tb_tx(struct tb *t, struct tb_queue *q, unsigned qi)
{
    static netif_tx_request_t txp[65];
    int notify, more;

    do {
        RING_IDX rp = __atomic_load_n(&q->tx.sring->req_prod, __ATOMIC_ACQUIRE);

        if (rp - q->tx.rsp_prod_pvt > RING_SIZE(&q->tx)) {
            tb_fatal(t, q, "req-prod-jump");
            return;
        }
        while (q->tx.req_cons != rp && !q->dead) {
            struct tb_report r = {0};
            unsigned n = 0, extras = 0;
            uint32_t data = 0;
            bool gso = false;
            size_t len, first_len, pos = 0;

            RING_COPY_REQUEST(&q->tx, q->tx.req_cons, &txp[0]);
            q->tx.req_cons++;
            n = 1;
            if (txp[0].flags & NETTXF_extra_info) {
                struct netif_extra_info ex;
                do {
                    netif_tx_request_t raw;
                    if (q->tx.req_cons == rp) {
                        tb_fatal(t, q, "missing-extra");
                        return;
                    }
                    RING_COPY_REQUEST(&q->tx, q->tx.req_cons, &raw);
                    memcpy(&ex, &raw, sizeof(ex));
                    q->tx.req_cons++;
                    extras++;
                    r.extra_type = ex.type;
                    if (ex.type == XEN_NETIF_EXTRA_TYPE_NONE ||
                        ex.type >= XEN_NETIF_EXTRA_TYPE_MAX) {
                        tb_fatal(t, q, "bad-extra-type");
                        return;
                    }
                    if (ex.type == XEN_NETIF_EXTRA_TYPE_GSO) {
                        r.gso_type = ex.u.gso.type;
                        r.gso_size = ex.u.gso.size;
                        gso = true;
                    }
                } while (ex.flags & XEN_NETIF_EXTRA_FLAG_MORE);
            }
            while (txp[n - 1].flags & NETTXF_more_data) {
                if (q->tx.req_cons == rp) {
                    tb_fatal(t, q, "unterminated");
                    return;
                }
                if (n == 64) {
                    tb_fatal(t, q, "too-many-slots");
                    return;
                }
                RING_COPY_REQUEST(&q->tx, q->tx.req_cons, &txp[n]);
                q->tx.req_cons++;
                data += txp[n].size;
                n++;
            }
            r.nslots = n;
            for (unsigned i = 0; i < n; i++) {
                r.size[i] = txp[i].size;
                r.off[i] = txp[i].offset;
                r.flags[i] = txp[i].flags;
                r.gref[i] = txp[i].gref;
            }
            (void)snprintf(r.what, sizeof(r.what), "packet");
            len = txp[0].size;
            if (data > len || len - data + txp[0].offset > PAGE) {
                /* the first slot's own share, as netback computes it */
                tb_report(t, &r);
                tb_tx_respond(t, q, txp, n, extras, NETIF_RSP_ERROR);
                continue;
            }
            first_len = len - data;
            for (unsigned i = 0; i < n; i++) {
                uint16_t sz = (uint16_t)(i == 0 ? first_len : txp[i].size);
                xengnttab_grant_copy_segment_t seg = {
                    .source.foreign = {txp[i].gref, txp[i].offset, (uint16_t)t->fe},
                    .dest.virt = t->pend[qi] + pos,
                    .len = sz,
                    .flags = GNTCOPY_source_gref,
                };
                if (txp[i].offset + sz > PAGE) {
                    r.copy_status = GNTST_bad_copy_arg;
                    break;
                }
                if (xengnttab_grant_copy(t->gt, 1, &seg) < 0)
                    seg.status = GNTST_general_error;
                if (seg.status != GNTST_okay && !r.copy_status)
                    r.copy_status = seg.status;
                pos += sz;
            }
            tb_report(t, &r);
            t->packets++;
            tb_tx_respond(t, q, txp, n, extras, r.copy_status ? NETIF_RSP_ERROR : NETIF_RSP_OKAY);
            if (t->echo && !r.copy_status) {
                q->pend_len = len;
                q->pend_gso_type = gso ? r.gso_type : 0;
                q->pend_gso_size = r.gso_size;
                RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&q->tx, notify);
                if (notify)
                    (void)xenevtchn_notify(t->ev, q->ltx);
                if (!tb_rx(t, q, t->pend[qi], len, q->pend_gso_type, q->pend_gso_size))
                    return; /* wait for buffers; the rest of the TX ring waits too */
                q->pend_len = 0;
            }
        }
        RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&q->tx, notify);
        if (notify)
            (void)xenevtchn_notify(t->ev, q->ltx);
        RING_FINAL_CHECK_FOR_REQUESTS(&q->tx, more);
    } while (more && !q->dead);
}

static void tb_poll_once(struct tb *t, int timeout_ms)
{
    struct pollfd pfd = {.fd = xenevtchn_fd(t->ev), .events = POLLIN};

    if (poll(&pfd, 1, timeout_ms) > 0) {
        int port;
        while (poll(&pfd, 1, 0) > 0 && (port = xenevtchn_pending(t->ev)) >= 0)
            (void)xenevtchn_unmask(t->ev, (evtchn_port_t)port);
    }
    for (unsigned i = 0; i < t->nq; i++) {
        struct tb_queue *q = &t->q[i];
        if (q->dead)
            continue;
        if (q->pend_len) {
            int more;
            if (!tb_rx(t, q, t->pend[i], q->pend_len, q->pend_gso_type, q->pend_gso_size)) {
                RING_FINAL_CHECK_FOR_REQUESTS(&q->rx, more); /* tell us about new buffers */
                continue;
            }
            q->pend_len = 0;
        }
        tb_tx(t, q, i);
    }
}

/* Runs the backend until stop_fd says stop (readable or closed). */
static void tb_run(struct tb *t, int stop_fd)
{
    for (;;) {
        struct pollfd pfd = {.fd = stop_fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) > 0)
            return;
        tb_poll_once(t, 10);
    }
}

/* A forked tb for a ring-only netfront of dom `fe`. */
struct tb_child {
    pid_t pid;
    int stop;    /* close to stop it */
    int reports; /* struct tb_report stream */
};

static void tb_child_start(struct tb_child *c, uint32_t fe, unsigned nq,
                           const struct netfront_queue_info *qi, bool echo, bool report)
{
    int s[2], r[2];

    ASSERT_EQ(pipe(s), 0);
    ASSERT_EQ(pipe(r), 0);
    c->pid = fork_child();
    ASSERT_TRUE(c->pid >= 0);
    if (c->pid == 0) {
        static struct tb t;
        char ok = 'k';
        close(s[1]);
        close(r[0]);
        set_domid(0);
        t.echo = echo;
        t.report_fd = -1;
        if (tb_attach(&t, fe, nq, qi) < 0)
            _exit(3);
        (void)!write(r[1], &ok, 1);
        if (report)
            t.report_fd = r[1]; /* the parent reads every report */
        tb_run(&t, s[0]);
        tb_detach(&t);
        _exit(0);
    }
    close(s[0]);
    close(r[1]);
    c->stop = s[1];
    c->reports = r[0];
    {
        char ok;
        ASSERT_TRUE(read_full(c->reports, &ok, 1, 10000));
        ASSERT_EQ(ok, 'k');
    }
}

static int tb_child_stop(struct tb_child *c)
{
    int st;
    close(c->stop);
    st = wait_child(c->pid);
    close(c->reports);
    return st;
}

/* ---- netfront over tb -------------------------------------------------------------- */

static struct netfront *ring_netfront(unsigned domid, unsigned queues, bool split,
                                      enum netfront_attack attack, unsigned arg,
                                      struct netfront_queue_info *qi)
{
    struct netfront_opts o = {
        .queues = queues,
        .no_xenstore = true,
        .backend_domid = 0,
        .mac = {0x00, 0x16, 0x3e, 0, (uint8_t)domid, 0},
        .no_split_evtchn = !split,
        .attack = attack,
        .attack_arg = arg,
    };
    struct netfront *nf;

    set_domid(domid);
    nf = netfront_open(domid, 0, &o);
    set_domid(0);
    if (!nf)
        return NULL;
    for (unsigned i = 0; i < netfront_num_queues(nf); i++)
        if (netfront_queue_info(nf, i, &qi[i]) < 0)
            return NULL;
    return nf;
}

static void roundtrip(struct netfront *nf, size_t len, const struct netfront_tx_opts *o,
                      uint32_t seq)
{
    static uint8_t out[65536], in[65536];
    struct netfront_rx_info info;
    bool tcp = o && o->gso_type;
    ssize_t n;
    uint32_t got = ~0u;

    ASSERT_EQ(netfront_test_frame(out, len, seq, (const uint8_t[6]){2, 0, 0, 0, 0, 1},
                                  netfront_mac(nf), tcp, tcp),
              0);
    ASSERT_EQ(netfront_send(nf, out, len, o), 0);
    n = netfront_recv(nf, in, sizeof(in), 5000, &info);
    ASSERT_EQ(n, (ssize_t)len);
    ASSERT_MEMEQ(in, out, len);
    ASSERT_EQ(netfront_test_frame_check(in, len, &got), 0);
    ASSERT_EQ(got, seq);
    ASSERT_EQ(info.slots, (len + PAGE - 1) / PAGE);
    if (tcp) {
        ASSERT_EQ(info.gso_type, o->gso_type);
        ASSERT_EQ(info.gso_size, o->gso_size);
        ASSERT_TRUE(info.flags & NETRXF_extra_info);
    } else {
        ASSERT_EQ(info.gso_type, 0);
    }
}

static void loopback(unsigned queues, bool split)
{
    struct netfront_queue_info qi[NETFRONT_MAX_QUEUES];
    struct netfront *nf;
    struct tb_child c;
    struct netfront_stats st;
    static const size_t sizes[] = {60, 61, 64, 100, 1514, 4095, 4096, 4097, 8192, 9000, 16385,
                                   32768, 60000, 65535};
    uint32_t seq = 0;

    world_fresh();
    nf = ring_netfront(1, queues, split, NF_ATTACK_NONE, 0, qi);
    ASSERT_TRUE(nf != NULL);
    ASSERT_EQ(netfront_num_queues(nf), queues);
    if (split)
        ASSERT_NE(qi[0].evtchn_tx, qi[0].evtchn_rx);
    tb_child_start(&c, 1, queues, qi, true, false);
    ASSERT_EQ(netfront_connect(nf), 0);
    for (unsigned q = 0; q < queues; q++) {
        for (unsigned i = 0; i < XBR_ARRAY_SIZE(sizes); i++) {
            struct netfront_tx_opts o = {.queue = (int)q};
            roundtrip(nf, sizes[i], &o, seq++);
            /* the same with the data not page aligned and in small slots */
            if (sizes[i] <= 4000) {
                o.first_offset = 3000;
                o.slot_bytes = 512;
                {
                    static uint8_t f[4096], in[65536];
                    struct netfront_rx_info info;
                    ASSERT_EQ(netfront_test_frame(f, sizes[i], seq, (const uint8_t[6]){2},
                                                  netfront_mac(nf), false, false), 0);
                    ASSERT_EQ(netfront_send(nf, f, sizes[i], &o), 0);
                    ASSERT_EQ(netfront_recv(nf, in, sizeof(in), 5000, &info), (ssize_t)sizes[i]);
                    ASSERT_MEMEQ(in, f, sizes[i]);
                    seq++;
                }
            }
        }
        /* TCP GSO: NETTXF_csum_blank + an XEN_NETIF_EXTRA_TYPE_GSO extra slot */
        for (size_t len = 1600; len <= 65535; len = len * 3 + 1) {
            struct netfront_tx_opts o = {.queue = (int)q, .gso_type = XEN_NETIF_GSO_TYPE_TCPV4,
                                         .gso_size = 1448, .csum_blank = true};
            roundtrip(nf, len, &o, seq++);
        }
        {
            struct netfront_tx_opts o = {.queue = (int)q, .gso_type = XEN_NETIF_GSO_TYPE_TCPV4,
                                         .gso_size = 1448, .csum_blank = true};
            roundtrip(nf, 65535, &o, seq++);
        }
    }
    /* a burst: more than one ring's worth of slots in flight over time */
    {
        static uint8_t f[9000], in[65536];
        unsigned got = 0;
        for (unsigned i = 0; i < 200; i++) {
            ASSERT_EQ(netfront_test_frame(f, 9000, i, (const uint8_t[6]){2}, netfront_mac(nf),
                                          false, false), 0);
            ASSERT_EQ(netfront_send(nf, f, 9000, NULL), 0);
            while (netfront_recv(nf, in, sizeof(in), 0, NULL) == 9000)
                got++;
        }
        while (got < 200 && netfront_recv(nf, in, sizeof(in), 5000, NULL) == 9000)
            got++;
        ASSERT_EQ(got, 200);
    }
    ASSERT_EQ(netfront_flush(nf, 5000), 0);
    netfront_get_stats(nf, &st);
    ASSERT_EQ(st.tx_rsp_error + st.tx_rsp_dropped + st.tx_bad_rsp, 0);
    ASSERT_EQ(st.rx_errors + st.rx_bad, 0);
    ASSERT_EQ(st.tx_packets, st.rx_packets);
    ASSERT_GT(st.rx_gso, 0);
    ASSERT_EQ(tb_child_stop(&c), 0);
    ASSERT_EQ(netfront_close(nf), 0);
    assert_clean(0);
    assert_clean(1);
    {
        struct xensim_dom_stats ds;
        ASSERT_EQ(xensim_dom_stats(1, &ds), 0);
        ASSERT_EQ(ds.pages, 0);
        ASSERT_EQ(ds.grants, 0);
    }
}

TEST(netfront_loopback_60B_to_64KiB_sg_gso)
{
    loopback(1, false);
}

TEST(netfront_loopback_multiqueue_split_evtchn)
{
    loopback(3, true);
}

/* The RFC 1071 sum of a TCP/IPv6 test frame's pseudo-header, laid out as
 * RFC 8200 8.1 draws it (not as netfront.c adds it up), plus its TCP
 * segment when segment is set; folded, not complemented. */
static uint16_t tcp6_sum(const uint8_t *f, size_t len, bool segment)
{
    uint8_t ph[40] = {0};
    uint32_t sum = 0;
    memcpy(ph, f + 22, 32);
    ph[34] = (uint8_t)((len - 54) >> 8), ph[35] = (uint8_t)(len - 54);
    ph[39] = 6;
    for (size_t i = 0; i < 40; i += 2)
        sum += (uint32_t)ph[i] << 8 | ph[i + 1];
    for (size_t i = 54; segment && i < len; i += 2)
        sum += (uint32_t)f[i] << 8 | (i + 1 < len ? f[i + 1] : 0);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

TEST(test_frame_tcp6_full_and_partial_checksums)
{
    static uint8_t f[65535];
    const uint8_t dst[6] = {2, 0, 0, 0, 0, 2}, src[6] = {2, 0, 0, 0, 0, 1};
    const size_t sizes[] = {90, 91, 1514, 65535};
    uint32_t seq;

    ASSERT_EQ(netfront_test_frame_kind(f, 89, 1, dst, src, NF_TF_TCP6, false), -EINVAL);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t len = sizes[k];
        ASSERT_EQ(netfront_test_frame_kind(f, len, 7, dst, src, NF_TF_TCP6, false), 0);
        ASSERT_EQ(f[12], 0x86);
        ASSERT_EQ(f[13], 0xdd);
        ASSERT_EQ(f[14] >> 4, 6);
        ASSERT_EQ(f[20], 6);                               /* next header: TCP */
        ASSERT_EQ((size_t)(f[18] << 8 | f[19]), len - 54); /* payload length */
        ASSERT_EQ(tcp6_sum(f, len, true), 0xffff);         /* the full checksum verifies */
        ASSERT_EQ(netfront_test_frame_check(f, len, &seq), 0);
        ASSERT_EQ(seq, 7);
        f[len - 1] ^= 1;
        ASSERT_EQ(netfront_test_frame_check(f, len, NULL), -EBADMSG);
        /* Partial: the field holds the pseudo-header sum, as CHECKSUM_PARTIAL
         * leaves it for the one who finishes it. */
        ASSERT_EQ(netfront_test_frame_kind(f, len, 7, dst, src, NF_TF_TCP6, true), 0);
        ASSERT_EQ((uint16_t)(f[70] << 8 | f[71]), tcp6_sum(f, len, false));
        ASSERT_EQ(netfront_test_frame_check(f, len, NULL), 0);
    }
}

/* ---- attacks, as the backend sees them ------------------------------------------------ */

struct attack_seen {
    struct tb_report first;  /* first report */
    unsigned reports;
    struct netfront_stats st;
};

static void run_attack(enum netfront_attack a, unsigned arg, struct attack_seen *seen)
{
    struct netfront_queue_info qi[1];
    struct netfront *nf;
    struct tb_child c;

    world_fresh();
    memset(seen, 0, sizeof(*seen));
    nf = ring_netfront(1, 1, false, a, arg, qi);
    ASSERT_TRUE(nf != NULL);
    tb_child_start(&c, 1, 1, qi, false, true);
    ASSERT_EQ(netfront_connect(nf), 0);
    ASSERT_EQ(netfront_run_attack(nf), 0);
    /* the first report may take a while on a loaded machine; then the rest */
    while (read_full(c.reports, seen->reports ? &(struct tb_report){0} : &seen->first,
                     sizeof(struct tb_report), seen->reports ? 300 : 3000))
        seen->reports++;
    if (a == NF_ATTACK_VANISH) {
        ASSERT_EQ(tb_child_stop(&c), 0);
        return;
    }
    (void)netfront_flush(nf, 1000); /* fatal cases never get their responses */
    netfront_get_stats(nf, &seen->st);
    ASSERT_EQ(tb_child_stop(&c), 0);
    ASSERT_EQ(netfront_close(nf), 0);
    assert_clean(0);
    assert_clean(1);
}

TEST(attack_switches_put_what_they_say_on_the_ring)
{
    struct attack_seen s;

    run_attack(NF_ATTACK_TOO_MANY_SLOTS, 0, &s);
    ASSERT_STREQ(s.first.what, "packet");
    ASSERT_EQ(s.first.nslots, 19);
    run_attack(NF_ATTACK_FATAL_SLOTS, 0, &s);
    ASSERT_EQ(s.first.nslots, 22);
    run_attack(NF_ATTACK_TOO_MANY_SLOTS, 25, &s);
    ASSERT_EQ(s.first.nslots, 25);

    run_attack(NF_ATTACK_ZERO_FRAG, 0, &s);
    ASSERT_EQ(s.first.nslots, 3);
    ASSERT_EQ(s.first.size[1], 0);
    ASSERT_EQ(s.first.size[0], 300);

    run_attack(NF_ATTACK_CROSS_PAGE, 0, &s);
    ASSERT_GT(s.first.off[0] + s.first.size[0], PAGE);
    ASSERT_EQ(s.st.tx_rsp_error, 1);

    run_attack(NF_ATTACK_SIZE_SHORT, 0, &s);
    ASSERT_LT(s.first.size[0], s.first.size[1]);
    run_attack(NF_ATTACK_SIZE_LONG, 0, &s);
    ASSERT_GT(s.first.size[0], PAGE + s.first.size[1]);

    run_attack(NF_ATTACK_TINY_FIRST_SLOT, 0, &s);
    ASSERT_EQ(s.first.nslots, 2);
    ASSERT_EQ(s.first.size[0], 200);
    ASSERT_EQ(s.first.size[1], 190); /* so the first slot holds 10 bytes */
    run_attack(NF_ATTACK_TINY_FRAGS, 0, &s);
    ASSERT_EQ(s.first.nslots, 18);
    ASSERT_EQ(s.first.size[0], 108);
    ASSERT_EQ(s.first.copy_status, 0);

    run_attack(NF_ATTACK_BAD_EXTRA_TYPE, 0, &s);
    ASSERT_STREQ(s.first.what, "bad-extra-type");
    run_attack(NF_ATTACK_EXTRA_UNTERMINATED, 0, &s);
    ASSERT_STREQ(s.first.what, "missing-extra");
    run_attack(NF_ATTACK_GSO_SIZE_ZERO, 0, &s);
    ASSERT_EQ(s.first.extra_type, XEN_NETIF_EXTRA_TYPE_GSO);
    ASSERT_EQ(s.first.gso_size, 0);
    run_attack(NF_ATTACK_GSO_BAD_TYPE, 0, &s);
    ASSERT_EQ(s.first.gso_type, 7);
    run_attack(NF_ATTACK_UNTERMINATED, 0, &s);
    ASSERT_STREQ(s.first.what, "unterminated");
    run_attack(NF_ATTACK_REQ_PROD_JUMP, 0, &s);
    ASSERT_STREQ(s.first.what, "req-prod-jump");

    run_attack(NF_ATTACK_BAD_GREF, 0, &s);
    ASSERT_EQ(s.first.copy_status, GNTST_bad_gntref);
    ASSERT_EQ(s.st.tx_rsp_error, 1);
    run_attack(NF_ATTACK_UNUSED_GREF, 0, &s);
    ASSERT_EQ(s.first.copy_status, GNTST_general_error);
    run_attack(NF_ATTACK_FOREIGN_GREF, 0, &s);
    ASSERT_EQ(s.first.copy_status, GNTST_general_error);
    run_attack(NF_ATTACK_REVOKE_GREF, 0, &s);
    ASSERT_TRUE(s.first.copy_status == 0 || s.first.copy_status == GNTST_general_error);
    ASSERT_EQ(s.reports, 1);

    run_attack(NF_ATTACK_REWRITE, 50, &s);
    ASSERT_GE(s.reports, 1); /* whatever tb read, it read each slot once */

    run_attack(NF_ATTACK_EVTCHN_FLOOD, 200, &s);
    ASSERT_GT(s.st.notifies, 100);
    ASSERT_EQ(s.reports, 0);
}

/* RX-side attacks need traffic towards the frontend: tb in echo mode. */
TEST(attack_rx_side)
{
    struct netfront_queue_info qi[1];
    struct netfront *nf;
    struct tb_child c;
    struct tb_report r;
    static uint8_t f[2000];

    /* read-only RX buffers: the backend's grant copy fails */
    world_fresh();
    nf = ring_netfront(1, 1, false, NF_ATTACK_RX_READONLY, 0, qi);
    ASSERT_TRUE(nf != NULL);
    tb_child_start(&c, 1, 1, qi, true, true);
    ASSERT_EQ(netfront_connect(nf), 0);
    ASSERT_EQ(netfront_test_frame(f, 1000, 1, (const uint8_t[6]){2}, netfront_mac(nf), false,
                                  false), 0);
    ASSERT_EQ(netfront_send(nf, f, 1000, NULL), 0);
    ASSERT_TRUE(read_full(c.reports, &r, sizeof(r), 5000)); /* the TX packet */
    ASSERT_STREQ(r.what, "packet");
    ASSERT_TRUE(read_full(c.reports, &r, sizeof(r), 5000));
    ASSERT_STREQ(r.what, "rx-copy");
    ASSERT_EQ(r.copy_status, GNTST_general_error);
    ASSERT_EQ(netfront_recv(nf, f, sizeof(f), 2000, NULL), -ETIMEDOUT);
    {
        struct netfront_stats st;
        netfront_get_stats(nf, &st);
        ASSERT_EQ(st.rx_errors, 1);
    }
    ASSERT_EQ(tb_child_stop(&c), 0);
    ASSERT_EQ(netfront_close(nf), 0);

    /* no RX buffers: nothing can be delivered, the backend must wait */
    world_fresh();
    nf = ring_netfront(1, 1, false, NF_ATTACK_NO_RX_BUFFERS, 0, qi);
    ASSERT_TRUE(nf != NULL);
    tb_child_start(&c, 1, 1, qi, true, true);
    ASSERT_EQ(netfront_connect(nf), 0);
    ASSERT_EQ(netfront_send(nf, f, 1000, NULL), 0);
    ASSERT_EQ(netfront_recv(nf, f, sizeof(f), 300, NULL), -ETIMEDOUT);
    {
        struct netfront_stats st;
        netfront_get_stats(nf, &st);
        ASSERT_EQ(st.rx_posted, 0);
    }
    ASSERT_EQ(tb_child_stop(&c), 0);
    ASSERT_EQ(netfront_close(nf), 0);

    /* RX req_prod far ahead */
    world_fresh();
    nf = ring_netfront(1, 1, false, NF_ATTACK_RX_REQ_PROD_JUMP, 0, qi);
    ASSERT_TRUE(nf != NULL);
    tb_child_start(&c, 1, 1, qi, true, true);
    ASSERT_EQ(netfront_connect(nf), 0);
    ASSERT_EQ(netfront_run_attack(nf), 0);
    ASSERT_EQ(netfront_send(nf, f, 1000, NULL), 0);
    ASSERT_TRUE(read_full(c.reports, &r, sizeof(r), 5000));
    ASSERT_STREQ(r.what, "packet");
    ASSERT_TRUE(read_full(c.reports, &r, sizeof(r), 5000));
    ASSERT_STREQ(r.what, "rx-req-prod-jump");
    ASSERT_EQ(tb_child_stop(&c), 0);
    ASSERT_EQ(netfront_close(nf), 0);
    assert_clean(0);
}

TEST(attack_vanish_leaves_backend_mappings_until_it_unmaps)
{
    struct netfront_queue_info qi[1];
    struct netfront *nf;
    struct xensim_dom_stats st;
    struct tb_child c;

    world_fresh();
    nf = ring_netfront(1, 1, false, NF_ATTACK_VANISH, 0, qi);
    ASSERT_TRUE(nf != NULL);
    tb_child_start(&c, 1, 1, qi, true, false);
    ASSERT_EQ(netfront_connect(nf), 0);
    set_domid(1);
    ASSERT_EQ(netfront_run_attack(nf), 0); /* frees nf */
    set_domid(0);
    ASSERT_EQ(xensim_dom_stats(1, &st), 0);
    ASSERT_FALSE(st.alive);
    ASSERT_EQ(st.pages, 2); /* the two rings tb still maps */
    ASSERT_EQ(tb_child_stop(&c), 0);
    ASSERT_EQ(xensim_dom_stats(1, &st), 0);
    ASSERT_EQ(st.pages, 0);
    assert_clean(0);
}

/* ---- the xenstore handshake against xs-sim --------------------------------------------- */

static const char *xs_sim_binary(void)
{
    static char path[PATH_MAX];
    const char *env = getenv("XS_SIM");
    ssize_t n;

    if (env && *env)
        return env;
    n = readlink("/proc/self/exe", path, sizeof(path) - 16);
    if (n <= 0)
        return NULL;
    path[n] = 0;
    strcpy(strrchr(path, '/') + 1, "xs-sim");
    return path;
}

static pid_t xs_sim_start(const char *dir)
{
    const char *bin = xs_sim_binary();
    int p[2];
    pid_t pid;
    char fdarg[16], ready[8] = {0};

    if (!bin || access(bin, X_OK) < 0)
        return -1;
    if (pipe(p) < 0)
        return -1;
    pid = fork_child();
    if (pid == 0) {
        close(p[0]);
        (void)snprintf(fdarg, sizeof(fdarg), "%d", p[1]);
        execl(bin, bin, "--dir", dir, "--ready-fd", fdarg, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    if (pid < 0 || !read_full(p[0], ready, 6, 10000) || strncmp(ready, "READY", 5)) {
        close(p[0]);
        if (pid > 0) {
            kill(pid, SIGKILL);
            (void)waitpid(pid, NULL, 0);
        }
        return -1;
    }
    close(p[0]);
    return pid;
}

static char *xs_get(struct xs_handle *h, const char *dir, const char *key)
{
    char path[256];
    unsigned len;
    (void)snprintf(path, sizeof(path), "%s/%s", dir, key);
    return xs_read(h, XBT_NULL, path, &len);
}

static long xs_get_num(struct xs_handle *h, const char *dir, const char *key)
{
    char *v = xs_get(h, dir, key);
    long n = v ? strtol(v, NULL, 10) : -1;
    free(v);
    return n;
}

static void xs_put(struct xs_handle *h, const char *dir, const char *key, const char *val)
{
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, key);
    (void)xs_write(h, XBT_NULL, path, val, (unsigned)strlen(val));
}

/* A child that is the netback of vif 1.0 in xenstore terms. Exit 0 when it
 * connected, echoed some frames and saw the frontend close. */
static void xs_backend_child(int cycles)
{
    static struct tb t;
    const char *be = "/local/domain/0/backend/vif/1/0";
    char fe[128], *v;
    struct netfront_queue_info qi[NETFRONT_MAX_QUEUES];
    struct xs_handle *h;
    long nq, s = 0;
    char path[PATH_MAX];

    set_domid(0);
    (void)snprintf(path, sizeof(path), "%s/dom0", world_dir);
    (void)setenv("XENSTORED_PATH", path, 1);
    h = xs_open(0);
    if (!h)
        _exit(20);
    v = xs_get(h, be, "frontend");
    if (!v)
        _exit(21);
    (void)snprintf(fe, sizeof(fe), "%s", v);
    free(v);
    xs_put(h, be, "feature-sg", "1");
    xs_put(h, be, "feature-gso-tcpv4", "1");
    xs_put(h, be, "feature-gso-tcpv6", "1");
    xs_put(h, be, "feature-rx-copy", "1");
    xs_put(h, be, "feature-split-event-channels", "1");
    xs_put(h, be, "multi-queue-max-queues", "4");
again:
    memset(&t, 0, sizeof(t));
    xs_put(h, be, "state", "2");
    for (int i = 0; i < 1000 && (s = xs_get_num(h, fe, "state")) != XenbusStateConnected; i++)
        (void)usleep(10000);
    if (s != XenbusStateConnected)
        _exit(22);
    if (xs_get_num(h, fe, "request-rx-copy") != 1)
        _exit(23);
    nq = xs_get_num(h, fe, "multi-queue-num-queues");
    if (nq < 1)
        nq = 1;
    for (long i = 0; i < nq; i++) {
        char dir[192];
        if (nq == 1)
            (void)snprintf(dir, sizeof(dir), "%s", fe);
        else
            (void)snprintf(dir, sizeof(dir), "%s/queue-%ld", fe, i);
        qi[i].tx_ring_ref = (uint32_t)xs_get_num(h, dir, "tx-ring-ref");
        qi[i].rx_ring_ref = (uint32_t)xs_get_num(h, dir, "rx-ring-ref");
        qi[i].evtchn_tx = (uint32_t)xs_get_num(h, dir, "event-channel-tx");
        qi[i].evtchn_rx = (uint32_t)xs_get_num(h, dir, "event-channel-rx");
        if (qi[i].evtchn_tx == (uint32_t)-1)
            qi[i].evtchn_tx = qi[i].evtchn_rx = (uint32_t)xs_get_num(h, dir, "event-channel");
    }
    t.echo = true;
    t.report_fd = -1;
    if (tb_attach(&t, 1, (unsigned)nq, qi) < 0)
        _exit(24);
    xs_put(h, be, "state", "4");
    for (int i = 0; i < 6000; i++) {
        tb_poll_once(&t, 10);
        if (i % 5 == 0 && (s = xs_get_num(h, fe, "state")) >= XenbusStateClosing)
            break;
    }
    if (s < XenbusStateClosing)
        _exit(25);
    xs_put(h, be, "state", "5");
    tb_detach(&t);
    xs_put(h, be, "state", "6");
    if (t.echoed == 0)
        _exit(26);
    if (--cycles > 0) {
        /* Linux netback: a frontend back to Initialising after Closed
         * means "prepare for reconnect". */
        for (int i = 0; i < 1000 && (s = xs_get_num(h, fe, "state")) != XenbusStateInitialising;
             i++)
            (void)usleep(10000);
        if (s != XenbusStateInitialising)
            _exit(27);
        goto again;
    }
    xs_close(h);
    _exit(0);
}

TEST(netfront_xenstore_handshake_multiqueue_and_reconnect)
{
    static const uint8_t mac[6] = {0x00, 0x16, 0x3e, 0x11, 0x22, 0x33};
    struct netfront_opts o = {.queues = 2, .timeout_ms = 10000};
    struct netfront *nf;
    pid_t sim, be;
    uint32_t seq = 0;

    world_fresh();
    sim = xs_sim_start(world_dir);
    if (sim < 0)
        TEST_FAIL__("xs-sim not found (set XS_SIM) or did not start");
    ASSERT_EQ(netfront_toolstack_attach(0, 1, 0, mac, "xenbr0"), 0);
    be = fork_child();
    ASSERT_TRUE(be >= 0);
    if (be == 0)
        xs_backend_child(2);
    set_domid(1);
    nf = netfront_open(1, 0, &o);
    ASSERT_TRUE(nf != NULL);
    ASSERT_MEMEQ(netfront_mac(nf), mac, 6);
    ASSERT_EQ(netfront_connect(nf), 0);
    set_domid(0);
    ASSERT_EQ(netfront_num_queues(nf), 2);
    ASSERT_EQ(netfront_backend_state(nf), XenbusStateConnected);
    for (unsigned q = 0; q < 2; q++) {
        struct netfront_tx_opts t = {.queue = (int)q};
        struct netfront_tx_opts g = {.queue = (int)q, .gso_type = XEN_NETIF_GSO_TYPE_TCPV4,
                                     .gso_size = 1448, .csum_blank = true};
        roundtrip(nf, 60, &t, seq++);
        roundtrip(nf, 9000, &t, seq++);
        roundtrip(nf, 65535, &g, seq++);
    }
    ASSERT_EQ(netfront_close(nf), 0); /* 5 -> 6 and the backend follows */

    /* The same vif again, one queue, no split channels: the frontend resets
     * to Initialising, the backend reconnects, stale queue-N keys are gone. */
    o.queues = 1;
    o.no_split_evtchn = true;
    set_domid(1);
    nf = netfront_open(1, 0, &o);
    ASSERT_TRUE(nf != NULL);
    ASSERT_EQ(netfront_connect(nf), 0);
    set_domid(0);
    ASSERT_EQ(netfront_num_queues(nf), 1);
    roundtrip(nf, 1514, NULL, seq++);
    roundtrip(nf, 40000, NULL, seq++);
    ASSERT_EQ(netfront_close(nf), 0);
    ASSERT_EQ(wait_child(be), 0);
    ASSERT_EQ(netfront_toolstack_detach(0, 1, 0, 2000), 0);
    assert_clean(0);
    assert_clean(1);
    kill(sim, SIGTERM);
    ASSERT_EQ(wait_child(sim), 0);
}

static const char *sibling_binary(const char *env, const char *name)
{
    static char path[PATH_MAX];
    const char *e = getenv(env);
    ssize_t n;

    if (e && *e)
        return e;
    n = readlink("/proc/self/exe", path, sizeof(path) - 32);
    if (n <= 0)
        return NULL;
    path[n] = 0;
    strcpy(strrchr(path, '/') + 1, name);
    return path;
}

/* Runs argv with stdout captured into out (NUL-terminated); returns the
 * exit status. */
static int run_capture(const char *const argv[], char *out, size_t size)
{
    int p[2], st;
    size_t len = 0;
    pid_t pid;

    if (pipe(p) < 0)
        return -1;
    pid = fork_child();
    if (pid == 0) {
        char *args[32];
        unsigned n = 0;
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        for (; argv[n] && n < 31; n++)
            args[n] = strdup(argv[n]);
        args[n] = NULL;
        execv(args[0], args);
        _exit(127);
    }
    close(p[1]);
    for (;;) {
        ssize_t n = read(p[0], out + len, size - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == size - 1)
            break;
    }
    out[len] = 0;
    close(p[0]);
    st = wait_child(pid);
    return st;
}

TEST(cli_netfront_send_and_attack_over_xenstore)
{
    static const uint8_t mac[6] = {0x00, 0x16, 0x3e, 0x00, 0x01, 0x00};
    const char *cli = sibling_binary("XENSIM_NETFRONT", "xensim-netfront");
    char out[4096];
    pid_t sim, be;

    world_fresh();
    sim = xs_sim_start(world_dir);
    if (sim < 0)
        TEST_FAIL__("xs-sim not found (set XS_SIM) or did not start");
    ASSERT_TRUE(cli && access(cli, X_OK) == 0);
    ASSERT_EQ(netfront_toolstack_attach(0, 1, 0, mac, NULL), 0);
    be = fork_child();
    ASSERT_TRUE(be >= 0);
    if (be == 0)
        xs_backend_child(1);
    {
        const char *argv[] = {cli, "--domid", "1", "--queues", "2", "send", "--count", "100",
                        "--size", "60:65535", "--gso", "1448", NULL};
        ASSERT_EQ(run_capture(argv, out, sizeof(out)), 0);
        ASSERT_TRUE(strstr(out, "SUMMARY cmd send") != NULL);
        ASSERT_TRUE(strstr(out, "sent 100 failed 0") != NULL);
        ASSERT_TRUE(strstr(out, " tx_rsp_error 0 ") != NULL);
    }
    ASSERT_EQ(wait_child(be), 0); /* it echoed, and followed the close */

    /* the vif again, this time the frontend breaks the protocol */
    ASSERT_EQ(netfront_toolstack_detach(0, 1, 0, 2000), 0);
    ASSERT_EQ(netfront_toolstack_attach(0, 1, 0, mac, NULL), 0);
    be = fork_child();
    ASSERT_TRUE(be >= 0);
    if (be == 0)
        xs_backend_child(1);
    {
        const char *argv[] = {cli, "--domid", "1", "--attack", "bad-gref", "attack", NULL};
        ASSERT_EQ(run_capture(argv, out, sizeof(out)), 0);
        ASSERT_TRUE(strstr(out, "attack bad-gref backend_state 4") != NULL);
        ASSERT_TRUE(strstr(out, " tx_rsp_error 1 ") != NULL);
    }
    ASSERT_EQ(wait_child(be), 26); /* it echoed nothing: the only packet was bad */
    ASSERT_EQ(netfront_toolstack_detach(0, 1, 0, 2000), 0);
    assert_clean(0);
    assert_clean(1);
    kill(sim, SIGTERM);
    ASSERT_EQ(wait_child(sim), 0);
}

TEST_MAIN()
