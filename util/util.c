#include "util/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum xbr_log_level xbr_log_max_level = XBR_LOG_INFO;

void xbr_log(enum xbr_log_level level, const char *fmt, ...)
{
    static const char *const prefix[] = {"<3>", "<4>", "<6>", "<7>"};
    char line[1024];
    va_list ap;

    if (level > xbr_log_get_level())
        return;
    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One write per line so that threads do not interleave mid-line; the
     * <N> prefix is the sd-daemon priority that journald understands. */
    (void)fprintf(stderr, "%s%s\n", prefix[level], line);
}

void xbr_log_set_level(enum xbr_log_level level)
{
    __atomic_store_n(&xbr_log_max_level, level, __ATOMIC_RELAXED);
}

enum xbr_log_level xbr_log_get_level(void)
{
    return __atomic_load_n(&xbr_log_max_level, __ATOMIC_RELAXED);
}

static const char *const level_names[] = {
    [XBR_LOG_ERR] = "err",
    [XBR_LOG_WARN] = "warn",
    [XBR_LOG_INFO] = "info",
    [XBR_LOG_DEBUG] = "debug",
};

int xbr_log_level_parse(const char *s, enum xbr_log_level *out)
{
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < XBR_ARRAY_SIZE(level_names); i++)
        if (!strcmp(s, level_names[i])) {
            *out = (enum xbr_log_level)i;
            return 0;
        }
    if (!strcmp(s, "error"))
        *out = XBR_LOG_ERR;
    else if (!strcmp(s, "warning"))
        *out = XBR_LOG_WARN;
    else
        return -EINVAL;
    return 0;
}

const char *xbr_log_level_name(enum xbr_log_level level)
{
    return (unsigned)level < XBR_ARRAY_SIZE(level_names) ? level_names[level] : "?";
}

static _Noreturn void oom(void)
{
    (void)fputs("xbr: out of memory\n", stderr);
    abort();
}

void *xbr_xzalloc(size_t size)
{
    void *p = calloc(1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

char *xbr_xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        oom();
    return p;
}

void *xbr_grow_one(void *arr, size_t n, size_t size)
{
    /* Capacity is n rounded up to a power of two (0 for an empty array). */
    if (n == 0 || (n & (n - 1)) == 0) {
        size_t cap = n ? 2 * n : 1;
        if (cap > SIZE_MAX / size || !(arr = realloc(arr, cap * size)))
            oom();
    }
    memset((char *)arr + n * size, 0, size);
    return arr;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int xbr_mac_parse(const char *s, uint8_t mac[XBR_ETH_ALEN])
{
    uint8_t out[XBR_ETH_ALEN];

    if (!s)
        return -EINVAL;
    for (int i = 0; i < XBR_ETH_ALEN; i++) {
        /* Never look past a NUL: s[1] only once s[0] is a digit. */
        int hi = hexval(s[0]), lo = hi < 0 ? -1 : hexval(s[1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
        s += 2;
        if (i < XBR_ETH_ALEN - 1) {
            if (*s != ':' && *s != '-')
                return -EINVAL;
            s++;
        }
    }
    if (*s)
        return -EINVAL;
    memcpy(mac, out, XBR_ETH_ALEN);
    return 0;
}

char *xbr_mac_format(const uint8_t mac[XBR_ETH_ALEN], char buf[XBR_MAC_STRLEN])
{
    (void)snprintf(buf, XBR_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1],
                   mac[2], mac[3], mac[4], mac[5]);
    return buf;
}

int xbr_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (*end)
        return -EINVAL;
    if (errno == ERANGE || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

uint64_t xbr_now_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t xbr_now_coarse_s(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)ts.tv_sec;
}

uint64_t xbr_now_coarse_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int xbr_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);
    if (size == 0)
        return -ENAMETOOLONG;
    if (n >= size) {
        memcpy(dst, src, size - 1);
        dst[size - 1] = '\0';
        return -ENAMETOOLONG;
    }
    memcpy(dst, src, n + 1);
    return 0;
}
