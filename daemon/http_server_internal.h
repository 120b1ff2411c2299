/*
 * http_server_internal.h - what http_server.c and http_server_respond.c share
 * and nobody else sees: the server, connection and request structs and the
 * calls each side makes into the other.
 *
 * http_server.c owns the connections (accept, read, parse, timers, close) and
 * the server's lifecycle; http_server_respond.c owns the request a handler
 * holds (accessors, extra headers) and everything that puts bytes on the
 * wire (answers, error answers, the write callback that moves a connection
 * on to keep-alive or linger).
 */
#ifndef TR_HTTP_SERVER_INTERNAL_H
#define TR_HTTP_SERVER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "http_router.h"
#include "http_server.h"

typedef enum phase { PH_IDLE, PH_HEADERS, PH_BODY, PH_HANDLER, PH_WRITING, PH_LINGER } phase;

typedef struct conn conn;

struct tr_http_server {
    uv_loop_t *loop;
    tr_http_server_options opt;
    uv_tcp_t listener;
    uv_timer_t shutdown_timer;
    int listener_open;
    int port;
    tr_http_router router;
    struct {
        char *path;
        size_t max_bytes;
    } body_limits[TR_HTTP_SERVER_MAX_BODY_LIMITS];
    size_t body_limit_count;
    conn *conns;          /* every connection whose handles are not yet closed */
    unsigned rejects_open; /* refused sockets whose close is pending */
    int closing;
    int finished;
    tr_http_closed_cb on_closed;
    void *closed_userdata;
    tr_http_server_stats stats;
    tr_metric_family *m_requests, *m_open, *m_accepted, *m_rejected, *m_timeouts;
    tr_metric_family *m_aborted, *m_duration;
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    tr_http_server *srv;
    conn *prev, *next;
    tr_http_parser *parser;
    tr_buf inbuf;
    tr_http_req *pending;
    phase phase;
    int reading;
    int closing;
    int handles_open;
    int peer_loopback;
};

struct tr_http_req {
    conn *conn; /* NULL once aborted */
    tr_http_inbound *parsed;
    int head;
    tr_http_router_params params;
    tr_buf extra_headers;
    tr_http_abort_cb abort_cb;
    void *abort_userdata;
    int peer_loopback;
    uint64_t start_ms;
};

/* http_server.c */

/* (Re)start c's one timer for ms (0 stops it); what it means depends on c's phase. */
void server_arm(conn *c, unsigned ms);

/* Close c's handles (aborting its pending request); c is freed once they are closed. */
void server_conn_close(conn *c);

/* Parse what c has buffered and move it on: dispatch a request, answer an error, wait. */
void server_conn_process(conn *c);

/* http_server_respond.c */

/* Detach c's pending request from c and tell the handler (see the definition). */
void server_req_abort(conn *c);

/*
 * Write data (tr_malloc'd, taken) on c; is_answer moves c to WRITING and, once
 * written, to IDLE or LINGER by keep_alive. Returns 0, or an error after
 * closing the connection.
 */
int server_conn_write(conn *c, char *data, size_t len, int is_answer, int keep_alive);

/* An error answer after which the connection ends. */
void server_send_error_close(conn *c, int status, const char *detail);

#endif
