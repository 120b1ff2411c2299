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
#include "openai_internal.h"

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
#define BUDGET_CALLS_KEY "llm.calls"

int64_t llm_wall_clock_ms(void *userdata)
{
    struct timespec ts;

    (void)userdata;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t llm_now_ms(const tr_llm *llm)
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
int llm_resolve_key(const tr_config_llm *cfg, char **key_out, tr_error *err)
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
        llm->opt.now_ms = llm_wall_clock_ms;
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
        rc = llm_resolve_key(llm->cfg, &key, err);
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

int llm_budget_add(tr_llm *llm, const char *key, int64_t window, int64_t amount,
                   int64_t limit, tr_error *err)
{
    int64_t *mem_window = strcmp(key, BUDGET_CALLS_KEY) == 0 ? &llm->mem_calls_window
                                                              : &llm->mem_tokens_window;
    int64_t *mem_value = strcmp(key, BUDGET_CALLS_KEY) == 0 ? &llm->mem_calls : &llm->mem_tokens;

    if (llm->opt.store)
        return tr_store_budget_add(llm->opt.store, key, window, amount, limit, llm_now_ms(llm),
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

int llm_check_budgets(tr_llm *llm, int charge_call, tr_error *err)
{
    int64_t now = llm_now_ms(llm), used = 0;
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
        rc = llm_budget_add(llm, BUDGET_CALLS_KEY, now - now % HOUR_MS, 1,
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
int llm_breaker_admit(tr_llm *llm, int *probe, tr_error *err)
{
    *probe = 0;
    if (llm->breaker == BREAKER_OPEN) {
        if (llm_now_ms(llm) < llm->open_until_ms)
            return tr_error_set(err, TR_EUNAVAILABLE,
                                "llm: circuit breaker open after %d failed requests in a row; "
                                "next probe in %lld ms",
                                llm->failures, (long long)(llm->open_until_ms - llm_now_ms(llm)));
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

void llm_breaker_record(tr_llm *llm, llm_call *call, int result)
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
        llm->open_until_ms = llm_now_ms(llm) + llm->opt.breaker_cooldown_ms;
        breaker_set(llm, BREAKER_OPEN);
    }
}

int tr_llm_admit(tr_llm *llm, tr_error *err)
{
    if (llm->breaker == BREAKER_OPEN && llm_now_ms(llm) < llm->open_until_ms)
        return tr_error_set(err, TR_EUNAVAILABLE,
                            "llm: circuit breaker open after %d failed requests in a row; "
                            "next probe in %lld ms",
                            llm->failures, (long long)(llm->open_until_ms - llm_now_ms(llm)));
    if (llm->breaker != BREAKER_CLOSED && llm->probe_in_flight)
        return tr_error_set(err, TR_EUNAVAILABLE,
                            "llm: circuit breaker half-open, a probe is in flight");
    return llm_check_budgets(llm, 0, err);
}
