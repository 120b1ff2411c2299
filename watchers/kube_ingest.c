/*
 * kube_ingest.c - cache → classify → store, with incident trackers.
 *
 * A tracker is the in-memory shadow of one incident (one owner, one class):
 * its id, whether it is resolved (and when), since when its owner has looked
 * healthy, when it was last written, and the pods that joined it. Trackers
 * hang off an owner entry ("ns/Kind/name"), kept in a bounded hash map.
 *
 * Why the shadow exists:
 * - facts.pods/pod_count must grow across observations, but the store
 *   replaces facts on every observation: the tracker merges.
 * - A storm of 20k events must not be 20k SQLite transactions: repeats are
 *   coalesced (written when a pod joins, or every min_update_interval_ms).
 * - Recovery needs memory across objects: "all pods Ready for 10 minutes".
 * - After a restart, relisted Events and lastState terminations describe
 *   the past: a signal dated before the incident's resolution is stale and
 *   must not reopen it. The tracker is seeded from the store when created,
 *   so this holds across restarts too.
 */
#include "kube_ingest.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "log.h"

#define MOD "kube_ingest"
#define PODS_LISTED 20      /* facts.pods names, per docs/incident-facts.md */
#define POD_HASHES_MAX 4096 /* distinct pods counted exactly up to this */
#define FACT_KEYS_MAX 32    /* facts keys remembered per incident (a finding has ~10) */
#define SEED_SCAN_MAX                                                                              \
    100000 /* incidents read at start looking for open ones                                        \
            */

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

void tr_kube_ingest_options_default(tr_kube_ingest_options *o)
{
    memset(o, 0, sizeof(*o));
    o->cluster = "default";
    o->dedup_window_ms = 30 * 60 * 1000;
    o->recovery_hold_ms = 10 * 60 * 1000;
    o->min_update_interval_ms = 30 * 1000;
    o->max_incidents = 10000;
    tr_kube_classify_options_default(&o->classify);
}

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
static void tracker_set_fact_keys(tracker *t, const cJSON *facts)
{
    const cJSON *item;

    t->fact_key_count = 0;
    cJSON_ArrayForEach (item, facts) {
        if (item->string != NULL && t->fact_key_count < FACT_KEYS_MAX)
            t->fact_keys[t->fact_key_count++] = fact_key_hash(item->string);
    }
}

/* 1 when facts hold a key the incident's facts lack: the finding says more, write it. */
static int tracker_facts_news(const tracker *t, const cJSON *facts)
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
static int tracker_add_pod(tracker *t, const char *pod)
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

static void tracker_free(tracker *t)
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
        if (cJSON_IsString(item) && tracker_add_pod(t, item->valuestring) < 0) {
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
    tracker_set_fact_keys(t, facts);
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

static owner_state *owner_find(const tr_kube_ingest *ingest, const char *ns, const char *kind,
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

static void owner_free(owner_state *o)
{
    if (o == NULL)
        return;
    for (int c = 0; c < TR_KCLASS_COUNT; c++)
        tracker_free(o->by_class[c]);
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
static owner_state *owner_get(tr_kube_ingest *ingest, const char *ns, const char *kind,
                              const char *name)
{
    char key[3 * TR_KUBE_NAME_MAX + 8];
    owner_state *o = owner_find(ingest, ns, kind, name);
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
        owner_free(o);
        return NULL;
    }
    o->hash = hash32(key);
    b = o->hash & (ingest->bucket_count - 1);
    o->next = ingest->buckets[b];
    ingest->buckets[b] = o;
    ingest->owner_count++;
    return o;
}

static tracker *tracker_get(tr_kube_ingest *ingest, owner_state *o, int failure_class,
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
        tracker_free(t);
        *rc = tr_error_set(err, TR_ENOMEM, "kube ingest: out of memory");
        return NULL;
    }
    t->failure_class = failure_class;
    *rc = tracker_seed(ingest, t, err);
    if (*rc != TR_OK) {
        tracker_free(t);
        return NULL;
    }
    o->by_class[failure_class] = t;
    return t;
}

/* ------------------------------------------------------------ store writes */

static void notify(tr_kube_ingest *ingest, int64_t incident_id, int outcome)
{
    if (ingest->opt.on_incident != NULL)
        ingest->opt.on_incident(incident_id, outcome, ingest->opt.userdata);
}

/* facts = the finding's facts + the tracker's pods and pod_count; caller frees
 * with tr_free. */
static char *facts_json(const tr_kube_finding *f, const tracker *t)
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

static int write_observation(tr_kube_ingest *ingest, const tr_kube_finding *f, tracker *t,
                             const char *resource, const cJSON *object, int64_t now_ms,
                             tr_error *err)
{
    const char *class_name = tr_kube_class_name(f->failure_class);
    const char *rv = tr_kube_obj_str(object, "metadata.resourceVersion");
    const char *obj_name = tr_kube_obj_str(object, "metadata.name");
    char title[3 * TR_KUBE_NAME_MAX], raw_ref[3 * TR_KUBE_NAME_MAX];
    tr_store_observation obs;
    tr_store_obs_result result = {0};
    char *facts = facts_json(f, t);
    int rc;

    if (facts == NULL)
        return tr_error_set(err, TR_ENOMEM, "kube ingest: out of memory building facts");
    snprintf(title, sizeof(title), "%s: %s %s%s%s", class_name, f->owner_kind, f->namespace,
             f->namespace[0] != '\0' ? "/" : "", f->owner_name);
    snprintf(raw_ref, sizeof(raw_ref), "%s/%s/%s@%s", resource, f->namespace,
             obj_name != NULL ? obj_name : "", rv != NULL ? rv : "");
    memset(&obs, 0, sizeof(obs));
    obs.fingerprint = f->fingerprint;
    obs.source = "kubernetes";
    obs.cluster = ingest->cluster;
    obs.namespace = f->namespace;
    obs.kind = f->object_kind;
    obs.name = f->object_name;
    obs.owner_kind = f->owner_kind;
    obs.owner_name = f->owner_name;
    obs.failure_class = class_name;
    obs.title = title;
    obs.message = f->message;
    obs.raw_ref = raw_ref;
    obs.facts_json = facts;
    obs.observed_ms = now_ms;
    rc = tr_store_observe(ingest->store, &obs, ingest->opt.dedup_window_ms, now_ms, &result, err);
    tr_free(facts);
    if (rc != TR_OK)
        return rc;
    ingest->stats.observations++;
    if (t != NULL) {
        t->incident_id = result.incident_id;
        t->resolved = 0;
        t->resolved_at_ms = 0;
        t->last_write_ms = now_ms;
        t->dirty = 0;
        tracker_set_fact_keys(t, f->facts);
    }
    switch (result.outcome) {
    case TR_OBS_CREATED:
        ingest->stats.created++;
        (void)tr_metric_inc(ingest->m_observations, 1, "created");
        notify(ingest, result.incident_id, TR_OBS_CREATED);
        break;
    case TR_OBS_REOPENED:
        ingest->stats.reopened++;
        (void)tr_metric_inc(ingest->m_observations, 1, "reopened");
        notify(ingest, result.incident_id, TR_OBS_REOPENED);
        break;
    default:
        (void)tr_metric_inc(ingest->m_observations, 1, "updated");
    }
    return TR_OK;
}

/*
 * Write f into t's live incident keeping the facts earlier signals gave that f
 * lacks: the Job controller's BackoffLimitExceeded Event says less than the
 * Job's status, a kubelet "Error: ErrImagePull" Event less than the pod's
 * status, and whichever the watches deliver first must not hide the other.
 */
static int write_merged(tr_kube_ingest *ingest, const tr_kube_finding *f, tracker *t,
                        const char *resource, const cJSON *object, int64_t now_ms,
                        tr_error *err)
{
    tr_store_incident *incident = NULL;
    tr_kube_finding merged = *f;
    cJSON *facts = NULL;
    const cJSON *item;
    int rc = tr_store_incident_get(ingest->store, t->incident_id, &incident, err);

    if (rc == TR_ENOTFOUND) {
        tr_error_clear(err);
        return write_observation(ingest, f, t, resource, object, now_ms, err);
    }
    if (rc != TR_OK)
        return rc;
    if (incident->facts_json != NULL)
        facts = cJSON_Parse(incident->facts_json);
    tr_store_incident_free(incident);
    if (!cJSON_IsObject(facts)) {
        cJSON_Delete(facts);
        facts = cJSON_CreateObject();
    }
    if (facts == NULL)
        return tr_error_set(err, TR_ENOMEM, "kube ingest: out of memory merging facts");
    cJSON_DeleteItemFromObjectCaseSensitive(facts, "pods");
    cJSON_DeleteItemFromObjectCaseSensitive(facts, "pod_count");
    cJSON_ArrayForEach (item, f->facts) {
        cJSON *copy = item->string != NULL ? cJSON_Duplicate(item, 1) : NULL;
        int added = 0;

        if (item->string == NULL)
            continue;
        if (copy != NULL)
            added = cJSON_GetObjectItemCaseSensitive(facts, item->string) != NULL
                        ? cJSON_ReplaceItemInObjectCaseSensitive(facts, item->string, copy)
                        : cJSON_AddItemToObject(facts, item->string, copy);
        if (!added) {
            cJSON_Delete(copy);
            rc = tr_error_set(err, TR_ENOMEM, "kube ingest: out of memory merging facts");
            break;
        }
    }
    merged.facts = facts;
    if (rc == TR_OK)
        rc = write_observation(ingest, &merged, t, resource, object, now_ms, err);
    cJSON_Delete(facts);
    return rc;
}

static int handle_finding(tr_kube_ingest *ingest, const tr_kube_finding *f, const char *resource,
                          const cJSON *object, int64_t now_ms, tr_error *err)
{
    owner_state *o;
    tracker *t;
    int rc, new_pod = 0;

    if (ingest->opt.skip_owner != NULL &&
        ingest->opt.skip_owner(f->namespace, f->owner_kind, f->owner_name, ingest->opt.userdata))
        return TR_OK;
    o = owner_get(ingest, f->namespace, f->owner_kind, f->owner_name);
    ingest->stats.findings++;
    (void)tr_metric_inc(ingest->m_findings, 1, tr_kube_class_name(f->failure_class));
    if (o == NULL) {
        ingest->stats.untracked++;
        return write_observation(ingest, f, NULL, resource, object, now_ms, err);
    }
    t = tracker_get(ingest, o, f->failure_class, err, &rc);
    if (t == NULL)
        return rc;
    if (t->resolved && f->signal_ms != 0 && f->signal_ms <= t->resolved_at_ms) {
        /* An Event or a lastState from before the resolution: history, not a
         * relapse. */
        ingest->stats.stale++;
        (void)tr_metric_inc(ingest->m_observations, 1, "stale");
        return TR_OK;
    }
    if (f->signal_ms == 0 || f->signal_ms >= t->healthy_since_ms)
        t->healthy_since_ms = 0;
    if (f->pod_scoped) {
        new_pod = tracker_add_pod(t, f->object_name);
        if (new_pod < 0)
            return tr_error_set(err, TR_ENOMEM, "kube ingest: out of memory");
    }
    /* Every store write is a durable (fsynced) transaction: a live incident absorbs repeats
     * and new pods in memory, and tr_kube_ingest_tick writes them at most every
     * min_update_interval_ms. Opening and reopening are written (and announced) at once. */
    (void)new_pod;
    if (t->incident_id != 0 && !t->resolved &&
        now_ms - t->last_write_ms < ingest->opt.min_update_interval_ms &&
        !tracker_facts_news(t, f->facts)) {
        ingest->stats.coalesced++;
        t->dirty = 1;
        (void)tr_metric_inc(ingest->m_observations, 1, "coalesced");
        return TR_OK;
    }
    if (t->incident_id != 0 && !t->resolved)
        return write_merged(ingest, f, t, resource, object, now_ms, err);
    return write_observation(ingest, f, t, resource, object, now_ms, err);
}

/* ------------------------------------------------------------ recovery */

static int resolve(tr_kube_ingest *ingest, tracker *t, int64_t now_ms, tr_error *err)
{
    tr_store_transition tr;
    int rc;

    memset(&tr, 0, sizeof(tr));
    tr.to = TR_INCIDENT_RESOLVED;
    tr.event = "incident.resolved";
    rc = tr_store_incident_transition(ingest->store, t->incident_id, &tr, now_ms, err);
    if (rc == TR_ECONFLICT || rc == TR_ENOTFOUND) {
        /* Already resolved (by a person, or another path): nothing to announce. */
        tr_error_clear(err);
        t->resolved = 1;
        t->resolved_at_ms = now_ms;
        return TR_OK;
    }
    if (rc != TR_OK)
        return rc;
    t->resolved = 1;
    t->resolved_at_ms = now_ms;
    t->healthy_since_ms = 0;
    ingest->stats.resolved++;
    (void)tr_metric_inc(ingest->m_resolutions, 1, tr_kube_class_name(t->failure_class));
    tr_log_info(MOD, "incident %lld resolved: %s recovered", (long long)t->incident_id,
                t->fingerprint);
    notify(ingest, t->incident_id, TR_KUBE_INCIDENT_RESOLVED);
    return TR_OK;
}

static int owner_check(tr_kube_ingest *ingest, owner_state *o, int64_t now_ms, tr_error *err)
{
    for (int c = 1; c < TR_KCLASS_COUNT; c++) {
        tracker *t = o->by_class[c];
        int rc;

        if (t == NULL || t->resolved || t->incident_id == 0 || t->healthy_since_ms == 0 ||
            now_ms - t->healthy_since_ms < ingest->opt.recovery_hold_ms)
            continue;
        rc = resolve(ingest, t, now_ms, err);
        if (rc != TR_OK)
            return rc;
    }
    return TR_OK;
}

static int apply_health(tr_kube_ingest *ingest, const char *ns, const char *kind, const char *name,
                        uint32_t classes, int healthy, int64_t now_ms, tr_error *err)
{
    owner_state *o = owner_find(ingest, ns, kind, name);

    if (o == NULL)
        return TR_OK;
    for (int c = 1; c < TR_KCLASS_COUNT; c++) {
        tracker *t = o->by_class[c];

        if (t == NULL || t->resolved || !(classes & TR_KCLASS_BIT(c)))
            continue;
        if (!healthy)
            t->healthy_since_ms = 0;
        else if (t->healthy_since_ms == 0)
            t->healthy_since_ms = now_ms;
    }
    return owner_check(ingest, o, now_ms, err);
}

/* A pod left the cache: its owner may now be all healthy, or gone. */
static int pod_gone(tr_kube_ingest *ingest, const tr_kube_owner *owner, const char *ns,
                    int64_t now_ms, tr_error *err)
{
    size_t pods, unhealthy;

    tr_kube_cache_owner_pods(ingest->cache, ns, owner->kind, owner->name, &pods, &unhealthy);
    if (pods == 0 && !tr_kube_cache_synced(ingest->cache, TR_KUBE_RES_PODS))
        return TR_OK;
    return apply_health(ingest, ns, owner->kind, owner->name, TR_KCLASS_POD_MASK, unhealthy == 0,
                        now_ms, err);
}

static const char *owner_kind_of(int resource)
{
    switch (resource) {
    case TR_KUBE_RES_DEPLOYMENTS:
        return "Deployment";
    case TR_KUBE_RES_STATEFULSETS:
        return "StatefulSet";
    case TR_KUBE_RES_DAEMONSETS:
        return "DaemonSet";
    case TR_KUBE_RES_JOBS:
        return "Job";
    case TR_KUBE_RES_CRONJOBS:
        return "CronJob";
    case TR_KUBE_RES_NODES:
        return "Node";
    case TR_KUBE_RES_PVCS:
        return "PersistentVolumeClaim";
    case TR_KUBE_RES_ARGO_APPS:
        return "Application";
    case TR_KUBE_RES_FLUX_KS:
        return "Kustomization";
    case TR_KUBE_RES_FLUX_HR:
        return "HelmRelease";
    default:
        return NULL;
    }
}

/* ------------------------------------------------------------ ingest */

static int is_type(const char *type, const char *value)
{
    return type != NULL && strcmp(type, value) == 0;
}

int tr_kube_ingest_object(tr_kube_ingest *ingest, const char *resource, const char *type,
                          const cJSON *object, int64_t now_ms, tr_error *err)
{
    int res = tr_kube_resource_parse(resource);
    int deleted = is_type(type, "DELETED");
    const char *ns = tr_kube_obj_str(object, "metadata.namespace");
    const char *name = tr_kube_obj_str(object, "metadata.name");
    const char *owner_kind = owner_kind_of(res);
    tr_kube_pod_info before;
    tr_kube_result result;
    uint32_t signature = 0;
    int rc, had_pod = 0, skip_findings = 0;

    if (res == TR_KUBE_RES_UNKNOWN || is_type(type, "BOOKMARK") || is_type(type, "ERROR") ||
        !cJSON_IsObject(object) || name == NULL)
        return TR_OK;
    ns = ns != NULL ? ns : "";
    ingest->stats.objects++;
    if (res == TR_KUBE_RES_PODS)
        had_pod = tr_kube_cache_pod_get(ingest->cache, ns, name, &before) == TR_OK;
    rc = tr_kube_cache_apply(ingest->cache, res, deleted, object, now_ms);
    if (rc == TR_ENOMEM)
        return tr_error_set(err, rc, "kube ingest: out of memory caching %s", resource);
    if (deleted) {
        if (res == TR_KUBE_RES_PODS && had_pod)
            return pod_gone(ingest, &before.owner, ns, now_ms, err);
        /* A deleted workload, node or app has no failure left to fix. */
        if (owner_kind != NULL)
            return apply_health(ingest, ns, owner_kind, name, TR_KCLASS_ALL_MASK, 1, now_ms, err);
        return TR_OK;
    }
    rc = tr_kube_classify(&ingest->opt.classify, ingest->cache, ingest->cluster, res, object,
                          now_ms, &result);
    if (rc != TR_OK) {
        tr_kube_result_dispose(&result);
        return rc == TR_ENOMEM ? tr_error_set(err, rc, "kube ingest: out of memory") : TR_OK;
    }
    if (res == TR_KUBE_RES_PODS) {
        /* A pod is re-sent on every status change: report only what changed. */
        for (size_t i = 0; i < result.finding_count; i++)
            signature = signature * 31u + result.findings[i].detail_hash;
        if (result.finding_count > 0 && signature == 0)
            signature = 1;
        skip_findings = had_pod && signature == before.signature;
        tr_kube_cache_pod_set_signature(ingest->cache, ns, name, signature);
    }
    for (size_t i = 0; rc == TR_OK && !skip_findings && i < result.finding_count; i++)
        rc = handle_finding(ingest, &result.findings[i], tr_kube_resource_name(res), object, now_ms,
                            err);
    for (size_t i = 0; rc == TR_OK && i < result.health_count; i++) {
        const tr_kube_health *h = &result.health[i];

        rc = apply_health(ingest, h->namespace, h->owner_kind, h->owner_name, h->classes,
                          h->healthy, now_ms, err);
    }
    /* A pod that moved to another owner (late ReplicaSet) leaves the old one's
     * count. */
    if (rc == TR_OK && had_pod && res == TR_KUBE_RES_PODS) {
        tr_kube_pod_info after;

        if (tr_kube_cache_pod_get(ingest->cache, ns, name, &after) == TR_OK &&
            (strcmp(after.owner.kind, before.owner.kind) != 0 ||
             strcmp(after.owner.name, before.owner.name) != 0))
            rc = pod_gone(ingest, &before.owner, ns, now_ms, err);
    }
    tr_kube_result_dispose(&result);
    return rc;
}

void tr_kube_ingest_sync_begin(tr_kube_ingest *ingest, const char *resource)
{
    if (ingest != NULL)
        tr_kube_cache_sync_begin(ingest->cache, tr_kube_resource_parse(resource));
}

int tr_kube_ingest_sync_end(tr_kube_ingest *ingest, const char *resource, int64_t now_ms,
                            tr_error *err)
{
    size_t dropped;

    if (ingest == NULL)
        return TR_EINVAL;
    dropped = tr_kube_cache_sync_end(ingest->cache, tr_kube_resource_parse(resource));
    if (dropped > 0)
        tr_log_info(MOD, "resync of %s dropped %zu objects deleted meanwhile", resource, dropped);
    return tr_kube_ingest_tick(ingest, now_ms, err);
}

/* Write the coalesced repeats of an incident: its stored facts with the current
 * pods. */
static int flush(tr_kube_ingest *ingest, owner_state *o, tracker *t, int64_t now_ms, tr_error *err)
{
    tr_store_incident *incident = NULL;
    tr_kube_finding f;
    int rc = tr_store_incident_get(ingest->store, t->incident_id, &incident, err);

    if (rc == TR_ENOTFOUND) {
        tr_error_clear(err);
        t->dirty = 0;
        return TR_OK;
    }
    if (rc != TR_OK)
        return rc;
    memset(&f, 0, sizeof(f));
    f.failure_class = t->failure_class;
    f.fingerprint = t->fingerprint;
    f.namespace = o->ns;
    f.object_kind = o->kind;
    f.object_name = o->name;
    f.owner_kind = o->kind;
    f.owner_name = o->name;
    f.message = (char *)(incident->message != NULL ? incident->message : "");
    f.facts = incident->facts_json != NULL ? cJSON_Parse(incident->facts_json) : NULL;
    if (f.facts == NULL)
        f.facts = cJSON_CreateObject();
    cJSON_DeleteItemFromObjectCaseSensitive(f.facts, "pods");
    cJSON_DeleteItemFromObjectCaseSensitive(f.facts, "pod_count");
    rc = f.facts == NULL ? tr_error_set(err, TR_ENOMEM, "kube ingest: out of memory")
                         : write_observation(ingest, &f, t, "incidents", NULL, now_ms, err);
    cJSON_Delete(f.facts);
    tr_store_incident_free(incident);
    return rc;
}

int tr_kube_ingest_tick(tr_kube_ingest *ingest, int64_t now_ms, tr_error *err)
{
    int pods_synced;

    if (ingest == NULL)
        return TR_EINVAL;
    pods_synced = tr_kube_cache_synced(ingest->cache, TR_KUBE_RES_PODS);
    for (size_t b = 0; b < ingest->bucket_count; b++) {
        owner_state **slot = &ingest->buckets[b];

        while (*slot != NULL) {
            owner_state *o = *slot;
            size_t pods = 0, unhealthy = 0, live = 0;
            int rc;

            if (pods_synced)
                tr_kube_cache_owner_pods(ingest->cache, o->ns, o->kind, o->name, &pods, &unhealthy);
            for (int c = 1; c < TR_KCLASS_COUNT; c++) {
                tracker *t = o->by_class[c];

                if (t == NULL)
                    continue;
                if (t->dirty && !t->resolved &&
                    now_ms - t->last_write_ms >= ingest->opt.min_update_interval_ms) {
                    rc = flush(ingest, o, t, now_ms, err);
                    if (rc != TR_OK)
                        return rc;
                }
                /* Pods all gone (deleted, scaled to zero): that failure is over. */
                if (pods_synced && pods == 0 && (TR_KCLASS_POD_MASK & TR_KCLASS_BIT(c)) &&
                    !t->resolved && t->healthy_since_ms == 0)
                    t->healthy_since_ms = now_ms;
                /* Resolved trackers are rebuilt from the store when needed again. */
                if (t->resolved && now_ms - t->resolved_at_ms >= ingest->opt.recovery_hold_ms) {
                    tracker_free(t);
                    o->by_class[c] = NULL;
                    continue;
                }
                live++;
            }
            rc = owner_check(ingest, o, now_ms, err);
            if (rc != TR_OK)
                return rc;
            if (live == 0) {
                *slot = o->next;
                owner_free(o);
                ingest->owner_count--;
                continue;
            }
            slot = &o->next;
        }
    }
    return TR_OK;
}

/* ------------------------------------------------------------ lifecycle */

/* Track the live, unresolved incidents of this cluster so that they can
 * resolve. */
static int seed_open_incidents(tr_kube_ingest *ingest, tr_error *err)
{
    tr_store_incident_filter filter;
    size_t scanned = 0, loaded = 0;
    char prefix[TR_KUBE_NAME_MAX + 8];

    snprintf(prefix, sizeof(prefix), "k8s/%s/", ingest->cluster);
    memset(&filter, 0, sizeof(filter));
    filter.source = "kubernetes";
    filter.limit = TR_STORE_LIST_MAX;
    do {
        tr_store_incident_list *list = NULL;
        int rc = tr_store_incident_list_get(ingest->store, &filter, &list, err);

        if (rc != TR_OK)
            return rc;
        for (size_t i = 0; i < list->count; i++) {
            const tr_store_incident *inc = &list->items[i];
            int cls = tr_kube_class_parse(inc->failure_class);
            owner_state *o;

            if (!inc->live || inc->state == TR_INCIDENT_RESOLVED || cls == TR_KCLASS_NONE ||
                inc->fingerprint == NULL ||
                strncmp(inc->fingerprint, prefix, strlen(prefix)) != 0 || inc->kind == NULL ||
                inc->name == NULL)
                continue;
            o = owner_get(ingest, inc->namespace != NULL ? inc->namespace : "", inc->kind,
                          inc->name);
            if (o != NULL && o->by_class[cls] == NULL &&
                tracker_get(ingest, o, cls, err, &rc) != NULL)
                loaded++;
            if (rc != TR_OK) {
                tr_store_incident_list_free(list);
                return rc;
            }
        }
        scanned += list->count;
        filter.before_id = list->next_before_id;
        tr_store_incident_list_free(list);
    } while (filter.before_id != 0 && scanned < SEED_SCAN_MAX);
    if (loaded > 0)
        tr_log_info(MOD, "tracking %zu open kubernetes incidents from the store", loaded);
    return TR_OK;
}

/*
 * All members zero: the caller left options.classify alone and means "the
 * defaults". Compared member by member because the struct has padding (after
 * the ints), which a copied or member-by-member built struct need not zero.
 * Keep in step with tr_kube_classify_options.
 */
static int classify_options_unset(const tr_kube_classify_options *o)
{
    return o->unhealthy_min_count == 0 && o->restart_min_count == 0 &&
           o->oom_min_restarts == 0 && o->image_pull_min_failures == 0 &&
           o->mount_min_count == 0 && o->scheduling_min_count == 0 &&
           o->provisioning_min_count == 0 && o->restart_recent_ms == 0 &&
           o->message_max_bytes == 0;
}

int tr_kube_ingest_new(tr_kube_ingest **out, tr_store *store, const tr_kube_ingest_options *options,
                       int64_t now_ms, tr_error *err)
{
    tr_kube_ingest *ingest;
    int rc;

    (void)now_ms;
    *out = NULL;
    if (store == NULL)
        return tr_error_set(err, TR_EINVAL, "kube ingest: no store");
    ingest = tr_calloc(1, sizeof(*ingest));
    if (ingest == NULL)
        return tr_error_set(err, TR_ENOMEM, "kube ingest: out of memory");
    ingest->store = store;
    tr_kube_ingest_options_default(&ingest->opt);
    if (options != NULL) {
        ingest->opt = *options;
        /* Zeroed sub-structs and fields mean "the default". */
        if (classify_options_unset(&options->classify))
            tr_kube_classify_options_default(&ingest->opt.classify);
        if (ingest->opt.cluster == NULL || ingest->opt.cluster[0] == '\0')
            ingest->opt.cluster = "default";
        if (ingest->opt.dedup_window_ms <= 0)
            ingest->opt.dedup_window_ms = 30 * 60 * 1000;
        if (ingest->opt.recovery_hold_ms < 0)
            ingest->opt.recovery_hold_ms = 0;
        if (ingest->opt.min_update_interval_ms < 0)
            ingest->opt.min_update_interval_ms = 0;
        if (ingest->opt.max_incidents == 0)
            ingest->opt.max_incidents = 10000;
        if (ingest->opt.classify.message_max_bytes == 0)
            ingest->opt.classify.message_max_bytes = 2048;
    }
    ingest->cluster = tr_strdup(ingest->opt.cluster);
    ingest->opt.cluster = ingest->cluster;
    rc = ingest->cluster == NULL ? tr_error_set(err, TR_ENOMEM, "kube ingest: out of memory")
                                 : tr_kube_cache_new(&ingest->cache, &ingest->opt.cache, err);
    if (rc == TR_OK && ingest->opt.metrics != NULL) {
        ingest->m_findings =
            tr_metrics_counter(ingest->opt.metrics, "triaged_kube_findings",
                               "Kubernetes failure findings by class", "class", NULL);
        ingest->m_observations =
            tr_metrics_counter(ingest->opt.metrics, "triaged_kube_observations",
                               "Kubernetes findings by what became of them "
                               "(created, updated, reopened, "
                               "coalesced, stale)",
                               "outcome", NULL);
        ingest->m_resolutions =
            tr_metrics_counter(ingest->opt.metrics, "triaged_kube_resolutions",
                               "Incidents resolved by recovery, by class", "class", NULL);
    }
    if (rc == TR_OK)
        rc = seed_open_incidents(ingest, err);
    if (rc != TR_OK) {
        tr_kube_ingest_free(ingest);
        return rc;
    }
    *out = ingest;
    return TR_OK;
}

void tr_kube_ingest_free(tr_kube_ingest *ingest)
{
    if (ingest == NULL)
        return;
    for (size_t b = 0; b < ingest->bucket_count; b++) {
        owner_state *o = ingest->buckets[b];

        while (o != NULL) {
            owner_state *next = o->next;

            owner_free(o);
            o = next;
        }
    }
    tr_free(ingest->buckets);
    tr_kube_cache_free(ingest->cache);
    tr_free(ingest->cluster);
    tr_free(ingest);
}

void tr_kube_ingest_stats_get(const tr_kube_ingest *ingest, tr_kube_ingest_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (ingest == NULL)
        return;
    *out = ingest->stats;
    out->owners = ingest->owner_count;
    tr_kube_cache_stats_get(ingest->cache, &out->cache);
}

const tr_kube_cache *tr_kube_ingest_cache(const tr_kube_ingest *ingest)
{
    return ingest != NULL ? ingest->cache : NULL;
}
