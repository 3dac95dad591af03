/* xbr-fdb-bench — throughput of the forwarding database.
 *
 * For each table size N and thread count T:
 *   lookup        random hits, one fdb_lookup() at a time
 *   lookup_batch  random hits, fdb_lookup_batch() of 32 (bucket/node prefetch)
 *   refresh       fdb_learn() of known addresses on their own port, with the
 *                 real coarse clock: the datapath's common case
 *   learn         new entries/s: T threads fill an empty table of N entries
 * Each measurement prints a line of the human table and one parseable line
 *   SUMMARY fdb entries <N> threads <T> mode <mode> mops <x.xx>
 * (liburcu's test_urcu_hash habit), optionally all of them as JSON.  A
 * baseline (key generation and checking, no table) is timed next to them so
 * the harness' own cost is visible.
 *
 * Every result is checked: a lookup of a key that must exist has to return
 * its port, a refresh must report REFRESHED, a fill must create exactly N
 * entries.  Any violation makes the exit status 1.
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

#define BENCH_MAX_LIST 16
#define BENCH_MAX_THREADS 64
#define BENCH_PORTS 64u
#define BENCH_VLAN 1
#define BENCH_BATCH 32
/* Work between two looks at the stop flag / quiescent states. */
#define BENCH_CHUNK 256

enum bench_mode { MODE_LOOKUP, MODE_LOOKUP_BATCH, MODE_REFRESH, MODE_LEARN, MODE_BASELINE };
static const char *const mode_names[] = {"lookup", "lookup_batch", "refresh", "learn", "baseline"};

struct bench_opts {
    uint32_t entries[BENCH_MAX_LIST];
    unsigned n_entries;
    unsigned threads[BENCH_MAX_LIST];
    unsigned n_threads;
    double seconds;
    const char *json;
};

struct result {
    uint32_t entries;
    unsigned threads;
    enum bench_mode mode;
    double mops;
};

static struct result results[BENCH_MAX_LIST * BENCH_MAX_LIST * 5];
static unsigned n_results;
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

/* Prints one measurement and counts the workers' wrong results. */
static void report(const struct run *run, const struct worker *w, unsigned threads)
{
    const uint32_t entries = run->entries;
    const enum bench_mode mode = run->mode;
    double mops = workers_mops(w, threads);
    double ns = mops > 0 ? 1e3 * threads / mops : 0;

    for (unsigned t = 0; t < threads; t++) {
        if (w[t].errors) {
            fprintf(stderr, "error: %s, %u entries, thread %u: %" PRIu64 " wrong results\n",
                    mode_names[mode], entries, t, w[t].errors);
            total_errors += w[t].errors;
        }
    }

    printf("%10" PRIu32 " %7u  %-12s %10.2f %9.1f\n", entries, threads, mode_names[mode], mops,
           ns);
    if (mode != MODE_BASELINE) {
        printf("SUMMARY fdb entries %" PRIu32 " threads %u mode %s mops %.2f\n", entries, threads,
               mode_names[mode], mops);
        if (n_results < XBR_ARRAY_SIZE(results))
            results[n_results++] = (struct result){entries, threads, mode, mops};
    }
    fflush(stdout);
}

static struct fdb *bench_create(uint32_t entries)
{
    /* Per-port limit as large as the table: the bench measures the table,
     * not the flood defence. */
    struct fdb_config cfg = {.max_entries = entries, .max_per_port = entries};
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
 * have been timed (at least once); creation and destruction are not timed. */
static void bench_learn(uint32_t entries, unsigned nthreads, double seconds)
{
    static struct worker w[BENCH_MAX_THREADS];
    struct run run = {.mode = MODE_LEARN, .entries = entries};

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
    } while (w[0].busy_s < seconds);
    report(&run, w, nthreads);
}

static void bench_size(const struct bench_opts *o, uint32_t entries)
{
    static struct worker w[BENCH_MAX_THREADS];
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
        static const enum bench_mode modes[] = {MODE_LOOKUP, MODE_LOOKUP_BATCH, MODE_REFRESH};
        for (size_t m = 0; m < XBR_ARRAY_SIZE(modes); m++) {
            run.mode = modes[m];
            workers_reset(w, o->threads[ti]);
            run_workers(&run, w, o->threads[ti], o->seconds);
            report(&run, w, o->threads[ti]);
        }
    }
    fdb_destroy(run.fdb);

    for (unsigned ti = 0; ti < o->n_threads; ti++)
        bench_learn(entries, o->threads[ti], o->seconds);
}

static void bench_baseline(const struct bench_opts *o)
{
    static struct worker w[1];
    struct run run = {.mode = MODE_BASELINE, .entries = 1u << 20};

    workers_reset(w, 1);
    run_workers(&run, w, 1, XBR_MIN(o->seconds, 0.2));
    report(&run, w, 1);
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
        fprintf(f, "%s\n  {\"entries\": %" PRIu32 ", \"threads\": %u, \"mode\": \"%s\", \"mops\": %.3f}",
                i ? "," : "", results[i].entries, results[i].threads,
                mode_names[results[i].mode], results[i].mops);
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
            "  --seconds S         time per measurement (default 1)\n"
            "  --quick             CI smoke: small tables, very short runs\n"
            "  --json FILE         also write the results as JSON\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"entries", required_argument, NULL, 'e'}, {"threads", required_argument, NULL, 't'},
        {"seconds", required_argument, NULL, 's'}, {"quick", no_argument, NULL, 'q'},
        {"json", required_argument, NULL, 'j'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct bench_opts o = {.seconds = 1.0};
    uint32_t threads[BENCH_MAX_LIST];
    bool quick = false, seconds_set = false;
    int c;

    while ((c = getopt_long(argc, argv, "e:t:s:qj:h", longopts, NULL)) != -1) {
        switch (c) {
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
    printf("%10s %7s  %-12s %10s %9s\n", "entries", "threads", "mode", "Mops/s", "ns/op/thr");
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
