/* util — small helpers shared by every xbr module: logging, MAC addresses,
 * monotonic time, allocation that cannot silently fail.
 *
 * Libraries (fdb/, stp/) do not log; programs and the daemon's modules do,
 * through xbr_log(), which writes one line to stderr (systemd picks it up).
 */
#ifndef XBR_UTIL_H
#define XBR_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XBR_ETH_ALEN 6
#define XBR_MAC_STRLEN 18 /* "aa:bb:cc:dd:ee:ff" + NUL */

#define XBR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define XBR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define XBR_MAX(a, b) ((a) > (b) ? (a) : (b))
#define XBR_LIKELY(x) __builtin_expect(!!(x), 1)
#define XBR_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* The struct that holds member `m` at `ptr`. liburcu's caa_container_of casts
 * through a const pointer, which clang's -Wcast-qual reports at every use. */
#define XBR_CONTAINER_OF(ptr, type, m) ((type *)(void *)((char *)(ptr) - offsetof(type, m)))

enum xbr_log_level { XBR_LOG_ERR, XBR_LOG_WARN, XBR_LOG_INFO, XBR_LOG_DEBUG };

/* Messages above this level are dropped; the daemon's -v raises it and
 * `xbrctl log-level` changes it at run time. Any thread may log while the
 * control thread changes it: use the accessors, which load and store it
 * atomically. */
extern enum xbr_log_level xbr_log_max_level;
void xbr_log_set_level(enum xbr_log_level level);
enum xbr_log_level xbr_log_get_level(void);
/* "err" / "warn" / "info" / "debug" (also "error", "warning"). Returns 0 or
 * -EINVAL. */
int xbr_log_level_parse(const char *s, enum xbr_log_level *out);
const char *xbr_log_level_name(enum xbr_log_level level);

void xbr_log(enum xbr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define xbr_err(...) xbr_log(XBR_LOG_ERR, __VA_ARGS__)
#define xbr_warn(...) xbr_log(XBR_LOG_WARN, __VA_ARGS__)
#define xbr_info(...) xbr_log(XBR_LOG_INFO, __VA_ARGS__)
#define xbr_debug(...) xbr_log(XBR_LOG_DEBUG, __VA_ARGS__)

/* Allocation failure in the daemon is not a recoverable condition. */
void *xbr_xzalloc(size_t size);
char *xbr_xstrdup(const char *s);
/* Appends one zeroed element to an array of n elements of size bytes that
 * only ever grew through this function: its capacity doubles at powers of
 * two, so building an array of n costs O(n) copying (a config file of a
 * million "fdb add" lines), not O(n^2) as realloc by one does wherever
 * realloc cannot grow in place (ASan's always moves). */
void *xbr_grow_one(void *arr, size_t n, size_t size);

/* "aa:bb:cc:dd:ee:ff" (also '-' separated) -> 6 bytes. Returns 0 or -EINVAL. */
int xbr_mac_parse(const char *s, uint8_t mac[XBR_ETH_ALEN]);
/* Writes XBR_MAC_STRLEN bytes into buf and returns buf. */
char *xbr_mac_format(const uint8_t mac[XBR_ETH_ALEN], char buf[XBR_MAC_STRLEN]);

static inline bool xbr_mac_is_multicast(const uint8_t *mac) { return mac[0] & 1; }
static inline bool xbr_mac_is_zero(const uint8_t *mac)
{
    return !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]);
}

/* Parses a decimal unsigned integer in [min, max]; the whole string must be
 * consumed. Returns 0 or -EINVAL / -ERANGE. */
int xbr_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* CLOCK_MONOTONIC in nanoseconds / milliseconds / seconds. */
uint64_t xbr_now_ns(void);
static inline uint64_t xbr_now_ms(void) { return xbr_now_ns() / 1000000u; }
/* Coarse seconds (CLOCK_MONOTONIC_COARSE): cheap enough for the datapath. */
uint32_t xbr_now_coarse_s(void);
/* The same clock in nanoseconds: what BPF's bpf_ktime_get_coarse_ns reads. */
uint64_t xbr_now_coarse_ns(void);

/* Bounded copy that always terminates dst; returns -ENAMETOOLONG if cut. */
int xbr_strlcpy(char *dst, const char *src, size_t size);

#endif
