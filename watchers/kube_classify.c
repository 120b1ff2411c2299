/*
 * kube_classify.c - the classification entry point, the result builders, the
 * message parsers, and Events (the other objects are in
 * kube_classify_pod.c and kube_classify_objects.c).
 *
 * Events are the earliest signal for most pod-level classes, but they are
 * also the noisiest: only Warning events count, and each reason has its own
 * repeat threshold, counted per (object, reason) across Event objects by the
 * cache. A pod-level Event is attributed to the same class the pod's own
 * status would give (a BackOff whose container was last OOM-killed is
 * OOMKilled, not CrashLoopBackOff) so both signals land in one incident.
 */
#include "kube_classify_internal.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"

static const char *const class_names[TR_KCLASS_COUNT] = {
    [TR_KCLASS_NONE] = NULL,
    [TR_KCLASS_CRASHLOOP] = "CrashLoopBackOff",
    [TR_KCLASS_OOMKILLED] = "OOMKilled",
    [TR_KCLASS_IMAGEPULL] = "ImagePullBackOff",
    [TR_KCLASS_CONFIG] = "CreateContainerConfigError",
    [TR_KCLASS_SCHEDULING] = "FailedScheduling",
    [TR_KCLASS_UNHEALTHY] = "Unhealthy",
    [TR_KCLASS_MOUNT] = "FailedMount",
    [TR_KCLASS_PROGRESS_DEADLINE] = "ProgressDeadlineExceeded",
    [TR_KCLASS_BACKOFF_LIMIT] = "BackoffLimitExceeded",
    [TR_KCLASS_JOB_DEADLINE] = "DeadlineExceeded",
    [TR_KCLASS_NODE_NOT_READY] = "NodeNotReady",
    [TR_KCLASS_PROVISIONING] = "ProvisioningFailed",
    [TR_KCLASS_ARGO_SYNC_FAILED] = "ArgoSyncFailed",
    [TR_KCLASS_ARGO_DEGRADED] = "ArgoDegraded",
    [TR_KCLASS_FLUX_NOT_READY] = "FluxNotReady",
};

const char *tr_kube_class_name(int failure_class)
{
    if (failure_class <= TR_KCLASS_NONE || failure_class >= TR_KCLASS_COUNT)
        return NULL;
    return class_names[failure_class];
}

int tr_kube_class_parse(const char *name)
{
    for (int i = 1; name != NULL && i < TR_KCLASS_COUNT; i++) {
        if (strcmp(name, class_names[i]) == 0)
            return i;
    }
    return TR_KCLASS_NONE;
}

void tr_kube_classify_options_default(tr_kube_classify_options *o)
{
    memset(o, 0, sizeof(*o));
    o->unhealthy_min_count = 3;
    o->restart_min_count = 2;
    o->oom_min_restarts = 1;
    o->image_pull_min_failures = 2;
    o->mount_min_count = 2;
    o->scheduling_min_count = 1;
    o->provisioning_min_count = 1;
    o->restart_recent_ms = 60 * 60 * 1000;
    o->message_max_bytes = 2048;
}

char *tr_kube_fingerprint(const char *cluster, const char *ns, const char *owner_kind,
                          const char *owner_name, int failure_class)
{
    const char *name = tr_kube_class_name(failure_class);
    size_t size;
    char *out;

    if (name == NULL || owner_kind == NULL || owner_name == NULL)
        return NULL;
    cluster = cluster != NULL ? cluster : "";
    ns = ns != NULL ? ns : "";
    size = strlen(cluster) + strlen(ns) + strlen(owner_kind) + strlen(owner_name) +
           strlen(name) + 10;
    out = tr_malloc(size);
    if (out != NULL)
        snprintf(out, size, "k8s/%s/%s/%s/%s/%s", cluster, ns, owner_kind, owner_name, name);
    return out;
}

/* ------------------------------------------------------------ builders */

static char *cut_dup(const kc_ctx *ctx, const char *s)
{
    size_t len, max = ctx->opt->message_max_bytes;

    if (s == NULL)
        s = "";
    len = strlen(s);
    if (len <= max)
        return tr_strdup(s);
    /* Cut on a UTF-8 character boundary and say so. */
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    {
        char *out = tr_malloc(max + 4);

        if (out == NULL)
            return NULL;
        memcpy(out, s, max);
        memcpy(out + max, "...", 4);
        return out;
    }
}

static void finding_dispose(tr_kube_finding *f)
{
    tr_free(f->namespace);
    tr_free(f->object_kind);
    tr_free(f->object_name);
    tr_free(f->owner_kind);
    tr_free(f->owner_name);
    tr_free(f->message);
    tr_free(f->fingerprint);
    cJSON_Delete(f->facts);
    memset(f, 0, sizeof(*f));
}

tr_kube_finding *kc_add(kc_ctx *ctx, int failure_class, const char *ns, const char *object_kind,
                        const char *object_name, const tr_kube_owner *owner,
                        const char *message)
{
    tr_kube_result *out = ctx->out;
    tr_kube_finding *f;
    char *fingerprint;

    if (ctx->rc != TR_OK || out->finding_count >= TR_KUBE_MAX_FINDINGS || owner == NULL ||
        owner->kind[0] == '\0' || owner->name[0] == '\0')
        return NULL;
    ns = ns != NULL ? ns : "";
    fingerprint = tr_kube_fingerprint(ctx->cluster, ns, owner->kind, owner->name, failure_class);
    if (fingerprint == NULL) {
        ctx->rc = TR_ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < out->finding_count; i++) {
        if (strcmp(out->findings[i].fingerprint, fingerprint) == 0) {
            tr_free(fingerprint);
            return NULL;
        }
    }
    f = &out->findings[out->finding_count];
    f->failure_class = failure_class;
    f->fingerprint = fingerprint;
    f->namespace = tr_strdup(ns);
    f->object_kind = tr_strdup(object_kind != NULL ? object_kind : "");
    f->object_name = tr_strdup(object_name != NULL ? object_name : "");
    f->owner_kind = tr_strdup(owner->kind);
    f->owner_name = tr_strdup(owner->name);
    f->message = cut_dup(ctx, message != NULL ? message : tr_kube_class_name(failure_class));
    f->facts = cJSON_CreateObject();
    f->detail_hash = kc_mix_int(2166136261u, failure_class);
    if (f->namespace == NULL || f->object_kind == NULL || f->object_name == NULL ||
        f->owner_kind == NULL || f->owner_name == NULL || f->message == NULL ||
        f->facts == NULL) {
        finding_dispose(f);
        ctx->rc = TR_ENOMEM;
        return NULL;
    }
    out->finding_count++;
    if (ns[0] != '\0')
        kc_fact_str(ctx, f, "namespace", ns);
    kc_fact_str(ctx, f, "object_kind", object_kind);
    kc_fact_str(ctx, f, "object_name", object_name);
    if (owner->inferred)
        kc_fact_bool(ctx, f, "owner_inferred", 1);
    return f;
}

void kc_health(kc_ctx *ctx, const char *ns, const char *owner_kind, const char *owner_name,
               uint32_t classes, int healthy)
{
    tr_kube_health *h;

    if (ctx->rc != TR_OK || ctx->out->health_count >= TR_KUBE_MAX_HEALTH || owner_kind == NULL ||
        owner_name == NULL || owner_kind[0] == '\0' || owner_name[0] == '\0')
        return;
    h = &ctx->out->health[ctx->out->health_count];
    h->namespace = tr_strdup(ns != NULL ? ns : "");
    h->owner_kind = tr_strdup(owner_kind);
    h->owner_name = tr_strdup(owner_name);
    h->classes = classes;
    h->healthy = healthy;
    if (h->namespace == NULL || h->owner_kind == NULL || h->owner_name == NULL) {
        tr_free(h->namespace);
        tr_free(h->owner_kind);
        tr_free(h->owner_name);
        memset(h, 0, sizeof(*h));
        ctx->rc = TR_ENOMEM;
        return;
    }
    ctx->out->health_count++;
}

void kc_fact_str(kc_ctx *ctx, tr_kube_finding *f, const char *key, const char *value)
{
    char *copy;
    cJSON *item;

    if (f == NULL || value == NULL || ctx->rc != TR_OK)
        return;
    copy = cut_dup(ctx, value);
    item = copy != NULL ? cJSON_CreateString(copy) : NULL;
    tr_free(copy);
    if (item == NULL || !cJSON_AddItemToObject(f->facts, key, item)) {
        cJSON_Delete(item);
        ctx->rc = TR_ENOMEM;
    }
}

void kc_fact_int(kc_ctx *ctx, tr_kube_finding *f, const char *key, int64_t value)
{
    if (f == NULL || ctx->rc != TR_OK)
        return;
    if (cJSON_AddNumberToObject(f->facts, key, (double)value) == NULL)
        ctx->rc = TR_ENOMEM;
}

void kc_fact_bool(kc_ctx *ctx, tr_kube_finding *f, const char *key, int value)
{
    if (f == NULL || ctx->rc != TR_OK)
        return;
    if (cJSON_AddBoolToObject(f->facts, key, value) == NULL)
        ctx->rc = TR_ENOMEM;
}

uint32_t kc_mix(uint32_t hash, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        hash ^= (unsigned char)*s;
        hash *= 16777619u;
    }
    hash ^= 0xff;
    return hash * 16777619u;
}

uint32_t kc_mix_int(uint32_t hash, int64_t v)
{
    for (int i = 0; i < 8; i++) {
        hash ^= (uint32_t)((uint64_t)v >> (i * 8)) & 0xffu;
        hash *= 16777619u;
    }
    return hash;
}

/* ------------------------------------------------------------ message parsers */

const char *kc_quoted_after(const char *message, const char *marker, char *buf, size_t size)
{
    const char *start, *end;

    if (message == NULL || (start = strstr(message, marker)) == NULL)
        return NULL;
    start += strlen(marker);
    end = strchr(start, '"');
    if (end == NULL || end == start || (size_t)(end - start) >= size)
        return NULL;
    memcpy(buf, start, (size_t)(end - start));
    buf[end - start] = '\0';
    return buf;
}

/* Copy the word at s (up to whitespace, quote or end) into buf. */
static int copy_word(const char *s, const char *stop, char *buf, size_t size)
{
    size_t len = strcspn(s, stop);

    if (len == 0 || len >= size)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return 0;
}

int kc_missing_ref(const char *message, char *kind, size_t kind_size, char *name,
                   size_t name_size, char *key, size_t key_size)
{
    static const struct {
        const char *marker;
        const char *kind;
    } not_found[] = {
        { "secret \"", "Secret" },
        { "secrets \"", "Secret" },
        { "configmap \"", "ConfigMap" },
        { "configmaps \"", "ConfigMap" },
    };
    const char *p;

    key[0] = '\0';
    if (message == NULL)
        return 0;
    /* couldn't find key password in Secret shop/db */
    p = strstr(message, "couldn't find key ");
    if (p != NULL) {
        const char *in;

        p += strlen("couldn't find key ");
        if (copy_word(p, " \t\"", key, key_size) != 0)
            return 0;
        in = strstr(p, " in ");
        if (in == NULL)
            return 0;
        in += 4;
        if (strncmp(in, "Secret ", 7) == 0) {
            (void)copy_word("Secret", " ", kind, kind_size);
            in += 7;
        } else if (strncmp(in, "ConfigMap ", 10) == 0) {
            (void)copy_word("ConfigMap", " ", kind, kind_size);
            in += 10;
        } else {
            return 0;
        }
        if (strchr(in, '/') != NULL && strcspn(in, "/") < strcspn(in, " \t\"'"))
            in = strchr(in, '/') + 1;
        return copy_word(in, " \t\"',;", name, name_size) == 0;
    }
    for (size_t i = 0; i < sizeof(not_found) / sizeof(not_found[0]); i++) {
        char quoted[TR_KUBE_NAME_MAX];
        const char *found = kc_quoted_after(message, not_found[i].marker, quoted,
                                            sizeof(quoted));

        if (found != NULL && strstr(message, "not found") != NULL &&
            copy_word(found, "", name, name_size) == 0) {
            (void)copy_word(not_found[i].kind, " ", kind, kind_size);
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ dispatch */

void tr_kube_result_dispose(tr_kube_result *result)
{
    if (result == NULL)
        return;
    for (size_t i = 0; i < result->finding_count; i++)
        finding_dispose(&result->findings[i]);
    for (size_t i = 0; i < result->health_count; i++) {
        tr_free(result->health[i].namespace);
        tr_free(result->health[i].owner_kind);
        tr_free(result->health[i].owner_name);
    }
    memset(result, 0, sizeof(*result));
}

int tr_kube_classify(const tr_kube_classify_options *options, const tr_kube_cache *cache,
                     const char *cluster, int resource, const cJSON *object, int64_t now_ms,
                     tr_kube_result *out)
{
    tr_kube_classify_options defaults;
    kc_ctx ctx;

    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(object))
        return TR_EINVAL;
    if (options == NULL) {
        tr_kube_classify_options_default(&defaults);
        options = &defaults;
    }
    ctx.opt = options;
    ctx.cache = cache;
    ctx.cluster = cluster != NULL ? cluster : "default";
    ctx.now_ms = now_ms;
    ctx.out = out;
    ctx.rc = TR_OK;
    switch (resource) {
    case TR_KUBE_RES_EVENTS:
        return kc_classify_event(&ctx, object);
    case TR_KUBE_RES_PODS:
        return kc_classify_pod(&ctx, object);
    case TR_KUBE_RES_DEPLOYMENTS:
        return kc_classify_deployment(&ctx, object);
    case TR_KUBE_RES_JOBS:
        return kc_classify_job(&ctx, object);
    case TR_KUBE_RES_NODES:
        return kc_classify_node(&ctx, object);
    case TR_KUBE_RES_PVCS:
        return kc_classify_pvc(&ctx, object);
    case TR_KUBE_RES_ARGO_APPS:
        return kc_classify_argo_app(&ctx, object);
    case TR_KUBE_RES_FLUX_KS:
        return kc_classify_flux(&ctx, object, "Kustomization");
    case TR_KUBE_RES_FLUX_HR:
        return kc_classify_flux(&ctx, object, "HelmRelease");
    default:
        return TR_OK;
    }
}

/* ------------------------------------------------------------ events */

typedef struct event_view {
    const cJSON *event;
    const char *reason;
    const char *message;
    const char *kind; /* of the object the event is about */
    const char *name;
    const char *ns;
    const char *node;
    char container[TR_KUBE_NAME_MAX];
    int64_t count;
    int64_t last_ms;
} event_view;

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static void event_view_init(kc_ctx *ctx, const cJSON *event, event_view *v)
{
    const cJSON *ref = tr_kube_obj_get(event, "involvedObject");
    const char *field_path, *brace;
    int64_t own;

    memset(v, 0, sizeof(*v));
    if (!cJSON_IsObject(ref))
        ref = tr_kube_obj_get(event, "regarding");
    v->event = event;
    v->reason = tr_kube_obj_str(event, "reason");
    v->message = tr_kube_obj_str(event, "message");
    if (v->message == NULL)
        v->message = tr_kube_obj_str(event, "note");
    v->kind = tr_kube_obj_str(ref, "kind");
    v->name = tr_kube_obj_str(ref, "name");
    v->ns = tr_kube_obj_str(ref, "namespace");
    if (v->ns == NULL)
        v->ns = tr_kube_obj_str(event, "metadata.namespace");
    v->node = tr_kube_obj_str(event, "source.host");
    if (v->node == NULL)
        v->node = tr_kube_obj_str(event, "deprecatedSource.host");
    /* spec.containers{app} / spec.initContainers{init} */
    field_path = tr_kube_obj_str(ref, "fieldPath");
    brace = field_path != NULL ? strchr(field_path, '{') : NULL;
    if (brace != NULL) {
        size_t len = strcspn(brace + 1, "}");

        if (len > 0 && len < sizeof(v->container) && brace[1 + len] == '}') {
            memcpy(v->container, brace + 1, len);
            v->container[len] = '\0';
        }
    }
    own = tr_kube_obj_int(event, "count", 0);
    own = max64(own, tr_kube_obj_int(event, "series.count", 0));
    own = max64(own, tr_kube_obj_int(event, "deprecatedCount", 0));
    v->count = max64(own, tr_kube_cache_event_count(ctx->cache, event));
    if (v->count < 1)
        v->count = 1;
    /* Last seen: the latest of every timestamp either Event API may fill. */
    v->last_ms = tr_kube_time_ms(tr_kube_obj_str(event, "lastTimestamp"));
    v->last_ms =
        max64(v->last_ms, tr_kube_time_ms(tr_kube_obj_str(event, "series.lastObservedTime")));
    v->last_ms = max64(v->last_ms, tr_kube_time_ms(tr_kube_obj_str(event, "eventTime")));
    v->last_ms =
        max64(v->last_ms, tr_kube_time_ms(tr_kube_obj_str(event, "deprecatedLastTimestamp")));
    v->last_ms =
        max64(v->last_ms, tr_kube_time_ms(tr_kube_obj_str(event, "metadata.creationTimestamp")));
}

static int starts_with(const char *s, const char *prefix)
{
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

static tr_kube_finding *event_finding(kc_ctx *ctx, const event_view *v, int failure_class)
{
    tr_kube_owner owner;
    tr_kube_finding *f;

    if (strcmp(v->kind, "Pod") == 0)
        tr_kube_cache_pod_owner(ctx->cache, v->ns, v->name, &owner);
    else
        tr_kube_cache_resolve_owner(ctx->cache, v->ns, v->kind, v->name, NULL, &owner);
    f = kc_add(ctx, failure_class, v->ns, v->kind, v->name, &owner, v->message);
    if (f == NULL)
        return NULL;
    f->signal_ms = v->last_ms;
    f->pod_scoped = strcmp(v->kind, "Pod") == 0;
    f->detail_hash = kc_mix_int(kc_mix(f->detail_hash, v->reason), v->count);
    if (v->container[0] != '\0')
        kc_fact_str(ctx, f, "container", v->container);
    if (f->pod_scoped && v->node != NULL)
        kc_fact_str(ctx, f, "node", v->node);
    return f;
}

/* The cached summary of container name in the event's pod, or NULL. */
static const tr_kube_container_summary *event_container(const kc_ctx *ctx, const event_view *v,
                                                        tr_kube_pod_info *pod)
{
    uint32_t hash = tr_kube_cache_hash(v->container);

    if (strcmp(v->kind, "Pod") != 0 ||
        tr_kube_cache_pod_get(ctx->cache, v->ns, v->name, pod) != TR_OK)
        return NULL;
    for (size_t i = 0; i < pod->container_count; i++) {
        if (v->container[0] == '\0' ? pod->container_count == 1
                                    : pod->containers[i].name_hash == hash)
            return &pod->containers[i];
    }
    return NULL;
}

static const char *last_reason_name(int code)
{
    switch (code) {
    case TR_KUBE_LAST_ERROR:
        return "Error";
    case TR_KUBE_LAST_OOMKILLED:
        return "OOMKilled";
    case TR_KUBE_LAST_COMPLETED:
        return "Completed";
    default:
        return NULL;
    }
}

static void event_backoff(kc_ctx *ctx, const event_view *v)
{
    tr_kube_pod_info pod;
    const tr_kube_container_summary *c;
    tr_kube_finding *f;
    char image[1024];

    if (starts_with(v->message, "Back-off pulling image")) {
        f = event_finding(ctx, v, TR_KCLASS_IMAGEPULL);
        kc_fact_str(ctx, f, "reason", "ImagePullBackOff");
        kc_fact_str(ctx, f, "image", kc_quoted_after(v->message, "image \"", image, sizeof(image)));
        kc_fact_str(ctx, f, "message", v->message);
        return;
    }
    /* "Back-off restarting failed container [NAME in pod POD]": the kubelet is backing off. */
    c = event_container(ctx, v, &pod);
    f = event_finding(ctx, v, c != NULL && c->last_reason == TR_KUBE_LAST_OOMKILLED
                                  ? TR_KCLASS_OOMKILLED
                                  : TR_KCLASS_CRASHLOOP);
    if (f == NULL)
        return;
    kc_fact_str(ctx, f, "message", v->message);
    kc_fact_int(ctx, f, "count", v->count);
    if (c != NULL) {
        kc_fact_int(ctx, f, "restart_count", c->restart_count);
        if (c->last_reason != TR_KUBE_LAST_NONE)
            kc_fact_int(ctx, f, "exit_code", c->exit_code);
        kc_fact_str(ctx, f, "reason", last_reason_name(c->last_reason));
    }
}

static void event_failed(kc_ctx *ctx, const event_view *v)
{
    char image[1024], kind[32], name[TR_KUBE_NAME_MAX], key[TR_KUBE_NAME_MAX];
    const char *pull_reason = NULL;
    tr_kube_finding *f;

    if (strstr(v->message, "Error: ImagePullBackOff") != NULL)
        pull_reason = "ImagePullBackOff";
    else if (strstr(v->message, "Error: InvalidImageName") != NULL)
        pull_reason = "InvalidImageName";
    else if (strstr(v->message, "Error: ErrImagePull") != NULL ||
             starts_with(v->message, "Failed to pull image"))
        pull_reason = v->count >= ctx->opt->image_pull_min_failures ? "ErrImagePull" : NULL;
    if (pull_reason != NULL) {
        f = event_finding(ctx, v, TR_KCLASS_IMAGEPULL);
        kc_fact_str(ctx, f, "reason", pull_reason);
        kc_fact_str(ctx, f, "image", kc_quoted_after(v->message, "image \"", image, sizeof(image)));
        kc_fact_str(ctx, f, "message", v->message);
        kc_fact_int(ctx, f, "count", v->count);
        return;
    }
    if (kc_missing_ref(v->message, kind, sizeof(kind), name, sizeof(name), key, sizeof(key))) {
        f = event_finding(ctx, v, TR_KCLASS_CONFIG);
        kc_fact_str(ctx, f, "message", v->message);
        kc_fact_str(ctx, f, "missing_kind", kind);
        kc_fact_str(ctx, f, "missing_name", name);
        if (key[0] != '\0')
            kc_fact_str(ctx, f, "missing_key", key);
    }
}

static void event_unhealthy(kc_ctx *ctx, const event_view *v)
{
    static const struct {
        const char *prefix;
        const char *probe;
    } probes[] = {
        { "Liveness probe", "liveness" },
        { "Readiness probe", "readiness" },
        { "Startup probe", "startup" },
    };
    const char *probe = NULL, *output = NULL;
    tr_kube_finding *f;

    if (v->count < ctx->opt->unhealthy_min_count)
        return;
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        if (starts_with(v->message, probes[i].prefix)) {
            probe = probes[i].probe;
            output = strchr(v->message, ':');
            output = output != NULL ? output + 1 + (output[1] == ' ') : NULL;
        }
    }
    f = event_finding(ctx, v, TR_KCLASS_UNHEALTHY);
    kc_fact_str(ctx, f, "probe", probe);
    kc_fact_str(ctx, f, "probe_output", output != NULL ? output : v->message);
    kc_fact_int(ctx, f, "count", v->count);
}

static void event_mount(kc_ctx *ctx, const event_view *v)
{
    char volume[TR_KUBE_NAME_MAX], kind[32], name[TR_KUBE_NAME_MAX], key[TR_KUBE_NAME_MAX];
    tr_kube_finding *f;

    if (v->count < ctx->opt->mount_min_count)
        return;
    f = event_finding(ctx, v, TR_KCLASS_MOUNT);
    kc_fact_str(ctx, f, "volume", kc_quoted_after(v->message, "volume \"", volume, sizeof(volume)));
    kc_fact_str(ctx, f, "reason", v->reason);
    kc_fact_str(ctx, f, "message", v->message);
    kc_fact_int(ctx, f, "count", v->count);
    if (kc_missing_ref(v->message, kind, sizeof(kind), name, sizeof(name), key, sizeof(key))) {
        kc_fact_str(ctx, f, "missing_kind", kind);
        kc_fact_str(ctx, f, "missing_name", name);
    }
}

static void event_provisioning(kc_ctx *ctx, const event_view *v)
{
    char sc[TR_KUBE_NAME_MAX];
    const char *storage_class;
    tr_kube_finding *f;

    if (v->count < ctx->opt->provisioning_min_count)
        return;
    storage_class = kc_quoted_after(v->message, "StorageClass \"", sc, sizeof(sc));
    if (storage_class == NULL)
        storage_class = kc_quoted_after(v->message, "storageclass.storage.k8s.io \"", sc,
                                        sizeof(sc));
    f = event_finding(ctx, v, TR_KCLASS_PROVISIONING);
    kc_fact_str(ctx, f, "pvc", v->name);
    kc_fact_str(ctx, f, "storage_class", storage_class);
    kc_fact_str(ctx, f, "message", v->message);
}

/* How long the scheduler has been failing to place the pod, from the event's own span. */
static int unschedulable_long(const kc_ctx *ctx, const event_view *v)
{
    int64_t first;

    if (ctx->opt->scheduling_grace_ms <= 0)
        return 1;
    first = tr_kube_time_ms(tr_kube_obj_str(v->event, "firstTimestamp"));
    if (first <= 0)
        first = tr_kube_time_ms(tr_kube_obj_str(v->event, "metadata.creationTimestamp"));
    return first > 0 && v->last_ms > 0 && v->last_ms - first >= ctx->opt->scheduling_grace_ms;
}

int kc_classify_event(kc_ctx *ctx, const cJSON *event)
{
    const char *type = tr_kube_obj_str(event, "type");
    event_view v;
    tr_kube_finding *f;

    /* Normal events are never incidents (even "Back-off pulling image", which is Normal). */
    if (type == NULL || strcmp(type, "Warning") != 0)
        return TR_OK;
    event_view_init(ctx, event, &v);
    if (v.reason == NULL || v.kind == NULL || v.name == NULL)
        return TR_OK;
    if (v.message == NULL)
        v.message = "";
    if (strcmp(v.kind, "Pod") == 0) {
        if (strcmp(v.reason, "BackOff") == 0)
            event_backoff(ctx, &v);
        else if (strcmp(v.reason, "Failed") == 0)
            event_failed(ctx, &v);
        else if (strcmp(v.reason, "Unhealthy") == 0)
            event_unhealthy(ctx, &v);
        else if (strcmp(v.reason, "FailedMount") == 0 ||
                 strcmp(v.reason, "FailedAttachVolume") == 0)
            event_mount(ctx, &v);
        else if (strcmp(v.reason, "FailedScheduling") == 0 &&
                 v.count >= ctx->opt->scheduling_min_count && unschedulable_long(ctx, &v)) {
            f = event_finding(ctx, &v, TR_KCLASS_SCHEDULING);
            kc_fact_str(ctx, f, "scheduler_message", v.message);
        }
    } else if (strcmp(v.kind, "PersistentVolumeClaim") == 0 &&
               strcmp(v.reason, "ProvisioningFailed") == 0) {
        event_provisioning(ctx, &v);
    } else if (strcmp(v.kind, "Job") == 0 && (strcmp(v.reason, "BackoffLimitExceeded") == 0 ||
                                              strcmp(v.reason, "DeadlineExceeded") == 0)) {
        f = event_finding(ctx, &v, strcmp(v.reason, "DeadlineExceeded") == 0
                                       ? TR_KCLASS_JOB_DEADLINE
                                       : TR_KCLASS_BACKOFF_LIMIT);
        kc_fact_str(ctx, f, "message", v.message);
    } else if ((strcmp(v.kind, "Kustomization") == 0 || strcmp(v.kind, "HelmRelease") == 0) &&
               strcmp(v.reason, "DependencyNotReady") != 0) {
        f = event_finding(ctx, &v, TR_KCLASS_FLUX_NOT_READY);
        kc_fact_str(ctx, f, "reason", v.reason);
        kc_fact_str(ctx, f, "message", v.message);
    }
    return ctx->rc;
}
