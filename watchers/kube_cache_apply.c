/*
 * kube_cache_apply.c - watched objects into the kube cache's maps (see
 * kube_cache.h): pods and the owners they count towards, ReplicaSet/Job
 * owner references, node readiness, Warning event counters, and the resync
 * that drops what a relist no longer lists.
 */
#include <stdio.h>
#include <string.h>

#include "kube_cache.h"
#include "kube_cache_internal.h"

/* ------------------------------------------------------------ pods */

static owner_entry *owner_acquire(tr_kube_cache *cache, const char *ns, const tr_kube_owner *o)
{
    char key[3 * TR_KUBE_NAME_MAX];
    const char *strings[1], *copies[1];
    owner_entry *owner;
    int n = snprintf(key, sizeof(key), "%s/%s/%s", ns, o->kind, o->name);

    if (n < 0 || (size_t)n >= sizeof(key))
        return NULL;
    owner = (owner_entry *)cache_map_find(&cache->owners, key);
    if (owner != NULL)
        return owner;
    strings[0] = key;
    owner = cache_entry_new(cache, sizeof(owner_entry), strings, 1, copies);
    if (owner == NULL)
        return NULL;
    if (cache_map_insert(cache, &cache->owners, &owner->node) != TR_OK) {
        cache_entry_free(cache, &owner->node);
        return NULL;
    }
    return owner;
}


static void owner_release(tr_kube_cache *cache, owner_entry *owner, int healthy)
{
    if (owner == NULL)
        return;
    owner->pods--;
    if (!healthy)
        owner->unhealthy--;
    if (owner->pods == 0) {
        cache_map_unlink(&cache->owners, &owner->node);
        cache_entry_free(cache, &owner->node);
    }
}

static void pod_remove(tr_kube_cache *cache, pod_entry *pod)
{
    cache_map_unlink(&cache->pods, &pod->node);
    owner_release(cache, pod->owner, pod->healthy);
    cache_entry_free(cache, &pod->node);
}

static uint8_t last_reason_code(const char *reason)
{
    if (reason == NULL)
        return TR_KUBE_LAST_NONE;
    if (strcmp(reason, "OOMKilled") == 0)
        return TR_KUBE_LAST_OOMKILLED;
    if (strcmp(reason, "Error") == 0)
        return TR_KUBE_LAST_ERROR;
    if (strcmp(reason, "Completed") == 0)
        return TR_KUBE_LAST_COMPLETED;
    return TR_KUBE_LAST_OTHER;
}

static void pod_summarise(pod_entry *pod, const cJSON *object)
{
    const cJSON *statuses = tr_kube_obj_get(object, "status.containerStatuses");
    const cJSON *item;

    if (!cJSON_IsArray(statuses))
        return;
    cJSON_ArrayForEach(item, statuses)
    {
        tr_kube_container_summary *c;
        int64_t restarts, exit_code;

        if (pod->container_count >= TR_KUBE_CACHE_CONTAINERS)
            break;
        c = &pod->containers[pod->container_count++];
        c->name_hash = tr_kube_cache_hash(tr_kube_obj_str(item, "name"));
        restarts = tr_kube_obj_int(item, "restartCount", 0);
        exit_code = tr_kube_obj_int(item, "lastState.terminated.exitCode", 0);
        c->restart_count = (uint16_t)(restarts < 0 ? 0 : restarts > 65535 ? 65535 : restarts);
        c->exit_code = (int16_t)(exit_code < -32768 ? -32768 : exit_code > 32767 ? 32767
                                                                                  : exit_code);
        c->last_reason = last_reason_code(tr_kube_obj_str(item, "lastState.terminated.reason"));
        c->ready = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "ready")) ? 1 : 0;
    }
}

static int pod_apply(tr_kube_cache *cache, int deleted, const cJSON *object, uint32_t gen)
{
    char key[2 * TR_KUBE_NAME_MAX + 2];
    const char *ns = tr_kube_obj_str(object, "metadata.namespace");
    const char *name = tr_kube_obj_str(object, "metadata.name");
    const char *node = tr_kube_obj_str(object, "spec.nodeName");
    const char *phase = tr_kube_obj_str(object, "status.phase");
    const cJSON *ctrl = tr_kube_obj_controller(object);
    const cJSON *ready_cond = tr_kube_obj_condition(object, "Ready");
    const char *ready_status = tr_kube_obj_str(ready_cond, "status");
    const char *strings[2], *copies[2];
    pod_entry *old, *pod;
    tr_kube_owner owner;
    int rc;

    if (name == NULL || cache_ns_key(key, sizeof(key), ns, name) != 0)
        return TR_EINVAL;
    old = (pod_entry *)cache_map_find(&cache->pods, key);
    if (deleted) {
        if (old != NULL)
            pod_remove(cache, old);
        return TR_OK;
    }
    if (ctrl != NULL)
        tr_kube_cache_resolve_owner(cache, ns, tr_kube_obj_str(ctrl, "kind"),
                                    tr_kube_obj_str(ctrl, "name"),
                                    tr_kube_obj_label(object, "pod-template-hash"), &owner);
    if (ctrl == NULL || owner.name[0] == '\0')
        cache_owner_set(&owner, "Pod", name, 0);
    strings[0] = key;
    strings[1] = node != NULL ? node : "";
    pod = cache_entry_new(cache, sizeof(pod_entry), strings, 2, copies);
    if (pod == NULL)
        return TR_ENOMEM;
    pod->node_name = copies[1];
    pod->node.generation = gen;
    pod->ready = ready_status != NULL && strcmp(ready_status, "True") == 0;
    pod->healthy = pod->ready;
    if (phase != NULL && strcmp(phase, "Succeeded") == 0)
        pod->healthy = 1;
    /* A Job's failed pods are judged by the Job's own status, not one by one. */
    if (phase != NULL && strcmp(phase, "Failed") == 0 &&
        (strcmp(owner.kind, "Job") == 0 || strcmp(owner.kind, "CronJob") == 0))
        pod->healthy = 1;
    pod_summarise(pod, object);
    pod->owner = owner_acquire(cache, ns != NULL ? ns : "", &owner);
    if (pod->owner == NULL) {
        cache_entry_free(cache, &pod->node);
        return TR_ELIMIT;
    }
    pod->owner->pods++;
    if (!pod->healthy)
        pod->owner->unhealthy++;
    if (old != NULL) {
        pod->signature = old->signature;
        pod_remove(cache, old);
    }
    rc = cache_map_insert(cache, &cache->pods, &pod->node);
    if (rc != TR_OK) {
        owner_release(cache, pod->owner, pod->healthy);
        cache_entry_free(cache, &pod->node);
    }
    return rc;
}

/* ------------------------------------------------------------ other maps */

static int ref_apply(tr_kube_cache *cache, map *m, int deleted, const cJSON *object,
                     const char *owner_kind, uint32_t gen)
{
    char key[2 * TR_KUBE_NAME_MAX + 2];
    const char *ns = tr_kube_obj_str(object, "metadata.namespace");
    const char *name = tr_kube_obj_str(object, "metadata.name");
    const cJSON *ctrl = tr_kube_obj_controller(object);
    const char *ctrl_kind = tr_kube_obj_str(ctrl, "kind");
    const char *target = "";
    const char *strings[2], *copies[2];
    ref_entry *old, *ref;
    int rc;

    if (name == NULL || cache_ns_key(key, sizeof(key), ns, name) != 0)
        return TR_EINVAL;
    old = (ref_entry *)cache_map_find(m, key);
    if (ctrl_kind != NULL && strcmp(ctrl_kind, owner_kind) == 0)
        target = tr_kube_obj_str(ctrl, "name");
    if (!deleted && old != NULL && strcmp(old->target, target) == 0) {
        old->node.generation = gen;
        return TR_OK;
    }
    if (old != NULL) {
        cache_map_unlink(m, &old->node);
        cache_entry_free(cache, &old->node);
    }
    if (deleted)
        return TR_OK;
    strings[0] = key;
    strings[1] = target;
    ref = cache_entry_new(cache, sizeof(ref_entry), strings, 2, copies);
    if (ref == NULL)
        return TR_ENOMEM;
    ref->target = copies[1];
    ref->node.generation = gen;
    rc = cache_map_insert(cache, m, &ref->node);
    if (rc != TR_OK)
        cache_entry_free(cache, &ref->node);
    return rc;
}

static int node_apply(tr_kube_cache *cache, int deleted, const cJSON *object, uint32_t gen)
{
    const char *name = tr_kube_obj_str(object, "metadata.name");
    const char *status = tr_kube_obj_str(tr_kube_obj_condition(object, "Ready"), "status");
    const char *strings[1], *copies[1];
    node_entry *entry;
    int rc;

    if (name == NULL)
        return TR_EINVAL;
    entry = (node_entry *)cache_map_find(&cache->nodes, name);
    if (deleted) {
        if (entry != NULL) {
            cache_map_unlink(&cache->nodes, &entry->node);
            cache_entry_free(cache, &entry->node);
        }
        return TR_OK;
    }
    if (entry == NULL) {
        strings[0] = name;
        entry = cache_entry_new(cache, sizeof(node_entry), strings, 1, copies);
        if (entry == NULL)
            return TR_ENOMEM;
        rc = cache_map_insert(cache, &cache->nodes, &entry->node);
        if (rc != TR_OK) {
            cache_entry_free(cache, &entry->node);
            return rc;
        }
    }
    entry->ready = status == NULL ? -1 : strcmp(status, "True") == 0 ? 1 : 0;
    entry->node.generation = gen;
    return TR_OK;
}

/* involvedObject (core/v1) or regarding (events.k8s.io/v1). */
static const cJSON *event_regarding(const cJSON *event)
{
    const cJSON *ref = tr_kube_obj_get(event, "involvedObject");

    return cJSON_IsObject(ref) ? ref : tr_kube_obj_get(event, "regarding");
}

int cache_event_key(char *buf, size_t size, const cJSON *event)
{
    const cJSON *ref = event_regarding(event);
    const char *kind = tr_kube_obj_str(ref, "kind");
    const char *name = tr_kube_obj_str(ref, "name");
    const char *ns = tr_kube_obj_str(ref, "namespace");
    const char *reason = tr_kube_obj_str(event, "reason");
    int n;

    if (kind == NULL || name == NULL || reason == NULL)
        return -1;
    n = snprintf(buf, size, "%s/%s/%s/%s", ns != NULL ? ns : "", kind, name, reason);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* How many times this one Event object says its reason occurred. */
static int64_t event_occurrences(const cJSON *event)
{
    int64_t count = tr_kube_obj_int(event, "count", 0);
    int64_t series = tr_kube_obj_int(event, "series.count", 0);
    int64_t deprecated = tr_kube_obj_int(event, "deprecatedCount", 0);

    if (series > count)
        count = series;
    if (deprecated > count)
        count = deprecated;
    return count < 1 ? 1 : count;
}

static int event_apply(tr_kube_cache *cache, int deleted, const cJSON *object, int64_t now_ms,
                       uint32_t gen)
{
    char key[4 * TR_KUBE_NAME_MAX];
    const char *event_name = tr_kube_obj_str(object, "metadata.name");
    const char *type = tr_kube_obj_str(object, "type");
    const char *strings[1], *copies[1];
    uint32_t name_hash = tr_kube_cache_hash(event_name);
    int64_t occurrences;
    event_entry *entry;
    int rc;

    /* Normal events never become incidents: counting them would only cost memory. */
    if (deleted || type == NULL || strcmp(type, "Warning") != 0)
        return TR_OK;
    if (cache_event_key(key, sizeof(key), object) != 0)
        return TR_EINVAL;
    occurrences = event_occurrences(object);
    entry = (event_entry *)cache_map_find(&cache->events, key);
    if (entry != NULL && now_ms - entry->updated_ms > cache->opt.event_window_ms) {
        entry->base = 0;
        entry->current = 0;
        entry->name_hash = 0;
    }
    if (entry == NULL) {
        strings[0] = key;
        entry = cache_entry_new(cache, sizeof(event_entry), strings, 1, copies);
        if (entry == NULL)
            return TR_ENOMEM;
        rc = cache_map_insert(cache, &cache->events, &entry->node);
        if (rc != TR_OK) {
            cache_entry_free(cache, &entry->node);
            return rc;
        }
        entry->name_hash = name_hash;
    }
    if (entry->name_hash != name_hash) {
        /* Another Event object reporting the same reason: its count adds up. */
        entry->base += entry->current;
        entry->current = 0;
        entry->name_hash = name_hash;
    }
    if (occurrences > entry->current)
        entry->current = occurrences;
    entry->updated_ms = now_ms;
    entry->node.generation = gen;
    return TR_OK;
}

int tr_kube_cache_apply(tr_kube_cache *cache, int resource, int deleted, const cJSON *object,
                        int64_t now_ms)
{
    uint32_t gen;

    if (cache == NULL || !cJSON_IsObject(object) || resource <= 0 ||
        resource >= TR_KUBE_RES_COUNT)
        return TR_EINVAL;
    gen = cache->generation[resource];
    switch (resource) {
    case TR_KUBE_RES_PODS:
        return pod_apply(cache, deleted, object, gen);
    case TR_KUBE_RES_REPLICASETS:
        return ref_apply(cache, &cache->replicasets, deleted, object, "Deployment", gen);
    case TR_KUBE_RES_JOBS:
        return ref_apply(cache, &cache->jobs, deleted, object, "CronJob", gen);
    case TR_KUBE_RES_NODES:
        return node_apply(cache, deleted, object, gen);
    case TR_KUBE_RES_EVENTS:
        return event_apply(cache, deleted, object, now_ms, gen);
    default:
        return TR_OK;
    }
}

/* ------------------------------------------------------------ resync */

static map *resource_map(tr_kube_cache *cache, int resource)
{
    switch (resource) {
    case TR_KUBE_RES_PODS:
        return &cache->pods;
    case TR_KUBE_RES_REPLICASETS:
        return &cache->replicasets;
    case TR_KUBE_RES_JOBS:
        return &cache->jobs;
    case TR_KUBE_RES_NODES:
        return &cache->nodes;
    case TR_KUBE_RES_EVENTS:
        return &cache->events;
    default:
        return NULL;
    }
}

void tr_kube_cache_sync_begin(tr_kube_cache *cache, int resource)
{
    if (cache == NULL || resource <= 0 || resource >= TR_KUBE_RES_COUNT)
        return;
    cache->generation[resource]++;
}

size_t tr_kube_cache_sync_end(tr_kube_cache *cache, int resource)
{
    map *m;
    size_t dropped = 0;
    uint32_t gen;

    if (cache == NULL || resource <= 0 || resource >= TR_KUBE_RES_COUNT)
        return 0;
    cache->synced[resource] = 1;
    m = resource_map(cache, resource);
    if (m == NULL)
        return 0;
    gen = cache->generation[resource];
    for (size_t i = 0; i < m->bucket_count; i++) {
        map_node *node = m->buckets[i];

        while (node != NULL) {
            map_node *next = node->next;

            if (node->generation != gen) {
                if (resource == TR_KUBE_RES_PODS) {
                    pod_remove(cache, (pod_entry *)node);
                } else {
                    cache_map_unlink(m, node);
                    cache_entry_free(cache, node);
                }
                dropped++;
            }
            node = next;
        }
    }
    cache->resync_dropped += dropped;
    return dropped;
}

int tr_kube_cache_synced(const tr_kube_cache *cache, int resource)
{
    if (cache == NULL || resource <= 0 || resource >= TR_KUBE_RES_COUNT)
        return 0;
    return cache->synced[resource];
}
