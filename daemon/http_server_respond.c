/*
 * http_server_respond.c - the request a handler holds and the answers that go
 * back on the wire (see http_server.c for the connection's phases).
 *
 * Every answer goes through send_answer(); an answer is written, never
 * parsed further from here: the next request on a keep-alive connection is
 * only processed from the write callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "buf.h"
#include "http_router.h"
#include "http_server.h"
#include "http_server_internal.h"
#include "log.h"

#define EXTRA_HEADERS_MAX ((size_t)16 * 1024)
#define LINGER_MS 2000

typedef struct write_req {
    uv_write_t req;
    conn *conn;
    char *data;
    int is_answer;
    int keep_alive;
} write_req;

/* ------------------------------------------------------------ requests */

static void req_free(tr_http_req *req)
{
    tr_http_router_params_dispose(&req->params);
    tr_http_inbound_free(req->parsed);
    tr_buf_dispose(&req->extra_headers);
    tr_free(req);
}

/*
 * Detach c's pending request from c and tell the handler; the request waits
 * for its respond. Taking the connection (not the request) keeps the clearing
 * of c->pending visible to callers that look at it again afterwards.
 */
void server_req_abort(conn *c)
{
    tr_http_req *req = c->pending;
    tr_http_server *srv = c->srv;

    c->pending = NULL;
    req->conn = NULL;
    srv->stats.requests_aborted++;
    (void)tr_metric_inc(srv->m_aborted, 1);
    if (req->abort_cb)
        req->abort_cb(req, req->abort_userdata);
}

const char *tr_http_req_method(const tr_http_req *req)
{
    return tr_http_inbound_method(req->parsed);
}

const char *tr_http_req_path(const tr_http_req *req)
{
    return tr_http_inbound_path(req->parsed);
}

const char *tr_http_req_query(const tr_http_req *req, const char *name)
{
    return tr_http_inbound_param(req->parsed, name);
}

const char *tr_http_req_header(const tr_http_req *req, const char *name)
{
    return tr_http_inbound_header(req->parsed, name);
}

const char *tr_http_req_body(const tr_http_req *req, size_t *len)
{
    return tr_http_inbound_body(req->parsed, len);
}

const char *tr_http_req_param(const tr_http_req *req, const char *name)
{
    return tr_http_router_param(&req->params, name);
}

int tr_http_req_peer_is_loopback(const tr_http_req *req)
{
    return req->peer_loopback;
}

const tr_http_inbound *tr_http_req_inbound(const tr_http_req *req)
{
    return req->parsed;
}

void tr_http_req_on_abort(tr_http_req *req, tr_http_abort_cb cb, void *userdata)
{
    req->abort_cb = cb;
    req->abort_userdata = userdata;
}

static int header_text_ok(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return 0;
    return 1;
}

int tr_http_req_add_header(tr_http_req *req, const char *name, const char *value)
{
    static const char *const owned[] = { "Content-Length", "Connection", "Transfer-Encoding" };
    size_t i;

    if (name == NULL || value == NULL || name[0] == '\0' || strchr(name, ':') ||
        !header_text_ok(name) || !header_text_ok(value))
        return TR_EINVAL;
    for (i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
        if (strcasecmp(name, owned[i]) == 0)
            return TR_EINVAL;
    if (req->extra_headers.max_len == 0)
        tr_buf_init(&req->extra_headers, EXTRA_HEADERS_MAX);
    return tr_buf_printf(&req->extra_headers, "%s: %s\r\n", name, value);
}

/* ------------------------------------------------------------ writing */

static void on_write(uv_write_t *wreq, int status)
{
    write_req *w = (write_req *)wreq;
    conn *c = w->conn;
    int is_answer = w->is_answer, keep_alive = w->keep_alive;

    tr_free(w->data);
    tr_free(w);
    if (c->closing)
        return;
    if (status < 0) {
        server_conn_close(c);
        return;
    }
    if (!is_answer)
        return;
    if (!keep_alive) {
        c->phase = PH_LINGER;
        server_arm(c, LINGER_MS);
        if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, NULL) != 0) {
            server_conn_close(c);
            return;
        }
    } else {
        c->phase = PH_IDLE;
        server_arm(c, c->srv->opt.idle_timeout_ms);
    }
    server_conn_process(c);
}

/* Takes data (tr_malloc'd). Returns 0 or closes the connection. */
int server_conn_write(conn *c, char *data, size_t len, int is_answer, int keep_alive)
{
    write_req *w = tr_calloc(1, sizeof(*w));
    uv_buf_t buf = uv_buf_init(data, (unsigned)len);

    if (w == NULL) {
        tr_free(data);
        server_conn_close(c);
        return TR_ENOMEM;
    }
    w->conn = c;
    w->data = data;
    w->is_answer = is_answer;
    w->keep_alive = keep_alive;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) {
        tr_free(data);
        tr_free(w);
        server_conn_close(c);
        return TR_EIO;
    }
    if (is_answer) {
        c->phase = PH_WRITING;
        server_arm(c, c->srv->opt.idle_timeout_ms);
    }
    return TR_OK;
}

static const char *error_slug(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "request_timeout";
    case 413: return "payload_too_large";
    case 414: return "uri_too_long";
    case 417: return "expectation_failed";
    case 431: return "headers_too_large";
    case 503: return "unavailable";
    case 505: return "http_version_not_supported";
    default: return status >= 500 ? "internal" : "error";
    }
}

static int build_error_json(tr_buf *out, const char *error, const char *detail)
{
    int rc = tr_buf_puts(out, "{\"error\":\"");

    if (rc == TR_OK)
        rc = tr_buf_put_json_escaped(out, error, strlen(error));
    if (rc == TR_OK)
        rc = tr_buf_puts(out, "\",\"detail\":\"");
    if (rc == TR_OK && detail)
        rc = tr_buf_put_json_escaped(out, detail, strlen(detail));
    if (rc == TR_OK)
        rc = tr_buf_puts(out, "\"}\n");
    return rc;
}

static void count_status(tr_http_server *srv, int status)
{
    static const char *const classes[] = { "1xx", "1xx", "2xx", "3xx", "4xx", "5xx" };
    int cls = status / 100;

    if (cls < 1 || cls > 5)
        cls = 5;
    srv->stats.requests_by_class[cls]++;
    (void)tr_metric_inc(srv->m_requests, 1, classes[cls]);
}

/*
 * The one place an answer is put on the wire. req may be NULL (an error
 * found before any request existed). Always ends with the connection
 * writing or closed.
 */
static int send_answer(conn *c, const tr_http_req *req, int status, const char *content_type,
                       const char *body, size_t len, int keep_alive)
{
    tr_buf out = TR_BUF_INIT(0);
    int no_body = status == 204 || status == 304 || (req && req->head);
    int minor = req ? tr_http_inbound_version_minor(req->parsed) : 1;
    int rc;

    keep_alive = keep_alive && !c->srv->closing;
    rc = tr_buf_printf(&out, "HTTP/1.1 %d %s\r\n", status, tr_http_reason(status));
    if (rc == TR_OK && content_type && (len > 0 || req == NULL || req->head))
        rc = tr_buf_printf(&out, "Content-Type: %s\r\n", content_type);
    if (rc == TR_OK && status != 204)
        rc = tr_buf_printf(&out, "Content-Length: %zu\r\n", status == 304 ? 0 : len);
    if (rc == TR_OK && req && req->extra_headers.len)
        rc = tr_buf_put(&out, req->extra_headers.ptr, req->extra_headers.len);
    if (rc == TR_OK && !keep_alive)
        rc = tr_buf_puts(&out, "Connection: close\r\n");
    else if (rc == TR_OK && minor == 0)
        rc = tr_buf_puts(&out, "Connection: keep-alive\r\n");
    if (rc == TR_OK)
        rc = tr_buf_puts(&out, "\r\n");
    if (rc == TR_OK && !no_body && len)
        rc = tr_buf_put(&out, body, len);
    if (rc != TR_OK) {
        tr_buf_dispose(&out);
        server_conn_close(c);
        return rc;
    }
    count_status(c->srv, status);
    len = out.len;
    return server_conn_write(c, tr_buf_detach(&out), len, 1, keep_alive);
}

/* An error answer after which the connection ends. */
void server_send_error_close(conn *c, int status, const char *detail)
{
    tr_buf body = TR_BUF_INIT(0);

    if (c->pending)
        server_req_abort(c);
    if (build_error_json(&body, error_slug(status), detail) != TR_OK) {
        tr_buf_dispose(&body);
        server_conn_close(c);
        return;
    }
    (void)send_answer(c, NULL, status, "application/json", body.ptr, body.len, 0);
    tr_buf_dispose(&body);
}

int tr_http_respond(tr_http_req *req, int status, const char *content_type, const char *body,
                    size_t len)
{
    conn *c;
    tr_http_server *srv;
    int rc;

    if (req == NULL)
        return TR_EINVAL;
    c = req->conn;
    if (c == NULL) {
        req_free(req);
        return TR_ECANCELLED;
    }
    srv = c->srv;
    c->pending = NULL;
    (void)tr_metric_observe(srv->m_duration, (double)(uv_now(srv->loop) - req->start_ms) / 1e3);
    if (status < 200 || status > 599 || (len > 0 && body == NULL)) {
        static const char bad[] = "{\"error\":\"internal\",\"detail\":\"bad handler answer\"}\n";

        tr_log_error("http", "%s %s: handler answered with status %d", tr_http_req_method(req),
                     tr_http_req_path(req), status);
        req->extra_headers.len = 0;
        rc = send_answer(c, req, 500, "application/json", bad, sizeof(bad) - 1, 0);
        req_free(req);
        return rc == TR_OK ? TR_EINVAL : rc;
    }
    rc = send_answer(c, req, status, content_type, body, len,
                     tr_http_inbound_keep_alive(req->parsed));
    req_free(req);
    return rc;
}

int tr_http_respond_error(tr_http_req *req, int status, const char *error, const char *detail)
{
    tr_buf body = TR_BUF_INIT(0);
    int rc;

    if (req == NULL)
        return TR_EINVAL;
    rc = build_error_json(&body, error ? error : error_slug(status), detail);
    if (rc != TR_OK) {
        tr_buf_dispose(&body);
        return tr_http_respond(req, 500, NULL, NULL, 0);
    }
    rc = tr_http_respond(req, status, "application/json", body.ptr, body.len);
    tr_buf_dispose(&body);
    return rc;
}
