#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "buf.h"
#include "error.h"
#include "http_server.h"
#include "metrics.h"

/*
 * Each test runs the server on the main thread's loop and a blocking client
 * on a helper thread; when the client is done it wakes the loop, which
 * closes the server. Every test ends by asserting uv_loop_close() == 0.
 */

typedef struct answer {
    int status;
    char head[4096];
    char body[8192];
    size_t body_len;
} answer;

typedef struct fixture {
    uv_loop_t loop;
    uv_async_t client_done;
    tr_http_server *srv;
    int port;
    int closed;
    void (*client)(struct fixture *fx);
    pthread_t thread;
    /* results, written by one side and read after the join */
    answer answers[4];
    int client_ok;
    int aborted;
    int late_respond_rc;
    tr_http_server_stats stats; /* taken when the client is done */
} fixture;

/* ------------------------------------------------------------ client side */

static int connect_to(int port)
{
    struct sockaddr_in addr;
    struct timeval tv = { 5, 0 };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads one answer (head + Content-Length body unless no_body). Returns the status or -1. */
static int read_answer_ex(int fd, answer *a, int no_body)
{
    size_t have = 0, want = 0;
    char *end, *cl;

    memset(a, 0, sizeof(*a));
    a->status = -1;
    for (;;) {
        ssize_t n;
        if (have + 1 >= sizeof(a->head))
            return -1;
        n = recv(fd, a->head + have, 1, 0); /* byte-wise: never read past the head */
        if (n <= 0)
            return -1;
        have++;
        if (have >= 4 && memcmp(a->head + have - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    if (sscanf(a->head, "HTTP/1.1 %d", &a->status) != 1)
        return -1;
    cl = strcasestr(a->head, "\r\nContent-Length: ");
    if (cl)
        want = strtoul(cl + 18, &end, 10);
    if (strncmp(a->head, "HTTP/1.1 100", 12) == 0 || no_body)
        want = 0;
    while (a->body_len < want && a->body_len < sizeof(a->body) - 1) {
        ssize_t n = recv(fd, a->body + a->body_len, want - a->body_len, 0);
        if (n <= 0)
            return -1;
        a->body_len += (size_t)n;
    }
    return a->status;
}

static int read_answer(int fd, answer *a)
{
    return read_answer_ex(fd, a, 0);
}

/* 1 when the server closed the connection (EOF or reset) within 5 s. */
static int closed_by_server(int fd)
{
    char buf[4096];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 1;
        if (n < 0)
            return 0;
    }
}

static int send_str(int fd, const char *s)
{
    return send_all(fd, s, strlen(s));
}

static int request(int port, const char *raw, answer *a)
{
    int fd = connect_to(port), status;

    if (fd < 0 || send_all(fd, raw, strlen(raw)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    status = read_answer(fd, a);
    close(fd);
    return status;
}

/* ------------------------------------------------------------ loop side */

static void on_server_closed(tr_http_server *srv, void *userdata)
{
    fixture *fx = userdata;

    fx->closed = 1;
    tr_http_server_free(srv);
    fx->srv = NULL;
}

static void on_client_done(uv_async_t *async)
{
    fixture *fx = async->data;

    uv_close((uv_handle_t *)async, NULL);
    tr_http_server_get_stats(fx->srv, &fx->stats);
    tr_http_server_close(fx->srv, on_server_closed, fx);
}

static void *client_main(void *arg)
{
    fixture *fx = arg;

    fx->client(fx);
    uv_async_send(&fx->client_done);
    return NULL;
}

/* For tests where the loop side closes the server itself. */
static void *client_main_no_async(void *arg)
{
    fixture *fx = arg;

    fx->client(fx);
    return NULL;
}

static void fixture_start(fixture *fx, const tr_http_server_options *opt)
{
    tr_error err;

    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(tr_http_server_new(&fx->srv, &fx->loop, opt, &err), TR_OK);
    assert_int_equal(tr_http_server_listen(fx->srv, "127.0.0.1:0", &err), TR_OK);
    fx->port = tr_http_server_port(fx->srv);
    assert_true(fx->port > 0);
    fx->late_respond_rc = 1;
}

/* Runs the client thread against the server until both are done. */
static void fixture_run(fixture *fx, void (*client)(fixture *fx))
{
    fx->client = client;
    fx->client_done.data = fx;
    assert_int_equal(uv_async_init(&fx->loop, &fx->client_done, on_client_done), 0);
    assert_int_equal(pthread_create(&fx->thread, NULL, client_main, fx), 0);
    assert_int_equal(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(pthread_join(fx->thread, NULL), 0);
    assert_true(fx->closed);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
}

static void h_incident(tr_http_req *req, void *userdata)
{
    char body[256];
    int n;

    (void)userdata;
    n = snprintf(body, sizeof(body), "{\"id\":\"%s\",\"state\":\"%s\",\"loopback\":%d}",
                 tr_http_req_param(req, "id"),
                 tr_http_req_query(req, "state") ? tr_http_req_query(req, "state") : "",
                 tr_http_req_peer_is_loopback(req));
    assert_int_equal(tr_http_req_add_header(req, "X-Trace", "t1"), TR_OK);
    assert_int_equal(tr_http_req_add_header(req, "Content-Length", "5"), TR_EINVAL);
    assert_int_equal(tr_http_req_add_header(req, "X-Bad", "a\r\nInjected: 1"), TR_EINVAL);
    assert_int_equal(tr_http_respond(req, 200, "application/json", body, (size_t)n), TR_OK);
}

static void h_stats(tr_http_req *req, void *userdata)
{
    (void)userdata;
    assert_int_equal(tr_http_respond(req, 200, "text/plain", "stats", 5), TR_OK);
}

static void h_echo(tr_http_req *req, void *userdata)
{
    size_t len = 0;
    const char *body = tr_http_req_body(req, &len);

    (void)userdata;
    assert_int_equal(tr_http_respond(req, 200, "text/plain", body, len), TR_OK);
}

static void client_routing(fixture *fx)
{
    answer *a = fx->answers;

    request(fx->port, "GET /v1/incidents/abc%20d?state=open HTTP/1.1\r\nHost: x\r\n\r\n", &a[0]);
    request(fx->port, "GET /v1/incidents/stats HTTP/1.1\r\nHost: x\r\n\r\n", &a[1]);
    request(fx->port, "DELETE /v1/incidents/7 HTTP/1.1\r\nHost: x\r\n\r\n", &a[2]);
    request(fx->port, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", &a[3]);
}

static void test_server_routes_by_pattern_and_answers_json_errors(void **state)
{
    fixture fx = { 0 };

    (void)state;
    fixture_start(&fx, NULL);
    assert_int_equal(tr_http_server_route(fx.srv, "GET", "/v1/incidents/{id}", h_incident, &fx),
                     TR_OK);
    assert_int_equal(tr_http_server_route(fx.srv, "GET", "/v1/incidents/stats", h_stats, &fx),
                     TR_OK);
    assert_int_equal(tr_http_server_route(fx.srv, "POST", "/v1/incidents/{id}", h_echo, &fx),
                     TR_OK);
    fixture_run(&fx, client_routing);
    assert_int_equal(fx.answers[0].status, 200);
    assert_string_equal(fx.answers[0].body, "{\"id\":\"abc d\",\"state\":\"open\",\"loopback\":1}");
    assert_non_null(strstr(fx.answers[0].head, "\r\nX-Trace: t1\r\n"));
    assert_non_null(strstr(fx.answers[0].head, "\r\nContent-Type: application/json\r\n"));
    assert_null(strstr(fx.answers[0].head, "Injected"));
    /* The literal route wins over {id}. */
    assert_string_equal(fx.answers[1].body, "stats");
    assert_int_equal(fx.answers[2].status, 405);
    assert_non_null(strstr(fx.answers[2].head, "\r\nAllow: GET, HEAD, POST\r\n"));
    assert_string_equal(fx.answers[2].body,
                        "{\"error\":\"method_not_allowed\",\"detail\":\"method not allowed for "
                        "this path\"}\n");
    assert_int_equal(fx.answers[3].status, 404);
    assert_non_null(strstr(fx.answers[3].head, "\r\nContent-Type: application/json\r\n"));
    assert_string_equal(fx.answers[3].body,
                        "{\"error\":\"not_found\",\"detail\":\"no such path\"}\n");
}

static void client_keep_alive(fixture *fx)
{
    int fd = connect_to(fx->port);

    /* Two requests one after the other, then two pipelined in one write. */
    send_str(fd, "GET /v1/incidents/1 HTTP/1.1\r\nHost: x\r\n\r\n");
    read_answer(fd, &fx->answers[0]);
    send_str(fd, "POST /v1/incidents/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nping");
    read_answer(fd, &fx->answers[1]);
    send_str(fd, "HEAD /v1/incidents/3 HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /v1/incidents/4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    read_answer_ex(fd, &fx->answers[2], 1);
    read_answer(fd, &fx->answers[3]);
    fx->client_ok = closed_by_server(fd);
    close(fd);
}

static void test_server_keeps_alive_and_serves_pipelined_requests(void **state)
{
    fixture fx = { 0 };
    char length[64];

    (void)state;
    fixture_start(&fx, NULL);
    tr_http_server_route(fx.srv, "GET", "/v1/incidents/{id}", h_incident, &fx);
    tr_http_server_route(fx.srv, "POST", "/v1/incidents/{id}", h_echo, &fx);
    fixture_run(&fx, client_keep_alive);
    assert_int_equal(fx.answers[0].status, 200);
    assert_null(strstr(fx.answers[0].head, "Connection: close"));
    assert_string_equal(fx.answers[1].body, "ping");
    /* HEAD: the GET answer's length, no body. */
    assert_int_equal(fx.answers[2].status, 200);
    snprintf(length, sizeof(length), "\r\nContent-Length: %zu\r\n",
             strlen("{\"id\":\"3\",\"state\":\"\",\"loopback\":1}"));
    assert_non_null(strstr(fx.answers[2].head, length));
    assert_int_equal(fx.answers[2].body_len, 0);
    assert_string_equal(fx.answers[3].body, "{\"id\":\"4\",\"state\":\"\",\"loopback\":1}");
    assert_non_null(strstr(fx.answers[3].head, "\r\nConnection: close\r\n"));
    assert_true(fx.client_ok);
    assert_int_equal(fx.stats.requests_by_class[2], 4);
    assert_int_equal(fx.stats.connections_accepted, 1);
}

typedef struct later {
    uv_timer_t timer;
    tr_http_req *req;
    fixture *fx;
} later;

static void on_later_closed(uv_handle_t *handle)
{
    tr_free(handle->data);
}

static void on_later(uv_timer_t *timer)
{
    later *l = timer->data;

    l->fx->late_respond_rc = tr_http_respond(l->req, 202, "text/plain", "later", 5);
    uv_close((uv_handle_t *)&l->timer, on_later_closed);
}

static void on_abort(tr_http_req *req, void *userdata)
{
    fixture *fx = userdata;

    (void)req;
    fx->aborted++;
}

/* Answers 300 ms later from a timer, as a handler waiting on an LLM would. */
static void h_slow(tr_http_req *req, void *userdata)
{
    fixture *fx = userdata;
    later *l = tr_calloc(1, sizeof(*l));

    assert_non_null(l);
    l->req = req;
    l->fx = fx;
    tr_http_req_on_abort(req, on_abort, fx);
    uv_timer_init(&fx->loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, on_later, 300, 0);
}

static void client_slow(fixture *fx)
{
    request(fx->port, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", &fx->answers[0]);
}

static void test_server_lets_a_handler_answer_later(void **state)
{
    fixture fx = { 0 };

    (void)state;
    fixture_start(&fx, NULL);
    tr_http_server_route(fx.srv, "GET", "/slow", h_slow, &fx);
    fixture_run(&fx, client_slow);
    assert_int_equal(fx.answers[0].status, 202);
    assert_string_equal(fx.answers[0].body, "later");
    assert_int_equal(fx.late_respond_rc, TR_OK);
    assert_int_equal(fx.aborted, 0);
}

static void client_leaves(fixture *fx)
{
    int fd = connect_to(fx->port);

    send_str(fd, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(50 * 1000);
    close(fd);
}

static void test_server_aborts_request_when_client_leaves(void **state)
{
    fixture fx = { 0 };
    tr_metrics *m = NULL;
    tr_http_server_options opt = { 0 };
    tr_buf text = TR_BUF_INIT(0);

    (void)state;
    assert_int_equal(tr_metrics_new(&m, 0), TR_OK);
    opt.metrics = m;
    fixture_start(&fx, &opt);
    tr_http_server_route(fx.srv, "GET", "/slow", h_slow, &fx);
    fixture_run(&fx, client_leaves);
    /* The abort ran once, and the late answer was a harmless no-op. */
    assert_int_equal(fx.aborted, 1);
    assert_int_equal(fx.late_respond_rc, TR_ECANCELLED);
    assert_int_equal(tr_metrics_render(m, &text), TR_OK);
    assert_non_null(strstr(tr_buf_cstr(&text), "\ntriaged_http_requests_aborted_total 1\n"));
    assert_non_null(strstr(tr_buf_cstr(&text), "\ntriaged_http_connections_open 0\n"));
    assert_non_null(strstr(tr_buf_cstr(&text), "\ntriaged_http_connections_accepted_total 1\n"));
    tr_buf_dispose(&text);
    tr_metrics_free(m);
}

static void client_big_body(fixture *fx)
{
    size_t size = 2 * 1024 * 1024;
    char *body = malloc(size);
    char head[128];
    int fd = connect_to(fx->port);

    memset(body, 'b', size);
    snprintf(head, sizeof(head), "POST /v1/incidents/1 HTTP/1.1\r\nHost: x\r\n"
                                 "Content-Length: %zu\r\n\r\n", size);
    send_all(fd, head, strlen(head));
    (void)send_all(fd, body, size); /* may fail once the server has answered */
    read_answer(fd, &fx->answers[0]);
    fx->client_ok = closed_by_server(fd);
    close(fd);
    free(body);
}

static void test_server_refuses_2mib_body_with_413(void **state)
{
    fixture fx = { 0 };

    (void)state;
    fixture_start(&fx, NULL);
    tr_http_server_route(fx.srv, "POST", "/v1/incidents/{id}", h_echo, &fx);
    fixture_run(&fx, client_big_body);
    assert_int_equal(fx.answers[0].status, 413);
    assert_non_null(strstr(fx.answers[0].head, "\r\nConnection: close\r\n"));
    assert_non_null(strstr(fx.answers[0].body, "\"error\":\"payload_too_large\""));
    assert_true(fx.client_ok);
}

static void client_expect_continue(fixture *fx)
{
    int fd = connect_to(fx->port);

    send_str(fd, "POST /v1/incidents/9 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                 "Content-Length: 5\r\n\r\n");
    read_answer(fd, &fx->answers[0]);
    send_str(fd, "hello");
    read_answer(fd, &fx->answers[1]);
    close(fd);
}

static void test_server_sends_100_continue_before_the_body(void **state)
{
    fixture fx = { 0 };

    (void)state;
    fixture_start(&fx, NULL);
    tr_http_server_route(fx.srv, "POST", "/v1/incidents/{id}", h_echo, &fx);
    fixture_run(&fx, client_expect_continue);
    assert_int_equal(fx.answers[0].status, 100);
    assert_int_equal(fx.answers[1].status, 200);
    assert_string_equal(fx.answers[1].body, "hello");
}

static void client_slowloris(fixture *fx)
{
    int fd = connect_to(fx->port), silent = connect_to(fx->port);
    int i;

    /* A byte every 50 ms never finishes the headers: the deadline is not reset. */
    send_str(fd, "GET / HTTP/1.1\r\n");
    for (i = 0; i < 10; i++) {
        if (send_str(fd, "X") != 0)
            break;
        usleep(50 * 1000);
    }
    read_answer(fd, &fx->answers[0]);
    fx->client_ok = closed_by_server(fd) && closed_by_server(silent);
    close(fd);
    close(silent);
}

static void test_server_drops_slow_header_client_with_408(void **state)
{
    fixture fx = { 0 };
    tr_http_server_options opt = { 0 };

    (void)state;
    opt.header_timeout_ms = 200;
    fixture_start(&fx, &opt);
    fixture_run(&fx, client_slowloris);
    assert_int_equal(fx.stats.timeouts, 1); /* the silent one was idle, not slow */
    assert_int_equal(fx.answers[0].status, 408);
    assert_non_null(strstr(fx.answers[0].body, "\"error\":\"request_timeout\""));
    assert_true(fx.client_ok);
}

static void client_header_flood(fixture *fx)
{
    size_t chunk = 64 * 1024, sent = 0;
    char *junk = malloc(chunk);
    int fd = connect_to(fx->port);

    memset(junk, 'a', chunk);
    send_str(fd, "GET / HTTP/1.1\r\nX-Flood: ");
    while (sent < 10 * 1024 * 1024 && send_all(fd, junk, chunk) == 0)
        sent += chunk;
    read_answer(fd, &fx->answers[0]);
    fx->client_ok = closed_by_server(fd);
    close(fd);
    free(junk);
}

static void test_server_cuts_10mb_header_stream_with_431(void **state)
{
    fixture fx = { 0 };

    (void)state;
    fixture_start(&fx, NULL);
    fixture_run(&fx, client_header_flood);
    assert_int_equal(fx.answers[0].status, 431);
    assert_non_null(strstr(fx.answers[0].body, "\"error\":\"headers_too_large\""));
    assert_true(fx.client_ok);
}

static void client_too_many(fixture *fx)
{
    int a = connect_to(fx->port), b = connect_to(fx->port), c;

    /* Make sure the first two are accepted before the third arrives. */
    send_str(a, "GET /v1/incidents/1 HTTP/1.1\r\nHost: x\r\n\r\n");
    read_answer(a, &fx->answers[0]);
    send_str(b, "GET /v1/incidents/2 HTTP/1.1\r\nHost: x\r\n\r\n");
    read_answer(b, &fx->answers[1]);
    c = connect_to(fx->port);
    /* Refused: a best-effort 503 then close, or just the close. */
    fx->answers[2].status = read_answer(c, &fx->answers[2]);
    fx->client_ok = closed_by_server(c);
    close(c);
    close(a);
    close(b);
}

static void test_server_refuses_connections_over_the_cap(void **state)
{
    fixture fx = { 0 };
    tr_http_server_options opt = { 0 };

    (void)state;
    opt.max_connections = 2;
    fixture_start(&fx, &opt);
    tr_http_server_route(fx.srv, "GET", "/v1/incidents/{id}", h_incident, &fx);
    fixture_run(&fx, client_too_many);
    assert_int_equal(fx.answers[0].status, 200);
    assert_int_equal(fx.answers[1].status, 200);
    assert_true(fx.answers[2].status == 503 || fx.answers[2].status == -1);
    if (fx.answers[2].status == 503)
        assert_string_equal(fx.answers[2].body,
                            "{\"error\":\"unavailable\",\"detail\":\"too many connections\"}\n");
    assert_true(fx.client_ok);
    assert_int_equal(fx.stats.connections_rejected, 1);
    assert_int_equal(fx.stats.connections_accepted, 2);
}

/* Closes the server while its own request is still in flight. */
static void h_close_then_answer(tr_http_req *req, void *userdata)
{
    fixture *fx = userdata;

    tr_http_server_close(fx->srv, on_server_closed, fx);
    h_slow(req, userdata);
}

static void client_during_close(fixture *fx)
{
    request(fx->port, "GET /bye HTTP/1.1\r\nHost: x\r\n\r\n", &fx->answers[0]);
}

static void test_server_close_lets_in_flight_request_finish(void **state)
{
    fixture fx = { 0 };

    (void)state;
    fixture_start(&fx, NULL);
    tr_http_server_route(fx.srv, "GET", "/bye", h_close_then_answer, &fx);
    fx.client = client_during_close;
    assert_int_equal(pthread_create(&fx.thread, NULL, client_main_no_async, &fx), 0);
    assert_int_equal(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(pthread_join(fx.thread, NULL), 0);
    assert_true(fx.closed);
    assert_int_equal(uv_loop_close(&fx.loop), 0);
    assert_int_equal(fx.answers[0].status, 202);
    assert_non_null(strstr(fx.answers[0].head, "\r\nConnection: close\r\n"));
    assert_int_equal(fx.late_respond_rc, TR_OK);
}

static void test_listen_strings_and_loopback_rule(void **state)
{
    uv_loop_t loop;
    tr_http_server *srv = NULL;
    tr_error err;
    int closed = 0;

    (void)state;
    assert_true(tr_http_listen_is_loopback("127.0.0.1:8080"));
    assert_true(tr_http_listen_is_loopback("127.9.9.9:1"));
    assert_true(tr_http_listen_is_loopback("localhost:8080"));
    assert_true(tr_http_listen_is_loopback("[::1]:8080"));
    assert_false(tr_http_listen_is_loopback("0.0.0.0:8080"));
    assert_false(tr_http_listen_is_loopback(":8080"));
    assert_false(tr_http_listen_is_loopback("10.0.0.1:8080"));
    assert_false(tr_http_listen_is_loopback("[::]:8080"));
    assert_false(tr_http_listen_is_loopback("garbage"));
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(tr_http_server_new(&srv, &loop, NULL, &err), TR_OK);
    assert_int_equal(tr_http_server_listen(srv, "nonsense", &err), TR_EINVAL);
    assert_int_equal(tr_http_server_listen(srv, "127.0.0.1:99999", &err), TR_EINVAL);
    assert_int_equal(tr_http_server_listen(srv, "example.com:80", &err), TR_EINVAL);
    assert_non_null(strstr(err.message, "not an IP address"));
    assert_int_equal(tr_http_server_listen(srv, "localhost:0", &err), TR_OK);
    assert_int_equal(tr_http_server_listen(srv, "localhost:0", &err), TR_EBUSY);
    assert_true(tr_http_server_port(srv) > 0);
    tr_http_server_close(srv, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    tr_http_server_free(srv);
    closed = uv_loop_close(&loop);
    assert_int_equal(closed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_routes_by_pattern_and_answers_json_errors),
        cmocka_unit_test(test_server_keeps_alive_and_serves_pipelined_requests),
        cmocka_unit_test(test_server_lets_a_handler_answer_later),
        cmocka_unit_test(test_server_aborts_request_when_client_leaves),
        cmocka_unit_test(test_server_refuses_2mib_body_with_413),
        cmocka_unit_test(test_server_sends_100_continue_before_the_body),
        cmocka_unit_test(test_server_drops_slow_header_client_with_408),
        cmocka_unit_test(test_server_cuts_10mb_header_stream_with_431),
        cmocka_unit_test(test_server_refuses_connections_over_the_cap),
        cmocka_unit_test(test_server_close_lets_in_flight_request_finish),
        cmocka_unit_test(test_listen_strings_and_loopback_rule),
    };

    signal(SIGPIPE, SIG_IGN);
    TR_RUN_TESTS("http_server", tests);
}
