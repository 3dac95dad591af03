/* xbr-fdb-bench — throughput of the forwarding database.
 *
 * For each table size N and thread count T:
 *   lookup        random hits, one fdb_lookup() at a time
 *   lookup_batch  random hits, fdb_lookup_batch() of 32 (bucket/node prefetch)
 *   refresh       fdb_learn() of known addresses on their own port, with the
 *                 real coarse clock: the datapath's common case
 *   refresh_batch the same through fdb_learn_batch() of 32 random known
 *                 sources of one port (the worst burst: all different)
 *   burst         a burst as a worker sees it: 32 frames from 4 known
 *                 sources of one port in runs of 8, one fdb_learn() a frame
 *   burst_batch   the same burst through one fdb_learn_batch()
 *   learn         new entries/s: T threads fill an empty table of N entries
 * Each is measured in --repeat windows (of --seconds / --repeat each) and
 * reported as the median with the min-max of the windows, in a line of the
 * human table and one parseable line
 *   SUMMARY fdb entries <N> threads <T> mode <mode> mops <median> min <x> max <y>
 * (liburcu's test_urcu_hash habit), optionally all of them as JSON.  A
 * baseline (key generation and checking, no table) is timed next to them so
 * the harness' own cost is visible.
 *
 * Then, per size, the control thread's side (one thread, learned entries,
 * ageing 300 s, ticks of --budget entries as in xbrd):
 *   age_tick      steady state: 10 ticks per simulated second for 30 s, the
 *                 stations that come due refreshed just before, as active
 *                 stations are: µs per tick (median, p99, max) and for the
 *                 ticks that cross a second (where the due slot is taken)
 *   age_expire    every entry expires at once: ticks until the table is
 *                 empty, µs per tick (median, max), total ms, ns per entry
 *   age_walk      fdb_age(): one walk of every learned entry (what a tick
 *                 replaces; fast ageing still does it), ms (median, min-max)
 *   resize        fdb_set_limits() to 4 N and back with N entries held, ms
 *   SUMMARY fdb entries <N> mode <mode> <key> <value> ...
 *
 * Every result is checked: a lookup of a key that must exist has to return
 * its port, a refresh must report REFRESHED, a fill must create exactly N
 * entries, a steady tick must age nothing and the expiry everything.  Any
 * violation makes the exit status 1.
 *
 * Keys: entry i is MAC 02:xx:xx:xx:xx:xx with the low 40 bits a bijection of
 * i (a multiply by an odd constant), VLAN 1, port i % 64 — so a thread makes
 * a random known key from a random index without touching memory.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <urcu-qsbr.h>

#include "fdb/fdb.h"
#include "util/util.h"

#define BENCH_AGEING_S 300u
#define BENCH_STEADY_S 30u
#define BENCH_TICKS_PER_S 10u

#define BENCH_MAX_LIST 16
#define BENCH_MAX_THREADS 64
#define BENCH_PORTS 64u
#define BENCH_VLAN 1
#define BENCH_BATCH 32
/* Work between two looks at the stop flag / quiescent states. */
#define BENCH_CHUNK 256

enum bench_mode {
    MODE_LOOKUP,
    MODE_LOOKUP_BATCH,
    MODE_REFRESH,
    MODE_REFRESH_BATCH,
    MODE_BURST,
    MODE_BURST_BATCH,
    MODE_LEARN,
    MODE_BASELINE,
    N_MODES
};
static const char *const mode_names[] = {"lookup", "lookup_batch", "refresh", "refresh_batch",
                                         "burst", "burst_batch", "learn", "baseline"};
_Static_assert(XBR_ARRAY_SIZE(mode_names) == N_MODES, "a name per mode");

#define BENCH_MAX_REPEAT 15

struct bench_opts {
    uint32_t entries[BENCH_MAX_LIST];
    unsigned n_entries;
    unsigned threads[BENCH_MAX_LIST];
    unsigned n_threads;
    double seconds;
    unsigned repeat;
    unsigned budget;
    bool no_ageing;
    const char *json;
};

struct result {
    uint32_t entries;
    unsigned threads;
    enum bench_mode mode;
    double mops, min, max; /* median and spread of the windows */
    unsigned windows;
};

/* The control side: named values, as printed. */
#define BENCH_MAX_VALUES 8
struct ctl_result {
    uint32_t entries;
    const char *mode;
    unsigned n;
    const char *key[BENCH_MAX_VALUES];
    double value[BENCH_MAX_VALUES];
};

static struct result results[BENCH_MAX_LIST * BENCH_MAX_LIST * N_MODES];
static unsigned n_results;
static struct ctl_result ctl_results[BENCH_MAX_LIST * 4];
static unsigned n_ctl_results;
static uint64_t total_errors;

/* ---- keys ---- */

static inline void bench_mac(uint32_t i, uint8_t mac[6])
{
    uint64_t v = ((uint64_t)i * 0x9e3779b97full) & 0xffffffffffull;
    mac[0] = 0x02;
    mac[1] = (uint8_t)(v >> 32);
    mac[2] = (uint8_t)(v >> 24);
    mac[3] = (uint8_t)(v >> 16);
    mac[4] = (uint8_t)(v >> 8);
    mac[5] = (uint8_t)v;
}

static inline uint32_t bench_port(uint32_t i)
{
    return i % BENCH_PORTS;
}

static inline uint64_t bench_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Uniform in [0, n) without a division (Lemire's multiply-shift). */
static inline uint32_t bench_index(uint64_t *s, uint32_t n)
{
    return (uint32_t)(((bench_rand(s) >> 32) * n) >> 32);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint32_t coarse_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)ts.tv_sec;
}

/* ---- timed runs ---- */

struct run {
    struct fdb *fdb;
    enum bench_mode mode;
    uint32_t entries;
    pthread_barrier_t start;
    uint32_t stop;
};

struct worker {
    pthread_t tid;
    struct run *run;
    unsigned id;
    uint32_t lo, hi; /* learn: the slice of keys this thread creates */
    /* Accumulated over the runs of one measurement. */
    uint64_t ops, errors;
    double busy_s;
};

static uint64_t run_lookup(struct worker *w, uint64_t *rng)
{
    const struct fdb *fdb = w->run->fdb;
    const uint32_t n = w->run->entries;
    uint8_t mac[6];
    uint64_t errors = 0;

    for (int k = 0; k < BENCH_CHUNK; k++) {
        uint32_t i = bench_index(rng, n);
        bench_mac(i, mac);
        errors += fdb_lookup(fdb, BENCH_VLAN, mac) != bench_port(i);
    }
    return errors;
}

static uint64_t run_lookup_batch(struct worker *w, uint64_t *rng)
{
    const struct fdb *fdb = w->run->fdb;
    const uint32_t n = w->run->entries;
    uint8_t macbuf[BENCH_BATCH][6];
    const uint8_t *macs[BENCH_BATCH];
    uint16_t vlans[BENCH_BATCH];
    uint32_t idx[BENCH_BATCH], ports[BENCH_BATCH];
    uint64_t errors = 0;

    for (int k = 0; k < BENCH_BATCH; k++) {
        macs[k] = macbuf[k];
        vlans[k] = BENCH_VLAN;
    }
    for (int b = 0; b < BENCH_CHUNK / BENCH_BATCH; b++) {
        for (int k = 0; k < BENCH_BATCH; k++) {
            idx[k] = bench_index(rng, n);
            bench_mac(idx[k], macbuf[k]);
        }
        fdb_lookup_batch(fdb, BENCH_BATCH, vlans, macs, ports);
        for (int k = 0; k < BENCH_BATCH; k++)
            errors += ports[k] != bench_port(idx[k]);
    }
    return errors;
}

static uint64_t run_refresh(struct worker *w, uint64_t *rng)
{
    struct fdb *fdb = w->run->fdb;
    const uint32_t n = w->run->entries;
    const uint32_t t = coarse_s();
    uint8_t mac[6];
    uint64_t errors = 0;

    for (int k = 0; k < BENCH_CHUNK; k++) {
        uint32_t i = bench_index(rng, n);
        bench_mac(i, mac);
        errors += fdb_learn(fdb, BENCH_VLAN, mac, bench_port(i), t) != FDB_LEARN_REFRESHED;
    }
    return errors;
}

/* BENCH_BATCH random known sources of one random port. */
static inline uint32_t bench_port_index(uint64_t *rng, uint32_t n, uint32_t port)
{
    uint32_t per_port = (n - port + BENCH_PORTS - 1) / BENCH_PORTS; /* indices = port mod 64 */
    return port + BENCH_PORTS * bench_index(rng, per_port);
}

static uint64_t run_refresh_batch(struct worker *w, uint64_t *rng)
{
    struct fdb *fdb = w->run->fdb;
    const uint32_t n = w->run->entries;
    const uint32_t t = coarse_s();
    uint8_t macbuf[BENCH_BATCH][6];
    const uint8_t *macs[BENCH_BATCH];
    uint16_t vlans[BENCH_BATCH];
    enum fdb_learn_result res[BENCH_BATCH];
    uint64_t errors = 0;

    for (int k = 0; k < BENCH_BATCH; k++) {
        macs[k] = macbuf[k];
        vlans[k] = BENCH_VLAN;
    }
    for (int b = 0; b < BENCH_CHUNK / BENCH_BATCH; b++) {
        uint32_t port = bench_index(rng, XBR_MIN(n, BENCH_PORTS));
        for (int k = 0; k < BENCH_BATCH; k++)
            bench_mac(bench_port_index(rng, n, port), macbuf[k]);
        fdb_learn_batch(fdb, BENCH_BATCH, vlans, macs, port, t, res);
        for (int k = 0; k < BENCH_BATCH; k++)
            errors += res[k] != FDB_LEARN_REFRESHED;
    }
    return errors;
}

/* A worker's burst: 32 frames, 4 sources of one port, runs of 8. */
static void burst_macs(uint64_t *rng, uint32_t n, uint32_t *port,
                       uint8_t macbuf[BENCH_BATCH][6])
{
    *port = bench_index(rng, XBR_MIN(n, BENCH_PORTS));
    for (int k = 0; k < BENCH_BATCH; k += 8) {
        bench_mac(bench_port_index(rng, n, *port), macbuf[k]);
        for (int j = 1; j < 8; j++)
            memcpy(macbuf[k + j], macbuf[k], 6);
    }
}

static uint64_t run_burst(struct worker *w, uint64_t *rng)
{
    struct fdb *fdb = w->run->fdb;
    const uint32_t n = w->run->entries;
    const uint32_t t = coarse_s();
    uint8_t macbuf[BENCH_BATCH][6];
    uint64_t errors = 0;
    uint32_t port;

    for (int b = 0; b < BENCH_CHUNK / BENCH_BATCH; b++) {
        burst_macs(rng, n, &port, macbuf);
        for (int k = 0; k < BENCH_BATCH; k++)
            errors += fdb_learn(fdb, BENCH_VLAN, macbuf[k], port, t) != FDB_LEARN_REFRESHED;
    }
    return errors;
}

static uint64_t run_burst_batch(struct worker *w, uint64_t *rng)
{
    struct fdb *fdb = w->run->fdb;
    const uint32_t n = w->run->entries;
    const uint32_t t = coarse_s();
    uint8_t macbuf[BENCH_BATCH][6];
    const uint8_t *macs[BENCH_BATCH];
    uint16_t vlans[BENCH_BATCH];
    enum fdb_learn_result res[BENCH_BATCH];
    uint64_t errors = 0;
    uint32_t port;

    for (int k = 0; k < BENCH_BATCH; k++) {
        macs[k] = macbuf[k];
        vlans[k] = BENCH_VLAN;
    }
    for (int b = 0; b < BENCH_CHUNK / BENCH_BATCH; b++) {
        burst_macs(rng, n, &port, macbuf);
        fdb_learn_batch(fdb, BENCH_BATCH, vlans, macs, port, t, res);
        for (int k = 0; k < BENCH_BATCH; k++)
            errors += res[k] != FDB_LEARN_REFRESHED;
    }
    return errors;
}

/* The same loop as run_lookup without the table: what the harness costs. */
static uint64_t run_baseline(struct worker *w, uint64_t *rng)
{
    const uint32_t n = w->run->entries;
    uint8_t mac[6];
    uint64_t errors = 0;

    for (int k = 0; k < BENCH_CHUNK; k++) {
        uint32_t i = bench_index(rng, n);
        bench_mac(i, mac);
        __asm__ volatile("" : : "r"(mac) : "memory"); /* keep the MAC built */
        errors += (uint32_t)(mac[5] % BENCH_PORTS) == BENCH_PORTS;
    }
    return errors;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct run *run = w->run;
    uint64_t rng = 0x2545f4914f6cdd1dull * (w->id + 1);

    urcu_qsbr_register_thread();
    urcu_qsbr_thread_offline();
    pthread_barrier_wait(&run->start);
    urcu_qsbr_thread_online();
    const double t0 = now_s();

    if (run->mode == MODE_LEARN) {
        const uint32_t t = coarse_s();
        uint8_t mac[6];
        for (uint32_t i = w->lo; i < w->hi; i++) {
            bench_mac(i, mac);
            w->errors += fdb_learn(run->fdb, BENCH_VLAN, mac, bench_port(i), t) != FDB_LEARN_NEW;
            if ((i & (BENCH_CHUNK - 1)) == 0)
                urcu_qsbr_quiescent_state();
        }
        w->ops += w->hi - w->lo;
    } else {
        while (!CMM_LOAD_SHARED(run->stop)) {
            switch (run->mode) {
            case MODE_LOOKUP:
                w->errors += run_lookup(w, &rng);
                break;
            case MODE_LOOKUP_BATCH:
                w->errors += run_lookup_batch(w, &rng);
                break;
            case MODE_REFRESH:
                w->errors += run_refresh(w, &rng);
                break;
            case MODE_REFRESH_BATCH:
                w->errors += run_refresh_batch(w, &rng);
                break;
            case MODE_BURST:
                w->errors += run_burst(w, &rng);
                break;
            case MODE_BURST_BATCH:
                w->errors += run_burst_batch(w, &rng);
                break;
            default:
                w->errors += run_baseline(w, &rng);
                break;
            }
            w->ops += BENCH_CHUNK;
            urcu_qsbr_quiescent_state();
        }
    }
    w->busy_s += now_s() - t0;
    urcu_qsbr_unregister_thread();
    return NULL;
}

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static void workers_reset(struct worker *w, unsigned nthreads)
{
    for (unsigned t = 0; t < nthreads; t++)
        w[t].ops = w[t].errors = 0, w[t].busy_s = 0;
}

/* Aggregate rate: each thread's own operations over its own busy time,
 * summed, so that start-up skew between threads does not count as idle. */
static double workers_mops(const struct worker *w, unsigned nthreads)
{
    double mops = 0;
    for (unsigned t = 0; t < nthreads; t++)
        if (w[t].busy_s > 0)
            mops += (double)w[t].ops / w[t].busy_s / 1e6;
    return mops;
}

/* Starts T workers on run and lets them go for `seconds` (or to completion
 * for MODE_LEARN); they add to w[].ops/busy_s/errors.  The calling thread is
 * offline meanwhile so that it holds no grace period up. */
static void run_workers(struct run *run, struct worker *w, unsigned nthreads, double seconds)
{
    pthread_barrier_init(&run->start, NULL, nthreads + 1);
    CMM_STORE_SHARED(run->stop, 0);
    for (unsigned t = 0; t < nthreads; t++) {
        w[t].run = run;
        w[t].id = t;
        if (pthread_create(&w[t].tid, NULL, worker_main, &w[t])) {
            perror("pthread_create");
            exit(2);
        }
    }
    urcu_qsbr_thread_offline();
    pthread_barrier_wait(&run->start);
    if (run->mode != MODE_LEARN) {
        sleep_s(seconds);
        CMM_STORE_SHARED(run->stop, 1);
    }
    for (unsigned t = 0; t < nthreads; t++)
        pthread_join(w[t].tid, NULL);
    urcu_qsbr_thread_online();
    pthread_barrier_destroy(&run->start);
}

/* ---- reporting ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of v[0..n) (sorts v). */
static double median(double *v, unsigned n)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Counts the workers' wrong results of one window. */
static void check_workers(const struct run *run, const struct worker *w, unsigned threads)
{
    for (unsigned t = 0; t < threads; t++) {
        if (w[t].errors) {
            fprintf(stderr, "error: %s, %u entries, thread %u: %" PRIu64 " wrong results\n",
                    mode_names[run->mode], run->entries, t, w[t].errors);
            total_errors += w[t].errors;
        }
    }
}

/* Prints one measurement: the median of its windows and their spread. */
static void report(const struct run *run, unsigned threads, double *mops, unsigned windows)
{
    const uint32_t entries = run->entries;
    const enum bench_mode mode = run->mode;
    double med = median(mops, windows), lo = windows ? mops[0] : 0;
    double hi = windows ? mops[windows - 1] : 0;
    double ns = med > 0 ? 1e3 * threads / med : 0;

    printf("%10" PRIu32 " %7u  %-13s %9.2f  %6.2f-%-6.2f %9.1f\n", entries, threads,
           mode_names[mode], med, lo, hi, ns);
    if (mode != MODE_BASELINE) {
        printf("SUMMARY fdb entries %" PRIu32 " threads %u mode %s mops %.2f min %.2f max %.2f\n",
               entries, threads, mode_names[mode], med, lo, hi);
        if (n_results < XBR_ARRAY_SIZE(results))
            results[n_results++] = (struct result){entries, threads, mode, med, lo, hi, windows};
    }
    fflush(stdout);
}

/* Runs `windows` timed windows of one mode and reports them. */
static void measure(struct run *run, unsigned threads, double seconds, unsigned windows)
{
    static struct worker w[BENCH_MAX_THREADS];
    double mops[BENCH_MAX_REPEAT];

    for (unsigned r = 0; r < windows; r++) {
        workers_reset(w, threads);
        run_workers(run, w, threads, seconds / windows);
        check_workers(run, w, threads);
        mops[r] = workers_mops(w, threads);
    }
    report(run, threads, mops, windows);
}

static struct fdb *bench_create(uint32_t entries)
{
    /* Per-port limit as large as the table: the bench measures the table,
     * not the flood defence. */
    struct fdb_config cfg = {
        .max_entries = entries, .max_per_port = entries, .ageing_s = BENCH_AGEING_S};
    struct fdb *fdb = fdb_create(&cfg);
    if (!fdb) {
        perror("fdb_create");
        exit(2);
    }
    return fdb;
}

static void check_entries(struct fdb *fdb, uint32_t entries, const char *what)
{
    struct fdb_stats st;
    fdb_get_stats(fdb, &st);
    if (st.entries != entries || st.learned != entries) {
        fprintf(stderr, "error: %s: %u entries (%" PRIu64 " learned), expected %u\n", what,
                st.entries, st.learned, entries);
        total_errors++;
    }
}

/* learn: new entries/s.  Fresh tables are filled until `seconds` of filling
 * have been timed (at least once per window); creation and destruction are
 * not timed. */
static void bench_learn(uint32_t entries, unsigned nthreads, double seconds, unsigned windows)
{
    static struct worker w[BENCH_MAX_THREADS];
    struct run run = {.mode = MODE_LEARN, .entries = entries};
    double mops[BENCH_MAX_REPEAT];

    for (unsigned r = 0; r < windows; r++) {
        workers_reset(w, nthreads);
        do {
            run.fdb = bench_create(entries);
            for (unsigned t = 0; t < nthreads; t++) {
                w[t].lo = (uint32_t)((uint64_t)entries * t / nthreads);
                w[t].hi = (uint32_t)((uint64_t)entries * (t + 1) / nthreads);
            }
            run_workers(&run, w, nthreads, 0);
            check_entries(run.fdb, entries, "learn");
            fdb_destroy(run.fdb);
        } while (w[0].busy_s < seconds / windows);
        check_workers(&run, w, nthreads);
        mops[r] = workers_mops(w, nthreads);
    }
    report(&run, nthreads, mops, windows);
}

/* ---- the control thread's side ---- */

static void ctl_report(uint32_t entries, const char *mode, unsigned n, const char *const *keys,
                       const double *values, const char *human)
{
    struct ctl_result r = {.entries = entries, .mode = mode, .n = n};

    printf("%10" PRIu32 "          %-13s %s\n", entries, mode, human);
    printf("SUMMARY fdb entries %" PRIu32 " mode %s", entries, mode);
    for (unsigned i = 0; i < n; i++) {
        printf(" %s %.3f", keys[i], values[i]);
        r.key[i] = keys[i];
        r.value[i] = values[i];
    }
    printf("\n");
    fflush(stdout);
    if (n_ctl_results < XBR_ARRAY_SIZE(ctl_results))
        ctl_results[n_ctl_results++] = r;
}

/* Fills a table of n learned entries, entry i last seen at t0 + i % ageing
 * (stations seen in a steady stream), and lets the wheel take them in. */
static struct fdb *ctl_fill(uint32_t n, uint32_t t0)
{
    struct fdb *fdb = bench_create(n);
    uint8_t mac[6];

    (void)fdb_age_tick(fdb, t0 - 1, 0);
    for (uint32_t i = 0; i < n; i++) {
        bench_mac(i, mac);
        if (fdb_learn(fdb, BENCH_VLAN, mac, bench_port(i), t0 + i % BENCH_AGEING_S) !=
            FDB_LEARN_NEW)
            total_errors++;
    }
    if (fdb_age_tick(fdb, t0 - 1, 0) != 0)
        total_errors++;
    check_entries(fdb, n, "ageing fill");
    return fdb;
}

static double elapsed_us(double t0)
{
    return (now_s() - t0) * 1e6;
}

/* Steady state: what xbrd's ticks cost with n active stations. */
static void bench_age_tick(uint32_t n, unsigned budget)
{
    enum { TICKS = BENCH_STEADY_S * BENCH_TICKS_PER_S };
    const uint32_t t0 = 1000000;
    struct fdb *fdb = ctl_fill(n, t0);
    static double all[TICKS], cross[BENCH_STEADY_S];
    uint8_t mac[6];
    size_t removed = 0;

    for (uint32_t k = 0; k < BENCH_STEADY_S; k++) {
        /* Second s: the stations first seen at s - ageing come due; they
         * are active, so each was seen again a second earlier. */
        const uint32_t s = t0 + BENCH_AGEING_S + k, due_class = k;
        for (uint32_t i = due_class; i < n; i += BENCH_AGEING_S) {
            bench_mac(i, mac);
            if (fdb_learn(fdb, BENCH_VLAN, mac, bench_port(i), s - 1) != FDB_LEARN_REFRESHED)
                total_errors++;
        }
        for (uint32_t j = 0; j < BENCH_TICKS_PER_S; j++) {
            double t = now_s();
            removed += fdb_age_tick(fdb, s, budget);
            all[k * BENCH_TICKS_PER_S + j] = elapsed_us(t);
            if (j == 0)
                cross[k] = all[k * BENCH_TICKS_PER_S + j];
        }
        urcu_qsbr_quiescent_state();
    }
    if (removed) {
        fprintf(stderr, "error: age_tick, %u entries: %zu active entries aged\n", n, removed);
        total_errors++;
    }
    check_entries(fdb, n, "age_tick");
    fdb_destroy(fdb);

    double med = median(all, TICKS), p99 = all[TICKS * 99 / 100], max = all[TICKS - 1];
    double cmed = median(cross, BENCH_STEADY_S), cmax = cross[BENCH_STEADY_S - 1];
    static const char *const keys[] = {"tick_us_median", "tick_us_p99", "tick_us_max",
                                       "second_tick_us_median", "second_tick_us_max",
                                       "due_per_second"};
    const double v[] = {med, p99, max, cmed, cmax, (double)n / BENCH_AGEING_S};
    char human[256];
    snprintf(human, sizeof(human),
             "steady, %u due/s: tick %.1f us median, p99 %.1f, max %.1f; "
             "second-crossing tick %.1f us median, max %.1f",
             (unsigned)(n / BENCH_AGEING_S), med, p99, max, cmed, cmax);
    ctl_report(n, "age_tick", XBR_ARRAY_SIZE(v), keys, v, human);
}

/* Everything expires in the same second: the budget sets the pace. */
static void bench_age_expire(uint32_t n, unsigned budget)
{
    const uint32_t t0 = 1000000, when = t0 + 2 * BENCH_AGEING_S;
    struct fdb *fdb = ctl_fill(n, t0);
    unsigned cap = budget ? (n + budget - 1) / budget + 2 : 2, ticks = 0;
    double *us = calloc(cap, sizeof(*us));
    size_t removed = 0;

    if (!us)
        exit(2);
    double start = now_s();
    while (ticks < cap) {
        double t = now_s();
        size_t r = fdb_age_tick(fdb, when, budget);
        us[ticks++] = elapsed_us(t);
        removed += r;
        urcu_qsbr_quiescent_state();
        if (!r)
            break;
    }
    double total_ms = (now_s() - start) * 1e3;
    struct fdb_stats st;
    fdb_get_stats(fdb, &st);
    if (removed != n || st.entries != 0) {
        fprintf(stderr, "error: age_expire, %u entries: %zu removed, %u left\n", n, removed,
                st.entries);
        total_errors++;
    }
    fdb_destroy(fdb);

    double med = median(us, ticks), max = us[ticks - 1];
    static const char *const keys[] = {"ticks", "tick_us_median", "tick_us_max", "total_ms",
                                       "ns_per_entry"};
    const double v[] = {ticks, med, max, total_ms, total_ms * 1e6 / n};
    char human[256];
    snprintf(human, sizeof(human),
             "all expire at once, budget %u: %u ticks, %.1f us median, max %.1f; "
             "%.1f ms in all, %.0f ns an entry",
             budget, ticks, med, max, total_ms, total_ms * 1e6 / n);
    ctl_report(n, "age_expire", XBR_ARRAY_SIZE(v), keys, v, human);
    free(us);
}

/* One walk of every learned entry (fdb_age), nothing expired; and the
 * resize of a full table. */
static void bench_age_walk_and_resize(uint32_t n, unsigned windows)
{
    const uint32_t t0 = 1000000;
    struct fdb *fdb = ctl_fill(n, t0);
    double walk[BENCH_MAX_REPEAT], grow[BENCH_MAX_REPEAT], shrink[BENCH_MAX_REPEAT];

    for (unsigned r = 0; r < windows; r++) {
        double t = now_s();
        if (fdb_age(fdb, t0 + BENCH_AGEING_S - 1, UINT32_MAX) != 0)
            total_errors++;
        walk[r] = (now_s() - t) * 1e3;
        urcu_qsbr_quiescent_state();
    }
    uint64_t up = (uint64_t)n * 4 > FDB_MAX_ENTRIES_LIMIT ? FDB_MAX_ENTRIES_LIMIT : (uint64_t)n * 4;
    for (unsigned r = 0; r < windows; r++) {
        double t = now_s();
        if (fdb_set_limits(fdb, (uint32_t)up, 0) != 0)
            total_errors++;
        grow[r] = (now_s() - t) * 1e3;
        t = now_s();
        if (fdb_set_limits(fdb, n, 0) != 0)
            total_errors++;
        shrink[r] = (now_s() - t) * 1e3;
        urcu_qsbr_quiescent_state();
    }
    /* Nothing lost on the way. */
    uint8_t mac[6];
    for (uint32_t i = 0; i < n; i++) {
        bench_mac(i, mac);
        total_errors += fdb_lookup(fdb, BENCH_VLAN, mac) != bench_port(i);
    }
    fdb_destroy(fdb);

    double wm = median(walk, windows), gm = median(grow, windows), sm = median(shrink, windows);
    char human[256];
    static const char *const wkeys[] = {"ms_median", "ms_min", "ms_max"};
    const double wv[] = {wm, walk[0], walk[windows - 1]};
    snprintf(human, sizeof(human), "fdb_age walk of every learned entry: %.2f ms (%.2f-%.2f)",
             wm, walk[0], walk[windows - 1]);
    ctl_report(n, "age_walk", XBR_ARRAY_SIZE(wv), wkeys, wv, human);
    static const char *const rkeys[] = {"grow_ms_median", "grow_ms_max", "shrink_ms_median",
                                        "shrink_ms_max", "to_entries"};
    const double rv[] = {gm, grow[windows - 1], sm, shrink[windows - 1], (double)up};
    snprintf(human, sizeof(human),
             "set_limits to %" PRIu64 " and back, entries held: grow %.2f ms (max %.2f), "
             "shrink %.2f ms (max %.2f)",
             up, gm, grow[windows - 1], sm, shrink[windows - 1]);
    ctl_report(n, "resize", XBR_ARRAY_SIZE(rv), rkeys, rv, human);
}

static void bench_size(const struct bench_opts *o, uint32_t entries)
{
    struct run run = {.entries = entries};
    uint8_t mac[6];

    /* One table, filled once, serves all the read and refresh runs. */
    run.fdb = bench_create(entries);
    for (uint32_t i = 0; i < entries; i++) {
        bench_mac(i, mac);
        if (fdb_learn(run.fdb, BENCH_VLAN, mac, bench_port(i), coarse_s()) != FDB_LEARN_NEW)
            total_errors++;
    }
    check_entries(run.fdb, entries, "fill");

    for (unsigned ti = 0; ti < o->n_threads; ti++) {
        static const enum bench_mode modes[] = {MODE_LOOKUP, MODE_LOOKUP_BATCH, MODE_REFRESH,
                                                MODE_REFRESH_BATCH, MODE_BURST,
                                                MODE_BURST_BATCH};
        for (size_t m = 0; m < XBR_ARRAY_SIZE(modes); m++) {
            run.mode = modes[m];
            measure(&run, o->threads[ti], o->seconds, o->repeat);
        }
    }
    fdb_destroy(run.fdb);

    for (unsigned ti = 0; ti < o->n_threads; ti++)
        bench_learn(entries, o->threads[ti], o->seconds, o->repeat);

    if (!o->no_ageing) {
        bench_age_tick(entries, o->budget);
        bench_age_expire(entries, o->budget);
        bench_age_walk_and_resize(entries, o->repeat);
    }
}

static void bench_baseline(const struct bench_opts *o)
{
    struct run run = {.mode = MODE_BASELINE, .entries = 1u << 20};

    measure(&run, 1, XBR_MIN(o->seconds, 0.2), 1);
}

static int write_json(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "{\"bench\": \"fdb\", \"errors\": %" PRIu64 ", \"results\": [", total_errors);
    for (unsigned i = 0; i < n_results; i++)
        fprintf(f,
                "%s\n  {\"entries\": %" PRIu32 ", \"threads\": %u, \"mode\": \"%s\", "
                "\"mops\": %.3f, \"min\": %.3f, \"max\": %.3f, \"windows\": %u}",
                i ? "," : "", results[i].entries, results[i].threads,
                mode_names[results[i].mode], results[i].mops, results[i].min, results[i].max,
                results[i].windows);
    fprintf(f, "\n], \"control\": [");
    for (unsigned i = 0; i < n_ctl_results; i++) {
        const struct ctl_result *r = &ctl_results[i];
        fprintf(f, "%s\n  {\"entries\": %" PRIu32 ", \"mode\": \"%s\"", i ? "," : "",
                r->entries, r->mode);
        for (unsigned k = 0; k < r->n; k++)
            fprintf(f, ", \"%s\": %.3f", r->key[k], r->value[k]);
        fprintf(f, "}");
    }
    fprintf(f, "\n]}\n");
    if (fclose(f)) {
        fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* "N" or "N,N,...", appended to list. */
static int parse_list(const char *arg, uint64_t min, uint64_t max, uint32_t *list, unsigned *n)
{
    char buf[256];
    char *save = NULL;

    if (xbr_strlcpy(buf, arg, sizeof(buf)) < 0)
        return -EINVAL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        uint64_t v;
        if (*n >= BENCH_MAX_LIST || xbr_parse_uint(tok, min, max, &v) < 0)
            return -EINVAL;
        list[(*n)++] = (uint32_t)v;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: xbr-fdb-bench [options]\n"
            "  --entries N[,N...]  table sizes (repeatable; default 1024,65536,1048576)\n"
            "  --threads N[,N...]  thread counts (default 1,2)\n"
            "  --seconds S         time per measurement (default 1), split into\n"
            "  --repeat N          N windows: median and min-max (default 3, 1..15)\n"
            "  --budget N          entries an ageing tick examines (default %u, as xbrd)\n"
            "  --no-ageing         skip the control-thread measurements\n"
            "  --quick             CI smoke: small tables, very short runs\n"
            "  --json FILE         also write the results as JSON\n",
            FDB_AGE_TICK_BUDGET);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"entries", required_argument, NULL, 'e'}, {"threads", required_argument, NULL, 't'},
        {"seconds", required_argument, NULL, 's'}, {"quick", no_argument, NULL, 'q'},
        {"json", required_argument, NULL, 'j'},    {"help", no_argument, NULL, 'h'},
        {"repeat", required_argument, NULL, 'r'},  {"budget", required_argument, NULL, 'b'},
        {"no-ageing", no_argument, NULL, 'A'},     {NULL, 0, NULL, 0}};
    struct bench_opts o = {.seconds = 1.0, .repeat = 3, .budget = FDB_AGE_TICK_BUDGET};
    uint64_t v;
    uint32_t threads[BENCH_MAX_LIST];
    bool quick = false, seconds_set = false;
    int c;

    while ((c = getopt_long(argc, argv, "e:t:s:qj:hr:b:A", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            if (xbr_parse_uint(optarg, 1, BENCH_MAX_REPEAT, &v) < 0) {
                fprintf(stderr, "bad --repeat '%s' (1..%d)\n", optarg, BENCH_MAX_REPEAT);
                return 2;
            }
            o.repeat = (unsigned)v;
            break;
        case 'b':
            if (xbr_parse_uint(optarg, 1, 1u << 24, &v) < 0) {
                fprintf(stderr, "bad --budget '%s' (1..16777216)\n", optarg);
                return 2;
            }
            o.budget = (unsigned)v;
            break;
        case 'A':
            o.no_ageing = true;
            break;
        case 'e':
            if (parse_list(optarg, 1, 1u << 24, o.entries, &o.n_entries) < 0) {
                fprintf(stderr, "bad --entries '%s' (1..16777216)\n", optarg);
                return 2;
            }
            break;
        case 't':
            if (parse_list(optarg, 1, BENCH_MAX_THREADS, threads, &o.n_threads) < 0) {
                fprintf(stderr, "bad --threads '%s' (1..%d)\n", optarg, BENCH_MAX_THREADS);
                return 2;
            }
            break;
        case 's': {
            char *end;
            errno = 0;
            o.seconds = strtod(optarg, &end);
            if (errno || *end || !(o.seconds > 0 && o.seconds <= 3600)) {
                fprintf(stderr, "bad --seconds '%s'\n", optarg);
                return 2;
            }
            seconds_set = true;
            break;
        }
        case 'q':
            quick = true;
            break;
        case 'j':
            o.json = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (!o.n_entries) {
        static const uint32_t full[] = {1024, 65536, 1u << 20}, small[] = {1024, 16384};
        const uint32_t *d = quick ? small : full;
        o.n_entries = quick ? 2 : 3;
        memcpy(o.entries, d, o.n_entries * sizeof(*d));
    }
    if (!o.n_threads) {
        threads[0] = 1;
        threads[1] = 2;
        o.n_threads = 2;
    }
    for (unsigned i = 0; i < o.n_threads; i++)
        o.threads[i] = threads[i];
    if (quick && !seconds_set)
        o.seconds = 0.05;

    urcu_qsbr_register_thread();
    printf("%10s %7s  %-13s %9s  %-13s %9s\n", "entries", "threads", "mode", "Mops/s",
           "(min-max)", "ns/op/thr");
    bench_baseline(&o);
    for (unsigned i = 0; i < o.n_entries; i++)
        bench_size(&o, o.entries[i]);
    urcu_qsbr_unregister_thread();

    if (o.json && write_json(o.json) < 0)
        return 2;
    if (total_errors) {
        fprintf(stderr, "FAILED: %" PRIu64 " invariant violations\n", total_errors);
        return 1;
    }
    return 0;
}
