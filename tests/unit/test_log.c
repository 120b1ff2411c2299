#include "testutil.h"

#include <unistd.h>

#include "log.h"

/* Run one log call with stderr sent to a temp file; returns what was written. */
static char *capture(tr_log_level level, const char *module, const char *msg)
{
    static char out[70000];
    FILE *tmp = tmpfile();
    int saved = dup(fileno(stderr));
    size_t n;

    assert_non_null(tmp);
    fflush(stderr);
    dup2(fileno(tmp), fileno(stderr));
    tr_log(level, module, "%s", msg);
    fflush(stderr);
    dup2(saved, fileno(stderr));
    close(saved);
    rewind(tmp);
    n = fread(out, 1, sizeof(out) - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    return out;
}

static void test_log_text_line_has_level_module_and_message(void **state)
{
    char *line;

    (void)state;
    tr_log_setup(TR_LOG_INFO, TR_LOG_TEXT);
    line = capture(TR_LOG_WARN, "store", "disk almost full");
    assert_non_null(strstr(line, " warn  store: disk almost full\n"));
    assert_int_equal(line[4], '-');
    assert_int_equal(line[23], 'Z');
}

static void test_log_drops_lines_below_the_level(void **state)
{
    (void)state;
    tr_log_setup(TR_LOG_WARN, TR_LOG_TEXT);
    assert_string_equal(capture(TR_LOG_INFO, "x", "quiet"), "");
    assert_string_equal(capture(TR_LOG_DEBUG, "x", "quiet"), "");
    assert_true(strlen(capture(TR_LOG_ERROR, "x", "loud")) > 0);
}

static void test_log_json_escapes_message(void **state)
{
    char *line;

    (void)state;
    tr_log_setup(TR_LOG_DEBUG, TR_LOG_JSON);
    line = capture(TR_LOG_INFO, "api", "quote \" and\nnewline");
    assert_non_null(strstr(line, "\"level\":\"info\",\"module\":\"api\","
                                 "\"msg\":\"quote \\\" and\\nnewline\"}\n"));
    assert_int_equal(strchr(line, '\n') - line + 1, (long)strlen(line));
    tr_log_setup(TR_LOG_INFO, TR_LOG_TEXT);
}

static void test_log_level_names_parse(void **state)
{
    (void)state;
    assert_int_equal(tr_log_level_parse("error"), TR_LOG_ERROR);
    assert_int_equal(tr_log_level_parse("debug"), TR_LOG_DEBUG);
    assert_int_equal(tr_log_level_parse("verbose"), -1);
}

static void test_log_caps_huge_messages(void **state)
{
    static char big[40000];
    char *line;

    (void)state;
    memset(big, 'a', sizeof(big) - 1);
    tr_log_setup(TR_LOG_INFO, TR_LOG_TEXT);
    line = capture(TR_LOG_INFO, "x", big);
    assert_non_null(strstr(line, "aaa... (23615 bytes cut)\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_text_line_has_level_module_and_message),
        cmocka_unit_test(test_log_drops_lines_below_the_level),
        cmocka_unit_test(test_log_json_escapes_message),
        cmocka_unit_test(test_log_level_names_parse),
        cmocka_unit_test(test_log_caps_huge_messages),
    };
    TR_RUN_TESTS("log", tests);
}
