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
 *
 * Trackers and the owner map live in kube_ingest_track.c (shared through
 * kube_ingest_internal.h); this file decides when to write, resolve and flush.
 */
#include "kube_ingest.h"
#include "kube_ingest_internal.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "log.h"

#define MOD "kube_ingest"
#define SEED_SCAN_MAX                                                                              \
    100000 /* incidents read at start looking for open ones                                        \
            */

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

/* ------------------------------------------------------------ store writes */

static void notify(tr_kube_ingest *ingest, int64_t incident_id, int outcome)
{
    if (ingest->opt.on_incident != NULL)
        ingest->opt.on_incident(incident_id, outcome, ingest->opt.userdata);
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
    char *facts = ingest_facts_json(f, t);
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
        ingest_tracker_set_fact_keys(t, f->facts);
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
    o = ingest_owner_get(ingest, f->namespace, f->owner_kind, f->owner_name);
    ingest->stats.findings++;
    (void)tr_metric_inc(ingest->m_findings, 1, tr_kube_class_name(f->failure_class));
    if (o == NULL) {
        ingest->stats.untracked++;
        return write_observation(ingest, f, NULL, resource, object, now_ms, err);
    }
    t = ingest_tracker_get(ingest, o, f->failure_class, err, &rc);
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
        new_pod = ingest_tracker_add_pod(t, f->object_name);
        if (new_pod < 0)
            return tr_error_set(err, TR_ENOMEM, "kube ingest: out of memory");
    }
    /* Every store write is a durable (fsynced) transaction: a live incident absorbs repeats
     * and new pods in memory, and tr_kube_ingest_tick writes them at most every
     * min_update_interval_ms. Opening and reopening are written (and announced) at once. */
    (void)new_pod;
    if (t->incident_id != 0 && !t->resolved &&
        now_ms - t->last_write_ms < ingest->opt.min_update_interval_ms &&
        !ingest_tracker_facts_news(t, f->facts)) {
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
    owner_state *o = ingest_owner_find(ingest, ns, kind, name);

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
                    ingest_tracker_free(t);
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
                ingest_owner_free(o);
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
            o = ingest_owner_get(ingest, inc->namespace != NULL ? inc->namespace : "", inc->kind,
                          inc->name);
            if (o != NULL && o->by_class[cls] == NULL &&
                ingest_tracker_get(ingest, o, cls, err, &rc) != NULL)
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

            ingest_owner_free(o);
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
