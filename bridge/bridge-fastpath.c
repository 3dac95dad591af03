/* The kernel fast path's glue: keeps fastpath/'s maps in step with the
 * bridges, their ports' STP states and MTUs, and their FDBs.
 *
 * What is mirrored, and from where
 *   - Ports: an AF_PACKET port of a bridge with the fast path on is attached
 *     when it is added (or when the bridge turns the fast path on) and
 *     detached before it is removed; its STP state and MTU follow on every
 *     change (bridge-stp.c, the port refresh).
 *   - FDB entries on attached ports: those a worker creates or moves come
 *     through the worker's fdb_event_queue (a worker must not make
 *     syscalls per frame, and the control thread is then the only writer);
 *     removals and static entries come from the control thread itself (the
 *     FDB's change hook, xbr_fastpath_fdb_changed). Either way the mirror
 *     looks the key up in the FDB again and copies what it finds, so the
 *     order in which events arrive does not matter. A lost event (a full
 *     queue) resyncs the whole bridge.
 *   - Counters: the fast path's per-CPU counters are added to the port's
 *     own when they are read, so rx/tx counters mean the same with and
 *     without it. */
#include "bridge/private.h"
#include "ctl/ctl.h"
#include "util/util.h"
#ifdef XBR_HAVE_FASTPATH
#include "fastpath/fastpath.h"
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static struct fdb_event_queue *fdb_events; /* one per worker */
static int events_fd = -1;                 /* workers wake the control thread */
static bool fp_on;                         /* the fast path is loaded */
static bool fp_exiting;                    /* xbrd is shutting down */
static char fp_why_not[256] = "not started";
static uint32_t next_bridge_id = 1;

#ifdef XBR_HAVE_FASTPATH

/* A source seen by the fast path only tells the daemon so at this interval
 * at most: often enough that its FDB entry never ages while it talks
 * (a quarter of the ageing time), seldom enough to cost nothing. */
static uint64_t refresh_ns(const struct xbr_bridge *br)
{
    uint64_t quarter = (uint64_t)fdb_get_ageing(br->fdb) * 1000000000u / 4;
    return XBR_MIN(quarter, 1000000000u);
}

static struct port *port_at(const struct xbr_bridge *br, uint32_t no)
{
    return no < XBR_MAX_PORTS ? br->ports->slot[no] : NULL;
}

/* Copies the FDB's current view of one key into the mirror. */
static void sync_key(struct xbr_bridge *br, uint16_t vlan, const uint8_t mac[6])
{
    struct fdb_entry_info e;
    struct port *p;
    if (fdb_get(br->fdb, vlan, mac, 0, &e) == 0 && (p = port_at(br, e.port)) && p->fastpath) {
        static bool warned;
        int r = fp_fdb_set(br->id, vlan, mac, e.port, e.is_static);
        if (r < 0 && r != -ENOENT && !warned) {
            warned = true;
            xbr_warn("the kernel fast path's FDB mirror is full (%u entries): frames to and "
                     "from addresses beyond it are forwarded in user space; raise "
                     "xbrd --fastpath-entries (%s)",
                     fp_fdb_count(), strerror(-r));
        }
    } else {
        fp_fdb_del(br->id, vlan, mac);
    }
}

static void on_fdb_change(void *aux, uint16_t vlan, const uint8_t mac[6])
{
    struct xbr_bridge *br = aux;
    if (br->fastpath)
        sync_key(br, vlan, mac);
}

static int sync_entry(const struct fdb_entry_info *e, void *aux)
{
    struct xbr_bridge *br = aux;
    struct port *p = port_at(br, e->port);
    if (p && p->fastpath)
        (void)fp_fdb_set(br->id, e->vlan, e->mac, e->port, e->is_static);
    return 0;
}

static bool still_mirrored(uint16_t vlan, const uint8_t mac[6], void *aux)
{
    struct xbr_bridge *br = aux;
    struct fdb_entry_info e;
    struct port *p;
    return fdb_get(br->fdb, vlan, mac, 0, &e) == 0 && (p = port_at(br, e.port)) && p->fastpath;
}

/* The whole bridge again: after lost events, or when ports come and go. */
static void resync_bridge(struct xbr_bridge *br)
{
    (void)fp_fdb_prune(br->id, still_mirrored, br);
    (void)fdb_foreach(br->fdb, 0, sync_entry, br);
}

static struct xbr_bridge *bridge_by_id(uint32_t id)
{
    for (size_t i = 0; i < xbr_bridge_count(); i++)
        if (xbr_bridge_at(i)->id == id)
            return xbr_bridge_at(i);
    return NULL;
}

/* Applies what the workers learned. A worker wakes us only when it finds
 * its queue empty; so after publishing the new tail we look at head again
 * (the fence pairs with the worker's between its head store and tail
 * load): an event pushed meanwhile is either seen here or woke us. */
static void drain_events(void)
{
    for (unsigned w = 0; fdb_events && w < xbr_n_workers(); w++) {
        struct fdb_event_queue *q = &fdb_events[w];
        uint32_t head;
        while ((head = __atomic_load_n(&q->head, __ATOMIC_ACQUIRE)) != q->tail) {
            for (uint32_t t = q->tail; t != head; t++) {
                const typeof(q->ev[0]) *ev = &q->ev[t % XBR_FDB_EVENTS];
                struct xbr_bridge *br = bridge_by_id(ev->bridge_id);
                if (br && br->fastpath)
                    sync_key(br, ev->vlan, ev->mac);
            }
            __atomic_store_n(&q->tail, head, __ATOMIC_RELEASE);
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
        }
        if (__atomic_exchange_n(&q->overflow, false, __ATOMIC_ACQ_REL)) {
            for (size_t i = 0; i < xbr_bridge_count(); i++)
                if (xbr_bridge_at(i)->fastpath)
                    resync_bridge(xbr_bridge_at(i));
        }
    }
}

static void on_events(int fd, uint32_t events, void *aux)
{
    (void)events, (void)aux;
    uint64_t n;
    (void)!read(fd, &n, sizeof(n));
    drain_events();
}

static void port_update(struct port *p)
{
    struct xbr_bridge *br = p->bridge;
    (void)fp_port_update(br->id, p->no, __atomic_load_n(&p->mtu, __ATOMIC_RELAXED),
                         p->stp_state == PORT_STP_FORWARDING, br->fastpath);
}

static void port_attach(struct port *p)
{
    char err[256];
    if (p->fastpath || !p->cls->fastpath || !p->bridge->fastpath || p->fastpath_hold)
        return;
    if (p->cls->fastpath(p, true, err, sizeof(err)) < 0) {
        xbr_warn("%s: %s stays in user space: %s", p->bridge->name, p->name, err);
        return;
    }
    p->fastpath = true;
    port_update(p);
}

static void port_detach(struct port *p)
{
    char err[256];
    if (!p->fastpath)
        return;
    (void)p->cls->fastpath(p, false, err, sizeof(err));
    p->fastpath = false;
}

/* Turns the fast path on or off for a whole bridge. */
static void bridge_set(struct xbr_bridge *br, bool on)
{
    const struct port_table *t = br->ports;
    if (on == br->fastpath)
        return;
    if (on) {
        __atomic_store_n(&br->fastpath, true, __ATOMIC_RELEASE);
        (void)fp_bridge_set(br->id, refresh_ns(br));
        for (unsigned i = 0; i < t->n_ports; i++)
            port_attach(t->slot[t->list[i]]);
        resync_bridge(br);
    } else {
        __atomic_store_n(&br->fastpath, false, __ATOMIC_RELEASE);
        for (unsigned i = 0; i < t->n_ports; i++)
            port_detach(t->slot[t->list[i]]);
        /* When xbrd exits the mirror dies with its descriptors (fp_fini;
         * nothing is pinned): deleting a million entries one by one first
         * would only delay the exit. */
        if (!fp_exiting)
            fp_bridge_del(br->id);
    }
}

#endif /* XBR_HAVE_FASTPATH */

void xbr_fastpath_init(bool enable, uint32_t mirror_entries)
{
    fdb_events = xbr_xzalloc(xbr_n_workers() * sizeof(*fdb_events));
#ifdef XBR_HAVE_FASTPATH
    if (!enable) {
        snprintf(fp_why_not, sizeof(fp_why_not), "disabled (--no-fastpath)");
        return;
    }
    char err[256];
    /* The kernel allocates the mirror's hash buckets up front (16 B per
     * entry of capacity, rounded up to a power of two), so its capacity is
     * an option, not every bridge's FDB limit; entries beyond it stay in
     * user space (counted, logged once). */
    int r = fp_init(mirror_entries, err, sizeof(err));
    if (r < 0) {
        snprintf(fp_why_not, sizeof(fp_why_not), "%s", err);
        xbr_warn("kernel fast path unavailable, all frames take the user-space path: %s", err);
        return;
    }
    events_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (events_fd < 0 || xbr_loop_add_fd(events_fd, EPOLLIN, on_events, NULL) < 0) {
        snprintf(fp_why_not, sizeof(fp_why_not), "no event fd: %s", strerror(errno));
        xbr_warn("kernel fast path unavailable: %s", fp_why_not);
        fp_fini();
        return;
    }
    fp_on = true;
    xbr_info("kernel fast path loaded (socket filter + tc ingress)");
#else
    (void)enable;
    snprintf(fp_why_not, sizeof(fp_why_not), "xbrd was built without it (-Dfastpath)");
#endif
}

bool xbr_fastpath_loaded(void) { return fp_on; }

void xbr_fastpath_daemon_exiting(void)
{
    fp_exiting = true;
}

void xbr_fastpath_fini(void)
{
#ifdef XBR_HAVE_FASTPATH
    if (fp_on) {
        xbr_loop_del_fd(events_fd);
        fp_fini();
        fp_on = false;
    }
#endif
    if (events_fd >= 0)
        close(events_fd);
    events_fd = -1;
    free(fdb_events);
    fdb_events = NULL;
}

void xbr_fastpath_bridge_added(struct xbr_bridge *br)
{
    br->id = next_bridge_id++;
#ifdef XBR_HAVE_FASTPATH
    fdb_set_change_hook(br->fdb, on_fdb_change, br);
    if (fp_on)
        bridge_set(br, true);
#endif
}

void xbr_fastpath_bridge_removing(struct xbr_bridge *br)
{
#ifdef XBR_HAVE_FASTPATH
    if (fp_on)
        bridge_set(br, false);
    fdb_set_change_hook(br->fdb, NULL, NULL);
#else
    (void)br;
#endif
}

void xbr_fastpath_ageing_changed(struct xbr_bridge *br)
{
#ifdef XBR_HAVE_FASTPATH
    if (br->fastpath)
        (void)fp_bridge_set(br->id, refresh_ns(br));
#else
    (void)br;
#endif
}

void xbr_fastpath_port_added(struct port *p)
{
#ifdef XBR_HAVE_FASTPATH
    port_attach(p);
#else
    (void)p;
#endif
}

void xbr_fastpath_port_removing(struct port *p)
{
#ifdef XBR_HAVE_FASTPATH
    port_detach(p);
    /* Entries on the port stay in the mirror until the FDB flush after the
     * grace period removes them; without its port record the fast path no
     * longer sends to it meanwhile. */
#else
    (void)p;
#endif
}

void xbr_fastpath_port_hold(struct port *p, bool hold)
{
    if (hold) {
        if (p->fastpath_hold++ == 0) {
#ifdef XBR_HAVE_FASTPATH
            port_detach(p);
#endif
        }
        return;
    }
    if (!p->fastpath_hold || --p->fastpath_hold)
        return;
#ifdef XBR_HAVE_FASTPATH
    port_attach(p);
    /* Its entries left the mirror with it (sync adds only attached ports'). */
    if (p->fastpath)
        resync_bridge(p->bridge);
#endif
}

void xbr_fastpath_port_changed(struct port *p)
{
#ifdef XBR_HAVE_FASTPATH
    if (p->fastpath)
        port_update(p);
#else
    (void)p;
#endif
}

void xbr_fastpath_fdb_changed(struct xbr_bridge *br, uint16_t vlan, const uint8_t mac[6])
{
#ifdef XBR_HAVE_FASTPATH
    on_fdb_change(br, vlan, mac);
#else
    (void)br, (void)vlan, (void)mac;
#endif
}

void xbr_fastpath_learned(unsigned w, const struct xbr_bridge *br, uint16_t vlan,
                          const uint8_t mac[6])
{
    struct fdb_event_queue *q = &fdb_events[w];
    uint32_t head = q->head, tail = __atomic_load_n(&q->tail, __ATOMIC_ACQUIRE);
    if (head - tail >= XBR_FDB_EVENTS) {
        __atomic_store_n(&q->overflow, true, __ATOMIC_RELEASE);
        return;
    }
    typeof(q->ev[0]) *ev = &q->ev[head % XBR_FDB_EVENTS];
    ev->bridge_id = br->id;
    ev->vlan = vlan;
    memcpy(ev->mac, mac, 6);
    __atomic_store_n(&q->head, head + 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* see drain_events */
    tail = __atomic_load_n(&q->tail, __ATOMIC_ACQUIRE);
    if (head == tail) { /* the control thread may be asleep: wake it */
        uint64_t one = 1;
        (void)!write(events_fd, &one, sizeof(one));
    }
}

void xbr_fastpath_add_counts(const struct port *p, struct port_stats *sum)
{
#ifdef XBR_HAVE_FASTPATH
    if (!p->fastpath)
        return;
    struct fp_port_counts c;
    fp_port_counts(p->bridge->id, p->no, &c);
    sum->rx_packets += c.rx_packets;
    sum->rx_bytes += c.rx_bytes;
    sum->tx_packets += c.tx_packets;
    sum->tx_bytes += c.tx_bytes;
    sum->fast_rx_packets = c.rx_packets;
    sum->fast_tx_packets = c.tx_packets;
#else
    (void)p, (void)sum;
#endif
}

/* ---- control commands ---- */

static int cmd_set_fastpath(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                            void *aux)
{
    (void)argc, (void)o, (void)aux;
    struct xbr_bridge *br = xbr_ctl_get_bridge(argv[0], err, errlen);
    if (!br)
        return -ENOENT;
    bool on;
    if (!strcmp(argv[1], "on"))
        on = true;
    else if (!strcmp(argv[1], "off"))
        on = false;
    else {
        snprintf(err, errlen, "set-fastpath: expected on or off, not '%s'", argv[1]);
        return -EINVAL;
    }
    if (on && !fp_on) {
        snprintf(err, errlen, "the kernel fast path is not available: %s", fp_why_not);
        return -EOPNOTSUPP;
    }
#ifdef XBR_HAVE_FASTPATH
    bridge_set(br, on);
#endif
    return 0;
}

static int cmd_fastpath_show(int argc, char **argv, struct ctl_out *o, char *err,
                             size_t errlen, void *aux)
{
    (void)argc, (void)argv, (void)err, (void)errlen, (void)aux;
    ctl_out_open_object(o, NULL);
    ctl_out_bool(o, "loaded", "fast path loaded %s", fp_on);
    if (!fp_on)
        ctl_out_str(o, "reason", " (%s)", fp_why_not);
#ifdef XBR_HAVE_FASTPATH
    if (fp_on) {
        ctl_out_u64(o, "fdb_entries", ", %llu mirrored FDB entries", fp_fdb_count());
        ctl_out_u64(o, "fdb_errors", ", %llu failed writes", fp_fdb_errors());
        ctl_out_u64(o, "orphaned", ", %llu frames lost between filter and tc", fp_orphaned());
    }
#endif
    ctl_out_text(o, "\n");
    ctl_out_open_array(o, "bridges");
    for (size_t i = 0; i < xbr_bridge_count(); i++) {
        const struct xbr_bridge *br = xbr_bridge_at(i);
        const struct port_table *t = br->ports;
        ctl_out_open_object(o, NULL);
        ctl_out_str(o, "name", "%s:", br->name);
        ctl_out_bool(o, "enabled", " fast path %s\n", br->fastpath);
        ctl_out_open_array(o, "ports");
        for (unsigned j = 0; j < t->n_ports; j++) {
            const struct port *p = t->slot[t->list[j]];
            struct port_stats st;
            xbr_port_get_stats(p, &st);
            ctl_out_open_object(o, NULL);
            ctl_out_str(o, "name", "  %-15s", p->name);
            ctl_out_bool(o, "attached", " attached %s", p->fastpath);
#ifdef XBR_HAVE_FASTPATH
            const char *hook = p->fastpath ? fp_port_hook(br->id, p->no) : NULL;
            ctl_out_str_or_null(o, "hook", " hook %s", hook);
#endif
            ctl_out_u64(o, "fast_rx_packets", " rx %llu", st.fast_rx_packets);
            ctl_out_u64(o, "fast_tx_packets", " tx %llu\n", st.fast_tx_packets);
            ctl_out_close_object(o);
        }
        ctl_out_close_array(o);
        ctl_out_close_object(o);
    }
    ctl_out_close_array(o);
    ctl_out_close_object(o);
    return 0;
}

void xbr_fastpath_register_commands(void)
{
    (void)ctl_register("set-fastpath", 2, 2, "BR on|off", cmd_set_fastpath, NULL);
    (void)ctl_register("fastpath show", 0, 0, "", cmd_fastpath_show, NULL);
}
