/*
 * kube_ingest_track.c - incident trackers and the owner map they hang off
 * (see kube_ingest.c for why trackers exist): pods merged across
 * observations, facts keys remembered, seeding from the store so that a
 * restart keeps an incident's pods and its resolution time.
 */
#include "kube_ingest_internal.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "log.h"

#define MOD "kube_ingest"
#define POD_HASHES_MAX 4096 /* distinct pods counted exactly up to this */

/* ------------------------------------------------------------ trackers */

static uint64_t hash64(const char *s)
{
    uint64_t h = 1469598103934665603ull;

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h != 0 ? h : 1;
}

static uint16_t fact_key_hash(const char *key)
{
    uint64_t h = hash64(key);

    return (uint16_t)(h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48));
}

/* Remember the keys of the facts just written (pods and pod_count are the tracker's own). */
void ingest_tracker_set_fact_keys(tracker *t, const cJSON *facts)
{
    const cJSON *item;

    t->fact_key_count = 0;
    cJSON_ArrayForEach (item, facts) {
        if (item->string != NULL && t->fact_key_count < FACT_KEYS_MAX)
            t->fact_keys[t->fact_key_count++] = fact_key_hash(item->string);
    }
}

/* 1 when facts hold a key the incident's facts lack: the finding says more, write it. */
int ingest_tracker_facts_news(const tracker *t, const cJSON *facts)
{
    const cJSON *item;

    cJSON_ArrayForEach (item, facts) {
        uint16_t h;
        size_t i;

        if (item->string == NULL)
            continue;
        h = fact_key_hash(item->string);
        for (i = 0; i < t->fact_key_count && t->fact_keys[i] != h; i++)
            ;
        if (i == t->fact_key_count)
            return t->fact_key_count < FACT_KEYS_MAX;
    }
    return 0;
}

/* Add a pod; 1 when it is new to the incident, 0 when known, <0 without memory.
 */
int ingest_tracker_add_pod(tracker *t, const char *pod)
{
    uint64_t h = hash64(pod);
    size_t i;

    if (t->hash_used * 2 >= t->hash_slots && t->hash_slots < POD_HASHES_MAX * 2) {
        size_t slots = t->hash_slots == 0 ? 32 : t->hash_slots * 2;
        uint64_t *table = tr_calloc(slots, sizeof(*table));

        if (table == NULL)
            return TR_ENOMEM;
        for (size_t j = 0; j < t->hash_slots; j++) {
            if (t->pod_hashes[j] == 0)
                continue;
            for (i = t->pod_hashes[j] & (slots - 1); table[i] != 0; i = (i + 1) & (slots - 1))
                ;
            table[i] = t->pod_hashes[j];
        }
        tr_free(t->pod_hashes);
        t->pod_hashes = table;
        t->hash_slots = slots;
    }
    for (i = h & (t->hash_slots - 1); t->pod_hashes[i] != 0; i = (i + 1) & (t->hash_slots - 1)) {
        if (t->pod_hashes[i] == h)
            return 0;
    }
    if (t->hash_used * 2 < t->hash_slots) {
        t->pod_hashes[i] = h;
        t->hash_used++;
    }
    /* Past POD_HASHES_MAX distinct pods the count is an upper bound. After a restart only the
     * listed names are known: max() never counts a pod twice, at worst it lags. */
    t->distinct++;
    t->pod_count = t->distinct > t->seeded_count ? t->distinct : t->seeded_count;
    if (t->pod_names < PODS_LISTED) {
        t->pods[t->pod_names] = tr_strdup(pod);
        if (t->pods[t->pod_names] == NULL)
            return TR_ENOMEM;
        t->pod_names++;
    }
    return 1;
}

void ingest_tracker_free(tracker *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->pod_names; i++)
        tr_free(t->pods[i]);
    tr_free(t->pod_hashes);
    tr_free(t->fingerprint);
    tr_free(t);
}

/* Seed a new tracker from the incident the store has for its fingerprint, if
 * any. */
static int tracker_seed(tr_kube_ingest *ingest, tracker *t, tr_error *err)
{
    tr_store_incident *incident = NULL;
    cJSON *facts = NULL, *pods, *item;
    int rc = tr_store_incident_find(ingest->store, t->fingerprint, &incident, err);

    if (rc == TR_ENOTFOUND) {
        tr_error_clear(err);
        return TR_OK;
    }
    if (rc != TR_OK)
        return rc;
    t->incident_id = incident->id;
    t->resolved = incident->state == TR_INCIDENT_RESOLVED;
    t->resolved_at_ms = incident->resolved_at_ms;
    t->last_write_ms = incident->updated_ms;
    if (incident->facts_json != NULL)
        facts = cJSON_Parse(incident->facts_json);
    pods = cJSON_GetObjectItemCaseSensitive(facts, "pods");
    if (!cJSON_IsArray(pods))
        pods = NULL;
    cJSON_ArrayForEach (item, pods) {
        if (cJSON_IsString(item) && ingest_tracker_add_pod(t, item->valuestring) < 0) {
            rc = tr_error_set(err, TR_ENOMEM, "kube ingest: out of memory");
            break;
        }
    }
    item = cJSON_GetObjectItemCaseSensitive(facts, "pod_count");
    if (cJSON_IsNumber(item) && item->valuedouble > (double)t->pod_count &&
        item->valuedouble < 1e12) {
        t->seeded_count = (int64_t)item->valuedouble;
        t->pod_count = t->seeded_count;
    }
    ingest_tracker_set_fact_keys(t, facts);
    cJSON_Delete(facts);
    tr_store_incident_free(incident);
    return rc;
}

/* ------------------------------------------------------------ owners */

static uint32_t hash32(const char *s)
{
    uint64_t h = hash64(s);

    return (uint32_t)(h ^ (h >> 32));
}

static int owner_key(char *buf, size_t size, const char *ns, const char *kind, const char *name)
{
    int n = snprintf(buf, size, "%s/%s/%s", ns, kind, name);

    return n < 0 || (size_t)n >= size ? -1 : 0;
}

owner_state *ingest_owner_find(const tr_kube_ingest *ingest, const char *ns, const char *kind,
                               const char *name)
{
    char key[3 * TR_KUBE_NAME_MAX + 8];
    owner_state *o;
    uint32_t h;

    if (ingest->bucket_count == 0 || owner_key(key, sizeof(key), ns, kind, name) != 0)
        return NULL;
    h = hash32(key);
    for (o = ingest->buckets[h & (ingest->bucket_count - 1)]; o != NULL; o = o->next) {
        if (o->hash == h && strcmp(o->key, key) == 0)
            return o;
    }
    return NULL;
}

void ingest_owner_free(owner_state *o)
{
    if (o == NULL)
        return;
    for (int c = 0; c < TR_KCLASS_COUNT; c++)
        ingest_tracker_free(o->by_class[c]);
    tr_free(o->key);
    tr_free(o->ns);
    tr_free(o->kind);
    tr_free(o->name);
    tr_free(o);
}

static int owners_grow(tr_kube_ingest *ingest)
{
    size_t count = ingest->bucket_count == 0 ? 64 : ingest->bucket_count * 2;
    owner_state **buckets = tr_calloc(count, sizeof(owner_state *));

    if (buckets == NULL)
        return TR_ENOMEM;
    for (size_t i = 0; i < ingest->bucket_count; i++) {
        owner_state *o = ingest->buckets[i];

        while (o != NULL) {
            owner_state *next = o->next;

            o->next = buckets[o->hash & (count - 1)];
            buckets[o->hash & (count - 1)] = o;
            o = next;
        }
    }
    tr_free(ingest->buckets);
    ingest->buckets = buckets;
    ingest->bucket_count = count;
    return TR_OK;
}

/* The owner's state, created when missing. NULL when full (logged once) or out
 * of memory. */
owner_state *ingest_owner_get(tr_kube_ingest *ingest, const char *ns, const char *kind,
                              const char *name)
{
    char key[3 * TR_KUBE_NAME_MAX + 8];
    owner_state *o = ingest_owner_find(ingest, ns, kind, name);
    size_t b;

    if (o != NULL)
        return o;
    if (ingest->owner_count >= ingest->opt.max_incidents) {
        if (!ingest->full_logged) {
            tr_log_warn(MOD,
                        "%zu owners with incidents tracked: new ones are written without "
                        "pod merging or automatic resolution",
                        ingest->owner_count);
            ingest->full_logged = 1;
        }
        return NULL;
    }
    if (owner_key(key, sizeof(key), ns, kind, name) != 0)
        return NULL;
    if (ingest->owner_count >= ingest->bucket_count * 3 / 4 && owners_grow(ingest) != TR_OK)
        return NULL;
    o = tr_calloc(1, sizeof(*o));
    if (o == NULL)
        return NULL;
    o->key = tr_strdup(key);
    o->ns = tr_strdup(ns);
    o->kind = tr_strdup(kind);
    o->name = tr_strdup(name);
    if (o->key == NULL || o->ns == NULL || o->kind == NULL || o->name == NULL) {
        ingest_owner_free(o);
        return NULL;
    }
    o->hash = hash32(key);
    b = o->hash & (ingest->bucket_count - 1);
    o->next = ingest->buckets[b];
    ingest->buckets[b] = o;
    ingest->owner_count++;
    return o;
}

tracker *ingest_tracker_get(tr_kube_ingest *ingest, owner_state *o, int failure_class,
                            tr_error *err, int *rc)
{
    tracker *t = o->by_class[failure_class];

    *rc = TR_OK;
    if (t != NULL)
        return t;
    t = tr_calloc(1, sizeof(*t));
    if (t != NULL)
        t->fingerprint =
            tr_kube_fingerprint(ingest->cluster, o->ns, o->kind, o->name, failure_class);
    if (t == NULL || t->fingerprint == NULL) {
        ingest_tracker_free(t);
        *rc = tr_error_set(err, TR_ENOMEM, "kube ingest: out of memory");
        return NULL;
    }
    t->failure_class = failure_class;
    *rc = tracker_seed(ingest, t, err);
    if (*rc != TR_OK) {
        ingest_tracker_free(t);
        return NULL;
    }
    o->by_class[failure_class] = t;
    return t;
}

/* facts = the finding's facts + the tracker's pods and pod_count; caller frees
 * with tr_free. */
char *ingest_facts_json(const tr_kube_finding *f, const tracker *t)
{
    cJSON *facts = cJSON_Duplicate(f->facts, 1);
    cJSON *pods;
    char *text = NULL, *out;

    if (facts == NULL)
        return NULL;
    if (t != NULL && t->pod_names > 0) {
        pods = cJSON_AddArrayToObject(facts, "pods");
        for (size_t i = 0; pods != NULL && i < t->pod_names; i++) {
            cJSON *name = cJSON_CreateString(t->pods[i]);

            if (name == NULL || !cJSON_AddItemToArray(pods, name)) {
                cJSON_Delete(name);
                pods = NULL;
            }
        }
        if (pods == NULL ||
            cJSON_AddNumberToObject(facts, "pod_count", (double)t->pod_count) == NULL)
            goto cleanup;
    } else if (f->pod_scoped) {
        if ((pods = cJSON_AddArrayToObject(facts, "pods")) == NULL ||
            !cJSON_AddItemToArray(pods, cJSON_CreateString(f->object_name)) ||
            cJSON_AddNumberToObject(facts, "pod_count", 1) == NULL)
            goto cleanup;
    }
    text = cJSON_PrintUnformatted(facts);
cleanup:
    cJSON_Delete(facts);
    if (text == NULL)
        return NULL;
    /* cJSON allocates through tr_malloc too (tr_alloc_install), but say what we
     * hand out. */
    out = tr_strdup(text);
    cJSON_free(text);
    return out;
}
