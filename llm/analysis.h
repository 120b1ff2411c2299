/*
 * analysis.h - the analysis stage: an incident in state `open` gets an
 * evidence bundle (stored; open → triaged), then an analysis from the LLM or
 * from the rules (stored with the exact request body sent, the prompt hash,
 * usage and the fallback reason; triaged → analyzed, plus the outbox event
 * `incident.analyzed`, in one transaction).
 *
 * Work arrives through tr_analysis_notify() (watchers call it when an
 * incident is created or reopened) and through a periodic scan of `open`
 * and `triaged` incidents, so a restart finishes what a crash interrupted and
 * never redoes an analysed incident. The model never decides identity: the
 * incident, its fingerprint and its id are the watcher's; an analysis only
 * adds a row and one state change, so re-analysis cannot create an incident
 * or a second message.
 *
 * Everything in a bundle or a prompt is redacted (daemon/redact.h) before it
 * is stored or sent. The stage owns its adapter (llm/openai.h), its prompt
 * templates and its scan timer; store, HTTP client, config and metrics are
 * borrowed and must outlive it. Loop thread only.
 */
#ifndef TR_LLM_ANALYSIS_H
#define TR_LLM_ANALYSIS_H

#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "error.h"
#include "evidence.h"
#include "http_client.h"
#include "metrics.h"
#include "openai.h"
#include "reply.h"
#include "store.h"

typedef struct tr_analysis tr_analysis;

/* Zero fields take the defaults in brackets. */
typedef struct tr_analysis_options {
    int64_t (*now_ms)(void *userdata); /* [wall clock] */
    void *clock_userdata;
    uint64_t scan_interval_ms;         /* [30000]; the first scan runs at start */
    size_t max_in_flight;              /* [16] incidents analysed at once */
    tr_llm_options llm;                /* adapter tuning; config/store/metrics/clock are set */
    /*
     * [none] Extra evidence for kubernetes incidents, gathered before the
     * bundle is built (the daemon: tr_kube_evidence_provider). A gathering
     * that fails to start, or ends in an error, leaves the bundle as it
     * would be without a provider.
     */
    tr_evidence_provider evidence;
} tr_analysis_options;

/*
 * Create the stage and schedule its first scan. Fails with TR_ECONFIG when
 * a prompt template is missing (the message names the file) or the LLM
 * settings are unusable (e.g. the API key variable is not set). *out is
 * owned by the caller: tr_analysis_close.
 */
int tr_analysis_new(tr_analysis **out, uv_loop_t *loop, tr_store *store, tr_http_client *http,
                    const tr_config *cfg, tr_metrics *metrics, tr_error *err);
/* Same with options (tests: clock, scan interval, retry and breaker tuning). */
int tr_analysis_new_ex(tr_analysis **out, uv_loop_t *loop, tr_store *store,
                       tr_http_client *http, const tr_config *cfg, tr_metrics *metrics,
                       const tr_analysis_options *options, tr_error *err);

/*
 * An incident was created or reopened: analyse it soon if it is `open`.
 * Never fails: when the stage is busy, the periodic scan picks it up.
 */
void tr_analysis_notify(tr_analysis *a, int64_t incident_id);

/* Run a scan now (also what the timer does). */
void tr_analysis_scan(tr_analysis *a);

/* Incidents being analysed right now. */
size_t tr_analysis_in_flight(const tr_analysis *a);

/*
 * Stop: cancel LLM requests (their incidents stay `triaged` and are picked
 * up after a restart) and close the timer; the memory is released from the
 * loop: run it until it returns. Accepts NULL.
 */
void tr_analysis_close(tr_analysis *a);

/*
 * The exact request body that was sent to the LLM for analysis analysis_id
 * (what `triaged show ID --prompt` prints). *out is owned by the caller
 * (tr_free). TR_ENOTFOUND when the analysis used no LLM request.
 */
int tr_analysis_request_body(tr_store *store, int64_t analysis_id, char **out, tr_error *err);

/* ------------------------------------------------------------ one-shot */

/* One analysis, as `triaged explain` / `triaged terraform` print it. */
typedef struct tr_analysis_outcome {
    tr_llm_reply *reply;
    char *provider;        /* "openai" | "azure" | "rules" */
    char *model;           /* NULL for rules */
    char *prompt_hash;     /* NULL for rules without an LLM request */
    char *fallback_reason; /* NULL when the LLM answered */
    char *request_body;    /* exact bytes sent, NULL when none */
    char *evidence_json;   /* the redacted bundle */
    int64_t tokens_in;
    int64_t tokens_out;
} tr_analysis_outcome;

void tr_analysis_outcome_free(tr_analysis_outcome *outcome);

/*
 * Analyse one prepared incident (the fields of tr_store_incident the
 * watchers fill: source, cluster, namespace, kind, name, failure_class,
 * title, message, facts_json, counts and times) without a daemon: its own
 * loop and HTTP client, budgets counted in memory, blocking until done
 * (bounded by llm.timeout and retries). *out is owned by the caller
 * (tr_analysis_outcome_free). Fails only on configuration errors (missing
 * prompts, unusable LLM settings) or TR_ENOMEM; an LLM failure yields the
 * rule-based analysis with fallback_reason set.
 */
int tr_analysis_run_once(const tr_config *cfg, const tr_store_incident *incident,
                         tr_analysis_outcome **out, tr_error *err);
/* Same with evidence gathered beforehand (`triaged explain`); NULL = none. */
int tr_analysis_run_once_ex(const tr_config *cfg, const tr_store_incident *incident,
                            const char *gathered_json, tr_analysis_outcome **out, tr_error *err);

/* Append a human-readable rendering of outcome (for the CLI) to out. */
int tr_analysis_outcome_print(const tr_analysis_outcome *outcome, tr_buf *out);

#endif
