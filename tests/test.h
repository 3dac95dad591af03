/* test.h — self-registering unit tests (the systemd tests.h habit).
 *
 *   TEST(fdb_learns_new_mac) { ... ASSERT_EQ(x, 3); ... }
 *   TEST_MAIN()
 *
 * The binary runs every test, or only those named on the command line, and
 * ends with the plain line "N passed, N failed". An assertion failure ends the
 * current test (not the binary) with file:line and the values compared. The
 * exit status is 1 if any test failed. A test body may call TEST_SKIP(why)
 * only for a reason CI cannot run (there is none today).
 */
#ifndef XBR_TEST_H
#define XBR_TEST_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
    const char *name;
    void (*fn)(void);
    struct test_case *next;
};

extern struct test_case *test_list__;
extern jmp_buf test_jmp__;

#define TEST(name_)                                                                       \
    static void test_##name_(void);                                                       \
    static struct test_case test_case_##name_ = {#name_, test_##name_, NULL};             \
    __attribute__((constructor)) static void test_register_##name_(void)                  \
    {                                                                                     \
        struct test_case **p = &test_list__;                                              \
        while (*p)                                                                        \
            p = &(*p)->next;                                                              \
        *p = &test_case_##name_;                                                          \
    }                                                                                     \
    static void test_##name_(void)

#define TEST_FAIL__(...)                                                                  \
    do {                                                                                  \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                                 \
        fprintf(stderr, __VA_ARGS__);                                                     \
        fputc('\n', stderr);                                                              \
        longjmp(test_jmp__, 1);                                                           \
    } while (0)

#define ASSERT_TRUE(c)                                                                    \
    do {                                                                                  \
        if (!(c))                                                                         \
            TEST_FAIL__("assertion failed: %s", #c);                                      \
    } while (0)
#define ASSERT_FALSE(c) ASSERT_TRUE(!(c))
#define ASSERT_CMP__(a, op, b)                                                            \
    do {                                                                                  \
        long long a__ = (long long)(a), b__ = (long long)(b);                             \
        if (!(a__ op b__))                                                                \
            TEST_FAIL__("%s %s %s (%lld vs %lld)", #a, #op, #b, a__, b__);                \
    } while (0)
#define ASSERT_EQ(a, b) ASSERT_CMP__(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP__(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_CMP__(a, <, b)
#define ASSERT_LE(a, b) ASSERT_CMP__(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_CMP__(a, >, b)
#define ASSERT_GE(a, b) ASSERT_CMP__(a, >=, b)
#define ASSERT_STREQ(a, b)                                                                \
    do {                                                                                  \
        const char *a__ = (a), *b__ = (b);                                                \
        if (!a__ || !b__ || strcmp(a__, b__))                                             \
            TEST_FAIL__("%s == %s (\"%s\" vs \"%s\")", #a, #b, a__ ? a__ : "(null)",     \
                        b__ ? b__ : "(null)");                                            \
    } while (0)
#define ASSERT_MEMEQ(a, b, n) ASSERT_TRUE(memcmp((a), (b), (n)) == 0)

#define TEST_MAIN()                                                                       \
    struct test_case *test_list__;                                                        \
    jmp_buf test_jmp__;                                                                   \
    int main(int argc, char **argv)                                                       \
    {                                                                                     \
        /* volatile: modified between setjmp and longjmp */                              \
        volatile unsigned passed = 0, failed = 0;                                         \
        for (struct test_case *volatile t = test_list__; t; t = t->next) {                \
            if (argc > 1) {                                                               \
                int want = 0;                                                             \
                for (int i = 1; i < argc; i++)                                            \
                    want |= !strcmp(argv[i], t->name);                                    \
                if (!want)                                                                \
                    continue;                                                             \
            }                                                                             \
            fprintf(stderr, "TEST %s\n", t->name);                                        \
            if (setjmp(test_jmp__) == 0) {                                                \
                t->fn();                                                                  \
                passed++;                                                                 \
                fprintf(stderr, "  ok\n");                                                \
            } else {                                                                      \
                failed++;                                                                 \
                fprintf(stderr, "  FAILED\n");                                            \
            }                                                                             \
        }                                                                                 \
        printf("%u passed, %u failed\n", passed, failed);                                 \
        return failed ? 1 : (passed ? 0 : 1);                                             \
    }

#endif
