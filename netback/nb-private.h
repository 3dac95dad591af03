/* netback internals shared by nb-xs.c (xenstore, control thread), nb-port.c
 * (the port class: ring processing on the workers) and nb-tx.c (the TX
 * request parser, also driven by the fuzzer). Not a public header.
 *
 * Ring ownership (netif TX and RX rings, one page each, per guest queue)
 * ----------------------------------------------------------------------
 * The shared page holds four indices and the request/response slots:
 *   req_prod   written by the frontend. We read it once per burst (acquire),
 *              and trust nothing about it: "req_prod - req_cons" must be at
 *              most RING_SIZE, otherwise the frontend is lying and the vif is
 *              disconnected (XSA-39 / req-prod-jump).
 *   req_event  written by us only (RING_FINAL_CHECK_FOR_REQUESTS in arm():
 *              "notify me when req_prod passes this").
 *   rsp_prod   written by us only (from our private rsp_prod_pvt).
 *   rsp_event  written by the frontend, read by us only inside
 *              RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: a wrong value can at
 *              worst cost the frontend a notification it wanted.
 *   slots      a request slot in [req_cons, req_prod) may be rewritten by
 *              the frontend at any time (XSA-155): every request is copied
 *              out with one volatile read (nb_copy_*req) and only the copy
 *              is looked at, validated and used. Response slots are ours
 *              between the request being consumed and rsp_prod moving past.
 * Our private state (req_cons, rsp_prod_pvt) lives in the back ring struct,
 * never in shared memory. Each response goes into the slot of its request
 * (responses are produced 1:1 and in order with consumed requests), so
 * rsp_prod_pvt == req_cons after every burst.
 *
 * Queues: guest queue g is served by worker g (rx_burst: guest TX ring).
 * Frames towards the guest (tx_burst: guest RX ring) come from any worker
 * w and go to guest queue w % nq; the RX side of a queue is taken under that
 * queue's spinlock, held only for one burst. It is contended only when the
 * guest has fewer queues than there are workers (dp->rx_shared), or when
 * worker g serves the RX queue on the guest's notification or the control
 * thread expires frames in it. A guest with a control ring may turn on
 * Toeplitz hashing, which sends any worker's frames to any queue: its RX
 * side is always locked (rx_shared), decided at connect.
 *
 * The control ring (one more shared page, nb-ctrl.c) follows the same rules
 * as the TX ring: requests copied out once, req_prod more than a ring ahead
 * is fatal, responses 1:1 in order; it is served by the control thread.
 */
#ifndef XBR_NB_PRIVATE_H
#define XBR_NB_PRIVATE_H

#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* ring.h wants the includer's barriers (the kernel's names with the
 * default interface version, xen_* with newer ones). */
#ifndef mb
#define mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define wmb() __atomic_thread_fence(__ATOMIC_RELEASE)
#endif
#include <xenevtchn.h>
#include <xengnttab.h>
#include <xen/grant_table.h>
#include <xen/io/netif.h>

#include "bridge/bridge.h"

#include <linux/virtio_net.h>

#define NB_PAGE 4096u
/* Linux netback's limits (drivers/net/xen-netback): a packet may follow its
 * first slot with at most XEN_NETBK_LEGACY_SLOTS_MAX - 1 more before it is
 * dropped (a frame of 20..21 slots is answered with errors), and a frontend
 * that chains NB_FATAL_SLOTS more is malicious (XSA-39). */
#define NB_LEGACY_SLOTS_MAX 18u
#define NB_FATAL_SLOTS 20u
/* Extra-info slots after one first request: one per type at most. */
#define NB_MAX_EXTRAS (XEN_NETIF_EXTRA_TYPE_MAX - 1)
/* Data slots a frame may have at most (first + NB_FATAL_SLOTS followers). */
#define NB_TX_MAX_DATA (NB_FATAL_SLOTS + 1u)
#define NB_TX_MAX_SLOTS (NB_TX_MAX_DATA + NB_MAX_EXTRAS)
/* A 64 KiB frame in page-sized RX buffers, plus its extra-info slots (GSO,
 * and the hash for a frontend that enabled hashing on its control ring). */
#define NB_RX_MAX_DATA 17u
#define NB_RX_MAX_EXTRAS 2u
#define NB_RX_MAX_SLOTS (NB_RX_MAX_DATA + NB_RX_MAX_EXTRAS)
/* Room for frames netback makes itself on their way to a guest (a checksum
 * finished in software, software segments) until their grant copy: two of
 * the largest. */
#define NB_RX_SCRATCH (2u * XBR_PKT_BUF_SIZE)

/* ---- TX request parsing (nb-tx.c) ---- */

enum nb_tx_verdict {
    NB_TX_OK = 0,   /* a well-formed frame: copy it */
    NB_TX_DROP,     /* answer its slots with NETIF_RSP_ERROR, keep going */
    NB_TX_FATAL,    /* protocol violation: disconnect the vif */
    NB_TX_MCAST,    /* a multicast-control request (mcast_op), not a frame */
};

/* One frame's requests, copied out of the ring. */
struct nb_tx_frame {
    unsigned n_slots;                  /* ring slots it took (data + extra) */
    unsigned n_data;                   /* data slots, in data[] */
    netif_tx_request_t data[NB_TX_MAX_DATA]; /* data[0].size = own length */
    uint16_t ids[NB_TX_MAX_SLOTS];     /* response id per ring slot */
    uint8_t is_extra[NB_TX_MAX_SLOTS]; /* that slot is extra info (RSP_NULL) */
    uint32_t len;                      /* whole frame */
    uint16_t flags;                    /* NETTXF_* of the first request */
    uint8_t gso_type;                  /* XEN_NETIF_GSO_TYPE_*, 0 = none */
    uint16_t gso_size;
    /* NB_TX_MCAST: XEN_NETIF_EXTRA_TYPE_MCAST_ADD or _DEL and its address.
     * As Linux netback: the request carrying it is a dummy (its data and any
     * NETTXF_more_data chain are not looked at), ADD wins over DEL. */
    uint8_t mcast_op;
    uint8_t mcast_addr[6];
    const char *why;                   /* reason, for DROP and FATAL */
};

/* Parses the frame starting at ring index cons, with requests up to (not
 * including) prod visible. ring is the shared array of ring_size slots
 * (a power of two); each slot is read exactly once. The caller guarantees
 * prod - cons <= ring_size. Pure: no I/O, no global state (fuzzable). */
enum nb_tx_verdict nb_tx_parse(const union netif_tx_sring_entry *ring, unsigned ring_size,
                               RING_IDX cons, RING_IDX prod, struct nb_tx_frame *f);

/* Finds the transport header of an Ethernet frame (optionally one VLAN tag,
 * IPv4, or IPv6 without extension headers). Returns 0 with *l4 (offset)
 * and *proto (IPPROTO_TCP / UDP), or -1. */
int nb_l4_offset(const uint8_t *d, uint32_t len, uint16_t *l4, uint8_t *proto);

/* ---- receive-side hashing (nb-hash.c, pure) ---- */

/* Linux netback's limits (XEN_NETBK_MAX_HASH_KEY_SIZE / _MAPPING_SIZE). */
#define NB_HASH_KEY_MAX 40u
#define NB_HASH_MAPPING_MAX 128u

/* What a frontend set on its control ring. Published to the workers as an
 * immutable snapshot (nb-ctrl.c). */
struct nb_hash {
    uint32_t alg;                         /* XEN_NETIF_CTRL_HASH_ALGORITHM_* */
    uint32_t flags;                       /* XEN_NETIF_CTRL_HASH_TYPE_* enabled */
    uint32_t size;                        /* mapping entries in use, 0 = modulo */
    uint8_t key[NB_HASH_KEY_MAX];         /* unset octets are 0 */
    uint32_t mapping[NB_HASH_MAPPING_MAX]; /* each < the vif's queue count */
};

uint32_t nb_toeplitz(const uint8_t *key, unsigned keylen, const uint8_t *buf, unsigned len);
/* The hash of an Ethernet frame (one VLAN tag allowed): returns the
 * _XEN_NETIF_CTRL_HASH_TYPE_* bit number of the type used and the value in
 * *hash, or -1 (no enabled type applies, *hash = 0) as Linux netback does. */
int nb_hash_frame(const struct nb_hash *h, const uint8_t *frame, uint32_t len, uint32_t *hash);
/* The guest queue for a hash (xenvif_select_queue with Toeplitz). */
unsigned nb_hash_queue(const struct nb_hash *h, uint32_t hash, unsigned nq);

/* ---- datapath state of one connected vif (nb-port.c) ---- */

struct nb_vif;
struct nb_ctrl;

/* Linux netback's XEN_NETBK_MCAST_MAX: addresses a frontend may subscribe. */
#define NB_MCAST_MAX 64u
#define NB_MCAST_VALID (1ull << 48)

/* Per-worker counters of the control-plane features on the datapath; worker
 * w writes ws[w] only. */
struct nb_wstats {
    uint64_t rx_mcast_filtered;   /* multicast towards the guest not subscribed */
    uint64_t rx_hashed;           /* frames steered by the frontend's hash */
    uint64_t tx_mcast_add, tx_mcast_del, tx_mcast_full; /* MCAST_* requests */
} __attribute__((aligned(64)));

struct nb_qstats {
    uint64_t tx_frames, tx_gso, tx_drop_bad, tx_drop_spoof, tx_drop_csum;
    uint64_t tx_drop_copy;  /* a grant copy of the packet failed: answered with errors */
    uint64_t rx_frames, rx_gso, rx_drop_gso, rx_drop_big;
    uint64_t rx_drop_copy;  /* a copy into the guest's buffers failed: error response */
    uint64_t rx_direct;     /* frames copied straight from another guest's grants */
    uint64_t rx_segmented, rx_segments; /* super-frames cut in software, their segments */
    uint64_t rx_queued;          /* frames that waited in the RX queue for buffers */
    uint64_t rx_dropped_stalled; /* ... and were dropped after NB_RX_DRAIN_MS */
    uint64_t rx_dropped_full;    /* dropped: the RX queue was at NB_RXQ_BYTES */
    uint64_t notify_tx, notify_rx;
    uint64_t tx_rate_limited;    /* times the TX credit (rate=) held requests back */
    /* ip= anti-spoofing (nb_ip_allowed): dropped guest frames by reason */
    uint64_t tx_drop_ip_src;     /* IPv4 / IPv6 source not the vif's */
    uint64_t tx_drop_arp;        /* ARP for an address not the vif's */
    uint64_t tx_drop_server;     /* DHCP / DHCPv6 server replies, router advertisements */
};

/* ip= (the backend's key, as vif-bridge applies it with iptables): the
 * addresses a guest may send from. */
#define NB_IP_MAX 16
struct nb_ipfilter {
    unsigned n4, n6;
    uint32_t v4[NB_IP_MAX];           /* network order */
    uint8_t v6[NB_IP_MAX][16];
};
enum nb_ip_verdict { NB_IP_PASS, NB_IP_BAD_SRC, NB_IP_BAD_ARP, NB_IP_SERVER };
/* Whether a guest frame may pass the filter (pure; nb-tx.c). */
enum nb_ip_verdict nb_ip_allowed(const struct nb_ipfilter *f, const uint8_t *d, uint32_t len);
/* Parses ip= ("A.B.C.D [A.B.C.D|IPv6 ...]", spaces or commas). 0, or -1
 * with the bad token in err. */
int nb_ip_parse(const char *s, struct nb_ipfilter *f, char *err, size_t errlen);

#define NB_TX_MAX_RSP (XBR_BURST * NB_TX_MAX_SLOTS)
#define NB_TX_MAX_SEGS (XBR_BURST * NB_TX_MAX_DATA)
/* A guest frame longer than this is copied only this far; the rest stays
 * in the guest's grants as the frame's tail (struct pkt_tail), copied once
 * into the destination guest's buffers, or into the worker's buffer for any
 * other destination (nb_rx_fill). Enough for every header the bridge and
 * netback read (Ethernet, VLAN, IPv4 or IPv6, TCP with options); a frame
 * whose headers go further is filled in whole. Linux netback copies 128 B
 * and grant-maps the rest (XEN_NETBACK_TX_COPY_LEN). */
#define NB_TX_COPY_LEN 256u
_Static_assert(NB_TX_MAX_DATA <= XBR_PKT_TAIL_PIECES, "a frame's tail fits in struct pkt_tail");
/* RX: response slots of a batch, and its copies: a slot takes one copy per
 * source piece it overlaps (the frame's head, its tail's grants). */
#define NB_RX_MAX_RSP (XBR_BURST * NB_RX_MAX_SLOTS)
#define NB_RX_FRAME_SEGS (NB_RX_MAX_DATA + 1u + XBR_PKT_TAIL_PIECES)
#define NB_RX_MAX_SEGS (2u * NB_RX_MAX_RSP)

/* The per-queue RX queue (nb-port.c): frames for a guest momentarily short
 * of RX buffers wait here, in order, until it posts more or they are older
 * than NB_RX_DRAIN_MS (Linux's rx_drain_timeout_msecs). At most
 * NB_RXQ_BYTES per queue (Linux's XENVIF_RX_QUEUE_BYTES, half a ring of
 * pages): a guest that never posts costs that much and no more (XSA-392). */
#define NB_RXQ_BYTES (128u * 4096u)
#define NB_RX_DRAIN_MS 10000u
struct nb_rxq_ent {
    struct nb_rxq_ent *next;
    uint64_t since_ms;              /* queued at */
    struct virtio_net_hdr vnet;
    int hash_type;                  /* < 0: none */
    uint32_t hash;
    uint32_t len;
    uint8_t data[];
};

struct nb_rx_rsp {
    netif_rx_response_t rsp;
    bool extra;                 /* slot carries gso extra info instead */
    struct netif_extra_info ex;
};

struct nb_queue {
    struct nb_dp *dp;
    unsigned idx;
    uint32_t tx_ref, rx_ref;        /* grant refs of the shared rings */
    uint32_t rport_tx, rport_rx;    /* frontend's event channels */
    evtchn_port_t lport_tx, lport_rx;
    xenevtchn_handle *ev;       /* this queue's own handle: wait_fd */
    int ev_fd;
    void *tx_page, *rx_page;        /* mapped rings (NULL if not mapped) */
    netif_tx_back_ring_t tx;
    netif_rx_back_ring_t rx;

    /* TX (guest -> bridge): used by worker idx only. */
    struct nb_tx_frame txf[XBR_BURST];
    /* rate= (Linux netback's credit scheduler, per queue as there): this
     * many bytes per period; requests beyond the credit stay on the ring. */
    unsigned rate_gen;              /* of dp->rate this state follows */
    uint64_t credit_bytes;          /* 0: no limit */
    uint64_t credit_period_ns, credit_left, credit_next_ns;
    struct { uint16_t id; int16_t status; } tx_rsp[NB_TX_MAX_RSP];
    /* Responses of the last burst not yet written: its frames have tails,
     * whose grants the guest may reuse only once they were copied
     * (written in rx_done). */
    unsigned tx_rsp_deferred;
    /* The frames of that burst that went on with a tail, and their
     * responses [first, end): turned into errors if the tail turned out
     * not to be copyable (its grant was bad), as when the copy fails here. */
    struct { struct pkt_tail *tail; unsigned first, end; } tx_held[XBR_BURST];
    unsigned n_held;
    xengnttab_grant_copy_segment_t tx_seg[NB_TX_MAX_SEGS];
    struct pkt_tail tx_tail[XBR_BURST];

    /* RX (bridge -> guest): under rx_lock (uncontended unless dp->rx_shared;
     * the control thread takes it to expire queued frames). */
    pthread_spinlock_t rx_lock;
    struct nb_rxq_ent *rxq_head, **rxq_tail; /* the RX queue, oldest first */
    _Atomic unsigned rxq_n;         /* frames in it (read unlocked as a hint) */
    uint32_t rxq_bytes;
    struct nb_rx_rsp rx_rsp[NB_RX_MAX_RSP];
    xengnttab_grant_copy_segment_t rx_seg[NB_RX_MAX_SEGS];
    uint8_t *scratch;               /* NB_RX_SCRATCH: frames made here (nb-port.c) */

    struct nb_qstats st;            /* TX fields: worker idx; RX: under lock */
} __attribute__((aligned(64)));

struct nb_dp {
    struct nb_vif *vif;             /* back pointer for close(); control thread */
    uint16_t domid;
    unsigned nq, n_workers;
    bool rx_shared;
    bool sg, gso4, gso6, csum, ipv6_csum, rx_notify;
    bool antispoof;
    bool ip_filter;                 /* ip= given: ipf applies */
    struct nb_ipfilter ipf;
    uint8_t mac[6];
    /* rate= "bytes,usec" from the backend, set by the control thread
     * (nb_dp_set_rate) and picked up by each queue's worker by gen. */
    struct {
        _Atomic unsigned gen;
        _Atomic uint64_t bytes, usec;
    } rate;
    /* feature-ctrl-ring (nb-ctrl.c): ctrl is the control thread's; hash is
     * what workers read, an RCU pointer (NULL: no hashing, frames go to
     * queue w % nq). A vif with a control ring always locks its RX side
     * (rx_shared), since hashing sends any worker's frames to any queue. */
    struct nb_ctrl *ctrl;
    struct nb_hash *hash;
    /* feature-multicast-control: filter multicast towards the guest to the
     * addresses it subscribed (request-multicast-control, sampled at
     * connect). Workers on the TX side add and remove under mcast_lock;
     * entries (MAC | NB_MCAST_VALID) are read without it. */
    bool mcast_ctrl;
    pthread_spinlock_t mcast_lock;
    unsigned mcast_n;
    _Atomic uint64_t mcast[NB_MCAST_MAX];
    struct nb_wstats ws[XBR_MAX_WORKERS];
    xengnttab_handle *map_gt; /* the control thread's (mapped the rings) */
    xengnttab_handle **copy_gt; /* per worker */
    atomic_int fatal;               /* 0, or 1 once: reason in why */
    char why[160];
    struct nb_queue q[];
};

extern const struct port_class nb_port_class;

/* Sets dp->fatal with a reason (first caller wins) and wakes nobody: the
 * control thread polls the flag every NB_TICK_MS. Any thread. */
void nb_dp_fatal(struct nb_dp *dp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Unmaps, unbinds and frees (control thread; no worker may be inside). */
void nb_dp_free(struct nb_dp *dp);
/* [control] rate= of the vif: bytes per usec microseconds (0 bytes: no
 * limit); takes effect at each queue's next burst. */
void nb_dp_set_rate(struct nb_dp *dp, uint64_t bytes, uint64_t usec);
/* Queue q's summed stats. */
void nb_dp_stats(const struct nb_dp *dp, struct nb_qstats *sum);
/* [control, every tick] Drops queued RX frames older than NB_RX_DRAIN_MS. */
void nb_dp_rx_expire(struct nb_dp *dp);

struct nb_dp *nb_dp_alloc(unsigned nq, unsigned n_workers);
/* Maps every queue's rings and binds its event channels (control thread).
 * On failure returns -errno with err filled; nb_dp_free() undoes the part
 * that was done. restart: the rings may be in use (xbrd restarted), resume
 * from their shared rsp_prod. */
int nb_dp_map(struct nb_dp *dp, char *err, size_t errlen);

/* Called by the port class's close() (control thread): the port is gone. */
void nb_vif_port_closed(struct nb_vif *vif);

/* ---- control ring and multicast control (nb-ctrl.c) ---- */

/* [control] After nb_dp_alloc: the multicast list's lock. */
void nb_ctrl_init(struct nb_dp *dp);
/* [control] Maps the frontend's control ring, binds its event channel and
 * serves it from the control thread's loop. -errno with err filled. */
int nb_ctrl_map(struct nb_dp *dp, uint32_t ref, uint32_t rport, char *err, size_t errlen);
/* [control] Undoes nb_ctrl_map and nb_ctrl_init (no worker may be inside:
 * called from nb_dp_free). Safe on a dp without a control ring. */
void nb_ctrl_free(struct nb_dp *dp);
/* [control] Every NB_TICK_MS: continues requests the per-tick budget left. */
void nb_ctrl_tick(struct nb_dp *dp);
/* [worker] The published hash settings, or NULL (QSBR read side). */
const struct nb_hash *nb_ctrl_hash(const struct nb_dp *dp);
/* [worker w, TX side] Applies an NB_TX_MCAST request; returns the
 * NETIF_RSP_* status for its first slot. */
int16_t nb_mcast_request(struct nb_dp *dp, unsigned w, const struct nb_tx_frame *f);
/* [any worker] Whether a frame to dst may go to the guest (always, without
 * multicast control; broadcast always). */
bool nb_mcast_pass(const struct nb_dp *dp, const uint8_t *dst);
/* [control] show: the control ring's and multicast control's state. */
void nb_ctrl_show(const struct nb_dp *dp, struct ctl_out *o);

#endif
