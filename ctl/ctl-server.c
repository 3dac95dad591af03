/* Daemon side of the control protocol: command registry, dispatch and a
 * non-blocking socket server. Requests come from root only (socket mode
 * 0600), but are still parsed as hostile: a bad length, a missing NUL or too
 * many words is refused with a message, never trusted. */
#include "ctl/ctl.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- Registry ---- */

struct ctl_command {
    char *name;   /* one or two words */
    int n_words;
    int min_args, max_args;
    char *usage;
    ctl_handler_fn *fn;
    void *aux;
};

static struct ctl_command *commands;
static size_t n_commands;

int ctl_register(const char *name, int min_args, int max_args, const char *usage,
                 ctl_handler_fn *fn, void *aux)
{
    for (size_t i = 0; i < n_commands; i++)
        if (!strcmp(commands[i].name, name))
            return -EEXIST;
    struct ctl_command *n = realloc(commands, (n_commands + 1) * sizeof(*n));
    if (!n)
        abort();
    commands = n;
    commands[n_commands] = (struct ctl_command){
        .name = xbr_xstrdup(name),
        .n_words = strchr(name, ' ') ? 2 : 1,
        .min_args = min_args,
        .max_args = max_args,
        .usage = xbr_xstrdup(usage ? usage : ""),
        .fn = fn,
        .aux = aux,
    };
    n_commands++;
    return 0;
}

void ctl_unregister_all(void)
{
    for (size_t i = 0; i < n_commands; i++) {
        free(commands[i].name);
        free(commands[i].usage);
    }
    free(commands);
    commands = NULL;
    n_commands = 0;
}

static const struct ctl_command *find_command(int argc, char **argv)
{
    char two[128];

    if (argc >= 2 && (size_t)snprintf(two, sizeof(two), "%s %s", argv[0], argv[1]) < sizeof(two))
        for (size_t i = 0; i < n_commands; i++)
            if (commands[i].n_words == 2 && !strcmp(commands[i].name, two))
                return &commands[i];
    if (argc >= 1)
        for (size_t i = 0; i < n_commands; i++)
            if (commands[i].n_words == 1 && !strcmp(commands[i].name, argv[0]))
                return &commands[i];
    return NULL;
}

static int cmp_command(const void *a, const void *b)
{
    return strcmp(((const struct ctl_command *)a)->name, ((const struct ctl_command *)b)->name);
}

void ctl_print_help(struct ctl_out *o)
{
    qsort(commands, n_commands, sizeof(*commands), cmp_command);
    ctl_out_open_array(o, NULL);
    for (size_t i = 0; i < n_commands; i++) {
        ctl_out_open_object(o, NULL);
        ctl_out_str(o, "command", "  %s", commands[i].name);
        ctl_out_str(o, "usage", " %s\n", commands[i].usage);
        ctl_out_close_object(o);
    }
    ctl_out_close_array(o);
}

int ctl_dispatch(int argc, char **argv, uint32_t flags, struct ctl_out *o, char *err,
                 size_t errlen)
{
    (void)flags;
    if (argc < 1) {
        snprintf(err, errlen, "no command given (try 'help')");
        return -EINVAL;
    }
    const struct ctl_command *c = find_command(argc, argv);
    if (!c) {
        if (argc >= 2 && find_command(1, argv) == NULL) {
            /* "fdb bogus": say which family exists, if any. */
            for (size_t i = 0; i < n_commands; i++)
                if (commands[i].n_words == 2 &&
                    !strncmp(commands[i].name, argv[0], strlen(argv[0])) &&
                    commands[i].name[strlen(argv[0])] == ' ') {
                    snprintf(err, errlen, "unknown command '%s %s' (try 'help')", argv[0],
                             argv[1]);
                    return -ENOENT;
                }
        }
        snprintf(err, errlen, "unknown command '%s' (try 'help')", argv[0]);
        return -ENOENT;
    }
    int nargs = argc - c->n_words;
    if (nargs < c->min_args || (c->max_args >= 0 && nargs > c->max_args)) {
        snprintf(err, errlen, "usage: %s %s", c->name, c->usage);
        return -EINVAL;
    }
    err[0] = '\0';
    int r = c->fn(nargs, argv + c->n_words, o, err, errlen, c->aux);
    if (r < 0 && !err[0])
        snprintf(err, errlen, "%s: %s", c->name, strerror(-r));
    return r;
}

/* ---- Wire ---- */

int ctl_parse_request(char *buf, size_t len, uint32_t *flags, int *argc,
                      char *argv[CTL_MAX_ARGS])
{
    uint32_t hdr[2];
    if (len < sizeof(hdr))
        return -EINVAL;
    memcpy(hdr, buf, sizeof(hdr));
    if (hdr[1] > CTL_MAX_ARGS)
        return -E2BIG;
    char *p = buf + sizeof(hdr), *end = buf + len;
    for (uint32_t i = 0; i < hdr[1]; i++) {
        char *nul = memchr(p, '\0', (size_t)(end - p));
        if (!nul)
            return -EINVAL;
        argv[i] = p;
        p = nul + 1;
    }
    if (p != end)
        return -EINVAL; /* trailing bytes: a malformed request */
    *flags = hdr[0];
    *argc = (int)hdr[1];
    return 0;
}

/* ---- Server ---- */

#define CTL_MAX_CONNS 64

struct ctl_conn {
    int fd;
    char *in;        /* request being read */
    size_t in_len, in_need;
    char *out;       /* reply being written */
    size_t out_len, out_off;
    int pass_fd;     /* goes with the reply's first bytes, or -1 */
};

struct ctl_server {
    int listen_fd;
    char *path;
    struct ctl_conn conns[CTL_MAX_CONNS];
};

static int make_socket_dir(const char *path, char *err, size_t errlen)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    if (xbr_strlcpy(dir, path, sizeof(dir)) < 0) {
        snprintf(err, errlen, "socket path too long: %s", path);
        return -ENAMETOOLONG;
    }
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(e));
        return -e;
    }
    return 0;
}

struct ctl_server *ctl_server_open(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (xbr_strlcpy(sa.sun_path, path, sizeof(sa.sun_path)) < 0) {
        snprintf(err, errlen, "socket path too long: %s", path);
        return NULL;
    }
    if (make_socket_dir(path, err, errlen) < 0)
        return NULL;

    /* A live daemon answers on the path: refuse rather than steal it. */
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
        if (connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            close(probe);
            snprintf(err, errlen, "another xbrd is already serving %s", path);
            return NULL;
        }
        close(probe);
    }
    (void)unlink(path);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return NULL;
    }
    /* Root-only: create the socket with no access for group and others. */
    mode_t old = umask(0177);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (r < 0 || chmod(path, 0600) < 0 || listen(fd, 16) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    struct ctl_server *s = xbr_xzalloc(sizeof(*s));
    s->listen_fd = fd;
    s->path = xbr_xstrdup(path);
    for (int i = 0; i < CTL_MAX_CONNS; i++)
        s->conns[i] = (struct ctl_conn){.fd = -1, .pass_fd = -1};
    return s;
}

static void conn_close(struct ctl_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    if (c->pass_fd >= 0)
        close(c->pass_fd);
    free(c->in);
    free(c->out);
    *c = (struct ctl_conn){.fd = -1, .pass_fd = -1};
}

void ctl_server_close(struct ctl_server *s)
{
    if (!s)
        return;
    for (int i = 0; i < CTL_MAX_CONNS; i++)
        conn_close(&s->conns[i]);
    close(s->listen_fd);
    (void)unlink(s->path);
    free(s->path);
    free(s);
}

int ctl_server_listen_fd(const struct ctl_server *s) { return s->listen_fd; }

static struct ctl_conn *conn_find(struct ctl_server *s, int fd)
{
    for (int i = 0; i < CTL_MAX_CONNS; i++)
        if (s->conns[i].fd == fd)
            return &s->conns[i];
    return NULL;
}

static void conn_set_reply(struct ctl_conn *c, int32_t status, const char *body, size_t len)
{
    uint32_t total = (uint32_t)(8 + len);
    c->out = xbr_xzalloc(total);
    memcpy(c->out, &total, 4);
    memcpy(c->out + 4, &status, 4);
    memcpy(c->out + 8, body, len);
    c->out_len = total;
    c->out_off = 0;
}

static void conn_run_request(struct ctl_conn *c)
{
    char *argv[CTL_MAX_ARGS + 1];
    char err[512];
    uint32_t flags;
    int argc;

    int r = ctl_parse_request(c->in + 4, c->in_len - 4, &flags, &argc, argv);
    if (r < 0) {
        snprintf(err, sizeof(err), "malformed request (%s)",
                 r == -E2BIG ? "too many arguments" : "bad framing");
        conn_set_reply(c, r, err, strlen(err));
        return;
    }
    argv[argc] = NULL;
    struct ctl_out *o = ctl_out_new(flags & CTL_F_JSON);
    r = ctl_dispatch(argc, argv, flags, o, err, sizeof(err));
    if (r < 0) {
        conn_set_reply(c, r, err, strlen(err));
    } else {
        size_t len;
        const char *d = ctl_out_data(o, &len);
        if (len > CTL_MAX_REPLY) {
            snprintf(err, sizeof(err), "reply too large (%zu bytes)", len);
            conn_set_reply(c, -E2BIG, err, strlen(err));
        } else {
            conn_set_reply(c, 0, d, len);
            c->pass_fd = ctl_out_take_fd(o);
        }
    }
    ctl_out_free(o);
}

/* Returns -1 if the connection is finished (closed), 0 to keep waiting. */
static int conn_read(struct ctl_conn *c)
{
    for (;;) {
        size_t want = c->in_need ? c->in_need - c->in_len : 4 - c->in_len;
        ssize_t n = read(c->fd, c->in + c->in_len, want);
        if (n < 0)
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        if (n == 0)
            return -1; /* peer went away before a whole request */
        c->in_len += (size_t)n;
        if (!c->in_need && c->in_len == 4) {
            uint32_t total;
            memcpy(&total, c->in, 4);
            if (total < 12 || total > CTL_MAX_REQUEST) {
                const char *m = "malformed request (bad length)";
                conn_set_reply(c, -EINVAL, m, strlen(m));
                return 0;
            }
            c->in_need = total;
            char *bigger = realloc(c->in, total);
            if (!bigger)
                return -1;
            c->in = bigger;
        }
        if (c->in_need && c->in_len == c->in_need) {
            conn_run_request(c);
            return 0;
        }
    }
}

static int conn_write(struct ctl_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n;
        if (c->pass_fd >= 0) {
            /* The descriptor rides on the reply's first bytes. */
            struct iovec iov = {c->out + c->out_off, c->out_len - c->out_off};
            union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
            } cm = {0};
            struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                               .msg_controllen = sizeof(cm.buf)};
            struct cmsghdr *h = CMSG_FIRSTHDR(&m);
            h->cmsg_level = SOL_SOCKET;
            h->cmsg_type = SCM_RIGHTS;
            h->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(h), &c->pass_fd, sizeof(int));
            n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
            if (n > 0) {
                close(c->pass_fd);
                c->pass_fd = -1;
            }
        } else {
            n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        }
        if (n < 0)
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        c->out_off += (size_t)n;
    }
    return -1; /* reply sent: one request per connection */
}

int ctl_server_handle(struct ctl_server *s, int fd, uint32_t events,
                      void (*on_new_fd)(int fd, void *aux), void *aux)
{
    if (fd == s->listen_fd) {
        for (;;) {
            int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (cfd < 0)
                return 0;
            struct ctl_conn *c = conn_find(s, -1);
            if (!c) {
                close(cfd); /* too many clients at once: they see EOF */
                continue;
            }
            c->fd = cfd;
            c->pass_fd = -1;
            c->in = xbr_xzalloc(4);
            on_new_fd(cfd, aux);
        }
    }
    struct ctl_conn *c = conn_find(s, fd);
    if (!c)
        return -1;
    int r = 0;
    if (!c->out && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        r = conn_read(c);
    if (r == 0 && c->out)
        r = conn_write(c);
    if (r < 0) {
        conn_close(c);
        return -1;
    }
    return 0;
}
