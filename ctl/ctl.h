/* ctl — xbr's control protocol: the wire format, the output printer that
 * renders text and JSON from one code path, the daemon-side command
 * registry, and the client call used by xbrctl.
 *
 * Wire format (Unix stream socket; both directions little-endian/host order,
 * the socket never leaves the host):
 *   request:  u32 total_len | u32 flags | u32 argc | argc NUL-terminated args
 *   reply:    u32 total_len | i32 status | body bytes (not NUL-terminated)
 * total_len counts the whole message including itself. A request is at most
 * CTL_MAX_REQUEST bytes and CTL_MAX_ARGS words; anything else is refused.
 * status 0: body is the command's output (text, or one JSON document when
 * CTL_F_JSON was set). status != 0: body is a one-line error message.
 *
 * Commands: each module registers its own (the OVS unixctl habit) with
 * ctl_register("fdb show", ...). A command name is one or two words; the
 * dispatcher matches the longest registered name.
 *
 * The printer (iproute2 json_print habit): every value is printed with a
 * JSON key and a text format at once; ctl_out keeps track of nesting and
 * commas, and in text mode only the text format is used. Text-only
 * decoration (headers, newlines) goes through ctl_out_text, which JSON mode
 * ignores.
 */
#ifndef XBR_CTL_H
#define XBR_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_MAX_REQUEST 65536u
#define CTL_MAX_ARGS 64u
#define CTL_MAX_REPLY (16u << 20)
#define CTL_DEFAULT_SOCKET "/run/xbr/xbrd.sock"

#define CTL_F_JSON 0x1u

/* ---- Output printer ---- */

struct ctl_out;

struct ctl_out *ctl_out_new(bool json);
void ctl_out_free(struct ctl_out *o);
bool ctl_out_is_json(const struct ctl_out *o);
/* The rendered output; valid until the next call on o. */
const char *ctl_out_data(const struct ctl_out *o, size_t *len);

/* Containers. key is NULL inside arrays and at top level. */
void ctl_out_open_object(struct ctl_out *o, const char *key);
void ctl_out_close_object(struct ctl_out *o);
void ctl_out_open_array(struct ctl_out *o, const char *key);
void ctl_out_close_array(struct ctl_out *o);

/* Values: JSON "key": value, and in text mode printf(text_fmt, value).
 * text_fmt may be NULL to print nothing in text mode. It takes %s for
 * strings and booleans ("yes"/"no"), %llu for u64 and %lld for i64. */
void ctl_out_str(struct ctl_out *o, const char *key, const char *text_fmt, const char *v);
void ctl_out_u64(struct ctl_out *o, const char *key, const char *text_fmt, uint64_t v);
void ctl_out_i64(struct ctl_out *o, const char *key, const char *text_fmt, int64_t v);
void ctl_out_bool(struct ctl_out *o, const char *key, const char *text_fmt, bool v);
/* JSON null when v is NULL (text mode prints text_fmt with "-"). */
void ctl_out_str_or_null(struct ctl_out *o, const char *key, const char *text_fmt,
                         const char *v);
/* The reply carries fd to the client as well (SCM_RIGHTS, with its first
 * bytes): for a command that goes on streaming after its reply (capture).
 * o owns fd from now on and closes it once it is sent, or with o; a
 * client that does not ask for a descriptor closes it unread. */
void ctl_out_pass_fd(struct ctl_out *o, int fd);
/* The descriptor handed to ctl_out_pass_fd (the caller owns it), or -1. */
int ctl_out_take_fd(struct ctl_out *o);
/* Text mode only. */
void ctl_out_text(struct ctl_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A third rendering: no text at all, every container and value is handed to
 * a visitor as it is printed, with its JSON key (NULL inside arrays). For
 * exporters that need the numbers of a command's output (the Prometheus
 * metrics of `stats` and `show`) without parsing the JSON it would print.
 * The strings are valid during the call only. */
enum ctl_visit_kind {
    CTL_VISIT_OPEN_OBJECT,
    CTL_VISIT_CLOSE_OBJECT,
    CTL_VISIT_OPEN_ARRAY,
    CTL_VISIT_CLOSE_ARRAY,
    CTL_VISIT_STR,
    CTL_VISIT_NULL,
    CTL_VISIT_U64,
    CTL_VISIT_I64,
    CTL_VISIT_BOOL,
};
struct ctl_visit {
    enum ctl_visit_kind kind;
    const char *key; /* NULL inside arrays, at top level and for CLOSE_* */
    const char *str; /* CTL_VISIT_STR */
    uint64_t u64;    /* CTL_VISIT_U64, and CTL_VISIT_BOOL as 0 / 1 */
    int64_t i64;     /* CTL_VISIT_I64 */
};
typedef void ctl_visit_fn(const struct ctl_visit *v, void *aux);
/* ctl_out_is_json() is true for a visitor (handlers print what JSON gets);
 * ctl_out_data() returns an empty string. */
struct ctl_out *ctl_out_new_visitor(ctl_visit_fn *fn, void *aux);

/* ---- Daemon side: command registry and dispatch ---- */

/* A handler writes its output to o and returns 0, or writes one line to err
 * and returns a negative errno. It must leave the daemon's state as it was
 * when it fails. argv[0] is the first argument after the command name. */
typedef int ctl_handler_fn(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                           void *aux);

/* name: "show" or "fdb show". usage: e.g. "BR MAC PORT" (for help and errors).
 * Returns 0, or -EEXIST. */
int ctl_register(const char *name, int min_args, int max_args, const char *usage,
                 ctl_handler_fn *fn, void *aux);
void ctl_unregister_all(void);

/* Runs one request already split into words (flags: CTL_F_*). Fills o on
 * success; on failure fills err and returns a negative errno. Used by the
 * socket server and by the daemon's config file reader. */
int ctl_dispatch(int argc, char **argv, uint32_t flags, struct ctl_out *o, char *err,
                 size_t errlen);
/* Writes one "  name usage" line per registered command to o (text). */
void ctl_print_help(struct ctl_out *o);

/* The socket server, driven by the daemon's event loop. */
struct ctl_server;
/* Creates the socket at path (parent directory created 0700 if missing,
 * socket mode 0600), replacing a stale one but refusing if a live daemon
 * answers there. Returns NULL and fills err on failure. */
struct ctl_server *ctl_server_open(const char *path, char *err, size_t errlen);
void ctl_server_close(struct ctl_server *s);
/* The daemon waits for the listener fd and each connection fd (announced
 * through on_new_fd) and calls ctl_server_handle() when one is ready. */
int ctl_server_listen_fd(const struct ctl_server *s);
/* Handles readiness on fd (listener or connection). events: EPOLL* bits.
 * Returns -1 when fd was closed (the caller removes it from its set), 0
 * otherwise. New connection fds are reported through on_new_fd. */
int ctl_server_handle(struct ctl_server *s, int fd, uint32_t events,
                      void (*on_new_fd)(int fd, void *aux), void *aux);

/* ---- Client side ---- */

/* Sends argv to the daemon at path and waits (up to timeout_ms) for the
 * reply. Returns the reply status (0 or the daemon's error), or a negative
 * errno for transport errors; *body is malloc'd (NUL-terminated) and must be
 * freed by the caller. */
int ctl_client_call(const char *path, uint32_t flags, int argc, char *const *argv,
                    int timeout_ms, char **body, size_t *body_len);
/* The same, and *fd gets the descriptor the reply carried (-1: none). */
int ctl_client_call_fd(const char *path, uint32_t flags, int argc, char *const *argv,
                       int timeout_ms, char **body, size_t *body_len, int *fd);

/* ---- Wire helpers (shared by both sides; exposed for the fuzz/unit tests) ---- */

/* Parses a request payload (after the length word) of len bytes: fills
 * flags, argc and argv (pointers into buf, which must be writable).
 * Returns 0 or -EINVAL / -E2BIG. */
int ctl_parse_request(char *buf, size_t len, uint32_t *flags, int *argc,
                      char *argv[CTL_MAX_ARGS]);

#endif
