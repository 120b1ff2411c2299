/*
 * kube_classify_pod.c - failure classes a Pod's own status shows (part of
 * kube_classify, see kube_classify.h).
 *
 * One class per container, most specific first: a container backing off
 * whose last termination was an OOM kill is OOMKilled (the cause), not
 * CrashLoopBackOff (the symptom). Past terminations (lastState) count only
 * when they repeat and are recent, so relisting a pod that crashed once a
 * month ago is not an incident.
 */
#include "kube_classify_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct container_view {
    const char *name;
    const char *image;
    const cJSON *spec;
    int64_t restart_count;
    const char *waiting_reason;
    const char *waiting_message;
    const char *term_reason; /* current state: terminated */
    int64_t term_exit;
    int64_t term_ms;
    const char *last_reason; /* lastState: terminated */
    const char *last_message;
    int64_t last_exit;
    int64_t last_ms;
    int has_last;
} container_view;

static const cJSON *spec_container(const cJSON *pod, const char *list, const char *name)
{
    const cJSON *items = tr_kube_obj_get(pod, list);
    const cJSON *item;

    if (!cJSON_IsArray(items) || name == NULL)
        return NULL;
    cJSON_ArrayForEach(item, items)
    {
        const char *n = tr_kube_obj_str(item, "name");

        if (n != NULL && strcmp(n, name) == 0)
            return item;
    }
    return NULL;
}

static void container_view_init(const cJSON *pod, const char *spec_list, const cJSON *status,
                                container_view *c)
{
    memset(c, 0, sizeof(*c));
    c->name = tr_kube_obj_str(status, "name");
    c->spec = spec_container(pod, spec_list, c->name);
    c->image = tr_kube_obj_str(c->spec, "image");
    if (c->image == NULL)
        c->image = tr_kube_obj_str(status, "image");
    c->restart_count = tr_kube_obj_int(status, "restartCount", 0);
    c->waiting_reason = tr_kube_obj_str(status, "state.waiting.reason");
    c->waiting_message = tr_kube_obj_str(status, "state.waiting.message");
    c->term_reason = tr_kube_obj_str(status, "state.terminated.reason");
    c->term_exit = tr_kube_obj_int(status, "state.terminated.exitCode", 0);
    c->term_ms = tr_kube_time_ms(tr_kube_obj_str(status, "state.terminated.finishedAt"));
    c->has_last = cJSON_IsObject(tr_kube_obj_get(status, "lastState.terminated"));
    c->last_reason = tr_kube_obj_str(status, "lastState.terminated.reason");
    c->last_message = tr_kube_obj_str(status, "lastState.terminated.message");
    c->last_exit = tr_kube_obj_int(status, "lastState.terminated.exitCode", 0);
    c->last_ms = tr_kube_time_ms(tr_kube_obj_str(status, "lastState.terminated.finishedAt"));
}

static int is(const char *s, const char *value)
{
    return s != NULL && strcmp(s, value) == 0;
}

static int recent(const kc_ctx *ctx, int64_t ms)
{
    return ms == 0 || ctx->now_ms - ms <= ctx->opt->restart_recent_ms;
}

static int container_class(const kc_ctx *ctx, const container_view *c, int64_t *signal_ms)
{
    const tr_kube_classify_options *o = ctx->opt;

    *signal_ms = 0;
    if (is(c->waiting_reason, "CrashLoopBackOff"))
        return is(c->last_reason, "OOMKilled") ? TR_KCLASS_OOMKILLED : TR_KCLASS_CRASHLOOP;
    if (is(c->waiting_reason, "ImagePullBackOff") || is(c->waiting_reason, "InvalidImageName") ||
        (is(c->waiting_reason, "ErrImagePull") && o->image_pull_min_failures <= 1))
        return TR_KCLASS_IMAGEPULL;
    if (is(c->waiting_reason, "CreateContainerConfigError"))
        return TR_KCLASS_CONFIG;
    if (is(c->term_reason, "OOMKilled")) {
        *signal_ms = c->term_ms;
        return TR_KCLASS_OOMKILLED;
    }
    if (!c->has_last || !recent(ctx, c->last_ms))
        return TR_KCLASS_NONE;
    *signal_ms = c->last_ms;
    if (is(c->last_reason, "OOMKilled") && c->restart_count >= o->oom_min_restarts)
        return TR_KCLASS_OOMKILLED;
    if (!is(c->last_reason, "Completed") && c->restart_count >= o->restart_min_count)
        return TR_KCLASS_CRASHLOOP;
    return TR_KCLASS_NONE;
}

static void container_finding(kc_ctx *ctx, const cJSON *pod, const tr_kube_owner *owner,
                              const container_view *c)
{
    const char *ns = tr_kube_obj_str(pod, "metadata.namespace");
    const char *name = tr_kube_obj_str(pod, "metadata.name");
    const char *node = tr_kube_obj_str(pod, "spec.nodeName");
    char message[1024], kind[32], missing[TR_KUBE_NAME_MAX], key[TR_KUBE_NAME_MAX];
    int64_t signal_ms;
    int cls = container_class(ctx, c, &signal_ms);
    int terminated_now = is(c->term_reason, "OOMKilled") && cls == TR_KCLASS_OOMKILLED;
    const char *reason = terminated_now ? c->term_reason : c->last_reason;
    int64_t exit_code = terminated_now ? c->term_exit : c->last_exit;
    tr_kube_finding *f;

    if (cls == TR_KCLASS_NONE)
        return;
    switch (cls) {
    case TR_KCLASS_IMAGEPULL:
    case TR_KCLASS_CONFIG:
        snprintf(message, sizeof(message), "container %s: %s: %s", c->name, c->waiting_reason,
                 c->waiting_message != NULL ? c->waiting_message : "");
        break;
    default:
        snprintf(message, sizeof(message),
                 "container %s restarted %lld times; last terminated %s (exit code %lld)",
                 c->name, (long long)c->restart_count, reason != NULL ? reason : "unknown",
                 (long long)exit_code);
    }
    f = kc_add(ctx, cls, ns, "Pod", name, owner, message);
    if (f == NULL)
        return;
    f->signal_ms = signal_ms;
    f->pod_scoped = 1;
    f->detail_hash = kc_mix_int(kc_mix(kc_mix(f->detail_hash, c->name), c->waiting_reason),
                                c->restart_count);
    kc_fact_str(ctx, f, "container", c->name);
    kc_fact_str(ctx, f, "node", node);
    switch (cls) {
    case TR_KCLASS_CRASHLOOP:
        kc_fact_int(ctx, f, "restart_count", c->restart_count);
        if (c->has_last)
            kc_fact_int(ctx, f, "exit_code", c->last_exit);
        kc_fact_str(ctx, f, "reason", c->last_reason);
        kc_fact_str(ctx, f, "message",
                    c->last_message != NULL ? c->last_message : c->waiting_message);
        kc_fact_str(ctx, f, "image", c->image);
        break;
    case TR_KCLASS_OOMKILLED:
        kc_fact_int(ctx, f, "restart_count", c->restart_count);
        kc_fact_int(ctx, f, "exit_code", exit_code);
        kc_fact_str(ctx, f, "memory_limit", tr_kube_obj_str(c->spec, "resources.limits.memory"));
        kc_fact_str(ctx, f, "memory_request",
                    tr_kube_obj_str(c->spec, "resources.requests.memory"));
        kc_fact_str(ctx, f, "image", c->image);
        break;
    case TR_KCLASS_IMAGEPULL:
        kc_fact_str(ctx, f, "image", c->image);
        kc_fact_str(ctx, f, "reason", c->waiting_reason);
        kc_fact_str(ctx, f, "message", c->waiting_message);
        break;
    case TR_KCLASS_CONFIG:
        kc_fact_str(ctx, f, "message", c->waiting_message);
        if (kc_missing_ref(c->waiting_message, kind, sizeof(kind), missing, sizeof(missing), key,
                           sizeof(key))) {
            kc_fact_str(ctx, f, "missing_kind", kind);
            kc_fact_str(ctx, f, "missing_name", missing);
            if (key[0] != '\0')
                kc_fact_str(ctx, f, "missing_key", key);
        }
        break;
    default:
        break;
    }
}

/* "100m" → 0.1, "64Mi" → 67108864, "1e3" → 1000; NAN when malformed. */
static double quantity(const char *s)
{
    static const struct {
        const char *suffix;
        double factor;
    } suffixes[] = {
        { "Ki", 1024.0 }, { "Mi", 1048576.0 }, { "Gi", 1073741824.0 },
        { "Ti", 1099511627776.0 }, { "m", 1e-3 }, { "k", 1e3 }, { "M", 1e6 },
        { "G", 1e9 }, { "T", 1e12 }, { "", 1.0 },
    };
    char *end;
    double v;

    if (s == NULL)
        return NAN;
    v = strtod(s, &end);
    if (end == s || !isfinite(v))
        return NAN;
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (strcmp(end, suffixes[i].suffix) == 0)
            return v * suffixes[i].factor;
    }
    return NAN;
}

/* The pod's summed resource requests: {"cpu": "...", "memory": "..."}. */
static void requests_fact(kc_ctx *ctx, tr_kube_finding *f, const cJSON *pod)
{
    const cJSON *containers = tr_kube_obj_get(pod, "spec.containers");
    const cJSON *item;
    const char *only_cpu = NULL, *only_mem = NULL;
    double cpu = 0, mem = 0;
    int cpu_n = 0, mem_n = 0;
    cJSON *requests;
    char text[64];

    if (f == NULL || !cJSON_IsArray(containers))
        return;
    cJSON_ArrayForEach(item, containers)
    {
        const char *c = tr_kube_obj_str(item, "resources.requests.cpu");
        const char *m = tr_kube_obj_str(item, "resources.requests.memory");

        if (c != NULL) {
            only_cpu = c;
            cpu += quantity(c);
            cpu_n++;
        }
        if (m != NULL) {
            only_mem = m;
            mem += quantity(m);
            mem_n++;
        }
    }
    if (cpu_n == 0 && mem_n == 0)
        return;
    requests = cJSON_AddObjectToObject(f->facts, "requests");
    if (requests == NULL) {
        ctx->rc = TR_ENOMEM;
        return;
    }
    /* One container: its own spelling. Several: the sum, in millicores and bytes. */
    if (cpu_n == 1 || (cpu_n > 1 && isfinite(cpu))) {
        if (cpu_n > 1)
            snprintf(text, sizeof(text), "%.0fm", cpu * 1000.0);
        if (cJSON_AddStringToObject(requests, "cpu", cpu_n == 1 ? only_cpu : text) == NULL)
            ctx->rc = TR_ENOMEM;
    }
    if (mem_n == 1 || (mem_n > 1 && isfinite(mem))) {
        if (mem_n > 1)
            snprintf(text, sizeof(text), "%.0f", mem);
        if (cJSON_AddStringToObject(requests, "memory", mem_n == 1 ? only_mem : text) == NULL)
            ctx->rc = TR_ENOMEM;
    }
}

static void pod_statuses(kc_ctx *ctx, const cJSON *pod, const tr_kube_owner *owner,
                         const char *status_list, const char *spec_list)
{
    const cJSON *statuses = tr_kube_obj_get(pod, status_list);
    const cJSON *item;
    container_view c;

    if (!cJSON_IsArray(statuses))
        return;
    cJSON_ArrayForEach(item, statuses)
    {
        container_view_init(pod, spec_list, item, &c);
        if (c.name != NULL)
            container_finding(ctx, pod, owner, &c);
    }
}

int kc_classify_pod(kc_ctx *ctx, const cJSON *pod)
{
    const char *ns = tr_kube_obj_str(pod, "metadata.namespace");
    const char *name = tr_kube_obj_str(pod, "metadata.name");
    const char *phase = tr_kube_obj_str(pod, "status.phase");
    const cJSON *ctrl = tr_kube_obj_controller(pod);
    const cJSON *scheduled = tr_kube_obj_condition(pod, "PodScheduled");
    int ready = is(tr_kube_obj_str(tr_kube_obj_condition(pod, "Ready"), "status"), "True");
    size_t pods = 0, unhealthy = 0;
    tr_kube_owner owner;
    int healthy;

    if (name == NULL)
        return TR_OK;
    if (ctrl != NULL)
        tr_kube_cache_resolve_owner(ctx->cache, ns, tr_kube_obj_str(ctrl, "kind"),
                                    tr_kube_obj_str(ctrl, "name"),
                                    tr_kube_obj_label(pod, "pod-template-hash"), &owner);
    if (ctrl == NULL || owner.name[0] == '\0') {
        snprintf(owner.kind, sizeof(owner.kind), "Pod");
        snprintf(owner.name, sizeof(owner.name), "%s", name);
        owner.inferred = 0;
    }
    pod_statuses(ctx, pod, &owner, "status.initContainerStatuses", "spec.initContainers");
    pod_statuses(ctx, pod, &owner, "status.containerStatuses", "spec.containers");
    if (is(tr_kube_obj_str(scheduled, "status"), "False") &&
        is(tr_kube_obj_str(scheduled, "reason"), "Unschedulable") &&
        (ctx->opt->scheduling_grace_ms <= 0 ||
         ctx->now_ms - tr_kube_time_ms(tr_kube_obj_str(scheduled, "lastTransitionTime")) >=
             ctx->opt->scheduling_grace_ms)) {
        const char *msg = tr_kube_obj_str(scheduled, "message");
        tr_kube_finding *f = kc_add(ctx, TR_KCLASS_SCHEDULING, ns, "Pod", name, &owner, msg);

        if (f != NULL) {
            f->pod_scoped = 1;
            kc_fact_str(ctx, f, "scheduler_message", msg);
            requests_fact(ctx, f, pod);
        }
    }
    /* Health of the owner's pods as a whole: the cache holds the aggregate. */
    healthy = ready || is(phase, "Succeeded");
    tr_kube_cache_owner_pods(ctx->cache, ns, owner.kind, owner.name, &pods, &unhealthy);
    if (pods > 0)
        healthy = unhealthy == 0;
    /* A current failure (a waiting state) is unhealthy; a past termination of a pod that is
     * Ready again is reported but does not hold the owner's recovery back. */
    for (size_t i = 0; i < ctx->out->finding_count; i++) {
        if (ctx->out->findings[i].signal_ms == 0)
            healthy = 0;
    }
    kc_health(ctx, ns, owner.kind, owner.name, TR_KCLASS_POD_MASK, healthy);
    return ctx->rc;
}
