/*
 * analysis_internal.h - what analysis.c and analysis_decide.c share and
 * nobody else sees: the stage and job structs and the calls between them.
 *
 * analysis.c owns the stage (scan, in-flight set, lifecycle, one-shot) and a
 * job's start (read, bundle, triage); analysis_decide.c decides (rules or the
 * LLM) and stores the outcome.
 */
#ifndef TR_ANALYSIS_INTERNAL_H
#define TR_ANALYSIS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "analysis.h"
#include "error.h"
#include "prompt.h"
#include "redact.h"

#define MAX_IN_FLIGHT_CAP 256

typedef struct job job;

struct tr_analysis {
    uv_loop_t *loop;
    tr_store *store;                /* NULL in one-shot mode */
    const tr_config *cfg;
    tr_analysis_options opt;
    tr_prompts *prompts;
    tr_llm *llm;                    /* NULL when provider = none */
    uv_timer_t scan_timer;
    int timer_open;
    int closing;
    size_t jobs;                    /* live jobs */
    int64_t in_flight[MAX_IN_FLIGHT_CAP];
    size_t in_flight_count;
    tr_analysis_outcome *last;      /* one-shot: the outcome */
    const char *once_evidence;      /* one-shot: gathered beforehand, borrowed */
    job *gathering;                 /* jobs waiting for the evidence provider */
    tr_metric_family *m_analyses;
    tr_metric_family *m_fallbacks;
};

struct job {
    tr_analysis *a;
    tr_store_incident *owned;       /* daemon mode: loaded from the store */
    const tr_store_incident *inc;
    char *bundle;
    char *system;
    char *user;
    char *first_reply;              /* kept for the re-ask */
    tr_redact_ctx *redact;          /* prompt and re-ask number secrets alike */
    char reask_error[TR_ERROR_MSG_MAX];
    tr_prompt_kind kind;
    int asked;                      /* LLM requests made (1 or 2) */
    tr_analysis_outcome *outcome;
    void *gather_handle;            /* set while the provider gathers */
    job *gather_prev, *gather_next;
};

/* The stage's clock (opt.now_ms), in ms. */
int64_t analysis_now_ms(const tr_analysis *a);

/* Replace *field with a copy of value (NULL clears it); TR_ENOMEM without memory. */
int analysis_set_str(char **field, const char *value);

/* Free j, take its incident out of the in-flight set, and free the stage if it is closing. */
void analysis_job_free(job *j);

/* Step 3: rules or the LLM; ends (possibly later, from the loop) in the job's outcome. */
void analysis_job_decide(job *j);

#endif
