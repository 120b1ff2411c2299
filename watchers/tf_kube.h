/*
 * tf_kube.h - Kubernetes Jobs that run Terraform: when such a Job ends, its pod's log is read
 * through the apiserver and ingested as a Terraform run log (tf_ingest.h), so a failed
 * `terraform apply -json` in a Job becomes the same Terraform incident (class, address,
 * diagnostic, file and line) as one posted over HTTP, and a later successful Job resolves it.
 *
 * A Job is a Terraform Job when it carries the configured label (`[terraform] job_label`,
 * as a label or an annotation) with any value but "false". Its annotations may name the run:
 *   triaged.io/workspace   the workspace (default: NAMESPACE/<CronJob name, else Job name>)
 *   triaged.io/repo-path   repository path of the root module
 *   triaged.io/commit      commit the run used
 *   triaged.io/container   the container that runs terraform (default: the first)
 *
 * The Kubernetes watcher hands every Job to tr_tf_kube_job and asks tr_tf_kube_owns before
 * it turns a finding into an incident: a Terraform Job's own BackoffLimitExceeded (and its
 * pods' failures) would otherwise be a second, less precise incident of the same failure.
 *
 * Each finished Job is processed once: its uid and outcome are remembered in the store, so a
 * restart (which relists every Job) does not ingest it again. A Job whose log cannot be read
 * or shows no Terraform error still becomes an incident (TerraformRunErrored with the Job's
 * own reason), so a failure is never dropped.
 *
 * Loop thread only. Borrowed: client, http, store, ingest (all outlive the tr_tf_kube).
 */
#ifndef TR_TF_KUBE_H
#define TR_TF_KUBE_H

#include <stddef.h>

#include "error.h"
#include "http_client.h"
#include "kube_client.h"
#include "store.h"
#include "tf_ingest.h"

struct cJSON;

typedef struct tr_tf_kube_options {
    const char *label;       /* label or annotation key; required */
    size_t max_log_bytes;    /* log bytes read per Job; 0 = 4 MiB */
    long timeout_ms;         /* per apiserver request; 0 = 20 s */
    size_t max_running;      /* Jobs read at once; 0 = 4 (more wait in a queue of 256) */
} tr_tf_kube_options;

typedef struct tr_tf_kube tr_tf_kube;

typedef struct tr_tf_kube_stats {
    unsigned long jobs_seen;   /* distinct Terraform Jobs seen (ever) */
    unsigned long ingested;    /* finished Jobs whose log was ingested */
    unsigned long fallbacks;   /* failed Jobs ingested without a usable log */
    unsigned long dropped;     /* finished Jobs dropped because the queue was full */
} tr_tf_kube_stats;

/* *out is owned by the caller: tr_tf_kube_free. */
int tr_tf_kube_new(tr_tf_kube **out, tr_kube_client *client, tr_http_client *http,
                   tr_store *store, const tr_tf_ingest *ingest,
                   const tr_tf_kube_options *options, tr_error *err);

/*
 * A Job from the watch (deleted: it went away). Returns 1 when it is a Terraform Job (then
 * its owner names are remembered for tr_tf_kube_owns), 0 otherwise. A finished Job not yet
 * processed starts reading its log.
 */
int tr_tf_kube_job(tr_tf_kube *tk, const struct cJSON *job, int deleted);

/* 1 when (ns, kind, name) is a Terraform Job, or the CronJob of one. */
int tr_tf_kube_owns(const tr_tf_kube *tk, const char *ns, const char *kind, const char *name);

void tr_tf_kube_stats_get(const tr_tf_kube *tk, tr_tf_kube_stats *out);

/* Cancels the reads in flight (their Jobs are processed after the next start). NULL is ok. */
void tr_tf_kube_free(tr_tf_kube *tk);

#endif
