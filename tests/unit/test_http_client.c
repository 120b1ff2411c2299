#include "testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "buf.h"
#include "error.h"
#include "http_client.h"

/*
 * A raw HTTP/1.1 server on 127.0.0.1 (ephemeral port) in the same loop as
 * the client, with canned answers chosen by path. It records the last request
 * it received, byte for byte.
 */

#define STREAM_LINES 20

typedef struct conn conn;

typedef struct test_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    conn *conns;
    tr_buf last_request;
    int requests;
} test_server;

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    test_server *srv;
    tr_buf in;
    conn *prev;
    conn *next;
    int open_handles;
    int closing;
    int stream_pos;     /* /stream: bytes of the stream already sent */
    int endless;        /* /forever */
};

typedef struct write_req {
    uv_write_t req;
    char *data;
} write_req;

static void on_written(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;

    tr_free(w->data);
    tr_free(w);
}

static void conn_write(conn *k, const char *data, size_t len)
{
    write_req *w;
    uv_buf_t buf;

    if (k->closing)
        return;
    w = tr_calloc(1, sizeof(*w));
    assert_non_null(w);
    w->data = tr_strndup(data, len);
    assert_non_null(w->data);
    buf = uv_buf_init(w->data, (unsigned int)len);
    if (uv_write(&w->req, (uv_stream_t *)&k->tcp, &buf, 1, on_written) != 0) {
        tr_free(w->data);
        tr_free(w);
    }
}

static void conn_printf(conn *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_printf(conn *k, const char *fmt, ...)
{
    tr_buf b = TR_BUF_INIT(0);
    va_list ap;

    va_start(ap, fmt);
    assert_int_equal(tr_buf_vprintf(&b, fmt, ap), TR_OK);
    va_end(ap);
    conn_write(k, b.ptr, b.len);
    tr_buf_dispose(&b);
}

static void on_conn_closed(uv_handle_t *handle)
{
    conn *k = handle->data;

    if (--k->open_handles == 0) {
        tr_buf_dispose(&k->in);
        tr_free(k);
    }
}

static void conn_close(conn *k)
{
    test_server *srv = k->srv;

    if (k->closing)
        return;
    k->closing = 1;
    if (k->prev)
        k->prev->next = k->next;
    else
        srv->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    uv_close((uv_handle_t *)&k->timer, on_conn_closed);
    uv_close((uv_handle_t *)&k->tcp, on_conn_closed);
}

static void stream_text(tr_buf *out)
{
    int i;

    for (i = 0; i < STREAM_LINES; i++)
        assert_int_equal(tr_buf_printf(out, "line-%02d\n", i), TR_OK);
}

/* /stream: one 3-byte chunk every 2 ms, so lines straddle reads. */
static void on_stream_tick(uv_timer_t *timer)
{
    conn *k = timer->data;
    tr_buf text = TR_BUF_INIT(0);
    int piece;

    if (k->endless) {
        conn_printf(k, "5\r\ntick\n\r\n");
        tr_buf_dispose(&text);
        return;
    }
    stream_text(&text);
    piece = (int)text.len - k->stream_pos;
    if (piece > 3)
        piece = 3;
    if (piece > 0) {
        conn_printf(k, "%x\r\n%.*s\r\n", piece, piece, text.ptr + k->stream_pos);
        k->stream_pos += piece;
    } else {
        conn_printf(k, "0\r\n\r\n");
        (void)uv_timer_stop(timer);
    }
    tr_buf_dispose(&text);
}

static void respond(conn *k, const char *path)
{
    static const char status_body[] = "{\"kind\":\"Status\",\"code\":403}";

    if (strcmp(path, "/hello") == 0) {
        conn_printf(k, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Test:  yes \r\n"
                       "Content-Length: 11\r\n\r\nhello world");
    } else if (strcmp(path, "/echo") == 0) {
        conn_printf(k, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    } else if (strcmp(path, "/429") == 0) {
        conn_printf(k, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
                       "Content-Length: 9\r\n\r\nslow down");
    } else if (strcmp(path, "/forbidden") == 0) {
        conn_printf(k, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                       "Content-Length: %zu\r\n\r\n%s", strlen(status_body), status_body);
    } else if (strcmp(path, "/stream") == 0 || strcmp(path, "/forever") == 0) {
        k->endless = strcmp(path, "/forever") == 0;
        conn_printf(k, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_int_equal(uv_timer_start(&k->timer, on_stream_tick, 2, 2), 0);
    } else if (strcmp(path, "/big") == 0 || strcmp(path, "/bigchunked") == 0) {
        char block[1000];
        int i;

        memset(block, 'x', sizeof(block));
        if (strcmp(path, "/big") == 0)
            conn_printf(k, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
        else
            conn_printf(k, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (i = 0; i < 100; i++) {
            if (strcmp(path, "/big") == 0)
                conn_write(k, block, sizeof(block));
            else
                conn_printf(k, "%zx\r\n%.*s\r\n", sizeof(block), (int)sizeof(block), block);
        }
        if (strcmp(path, "/bigchunked") == 0)
            conn_printf(k, "0\r\n\r\n");
    } else if (strcmp(path, "/stall") == 0) {
        /* A watch stream that goes quiet after its first line. */
        conn_printf(k, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabc\n\r\n");
    } else if (strncmp(path, "/n/", 3) == 0) {
        conn_printf(k, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\nn=%s",
                    strlen(path + 3) + 2, path + 3);
    } else if (strcmp(path, "/hang") != 0) {
        conn_printf(k, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    buf->base = tr_malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

/* Complete requests are answered in order (keep-alive, no pipelining limits). */
static void on_conn_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    conn *k = stream->data;

    if (nread < 0) {
        tr_free(buf->base);
        conn_close(k);
        return;
    }
    assert_int_equal(tr_buf_put(&k->in, buf->base, (size_t)nread), TR_OK);
    tr_free(buf->base);
    for (;;) {
        const char *end = memmem(k->in.ptr, k->in.len, "\r\n\r\n", 4);
        const char *cl;
        size_t head_len;
        size_t body_len = 0;
        char path[256];

        if (end == NULL)
            return;
        head_len = (size_t)(end - k->in.ptr) + 4;
        cl = strcasestr(k->in.ptr, "\r\ncontent-length:");
        if (cl && cl < end)
            body_len = strtoul(cl + 17, NULL, 10);
        if (k->in.len < head_len + body_len)
            return;
        tr_buf_clear(&k->srv->last_request);
        assert_int_equal(tr_buf_put(&k->srv->last_request, k->in.ptr, head_len + body_len),
                         TR_OK);
        k->srv->requests++;
        assert_int_equal(sscanf(k->in.ptr, "%*s %255s", path), 1);
        tr_buf_consume(&k->in, head_len + body_len);
        respond(k, path);
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    test_server *srv = listener->data;
    conn *k;

    assert_int_equal(status, 0);
    k = tr_calloc(1, sizeof(*k));
    assert_non_null(k);
    k->srv = srv;
    tr_buf_init(&k->in, 1024 * 1024);
    assert_int_equal(uv_tcp_init(srv->loop, &k->tcp), 0);
    assert_int_equal(uv_timer_init(srv->loop, &k->timer), 0);
    k->tcp.data = k;
    k->timer.data = k;
    k->open_handles = 2;
    k->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = k;
    srv->conns = k;
    assert_int_equal(uv_accept(listener, (uv_stream_t *)&k->tcp), 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, on_conn_read), 0);
}

static void server_start(test_server *srv, uv_loop_t *loop)
{
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof(bound);

    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    tr_buf_init(&srv->last_request, 0);
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
    assert_int_equal(uv_tcp_init(loop, &srv->listener), 0);
    srv->listener.data = srv;
    assert_int_equal(uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&srv->listener, 128, on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len), 0);
    srv->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void server_stop(test_server *srv)
{
    while (srv->conns)
        conn_close(srv->conns);
    uv_close((uv_handle_t *)&srv->listener, NULL);
}

/* ---- fixture: loop + server + client ----------------------------------- */

typedef struct fixture {
    uv_loop_t loop;
    test_server srv;
    tr_http_client *client;
    uv_timer_t guard;
    int guard_fired;
    long live_before;
} fixture;

typedef struct outcome {
    fixture *f;
    int done_count;
    int result;
    long status;
    tr_buf body;
    char message[TR_ERROR_MSG_MAX];
    char header[256];         /* value of header_name, "" when absent */
    const char *header_name;
    int data_calls;
    tr_buf streamed;
    int headers_calls;
    long headers_status;
    int data_before_headers;
    int cancel_after_data_calls;  /* cancel from on_data at this call, 0 = never */
    int abort_after_data_calls;   /* return non-zero from on_data at this call */
    int64_t done_at_ms;
} outcome;

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fixture_open(fixture *f)
{
    tr_error err;

    memset(f, 0, sizeof(*f));
    f->live_before = tr_alloc_live();
    assert_int_equal(uv_loop_init(&f->loop), 0);
    server_start(&f->srv, &f->loop);
    assert_int_equal(tr_http_client_new(&f->client, &f->loop, &err), TR_OK);
    assert_int_equal(uv_timer_init(&f->loop, &f->guard), 0);
    f->guard.data = f;
}

/* Free everything, and check the loop closes and nothing of ours leaked. */
static void fixture_close(fixture *f)
{
    tr_http_client_free(f->client);
    f->client = NULL;
    server_stop(&f->srv);
    uv_close((uv_handle_t *)&f->guard, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    tr_buf_dispose(&f->srv.last_request);
    assert_int_equal(tr_alloc_live(), f->live_before);
}

static void on_guard(uv_timer_t *timer)
{
    ((fixture *)timer->data)->guard_fired = 1;
}

/* Run the loop until *counter reaches target; 0 on success, -1 after limit_ms. */
static int run_until(fixture *f, const int *counter, int target, int limit_ms)
{
    f->guard_fired = 0;
    assert_int_equal(uv_timer_start(&f->guard, on_guard, (uint64_t)limit_ms, 0), 0);
    while (*counter < target && !f->guard_fired)
        (void)uv_run(&f->loop, UV_RUN_ONCE);
    (void)uv_timer_stop(&f->guard);
    return *counter >= target ? 0 : -1;
}

static void outcome_init(outcome *o, fixture *f)
{
    memset(o, 0, sizeof(*o));
    o->f = f;
    tr_buf_init(&o->body, 0);
    tr_buf_init(&o->streamed, 0);
}

static void outcome_dispose(outcome *o)
{
    tr_buf_dispose(&o->body);
    tr_buf_dispose(&o->streamed);
}

static void on_done_record(const tr_http_response *resp, void *userdata)
{
    outcome *o = userdata;
    const char *value;

    o->done_count++;
    o->result = resp->result;
    o->status = resp->status;
    o->done_at_ms = now_ms();
    tr_buf_clear(&o->body);
    assert_int_equal(tr_buf_put(&o->body, resp->body, resp->body_len), TR_OK);
    (void)snprintf(o->message, sizeof(o->message), "%s", resp->message);
    value = o->header_name ? tr_http_call_header(resp->call, o->header_name) : NULL;
    (void)snprintf(o->header, sizeof(o->header), "%s", value ? value : "");
}

static int on_headers_record(tr_http_call *call, long status, void *userdata)
{
    outcome *o = userdata;
    const char *value = o->header_name ? tr_http_call_header(call, o->header_name) : NULL;

    o->headers_calls++;
    o->headers_status = status;
    assert_int_equal(tr_http_call_status(call), status);
    (void)snprintf(o->header, sizeof(o->header), "%s", value ? value : "");
    return 0;
}

static int on_data_record(tr_http_call *call, const char *data, size_t len, void *userdata)
{
    outcome *o = userdata;

    if (o->headers_calls == 0)
        o->data_before_headers = 1;
    o->data_calls++;
    assert_int_equal(tr_buf_put(&o->streamed, data, len), TR_OK);
    if (o->cancel_after_data_calls && o->data_calls == o->cancel_after_data_calls)
        tr_http_call_cancel(call);
    if (o->abort_after_data_calls && o->data_calls == o->abort_after_data_calls)
        return 1;
    return 0;
}

static void make_url(char *url, size_t size, const fixture *f, const char *path)
{
    (void)snprintf(url, size, "http://127.0.0.1:%d%s", f->srv.port, path);
}

static void send_get(fixture *f, outcome *o, const char *path, int streaming)
{
    tr_http_request req;
    char url[128];
    tr_error err;

    memset(&req, 0, sizeof(req));
    make_url(url, sizeof(url), f, path);
    req.url = url;
    req.timeout_ms = 10000;
    req.on_done = on_done_record;
    if (streaming) {
        req.on_headers = on_headers_record;
        req.on_data = on_data_record;
    }
    req.userdata = o;
    assert_int_equal(tr_http_client_send(f->client, &req, NULL, &err), TR_OK);
}

/* ---- tests ----------------------------------------------------------------- */

static void test_get_returns_body_and_headers(void **state)
{
    fixture f;
    outcome o;

    fixture_open(&f);
    outcome_init(&o, &f);
    o.header_name = "x-TEST"; /* header names match case-insensitively */
    send_get(&f, &o, "/hello", 0);
    assert_int_equal(tr_http_client_active(f.client), 1);
    assert_int_equal(run_until(&f, &o.done_count, 1, 5000), 0);
    assert_int_equal(o.result, TR_OK);
    assert_int_equal(o.status, 200);
    assert_string_equal(o.body.ptr, "hello world");
    assert_string_equal(o.header, "yes");
    assert_string_equal(o.message, "");
    assert_int_equal(tr_http_client_active(f.client), 0);
    outcome_dispose(&o);
    fixture_close(&f);
}

static void test_post_body_arrives_byte_exact_with_headers(void **state)
{
    static const char body[] = "{\"a\":1}\0\r\n\r\nbinary\xff";
    static const char *const headers[] = { "Content-Type: application/json",
                                           "X-Token: abc123", NULL };
    fixture f;
    outcome o;
    tr_http_request req;
    char url[128];
    tr_error err;
    const char *raw;
    const char *head_end;
    char length_line[64];

    fixture_open(&f);
    outcome_init(&o, &f);
    memset(&req, 0, sizeof(req));
    make_url(url, sizeof(url), &f, "/echo");
    req.method = TR_HTTP_POST;
    req.url = url;
    req.headers = headers;
    req.body = body;
    req.body_len = sizeof(body) - 1;
    req.on_done = on_done_record;
    req.userdata = &o;
    assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_OK);
    memset(url, 0, sizeof(url)); /* the client keeps its own copy */
    assert_int_equal(run_until(&f, &o.done_count, 1, 5000), 0);
    assert_int_equal(o.result, TR_OK);
    assert_string_equal(o.body.ptr, "ok");

    raw = f.srv.last_request.ptr;
    head_end = memmem(raw, f.srv.last_request.len, "\r\n\r\n", 4);
    assert_non_null(head_end);
    assert_memory_equal(raw, "POST /echo HTTP/1.1\r\n", 21);
    assert_non_null(strcasestr(raw, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strcasestr(raw, "\r\nX-Token: abc123\r\n"));
    assert_non_null(strcasestr(raw, "\r\nUser-Agent: triaged/"));
    (void)snprintf(length_line, sizeof(length_line), "\r\nContent-Length: %zu\r\n",
                   sizeof(body) - 1);
    assert_non_null(strcasestr(raw, length_line));
    assert_null(strcasestr(raw, "\r\nExpect:"));
    assert_int_equal(f.srv.last_request.len - (size_t)(head_end + 4 - raw), sizeof(body) - 1);
    assert_memory_equal(head_end + 4, body, sizeof(body) - 1);
    outcome_dispose(&o);
    fixture_close(&f);
}

static void test_put_delete_and_basic_auth_on_the_wire(void **state)
{
    fixture f;
    outcome o;
    tr_http_request req;
    char url[128];
    tr_error err;
    const char *raw;

    fixture_open(&f);
    outcome_init(&o, &f);
    memset(&req, 0, sizeof(req));
    make_url(url, sizeof(url), &f, "/echo");
    req.method = TR_HTTP_PUT;
    req.url = url;
    req.body = "{}";
    req.body_len = 2;
    req.basic_user = "user";
    req.basic_password = "pass";
    req.user_agent = "probe/1";
    req.on_done = on_done_record;
    req.userdata = &o;
    assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_OK);
    assert_int_equal(run_until(&f, &o.done_count, 1, 5000), 0);
    assert_int_equal(o.result, TR_OK);
    raw = f.srv.last_request.ptr;
    assert_memory_equal(raw, "PUT /echo HTTP/1.1\r\n", 20);
    assert_non_null(strstr(raw, "\r\nAuthorization: Basic dXNlcjpwYXNz\r\n"));
    assert_non_null(strstr(raw, "\r\nUser-Agent: probe/1\r\n"));
    assert_memory_equal(raw + f.srv.last_request.len - 6, "\r\n\r\n{}", 6);

    memset(&req, 0, sizeof(req));
    req.method = TR_HTTP_DELETE;
    req.url = url;
    req.on_done = on_done_record;
    req.userdata = &o;
    assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_OK);
    assert_int_equal(run_until(&f, &o.done_count, 2, 5000), 0);
    assert_int_equal(o.result, TR_OK);
    raw = f.srv.last_request.ptr;
    assert_memory_equal(raw, "DELETE /echo HTTP/1.1\r\n", 23);
    assert_null(strstr(raw, "Authorization:"));
    assert_null(strcasestr(raw, "Content-Length:"));
    outcome_dispose(&o);
    fixture_close(&f);
}

static void test_stream_lines_reassembled_from_small_chunks(void **state)
{
    fixture f;
    outcome o;
    tr_buf expected = TR_BUF_INIT(0);

    fixture_open(&f);
    outcome_init(&o, &f);
    send_get(&f, &o, "/stream", 1);
    assert_int_equal(run_until(&f, &o.done_count, 1, 5000), 0);
    assert_int_equal(o.result, TR_OK);
    assert_int_equal(o.status, 200);
    assert_int_equal(o.headers_calls, 1);
    assert_int_equal(o.headers_status, 200);
    assert_false(o.data_before_headers);
    /* The body went to on_data in many pieces and was not buffered. */
    assert_true(o.data_calls >= 10);
    assert_int_equal(o.body.len, 0);
    stream_text(&expected);
    assert_string_equal(o.streamed.ptr, expected.ptr);
    tr_buf_dispose(&expected);
    outcome_dispose(&o);
    fixture_close(&f);
}

static void test_stream_sees_403_status_before_body(void **state)
{
    fixture f;
    outcome o;

    fixture_open(&f);
    outcome_init(&o, &f);
    o.header_name = "Content-Type";
    send_get(&f, &o, "/forbidden", 1);
    assert_int_equal(run_until(&f, &o.done_count, 1, 5000), 0);
    assert_int_equal(o.headers_status, 403);
    assert_false(o.data_before_headers);
    assert_string_equal(o.streamed.ptr, "{\"kind\":\"Status\",\"code\":403}");
    assert_int_equal(o.result, TR_OK);
    assert_int_equal(o.status, 403);
    assert_string_equal(o.header, "application/json");
    outcome_dispose(&o);
    fixture_close(&f);
}

static void test_429_exposes_status_and_retry_after(void **state)
{
    fixture f;
    outcome o;
    int64_t wait_ms = -1;

    fixture_open(&f);
    outcome_init(&o, &f);
    o.header_name = "retry-after";
    send_get(&f, &o, "/429", 0);
    assert_int_equal(run_until(&f, &o.done_count, 1, 5000), 0);
    assert_int_equal(o.result, TR_OK);
    assert_int_equal(o.status, 429);
    assert_string_equal(o.body.ptr, "slow down");
    assert_string_equal(o.header, "7");
    assert_int_equal(tr_http_retry_after_ms(o.header, 0, &wait_ms), TR_OK);
    assert_int_equal(wait_ms, 7000);
    outcome_dispose(&o);
    fixture_close(&f);
}

static void test_silent_server_times_out(void **state)
{
    fixture f;
    outcome o;
    tr_http_request req;
    char url[128];
    tr_error err;
    int64_t started;

    fixture_open(&f);
    outcome_init(&o, &f);
    memset(&req, 0, sizeof(req));
    make_url(url, sizeof(url), &f, "/hang");
    req.url = url;
    req.timeout_ms = 300;
    req.on_done = on_done_record;
    req.userdata = &o;
    started = now_ms();
    assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_OK);
    assert_int_equal(run_until(&f, &o.done_count, 1, 5000), 0);
    assert_int_equal(o.result, TR_ETIMEOUT);
    assert_int_equal(o.status, 0);
    assert_true(o.done_at_ms - started >= 250);
    assert_true(o.done_at_ms - started < 3000);
    assert_non_null(strstr(o.message, "curl error 28"));
    outcome_dispose(&o);
    fixture_close(&f);
}

static int closed_port(void)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    assert_true(fd >= 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

static void test_connection_refused_is_transport_error(void **state)
{
    fixture f;
    outcome o;
    tr_http_request req;
    char url[128];
    tr_error err;

    fixture_open(&f);
    outcome_init(&o, &f);
    memset(&req, 0, sizeof(req));
    (void)snprintf(url, sizeof(url), "http://127.0.0.1:%d/", closed_port());
    req.url = url;
    req.on_done = on_done_record;
    req.userdata = &o;
    assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_OK);
    assert_int_equal(run_until(&f, &o.done_count, 1, 5000), 0);
    assert_int_equal(o.result, TR_EHTTP);
    assert_int_equal(o.status, 0);
    assert_non_null(strstr(o.message, "onnect"));
    outcome_dispose(&o);
    fixture_close(&f);
}

static void test_cancel_from_on_data_ends_once_with_ecancelled(void **state)
{
    fixture f;
    outcome o;

    fixture_open(&f);
    outcome_init(&o, &f);
    o.cancel_after_data_calls = 3;
    send_get(&f, &o, "/forever", 1);
    assert_int_equal(run_until(&f, &o.done_count, 1, 5000), 0);
    assert_int_equal(o.result, TR_ECANCELLED);
    assert_int_equal(o.data_calls, 3); /* nothing delivered after the cancel */
    /* Keep the loop going a while: on_done must not run a second time. */
    assert_int_equal(run_until(&f, &o.done_count, 2, 100), -1);
    assert_int_equal(o.done_count, 1);
    outcome_dispose(&o);
    fixture_close(&f);
}

static void test_on_data_nonzero_aborts_with_ecancelled(void **state)
{
    fixture f;
    outcome o;

    fixture_open(&f);
    outcome_init(&o, &f);
    o.abort_after_data_calls = 2;
    send_get(&f, &o, "/forever", 1);
    assert_int_equal(run_until(&f, &o.done_count, 1, 5000), 0);
    assert_int_equal(o.result, TR_ECANCELLED);
    assert_int_equal(o.data_calls, 2);
    assert_non_null(strstr(o.message, "on_data"));
    outcome_dispose(&o);
    fixture_close(&f);
}

static void test_cancel_before_loop_runs_defers_callback(void **state)
{
    fixture f;
    outcome o;
    tr_http_request req;
    tr_http_call *call = NULL;
    char url[128];
    tr_error err;

    fixture_open(&f);
    outcome_init(&o, &f);
    memset(&req, 0, sizeof(req));
    make_url(url, sizeof(url), &f, "/hello");
    req.url = url;
    req.on_done = on_done_record;
    req.userdata = &o;
    assert_int_equal(tr_http_client_send(f.client, &req, &call, &err), TR_OK);
    assert_non_null(call);
    tr_http_call_cancel(call);
    tr_http_call_cancel(call); /* twice is harmless */
    assert_int_equal(o.done_count, 0);
    assert_int_equal(run_until(&f, &o.done_count, 1, 5000), 0);
    assert_int_equal(o.result, TR_ECANCELLED);
    assert_int_equal(run_until(&f, &o.done_count, 2, 50), -1);
    outcome_dispose(&o);
    fixture_close(&f);
}

static void expect_too_big(const char *path, int streaming)
{
    fixture f;
    outcome o;
    tr_http_request req;
    char url[128];
    tr_error err;

    fixture_open(&f);
    outcome_init(&o, &f);
    memset(&req, 0, sizeof(req));
    make_url(url, sizeof(url), &f, path);
    req.url = url;
    req.max_response_bytes = 5000;
    req.on_done = on_done_record;
    if (streaming)
        req.on_data = on_data_record;
    req.userdata = &o;
    assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_OK);
    assert_int_equal(run_until(&f, &o.done_count, 1, 5000), 0);
    assert_int_equal(o.result, TR_ETOOBIG);
    assert_int_equal(o.body.len, 0);
    assert_true(o.streamed.len <= 5000);
    outcome_dispose(&o);
    fixture_close(&f);
}

static void test_response_over_cap_is_too_big(void **state)
{
    expect_too_big("/big", 0);        /* refused from Content-Length */
    expect_too_big("/bigchunked", 0); /* no length: the write callback counts */
    expect_too_big("/bigchunked", 1); /* streaming with a cap */
}

static void test_headers_over_cap_are_too_big(void **state)
{
    fixture f;
    outcome o;
    tr_http_request req;
    char url[128];
    tr_error err;

    fixture_open(&f);
    outcome_init(&o, &f);
    memset(&req, 0, sizeof(req));
    make_url(url, sizeof(url), &f, "/hello");
    req.url = url;
    req.max_header_bytes = 16;
    req.on_done = on_done_record;
    req.userdata = &o;
    assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_OK);
    assert_int_equal(run_until(&f, &o.done_count, 1, 5000), 0);
    assert_int_equal(o.result, TR_ETOOBIG);
    assert_non_null(strstr(o.message, "header"));
    outcome_dispose(&o);
    fixture_close(&f);
}

#define MANY 50

typedef struct many_state {
    int done;
    int ok;
    int index_seen[MANY];
} many_state;

typedef struct many_item {
    many_state *state;
    int index;
} many_item;

static void on_many_done(const tr_http_response *resp, void *userdata)
{
    many_item *item = userdata;
    char expected[32];

    (void)snprintf(expected, sizeof(expected), "n=%d", item->index);
    item->state->done++;
    item->state->index_seen[item->index]++;
    if (resp->result == TR_OK && resp->status == 200 && strcmp(resp->body, expected) == 0)
        item->state->ok++;
}

static void test_fifty_concurrent_requests_all_complete(void **state)
{
    fixture f;
    many_state st;
    many_item items[MANY];
    tr_http_request req;
    char url[128];
    char path[32];
    tr_error err;
    int i;

    fixture_open(&f);
    memset(&st, 0, sizeof(st));
    for (i = 0; i < MANY; i++) {
        items[i].state = &st;
        items[i].index = i;
        memset(&req, 0, sizeof(req));
        (void)snprintf(path, sizeof(path), "/n/%d", i);
        make_url(url, sizeof(url), &f, path);
        req.url = url;
        req.on_done = on_many_done;
        req.userdata = &items[i];
        assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_OK);
    }
    assert_int_equal(tr_http_client_active(f.client), MANY);
    assert_int_equal(run_until(&f, &st.done, MANY, 10000), 0);
    assert_int_equal(st.ok, MANY);
    for (i = 0; i < MANY; i++)
        assert_int_equal(st.index_seen[i], 1);
    assert_int_equal(tr_http_client_active(f.client), 0);
    fixture_close(&f);
}

static void test_in_flight_cap_refuses_with_ebusy(void **state)
{
    fixture f;
    outcome a;
    outcome b;
    tr_http_request req;
    char url[128];
    tr_error err;

    fixture_open(&f);
    outcome_init(&a, &f);
    outcome_init(&b, &f);
    tr_http_client_set_max_calls(f.client, 1);
    send_get(&f, &a, "/hello", 0);
    memset(&req, 0, sizeof(req));
    make_url(url, sizeof(url), &f, "/hello");
    req.url = url;
    req.on_done = on_done_record;
    req.userdata = &b;
    assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_EBUSY);
    assert_int_equal(err.code, TR_EBUSY);
    assert_int_equal(run_until(&f, &a.done_count, 1, 5000), 0);
    assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_OK);
    assert_int_equal(run_until(&f, &b.done_count, 1, 5000), 0);
    assert_int_equal(b.result, TR_OK);
    outcome_dispose(&a);
    outcome_dispose(&b);
    fixture_close(&f);
}

static void test_send_rejects_bad_requests(void **state)
{
    fixture f;
    outcome o;
    tr_http_request req;
    tr_error err;

    fixture_open(&f);
    outcome_init(&o, &f);
    memset(&req, 0, sizeof(req));
    req.url = "file:///etc/passwd";
    req.on_done = on_done_record;
    req.userdata = &o;
    assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_EINVAL);
    req.url = "http://127.0.0.1:1/";
    req.body = "x";
    req.body_len = 1; /* GET with a body */
    assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_EINVAL);
    req.body = NULL;
    req.body_len = 0;
    req.on_done = NULL;
    assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_EINVAL);
    assert_int_equal(tr_http_client_active(f.client), 0);
    assert_int_equal(o.done_count, 0);
    outcome_dispose(&o);
    fixture_close(&f);
}

/* A chain: every on_done starts the next request until `remaining` is 0. */
typedef struct chain {
    fixture *f;
    int remaining;
    int done;
    int ok;
} chain;

static void on_chain_done(const tr_http_response *resp, void *userdata)
{
    chain *ch = userdata;
    tr_http_request req;
    char url[128];
    tr_error err;

    ch->done++;
    if (resp->result == TR_OK && strcmp(resp->body, "hello world") == 0)
        ch->ok++;
    if (--ch->remaining <= 0)
        return;
    memset(&req, 0, sizeof(req));
    make_url(url, sizeof(url), ch->f, "/hello");
    req.url = url;
    req.on_done = on_chain_done;
    req.userdata = ch;
    assert_int_equal(tr_http_client_send(ch->f->client, &req, NULL, &err), TR_OK);
}

static void test_on_done_can_start_the_next_request(void **state)
{
    fixture f;
    chain ch = { NULL, 5, 0, 0 };
    tr_http_request req;
    char url[128];
    tr_error err;

    fixture_open(&f);
    ch.f = &f;
    memset(&req, 0, sizeof(req));
    make_url(url, sizeof(url), &f, "/hello");
    req.url = url;
    req.on_done = on_chain_done;
    req.userdata = &ch;
    assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_OK);
    assert_int_equal(run_until(&f, &ch.done, 5, 5000), 0);
    assert_int_equal(ch.ok, 5);
    assert_int_equal(tr_http_client_active(f.client), 0);
    fixture_close(&f);
}

/* on_data runs inside curl: a send from there must be deferred, not refused. */
typedef struct send_from_data {
    fixture *f;
    outcome inner;
    int sent;
    int outer_done;
} send_from_data;

static int on_data_send_more(tr_http_call *call, const char *data, size_t len, void *userdata)
{
    send_from_data *s = userdata;

    if (!s->sent) {
        s->sent = 1;
        send_get(s->f, &s->inner, "/hello", 0);
    }
    return 0;
}

static void on_outer_done(const tr_http_response *resp, void *userdata)
{
    send_from_data *s = userdata;

    s->outer_done++;
    assert_int_equal(resp->result, TR_OK);
}

static void test_send_from_on_data_is_started_later(void **state)
{
    fixture f;
    send_from_data s;
    tr_http_request req;
    char url[128];
    tr_error err;

    fixture_open(&f);
    memset(&s, 0, sizeof(s));
    s.f = &f;
    outcome_init(&s.inner, &f);
    memset(&req, 0, sizeof(req));
    make_url(url, sizeof(url), &f, "/stream");
    req.url = url;
    req.on_data = on_data_send_more;
    req.on_done = on_outer_done;
    req.userdata = &s;
    assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_OK);
    assert_int_equal(run_until(&f, &s.inner.done_count, 1, 5000), 0);
    assert_int_equal(s.inner.result, TR_OK);
    assert_string_equal(s.inner.body.ptr, "hello world");
    assert_int_equal(run_until(&f, &s.outer_done, 1, 5000), 0);
    outcome_dispose(&s.inner);
    fixture_close(&f);
}

static void test_free_with_calls_in_flight_cancels_each_once(void **state)
{
    fixture f;
    outcome o[6];
    int i;

    fixture_open(&f);
    for (i = 0; i < 6; i++) {
        outcome_init(&o[i], &f);
        send_get(&f, &o[i], i < 5 ? "/hang" : "/forever", i == 5);
    }
    assert_int_equal(run_until(&f, &f.srv.requests, 6, 5000), 0);
    assert_int_equal(run_until(&f, &o[5].data_calls, 2, 5000), 0);
    tr_http_client_free(f.client);
    f.client = NULL;
    /* Every callback ran, before free returned, exactly once. */
    for (i = 0; i < 6; i++) {
        assert_int_equal(o[i].done_count, 1);
        assert_int_equal(o[i].result, TR_ECANCELLED);
    }
    for (i = 0; i < 6; i++)
        outcome_dispose(&o[i]);
    fixture_close(&f); /* asserts uv_loop_close() == 0 */
    for (i = 0; i < 6; i++)
        assert_int_equal(o[i].done_count, 1);
}

static void test_idle_stream_is_aborted_with_etimeout(void **state)
{
    fixture f;
    outcome o;
    tr_http_request req;
    char url[128];
    tr_error err;
    int64_t started;

    fixture_open(&f);
    outcome_init(&o, &f);
    memset(&req, 0, sizeof(req));
    make_url(url, sizeof(url), &f, "/stall");
    req.url = url;
    req.idle_timeout_ms = 1000;
    req.on_data = on_data_record;
    req.on_done = on_done_record;
    req.userdata = &o;
    started = now_ms();
    assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_OK);
    assert_int_equal(run_until(&f, &o.done_count, 1, 10000), 0);
    assert_int_equal(o.result, TR_ETIMEOUT);
    assert_string_equal(o.streamed.ptr, "abc\n");
    assert_true(o.done_at_ms - started >= 900);
    assert_true(o.done_at_ms - started < 3000);
    assert_non_null(strstr(o.message, "no data"));
    outcome_dispose(&o);
    fixture_close(&f);
}

/* Freeing the client from inside on_data (inside curl): deferred, then all cancelled. */
typedef struct free_in_data {
    fixture *f;
    int data_calls;
    int done;
    int cancelled;
} free_in_data;

static int on_data_free_client(tr_http_call *call, const char *data, size_t len, void *userdata)
{
    free_in_data *fd = userdata;

    if (++fd->data_calls == 2) {
        tr_http_client_free(fd->f->client);
        fd->f->client = NULL;
    }
    return 0;
}

static void on_done_count_cancelled(const tr_http_response *resp, void *userdata)
{
    free_in_data *fd = userdata;

    fd->done++;
    if (resp->result == TR_ECANCELLED)
        fd->cancelled++;
}

static void test_free_from_inside_on_data_cancels_everything(void **state)
{
    fixture f;
    free_in_data fd;
    tr_http_request req;
    char url[128];
    tr_error err;
    int i;

    fixture_open(&f);
    memset(&fd, 0, sizeof(fd));
    fd.f = &f;
    for (i = 0; i < 3; i++) {
        memset(&req, 0, sizeof(req));
        make_url(url, sizeof(url), &f, i == 0 ? "/forever" : "/hang");
        req.url = url;
        if (i == 0)
            req.on_data = on_data_free_client;
        req.on_done = on_done_count_cancelled;
        req.userdata = &fd;
        assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_OK);
    }
    assert_int_equal(run_until(&f, &fd.done, 3, 5000), 0);
    assert_null(f.client);
    assert_int_equal(fd.cancelled, 3);
    assert_int_equal(fd.data_calls, 2); /* no data after the free */
    fixture_close(&f);
    assert_int_equal(fd.done, 3);
}

/* Freeing the client from inside on_done: the rest are cancelled, no crash. */
typedef struct free_inside {
    fixture *f;
    int done;
    int cancelled;
    int ok;
} free_inside;

static void on_done_free_client(const tr_http_response *resp, void *userdata)
{
    free_inside *fi = userdata;

    fi->done++;
    if (resp->result == TR_ECANCELLED)
        fi->cancelled++;
    if (resp->result == TR_OK) {
        fi->ok++;
        tr_http_client_free(fi->f->client);
        fi->f->client = NULL;
    }
}

static void test_free_from_inside_on_done_cancels_the_rest(void **state)
{
    fixture f;
    free_inside fi;
    tr_http_request req;
    char url[128];
    tr_error err;
    int i;

    fixture_open(&f);
    memset(&fi, 0, sizeof(fi));
    fi.f = &f;
    for (i = 0; i < 4; i++) {
        memset(&req, 0, sizeof(req));
        make_url(url, sizeof(url), &f, i == 0 ? "/hello" : "/hang");
        req.url = url;
        req.on_done = on_done_free_client;
        req.userdata = &fi;
        assert_int_equal(tr_http_client_send(f.client, &req, NULL, &err), TR_OK);
    }
    assert_int_equal(run_until(&f, &fi.done, 4, 5000), 0);
    assert_int_equal(fi.ok, 1);
    assert_int_equal(fi.cancelled, 3);
    assert_null(f.client);
    fixture_close(&f);
    assert_int_equal(fi.done, 4);
}

/* Each allocation of a send failing in turn: an error or a normal call, never a leak. */
static void test_send_survives_allocation_failures(void **state)
{
    long n;
    int failures = 0;

    for (n = 1; n <= 60; n++) {
        fixture f;
        outcome o;
        tr_http_request req;
        char url[128];
        tr_error err;
        int rc;

        fixture_open(&f);
        outcome_init(&o, &f);
        memset(&req, 0, sizeof(req));
        make_url(url, sizeof(url), &f, "/echo");
        req.method = TR_HTTP_POST;
        req.url = url;
        req.body = "payload";
        req.body_len = 7;
        req.ca_pem = "not used over http";
        req.on_done = on_done_record;
        req.userdata = &o;
        tr_alloc_fail_after(n, 0);
        rc = tr_http_client_send(f.client, &req, NULL, &err);
        tr_alloc_fail_after(0, 0);
        if (rc != TR_OK) {
            failures++;
            assert_int_equal(rc, TR_ENOMEM);
            assert_int_equal(tr_http_client_active(f.client), 0);
        } else {
            assert_int_equal(run_until(&f, &o.done_count, 1, 5000), 0);
            assert_int_equal(o.result, TR_OK);
        }
        outcome_dispose(&o);
        fixture_close(&f);
        assert_int_equal(o.done_count, rc == TR_OK ? 1 : 0);
    }
    assert_true(failures > 3);
}

static void test_retry_after_parsing(void **state)
{
    /* 1994-11-06T08:49:37Z, the RFC 9110 example date. */
    const int64_t example_ms = (int64_t)784111777 * 1000;
    int64_t ms = -1;

    assert_int_equal(tr_http_retry_after_ms("7", 0, &ms), TR_OK);
    assert_int_equal(ms, 7000);
    assert_int_equal(tr_http_retry_after_ms(" 120 ", 0, &ms), TR_OK);
    assert_int_equal(ms, 120000);
    assert_int_equal(tr_http_retry_after_ms("0", 0, &ms), TR_OK);
    assert_int_equal(ms, 0);

    assert_int_equal(tr_http_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT",
                                            example_ms - 30000, &ms), TR_OK);
    assert_int_equal(ms, 30000);
    assert_int_equal(tr_http_retry_after_ms("Sunday, 06-Nov-94 08:49:37 GMT",
                                            example_ms - 1500, &ms), TR_OK);
    assert_int_equal(ms, 1500);
    assert_int_equal(tr_http_retry_after_ms("Sun Nov  6 08:49:37 1994",
                                            example_ms - 60000, &ms), TR_OK);
    assert_int_equal(ms, 60000);
    /* A date already past means "now". */
    assert_int_equal(tr_http_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT",
                                            example_ms + 5000, &ms), TR_OK);
    assert_int_equal(ms, 0);

    ms = 42;
    assert_int_equal(tr_http_retry_after_ms("soon", 0, &ms), TR_EINVAL);
    assert_int_equal(tr_http_retry_after_ms("", 0, &ms), TR_EINVAL);
    assert_int_equal(tr_http_retry_after_ms("-5", 0, &ms), TR_EINVAL);
    assert_int_equal(tr_http_retry_after_ms("7s", 0, &ms), TR_EINVAL);
    assert_int_equal(tr_http_retry_after_ms("99999999999999999999", 0, &ms), TR_EINVAL);
    assert_int_equal(tr_http_retry_after_ms("Sun, 06 Nov 1994 08:49:37 PST", 0, &ms),
                     TR_EINVAL);
    assert_int_equal(tr_http_retry_after_ms("Sun, 32 Nov 1994 08:49:37 GMT", 0, &ms),
                     TR_EINVAL);
    assert_int_equal(tr_http_retry_after_ms(NULL, 0, &ms), TR_EINVAL);
    assert_int_equal(ms, 42);
}

/*
 * TLS against a real server: a throwaway CA, server and client certificates
 * made with the openssl CLI, served by `openssl s_server -www`.
 */
typedef struct tls_env {
    char dir[64];
    char path[5][128];   /* ca.pem srv.pem srv.key cli.pem cli.key */
    char *ca_pem;
    char *cli_pem;
    char *cli_key_pem;
} tls_env;

enum { TLS_CA, TLS_SRV_CERT, TLS_SRV_KEY, TLS_CLI_CERT, TLS_CLI_KEY };

static char *read_text_file(const char *path)
{
    tr_buf b = TR_BUF_INIT(1024 * 1024);
    char chunk[4096];
    size_t n;
    FILE *fp = fopen(path, "rb");

    assert_non_null(fp);
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        assert_int_equal(tr_buf_put(&b, chunk, n), TR_OK);
    fclose(fp);
    return tr_buf_detach(&b);
}

static int tls_env_make(tls_env *env)
{
    static const char *const names[5] = { "ca.pem", "srv.pem", "srv.key", "cli.pem", "cli.key" };
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    tr_buf cmd = TR_BUF_INIT(0);
    int i;
    int rc;

    memset(env, 0, sizeof(*env));
    if (system("openssl version >/dev/null 2>&1") != 0)
        return -1;
    (void)snprintf(env->dir, sizeof(env->dir), "/tmp/tr-http-tls-XXXXXX");
    assert_non_null(mkdtemp(env->dir));
    assert_int_equal(tr_buf_printf(&cmd,
        "(cd %s && "
        "openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 -subj /CN=triaged-test-ca && "
        "openssl req %s -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 && "
        "printf 'subjectAltName=IP:127.0.0.1\\n' > srv.ext && "
        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out srv.pem -days 2 -extfile srv.ext && "
        "openssl req %s -keyout cli.key -out cli.csr -subj /CN=triaged-test-client && "
        "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out cli.pem -days 2) >/dev/null 2>&1", env->dir, ec, ec, ec), TR_OK);
    rc = system(cmd.ptr);
    tr_buf_dispose(&cmd);
    assert_int_equal(rc, 0);
    for (i = 0; i < 5; i++) {
        char dir[sizeof(env->dir)];

        memcpy(dir, env->dir, sizeof(dir)); /* gcc flags dir and path as overlapping */
        (void)snprintf(env->path[i], sizeof(env->path[i]), "%s/%s", dir, names[i]);
    }
    env->ca_pem = read_text_file(env->path[TLS_CA]);
    env->cli_pem = read_text_file(env->path[TLS_CLI_CERT]);
    env->cli_key_pem = read_text_file(env->path[TLS_CLI_KEY]);
    return 0;
}

static void tls_env_remove(tls_env *env)
{
    tr_buf cmd = TR_BUF_INIT(0);

    tr_free(env->ca_pem);
    tr_free(env->cli_pem);
    tr_free(env->cli_key_pem);
    assert_int_equal(tr_buf_printf(&cmd, "rm -rf %s", env->dir), TR_OK);
    assert_int_equal(system(cmd.ptr), 0);
    tr_buf_dispose(&cmd);
}

/* Start s_server on a free port; wait until it accepts. Returns its pid. */
static pid_t tls_server_start(const tls_env *env, int require_client_cert, int *port_out)
{
    char accept_arg[64];
    int port = closed_port();
    pid_t pid;
    int i;

    (void)snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%d", port);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);

        (void)dup2(devnull, 0);
        (void)dup2(devnull, 1);
        (void)dup2(devnull, 2);
        if (require_client_cert)
            execlp("openssl", "openssl", "s_server", "-www", "-accept", accept_arg, "-cert",
                   env->path[TLS_SRV_CERT], "-key", env->path[TLS_SRV_KEY], "-Verify", "1",
                   "-CAfile", env->path[TLS_CA], (char *)NULL);
        else
            execlp("openssl", "openssl", "s_server", "-www", "-accept", accept_arg, "-cert",
                   env->path[TLS_SRV_CERT], "-key", env->path[TLS_SRV_KEY], (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 100; i++) {
        struct sockaddr_in addr;
        struct timespec pause = { 0, 50 * 1000 * 1000 };
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int connected;

        memset(&addr, 0, sizeof(addr));
        addr.sin_family = AF_INET;
        addr.sin_port = htons((uint16_t)port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
        close(fd);
        if (connected)
            break;
        nanosleep(&pause, NULL);
    }
    assert_true(i < 100);
    *port_out = port;
    return pid;
}

static void tls_server_stop(pid_t pid)
{
    int status;

    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
}

/* One GET to https://127.0.0.1:port/ with req's TLS fields; fills o. */
static void tls_get(fixture *f, int port, tr_http_request *req, outcome *o)
{
    char url[128];
    tr_error err;

    outcome_init(o, f);
    (void)snprintf(url, sizeof(url), "https://127.0.0.1:%d/", port);
    req->url = url;
    req->timeout_ms = 10000;
    req->on_done = on_done_record;
    req->userdata = o;
    assert_int_equal(tr_http_client_send(f->client, req, NULL, &err), TR_OK);
    assert_int_equal(run_until(f, &o->done_count, 1, 10000), 0);
}

static void test_tls_verifies_with_given_ca_only(void **state)
{
    tls_env env;
    fixture f;
    outcome o;
    tr_http_request req;
    pid_t pid;
    int port;

    if (tls_env_make(&env) != 0)
        skip();
    pid = tls_server_start(&env, 0, &port);
    fixture_open(&f);

    memset(&req, 0, sizeof(req));
    tls_get(&f, port, &req, &o);
    assert_int_equal(o.result, TR_EHTTP);
    assert_non_null(strstr(o.message, "certificate"));
    outcome_dispose(&o);

    memset(&req, 0, sizeof(req));
    req.ca_file = env.path[TLS_CA];
    tls_get(&f, port, &req, &o);
    assert_int_equal(o.result, TR_OK);
    assert_int_equal(o.status, 200);
    assert_true(o.body.len > 0);
    outcome_dispose(&o);

    memset(&req, 0, sizeof(req));
    req.ca_pem = env.ca_pem;
    tls_get(&f, port, &req, &o);
    assert_int_equal(o.result, TR_OK);
    assert_int_equal(o.status, 200);
    outcome_dispose(&o);

    memset(&req, 0, sizeof(req));
    req.insecure_skip_verify = 1;
    tls_get(&f, port, &req, &o);
    assert_int_equal(o.result, TR_OK);
    assert_int_equal(o.status, 200);
    outcome_dispose(&o);

    fixture_close(&f);
    tls_server_stop(pid);
    tls_env_remove(&env);
}

static void test_tls_client_certificate_from_memory_and_files(void **state)
{
    tls_env env;
    fixture f;
    outcome o;
    tr_http_request req;
    pid_t pid;
    int port;

    if (tls_env_make(&env) != 0)
        skip();
    pid = tls_server_start(&env, 1, &port);
    fixture_open(&f);

    memset(&req, 0, sizeof(req));
    req.ca_pem = env.ca_pem;
    tls_get(&f, port, &req, &o);
    assert_int_not_equal(o.result, TR_OK); /* the server wants a certificate */
    outcome_dispose(&o);

    memset(&req, 0, sizeof(req));
    req.ca_pem = env.ca_pem;
    req.client_cert_pem = env.cli_pem;
    req.client_key_pem = env.cli_key_pem;
    tls_get(&f, port, &req, &o);
    assert_int_equal(o.result, TR_OK);
    assert_int_equal(o.status, 200);
    outcome_dispose(&o);

    memset(&req, 0, sizeof(req));
    req.ca_file = env.path[TLS_CA];
    req.client_cert_file = env.path[TLS_CLI_CERT];
    req.client_key_file = env.path[TLS_CLI_KEY];
    tls_get(&f, port, &req, &o);
    assert_int_equal(o.result, TR_OK);
    assert_int_equal(o.status, 200);
    outcome_dispose(&o);

    fixture_close(&f);
    tls_server_stop(pid);
    tls_env_remove(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_returns_body_and_headers),
        cmocka_unit_test(test_post_body_arrives_byte_exact_with_headers),
        cmocka_unit_test(test_put_delete_and_basic_auth_on_the_wire),
        cmocka_unit_test(test_stream_lines_reassembled_from_small_chunks),
        cmocka_unit_test(test_stream_sees_403_status_before_body),
        cmocka_unit_test(test_429_exposes_status_and_retry_after),
        cmocka_unit_test(test_silent_server_times_out),
        cmocka_unit_test(test_connection_refused_is_transport_error),
        cmocka_unit_test(test_cancel_from_on_data_ends_once_with_ecancelled),
        cmocka_unit_test(test_on_data_nonzero_aborts_with_ecancelled),
        cmocka_unit_test(test_cancel_before_loop_runs_defers_callback),
        cmocka_unit_test(test_response_over_cap_is_too_big),
        cmocka_unit_test(test_headers_over_cap_are_too_big),
        cmocka_unit_test(test_fifty_concurrent_requests_all_complete),
        cmocka_unit_test(test_in_flight_cap_refuses_with_ebusy),
        cmocka_unit_test(test_send_rejects_bad_requests),
        cmocka_unit_test(test_on_done_can_start_the_next_request),
        cmocka_unit_test(test_send_from_on_data_is_started_later),
        cmocka_unit_test(test_free_with_calls_in_flight_cancels_each_once),
        cmocka_unit_test(test_free_from_inside_on_done_cancels_the_rest),
        cmocka_unit_test(test_free_from_inside_on_data_cancels_everything),
        cmocka_unit_test(test_idle_stream_is_aborted_with_etimeout),
        cmocka_unit_test(test_send_survives_allocation_failures),
        cmocka_unit_test(test_retry_after_parsing),
        cmocka_unit_test(test_tls_verifies_with_given_ca_only),
        cmocka_unit_test(test_tls_client_certificate_from_memory_and_files),
    };

    signal(SIGPIPE, SIG_IGN);
    TR_RUN_TESTS("http_client", tests);
}
