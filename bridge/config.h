/* config — the configuration file as the desired state of the daemon, and
 * the running state written back in the same form (`xbrctl save`).
 *
 * The file
 *   One xbrctl command per line, '#' comments. Only the commands that
 *   declare state are configuration statements:
 *     add-br BR
 *     add-port BR NAME [--type afpacket|afxdp|tap] [--force] [--port-no N]
 *     add-port BR NAME --type vxlan --vni N --local IP [--remote IP[,IP...]]
 *              [--group MCAST] [--dstport PORT] [--port-no N]
 *                                 (a vxlan port whose settings differ from
 *                                  the running one's is re-created)
 *     set-ageing BR SECONDS
 *     stp set BR KEY VALUE        (enabled priority hello-time max-age
 *                                  forward-delay force-version tx-hold-count)
 *     port set BR PORT KEY VALUE  (priority path-cost admin-edge auto-edge
 *                                  point-to-point bpdu-guard root-guard bpdu-filter)
 *     fdb add BR MAC PORT [vlan VID] [dst IP]
 *     mirror add BR NAME --src PORT[,PORT...] [--direction D] --dst PORT
 *                                 (its ports need not be declared: vifs)
 *   A bridge is declared (add-br) before it is used, a port before its
 *   settings or static entries; a later setting of the same key wins.
 *   Actions (del-port, fdb flush, port enable, mcheck) are not statements.
 *
 * Applying: a three-way merge (the kubectl apply habit)
 *   The daemon remembers the file it applied last. Applying a new one
 *   compares three things: the last file, the new file and the running
 *   state.
 *   - A bridge, port or static entry of the new file that is not running
 *     (or runs with another type, bridge or port number) is created
 *     (re-created); one that runs as declared is not touched at all.
 *   - One the last file declared and the new one does not is removed.
 *   - A setting of the new file is made so where the running value differs;
 *     a setting the last file had and the new one dropped goes back to its
 *     default.
 *   - Whatever no file ever declared (ports added, settings changed with
 *     xbrctl at run time, netback vifs) is left as it is.
 *   Removals go first, then bridges, their settings, ports, port settings
 *   and static entries. Every change runs through the same command handler
 *   as `xbrctl` (same checks, same effects). A change that fails is logged
 *   with its file and line and the others go on; the spanning tree timers
 *   (whose valid values depend on each other) are retried until no more
 *   succeed, so the order of their lines does not matter.
 *   At start the last file is empty: everything is created. A line with a
 *   syntax error is then logged and skipped; on a reload (SIGHUP, `xbrctl
 *   reload`) a syntax error anywhere refuses the whole file and nothing
 *   changes, since skipping one port's line would remove that port.
 *
 * Control thread only.
 */
#ifndef XBR_BRIDGE_CONFIG_H
#define XBR_BRIDGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct ctl_out;

/* The file xbrd -c named (NULL: none). */
void xbr_cfg_set_path(const char *path);
const char *xbr_cfg_path(void);

/* Reads the file and applies it (see above). at_start: skip bad lines
 * instead of refusing the file. Returns 0 when everything applied, -EINVAL
 * when the file was refused (syntax; nothing changed), -EIO when some
 * changes failed, -ENOENT without a file; err gets one line about it and
 * *n_changes (if not NULL) how many changes were made. */
int xbr_cfg_reload(bool at_start, unsigned *n_changes, char *err, size_t errlen);

/* add-port succeeded with these XBR_PORT_F_* flags (for save). */
void xbr_cfg_note_port(const char *name, unsigned flags);

/* Netback's `vif antispoof` changed (for save and for reload's difference). */
void xbr_cfg_note_vif_antispoof(bool on);

/* Writes the running configuration, as statements, to o (text). */
void xbr_cfg_save(struct ctl_out *o);

/* Frees what is remembered (at exit). */
void xbr_cfg_fini(void);

#endif
