/*
 * kube_evidence_take.c - the answers of one gathering (see kube_evidence.c):
 * each is trimmed and redacted as it arrives and kept in its section, and
 * decides what to ask next (a workload's pods, a pod's events, node and the
 * logs of its failing containers).
 */
#include "kube_evidence.h"
#include "kube_evidence_internal.h"

#include "alloc.h"
#include "log.h"
#include "redact.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ answers */

static int container_failing(const cJSON *cs)
{
    const cJSON *restarts = cJSON_GetObjectItemCaseSensitive(cs, "restartCount");
    const cJSON *waiting = ke_path(cs, "state", "waiting", NULL);
    const cJSON *exit_code = ke_path(cs, "state", "terminated", "exitCode");
    const char *reason = ke_str(waiting, "reason");

    if (cJSON_IsNumber(restarts) && restarts->valuedouble > 0)
        return 1;
    if (ke_path(cs, "lastState", "terminated", NULL))
        return 1;
    if (cJSON_IsNumber(exit_code) && exit_code->valuedouble != 0)
        return 1;
    return reason && strcmp(reason, "ContainerCreating") != 0 &&
           strcmp(reason, "PodInitializing") != 0;
}

static void take_container(tr_kube_gathering *g, const char *pod, const cJSON *cs)
{
    const char *name = ke_str(cs, "name");
    const cJSON *restarts;
    cJSON *entry;

    if (name == NULL)
        return;
    entry = ke_trim_container_status(cs);
    if (entry == NULL || !cJSON_AddStringToObject(entry, "pod", pod)) {
        cJSON_Delete(entry);
        ke_note(g, "pod %s: out of memory", pod);
        return;
    }
    if (ke_keep(g, "last_termination", entry) != TR_OK)
        ke_note(g, "pod %s: out of memory", pod);
    restarts = cJSON_GetObjectItemCaseSensitive(cs, "restartCount");
    if (ke_path(cs, "lastState", "terminated", NULL) ||
        (cJSON_IsNumber(restarts) && restarts->valuedouble > 0))
        ke_ask_log(g, pod, name, 1);
    if (ke_path(cs, "state", "waiting", NULL) == NULL)
        ke_ask_log(g, pod, name, 0);
}

/* Failing containers of a pod: the one the facts name first, then the others. */
static void take_containers(tr_kube_gathering *g, const char *pod, const cJSON *status)
{
    static const char *const lists[] = { "initContainerStatuses", "containerStatuses" };
    size_t taken = 0;

    for (int pass = 0; pass < 2; pass++)
        for (size_t l = 0; l < 2; l++) {
            const cJSON *cs;

            cJSON_ArrayForEach(cs, cJSON_GetObjectItemCaseSensitive(status, lists[l]))
            {
                const char *name = ke_str(cs, "name");
                int named = g->container && name && strcmp(name, g->container) == 0;

                if (taken >= g->ev->opt.max_containers || (pass == 0) != named ||
                    !container_failing(cs))
                    continue;
                take_container(g, pod, cs);
                taken++;
            }
        }
}

static int pod_taken(tr_kube_gathering *g, const char *name)
{
    const cJSON *item;

    cJSON_ArrayForEach(item, g->pod_names)
        if (cJSON_IsString(item) && strcmp(item->valuestring, name) == 0)
            return 1;
    return 0;
}

static void take_pod(tr_kube_gathering *g, const cJSON *pod)
{
    const char *name = ke_str(cJSON_GetObjectItemCaseSensitive(pod, "metadata"), "name");
    const char *node = ke_str(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "nodeName");
    int is_object = strcmp(g->kind, "Pod") == 0 && strcmp(name ? name : "", g->name) == 0;
    cJSON *summary;

    if (name == NULL || pod_taken(g, name) ||
        (size_t)cJSON_GetArraySize(g->pod_names) >= g->ev->opt.max_pods)
        return;
    cJSON_AddItemToArray(g->pod_names, cJSON_CreateString(name));
    if (!is_object) {
        /* The template is in "object" already: keep the pod's own state only. */
        summary = ke_trim_object("Pod", pod);
        if (summary) {
            cJSON *status = cJSON_GetObjectItemCaseSensitive(summary, "status");

            /* Failing containers are in last_termination; the rest says little. */
            cJSON_DeleteItemFromObjectCaseSensitive(status, "containerStatuses");
            cJSON_DeleteItemFromObjectCaseSensitive(status, "initContainerStatuses");
            cJSON_DeleteItemFromObjectCaseSensitive(summary, "spec");
            if (node && !cJSON_AddStringToObject(summary, "node", node)) {
                cJSON_Delete(summary);
                summary = NULL;
            }
        }
        if (ke_keep(g, "pods", summary) != TR_OK)
            ke_note(g, "pod %s: out of memory", name);
        ke_ask_events(g, "Pod", name);
    }
    take_containers(g, name, cJSON_GetObjectItemCaseSensitive(pod, "status"));
    if (node && !g->node_asked) {
        g->node_asked = 1;
        ke_ask_object(g, REQ_NODE, "Node", node, 0);
    }
}

/* Pods of a workload by its selector's matchLabels. */
static void list_pods(tr_kube_gathering *g, const cJSON *object)
{
    const cJSON *labels = ke_path(object, "spec", "selector", "matchLabels"), *label;
    tr_buf selector = TR_BUF_INIT(4096), path = TR_BUF_INIT(16384);
    int rc = TR_OK;

    cJSON_ArrayForEach(label, labels)
    {
        if (!cJSON_IsString(label) || label->string == NULL)
            continue;
        rc = tr_buf_printf(&selector, "%s%s=%s", selector.len ? "," : "", label->string,
                           label->valuestring);
        if (rc != TR_OK)
            break;
    }
    if (rc == TR_OK && selector.len > 0) {
        rc = tr_buf_printf(&path, "/api/v1/namespaces/%s/pods?labelSelector=", g->ns);
        if (rc == TR_OK)
            rc = tr_buf_put_escaped(&path, tr_buf_cstr(&selector));
        if (rc == TR_OK)
            rc = tr_buf_printf(&path, "&limit=%zu", g->ev->opt.max_pods * 4);
        if (rc == TR_OK)
            ke_ask(g, REQ_POD_LIST, &path, NULL, NULL);
    }
    tr_buf_dispose(&selector);
    tr_buf_dispose(&path);
}

static void take_object(tr_kube_gathering *g, const cJSON *object)
{
    cJSON *trimmed = ke_trim_object(g->kind, object);

    if (trimmed == NULL || tr_redact_json_ctx(g->redact, trimmed) != TR_OK) {
        cJSON_Delete(trimmed);
        ke_note(g, "%s %s: out of memory", g->kind, g->name);
        return;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(g->sections, "object");
    cJSON_AddItemToObject(g->sections, "object", trimmed);
    if (strcmp(g->kind, "Pod") == 0)
        take_pod(g, object);
    else if (cJSON_GetArraySize(g->fact_pods) == 0)
        list_pods(g, object);
}

static void take_events(tr_kube_gathering *g, const cJSON *list)
{
    const cJSON *event;

    cJSON_ArrayForEach(event, cJSON_GetObjectItemCaseSensitive(list, "items"))
    {
        const char *uid = ke_str(cJSON_GetObjectItemCaseSensitive(event, "metadata"), "uid");
        const cJSON *seen;
        int dup = 0;

        cJSON_ArrayForEach(seen, g->event_uids)
            dup |= uid && strcmp(seen->valuestring, uid) == 0;
        if (dup)
            continue;
        if (uid)
            cJSON_AddItemToArray(g->event_uids, cJSON_CreateString(uid));
        if (ke_keep(g, "events", ke_trim_event(event)) != TR_OK)
            return;
    }
}

static void take_log(tr_kube_gathering *g, const request *r, const tr_http_response *resp)
{
    const tr_kube_evidence_options *o = &g->ev->opt;
    tr_buf condensed = TR_BUF_INIT(0);
    cJSON *entry = NULL;
    char *masked = NULL;

    if (resp->body_len == 0)
        return;
    if (tr_kube_log_condense(&condensed, resp->body, resp->body_len, o->log_tail_lines,
                             o->log_max_bytes) == TR_OK &&
        (masked = tr_redact_dup_ctx(g->redact, tr_buf_cstr(&condensed))) != NULL &&
        (entry = cJSON_CreateObject()) != NULL && cJSON_AddStringToObject(entry, "pod", r->pod) &&
        cJSON_AddStringToObject(entry, "container", r->container) &&
        cJSON_AddStringToObject(entry, "log", masked)) {
        cJSON_AddItemToArray(ke_section_array(g, r->kind == REQ_LOG_PREVIOUS ? "previous_logs"
                                                                          : "current_logs"),
                             entry);
        entry = NULL;
    } else {
        ke_note(g, "log of %s/%s: out of memory", r->pod, r->container);
    }
    cJSON_Delete(entry);
    tr_free(masked);
    tr_buf_dispose(&condensed);
}

void ke_take_answer(tr_kube_gathering *g, request *r, const tr_http_response *resp)
{
    const cJSON *item;
    cJSON *body;

    if (r->kind == REQ_LOG_PREVIOUS || r->kind == REQ_LOG_CURRENT) {
        take_log(g, r, resp);
        return;
    }
    body = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (body == NULL) {
        ke_note(g, "GET %s: the answer is not JSON", r->path);
        return;
    }
    switch (r->kind) {
    case REQ_OBJECT:
    case REQ_OBJECT_ALT:
        take_object(g, body);
        break;
    case REQ_EVENTS:
        take_events(g, body);
        break;
    case REQ_POD:
        take_pod(g, body);
        break;
    case REQ_POD_LIST:
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(body, "items"))
            take_pod(g, item);
        break;
    case REQ_NODE: {
        cJSON *node = ke_trim_object("Node", body);

        if (node && tr_redact_json_ctx(g->redact, node) == TR_OK)
            cJSON_AddItemToObject(g->sections, "node", node);
        else
            cJSON_Delete(node);
        break;
    }
    default:
        break;
    }
    cJSON_Delete(body);
}