/* Client side of the control protocol (used by xbrctl and the tests). */
#include "ctl/ctl.h"
#include "util/util.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Keeps the first descriptor a reply carries in *pass_fd (if wanted) and
 * closes any other. */
static ssize_t recv_fd(int fd, void *buf, size_t len, int *pass_fd)
{
    struct iovec iov = {buf, len};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } cm;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                       .msg_controllen = sizeof(cm.buf)};
    ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
    if (n < 0)
        return n;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        size_t nfd = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int got;
            memcpy(&got, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
            if (pass_fd && *pass_fd < 0)
                *pass_fd = got;
            else
                close(got);
        }
    }
    return n;
}

static int io_all(int fd, void *buf, size_t len, bool writing, uint64_t deadline_ms,
                  int *pass_fd)
{
    size_t off = 0;
    while (off < len) {
        int64_t left = (int64_t)(deadline_ms - xbr_now_ms());
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = writing ? POLLOUT : POLLIN};
        int pr = poll(&p, 1, (int)left);
        if (pr < 0 && errno != EINTR)
            return -errno;
        if (pr <= 0)
            continue;
        ssize_t n = writing ? send(fd, (char *)buf + off, len - off, MSG_NOSIGNAL)
                            : recv_fd(fd, (char *)buf + off, len - off, pass_fd);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        if (n == 0)
            return -ECONNRESET;
        off += (size_t)n;
    }
    return 0;
}

int ctl_client_call(const char *path, uint32_t flags, int argc, char *const *argv,
                    int timeout_ms, char **body, size_t *body_len)
{
    return ctl_client_call_fd(path, flags, argc, argv, timeout_ms, body, body_len, NULL);
}

int ctl_client_call_fd(const char *path, uint32_t flags, int argc, char *const *argv,
                       int timeout_ms, char **body, size_t *body_len, int *pass_fd)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    uint64_t deadline = xbr_now_ms() + (uint64_t)timeout_ms;
    int r;

    *body = NULL;
    if (pass_fd)
        *pass_fd = -1;
    if (body_len)
        *body_len = 0;
    if (argc < 0 || (unsigned)argc > CTL_MAX_ARGS)
        return -E2BIG;
    if (xbr_strlcpy(sa.sun_path, path, sizeof(sa.sun_path)) < 0)
        return -ENAMETOOLONG;

    size_t total = 12;
    for (int i = 0; i < argc; i++)
        total += strlen(argv[i]) + 1;
    if (total > CTL_MAX_REQUEST)
        return -E2BIG;
    char *req = xbr_xzalloc(total);
    uint32_t hdr[3] = {(uint32_t)total, flags, (uint32_t)argc};
    memcpy(req, hdr, sizeof(hdr));
    size_t off = sizeof(hdr);
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]) + 1;
        memcpy(req + off, argv[i], n);
        off += n;
    }

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        free(req);
        return -errno;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = -errno;
        goto out;
    }
    r = io_all(fd, req, total, true, deadline, NULL);
    if (r < 0)
        goto out;
    uint32_t rlen;
    int32_t status;
    r = io_all(fd, &rlen, 4, false, deadline, pass_fd);
    if (r < 0)
        goto out;
    if (rlen < 8 || rlen > CTL_MAX_REPLY + 8) {
        r = -EPROTO;
        goto out;
    }
    r = io_all(fd, &status, 4, false, deadline, pass_fd);
    if (r < 0)
        goto out;
    char *b = malloc(rlen - 8 + 1);
    if (!b) {
        r = -ENOMEM;
        goto out;
    }
    r = io_all(fd, b, rlen - 8, false, deadline, pass_fd);
    if (r < 0) {
        free(b);
        goto out;
    }
    b[rlen - 8] = '\0';
    *body = b;
    if (body_len)
        *body_len = rlen - 8;
    r = status;
out:
    if (r < 0 && pass_fd && *pass_fd >= 0) {
        close(*pass_fd);
        *pass_fd = -1;
    }
    close(fd);
    free(req);
    return r;
}
