/*
 * kube_watcher.c - wiring of client, reflectors and ingest.
 *
 * Each watched resource is a slot: its candidate API versions (newest
 * first), whether it needs discovery (CRDs and versions that moved), and
 * once started its reflector. Ingest errors (store failures) are logged and
 * counted; the object is given again at the next event or relist, and the
 * store makes that idempotent.
 */
#include "kube_watcher.h"

#include "tf_kube.h"
#include "alloc.h"
#include "kube_client.h"
#include "kube_ingest.h"
#include "kube_reflector.h"
#include "log.h"

#include <string.h>
#include <time.h>

#define TICK_MS 5000
#define MAX_VERSIONS 3

typedef struct resource_spec {
    const char *group;
    const char *versions[MAX_VERSIONS]; /* tried in order when discovered */
    const char *resource;
    const char *field_selector;
    int cluster_scoped;
    int discover;                       /* 0 = always served (core, apps, batch/v1) */
} resource_spec;

static const resource_spec specs[] = {
    { "", { "v1" }, "events", "type=Warning", 0, 0 },
    { "", { "v1" }, "pods", NULL, 0, 0 },
    { "", { "v1" }, "nodes", NULL, 1, 0 },
    { "", { "v1" }, "persistentvolumeclaims", NULL, 0, 0 },
    { "apps", { "v1" }, "deployments", NULL, 0, 0 },
    { "apps", { "v1" }, "replicasets", NULL, 0, 0 },
    { "apps", { "v1" }, "statefulsets", NULL, 0, 0 },
    { "apps", { "v1" }, "daemonsets", NULL, 0, 0 },
    { "batch", { "v1" }, "jobs", NULL, 0, 0 },
    /* batch/v1 CronJob arrived in 1.21; older clusters serve v1beta1. */
    { "batch", { "v1", "v1beta1" }, "cronjobs", NULL, 0, 1 },
    { "argoproj.io", { "v1alpha1" }, "applications", NULL, 0, 1 },
    { "kustomize.toolkit.fluxcd.io", { "v1", "v1beta2", "v1beta1" }, "kustomizations", NULL,
      0, 1 },
    { "helm.toolkit.fluxcd.io", { "v2", "v2beta2", "v2beta1" }, "helmreleases", NULL, 0, 1 },
};
#define DEFERRED_MAX 512
#define DEFERRED_MAX_MS 10000
#define SPEC_COUNT (sizeof(specs) / sizeof(specs[0]))

typedef struct slot {
    tr_kube_watcher *watcher;
    const resource_spec *spec;
    int version_index;
    tr_kube_discovery *discovery;
    tr_kube_reflector *reflector;
} slot;

struct tr_kube_watcher {
    uv_loop_t *loop;
    const tr_config *cfg;
    tr_http_client *http;
    tr_store *store;
    tr_health *health;
    tr_metrics *metrics;
    tr_kube_client *client;
    tr_kube_ingest *ingest;
    tr_tf_kube *tf_jobs; /* NULL unless Terraform Jobs are read */
    tr_kube_watcher_incident_cb on_incident;
    void *userdata;
    slot slots[SPEC_COUNT];
    uv_timer_t tick;
    int started_reflectors;
    /* With Terraform Jobs: events and pods wait for the first Job list, so that a relisted
     * failure of a Terraform Job is known as one before its Event is classified. */
    int deferred_pending;
    uint64_t deferred_since_ms;
    int closing;
    /* A burst of watch events is one store batch (one fsync); the incidents it opened are
     * announced once it is committed. */
    int burst_depth;
    int batch_open;
    size_t deferred_count;
    struct {
        int64_t incident_id;
        int outcome;
    } deferred[DEFERRED_MAX];
    unsigned long ingest_errors;
};

static void burst(tr_kube_watcher *w, int begin);
static void start_deferred(tr_kube_watcher *w);
static void note_ingest_error(tr_kube_watcher *w, const char *resource, const tr_error *err);

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* With an include list, objects of other namespaces never reach the ingest. */
static int namespace_wanted(const tr_kube_watcher *w, const cJSON *object)
{
    const tr_config_strlist *only = &w->cfg->kubernetes.namespaces;
    const cJSON *meta, *ns;
    const char *name;
    size_t i;

    if (only->count == 0)
        return 1;
    meta = cJSON_GetObjectItemCaseSensitive(object, "metadata");
    ns = cJSON_GetObjectItemCaseSensitive(meta, "namespace");
    /* Events name the namespace of their object in metadata too. */
    name = cJSON_IsString(ns) ? ns->valuestring : "";
    if (*name == '\0')
        return 1; /* cluster-scoped: nodes */
    for (i = 0; i < only->count; i++)
        if (strcmp(only->items[i], name) == 0)
            return 1;
    return 0;
}

static void burst(tr_kube_watcher *w, int begin)
{
    tr_error err = { 0 };
    size_t i, n;

    if (begin) {
        if (w->burst_depth++ == 0 && !w->closing) {
            if (tr_store_batch_begin(w->store, &err) == TR_OK)
                w->batch_open = 1;
            else
                note_ingest_error(w, "batch", &err);
        }
        return;
    }
    if (w->burst_depth == 0 || --w->burst_depth > 0 || !w->batch_open)
        return;
    w->batch_open = 0;
    if (tr_store_batch_commit(w->store, &err) != TR_OK)
        note_ingest_error(w, "batch", &err);
    /* Callbacks may start a new burst (they do not today); take the list first. */
    n = w->deferred_count;
    w->deferred_count = 0;
    for (i = 0; i < n; i++)
        if (w->on_incident)
            w->on_incident(w->deferred[i].incident_id, w->deferred[i].outcome, w->userdata);
}

static void on_burst(int begin, void *userdata)
{
    slot *s = userdata;

    burst(s->watcher, begin);
}

static void on_sync_begin(void *userdata)
{
    slot *s = userdata;

    tr_kube_ingest_sync_begin(s->watcher->ingest, s->spec->resource);
}

static void note_ingest_error(tr_kube_watcher *w, const char *resource, const tr_error *err)
{
    /* The store is failing: say it once per burst, the counter tells the rest. */
    if (w->ingest_errors++ % 100 == 0)
        tr_log_error("kubernetes", "%s: cannot record: %s (%lu so far)", resource,
                     err->message, w->ingest_errors);
}

static void on_object(tr_kube_event_type type, const cJSON *object, void *userdata)
{
    slot *s = userdata;
    tr_kube_watcher *w = s->watcher;
    tr_error err = { 0 };

    if (!namespace_wanted(w, object))
        return;
    if (w->tf_jobs != NULL && strcmp(s->spec->resource, "jobs") == 0)
        (void)tr_tf_kube_job(w->tf_jobs, object, type == TR_KUBE_DELETED);
    if (tr_kube_ingest_object(w->ingest, s->spec->resource, tr_kube_event_type_name(type),
                              object, wall_ms(), &err) != TR_OK)
        note_ingest_error(w, s->spec->resource, &err);
}

static void on_sync_end(void *userdata)
{
    slot *s = userdata;
    tr_error err = { 0 };

    burst(s->watcher, 1);
    if (tr_kube_ingest_sync_end(s->watcher->ingest, s->spec->resource, wall_ms(), &err) !=
        TR_OK)
        note_ingest_error(s->watcher, s->spec->resource, &err);
    burst(s->watcher, 0);
    if (strcmp(s->spec->resource, "jobs") == 0)
        start_deferred(s->watcher);
}

static void start_reflector(slot *s)
{
    tr_kube_watcher *w = s->watcher;
    const tr_config_kubernetes *k = &w->cfg->kubernetes;
    tr_kube_reflector_options options;
    tr_error err = { 0 };
    int rc;

    memset(&options, 0, sizeof(options));
    options.group = s->spec->group;
    options.version = s->spec->versions[s->version_index];
    options.resource = s->spec->resource;
    if (!s->spec->cluster_scoped) {
        options.exclude_namespaces = (const char *const *)k->exclude_namespaces.items;
        options.exclude_count = k->exclude_namespaces.count;
    }
    options.field_selector = s->spec->field_selector;
    options.health = w->health;
    options.metrics = w->metrics;
    options.callbacks.on_sync_begin = on_sync_begin;
    options.callbacks.on_object = on_object;
    options.callbacks.on_sync_end = on_sync_end;
    options.callbacks.on_burst = on_burst;
    options.userdata = s;
    rc = tr_kube_reflector_new(&s->reflector, w->loop, w->client, w->http, &options, &err);
    if (rc == TR_OK)
        rc = tr_kube_reflector_start(s->reflector);
    if (rc != TR_OK)
        tr_log_error("kubernetes", "cannot watch %s: %s", s->spec->resource, err.message);
}

static void discover_next(slot *s);

static void on_discovered(int rc, int served, const char *message, void *userdata)
{
    slot *s = userdata;

    s->discovery = NULL;
    if (s->watcher->closing)
        return;
    if (rc == TR_OK && served) {
        start_reflector(s);
        return;
    }
    if (rc != TR_OK)
        tr_log_debug("kubernetes", "discovery of %s/%s %s: %s", s->spec->group,
                     s->spec->versions[s->version_index], s->spec->resource, message);
    s->version_index++;
    if (s->version_index < MAX_VERSIONS && s->spec->versions[s->version_index])
        discover_next(s);
    else
        tr_log_debug("kubernetes", "%s.%s not served by this cluster: not watched",
                     s->spec->resource, s->spec->group);
}

static void discover_next(slot *s)
{
    tr_error err = { 0 };

    if (tr_kube_discover(&s->discovery, s->watcher->client, s->watcher->http, s->spec->group,
                         s->spec->versions[s->version_index], s->spec->resource,
                         on_discovered, s, &err) != TR_OK) {
        s->discovery = NULL;
        tr_log_warn("kubernetes", "cannot discover %s: %s", s->spec->resource, err.message);
    }
}

/* The apiserver answered: start every reflector, once. */
static int waits_for_jobs(const resource_spec *spec)
{
    return strcmp(spec->resource, "events") == 0 || strcmp(spec->resource, "pods") == 0;
}

/* After the first Job list, or DEFERRED_MAX_MS at most (Jobs forbidden, apiserver slow). */
static void start_deferred(tr_kube_watcher *w)
{
    size_t i;

    if (!w->deferred_pending || w->closing)
        return;
    w->deferred_pending = 0;
    for (i = 0; i < SPEC_COUNT; i++)
        if (waits_for_jobs(w->slots[i].spec))
            start_reflector(&w->slots[i]);
}

static void on_client_state(tr_kube_client *client, int connected, void *userdata)
{
    tr_kube_watcher *w = userdata;
    size_t i;

    (void)client;
    if (!connected || w->started_reflectors || w->closing)
        return;
    w->started_reflectors = 1;
    w->deferred_pending = w->tf_jobs != NULL;
    w->deferred_since_ms = uv_now(w->loop);
    for (i = 0; i < SPEC_COUNT; i++) {
        if (w->slots[i].spec->discover)
            discover_next(&w->slots[i]);
        else if (!(w->deferred_pending && waits_for_jobs(w->slots[i].spec)))
            start_reflector(&w->slots[i]);
    }
}

static void on_tick(uv_timer_t *timer)
{
    tr_kube_watcher *w = timer->data;
    tr_error err = { 0 };

    if (w->deferred_pending && uv_now(w->loop) - w->deferred_since_ms >= DEFERRED_MAX_MS)
        start_deferred(w);
    burst(w, 1);
    if (tr_kube_ingest_tick(w->ingest, wall_ms(), &err) != TR_OK)
        note_ingest_error(w, "resolution check", &err);
    burst(w, 0);
}

static void on_ingest_incident(int64_t incident_id, int outcome, void *userdata)
{
    tr_kube_watcher *w = userdata;

    if (w->batch_open && w->deferred_count < DEFERRED_MAX) {
        w->deferred[w->deferred_count].incident_id = incident_id;
        w->deferred[w->deferred_count++].outcome = outcome;
        return;
    }
    if (w->on_incident)
        w->on_incident(incident_id, outcome, w->userdata);
}

static int skip_owner(const char *ns, const char *kind, const char *name, void *userdata)
{
    const tr_kube_watcher *w = userdata;

    return tr_tf_kube_owns(w->tf_jobs, ns, kind, name);
}

int tr_kube_watcher_set_terraform(tr_kube_watcher *w, const tr_tf_ingest *ingest, tr_error *err)
{
    tr_tf_kube_options options;

    memset(&options, 0, sizeof(options));
    options.label = w->cfg->terraform.job_label;
    options.max_log_bytes = (size_t)w->cfg->terraform.max_log_bytes;
    return tr_tf_kube_new(&w->tf_jobs, w->client, w->http, w->store,
                          ingest, &options, err);
}

int tr_kube_watcher_new(tr_kube_watcher **out, uv_loop_t *loop, const tr_config *cfg,
                        tr_store *store, tr_http_client *http, tr_health *health,
                        tr_metrics *metrics, tr_kube_watcher_incident_cb on_incident,
                        void *userdata, tr_error *err)
{
    tr_kube_watcher *w = tr_calloc(1, sizeof(*w));
    tr_kube_ingest_options ingest_options;
    tr_kube_client_options client_options;
    size_t i;
    int rc;

    *out = NULL;
    if (w == NULL)
        return tr_error_set(err, TR_ENOMEM, "kubernetes watcher: out of memory");
    w->loop = loop;
    w->cfg = cfg;
    w->http = http;
    w->store = store;
    w->health = health;
    w->metrics = metrics;
    w->on_incident = on_incident;
    w->userdata = userdata;
    for (i = 0; i < SPEC_COUNT; i++) {
        w->slots[i].watcher = w;
        w->slots[i].spec = &specs[i];
    }
    tr_kube_ingest_options_default(&ingest_options);
    ingest_options.cluster = cfg->kubernetes.cluster_name;
    ingest_options.dedup_window_ms = (int64_t)cfg->triage.dedup_window_ms;
    ingest_options.recovery_hold_ms = (int64_t)cfg->kubernetes.recovery_hold_ms;
    ingest_options.classify.unhealthy_min_count = (int)cfg->kubernetes.unhealthy_min_count;
    ingest_options.classify.restart_min_count = (int)cfg->kubernetes.restart_min_count;
    ingest_options.classify.image_pull_min_failures =
        (int)cfg->kubernetes.image_pull_min_failures;
    ingest_options.classify.mount_min_count = (int)cfg->kubernetes.mount_min_count;
    ingest_options.classify.scheduling_grace_ms = (int64_t)cfg->kubernetes.scheduling_grace_ms;
    ingest_options.metrics = metrics;
    ingest_options.on_incident = on_ingest_incident;
    ingest_options.skip_owner = skip_owner;
    ingest_options.userdata = w;
    rc = tr_kube_ingest_new(&w->ingest, store, &ingest_options, wall_ms(), err);
    if (rc != TR_OK) {
        tr_free(w);
        return rc;
    }
    memset(&client_options, 0, sizeof(client_options));
    client_options.kubeconfig = cfg->kubernetes.kubeconfig;
    client_options.context = cfg->kubernetes.context;
    client_options.on_state = on_client_state;
    client_options.userdata = w;
    rc = tr_kube_client_new(&w->client, loop, http, health, &client_options, err);
    if (rc != TR_OK) {
        tr_kube_ingest_free(w->ingest);
        tr_free(w);
        return rc;
    }
    uv_timer_init(loop, &w->tick);
    w->tick.data = w;
    *out = w;
    return TR_OK;
}

int tr_kube_watcher_start(tr_kube_watcher *w)
{
    (void)uv_timer_start(&w->tick, on_tick, TICK_MS, TICK_MS);
    return tr_kube_client_start(w->client);
}

size_t tr_kube_watcher_reflectors(const tr_kube_watcher *w)
{
    size_t i, n = 0;

    for (i = 0; i < SPEC_COUNT; i++)
        n += w->slots[i].reflector != NULL;
    return n;
}

tr_kube_client *tr_kube_watcher_client(tr_kube_watcher *w)
{
    return w ? w->client : NULL;
}

static void on_tick_closed(uv_handle_t *handle)
{
    tr_free(handle->data);
}

void tr_kube_watcher_close(tr_kube_watcher *w)
{
    size_t i;

    if (w == NULL || w->closing)
        return;
    if (w->batch_open) {
        /* Closed from inside a burst: keep what it wrote. */
        w->burst_depth = 1;
        burst(w, 0);
    }
    w->closing = 1;
    /* Reflectors first: no ingest callback runs after their close returns. */
    for (i = 0; i < SPEC_COUNT; i++) {
        if (w->slots[i].discovery)
            tr_kube_discover_cancel(w->slots[i].discovery);
        tr_kube_reflector_close(w->slots[i].reflector);
        w->slots[i].reflector = NULL;
    }
    tr_tf_kube_free(w->tf_jobs);
    w->tf_jobs = NULL;
    tr_kube_ingest_free(w->ingest);
    w->ingest = NULL;
    tr_kube_client_close(w->client);
    uv_timer_stop(&w->tick);
    uv_close((uv_handle_t *)&w->tick, on_tick_closed);
}
