/*
 * kube_cache.c - slim bounded caches for classification (see kube_cache.h).
 *
 * Every map is the same small chained hash table of variable-sized entries:
 * the header (map_node) is followed by the entry's fields and then its
 * strings, in one allocation, so a pod costs one malloc of ~100 bytes plus
 * its share of the bucket array. An entry is replaced, not edited, when its
 * strings change.
 */
#include "kube_cache.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "log.h"

#define MOD "kube_cache"

static uint32_t hash_str(const char *s);

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

static const char *const resource_names[TR_KUBE_RES_COUNT] = {
    [TR_KUBE_RES_UNKNOWN] = "unknown",
    [TR_KUBE_RES_EVENTS] = "events",
    [TR_KUBE_RES_PODS] = "pods",
    [TR_KUBE_RES_REPLICASETS] = "replicasets",
    [TR_KUBE_RES_DEPLOYMENTS] = "deployments",
    [TR_KUBE_RES_STATEFULSETS] = "statefulsets",
    [TR_KUBE_RES_DAEMONSETS] = "daemonsets",
    [TR_KUBE_RES_JOBS] = "jobs",
    [TR_KUBE_RES_CRONJOBS] = "cronjobs",
    [TR_KUBE_RES_NODES] = "nodes",
    [TR_KUBE_RES_PVCS] = "persistentvolumeclaims",
    [TR_KUBE_RES_ARGO_APPS] = "applications",
    [TR_KUBE_RES_FLUX_KS] = "kustomizations",
    [TR_KUBE_RES_FLUX_HR] = "helmreleases",
};

int tr_kube_resource_parse(const char *name)
{
    const char *slash;

    if (name == NULL)
        return TR_KUBE_RES_UNKNOWN;
    slash = strrchr(name, '/');
    if (slash != NULL)
        name = slash + 1;
    for (int i = 1; i < TR_KUBE_RES_COUNT; i++) {
        if (strcmp(name, resource_names[i]) == 0)
            return i;
    }
    if (strcmp(name, "pvcs") == 0)
        return TR_KUBE_RES_PVCS;
    return TR_KUBE_RES_UNKNOWN;
}

const char *tr_kube_resource_name(int resource)
{
    if (resource <= 0 || resource >= TR_KUBE_RES_COUNT)
        return "unknown";
    return resource_names[resource];
}

/* ------------------------------------------------------------ the map */

uint32_t tr_kube_cache_hash(const char *s)
{
    return hash_str(s != NULL ? s : "");
}

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static void map_init(map *m, const char *name, size_t cap)
{
    memset(m, 0, sizeof(*m));
    m->name = name;
    m->cap = cap;
}

/* The slot holding key's node (or the empty slot at the end of its chain). */
static map_node **map_slot(const map *m, const char *key, uint32_t hash)
{
    map_node **slot;

    if (m->bucket_count == 0)
        return NULL;
    slot = &m->buckets[hash & (m->bucket_count - 1)];
    while (*slot != NULL && ((*slot)->hash != hash || strcmp((*slot)->key, key) != 0))
        slot = &(*slot)->next;
    return slot;
}

static map_node *map_find(const map *m, const char *key)
{
    map_node **slot = map_slot(m, key, hash_str(key));

    return slot != NULL ? *slot : NULL;
}

static int map_grow(tr_kube_cache *cache, map *m)
{
    size_t count = m->bucket_count == 0 ? 64 : m->bucket_count * 2;
    map_node **buckets = tr_calloc(count, sizeof(map_node *));

    if (buckets == NULL)
        return TR_ENOMEM;
    for (size_t i = 0; i < m->bucket_count; i++) {
        map_node *node = m->buckets[i];

        while (node != NULL) {
            map_node *next = node->next;
            size_t b = node->hash & (count - 1);

            node->next = buckets[b];
            buckets[b] = node;
            node = next;
        }
    }
    cache->bytes -= m->bucket_count * sizeof(map_node *);
    cache->bytes += count * sizeof(map_node *);
    tr_free(m->buckets);
    m->buckets = buckets;
    m->bucket_count = count;
    return TR_OK;
}

/* Insert node (key not present). TR_ELIMIT when the map is full: the caller frees node. */
static int map_insert(tr_kube_cache *cache, map *m, map_node *node)
{
    map_node **slot;

    if (m->count >= m->cap) {
        cache->dropped++;
        if (!m->full_logged) {
            tr_log_warn(MOD, "%s cache full (%zu entries): new entries are dropped", m->name,
                        m->cap);
            m->full_logged = 1;
        }
        return TR_ELIMIT;
    }
    if (m->count >= m->bucket_count - m->bucket_count / 4 || m->bucket_count == 0) {
        int rc = map_grow(cache, m);

        if (rc != TR_OK)
            return rc;
    }
    slot = &m->buckets[node->hash & (m->bucket_count - 1)];
    node->next = *slot;
    *slot = node;
    m->count++;
    return TR_OK;
}

static void entry_free(tr_kube_cache *cache, map_node *node)
{
    cache->bytes -= node->bytes;
    tr_free(node);
}

/*
 * Allocate an entry of fixed size head with strings appended (NULL-terminated
 * list); the first string is the key. Returns NULL without memory.
 */
static void *entry_new(tr_kube_cache *cache, size_t head, const char **strings, size_t count,
                       const char **copies)
{
    size_t bytes = head;
    char *p;
    map_node *node;

    for (size_t i = 0; i < count; i++)
        bytes += strlen(strings[i]) + 1;
    node = tr_calloc(1, bytes);
    if (node == NULL)
        return NULL;
    p = (char *)node + head;
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(strings[i]) + 1;

        memcpy(p, strings[i], len);
        copies[i] = p;
        p += len;
    }
    node->key = copies[0];
    node->hash = hash_str(node->key);
    node->bytes = bytes;
    cache->bytes += bytes;
    return node;
}

/* ------------------------------------------------------------ lifecycle */

int tr_kube_cache_new(tr_kube_cache **out, const tr_kube_cache_options *options, tr_error *err)
{
    tr_kube_cache *cache;

    *out = NULL;
    cache = tr_calloc(1, sizeof(*cache));
    if (cache == NULL)
        return tr_error_set(err, TR_ENOMEM, "kube cache: out of memory");
    if (options != NULL)
        cache->opt = *options;
    if (cache->opt.max_pods == 0)
        cache->opt.max_pods = 100000;
    if (cache->opt.max_replicasets == 0)
        cache->opt.max_replicasets = 100000;
    if (cache->opt.max_jobs == 0)
        cache->opt.max_jobs = 50000;
    if (cache->opt.max_nodes == 0)
        cache->opt.max_nodes = 20000;
    if (cache->opt.max_event_keys == 0)
        cache->opt.max_event_keys = 50000;
    if (cache->opt.event_window_ms <= 0)
        cache->opt.event_window_ms = 60 * 60 * 1000;
    map_init(&cache->pods, "pod", cache->opt.max_pods);
    map_init(&cache->owners, "owner", cache->opt.max_pods);
    map_init(&cache->replicasets, "replicaset", cache->opt.max_replicasets);
    map_init(&cache->jobs, "job", cache->opt.max_jobs);
    map_init(&cache->nodes, "node", cache->opt.max_nodes);
    map_init(&cache->events, "event counter", cache->opt.max_event_keys);
    cache->bytes = sizeof(*cache);
    *out = cache;
    return TR_OK;
}

static void map_dispose(map *m)
{
    for (size_t i = 0; i < m->bucket_count; i++) {
        map_node *node = m->buckets[i];

        while (node != NULL) {
            map_node *next = node->next;

            tr_free(node);
            node = next;
        }
    }
    tr_free(m->buckets);
    m->buckets = NULL;
    m->bucket_count = 0;
    m->count = 0;
}

void tr_kube_cache_free(tr_kube_cache *cache)
{
    if (cache == NULL)
        return;
    map_dispose(&cache->pods);
    map_dispose(&cache->owners);
    map_dispose(&cache->replicasets);
    map_dispose(&cache->jobs);
    map_dispose(&cache->nodes);
    map_dispose(&cache->events);
    tr_free(cache);
}

/* ------------------------------------------------------------ owners */

static int copy_name(char *dst, size_t size, const char *src)
{
    size_t len = src != NULL ? strlen(src) : 0;

    if (len >= size)
        return -1;
    memcpy(dst, src != NULL ? src : "", len + 1);
    return 0;
}

static void owner_set(tr_kube_owner *out, const char *kind, const char *name, int inferred)
{
    if (copy_name(out->kind, sizeof(out->kind), kind) != 0 ||
        copy_name(out->name, sizeof(out->name), name) != 0) {
        out->kind[0] = '\0';
        out->name[0] = '\0';
    }
    out->inferred = inferred;
}

static int ns_key(char *buf, size_t size, const char *ns, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", ns != NULL ? ns : "", name != NULL ? name : "");

    return n < 0 || (size_t)n >= size ? -1 : 0;
}

void tr_kube_cache_resolve_owner(const tr_kube_cache *cache, const char *ns, const char *kind,
                                 const char *name, const char *template_hash, tr_kube_owner *out)
{
    char key[2 * TR_KUBE_NAME_MAX + 2];
    const ref_entry *ref = NULL;
    int is_rs = kind != NULL && strcmp(kind, "ReplicaSet") == 0;
    int is_job = kind != NULL && strcmp(kind, "Job") == 0;

    owner_set(out, kind, name, 0);
    if ((!is_rs && !is_job) || ns_key(key, sizeof(key), ns, name) != 0)
        return;
    if (cache != NULL)
        ref = (const ref_entry *)map_find(is_rs ? &cache->replicasets : &cache->jobs, key);
    if (ref != NULL) {
        if (ref->target[0] != '\0')
            owner_set(out, is_rs ? "Deployment" : "CronJob", ref->target, 0);
        return;
    }
    /* The Deployment controller names its ReplicaSets <deployment>-<pod-template-hash>. */
    if (is_rs && template_hash != NULL && template_hash[0] != '\0') {
        size_t len = strlen(name), hlen = strlen(template_hash);

        if (len > hlen + 1 && name[len - hlen - 1] == '-' &&
            strcmp(name + len - hlen, template_hash) == 0 && len - hlen - 1 < TR_KUBE_NAME_MAX) {
            char deployment[TR_KUBE_NAME_MAX];

            memcpy(deployment, name, len - hlen - 1);
            deployment[len - hlen - 1] = '\0';
            owner_set(out, "Deployment", deployment, 0);
        }
    }
}

static int name_segment_ok(const char *s, size_t len, size_t min, size_t max)
{
    if (len < min || len > max)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]))
            return 0;
    }
    return 1;
}

static void owner_from_key(const char *key, tr_kube_owner *out)
{
    const char *kind = strchr(key, '/');
    const char *name = kind != NULL ? strchr(kind + 1, '/') : NULL;
    char kind_buf[TR_KUBE_KIND_MAX];

    if (name == NULL || (size_t)(name - kind - 1) >= sizeof(kind_buf)) {
        owner_set(out, "", "", 0);
        return;
    }
    memcpy(kind_buf, kind + 1, (size_t)(name - kind - 1));
    kind_buf[name - kind - 1] = '\0';
    owner_set(out, kind_buf, name + 1, 0);
}

void tr_kube_cache_pod_owner(const tr_kube_cache *cache, const char *ns, const char *name,
                             tr_kube_owner *out)
{
    char key[2 * TR_KUBE_NAME_MAX + 2];
    const pod_entry *pod = NULL;
    const char *dash1, *dash2;
    size_t len;

    owner_set(out, "Pod", name, 0);
    if (name == NULL || ns_key(key, sizeof(key), ns, name) != 0)
        return;
    pod = cache != NULL ? (const pod_entry *)map_find(&cache->pods, key) : NULL;
    if (pod != NULL) {
        owner_from_key(pod->owner->node.key, out);
        return;
    }
    /* Not cached: <deployment>-<hash 6..10>-<suffix 5> is a Deployment's pod. */
    len = strlen(name);
    dash2 = strrchr(name, '-');
    if (dash2 == NULL || dash2 == name ||
        !name_segment_ok(dash2 + 1, len - (size_t)(dash2 - name) - 1, 5, 5))
        return;
    for (dash1 = dash2 - 1; dash1 > name && *dash1 != '-'; dash1--)
        ;
    if (dash1 <= name || !name_segment_ok(dash1 + 1, (size_t)(dash2 - dash1 - 1), 6, 10))
        return;
    /* Pod names can be longer than owner names (fuzzing found it): no guess then. */
    if ((size_t)(dash2 - name) >= TR_KUBE_NAME_MAX)
        return;
    {
        char rs[TR_KUBE_NAME_MAX], hash[16];
        size_t rs_len = (size_t)(dash2 - name), hash_len = (size_t)(dash2 - dash1 - 1);

        memcpy(rs, name, rs_len);
        rs[rs_len] = '\0';
        memcpy(hash, dash1 + 1, hash_len);
        hash[hash_len] = '\0';
        tr_kube_cache_resolve_owner(cache, ns, "ReplicaSet", rs, hash, out);
        out->inferred = 1;
    }
}

/* ------------------------------------------------------------ pods */

static owner_entry *owner_acquire(tr_kube_cache *cache, const char *ns, const tr_kube_owner *o)
{
    char key[3 * TR_KUBE_NAME_MAX];
    const char *strings[1], *copies[1];
    owner_entry *owner;
    int n = snprintf(key, sizeof(key), "%s/%s/%s", ns, o->kind, o->name);

    if (n < 0 || (size_t)n >= sizeof(key))
        return NULL;
    owner = (owner_entry *)map_find(&cache->owners, key);
    if (owner != NULL)
        return owner;
    strings[0] = key;
    owner = entry_new(cache, sizeof(owner_entry), strings, 1, copies);
    if (owner == NULL)
        return NULL;
    if (map_insert(cache, &cache->owners, &owner->node) != TR_OK) {
        entry_free(cache, &owner->node);
        return NULL;
    }
    return owner;
}

static void map_unlink(map *m, map_node *node)
{
    map_node **slot = map_slot(m, node->key, node->hash);

    if (slot != NULL && *slot == node) {
        *slot = node->next;
        m->count--;
    }
}

static void owner_release(tr_kube_cache *cache, owner_entry *owner, int healthy)
{
    if (owner == NULL)
        return;
    owner->pods--;
    if (!healthy)
        owner->unhealthy--;
    if (owner->pods == 0) {
        map_unlink(&cache->owners, &owner->node);
        entry_free(cache, &owner->node);
    }
}

static void pod_remove(tr_kube_cache *cache, pod_entry *pod)
{
    map_unlink(&cache->pods, &pod->node);
    owner_release(cache, pod->owner, pod->healthy);
    entry_free(cache, &pod->node);
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

    if (name == NULL || ns_key(key, sizeof(key), ns, name) != 0)
        return TR_EINVAL;
    old = (pod_entry *)map_find(&cache->pods, key);
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
        owner_set(&owner, "Pod", name, 0);
    strings[0] = key;
    strings[1] = node != NULL ? node : "";
    pod = entry_new(cache, sizeof(pod_entry), strings, 2, copies);
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
        entry_free(cache, &pod->node);
        return TR_ELIMIT;
    }
    pod->owner->pods++;
    if (!pod->healthy)
        pod->owner->unhealthy++;
    if (old != NULL) {
        pod->signature = old->signature;
        pod_remove(cache, old);
    }
    rc = map_insert(cache, &cache->pods, &pod->node);
    if (rc != TR_OK) {
        owner_release(cache, pod->owner, pod->healthy);
        entry_free(cache, &pod->node);
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

    if (name == NULL || ns_key(key, sizeof(key), ns, name) != 0)
        return TR_EINVAL;
    old = (ref_entry *)map_find(m, key);
    if (ctrl_kind != NULL && strcmp(ctrl_kind, owner_kind) == 0)
        target = tr_kube_obj_str(ctrl, "name");
    if (!deleted && old != NULL && strcmp(old->target, target) == 0) {
        old->node.generation = gen;
        return TR_OK;
    }
    if (old != NULL) {
        map_unlink(m, &old->node);
        entry_free(cache, &old->node);
    }
    if (deleted)
        return TR_OK;
    strings[0] = key;
    strings[1] = target;
    ref = entry_new(cache, sizeof(ref_entry), strings, 2, copies);
    if (ref == NULL)
        return TR_ENOMEM;
    ref->target = copies[1];
    ref->node.generation = gen;
    rc = map_insert(cache, m, &ref->node);
    if (rc != TR_OK)
        entry_free(cache, &ref->node);
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
    entry = (node_entry *)map_find(&cache->nodes, name);
    if (deleted) {
        if (entry != NULL) {
            map_unlink(&cache->nodes, &entry->node);
            entry_free(cache, &entry->node);
        }
        return TR_OK;
    }
    if (entry == NULL) {
        strings[0] = name;
        entry = entry_new(cache, sizeof(node_entry), strings, 1, copies);
        if (entry == NULL)
            return TR_ENOMEM;
        rc = map_insert(cache, &cache->nodes, &entry->node);
        if (rc != TR_OK) {
            entry_free(cache, &entry->node);
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

static int event_key(char *buf, size_t size, const cJSON *event)
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
    uint32_t name_hash = hash_str(event_name != NULL ? event_name : "");
    int64_t occurrences;
    event_entry *entry;
    int rc;

    /* Normal events never become incidents: counting them would only cost memory. */
    if (deleted || type == NULL || strcmp(type, "Warning") != 0)
        return TR_OK;
    if (event_key(key, sizeof(key), object) != 0)
        return TR_EINVAL;
    occurrences = event_occurrences(object);
    entry = (event_entry *)map_find(&cache->events, key);
    if (entry != NULL && now_ms - entry->updated_ms > cache->opt.event_window_ms) {
        entry->base = 0;
        entry->current = 0;
        entry->name_hash = 0;
    }
    if (entry == NULL) {
        strings[0] = key;
        entry = entry_new(cache, sizeof(event_entry), strings, 1, copies);
        if (entry == NULL)
            return TR_ENOMEM;
        rc = map_insert(cache, &cache->events, &entry->node);
        if (rc != TR_OK) {
            entry_free(cache, &entry->node);
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
                    map_unlink(m, node);
                    entry_free(cache, node);
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

/* ------------------------------------------------------------ readers */

int tr_kube_cache_pod_get(const tr_kube_cache *cache, const char *ns, const char *name,
                          tr_kube_pod_info *out)
{
    char key[2 * TR_KUBE_NAME_MAX + 2];
    const pod_entry *pod;

    memset(out, 0, sizeof(*out));
    if (cache == NULL || name == NULL || ns_key(key, sizeof(key), ns, name) != 0)
        return TR_ENOTFOUND;
    pod = (const pod_entry *)map_find(&cache->pods, key);
    if (pod == NULL)
        return TR_ENOTFOUND;
    owner_from_key(pod->owner->node.key, &out->owner);
    (void)copy_name(out->node, sizeof(out->node), pod->node_name);
    out->ready = pod->ready;
    out->healthy = pod->healthy;
    out->signature = pod->signature;
    out->container_count = pod->container_count;
    memcpy(out->containers, pod->containers, sizeof(out->containers));
    return TR_OK;
}

void tr_kube_cache_pod_set_signature(tr_kube_cache *cache, const char *ns, const char *name,
                                     uint32_t signature)
{
    char key[2 * TR_KUBE_NAME_MAX + 2];
    pod_entry *pod;

    if (cache == NULL || name == NULL || ns_key(key, sizeof(key), ns, name) != 0)
        return;
    pod = (pod_entry *)map_find(&cache->pods, key);
    if (pod != NULL)
        pod->signature = signature;
}

void tr_kube_cache_owner_pods(const tr_kube_cache *cache, const char *ns, const char *kind,
                              const char *name, size_t *pods, size_t *unhealthy)
{
    char key[3 * TR_KUBE_NAME_MAX];
    const owner_entry *owner = NULL;
    int n;

    *pods = 0;
    *unhealthy = 0;
    if (cache == NULL)
        return;
    n = snprintf(key, sizeof(key), "%s/%s/%s", ns != NULL ? ns : "", kind, name);
    if (n > 0 && (size_t)n < sizeof(key))
        owner = (const owner_entry *)map_find(&cache->owners, key);
    if (owner != NULL) {
        *pods = owner->pods;
        *unhealthy = owner->unhealthy;
    }
}

int tr_kube_cache_node_ready(const tr_kube_cache *cache, const char *node)
{
    const node_entry *entry;

    if (cache == NULL || node == NULL)
        return -1;
    entry = (const node_entry *)map_find(&cache->nodes, node);
    return entry != NULL ? entry->ready : -1;
}

int64_t tr_kube_cache_event_count(const tr_kube_cache *cache, const cJSON *event)
{
    char key[4 * TR_KUBE_NAME_MAX];
    const event_entry *entry;

    if (cache == NULL || event_key(key, sizeof(key), event) != 0)
        return 0;
    entry = (const event_entry *)map_find(&cache->events, key);
    return entry != NULL ? entry->base + entry->current : 0;
}

void tr_kube_cache_stats_get(const tr_kube_cache *cache, tr_kube_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (cache == NULL)
        return;
    out->pods = cache->pods.count;
    out->replicasets = cache->replicasets.count;
    out->jobs = cache->jobs.count;
    out->nodes = cache->nodes.count;
    out->event_keys = cache->events.count;
    out->owners = cache->owners.count;
    out->bytes = cache->bytes;
    out->dropped = cache->dropped;
    out->resync_dropped = cache->resync_dropped;
}
