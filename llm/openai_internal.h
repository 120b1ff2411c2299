/*
 * openai_internal.h - what openai.c and openai_call.c share and nobody else
 * sees: the adapter and request structs, and the admission side (clock,
 * budgets, circuit breaker) the request side calls into.
 *
 * openai.c owns setup, budgets and the breaker; openai_call.c owns a request's
 * life (queue, attempts, retries, completion) and the adapter's release.
 */
#ifndef TR_OPENAI_INTERNAL_H
#define TR_OPENAI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "openai.h"

#define DAY_MS ((int64_t)24 * 3600 * 1000)
#define BUDGET_TOKENS_KEY "llm.tokens"

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

/* Wall-clock ms (CLOCK_REALTIME): the default opt.now_ms, and "now" for Retry-After dates. */
int64_t llm_wall_clock_ms(void *userdata);

/* The adapter's clock (opt.now_ms), in ms. */
int64_t llm_now_ms(const tr_llm *llm);

/*
 * The API key from llm.api_key_env / llm.api_key_file into *key_out (the caller
 * frees it with tr_secret_free); NULL when no key is configured (local servers).
 */
int llm_resolve_key(const tr_config_llm *cfg, char **key_out, tr_error *err);

/*
 * Add amount to budget key for window (in the store, or in memory without
 * one); TR_ELIMIT, nothing added, when that would pass limit (-1: no limit).
 */
int llm_budget_add(tr_llm *llm, const char *key, int64_t window, int64_t amount, int64_t limit,
                   tr_error *err);

/* TR_ELIMIT when a budget is spent; charge_call also charges one call to the hour. */
int llm_check_budgets(tr_llm *llm, int charge_call, tr_error *err);

/* May a new request start? Moves open -> half-open when the cooldown is over. */
int llm_breaker_admit(tr_llm *llm, int *probe, tr_error *err);

/* Feed a request's final result to the breaker. */
void llm_breaker_record(tr_llm *llm, llm_call *call, int result);

#endif
