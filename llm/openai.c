/*
 * openai.c - chat completions with retries, budgets and a circuit breaker.
 *
 * A request's life: queued (bounded FIFO) until one of max_concurrency
 * slots is free; then each attempt charges the hourly call budget, sends,
 * and classifies the answer:
 *   - 2xx with a chat completion: done; usage is charged to the daily token
 *     budget (also for a completion whose content is unusable);
 *   - network error, timeout, 408, 409, 429, 5xx: retried after
 *     max(Retry-After, backoff) while retries remain, keeping its slot.
 *     llama.cpp answers 500 (not 400) to a body it cannot parse; that is
 *     deterministic, so such a 500 is retried at most once. A 429 that says
 *     insufficient_quota, and `x-should-retry: false`, are not retried;
 *   - 400 that rejects response_format / json_schema: the request is resent
 *     with the next weaker mode (json_schema → json_object → none), and the
 *     adapter remembers the downgrade for later requests;
 *   - anything else (401, 403, 404, other 4xx): failed at once.
 * The final outcome feeds the breaker: `breaker_threshold` failed requests
 * in a row open it (requests are refused, the caller uses rules), after the
 * cooldown one probe is let through (half-open): success closes it, failure
 * reopens it.
 *
 * Each request owns a uv_timer_t (backoff waits), closed before the request
 * is freed; the adapter itself owns no handle and is released when its last
 * request is gone.
 */
#include "openai.h"

#include "alloc.h"
#include "buf.h"
#include "log.h"
#include "reply.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HOUR_MS ((int64_t)3600 * 1000)
#define DAY_MS ((int64_t)24 * 3600 * 1000)
#define BUDGET_CALLS_KEY "llm.calls"
#define BUDGET_TOKENS_KEY "llm.tokens"
#define MAX_HEADERS 48

typedef enum mode { MODE_SCHEMA = 0, MODE_OBJECT = 1, MODE_PROMPT = 2 } mode;
typedef enum breaker { BREAKER_CLOSED = 0, BREAKER_OPEN, BREAKER_HALF_OPEN } breaker;

typedef struct llm_call llm_call;

struct llm_call {
    tr_llm *llm;
    llm_call *next;           /* queue link */
    llm_call *all_prev;       /* every live call, for tr_llm_free */
    llm_call *all_next;
    uv_timer_t timer;
    tr_llm_message *messages; /* owned copies */
    size_t message_count;
    char *schema_name;
    char *schema_json;
    tr_llm_done_cb on_done;
    void *userdata;
    mode mode;
    int attempts;
    int malformed_500s;
    int probe;                /* the half-open probe */
    int has_slot;
    tr_http_call *http_call;
    tr_buf body;              /* the last body sent */
    char model[256];
    char finish_reason[32];
    int64_t tokens_in;
    int64_t tokens_out;
    int64_t started_ms;
    long status;
    int finished;
    char message[1024];
};

struct tr_llm {
    uv_loop_t *loop;
    tr_http_client *http;
    tr_llm_options opt;
    const tr_config_llm *cfg;
    char *url;
    mode mode;
    llm_call *all;
    llm_call *queue_head;
    llm_call *queue_tail;
    size_t queued;
    size_t in_flight;        /* calls holding a slot */
    size_t live;             /* calls not yet freed */
    int closing;
    breaker breaker;
    int failures;            /* consecutive failed requests */
    int64_t open_until_ms;
    int probe_in_flight;
    /* Budgets when there is no store. */
    int64_t mem_calls_window, mem_calls;
    int64_t mem_tokens_window, mem_tokens;
    uint64_t jitter_state;
    tr_metric_family *m_requests;
    tr_metric_family *m_tokens;
    tr_metric_family *m_latency;
    tr_metric_family *m_breaker;
};

static int64_t wall_clock_ms(void *userdata)
{
    struct timespec ts;

    (void)userdata;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(const tr_llm *llm)
{
    return llm->opt.now_ms(llm->opt.clock_userdata);
}

const char *tr_llm_breaker_state(const tr_llm *llm)
{
    static const char *const names[] = {"closed", "open", "half_open"};

    return names[llm->breaker];
}

const char *tr_llm_url(const tr_llm *llm)
{
    return llm->url;
}

const char *tr_llm_provider_name(const tr_llm *llm)
{
    return llm->cfg->provider == TR_CONFIG_LLM_AZURE ? "azure" : "openai";
}

/* ------------------------------------------------------------ setup */

static int build_url(tr_llm *llm, tr_error *err)
{
    const tr_config_llm *cfg = llm->cfg;
    tr_buf url = TR_BUF_INIT(8192);
    size_t base_len = strlen(cfg->base_url);
    int rc;

    while (base_len > 0 && cfg->base_url[base_len - 1] == '/')
        base_len--;
    rc = tr_buf_put(&url, cfg->base_url, base_len);
    if (rc == TR_OK && cfg->provider == TR_CONFIG_LLM_AZURE) {
        if (cfg->deployment == NULL || cfg->deployment[0] == '\0') {
            tr_buf_dispose(&url);
            return tr_error_set(err, TR_ECONFIG,
                                "llm: provider \"azure\" needs llm.deployment");
        }
        rc = tr_buf_printf(&url, "/openai/deployments/%s/chat/completions?api-version=%s",
                           cfg->deployment, cfg->api_version ? cfg->api_version : "2024-06-01");
    } else if (rc == TR_OK) {
        rc = tr_buf_puts(&url, "/chat/completions");
    }
    if (rc != TR_OK) {
        tr_buf_dispose(&url);
        return tr_error_set(err, rc, "llm: base_url too long");
    }
    llm->url = tr_buf_detach(&url);
    return llm->url ? TR_OK : tr_error_set(err, TR_ENOMEM, "llm: out of memory");
}

static int key_configured(const tr_config_llm *cfg)
{
    return (cfg->api_key_env && cfg->api_key_env[0]) ||
           (cfg->api_key_file && cfg->api_key_file[0]);
}

/* *key_out NULL when no key is configured (local servers). */
static int resolve_key(const tr_config_llm *cfg, char **key_out, tr_error *err)
{
    tr_error inner;
    int rc;

    *key_out = NULL;
    if (!key_configured(cfg)) {
        if (cfg->provider == TR_CONFIG_LLM_AZURE)
            return tr_error_set(err, TR_EAUTH,
                                "llm: azure needs an API key: set llm.api_key_env or "
                                "llm.api_key_file");
        return TR_OK;
    }
    tr_error_clear(&inner);
    rc = tr_config_secret_resolve(cfg->api_key_env, cfg->api_key_file, key_out, &inner);
    if (rc != TR_OK)
        return tr_error_set(err, TR_EAUTH,
                            "llm: API key: %s (set it, or set llm.api_key_env = \"\" for a "
                            "server that needs no key)",
                            inner.message);
    return TR_OK;
}

int tr_llm_new(tr_llm **out, uv_loop_t *loop, tr_http_client *http,
               const tr_llm_options *options, tr_error *err)
{
    static const double buckets[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120};
    tr_llm *llm;
    char *key = NULL;
    int rc;

    *out = NULL;
    if (options == NULL || options->config == NULL || http == NULL)
        return tr_error_set(err, TR_EINVAL, "llm: no configuration or HTTP client");
    llm = tr_calloc(1, sizeof(*llm));
    if (llm == NULL)
        return tr_error_set(err, TR_ENOMEM, "llm: out of memory");
    llm->loop = loop;
    llm->http = http;
    llm->opt = *options;
    llm->cfg = options->config;
    if (llm->opt.now_ms == NULL)
        llm->opt.now_ms = wall_clock_ms;
    if (llm->opt.max_retries == 0)
        llm->opt.max_retries = 2;
    else if (llm->opt.max_retries < 0)
        llm->opt.max_retries = 0;
    if (llm->opt.backoff_base_ms == 0)
        llm->opt.backoff_base_ms = 500;
    if (llm->opt.backoff_max_ms == 0)
        llm->opt.backoff_max_ms = 8000;
    if (llm->opt.retry_after_max_ms == 0)
        llm->opt.retry_after_max_ms = 60000;
    if (llm->opt.breaker_threshold <= 0)
        llm->opt.breaker_threshold = 5;
    if (llm->opt.breaker_cooldown_ms == 0)
        llm->opt.breaker_cooldown_ms = 60000;
    if (llm->opt.max_queue == 0)
        llm->opt.max_queue = 64;
    if (llm->opt.max_response_bytes == 0)
        llm->opt.max_response_bytes = (size_t)4 * 1024 * 1024;
    if (llm->opt.max_tokens_field == NULL)
        llm->opt.max_tokens_field = "max_tokens";
    llm->mode = llm->cfg->structured_output == TR_CONFIG_OUTPUT_JSON_OBJECT ? MODE_OBJECT
                : llm->cfg->structured_output == TR_CONFIG_OUTPUT_PROMPT  ? MODE_PROMPT
                                                                          : MODE_SCHEMA;
    rc = build_url(llm, err);
    if (rc == TR_OK) {
        rc = resolve_key(llm->cfg, &key, err);
        if (rc != TR_OK)
            rc = TR_ECONFIG;
        tr_secret_free(key);
    }
    for (size_t i = 0; rc == TR_OK && i < llm->cfg->headers_env.count; i++) {
        const char *var = llm->cfg->headers_env.items[i].value;

        if (var == NULL || getenv(var) == NULL)
            rc = tr_error_set(err, TR_ECONFIG,
                              "llm: header %s: environment variable %s is not set "
                              "(llm.headers_env)",
                              llm->cfg->headers_env.items[i].name, var ? var : "");
    }
    if (rc != TR_OK) {
        tr_free(llm->url);
        tr_free(llm);
        return rc;
    }
    if (llm->opt.metrics) {
        llm->m_requests = tr_metrics_counter(llm->opt.metrics, "triaged_llm_requests",
                                             "LLM HTTP requests by outcome.", "outcome", NULL);
        llm->m_tokens = tr_metrics_counter(llm->opt.metrics, "triaged_llm_tokens",
                                           "LLM tokens used, by direction (in = prompt).",
                                           "direction", NULL);
        llm->m_latency = tr_metrics_histogram(llm->opt.metrics,
                                              "triaged_llm_request_duration_seconds",
                                              "LLM HTTP request latency.", buckets,
                                              sizeof(buckets) / sizeof(buckets[0]), NULL);
        llm->m_breaker = tr_metrics_gauge(llm->opt.metrics, "triaged_llm_breaker_open",
                                          "1 while the LLM circuit breaker is open.", NULL);
        (void)tr_metric_set(llm->m_breaker, 0);
    }
    *out = llm;
    return TR_OK;
}

/* ------------------------------------------------------------ budgets */

static int budget_add(tr_llm *llm, const char *key, int64_t window, int64_t amount,
                      int64_t limit, tr_error *err)
{
    int64_t *mem_window = strcmp(key, BUDGET_CALLS_KEY) == 0 ? &llm->mem_calls_window
                                                              : &llm->mem_tokens_window;
    int64_t *mem_value = strcmp(key, BUDGET_CALLS_KEY) == 0 ? &llm->mem_calls : &llm->mem_tokens;

    if (llm->opt.store)
        return tr_store_budget_add(llm->opt.store, key, window, amount, limit, now_ms(llm),
                                   NULL, err);
    if (*mem_window != window) {
        *mem_window = window;
        *mem_value = 0;
    }
    if (limit >= 0 && *mem_value + amount > limit)
        return tr_error_set(err, TR_ELIMIT, "budget %s exhausted", key);
    *mem_value += amount;
    return TR_OK;
}

static int budget_get(tr_llm *llm, const char *key, int64_t window, int64_t *value,
                      tr_error *err)
{
    if (llm->opt.store)
        return tr_store_budget_get(llm->opt.store, key, window, value, err);
    *value = llm->mem_tokens_window == window ? llm->mem_tokens : 0;
    return TR_OK;
}

static int check_budgets(tr_llm *llm, int charge_call, tr_error *err)
{
    int64_t now = now_ms(llm), used = 0;
    int rc = budget_get(llm, BUDGET_TOKENS_KEY, now - now % DAY_MS, &used, err);

    if (rc != TR_OK)
        return rc;
    if (used >= llm->cfg->max_tokens_per_day)
        return tr_error_set(err, TR_ELIMIT,
                            "llm: daily token budget spent (%lld of llm.max_tokens_per_day = "
                            "%lld)",
                            (long long)used, (long long)llm->cfg->max_tokens_per_day);
    if (!charge_call) {
        int64_t calls = 0;

        if (llm->opt.store)
            rc = tr_store_budget_get(llm->opt.store, BUDGET_CALLS_KEY, now - now % HOUR_MS,
                                     &calls, err);
        else
            calls = llm->mem_calls_window == now - now % HOUR_MS ? llm->mem_calls : 0;
        if (rc == TR_OK && calls >= llm->cfg->max_calls_per_hour)
            rc = TR_ELIMIT;
    } else {
        rc = budget_add(llm, BUDGET_CALLS_KEY, now - now % HOUR_MS, 1,
                        llm->cfg->max_calls_per_hour, err);
    }
    if (rc == TR_ELIMIT)
        return tr_error_set(err, TR_ELIMIT,
                            "llm: hourly call budget spent (llm.max_calls_per_hour = %lld)",
                            (long long)llm->cfg->max_calls_per_hour);
    return rc;
}

/* ------------------------------------------------------------ breaker */

static void breaker_set(tr_llm *llm, breaker state)
{
    if (llm->breaker != state)
        tr_log_warn("llm", "circuit breaker %s -> %s", tr_llm_breaker_state(llm),
                    state == BREAKER_OPEN ? "open" : state == BREAKER_HALF_OPEN ? "half_open"
                                                                               : "closed");
    llm->breaker = state;
    (void)tr_metric_set(llm->m_breaker, state == BREAKER_OPEN ? 1 : 0);
}

/* May a new request start? Moves open → half-open when the cooldown is over. */
static int breaker_admit(tr_llm *llm, int *probe, tr_error *err)
{
    *probe = 0;
    if (llm->breaker == BREAKER_OPEN) {
        if (now_ms(llm) < llm->open_until_ms)
            return tr_error_set(err, TR_EUNAVAILABLE,
                                "llm: circuit breaker open after %d failed requests in a row; "
                                "next probe in %lld ms",
                                llm->failures, (long long)(llm->open_until_ms - now_ms(llm)));
        breaker_set(llm, BREAKER_HALF_OPEN);
    }
    if (llm->breaker == BREAKER_HALF_OPEN) {
        if (llm->probe_in_flight)
            return tr_error_set(err, TR_EUNAVAILABLE,
                                "llm: circuit breaker half-open, a probe is in flight");
        *probe = 1;
        llm->probe_in_flight = 1;
    }
    return TR_OK;
}

static void breaker_record(tr_llm *llm, llm_call *call, int result)
{
    if (call->probe)
        llm->probe_in_flight = 0;
    if (result == TR_ECANCELLED || result == TR_ELIMIT) {
        if (call->probe)
            breaker_set(llm, BREAKER_OPEN); /* nothing was learnt; stay cautious */
        return;
    }
    if (result == TR_OK) {
        llm->failures = 0;
        breaker_set(llm, BREAKER_CLOSED);
        return;
    }
    llm->failures++;
    if (call->probe || llm->failures >= llm->opt.breaker_threshold) {
        llm->open_until_ms = now_ms(llm) + llm->opt.breaker_cooldown_ms;
        breaker_set(llm, BREAKER_OPEN);
    }
}

int tr_llm_admit(tr_llm *llm, tr_error *err)
{
    if (llm->breaker == BREAKER_OPEN && now_ms(llm) < llm->open_until_ms)
        return tr_error_set(err, TR_EUNAVAILABLE,
                            "llm: circuit breaker open after %d failed requests in a row; "
                            "next probe in %lld ms",
                            llm->failures, (long long)(llm->open_until_ms - now_ms(llm)));
    if (llm->breaker != BREAKER_CLOSED && llm->probe_in_flight)
        return tr_error_set(err, TR_EUNAVAILABLE,
                            "llm: circuit breaker half-open, a probe is in flight");
    return check_budgets(llm, 0, err);
}

/* ------------------------------------------------------------ requests */

static void pump(tr_llm *llm);

static void free_llm(tr_llm *llm)
{
    tr_free(llm->url);
    tr_free(llm);
}

static void free_call_data(llm_call *call)
{
    for (size_t i = 0; i < call->message_count; i++) {
        tr_free((char *)call->messages[i].role);
        tr_free((char *)call->messages[i].content);
    }
    tr_free(call->messages);
    tr_free(call->schema_name);
    tr_free(call->schema_json);
    tr_buf_dispose(&call->body);
}

static void on_call_closed(uv_handle_t *handle)
{
    llm_call *call = handle->data;
    tr_llm *llm = call->llm;

    if (call->all_prev)
        call->all_prev->all_next = call->all_next;
    else
        llm->all = call->all_next;
    if (call->all_next)
        call->all_next->all_prev = call->all_prev;
    free_call_data(call);
    tr_free(call);
    llm->live--;
    if (llm->closing && llm->live == 0)
        free_llm(llm);
}

static void count_request(tr_llm *llm, const char *outcome)
{
    (void)tr_metric_inc(llm->m_requests, 1, outcome);
}

/* End the call: one on_done, breaker bookkeeping, slot released, then closed. */
static void finish(llm_call *call, int result, const char *content)
{
    tr_llm *llm = call->llm;
    tr_llm_result r;

    if (call->finished)
        return;
    call->finished = 1;
    uv_timer_stop(&call->timer);
    if (call->has_slot) {
        call->has_slot = 0;
        llm->in_flight--;
    }
    breaker_record(llm, call, result);
    memset(&r, 0, sizeof(r));
    r.result = result;
    r.message = result == TR_OK ? "" : call->message;
    r.status = call->status;
    r.attempts = call->attempts;
    r.content = content ? content : "";
    r.model = call->model[0] ? call->model : (llm->cfg->model ? llm->cfg->model : "");
    r.finish_reason = call->finish_reason;
    r.tokens_in = call->tokens_in;
    r.tokens_out = call->tokens_out;
    r.request_body = tr_buf_cstr(&call->body);
    call->on_done(&r, call->userdata);
    uv_close((uv_handle_t *)&call->timer, on_call_closed);
    pump(llm);
}

static void fail(llm_call *call, int result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(llm_call *call, int result, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(call->message, sizeof(call->message), fmt, ap);
    va_end(ap);
    finish(call, result, NULL);
}

static int build_body(llm_call *call)
{
    tr_llm *llm = call->llm;
    cJSON *root = cJSON_CreateObject(), *messages, *format, *schema, *wrap;
    char *text = NULL;
    int rc = TR_ENOMEM;

    if (root == NULL)
        return TR_ENOMEM;
    if (llm->cfg->model && llm->cfg->model[0] &&
        cJSON_AddStringToObject(root, "model", llm->cfg->model) == NULL)
        goto cleanup;
    messages = cJSON_AddArrayToObject(root, "messages");
    if (messages == NULL)
        goto cleanup;
    for (size_t i = 0; i < call->message_count; i++) {
        cJSON *m = cJSON_CreateObject();

        if (m == NULL)
            goto cleanup;
        cJSON_AddItemToArray(messages, m);
        if (cJSON_AddStringToObject(m, "role", call->messages[i].role) == NULL ||
            cJSON_AddStringToObject(m, "content", call->messages[i].content) == NULL)
            goto cleanup;
    }
    if (cJSON_AddNumberToObject(root, "temperature", llm->cfg->temperature) == NULL ||
        cJSON_AddNumberToObject(root, llm->opt.max_tokens_field,
                                (double)llm->cfg->max_output_tokens) == NULL)
        goto cleanup;
    if (call->mode != MODE_PROMPT) {
        format = cJSON_AddObjectToObject(root, "response_format");
        if (format == NULL)
            goto cleanup;
        if (call->mode == MODE_SCHEMA && call->schema_json) {
            if (cJSON_AddStringToObject(format, "type", "json_schema") == NULL ||
                (wrap = cJSON_AddObjectToObject(format, "json_schema")) == NULL ||
                cJSON_AddStringToObject(wrap, "name", call->schema_name ? call->schema_name
                                                                        : "reply") == NULL ||
                cJSON_AddTrueToObject(wrap, "strict") == NULL)
                goto cleanup;
            schema = cJSON_Parse(call->schema_json);
            if (schema == NULL) {
                rc = TR_EINVAL;
                goto cleanup;
            }
            cJSON_AddItemToObject(wrap, "schema", schema);
        } else if (cJSON_AddStringToObject(format, "type", "json_object") == NULL) {
            goto cleanup;
        }
    }
    if (cJSON_AddFalseToObject(root, "stream") == NULL)
        goto cleanup;
    text = cJSON_PrintUnformatted(root);
    if (text == NULL)
        goto cleanup;
    tr_buf_clear(&call->body);
    rc = tr_buf_puts(&call->body, text);
cleanup:
    if (text)
        cJSON_free(text);
    cJSON_Delete(root);
    return rc;
}

static void free_headers(char **headers, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (headers[i]) {
            /* One of them carries the key: wipe before freeing. */
            memset(headers[i], 0, strlen(headers[i]));
            tr_free(headers[i]);
        }
    }
}

static char *header_dup(const char *name, const char *value)
{
    tr_buf b = TR_BUF_INIT(65536 + 256);

    if (tr_buf_printf(&b, "%s: %s", name, value) != TR_OK) {
        tr_buf_dispose(&b);
        return NULL;
    }
    return tr_buf_detach(&b);
}

static int build_headers(llm_call *call, char **headers, size_t *count)
{
    const tr_config_llm *cfg = call->llm->cfg;
    char *key = NULL;
    tr_error err;
    size_t n = 0;
    int rc;

    tr_error_clear(&err);
    headers[n++] = tr_strdup("Content-Type: application/json");
    headers[n++] = tr_strdup("Accept: application/json");
    rc = resolve_key(cfg, &key, &err);
    if (rc != TR_OK) {
        snprintf(call->message, sizeof(call->message), "%s", err.message);
        *count = n;
        return TR_EAUTH;
    }
    if (key != NULL) {
        tr_buf auth = TR_BUF_INIT(65536 + 256);

        if (tr_buf_printf(&auth, cfg->provider == TR_CONFIG_LLM_AZURE ? "api-key: %s"
                                                                     : "Authorization: Bearer %s",
                          key) == TR_OK)
            headers[n] = tr_buf_detach(&auth);
        n++;
        if (auth.ptr)
            memset(auth.ptr, 0, auth.len);
        tr_buf_dispose(&auth);
    }
    tr_secret_free(key);
    for (size_t i = 0; i < cfg->headers.count && n < MAX_HEADERS - 1; i++)
        headers[n++] = header_dup(cfg->headers.items[i].name, cfg->headers.items[i].value);
    for (size_t i = 0; i < cfg->headers_env.count && n < MAX_HEADERS - 1; i++) {
        const char *value = getenv(cfg->headers_env.items[i].value);

        if (value != NULL)
            headers[n++] = header_dup(cfg->headers_env.items[i].name, value);
    }
    *count = n;
    for (size_t i = 0; i < n; i++)
        if (headers[i] == NULL)
            return TR_ENOMEM;
    return TR_OK;
}

static void on_http_done(const tr_http_response *resp, void *userdata);

static void send_attempt(llm_call *call)
{
    tr_llm *llm = call->llm;
    char *headers[MAX_HEADERS] = {0};
    size_t header_count = 0;
    tr_http_request req;
    tr_error err;
    int rc;

    if (llm->closing) {
        fail(call, TR_ECANCELLED, "llm: shutting down");
        return;
    }
    tr_error_clear(&err);
    rc = check_budgets(llm, 1, &err);
    if (rc != TR_OK) {
        fail(call, rc == TR_ELIMIT ? TR_ELIMIT : rc, "%s", err.message);
        return;
    }
    rc = build_body(call);
    if (rc != TR_OK) {
        fail(call, rc, "llm: cannot build the request body (%s)", tr_strerror(rc));
        return;
    }
    rc = build_headers(call, headers, &header_count);
    if (rc != TR_OK) {
        free_headers(headers, header_count);
        if (rc == TR_EAUTH)
            finish(call, TR_EAUTH, NULL);
        else
            fail(call, rc, "llm: cannot build the request headers");
        return;
    }
    memset(&req, 0, sizeof(req));
    req.method = TR_HTTP_POST;
    req.url = llm->url;
    req.headers = (const char *const *)headers;
    req.body = call->body.ptr;
    req.body_len = call->body.len;
    req.timeout_ms = (long)llm->cfg->timeout_ms;
    req.max_response_bytes = llm->opt.max_response_bytes;
    req.on_done = on_http_done;
    req.userdata = call;
    call->attempts++;
    call->started_ms = now_ms(llm);
    rc = tr_http_client_send(llm->http, &req, &call->http_call, &err);
    free_headers(headers, header_count);
    if (rc != TR_OK) {
        count_request(llm, "network");
        fail(call, TR_EHTTP, "llm: POST %s: %s", llm->url, err.message);
    }
}

static void on_retry_timer(uv_timer_t *timer)
{
    send_attempt(timer->data);
}

static unsigned backoff_ms(tr_llm *llm, int attempt)
{
    uint64_t delay = llm->opt.backoff_base_ms;
    uint64_t x;

    for (int i = 1; i < attempt && delay < llm->opt.backoff_max_ms; i++)
        delay *= 2;
    if (delay > llm->opt.backoff_max_ms)
        delay = llm->opt.backoff_max_ms;
    /* Up to 25 % jitter (xorshift: no global rand() state). */
    x = llm->jitter_state ? llm->jitter_state : (uint64_t)(uintptr_t)llm ^ 0x9e3779b97f4a7c15u;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    llm->jitter_state = x;
    return (unsigned)(delay - (delay * (x % 26)) / 100);
}

static int mentions_response_format(const tr_llm_error_info *e)
{
    return strcasestr(e->message, "response_format") || strcasestr(e->message, "json_schema") ||
           strcasestr(e->message, "grammar") || strcasestr(e->message, "json_object");
}

/* Charge and count the usage of a 2xx answer. */
static void account_usage(llm_call *call, const tr_llm_completion *c)
{
    tr_llm *llm = call->llm;
    int64_t now = now_ms(llm), total = c->prompt_tokens + c->completion_tokens;
    tr_error err;

    call->tokens_in += c->prompt_tokens;
    call->tokens_out += c->completion_tokens;
    (void)tr_metric_inc(llm->m_tokens, (double)c->prompt_tokens, "in");
    (void)tr_metric_inc(llm->m_tokens, (double)c->completion_tokens, "out");
    if (total > 0 && budget_add(llm, BUDGET_TOKENS_KEY, now - now % DAY_MS, total, -1, &err) !=
                         TR_OK)
        tr_log_warn("llm", "could not record token usage: %s", err.message);
}

static void on_success(llm_call *call, const tr_http_response *resp)
{
    tr_llm_completion c;
    tr_error err;
    int rc;

    tr_error_clear(&err);
    rc = tr_llm_completion_parse(&c, resp->body, resp->body_len, &err);
    account_usage(call, &c);
    if (rc != TR_OK) {
        count_request(call->llm, "invalid");
        fail(call, rc, "llm: %s", err.message);
        return;
    }
    count_request(call->llm, "ok");
    snprintf(call->model, sizeof(call->model), "%s", c.model ? c.model : "");
    snprintf(call->finish_reason, sizeof(call->finish_reason), "%s",
             c.finish_reason ? c.finish_reason : "");
    finish(call, TR_OK, c.content);
    tr_llm_completion_dispose(&c);
}

static void on_http_done(const tr_http_response *resp, void *userdata)
{
    llm_call *call = userdata;
    tr_llm *llm = call->llm;
    tr_llm_error_info info;
    const char *header;
    int64_t retry_after = -1;
    int retryable = 0, result = TR_EHTTP;

    call->http_call = NULL;
    call->status = resp->status;
    (void)tr_metric_observe(llm->m_latency, (double)(now_ms(llm) - call->started_ms) / 1000.0);
    if (resp->result == TR_ECANCELLED) {
        count_request(llm, "cancelled");
        fail(call, TR_ECANCELLED, "llm: cancelled");
        return;
    }
    if (resp->result != TR_OK) {
        count_request(llm, resp->result == TR_ETIMEOUT ? "timeout" : "network");
        retryable = resp->result == TR_ETIMEOUT || resp->result == TR_EHTTP;
        result = resp->result == TR_ETIMEOUT ? TR_ETIMEOUT : TR_EHTTP;
        snprintf(call->message, sizeof(call->message), "llm: POST %s: %s", llm->url,
                 resp->message);
    } else if (resp->status >= 200 && resp->status < 300) {
        on_success(call, resp);
        return;
    } else {
        char outcome[16];

        snprintf(outcome, sizeof(outcome), "http_%ld", resp->status);
        count_request(llm, outcome);
        if (tr_llm_error_parse(&info, resp->body, resp->body_len) != TR_OK) {
            memset(&info, 0, sizeof(info));
            snprintf(info.message, sizeof(info.message), "%.200s", resp->body);
        }
        snprintf(call->message, sizeof(call->message), "llm: HTTP %ld from %s: %s%s%s",
                 resp->status, llm->url, info.type, info.type[0] ? ": " : "", info.message);
        if (resp->status == 400 && call->mode != MODE_PROMPT && mentions_response_format(&info)) {
            /* The server lacks this structured-output mode: step down and resend. */
            call->mode = call->mode == MODE_SCHEMA ? MODE_OBJECT : MODE_PROMPT;
            if (call->mode > llm->mode)
                llm->mode = call->mode;
            tr_log_warn("llm", "server rejected response_format; using %s from now on",
                        call->mode == MODE_OBJECT ? "json_object" : "prompt instructions");
            send_attempt(call);
            return;
        }
        retryable = resp->status == 408 || resp->status == 409 || resp->status == 429 ||
                    resp->status >= 500;
        if (resp->status == 401 || resp->status == 403) {
            result = TR_EAUTH;
            strncat(call->message, " (check llm.api_key_env / llm.api_key_file)",
                    sizeof(call->message) - strlen(call->message) - 1);
        }
        if (resp->status == 429) {
            result = TR_ELIMIT;
            if (strstr(info.type, "insufficient_quota") || strstr(info.code, "insufficient_quota"))
                retryable = 0;
        }
        /* llama.cpp: 500 + "[json.exception..." = our body is malformed; retrying won't help. */
        if (resp->status == 500 && strncmp(info.message, "[json.exception", 15) == 0 &&
            call->malformed_500s++ >= 1)
            retryable = 0;
        header = tr_http_call_header(resp->call, "x-should-retry");
        if (header && strcasecmp(header, "false") == 0)
            retryable = 0;
        else if (header && strcasecmp(header, "true") == 0)
            retryable = 1;
        header = tr_http_call_header(resp->call, "retry-after-ms");
        if (header && atoll(header) > 0)
            retry_after = atoll(header);
        else if ((header = tr_http_call_header(resp->call, "retry-after")) != NULL &&
                 tr_http_retry_after_ms(header, wall_clock_ms(NULL), &retry_after) != TR_OK)
            retry_after = -1;
        if (retry_after > (int64_t)llm->opt.retry_after_max_ms) {
            retryable = 0;
            snprintf(call->message + strlen(call->message),
                     sizeof(call->message) - strlen(call->message),
                     " (server asks to wait %lld s)", (long long)(retry_after / 1000));
        }
    }
    if (!retryable || call->attempts > llm->opt.max_retries || llm->closing) {
        finish(call, result, NULL);
        return;
    }
    {
        unsigned delay = retry_after >= 0 ? (unsigned)retry_after
                                          : backoff_ms(llm, call->attempts);

        tr_log_info("llm", "attempt %d failed (%s); retrying in %u ms", call->attempts,
                    call->message, delay);
        uv_timer_start(&call->timer, on_retry_timer, delay, 0);
    }
}

static void pump(tr_llm *llm)
{
    while (!llm->closing && llm->queue_head &&
           llm->in_flight < (size_t)(llm->cfg->max_concurrency > 0 ? llm->cfg->max_concurrency
                                                                   : 1)) {
        llm_call *call = llm->queue_head;

        llm->queue_head = call->next;
        if (llm->queue_head == NULL)
            llm->queue_tail = NULL;
        llm->queued--;
        call->next = NULL;
        call->has_slot = 1;
        llm->in_flight++;
        /* From the loop, never inside tr_llm_chat: on_done must not run re-entrantly. */
        uv_timer_start(&call->timer, on_retry_timer, 0, 0);
    }
}

static int copy_request(llm_call *call, const tr_llm_request *request)
{
    call->messages = tr_calloc(request->message_count, sizeof(*call->messages));
    if (call->messages == NULL)
        return TR_ENOMEM;
    call->message_count = request->message_count;
    for (size_t i = 0; i < request->message_count; i++) {
        call->messages[i].role = tr_strdup(request->messages[i].role);
        call->messages[i].content = tr_strdup(request->messages[i].content
                                                  ? request->messages[i].content
                                                  : "");
        if (!call->messages[i].role || !call->messages[i].content)
            return TR_ENOMEM;
    }
    if (request->schema_json && (call->schema_json = tr_strdup(request->schema_json)) == NULL)
        return TR_ENOMEM;
    if (request->schema_name && (call->schema_name = tr_strdup(request->schema_name)) == NULL)
        return TR_ENOMEM;
    return TR_OK;
}

int tr_llm_chat(tr_llm *llm, const tr_llm_request *request, tr_error *err)
{
    llm_call *call;
    int probe = 0, rc;

    if (request == NULL || request->on_done == NULL || request->message_count == 0)
        return tr_error_set(err, TR_EINVAL, "llm: a request needs messages and on_done");
    if (llm->closing)
        return tr_error_set(err, TR_ECANCELLED, "llm: shutting down");
    if (llm->queued >= llm->opt.max_queue)
        return tr_error_set(err, TR_EBUSY, "llm: %zu requests already queued", llm->queued);
    rc = check_budgets(llm, 0, err);
    if (rc != TR_OK)
        return rc;
    rc = breaker_admit(llm, &probe, err);
    if (rc != TR_OK)
        return rc;
    call = tr_calloc(1, sizeof(*call));
    if (call == NULL) {
        if (probe)
            llm->probe_in_flight = 0;
        return tr_error_set(err, TR_ENOMEM, "llm: out of memory");
    }
    call->llm = llm;
    call->probe = probe;
    call->on_done = request->on_done;
    call->userdata = request->userdata;
    call->mode = llm->mode;
    tr_buf_init(&call->body, 0);
    rc = copy_request(call, request);
    if (rc == TR_OK && uv_timer_init(llm->loop, &call->timer) != 0)
        rc = TR_ERROR;
    if (rc != TR_OK) {
        if (probe)
            llm->probe_in_flight = 0;
        free_call_data(call);
        tr_free(call);
        return tr_error_set(err, rc, "llm: cannot queue the request (%s)", tr_strerror(rc));
    }
    call->timer.data = call;
    call->all_next = llm->all;
    if (llm->all)
        llm->all->all_prev = call;
    llm->all = call;
    llm->live++;
    if (llm->queue_tail)
        llm->queue_tail->next = call;
    else
        llm->queue_head = call;
    llm->queue_tail = call;
    llm->queued++;
    pump(llm);
    return TR_OK;
}

void tr_llm_free(tr_llm *llm)
{
    llm_call *call, *next;

    if (llm == NULL || llm->closing)
        return;
    llm->closing = 1;
    /* Queued calls never started; drop them first so nothing new is sent. */
    for (call = llm->queue_head; call; call = next) {
        next = call->next;
        call->next = NULL;
        fail(call, TR_ECANCELLED, "llm: shutting down");
    }
    llm->queue_head = llm->queue_tail = NULL;
    llm->queued = 0;
    for (call = llm->all; call; call = call->all_next) {
        if (call->finished)
            continue;
        if (call->http_call)
            tr_http_call_cancel(call->http_call); /* on_done comes from the loop */
        else
            fail(call, TR_ECANCELLED, "llm: shutting down");
    }
    if (llm->live == 0)
        free_llm(llm);
}
