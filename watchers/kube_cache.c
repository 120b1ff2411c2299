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
#include "kube_cache_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "log.h"

#define MOD "kube_cache"

static uint32_t hash_str(const char *s);

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

map_node *cache_map_find(const map *m, const char *key)
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
int cache_map_insert(tr_kube_cache *cache, map *m, map_node *node)
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

void cache_entry_free(tr_kube_cache *cache, map_node *node)
{
    cache->bytes -= node->bytes;
    tr_free(node);
}
void cache_map_unlink(map *m, map_node *node)
{
    map_node **slot = map_slot(m, node->key, node->hash);

    if (slot != NULL && *slot == node) {
        *slot = node->next;
        m->count--;
    }
}


/*
 * Allocate an entry of fixed size head with strings appended (NULL-terminated
 * list); the first string is the key. Returns NULL without memory.
 */
void *cache_entry_new(tr_kube_cache *cache, size_t head, const char **strings, size_t count,
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

void cache_owner_set(tr_kube_owner *out, const char *kind, const char *name, int inferred)
{
    if (copy_name(out->kind, sizeof(out->kind), kind) != 0 ||
        copy_name(out->name, sizeof(out->name), name) != 0) {
        out->kind[0] = '\0';
        out->name[0] = '\0';
    }
    out->inferred = inferred;
}

int cache_ns_key(char *buf, size_t size, const char *ns, const char *name)
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

    cache_owner_set(out, kind, name, 0);
    if ((!is_rs && !is_job) || cache_ns_key(key, sizeof(key), ns, name) != 0)
        return;
    if (cache != NULL)
        ref = (const ref_entry *)cache_map_find(is_rs ? &cache->replicasets : &cache->jobs, key);
    if (ref != NULL) {
        if (ref->target[0] != '\0')
            cache_owner_set(out, is_rs ? "Deployment" : "CronJob", ref->target, 0);
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
            cache_owner_set(out, "Deployment", deployment, 0);
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
        cache_owner_set(out, "", "", 0);
        return;
    }
    memcpy(kind_buf, kind + 1, (size_t)(name - kind - 1));
    kind_buf[name - kind - 1] = '\0';
    cache_owner_set(out, kind_buf, name + 1, 0);
}

void tr_kube_cache_pod_owner(const tr_kube_cache *cache, const char *ns, const char *name,
                             tr_kube_owner *out)
{
    char key[2 * TR_KUBE_NAME_MAX + 2];
    const pod_entry *pod = NULL;
    const char *dash1, *dash2;
    size_t len;

    cache_owner_set(out, "Pod", name, 0);
    if (name == NULL || cache_ns_key(key, sizeof(key), ns, name) != 0)
        return;
    pod = cache != NULL ? (const pod_entry *)cache_map_find(&cache->pods, key) : NULL;
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

/* ------------------------------------------------------------ readers */

int tr_kube_cache_pod_get(const tr_kube_cache *cache, const char *ns, const char *name,
                          tr_kube_pod_info *out)
{
    char key[2 * TR_KUBE_NAME_MAX + 2];
    const pod_entry *pod;

    memset(out, 0, sizeof(*out));
    if (cache == NULL || name == NULL || cache_ns_key(key, sizeof(key), ns, name) != 0)
        return TR_ENOTFOUND;
    pod = (const pod_entry *)cache_map_find(&cache->pods, key);
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

    if (cache == NULL || name == NULL || cache_ns_key(key, sizeof(key), ns, name) != 0)
        return;
    pod = (pod_entry *)cache_map_find(&cache->pods, key);
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
        owner = (const owner_entry *)cache_map_find(&cache->owners, key);
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
    entry = (const node_entry *)cache_map_find(&cache->nodes, node);
    return entry != NULL ? entry->ready : -1;
}

int64_t tr_kube_cache_event_count(const tr_kube_cache *cache, const cJSON *event)
{
    char key[4 * TR_KUBE_NAME_MAX];
    const event_entry *entry;

    if (cache == NULL || cache_event_key(key, sizeof(key), event) != 0)
        return 0;
    entry = (const event_entry *)cache_map_find(&cache->events, key);
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