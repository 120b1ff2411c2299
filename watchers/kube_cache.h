/*
 * kube_cache.h - the slim, bounded memory of the cluster that failure
 * classification needs, and nothing more.
 *
 * Whole objects are never kept (peers OOMed at 6-10k pods doing that). Per
 * entry the cache holds a few bytes: ReplicaSet → its Deployment, Job → its
 * CronJob, Pod → {controller, resolved owner, node, ready, phase, a summary
 * per container of its last state, the signature of what was last reported},
 * Node → readiness, and (object, reason) → event counters. Pods are also
 * aggregated per owner workload (pods, pods not healthy) so that "are all
 * pods of this Deployment Ready?" costs one lookup.
 *
 * Every map has a cap: an insert into a full map is dropped, counted, and
 * logged once per map. A resync is bracketed by sync_begin/sync_end: entries
 * of that resource not seen in between are dropped (they were deleted while
 * the watch was down).
 *
 * The cache owns all its memory. Loop thread only.
 */
#ifndef TR_KUBE_CACHE_H
#define TR_KUBE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "error.h"

/* The resources the ingest understands (plural API names, see tr_kube_resource_parse). */
typedef enum tr_kube_resource {
    TR_KUBE_RES_UNKNOWN = 0,
    TR_KUBE_RES_EVENTS,       /* "events" (core/v1 and events.k8s.io/v1) */
    TR_KUBE_RES_PODS,         /* "pods" */
    TR_KUBE_RES_REPLICASETS,  /* "replicasets" */
    TR_KUBE_RES_DEPLOYMENTS,  /* "deployments" */
    TR_KUBE_RES_STATEFULSETS, /* "statefulsets" */
    TR_KUBE_RES_DAEMONSETS,   /* "daemonsets" */
    TR_KUBE_RES_JOBS,         /* "jobs" */
    TR_KUBE_RES_CRONJOBS,     /* "cronjobs" */
    TR_KUBE_RES_NODES,        /* "nodes" */
    TR_KUBE_RES_PVCS,         /* "persistentvolumeclaims" */
    TR_KUBE_RES_ARGO_APPS,    /* "applications" (argoproj.io) */
    TR_KUBE_RES_FLUX_KS,      /* "kustomizations" (kustomize.toolkit.fluxcd.io) */
    TR_KUBE_RES_FLUX_HR,      /* "helmreleases" (helm.toolkit.fluxcd.io) */
} tr_kube_resource;

#define TR_KUBE_RES_COUNT (TR_KUBE_RES_FLUX_HR + 1)

/* "pods" → TR_KUBE_RES_PODS; also accepts "events.k8s.io/events" style group/name. */
int tr_kube_resource_parse(const char *name);
const char *tr_kube_resource_name(int resource);

typedef struct tr_kube_cache_options {
    size_t max_pods;          /* default 100000 */
    size_t max_replicasets;   /* default 100000 */
    size_t max_jobs;          /* default 50000 */
    size_t max_nodes;         /* default 20000 */
    size_t max_event_keys;    /* default 50000 */
    int64_t event_window_ms;  /* event counters older than this restart from 0; 1 h */
} tr_kube_cache_options;

typedef struct tr_kube_cache tr_kube_cache;

/* Names in owner references are DNS subdomains: at most 253 bytes. */
#define TR_KUBE_NAME_MAX 254
#define TR_KUBE_KIND_MAX 64

/* A resolved owner workload, copied out of the cache. */
typedef struct tr_kube_owner {
    char kind[TR_KUBE_KIND_MAX];
    char name[TR_KUBE_NAME_MAX];
    int inferred; /* 1: guessed from the pod's name (the pod was not cached) */
} tr_kube_owner;

/* Container last-state summary (one per container, the first TR_KUBE_CACHE_CONTAINERS). */
#define TR_KUBE_CACHE_CONTAINERS 4

typedef enum tr_kube_last_reason {
    TR_KUBE_LAST_NONE = 0,
    TR_KUBE_LAST_ERROR,
    TR_KUBE_LAST_OOMKILLED,
    TR_KUBE_LAST_COMPLETED,
    TR_KUBE_LAST_OTHER,
} tr_kube_last_reason;

typedef struct tr_kube_container_summary {
    uint32_t name_hash;     /* tr_kube_cache_hash(container name) */
    uint16_t restart_count; /* saturates at 65535 */
    int16_t exit_code;      /* last termination's exit code (clamped) */
    uint8_t last_reason;    /* tr_kube_last_reason */
    uint8_t ready;
} tr_kube_container_summary;

typedef struct tr_kube_pod_info {
    tr_kube_owner owner;
    char node[TR_KUBE_NAME_MAX]; /* "" when not scheduled */
    int ready;
    int healthy; /* counts towards its owner's health: Ready, or done as its owner expects */
    uint32_t signature; /* set by tr_kube_cache_pod_set_signature; 0 initially */
    size_t container_count;
    tr_kube_container_summary containers[TR_KUBE_CACHE_CONTAINERS];
} tr_kube_pod_info;

typedef struct tr_kube_cache_stats {
    size_t pods, replicasets, jobs, nodes, event_keys, owners;
    size_t bytes;          /* memory held by the cache's maps and entries */
    uint64_t dropped;      /* inserts refused because a map was full */
    uint64_t resync_dropped; /* entries dropped by sync_end */
} tr_kube_cache_stats;

/* options may be NULL (defaults). Caller frees *out with tr_kube_cache_free. */
int tr_kube_cache_new(tr_kube_cache **out, const tr_kube_cache_options *options, tr_error *err);
void tr_kube_cache_free(tr_kube_cache *cache);

/*
 * Apply one watch change ("ADDED" | "MODIFIED" | "DELETED"; anything else is
 * treated as an upsert) of resource to the cache. Resources the cache keeps
 * nothing of are accepted and ignored. Returns 0, TR_ELIMIT when the entry was
 * dropped because its map is full, TR_EINVAL for an object without a name, or
 * TR_ENOMEM.
 */
int tr_kube_cache_apply(tr_kube_cache *cache, int resource, int deleted, const cJSON *object,
                        int64_t now_ms);

/* A resync of resource begins: remember which entries are seen from now. */
void tr_kube_cache_sync_begin(tr_kube_cache *cache, int resource);
/* The resync ended: drop entries of resource not seen since sync_begin. Returns how many. */
size_t tr_kube_cache_sync_end(tr_kube_cache *cache, int resource);
/* 1 once resource has completed a sync (list) at least once. */
int tr_kube_cache_synced(const tr_kube_cache *cache, int resource);

/*
 * Resolve the owner workload of pod ns/name: the cached pod's controller
 * through ReplicaSet → Deployment and Job → CronJob. A pod not in the cache
 * is resolved from its name when it has a Deployment's shape
 * (<deployment>-<template hash>-<5 chars>), marked inferred; else the pod is
 * its own owner. Never fails.
 */
void tr_kube_cache_pod_owner(const tr_kube_cache *cache, const char *ns, const char *name,
                             tr_kube_owner *out);
/* Owner of controller reference (kind, name) in ns: ReplicaSet → Deployment, Job → CronJob. */
void tr_kube_cache_resolve_owner(const tr_kube_cache *cache, const char *ns, const char *kind,
                                 const char *name, const char *template_hash, tr_kube_owner *out);
/* The hash the cache uses for strings (FNV-1a), e.g. to match container names. */
uint32_t tr_kube_cache_hash(const char *s);
/* Copy what is cached of pod ns/name into out; TR_ENOTFOUND when absent. */
int tr_kube_cache_pod_get(const tr_kube_cache *cache, const char *ns, const char *name,
                          tr_kube_pod_info *out);
/* Remember the signature of the findings last reported for a pod (0 = none). */
void tr_kube_cache_pod_set_signature(tr_kube_cache *cache, const char *ns, const char *name,
                                     uint32_t signature);
/* Pods cached for an owner and how many of them are not healthy; both 0 when none. */
void tr_kube_cache_owner_pods(const tr_kube_cache *cache, const char *ns, const char *kind,
                              const char *name, size_t *pods, size_t *unhealthy);
/* Node readiness: 1 Ready, 0 not ready, -1 unknown / not cached. */
int tr_kube_cache_node_ready(const tr_kube_cache *cache, const char *node);

/*
 * Occurrences of reason on the object an Event is about, summed over the
 * Event objects that reported it within the window (an Event is updated in
 * place with count++, and newer reporters use series.count). Call after
 * tr_kube_cache_apply of the Event. 0 when unknown.
 */
int64_t tr_kube_cache_event_count(const tr_kube_cache *cache, const cJSON *event);

void tr_kube_cache_stats_get(const tr_kube_cache *cache, tr_kube_cache_stats *out);

/*
 * Readers of apiserver objects shared with kube_classify. Paths are dotted
 * ("status.phase"); any shape mismatch gives NULL / the default, never a crash.
 */
const cJSON *tr_kube_obj_get(const cJSON *obj, const char *path);
const char *tr_kube_obj_str(const cJSON *obj, const char *path);
int64_t tr_kube_obj_int(const cJSON *obj, const char *path, int64_t dflt);
/* metadata.labels[key] (label keys contain dots, so not a path). */
const char *tr_kube_obj_label(const cJSON *obj, const char *key);
/* status.conditions[] entry whose type is type, or NULL. */
const cJSON *tr_kube_obj_condition(const cJSON *obj, const char *type);
/* The controller ownerReference (controller: true, else the first), or NULL. */
const cJSON *tr_kube_obj_controller(const cJSON *obj);
/* RFC 3339 ("2026-11-24T22:40:25.243208Z", "+02:00") → ms since the epoch; 0 if malformed. */
int64_t tr_kube_time_ms(const char *text);

#endif
