/* xbrd — the daemon: options, the control thread's event loop, start-up
 * configuration, reload, the service manager's protocol and clean
 * shutdown. */
#include "bridge/config.h"
#include "bridge/metrics.h"
#include "bridge/private.h"
#include "ctl/ctl.h"
#include "util/util.h"
#ifdef XBR_HAVE_NETBACK
#include "netback/netback.h"
#endif

#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <urcu-qsbr.h>

/* Period of the control thread's housekeeping tick. */
#define TICK_MS 100u
/* Without -w: one worker per CPU xbrd may run on, at most this many. Each
 * worker is a guest queue (multi-queue-max-queues), so guests get as many
 * queues as dom0 gives xbrd CPUs; past 8 a poll-mode worker per CPU costs
 * more in cache and wake-ups than a guest gains (Linux netback's default
 * is one queue per online CPU, uncapped). */
#define DEFAULT_MAX_WORKERS 8u

struct loop_entry {
    xbr_fd_cb *cb;
    void *aux;
    bool used;
};

static int loop_epfd = -1;
static struct loop_entry *loop_entries; /* indexed by fd */
static size_t loop_cap;
static struct ctl_server *ctl_srv;
static bool stop_requested;

int xbr_loop_add_fd(int fd, uint32_t events, xbr_fd_cb *cb, void *aux)
{
    if (fd < 0)
        return -EBADF;
    if ((size_t)fd >= loop_cap) {
        size_t cap = loop_cap ? loop_cap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        struct loop_entry *n = realloc(loop_entries, cap * sizeof(*n));
        if (!n)
            abort();
        memset(n + loop_cap, 0, (cap - loop_cap) * sizeof(*n));
        loop_entries = n;
        loop_cap = cap;
    }
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (epoll_ctl(loop_epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    loop_entries[fd] = (struct loop_entry){.cb = cb, .aux = aux, .used = true};
    return 0;
}

void xbr_loop_del_fd(int fd)
{
    if (fd < 0 || (size_t)fd >= loop_cap || !loop_entries[fd].used)
        return;
    (void)epoll_ctl(loop_epfd, EPOLL_CTL_DEL, fd, NULL);
    loop_entries[fd].used = false;
}

/* ---- control socket ---- */

static void on_ctl_fd(int fd, uint32_t events, void *aux);

static void on_new_ctl_conn(int fd, void *aux)
{
    (void)aux;
    /* Edge-triggered: the server reads and writes until EAGAIN. */
    if (xbr_loop_add_fd(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, on_ctl_fd, NULL) < 0)
        close(fd);
    else
        on_ctl_fd(fd, EPOLLIN | EPOLLOUT, NULL); /* data may already be there */
}

static void on_ctl_fd(int fd, uint32_t events, void *aux)
{
    (void)aux;
    if (fd != ctl_server_listen_fd(ctl_srv))
        if (!loop_entries[fd].used)
            return;
    if (ctl_server_handle(ctl_srv, fd, events, on_new_ctl_conn, NULL) < 0)
        xbr_loop_del_fd(fd); /* the server closed it */
}

/* ---- the service manager (systemd's notify protocol, sd_notify) ----
 * READY=1 once the configuration file is applied and netback watches
 * xenstore, so that units ordered after xbrd (xendomains) start guests only
 * then. RELOADING=1 / READY=1 around a reload, STOPPING=1 at the end.
 * Without $NOTIFY_SOCKET every call is a no-op. */

static void service_status(const char *what)
{
    (void)sd_notifyf(0, "STATUS=%s", what);
}

/* The watchdog: when the unit sets WatchdogSec=, WATCHDOG=1 goes out from
 * the control thread every half period, but only while the workers make
 * progress too. The proof is an RCU grace period: one completes only after
 * every worker has passed a quiescent state (once per loop iteration) or is
 * offline (asleep in epoll, idle). So a worker stuck inside a burst, or a
 * control thread stuck anywhere, stops the pings, and systemd restarts
 * xbrd. A call_rcu is posted at each ping; the next ping waits for it. */
static struct {
    struct rcu_head head;
    atomic_bool pending;   /* a grace period posted and not finished */
    uint64_t posted_ms;
    uint64_t period_ms;    /* between pings: half of WatchdogSec */
    bool warned;
    int tfd;
} wd = {.tfd = -1};

static void wd_grace_done(struct rcu_head *head)
{
    (void)head;
    atomic_store(&wd.pending, false);
}

static void on_watchdog_tick(int fd, uint32_t events, void *aux)
{
    (void)events, (void)aux;
    uint64_t exp;
    if (read(fd, &exp, sizeof(exp)) != sizeof(exp))
        return;
    uint64_t now = xbr_now_ms();
    if (atomic_load(&wd.pending)) {
        if (!wd.warned && now - wd.posted_ms >= wd.period_ms) {
            xbr_err("watchdog: a worker has not passed a quiescent state for %llu ms; "
                    "not telling systemd that xbrd is alive",
                    (unsigned long long)(now - wd.posted_ms));
            wd.warned = true;
        }
        return;
    }
    if (wd.warned)
        xbr_warn("watchdog: the workers make progress again");
    wd.warned = false;
    (void)sd_notify(0, "WATCHDOG=1");
    atomic_store(&wd.pending, true);
    wd.posted_ms = now;
    urcu_qsbr_call_rcu(&wd.head, wd_grace_done);
}

static void service_watchdog_start(void)
{
    uint64_t usec;
    if (sd_watchdog_enabled(0, &usec) <= 0)
        return;
    wd.period_ms = usec / 2000 ? usec / 2000 : 1;
    wd.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = {
        .it_interval = {(time_t)(wd.period_ms / 1000), (long)(wd.period_ms % 1000) * 1000000},
        .it_value = {0, 1000000}};
    if (wd.tfd < 0 || timerfd_settime(wd.tfd, 0, &its, NULL) < 0 ||
        xbr_loop_add_fd(wd.tfd, EPOLLIN, on_watchdog_tick, NULL) < 0) {
        xbr_err("watchdog: cannot arm a timer: %s", strerror(errno));
        return;
    }
    xbr_info("watchdog: WATCHDOG=1 every %llu ms while the workers make progress",
             (unsigned long long)wd.period_ms);
}

static void service_watchdog_stop(void)
{
    if (wd.tfd >= 0) {
        xbr_loop_del_fd(wd.tfd);
        close(wd.tfd);
        wd.tfd = -1;
    }
    urcu_qsbr_barrier(); /* the last posted callback has run: wd may go */
}

/* SIGHUP (and ExecReload=xbrctl reload): the configuration file again,
 * applied as a difference (bridge/config.h). */
static void service_reload(void)
{
    char err[512];
    unsigned changes = 0;
    (void)sd_notify(0, "RELOADING=1");
    int r = xbr_cfg_reload(false, &changes, err, sizeof(err));
    if (r == -ENOENT)
        xbr_info("SIGHUP: %s; nothing to reload", err);
    else if (r == -EINVAL)
        xbr_err("reload refused, nothing changed: %s", err);
    else if (r < 0)
        xbr_warn("reload: %s", err);
    (void)sd_notifyf(0, "READY=1\nSTATUS=running; last reload: %u change(s)%s", changes,
                     r == -EINVAL ? ", file refused" : r < 0 ? ", some failed" : "");
}

/* ---- signals and ticks ---- */

static void on_signal(int fd, uint32_t events, void *aux)
{
    (void)events, (void)aux;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            xbr_info("SIGHUP: reloading the configuration");
            service_reload();
            continue;
        }
        xbr_info("signal %u received, shutting down", si.ssi_signo);
        stop_requested = true;
    }
}

static void on_tick(int fd, uint32_t events, void *aux)
{
    (void)events, (void)aux;
    static uint64_t ticks;
    uint64_t expirations;
    if (read(fd, &expirations, sizeof(expirations)) != sizeof(expirations))
        return;
    ticks += expirations;
    /* Spanning tree runs on measured time, not on counted ticks: a late
     * tick must not stretch its timers. */
    static uint64_t last_ms;
    uint64_t now_ms = xbr_now_ms();
    if (last_ms)
        xbr_stp_tick((uint32_t)(now_ms - last_ms));
    last_ms = now_ms;
    xbr_bridges_tick(xbr_now_coarse_s());
    if (ticks >= 1000 / TICK_MS) {
        ticks = 0;
        xbr_bridges_periodic(xbr_now_coarse_s());
    }
}

/* ---- link events ----
 * The kernel announces carrier, MTU and device changes on rtnetlink; on any
 * link message the ports are refreshed at once, so spanning tree hears of a
 * cable plugged in or cut within milliseconds rather than at the next
 * one-second tick (which remains as a fallback if events are lost). */

static void on_link_event(int fd, uint32_t events, void *aux)
{
    (void)events, (void)aux;
    char buf[8192];
    bool any = false;
    /* Drain everything queued; the content does not matter, only that
     * something about links changed. ENOBUFS (overrun) counts too. */
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && errno == ENOBUFS) {
            any = true;
            continue;
        }
        if (n <= 0)
            break;
        any = true;
    }
    if (any)
        xbr_ports_refresh();
}

static int open_link_events(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* The CPUs this process may run on (its affinity mask, which taskset,
 * systemd's CPUAffinity= and cgroup cpusets all narrow), capped. */
static unsigned default_workers(void)
{
    unsigned n = 0;
    /* Masks larger than cpu_set_t's 1024 CPUs: grow until the kernel's fits
     * (EINVAL means "too small"). */
    for (size_t ncpu = 1024; ncpu <= 65536; ncpu *= 2) {
        size_t sz = CPU_ALLOC_SIZE(ncpu);
        cpu_set_t *set = CPU_ALLOC(ncpu);
        if (!set)
            break;
        int r = sched_getaffinity(0, sz, set), e = errno;
        if (r == 0)
            n = (unsigned)CPU_COUNT_S(sz, set);
        CPU_FREE(set);
        if (r == 0 || e != EINVAL)
            break;
    }
    if (n < 1)
        n = 1;
    return n > DEFAULT_MAX_WORKERS ? DEFAULT_MAX_WORKERS : n;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: xbrd [OPTIONS]\n"
            "  -s, --socket PATH   control socket (default %s)\n"
            "  -w, --workers N     poll-mode worker threads = queues per guest at most\n"
            "                      (default: the CPUs xbrd may run on, at most %u)\n"
            "  -c, --config FILE   bridges and ports to create (xbrctl commands, one a line);\n"
            "                      SIGHUP or `xbrctl reload` applies its changes\n"
            "  -m, --metrics-file PATH  write Prometheus metrics there (node_exporter textfile)\n"
            "      --metrics-interval S seconds between writes (default 10)\n"
            "  -b, --busy-poll     never sleep when idle (lowest latency, burns CPU)\n"
            "      --idle-spin-us N  keep polling N us without work before sleeping (default %u;\n"
            "                      0: sleep at once, e.g. a dom0 whose CPUs the guests need)\n"
            "  -F, --no-fastpath   forward every frame in user space (no kernel fast path)\n"
            "      --fastpath-entries N  FDB entries the kernel fast path can hold (default %u)\n"
            "  -v, --verbose       debug logging\n"
            "  -V, --version       print the version\n"
            "  -h, --help          this text\n",
            CTL_DEFAULT_SOCKET, DEFAULT_MAX_WORKERS, XBR_IDLE_SPIN_US_DEFAULT,
            XBR_FASTPATH_DEFAULT_ENTRIES);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"workers", required_argument, NULL, 'w'},
        {"config", required_argument, NULL, 'c'},
        {"busy-poll", no_argument, NULL, 'b'},
        {"idle-spin-us", required_argument, NULL, 'I'},
        {"no-fastpath", no_argument, NULL, 'F'},
        {"fastpath-entries", required_argument, NULL, 'E'},
        {"metrics-file", required_argument, NULL, 'm'},
        {"metrics-interval", required_argument, NULL, 'M'},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *socket_path = CTL_DEFAULT_SOCKET, *config = NULL, *metrics_file = NULL;
    unsigned metrics_interval = 10;
    unsigned n_workers = 0; /* 0: default_workers() */
    bool busy_poll = false, fastpath = true;
    uint64_t idle_spin_us = XBR_IDLE_SPIN_US_DEFAULT;
    uint32_t fp_entries = XBR_FASTPATH_DEFAULT_ENTRIES;
    char err[512];
    int c;

    while ((c = getopt_long(argc, argv, "s:w:c:m:bFvVh", opts, NULL)) != -1) {
        uint64_t v;
        switch (c) {
        case 's': socket_path = optarg; break;
        case 'w':
            if (xbr_parse_uint(optarg, 1, XBR_MAX_WORKERS, &v) < 0) {
                fprintf(stderr, "xbrd: --workers must be 1..%d\n", XBR_MAX_WORKERS);
                return 2;
            }
            n_workers = (unsigned)v;
            break;
        case 'c': config = optarg; break;
        case 'm': metrics_file = optarg; break;
        case 'M':
            if (xbr_parse_uint(optarg, 1, 86400, &v) < 0) {
                fprintf(stderr, "xbrd: --metrics-interval must be 1..86400 seconds\n");
                return 2;
            }
            metrics_interval = (unsigned)v;
            break;
        case 'b': busy_poll = true; break;
        case 'I':
            if (xbr_parse_uint(optarg, 0, 1000000, &idle_spin_us) < 0) {
                fprintf(stderr, "xbrd: --idle-spin-us must be 0..1000000\n");
                return 2;
            }
            break;
        case 'F': fastpath = false; break;
        case 'E':
            if (xbr_parse_uint(optarg, 1024, 1u << 24, &v) < 0) {
                fprintf(stderr, "xbrd: --fastpath-entries must be 1024..16777216\n");
                return 2;
            }
            fp_entries = (uint32_t)v;
            break;
        case 'v': xbr_log_set_level(XBR_LOG_DEBUG); break;
        case 'V': printf("xbrd %s\n", XBR_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "xbrd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    if (!n_workers)
        n_workers = default_workers();

    /* Signals are taken through a signalfd on the control thread; block
     * them before any thread starts so that workers never see them. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    urcu_qsbr_register_thread();
    loop_epfd = epoll_create1(EPOLL_CLOEXEC);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (loop_epfd < 0 || sfd < 0 || tfd < 0) {
        xbr_err("cannot set up the event loop: %s", strerror(errno));
        return 1;
    }
    struct itimerspec its = {.it_interval = {0, TICK_MS * 1000000},
                             .it_value = {0, TICK_MS * 1000000}};
    (void)timerfd_settime(tfd, 0, &its, NULL);
    (void)xbr_loop_add_fd(sfd, EPOLLIN, on_signal, NULL);
    (void)xbr_loop_add_fd(tfd, EPOLLIN, on_tick, NULL);
    int lfd = open_link_events();
    if (lfd >= 0)
        (void)xbr_loop_add_fd(lfd, EPOLLIN, on_link_event, NULL);
    else
        xbr_warn("no rtnetlink link events (%s): link changes are seen within a second",
                 strerror(-lfd));

    ctl_srv = ctl_server_open(socket_path, err, sizeof(err));
    if (!ctl_srv) {
        xbr_err("%s", err);
        return 1;
    }
    (void)xbr_loop_add_fd(ctl_server_listen_fd(ctl_srv), EPOLLIN, on_ctl_fd, NULL);
    xbr_ctl_register_commands();

    if (xbr_workers_start(n_workers, busy_poll ? UINT64_MAX : idle_spin_us * 1000u, err,
                          sizeof(err)) < 0) {
        xbr_err("%s", err);
        return 1;
    }
    if (xbr_stp_init(err, sizeof(err)) < 0) {
        xbr_err("%s", err);
        return 1;
    }
    xbr_stp_register_commands();
    xbr_fastpath_init(fastpath, fp_entries);
    xbr_fastpath_register_commands();
    xbr_capture_register_commands();
    xbr_mirror_register_commands();
    xbr_vlan_register_commands();
#ifdef XBR_HAVE_NETBACK
    nb_register_commands();
#endif
    xbr_info("xbrd %s: %u worker(s), control socket %s", XBR_VERSION, n_workers, socket_path);
    if (config) {
        /* Lines that fail are logged with their line number; the daemon
         * starts with the rest (as it would without them). */
        xbr_cfg_set_path(config);
        (void)xbr_cfg_reload(true, NULL, err, sizeof(err));
    }
#ifdef XBR_HAVE_NETBACK
    /* Serve Xen vifs where there is a xenstore; elsewhere run without. */
    if (nb_start(err, sizeof(err)) < 0)
        xbr_info("netback not started: %s", err);
#endif
    if (metrics_file && xbr_metrics_start(metrics_file, metrics_interval, err, sizeof(err)) < 0)
        xbr_err("metrics: %s (xbrd runs without)", err);
    service_watchdog_start();
    /* The configuration is applied and netback watches xenstore. */
    (void)sd_notifyf(0, "READY=1\nMAINPID=%ld\nSTATUS=running: %zu bridge(s)", (long)getpid(),
                     xbr_bridge_count());

    while (!stop_requested) {
        struct epoll_event evs[32];
        urcu_qsbr_thread_offline();
        int n = epoll_wait(loop_epfd, evs, XBR_ARRAY_SIZE(evs), -1);
        urcu_qsbr_thread_online();
        if (n < 0 && errno != EINTR) {
            xbr_err("epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if ((size_t)fd < loop_cap && loop_entries[fd].used)
                loop_entries[fd].cb(fd, evs[i].events, loop_entries[fd].aux);
        }
        urcu_qsbr_quiescent_state();
    }

    (void)sd_notify(0, "STOPPING=1");
    service_status("stopping");
    service_watchdog_stop();
    xbr_metrics_stop();
#ifdef XBR_HAVE_NETBACK
    nb_stop(); /* vif ports leave their bridges; guests see us go away */
#endif
    /* Detach every port cleanly (promiscuous mode dropped, interfaces we
     * brought up put down again; taps stay for the next run), then stop
     * the workers. */
    xbr_tap_daemon_exiting();
    xbr_fastpath_daemon_exiting();
    xbr_capture_fini();
    xbr_bridges_destroy_all();
    xbr_workers_stop();
    xbr_fastpath_fini();
    xbr_stp_fini();
    ctl_server_close(ctl_srv);
    ctl_unregister_all();
    xbr_cfg_fini();
    if (lfd >= 0)
        close(lfd);
    close(tfd);
    close(sfd);
    close(loop_epfd);
    free(loop_entries);
    urcu_qsbr_unregister_thread();
    xbr_info("xbrd stopped");
    return 0;
}
