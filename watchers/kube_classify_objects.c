/*
 * kube_classify_objects.c - failure classes and health of workload-level
 * objects (part of kube_classify, see kube_classify.h): Deployments, Jobs,
 * Nodes, PVCs, Argo CD Applications, Flux Kustomizations and HelmReleases.
 *
 * Each object is its own incident owner, except a Job owned by a CronJob
 * (the CronJob is what a person fixes). Health is reported only in the
 * unambiguous states (a Deployment fully rolled out, a Job complete, a Node
 * Ready, a PVC Bound, an Application Healthy and Synced, a Flux object
 * Ready), so a rollout in progress neither resolves nor blocks anything.
 */
#include "kube_classify_internal.h"

#include <stdio.h>
#include <string.h>

static int is(const char *s, const char *value)
{
    return s != NULL && strcmp(s, value) == 0;
}

static void self_owner(tr_kube_owner *owner, const char *kind, const char *name)
{
    snprintf(owner->kind, sizeof(owner->kind), "%s", kind);
    if (snprintf(owner->name, sizeof(owner->name), "%s", name) >= (int)sizeof(owner->name))
        owner->name[0] = '\0';
    owner->inferred = 0;
}

static const char *cond_status(const cJSON *obj, const char *type)
{
    return tr_kube_obj_str(tr_kube_obj_condition(obj, type), "status");
}

int kc_classify_deployment(kc_ctx *ctx, const cJSON *deployment)
{
    const char *ns = tr_kube_obj_str(deployment, "metadata.namespace");
    const char *name = tr_kube_obj_str(deployment, "metadata.name");
    const cJSON *progressing = tr_kube_obj_condition(deployment, "Progressing");
    const char *reason = tr_kube_obj_str(progressing, "reason");
    int64_t replicas = tr_kube_obj_int(deployment, "spec.replicas", 1);
    int64_t ready = tr_kube_obj_int(deployment, "status.readyReplicas", 0);
    int64_t updated = tr_kube_obj_int(deployment, "status.updatedReplicas", 0);
    tr_kube_owner owner = { .inferred = 0 };
    tr_kube_finding *f;

    if (name == NULL)
        return TR_OK;
    self_owner(&owner, "Deployment", name);
    if (is(tr_kube_obj_str(progressing, "status"), "False") &&
        is(reason, "ProgressDeadlineExceeded")) {
        const char *msg = tr_kube_obj_str(progressing, "message");
        const cJSON *annotations = tr_kube_obj_get(deployment, "metadata.annotations");
        const cJSON *revision =
            cJSON_IsObject(annotations)
                ? cJSON_GetObjectItemCaseSensitive(annotations, "deployment.kubernetes.io/revision")
                : NULL;

        f = kc_add(ctx, TR_KCLASS_PROGRESS_DEADLINE, ns, "Deployment", name, &owner, msg);
        if (f != NULL) {
            f->signal_ms = tr_kube_time_ms(tr_kube_obj_str(progressing, "lastTransitionTime"));
            kc_fact_str(ctx, f, "message", msg);
            kc_fact_int(ctx, f, "replicas", replicas);
            kc_fact_int(ctx, f, "ready_replicas", ready);
            kc_fact_int(ctx, f, "unavailable_replicas",
                        tr_kube_obj_int(deployment, "status.unavailableReplicas", 0));
            /* NULL when the annotation is absent or not a string. */
            kc_fact_str(ctx, f, "revision", cJSON_GetStringValue(revision));
            kc_fact_int(ctx, f, "progress_deadline_seconds",
                        tr_kube_obj_int(deployment, "spec.progressDeadlineSeconds", 600));
        }
        kc_health(ctx, ns, "Deployment", name, TR_KCLASS_BIT(TR_KCLASS_PROGRESS_DEADLINE), 0);
    } else if (is(tr_kube_obj_str(progressing, "status"), "True") &&
               is(reason, "NewReplicaSetAvailable") &&
               is(cond_status(deployment, "Available"), "True") && ready >= replicas &&
               updated >= replicas) {
        kc_health(ctx, ns, "Deployment", name, TR_KCLASS_BIT(TR_KCLASS_PROGRESS_DEADLINE), 1);
    }
    return ctx->rc;
}

int kc_classify_job(kc_ctx *ctx, const cJSON *job)
{
    const char *ns = tr_kube_obj_str(job, "metadata.namespace");
    const char *name = tr_kube_obj_str(job, "metadata.name");
    const cJSON *ctrl = tr_kube_obj_controller(job);
    const cJSON *failed = tr_kube_obj_condition(job, "Failed");
    const uint32_t job_classes = TR_KCLASS_BIT(TR_KCLASS_BACKOFF_LIMIT) |
                                 TR_KCLASS_BIT(TR_KCLASS_JOB_DEADLINE) | TR_KCLASS_POD_MASK;
    tr_kube_owner owner = { .inferred = 0 };
    tr_kube_finding *f;

    if (name == NULL)
        return TR_OK;
    self_owner(&owner, "Job", name);
    if (is(tr_kube_obj_str(ctrl, "kind"), "CronJob") && tr_kube_obj_str(ctrl, "name") != NULL)
        self_owner(&owner, "CronJob", tr_kube_obj_str(ctrl, "name"));
    if (owner.name[0] == '\0')
        return TR_OK;
    /* Newer controllers set FailureTarget before Failed: either one is the failure. */
    if (!is(tr_kube_obj_str(failed, "status"), "True"))
        failed = tr_kube_obj_condition(job, "FailureTarget");
    if (is(tr_kube_obj_str(failed, "status"), "True")) {
        const char *reason = tr_kube_obj_str(failed, "reason");
        const char *msg = tr_kube_obj_str(failed, "message");
        int cls = is(reason, "DeadlineExceeded") ? TR_KCLASS_JOB_DEADLINE : TR_KCLASS_BACKOFF_LIMIT;
        const cJSON *deadline = tr_kube_obj_get(job, "spec.activeDeadlineSeconds");

        f = kc_add(ctx, cls, ns, "Job", name, &owner, msg);
        if (f != NULL) {
            f->signal_ms = tr_kube_time_ms(tr_kube_obj_str(failed, "lastTransitionTime"));
            kc_fact_str(ctx, f, "job", name);
            kc_fact_str(ctx, f, "reason", reason);
            kc_fact_str(ctx, f, "message", msg);
            kc_fact_int(ctx, f, "failed", tr_kube_obj_int(job, "status.failed", 0));
            kc_fact_int(ctx, f, "backoff_limit", tr_kube_obj_int(job, "spec.backoffLimit", 6));
            if (cJSON_IsNumber(deadline))
                kc_fact_int(ctx, f, "active_deadline_seconds",
                            tr_kube_obj_int(job, "spec.activeDeadlineSeconds", 0));
        }
        /* A CronJob's old failed Job must not hold back the recovery a newer Job shows. */
        if (strcmp(owner.kind, "Job") == 0)
            kc_health(ctx, ns, owner.kind, owner.name, job_classes, 0);
    } else if (is(cond_status(job, "Complete"), "True")) {
        kc_health(ctx, ns, owner.kind, owner.name, job_classes, 1);
    }
    return ctx->rc;
}

int kc_classify_node(kc_ctx *ctx, const cJSON *node)
{
    const char *name = tr_kube_obj_str(node, "metadata.name");
    const cJSON *ready = tr_kube_obj_condition(node, "Ready");
    const char *status = tr_kube_obj_str(ready, "status");
    const uint32_t classes = TR_KCLASS_BIT(TR_KCLASS_NODE_NOT_READY);
    tr_kube_owner owner = { .inferred = 0 };

    if (name == NULL || status == NULL)
        return TR_OK;
    self_owner(&owner, "Node", name);
    if (is(status, "True")) {
        kc_health(ctx, "", "Node", name, classes, 1);
    } else {
        const char *reason = tr_kube_obj_str(ready, "reason");
        const char *msg = tr_kube_obj_str(ready, "message");
        char message[512];
        tr_kube_finding *f;

        snprintf(message, sizeof(message), "node %s is not ready (Ready=%s, %s): %s", name,
                 status, reason != NULL ? reason : "no reason", msg != NULL ? msg : "");
        f = kc_add(ctx, TR_KCLASS_NODE_NOT_READY, "", "Node", name, &owner, message);
        if (f != NULL) {
            f->detail_hash = kc_mix(kc_mix(f->detail_hash, status), reason);
            kc_fact_str(ctx, f, "node", name);
            kc_fact_str(ctx, f, "status", status);
            kc_fact_str(ctx, f, "reason", reason);
            kc_fact_str(ctx, f, "message", msg);
            kc_fact_str(ctx, f, "since", tr_kube_obj_str(ready, "lastTransitionTime"));
        }
        kc_health(ctx, "", "Node", name, classes, 0);
    }
    return ctx->rc;
}

int kc_classify_pvc(kc_ctx *ctx, const cJSON *pvc)
{
    const char *ns = tr_kube_obj_str(pvc, "metadata.namespace");
    const char *name = tr_kube_obj_str(pvc, "metadata.name");

    /* Pending alone is normal (WaitForFirstConsumer); the ProvisioningFailed event says more. */
    if (name != NULL && is(tr_kube_obj_str(pvc, "status.phase"), "Bound"))
        kc_health(ctx, ns, "PersistentVolumeClaim", name,
                  TR_KCLASS_BIT(TR_KCLASS_PROVISIONING), 1);
    return ctx->rc;
}

static void argo_facts(kc_ctx *ctx, tr_kube_finding *f, const cJSON *app, const char *name)
{
    const cJSON *source = tr_kube_obj_get(app, "spec.source");
    const cJSON *sources = tr_kube_obj_get(app, "spec.sources");
    const char *revision = tr_kube_obj_str(app, "status.operationState.syncResult.revision");

    if (!cJSON_IsObject(source) && cJSON_IsArray(sources))
        source = cJSON_GetArrayItem(sources, 0);
    if (revision == NULL)
        revision = tr_kube_obj_str(app, "status.sync.revision");
    kc_fact_str(ctx, f, "app", name);
    kc_fact_str(ctx, f, "sync_status", tr_kube_obj_str(app, "status.sync.status"));
    kc_fact_str(ctx, f, "health_status", tr_kube_obj_str(app, "status.health.status"));
    kc_fact_str(ctx, f, "message", f != NULL ? f->message : NULL);
    kc_fact_str(ctx, f, "repo_url", tr_kube_obj_str(source, "repoURL"));
    kc_fact_str(ctx, f, "path", tr_kube_obj_str(source, "path"));
    kc_fact_str(ctx, f, "target_revision", tr_kube_obj_str(source, "targetRevision"));
    kc_fact_str(ctx, f, "revision", revision);
}

/* The message of the first status.conditions[] entry of one of the error types. */
static const char *argo_error_condition(const cJSON *app)
{
    static const char *const types[] = { "SyncError", "ComparisonError", "InvalidSpecError" };

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        const char *msg = tr_kube_obj_str(tr_kube_obj_condition(app, types[i]), "message");

        if (msg != NULL)
            return msg;
    }
    return NULL;
}

int kc_classify_argo_app(kc_ctx *ctx, const cJSON *app)
{
    const char *ns = tr_kube_obj_str(app, "metadata.namespace");
    const char *name = tr_kube_obj_str(app, "metadata.name");
    const char *phase = tr_kube_obj_str(app, "status.operationState.phase");
    const char *health = tr_kube_obj_str(app, "status.health.status");
    const char *sync = tr_kube_obj_str(app, "status.sync.status");
    const char *condition = argo_error_condition(app);
    const uint32_t classes =
        TR_KCLASS_BIT(TR_KCLASS_ARGO_SYNC_FAILED) | TR_KCLASS_BIT(TR_KCLASS_ARGO_DEGRADED);
    tr_kube_owner owner = { .inferred = 0 };
    tr_kube_finding *f;
    int failing = 0;

    if (name == NULL)
        return TR_OK;
    self_owner(&owner, "Application", name);
    if (is(phase, "Failed") || is(phase, "Error") || condition != NULL) {
        const char *msg = is(phase, "Failed") || is(phase, "Error")
                              ? tr_kube_obj_str(app, "status.operationState.message")
                              : condition;

        f = kc_add(ctx, TR_KCLASS_ARGO_SYNC_FAILED, ns, "Application", name, &owner, msg);
        if (f != NULL) {
            f->signal_ms =
                tr_kube_time_ms(tr_kube_obj_str(app, "status.operationState.finishedAt"));
            argo_facts(ctx, f, app, name);
            kc_fact_str(ctx, f, "phase", phase);
        }
        failing = 1;
    }
    if (is(health, "Degraded")) {
        const char *msg = tr_kube_obj_str(app, "status.health.message");

        f = kc_add(ctx, TR_KCLASS_ARGO_DEGRADED, ns, "Application", name, &owner,
                   msg != NULL ? msg : "application health is Degraded");
        argo_facts(ctx, f, app, name);
        failing = 1;
    }
    if (failing)
        kc_health(ctx, ns, "Application", name, classes, 0);
    else if (is(health, "Healthy") && is(sync, "Synced"))
        kc_health(ctx, ns, "Application", name, classes, 1);
    return ctx->rc;
}

int kc_classify_flux(kc_ctx *ctx, const cJSON *object, const char *kind)
{
    const char *ns = tr_kube_obj_str(object, "metadata.namespace");
    const char *name = tr_kube_obj_str(object, "metadata.name");
    const cJSON *ready = tr_kube_obj_condition(object, "Ready");
    const char *status = tr_kube_obj_str(ready, "status");
    const char *reason = tr_kube_obj_str(ready, "reason");
    const uint32_t classes = TR_KCLASS_BIT(TR_KCLASS_FLUX_NOT_READY);
    const cJSON *source_ref;
    tr_kube_owner owner = { .inferred = 0 };
    tr_kube_finding *f;
    char source[3 * TR_KUBE_NAME_MAX];

    if (name == NULL || status == NULL)
        return TR_OK;
    self_owner(&owner, kind, name);
    if (is(status, "True")) {
        kc_health(ctx, ns, kind, name, classes, 1);
        return ctx->rc;
    }
    /* Unknown = reconciling; DependencyNotReady = the dependency's own incident is the one. */
    if (!is(status, "False") || is(reason, "DependencyNotReady"))
        return ctx->rc;
    f = kc_add(ctx, TR_KCLASS_FLUX_NOT_READY, ns, kind, name, &owner,
               tr_kube_obj_str(ready, "message"));
    if (f != NULL) {
        f->signal_ms = tr_kube_time_ms(tr_kube_obj_str(ready, "lastTransitionTime"));
        f->detail_hash = kc_mix(f->detail_hash, reason);
        source_ref = tr_kube_obj_get(object, "spec.sourceRef");
        if (!cJSON_IsObject(source_ref))
            source_ref = tr_kube_obj_get(object, "spec.chart.spec.sourceRef");
        if (!cJSON_IsObject(source_ref))
            source_ref = tr_kube_obj_get(object, "spec.chartRef");
        if (tr_kube_obj_str(source_ref, "kind") != NULL &&
            tr_kube_obj_str(source_ref, "name") != NULL) {
            const char *source_ns = tr_kube_obj_str(source_ref, "namespace");

            snprintf(source, sizeof(source), "%s/%s/%s", tr_kube_obj_str(source_ref, "kind"),
                     source_ns != NULL ? source_ns : (ns != NULL ? ns : ""),
                     tr_kube_obj_str(source_ref, "name"));
            kc_fact_str(ctx, f, "source", source);
        }
        kc_fact_str(ctx, f, "reason", reason);
        kc_fact_str(ctx, f, "message", tr_kube_obj_str(ready, "message"));
        kc_fact_str(ctx, f, "revision", tr_kube_obj_str(object, "status.lastAttemptedRevision"));
        kc_fact_str(ctx, f, "path", tr_kube_obj_str(object, "spec.path"));
        kc_fact_str(ctx, f, "stalled_reason",
                    is(cond_status(object, "Stalled"), "True")
                        ? tr_kube_obj_str(tr_kube_obj_condition(object, "Stalled"), "reason")
                        : NULL);
    }
    kc_health(ctx, ns, kind, name, classes, 0);
    return ctx->rc;
}
