/* Internals shared by the files of bridge/ (not a public header). */
#ifndef XBR_BRIDGE_PRIVATE_H
#define XBR_BRIDGE_PRIVATE_H

#include "bridge/bridge.h"
#include "fdb/fdb.h"

#include <pthread.h>
#include <stdatomic.h>

/* One bridge's ports, published as a whole with RCU. slot[] is indexed by
 * port number (what the FDB stores); list[] holds the used slots densely so
 * that flooding walks only real ports. */
struct port_table {
    unsigned n_ports;
    unsigned list[XBR_MAX_PORTS];
    struct port *slot[XBR_MAX_PORTS];
};

struct xbr_bridge {
    char name[IF_NAMESIZE];
    struct fdb *fdb;
    struct port_table *ports; /* RCU */
    /* Whether link-local group frames (01:80:c2:00:00:00, STP) are consumed
     * by the bridge (STP running) or forwarded like any multicast (as the
     * kernel bridge does with STP off). */
    bool stp_enabled;
};

/* What the workers poll: every port of every bridge, published with RCU.
 * gen changes whenever the set changes, so a worker knows to rebuild its
 * epoll set. */
struct dp_view {
    uint64_t gen;
    unsigned n;
    struct port *ports[];
};

extern struct dp_view *xbr_dp_view; /* RCU */
extern atomic_bool xbr_stopping;

/* bridge.c */
struct ifreq;
/* An SIOC* interface ioctl on a throwaway socket; returns 0 or -errno. */
int xbr_if_ioctl(unsigned long req, struct ifreq *ifr);
void xbr_bridges_destroy_all(void);
void xbr_bridges_periodic(uint32_t now_s);
size_t xbr_bridge_count(void);
struct xbr_bridge *xbr_bridge_at(size_t i);
struct port *xbr_port_find(const struct xbr_bridge *br, const char *name);

/* worker.c */
int xbr_workers_start(unsigned n, bool busy_poll, char *err, size_t errlen);
void xbr_workers_stop(void);
void xbr_workers_kick(void); /* the port set changed: re-read it */
void xbr_forward_burst(unsigned w, struct port *in, struct pkt *pkts, unsigned n);

/* bridge-ctl.c */
void xbr_ctl_register_commands(void);

#endif
