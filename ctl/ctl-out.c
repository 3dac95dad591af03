/* The dual text/JSON printer. */
#include "ctl/ctl.h"
#include "util/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CTL_OUT_MAX_DEPTH 16

struct ctl_out {
    bool json;
    ctl_visit_fn *visit; /* visitor mode (json is true too) */
    void *visit_aux;
    char *buf;
    size_t len, cap;
    /* Per nesting level: has an element been written (comma needed)? */
    bool need_comma[CTL_OUT_MAX_DEPTH];
    int depth;
    int pass_fd; /* sent with the reply (SCM_RIGHTS), or -1 */
};

struct ctl_out *ctl_out_new(bool json)
{
    struct ctl_out *o = xbr_xzalloc(sizeof(*o));
    o->json = json;
    o->pass_fd = -1;
    o->cap = 4096;
    o->buf = xbr_xzalloc(o->cap);
    return o;
}

struct ctl_out *ctl_out_new_visitor(ctl_visit_fn *fn, void *aux)
{
    struct ctl_out *o = ctl_out_new(true);
    o->visit = fn;
    o->visit_aux = aux;
    return o;
}

static void visit(struct ctl_out *o, enum ctl_visit_kind kind, const char *key,
                  const char *str, uint64_t u, int64_t i)
{
    struct ctl_visit v = {.kind = kind, .key = key, .str = str, .u64 = u, .i64 = i};
    o->visit(&v, o->visit_aux);
}

void ctl_out_free(struct ctl_out *o)
{
    if (!o)
        return;
    if (o->pass_fd >= 0)
        close(o->pass_fd);
    free(o->buf);
    free(o);
}

void ctl_out_pass_fd(struct ctl_out *o, int fd)
{
    if (o->pass_fd >= 0)
        close(o->pass_fd);
    o->pass_fd = fd;
}

int ctl_out_take_fd(struct ctl_out *o)
{
    int fd = o->pass_fd;
    o->pass_fd = -1;
    return fd;
}

bool ctl_out_is_json(const struct ctl_out *o) { return o->json; }

const char *ctl_out_data(const struct ctl_out *o, size_t *len)
{
    if (len)
        *len = o->len;
    return o->buf;
}

static void out_reserve(struct ctl_out *o, size_t extra)
{
    if (o->len + extra + 1 <= o->cap)
        return;
    while (o->len + extra + 1 > o->cap)
        o->cap *= 2;
    char *n = realloc(o->buf, o->cap);
    if (!n)
        abort();
    o->buf = n;
}

static void out_raw(struct ctl_out *o, const char *s, size_t n)
{
    out_reserve(o, n);
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void out_vprintf(struct ctl_out *o, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void out_vprintf(struct ctl_out *o, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n <= 0)
        return;
    out_reserve(o, (size_t)n);
    (void)vsnprintf(o->buf + o->len, (size_t)n + 1, fmt, ap);
    o->len += (size_t)n;
}

static void out_printf(struct ctl_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct ctl_out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    out_vprintf(o, fmt, ap);
    va_end(ap);
}

/* JSON string escaping per RFC 8259: quote, backslash and control chars. */
static void out_json_string(struct ctl_out *o, const char *s)
{
    out_raw(o, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': out_raw(o, "\\\"", 2); break;
        case '\\': out_raw(o, "\\\\", 2); break;
        case '\n': out_raw(o, "\\n", 2); break;
        case '\t': out_raw(o, "\\t", 2); break;
        case '\r': out_raw(o, "\\r", 2); break;
        default:
            if (*p < 0x20)
                out_printf(o, "\\u%04x", *p);
            else
                out_raw(o, (const char *)p, 1);
        }
    }
    out_raw(o, "\"", 1);
}

/* Comma and key before a JSON value. */
static void json_key(struct ctl_out *o, const char *key)
{
    if (o->need_comma[o->depth])
        out_raw(o, ",", 1);
    o->need_comma[o->depth] = true;
    if (key) {
        out_json_string(o, key);
        out_raw(o, ":", 1);
    }
}

static void open_container(struct ctl_out *o, const char *key, char c)
{
    if (o->visit) {
        visit(o, c == '{' ? CTL_VISIT_OPEN_OBJECT : CTL_VISIT_OPEN_ARRAY, key, NULL, 0, 0);
        return;
    }
    if (!o->json)
        return;
    json_key(o, key);
    out_raw(o, &c, 1);
    if (o->depth < CTL_OUT_MAX_DEPTH - 1)
        o->depth++;
    o->need_comma[o->depth] = false;
}

static void close_container(struct ctl_out *o, char c)
{
    if (o->visit) {
        visit(o, c == '}' ? CTL_VISIT_CLOSE_OBJECT : CTL_VISIT_CLOSE_ARRAY, NULL, NULL, 0, 0);
        return;
    }
    if (!o->json)
        return;
    out_raw(o, &c, 1);
    if (o->depth > 0)
        o->depth--;
    if (o->depth == 0)
        out_raw(o, "\n", 1);
}

void ctl_out_open_object(struct ctl_out *o, const char *key) { open_container(o, key, '{'); }
void ctl_out_close_object(struct ctl_out *o) { close_container(o, '}'); }
void ctl_out_open_array(struct ctl_out *o, const char *key) { open_container(o, key, '['); }
void ctl_out_close_array(struct ctl_out *o) { close_container(o, ']'); }

/* The text formats come from our own code, never from input. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
void ctl_out_str(struct ctl_out *o, const char *key, const char *text_fmt, const char *v)
{
    if (o->visit) {
        visit(o, CTL_VISIT_STR, key, v ? v : "", 0, 0);
    } else if (o->json) {
        json_key(o, key);
        out_json_string(o, v ? v : "");
    } else if (text_fmt) {
        out_printf(o, text_fmt, v ? v : "");
    }
}

void ctl_out_str_or_null(struct ctl_out *o, const char *key, const char *text_fmt,
                         const char *v)
{
    if (o->visit) {
        visit(o, v ? CTL_VISIT_STR : CTL_VISIT_NULL, key, v, 0, 0);
    } else if (o->json) {
        json_key(o, key);
        if (v)
            out_json_string(o, v);
        else
            out_raw(o, "null", 4);
    } else if (text_fmt) {
        out_printf(o, text_fmt, v ? v : "-");
    }
}

void ctl_out_u64(struct ctl_out *o, const char *key, const char *text_fmt, uint64_t v)
{
    if (o->visit) {
        visit(o, CTL_VISIT_U64, key, NULL, v, 0);
    } else if (o->json) {
        json_key(o, key);
        out_printf(o, "%llu", (unsigned long long)v);
    } else if (text_fmt) {
        out_printf(o, text_fmt, (unsigned long long)v);
    }
}

void ctl_out_i64(struct ctl_out *o, const char *key, const char *text_fmt, int64_t v)
{
    if (o->visit) {
        visit(o, CTL_VISIT_I64, key, NULL, 0, v);
    } else if (o->json) {
        json_key(o, key);
        out_printf(o, "%lld", (long long)v);
    } else if (text_fmt) {
        out_printf(o, text_fmt, (long long)v);
    }
}

void ctl_out_bool(struct ctl_out *o, const char *key, const char *text_fmt, bool v)
{
    if (o->visit) {
        visit(o, CTL_VISIT_BOOL, key, NULL, v, 0);
    } else if (o->json) {
        json_key(o, key);
        out_raw(o, v ? "true" : "false", v ? 4 : 5);
    } else if (text_fmt) {
        out_printf(o, text_fmt, v ? "yes" : "no");
    }
}
#pragma GCC diagnostic pop

void ctl_out_text(struct ctl_out *o, const char *fmt, ...)
{
    va_list ap;
    if (o->json)
        return;
    va_start(ap, fmt);
    out_vprintf(o, fmt, ap);
    va_end(ap);
}
