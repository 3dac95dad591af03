/* The maps shared by fastpath.bpf.c and fastpath.c: their keys and values.
 * Included by BPF code and by C code, so only fixed-width types and no
 * padding the two compilers could lay out differently.
 *
 * Every attached port has a slot (0 .. FP_MAX_SLOTS-1, unique across
 * bridges): the per-port maps are arrays indexed by it, which the verifier
 * turns into a plain address computation, so that a frame costs two hash
 * lookups (its source and its destination in the FDB), as in the kernel
 * bridge, and nothing else that searches. */
#ifndef XBR_FASTPATH_ABI_H
#define XBR_FASTPATH_ABI_H

#include <linux/types.h>

#define FP_MAX_SLOTS 4096u
/* Interfaces the fast path can attach: ifindex below this. */
#define FP_MAX_IFINDEX 65536u

/* ifslot: ifindex -> slot + 1 (0: not a fast-path port). */

/* ports: slot -> the port behind it. */
struct fp_port {
    __u32 ifindex;
    __u32 bridge;     /* bridge id (the FDB key's) */
    __u32 mtu;        /* egress MTU (L3) */
    __u32 forwarding; /* STP state is forwarding (1) or anything else (0) */
    __u32 enabled;    /* the fast path may take this port's frames (0: free slot) */
    __u32 pad_;
    /* A source seen by the fast path tells the daemon so at least this often
     * (its bridge's, copied to each port to spare a lookup per frame). */
    __u64 refresh_ns;
};

/* fdb: (bridge, VLAN, MAC) -> the slot of its port: the daemon's FDB entries
 * on fast-path ports, mirrored. */
struct fp_fdb_key {
    __u32 bridge;
    __u16 vlan;
    __u8 mac[6];
};

struct fp_fdb_val {
    __u64 notified_ns; /* when the daemon was last told this source is active */
    __u32 slot;
    __u32 is_static;
};

/* stats (per CPU): slot -> what the fast path forwarded. */
struct fp_stats {
    __u64 rx_packets, rx_bytes; /* taken in on this port */
    __u64 tx_packets, tx_bytes; /* sent out on this port */
};

/* verdict (per CPU, one slot): the socket filter's decision, consumed by
 * the tc program that runs right after it on the same CPU for the same
 * frame (taps come before tc ingress in __netif_receive_skb_core). */
struct fp_verdict {
    __u32 ifindex;     /* ingress device the decision was made for */
    __u32 len;         /* skb->len it was made for */
    __u32 out_ifindex; /* redirect here */
    __u32 in_slot, out_slot;
    __u32 valid;
    /* The frame's destination and source: a verdict left over (another tc
     * filter ran first and dropped its frame) can then only ever apply to
     * a frame that would have got the same verdict. */
    __u8 eth[12];
};

/* health (per CPU, one slot): what should never happen, counted. */
struct fp_health {
    /* A verdict that no tc run took: its frame was kept from the daemon and
     * not redirected either, so it was lost (another tc filter ran first and
     * dropped it, or the tc program is missing). */
    __u64 orphaned;
};

/* What the socket filter returns to keep a frame from the daemon's ring
 * altogether, and the snap length of a learn-only notification (the
 * Ethernet header; the frame itself went the fast path). */
#define FP_SNAP_NONE 0u
#define FP_SNAP_NOTIFY 14u

#endif
