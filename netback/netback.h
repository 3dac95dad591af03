/* netback — serves Xen guests' network frontends (vif rings) from user
 * space and attaches each vif to a bridge as a port of class "netback".
 *
 * Runs on the daemon's control thread: nb_start() opens xenstore and the
 * grant device and watches /local/domain/<self>/backend/vif (self from
 * $XBR_NETBACK_DOMID, default 0); vif ports come and go with the guests.
 * Call it after the workers started and the start-up configuration created
 * the bridges.
 * See README.md, section "Netback", and nb-private.h for ring ownership.
 */
#ifndef XBR_NETBACK_H
#define XBR_NETBACK_H

#include <stddef.h>

/* The "vif ..." control commands, before the configuration file is applied
 * (it may say `vif antispoof on`); they answer "netback is not running" until
 * nb_start succeeds, except `vif antispoof`, which only sets the default. */
void nb_register_commands(void);

/* Returns 0, or a negative errno with a message in err (no xenstore, no
 * grant device: the daemon then runs without netback). */
int nb_start(char *err, size_t errlen);
/* Takes every vif port off its bridge, unmaps and unbinds, and closes
 * xenstore. Xenstore is left as it is, so that a restarted xbrd picks the
 * guests up again. Safe to call when nb_start failed or was not called. */
void nb_stop(void);

#endif
