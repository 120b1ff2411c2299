/*
 * http_server.h - the daemon's inbound HTTP/1.1 server: libuv TCP on the
 * caller's loop, requests parsed by http_parse, routed by method and path
 * pattern to handlers that answer now or later.
 *
 * The server owns its listener, its connections and every tr_http_req until
 * the handler answers it. One request is served at a time per connection:
 * pipelined bytes are kept (bounded) and parsed once the answer is written.
 * Every error answer is JSON {"error": "...", "detail": "..."}; every answer
 * carries Content-Length, and Connection: close when the server closes.
 *
 * Request ownership (the rule that makes late answers safe):
 *   A handler receives a tr_http_req it must answer exactly once, with
 *   tr_http_respond() or tr_http_respond_error(), now or later, from the
 *   loop thread. The request and everything its accessors return stay
 *   valid until that call, which always releases the request. If the client
 *   goes away first (or the handler timeout or server shutdown ends the
 *   request), the abort callback set with tr_http_req_on_abort() runs once,
 *   so the handler may cancel its work; the request then stays valid, still
 *   waiting for its one respond call, which is a no-op that only frees it
 *   (it returns TR_ECANCELLED). A handler must never keep the pointer after
 *   responding. Requests outlive the server if need be: a respond after the
 *   server has closed is the same no-op.
 *
 * Timeouts: header_timeout from a connection's start (or the first byte of
 * a keep-alive request) to the end of its headers, never extended by slow
 * bytes (slowloris) -> 408; body_timeout for the body -> 408; idle_timeout
 * between keep-alive requests -> silent close; handler_timeout -> 503 and
 * abort. Beyond max_connections a new connection gets a best-effort 503 and
 * is closed at once, and counted.
 *
 * Loop thread only.
 */
#ifndef TR_HTTP_SERVER_H
#define TR_HTTP_SERVER_H

#include <stddef.h>
#include <uv.h>

#include "error.h"
#include "http_parse.h"
#include "metrics.h"

typedef struct tr_http_server tr_http_server;
typedef struct tr_http_req tr_http_req;

typedef void (*tr_http_handler)(tr_http_req *req, void *userdata);
typedef void (*tr_http_abort_cb)(tr_http_req *req, void *userdata);
typedef void (*tr_http_closed_cb)(tr_http_server *srv, void *userdata);

/* Zero fields take the defaults in brackets. */
typedef struct tr_http_server_options {
    size_t max_body_bytes;        /* [1 MiB] */
    size_t max_header_bytes;      /* [64 KiB] */
    size_t max_headers;           /* [100] */
    size_t max_url_bytes;         /* [8 KiB] */
    unsigned header_timeout_ms;   /* [10 s] */
    unsigned body_timeout_ms;     /* [30 s] */
    unsigned idle_timeout_ms;     /* [60 s] keep-alive idle; also the write timeout */
    unsigned handler_timeout_ms;  /* [300 s] a handler that never answers */
    unsigned shutdown_timeout_ms; /* [5 s] in-flight requests get this long on close */
    unsigned max_connections;     /* [256] */
    tr_metrics *metrics;          /* optional; borrowed, must outlive the server */
} tr_http_server_options;

/* Counters since the server started (also exported through metrics). */
typedef struct tr_http_server_stats {
    unsigned connections_open;
    unsigned long long connections_accepted;
    unsigned long long connections_rejected;
    unsigned long long requests_by_class[6]; /* [2] = 2xx ... [5] = 5xx */
    unsigned long long timeouts;
    unsigned long long requests_aborted;
} tr_http_server_stats;

/*
 * Create a server on loop (options may be NULL). It owns a libuv handle from
 * here on, so it is always ended with tr_http_server_close(), the loop run
 * until on_closed, then tr_http_server_free().
 */
int tr_http_server_new(tr_http_server **out, uv_loop_t *loop,
                       const tr_http_server_options *options, tr_error *err);

/*
 * Start listening on "host:port", "[v6]:port", ":port" (all IPv4
 * interfaces) or "localhost:port"; hosts are IP literals or localhost (no
 * DNS on the loop). Port 0 picks a free port, see tr_http_server_port().
 */
int tr_http_server_listen(tr_http_server *srv, const char *listen, tr_error *err);
int tr_http_server_port(const tr_http_server *srv);

/* 1 when listen names a loopback address (127.0.0.0/8, ::1, localhost). */
int tr_http_listen_is_loopback(const char *listen);

/*
 * Requests to exactly this path may carry bodies up to max_bytes instead of
 * max_body_bytes (bigger or smaller). At most TR_HTTP_SERVER_MAX_BODY_LIMITS
 * paths (TR_EINVAL beyond, TR_ENOMEM).
 */
#define TR_HTTP_SERVER_MAX_BODY_LIMITS 8
int tr_http_server_body_limit(tr_http_server *srv, const char *path, size_t max_bytes);

/*
 * Route method + pattern to handler. Patterns are '/'-separated segments,
 * literal or {name}: "/v1/incidents/{id}/accept". A {name} matches one
 * non-empty segment, percent-decoded; literal segments win over {name}.
 * GET routes answer HEAD too (without the body).
 */
int tr_http_server_route(tr_http_server *srv, const char *method, const char *pattern,
                         tr_http_handler handler, void *userdata);

/*
 * Stop accepting, close idle connections, let requests in flight finish for
 * up to shutdown_timeout_ms (then abort them), and call on_closed (may be
 * NULL) once every handle is closed; the loop can then be closed.
 */
void tr_http_server_close(tr_http_server *srv, tr_http_closed_cb on_closed, void *userdata);

/* Only after on_closed has run (it may be called from on_closed). */
void tr_http_server_free(tr_http_server *srv);

void tr_http_server_get_stats(const tr_http_server *srv, tr_http_server_stats *out);

/* Accessors: strings are borrowed from req and valid until it is answered. */
const char *tr_http_req_method(const tr_http_req *req);
const char *tr_http_req_path(const tr_http_req *req);        /* still percent-encoded */
const char *tr_http_req_query(const tr_http_req *req, const char *name); /* decoded */
const char *tr_http_req_header(const tr_http_req *req, const char *name);
const char *tr_http_req_body(const tr_http_req *req, size_t *len);
const char *tr_http_req_param(const tr_http_req *req, const char *name); /* {name} */
int tr_http_req_peer_is_loopback(const tr_http_req *req);
const tr_http_inbound *tr_http_req_inbound(const tr_http_req *req);

/* Run cb once if the request ends before it is answered (see the rule above). */
void tr_http_req_on_abort(tr_http_req *req, tr_http_abort_cb cb, void *userdata);

/*
 * Add a header to the answer. Refuses (TR_EINVAL) CR, LF or NUL, and the
 * headers the server owns: Content-Length, Connection, Transfer-Encoding.
 */
int tr_http_req_add_header(tr_http_req *req, const char *name, const char *value);

/*
 * Answer and release req. content_type may be NULL when len is 0. Returns 0
 * when the answer was queued, TR_ECANCELLED when the request had been
 * aborted (nothing sent), or another TR_E* (then a 500 went out instead).
 */
int tr_http_respond(tr_http_req *req, int status, const char *content_type, const char *body,
                    size_t len);

/* Answer with {"error": error, "detail": detail} (detail may be NULL). */
int tr_http_respond_error(tr_http_req *req, int status, const char *error, const char *detail);

#endif
