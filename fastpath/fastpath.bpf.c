/* The in-kernel fast path (see fastpath.h for the design): two programs.
 *
 * fp_decide, a socket filter on each of the daemon's AF_PACKET receive
 * sockets, decides for every frame of a fast-path port. A frame that the
 * daemon would forward as known unicast to one other fast-path port, with
 * no other effect, is kept out of the daemon's ring and handed to fp_xmit
 * through the per-CPU verdict slot; everything else (unknown source or
 * destination, moves, multicast, BPDUs, STP gates, MTU drops, VLAN tags)
 * is accepted whole and takes the daemon's slow path, which counts and
 * decides exactly as without the fast path.
 *
 * fp_xmit, on the port's tc ingress hook, runs next for the same frame on
 * the same CPU (taps, our socket among them, come before tc ingress). It
 * redirects the frames fp_decide picked and counts them; any other frame
 * continues as if nothing were attached. A filter left behind by a daemon
 * that died is inert: without the socket nobody writes verdicts. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "fastpath-abi.h"

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, FP_MAX_IFINDEX);
    __type(key, __u32);
    __type(value, __u32);
} ifslot SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, FP_MAX_SLOTS);
    __type(key, __u32);
    __type(value, struct fp_port);
} ports SEC(".maps");

/* Sized by the loader (bpf_map__set_max_entries) from the FDB limits. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __uint(max_entries, 65536);
    __type(key, struct fp_fdb_key);
    __type(value, struct fp_fdb_val);
} fdb SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, FP_MAX_SLOTS);
    __type(key, __u32);
    __type(value, struct fp_stats);
} stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct fp_verdict);
} verdict SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct fp_health);
} health SEC(".maps");

#define ACCEPT 0xffffffffu

static __always_inline int mac_is_multicast(const __u8 *m) { return m[0] & 1; }
static __always_inline int mac_is_zero(const __u8 *m)
{
    return !(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]);
}

/* The L3 length of the frame on the wire, per segment for a GSO frame:
 * the IP and TCP/UDP headers once, plus gso_size. 0: cannot tell (the
 * slow path then decides). */
static __always_inline __u32 l3_len(struct __sk_buff *skb, __u32 len, __u32 gso_size,
                                    __u16 proto)
{
    if (!gso_size)
        return len - ETH_HLEN;
    __u32 l4, l4proto;
    if (proto == bpf_htons(ETH_P_IP)) {
        __u8 vihl, p;
        if (bpf_skb_load_bytes(skb, ETH_HLEN, &vihl, 1) ||
            bpf_skb_load_bytes(skb, ETH_HLEN + 9, &p, 1))
            return 0;
        l4 = (vihl & 0xf) * 4u;
        l4proto = p;
    } else if (proto == bpf_htons(ETH_P_IPV6)) {
        __u8 nh;
        if (bpf_skb_load_bytes(skb, ETH_HLEN + 6, &nh, 1))
            return 0;
        l4 = 40;
        l4proto = nh; /* extension headers: not TCP/UDP, slow path */
    } else {
        return 0;
    }
    __u32 hdr;
    if (l4proto == IPPROTO_TCP) {
        __u8 doff;
        if (bpf_skb_load_bytes(skb, ETH_HLEN + l4 + 12, &doff, 1))
            return 0;
        hdr = l4 + (doff >> 4) * 4u;
    } else if (l4proto == IPPROTO_UDP) {
        hdr = l4 + 8;
    } else {
        return 0;
    }
    return hdr + gso_size;
}

SEC("socket")
int fp_decide(struct __sk_buff *skb)
{
    /* Context fields are read once, here: the verifier refuses a context
     * pointer that the compiler kept and offset for a later read. */
    __u32 ifindex = skb->ifindex, len = skb->len, gso_size = skb->gso_size;
    __u32 vlan_present = skb->vlan_present, pkt_type = skb->pkt_type, zero = 0;
    struct fp_verdict *v = bpf_map_lookup_elem(&verdict, &zero);
    if (!v)
        return ACCEPT;
    if (v->valid) {
        struct fp_health *h = bpf_map_lookup_elem(&health, &zero);
        if (h)
            h->orphaned++;
    }
    v->valid = 0;
    /* What the port itself sent: never the bridge's input (a fanout group
     * delivers it on kernels without PACKET_FANOUT_FLAG_IGNORE_OUTGOING). */
    if (pkt_type == PACKET_OUTGOING)
        return FP_SNAP_NONE;

    __u32 *slotp = bpf_map_lookup_elem(&ifslot, &ifindex);
    if (!slotp || !*slotp)
        return ACCEPT;
    __u32 in_slot = *slotp - 1;
    struct fp_port *in = bpf_map_lookup_elem(&ports, &in_slot);
    if (!in || !in->enabled || !in->forwarding)
        return ACCEPT;
    if (vlan_present || len < ETH_HLEN)
        return ACCEPT;
    struct {
        __u8 dst[6], src[6];
        __u16 proto;
    } eth;
    if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)))
        return ACCEPT;
    /* Multicast (flooding, BPDUs), tagged frames (VLANs are the slow path's
     * to interpret), bad sources: the slow path. */
    if (mac_is_multicast(eth.dst) || mac_is_multicast(eth.src) || mac_is_zero(eth.src) ||
        eth.proto == bpf_htons(ETH_P_8021Q) || eth.proto == bpf_htons(ETH_P_8021AD))
        return ACCEPT;

    struct fp_fdb_key k = {.bridge = in->bridge, .vlan = 1}; /* VID 1: the only VLAN of fast-path ports */
    __builtin_memcpy(k.mac, eth.src, 6);
    struct fp_fdb_val *src = bpf_map_lookup_elem(&fdb, &k);
    /* An unknown source, or one that moved here: the daemon learns it. */
    if (!src || src->slot != in_slot)
        return ACCEPT;
    __builtin_memcpy(k.mac, eth.dst, 6);
    struct fp_fdb_val *dst = bpf_map_lookup_elem(&fdb, &k);
    if (!dst || dst->slot == in_slot)
        return ACCEPT; /* flooded, or filtered (and counted) by the daemon */
    __u32 out_slot = dst->slot;
    struct fp_port *out = bpf_map_lookup_elem(&ports, &out_slot);
    if (!out || !out->enabled || !out->forwarding || out->bridge != in->bridge)
        return ACCEPT;
    __u32 len3 = l3_len(skb, len, gso_size, eth.proto);
    if (!len3 || len3 > out->mtu)
        return ACCEPT; /* the daemon drops and counts it */

    v->ifindex = ifindex;
    v->len = len;
    v->out_ifindex = out->ifindex;
    v->in_slot = in_slot;
    v->out_slot = out_slot;
    __builtin_memcpy(v->eth, &eth, 12);
    v->valid = 1;

    if (!src->is_static) {
        __u64 now = bpf_ktime_get_coarse_ns();
        if (now - src->notified_ns >= in->refresh_ns) {
            /* Tell the daemon the source is alive (it refreshes its FDB
             * entry); the frame itself still goes the fast path. */
            src->notified_ns = now;
            return FP_SNAP_NOTIFY;
        }
    }
    return FP_SNAP_NONE;
}

SEC("tc")
int fp_xmit(struct __sk_buff *skb)
{
    __u32 zero = 0, ifindex = skb->ifindex, len = skb->len;
    const __u8 *data = (const __u8 *)(long)skb->data;
    const __u8 *end = (const __u8 *)(long)skb->data_end;
    struct fp_verdict *v = bpf_map_lookup_elem(&verdict, &zero);
    if (!v || !v->valid || v->ifindex != ifindex || v->len != len)
        return TC_ACT_OK;
    v->valid = 0;
    if (data + 12 > end)
        return TC_ACT_OK;
#pragma unroll
    for (int i = 0; i < 12; i++)
        if (data[i] != v->eth[i])
            return TC_ACT_OK;
    struct fp_stats *s = bpf_map_lookup_elem(&stats, &v->in_slot);
    if (s) {
        s->rx_packets++;
        s->rx_bytes += len;
    }
    s = bpf_map_lookup_elem(&stats, &v->out_slot);
    if (s) {
        s->tx_packets++;
        s->tx_bytes += len;
    }
    return bpf_redirect(v->out_ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
