/* test-xs-sim — xs-sim driven through the real libxenstore, and through a
 * raw socket for what the library never sends.
 *
 * Every test starts its own server on a fresh directory, talks to it as dom0
 * and as guests (XENSTORED_PATH=DIR/dom<N> before xs_open()), and stops it
 * with SIGTERM, expecting exit status 0 (under ASan that includes no leaks
 * in the server).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xenstore.h>

#include "test.h"

/* ---- server fixture ------------------------------------------------------ */

static struct {
    pid_t pid;
    char dir[64];
} sim;

static const char *sim_binary(void)
{
    static char path[PATH_MAX];
    const char *env = getenv("XS_SIM");
    ssize_t n;

    if (env)
        return env;
    n = readlink("/proc/self/exe", path, sizeof(path) - 16);
    if (n <= 0)
        return "xs-sim";
    path[n] = '\0';
    strcpy(strrchr(path, '/') + 1, "xs-sim");
    return path;
}

static void sim_kill(void)
{
    if (sim.pid > 0) {
        (void)kill(sim.pid, SIGKILL);
        (void)waitpid(sim.pid, NULL, 0);
        sim.pid = 0;
    }
}

/* Starts xs-sim on a new temporary directory and waits until it listens. */
static void sim_start(void)
{
    int p[2];
    char buf[8] = {0};
    struct pollfd pfd;

    sim_kill(); /* left over by a failed test */
    strcpy(sim.dir, "/tmp/xs-sim-test.XXXXXX");
    ASSERT_TRUE(mkdtemp(sim.dir) != NULL);
    ASSERT_EQ(pipe(p), 0);
    sim.pid = fork();
    ASSERT_TRUE(sim.pid >= 0);
    if (sim.pid == 0) {
        const char *bin = sim_binary();

        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(p[0]);
        if (p[1] != 3) {
            dup2(p[1], 3);
            close(p[1]);
        }
        execl(bin, "xs-sim", "--dir", sim.dir, "--ready-fd", "3", (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(p[1]);
    pfd = (struct pollfd){.fd = p[0], .events = POLLIN};
    ASSERT_EQ(poll(&pfd, 1, 10000), 1);
    ASSERT_EQ(read(p[0], buf, sizeof(buf) - 1), 6);
    ASSERT_STREQ(buf, "READY\n");
    close(p[0]);
}

/* SIGTERM: the server must remove its sockets and exit 0. */
static void sim_stop(void)
{
    char path[128];
    int status = -1;
    struct stat st;

    ASSERT_TRUE(sim.pid > 0);
    ASSERT_EQ(kill(sim.pid, SIGTERM), 0);
    ASSERT_EQ(waitpid(sim.pid, &status, 0), sim.pid);
    sim.pid = 0;
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
    snprintf(path, sizeof(path), "%s/dom0", sim.dir);
    ASSERT_NE(stat(path, &st), 0);
    ASSERT_EQ(rmdir(sim.dir), 0);
}

static void sock_path(unsigned domid, char *buf, size_t size)
{
    snprintf(buf, size, "%s/dom%u", sim.dir, domid);
}

/* A libxenstore handle that is domain `domid`. */
static struct xs_handle *open_as(unsigned domid)
{
    char path[128];

    sock_path(domid, path, sizeof(path));
    setenv("XENSTORED_PATH", path, 1);
    return xs_open(0);
}

/* ---- libxenstore helpers ---------------------------------------------------- */

static char *rd(struct xs_handle *h, xs_transaction_t t, const char *path)
{
    unsigned len;

    return xs_read(h, t, path, &len);
}

#define ASSERT_READ(h, t, path, want)                                                     \
    do {                                                                                  \
        char *v__ = rd((h), (t), (path));                                                 \
        ASSERT_TRUE(v__ != NULL);                                                         \
        int ok__ = !strcmp(v__, (want));                                                  \
        if (!ok__)                                                                        \
            fprintf(stderr, "  read %s = \"%s\"\n", (path), v__);                         \
        free(v__);                                                                        \
        ASSERT_TRUE(ok__);                                                                \
    } while (0)

#define ASSERT_READ_FAILS(h, t, path, err)                                                \
    do {                                                                                  \
        char *v__ = rd((h), (t), (path));                                                 \
        int e__ = errno;                                                                  \
        free(v__);                                                                        \
        ASSERT_TRUE(v__ == NULL);                                                         \
        ASSERT_EQ(e__, (err));                                                            \
    } while (0)

static bool wr(struct xs_handle *h, xs_transaction_t t, const char *path, const char *val)
{
    return xs_write(h, t, path, val, (unsigned)strlen(val));
}

static bool set_perms(struct xs_handle *h, const char *path, unsigned n, ...)
{
    struct xs_permissions p[8];
    va_list ap;

    va_start(ap, n);
    for (unsigned i = 0; i < n; i++) {
        p[i].id = va_arg(ap, unsigned);
        p[i].perms = va_arg(ap, unsigned);
    }
    va_end(ap);
    return xs_set_permissions(h, XBT_NULL, path, p, n);
}

/* Next watch event within ms milliseconds: malloc'd {path, token}, or NULL. */
static char **next_event(struct xs_handle *h, int ms)
{
    int fd = xs_fileno(h);
    struct timespec t0, t1;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        char **v = xs_check_watch(h);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        long spent;

        if (v)
            return v;
        if (errno != EAGAIN)
            return NULL;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        spent = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (spent >= ms)
            return NULL;
        (void)poll(&pfd, 1, (int)(ms - spent));
    }
}

#define EXPECT_EVENT(h, want_path, want_token)                                            \
    do {                                                                                  \
        char **ev__ = next_event((h), 3000);                                              \
        if (!ev__)                                                                        \
            TEST_FAIL__("no watch event %s %s", (want_path), (want_token));               \
        int ok__ = !strcmp(ev__[XS_WATCH_PATH], (want_path)) &&                           \
                   !strcmp(ev__[XS_WATCH_TOKEN], (want_token));                           \
        if (!ok__)                                                                        \
            fprintf(stderr, "  event %s %s, want %s %s\n", ev__[XS_WATCH_PATH],           \
                    ev__[XS_WATCH_TOKEN], (want_path), (want_token));                     \
        free(ev__);                                                                       \
        ASSERT_TRUE(ok__);                                                                \
    } while (0)

#define EXPECT_NO_EVENT(h)                                                                \
    do {                                                                                  \
        char **ev__ = next_event((h), 200);                                               \
        if (ev__) {                                                                       \
            fprintf(stderr, "  unexpected event %s %s\n", ev__[XS_WATCH_PATH],            \
                    ev__[XS_WATCH_TOKEN]);                                                \
            free(ev__);                                                                   \
        }                                                                                 \
        ASSERT_TRUE(ev__ == NULL);                                                        \
    } while (0)

/* ---- raw protocol helpers --------------------------------------------------- */

static int raw_connect(unsigned domid)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    sock_path(domid, sa.sun_path, sizeof(sa.sun_path));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool raw_send(int fd, uint32_t type, uint32_t req_id, uint32_t tx_id, const void *body,
                     uint32_t len)
{
    struct xsd_sockmsg h = {.type = type, .req_id = req_id, .tx_id = tx_id, .len = len};

    return send(fd, &h, sizeof(h), MSG_NOSIGNAL) == (ssize_t)sizeof(h) &&
           (!len || send(fd, body, len, MSG_NOSIGNAL) == (ssize_t)len);
}

/* Reads exactly n bytes within ms; 1 ok, 0 EOF, -1 timeout/error. */
static int read_full(int fd, void *buf, size_t n, int ms)
{
    size_t got = 0;

    while (got < n) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t r;

        if (poll(&pfd, 1, ms) != 1)
            return -1;
        r = read(fd, (char *)buf + got, n - got);
        if (r == 0)
            return 0;
        if (r < 0)
            return -1;
        got += (size_t)r;
    }
    return 1;
}

/* Next frame: 1 ok (body NUL-terminated), 0 connection closed, -1 timeout. */
static int raw_recv(int fd, struct xsd_sockmsg *h, char body[XENSTORE_PAYLOAD_MAX + 1])
{
    int r = read_full(fd, h, sizeof(*h), 3000);

    if (r <= 0)
        return r;
    if (h->len > XENSTORE_PAYLOAD_MAX)
        return -1;
    r = read_full(fd, body, h->len, 3000);
    if (r <= 0)
        return r < 0 ? -1 : 0;
    body[h->len] = '\0';
    return 1;
}

/* Sends one request and returns its reply (skipping watch events). */
static int raw_call(int fd, uint32_t type, uint32_t req_id, uint32_t tx_id, const void *body,
                    uint32_t len, struct xsd_sockmsg *rh, char *rbody)
{
    if (!raw_send(fd, type, req_id, tx_id, body, len))
        return 0;
    for (;;) {
        int r = raw_recv(fd, rh, rbody);

        if (r <= 0 || rh->type != XS_WATCH_EVENT)
            return r;
    }
}

/* The server is closing fd: EOF within 3 s (after draining what it sent). */
static bool raw_closed(int fd)
{
    char buf[4096];

    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t r;

        if (poll(&pfd, 1, 3000) != 1)
            return false;
        r = read(fd, buf, sizeof(buf));
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return true;
        if (r < 0)
            return false;
    }
}

/* The server still answers dom0 through libxenstore. */
static void assert_alive(void)
{
    struct xs_handle *h = open_as(0);

    ASSERT_TRUE(h != NULL);
    ASSERT_TRUE(wr(h, XBT_NULL, "/alive", "yes"));
    ASSERT_READ(h, XBT_NULL, "/alive", "yes");
    xs_close(h);
}

/* libxl's layout for domain `d`: its home readable by it, owned by dom0. */
static void make_domain(struct xs_handle *h0, unsigned d)
{
    char path[64];

    ASSERT_TRUE(xs_introduce_domain(h0, d, 0, 0));
    snprintf(path, sizeof(path), "/local/domain/%u", d);
    ASSERT_TRUE(xs_mkdir(h0, XBT_NULL, path));
    ASSERT_TRUE(set_perms(h0, path, 2, 0u, XS_PERM_NONE, d, XS_PERM_READ));
    snprintf(path, sizeof(path), "/local/domain/%u/device", d);
    ASSERT_TRUE(xs_mkdir(h0, XBT_NULL, path));
    ASSERT_TRUE(set_perms(h0, path, 1, d, XS_PERM_NONE));
    snprintf(path, sizeof(path), "/local/domain/%u/data", d);
    ASSERT_TRUE(xs_mkdir(h0, XBT_NULL, path));
    ASSERT_TRUE(set_perms(h0, path, 1, d, XS_PERM_NONE));
}

/* ---- tests ---------------------------------------------------------------------- */

TEST(open_uses_socket_not_xenbus)
{
    struct xs_handle *h;

    sim_start();
    /* XENSTORED_PATH is what both of libxenstore's attempts use. */
    h = open_as(0);
    ASSERT_TRUE(h != NULL);
    ASSERT_STREQ(xs_daemon_socket(), getenv("XENSTORED_PATH"));
    xs_close(h);
    /* A domain that was never introduced has no socket to connect to. */
    h = open_as(5);
    ASSERT_TRUE(h == NULL);
    sim_stop();
}

TEST(read_write_mkdir_rm_directory)
{
    struct xs_handle *h;
    unsigned num, len;
    char **dir;
    char *v;

    sim_start();
    h = open_as(0);
    ASSERT_TRUE(h != NULL);

    /* write creates the missing parents, with empty values */
    ASSERT_TRUE(wr(h, XBT_NULL, "/a/b/c", "hello"));
    ASSERT_READ(h, XBT_NULL, "/a/b/c", "hello");
    ASSERT_READ(h, XBT_NULL, "/a/b", "");
    ASSERT_TRUE(wr(h, XBT_NULL, "/a/b/d", "x"));
    ASSERT_TRUE(wr(h, XBT_NULL, "/a/b/c", "again")); /* overwrite */
    ASSERT_READ(h, XBT_NULL, "/a/b/c", "again");
    dir = xs_directory(h, XBT_NULL, "/a/b", &num);
    ASSERT_TRUE(dir != NULL);
    ASSERT_EQ(num, 2);
    ASSERT_STREQ(dir[0], "c"); /* insertion order */
    ASSERT_STREQ(dir[1], "d");
    free(dir);

    /* mkdir: new, or already there */
    ASSERT_TRUE(xs_mkdir(h, XBT_NULL, "/a/e"));
    ASSERT_TRUE(xs_mkdir(h, XBT_NULL, "/a/e"));
    ASSERT_TRUE(xs_mkdir(h, XBT_NULL, "/a/b/c")); /* exists: value untouched */
    ASSERT_READ(h, XBT_NULL, "/a/b/c", "again");
    dir = xs_directory(h, XBT_NULL, "/a", &num);
    ASSERT_TRUE(dir != NULL);
    ASSERT_EQ(num, 2);
    ASSERT_STREQ(dir[0], "b");
    ASSERT_STREQ(dir[1], "e");
    free(dir);
    dir = xs_directory(h, XBT_NULL, "/a/e", &num);
    ASSERT_TRUE(dir != NULL);
    ASSERT_EQ(num, 0);
    free(dir);

    /* binary values keep their NULs */
    ASSERT_TRUE(xs_write(h, XBT_NULL, "/bin", "a\0b\0c", 5));
    v = xs_read(h, XBT_NULL, "/bin", &len);
    ASSERT_TRUE(v != NULL);
    ASSERT_EQ(len, 5);
    ASSERT_MEMEQ(v, "a\0b\0c", 5);
    free(v);
    ASSERT_TRUE(xs_write(h, XBT_NULL, "/empty", "", 0));
    ASSERT_READ(h, XBT_NULL, "/empty", "");

    /* rm is recursive */
    ASSERT_TRUE(xs_rm(h, XBT_NULL, "/a/b"));
    ASSERT_READ_FAILS(h, XBT_NULL, "/a/b/c", ENOENT);
    ASSERT_READ_FAILS(h, XBT_NULL, "/a/b", ENOENT);
    dir = xs_directory(h, XBT_NULL, "/a", &num);
    ASSERT_TRUE(dir != NULL);
    ASSERT_EQ(num, 1);
    ASSERT_STREQ(dir[0], "e");
    free(dir);
    /* removing a missing node is fine if its parent exists */
    ASSERT_TRUE(xs_rm(h, XBT_NULL, "/a/zzz"));
    ASSERT_FALSE(xs_rm(h, XBT_NULL, "/nothere/zzz"));
    ASSERT_EQ(errno, ENOENT);
    ASSERT_FALSE(xs_rm(h, XBT_NULL, "/"));
    ASSERT_EQ(errno, EINVAL);
    ASSERT_TRUE(xs_directory(h, XBT_NULL, "/nothere", &num) == NULL);
    ASSERT_EQ(errno, ENOENT);

    /* invalid names */
    ASSERT_FALSE(wr(h, XBT_NULL, "/a/", "v"));
    ASSERT_EQ(errno, EINVAL);
    ASSERT_FALSE(wr(h, XBT_NULL, "/a//b", "v"));
    ASSERT_EQ(errno, EINVAL);
    ASSERT_FALSE(wr(h, XBT_NULL, "/a b", "v"));
    ASSERT_EQ(errno, EINVAL);
    ASSERT_READ_FAILS(h, XBT_NULL, "/a/é", EINVAL);
    ASSERT_TRUE(wr(h, XBT_NULL, "/ok-name_1/@x", "v")); /* the allowed set */

    /* relative names are below the domain's home */
    v = xs_get_domain_path(h, 0);
    ASSERT_STREQ(v, "/local/domain/0");
    free(v);
    v = xs_get_domain_path(h, 7);
    ASSERT_STREQ(v, "/local/domain/7");
    free(v);
    ASSERT_TRUE(wr(h, XBT_NULL, "rel/x", "1"));
    ASSERT_READ(h, XBT_NULL, "/local/domain/0/rel/x", "1");

    /* a value of (almost) a full payload, from dom0 */
    {
        char big[4000];

        memset(big, 'z', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        ASSERT_TRUE(wr(h, XBT_NULL, "/big", big));
        ASSERT_READ(h, XBT_NULL, "/big", big);
    }

    /* the root: owned by dom0, nobody else may do anything */
    {
        struct xs_permissions *p = xs_get_permissions(h, XBT_NULL, "/", &num);

        ASSERT_TRUE(p != NULL);
        ASSERT_EQ(num, 1);
        ASSERT_EQ(p[0].id, 0);
        ASSERT_EQ(p[0].perms, XS_PERM_NONE);
        free(p);
    }
    xs_close(h);
    sim_stop();
}

/* A directory too large for one reply makes libxenstore switch to
 * XS_DIRECTORY_PART. */
TEST(directory_part_for_large_directories)
{
    struct xs_handle *h;
    unsigned num;
    char **dir;
    char path[128];

    sim_start();
    h = open_as(0);
    ASSERT_TRUE(h != NULL);
    for (unsigned i = 0; i < 300; i++) {
        snprintf(path, sizeof(path), "/many/child-with-a-rather-long-name-%04u", i);
        ASSERT_TRUE(wr(h, XBT_NULL, path, "v"));
    }
    dir = xs_directory(h, XBT_NULL, "/many", &num);
    ASSERT_TRUE(dir != NULL);
    ASSERT_EQ(num, 300);
    for (unsigned i = 0; i < 300; i++) {
        snprintf(path, sizeof(path), "child-with-a-rather-long-name-%04u", i);
        ASSERT_STREQ(dir[i], path);
    }
    free(dir);
    xs_close(h);
    sim_stop();
}

TEST(watch_events)
{
    struct xs_handle *h, *w;

    sim_start();
    h = open_as(0);
    w = open_as(0);
    ASSERT_TRUE(h && w);
    (void)xs_fileno(w);

    /* initial event, even for a node that does not exist */
    ASSERT_TRUE(xs_watch(w, "/w", "tok"));
    EXPECT_EVENT(w, "/w", "tok");
    EXPECT_NO_EVENT(w);
    ASSERT_FALSE(xs_watch(w, "/w", "tok"));
    ASSERT_EQ(errno, EEXIST);

    /* changes at and below the node fire; elsewhere they do not */
    ASSERT_TRUE(wr(h, XBT_NULL, "/w/x", "1"));
    EXPECT_EVENT(w, "/w/x", "tok");
    ASSERT_TRUE(wr(h, XBT_NULL, "/other", "1"));
    ASSERT_TRUE(wr(h, XBT_NULL, "/wx", "1")); /* a prefix is not a parent */
    EXPECT_NO_EVENT(w);
    ASSERT_TRUE(xs_mkdir(h, XBT_NULL, "/w/y"));
    EXPECT_EVENT(w, "/w/y", "tok");
    ASSERT_TRUE(xs_mkdir(h, XBT_NULL, "/w/y")); /* exists: no change, no event */
    EXPECT_NO_EVENT(w);
    ASSERT_TRUE(set_perms(h, "/w/x", 1, 0u, XS_PERM_READ));
    EXPECT_EVENT(w, "/w/x", "tok");

    /* a second watch exactly on a child */
    ASSERT_TRUE(xs_watch(w, "/w/x", "child"));
    EXPECT_EVENT(w, "/w/x", "child");

    /* rm: every removed node fires for watches on exactly it, children
     * first; the removed root fires for watches on it and above */
    ASSERT_TRUE(xs_rm(h, XBT_NULL, "/w"));
    EXPECT_EVENT(w, "/w/x", "child");
    EXPECT_EVENT(w, "/w", "tok");
    EXPECT_NO_EVENT(w);

    /* unwatch stops events */
    ASSERT_TRUE(xs_unwatch(w, "/w", "tok"));
    ASSERT_FALSE(xs_unwatch(w, "/w", "tok"));
    ASSERT_EQ(errno, ENOENT);
    ASSERT_TRUE(wr(h, XBT_NULL, "/w/z", "1"));
    EXPECT_NO_EVENT(w);

    /* a watch on / sees everything */
    ASSERT_TRUE(xs_watch(w, "/", "all"));
    EXPECT_EVENT(w, "/", "all");
    ASSERT_TRUE(wr(h, XBT_NULL, "/deep/er/node", "1"));
    EXPECT_EVENT(w, "/deep/er/node", "all");

    /* the writer itself gets events for its own watches */
    ASSERT_TRUE(xs_watch(h, "/self", "me"));
    EXPECT_EVENT(h, "/self", "me");
    ASSERT_TRUE(wr(h, XBT_NULL, "/self", "1"));
    EXPECT_EVENT(h, "/self", "me");
    EXPECT_EVENT(w, "/self", "all");

    xs_close(h);
    xs_close(w);
    sim_stop();
}

TEST(transactions_commit_abort_conflict)
{
    struct xs_handle *h, *w;
    xs_transaction_t t;
    unsigned num;
    char **dir;

    sim_start();
    h = open_as(0);
    w = open_as(0);
    ASSERT_TRUE(h && w);

    /* commit: invisible outside until the end, then visible */
    t = xs_transaction_start(h);
    ASSERT_NE(t, XBT_NULL);
    ASSERT_TRUE(wr(h, t, "/tx/a", "1"));
    ASSERT_READ(h, t, "/tx/a", "1");
    ASSERT_READ_FAILS(h, XBT_NULL, "/tx/a", ENOENT);
    ASSERT_TRUE(xs_transaction_end(h, t, false));
    ASSERT_READ(h, XBT_NULL, "/tx/a", "1");

    /* abort: nothing happened */
    t = xs_transaction_start(h);
    ASSERT_TRUE(wr(h, t, "/tx/b", "1"));
    ASSERT_TRUE(xs_rm(h, t, "/tx/a"));
    ASSERT_READ_FAILS(h, t, "/tx/a", ENOENT);
    dir = xs_directory(h, t, "/tx", &num);
    ASSERT_TRUE(dir != NULL);
    ASSERT_EQ(num, 1);
    ASSERT_STREQ(dir[0], "b");
    free(dir);
    ASSERT_TRUE(xs_transaction_end(h, t, true));
    ASSERT_READ_FAILS(h, XBT_NULL, "/tx/b", ENOENT);
    ASSERT_READ(h, XBT_NULL, "/tx/a", "1");

    /* conflict: a commit by someone else in between -> EAGAIN, no effect */
    t = xs_transaction_start(h);
    ASSERT_READ(h, t, "/tx/a", "1");
    ASSERT_TRUE(wr(w, XBT_NULL, "/tx/c", "other"));
    ASSERT_TRUE(wr(h, t, "/tx/a", "2"));
    ASSERT_FALSE(xs_transaction_end(h, t, false));
    ASSERT_EQ(errno, EAGAIN);
    ASSERT_READ(h, XBT_NULL, "/tx/a", "1");
    /* ... and the usual retry succeeds */
    t = xs_transaction_start(h);
    ASSERT_TRUE(wr(h, t, "/tx/a", "2"));
    ASSERT_TRUE(xs_transaction_end(h, t, false));
    ASSERT_READ(h, XBT_NULL, "/tx/a", "2");

    /* two transactions of one connection at once */
    {
        xs_transaction_t t1 = xs_transaction_start(h), t2 = xs_transaction_start(h);

        ASSERT_NE(t1, t2);
        ASSERT_TRUE(wr(h, t1, "/tx/t1", "1"));
        ASSERT_TRUE(wr(h, t2, "/tx/t2", "1"));
        ASSERT_READ_FAILS(h, t2, "/tx/t1", ENOENT);
        ASSERT_TRUE(xs_transaction_end(h, t1, false));
        ASSERT_FALSE(xs_transaction_end(h, t2, false));
        ASSERT_EQ(errno, EAGAIN);
    }

    /* watches fire at the commit, not before */
    (void)xs_fileno(w);
    ASSERT_TRUE(xs_watch(w, "/tx", "tx"));
    EXPECT_EVENT(w, "/tx", "tx");
    t = xs_transaction_start(h);
    ASSERT_TRUE(wr(h, t, "/tx/d", "1"));
    ASSERT_TRUE(wr(h, t, "/tx/d", "2")); /* one event for the node */
    EXPECT_NO_EVENT(w);
    ASSERT_TRUE(xs_transaction_end(h, t, false));
    EXPECT_EVENT(w, "/tx/d", "tx");
    EXPECT_NO_EVENT(w);
    /* an aborted transaction fires nothing */
    t = xs_transaction_start(h);
    ASSERT_TRUE(wr(h, t, "/tx/e", "1"));
    ASSERT_TRUE(xs_transaction_end(h, t, true));
    EXPECT_NO_EVENT(w);

    /* unknown transaction ids */
    ASSERT_READ_FAILS(h, 12345, "/tx/a", ENOENT);
    ASSERT_FALSE(xs_transaction_end(h, 12345, false));
    ASSERT_EQ(errno, ENOENT);

    xs_close(h);
    xs_close(w);
    sim_stop();
}

TEST(permissions_domu)
{
    struct xs_handle *h0, *h1;
    struct xs_permissions *p;
    unsigned num;
    char *v;

    sim_start();
    h0 = open_as(0);
    ASSERT_TRUE(h0 != NULL);
    make_domain(h0, 1);
    h1 = open_as(1);
    ASSERT_TRUE(h1 != NULL);

    /* a dom0 node with default permissions: no access for dom1 */
    ASSERT_TRUE(wr(h0, XBT_NULL, "/secret/v", "s"));
    ASSERT_READ_FAILS(h1, XBT_NULL, "/secret/v", EACCES);
    ASSERT_FALSE(wr(h1, XBT_NULL, "/secret/v", "x"));
    ASSERT_EQ(errno, EACCES);
    ASSERT_FALSE(xs_rm(h1, XBT_NULL, "/secret/v"));
    ASSERT_EQ(errno, EACCES);
    ASSERT_FALSE(wr(h1, XBT_NULL, "/newtop", "x"));
    ASSERT_EQ(errno, EACCES);
    ASSERT_TRUE(xs_directory(h1, XBT_NULL, "/secret", &num) == NULL);
    ASSERT_EQ(errno, EACCES);
    /* a missing node below an unreadable one is EACCES, not ENOENT */
    ASSERT_READ_FAILS(h1, XBT_NULL, "/secret/missing", EACCES);
    ASSERT_READ_FAILS(h0, XBT_NULL, "/secret/missing", ENOENT);

    /* read permission for dom1 */
    ASSERT_TRUE(set_perms(h0, "/secret/v", 2, 0u, XS_PERM_NONE, 1u, XS_PERM_READ));
    ASSERT_READ(h1, XBT_NULL, "/secret/v", "s");
    ASSERT_FALSE(wr(h1, XBT_NULL, "/secret/v", "x"));
    ASSERT_EQ(errno, EACCES);
    ASSERT_READ_FAILS(h1, XBT_NULL, "/secret/v/missing", ENOENT);
    /* read and write */
    ASSERT_TRUE(set_perms(h0, "/secret/v", 2, 0u, XS_PERM_NONE, 1u, XS_PERM_READ | XS_PERM_WRITE));
    ASSERT_TRUE(wr(h1, XBT_NULL, "/secret/v", "by-dom1"));
    ASSERT_READ(h0, XBT_NULL, "/secret/v", "by-dom1");
    /* writing does not make dom1 the owner, so it cannot change perms */
    ASSERT_FALSE(set_perms(h1, "/secret/v", 2, 0u, XS_PERM_READ, 1u, XS_PERM_READ));
    ASSERT_EQ(errno, EACCES);
    p = xs_get_permissions(h1, XBT_NULL, "/secret/v", &num);
    ASSERT_TRUE(p != NULL);
    ASSERT_EQ(num, 2);
    ASSERT_EQ(p[0].id, 0);
    ASSERT_EQ(p[1].id, 1);
    ASSERT_EQ(p[1].perms, XS_PERM_READ | XS_PERM_WRITE);
    free(p);
    /* the "others" entry grants to every domain not listed */
    ASSERT_TRUE(wr(h0, XBT_NULL, "/pub", "p"));
    ASSERT_TRUE(set_perms(h0, "/pub", 1, 0u, XS_PERM_READ));
    ASSERT_READ(h1, XBT_NULL, "/pub", "p");
    /* an explicit entry overrides it */
    ASSERT_TRUE(set_perms(h0, "/pub", 2, 0u, XS_PERM_READ, 1u, XS_PERM_NONE));
    ASSERT_READ_FAILS(h1, XBT_NULL, "/pub", EACCES);

    /* dom1 creates below its own area and owns what it creates */
    ASSERT_TRUE(wr(h1, XBT_NULL, "data/x", "mine")); /* relative to its home */
    ASSERT_READ(h0, XBT_NULL, "/local/domain/1/data/x", "mine");
    p = xs_get_permissions(h1, XBT_NULL, "data/x", &num);
    ASSERT_TRUE(p != NULL);
    ASSERT_EQ(p[0].id, 1);
    free(p);
    ASSERT_TRUE(set_perms(h1, "data/x", 2, 1u, XS_PERM_NONE, 0u, XS_PERM_READ));
    /* ... but may not give it away */
    ASSERT_FALSE(set_perms(h1, "data/x", 1, 2u, XS_PERM_NONE));
    ASSERT_EQ(errno, EPERM);
    /* ... also below a dom0 node that lets it write: the new node's owner
     * is dom1, the rest of the permissions are inherited */
    ASSERT_TRUE(xs_mkdir(h0, XBT_NULL, "/shared"));
    ASSERT_TRUE(set_perms(h0, "/shared", 2, 0u, XS_PERM_NONE, 1u, XS_PERM_READ | XS_PERM_WRITE));
    ASSERT_TRUE(wr(h1, XBT_NULL, "/shared/made-by-1/leaf", "v"));
    p = xs_get_permissions(h0, XBT_NULL, "/shared/made-by-1", &num);
    ASSERT_TRUE(p != NULL);
    ASSERT_EQ(num, 2);
    ASSERT_EQ(p[0].id, 1);
    ASSERT_EQ(p[0].perms, XS_PERM_NONE);
    ASSERT_EQ(p[1].id, 1);
    free(p);
    ASSERT_TRUE(set_perms(h1, "/shared/made-by-1/leaf", 1, 1u, XS_PERM_READ));
    /* dom0 creating there keeps the inherited owner */
    ASSERT_TRUE(wr(h0, XBT_NULL, "/shared/made-by-0", "v"));
    p = xs_get_permissions(h0, XBT_NULL, "/shared/made-by-0", &num);
    ASSERT_TRUE(p != NULL);
    ASSERT_EQ(p[0].id, 0);
    free(p);
    /* its home is read-only to it */
    ASSERT_READ(h1, XBT_NULL, "/local/domain/1", "");
    ASSERT_FALSE(wr(h1, XBT_NULL, "/local/domain/1/name", "x"));
    ASSERT_EQ(errno, EACCES);
    v = xs_get_domain_path(h1, 1);
    ASSERT_STREQ(v, "/local/domain/1");
    free(v);

    /* privileged operations */
    ASSERT_FALSE(xs_introduce_domain(h1, 9, 0, 0));
    ASSERT_EQ(errno, EACCES);
    ASSERT_FALSE(xs_release_domain(h1, 1));
    ASSERT_EQ(errno, EACCES);
    {
        char text[] = "x";

        ASSERT_TRUE(xs_control_command(h1, "print", text, sizeof(text)) == NULL);
    }
    ASSERT_EQ(errno, EACCES);

    /* a watch on what dom1 may not read: the initial event only */
    (void)xs_fileno(h1);
    ASSERT_TRUE(xs_watch(h1, "/secret", "peek"));
    EXPECT_EVENT(h1, "/secret", "peek");
    ASSERT_TRUE(wr(h0, XBT_NULL, "/secret/hidden", "1"));
    EXPECT_NO_EVENT(h1);

    /* unprivileged quota: 1000 nodes per domain, values < 2 KiB */
    {
        char path[64];
        unsigned i;
        char big[2100];

        memset(big, 'b', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        ASSERT_FALSE(wr(h1, XBT_NULL, "data/big", big));
        ASSERT_EQ(errno, ENOSPC);
        for (i = 0; i < 1100; i++) {
            snprintf(path, sizeof(path), "data/q%u", i);
            if (!wr(h1, XBT_NULL, path, "v"))
                break;
        }
        ASSERT_EQ(errno, ENOSPC);
        ASSERT_LT(i, 1000);
        ASSERT_GT(i, 990);
    }
    xs_close(h1);
    xs_close(h0);
    sim_stop();
}

/* The frontend/backend layout libxl creates for vif 0 of domain 1, and what
 * each side may do with the other's nodes. */
TEST(vif_frontend_backend_layout)
{
    const char *be = "/local/domain/0/backend/vif/1/0";
    const char *fe = "/local/domain/1/device/vif/0";
    struct xs_handle *h0, *h1, *h2;
    xs_transaction_t t;
    char path[128];

    sim_start();
    h0 = open_as(0);
    ASSERT_TRUE(h0 != NULL);
    make_domain(h0, 1);
    make_domain(h0, 2);

    /* the toolstack writes both halves in one transaction */
    do {
        struct xs_permissions beperm[2] = {{0, XS_PERM_NONE}, {1, XS_PERM_READ}};
        struct xs_permissions feperm[2] = {{1, XS_PERM_NONE}, {0, XS_PERM_READ}};

        t = xs_transaction_start(h0);
        ASSERT_NE(t, XBT_NULL);
        (void)xs_rm(h0, t, be); /* libxl ignores these failing */
        ASSERT_TRUE(xs_mkdir(h0, t, be));
        ASSERT_TRUE(xs_set_permissions(h0, t, be, beperm, 2));
        (void)xs_rm(h0, t, fe);
        ASSERT_TRUE(xs_mkdir(h0, t, fe));
        ASSERT_TRUE(xs_set_permissions(h0, t, fe, feperm, 2));
        snprintf(path, sizeof(path), "%s/frontend", be);
        ASSERT_TRUE(wr(h0, t, path, fe));
        snprintf(path, sizeof(path), "%s/frontend-id", be);
        ASSERT_TRUE(wr(h0, t, path, "1"));
        snprintf(path, sizeof(path), "%s/state", be);
        ASSERT_TRUE(wr(h0, t, path, "1"));
        snprintf(path, sizeof(path), "%s/mac", be);
        ASSERT_TRUE(wr(h0, t, path, "00:16:3e:00:00:01"));
        snprintf(path, sizeof(path), "%s/backend", fe);
        ASSERT_TRUE(wr(h0, t, path, be));
        snprintf(path, sizeof(path), "%s/backend-id", fe);
        ASSERT_TRUE(wr(h0, t, path, "0"));
        snprintf(path, sizeof(path), "%s/state", fe);
        ASSERT_TRUE(wr(h0, t, path, "1"));
        if (xs_transaction_end(h0, t, false))
            break;
        ASSERT_EQ(errno, EAGAIN);
    } while (1);

    h1 = open_as(1);
    h2 = open_as(2);
    ASSERT_TRUE(h1 && h2);
    (void)xs_fileno(h0);
    (void)xs_fileno(h1);

    /* the guest reads the backend but may not touch it */
    snprintf(path, sizeof(path), "%s/state", be);
    ASSERT_READ(h1, XBT_NULL, path, "1");
    ASSERT_FALSE(wr(h1, XBT_NULL, path, "4"));
    ASSERT_EQ(errno, EACCES);
    snprintf(path, sizeof(path), "%s/feature-evil", be);
    ASSERT_FALSE(wr(h1, XBT_NULL, path, "1"));
    ASSERT_EQ(errno, EACCES);
    ASSERT_FALSE(xs_rm(h1, XBT_NULL, be));
    ASSERT_EQ(errno, EACCES);
    ASSERT_FALSE(set_perms(h1, be, 2, 0u, XS_PERM_NONE, 1u, XS_PERM_WRITE));
    ASSERT_EQ(errno, EACCES);
    /* the guest owns its frontend and writes there; dom0 reads it */
    ASSERT_READ(h1, XBT_NULL, "device/vif/0/backend", be);
    ASSERT_TRUE(wr(h1, XBT_NULL, "device/vif/0/tx-ring-ref", "8"));
    snprintf(path, sizeof(path), "%s/tx-ring-ref", fe);
    ASSERT_READ(h0, XBT_NULL, path, "8");
    {
        unsigned num;
        struct xs_permissions *p = xs_get_permissions(h0, XBT_NULL, path, &num);

        ASSERT_TRUE(p != NULL);
        ASSERT_EQ(num, 2); /* inherited from the frontend dir */
        ASSERT_EQ(p[0].id, 1);
        ASSERT_EQ(p[1].id, 0);
        ASSERT_EQ(p[1].perms, XS_PERM_READ);
        free(p);
    }
    /* a third domain sees neither */
    ASSERT_READ_FAILS(h2, XBT_NULL, path, EACCES);
    snprintf(path, sizeof(path), "%s/state", be);
    ASSERT_READ_FAILS(h2, XBT_NULL, path, EACCES);
    ASSERT_FALSE(wr(h2, XBT_NULL, "/local/domain/1/device/vif/0/state", "6"));
    ASSERT_EQ(errno, EACCES);

    /* the handshake's watches, both ways */
    snprintf(path, sizeof(path), "%s/state", fe);
    ASSERT_TRUE(xs_watch(h0, path, "fe-state"));
    EXPECT_EVENT(h0, path, "fe-state");
    ASSERT_TRUE(xs_watch(h1, "device/vif/0/state", "rel")); /* relative */
    EXPECT_EVENT(h1, "device/vif/0/state", "rel");
    snprintf(path, sizeof(path), "%s/state", be);
    ASSERT_TRUE(xs_watch(h1, path, "be-state"));
    EXPECT_EVENT(h1, path, "be-state");

    ASSERT_TRUE(wr(h0, XBT_NULL, path, "2")); /* backend InitWait */
    EXPECT_EVENT(h1, path, "be-state");
    ASSERT_TRUE(wr(h1, XBT_NULL, "device/vif/0/state", "4")); /* frontend Connected */
    EXPECT_EVENT(h1, "device/vif/0/state", "rel");
    snprintf(path, sizeof(path), "%s/state", fe);
    EXPECT_EVENT(h0, path, "fe-state");

    /* the backend going away reaches the guest (it may read the node) */
    ASSERT_TRUE(xs_rm(h0, XBT_NULL, be));
    snprintf(path, sizeof(path), "%s/state", be);
    EXPECT_EVENT(h1, path, "be-state");
    EXPECT_NO_EVENT(h1);

    xs_close(h2);
    xs_close(h1);
    xs_close(h0);
    sim_stop();
}

TEST(introduce_release_special_watches)
{
    struct xs_handle *h0, *h1, *h3;
    char path[128];
    struct stat st;
    char *v;

    sim_start();
    h0 = open_as(0);
    ASSERT_TRUE(h0 != NULL);
    (void)xs_fileno(h0);
    ASSERT_TRUE(xs_watch(h0, "@introduceDomain", "intro"));
    EXPECT_EVENT(h0, "@introduceDomain", "intro");
    ASSERT_TRUE(xs_watch(h0, "@releaseDomain", "rel"));
    EXPECT_EVENT(h0, "@releaseDomain", "rel");

    ASSERT_TRUE(xs_is_domain_introduced(h0, 0));
    ASSERT_FALSE(xs_is_domain_introduced(h0, 3));
    ASSERT_TRUE(xs_introduce_domain(h0, 3, 0x1234, 5));
    EXPECT_EVENT(h0, "@introduceDomain", "intro");
    ASSERT_TRUE(xs_is_domain_introduced(h0, 3));
    sock_path(3, path, sizeof(path));
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_TRUE(xs_introduce_domain(h0, 3, 0x1234, 5)); /* again: no new event */
    EXPECT_NO_EVENT(h0);

    make_domain(h0, 1);
    EXPECT_EVENT(h0, "@introduceDomain", "intro");
    h1 = open_as(1);
    h3 = open_as(3);
    ASSERT_TRUE(h1 && h3);
    v = xs_get_domain_path(h3, 3);
    ASSERT_STREQ(v, "/local/domain/3");
    free(v);
    /* a guest may watch special nodes but, without permission, only gets
     * the initial event */
    (void)xs_fileno(h1);
    ASSERT_TRUE(xs_watch(h1, "@releaseDomain", "g"));
    EXPECT_EVENT(h1, "@releaseDomain", "g");

    /* release: the event fires, the domain's connections and socket go */
    ASSERT_TRUE(xs_release_domain(h0, 3));
    EXPECT_EVENT(h0, "@releaseDomain", "rel");
    EXPECT_NO_EVENT(h1);
    ASSERT_FALSE(xs_is_domain_introduced(h0, 3));
    ASSERT_NE(stat(path, &st), 0);
    v = rd(h3, XBT_NULL, "/local/domain/3");
    ASSERT_TRUE(v == NULL); /* connection closed by the server */
    xs_close(h3);
    h3 = open_as(3);
    ASSERT_TRUE(h3 == NULL);
    ASSERT_FALSE(xs_release_domain(h0, 3));
    ASSERT_EQ(errno, ENOENT);
    ASSERT_FALSE(xs_release_domain(h0, 0));
    ASSERT_EQ(errno, EINVAL);

    /* permission on @releaseDomain lets a (driver) domain see it */
    {
        struct xs_permissions p[2] = {{0, XS_PERM_NONE}, {1, XS_PERM_READ}};

        ASSERT_TRUE(xs_set_permissions(h0, XBT_NULL, "@releaseDomain", p, 2));
    }
    ASSERT_TRUE(xs_introduce_domain(h0, 4, 0, 0));
    EXPECT_EVENT(h0, "@introduceDomain", "intro");
    ASSERT_TRUE(xs_release_domain(h0, 4));
    EXPECT_EVENT(h0, "@releaseDomain", "rel");
    EXPECT_EVENT(h1, "@releaseDomain", "g");

    /* re-introducing brings the socket back */
    ASSERT_TRUE(xs_introduce_domain(h0, 3, 0, 0));
    h3 = open_as(3);
    ASSERT_TRUE(h3 != NULL);
    v = xs_get_domain_path(h3, 3);
    ASSERT_STREQ(v, "/local/domain/3");
    free(v);

    /* XS_CONTROL: "print" only */
    {
        char text[] = "hello from the test";

        v = xs_control_command(h0, "print", text, sizeof(text));
    }
    ASSERT_STREQ(v, "OK");
    free(v);
    ASSERT_TRUE(xs_control_command(h0, "no-such-command", NULL, 0) == NULL);
    ASSERT_EQ(errno, EINVAL);

    xs_close(h3);
    xs_close(h1);
    xs_close(h0);
    sim_stop();
}

/* Wire details libxenstore hides: reply framing, req_id echo, ordering of
 * the WATCH ack and its initial event, RESET_WATCHES. */
TEST(raw_protocol_details)
{
    struct xsd_sockmsg rh;
    char body[XENSTORE_PAYLOAD_MAX + 1];
    int fd;

    sim_start();
    fd = raw_connect(0);
    ASSERT_TRUE(fd >= 0);

    ASSERT_EQ(raw_call(fd, XS_WRITE, 7, 0, "/r\0val", 6, &rh, body), 1);
    ASSERT_EQ(rh.type, XS_WRITE);
    ASSERT_EQ(rh.req_id, 7);
    ASSERT_EQ(rh.len, 3);
    ASSERT_MEMEQ(body, "OK", 3);
    ASSERT_EQ(raw_call(fd, XS_READ, 8, 0, "/r", 3, &rh, body), 1);
    ASSERT_EQ(rh.type, XS_READ);
    ASSERT_EQ(rh.req_id, 8);
    ASSERT_EQ(rh.len, 3); /* no NUL added */
    ASSERT_MEMEQ(body, "val", 3);
    ASSERT_EQ(raw_call(fd, XS_READ, 9, 0, "/nope", 6, &rh, body), 1);
    ASSERT_EQ(rh.type, XS_ERROR);
    ASSERT_EQ(rh.req_id, 9);
    ASSERT_STREQ(body, "ENOENT");
    ASSERT_EQ(rh.len, 7);

    /* WATCH: the ack first, then the initial event */
    ASSERT_TRUE(raw_send(fd, XS_WATCH, 10, 0, "/r\0tk", 6));
    ASSERT_EQ(raw_recv(fd, &rh, body), 1);
    ASSERT_EQ(rh.type, XS_WATCH);
    ASSERT_EQ(rh.req_id, 10);
    ASSERT_EQ(raw_recv(fd, &rh, body), 1);
    ASSERT_EQ(rh.type, XS_WATCH_EVENT);
    ASSERT_EQ(rh.len, 6);
    ASSERT_MEMEQ(body, "/r\0tk", 6);
    /* RESET_WATCHES: no more events */
    ASSERT_EQ(raw_call(fd, XS_RESET_WATCHES, 11, 0, "", 1, &rh, body), 1);
    ASSERT_EQ(rh.type, XS_RESET_WATCHES);
    ASSERT_TRUE(raw_send(fd, XS_WRITE, 12, 0, "/r\0v2", 5));
    ASSERT_EQ(raw_recv(fd, &rh, body), 1);
    ASSERT_EQ(rh.type, XS_WRITE); /* the ack, no event before it */
    {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};

        ASSERT_EQ(poll(&pfd, 1, 200), 0);
    }

    /* TRANSACTION_START returns the id as a string; the reply echoes tx_id */
    ASSERT_EQ(raw_call(fd, XS_TRANSACTION_START, 13, 0, "", 1, &rh, body), 1);
    ASSERT_EQ(rh.type, XS_TRANSACTION_START);
    {
        uint32_t tx = (uint32_t)strtoul(body, NULL, 10);

        ASSERT_NE(tx, 0);
        ASSERT_EQ(raw_call(fd, XS_TRANSACTION_START, 14, tx, "", 1, &rh, body), 1);
        ASSERT_STREQ(body, "EBUSY");
        ASSERT_EQ(raw_call(fd, XS_READ, 15, tx, "/r", 3, &rh, body), 1);
        ASSERT_EQ(rh.tx_id, tx);
        ASSERT_EQ(raw_call(fd, XS_TRANSACTION_END, 16, tx, "X", 2, &rh, body), 1);
        ASSERT_STREQ(body, "EINVAL");
        ASSERT_EQ(raw_call(fd, XS_TRANSACTION_END, 17, tx, "F", 2, &rh, body), 1);
        ASSERT_EQ(rh.type, XS_TRANSACTION_END);
        ASSERT_EQ(raw_call(fd, XS_TRANSACTION_END, 18, tx, "F", 2, &rh, body), 1);
        ASSERT_STREQ(body, "ENOENT");
    }
    close(fd);
    sim_stop();
}

TEST(garbage_input_does_not_crash)
{
    struct xsd_sockmsg rh;
    char body[XENSTORE_PAYLOAD_MAX + 1];
    static const struct {
        uint32_t type;
        const char *body;
        uint32_t len;
    } bad[] = {
        {999, "", 1},                          /* unknown type */
        {XS_TYPE_COUNT, "", 1},
        {20, "", 1},                           /* removed XS_RESTRICT */
        {XS_ERROR, "EINVAL", 7},               /* server-to-client types */
        {XS_WATCH_EVENT, "/a\0b", 5},
        {XS_READ, "", 0},                      /* no argument */
        {XS_READ, "/a", 2},                    /* no NUL */
        {XS_READ, "/a\0/b", 5},                /* trailing bytes */
        {XS_READ, "/a\0/b", 6},                /* two arguments */
        {XS_READ, "a\0", 2},                   /* relative, fine: ENOENT */
        {XS_WRITE, "/a", 2},                   /* no NUL at all */
        {XS_WATCH, "/a", 3},                   /* no token */
        {XS_WATCH, "/a\0t\0x", 7},             /* three strings */
        {XS_UNWATCH, "/a\0", 3},
        {XS_SET_PERMS, "/a", 3},               /* no perms */
        {XS_SET_PERMS, "/a\0x1", 6},           /* bad perm letter */
        {XS_SET_PERMS, "/a\0r", 5},            /* no domid */
        {XS_SET_PERMS, "/a\0r-1", 7},
        {XS_SET_PERMS, "/a\0r99999999999", 16},
        {XS_GET_DOMAIN_PATH, "abc", 4},
        {XS_GET_DOMAIN_PATH, "99999999999", 12},
        {XS_DIRECTORY_PART, "/\0zz", 5},
        {XS_DIRECTORY_PART, "/\0" "-1", 5},
        {XS_TRANSACTION_END, "T", 2},          /* no transaction */
        {XS_INTRODUCE, "1", 2},                /* too few args */
        {XS_INTRODUCE, "0\0" "1\0" "1", 6},    /* dom0 */
        {XS_RELEASE, "x", 2},
        {XS_WRITE, "/\xff\0v", 4},             /* bad characters */
    };
    int fd, fd1;

    sim_start();
    fd = raw_connect(0);
    ASSERT_TRUE(fd >= 0);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = raw_call(fd, bad[i].type, 100 + (uint32_t)i, 0, bad[i].body, bad[i].len, &rh,
                         body);

        if (r != 1)
            TEST_FAIL__("case %zu: no reply", i);
        if (rh.type != XS_ERROR || rh.req_id != 100 + i)
            TEST_FAIL__("case %zu: reply type %u req %u", i, rh.type, rh.req_id);
    }
    /* a bogus transaction id */
    ASSERT_EQ(raw_call(fd, XS_READ, 1, 777, "/", 2, &rh, body), 1);
    ASSERT_STREQ(body, "ENOENT");
    /* an over-long frame: the server hangs up */
    {
        struct xsd_sockmsg h = {.type = XS_WRITE, .len = XENSTORE_PAYLOAD_MAX + 1};

        ASSERT_EQ(send(fd, &h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
        ASSERT_TRUE(raw_closed(fd));
        close(fd);
        fd = raw_connect(0);
        h.len = 0xffffffffu;
        ASSERT_EQ(send(fd, &h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
        ASSERT_TRUE(raw_closed(fd));
        close(fd);
    }
    /* vanishing mid-header and mid-body */
    fd = raw_connect(0);
    ASSERT_EQ(send(fd, "\x02\0\0", 3, MSG_NOSIGNAL), 3);
    close(fd);
    fd = raw_connect(0);
    {
        struct xsd_sockmsg h = {.type = XS_WRITE, .len = 100};

        ASSERT_EQ(send(fd, &h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
        ASSERT_EQ(send(fd, "/half", 5, MSG_NOSIGNAL), 5);
    }
    close(fd);
    assert_alive();

    /* a stream of random bytes, as dom0 and as a guest */
    {
        struct xs_handle *h0 = open_as(0);

        make_domain(h0, 1);
        xs_close(h0);
    }
    srand(12345);
    for (unsigned round = 0; round < 20; round++) {
        char junk[8192];

        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (char)rand();
        fd = raw_connect(round & 1);
        ASSERT_TRUE(fd >= 0);
        (void)send(fd, junk, sizeof(junk), MSG_NOSIGNAL | MSG_DONTWAIT);
        close(fd);
    }
    assert_alive();

    /* random but well-framed requests from a guest (all types, random
     * NUL-rich bodies, random transaction ids): each gets one reply */
    fd1 = raw_connect(1);
    ASSERT_TRUE(fd1 >= 0);
    for (uint32_t i = 0; i < 3000; i++) {
        char req[96];
        uint32_t len = (uint32_t)rand() % sizeof(req);
        uint32_t type = (uint32_t)rand() % (XS_TYPE_COUNT + 2);
        static const char alphabet[] = "/a\0b\0r1\0@T";

        for (uint32_t k = 0; k < len; k++)
            req[k] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
        int r = raw_call(fd1, type, i, (uint32_t)(rand() % 4), req, len, &rh, body);

        if (r != 1)
            TEST_FAIL__("request %u (type %u len %u) got no reply (%d)", i, type, len, r);
        if (rh.req_id != i)
            TEST_FAIL__("request %u: reply for %u", i, rh.req_id);
    }
    close(fd1);
    assert_alive();

    /* many connections at once, dropped at once */
    {
        int fds[200];

        for (int i = 0; i < 200; i++)
            fds[i] = raw_connect(i % 2);
        for (int i = 0; i < 200; i++) {
            ASSERT_TRUE(fds[i] >= 0);
            close(fds[i]);
        }
    }
    assert_alive();
    sim_stop();
}

/* A client that watches and never reads is dropped, not buffered forever. */
TEST(slow_reader_is_dropped)
{
    struct xsd_sockmsg rh;
    char body[XENSTORE_PAYLOAD_MAX + 1];
    char watch[3100], path[64];
    struct xs_handle *h;
    int fd;

    sim_start();
    fd = raw_connect(0);
    ASSERT_TRUE(fd >= 0);
    /* a 3000-byte token makes every event ~3 KiB */
    memcpy(watch, "/\0", 2);
    memset(watch + 2, 't', 3000);
    watch[3002] = '\0';
    ASSERT_EQ(raw_call(fd, XS_WATCH, 1, 0, watch, 3003, &rh, body), 1);
    ASSERT_EQ(rh.type, XS_WATCH);

    h = open_as(0);
    ASSERT_TRUE(h != NULL);
    for (unsigned i = 0; i < 1500; i++) {
        snprintf(path, sizeof(path), "/flood/%u", i);
        ASSERT_TRUE(wr(h, XBT_NULL, path, "x"));
    }
    ASSERT_TRUE(raw_closed(fd));
    close(fd);
    xs_close(h);
    assert_alive();
    sim_stop();
}

TEST(sigterm_exits_cleanly_with_clients)
{
    struct xs_handle *h;
    xs_transaction_t t;

    sim_start();
    h = open_as(0);
    ASSERT_TRUE(h != NULL);
    ASSERT_TRUE(xs_watch(h, "/x", "x"));
    t = xs_transaction_start(h);
    ASSERT_TRUE(wr(h, t, "/x/y", "1"));
    sim_stop(); /* with an open connection, watch and transaction */
    xs_close(h);
}

static void cleanup(void) { sim_kill(); }

__attribute__((constructor)) static void setup(void)
{
    atexit(cleanup);
    signal(SIGPIPE, SIG_IGN);
}

TEST_MAIN()
