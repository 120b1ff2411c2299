/*
 * kube_cache_internal.h - what kube_cache.c and kube_cache_apply.c share and
 * nobody else sees: the map and entry layouts, the tr_kube_cache struct and
 * the map primitives.
 *
 * kube_cache.c owns the maps (hash table, entry allocation, lifecycle), owner
 * resolution and the readers; kube_cache_apply.c turns watched objects into
 * entries (apply) and drops what a relist no longer lists (resync).
 */
#ifndef TR_KUBE_CACHE_INTERNAL_H
#define TR_KUBE_CACHE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kube_cache.h"

typedef struct map_node {
    struct map_node *next;
    const char *key;
    size_t bytes;        /* size of the allocation, for accounting */
    uint32_t hash;
    uint32_t generation; /* sync generation that last saw the entry */
} map_node;

typedef struct map {
    const char *name;
    map_node **buckets;
    size_t bucket_count; /* 0 or a power of two */
    size_t count;
    size_t cap;
    int full_logged;
} map;

/* ReplicaSet → Deployment, Job → CronJob: target "" when the object has no such owner. */
typedef struct ref_entry {
    map_node node;
    const char *target;
    char data[];
} ref_entry;

typedef struct node_entry {
    map_node node;
    int ready;
    char data[];
} node_entry;

typedef struct event_entry {
    map_node node;
    int64_t base;       /* occurrences reported by earlier Event objects */
    int64_t current;    /* occurrences reported by the latest Event object */
    int64_t updated_ms;
    uint32_t name_hash; /* which Event object "current" belongs to */
    char data[];
} event_entry;

/* Pods aggregated per owner workload; key "ns/Kind/name"; freed when pods reaches 0. */
typedef struct owner_entry {
    map_node node;
    uint32_t pods;
    uint32_t unhealthy;
    char data[];
} owner_entry;

typedef struct pod_entry {
    map_node node;
    owner_entry *owner;
    const char *node_name;
    uint32_t signature;
    uint8_t ready;
    uint8_t healthy;
    uint8_t container_count;
    tr_kube_container_summary containers[TR_KUBE_CACHE_CONTAINERS];
    char data[];
} pod_entry;

struct tr_kube_cache {
    tr_kube_cache_options opt;
    map pods, replicasets, jobs, nodes, events, owners;
    uint32_t generation[TR_KUBE_RES_COUNT];
    int synced[TR_KUBE_RES_COUNT];
    size_t bytes;
    uint64_t dropped;
    uint64_t resync_dropped;
};

/* The node stored under key, or NULL. */
map_node *cache_map_find(const map *m, const char *key);

/* Insert node (key not present). TR_ELIMIT when the map is full: the caller frees node. */
int cache_map_insert(tr_kube_cache *cache, map *m, map_node *node);

/* Take node out of m (it stays allocated: see cache_entry_free). */
void cache_map_unlink(map *m, map_node *node);

/*
 * Allocate an entry of fixed size head with count strings appended; the first
 * string is the key, copies[i] points at the copy of strings[i]. Returns NULL
 * without memory; the cache accounts for the entry, cache_entry_free releases it.
 */
void *cache_entry_new(tr_kube_cache *cache, size_t head, const char **strings, size_t count,
                      const char **copies);

/* Free an entry made by cache_entry_new (unlinked first). */
void cache_entry_free(tr_kube_cache *cache, map_node *node);

/* "ns/name" into buf; -1 when it does not fit. */
int cache_ns_key(char *buf, size_t size, const char *ns, const char *name);

/* Set out to kind/name, or to "" / "" when either is too long. */
void cache_owner_set(tr_kube_owner *out, const char *kind, const char *name, int inferred);

/* The counter key "ns/Kind/name/reason" of an Event; -1 when it has none or it is too long. */
int cache_event_key(char *buf, size_t size, const cJSON *event);

#endif
