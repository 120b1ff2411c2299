/*
 * dispatch.h - the delivery loop: outbox rows to sinks, on the libuv loop.
 *
 * The dispatcher owns one sink per [[notify]] table (built through the
 * notifier vtables of notifier.h), registers each with the store's outbox at
 * start, and delivers every sink's due messages one at a time, in order:
 *
 *   - routing: a message the sink's filters exclude (namespaces,
 *     min_severity from the analysis or a default per failure class,
 *     sources) is marked delivered as skipped, never retried;
 *   - per-incident rate limit: at most one message per incident per
 *     rate_limit, except state changes (opened, reopened, resolved,
 *     accepted, rejected, pr.*) and the first analysis after an open;
 *     a limited message is skipped the same way;
 *   - outcomes: delivered → marked delivered; retry → due again after
 *     exponential backoff (with jitter), or after the receiver's 429
 *     Retry-After, which also pauses the whole sink that long; drop, or
 *     max_attempts failures → dead letter (visible in the store, the API
 *     and the metrics).
 *
 * Delivery is at least once with a stable delivery id per (message, sink),
 * hence exactly once for a receiver that drops ids it has seen: a message
 * committed before a crash is delivered after the restart; one that was in
 * flight comes back when its lease ends and is sent again with the same id.
 *
 * Metrics: triaged_notify_deliveries_total{sink,outcome} (delivered, retry,
 * dropped, dead, skipped, rate_limited) and triaged_notify_dead_letters{sink}.
 *
 * Loop thread only. tr_dispatch_close must end before the store and the HTTP
 * client are released.
 */
#ifndef TR_DISPATCH_H
#define TR_DISPATCH_H

#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "config.h"
#include "error.h"
#include "http_client.h"
#include "metrics.h"
#include "store.h"

typedef struct tr_dispatch tr_dispatch;
typedef void (*tr_dispatch_closed_cb)(void *userdata);

/* Knobs with defaults, mostly for tests; zero fields take the defaults in brackets. */
typedef struct tr_dispatch_options {
    int64_t (*now_ms)(void *userdata); /* [the real clock] the store's notion of now */
    void *clock_userdata;
    uint64_t poll_interval_ms;         /* [2000] look for due work this often */
    uint64_t backoff_base_ms;          /* [1000] first retry delay, doubled per attempt */
    uint64_t backoff_max_ms;           /* [3600000] cap on a delay, Retry-After included */
    long send_timeout_ms;              /* [30000] per HTTP call */
    int64_t lease_ms;                  /* [send_timeout + 5 s] */
    const char *slack_api_url;         /* ["https://slack.com/api"] */
    FILE *log_out;                     /* [stdout] the log sink's output */
} tr_dispatch_options;

/*
 * Build every sink of cfg->notify (resolving their secrets: a missing one is
 * TR_ECONFIG naming the sink and the variable), register them with the
 * store and start polling. All arguments are borrowed and must outlive the
 * dispatcher; metrics may be NULL. *out is owned by the caller, released
 * with tr_dispatch_close. On failure nothing is left running.
 */
int tr_dispatch_new(tr_dispatch **out, uv_loop_t *loop, tr_store *store, tr_http_client *http,
                    const tr_config *cfg, tr_metrics *metrics, tr_error *err);
/* Same with options (may be NULL). */
int tr_dispatch_new_with(tr_dispatch **out, uv_loop_t *loop, tr_store *store,
                         tr_http_client *http, const tr_config *cfg, tr_metrics *metrics,
                         const tr_dispatch_options *options, tr_error *err);

/* Something was enqueued: look for due work now rather than at the next poll. */
void tr_dispatch_notify(tr_dispatch *d);

/* Sends in flight right now (0 .. number of sinks). */
int tr_dispatch_in_flight(const tr_dispatch *d);

/*
 * Stop: no new sends, sends in flight are cancelled (they stay leased in the
 * store and are delivered again after the restart), the timer is closed, the
 * sinks are destroyed, then on_closed (may be NULL) runs from the loop and d
 * is freed. Accepts NULL (on_closed is then not called).
 */
void tr_dispatch_close(tr_dispatch *d, tr_dispatch_closed_cb on_closed, void *userdata);

#endif
