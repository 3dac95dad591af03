/* Unit tests of the control protocol pieces and util helpers: the dual
 * text/JSON printer, request parsing of hostile bytes, the dispatcher. */
#include "ctl/ctl.h"
#include "test.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

TEST(json_printer_nests_and_escapes)
{
    struct ctl_out *o = ctl_out_new(true);
    ctl_out_open_array(o, NULL);
    ctl_out_open_object(o, NULL);
    ctl_out_str(o, "name", "%s", "a\"b\\c\n\x01");
    ctl_out_u64(o, "n", "%llu", 18446744073709551615ull);
    ctl_out_i64(o, "i", "%lld", -5);
    ctl_out_bool(o, "b", "%s", true);
    ctl_out_str_or_null(o, "nul", "%s", NULL);
    ctl_out_open_array(o, "list");
    ctl_out_u64(o, NULL, NULL, 1);
    ctl_out_u64(o, NULL, NULL, 2);
    ctl_out_close_array(o);
    ctl_out_text(o, "ignored in json");
    ctl_out_close_object(o);
    ctl_out_open_object(o, NULL);
    ctl_out_close_object(o);
    ctl_out_close_array(o);
    ASSERT_STREQ(ctl_out_data(o, NULL),
                 "[{\"name\":\"a\\\"b\\\\c\\n\\u0001\",\"n\":18446744073709551615,\"i\":-5,"
                 "\"b\":true,\"nul\":null,\"list\":[1,2]},{}]\n");
    ctl_out_free(o);
}

TEST(text_printer_uses_text_formats_only)
{
    struct ctl_out *o = ctl_out_new(false);
    ctl_out_open_object(o, NULL);
    ctl_out_str(o, "name", "name=%s", "x");
    ctl_out_u64(o, "n", " n=%llu", 7);
    ctl_out_bool(o, "b", " b=%s", false);
    ctl_out_u64(o, "hidden", NULL, 9);
    ctl_out_text(o, "\n");
    ctl_out_close_object(o);
    ASSERT_STREQ(ctl_out_data(o, NULL), "name=x n=7 b=no\n");
    ctl_out_free(o);
}

/* The visitor sees every container and value, with its key, in order. */
static void record(const struct ctl_visit *v, void *aux)
{
    char *log = aux, one[64];
    static const char *const kinds[] = {"{", "}", "[", "]", "s", "null", "u", "i", "b"};
    snprintf(one, sizeof(one), "%s%s%s=%s%llu%lld;", kinds[v->kind], v->key ? ":" : "",
             v->key ? v->key : "", v->str ? v->str : "", (unsigned long long)v->u64,
             (long long)v->i64);
    strncat(log, one, 1023 - strlen(log));
}

TEST(visitor_reports_every_value_with_its_key)
{
    char log[1024] = "";
    struct ctl_out *o = ctl_out_new_visitor(record, log);
    ASSERT_TRUE(ctl_out_is_json(o));
    ctl_out_open_object(o, NULL);
    ctl_out_str(o, "name", "%s", "v1");
    ctl_out_open_object(o, "stats");
    ctl_out_u64(o, "rx", " %llu", 7);
    ctl_out_i64(o, "d", " %lld", -2);
    ctl_out_bool(o, "up", " %s", true);
    ctl_out_close_object(o);
    ctl_out_open_array(o, "q");
    ctl_out_str_or_null(o, NULL, "%s", NULL);
    ctl_out_close_array(o);
    ctl_out_text(o, "not a value");
    ctl_out_close_object(o);
    ASSERT_STREQ(log, "{=00;s:name=v100;{:stats=00;u:rx=70;i:d=0-2;b:up=10;}=00;[:q=00;null=00;]=00;"
                      "}=00;");
    ASSERT_STREQ(ctl_out_data(o, NULL), "");
    ctl_out_free(o);
}

TEST(log_level_names)
{
    enum xbr_log_level lv;
    ASSERT_EQ(xbr_log_level_parse("debug", &lv), 0);
    ASSERT_EQ(lv, XBR_LOG_DEBUG);
    ASSERT_EQ(xbr_log_level_parse("warning", &lv), 0);
    ASSERT_EQ(lv, XBR_LOG_WARN);
    ASSERT_EQ(xbr_log_level_parse("loud", &lv), -EINVAL);
    ASSERT_EQ(xbr_log_level_parse(NULL, &lv), -EINVAL);
    ASSERT_STREQ(xbr_log_level_name(XBR_LOG_ERR), "err");
    enum xbr_log_level was = xbr_log_get_level();
    xbr_log_set_level(XBR_LOG_ERR);
    ASSERT_EQ(xbr_log_get_level(), XBR_LOG_ERR);
    xbr_log_set_level(was);
}

static size_t build_req(char *buf, uint32_t flags, uint32_t argc, const char *words, size_t wlen)
{
    uint32_t hdr[2] = {flags, argc};
    memcpy(buf, hdr, 8);
    memcpy(buf + 8, words, wlen);
    return 8 + wlen;
}

TEST(request_parser_accepts_well_formed)
{
    char buf[64], *argv[CTL_MAX_ARGS];
    uint32_t flags;
    int argc;
    size_t n = build_req(buf, CTL_F_JSON, 2, "show\0br0\0", 9);
    ASSERT_EQ(ctl_parse_request(buf, n, &flags, &argc, argv), 0);
    ASSERT_EQ(argc, 2);
    ASSERT_EQ(flags, CTL_F_JSON);
    ASSERT_STREQ(argv[0], "show");
    ASSERT_STREQ(argv[1], "br0");
}

TEST(request_parser_refuses_hostile_bytes)
{
    char buf[64], *argv[CTL_MAX_ARGS];
    uint32_t flags;
    int argc;
    /* missing final NUL */
    size_t n = build_req(buf, 0, 2, "show\0br0", 8);
    ASSERT_EQ(ctl_parse_request(buf, n, &flags, &argc, argv), -EINVAL);
    /* more words claimed than present */
    n = build_req(buf, 0, 3, "a\0b\0", 4);
    ASSERT_EQ(ctl_parse_request(buf, n, &flags, &argc, argv), -EINVAL);
    /* trailing garbage after the last word */
    n = build_req(buf, 0, 1, "a\0zz", 4);
    ASSERT_EQ(ctl_parse_request(buf, n, &flags, &argc, argv), -EINVAL);
    /* absurd word count */
    n = build_req(buf, 0, 1000000, "a\0", 2);
    ASSERT_EQ(ctl_parse_request(buf, n, &flags, &argc, argv), -E2BIG);
    /* shorter than the header */
    ASSERT_EQ(ctl_parse_request(buf, 5, &flags, &argc, argv), -EINVAL);
    /* random bytes never crash and never yield words outside the buffer */
    uint32_t seed = 12345;
    for (int round = 0; round < 20000; round++) {
        char r[48];
        for (size_t i = 0; i < sizeof(r); i++) {
            seed = seed * 1103515245u + 12345u;
            r[i] = (char)(seed >> 16);
        }
        uint32_t small = (uint32_t)(round % 6);
        memcpy(r + 4, &small, 4);
        size_t len = (size_t)round % sizeof(r);
        if (ctl_parse_request(r, len, &flags, &argc, argv) == 0)
            for (int i = 0; i < argc; i++)
                ASSERT_TRUE(argv[i] >= r + 8 && argv[i] < r + len);
    }
}

static int echo_handler(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                        void *aux)
{
    (void)err, (void)errlen;
    ctl_out_text(o, "%s:%d:%s", (char *)aux, argc, argc ? argv[0] : "-");
    return 0;
}

static int failing_handler(int argc, char **argv, struct ctl_out *o, char *err, size_t errlen,
                           void *aux)
{
    (void)argc, (void)argv, (void)o, (void)aux;
    snprintf(err, errlen, "nope");
    return -EINVAL;
}

static char fdbshow_tag[] = "fdbshow", fdb_tag[] = "fdb";

TEST(dispatcher_matches_longest_name_and_checks_arity)
{
    char err[256];
    /* argv words are writable in the daemon (they live in the request buffer) */
    char w_fdb[] = "fdb", w_show[] = "show", w_br0[] = "br0", w_other[] = "other",
         w_nosuch[] = "nosuch", w_fail[] = "fail";
    ASSERT_EQ(ctl_register("fdb show", 1, 1, "BR", echo_handler, fdbshow_tag), 0);
    ASSERT_EQ(ctl_register("fdb", 0, 3, "", echo_handler, fdb_tag), 0);
    ASSERT_EQ(ctl_register("fail", 0, 0, "", failing_handler, NULL), 0);
    ASSERT_EQ(ctl_register("fdb show", 0, 0, "", echo_handler, NULL), -EEXIST);

    char *a1[] = {w_fdb, w_show, w_br0};
    struct ctl_out *o = ctl_out_new(false);
    ASSERT_EQ(ctl_dispatch(3, a1, 0, o, err, sizeof(err)), 0);
    ASSERT_STREQ(ctl_out_data(o, NULL), "fdbshow:1:br0");
    ctl_out_free(o);

    char *a2[] = {w_fdb, w_other};
    o = ctl_out_new(false);
    ASSERT_EQ(ctl_dispatch(2, a2, 0, o, err, sizeof(err)), 0);
    ASSERT_STREQ(ctl_out_data(o, NULL), "fdb:1:other");
    ctl_out_free(o);

    char *a3[] = {w_fdb, w_show};
    o = ctl_out_new(false);
    ASSERT_EQ(ctl_dispatch(2, a3, 0, o, err, sizeof(err)), -EINVAL);
    ASSERT_STREQ(err, "usage: fdb show BR");
    ctl_out_free(o);

    char *a4[] = {w_nosuch};
    o = ctl_out_new(false);
    ASSERT_EQ(ctl_dispatch(1, a4, 0, o, err, sizeof(err)), -ENOENT);
    ASSERT_STREQ(err, "unknown command 'nosuch' (try 'help')");
    ctl_out_free(o);

    char *a5[] = {w_fail};
    o = ctl_out_new(false);
    ASSERT_EQ(ctl_dispatch(1, a5, 0, o, err, sizeof(err)), -EINVAL);
    ASSERT_STREQ(err, "nope");
    ctl_out_free(o);
    ctl_unregister_all();
}

TEST(mac_parse_and_format)
{
    uint8_t mac[6];
    char s[XBR_MAC_STRLEN];
    ASSERT_EQ(xbr_mac_parse("02:AB:cd:00:ff:10", mac), 0);
    ASSERT_STREQ(xbr_mac_format(mac, s), "02:ab:cd:00:ff:10");
    ASSERT_EQ(xbr_mac_parse("02-ab-cd-00-ff-10", mac), 0);
    const char *bad[] = {"", "02:ab:cd:00:ff", "02:ab:cd:00:ff:10:", "02:ab:cd:00:ff:1g",
                         "02:ab:cd:00:ff:100", "2:ab:cd:00:ff:10", "02ab:cd:00:ff:10:1"};
    for (size_t i = 0; i < XBR_ARRAY_SIZE(bad); i++)
        ASSERT_EQ(xbr_mac_parse(bad[i], mac), -EINVAL);
}

TEST(grow_one_keeps_elements_and_moves_rarely)
{
    /* 100 000 appends: every element kept, each new one zeroed, and the
     * array moved at most once per doubling (a config file of a million
     * "fdb add" lines must not be copied a million times). */
    uint32_t *a = NULL;
    unsigned moves = 0;
    for (size_t n = 0; n < 100000; n++) {
        uint32_t *b = xbr_grow_one(a, n, sizeof(*a));
        moves += b != a;
        a = b;
        ASSERT_EQ(a[n], 0);
        a[n] = (uint32_t)n * 2654435761u;
    }
    for (size_t n = 0; n < 100000; n++)
        ASSERT_EQ(a[n], (uint32_t)n * 2654435761u);
    ASSERT_LE(moves, 18);
    free(a);
}

TEST(parse_uint_bounds)
{
    uint64_t v;
    ASSERT_EQ(xbr_parse_uint("42", 1, 100, &v), 0);
    ASSERT_EQ(v, 42);
    ASSERT_EQ(xbr_parse_uint("0", 1, 100, &v), -ERANGE);
    ASSERT_EQ(xbr_parse_uint("101", 1, 100, &v), -ERANGE);
    ASSERT_EQ(xbr_parse_uint("-1", 0, 100, &v), -EINVAL);
    ASSERT_EQ(xbr_parse_uint("1x", 0, 100, &v), -EINVAL);
    ASSERT_EQ(xbr_parse_uint("", 0, 100, &v), -EINVAL);
    ASSERT_EQ(xbr_parse_uint("99999999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
}

TEST_MAIN()
