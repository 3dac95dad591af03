/* The maps shared by fastpath.bpf.c and fastpath.c: their keys and values.
 * Included by BPF code and by C code, so only fixed-width types and no
 * padding the two compilers could lay out differently. */
#ifndef XBR_FASTPATH_ABI_H
#define XBR_FASTPATH_ABI_H

#include <linux/types.h>

/* ports: ifindex -> the port behind it; egress: (bridge, port no) -> the
 * same record, for the destination found in the FDB. */
struct fp_port {
    __u32 ifindex;
    __u32 bridge;     /* bridge id (fp_bridge_add) */
    __u32 port_no;    /* the port's slot in its bridge, as the FDB stores it */
    __u32 mtu;        /* egress MTU (L3) */
    __u32 forwarding; /* STP state is forwarding (1) or anything else (0) */
    __u32 enabled;    /* the fast path may take this port's frames */
};

static inline __u32 fp_port_key(__u32 bridge, __u32 port_no) { return bridge << 16 | port_no; }

/* fdb: (bridge, VLAN, MAC) -> port: the daemon's FDB entries, mirrored. */
struct fp_fdb_key {
    __u32 bridge;
    __u16 vlan;
    __u8 mac[6];
};

struct fp_fdb_val {
    __u64 notified_ns; /* when the daemon was last told this source is active */
    __u32 port_no;
    __u32 is_static;
};

/* bridges: bridge id -> settings. */
struct fp_bridge {
    /* A source refreshes its FDB entry in the daemon at least this often
     * (a learn-only notification), so fast-pathed traffic keeps it alive. */
    __u64 refresh_ns;
};

/* stats (per CPU): fp_port_key -> what the fast path forwarded. */
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
    __u32 in_key, out_key; /* fp_port_key of both ports, for the counters */
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
