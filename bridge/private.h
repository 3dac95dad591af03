/* Internals shared by the files of bridge/ (not a public header). */
#ifndef XBR_BRIDGE_PRIVATE_H
#define XBR_BRIDGE_PRIVATE_H

#include "bridge/bridge.h"
#include "fdb/fdb.h"

#include <pthread.h>
#include <stdatomic.h>

struct stp;

/* One bridge's ports, published as a whole with RCU. slot[] is indexed by
 * port number (what the FDB stores); list[] holds the used slots densely so
 * that flooding walks only real ports. */
struct port_table {
    unsigned n_ports;
    unsigned list[XBR_MAX_PORTS];
    struct port *slot[XBR_MAX_PORTS];
};

/* The workers' view of a bridge's mirrors (mirror.c), by port number:
 * bit b of in_mask[no] / out_mask[no] says that what port no receives /
 * sends is copied to port dst_no[b]; is_dst[no] marks an output port,
 * which normal forwarding leaves alone. Immutable once published. */
#define XBR_MAX_MIRRORS 32
struct mirror_set {
    unsigned n;
    uint32_t dst_no[XBR_MAX_MIRRORS];
    uint32_t in_mask[XBR_MAX_PORTS];
    uint32_t out_mask[XBR_MAX_PORTS];
    uint8_t is_dst[XBR_MAX_PORTS];
};
struct mirror_conf;

struct xbr_bridge {
    char name[IF_NAMESIZE];
    struct mirror_set *mirrors;       /* RCU; NULL without active mirrors */
    struct mirror_conf *mirror_conf;  /* control thread */
    struct fdb *fdb;
    struct port_table *ports; /* RCU */
    /* Whether link-local group frames (01:80:c2:00:00:00, STP) are consumed
     * by the bridge (STP running) or forwarded like any multicast (as the
     * kernel bridge does with STP off). */
    bool stp_enabled;
    struct stp *stp;     /* the RSTP engine; control thread only */
    uint8_t mac[6];      /* the bridge address in the bridge identifier */
    uint32_t id;         /* never reused; names the bridge to the fast path */
    /* The kernel fast path takes this bridge's known unicast between its
     * AF_PACKET ports (written by the control thread, read by workers). */
    bool fastpath;
    /* Being deleted (control thread): its ports leave without flushing
     * their FDB entries one by one, the table goes whole with the bridge. */
    bool deleting;
};

/* worker -> control: FDB entries a worker created or moved, for the fast
 * path's mirror (one single-producer ring per worker). */
#define XBR_FDB_EVENTS 1024u
struct fdb_event_queue {
    uint32_t head;  /* written by the worker */
    uint32_t tail;  /* written by the control thread */
    bool overflow;  /* events were lost: the control thread resyncs */
    struct {
        uint32_t bridge_id;
        uint16_t vlan;
        uint8_t mac[6];
    } ev[XBR_FDB_EVENTS];
};

/* control -> worker 0: frames to send on one port (see struct port). */
#define XBR_INJECT_SLOTS 32u
#define XBR_INJECT_MAX 256u
struct port_inject {
    uint32_t head; /* written by the control thread */
    uint32_t tail; /* written by worker 0 */
    struct {
        uint16_t len;
        uint8_t data[XBR_INJECT_MAX];
    } slot[XBR_INJECT_SLOTS];
};

/* worker -> control: BPDUs received, one single-producer ring per worker. */
#define XBR_BPDU_QUEUE 256u
#define XBR_BPDU_MAX 256u
struct bpdu_msg {
    struct port *port;
    uint16_t len;
    uint8_t data[XBR_BPDU_MAX];
};
struct bpdu_queue {
    uint32_t head; /* written by the worker */
    uint32_t tail; /* written by the control thread */
    struct bpdu_msg msg[XBR_BPDU_QUEUE];
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
/* Refreshes the ports (once a second). */
void xbr_bridges_periodic(uint32_t now_s);
/* Ages the FDBs, a slice per call (every control tick). */
void xbr_bridges_tick(uint32_t now_s);
/* Re-reads every port's MTU, carrier and speed, tells STP about link
 * changes and removes ports whose device is gone. */
void xbr_ports_refresh(void);
/* xbr_port_add() with a port number asked for (want_no >= 0; -EBUSY if
 * taken) or the lowest free one (want_no < 0). */
int xbr_port_add_at(struct xbr_bridge *br, int want_no, const char *name,
                    const struct port_class *cls, unsigned flags, void *class_arg, char *err,
                    size_t errlen);
size_t xbr_bridge_count(void);
struct xbr_bridge *xbr_bridge_at(size_t i);
struct port *xbr_port_find(const struct xbr_bridge *br, const char *name);
struct port *xbr_port_table_find(const struct port_table *t, const char *name);

/* worker.c */
/* idle_spin_ns: how long a worker polls without work before it sleeps
 * (UINT64_MAX: never, --busy-poll). */
#define XBR_IDLE_SPIN_US_DEFAULT 200u
int xbr_workers_start(unsigned n, uint64_t idle_spin_ns, char *err, size_t errlen);
void xbr_workers_stop(void);
void xbr_workers_kick(void); /* the port set changed: re-read it */
void xbr_worker_kick(unsigned w); /* wake one worker */
void xbr_forward_burst(unsigned w, struct port *in, struct pkt *pkts, unsigned n);

/* bridge-stp.c: spanning tree glue (control thread unless noted) */
int xbr_stp_init(char *err, size_t errlen);
void xbr_stp_fini(void);
int xbr_stp_bridge_init(struct xbr_bridge *br, char *err, size_t errlen);
void xbr_stp_bridge_fini(struct xbr_bridge *br);
struct stp_port_config;
/* The STP settings a new port of class cls starts with. */
void xbr_stp_port_default_config(const struct port_class *cls, struct stp_port_config *cfg);
void xbr_stp_port_added(struct port *p);
void xbr_stp_port_removing(struct port *p);
/* Processes the queued BPDUs; those of `discard` (may be NULL) are dropped. */
void xbr_stp_drain_rx(const struct port *discard);
void xbr_stp_tick(uint32_t elapsed_ms);
void xbr_stp_link_changed(struct port *p);
const char *xbr_stp_port_role(const struct port *p);
void xbr_stp_register_commands(void);
/* [worker] Hands a received BPDU to the control thread; false if dropped. */
bool xbr_stp_enqueue_bpdu(unsigned w, struct port *p, const struct pkt *pkt);
/* [worker 0] Sends what the control thread queued on p. */
void xbr_inject_drain(struct port *p);

/* netdev.c: for port classes that attach an existing Linux interface */
struct xbr_netdev {
    int ifindex;
    unsigned flags; /* IFF_* when attached */
    bool set_up;    /* we brought the link up (and put it down again) */
};
/* Finds the interface and refuses what must not be attached (loopback, an
 * interface enslaved elsewhere, a veth whose peer is on the bridge unless
 * forced); reads its address, MTU and link. 0 or -errno with err. */
int xbr_netdev_open(struct port *p, const struct port_open_args *args, struct xbr_netdev *nd,
                    char *err, size_t errlen);
/* Brings the link up if it was down (remembered), or back down. */
void xbr_netdev_set_up(struct port *p, struct xbr_netdev *nd, bool up);
/* Re-reads MTU, carrier and speed; -ENODEV when the interface is gone. */
int xbr_netdev_refresh(struct port *p, const struct xbr_netdev *nd);
/* Whether the interface segments TCP/IPv4 and TCP/IPv6 in hardware (or, for
 * a veth, without needing the qdisc layer's software GSO). */
bool xbr_netdev_segments_tcp(const char *ifname);
/* Warns when the interface's RPS sends its receive work only to CPUs this
 * process may run on (the user-space path then competes with it). */
void xbr_netdev_warn_rps(const struct port *p);
/* The interface's driver name (ethtool), "" if it tells none. */
void xbr_netdev_driver(const char *ifname, char *out, size_t len);

/* bridge-fastpath.c: the kernel fast path's glue (control thread unless noted) */
/* Loads the fast path unless disabled; without it every bridge runs in
 * user space only (the reason is logged). */
void xbr_fastpath_init(bool enable, uint32_t mirror_entries);
#define XBR_FASTPATH_DEFAULT_ENTRIES 262144u
/* Whether the fast path is loaded (a new bridge then uses it). */
bool xbr_fastpath_loaded(void);
void xbr_fastpath_fini(void);
void xbr_fastpath_daemon_exiting(void); /* bridges go next: skip per-entry cleanup */
void xbr_fastpath_bridge_added(struct xbr_bridge *br);
void xbr_fastpath_bridge_removing(struct xbr_bridge *br);
void xbr_fastpath_ageing_changed(struct xbr_bridge *br);
void xbr_fastpath_port_added(struct port *p);
void xbr_fastpath_port_removing(struct port *p);
/* The port's STP state or MTU may have changed. */
void xbr_fastpath_port_changed(struct port *p);
/* A static entry was added (learned ones arrive through the workers' queues,
 * removals through the FDB's change hook). */
void xbr_fastpath_fdb_changed(struct xbr_bridge *br, uint16_t vlan, const uint8_t mac[6]);
/* Adds what the fast path forwarded to a port's summed counters. */
void xbr_fastpath_add_counts(const struct port *p, struct port_stats *sum);
void xbr_fastpath_register_commands(void);
/* [worker] Queues an entry that learning created or moved. */
void xbr_fastpath_learned(unsigned w, const struct xbr_bridge *br, uint16_t vlan,
                          const uint8_t mac[6]);
/* port-tap.c: from now on closing a tap port keeps the device (xbrd is
 * exiting, the next run attaches to it again) instead of deleting it. */
void xbr_tap_daemon_exiting(void);

/* port-vxlan.c: the vxlan port's settings (add-port options) */
#include <netinet/in.h>
#define XBR_VXLAN_DEFAULT_PORT 4789u
/* Bounds against hostile input: the static remote list (head-end
 * replication multiplies every flood by it) and the VTEP table (static
 * remotes plus addresses learned from datagrams; when full, datagrams from
 * new addresses are dropped). */
#define XBR_VXLAN_MAX_REMOTES 256u
#define XBR_VXLAN_MAX_VTEPS 1024u
struct xbr_vxlan_config {
    uint32_t vni;
    uint16_t dstport;
    bool has_group;
    struct in6_addr local; /* IPv4 as v4-mapped, here and below */
    struct in6_addr group;
    unsigned n_remotes;
    struct in6_addr remotes[XBR_VXLAN_MAX_REMOTES];
};
/* Per worker queue; the port writes them, show sums them. */
struct xbr_vxlan_stats {
    uint64_t rx_truncated;  /* shorter than the VXLAN header */
    uint64_t rx_oversized;  /* inner frame above the jumbo bound */
    uint64_t rx_bad_flags;  /* flags other than RFC 7348's I, reserved bits */
    uint64_t rx_wrong_vni;
    uint64_t rx_inner_runt; /* inner frame < 14 bytes */
    uint64_t rx_vtep_limit; /* from a new address with the VTEP table full */
    uint64_t rx_handoff_full; /* read by a sibling on the same socket, our ring full */
    uint64_t tx_bad_offload; /* GSO kind we cannot segment, malformed */
    uint64_t tx_gso_segmented; /* TCP super-frames cut into segments (not a drop) */
    uint64_t tx_errors;      /* the underlay refused the datagram */
} __attribute__((aligned(64)));
/* Parses add-port's vxlan options (argv: option value pairs). */
int xbr_vxlan_parse_args(int argc, char **argv, struct xbr_vxlan_config *c, char *err,
                         size_t errlen);
/* The options back, as add-port takes them (for save); -ENOSPC if cut. */
#define XBR_VXLAN_ARGS_MAX (XBR_VXLAN_MAX_REMOTES * 48 + 256)
int xbr_vxlan_format_args(const struct port *p, char *buf, size_t len);
int xbr_vxlan_format_config(const struct xbr_vxlan_config *c, char *buf, size_t len);
/* Whether the running port p has the settings c. */
bool xbr_vxlan_config_equal(const struct port *p, const struct xbr_vxlan_config *c);
int xbr_vxlan_parse_ip(const char *s, struct in6_addr *out);
const char *xbr_vxlan_format_ip(const struct in6_addr *a, char buf[46]);
/* [control] The handle of a remote VTEP (added to the table if new; 0 when
 * it is full), for `fdb add ... dst IP`. */
uint32_t xbr_vxlan_remote_handle(struct port *p, const struct in6_addr *addr);
/* The address behind a handle; false for none. */
bool xbr_vxlan_remote_addr(const struct port *p, uint32_t handle, struct in6_addr *addr);
void xbr_vxlan_get_stats(const struct port *p, struct xbr_vxlan_stats *sum);

/* Keeps p out of the kernel fast path (hold) or lets it back in once
 * nothing holds it any more: a capture or mirror must see every frame of
 * the port in the workers. */
void xbr_fastpath_port_hold(struct port *p, bool hold);

/* capture.c: xbrctl capture (see there). */
#define XBR_CAP_IN 0x1u
#define XBR_CAP_OUT 0x2u
/* "in", "out", "both" <-> XBR_CAP_* (captures and mirrors); -EINVAL. */
int xbr_dir_parse(const char *s, unsigned *dir);
const char *xbr_dir_name(unsigned dir);
#define XBR_PORT_CAPTURES 4u
struct xbr_capture;
struct capture_list {
    unsigned n;
    struct xbr_capture *c[XBR_PORT_CAPTURES];
};
/* [worker w] Copies what the port's captures want of a received burst,
 * and of frames sent on the port. */
void xbr_capture_rx(unsigned w, const struct capture_list *cl, const struct pkt *pkts,
                    unsigned n);
void xbr_capture_tx(unsigned w, const struct capture_list *cl, struct pkt *const *pkts,
                    unsigned n);
/* Ends the captures of a port about to go. */
void xbr_capture_port_removing(struct port *p);
void xbr_capture_register_commands(void);
void xbr_capture_fini(void);

/* mirror.c: port mirroring (SPAN, see there); control thread. */
#define XBR_MIRROR_NAME_MAX 32
#define XBR_MIRROR_SRC_MAX 32u
struct mirror_spec {
    char name[XBR_MIRROR_NAME_MAX];
    unsigned dir; /* XBR_CAP_IN | XBR_CAP_OUT */
    unsigned n_src;
    char src[XBR_MIRROR_SRC_MAX][IF_NAMESIZE];
    char dst[IF_NAMESIZE];
};
/* Parses NAME --src P[,P...] [--direction D] --dst P (argv[0] is NAME);
 * 0 or -EINVAL with err. */
int xbr_mirror_parse(int argc, char **argv, struct mirror_spec *m, char *err, size_t errlen);
/* The options in canonical form ("--src a,b --direction both --dst c"). */
void xbr_mirror_format(const struct mirror_spec *m, char *buf, size_t len);
/* The running mirror NAME of br in canonical form; -ENOENT if none. */
int xbr_mirror_describe(struct xbr_bridge *br, const char *name, char *buf, size_t len);
unsigned xbr_mirror_count(const struct xbr_bridge *br);
const char *xbr_mirror_name(const struct xbr_bridge *br, unsigned i);
/* br's ports change to those of t (one added; or gone is about to be
 * removed): rebuild the workers' mirror table and the fast-path holds. */
void xbr_mirror_ports_changed(struct xbr_bridge *br, const struct port_table *t,
                              struct port *gone);
void xbr_mirror_bridge_free(struct xbr_bridge *br);
void xbr_mirror_register_commands(void);

/* vlan.c: 802.1Q port modes (see there). */
#define XBR_VLAN_DEFAULT 1u
#define XBR_VLAN_MAX 4094u
/* Longest canonical "trunk VIDS native VID" (every other VID: 2047 pieces). */
#define XBR_VLAN_SPEC_MAX 12288
/* A port's mode, immutable once published (struct port.vlan). member[]
 * holds the VIDs the port carries, pvid the one that is untagged on the
 * wire (access VID, a trunk's native VID; 0: a trunk without one, which
 * drops untagged frames). */
struct port_vlan {
    bool trunk;
    uint16_t pvid;
    uint64_t member[(XBR_VLAN_MAX + 64) / 64];
};
static inline void xbr_vlan_set_bit(uint64_t *member, uint16_t vid)
{
    member[vid / 64] |= 1ull << (vid % 64);
}
static inline bool xbr_vlan_has(const struct port_vlan *v, uint16_t vid)
{
    return vid <= XBR_VLAN_MAX && (v->member[vid / 64] >> (vid % 64)) & 1u;
}
/* [worker or control] The port's mode (the default one when unset). */
const struct port_vlan *xbr_vlan_of(const struct port *p);
/* argv: access VID | trunk VIDS [native VID]; 0 or -EINVAL with err. */
int xbr_vlan_parse(int argc, char **argv, struct port_vlan *v, char *err, size_t errlen);
/* The canonical words back ("access 10", "trunk 10,20-30 native 5"). */
void xbr_vlan_format(const struct port_vlan *v, char *buf, size_t len);
bool xbr_vlan_is_default(const struct port_vlan *v);
/* [control] Gives p the mode v (flushing what it learned, holding it out
 * of the fast path unless v is the default). */
int xbr_vlan_port_set(struct port *p, const struct port_vlan *v, char *err, size_t errlen);
/* `port set BR PORT vlan ...` (argv after "vlan"). */
int xbr_vlan_cmd(struct port *p, int argc, char **argv, char *err, size_t errlen);
/* [control] Frees the mode of a port being freed (no reader left). */
void xbr_vlan_port_free(struct port *p);
void xbr_vlan_register_commands(void);

/* bridge-ctl.c */
void xbr_ctl_register_commands(void);
/* Look-ups for command handlers: NULL with "no bridge named X" / "bridge B
 * has no port named X" in err. */
struct xbr_bridge *xbr_ctl_get_bridge(const char *name, char *err, size_t errlen);
struct port *xbr_ctl_get_port(struct xbr_bridge *br, const char *name, char *err,
                              size_t errlen);

#endif
