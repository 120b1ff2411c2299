/*
 * http_client_internal.h - what http_client.c and http_client_call.c share and
 * nobody else sees: the client, call and poll structs, and the one call the
 * loop side makes into the call side.
 *
 * http_client.c owns the loop side (curl multi on libuv: sockets, timers,
 * deferral, completion, the public API); http_client_call.c owns one call's
 * side (building the easy handle, curl's header/body callbacks) and the
 * Retry-After parser.
 */
#ifndef TR_HTTP_CLIENT_INTERNAL_H
#define TR_HTTP_CLIENT_INTERNAL_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http_client.h"

typedef struct poll_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    tr_http_client *client;
    struct poll_ctx *prev;
    struct poll_ctx *next;
} poll_ctx;

struct tr_http_call {
    tr_http_client *client;
    tr_http_call *prev;
    tr_http_call *next;
    CURL *easy;
    int added;            /* easy is attached to the multi handle */
    int cancelled;
    int done;             /* on_done has been called (or is running) */
    int headers_seen;     /* end of the final response's header block passed */
    int abort_code;       /* why one of our curl callbacks stopped the transfer */
    const char *abort_msg;
    long status;
    int follow_redirects;
    size_t max_stream_bytes; /* streaming cap, 0 = none */
    uint64_t idle_timeout_ms;
    uint64_t last_activity_ms; /* uv_now() when a byte last arrived */
    size_t streamed_bytes;
    struct curl_slist *req_headers;
    char *req_body;
    tr_buf body;          /* buffered mode only */
    tr_buf headers;       /* "name\0value\0" pairs of the current response */
    tr_http_headers_cb on_headers;
    tr_http_data_cb on_data;
    tr_http_done_cb on_done;
    void *userdata;
    char errbuf[CURL_ERROR_SIZE];
};

struct tr_http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t curl_timer;   /* curl's CURLMOPT_TIMERFUNCTION deadline */
    uv_timer_t defer_timer;  /* work that must run outside curl's callbacks */
    uv_timer_t idle_timer;   /* sweeps calls with an idle timeout */
    int timers_open;
    poll_ctx *polls;
    tr_http_call *calls;
    size_t active;
    size_t max_calls;
    int in_multi;            /* inside curl_multi_socket_action */
    int depth;               /* nesting of our loop callbacks */
    int free_requested;
    int closing;             /* teardown started: no new work, no new handles */
};

/* "GET", "POST", ...; NULL for a method we do not know (static string). */
const char *http_method_name(tr_http_method method);

/* Build call->easy (headers, method and body, TLS, limits, our data callbacks)
 * from req. On failure err says which option failed; the caller frees the
 * call, which releases whatever was built. */
int http_call_setup(tr_http_call *call, const tr_http_request *req, tr_error *err);

#endif
