/*
 * notifier.h - the sink interface every notifier implements (Fluent Bit's
 * out_* plugins): a small vtable of init / send / cancel / destroy plus the
 * sink's private state. One file per kind (log.c, slack.c, webhook.c,
 * teams.c); the registry line lives in dispatch.c.
 *
 * The dispatcher (dispatch.h) owns the sinks. It loads each outbox delivery
 * into a tr_notify_message (content.h), applies routing, and hands it to
 * send(). A sink has at most one send in flight, so a sink never needs a
 * queue of its own. A send ends in exactly one done callback with one of
 * three outcomes, as STYLE.md asks of delivery-style calls: delivered, retry
 * later (optionally with the receiver's Retry-After), or drop (the receiver
 * will never take this message: 4xx other than 408/429).
 *
 * Secrets (webhook URLs, bot tokens, HMAC keys) are resolved by init with
 * tr_config_secret_resolve, kept only in the sink's state, zeroed on
 * destroy, and never logged nor put in an error text.
 */
#ifndef TR_NOTIFIER_H
#define TR_NOTIFIER_H

#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "config.h"
#include "content.h"
#include "error.h"
#include "http_client.h"
#include "store.h"

typedef enum tr_notify_outcome {
    TR_NOTIFY_DELIVERED = 0,
    TR_NOTIFY_RETRY = 1, /* 5xx, 408, 429, timeouts, transport errors */
    TR_NOTIFY_DROP = 2,  /* permanent refusal: retrying cannot help */
} tr_notify_outcome;

/* What a send ended with; borrowed, valid while the done callback runs. */
typedef struct tr_notify_result {
    int outcome;            /* tr_notify_outcome */
    int64_t retry_after_ms; /* > 0 when the receiver said when to come back (429) */
    int cancelled;          /* ended by cancel() (shutdown): not an attempt that failed */
    long status;            /* HTTP status, 0 when no response arrived */
    const char *error;      /* why it failed ("" when delivered); never holds a secret */
} tr_notify_result;

typedef void (*tr_notify_done_cb)(const tr_notify_result *result, void *userdata);

/* What init gets. Everything is borrowed and outlives the sink. */
typedef struct tr_notifier_env {
    const tr_config_notify *cfg;
    uv_loop_t *loop;
    tr_http_client *http;
    tr_store *store;            /* Slack keeps thread timestamps in its kv table */
    const char *slack_api_url;  /* NULL = "https://slack.com/api" (tests use a fake) */
    FILE *out;                  /* log sink only: NULL = stdout */
    long timeout_ms;            /* per HTTP call; 0 = TR_NOTIFY_DEFAULT_TIMEOUT_MS */
} tr_notifier_env;

#define TR_NOTIFY_DEFAULT_TIMEOUT_MS 30000L

typedef struct tr_notifier_vtable {
    const char *kind; /* "slack", "teams", "webhook", "log" */
    /* Build the sink's state (*state owned by the sink, freed by destroy). */
    int (*init)(void **state, const tr_notifier_env *env, tr_error *err);
    /*
     * Deliver msg (borrowed: valid only during this call; copy what the
     * answer needs). Returns 0 when done will run exactly once (possibly
     * before send returns), or a TR_E* code when nothing was started (then
     * done never runs and err says why).
     */
    int (*send)(void *state, const tr_notify_message *msg, tr_notify_done_cb done,
                void *userdata, tr_error *err);
    /* End the send in flight, if any: its done runs later with cancelled = 1. */
    void (*cancel)(void *state);
    /* Free the state; only when no send is in flight. Accepts NULL. */
    void (*destroy)(void *state);
} tr_notifier_vtable;

extern const tr_notifier_vtable tr_notifier_log;
extern const tr_notifier_vtable tr_notifier_slack;
extern const tr_notifier_vtable tr_notifier_webhook;
extern const tr_notifier_vtable tr_notifier_teams;

/*
 * The shared HTTP outcome rule for sinks: transport errors, 408, 429 and
 * 5xx retry (a 429's Retry-After is parsed into retry_after_ms), other 4xx
 * drop, 2xx deliver. error receives a short text ("HTTP 503", curl's text).
 */
void tr_notify_classify_http(const tr_http_response *resp, int64_t now_ms,
                             tr_notify_result *result, char *error, size_t error_size);

/*
 * One JSON POST in flight for an HTTP sink (Slack, Teams, webhook): the call,
 * the done callback waiting for it and the error text the result points at.
 * Lives inside the sink's state; zeroed with it.
 */
typedef struct tr_notify_post {
    tr_http_call *call;
    tr_notify_done_cb done;
    void *userdata;
    /* Optional: looks at a 2xx answer and may change the outcome (Slack's
     * {"ok":false}); sink is what tr_notify_post_json was given. */
    void (*on_delivered)(const tr_http_response *resp, tr_notify_result *result, void *sink);
    void *sink;
    char error[512];
} tr_notify_post;

/*
 * POST body (JSON, borrowed: copied by the HTTP client) to url with headers
 * (NULL-terminated, borrowed for this call only). When the reply arrives it
 * is mapped with tr_notify_classify_http, then on_delivered (if set) sees a
 * 2xx, then done runs once with the result. Returns 0 when done will run, or
 * a TR_E* code when nothing was started (done never runs; err says why).
 */
int tr_notify_post_json(tr_notify_post *post, tr_http_client *http, const char *url,
                        const char *const *headers, const char *body, long timeout_ms,
                        size_t max_response_bytes, tr_notify_done_cb done, void *userdata,
                        tr_error *err);

/* Cancel the POST in flight, if any: its done runs later with cancelled = 1. */
void tr_notify_post_cancel(tr_notify_post *post);

/* Unix time in milliseconds (the real clock). */
int64_t tr_notify_now_ms(void);

#endif
