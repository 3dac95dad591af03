/* xbrctl — the command-line client of xbrd. Everything but option parsing
 * happens in the daemon, which renders text or JSON from one code path;
 * xbrctl prints the reply, or the daemon's error on stderr with exit 1. */
#include "ctl/ctl.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: xbrctl [--socket PATH] [-j] [-t SECONDS] COMMAND [ARGS...]\n"
            "\n"
            "  show [BR]                         bridges and their ports\n"
            "  add-br BR | del-br BR\n"
            "  add-port BR IFNAME [--force] [--port-no N]  attach an interface (AF_PACKET)\n"
            "  add-port BR NAME --type tap       create a tap device and attach it\n"
            "  add-port BR NAME --type vxlan --vni N --local IP [--remote IP[,IP...]]\n"
            "           [--group MCAST] [--dstport 4789]  a VXLAN tunnel port (RFC 7348)\n"
            "  del-port BR PORT\n"
            "  fdb show BR\n"
            "  fdb add BR MAC PORT [vlan VID] [dst IP]  static entry (dst: VTEP behind a vxlan port)\n"
            "  fdb del BR MAC [vlan VID]\n"
            "  fdb flush BR [PORT] [--static]    learned entries (and static ones)\n"
            "  set-ageing BR SECONDS\n"
            "  set-fdb-limit BR N [--per-port M] learned-entry limits (table sized for N)\n"
            "  stats BR [PORT]                   counters, drops by reason\n"
            "  port set BR PORT vlan access VID | vlan trunk VIDS [native VID]\n"
            "                                    802.1Q mode (VIDS: 10,20,30-40; default access 1)\n"
            "  vlan show BR                      every port's VLAN mode\n"
            "  list-br | list-ports [BR]         names, one a line\n"
            "  save [FILE]                       the running configuration, in the\n"
            "                                    config file's format (to FILE, atomically)\n"
            "  reload                            apply the config file's changes (as SIGHUP)\n"
            "  log-level [err|warn|info|debug]   show or set the daemon's log level\n"
            "  metrics                           Prometheus text format of the counters\n"
            "  capture PORT [--bridge BR] [--direction in|out|both] [-c COUNT] [-s SNAPLEN]\n"
            "          [-w FILE|-] [FILTER...]   a pcap stream of the port's frames (a libpcap\n"
            "                                    filter, as tcpdump's); to stdout by default\n"
            "  capture show                      running captures, frames captured and dropped\n"
            "  mirror add BR NAME --src PORT[,PORT...] [--direction in|out|both] --dst PORT\n"
            "  mirror del BR NAME | mirror show [BR]   port mirroring (SPAN)\n"
            "  help                              every command the daemon knows\n"
            "\n"
            "  -s, --socket PATH   daemon socket (default %s, or $XBR_SOCKET)\n"
            "  -j, --json          JSON output\n"
            "  -t, --timeout S     give up after S seconds (default 30)\n",
            CTL_DEFAULT_SOCKET);
}

/* capture: the daemon's reply carries the stream's socket; copy it to the
 * output until the daemon closes it (COUNT reached, port gone). Closing it
 * (exit, ^C) is what ends the capture in the daemon. */
static int stream_capture(int in, int out)
{
    static char buf[1 << 16];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "xbrctl: capture stream: %s\n", strerror(errno));
            return 1;
        }
        if (n == 0)
            return 0;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return errno == EPIPE ? 0 : (fprintf(stderr, "xbrctl: capture output: %s\n",
                                                     strerror(errno)),
                                             1);
            off += w;
        }
    }
}

/* save FILE: the daemon renders, xbrctl writes, atomically (a temporary
 * file beside FILE, then rename), so that a crash or a full disk never
 * leaves half a configuration where xbrd -c will read it. */
static int write_atomically(const char *path, const char *data, size_t len)
{
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.xbrctl-%ld", path, (long)getpid()) >=
        sizeof(tmp)) {
        fprintf(stderr, "xbrctl: file name too long: %s\n", path);
        return 1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "xbrctl: cannot create %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        off += (size_t)n;
    }
    int e = off < len ? errno : 0;
    if (!e && fsync(fd) < 0)
        e = errno;
    if (close(fd) < 0 && !e)
        e = errno;
    if (!e && rename(tmp, path) < 0)
        e = errno;
    if (e) {
        fprintf(stderr, "xbrctl: cannot write %s: %s\n", path, strerror(e));
        (void)unlink(tmp);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {0},
    };
    const char *path = getenv("XBR_SOCKET") ? getenv("XBR_SOCKET") : CTL_DEFAULT_SOCKET;
    uint32_t flags = 0;
    uint64_t timeout_s = 30;
    int c;

    /* '+': stop at the command, so its own options (--type) reach the daemon. */
    while ((c = getopt_long(argc, argv, "+s:jt:hV", opts, NULL)) != -1) {
        switch (c) {
        case 's': path = optarg; break;
        case 'j': flags |= CTL_F_JSON; break;
        case 't':
            if (xbr_parse_uint(optarg, 1, 3600, &timeout_s) < 0) {
                fprintf(stderr, "xbrctl: invalid timeout '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("xbrctl %s\n", XBR_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }

    /* save FILE: the file is ours to write, the daemon only renders. */
    const char *save_to = NULL;
    int n_args = argc - optind;
    if (!strcmp(argv[optind], "save") && n_args == 2) {
        if (strcmp(argv[optind + 1], "-"))
            save_to = argv[optind + 1];
        n_args = 1;
    }

    /* capture ... -w FILE: the file is ours to write too; the daemon gets
     * the other words. */
    bool capture = !strcmp(argv[optind], "capture") &&
                   !(n_args >= 2 && !strcmp(argv[optind + 1], "show"));
    const char *write_to = "-";
    char *cargv[CTL_MAX_ARGS];
    char **args = argv + optind;
    if (capture) {
        int m = 0;
        for (int i = 0; i < n_args; i++) {
            if (!strcmp(args[i], "-w") && i + 1 < n_args) {
                write_to = args[++i];
                continue;
            }
            if (m == (int)CTL_MAX_ARGS) {
                fprintf(stderr, "xbrctl: too many arguments\n");
                return 2;
            }
            cargv[m++] = args[i];
        }
        args = cargv;
        n_args = m;
    }
    int out_fd = 1;
    if (capture && !strcmp(write_to, "-") && isatty(1)) {
        fprintf(stderr, "xbrctl: capture writes a binary pcap stream; pipe it (| tcpdump -nr -) "
                        "or give -w FILE\n");
        return 2;
    }
    if (capture && strcmp(write_to, "-")) {
        out_fd = open(write_to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out_fd < 0) {
            fprintf(stderr, "xbrctl: cannot create %s: %s\n", write_to, strerror(errno));
            return 1;
        }
    }

    char *body = NULL;
    size_t len = 0;
    int stream_fd = -1;
    int r = ctl_client_call_fd(path, flags, n_args, args, (int)timeout_s * 1000, &body, &len,
                               capture ? &stream_fd : NULL);
    if (!body) {
        if (r == -ENOENT || r == -ECONNREFUSED)
            fprintf(stderr, "xbrctl: cannot reach xbrd at %s: %s (is xbrd running?)\n", path,
                    strerror(-r));
        else
            fprintf(stderr, "xbrctl: talking to xbrd at %s: %s\n", path, strerror(-r));
        return 1;
    }
    if (r != 0) {
        fprintf(stderr, "xbrctl: %s\n", body);
        free(body);
        return 1;
    }
    int rc = 0;
    if (capture) {
        if (stream_fd < 0) {
            fprintf(stderr, "xbrctl: the daemon sent no capture stream\n");
            free(body);
            return 1;
        }
        /* What was started goes to stderr, the pcap stream to the output
         * (tcpdump's habit). */
        fwrite(body, 1, len, stderr);
        free(body);
        signal(SIGPIPE, SIG_IGN);
        rc = stream_capture(stream_fd, out_fd);
        close(stream_fd);
        if (out_fd != 1 && close(out_fd) < 0) {
            fprintf(stderr, "xbrctl: cannot write %s: %s\n", write_to, strerror(errno));
            rc = 1;
        }
        return rc;
    }
    if (save_to)
        rc = write_atomically(save_to, body, len);
    else
        fwrite(body, 1, len, stdout);
    free(body);
    return rc;
}
