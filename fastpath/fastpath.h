/* fastpath — known unicast between two kernel interfaces forwarded inside
 * the kernel, with the daemon as its control plane and slow path.
 *
 * Why
 *   An AF_PACKET port costs every frame two trips across the user/kernel
 *   boundary: a copy into the receive ring and a new skb on transmit. On a
 *   2-core host that is what kept xbr behind the kernel bridge (measured:
 *   0.47-0.55 Mpps against the bridge's 0.73-0.97 at 60 B). For frames whose
 *   fate is already known — a learned source on its own port, a learned
 *   destination on another forwarding port of the same bridge — the kernel
 *   can redirect the same skb directly (1.08-1.20 Mpps in the same rig).
 *
 * How (fastpath.bpf.c)
 *   A socket filter on each of the port's AF_PACKET receive sockets makes
 *   the one decision: fast path, or the daemon's ring as before. An
 *   ingress program (TCX or tc), which the kernel runs right after the taps for the
 *   same frame on the same CPU, carries out what the filter decided
 *   (bpf_redirect) and counts it. Everything the daemon does beyond
 *   forwarding one unicast frame stays in the daemon: flooding, learning
 *   and moves, BPDUs and the STP gate, MTU drops and their counters, VLAN
 *   tags. So the fast path changes no decision, only where it is carried
 *   out. Source entries stay alive: about once per refresh interval a
 *   fast-pathed source also reaches the daemon as a 14-byte learn-only
 *   notification (FP_SNAP_NOTIFY), and the daemon's FDB ages as before.
 *
 * Mirror
 *   The daemon mirrors its FDB into a BPF hash map (fp_fdb_set/del) and
 *   each port's STP state and MTU into a port map (fp_port_update). A
 *   frame sees either the old or the new state of each entry; between the
 *   daemon's change and the map update (microseconds) the fast path acts on
 *   the previous state, like a hardware switch whose table is written by
 *   its CPU.
 *
 * Hooks and failure
 *   The redirect hangs off TCX (Linux 6.6+), a BPF link owned by the
 *   daemon's fd, or, on older kernels, a classic tc filter (clsact). If the
 *   daemon dies, its sockets close and the socket filter with them, and a
 *   TCX link goes too; a classic tc filter stays but finds no verdict and
 *   lets every frame pass: inert, and replaced by the next daemon's. Where
 *   BPF cannot be loaded (old kernel, no CAP_BPF) fp_init fails with a
 *   reason and the daemon runs without.
 *
 * Threads: every function here runs on the control thread only. */
#ifndef XBR_FASTPATH_H
#define XBR_FASTPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fastpath/fastpath-abi.h"

/* Loads the programs and maps; fdb_entries sizes the FDB mirror. Returns 0
 * or a negative errno with the reason in err. */
int fp_init(uint32_t fdb_entries, char *err, size_t errlen);
void fp_fini(void);
bool fp_loaded(void);

/* A bridge's settings (created or changed) and its removal, which also
 * removes its FDB mirror. */
int fp_bridge_set(uint32_t bridge, uint64_t refresh_ns);
void fp_bridge_del(uint32_t bridge);

/* Attaches the decision to the port's receive sockets and the redirect to
 * its interface's tc ingress, and creates its map entries, disabled. */
int fp_port_attach(uint32_t bridge, uint32_t port_no, int ifindex, const int *rx_fds,
                   unsigned n_fds, char *err, size_t errlen);
/* What the fast path may do with the port: take its frames and send to it
 * (enabled, forwarding), and its egress MTU. */
int fp_port_update(uint32_t bridge, uint32_t port_no, uint32_t mtu, bool forwarding,
                   bool enabled);
/* Undoes fp_port_attach (the sockets may already be closed). */
void fp_port_detach(uint32_t bridge, uint32_t port_no, const int *rx_fds, unsigned n_fds);

/* How the port's redirect is hooked in: "tcx" (a link owned by xbrd, gone
 * with it) or "tc" (a classic filter, inert without xbrd); NULL if the port
 * is not attached. */
const char *fp_port_hook(uint32_t bridge, uint32_t port_no);

struct fp_port_counts {
    uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
};
/* What the fast path forwarded from and to the port, summed over CPUs. */
void fp_port_counts(uint32_t bridge, uint32_t port_no, struct fp_port_counts *c);

/* The FDB mirror. */
int fp_fdb_set(uint32_t bridge, uint16_t vlan, const uint8_t mac[6], uint32_t port_no,
               bool is_static);
void fp_fdb_del(uint32_t bridge, uint16_t vlan, const uint8_t mac[6]);
/* Removes every mirrored entry of the bridge for which keep() is false. */
size_t fp_fdb_prune(uint32_t bridge, bool (*keep)(uint16_t vlan, const uint8_t mac[6], void *aux),
                    void *aux);
/* Entries in the mirror (all bridges), and failed writes (map full). */
uint32_t fp_fdb_count(void);
uint64_t fp_fdb_errors(void);
/* Frames kept from the daemon that tc then did not redirect (lost); a bug
 * or a foreign tc filter if ever non-zero. */
uint64_t fp_orphaned(void);

#endif
