/* Bridges and their port tables: configuration on the control thread,
 * published to the workers with RCU. */
#include "bridge/private.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <urcu-qsbr.h>

static struct xbr_bridge **bridges;
static size_t n_bridges;
static const struct port_class *extra_classes[8];

struct dp_view *xbr_dp_view;
atomic_bool xbr_stopping;

int xbr_if_ioctl(unsigned long req, struct ifreq *ifr)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    int r = ioctl(s, req, ifr) < 0 ? -errno : 0;
    close(s);
    return r;
}

size_t xbr_bridge_count(void) { return n_bridges; }
struct xbr_bridge *xbr_bridge_at(size_t i) { return i < n_bridges ? bridges[i] : NULL; }
const char *xbr_bridge_name(const struct xbr_bridge *br) { return br->name; }

struct xbr_bridge *xbr_bridge_find(const char *name)
{
    for (size_t i = 0; i < n_bridges; i++)
        if (!strcmp(bridges[i]->name, name))
            return bridges[i];
    return NULL;
}

struct port *xbr_port_find(const struct xbr_bridge *br, const char *name)
{
    return xbr_port_table_find(br->ports, name);
}

struct port *xbr_port_table_find(const struct port_table *t, const char *name)
{
    for (unsigned i = 0; i < t->n_ports; i++)
        if (!strcmp(t->slot[t->list[i]]->name, name))
            return t->slot[t->list[i]];
    return NULL;
}

struct port *xbr_port_find_any(const char *name)
{
    for (size_t i = 0; i < n_bridges; i++) {
        struct port *p = xbr_port_find(bridges[i], name);
        if (p)
            return p;
    }
    return NULL;
}

void xbr_port_class_register(const struct port_class *cls)
{
    for (size_t i = 0; i < XBR_ARRAY_SIZE(extra_classes); i++)
        if (!extra_classes[i] || extra_classes[i] == cls) {
            extra_classes[i] = cls;
            return;
        }
    abort(); /* a programming error: more classes than slots */
}

const struct port_class *xbr_port_class_find(const char *type)
{
    if (!strcmp(type, port_afpacket_class.type))
        return &port_afpacket_class;
    if (!strcmp(type, port_tap_class.type))
        return &port_tap_class;
    if (!strcmp(type, port_vxlan_class.type))
        return &port_vxlan_class;
#ifdef XBR_HAVE_AFXDP
    if (!strcmp(type, port_afxdp_class.type))
        return &port_afxdp_class;
#endif
    for (size_t i = 0; i < XBR_ARRAY_SIZE(extra_classes) && extra_classes[i]; i++)
        if (!strcmp(type, extra_classes[i]->type))
            return extra_classes[i];
    return NULL;
}

void xbr_port_get_stats(const struct port *p, struct port_stats *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (unsigned w = 0; w < xbr_n_workers(); w++) {
        const uint64_t *src = (const uint64_t *)&p->stats[w];
        uint64_t *dst = (uint64_t *)sum;
        /* port_stats is nothing but uint64_t counters plus alignment
         * padding, which is zeroed and never written: sum it all, so that
         * a counter added later cannot be left out. */
        for (size_t i = 0; i < sizeof(struct port_stats) / sizeof(uint64_t); i++)
            dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    }
    xbr_fastpath_add_counts(p, sum);
}

/* Rebuilds the workers' view from all bridges and publishes it. The old
 * view is freed after a grace period by the caller's synchronize. */
static struct dp_view *publish_dp_view(void)
{
    size_t total = 0;
    for (size_t i = 0; i < n_bridges; i++)
        total += bridges[i]->ports->n_ports;
    struct dp_view *v = xbr_xzalloc(sizeof(*v) + total * sizeof(v->ports[0]));
    struct dp_view *old = xbr_dp_view;
    v->gen = old ? old->gen + 1 : 1;
    for (size_t i = 0; i < n_bridges; i++) {
        const struct port_table *t = bridges[i]->ports;
        for (unsigned j = 0; j < t->n_ports; j++)
            v->ports[v->n++] = t->slot[t->list[j]];
    }
    rcu_assign_pointer(xbr_dp_view, v);
    xbr_workers_kick();
    return old;
}

int xbr_bridge_add(const char *name, char *err, size_t errlen)
{
    if (!name[0] || strlen(name) >= IF_NAMESIZE || strchr(name, '/') || strchr(name, ' ')) {
        snprintf(err, errlen, "invalid bridge name '%s' (1-%d characters, no '/' or spaces)",
                 name, IF_NAMESIZE - 1);
        return -EINVAL;
    }
    if (xbr_bridge_find(name)) {
        snprintf(err, errlen, "bridge %s already exists", name);
        return -EEXIST;
    }
    struct fdb *fdb = fdb_create(NULL);
    if (!fdb) {
        snprintf(err, errlen, "cannot create the forwarding database: %s", strerror(errno));
        return -ENOMEM;
    }
    struct xbr_bridge *br = xbr_xzalloc(sizeof(*br));
    (void)xbr_strlcpy(br->name, name, sizeof(br->name));
    br->fdb = fdb;
    br->ports = xbr_xzalloc(sizeof(*br->ports));
    int r = xbr_stp_bridge_init(br, err, errlen);
    if (r < 0) {
        fdb_destroy(fdb);
        free(br->ports);
        free(br);
        return r;
    }
    struct xbr_bridge **n = realloc(bridges, (n_bridges + 1) * sizeof(*n));
    if (!n)
        abort();
    bridges = n;
    bridges[n_bridges++] = br;
    xbr_fastpath_bridge_added(br);
    xbr_info("bridge %s created", name);
    return 0;
}

static void bridge_free(struct xbr_bridge *br)
{
    xbr_stp_bridge_fini(br);
    xbr_mirror_bridge_free(br);
    fdb_destroy(br->fdb);
    free(br->ports);
    free(br);
}

int xbr_bridge_del(const char *name, char *err, size_t errlen)
{
    struct xbr_bridge *br = xbr_bridge_find(name);
    if (!br) {
        snprintf(err, errlen, "no bridge named %s", name);
        return -ENOENT;
    }
    br->deleting = true;
    xbr_fastpath_bridge_removing(br);
    while (br->ports->n_ports) {
        struct port *p = br->ports->slot[br->ports->list[br->ports->n_ports - 1]];
        char name_copy[IF_NAMESIZE];
        memcpy(name_copy, p->name, sizeof(name_copy));
        (void)xbr_port_del(br, name_copy, err, errlen);
    }
    size_t i = 0;
    while (bridges[i] != br)
        i++;
    memmove(&bridges[i], &bridges[i + 1], (n_bridges - i - 1) * sizeof(*bridges));
    n_bridges--;
    /* No port of br is in any view any more; workers may still be inside a
     * burst that began earlier, so wait before freeing. */
    urcu_qsbr_synchronize_rcu();
    bridge_free(br);
    xbr_info("bridge %s deleted", name);
    return 0;
}

void xbr_bridges_destroy_all(void)
{
    char err[256];
    while (n_bridges) {
        char name[IF_NAMESIZE];
        memcpy(name, bridges[n_bridges - 1]->name, sizeof(name));
        (void)xbr_bridge_del(name, err, sizeof(err));
    }
    free(bridges);
    bridges = NULL;
    struct dp_view *old = xbr_dp_view;
    rcu_assign_pointer(xbr_dp_view, NULL);
    urcu_qsbr_synchronize_rcu();
    free(old);
}

static int port_add(struct xbr_bridge *br, int want_no, const char *name,
                    const struct port_class *cls, unsigned flags, void *class_arg,
                    const struct port_vlan *vlan, char *err, size_t errlen);

int xbr_port_add(struct xbr_bridge *br, const char *name, const struct port_class *cls,
                 unsigned flags, void *class_arg, char *err, size_t errlen)
{
    return port_add(br, -1, name, cls, flags, class_arg, NULL, err, errlen);
}

int xbr_port_add_vlan(struct xbr_bridge *br, const char *name, const struct port_class *cls,
                      unsigned flags, void *class_arg, const char *vlan, char *err,
                      size_t errlen)
{
    char buf[XBR_VLAN_SPEC_MAX], *argv[6], *save = NULL;
    int argc = 0;
    if (xbr_strlcpy(buf, vlan, sizeof(buf)) < 0) {
        snprintf(err, errlen, "VLAN spec too long");
        return -EINVAL;
    }
    for (char *t = strtok_r(buf, " ", &save); t && argc < 6; t = strtok_r(NULL, " ", &save))
        argv[argc++] = t;
    struct port_vlan v;
    if (xbr_vlan_parse(argc, argv, &v, err, errlen) < 0)
        return -EINVAL;
    return port_add(br, -1, name, cls, flags, class_arg, &v, err, errlen);
}

int xbr_port_add_at(struct xbr_bridge *br, int want_no, const char *name,
                    const struct port_class *cls, unsigned flags, void *class_arg, char *err,
                    size_t errlen)
{
    return port_add(br, want_no, name, cls, flags, class_arg, NULL, err, errlen);
}

static int port_add(struct xbr_bridge *br, int want_no, const char *name,
                    const struct port_class *cls, unsigned flags, void *class_arg,
                    const struct port_vlan *vlan, char *err, size_t errlen)
{
    if (!name[0] || strlen(name) >= IF_NAMESIZE) {
        snprintf(err, errlen, "invalid port name '%s'", name);
        return -EINVAL;
    }
    struct port *dup = xbr_port_find_any(name);
    if (dup) {
        snprintf(err, errlen, "%s is already a port of bridge %s", name, dup->bridge->name);
        return -EEXIST;
    }
    struct port_table *old = br->ports;
    if (old->n_ports >= XBR_MAX_PORTS) {
        snprintf(err, errlen, "bridge %s has the maximum of %d ports", br->name, XBR_MAX_PORTS);
        return -ENOSPC;
    }
    unsigned no = 0;
    if (want_no >= 0) {
        /* A port number asked for (a saved configuration restores the STP
         * port identifiers it had). */
        if (want_no >= XBR_MAX_PORTS) {
            snprintf(err, errlen, "port number %d out of range 0-%d", want_no,
                     XBR_MAX_PORTS - 1);
            return -EINVAL;
        }
        if (old->slot[want_no]) {
            snprintf(err, errlen, "port number %d of bridge %s is taken by %s", want_no,
                     br->name, old->slot[want_no]->name);
            return -EBUSY;
        }
        no = (unsigned)want_no;
    } else {
        while (old->slot[no])
            no++;
    }

    struct port *p = xbr_xzalloc(sizeof(*p));
    (void)xbr_strlcpy(p->name, name, sizeof(p->name));
    p->cls = cls;
    p->bridge = br;
    p->no = no;
    p->mtu = 1500;
    p->link_up = true;
    /* Without STP a port forwards at once; with STP (issue 3) it starts
     * discarding until the protocol says otherwise. */
    p->stp_state = br->stp_enabled ? PORT_STP_DISCARDING : PORT_STP_FORWARDING;

    struct port_open_args args = {.name = name, .n_queues = xbr_n_workers(),
                                  .flags = flags, .class_arg = class_arg};
    int r = cls->open(p, &args, err, errlen);
    if (r < 0) {
        free(p);
        return r;
    }
    p->inject = xbr_xzalloc(sizeof(*p->inject));
    /* A VLAN mode given at add is the port's before its first frame: set
     * before the workers see the port, and out of the fast path from the
     * start. */
    if (vlan && !xbr_vlan_is_default(vlan)) {
        p->vlan = xbr_xzalloc(sizeof(*p->vlan));
        *p->vlan = *vlan;
        p->vlan_held = true;
        p->fastpath_hold++;
    }

    struct port_table *t = xbr_xzalloc(sizeof(*t));
    memcpy(t, old, sizeof(*t));
    t->slot[no] = p;
    t->list[t->n_ports++] = no;
    /* Mirrors first: a port that is a mirror's output must never see a
     * flooded frame, not even in the moment after it appears. */
    xbr_mirror_ports_changed(br, t, NULL);
    rcu_assign_pointer(br->ports, t);
    struct dp_view *old_view = publish_dp_view();
    urcu_qsbr_synchronize_rcu();
    free(old);
    free(old_view);
    xbr_info("%s: port %s (%s) added as port %u", br->name, name, cls->type, no);
    /* Now that workers see it (discarding), let spanning tree decide; it
     * sends the first BPDU right away. */
    xbr_stp_port_added(p);
    xbr_fastpath_port_added(p);
    return 0;
}

int xbr_port_del(struct xbr_bridge *br, const char *name, char *err, size_t errlen)
{
    struct port *p = xbr_port_find(br, name);
    if (!p) {
        snprintf(err, errlen, "bridge %s has no port named %s", br->name, name);
        return -ENOENT;
    }
    /* On its way out: out of the fast path for good (ending its captures
     * and mirrors must not attach it again). */
    xbr_fastpath_port_hold(p, true);
    xbr_capture_port_removing(p);
    xbr_mirror_ports_changed(br, br->ports, p);
    xbr_fastpath_port_removing(p);
    xbr_stp_port_removing(p);
    struct port_table *old = br->ports;
    struct port_table *t = xbr_xzalloc(sizeof(*t));
    t->n_ports = 0;
    for (unsigned i = 0; i < old->n_ports; i++) {
        unsigned s = old->list[i];
        if (s == p->no)
            continue;
        t->slot[s] = old->slot[s];
        t->list[t->n_ports++] = s;
    }
    rcu_assign_pointer(br->ports, t);
    struct dp_view *old_view = publish_dp_view();
    urcu_qsbr_synchronize_rcu();
    /* No worker can be inside p any more, so nothing can learn on its slot
     * again: flush now, or a reused slot would inherit its addresses. (Not
     * when the bridge goes too: fdb_destroy frees the table whole, where a
     * flush of a million entries is a grace period's callback each.) */
    if (!br->deleting)
        (void)fdb_flush(br->fdb, p->no, true);
    xbr_stp_drain_rx(p); /* BPDUs it queued before the grace period */
    free(old);
    free(old_view);
    p->cls->close(p);
    xbr_info("%s: port %s removed", br->name, p->name);
    free(p->inject);
    xbr_vlan_port_free(p);
    free(p);
    return 0;
}

void xbr_bridges_periodic(uint32_t now_s)
{
    (void)now_s; /* ageing moved to xbr_bridges_tick */
    xbr_ports_refresh();
}

/* Ageing a slice per tick: each tick examines only the learned entries that
 * came due (fdb_age_tick), at most FDB_AGE_TICK_BUDGET of them per bridge, so
 * a large table costs the control thread a bounded, steady amount of time
 * instead of a walk of the whole table once a second. */
void xbr_bridges_tick(uint32_t now_s)
{
    for (size_t i = 0; i < n_bridges; i++)
        (void)fdb_age_tick(bridges[i]->fdb, now_s, FDB_AGE_TICK_BUDGET);
}

void xbr_ports_refresh(void)
{
    for (size_t i = 0; i < n_bridges; i++) {
        struct xbr_bridge *br = bridges[i];
        const struct port_table *t = br->ports;
        for (unsigned j = 0; j < t->n_ports; j++) {
            struct port *p = t->slot[t->list[j]];
            bool was_up = p->link_up;
            uint32_t was_speed = p->speed_mbps;
            if (p->cls->refresh && p->cls->refresh(p) == -ENODEV) {
                /* Like the kernel bridge when a slave is unregistered. */
                char name[IF_NAMESIZE], err[256];
                memcpy(name, p->name, sizeof(name));
                xbr_warn("%s: interface %s disappeared; removing the port", br->name, name);
                (void)xbr_port_del(br, name, err, sizeof(err));
                t = br->ports; /* the table was replaced */
                j = (unsigned)-1; /* start over: list order changed */
            } else {
                if (p->link_up != was_up || p->speed_mbps != was_speed)
                    xbr_stp_link_changed(p);
                xbr_fastpath_port_changed(p); /* the MTU may have changed */
            }
        }
    }
}
