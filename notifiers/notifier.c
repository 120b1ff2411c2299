/*
 * notifier.c - what every sink shares: the HTTP outcome rule and the clock.
 */
#include "notifier.h"

#include <stdio.h>
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
