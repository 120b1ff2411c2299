/*
 * openai.h - the LLM adapter: OpenAI-compatible chat completions (OpenAI,
 * Azure OpenAI, vLLM, llama.cpp's llama-server, Ollama's /v1, OpenRouter,
 * LiteLLM) over the project's async HTTP client, on the loop thread.
 *
 * It owns everything between "send these messages" and "here is the
 * assistant's text": the URL and auth header of the provider, extra headers,
 * response_format (json_schema strict, json_object, or none: downgraded
 * automatically when a server rejects it with a 400), retries with
 * exponential backoff and jitter honouring Retry-After, a concurrency limit
 * with a bounded queue, the hourly call and daily token budgets (persisted in
 * the store, so a restart does not reset them), a circuit breaker, and
 * metrics. It knows nothing of incidents: llm/analysis.c builds the prompts
 * and parses the content.
 *
 * The API key is read through tr_config_secret_resolve for each request (a
 * rotated key file is picked up) and never logged or kept in messages.
 *
 * Outcomes (STYLE "delivery-style calls"): delivered (TR_OK with content),
 * retried here transparently, or failed: the caller then falls back to the
 * rule-based analysis.
 */
#ifndef TR_LLM_OPENAI_H
#define TR_LLM_OPENAI_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "error.h"
#include "http_client.h"
#include "metrics.h"
#include "store.h"

typedef struct tr_llm tr_llm;

/* Zero fields take the defaults in brackets. */
typedef struct tr_llm_options {
    const tr_config_llm *config;  /* required; borrowed, must outlive the adapter */
    tr_store *store;              /* budgets; NULL = counted in memory only */
    tr_metrics *metrics;          /* optional; borrowed */
    int64_t (*now_ms)(void *userdata); /* [wall clock]; tests move time */
    void *clock_userdata;
    int max_retries;              /* [2] retries after the first attempt; -1 = none */
    unsigned backoff_base_ms;     /* [500] first retry wait, doubled each time */
    unsigned backoff_max_ms;      /* [8000] */
    unsigned retry_after_max_ms;  /* [60000] a longer Retry-After is not waited for */
    int breaker_threshold;        /* [5] consecutive failed requests open the breaker */
    unsigned breaker_cooldown_ms; /* [60000] open → half-open (one probe) after this */
    size_t max_queue;             /* [64] requests waiting for a concurrency slot */
    size_t max_response_bytes;    /* [4 MiB] */
    const char *max_tokens_field; /* ["max_tokens"]; "max_completion_tokens" for o-series */
} tr_llm_options;

typedef struct tr_llm_message {
    const char *role;    /* "system" | "user" | "assistant" */
    const char *content;
} tr_llm_message;

/* What on_done receives; everything is borrowed for the duration of the callback. */
typedef struct tr_llm_result {
    /*
     * TR_OK: content holds the assistant's text. Else TR_ETIMEOUT, TR_EHTTP
     * (network, or an HTTP error status: see status), TR_EAUTH (401/403 or
     * the key vanished), TR_ELIMIT (a budget ran out, or 429 past retries),
     * TR_EUNAVAILABLE (breaker opened meanwhile), TR_EPARSE (the 2xx body is
     * not a chat completion), TR_EINVAL (refusal or no content),
     * TR_ECANCELLED (shutdown).
     */
    int result;
    const char *message;       /* why result != TR_OK, "" otherwise; no secrets */
    long status;               /* last HTTP status, 0 when none */
    int attempts;              /* HTTP requests made */
    const char *content;       /* "" unless TR_OK */
    const char *model;         /* as the server reported it, or the configured one */
    const char *finish_reason; /* "stop", "length", ... or "" */
    int64_t tokens_in;         /* usage summed over attempts */
    int64_t tokens_out;
    const char *request_body;  /* the exact JSON body of the last attempt, "" if none */
} tr_llm_result;

typedef void (*tr_llm_done_cb)(const tr_llm_result *result, void *userdata);

typedef struct tr_llm_request {
    const tr_llm_message *messages; /* copied */
    size_t message_count;
    const char *schema_name;        /* json_schema mode: name and schema (copied) */
    const char *schema_json;        /* NULL = json_object instead of json_schema */
    tr_llm_done_cb on_done;         /* required; runs exactly once, from the loop */
    void *userdata;
} tr_llm_request;

/*
 * Create the adapter. Fails with TR_ECONFIG when the configured key cannot
 * be read (the message names the variable or file and how to send no key),
 * azure without a deployment, or a header from headers_env whose variable is
 * unset. *out is owned by the caller: tr_llm_free.
 */
int tr_llm_new(tr_llm **out, uv_loop_t *loop, tr_http_client *http,
               const tr_llm_options *options, tr_error *err);

/*
 * Cancel everything (pending on_done callbacks run with TR_ECANCELLED, some
 * later from the loop) and release the adapter once its timers have closed:
 * run the loop afterwards, as for tr_http_client_free. Accepts NULL.
 */
void tr_llm_free(tr_llm *llm);

/*
 * Would a request be admitted now? TR_OK, TR_EUNAVAILABLE (breaker open),
 * TR_ELIMIT (a budget is spent), with the reason in err. Changes nothing.
 */
int tr_llm_admit(tr_llm *llm, tr_error *err);

/*
 * Queue a chat completion. On success on_done runs exactly once, later. On
 * failure on_done never runs: TR_EUNAVAILABLE (breaker open), TR_ELIMIT
 * (budget spent), TR_EBUSY (queue full), TR_ECANCELLED (being freed),
 * TR_EINVAL, TR_ENOMEM.
 */
int tr_llm_chat(tr_llm *llm, const tr_llm_request *request, tr_error *err);

/* "closed" | "open" | "half_open" */
const char *tr_llm_breaker_state(const tr_llm *llm);

/* The full chat completions URL the adapter posts to (borrowed). */
const char *tr_llm_url(const tr_llm *llm);

/* Provider name for records: "openai" | "azure". */
const char *tr_llm_provider_name(const tr_llm *llm);

#endif
