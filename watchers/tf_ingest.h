/*
 * tf_ingest.h - a parsed Terraform run (tf_log.h) into the incident store: a failed run is
 * one observation (class, object and fingerprint per docs/incident-facts.md, through
 * tf_facts.h), a successful run resolves the workspace's open Terraform incidents.
 *
 * Shared by every Terraform input (log directories, POST /v1/terraform/runs, HCP Terraform
 * notifications, the Kubernetes Jobs that run Terraform), so that one failure reaches one
 * incident whichever way it arrived.
 *
 * What a success resolves: a plan or apply that got to its change summary (or a run that
 * printed outputs) resolves every open Terraform incident of its workspace; a successful
 * init only the workspace's TerraformInitFailed incidents, and a successful validate only
 * its TerraformValidateFailed ones, since neither says anything about later phases.
 *
 * Loop thread only (the store is single-threaded).
 */
#ifndef TR_TF_INGEST_H
#define TR_TF_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "tf_facts.h"
#include "tf_log.h"

/* tr_store_obs_outcome values, plus this one for a resolution. */
#define TR_TF_EVENT_RESOLVED 100

typedef struct tr_tf_incident_event {
    int64_t incident_id;
    int kind;                  /* TR_OBS_CREATED | TR_OBS_UPDATED | TR_OBS_REOPENED | _RESOLVED */
    const char *failure_class; /* borrowed, valid during the callback */
    const char *workspace;
} tr_tf_incident_event;

typedef void (*tr_tf_incident_cb)(const tr_tf_incident_event *event, void *userdata);

/* Filled in by the owner; all borrowed. */
typedef struct tr_tf_ingest {
    tr_store *store;
    int64_t dedup_window_ms;        /* [triage] dedup_window */
    tr_tf_incident_cb on_incident;  /* optional: the pipeline's "new work" hook */
    void *userdata;
} tr_tf_ingest;

typedef struct tr_tf_ingest_outcome {
    int failed;            /* 1 when an observation was recorded */
    int64_t incident_id;   /* its incident, else 0 */
    int obs_outcome;       /* tr_store_obs_outcome when failed */
    size_t resolved;       /* incidents resolved by a success */
} tr_tf_ingest_outcome;

/*
 * Record what res says about the workspace of meta. out may be NULL. A run without verdict
 * (warnings only, cut short) changes nothing. Returns 0 or the store's error.
 */
int tr_tf_ingest_result(const tr_tf_ingest *ingest, const tr_tf_result *res,
                        const tr_tf_meta *meta, int64_t now_ms, tr_tf_ingest_outcome *out,
                        tr_error *err);

/*
 * An errored run known only from a notification (no log): TerraformRunErrored on object
 * TerraformRun/<run id>, fingerprint tf/<workspace>/<run id>/<message>. message may be NULL.
 */
int tr_tf_ingest_run_errored(const tr_tf_ingest *ingest, const tr_tf_meta *meta,
                             const char *message, int64_t now_ms, tr_tf_ingest_outcome *out,
                             tr_error *err);

/*
 * Resolve the workspace's open Terraform incidents (only those of failure_class when it is
 * not NULL). *resolved (may be NULL) counts them.
 */
int tr_tf_ingest_resolve(const tr_tf_ingest *ingest, const char *workspace,
                         const char *failure_class, int64_t now_ms, size_t *resolved,
                         tr_error *err);

#endif
