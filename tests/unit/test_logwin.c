#include "testutil.h"

#include "alloc.h"
#include "buf.h"
#include "error.h"
#include "logwin.h"

/*
 * Error-line windows: what a reader of a cut log must still see (the
 * exception, its cause, the last lines) and the markers that say what was
 * left out.
 */

static char *cut(const char *log, size_t max_bytes, size_t tail_lines, tr_logwin_stats *st)
{
    tr_logwin_options opt = { max_bytes, tail_lines, 0, 0 };
    tr_buf out = TR_BUF_INIT(0);

    assert_int_equal(tr_logwin_cut(&out, log, strlen(log), &opt, st), TR_OK);
    return out.ptr ? tr_buf_detach(&out) : tr_strdup("");
}

static void add_ordinary(tr_buf *log, int from, int to)
{
    for (int i = from; i < to; i++)
        assert_int_equal(tr_buf_printf(log, "2024-05-01T10:%02d:%02d INFO request %d served "
                                            "in 12ms path=/api/items/%d\n",
                                       i / 60 % 60, i % 60, i, i * 7),
                         0);
}

static void test_exception_in_the_middle_of_100k_survives_an_8k_cap(void **state)
{
    tr_buf log = TR_BUF_INIT(0);
    tr_logwin_stats st;
    char *out;

    (void)state;
    add_ordinary(&log, 0, 700);
    assert_int_equal(
        tr_buf_puts(&log, "Exception in thread \"main\" java.lang.IllegalStateException:"
                          " pool exhausted\n"
                          "\tat java.base/java.util.concurrent.ThreadPoolExecutor.run\n"
                          "Caused by: java.net.ConnectException: Connection refused\n"),
        0);
    add_ordinary(&log, 700, 1400);
    assert_true(log.len > 100 * 1024);
    out = cut(tr_buf_cstr(&log), 8192, 0, &st);
    assert_true(strlen(out) <= 8192);
    assert_non_null(strstr(out, "java.lang.IllegalStateException: pool exhausted"));
    assert_non_null(strstr(out, "Caused by: java.net.ConnectException: Connection refused"));
    assert_non_null(strstr(out, "request 699 served")); /* context before */
    assert_non_null(strstr(out, "request 1399 served")); /* the tail */
    assert_null(strstr(out, "request 100 served"));
    assert_non_null(strstr(out, "\xe2\x80\xa6 (697 lines omitted)\n"));
    assert_int_equal(st.lines_in, 1403);
    assert_int_equal(st.windows, 1);
    assert_int_equal(st.error_lines, 3);
    tr_free(out);
    tr_buf_dispose(&log);
}

static void test_overlapping_windows_merge_into_one(void **state)
{
    tr_buf log = TR_BUF_INIT(0);
    char *out;
    const char *first, *second;

    (void)state;
    add_ordinary(&log, 0, 50);
    assert_int_equal(tr_buf_puts(&log, "panic: runtime error: index out of range\n"), 0);
    add_ordinary(&log, 50, 52);
    assert_int_equal(tr_buf_puts(&log, "goroutine 1 [running]: fatal error\n"), 0);
    add_ordinary(&log, 52, 400);
    out = cut(tr_buf_cstr(&log), 4096, 5, NULL);
    first = strstr(out, "panic: runtime error");
    second = strstr(out, "goroutine 1 [running]");
    assert_non_null(first);
    assert_non_null(second);
    /* one window: no marker between the two error lines */
    assert_null(memmem(first, (size_t)(second - first), "omitted", 7));
    assert_non_null(strstr(out, "(47 lines omitted)"));
    tr_free(out);
    tr_buf_dispose(&log);
}

static void test_repeated_lines_fold_and_short_logs_pass_whole(void **state)
{
    char *out;

    (void)state;
    out = cut("start\nretry db\nretry db\nretry db\nOOMKilled\n", 0, 0, NULL);
    assert_string_equal(out, "start\nretry db\n[last line repeated 2 times]\nOOMKilled\n");
    tr_free(out);
    out = cut("one\ntwo\nthree\nfour\nfive\n", 0, 2, NULL);
    assert_string_equal(out, "\xe2\x80\xa6 (3 lines omitted)\nfour\nfive\n");
    tr_free(out);
    out = cut("", 10, 10, NULL);
    assert_string_equal(out, "");
    tr_free(out);
}

static void test_one_line_over_the_cap_keeps_its_tail(void **state)
{
    char *out;

    (void)state;
    out = cut("first\nxxxxxxxxxxxxxxxxxxxxxxxxxx\xc3\xa9 the end\n", 10, 0, NULL);
    assert_string_equal(out, "\xe2\x80\xa6 (1 line omitted)\n\xe2\x80\xa6\xc3\xa9 the end\n");
    tr_free(out);
}

static void test_error_patterns(void **state)
{
    const char *errors[] = {
        "ERROR db unreachable", "Traceback (most recent call last):", "  File \"app.py\", line 3",
        "segfault at 0 ip", "container exited with exit code 137", "dial tcp: connection refused",
        "permission denied", "context deadline exceeded", "read: i/o timeout", "OOMKilled",
        "Caused by: x", "\tat java.lang.Thread.run",
    };
    const char *ordinary[] = { "GET /health 200", "room 12 booked", "listening on :8080" };

    (void)state;
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (!tr_logwin_is_error_line(errors[i], strlen(errors[i])))
            fail_msg("not an error line: [%s]", errors[i]);
    for (size_t i = 0; i < sizeof(ordinary) / sizeof(ordinary[0]); i++)
        if (tr_logwin_is_error_line(ordinary[i], strlen(ordinary[i])))
            fail_msg("an error line: [%s]", ordinary[i]);
}

static void test_out_of_memory_is_reported(void **state)
{
    tr_buf out = TR_BUF_INIT(0);
    tr_logwin_options opt = { 100, 0, 0, 0 };
    int rc;

    (void)state;
    tr_alloc_fail_after(1, 1);
    rc = tr_logwin_cut(&out, "a\nb\n", 4, &opt, NULL);
    tr_alloc_fail_after(0, 0);
    assert_int_equal(rc, TR_ENOMEM);
    tr_buf_dispose(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exception_in_the_middle_of_100k_survives_an_8k_cap),
        cmocka_unit_test(test_overlapping_windows_merge_into_one),
        cmocka_unit_test(test_repeated_lines_fold_and_short_logs_pass_whole),
        cmocka_unit_test(test_one_line_over_the_cap_keeps_its_tail),
        cmocka_unit_test(test_error_patterns),
        cmocka_unit_test(test_out_of_memory_is_reported),
    };

    TR_RUN_TESTS("logwin", tests);
}
