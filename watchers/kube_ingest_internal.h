/*
 * kube_ingest_internal.h - what kube_ingest.c and kube_ingest_track.c share
 * and nobody else sees: the tr_kube_ingest struct, the incident tracker (the
 * in-memory shadow of one incident, see kube_ingest.c) and the owner map the
 * trackers hang off.
 *
 * kube_ingest_track.c owns trackers and owners (create, seed from the store,
 * merge pods, free); kube_ingest.c decides when to write, resolve and flush.
 */
#ifndef TR_KUBE_INGEST_INTERNAL_H
#define TR_KUBE_INGEST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "kube_ingest.h"

#define PODS_LISTED 20   /* facts.pods names, per docs/incident-facts.md */
#define FACT_KEYS_MAX 32 /* facts keys remembered per incident (a finding has ~10) */

typedef struct tracker {
    int failure_class;
    int64_t incident_id; /* 0 until the first write */
    int resolved;
    int64_t resolved_at_ms;
    int64_t healthy_since_ms; /* 0 = not known healthy */
    int64_t last_write_ms;
    char *fingerprint;
    char *pods[PODS_LISTED];
    size_t pod_names;
    uint64_t *pod_hashes; /* open addressing, 0 = empty */
    size_t hash_slots;
    size_t hash_used;
    int64_t pod_count;      /* max(seeded_count, distinct pods seen) */
    int64_t distinct;       /* distinct pods seen by this process */
    int64_t seeded_count;   /* pod_count the store had when the tracker was seeded */
    uint16_t fact_keys[FACT_KEYS_MAX]; /* hashes of the facts keys last written */
    size_t fact_key_count;
    int dirty; /* coalesced findings not yet written */
} tracker;

typedef struct owner_state {
    struct owner_state *next;
    uint32_t hash;
    char *key; /* "ns/Kind/name" */
    char *ns;
    char *kind;
    char *name;
    tracker *by_class[TR_KCLASS_COUNT];
} owner_state;

struct tr_kube_ingest {
    tr_store *store;
    tr_kube_ingest_options opt;
    char *cluster;
    tr_kube_cache *cache;
    owner_state **buckets;
    size_t bucket_count;
    size_t owner_count;
    int full_logged;
    tr_kube_ingest_stats stats;
    tr_metric_family *m_findings, *m_observations, *m_resolutions;
};

/* Remember the keys of the facts just written (pods and pod_count are the tracker's own). */
void ingest_tracker_set_fact_keys(tracker *t, const cJSON *facts);

/* 1 when facts hold a key the incident's facts lack: the finding says more, write it. */
int ingest_tracker_facts_news(const tracker *t, const cJSON *facts);

/* Add a pod; 1 when it is new to the incident, 0 when known, <0 without memory. */
int ingest_tracker_add_pod(tracker *t, const char *pod);

/* Free a tracker; NULL is fine. */
void ingest_tracker_free(tracker *t);

/* The owner's tracker for failure_class, created (and seeded from the store)
 * when missing; owned by o. NULL with *rc set (and err) on failure. */
tracker *ingest_tracker_get(tr_kube_ingest *ingest, owner_state *o, int failure_class,
                            tr_error *err, int *rc);

/* The owner's state, or NULL when not tracked; borrowed from ingest. */
owner_state *ingest_owner_find(const tr_kube_ingest *ingest, const char *ns, const char *kind,
                               const char *name);

/* The owner's state, created when missing; owned by ingest. NULL when full
 * (logged once) or out of memory. */
owner_state *ingest_owner_get(tr_kube_ingest *ingest, const char *ns, const char *kind,
                              const char *name);

/* Free an owner and its trackers (not unlinked from the map); NULL is fine. */
void ingest_owner_free(owner_state *o);

/* facts = the finding's facts + the tracker's pods and pod_count (t may be
 * NULL); caller frees with tr_free. NULL when out of memory. */
char *ingest_facts_json(const tr_kube_finding *f, const tracker *t);

#endif
