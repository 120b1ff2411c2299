#include "testutil.h"

#include "buf.h"
#include "error.h"
#include "toml.h"

#include <math.h>

/* Parse a NUL-terminated document that must be valid. */
static tr_toml_value *parse_ok(const char *text)
{
    tr_toml_value *doc = NULL;
    tr_error err = { 0, "" };
    int rc = tr_toml_parse(&doc, text, strlen(text), &err);

    if (rc != TR_OK)
        fail_msg("unexpected parse error %d: %s\n--- document ---\n%s", rc, err.message, text);
    assert_non_null(doc);
    return doc;
}

/* Parse a document that must be rejected; returns the code, message in err. */
static int parse_fail(const char *text, tr_error *err)
{
    tr_toml_value *doc = NULL;
    int rc = tr_toml_parse(&doc, text, strlen(text), err);

    if (rc == TR_OK)
        fail_msg("document was accepted:\n%s", text);
    assert_null(doc);
    return rc;
}

static void test_toml_reads_every_scalar_type(void **state)
{
    tr_toml_value *doc;
    tr_toml_datetime dt;
    size_t len;

    (void)state;
    doc = parse_ok("title = \"TOML \\u00e9\\n\"\n"
                   "path = 'C:\\Users'\n"
                   "count = 1_000\n"
                   "mask = 0xff\n"
                   "ratio = 6.02e23\n"
                   "neg_inf = -inf\n"
                   "on = true\n"
                   "when = 1979-05-27T07:32:00.5-07:00\n"
                   "day = 1979-05-27\n"
                   "at = 07:32:00\n"
                   "local = 1979-05-27 07:32:00\n");
    assert_int_equal(tr_toml_count(doc), 11);
    assert_string_equal(tr_toml_string(tr_toml_get(doc, "title"), &len), "TOML \xc3\xa9\n");
    assert_int_equal(len, 8);
    assert_string_equal(tr_toml_string(tr_toml_get(doc, "path"), NULL), "C:\\Users");
    assert_int_equal(tr_toml_integer(tr_toml_get(doc, "count")), 1000);
    assert_int_equal(tr_toml_integer(tr_toml_get(doc, "mask")), 255);
    assert_true(fabs(tr_toml_float(tr_toml_get(doc, "ratio")) - 6.02e23) < 1e9);
    assert_true(isinf(tr_toml_float(tr_toml_get(doc, "neg_inf"))));
    assert_true(tr_toml_float(tr_toml_get(doc, "neg_inf")) < 0);
    assert_true(tr_toml_bool(tr_toml_get(doc, "on")));

    assert_int_equal(tr_toml_type_of(tr_toml_get(doc, "when")), TR_TOML_DATETIME);
    assert_string_equal(tr_toml_datetime_text(tr_toml_get(doc, "when"), &dt),
                        "1979-05-27T07:32:00.5-07:00");
    assert_int_equal(dt.year, 1979);
    assert_int_equal(dt.month, 5);
    assert_int_equal(dt.second, 0);
    assert_int_equal(dt.nanosecond, 500000000);
    assert_true(dt.has_offset);
    assert_int_equal(dt.offset_minutes, -420);
    assert_int_equal(tr_toml_type_of(tr_toml_get(doc, "day")), TR_TOML_DATE_LOCAL);
    assert_string_equal(tr_toml_datetime_text(tr_toml_get(doc, "day"), NULL), "1979-05-27");
    assert_int_equal(tr_toml_type_of(tr_toml_get(doc, "at")), TR_TOML_TIME_LOCAL);
    assert_string_equal(tr_toml_datetime_text(tr_toml_get(doc, "at"), &dt), "07:32:00");
    assert_int_equal(dt.hour, 7);
    assert_false(dt.has_offset);
    assert_int_equal(tr_toml_type_of(tr_toml_get(doc, "local")), TR_TOML_DATETIME_LOCAL);
    assert_string_equal(tr_toml_datetime_text(tr_toml_get(doc, "local"), NULL),
                        "1979-05-27T07:32:00");
    tr_toml_free(doc);
}

static void test_toml_accessors_of_the_wrong_type_return_nothing(void **state)
{
    tr_toml_value *doc;
    const tr_toml_value *name;
    tr_toml_datetime dt;
    size_t len = 99;

    (void)state;
    doc = parse_ok("name = \"x\"\nlist = [1]\n");
    name = tr_toml_get(doc, "name");
    assert_int_equal(tr_toml_integer(name), 0);
    assert_false(tr_toml_bool(name));
    assert_null(tr_toml_datetime_text(name, &dt));
    assert_int_equal(dt.year, 0);
    assert_int_equal(tr_toml_count(name), 0);
    assert_null(tr_toml_at(name, 0));
    assert_null(tr_toml_key_at(tr_toml_get(doc, "list"), 0));
    assert_null(tr_toml_string(tr_toml_get(doc, "list"), &len));
    assert_int_equal(len, 0);
    assert_null(tr_toml_get(doc, "missing"));
    assert_null(tr_toml_at(doc, 2));
    assert_null(tr_toml_key_at(doc, 2));
    assert_string_equal(tr_toml_type_name(TR_TOML_BOOL), "boolean");
    assert_string_equal(tr_toml_type_name(TR_TOML_TABLE), "table");
    tr_toml_free(doc);
    tr_toml_free(NULL);
}

static void test_toml_keeps_keys_in_document_order(void **state)
{
    static const char *const want[] = { "zeta", "alpha", "mid", "server", "clients" };
    tr_toml_value *doc;
    const tr_toml_value *server, *clients;
    size_t i;

    (void)state;
    doc = parse_ok("zeta = 1\nalpha = 2\nmid.x = 3\n"
                   "[server]\nport = 80\nhost = \"h\"\nbind = \"b\"\n"
                   "[[clients]]\nname = \"a\"\n[[clients]]\nname = \"b\"\n");
    assert_int_equal(tr_toml_count(doc), 5);
    for (i = 0; i < 5; i++)
        assert_string_equal(tr_toml_key_at(doc, i), want[i]);
    server = tr_toml_get(doc, "server");
    assert_string_equal(tr_toml_key_at(server, 0), "port");
    assert_string_equal(tr_toml_key_at(server, 1), "host");
    assert_string_equal(tr_toml_key_at(server, 2), "bind");
    clients = tr_toml_get(doc, "clients");
    assert_int_equal(tr_toml_type_of(clients), TR_TOML_ARRAY);
    assert_int_equal(tr_toml_count(clients), 2);
    assert_string_equal(tr_toml_string(tr_toml_get(tr_toml_at(clients, 1), "name"), NULL), "b");
    tr_toml_free(doc);
}

static void test_toml_records_the_line_of_each_key_and_item(void **state)
{
    tr_toml_value *doc;
    const tr_toml_value *list, *table;

    (void)state;
    doc = parse_ok("# comment\r\n"
                   "a = 1\r\n"
                   "\n"
                   "list = [\n"
                   "  1,\n"
                   "  \"\"\"two\n"
                   "lines\"\"\",\n"
                   "  3,\n"
                   "]\n"
                   "[table]\n"
                   "b.c = { d = 1 }\n");
    assert_int_equal(tr_toml_line(tr_toml_get(doc, "a")), 2);
    list = tr_toml_get(doc, "list");
    assert_int_equal(tr_toml_line(list), 4);
    assert_int_equal(tr_toml_line(tr_toml_at(list, 0)), 5);
    assert_int_equal(tr_toml_line(tr_toml_at(list, 1)), 6);
    assert_int_equal(tr_toml_line(tr_toml_at(list, 2)), 8);
    table = tr_toml_get(doc, "table");
    assert_int_equal(tr_toml_line(table), 10);
    assert_int_equal(tr_toml_line(tr_toml_get(table, "b")), 11);
    assert_int_equal(tr_toml_line(tr_toml_get(tr_toml_get(table, "b"), "c")), 11);
    tr_toml_free(doc);
}

static void test_toml_strings_and_keys_may_hold_nul(void **state)
{
    tr_toml_value *doc;
    const char *s;
    size_t len;

    (void)state;
    doc = parse_ok("\"k\\u0000ey\" = \"a\\u0000b\"\n");
    s = tr_toml_key_at_len(doc, 0, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(s, "k\0ey", 4);
    s = tr_toml_string(tr_toml_at(doc, 0), &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "a\0b", 3);
    tr_toml_free(doc);
}

static void test_toml_reads_integer_limits_and_rejects_overflow(void **state)
{
    tr_toml_value *doc;
    tr_error err;

    (void)state;
    doc = parse_ok("max = 9223372036854775807\nmin = -9223372036854775808\n"
                   "bin = 0b1010\noct = 0o777\n");
    assert_true(tr_toml_integer(tr_toml_get(doc, "max")) == INT64_MAX);
    assert_true(tr_toml_integer(tr_toml_get(doc, "min")) == INT64_MIN);
    assert_int_equal(tr_toml_integer(tr_toml_get(doc, "bin")), 10);
    assert_int_equal(tr_toml_integer(tr_toml_get(doc, "oct")), 511);
    tr_toml_free(doc);
    assert_int_equal(parse_fail("big = 9223372036854775808\n", &err), TR_EPARSE);
    assert_string_equal(err.message,
                        "1:7: invalid number '9223372036854775808': does not fit in a 64-bit "
                        "integer");
}

static void test_toml_errors_name_line_column_and_problem(void **state)
{
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        { "name = \"a\"\n\nname = \"b\"\n",
          "3:1: duplicate key 'name' (first defined on line 1)" },
        { "[server]\nport = 80\n  [server]\n",
          "3:3: table 'server' is already defined as a table by a [header] (line 1)" },
        { "a = 1\nb = \"open\n",
          "2:5: unterminated string (newline before the closing quote)" },
        { "x = { a = 1, }\n", "1:14: trailing comma in an inline table" },
        { "t = { a = 1 }\n[t.b]\n",
          "2:2: cannot add a table under 't': it is an inline table (line 1)" },
        { "d = 2021-02-29\n",
          "1:5: invalid date '2021-02-29' (out of range or not RFC 3339)" },
        { "s = \"\\ud800\"\n", "1:6: escape \\ud800 is not a Unicode scalar value" },
        { "k = 01\n", "1:5: invalid number '01': leading zeros are not allowed" },
        { "a = 1 b = 2\n", "1:7: expected a newline after a value, found 'b'" },
        { "# caf\xc3\xa9 \xff\n", "1:8: invalid UTF-8 byte 0xFF" },
        { "a = [1,\n2\n", "1:5: unterminated array" },
        { "v = nope\n", "1:5: invalid value 'nope' (strings need quotes)" },
        { "[a]\nb.c = 1\n[a.b]\n",
          "3:1: table 'a.b' is already defined as a table by dotted keys (line 2)" },
        { "[[a]]\n[a]\n", "2:1: table 'a' is already defined as an array of tables (line 1)" },
        { "[a.b]\n[a]\nb.c = 1\n",
          "3:1: cannot add keys to 'b' with a dotted key: it is already defined as a table by "
          "a [header] (line 1)" },
        { "a = [1]\n[[a]]\n",
          "2:1: cannot define array of tables 'a': it is already defined as a static array "
          "(line 1)" },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tr_error err = { 0, "" };

        assert_int_equal(parse_fail(cases[i].text, &err), TR_EPARSE);
        assert_int_equal(err.code, TR_EPARSE);
        assert_string_equal(err.message, cases[i].message);
    }
}

static void test_toml_follows_the_redefinition_rules(void **state)
{
    static const char *const valid[] = {
        "[x.y.z.w]\n[x]\n",
        ("[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n"
         "[fruit.apple.texture]\nsmooth = true\n"),
        "a = { b.c = 1, b.d = 2 }\n",
        "[[a]]\n[a.b]\nx = 1\n[[a]]\n[a.b]\nx = 2\n",
        "[a]\n[b]\n[a.c]\n",
    };
    static const char *const invalid[] = {
        "[a]\n[a]\n",
        "a = {}\na.b = 1\n",
        "a = { b = 1 }\n[a]\n",
        "a.b = 1\n[a]\n",
        "a = [{}]\n[[a]]\n",
        "a = [{ b = 1 }]\n[a.c]\n",
        "a = 1\na.b = 2\n",
        "x = { a.b = 1, a = 2 }\n",
        "[a]\nb = 1\n[a.b]\n",
        "[[a.b]]\n[a]\nb = 1\n",
    };
    tr_error err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        tr_toml_free(parse_ok(valid[i]));
    for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        assert_int_equal(parse_fail(invalid[i], &err), TR_EPARSE);
}

/* Repeat unit n times into a new NUL-terminated string. */
static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail), i;
    char *s = tr_malloc(hl + ul * n + tl + 1), *w = s;

    assert_non_null(s);
    memcpy(w, head, hl), w += hl;
    for (i = 0; i < n; i++)
        memcpy(w, unit, ul), w += ul;
    memcpy(w, tail, tl + 1);
    return s;
}

static void test_toml_limits_nesting_depth(void **state)
{
    char *text, *tail;
    tr_error err;

    (void)state;
    /* The key's array is at depth 1, so 128 brackets is the deepest allowed. */
    tail = repeat("", "]", TR_TOML_MAX_DEPTH, "\n");
    text = repeat("a = ", "[", TR_TOML_MAX_DEPTH, tail);
    tr_toml_free(parse_ok(text));
    tr_free(text);
    tr_free(tail);

    tail = repeat("", "]", TR_TOML_MAX_DEPTH + 1, "\n");
    text = repeat("a = ", "[", TR_TOML_MAX_DEPTH + 1, tail);
    assert_int_equal(parse_fail(text, &err), TR_EPARSE);
    assert_non_null(strstr(err.message, "nested deeper than 128 levels"));
    tr_free(text);
    tr_free(tail);

    text = repeat("a = ", "{b=", 1000, "1");
    assert_int_equal(parse_fail(text, &err), TR_EPARSE);
    assert_non_null(strstr(err.message, "nested deeper"));
    tr_free(text);

    text = repeat("k", ".k", 5000, " = 1\n");
    assert_int_equal(parse_fail(text, &err), TR_EPARSE);
    assert_non_null(strstr(err.message, "more than 128 parts"));
    tr_free(text);

    /* Many short dotted keys and headers together still cannot nest deeper. */
    text = repeat("", "[[k]]\n", 10, "");
    tr_toml_free(parse_ok(text));
    tr_free(text);
    text = repeat("[a", ".a", 100, "]\n");
    tail = repeat(text, "b.", 100, "c = 1\n");
    assert_int_equal(parse_fail(tail, &err), TR_EPARSE);
    assert_non_null(strstr(err.message, "nested deeper"));
    tr_free(tail);
    tr_free(text);
}

static void test_toml_limits_input_size(void **state)
{
    size_t len = TR_TOML_MAX_INPUT + 1;
    char *text = tr_malloc(len);
    tr_toml_value *doc = NULL;
    tr_error err = { 0, "" };

    (void)state;
    assert_non_null(text);
    memset(text, '\n', len);
    assert_int_equal(tr_toml_parse(&doc, text, len, &err), TR_ETOOBIG);
    assert_null(doc);
    assert_non_null(strstr(err.message, "more than"));
    /* Exactly at the limit is fine. */
    memcpy(text, "a = 1", 5);
    assert_int_equal(tr_toml_parse(&doc, text, len - 1, &err), TR_OK);
    assert_int_equal(tr_toml_integer(tr_toml_get(doc, "a")), 1);
    tr_toml_free(doc);
    tr_free(text);
}

static void test_toml_finds_keys_in_a_large_table(void **state)
{
    tr_buf text = TR_BUF_INIT(0);
    tr_toml_value *doc;
    tr_error err;
    char key[32];
    int i;

    (void)state;
    for (i = 0; i < 5000; i++)
        assert_int_equal(tr_buf_printf(&text, "key%d = %d\n", i, i), TR_OK);
    doc = parse_ok(tr_buf_cstr(&text));
    assert_int_equal(tr_toml_count(doc), 5000);
    for (i = 0; i < 5000; i += 7) {
        snprintf(key, sizeof(key), "key%d", i);
        assert_int_equal(tr_toml_integer(tr_toml_get(doc, key)), i);
    }
    assert_null(tr_toml_get(doc, "key5000"));
    tr_toml_free(doc);
    assert_int_equal(tr_buf_puts(&text, "key4321 = 0\n"), TR_OK);
    assert_int_equal(parse_fail(tr_buf_cstr(&text), &err), TR_EPARSE);
    assert_string_equal(err.message,
                        "5001:1: duplicate key 'key4321' (first defined on line 4322)");
    tr_buf_dispose(&text);
}

static const char medium_document[] =
    "title = \"medium \\u00e9 document\"\n"
    "ports = [ 80, 443, 8080 ]\n"
    "owner = { name = \"ops\", since = 2020-01-02T03:04:05Z }\n"
    "a.b.c = 'dotted'\n"
    "[server]\n"
    "host = \"\"\"\nmulti\nline\"\"\"\n"
    "ratio = 0.5\n"
    "[server.limits]\n"
    "depth = [[1, 2], [3, [4]]]\n"
    "[[clients]]\n"
    "name = \"one\"\n"
    "[[clients]]\n"
    "name = \"two\"\n"
    "k0 = 0\nk1 = 1\nk2 = 2\nk3 = 3\nk4 = 4\nk5 = 5\nk6 = 6\nk7 = 7\nk8 = 8\nk9 = 9\n";

/*
 * Fail the n-th allocation (and, when sticky, all after it) for n = 1, 2, ...
 * until the parse succeeds; returns how many allocations the parse needed.
 */
static long fail_each_allocation(int sticky)
{
    long n, live;
    int rc = TR_ENOMEM;

    for (n = 1; rc != TR_OK; n++) {
        tr_toml_value *doc = NULL;
        tr_error err = { 0, "" };

        live = tr_alloc_live();
        tr_alloc_fail_after(n, sticky);
        rc = tr_toml_parse(&doc, medium_document, sizeof(medium_document) - 1, &err);
        tr_alloc_fail_after(0, 0);
        if (rc == TR_OK) {
            assert_int_equal(tr_toml_count(doc), 6);
            assert_int_equal(tr_toml_count(tr_toml_get(tr_toml_get(doc, "server"), "limits")), 1);
            assert_int_equal(tr_toml_count(tr_toml_at(tr_toml_get(doc, "clients"), 1)), 11);
            tr_toml_free(doc);
        } else {
            assert_int_equal(rc, TR_ENOMEM);
            assert_null(doc);
            assert_non_null(strstr(err.message, "out of memory"));
        }
        assert_int_equal(tr_alloc_live(), live);
        assert_true(n < 10000);
    }
    return n - 1;
}

static void test_toml_fails_cleanly_at_every_allocation(void **state)
{
    (void)state;
    assert_true(fail_each_allocation(1) > 20);
    assert_true(fail_each_allocation(0) > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_toml_reads_every_scalar_type),
        cmocka_unit_test(test_toml_accessors_of_the_wrong_type_return_nothing),
        cmocka_unit_test(test_toml_keeps_keys_in_document_order),
        cmocka_unit_test(test_toml_records_the_line_of_each_key_and_item),
        cmocka_unit_test(test_toml_strings_and_keys_may_hold_nul),
        cmocka_unit_test(test_toml_reads_integer_limits_and_rejects_overflow),
        cmocka_unit_test(test_toml_errors_name_line_column_and_problem),
        cmocka_unit_test(test_toml_follows_the_redefinition_rules),
        cmocka_unit_test(test_toml_limits_nesting_depth),
        cmocka_unit_test(test_toml_limits_input_size),
        cmocka_unit_test(test_toml_finds_keys_in_a_large_table),
        cmocka_unit_test(test_toml_fails_cleanly_at_every_allocation),
    };

    TR_RUN_TESTS("toml", tests);
}
