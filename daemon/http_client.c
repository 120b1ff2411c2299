/*
 * http_client.c - libcurl multi-socket on the libuv loop.
 *
 * The shape is curl's docs/examples/multi-uv.c with the fixes STYLE.md asks
 * for. Three rules keep it free of leaks and use-after-free:
 *
 *  1. curl_multi_info_read is drained after every curl_multi_socket_action,
 *     from the socket path and the timer path alike, so a transfer that ends
 *     by timeout while nothing else runs is still reaped.
 *
 *  2. libcurl refuses to be re-entered from its own callbacks (add_handle and
 *     remove_handle return CURLM_RECURSIVE_API_CALL there). A call sent or
 *     cancelled from on_headers/on_data therefore only marks the call and arms
 *     the zero-delay "defer" timer; the timer adds the handle or completes the
 *     cancellation once curl has returned. The same path completes calls
 *     cancelled from anywhere else, so on_done never runs inside
 *     tr_http_client_send() or tr_http_call_cancel().
 *
 *  3. A finished call is unhooked from curl (result, status copied, easy
 *     handle removed and cleaned up) before on_done runs, and freed after it
 *     returns, so on_done may start new calls. Freeing the client from inside
 *     a callback is deferred with a depth counter until the outermost loop
 *     callback of the client returns.
 *
 * Building a call and curl's data callbacks are in http_client_call.c.
 */
#include "http_client.h"
#include "http_client_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "log.h"

static void teardown(tr_http_client *c);
static void on_defer(uv_timer_t *timer);
static void on_idle_tick(uv_timer_t *timer);

/* ---- bookkeeping ------------------------------------------------------- */

static void enter(tr_http_client *c)
{
    c->depth++;
}

static void leave(tr_http_client *c)
{
    if (--c->depth == 0 && c->free_requested && !c->closing)
        teardown(c);
}

static void arm_defer(tr_http_client *c)
{
    if (c->closing)
        return;
    /* uv_timer_start only fails on a closing handle, excluded above. */
    (void)uv_timer_start(&c->defer_timer, on_defer, 0, 0);
}

static void call_unlink(tr_http_call *call)
{
    tr_http_client *c = call->client;

    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
    c->active--;
}

static void call_free(tr_http_call *call)
{
    if (call == NULL)
        return;
    if (call->easy)
        curl_easy_cleanup(call->easy);
    curl_slist_free_all(call->req_headers);
    tr_free(call->req_body);
    tr_buf_dispose(&call->body);
    tr_buf_dispose(&call->headers);
    tr_free(call);
}

/*
 * Unhook the call from curl, then tell the user. The call is unlinked before
 * on_done so that a tr_http_client_free() from inside it does not see it.
 */
static void finish_call(tr_http_call *call, int result, const char *message)
{
    tr_http_client *c = call->client;
    tr_http_response resp;
    long status = 0;

    if (call->done)
        return;
    call->done = 1;
    if (call->easy) {
        if (curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
            status != 0)
            call->status = status;
        if (call->added)
            (void)curl_multi_remove_handle(c->multi, call->easy); /* only fails on misuse */
        curl_easy_cleanup(call->easy);
        call->easy = NULL;
        call->added = 0;
    }
    call_unlink(call);

    memset(&resp, 0, sizeof(resp));
    resp.result = result;
    resp.status = call->status;
    resp.body = result == TR_OK ? tr_buf_cstr(&call->body) : "";
    resp.body_len = result == TR_OK ? call->body.len : 0;
    resp.message = message ? message : "";
    resp.call = call;
    call->on_done(&resp, call->userdata);
    call_free(call);
}

/* Map how curl ended a transfer to our result, with a message. */
static void complete_from_curl(tr_http_call *call, CURLcode code)
{
    char message[TR_ERROR_MSG_MAX];
    const char *detail = call->errbuf[0] ? call->errbuf : curl_easy_strerror(code);
    int result;

    if (call->cancelled) {
        finish_call(call, TR_ECANCELLED, "cancelled");
        return;
    }
    switch (code) {
    case CURLE_OK:
        finish_call(call, TR_OK, "");
        return;
    case CURLE_WRITE_ERROR:
        if (call->abort_code != 0) {
            finish_call(call, call->abort_code, call->abort_msg);
            return;
        }
        result = TR_EHTTP;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        result = TR_ETIMEOUT;
        break;
    case CURLE_FILESIZE_EXCEEDED:
        result = TR_ETOOBIG;
        break;
    case CURLE_OUT_OF_MEMORY:
        result = TR_ENOMEM;
        break;
    default:
        result = TR_EHTTP;
        break;
    }
    /* The URL stays out of the message: webhook URLs are secrets. */
    (void)snprintf(message, sizeof(message), "%s (curl error %d: %s)", detail, (int)code,
                   curl_easy_strerror(code));
    finish_call(call, result, message);
}

static void drain_finished(tr_http_client *c)
{
    CURLMsg *msg;
    int left;

    while (!c->closing && (msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        char *priv = NULL;

        if (msg->msg != CURLMSG_DONE)
            continue;
        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK || priv == NULL)
            continue; /* every easy handle of ours carries its call */
        complete_from_curl((tr_http_call *)(void *)priv, code);
    }
}

static void socket_action(tr_http_client *c, curl_socket_t fd, int flags)
{
    int running = 0;
    CURLMcode mc;

    c->in_multi = 1;
    mc = curl_multi_socket_action(c->multi, fd, flags, &running);
    c->in_multi = 0;
    if (mc != CURLM_OK)
        tr_log_warn("http", "curl_multi_socket_action: %s", curl_multi_strerror(mc));
    drain_finished(c);
}

/* ---- sockets and timers ------------------------------------------------ */

static void on_poll_closed(uv_handle_t *handle)
{
    tr_free(handle->data);
}

static void close_poll(tr_http_client *c, poll_ctx *ctx)
{
    if (uv_is_closing((uv_handle_t *)&ctx->poll))
        return;
    if (ctx->prev)
        ctx->prev->next = ctx->next;
    else
        c->polls = ctx->next;
    if (ctx->next)
        ctx->next->prev = ctx->prev;
    ctx->prev = ctx->next = NULL;
    uv_close((uv_handle_t *)&ctx->poll, on_poll_closed);
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    poll_ctx *ctx = handle->data;
    tr_http_client *c = ctx->client;
    int flags = 0;

    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    enter(c);
    socket_action(c, ctx->fd, flags); /* may close ctx: not touched after */
    leave(c);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    tr_http_client *c = userp;
    poll_ctx *ctx = socketp;
    int events = 0;

    if (what == CURL_POLL_REMOVE || c->closing) {
        if (ctx) {
            (void)curl_multi_assign(c->multi, fd, NULL); /* fd is curl's: cannot fail */
            close_poll(c, ctx);
        }
        return 0;
    }
    if (ctx == NULL) {
        ctx = tr_calloc(1, sizeof(*ctx));
        if (ctx == NULL)
            return -1;
        if (uv_poll_init_socket(c->loop, &ctx->poll, fd) != 0) {
            tr_free(ctx); /* a failed init leaves no handle behind */
            return -1;
        }
        ctx->poll.data = ctx;
        ctx->fd = fd;
        ctx->client = c;
        ctx->next = c->polls;
        if (c->polls)
            c->polls->prev = ctx;
        c->polls = ctx;
        if (curl_multi_assign(c->multi, fd, ctx) != CURLM_OK) {
            close_poll(c, ctx);
            return -1;
        }
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    return uv_poll_start(&ctx->poll, events, on_poll) == 0 ? 0 : -1;
}

static void on_curl_timeout(uv_timer_t *timer)
{
    tr_http_client *c = timer->data;

    enter(c);
    socket_action(c, CURL_SOCKET_TIMEOUT, 0);
    leave(c);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    tr_http_client *c = userp;

    if (c->closing)
        return 0;
    if (timeout_ms < 0) {
        (void)uv_timer_stop(&c->curl_timer); /* never fails */
        return 0;
    }
    return uv_timer_start(&c->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0) == 0 ? 0 : -1;
}

static int start_call(tr_http_call *call, tr_error *err)
{
    CURLMcode mc = curl_multi_add_handle(call->client->multi, call->easy);

    if (mc != CURLM_OK)
        return tr_error_set(err, mc == CURLM_OUT_OF_MEMORY ? TR_ENOMEM : TR_EHTTP,
                            "curl_multi_add_handle: %s", curl_multi_strerror(mc));
    call->added = 1;
    return TR_OK;
}

/* Complete cancellations and start calls sent from inside curl callbacks. */
static void on_defer(uv_timer_t *timer)
{
    tr_http_client *c = timer->data;

    enter(c);
    /* Rescan after each step: on_done may add or cancel any call. */
    while (!c->free_requested) {
        tr_http_call *call = c->calls;
        tr_error err;

        while (call && !call->cancelled && call->added)
            call = call->next;
        if (call == NULL)
            break;
        if (call->cancelled) {
            finish_call(call, TR_ECANCELLED, "cancelled");
        } else if (start_call(call, &err) != TR_OK) {
            finish_call(call, err.code, err.message);
        }
    }
    leave(c);
}

/*
 * Idle timeouts are ours, not CURLOPT_LOW_SPEED_*: curl averages speed over
 * a window of several seconds, so "1 byte/s for 1 s" fired after 5 s in our
 * tests. One repeating timer sweeps the calls instead, at an eighth of the
 * shortest idle timeout (20 ms .. 1 s), and stops when none has one.
 */
static void arm_idle_sweep(tr_http_client *c, uint64_t idle_timeout_ms)
{
    uint64_t tick_ms = idle_timeout_ms / 8;

    if (c->closing)
        return;
    tick_ms = tick_ms < 20 ? 20 : tick_ms > 1000 ? 1000 : tick_ms;
    if (uv_is_active((uv_handle_t *)&c->idle_timer) &&
        uv_timer_get_repeat(&c->idle_timer) <= tick_ms)
        return;
    (void)uv_timer_start(&c->idle_timer, on_idle_tick, tick_ms, tick_ms); /* not closing */
}

static void on_idle_tick(uv_timer_t *timer)
{
    tr_http_client *c = timer->data;
    uint64_t now = uv_now(c->loop);
    char message[128];

    enter(c);
    while (!c->free_requested) {
        tr_http_call *call = c->calls;

        while (call && (call->idle_timeout_ms == 0 || call->cancelled ||
                        now - call->last_activity_ms < call->idle_timeout_ms))
            call = call->next;
        if (call == NULL)
            break;
        (void)snprintf(message, sizeof(message), "no data received for %llu ms",
                       (unsigned long long)call->idle_timeout_ms);
        finish_call(call, TR_ETIMEOUT, message); /* may start or cancel calls */
    }
    if (!c->free_requested) {
        tr_http_call *call = c->calls;

        while (call && call->idle_timeout_ms == 0)
            call = call->next;
        if (call == NULL)
            (void)uv_timer_stop(&c->idle_timer);
    }
    leave(c);
}

/* ---- public API ---------------------------------------------------------- */

int tr_http_client_new(tr_http_client **out, uv_loop_t *loop, tr_error *err)
{
    tr_http_client *c = NULL;
    CURLMcode mc = CURLM_OK;
    int rc = TR_OK;

    if (out == NULL || loop == NULL)
        return tr_error_set(err, TR_EINVAL, "tr_http_client_new: NULL argument");
    *out = NULL;
    c = tr_calloc(1, sizeof(*c));
    if (c == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory creating the HTTP client");
    c->loop = loop;
    c->max_calls = TR_HTTP_DEFAULT_MAX_CALLS;
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "curl_multi_init failed");
        goto cleanup;
    }
    if ((mc = curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket)) ||
        (mc = curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, (void *)c)) ||
        (mc = curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer)) ||
        (mc = curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, (void *)c))) {
        rc = tr_error_set(err, TR_EHTTP, "curl_multi_setopt: %s", curl_multi_strerror(mc));
        goto cleanup;
    }
    /* Nothing can fail past this point: the timers are only ever closed. */
    (void)uv_timer_init(loop, &c->curl_timer);  /* always 0 */
    (void)uv_timer_init(loop, &c->defer_timer);
    (void)uv_timer_init(loop, &c->idle_timer);
    c->curl_timer.data = c;
    c->defer_timer.data = c;
    c->idle_timer.data = c;
    c->timers_open = 3;
    *out = c;
    return TR_OK;
cleanup:
    if (c->multi)
        (void)curl_multi_cleanup(c->multi);
    tr_free(c);
    return rc;
}

static void on_timer_closed(uv_handle_t *handle)
{
    tr_http_client *c = handle->data;

    if (--c->timers_open == 0)
        tr_free(c);
}

static void teardown(tr_http_client *c)
{
    c->closing = 1;
    while (c->calls)
        finish_call(c->calls, TR_ECANCELLED, "the HTTP client is shutting down");
    /* Close our polls before curl closes the sockets under them. */
    while (c->polls) {
        (void)curl_multi_assign(c->multi, c->polls->fd, NULL);
        close_poll(c, c->polls);
    }
    (void)curl_multi_cleanup(c->multi); /* fails only on a bad handle */
    c->multi = NULL;
    uv_close((uv_handle_t *)&c->curl_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->defer_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->idle_timer, on_timer_closed);
}

void tr_http_client_free(tr_http_client *c)
{
    tr_http_call *call;

    if (c == NULL || c->free_requested || c->closing)
        return;
    c->free_requested = 1;
    /* Stops curl callbacks still running above us from delivering more data. */
    for (call = c->calls; call; call = call->next)
        call->cancelled = 1;
    if (c->depth == 0)
        teardown(c);
}

void tr_http_client_set_max_calls(tr_http_client *c, size_t max_calls)
{
    if (c)
        c->max_calls = max_calls ? max_calls : TR_HTTP_DEFAULT_MAX_CALLS;
}

size_t tr_http_client_active(const tr_http_client *c)
{
    return c ? c->active : 0;
}

int tr_http_client_send(tr_http_client *c, const tr_http_request *req,
                        tr_http_call **call_out, tr_error *err)
{
    tr_http_call *call = NULL;
    int rc;

    if (call_out)
        *call_out = NULL;
    if (c == NULL || req == NULL || req->url == NULL || req->on_done == NULL)
        return tr_error_set(err, TR_EINVAL, "HTTP request without client, URL or on_done");
    if (strncasecmp(req->url, "http://", 7) != 0 && strncasecmp(req->url, "https://", 8) != 0)
        return tr_error_set(err, TR_EINVAL, "only http:// and https:// URLs are allowed");
    if (http_method_name(req->method) == NULL)
        return tr_error_set(err, TR_EINVAL, "unknown HTTP method %d", (int)req->method);
    if (req->body_len > 0 && req->body == NULL)
        return tr_error_set(err, TR_EINVAL, "body_len without body");
    if (c->free_requested || c->closing)
        return tr_error_set(err, TR_ECANCELLED, "the HTTP client is shutting down");
    if (c->active >= c->max_calls)
        return tr_error_set(err, TR_EBUSY, "%zu HTTP calls already in flight", c->active);

    call = tr_calloc(1, sizeof(*call));
    if (call == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory starting an HTTP call");
    call->client = c;
    call->follow_redirects = req->follow_redirects;
    call->on_headers = req->on_headers;
    call->on_data = req->on_data;
    call->on_done = req->on_done;
    call->userdata = req->userdata;
    call->max_stream_bytes = req->on_data ? req->max_response_bytes : 0;
    call->idle_timeout_ms = req->idle_timeout_ms > 0 ? (uint64_t)req->idle_timeout_ms : 0;
    call->last_activity_ms = uv_now(c->loop);
    tr_buf_init(&call->body, req->max_response_bytes ? req->max_response_bytes
                                                     : TR_HTTP_DEFAULT_MAX_RESPONSE_BYTES);
    tr_buf_init(&call->headers, req->max_header_bytes ? req->max_header_bytes
                                                      : TR_HTTP_DEFAULT_MAX_HEADER_BYTES);
    rc = http_call_setup(call, req, err);
    if (rc != TR_OK)
        goto cleanup;
    if (!c->in_multi) {
        rc = start_call(call, err);
        if (rc != TR_OK)
            goto cleanup;
    } else {
        arm_defer(c); /* curl refuses add_handle from inside its callbacks */
    }
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->active++;
    if (call->idle_timeout_ms)
        arm_idle_sweep(c, call->idle_timeout_ms);
    if (call_out)
        *call_out = call;
    return TR_OK;
cleanup:
    call_free(call);
    return rc;
}

void tr_http_call_cancel(tr_http_call *call)
{
    if (call == NULL || call->done || call->cancelled)
        return;
    call->cancelled = 1;
    arm_defer(call->client);
}

long tr_http_call_status(const tr_http_call *call)
{
    return call ? call->status : 0;
}

const char *tr_http_call_header(const tr_http_call *call, const char *name)
{
    const char *p;
    const char *end;

    if (call == NULL || name == NULL || call->headers.ptr == NULL)
        return NULL;
    p = call->headers.ptr;
    end = p + call->headers.len;
    /* The buffer is NUL-terminated past len, so strlen never runs off it. */
    while (p < end) {
        const char *key = p;
        const char *value = key + strlen(key) + 1;

        if (value >= end)
            break;
        if (strcasecmp(key, name) == 0)
            return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}
