/*
 * openai_call.c - one chat completion request's life (see openai.c for the
 * rules): queued until a slot is free, sent, classified, retried after a
 * backoff or resent with a weaker response mode, and finished with exactly
 * one on_done. Also the adapter's release, which cancels what is live.
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

#define MAX_HEADERS 48

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
    llm_breaker_record(llm, call, result);
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
    rc = llm_resolve_key(cfg, &key, &err);
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
    rc = llm_check_budgets(llm, 1, &err);
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
    call->started_ms = llm_now_ms(llm);
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
    int64_t now = llm_now_ms(llm), total = c->prompt_tokens + c->completion_tokens;
    tr_error err;

    call->tokens_in += c->prompt_tokens;
    call->tokens_out += c->completion_tokens;
    (void)tr_metric_inc(llm->m_tokens, (double)c->prompt_tokens, "in");
    (void)tr_metric_inc(llm->m_tokens, (double)c->completion_tokens, "out");
    if (total > 0 && llm_budget_add(llm, BUDGET_TOKENS_KEY, now - now % DAY_MS, total, -1, &err) !=
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
    (void)tr_metric_observe(llm->m_latency, (double)(llm_now_ms(llm) - call->started_ms) / 1000.0);
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
                 tr_http_retry_after_ms(header, llm_wall_clock_ms(NULL), &retry_after) != TR_OK)
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
    rc = llm_check_budgets(llm, 0, err);
    if (rc != TR_OK)
        return rc;
    rc = llm_breaker_admit(llm, &probe, err);
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