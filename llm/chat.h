/*
 * chat.h - follow-up questions about an incident (`triaged chat ID`,
 * POST /v1/incidents/{id}/chat, Slack's "Explain more").
 *
 * Each turn sends the LLM the system template, the last few turns of the
 * conversation (stored per incident, each capped), and prompts/chat.md
 * filled with the incident, its latest analysis, its latest evidence bundle
 * (capped) and the question. The question is redacted (daemon/redact.h)
 * before it is stored or sent, and every text of the prompt is redacted
 * again as a whole, as the analysis stage does.
 *
 * The model answers with the analysis object of llm/reply.h (chat.md asks
 * for it): the answer is its summary and root cause, and a non-empty
 * "patch" is a revised patch, stored as a new analysis row of the incident
 * (its latest analysis from then on, where the fixer finds the patch to
 * propose). A reply that is not that object is kept as a plain-text answer
 * without a patch. The turn, the revised analysis and, for "Explain more",
 * the outbox message `incident.explained` (the answer, posted in the
 * incident's thread) are one store transaction.
 *
 * The module owns its prompt templates and, unless one is lent to it, its
 * LLM adapter; store, HTTP client, config, metrics and dispatcher are
 * borrowed and must outlive it. Loop thread only.
 */
#ifndef TR_LLM_CHAT_H
#define TR_LLM_CHAT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "dispatch.h"
#include "error.h"
#include "http_client.h"
#include "http_server.h"
#include "metrics.h"
#include "openai.h"
#include "prompt.h"
#include "store.h"

typedef struct tr_chat tr_chat;

/* Most past turns a prompt can carry, whatever history_turns says. */
#define TR_CHAT_HISTORY_MAX 20

/* The question "Explain more" asks. */
#define TR_CHAT_EXPLAIN_QUESTION                                                                  \
    "Explain the root cause in more depth: the chain of events that led to this failure, "     \
    "what in the evidence shows it, and how to confirm the diagnosis before changing anything."

/* Caps on what a prompt carries; zero fields take the defaults in brackets. */
typedef struct tr_chat_limits {
    size_t history_turns;      /* [6] past turns sent with a question */
    size_t max_question_bytes; /* [4000] a longer question is refused */
    size_t max_turn_bytes;     /* [4000] each past question and answer, cut beyond */
    size_t max_evidence_bytes; /* [65536] the evidence bundle, cut beyond */
    size_t max_answer_bytes;   /* [16384] a plain-text answer, cut beyond */
} tr_chat_limits;

/* Zero fields take the defaults in brackets. */
typedef struct tr_chat_options {
    int64_t (*now_ms)(void *userdata); /* [wall clock] */
    void *clock_userdata;
    tr_chat_limits limits;
    size_t max_in_flight;              /* [8] turns waiting for the LLM at once */
    tr_llm *llm;                       /* borrowed adapter; NULL = own one from cfg->llm */
    tr_llm_options llm_options;        /* tuning of the own adapter (config/store are set) */
    tr_dispatch *dispatch;             /* woken after an announced turn; may be NULL */
} tr_chat_options;

/* What a turn ended with; borrowed, valid during the callback. */
typedef struct tr_chat_answer {
    /*
     * TR_OK, or: TR_ECANCELLED (shutdown), TR_ELIMIT / TR_EUNAVAILABLE (budget
     * or breaker), other TR_E* from the LLM adapter (the request failed), or a
     * store error code (the answer came but could not be stored).
     */
    int result;
    const char *message;  /* why, when result != TR_OK; "" otherwise */
    int64_t incident_id;
    int64_t turn;         /* its number in the incident's conversation */
    const char *answer;   /* "" unless TR_OK */
    const char *patch;    /* a revised patch, or NULL */
    int64_t analysis_id;  /* the analysis row holding patch, 0 when none */
} tr_chat_answer;

typedef void (*tr_chat_done_cb)(const tr_chat_answer *answer, void *userdata);

/*
 * Create the module. Fails with TR_ECONFIG when a prompt template is missing
 * or the LLM settings are unusable. With llm.provider = "none" it is created
 * without an adapter and every question is refused with TR_EUNAVAILABLE.
 * *out is owned by the caller: tr_chat_close.
 */
int tr_chat_new(tr_chat **out, uv_loop_t *loop, tr_store *store, tr_http_client *http,
                const tr_config *cfg, tr_metrics *metrics, const tr_chat_options *options,
                tr_error *err);

/*
 * Stop: turns waiting for the LLM end with TR_ECANCELLED (nothing stored);
 * memory is released once they have: run the loop afterwards. Accepts NULL.
 */
void tr_chat_close(tr_chat *chat);

/*
 * Ask question about incident_id on behalf of actor ("api", "slack:U1").
 * event, when not NULL, is enqueued with the answer in the turn's
 * transaction (e.g. "incident.explained"). On TR_OK on_done runs exactly
 * once, later, from the loop. Else on_done never runs and err says why:
 * TR_EINVAL (empty question), TR_ETOOBIG (question too long), TR_ENOTFOUND
 * (no such incident), TR_EUNAVAILABLE (no LLM configured, or its breaker is
 * open), TR_ELIMIT (budget spent), TR_EBUSY (too many turns in flight),
 * TR_ECANCELLED (closing), or a store error.
 */
int tr_chat_ask(tr_chat *chat, int64_t incident_id, const char *question, const char *actor,
                const char *event, tr_chat_done_cb on_done, void *userdata, tr_error *err);

/*
 * The "Explain more" hook (tr_actions.on_explain, userdata = the tr_chat):
 * a turn with TR_CHAT_EXPLAIN_QUESTION whose answer is announced as
 * `incident.explained`. Failures are logged.
 */
void tr_chat_explain(int64_t incident_id, const char *actor, void *userdata);

/*
 * Register POST /v1/incidents/{id}/chat ({"message": "..."} →
 * {"incident_id", "turn", "answer", "patch": string|null}), answered when
 * the LLM has. api_token as for the other /v1 routes (NULL = none).
 */
int tr_chat_register(tr_http_server *srv, tr_chat *chat, const char *api_token, tr_error *err);

/* ------------------------------------------------------------ prompt */

/* The messages of one turn; texts owned by the struct. */
typedef struct tr_chat_prompt {
    tr_llm_message messages[2 + 2 * TR_CHAT_HISTORY_MAX];
    char *texts[2 + 2 * TR_CHAT_HISTORY_MAX];
    size_t count;
} tr_chat_prompt;

/*
 * Assemble the messages for question (already redacted) about inc, with its
 * latest analysis and evidence bundle (either may be NULL) and the past
 * turns of history (oldest first; only the last limits->history_turns go),
 * everything redacted and capped by limits (NULL = defaults). out is
 * disposed with tr_chat_prompt_dispose, also after a failure (TR_ENOMEM,
 * TR_ETOOBIG).
 */
int tr_chat_prompt_build(tr_chat_prompt *out, const tr_prompts *prompts,
                         const tr_store_incident *inc, const tr_store_analysis *analysis,
                         const char *evidence_json, const tr_store_chat_list *history,
                         const char *question, const tr_chat_limits *limits);
void tr_chat_prompt_dispose(tr_chat_prompt *prompt);

#endif
