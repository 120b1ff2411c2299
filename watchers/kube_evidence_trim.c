/*
 * kube_evidence_trim.c - the pure half of kube_evidence: objects cut down to
 * what explains a failure, event summaries, and log condensing.
 *
 * Trimming drops what costs tokens and explains nothing or leaks: managed
 * fields, annotations (kubectl's last-applied copy repeats the whole spec,
 * env values included), image lists of nodes, volumes' sources. Env values
 * are kept for redaction to judge (a name that looks secret, a value shaped
 * like a key); a valueFrom reference names its Secret and key, never data.
 */
#include "kube_evidence.h"
#include "kube_evidence_internal.h"

#include "alloc.h"
#include "logwin.h"

#include <stdio.h>
#include <string.h>

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

const char *ke_str(const cJSON *obj, const char *key)
{
    const cJSON *item = get(obj, key);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

const cJSON *ke_path(const cJSON *obj, const char *a, const char *b, const char *c)
{
    const cJSON *item = get(obj, a);

    if (item && b)
        item = get(item, b);
    if (item && c)
        item = get(item, c);
    return item;
}

/* Copy obj[key] (deep) into dst when present; 0 or TR_ENOMEM. */
static int copy_key(cJSON *dst, const cJSON *src, const char *key)
{
    const cJSON *item = get(src, key);
    cJSON *copy;

    if (item == NULL)
        return TR_OK;
    copy = cJSON_Duplicate(item, 1);
    if (copy == NULL)
        return TR_ENOMEM;
    cJSON_AddItemToObject(dst, key, copy);
    return TR_OK;
}

static int copy_keys(cJSON *dst, const cJSON *src, const char *const *keys)
{
    for (; *keys; keys++)
        if (copy_key(dst, src, *keys) != TR_OK)
            return TR_ENOMEM;
    return TR_OK;
}

/* valueFrom as one line: "secretKeyRef db-creds/password", "fieldRef status.podIP". */
static int add_value_from(cJSON *dst, const cJSON *from)
{
    static const char *const refs[] = { "secretKeyRef", "configMapKeyRef", NULL };
    char line[600];
    const cJSON *ref;

    for (size_t i = 0; refs[i]; i++) {
        ref = get(from, refs[i]);
        if (ref) {
            snprintf(line, sizeof(line), "%s %s/%s", refs[i],
                     ke_str(ref, "name") ? ke_str(ref, "name") : "?",
                     ke_str(ref, "key") ? ke_str(ref, "key") : "?");
            return cJSON_AddStringToObject(dst, "valueFrom", line) ? TR_OK : TR_ENOMEM;
        }
    }
    ref = get(from, "fieldRef");
    if (ref == NULL)
        ref = get(from, "resourceFieldRef");
    snprintf(line, sizeof(line), "%s", ref && ke_str(ref, "fieldPath") ? ke_str(ref, "fieldPath")
                                       : ref && ke_str(ref, "resource") ? ke_str(ref, "resource")
                                                                         : "reference");
    return cJSON_AddStringToObject(dst, "valueFrom", line) ? TR_OK : TR_ENOMEM;
}

static cJSON *trim_container(const cJSON *c)
{
    static const char *const keys[] = { "name", "image", "command", "args", "resources",
                                        "livenessProbe", "readinessProbe", "startupProbe",
                                        "ports", "envFrom", "imagePullPolicy", NULL };
    cJSON *out = cJSON_CreateObject(), *env = NULL;
    const cJSON *e;

    if (out == NULL || copy_keys(out, c, keys) != TR_OK)
        goto fail;
    if (cJSON_IsArray(get(c, "env")) && (env = cJSON_AddArrayToObject(out, "env")) == NULL)
        goto fail;
    cJSON_ArrayForEach(e, get(c, "env"))
    {
        cJSON *item = cJSON_CreateObject();

        if (item == NULL)
            goto fail;
        cJSON_AddItemToArray(env, item);
        if (copy_key(item, e, "name") != TR_OK || copy_key(item, e, "value") != TR_OK)
            goto fail;
        if (get(e, "valueFrom") && add_value_from(item, get(e, "valueFrom")) != TR_OK)
            goto fail;
    }
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

static int add_containers(cJSON *dst, const cJSON *spec, const char *key)
{
    const cJSON *c;
    cJSON *list;

    if (!cJSON_IsArray(get(spec, key)))
        return TR_OK;
    if ((list = cJSON_AddArrayToObject(dst, key)) == NULL)
        return TR_ENOMEM;
    cJSON_ArrayForEach(c, get(spec, key))
    {
        cJSON *t = trim_container(c);

        if (t == NULL)
            return TR_ENOMEM;
        cJSON_AddItemToArray(list, t);
    }
    return TR_OK;
}

/* Volumes by name and type only: their sources may be long and say little. */
static int add_volumes(cJSON *dst, const cJSON *spec)
{
    const cJSON *v, *field;
    cJSON *list;

    if (!cJSON_IsArray(get(spec, "volumes")))
        return TR_OK;
    if ((list = cJSON_AddArrayToObject(dst, "volumes")) == NULL)
        return TR_ENOMEM;
    cJSON_ArrayForEach(v, get(spec, "volumes"))
    {
        cJSON *item = cJSON_CreateObject();

        if (item == NULL)
            return TR_ENOMEM;
        cJSON_AddItemToArray(list, item);
        cJSON_ArrayForEach(field, v)
        {
            if (field->string && strcmp(field->string, "name") == 0) {
                if (copy_key(item, v, "name") != TR_OK)
                    return TR_ENOMEM;
            } else if (field->string && !cJSON_AddStringToObject(item, "type", field->string)) {
                return TR_ENOMEM;
            }
        }
    }
    return TR_OK;
}

cJSON *ke_trim_pod_spec(const cJSON *spec)
{
    static const char *const keys[] = { "nodeName", "nodeSelector", "restartPolicy",
                                        "serviceAccountName", "tolerations", "affinity",
                                        "priorityClassName", NULL };
    cJSON *out = cJSON_CreateObject();

    if (out == NULL || copy_keys(out, spec, keys) != TR_OK ||
        add_containers(out, spec, "initContainers") != TR_OK ||
        add_containers(out, spec, "containers") != TR_OK || add_volumes(out, spec) != TR_OK) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

/* A workload or job spec with its pod template trimmed. */
static cJSON *trim_template_spec(const cJSON *spec)
{
    cJSON *out = cJSON_Duplicate(spec, 1), *tmpl, *pod;

    if (out == NULL)
        return NULL;
    tmpl = cJSON_GetObjectItemCaseSensitive(out, "template");
    if (tmpl != NULL) {
        pod = ke_trim_pod_spec(get(tmpl, "spec"));
        if (pod == NULL) {
            cJSON_Delete(out);
            return NULL;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(tmpl, "metadata");
        cJSON_ReplaceItemInObjectCaseSensitive(tmpl, "spec", pod);
    }
    return out;
}

static cJSON *trim_spec(const char *kind, const cJSON *spec)
{
    if (spec == NULL)
        return NULL;
    if (strcmp(kind, "Pod") == 0)
        return ke_trim_pod_spec(spec);
    if (strcmp(kind, "Node") == 0) {
        static const char *const keys[] = { "unschedulable", "taints", NULL };
        cJSON *out = cJSON_CreateObject();

        if (out && copy_keys(out, spec, keys) != TR_OK) {
            cJSON_Delete(out);
            out = NULL;
        }
        return out;
    }
    if (strcmp(kind, "CronJob") == 0) {
        cJSON *out = cJSON_Duplicate(spec, 1), *job_tmpl, *job_spec;

        job_tmpl = out ? cJSON_GetObjectItemCaseSensitive(out, "jobTemplate") : NULL;
        job_spec = job_tmpl ? cJSON_GetObjectItemCaseSensitive(job_tmpl, "spec") : NULL;
        if (job_spec) {
            cJSON *trimmed = trim_template_spec(job_spec);

            if (trimmed == NULL) {
                cJSON_Delete(out);
                return NULL;
            }
            cJSON_DeleteItemFromObjectCaseSensitive(job_tmpl, "metadata");
            cJSON_ReplaceItemInObjectCaseSensitive(job_tmpl, "spec", trimmed);
        }
        return out;
    }
    return trim_template_spec(spec);
}

cJSON *ke_trim_container_status(const cJSON *cs)
{
    static const char *const keys[] = { "name", "ready", "restartCount", "state", "lastState",
                                        "image", NULL };
    cJSON *out = cJSON_CreateObject();

    if (out && copy_keys(out, cs, keys) != TR_OK) {
        cJSON_Delete(out);
        out = NULL;
    }
    return out;
}

static cJSON *trim_status(const char *kind, const cJSON *status)
{
    static const char *const pod_keys[] = { "phase", "reason", "message", "conditions",
                                            "startTime", "qosClass", NULL };
    static const char *const node_keys[] = { "conditions", "capacity", "allocatable",
                                             "nodeInfo", NULL };
    cJSON *out;

    if (status == NULL)
        return NULL;
    if (strcmp(kind, "Pod") != 0 && strcmp(kind, "Node") != 0)
        return cJSON_Duplicate(status, 1);
    out = cJSON_CreateObject();
    if (out == NULL ||
        copy_keys(out, status, strcmp(kind, "Pod") == 0 ? pod_keys : node_keys) != TR_OK)
        goto fail;
    if (strcmp(kind, "Pod") == 0) {
        static const char *const lists[] = { "initContainerStatuses", "containerStatuses" };

        for (size_t i = 0; i < 2; i++) {
            const cJSON *cs;
            cJSON *list;

            if (!cJSON_IsArray(get(status, lists[i])))
                continue;
            if ((list = cJSON_AddArrayToObject(out, lists[i])) == NULL)
                goto fail;
            cJSON_ArrayForEach(cs, get(status, lists[i]))
            {
                cJSON *t = ke_trim_container_status(cs);

                if (t == NULL)
                    goto fail;
                cJSON_AddItemToArray(list, t);
            }
        }
    }
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

int ke_owner_chain(cJSON *chain, const cJSON *object)
{
    const cJSON *ref;
    char line[TR_KE_NAME_LINE];

    cJSON_ArrayForEach(ref, ke_path(object, "metadata", "ownerReferences", NULL))
    {
        snprintf(line, sizeof(line), "%s/%s", ke_str(ref, "kind") ? ke_str(ref, "kind") : "?",
                 ke_str(ref, "name") ? ke_str(ref, "name") : "?");
        if (!cJSON_AddItemToArray(chain, cJSON_CreateString(line)))
            return TR_ENOMEM;
    }
    return TR_OK;
}

cJSON *ke_trim_object(const char *kind, const cJSON *object)
{
    const cJSON *meta = get(object, "metadata");
    cJSON *out = cJSON_CreateObject(), *spec, *status, *chain;

    if (out == NULL || !cJSON_AddStringToObject(out, "kind", kind))
        goto fail;
    if (copy_key(out, meta, "name") != TR_OK || copy_key(out, meta, "namespace") != TR_OK ||
        copy_key(out, meta, "generation") != TR_OK ||
        copy_key(out, meta, "creationTimestamp") != TR_OK ||
        copy_key(out, meta, "deletionTimestamp") != TR_OK)
        goto fail;
    if (get(meta, "ownerReferences")) {
        if ((chain = cJSON_AddArrayToObject(out, "owners")) == NULL ||
            ke_owner_chain(chain, object) != TR_OK)
            goto fail;
    }
    spec = trim_spec(kind, get(object, "spec"));
    if (spec)
        cJSON_AddItemToObject(out, "spec", spec);
    else if (get(object, "spec"))
        goto fail;
    status = trim_status(kind, get(object, "status"));
    if (status)
        cJSON_AddItemToObject(out, "status", status);
    else if (get(object, "status"))
        goto fail;
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

cJSON *ke_trim_event(const cJSON *event)
{
    static const char *const keys[] = { "type", "reason", "message", "count", NULL };
    const cJSON *obj = get(event, "involvedObject"), *series = get(event, "series");
    const char *first = ke_str(event, "firstTimestamp"), *last = ke_str(event, "lastTimestamp");
    const char *source = ke_str(get(event, "source"), "component");
    char line[TR_KE_NAME_LINE];
    cJSON *out = cJSON_CreateObject();

    if (out == NULL || copy_keys(out, event, keys) != TR_OK)
        goto fail;
    snprintf(line, sizeof(line), "%s/%s", ke_str(obj, "kind") ? ke_str(obj, "kind") : "?",
             ke_str(obj, "name") ? ke_str(obj, "name") : "?");
    if (!cJSON_AddStringToObject(out, "object", line))
        goto fail;
    if (series && ke_str(series, "lastObservedTime"))
        last = ke_str(series, "lastObservedTime");
    if (last == NULL)
        last = ke_str(event, "eventTime");
    if ((first && !cJSON_AddStringToObject(out, "first", first)) ||
        (last && !cJSON_AddStringToObject(out, "last", last)) ||
        (source && !cJSON_AddStringToObject(out, "source", source)))
        goto fail;
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

/* ------------------------------------------------------------ logs */

/* Error windows and tail (daemon/logwin.h): a crash's exception survives a long log. */
int tr_kube_log_condense(tr_buf *out, const char *log, size_t len, int64_t tail_lines,
                         int64_t max_bytes)
{
    tr_logwin_options opt;

    memset(&opt, 0, sizeof(opt));
    opt.tail_lines = tail_lines > 0 ? (size_t)tail_lines : 0;
    opt.max_bytes = max_bytes > 0 ? (size_t)max_bytes : 0;
    return tr_logwin_cut(out, log, len, &opt, NULL);
}

/* ------------------------------------------------------------ paths */

typedef struct kind_path {
    const char *kind;
    const char *prefix;     /* API group/version path */
    const char *alt_prefix; /* older version, or NULL */
    const char *resource;
    int namespaced;
} kind_path;

static const kind_path kind_paths[] = {
    { "Pod", "/api/v1", NULL, "pods", 1 },
    { "Deployment", "/apis/apps/v1", NULL, "deployments", 1 },
    { "StatefulSet", "/apis/apps/v1", NULL, "statefulsets", 1 },
    { "DaemonSet", "/apis/apps/v1", NULL, "daemonsets", 1 },
    { "ReplicaSet", "/apis/apps/v1", NULL, "replicasets", 1 },
    { "Job", "/apis/batch/v1", NULL, "jobs", 1 },
    /* batch/v1 CronJob arrived in 1.21; older clusters serve v1beta1 only. */
    { "CronJob", "/apis/batch/v1", "/apis/batch/v1beta1", "cronjobs", 1 },
    { "Node", "/api/v1", NULL, "nodes", 0 },
    { "PersistentVolumeClaim", "/api/v1", NULL, "persistentvolumeclaims", 1 },
};

int ke_kind_known(const char *kind, int alt)
{
    for (size_t i = 0; i < sizeof(kind_paths) / sizeof(kind_paths[0]); i++)
        if (kind && strcmp(kind, kind_paths[i].kind) == 0)
            return !alt || kind_paths[i].alt_prefix != NULL;
    return 0;
}

int tr_kube_object_path(tr_buf *out, const char *kind, const char *ns, const char *name,
                        int alt)
{
    for (size_t i = 0; i < sizeof(kind_paths) / sizeof(kind_paths[0]); i++) {
        const kind_path *k = &kind_paths[i];
        const char *prefix;

        if (kind == NULL || strcmp(kind, k->kind) != 0)
            continue;
        prefix = alt && k->alt_prefix ? k->alt_prefix : k->prefix;
        if (alt && k->alt_prefix == NULL)
            return TR_ENOTFOUND;
        if (k->namespaced)
            return tr_buf_printf(out, "%s/namespaces/%s/%s/%s", prefix, ns ? ns : "",
                                 k->resource, name);
        return tr_buf_printf(out, "%s/%s/%s", prefix, k->resource, name);
    }
    return TR_ENOTFOUND;
}
