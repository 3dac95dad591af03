/* xbr-iofloor — xbr's own I/O floor: the port classes of xbrd (AF_PACKET or
 * AF_XDP, the same code, the same bursts and the same kick policy as a
 * worker), reflecting every frame from one interface to the other with no
 * switching at all: no learning, no lookup, no STP gate, no flooding.
 * What xbr forwards in user space, compared with this, is the cost of its
 * switching; what this forwards is the best its I/O mechanism can do.
 *
 *   xbr-iofloor IN OUT [--type afpacket|afxdp]
 *
 * Runs until SIGTERM or SIGINT, then prints one line:
 *   SUMMARY iofloor rx N tx N dropped N
 * and exits 0. Used by xbr-bench (switch "xbr-floor"). */
#include "bridge/private.h"
#include "util/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-qsbr.h>

static volatile sig_atomic_t stop;

/* There is no control loop here: modules that would watch an fd (STP's
 * BPDU wake-ups, metrics) simply get no events. */
int xbr_loop_add_fd(int fd, uint32_t events, xbr_fd_cb *cb, void *aux)
{
    (void)fd, (void)events, (void)cb, (void)aux;
    return 0;
}

void xbr_loop_del_fd(int fd) { (void)fd; }

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    const char *type = "afpacket";
    if (argc == 5 && !strcmp(argv[3], "--type"))
        type = argv[4];
    else if (argc != 3) {
        fprintf(stderr, "usage: xbr-iofloor IN OUT [--type afpacket|afxdp]\n");
        return 2;
    }
    const struct port_class *cls = xbr_port_class_find(type);
    if (!cls || (strcmp(type, "afpacket") && strcmp(type, "afxdp"))) {
        fprintf(stderr, "xbr-iofloor: unknown port type '%s'\n", type);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);

    char err[512];
    urcu_qsbr_register_thread();
    if (xbr_stp_init(err, sizeof(err)) < 0 || xbr_bridge_add("floor", err, sizeof(err)) < 0) {
        fprintf(stderr, "xbr-iofloor: %s\n", err);
        return 1;
    }
    struct xbr_bridge *br = xbr_bridge_find("floor");
    struct port *p[2];
    for (int i = 0; i < 2; i++) {
        if (xbr_port_add(br, argv[1 + i], cls, 0, NULL, err, sizeof(err)) < 0) {
            fprintf(stderr, "xbr-iofloor: %s\n", err);
            return 1;
        }
        p[i] = xbr_port_find(br, argv[1 + i]);
    }

    struct pkt pkts[XBR_BURST], *ptrs[XBR_BURST];
    uint8_t *bufs = xbr_xzalloc((size_t)XBR_BURST * XBR_PKT_BUF_SIZE);
    uint64_t rx = 0, tx = 0, since = 0;
    bool dirty = false;
    while (!stop) {
        for (unsigned j = 0; j < XBR_BURST; j++)
            pkts[j] = (struct pkt){.buf = bufs + (size_t)j * XBR_PKT_BUF_SIZE};
        unsigned n = p[0]->cls->rx_burst(p[0], 0, pkts, XBR_BURST);
        if (n) {
            for (unsigned j = 0; j < n; j++)
                ptrs[j] = &pkts[j];
            tx += p[1]->cls->tx_burst(p[1], 0, ptrs, n);
            if (p[0]->cls->rx_done)
                p[0]->cls->rx_done(p[0], 0);
            rx += n;
            if (!dirty)
                since = xbr_now_ns();
            dirty = true;
        }
        /* The worker's kick policy: once the input is drained, or after the
         * drain time at the latest. */
        if (dirty && (n < XBR_BURST || xbr_now_ns() - since >= XBR_TX_DRAIN_NS)) {
            if (p[1]->cls->tx_flush)
                p[1]->cls->tx_flush(p[1], 0);
            dirty = false;
        }
        urcu_qsbr_quiescent_state();
    }
    printf("SUMMARY iofloor rx %llu tx %llu dropped %llu\n", (unsigned long long)rx,
           (unsigned long long)tx, (unsigned long long)(rx - tx));
    fflush(stdout);
    free(bufs);
    xbr_bridges_destroy_all();
    xbr_stp_fini();
    urcu_qsbr_unregister_thread();
    return 0;
}
