/* netfront.h — a user-space Xen network frontend, the guest side of a vif.
 *
 * It does what Linux's drivers/net/xen-netfront.c does, from a process that
 * plays domain `domid` (see xensim.h: link with libxensim and set XENSIM_DIR)
 * and talks xenstore through the real libxenstore:
 *
 *   handshake  reads .../device/vif/<devid>/{backend,backend-id,mac}; if this
 *              vif was connected before (frontend state not Initialising), ends
 *              that connection and writes Initialising again, on which a
 *              backend in Closed prepares for a reconnect; waits for the
 *              backend's InitWait; reads its features
 *              (feature-rx-copy is required, multi-queue-max-queues,
 *              feature-split-event-channels, feature-sg, feature-gso-tcpv4/6);
 *              grants one TX and one RX shared ring per queue, allocates
 *              event channels, writes tx-ring-ref / rx-ring-ref /
 *              event-channel (or event-channel-tx/-rx), or
 *              multi-queue-num-queues and queue-N/..., plus request-rx-copy,
 *              feature-rx-notify, feature-sg, feature-gso-tcpv4/6,
 *              feature-ipv6-csum-offload (and with opts.ctrl_ring a control
 *              ring, with opts.mcast_control request-multicast-control, then
 *              opts.xs_overrides), all in one transaction; switches
 *              Initialising -> Connected directly (as Linux does); waits for
 *              the backend's Connected.
 *   TX         a frame of 14..65535 bytes becomes page-bounded slots (never more
 *              than XEN_NETIF_NR_SLOTS_MIN = 18: a frame that would need more
 *              is laid out in whole pages, as Linux linearizes it): the first
 *              request's size is the whole frame, NETTXF_more_data chains the
 *              rest, an XEN_NETIF_EXTRA_TYPE_GSO extra slot follows the first
 *              when gso_type is set, NETTXF_csum_blank / data_validated as
 *              asked. TX buffers are 256 pages per queue granted read-only to
 *              the backend for the life of the connection (persistent, like
 *              a grant-caching guest; the backend cannot tell).
 *              RING_PUSH_REQUESTS_AND_CHECK_NOTIFY decides notifications.
 *   RX         keeps rx_buffers writable pages per queue posted; reassembles
 *              multi-slot responses (NETRXF_more_data, extra info after the
 *              first slot) and checks what the backend wrote (status, offset +
 *              size within the page, slot count, ids) — a bad response is
 *              counted in rx_bad and the frame dropped. Like a guest kernel,
 *              RX keeps flowing while the caller is busy sending: frames that
 *              arrive while netfront_send / _flush / _poll wait are kept (up
 *              to 512, then dropped and counted) for netfront_recv.
 *   close      Closing (5), wait for the backend to follow, Closed (6); then
 *              event channels unbound and grants ended (still-mapped pages
 *              are released by the simulator once the backend unmaps them).
 *
 * Misbehaviour switches (enum netfront_attack) make the frontend break the
 * protocol in one well-known way each, so that a backend's defences can be
 * tested; see netfront_attack_help().
 *
 * Threading: one netfront is used by one thread at a time. Functions return
 * 0 (or a count) on success and a negative errno on failure; nothing logs.
 */
#ifndef XBR_NETFRONT_H
#define XBR_NETFRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NETFRONT_MAX_QUEUES 8u
#define NETFRONT_MAX_FRAME 65535u /* XEN_NETIF_MAX_TX_SIZE */

/* Attacks, each named after what it does; the XSA it recalls is in the help. */
enum netfront_attack {
    NF_ATTACK_NONE = 0,
    NF_ATTACK_TOO_MANY_SLOTS,   /* too-many-slots */
    NF_ATTACK_FATAL_SLOTS,      /* fatal-slots */
    NF_ATTACK_ZERO_FRAG,        /* zero-frag */
    NF_ATTACK_CROSS_PAGE,       /* cross-page */
    NF_ATTACK_SIZE_SHORT,       /* size-short */
    NF_ATTACK_SIZE_LONG,        /* size-long */
    NF_ATTACK_TINY_FIRST_SLOT,  /* tiny-first-slot */
    NF_ATTACK_TINY_FRAGS,       /* tiny-frags */
    NF_ATTACK_BAD_EXTRA_TYPE,   /* bad-extra-type */
    NF_ATTACK_EXTRA_UNTERMINATED, /* extra-unterminated */
    NF_ATTACK_GSO_SIZE_ZERO,    /* gso-size-zero */
    NF_ATTACK_GSO_BAD_TYPE,     /* gso-bad-type */
    NF_ATTACK_UNTERMINATED,     /* unterminated */
    NF_ATTACK_REQ_PROD_JUMP,    /* req-prod-jump */
    NF_ATTACK_RX_REQ_PROD_JUMP, /* rx-req-prod-jump */
    NF_ATTACK_BAD_GREF,         /* bad-gref */
    NF_ATTACK_UNUSED_GREF,      /* unused-gref */
    NF_ATTACK_FOREIGN_GREF,     /* foreign-gref */
    NF_ATTACK_REVOKE_GREF,      /* revoke-gref */
    NF_ATTACK_TAIL_BAD_GREF,    /* tail-bad-gref */
    NF_ATTACK_TAIL_REVOKE,      /* tail-revoke */
    NF_ATTACK_RX_READONLY,      /* rx-readonly */
    NF_ATTACK_RX_BAD_GREF,      /* rx-bad-gref */
    NF_ATTACK_REWRITE,          /* rewrite */
    NF_ATTACK_NO_RX_BUFFERS,    /* no-rx-buffers */
    NF_ATTACK_EVTCHN_FLOOD,     /* evtchn-flood */
    NF_ATTACK_VANISH,           /* vanish */
    /* xenstore and control-ring misbehaviour */
    NF_ATTACK_FOREIGN_EVTCHN,   /* foreign-evtchn */
    NF_ATTACK_XS_WRITE_LOOP,    /* xs-write-loop */
    NF_ATTACK_CTRL_REQ_PROD_JUMP, /* ctrl-req-prod-jump */
    NF_ATTACK_CTRL_FLOOD,       /* ctrl-flood */
    NF_ATTACK__COUNT
};

struct netfront_opts {
    unsigned queues;        /* wanted (0 = 1); clipped to multi-queue-max-queues */
    bool no_split_evtchn;   /* one event channel per queue even if split is offered */
    bool no_sg, no_gso, no_csum_offload; /* features not advertised */
    unsigned rx_buffers;    /* buffers kept posted per queue (0 = 256, max 256) */
    int timeout_ms;         /* handshake and close waits (0 = 10000) */
    /* Ring-only mode, no xenstore: rings and ports are allocated for
     * backend_domid, netfront_queue_info() tells their refs/ports, and
     * netfront_connect() only posts RX buffers. */
    bool no_xenstore;
    uint32_t backend_domid;
    uint8_t mac[6];         /* ring-only mode; otherwise read from xenstore */
    enum netfront_attack attack;
    unsigned attack_arg;    /* attack-specific number, 0 = its default */
    /* Crafted packets are test frames (netfront_test_frame, TCP/IPv4 from 70
     * bytes) sent to attack_dst (broadcast unless have_attack_dst), so that
     * a legal one can be checked at the other end. */
    bool have_attack_dst;
    uint8_t attack_dst[6];
    /* feature-ctrl-ring: grant a control ring (when the backend offers it). */
    bool ctrl_ring;
    /* feature-multicast-control: write request-multicast-control=1. */
    bool mcast_control;
    /* Hostile xenstore values: applied last in the handshake transaction,
     * relative to the frontend directory: "KEY=VALUE" writes, "KEY=@OTHER"
     * writes the value just written for OTHER, "KEY" alone removes. The
     * strings must outlive netfront_connect(). */
    const char *const *xs_overrides;
    unsigned n_xs_overrides;
};

struct netfront_tx_opts {
    int queue;              /* -1: by flow hash */
    uint8_t gso_type;       /* XEN_NETIF_GSO_TYPE_{NONE,TCPV4,TCPV6} */
    uint16_t gso_size;      /* MSS for GSO */
    bool csum_blank;        /* NETTXF_csum_blank: checksum left to the backend */
    bool data_validated;    /* NETTXF_data_validated */
    uint16_t first_offset;  /* in-page offset of the first slot's data */
    uint16_t slot_bytes;    /* at most this many bytes per slot (0 = 4096); ignored
                               when it would take more than 18 slots */
};

struct netfront_rx_info {
    unsigned queue;
    uint16_t flags;         /* NETRXF_* of the first response */
    uint8_t gso_type;       /* from an XEN_NETIF_EXTRA_TYPE_GSO extra, or 0 */
    uint16_t gso_size;
    unsigned slots;         /* data responses the frame took */
    size_t len;             /* frame length (more than cap means truncated) */
    int hash_type;          /* _XEN_NETIF_CTRL_HASH_TYPE_* of a HASH extra, or -1 */
    uint8_t hash_alg;
    uint32_t hash;          /* its value */
};

struct netfront_queue_info {
    uint32_t tx_ring_ref, rx_ring_ref;
    uint32_t evtchn_tx, evtchn_rx; /* equal unless split */
};

struct netfront_stats {
    uint64_t tx_packets, tx_bytes, tx_slots;
    uint64_t tx_linearized; /* frames re-laid in whole pages: slot_bytes asked for > 18 slots */
    uint64_t tx_rsp_okay, tx_rsp_error, tx_rsp_dropped, tx_rsp_null;
    uint64_t tx_bad_rsp;    /* responses with unknown ids */
    uint64_t rx_packets, rx_bytes, rx_slots, rx_gso;
    uint64_t rx_errors;     /* responses with a negative status */
    uint64_t rx_bad;        /* backend protocol violations seen */
    uint64_t rx_posted;     /* RX requests posted */
    uint64_t rx_dropped;    /* received but dropped: the backlog (512 frames kept while
                               the caller sends or polls instead of receiving) was full */
    uint64_t events, notifies;
    uint64_t ctrl_requests, ctrl_responses; /* control ring */
    uint64_t xs_writes;     /* xs-write-loop */
};

struct netfront;

struct netfront *netfront_open(uint32_t domid, uint32_t devid, const struct netfront_opts *opts);
/* Handshake up to Connected on both sides (ring-only mode: posts RX buffers). */
int netfront_connect(struct netfront *nf);
/* Graceful disconnect (5 -> 6) and free. NULL ok. */
int netfront_close(struct netfront *nf);
/* The domain dies under the netfront (xensim_domain_destroy + toolstack
 * cleanup of xenstore): nothing is closed or ended by the frontend. Frees. */
void netfront_vanish(struct netfront *nf);

/* Sends one frame; waits up to 1 s for ring space. NULL o: a plain frame. */
int netfront_send(struct netfront *nf, const void *frame, size_t len,
                  const struct netfront_tx_opts *o);
/* Receives one frame into buf (cap bytes): returns its length (which may be
 * more than cap: truncated), -ETIMEDOUT, or another -errno. info may be NULL.
 * timeout_ms < 0 waits forever. */
ssize_t netfront_recv(struct netfront *nf, void *buf, size_t cap, int timeout_ms,
                      struct netfront_rx_info *info);
/* Handles events and TX completions for up to timeout_ms. */
int netfront_poll(struct netfront *nf, int timeout_ms);
/* Waits until every TX request has its response; -ETIMEDOUT otherwise. */
int netfront_flush(struct netfront *nf, int timeout_ms);

/* Performs opts->attack once: for attacks on the TX ring, one crafted
 * packet on queue 0 (then waits ~50 ms and collects the responses);
 * rx-readonly / rx-bad-gref / no-rx-buffers act from open/connect on and
 * this is a no-op; evtchn-flood floods for attack_arg ms. vanish destroys
 * the domain and FREES nf: do not use it afterwards. */
int netfront_run_attack(struct netfront *nf);

/* Control ring (opts.ctrl_ring and the backend's feature-ctrl-ring).
 * netfront_ctrl: one request, waits up to 2 s for its response; returns its
 * XEN_NETIF_CTRL_STATUS_* (>= 0, data in *data) or -errno (-ENOTSUP without
 * a control ring). netfront_ctrl_page: copies len bytes (<= 4096) into the
 * page granted read-only for SET_HASH_KEY / SET_HASH_MAPPING and gives its
 * ref. netfront_set_toeplitz: what a Windows PV driver does to turn RSS on
 * (algorithm, flags, key, mapping size and table); 0 or -EPROTO with the
 * failed request's type in *failed_type. */
bool netfront_has_ctrl(const struct netfront *nf);
int netfront_ctrl(struct netfront *nf, uint16_t type, uint32_t d0, uint32_t d1, uint32_t d2,
                  uint32_t *data);
int netfront_ctrl_page(struct netfront *nf, const void *data, size_t len, uint32_t *ref);
int netfront_set_toeplitz(struct netfront *nf, const uint8_t *key, unsigned keylen,
                          uint32_t flags, const uint32_t *mapping, unsigned n,
                          uint16_t *failed_type);
/* Multicast control: an MCAST_ADD (add) or MCAST_DEL dummy request on TX
 * queue 0; 0 with the backend's NETIF_RSP_* answer in *status, or -errno.
 * Whether the backend filters: netfront_mcast_filtering(). */
int netfront_mcast(struct netfront *nf, bool add, const uint8_t mac[6], int16_t *status);
bool netfront_mcast_filtering(const struct netfront *nf);

void netfront_get_stats(const struct netfront *nf, struct netfront_stats *st);
unsigned netfront_num_queues(const struct netfront *nf);
int netfront_queue_info(const struct netfront *nf, unsigned q, struct netfront_queue_info *qi);
const uint8_t *netfront_mac(const struct netfront *nf);
/* The backend's XenbusState now, read from xenstore (-errno if unreadable,
 * 0 if the node is gone). */
int netfront_backend_state(struct netfront *nf);
/* Pollable fd (the event channel handle's). */
int netfront_fd(const struct netfront *nf);

const char *netfront_attack_name(enum netfront_attack a);
const char *netfront_attack_help(enum netfront_attack a);
/* "NAME" or "NAME=N". */
int netfront_attack_parse(const char *s, enum netfront_attack *a, unsigned *arg);

/* Test frames, for checking what went through a datapath. The payload
 * starts with a 16-byte header — "XSIM", sequence number, frame length,
 * CRC-32 of the bytes after the header (all big-endian) — followed by a
 * pattern derived from the sequence number.
 *   raw:  Ethernet + ethertype 0x88b5 (local experimental); len >= 30.
 *   tcp4: Ethernet + IPv4 + TCP (10.0.0.1:12345 -> 10.0.0.2:80), for GSO;
 *         len >= 70. csum_partial leaves the TCP checksum as CHECKSUM_PARTIAL
 *         does (pseudo-header sum only), for NETTXF_csum_blank.
 *   tcp6: Ethernet + IPv6 + TCP ([fd00::1]:12345 -> [fd00::2]:80, no
 *         extension headers), for GSO over IPv6; len >= 90. csum_partial as
 *         for tcp4, over the IPv6 pseudo-header (RFC 8200 8.1).
 * build returns 0 or -EINVAL; check returns 0 with *seq, -ENOMSG when the
 * frame is not a test frame, -EBADMSG when it is one but damaged. */
#define NETFRONT_TEST_ETHERTYPE 0x88b5
enum netfront_tf_kind { NF_TF_RAW, NF_TF_TCP4, NF_TF_TCP6 };
#define NETFRONT_TF_MIN_TCP4 70u
#define NETFRONT_TF_MIN_TCP6 90u
int netfront_test_frame_kind(uint8_t *buf, size_t len, uint32_t seq, const uint8_t dst[6],
                             const uint8_t src[6], enum netfront_tf_kind kind,
                             bool csum_partial);
/* netfront_test_frame_kind with NF_TF_TCP4 (tcp4) or NF_TF_RAW. */
int netfront_test_frame(uint8_t *buf, size_t len, uint32_t seq, const uint8_t dst[6],
                        const uint8_t src[6], bool tcp4, bool csum_partial);
int netfront_test_frame_check(const uint8_t *buf, size_t len, uint32_t *seq);
uint32_t netfront_crc32(const void *data, size_t len);

/* What the toolstack (libxl) does around a vif, done through xenstore as
 * dom0. attach: introduce the domain to xenstore, write the frontend and
 * backend directories with libxl's permissions (state 1 on both sides).
 * detach: libxl's device removal (online 0, backend state Closing, wait up to
 * timeout_ms for Closed, remove both directories). destroy: the domain dies
 * (xensim_domain_destroy, its xenstore home removed, XS_RELEASE fires
 * @releaseDomain); the backend directory is left for the backend to notice. */
int netfront_toolstack_attach(uint32_t backend_domid, uint32_t domid, uint32_t devid,
                              const uint8_t mac[6], const char *bridge);
int netfront_toolstack_detach(uint32_t backend_domid, uint32_t domid, uint32_t devid,
                              int timeout_ms);
int netfront_toolstack_destroy_domain(uint32_t domid);
/* The toolstack (dom0) writes KEY=VALUE into the vif's backend directory:
 * for values only a broken or hostile toolstack would write. */
int netfront_toolstack_set_backend(uint32_t backend_domid, uint32_t domid, uint32_t devid,
                                   const char *key, const char *value);

#endif
