/* xensim-ctl — create, inspect and destroy simulated Xen worlds.
 *
 *   xensim-ctl [--dir DIR] create [--pages N]
 *   xensim-ctl [--dir DIR] destroy
 *   xensim-ctl [--dir DIR] stats [DOMID...]        one line per domain
 *   xensim-ctl [--dir DIR] check-clean DOMID...    exit 1 if the domain holds
 *                                                  maps, ports, pinned grants
 *   xensim-ctl [--dir DIR] domain-create DOMID
 *   xensim-ctl [--dir DIR] domain-destroy DOMID    the domain dies (no cleanup by it)
 *   xensim-ctl [--dir DIR] copy-check gntdev|xen
 *   xensim-ctl [--dir DIR] reap
 *
 * DIR defaults to $XENSIM_DIR. Output lines are "key value" pairs so that
 * shell tests can grep them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xensim.h"

static int usage(void)
{
    fputs("usage: xensim-ctl [--dir DIR] create [--pages N] | destroy | stats [DOMID...] |\n"
          "       check-clean DOMID... | domain-create DOMID | domain-destroy DOMID |\n"
          "       copy-check gntdev|xen | reap\n",
          stderr);
    return 2;
}

static int parse_domid(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || !*s || *end || v >= 0x7ff0) {
        fprintf(stderr, "xensim-ctl: bad domid '%s'\n", s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static void print_stats(const struct xensim_dom_stats *s)
{
    printf("dom %" PRId32 " alive %d pages %" PRIu32 " grants %" PRIu32 " pinned %" PRIu32
           " maps %" PRIu32 " ports %" PRIu32 " gnttab_handles %" PRIu32
           " gntshr_handles %" PRIu32 " evtchn_handles %" PRIu32 " copy_ok %" PRIu64
           " copy_err %" PRIu64 " map_err %" PRIu64 " notify %" PRIu64 "\n",
           s->domid, s->alive, s->pages, s->grants, s->pinned, s->maps, s->ports,
           s->gnttab_handles, s->gntshr_handles, s->evtchn_handles, s->copy_ok, s->copy_err,
           s->map_err, s->notify);
}

int main(int argc, char **argv)
{
    const char *dir = getenv(XENSIM_ENV_DIR);
    const char *cmd;
    int i = 1, r;

    if (i + 1 < argc && !strcmp(argv[i], "--dir")) {
        dir = argv[i + 1];
        i += 2;
        if (setenv(XENSIM_ENV_DIR, dir, 1) < 0)
            return 1;
    }
    if (i >= argc)
        return usage();
    if (!dir || !*dir) {
        fputs("xensim-ctl: no world: give --dir or set XENSIM_DIR\n", stderr);
        return 2;
    }
    cmd = argv[i++];

    if (!strcmp(cmd, "create")) {
        unsigned long pages = 0;
        if (i + 1 < argc && !strcmp(argv[i], "--pages"))
            pages = strtoul(argv[i + 1], NULL, 10);
        r = xensim_world_create(dir, (unsigned)pages);
    } else if (!strcmp(cmd, "destroy")) {
        r = xensim_world_destroy(dir);
    } else if (!strcmp(cmd, "stats") || !strcmp(cmd, "check-clean")) {
        bool check = !strcmp(cmd, "check-clean");
        int dirty = 0;
        if (i == argc && check)
            return usage();
        if (i == argc) {
            struct xensim_dom_stats st[64];
            int n = xensim_dom_list(st, 64);
            if (n < 0) {
                r = n;
                goto out;
            }
            for (int k = 0; k < n && k < 64; k++)
                print_stats(&st[k]);
            return 0;
        }
        for (; i < argc; i++) {
            struct xensim_dom_stats st;
            uint32_t domid;
            if (parse_domid(argv[i], &domid) < 0)
                return 2;
            r = xensim_dom_stats(domid, &st);
            if (r < 0)
                goto out;
            print_stats(&st);
            if (check && (st.maps || st.ports || st.pinned || st.gnttab_handles ||
                          st.gntshr_handles || st.evtchn_handles)) {
                fprintf(stderr, "xensim-ctl: dom %" PRIu32 " is not clean\n", domid);
                dirty = 1;
            }
        }
        return dirty;
    } else if (!strcmp(cmd, "domain-create") || !strcmp(cmd, "domain-destroy")) {
        uint32_t domid;
        if (i >= argc || parse_domid(argv[i], &domid) < 0)
            return usage();
        r = cmd[7] == 'c' ? xensim_domain_create(domid) : xensim_domain_destroy(domid);
    } else if (!strcmp(cmd, "copy-check")) {
        if (i >= argc)
            return usage();
        if (!strcmp(argv[i], "gntdev"))
            r = xensim_set_copy_check(XENSIM_COPY_GNTDEV);
        else if (!strcmp(argv[i], "xen"))
            r = xensim_set_copy_check(XENSIM_COPY_XEN);
        else
            return usage();
    } else if (!strcmp(cmd, "reap")) {
        r = xensim_reap();
        if (r >= 0) {
            printf("reaped %d\n", r);
            r = 0;
        }
    } else {
        return usage();
    }
out:
    if (r < 0) {
        fprintf(stderr, "xensim-ctl %s: %s\n", cmd, strerror(-r));
        return 1;
    }
    return 0;
}
