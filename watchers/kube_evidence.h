/*
 * kube_evidence.h - what the apiserver can tell about one Kubernetes
 * incident, gathered read-only and asynchronously for the analysis stage
 * and `triaged explain`.
 *
 * For an incident (its namespace, owner kind and name, class and facts) a
 * gathering GETs the object (spec trimmed to what explains failures:
 * containers with image, resources, probes, env names; status conditions),
 * up to max_pods of its pods (those named in facts.pods, else listed with
 * the owner's selector), the previous and current logs of their failing
 * containers (tail and byte cap asked of the apiserver and enforced here,
 * repeated lines folded), the events of the object and of those pods, and
 * the conditions of the first pod's node. It never reads a Secret.
 *
 * Everything is redacted (daemon/redact.h) as it is kept. Each request has a
 * timeout and the whole gathering a deadline: what could not be read is
 * listed in "not_collected" and the rest is delivered. The result is one
 * JSON object whose sections are those of TR_EVIDENCE_SECTIONS
 * (llm/evidence.h), which fits them to the token budget.
 *
 * A tr_kube_evidence owns its gatherings; the client and HTTP client are
 * borrowed. Loop thread only.
 */
#ifndef TR_KUBE_EVIDENCE_H
#define TR_KUBE_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "error.h"
#include "evidence.h"
#include "http_client.h"
#include "kube_client.h"
#include "store.h"

/* Zero fields take the defaults in brackets. */
typedef struct tr_kube_evidence_options {
    size_t max_pods;             /* pods looked at [3] */
    size_t max_containers;       /* failing containers per pod whose logs are read [2] */
    size_t max_events;           /* events kept, newest [20] */
    int64_t log_tail_lines;      /* lines per log [100]: [triage] log_tail_lines */
    int64_t log_max_bytes;       /* bytes per log [16384]: [triage] log_max_bytes */
    uint64_t request_timeout_ms; /* each GET [10000] */
    uint64_t deadline_ms;        /* the whole gathering [30000] */
} tr_kube_evidence_options;

typedef struct tr_kube_evidence tr_kube_evidence;
typedef struct tr_kube_gathering tr_kube_gathering;

/*
 * rc TR_OK with the evidence JSON (borrowed for the call; partial evidence
 * is TR_OK), or TR_ENOMEM / TR_ECANCELLED (tr_kube_evidence_free) with NULL.
 */
typedef void (*tr_kube_evidence_cb)(int rc, const char *evidence_json, void *userdata);

/*
 * Create a gatherer on client (borrowed, must outlive it) and http. *out is
 * owned by the caller: tr_kube_evidence_free.
 */
int tr_kube_evidence_new(tr_kube_evidence **out, uv_loop_t *loop, tr_kube_client *client,
                         tr_http_client *http, const tr_kube_evidence_options *options,
                         tr_error *err);

/*
 * Cancel every gathering still running: each callback runs once, now, with
 * TR_ECANCELLED and NULL (so no owner keeps a handle). Memory goes once
 * their requests and timers have closed: run the loop afterwards. Close
 * the analysis stage before (it gathers through this), and this before the
 * client. Accepts NULL.
 */
void tr_kube_evidence_free(tr_kube_evidence *ev);

/*
 * Start gathering for incident (read during this call only: namespace,
 * kind, name, failure_class, facts_json). cb runs exactly once, later, from
 * the loop, unless the gathering is cancelled. *out (may be NULL) is valid
 * until cb runs. Fails with TR_EUNAVAILABLE when no cluster is configured,
 * TR_EINVAL without a kind and name, TR_ENOMEM; cb then never runs.
 */
int tr_kube_evidence_gather(tr_kube_evidence *ev, const tr_store_incident *incident,
                            tr_kube_evidence_cb cb, void *userdata, tr_kube_gathering **out,
                            tr_error *err);

/* Stop a gathering before its callback: the callback will not run. */
void tr_kube_gathering_cancel(tr_kube_gathering *g);

/* Gatherings running now. */
size_t tr_kube_evidence_active(const tr_kube_evidence *ev);

/*
 * The analysis stage's evidence provider backed by ev (what the daemon puts
 * in tr_analysis_options.evidence). Only kubernetes incidents are gathered.
 */
void tr_kube_evidence_provider(tr_kube_evidence *ev, tr_evidence_provider *out);

/*
 * Condense a container log for the bundle (daemon/logwin.h): consecutive
 * identical lines become the line once and `[last line repeated N times]`,
 * then windows around error lines (exception, panic, Caused by:, ...) and
 * the last tail_lines lines are kept within max_bytes (markers included,
 * + TR_LOGWIN_SLACK_BYTES when one line alone is over it), gaps shown as
 * `… (N lines omitted)`. \r\n endings are normalised. <= 0 means no limit.
 * Appends to out; 0, TR_ENOMEM or TR_ETOOBIG.
 */
int tr_kube_log_condense(tr_buf *out, const char *log, size_t len, int64_t tail_lines,
                         int64_t max_bytes);

/*
 * The API path of a namespaced or cluster-scoped object of kind (Pod,
 * Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Node,
 * PersistentVolumeClaim; alt = 1: the older API version where one exists,
 * batch/v1beta1 for CronJob) into out. TR_ENOTFOUND for other kinds.
 */
int tr_kube_object_path(tr_buf *out, const char *kind, const char *ns, const char *name,
                        int alt);

#endif
