/*
 * http_client.h - every outbound HTTP call of triaged (Kubernetes list and
 * watch streams, the LLM, Slack, forge APIs) on the one libuv loop.
 *
 * A client owns one libcurl multi handle (so connections to a host are
 * reused), one uv_poll_t per socket curl asks about, and uv_timer_t handles:
 * curl's timeout timer and a "deferred work" timer that completes
 * cancellations and starts requests sent from inside curl's callbacks
 * (libcurl forbids re-entering the multi handle from them), plus a third
 * timer that enforces idle timeouts on streams.
 *
 * A call ends with exactly one on_done, never from inside
 * tr_http_client_send() or tr_http_call_cancel(). Until on_done returns the
 * call handle is valid; after it, the handle is gone. Everything runs on the
 * loop thread; nothing here is thread-safe.
 *
 * Two body modes:
 *   - buffered (on_data NULL): the body is collected, capped at
 *     max_response_bytes, and handed to on_done;
 *   - streaming (on_data set): bytes go to on_data as they arrive and are not
 *     kept; on_headers (optional) sees the status and headers first, so a
 *     watch can notice a 403 or 410 before parsing the body.
 */
#ifndef TR_HTTP_CLIENT_H
#define TR_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "error.h"

typedef struct tr_http_client tr_http_client;
typedef struct tr_http_call tr_http_call;

typedef enum tr_http_method {
    TR_HTTP_GET = 0,
    TR_HTTP_POST,
    TR_HTTP_PUT,
    TR_HTTP_PATCH,
    TR_HTTP_DELETE,
    TR_HTTP_HEAD,
} tr_http_method;

#define TR_HTTP_DEFAULT_MAX_CALLS 256
#define TR_HTTP_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define TR_HTTP_DEFAULT_MAX_RESPONSE_BYTES ((size_t)16 * 1024 * 1024)
#define TR_HTTP_DEFAULT_MAX_HEADER_BYTES ((size_t)64 * 1024)

/*
 * What on_done receives. Everything in it is borrowed and valid only while
 * on_done runs; copy what must outlive it.
 */
typedef struct tr_http_response {
    /*
     * TR_OK when an HTTP response arrived, whatever its status; else
     * TR_ETIMEOUT (total or idle timeout), TR_ECANCELLED (tr_http_call_cancel,
     * a callback asked to stop, or the client was freed), TR_ETOOBIG (body
     * or headers over their cap), TR_ENOMEM, or TR_EHTTP (DNS, connect, TLS,
     * protocol errors).
     */
    int result;
    long status;           /* HTTP status of the last response, 0 when none */
    const char *body;      /* buffered mode: the body, NUL-terminated; else "" */
    size_t body_len;
    const char *message;   /* why result != TR_OK (curl's text included); else "" */
    tr_http_call *call;    /* for tr_http_call_header() */
} tr_http_response;

/*
 * Streaming callbacks return 0 to go on, non-zero to abort the call (it then
 * ends with TR_ECANCELLED). They may call tr_http_client_send() and
 * tr_http_call_cancel() (the actual work is deferred to the loop).
 */
typedef int (*tr_http_headers_cb)(tr_http_call *call, long status, void *userdata);
typedef int (*tr_http_data_cb)(tr_http_call *call, const char *data, size_t len,
                               void *userdata);
typedef void (*tr_http_done_cb)(const tr_http_response *resp, void *userdata);

/*
 * A request. Nothing in it is kept after tr_http_client_send() returns: the
 * URL, headers, body and TLS material are all copied, so the struct and what
 * it points to may live on the caller's stack. Zero means "default" for every
 * number.
 */
typedef struct tr_http_request {
    tr_http_method method;
    const char *url;                 /* http:// or https:// only */
    const char *const *headers;      /* NULL-terminated "Name: value" array, or NULL */
    const char *body;                /* may hold NULs; NULL with body_len 0 = none */
    size_t body_len;

    long timeout_ms;                 /* whole call; 0 = none (watch streams) */
    long connect_timeout_ms;         /* 0 = TR_HTTP_DEFAULT_CONNECT_TIMEOUT_MS */
    /*
     * End with TR_ETIMEOUT when no byte (header or body) arrives for this
     * long; 0 = never. Checked every idle_timeout_ms / 8 (20 ms .. 1 s).
     */
    long idle_timeout_ms;
    /*
     * Cap on the (decoded) body. Buffered: 0 = TR_HTTP_DEFAULT_MAX_RESPONSE_BYTES.
     * Streaming: 0 = no cap (a watch runs for hours); set = total streamed bytes.
     */
    size_t max_response_bytes;
    size_t max_header_bytes;         /* 0 = TR_HTTP_DEFAULT_MAX_HEADER_BYTES */
    int follow_redirects;            /* off by default; at most 5 hops */

    /* TLS. A given CA (file or PEM) replaces the system trust store. */
    const char *ca_file;
    const char *ca_pem;
    const char *client_cert_file;
    const char *client_cert_pem;
    const char *client_key_file;
    const char *client_key_pem;
    int insecure_skip_verify;

    const char *basic_user;          /* basic auth when non-NULL */
    const char *basic_password;
    const char *user_agent;          /* NULL = "triaged/" TR_VERSION */

    tr_http_headers_cb on_headers;   /* optional, streaming or not */
    tr_http_data_cb on_data;         /* set = streaming mode */
    tr_http_done_cb on_done;         /* required */
    void *userdata;
} tr_http_request;

/*
 * Create a client on loop. *out is owned by the caller, who releases it with
 * tr_http_client_free().
 */
int tr_http_client_new(tr_http_client **out, uv_loop_t *loop, tr_error *err);

/*
 * Cancel every call (their on_done runs with TR_ECANCELLED, before this
 * returns unless called from inside one of this client's callbacks, in which
 * case once that callback returns), release libcurl, and close the client's
 * libuv handles. The memory is released by the close callbacks: the caller
 * must run the loop afterwards (uv_run(loop, UV_RUN_DEFAULT) returns once
 * nothing else is active) before uv_loop_close(). Accepts NULL.
 */
void tr_http_client_free(tr_http_client *c);

/* Cap on calls in flight (sent, on_done not yet run); 0 restores the default. */
void tr_http_client_set_max_calls(tr_http_client *c, size_t max_calls);

/* Calls in flight. */
size_t tr_http_client_active(const tr_http_client *c);

/*
 * Start a call. On success *call_out (may be NULL) is a handle owned by the
 * client, valid until on_done returns, and on_done will run exactly once. On
 * failure (TR_EINVAL bad request, TR_EBUSY at the cap, TR_ECANCELLED client
 * being freed, TR_ENOMEM) on_done never runs.
 */
int tr_http_client_send(tr_http_client *c, const tr_http_request *req,
                        tr_http_call **call_out, tr_error *err);

/*
 * Stop a call: no more on_headers/on_data; on_done runs later from the loop
 * with TR_ECANCELLED. Safe from inside any callback of this client; a no-op
 * from the call's own on_done.
 */
void tr_http_call_cancel(tr_http_call *call);

/* Status of the response being received, 0 before its status line. */
long tr_http_call_status(const tr_http_call *call);

/*
 * Value of a response header of the current (final) response, matched
 * case-insensitively, first occurrence; NULL when absent. Borrowed from the
 * call: valid until the next callback returns.
 */
const char *tr_http_call_header(const tr_http_call *call, const char *name);

/*
 * Parse a Retry-After value: delta-seconds ("7") or an HTTP-date
 * ("Sun, 06 Nov 1994 08:49:37 GMT", also the RFC 850 and asctime forms).
 * *out_ms is the wait from now_ms (Unix ms), 0 for a date in the past.
 * Returns TR_OK or TR_EINVAL (garbage, or absurdly large).
 */
int tr_http_retry_after_ms(const char *value, int64_t now_ms, int64_t *out_ms);

#endif
