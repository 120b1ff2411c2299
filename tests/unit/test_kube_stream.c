/*
 * test_kube_stream.c - the watch-stream splitter on real recorded streams
 * (../shared/fixtures/k8s) in every chunking, and on bad input: what the
 * reflector's consumer would see (types, names, resourceVersions) and the
 * error text a user would read.
 */
#include "testutil.h"

#include "buf.h"
#include "error.h"
#include "kube_stream.h"

#ifndef SHARED_DIR
#define SHARED_DIR "../shared"
#endif
#define FIXTURES SHARED_DIR "/fixtures/k8s/"

typedef struct seen {
    tr_buf log;       /* "TYPE name rv\n" per event */
    int count;
    int stop_after;   /* 0 = never */
} seen;

static int on_event(const tr_kube_event *ev, void *userdata)
{
    seen *s = userdata;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(ev->object, "metadata");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");

    s->count++;
    assert_int_equal(tr_buf_printf(&s->log, "%s %s %s\n", tr_kube_event_type_name(ev->type),
                                   cJSON_IsString(name) ? name->valuestring : "-",
                                   cJSON_IsString(rv) ? rv->valuestring : "-"), TR_OK);
    return s->stop_after && s->count >= s->stop_after;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data;
    long size;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    data = tr_malloc((size_t)size + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
    data[size] = '\0';
    fclose(f);
    *len = (size_t)size;
    return data;
}

/* Feed text in chunks of chunk bytes; returns the first error code. */
static int feed_chunked(const char *text, size_t len, size_t chunk, seen *s, tr_error *err)
{
    tr_kube_stream st;
    size_t off;
    int rc = TR_OK;

    tr_kube_stream_init(&st, 0);
    for (off = 0; off < len && rc == TR_OK; off += chunk)
        rc = tr_kube_stream_feed(&st, text + off, len - off < chunk ? len - off : chunk, on_event,
                                 s, err);
    if (rc == TR_OK)
        rc = tr_kube_stream_finish(&st, err);
    tr_kube_stream_dispose(&st);
    return rc;
}

/* The body of the golden client-go capture, chunk framing removed. */
static char *golden_body(size_t *len)
{
    size_t raw_len, n;
    char *raw = read_file(FIXTURES "client-go-golden-watch-response.http", &raw_len);
    char *p = strstr(raw, "\r\n\r\n");
    tr_buf body = TR_BUF_INIT(0);
    char *out;

    if (p)
        p += 4;
    else {
        p = strstr(raw, "\n\n");
        assert_non_null(p);
        p += 2;
    }
    for (;;) {
        char *end;

        n = strtoul(p, &end, 16);
        assert_true(end != p);
        p = strchr(end, '\n');
        assert_non_null(p);
        p++;
        if (n == 0)
            break;
        assert_int_equal(tr_buf_put(&body, p, n), TR_OK);
        p += n;
        while (*p == '\r' || *p == '\n')
            p++;
    }
    tr_free(raw);
    *len = body.len;
    out = tr_buf_detach(&body);
    assert_non_null(out);
    return out;
}

static void test_golden_watch_in_every_chunking(void **state)
{
    size_t len, chunk;
    char *body = golden_body(&len);

    for (chunk = 1; chunk <= len; chunk = chunk < 8 ? chunk + 1 : chunk * 3) {
        seen s = { TR_BUF_INIT(0), 0, 0 };
        tr_error err;

        assert_int_equal(feed_chunked(body, len, chunk, &s, &err), TR_OK);
        assert_string_equal(tr_buf_cstr(&s.log), "ADDED foobar 217\nBOOKMARK - 964\n");
        tr_buf_dispose(&s.log);
    }
    tr_free(body);
}

static void test_expired_error_fixtures_give_410_status(void **state)
{
    static const char *const files[] = { FIXTURES "watch-410-gone.jsonl",
                                         FIXTURES "watch-error-410-expired.jsonl" };
    size_t i, len;

    for (i = 0; i < 2; i++) {
        char *text = read_file(files[i], &len);
        tr_kube_event ev;
        tr_kube_status status;
        cJSON *root;
        tr_error err;
        char *nl = memchr(text, '\n', len);

        assert_int_equal(tr_kube_event_parse(text, nl ? (size_t)(nl - text) : len, 1, &ev, &root,
                                             &err), TR_OK);
        assert_int_equal(ev.type, TR_KUBE_ERROR);
        tr_kube_status_read(ev.object, &status);
        assert_int_equal(status.code, 410);
        assert_string_equal(status.reason, "Expired");
        assert_true(tr_kube_status_is_expired(&status));
        cJSON_Delete(root);
        tr_free(text);
    }
}

static void test_real_event_stream_many_lines_per_chunk(void **state)
{
    size_t len, i, one_len;
    char *one = read_file(FIXTURES "events-watch.jsonl", &one_len);
    tr_buf many = TR_BUF_INIT(0);
    seen s = { TR_BUF_INIT(0), 0, 0 };
    tr_error err;

    /* 50 copies plus blank keep-alive lines, fed in chunks spanning many lines. */
    for (i = 0; i < 50; i++) {
        assert_int_equal(tr_buf_put(&many, one, one_len), TR_OK);
        if (one_len && one[one_len - 1] != '\n')
            assert_int_equal(tr_buf_putc(&many, '\n'), TR_OK);
        if (i % 10 == 0)
            assert_int_equal(tr_buf_puts(&many, "\r\n"), TR_OK);
    }
    len = many.len;
    assert_int_equal(feed_chunked(many.ptr, len, 65536, &s, &err), TR_OK);
    assert_int_equal(s.count, 50);
    assert_non_null(strstr(tr_buf_cstr(&s.log), "ADDED checkout-5f794b8478-kjmkd.p4drh 341\n"));
    tr_buf_dispose(&s.log);
    tr_buf_dispose(&many);
    tr_free(one);
}

static void expect_error(const char *text, int code, const char *needle, int events_before)
{
    size_t chunk;

    for (chunk = 1; chunk <= 64; chunk *= 4) {
        seen s = { TR_BUF_INIT(0), 0, 0 };
        tr_error err = { 0 };

        assert_int_equal(feed_chunked(text, strlen(text), chunk, &s, &err), code);
        if (strstr(err.message, needle) == NULL)
            fail_msg("error \"%s\" lacks \"%s\"", err.message, needle);
        assert_int_equal(s.count, events_before);
        tr_buf_dispose(&s.log);
    }
}

#define GOOD "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"5\"}}}\n"

static void test_bad_lines_are_named_by_line_number(void **state)
{
    expect_error(GOOD "{\"type\":\"ADDED\",\"object\":{\"metadata\":\n", TR_EPARSE,
                 "line 2: not valid JSON", 1);
    expect_error(GOOD "\n" GOOD "{\"type\":\"RENAMED\",\"object\":{}}\n", TR_EPARSE,
                 "line 4: unknown event type \"RENAMED\"", 2);
    expect_error("{\"type\":\"DELETED\"}\n", TR_EPARSE, "line 1: DELETED event without \"object\"",
                 0);
    expect_error("{\"type\":\"MODIFIED\",\"object\":[1]}\n", TR_EPARSE,
                 "line 1: MODIFIED event whose \"object\" is not a JSON object", 0);
    expect_error("[1,2]\n", TR_EPARSE, "line 1: not a JSON object", 0);
    expect_error("{\"object\":{}}\n", TR_EPARSE, "line 1: no \"type\" string", 0);
    expect_error(GOOD "{\"type\":\"ADDED\",\"object\":{}} trailing\n", TR_EPARSE,
                 "line 2: extra data", 1);
}

static void test_truncated_last_line_is_reported_not_parsed(void **state)
{
    expect_error(GOOD GOOD "{\"type\":\"ADDED\",\"object\":{\"metadata\":{}}}", TR_EPARSE,
                 "line 3: truncated last line", 2);
}

static void test_line_over_cap_is_refused(void **state)
{
    tr_kube_stream st;
    seen s = { TR_BUF_INIT(0), 0, 0 };
    char big[300];
    tr_error err;
    int rc;

    memset(big, 'x', sizeof(big));
    tr_kube_stream_init(&st, 256);
    assert_int_equal(tr_kube_stream_feed(&st, GOOD, strlen(GOOD), on_event, &s, &err), TR_OK);
    rc = tr_kube_stream_feed(&st, big, 200, on_event, &s, &err);
    assert_int_equal(rc, TR_OK);
    rc = tr_kube_stream_feed(&st, big, 100, on_event, &s, &err);
    assert_int_equal(rc, TR_ETOOBIG);
    assert_non_null(strstr(err.message, "line 2: longer than 256 bytes"));
    /* A dead stream refuses more input instead of resynchronising mid-line. */
    assert_int_equal(tr_kube_stream_feed(&st, GOOD, strlen(GOOD), on_event, &s, &err), TR_EINVAL);
    assert_int_equal(s.count, 1);
    tr_kube_stream_dispose(&st);
    tr_buf_dispose(&s.log);
}

static void test_consumer_can_stop_the_stream(void **state)
{
    tr_kube_stream st;
    seen s = { TR_BUF_INIT(0), 0, 2 };
    tr_error err;

    tr_kube_stream_init(&st, 0);
    assert_int_equal(tr_kube_stream_feed(&st, GOOD GOOD GOOD, 3 * strlen(GOOD), on_event, &s,
                                         &err), TR_ECANCELLED);
    assert_int_equal(s.count, 2);
    tr_kube_stream_dispose(&st);
    tr_buf_dispose(&s.log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_watch_in_every_chunking),
        cmocka_unit_test(test_expired_error_fixtures_give_410_status),
        cmocka_unit_test(test_real_event_stream_many_lines_per_chunk),
        cmocka_unit_test(test_bad_lines_are_named_by_line_number),
        cmocka_unit_test(test_truncated_last_line_is_reported_not_parsed),
        cmocka_unit_test(test_line_over_cap_is_refused),
        cmocka_unit_test(test_consumer_can_stop_the_stream),
    };

    TR_RUN_TESTS("kube_stream", tests);
}
