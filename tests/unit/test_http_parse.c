#include "testutil.h"

#include "error.h"
#include "http_parse.h"

#define MAX_REQS 8

typedef struct fed {
    tr_http_inbound *reqs[MAX_REQS];
    size_t count;
    int rc;
    int continues;    /* how many times a 100 Continue was due */
    int continue_at;  /* bytes fed when the first one was due */
} fed;

/* Feeds len bytes in pieces of `chunk` bytes the way a server would. */
static void feed_all(tr_http_parser *p, const char *data, size_t len, size_t chunk, fed *out)
{
    size_t off = 0;
    tr_error err;

    memset(out, 0, sizeof(*out));
    out->continue_at = -1;
    while (off < len) {
        size_t piece = len - off < chunk ? len - off : chunk;
        size_t pos = 0;
        while (pos < piece) {
            size_t used = 0;
            tr_http_inbound *req = NULL;
            out->rc = tr_http_parser_feed(p, data + off + pos, piece - pos, &used, &req, &err);
            if (out->rc != TR_OK)
                return;
            if (tr_http_parser_take_continue(p)) {
                out->continues++;
                if (out->continue_at < 0)
                    out->continue_at = (int)(off + pos + used);
            }
            pos += used;
            if (req != NULL) {
                assert_true(out->count < MAX_REQS);
                out->reqs[out->count++] = req;
            }
        }
        off += piece;
    }
}

static void fed_free(fed *f)
{
    size_t i;

    for (i = 0; i < f->count; i++)
        tr_http_inbound_free(f->reqs[i]);
}

static tr_http_parser *parser_with(size_t max_header, size_t max_body, size_t max_headers,
                                   size_t max_url)
{
    tr_http_parse_limits limits = { max_header, max_body, max_headers, max_url, NULL, NULL };
    tr_http_parser *p = NULL;

    assert_int_equal(tr_http_parser_new(&p, &limits), TR_OK);
    return p;
}

static const char post_req[] =
    "POST /v1/incidents/abc%20def/chat?state=open&limit=10&q=a+b%26c&flag HTTP/1.1\r\n"
    "Host: localhost\r\n"
    "Content-Type: application/json  \r\n"
    "X-Custom:   spaced value\t\r\n"
    "Content-Length: 17\r\n"
    "\r\n"
    "{\"message\":\"hi\"}\n";

static void check_post(const tr_http_inbound *req)
{
    size_t len = 0;
    const char *name, *value;

    assert_string_equal(tr_http_inbound_method(req), "POST");
    assert_string_equal(tr_http_inbound_path(req), "/v1/incidents/abc%20def/chat");
    assert_string_equal(tr_http_inbound_query(req), "state=open&limit=10&q=a+b%26c&flag");
    assert_string_equal(tr_http_inbound_param(req, "state"), "open");
    assert_string_equal(tr_http_inbound_param(req, "limit"), "10");
    assert_string_equal(tr_http_inbound_param(req, "q"), "a b&c");
    assert_string_equal(tr_http_inbound_param(req, "flag"), "");
    assert_null(tr_http_inbound_param(req, "missing"));
    assert_int_equal(tr_http_inbound_param_count(req), 4);
    assert_int_equal(tr_http_inbound_param_at(req, 2, &name, &value), TR_OK);
    assert_string_equal(name, "q");
    assert_int_equal(tr_http_inbound_param_at(req, 4, &name, &value), TR_ENOTFOUND);
    assert_string_equal(tr_http_inbound_header(req, "content-type"), "application/json");
    assert_string_equal(tr_http_inbound_header(req, "X-CUSTOM"), "spaced value");
    assert_null(tr_http_inbound_header(req, "Authorization"));
    assert_int_equal(tr_http_inbound_header_count(req), 4);
    assert_string_equal(tr_http_inbound_body(req, &len), "{\"message\":\"hi\"}\n");
    assert_int_equal(len, 17);
    assert_int_equal(tr_http_inbound_keep_alive(req), 1);
    assert_int_equal(tr_http_inbound_version_minor(req), 1);
}

static void test_parser_assembles_request_fed_byte_by_byte(void **state)
{
    size_t chunks[] = { 1, 2, 3, 7, 64, sizeof(post_req) };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        tr_http_parser *p = parser_with(0, 0, 0, 0);
        fed f;
        feed_all(p, post_req, sizeof(post_req) - 1, chunks[i], &f);
        assert_int_equal(f.rc, TR_OK);
        assert_int_equal(f.count, 1);
        check_post(f.reqs[0]);
        assert_int_equal(tr_http_parser_state(p), TR_HTTP_PARSE_IDLE);
        fed_free(&f);
        tr_http_parser_free(p);
    }
}

static void test_parser_splits_pipelined_requests(void **state)
{
    const char two[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                       "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz"
                       "GET /c?x=%41 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    tr_http_parser *p = parser_with(0, 0, 0, 0);
    tr_http_inbound *req = NULL;
    size_t used = 0;
    tr_error err;
    fed f;

    (void)state;
    /* One feed stops right after the first request: the rest is the caller's. */
    assert_int_equal(tr_http_parser_feed(p, two, sizeof(two) - 1, &used, &req, &err), TR_OK);
    assert_non_null(req);
    assert_int_equal(used, strlen("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_string_equal(tr_http_inbound_path(req), "/a");
    tr_http_inbound_free(req);
    tr_http_parser_free(p);

    p = parser_with(0, 0, 0, 0);
    feed_all(p, two, sizeof(two) - 1, 5, &f);
    assert_int_equal(f.rc, TR_OK);
    assert_int_equal(f.count, 3);
    assert_string_equal(tr_http_inbound_path(f.reqs[0]), "/a");
    assert_string_equal(tr_http_inbound_body(f.reqs[1], NULL), "xyz");
    assert_string_equal(tr_http_inbound_param(f.reqs[2], "x"), "A");
    assert_int_equal(tr_http_inbound_keep_alive(f.reqs[1]), 1);
    assert_int_equal(tr_http_inbound_keep_alive(f.reqs[2]), 0);
    fed_free(&f);
    tr_http_parser_free(p);
}

static void test_parser_rejects_oversized_headers_with_431(void **state)
{
    char big[4096];
    tr_http_parser *p = parser_with(1024, 0, 0, 0);
    fed f;
    int n;

    (void)state;
    n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %01500d\r\n\r\n", 0);
    feed_all(p, big, (size_t)n, 100, &f);
    assert_int_equal(f.rc, TR_ETOOBIG);
    assert_int_equal(f.count, 0);
    assert_int_equal(tr_http_parser_error_status(p), 431);
    assert_int_equal(tr_http_parser_state(p), TR_HTTP_PARSE_FAILED);
    tr_http_parser_free(p);

    /* Whitespace that the header values do not keep counts too. */
    p = parser_with(1024, 0, 0, 0);
    memset(big, ' ', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX-Pad:", 22);
    memcpy(big + sizeof(big) - 5, "v\r\n\r\n", 5);
    feed_all(p, big, sizeof(big), 512, &f);
    assert_int_equal(f.rc, TR_ETOOBIG);
    assert_int_equal(tr_http_parser_error_status(p), 431);
    tr_http_parser_free(p);
}

static void test_parser_rejects_too_many_headers_with_431(void **state)
{
    const char req[] = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    tr_http_parser *p = parser_with(0, 0, 3, 0);
    fed f;

    (void)state;
    feed_all(p, req, sizeof(req) - 1, sizeof(req), &f);
    assert_int_equal(f.rc, TR_ETOOBIG);
    assert_int_equal(tr_http_parser_error_status(p), 431);
    tr_http_parser_free(p);
}

static void test_parser_rejects_large_content_length_with_413_before_body(void **state)
{
    const char req[] = "POST /x HTTP/1.1\r\nContent-Length: 2097152\r\n\r\n";
    tr_http_parser *p = parser_with(0, 0, 0, 0);
    fed f;

    (void)state;
    /* Only the headers are sent: the verdict must not wait for the body. */
    feed_all(p, req, sizeof(req) - 1, sizeof(req), &f);
    assert_int_equal(f.rc, TR_ETOOBIG);
    assert_int_equal(tr_http_parser_error_status(p), 413);
    tr_http_parser_free(p);
}

static size_t uploads_get_more(const char *method, const char *path, void *userdata)
{
    (void)method;
    (void)userdata;
    return strcmp(path, "/upload") == 0 ? 64 : 0;
}

static void test_parser_body_cap_per_path(void **state)
{
    tr_http_parse_limits limits = { 0, 16, 0, 0, uploads_get_more, NULL };
    const char big[] = "POST /upload HTTP/1.1\r\nContent-Length: 40\r\n\r\n"
                       "0123456789012345678901234567890123456789";
    const char other[] = "POST /x HTTP/1.1\r\nContent-Length: 40\r\n\r\n"
                         "0123456789012345678901234567890123456789";
    const char chunked[] = "POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "48\r\n0123456789012345678901234567890123456789"
                           "01234567890123456789012345678901\r\n0\r\n\r\n";
    tr_http_parser *p = NULL;
    fed f;

    (void)state;
    assert_int_equal(tr_http_parser_new(&p, &limits), TR_OK);
    feed_all(p, big, sizeof(big) - 1, 7, &f);
    assert_int_equal(f.rc, TR_OK);
    assert_int_equal(f.count, 1);
    size_t body_len = 0;
    (void)tr_http_inbound_body(f.reqs[0], &body_len);
    assert_int_equal(body_len, 40);
    tr_http_inbound_free(f.reqs[0]);
    tr_http_parser_free(p);
    /* Other paths keep max_body_bytes. */
    assert_int_equal(tr_http_parser_new(&p, &limits), TR_OK);
    feed_all(p, other, sizeof(other) - 1, 7, &f);
    assert_int_equal(f.rc, TR_ETOOBIG);
    assert_int_equal(tr_http_parser_error_status(p), 413);
    tr_http_parser_free(p);
    /* A chunked body past the path's own cap (72 > 64) is refused too. */
    assert_int_equal(tr_http_parser_new(&p, &limits), TR_OK);
    feed_all(p, chunked, sizeof(chunked) - 1, 5, &f);
    assert_int_equal(f.rc, TR_ETOOBIG);
    tr_http_parser_free(p);
}

static void test_parser_rejects_oversized_chunked_body_with_413(void **state)
{
    const char ok[] = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    const char big[] = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "10\r\n0123456789abcdef\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
    tr_http_parser *p = parser_with(0, 20, 0, 0);
    fed f;

    (void)state;
    feed_all(p, ok, sizeof(ok) - 1, 3, &f);
    assert_int_equal(f.rc, TR_OK);
    assert_int_equal(f.count, 1);
    assert_string_equal(tr_http_inbound_body(f.reqs[0], NULL), "hello world");
    assert_null(tr_http_inbound_header(f.reqs[0], "X-Trailer"));
    fed_free(&f);
    tr_http_parser_free(p);

    p = parser_with(0, 20, 0, 0);
    feed_all(p, big, sizeof(big) - 1, 7, &f);
    assert_int_equal(f.rc, TR_ETOOBIG);
    assert_int_equal(f.count, 0);
    assert_int_equal(tr_http_parser_error_status(p), 413);
    tr_http_parser_free(p);
}

static void expect_status(const char *raw, int status, size_t max_url)
{
    tr_http_parser *p = parser_with(0, 0, 0, max_url);
    tr_http_inbound *req = NULL;
    size_t used = 0;
    tr_error err;
    fed f;

    feed_all(p, raw, strlen(raw), 1, &f);
    assert_true(f.rc < 0);
    assert_int_equal(f.count, 0);
    assert_int_equal(tr_http_parser_error_status(p), status);
    /* A failed parser stays failed and says why. */
    assert_true(tr_http_parser_feed(p, "GET / HTTP/1.1\r\n\r\n", 18, &used, &req, &err) < 0);
    assert_null(req);
    assert_non_null(strstr(err.message, tr_http_reason(status)));
    tr_http_parser_free(p);
}

static void test_parser_maps_bad_requests_to_statuses(void **state)
{
    (void)state;
    expect_status("GARBAGE\r\n\r\n", 400, 0);
    expect_status("GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400, 0);
    expect_status("GET /a%zz HTTP/1.1\r\n\r\n", 400, 0);
    expect_status("GET /a%00b HTTP/1.1\r\n\r\n", 400, 0);
    expect_status("GET /a%4 HTTP/1.1\r\n\r\n", 400, 0);
    expect_status("GET /?q=%G1 HTTP/1.1\r\n\r\n", 400, 0);
    expect_status("GET /?q=%00 HTTP/1.1\r\n\r\n", 400, 0);
    expect_status("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, 0);
    expect_status("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n", 400, 0);
    expect_status("CONNECT host:443 HTTP/1.1\r\n\r\n", 400, 0);
    expect_status("GET /0123456789012345678901234567890123456789 HTTP/1.1\r\n\r\n", 414, 16);
    expect_status("GET / HTTP/2.0\r\n\r\n", 505, 0);
    expect_status("POST / HTTP/1.1\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\n", 417, 0);
}

static void test_parser_applies_keep_alive_rules(void **state)
{
    static const struct {
        const char *raw;
        int keep_alive;
    } cases[] = {
        { "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1 },
        { "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 0 },
        { "GET / HTTP/1.1\r\nConnection: Close\r\n\r\n", 0 },
        { "GET / HTTP/1.0\r\n\r\n", 0 },
        { "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1 },
        { "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 0 },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tr_http_parser *p = parser_with(0, 0, 0, 0);
        fed f;
        feed_all(p, cases[i].raw, strlen(cases[i].raw), 4, &f);
        assert_int_equal(f.rc, TR_OK);
        assert_int_equal(f.count, 1);
        assert_int_equal(tr_http_inbound_keep_alive(f.reqs[0]), cases[i].keep_alive);
        fed_free(&f);
        tr_http_parser_free(p);
    }
}

static void test_parser_signals_expect_continue_once_before_body(void **state)
{
    const char head[] = "PUT /up HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n";
    const char all[] = "PUT /up HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\nbody";
    tr_http_parser *p = parser_with(0, 0, 0, 0);
    tr_http_inbound *req = NULL;
    size_t used = 0;
    tr_error err;
    fed f;

    (void)state;
    assert_int_equal(tr_http_parser_feed(p, head, sizeof(head) - 1, &used, &req, &err), TR_OK);
    assert_null(req);
    assert_int_equal(tr_http_parser_state(p), TR_HTTP_PARSE_BODY);
    assert_int_equal(tr_http_parser_take_continue(p), 1);
    assert_int_equal(tr_http_parser_take_continue(p), 0);
    assert_int_equal(tr_http_parser_feed(p, "body", 4, &used, &req, &err), TR_OK);
    assert_non_null(req);
    assert_int_equal(tr_http_inbound_expects_continue(req), 1);
    assert_string_equal(tr_http_inbound_body(req, NULL), "body");
    tr_http_inbound_free(req);
    tr_http_parser_free(p);

    /* When the body is already there, no 100 Continue is due. */
    p = parser_with(0, 0, 0, 0);
    feed_all(p, all, sizeof(all) - 1, sizeof(all), &f);
    assert_int_equal(f.count, 1);
    assert_int_equal(f.continues, 0);
    fed_free(&f);
    tr_http_parser_free(p);
}

static void test_parser_reports_its_state(void **state)
{
    tr_http_parser *p = parser_with(0, 0, 0, 0);
    tr_http_inbound *req = NULL;
    size_t used = 0;
    tr_error err;

    (void)state;
    assert_int_equal(tr_http_parser_state(p), TR_HTTP_PARSE_IDLE);
    assert_int_equal(tr_http_parser_feed(p, "\r\n", 2, &used, &req, &err), TR_OK);
    assert_int_equal(tr_http_parser_state(p), TR_HTTP_PARSE_IDLE);
    assert_int_equal(tr_http_parser_feed(p, "GET / HT", 8, &used, &req, &err), TR_OK);
    assert_int_equal(tr_http_parser_state(p), TR_HTTP_PARSE_HEADERS);
    assert_int_equal(tr_http_parser_feed(p, "TP/1.1\r\n\r\n", 10, &used, &req, &err), TR_OK);
    assert_non_null(req);
    assert_int_equal(tr_http_parser_state(p), TR_HTTP_PARSE_IDLE);
    tr_http_inbound_free(req);
    tr_http_parser_free(p);
}

static void test_url_decode_rejects_bad_escapes_and_nul(void **state)
{
    char *out = NULL;

    (void)state;
    assert_int_equal(tr_http_url_decode(&out, "a%2Fb+c%7e", 10, 1), TR_OK);
    assert_string_equal(out, "a/b c~");
    tr_free(out);
    assert_int_equal(tr_http_url_decode(&out, "a+b", 3, 0), TR_OK);
    assert_string_equal(out, "a+b");
    tr_free(out);
    assert_int_equal(tr_http_url_decode(&out, "%", 1, 0), TR_EPARSE);
    assert_null(out);
    assert_int_equal(tr_http_url_decode(&out, "%a", 2, 0), TR_EPARSE);
    assert_int_equal(tr_http_url_decode(&out, "%00", 3, 0), TR_EPARSE);
    assert_int_equal(tr_http_url_decode(&out, "a\0b", 3, 0), TR_EPARSE);
}

static void test_parser_survives_allocation_failures(void **state)
{
    long n;
    int succeeded = 0;

    (void)state;
    for (n = 1; n < 200 && !succeeded; n++) {
        tr_http_parser *p = NULL;
        fed f;
        tr_alloc_fail_after(n, 0);
        if (tr_http_parser_new(&p, NULL) != TR_OK) {
            tr_alloc_fail_after(0, 0);
            continue;
        }
        feed_all(p, post_req, sizeof(post_req) - 1, 16, &f);
        tr_alloc_fail_after(0, 0);
        if (f.rc == TR_OK && f.count == 1) {
            check_post(f.reqs[0]);
            succeeded = 1;
        } else {
            assert_int_equal(f.rc, TR_ENOMEM);
            assert_int_equal(tr_http_parser_error_status(p), 500);
        }
        fed_free(&f);
        tr_http_parser_free(p);
    }
    assert_true(succeeded);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser_assembles_request_fed_byte_by_byte),
        cmocka_unit_test(test_parser_splits_pipelined_requests),
        cmocka_unit_test(test_parser_rejects_oversized_headers_with_431),
        cmocka_unit_test(test_parser_rejects_too_many_headers_with_431),
        cmocka_unit_test(test_parser_rejects_large_content_length_with_413_before_body),
        cmocka_unit_test(test_parser_rejects_oversized_chunked_body_with_413),
        cmocka_unit_test(test_parser_body_cap_per_path),
        cmocka_unit_test(test_parser_maps_bad_requests_to_statuses),
        cmocka_unit_test(test_parser_applies_keep_alive_rules),
        cmocka_unit_test(test_parser_signals_expect_continue_once_before_body),
        cmocka_unit_test(test_parser_reports_its_state),
        cmocka_unit_test(test_url_decode_rejects_bad_escapes_and_nul),
        cmocka_unit_test(test_parser_survives_allocation_failures),
    };

    TR_RUN_TESTS("http_parse", tests);
}
