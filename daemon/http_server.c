/*
 * http_server.c - inbound HTTP/1.1 over libuv.
 *
 * A connection moves through phases, and its one timer means what the
 * phase says:
 *
 *   IDLE --first byte--> HEADERS --headers done--> BODY --request done-->
 *   HANDLER --respond--> WRITING --written--> IDLE (keep-alive) or LINGER
 *
 * LINGER is the graceful end: after the last answer the write side is shut
 * down and input is read and dropped until the client closes or a short
 * timer fires. Closing at once would make the kernel reset the connection
 * when unread input is pending (a refused 2 MiB upload), and a reset can
 * destroy the answer before the client reads it.
 *
 * While a request is in HANDLER or WRITING the socket is still read, so a
 * client that goes away is noticed (its request is aborted), but at most
 * READ_AHEAD_BYTES are kept; beyond that reading stops until the answer
 * has been written. The next request is only parsed from the write
 * callback, never from inside tr_http_respond(), so a handler that answers
 * at once is never re-entered.
 *
 * Which handler gets a request (and 404/405) is decided in http_router.c.
 */
#include "http_server.h"
#include "http_server_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "buf.h"
#include "http_router.h"
#include "log.h"

#define READ_AHEAD_BYTES ((size_t)64 * 1024)
#define READ_CHUNK_BYTES ((size_t)64 * 1024)
#define INBUF_MAX (READ_AHEAD_BYTES + 2 * READ_CHUNK_BYTES)

static void on_conn_timer(uv_timer_t *timer);
static void start_reading(conn *c);
static void maybe_finished(tr_http_server *srv);

/* ------------------------------------------------------------ routing */

int tr_http_server_route(tr_http_server *srv, const char *method, const char *pattern,
                         tr_http_handler handler, void *userdata)
{
    return tr_http_router_add(&srv->router, method, pattern, handler, userdata);
}

/* Calls the route's handler, or answers 404/405/503 itself. */
static void route_request(tr_http_server *srv, tr_http_req *req)
{
    if (srv->closing) {
        (void)tr_http_respond_error(req, 503, NULL, "the server is shutting down");
        return;
    }
    tr_http_router_dispatch(&srv->router, req, &req->params);
}

/* ------------------------------------------------------------ connections */

void server_arm(conn *c, unsigned ms)
{
    if (ms == 0)
        (void)uv_timer_stop(&c->timer);
    else
        (void)uv_timer_start(&c->timer, on_conn_timer, ms, 0);
}

static int addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

static void on_conn_handle_closed(uv_handle_t *handle)
{
    conn *c = handle->data;
    tr_http_server *srv = c->srv;

    if (--c->handles_open > 0)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    tr_http_parser_free(c->parser);
    tr_buf_dispose(&c->inbuf);
    tr_free(c);
    maybe_finished(srv);
}

void server_conn_close(conn *c)
{
    tr_http_server *srv = c->srv;

    if (c->closing)
        return;
    c->closing = 1;
    if (c->pending)
        server_req_abort(c);
    srv->stats.connections_open--;
    (void)tr_metric_inc(srv->m_open, -1);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_conn_timer(uv_timer_t *timer)
{
    conn *c = timer->data;
    tr_http_server *srv = c->srv;
    static const char *const names[] = { "idle", "header", "body", "handler", "write",
                                         "linger" };

    if (c->phase != PH_IDLE && c->phase != PH_LINGER) {
        srv->stats.timeouts++;
        (void)tr_metric_inc(srv->m_timeouts, 1, names[c->phase]);
    }
    switch (c->phase) {
    case PH_HEADERS:
        server_send_error_close(c, 408, "request headers not received in time");
        break;
    case PH_BODY:
        server_send_error_close(c, 408, "request body not received in time");
        break;
    case PH_HANDLER:
        tr_log_warn("http", "%s %s: no answer after %u ms", tr_http_req_method(c->pending),
                    tr_http_req_path(c->pending), srv->opt.handler_timeout_ms);
        server_send_error_close(c, 503, "the request took too long");
        break;
    default:
        server_conn_close(c);
        break;
    }
}

static void dispatch(conn *c, tr_http_inbound *parsed)
{
    tr_http_server *srv = c->srv;
    tr_http_req *req = tr_calloc(1, sizeof(*req));

    if (req == NULL) {
        tr_http_inbound_free(parsed);
        server_send_error_close(c, 503, "out of memory");
        return;
    }
    req->parsed = parsed;
    req->conn = c;
    req->peer_loopback = c->peer_loopback;
    req->head = strcmp(tr_http_inbound_method(parsed), "HEAD") == 0;
    req->start_ms = uv_now(srv->loop);
    c->pending = req;
    c->phase = PH_HANDLER;
    server_arm(c, srv->opt.handler_timeout_ms);
    route_request(srv, req);
}

void server_conn_process(conn *c)
{
    tr_http_inbound *parsed;
    tr_error err;
    size_t used;

    if (c->closing || c->phase == PH_HANDLER || c->phase == PH_WRITING)
        return;
    if (c->phase == PH_LINGER) {
        tr_buf_clear(&c->inbuf);
    }
    while (c->inbuf.len > 0 && c->phase <= PH_BODY) {
        if (tr_http_parser_feed(c->parser, c->inbuf.ptr, c->inbuf.len, &used, &parsed, &err)
            != TR_OK) {
            tr_log_debug("http", "refused request: %s", err.message);
            tr_buf_clear(&c->inbuf);
            server_send_error_close(c, tr_http_parser_error_status(c->parser), err.message);
            return;
        }
        tr_buf_consume(&c->inbuf, used);
        if (c->phase == PH_IDLE && tr_http_parser_state(c->parser) != TR_HTTP_PARSE_IDLE) {
            c->phase = PH_HEADERS;
            server_arm(c, c->srv->opt.header_timeout_ms);
        }
        if (c->phase == PH_HEADERS && tr_http_parser_state(c->parser) == TR_HTTP_PARSE_BODY) {
            c->phase = PH_BODY;
            server_arm(c, c->srv->opt.body_timeout_ms);
        }
        if (tr_http_parser_take_continue(c->parser)) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            char *copy = tr_strndup(cont, sizeof(cont) - 1);
            if (copy == NULL || server_conn_write(c, copy, sizeof(cont) - 1, 0, 1) != TR_OK) {
                if (copy == NULL)
                    server_conn_close(c);
                return;
            }
        }
        if (parsed != NULL) {
            dispatch(c, parsed);
            return;
        }
    }
    start_reading(c);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    size_t size = suggested < READ_CHUNK_BYTES ? suggested : READ_CHUNK_BYTES;

    buf->base = tr_malloc(size);
    buf->len = buf->base ? size : 0;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = stream->data;

    if (nread < 0) {
        /* Gone (or half-closed: we treat both alike, see the header). */
        tr_free(buf->base);
        server_conn_close(c);
        return;
    }
    if (c->closing || c->phase == PH_LINGER || nread == 0) {
        tr_free(buf->base);
        return;
    }
    if (tr_buf_put(&c->inbuf, buf->base, (size_t)nread) != TR_OK) {
        tr_free(buf->base);
        server_conn_close(c);
        return;
    }
    tr_free(buf->base);
    if (c->phase == PH_HANDLER || c->phase == PH_WRITING) {
        if (c->inbuf.len >= READ_AHEAD_BYTES) {
            (void)uv_read_stop(stream);
            c->reading = 0;
        }
        return;
    }
    server_conn_process(c);
}

static void start_reading(conn *c)
{
    if (c->reading || c->closing)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        server_conn_close(c);
        return;
    }
    c->reading = 1;
}

static void on_reject_closed(uv_handle_t *handle)
{
    tr_http_server *srv = handle->data;

    tr_free(handle);
    srv->rejects_open--;
    maybe_finished(srv);
}

/* Over the connection cap: a best-effort 503 that never blocks, then close. */
static void reject(tr_http_server *srv, uv_tcp_t *tcp)
{
    static const char answer[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                 "Content-Type: application/json\r\n"
                                 "Content-Length: 56\r\nConnection: close\r\n\r\n"
                                 "{\"error\":\"unavailable\",\"detail\":\"too many "
                                 "connections\"}\n";
    uv_buf_t buf = uv_buf_init((char *)answer, sizeof(answer) - 1);

    (void)uv_try_write((uv_stream_t *)tcp, &buf, 1); /* best effort by design */
    srv->stats.connections_rejected++;
    (void)tr_metric_inc(srv->m_rejected, 1);
    srv->rejects_open++;
    uv_close((uv_handle_t *)tcp, on_reject_closed);
}

static size_t body_limit_of(const char *method, const char *path, void *userdata)
{
    const tr_http_server *srv = userdata;

    (void)method;
    for (size_t i = 0; path != NULL && i < srv->body_limit_count; i++)
        if (strcmp(srv->body_limits[i].path, path) == 0)
            return srv->body_limits[i].max_bytes;
    return 0;
}

int tr_http_server_body_limit(tr_http_server *srv, const char *path, size_t max_bytes)
{
    char *copy;

    if (srv == NULL || path == NULL || max_bytes == 0 ||
        srv->body_limit_count >= TR_HTTP_SERVER_MAX_BODY_LIMITS)
        return TR_EINVAL;
    copy = tr_strdup(path);
    if (copy == NULL)
        return TR_ENOMEM;
    srv->body_limits[srv->body_limit_count].path = copy;
    srv->body_limits[srv->body_limit_count++].max_bytes = max_bytes;
    return TR_OK;
}

static void on_connection(uv_stream_t *listener, int status)
{
    tr_http_server *srv = listener->data;
    tr_http_parse_limits limits = { srv->opt.max_header_bytes, srv->opt.max_body_bytes,
                                    srv->opt.max_headers, srv->opt.max_url_bytes,
                                    body_limit_of, srv };
    struct sockaddr_storage peer;
    int peer_len = sizeof(peer);
    conn *c;

    if (status < 0) {
        tr_log_warn("http", "accept failed: %s", uv_strerror(status));
        return;
    }
    c = tr_calloc(1, sizeof(*c));
    if (c == NULL || uv_tcp_init(srv->loop, &c->tcp) != 0) {
        tr_free(c);
        return; /* the pending connection stays in the kernel's queue */
    }
    c->tcp.data = srv;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || srv->closing ||
        srv->stats.connections_open >= srv->opt.max_connections ||
        tr_http_parser_new(&c->parser, &limits) != TR_OK) {
        reject(srv, &c->tcp); /* c starts with its tcp handle, freed in the close callback */
        return;
    }
    c->srv = srv;
    c->tcp.data = c;
    (void)uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;
    c->handles_open = 2;
    tr_buf_init(&c->inbuf, INBUF_MAX);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &peer_len) == 0)
        c->peer_loopback = addr_is_loopback((struct sockaddr *)&peer);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->stats.connections_open++;
    srv->stats.connections_accepted++;
    (void)tr_metric_inc(srv->m_open, 1);
    (void)tr_metric_inc(srv->m_accepted, 1);
    /* A connection that never sends a byte is held to the header deadline. */
    c->phase = PH_IDLE;
    server_arm(c, srv->opt.header_timeout_ms);
    start_reading(c);
}

/* ------------------------------------------------------------ the server */

static void register_metrics(tr_http_server *srv)
{
    tr_metrics *m = srv->opt.metrics;

    srv->m_requests = tr_metrics_counter(m, "triaged_http_requests",
                                         "HTTP requests answered, by status class.", "class",
                                         NULL);
    srv->m_open = tr_metrics_gauge(m, "triaged_http_connections_open",
                                   "HTTP connections open now.", NULL);
    srv->m_accepted = tr_metrics_counter(m, "triaged_http_connections_accepted",
                                         "HTTP connections accepted.", NULL);
    srv->m_rejected = tr_metrics_counter(m, "triaged_http_connections_rejected",
                                         "HTTP connections refused over max_connections.",
                                         NULL);
    srv->m_timeouts = tr_metrics_counter(m, "triaged_http_timeouts",
                                         "HTTP connections ended by a timeout, by phase.",
                                         "phase", NULL);
    srv->m_aborted = tr_metrics_counter(m, "triaged_http_requests_aborted",
                                        "HTTP requests ended before their handler answered.",
                                        NULL);
    srv->m_duration = tr_metrics_histogram(m, "triaged_http_request_duration_seconds",
                                           "Time from a complete request to its answer.", NULL,
                                           0, NULL);
    (void)tr_metric_set(srv->m_open, 0);
}

int tr_http_server_new(tr_http_server **out, uv_loop_t *loop,
                       const tr_http_server_options *options, tr_error *err)
{
    tr_http_server *srv;

    *out = NULL;
    srv = tr_calloc(1, sizeof(*srv));
    if (srv == NULL)
        return tr_error_set(err, TR_ENOMEM, "http server: out of memory");
    if (options)
        srv->opt = *options;
#define DEFAULT(field, value) if (srv->opt.field == 0) srv->opt.field = (value)
    DEFAULT(max_body_bytes, TR_HTTP_PARSE_DEFAULT_MAX_BODY_BYTES);
    DEFAULT(max_header_bytes, TR_HTTP_PARSE_DEFAULT_MAX_HEADER_BYTES);
    DEFAULT(max_headers, TR_HTTP_PARSE_DEFAULT_MAX_HEADERS);
    DEFAULT(max_url_bytes, TR_HTTP_PARSE_DEFAULT_MAX_URL_BYTES);
    DEFAULT(header_timeout_ms, 10000);
    DEFAULT(body_timeout_ms, 30000);
    DEFAULT(idle_timeout_ms, 60000);
    DEFAULT(handler_timeout_ms, 300000);
    DEFAULT(shutdown_timeout_ms, 5000);
    DEFAULT(max_connections, 256);
#undef DEFAULT
    srv->loop = loop;
    if (uv_timer_init(loop, &srv->shutdown_timer) != 0) {
        tr_free(srv);
        return tr_error_set(err, TR_ERROR, "http server: cannot create a timer");
    }
    srv->shutdown_timer.data = srv;
    if (srv->opt.metrics)
        register_metrics(srv);
    *out = srv;
    return TR_OK;
}

/* Splits a listen string into an IP literal and a port. */
static int parse_listen(const char *listen, char *host, size_t host_size, int *port)
{
    const char *colon, *h = listen;
    size_t host_len;
    char *end;
    long value;

    if (listen == NULL)
        return TR_EINVAL;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (close == NULL || close[1] != ':')
            return TR_EINVAL;
        h = listen + 1;
        host_len = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL)
            return TR_EINVAL;
        host_len = (size_t)(colon - listen);
        if (memchr(listen, ':', host_len))
            return TR_EINVAL; /* a bare IPv6 address needs brackets */
    }
    if (host_len + 1 > host_size || colon[1] < '0' || colon[1] > '9')
        return TR_EINVAL;
    value = strtol(colon + 1, &end, 10);
    if (*end != '\0' || value < 0 || value > 65535)
        return TR_EINVAL;
    memcpy(host, h, host_len);
    host[host_len] = '\0';
    if (host_len == 0)
        snprintf(host, host_size, "0.0.0.0");
    else if (strcasecmp(host, "localhost") == 0)
        snprintf(host, host_size, "127.0.0.1");
    *port = (int)value;
    return TR_OK;
}

int tr_http_listen_is_loopback(const char *listen)
{
    struct sockaddr_in6 in6;
    struct sockaddr_in in4;
    char host[64];
    int port;

    if (parse_listen(listen, host, sizeof(host), &port) != TR_OK)
        return 0;
    if (uv_ip4_addr(host, port, &in4) == 0)
        return addr_is_loopback((struct sockaddr *)&in4);
    if (uv_ip6_addr(host, port, &in6) == 0)
        return addr_is_loopback((struct sockaddr *)&in6);
    return 0;
}

static void on_listener_closed(uv_handle_t *handle)
{
    tr_http_server *srv = handle->data;

    srv->listener_open = 0;
    maybe_finished(srv);
}

int tr_http_server_listen(tr_http_server *srv, const char *listen, tr_error *err)
{
    struct sockaddr_storage addr;
    int addr_len = sizeof(addr);
    char host[64];
    int port, rc;

    if (srv->listener_open || srv->closing)
        return tr_error_set(err, TR_EBUSY, "http server: already listening or closing");
    if (parse_listen(listen, host, sizeof(host), &port) != TR_OK)
        return tr_error_set(err, TR_EINVAL, "listen '%s': expected host:port, [v6]:port "
                            "or :port with an IP address or localhost", listen ? listen : "");
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0)
        return tr_error_set(err, TR_EINVAL, "listen '%s': '%s' is not an IP address", listen,
                            host);
    rc = uv_tcp_init(srv->loop, &srv->listener);
    if (rc != 0)
        return tr_error_set(err, TR_EIO, "listen '%s': %s", listen, uv_strerror(rc));
    srv->listener.data = srv;
    srv->listener_open = 1;
    rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 128, on_connection);
    if (rc == 0)
        rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&addr, &addr_len);
    if (rc != 0) {
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
        return tr_error_set(err, TR_EIO, "listen '%s': %s", listen, uv_strerror(rc));
    }
    srv->port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                 : ((struct sockaddr_in *)&addr)->sin_port);
    return TR_OK;
}

int tr_http_server_port(const tr_http_server *srv)
{
    return srv->port;
}

static void on_shutdown_timer_closed(uv_handle_t *handle)
{
    tr_http_server *srv = handle->data;

    if (srv->on_closed)
        srv->on_closed(srv, srv->closed_userdata); /* may free srv */
}

static void maybe_finished(tr_http_server *srv)
{
    if (!srv->closing || srv->finished || srv->listener_open || srv->conns ||
        srv->rejects_open)
        return;
    srv->finished = 1;
    (void)uv_timer_stop(&srv->shutdown_timer);
    uv_close((uv_handle_t *)&srv->shutdown_timer, on_shutdown_timer_closed);
}

static void close_all(tr_http_server *srv, int busy_too)
{
    conn *c = srv->conns;

    while (c) {
        conn *next = c->next;
        if (busy_too || c->phase <= PH_BODY)
            server_conn_close(c);
        c = next;
    }
}

static void on_shutdown_timer(uv_timer_t *timer)
{
    tr_http_server *srv = timer->data;

    if (srv->conns)
        tr_log_warn("http", "closing connections still busy after %u ms",
                    srv->opt.shutdown_timeout_ms);
    close_all(srv, 1);
}

void tr_http_server_close(tr_http_server *srv, tr_http_closed_cb on_closed, void *userdata)
{
    if (srv == NULL || srv->closing)
        return;
    srv->closing = 1;
    srv->on_closed = on_closed;
    srv->closed_userdata = userdata;
    if (srv->listener_open && !uv_is_closing((uv_handle_t *)&srv->listener))
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    close_all(srv, 0);
    (void)uv_timer_start(&srv->shutdown_timer, on_shutdown_timer, srv->opt.shutdown_timeout_ms,
                         0);
    maybe_finished(srv);
}

void tr_http_server_free(tr_http_server *srv)
{
    if (srv == NULL)
        return;
    tr_http_router_dispose(&srv->router);
    for (size_t i = 0; i < srv->body_limit_count; i++)
        tr_free(srv->body_limits[i].path);
    tr_free(srv);
}

void tr_http_server_get_stats(const tr_http_server *srv, tr_http_server_stats *out)
{
    *out = srv->stats;
}