/*
 * fixer_internal.h - what fixer.c (lifecycle, scans, policy, PR polling),
 * fixer_job.c (one incident from accepted to pr_open) and fixer_text.c (the
 * commit message and the PR's title and body) share. Not a public surface.
 */
#ifndef TR_FIXER_INTERNAL_H
#define TR_FIXER_INTERNAL_H

#include "fixer.h"

#include "buf.h"
#include "openapi.h"

typedef struct fixer_schema fixer_schema; /* a refcounted tr_openapi_set */

struct tr_fixer {
    uv_loop_t *loop;
    tr_fixer_options opts;             /* borrowed pointers, as given */
    char *author;                      /* owned copies of the strings of opts */
    char *public_url;
    tr_patch_options patch_opts;
    uv_timer_t scan_timer;
    uv_timer_t poll_timer;
    int timers_open;                   /* timers not yet closed */
    int closing;
    void (*closed_cb)(void *userdata);
    void *closed_userdata;
    int64_t jobs[TR_FIXER_MAX_JOBS];   /* incidents with a job under way; 0 = free slot */
    size_t job_count;
    int polling;                       /* a poll round is under way */
    tr_metric_family *patches;         /* {outcome=proposed|valid|invalid} */
    tr_metric_family *accepted;
    tr_metric_family *prs_opened;
    tr_metric_family *prs_merged;
    tr_metric_family *prs_closed;
    fixer_schema *schema;              /* the newest cluster schema; NULL until fetched */
    int64_t schema_at_ms;              /* last fetch ended (0 = never) */
    char schema_why[256];              /* why the last fetch gave no schema; "" = it did */
    tr_http_call *schema_call;         /* GET /openapi/v2 under way */
    void *schema_waiters[TR_FIXER_MAX_JOBS]; /* jobs waiting for it (fixer_job *) */
    size_t schema_waiter_count;
};

int64_t fixer_now(const tr_fixer *f);

/* Start the job of an accepted incident; 0, or TR_EBUSY when no slot is free (or closing). */
int fixer_job_start(tr_fixer *f, int64_t incident_id);
/* The job of incident_id ended (successfully or not): free its slot, free f when closing. */
void fixer_job_end(tr_fixer *f, int64_t incident_id);
int fixer_job_running(const tr_fixer *f, int64_t incident_id);

/*
 * Move an incident to failed (from expect_from) with reason as its error and
 * incident.failed announced; logged, never fails the caller.
 */
void fixer_fail(tr_fixer *f, int64_t incident_id, int expect_from, const char *reason);

/* The branch a fix of incident id goes to: "triaged/<id>". */
void fixer_branch_name(char *out, size_t cap, int64_t incident_id);

/*
 * The cluster schema (fixer_schema.c). fixer_schema_wait: 1 when a GET /openapi/v2 is under
 * way and job will be resumed by fixer_job_schema_ready (fixer_job.c), 0 to go on at once.
 * fixer_schema_acquire takes a reference on the newest set (NULL when none), released with
 * fixer_schema_release; fixer_schema_why says why there is none. Loop thread only.
 */
int fixer_schema_wait(tr_fixer *f, void *job);
void fixer_job_schema_ready(void *job);
fixer_schema *fixer_schema_acquire(tr_fixer *f);
const tr_openapi_set *fixer_schema_set(const fixer_schema *s);
void fixer_schema_release(fixer_schema *s);
const char *fixer_schema_why(const tr_fixer *f);
void fixer_schema_close(tr_fixer *f);   /* cancel the GET (closing) */
void fixer_schema_dispose(tr_fixer *f); /* drop the fixer's own reference (freeing) */

/* Texts (fixer_text.c). Each returns a string the caller frees with tr_free, NULL on ENOMEM. */
char *fixer_commit_message(const tr_store_incident *inc, const tr_store_analysis *an,
                           const char *public_url);
char *fixer_pr_title(const tr_store_incident *inc, const tr_store_analysis *an);
char *fixer_pr_body(const tr_store_incident *inc, const tr_store_analysis *an,
                    const tr_patch_result *res, int repaired, const char *schema_skipped,
                    const char *public_url);

#endif
