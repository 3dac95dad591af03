/* bridge — the xbr daemon's switching core: bridges, ports, workers.
 *
 * Threads
 *   One control thread runs the event loop (control socket, timers, STP,
 *   FDB ageing, xenstore watches) and is the only thread that changes
 *   configuration. N worker threads poll ports and forward frames.
 *
 * Queues and ownership
 *   Every port has one queue per worker: worker w alone receives from queue w
 *   and alone transmits on queue w of every port, so ports need no locks on
 *   the datapath (AF_PACKET: one socket per worker in a fanout group; tap:
 *   IFF_MULTI_QUEUE; netback: a guest queue per worker where it has them).
 *
 * Port table and RCU
 *   Workers are liburcu QSBR readers. The control thread publishes a new
 *   port table with rcu_assign_pointer and frees the old one, and closes a
 *   removed port, only after a grace period. A worker reports a quiescent
 *   state once per loop iteration and goes offline while it sleeps.
 */
#ifndef XBR_BRIDGE_H
#define XBR_BRIDGE_H

#include <linux/virtio_net.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct capture_list;
struct port_vlan;
struct ctl_out;
struct port;
struct xbr_bridge;

#define XBR_BURST 32
#define XBR_MAX_WORKERS 16
#define XBR_MAX_PORTS 1024 /* per bridge */
/* Large enough for a 64 KiB GSO frame plus its Ethernet header. */
#define XBR_PKT_BUF_SIZE (65536 + 256)
/* The longest a worker keeps frames that a port batched unsent while its
 * receive queues are still busy (DPDK l2fwd drains every ~100 us). */
#define XBR_TX_DRAIN_NS 100000u

/* A frame on its way through the bridge.
 *
 * Before rx_burst the worker points buf at a buffer of XBR_PKT_BUF_SIZE bytes
 * that the port may fill (tap, netback). A port that already holds the frame
 * in memory of its own (AF_PACKET's mmap ring) sets data to it instead; that
 * memory stays valid until the port's rx_done() for the same queue. */
struct pkt {
    uint8_t *data;  /* first byte of the Ethernet header */
    uint32_t len;   /* whole frame, Ethernet header included */
    uint8_t *buf;   /* worker-provided buffer, XBR_PKT_BUF_SIZE bytes */
    /* Offload metadata in virtio-net form, the common currency of AF_PACKET
     * (PACKET_VNET_HDR), tap (IFF_VNET_HDR) and netback (converted from and
     * to netif extra info). gso_type VIRTIO_NET_HDR_GSO_NONE and flags 0 for
     * a plain, fully checksummed frame. */
    struct virtio_net_hdr vnet;
    uint32_t flags; /* XBR_PKT_* */
    /* Tunnel ports only (FDB_REMOTE_NONE, 0, elsewhere): on receive, the
     * remote endpoint the frame came from, as the port's handle that the
     * FDB learns with the source; on transmit, the one its destination's
     * entry remembers, or FDB_REMOTE_NONE for a flood (every remote). */
    uint32_t remote;
    /* NULL, or the frame's last tail->len bytes, which are not in data but
     * still in the sending guest's memory (struct pkt_tail). */
    struct pkt_tail *tail;
};

/* The end of a frame left where the guest put it. A netback port copies
 * only the headers of a long frame from the guest (what the bridge decides
 * on) and describes the rest by the guest's grant references, so that a
 * frame from one guest to another is copied once, grant to grant, instead
 * of into the worker's buffer and out again. The sender's grants stay
 * valid until the ingress port's rx_done. Only ports whose class has
 * tx_tail are given such frames: for every other destination, and before a
 * capture sees the frame, the worker has the ingress port's rx_fill copy
 * the tail into data first. Edits to the headers (a VLAN tag pushed or
 * popped) leave the tail alone: it is always the frame's last len bytes. */
#define XBR_PKT_TAIL_PIECES 24
struct pkt_tail {
    uint32_t len;   /* bytes not in data, at the end of the frame */
    uint16_t domid; /* the guest that granted them */
    uint16_t n;     /* pieces, in frame order; their lengths add up to len */
    bool failed;    /* rx_fill could not copy it: the frame is dropped */
    struct {
        uint32_t gref;
        uint16_t offset, len; /* within one page */
    } piece[XBR_PKT_TAIL_PIECES];
};

/* The bytes of p that are in memory at data. */
static inline uint32_t pkt_head_len(const struct pkt *p)
{
    return p->tail ? p->len - p->tail->len : p->len;
}

/* The kernel fast path forwarded this frame already; data holds only its
 * Ethernet header, and the bridge learns its source and nothing else (see
 * fastpath/fastpath.h). */
#define XBR_PKT_LEARN_ONLY 0x1u

/* Per-port, per-worker counters. Each worker writes only its own copy, so
 * plain stores suffice; readers sum the copies (values may be a few frames
 * stale, never torn on x86-64 where aligned 64-bit stores are atomic). */
struct port_stats {
    uint64_t rx_packets, rx_bytes;
    uint64_t tx_packets, tx_bytes;
    uint64_t rx_flooded;      /* received frames that were flooded */
    /* drops on receive, by reason */
    uint64_t rx_drop_runt;       /* shorter than an Ethernet header */
    uint64_t rx_drop_state;      /* port not forwarding/learning (STP) */
    uint64_t rx_drop_linklocal;  /* 01:80:c2:00:00:0x not for forwarding */
    uint64_t rx_drop_filtered;   /* destination is the ingress port */
    uint64_t rx_drop_src;        /* invalid source MAC (multicast / zero) */
    uint64_t rx_drop_port;       /* the port's own reason (e.g. truncated) */
    uint64_t rx_drop_bpdu_queue; /* BPDU not handed to STP: its queue was full */
    uint64_t rx_bpdu;            /* BPDUs handed to STP */
    uint64_t rx_drop_mirror;     /* received on a mirror's output port */
    uint64_t rx_drop_vlan;       /* VLAN the port does not carry, tagged on an
                                  * access port, untagged on a trunk without a
                                  * native VID, an 802.1ad outer tag */
    /* drops on transmit, by reason */
    uint64_t tx_drop_mtu;        /* longer than the egress MTU */
    uint64_t tx_drop_full;       /* the port could not take it */
    /* forwarding database events caused by this port's frames */
    uint64_t fdb_learned, fdb_moved, fdb_limit;
    /* Frames the kernel fast path forwarded from / to this port (already
     * part of rx_ and tx_packets). Never written by workers: filled in by
     * xbr_port_get_stats. */
    uint64_t fast_rx_packets, fast_tx_packets;
} __attribute__((aligned(64)));

enum port_stp_state {
    PORT_STP_DISABLED,
    PORT_STP_DISCARDING,
    PORT_STP_LEARNING,
    PORT_STP_FORWARDING,
};

/* What the control plane passes to a port class's open(). */
struct port_open_args {
    const char *name;   /* port name (interface name for AF_PACKET / tap) */
    unsigned n_queues;  /* = number of workers */
    unsigned flags;     /* XBR_PORT_F_* */
    void *class_arg;    /* class-specific (e.g. netback's vif context) */
};

/* Attach even where a safety check says it would close a loop (a veth
 * whose peer is on the same bridge); STP is then what protects the network. */
#define XBR_PORT_F_FORCE 0x1u

/* The ops table every kind of port implements (OVS netdev_class, DPDK
 * rx_burst/tx_burst habit). "q" is always the calling worker's queue; a
 * queue is used by one worker only, so no op needs a lock against another
 * worker. Ops marked [control] run on the control thread only. */
struct port_class {
    const char *type; /* "afpacket", "tap", "netback" */
    /* A port that faces one end station (a guest's vif, a host's tap): STP
     * makes it an edge port with BPDU guard by default, since a BPDU from
     * it means a loop or an attack. Uplinks (AF_PACKET) are non-edge with
     * automatic edge detection. */
    bool end_station;
    /* A tunnel to other bridges (vxlan): its entries remember a remote
     * (struct pkt.remote), frames flooded from one tunnel port never go out
     * of another (split horizon), and STP neither sends nor takes BPDUs on
     * it unless told to (bpdu-filter no), as OVS and the kernel do. */
    bool tunnel;

    /* [control] Brings the port up; fills p->mtu, p->mac, p->priv. On error
     * returns a negative errno with a message in err and leaves nothing
     * behind. */
    int (*open)(struct port *p, const struct port_open_args *args, char *err, size_t errlen);
    /* [control] Undoes open (restores the interface as it was). Called after
     * a grace period: no worker can still be inside the port. */
    void (*close)(struct port *p);

    /* Receives up to n frames into pkts[0..n). Returns how many. The frames
     * (pkt->data) stay valid until rx_done(p, q). */
    unsigned (*rx_burst)(struct port *p, unsigned q, struct pkt *pkts, unsigned n);
    /* Releases what the last rx_burst on q returned. May be NULL. */
    void (*rx_done)(struct port *p, unsigned q);
    /* For a class whose rx_burst leaves tails (struct pkt_tail): copies the
     * tails of pkts[0..n) (those that have one) into their data, in one go,
     * and clears them; a frame whose tail cannot be copied keeps it, marked
     * failed, and is counted as the ingress port's drop. May be NULL. */
    void (*rx_fill)(struct port *p, unsigned q, struct pkt *const *pkts, unsigned n);
    /* tx_burst takes frames with a tail (see struct pkt_tail). */
    bool tx_tail;
    /* Sends pkts[0..n). The caller keeps ownership: the port copies what it
     * needs before returning. Returns how many were sent; the caller counts
     * the rest as dropped (tx_drop_full). */
    unsigned (*tx_burst)(struct port *p, unsigned q, struct pkt *const *pkts, unsigned n);
    /* Pushes out frames a port batched internally (kicks). May be NULL.
     * The worker calls it once its receive queues are drained, or at the
     * latest XBR_TX_DRAIN_NS after the first tx_burst that it has not
     * flushed, and always before it sleeps; so a port may keep frames
     * back across several tx_burst calls (one kick for many bursts). */
    void (*tx_flush)(struct port *p, unsigned q);

    /* An fd that becomes readable when queue q has work (epoll, level
     * triggered). */
    int (*wait_fd)(struct port *p, unsigned q);
    /* Called before the worker sleeps: arm notifications (e.g. netback's
     * event fields) and return true if work arrived meanwhile, in which case
     * the worker does not sleep. A port that holds work back until a time
     * (netback's rate=) lowers *wake_ns (xbr_now_ns() clock) to it. May be
     * NULL. */
    bool (*arm)(struct port *p, unsigned q, uint64_t *wake_ns);

    /* [control] Re-reads facts that can change underneath (MTU, link, speed).
     * Returns -ENODEV when the port's device has gone away, and the bridge
     * then removes the port. May be NULL. */
    int (*refresh)(struct port *p);
    /* [control] Hands the port's frames to the kernel fast path (on) or
     * takes them back (off): attaches fastpath's programs to the port's
     * receive sockets and interface (fp_port_attach / fp_port_detach).
     * NULL for ports that are not kernel interfaces. */
    int (*fastpath)(struct port *p, bool on, char *err, size_t errlen);
    /* [control] Class-specific details for `show` (text and JSON). May be NULL. */
    void (*show)(struct port *p, struct ctl_out *o);
};

struct port {
    char name[IF_NAMESIZE];
    const struct port_class *cls;
    struct xbr_bridge *bridge;
    unsigned no;            /* slot in the bridge, 0 .. XBR_MAX_PORTS-1 */
    void *priv;             /* the class's state */
    uint8_t mac[6];         /* the port's own address (BPDU source) */
    uint32_t mtu;           /* egress MTU (L3), refreshed by the class */
    uint32_t speed_mbps;    /* 0 = unknown */
    bool link_up;
    /* Datapath gate, written by the control thread (STP), read by workers. */
    int stp_state;          /* enum port_stp_state */
    bool fastpath;          /* attached to the kernel fast path (control thread) */
    /* Captures and mirrors that need every frame of the port in the
     * workers keep it out of the fast path while > 0 (control thread). */
    unsigned fastpath_hold;
    bool mirror_held;       /* one of the holds is its mirrors' */
    bool vlan_held;         /* one of the holds is its VLAN mode's */
    /* The port's 802.1Q mode (struct port_vlan, vlan.c; RCU; NULL for the
     * default, access VID 1). */
    struct port_vlan *vlan;
    /* The captures running on the port (RCU; NULL when none). */
    struct capture_list *captures;
    /* Frames the control thread sends on this port (BPDUs): a single-
     * producer (control) single-consumer (worker 0) ring. */
    struct port_inject *inject;
    /* Worker w alone writes tx_dirty[w]: it sent on this port since its
     * last tx_flush. */
    bool tx_dirty[XBR_MAX_WORKERS];
    struct port_stats stats[XBR_MAX_WORKERS];
};

/* ---- Daemon-wide ---- */

/* Number of worker threads (fixed at start). */
unsigned xbr_n_workers(void);

/* The control thread's event loop, for modules that need fds watched or
 * periodic work (netback's xenstore watch, STP ticks). All callbacks run on
 * the control thread. */
typedef void xbr_fd_cb(int fd, uint32_t events, void *aux);
int xbr_loop_add_fd(int fd, uint32_t events, xbr_fd_cb *cb, void *aux);
void xbr_loop_del_fd(int fd);

/* ---- Bridges and ports (control thread only) ---- */

struct xbr_bridge *xbr_bridge_find(const char *name);
int xbr_bridge_add(const char *name, char *err, size_t errlen);
int xbr_bridge_del(const char *name, char *err, size_t errlen);
const char *xbr_bridge_name(const struct xbr_bridge *br);

/* Attaches a port of class cls named name to br. class_arg goes to open().
 * Refuses duplicates with a clear message in err. Returns 0 or -errno. */
int xbr_port_add(struct xbr_bridge *br, const char *name, const struct port_class *cls,
                 unsigned flags, void *class_arg, char *err, size_t errlen);
/* xbr_port_add() with an 802.1Q mode from the start, in the words of
 * `port set BR PORT vlan ...` ("access 10", "trunk 20,30 native 10"): the
 * port forwards no frame in any other VLAN. -EINVAL with err if bad. */
int xbr_port_add_vlan(struct xbr_bridge *br, const char *name, const struct port_class *cls,
                      unsigned flags, void *class_arg, const char *vlan, char *err,
                      size_t errlen);
/* Detaches and closes a port (waits for a grace period). */
int xbr_port_del(struct xbr_bridge *br, const char *name, char *err, size_t errlen);
/* The port named name on any bridge, or NULL. */
struct port *xbr_port_find_any(const char *name);

/* Port classes provided by the core, and a registry for others (netback). */
extern const struct port_class port_afpacket_class;
extern const struct port_class port_tap_class;
extern const struct port_class port_vxlan_class;
#ifdef XBR_HAVE_AFXDP
extern const struct port_class port_afxdp_class;
#endif
void xbr_port_class_register(const struct port_class *cls);
const struct port_class *xbr_port_class_find(const char *type);

/* Sums a port's per-worker counters. */
void xbr_port_get_stats(const struct port *p, struct port_stats *sum);

#endif
