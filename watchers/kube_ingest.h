/*
 * kube_ingest.h - the end of the Kubernetes watch pipeline: objects from the
 * list+watch reflector go into the slim cache, through classification, and
 * into the store as observations (opening, updating or reopening incidents)
 * and resolutions.
 *
 * What it guarantees (see kube_ingest.c for how):
 * - One incident per (cluster, namespace, owner workload, failure class): 30
 *   crash-looping replicas of a Deployment are one incident whose
 *   facts.pods (at most 20 names) and facts.pod_count grow.
 * - Every store write is an fsynced transaction, so repeats are coalesced:
 *   the store is written at once when an incident opens or reopens; more
 *   pods, counts and facts of a live incident are written at most every
 *   min_update_interval_ms (by tr_kube_ingest_tick when nothing else comes).
 * - An incident resolves (state resolved, outbox event incident.resolved)
 *   once its owner has shown healthy for recovery_hold_ms without a new
 *   failure in between (hysteresis: a pod that is Ready for a minute between
 *   two crashes does not resolve anything).
 * - A restarted daemon (new ingest, same database) relisting the same objects
 *   neither duplicates nor re-announces incidents: open incidents are loaded
 *   from the store at start, and a signal dated before an incident's
 *   resolution does not reopen it.
 *
 * The ingest borrows the store and the metrics registry; it owns its cache
 * and its incident trackers (bounded by max_incidents). Loop thread only.
 */
#ifndef TR_KUBE_INGEST_H
#define TR_KUBE_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "kube_cache.h"
#include "kube_classify.h"
#include "metrics.h"
#include "store.h"

/* on_incident outcomes: TR_OBS_CREATED, TR_OBS_REOPENED (store.h) and this one.
 */
#define TR_KUBE_INCIDENT_RESOLVED 16

/*
 * Called after the store committed: a new incident (TR_OBS_CREATED), a
 * reopened one (TR_OBS_REOPENED) or a resolved one (TR_KUBE_INCIDENT_RESOLVED).
 * Updates of a live incident (more pods, a higher restart count) do not call
 * it. It must not call back into the ingest.
 */
typedef void (*tr_kube_incident_cb)(int64_t incident_id, int outcome, void *userdata);

typedef struct tr_kube_ingest_options {
    const char *cluster;            /* in fingerprints and incidents; "default" */
    int64_t dedup_window_ms;        /* tr_store_observe's window; 30 min */
    int64_t recovery_hold_ms;       /* healthy this long before resolving; 10 min */
    int64_t min_update_interval_ms; /* repeats of a known signal coalesced; 30 s */
    size_t max_incidents;           /* owners tracked in memory; 10000 */
    tr_kube_classify_options classify;
    tr_kube_cache_options cache;
    tr_metrics *metrics;             /* optional, borrowed */
    tr_kube_incident_cb on_incident; /* optional */
    /* Optional: 1 when findings of this owner belong to another input (a Terraform Job's
     * failure is read from its log as a Terraform run: tf_kube.h) and are not incidents
     * here. */
    int (*skip_owner)(const char *ns, const char *kind, const char *name, void *userdata);
    void *userdata;
} tr_kube_ingest_options;

typedef struct tr_kube_ingest tr_kube_ingest;

typedef struct tr_kube_ingest_stats {
    uint64_t objects;      /* objects ingested */
    uint64_t findings;     /* findings classified */
    uint64_t observations; /* observations written to the store */
    uint64_t coalesced;    /* findings folded into an incident without a write */
    uint64_t stale;        /* findings older than their incident's resolution */
    uint64_t created, reopened, resolved;
    uint64_t untracked; /* findings written without a tracker (max_incidents hit) */
    size_t owners;      /* owners tracked now */
    tr_kube_cache_stats cache;
} tr_kube_ingest_stats;

/* Defaults as documented above (classify and cache defaults included). */
void tr_kube_ingest_options_default(tr_kube_ingest_options *options);

/*
 * Create an ingest writing into store (borrowed, must outlive it). options
 * may be NULL (defaults); strings in it are copied. Loads the live, unresolved
 * kubernetes incidents of this cluster from the store so that they can
 * resolve. Caller frees *out with tr_kube_ingest_free.
 */
int tr_kube_ingest_new(tr_kube_ingest **out, tr_store *store, const tr_kube_ingest_options *options,
                       int64_t now_ms, tr_error *err);
void tr_kube_ingest_free(tr_kube_ingest *ingest);

/*
 * One object from the reflector. resource is the plural API name ("pods",
 * "events", "deployments", ... see tr_kube_resource_parse); type is the watch
 * type ("ADDED" | "MODIFIED" | "DELETED"; "BOOKMARK" and unknown resources
 * are ignored). object is borrowed. Returns 0, or the store's error (the
 * object may be given again: nothing is duplicated). A malformed object is
 * skipped (TR_OK) and counted, never fatal.
 */
int tr_kube_ingest_object(tr_kube_ingest *ingest, const char *resource, const char *type,
                          const cJSON *object, int64_t now_ms, tr_error *err);

/* A (re)list of resource begins / ended: objects not relisted are forgotten. */
void tr_kube_ingest_sync_begin(tr_kube_ingest *ingest, const char *resource);
int tr_kube_ingest_sync_end(tr_kube_ingest *ingest, const char *resource, int64_t now_ms,
                            tr_error *err);

/*
 * Time passes: resolve incidents whose recovery has held long enough, treat
 * owners without pods (deleted, scaled to zero) as recovered, forget trackers
 * of resolved incidents. Call every few seconds from a loop timer.
 */
int tr_kube_ingest_tick(tr_kube_ingest *ingest, int64_t now_ms, tr_error *err);

void tr_kube_ingest_stats_get(const tr_kube_ingest *ingest, tr_kube_ingest_stats *out);
/* The cache, for readers (triage looks up owners). Borrowed. */
const tr_kube_cache *tr_kube_ingest_cache(const tr_kube_ingest *ingest);

#endif
