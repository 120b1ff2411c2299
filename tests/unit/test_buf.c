#include "testutil.h"

#include "buf.h"
#include "error.h"

static void test_buf_appends_and_terminates(void **state)
{
    tr_buf b = TR_BUF_INIT(0);

    (void)state;
    assert_string_equal(tr_buf_cstr(&b), "");
    assert_int_equal(tr_buf_puts(&b, "hello"), TR_OK);
    assert_int_equal(tr_buf_printf(&b, " %d %s", 42, "world"), TR_OK);
    assert_int_equal(b.len, strlen("hello 42 world"));
    assert_string_equal(tr_buf_cstr(&b), "hello 42 world");
    tr_buf_consume(&b, 6);
    assert_string_equal(tr_buf_cstr(&b), "42 world");
    tr_buf_dispose(&b);
}

static void test_buf_refuses_past_cap_and_keeps_content(void **state)
{
    tr_buf b = TR_BUF_INIT(8);

    (void)state;
    assert_int_equal(tr_buf_puts(&b, "12345678"), TR_OK);
    assert_int_equal(tr_buf_putc(&b, '9'), TR_ETOOBIG);
    assert_int_equal(tr_buf_printf(&b, "%s", "x"), TR_ETOOBIG);
    assert_string_equal(tr_buf_cstr(&b), "12345678");
    tr_buf_dispose(&b);
}

static void test_buf_json_escape(void **state)
{
    tr_buf b = TR_BUF_INIT(0);
    const char raw[] = "a\"b\\c\nd\x01";

    (void)state;
    assert_int_equal(tr_buf_put_json_escaped(&b, raw, sizeof(raw) - 1), TR_OK);
    assert_string_equal(tr_buf_cstr(&b), "a\\\"b\\\\c\\nd\\u0001");
    tr_buf_dispose(&b);
}

static void test_buf_survives_allocation_failure(void **state)
{
    tr_buf b = TR_BUF_INIT(0);

    (void)state;
    tr_alloc_fail_after(1, 0);
    assert_int_equal(tr_buf_puts(&b, "x"), TR_ENOMEM);
    assert_string_equal(tr_buf_cstr(&b), "");
    assert_int_equal(tr_buf_puts(&b, "x"), TR_OK);
    assert_string_equal(tr_buf_cstr(&b), "x");
    tr_buf_dispose(&b);
}

static void test_error_prefix_and_truncation(void **state)
{
    tr_error err;
    char big[2 * TR_ERROR_MSG_MAX];

    (void)state;
    assert_int_equal(tr_error_set(&err, TR_ECONFIG, "key: %s", "bad"), TR_ECONFIG);
    tr_error_prefix(&err, "%s:%d: ", "a.toml", 3);
    assert_string_equal(err.message, "a.toml:3: key: bad");
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tr_error_set(&err, TR_EINVAL, "%s", big);
    assert_string_equal(err.message + TR_ERROR_MSG_MAX - 4, "...");
    assert_string_equal(tr_strerror(TR_ENOMEM), "out of memory");
}

static void test_buf_put_escaped_keeps_unreserved_and_encodes_the_rest(void **state)
{
    tr_buf b = TR_BUF_INIT(0);

    (void)state;
    assert_int_equal(tr_buf_put_escaped(&b, "job-name=tf apply/1~ü&x"), TR_OK);
    assert_string_equal(tr_buf_cstr(&b), "job-name%3Dtf%20apply%2F1~%C3%BC%26x");
    tr_buf_dispose(&b);
}

static void test_hex_value_reads_both_cases_and_refuses_other_bytes(void **state)
{
    (void)state;
    assert_int_equal(tr_hex_value('0'), 0);
    assert_int_equal(tr_hex_value('9'), 9);
    assert_int_equal(tr_hex_value('a'), 10);
    assert_int_equal(tr_hex_value('F'), 15);
    assert_int_equal(tr_hex_value('g'), -1);
    assert_int_equal(tr_hex_value('/'), -1);
    assert_int_equal(tr_hex_value(0xC3), -1); /* a UTF-8 lead byte, read as unsigned char */
    assert_int_equal(tr_hex_value('\0'), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_appends_and_terminates),
        cmocka_unit_test(test_buf_refuses_past_cap_and_keeps_content),
        cmocka_unit_test(test_buf_json_escape),
        cmocka_unit_test(test_buf_survives_allocation_failure),
        cmocka_unit_test(test_error_prefix_and_truncation),
        cmocka_unit_test(test_buf_put_escaped_keeps_unreserved_and_encodes_the_rest),
        cmocka_unit_test(test_hex_value_reads_both_cases_and_refuses_other_bytes),
    };
    TR_RUN_TESTS("buf", tests);
}
