/* 802.1Q VLANs: each port's mode (access or trunk), as the kernel bridge
 * with vlan_filtering 1 and Open vSwitch's tag=/trunks= have it.
 *
 * A port is an access port of one VID (untagged on the wire; default VID 1,
 * the kernel bridge's pvid 1) or a trunk: a set of VIDs sent and taken
 * tagged, and optionally a native VID that is sent and taken untagged. The
 * workers see a port's mode as an immutable struct port_vlan published with
 * RCU (NULL: the default, access VID 1). Inside the bridge a frame is
 * untagged with its VID beside it (worker.c); the FDB is keyed by (VID, MAC).
 *
 * The kernel fast path knows no VLANs: a port whose mode is not the default
 * is held out of it (xbr_fastpath_port_hold), so all its frames go through
 * the workers. 802.1ad (0x88a8) outer tags are dropped and counted on every
 * port (rx_drop_vlan): there is no Q-in-Q. */
#include "bridge/private.h"
#include "ctl/ctl.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-qsbr.h>

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

static const struct port_vlan vlan_default = {
    .trunk = false,
    .pvid = XBR_VLAN_DEFAULT,
    .member = {[XBR_VLAN_DEFAULT / 64] = 1ull << (XBR_VLAN_DEFAULT % 64)},
};

const struct port_vlan *xbr_vlan_of(const struct port *p)
{
    const struct port_vlan *v = rcu_dereference(p->vlan);
    return v ? v : &vlan_default;
}

static int parse_vid(const char *s, uint16_t *vid, char *err, size_t errlen)
{
    uint64_t v;
    if (xbr_parse_uint(s, 0, UINT16_MAX, &v) < 0 || v < 1 || v > XBR_VLAN_MAX)
        return ERR("invalid VLAN id '%s' (1-%u)", s, XBR_VLAN_MAX);
    *vid = (uint16_t)v;
    return 0;
}

/* "10,20,30-40" into the member bitmap. */
static int parse_vids(const char *s, struct port_vlan *v, char *err, size_t errlen)
{
    char buf[4096];
    if (!*s || strlen(s) >= sizeof(buf))
        return ERR("invalid VLAN list '%s' (VID[,VID|VID-VID...])", s);
    snprintf(buf, sizeof(buf), "%s", s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(tok, '-');
        uint16_t lo, hi;
        if (dash)
            *dash = '\0';
        if (parse_vid(tok, &lo, err, errlen) < 0)
            return -EINVAL;
        hi = lo;
        if (dash && parse_vid(dash + 1, &hi, err, errlen) < 0)
            return -EINVAL;
        if (hi < lo)
            return ERR("invalid VLAN range '%s-%s' (low-high)", tok, dash + 1);
        for (unsigned id = lo; id <= hi; id++)
            xbr_vlan_set_bit(v->member, (uint16_t)id);
    }
    /* strtok_r skips empty pieces; ",," or a trailing comma is a typo. */
    if (s[0] == ',' || s[strlen(s) - 1] == ',' || strstr(s, ",,"))
        return ERR("invalid VLAN list '%s' (VID[,VID|VID-VID...])", s);
    return 0;
}

int xbr_vlan_parse(int argc, char **argv, struct port_vlan *v, char *err, size_t errlen)
{
    memset(v, 0, sizeof(*v));
    if (argc == 2 && !strcmp(argv[0], "access")) {
        if (parse_vid(argv[1], &v->pvid, err, errlen) < 0)
            return -EINVAL;
        xbr_vlan_set_bit(v->member, v->pvid);
        return 0;
    }
    if ((argc == 2 || argc == 4) && !strcmp(argv[0], "trunk")) {
        v->trunk = true;
        if (parse_vids(argv[1], v, err, errlen) < 0)
            return -EINVAL;
        if (argc == 4) {
            if (strcmp(argv[2], "native"))
                return ERR("usage: vlan access VID | vlan trunk VIDS [native VID]");
            if (parse_vid(argv[3], &v->pvid, err, errlen) < 0)
                return -EINVAL;
            xbr_vlan_set_bit(v->member, v->pvid);
        }
        return 0;
    }
    return ERR("usage: vlan access VID | vlan trunk VIDS [native VID]");
}

/* The trunk's VIDs as ranges, native excluded unless it is also tagged
 * (it is not: the native VID is only ever untagged). */
static void format_vids(const struct port_vlan *v, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (unsigned id = 1; id <= XBR_VLAN_MAX && n < len; id++) {
        if (!xbr_vlan_has(v, (uint16_t)id) || id == v->pvid)
            continue;
        unsigned hi = id;
        while (hi + 1 <= XBR_VLAN_MAX && hi + 1 != v->pvid && xbr_vlan_has(v, (uint16_t)(hi + 1)))
            hi++;
        int w = hi == id ? snprintf(buf + n, len - n, "%s%u", n ? "," : "", id)
                         : snprintf(buf + n, len - n, "%s%u-%u", n ? "," : "", id, hi);
        n += w > 0 ? (size_t)w : 0;
        id = hi;
    }
}

void xbr_vlan_format(const struct port_vlan *v, char *buf, size_t len)
{
    if (!v->trunk) {
        snprintf(buf, len, "access %u", v->pvid);
        return;
    }
    char vids[XBR_VLAN_SPEC_MAX];
    format_vids(v, vids, sizeof(vids));
    if (!vids[0] && v->pvid) /* only a native VID: as the parser takes it */
        snprintf(vids, sizeof(vids), "%u", v->pvid);
    if (v->pvid)
        snprintf(buf, len, "trunk %s native %u", vids, v->pvid);
    else
        snprintf(buf, len, "trunk %s", vids);
}

bool xbr_vlan_is_default(const struct port_vlan *v)
{
    return !memcmp(v, &vlan_default, sizeof(*v));
}

int xbr_vlan_port_set(struct port *p, const struct port_vlan *v, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    const struct port_vlan *old = xbr_vlan_of(p);
    if (!memcmp(old, v, sizeof(*v)))
        return 0;
    bool dflt = xbr_vlan_is_default(v);
    struct port_vlan *nv = NULL;
    if (!dflt) {
        nv = xbr_xzalloc(sizeof(*nv));
        *nv = *v;
        /* Out of the fast path before any frame is classified the new
         * way: the kernel knows VID 1 untagged only. */
        if (!p->vlan_held) {
            xbr_fastpath_port_hold(p, true);
            p->vlan_held = true;
        }
    }
    struct port_vlan *prev = p->vlan;
    rcu_assign_pointer(p->vlan, nv);
    urcu_qsbr_synchronize_rcu();
    free(prev);
    /* What it learned belongs to VLANs it may no longer carry. */
    (void)fdb_flush(p->bridge->fdb, p->no, false);
    if (dflt && p->vlan_held) {
        p->vlan_held = false;
        xbr_fastpath_port_hold(p, false);
    }
    char spec[XBR_VLAN_SPEC_MAX];
    xbr_vlan_format(v, spec, sizeof(spec));
    xbr_info("%s: port %s vlan %s", p->bridge->name, p->name, spec);
    return 0;
}

void xbr_vlan_port_free(struct port *p)
{
    free(p->vlan);
    p->vlan = NULL;
}

int xbr_vlan_cmd(struct port *p, int argc, char **argv, char *err, size_t errlen)
{
    struct port_vlan v;
    if (xbr_vlan_parse(argc, argv, &v, err, errlen) < 0)
        return -EINVAL;
    return xbr_vlan_port_set(p, &v, err, errlen);
}

/* vlan show BR */
static int cmd_vlan_show(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                         void *aux)
{
    (void)argc, (void)aux;
    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    const struct port_table *t = br->ports;
    ctl_out_text(o, "%-15s  %-6s  %-6s  %s\n", "port", "mode", "pvid", "vlans");
    ctl_out_open_array(o, NULL);
    for (unsigned i = 0; i < t->n_ports; i++) {
        const struct port *p = t->slot[t->list[i]];
        const struct port_vlan *v = xbr_vlan_of(p);
        char vids[XBR_VLAN_SPEC_MAX];
        format_vids(v, vids, sizeof(vids));
        ctl_out_open_object(o, NULL);
        ctl_out_str(o, "port", "%-15s", p->name);
        ctl_out_str(o, "mode", "  %-6s", v->trunk ? "trunk" : "access");
        if (v->pvid)
            ctl_out_u64(o, "pvid", "  %-6llu", v->pvid);
        else
            ctl_out_str_or_null(o, "pvid", "  %-6s", NULL);
        ctl_out_str(o, "tagged", "  %s", v->trunk ? vids : "");
        ctl_out_text(o, "\n");
        ctl_out_close_object(o);
    }
    ctl_out_close_array(o);
    return 0;
}

void xbr_vlan_register_commands(void)
{
    (void)ctl_register("vlan show", 1, 1, "BR", cmd_vlan_show, NULL);
}
