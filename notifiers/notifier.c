/*
 * notifier.c - what every sink shares: the HTTP outcome rule, the JSON POST
 * with its done bookkeeping, and the clock.
 */
#include "notifier.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t tr_notify_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tr_notify_classify_http(const tr_http_response *resp, int64_t now_ms,
                             tr_notify_result *result, char *error, size_t error_size)
{
    const char *retry_after;
    int64_t wait_ms = 0;

    result->status = resp->status;
    result->retry_after_ms = 0;
    result->cancelled = resp->result == TR_ECANCELLED;
    result->error = error;
    error[0] = '\0';
    if (resp->result != TR_OK) {
        result->outcome = TR_NOTIFY_RETRY;
        snprintf(error, error_size, "%s: %s", tr_strerror(resp->result), resp->message);
        return;
    }
    if (resp->status >= 200 && resp->status < 300) {
        result->outcome = TR_NOTIFY_DELIVERED;
        return;
    }
    /* Receivers answer in plain text (Slack: "invalid_blocks"); a short excerpt helps. */
    snprintf(error, error_size, "HTTP %ld: %.160s", resp->status, resp->body ? resp->body : "");
    if (resp->status == 408 || resp->status == 429 || resp->status >= 500) {
        result->outcome = TR_NOTIFY_RETRY;
        retry_after = resp->call ? tr_http_call_header(resp->call, "Retry-After") : NULL;
        if (retry_after && tr_http_retry_after_ms(retry_after, now_ms, &wait_ms) == TR_OK)
            result->retry_after_ms = wait_ms;
        return;
    }
    result->outcome = TR_NOTIFY_DROP;
}

static void on_post_done(const tr_http_response *resp, void *userdata)
{
    tr_notify_post *post = userdata;
    tr_notify_result result;
    tr_notify_done_cb done = post->done;

    tr_notify_classify_http(resp, tr_notify_now_ms(), &result, post->error, sizeof(post->error));
    if (result.outcome == TR_NOTIFY_DELIVERED && post->on_delivered)
        post->on_delivered(resp, &result, post->sink);
    post->call = NULL;
    post->done = NULL;
    done(&result, post->userdata);
}

int tr_notify_post_json(tr_notify_post *post, tr_http_client *http, const char *url,
                        const char *const *headers, const char *body, long timeout_ms,
                        size_t max_response_bytes, tr_notify_done_cb done, void *userdata,
                        tr_error *err)
{
    tr_http_request req;
    int rc;

    memset(&req, 0, sizeof(req));
    req.method = TR_HTTP_POST;
    req.url = url;
    req.headers = headers;
    req.body = body;
    req.body_len = strlen(body);
    req.timeout_ms = timeout_ms;
    req.max_response_bytes = max_response_bytes;
    req.on_done = on_post_done;
    req.userdata = post;
    post->done = done;
    post->userdata = userdata;
    rc = tr_http_client_send(http, &req, &post->call, err);
    if (rc != TR_OK)
        post->done = NULL;
    return rc;
}

void tr_notify_post_cancel(tr_notify_post *post)
{
    if (post->call)
        tr_http_call_cancel(post->call);
}
