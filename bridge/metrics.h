/* metrics — the daemon's counters in the Prometheus text exposition format
 * (version 0.0.4), for node_exporter's textfile collector.
 *
 * What is exported
 *   Every number of `xbrctl show`, `xbrctl stats BR` and `xbrctl stp show
 *   BR`, taken from the very handlers that print them (through a visitor
 *   ctl_out), so the metrics cannot drift from the CLI: per bridge
 *   (xbr_bridge_*, xbr_stp_*), per port (xbr_port_*, xbr_stp_port_*, labels
 *   bridge, port, type) and, for netback vifs, what the port class shows
 *   (xbr_vif_*, with domid and devid labels from the vif's name vifD.N).
 *   Strings become labels of an *_info metric whose value is 1. Counters end
 *   in _total. A number the mapping does not know yet is exported untyped
 *   (tests fail on that, so a new counter gets classified).
 *
 * Why a textfile rather than an HTTP endpoint
 *   xbrd runs as root in dom0, the most privileged domain of the host; a
 *   file adds no listening socket and no HTTP parser to it. node_exporter
 *   is the agent Prometheus users already run on hosts; its textfile
 *   collector validates the file and serves it with the host's other
 *   metrics. The file is written atomically (temporary file + rename) every
 *   interval, and removed when xbrd stops cleanly; after a crash it goes
 *   stale, which xbr_metrics_timestamp_seconds (and node_exporter's
 *   node_textfile_mtime_seconds) shows.
 *
 * Control thread only.
 */
#ifndef XBR_BRIDGE_METRICS_H
#define XBR_BRIDGE_METRICS_H

#include <stddef.h>

struct ctl_out;

/* Renders the whole exposition into o (text mode). */
void xbr_metrics_render(struct ctl_out *o);

/* Writes path now and then every interval_s seconds. Returns 0, or
 * -errno with err filled (directory missing, not writable). */
int xbr_metrics_start(const char *path, unsigned interval_s, char *err, size_t errlen);
/* Stops writing and removes the file. Safe without a start. */
void xbr_metrics_stop(void);

#endif
