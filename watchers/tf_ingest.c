#include "tf_ingest.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "log.h"

#define MODULE "terraform"

static void notify(const tr_tf_ingest *ingest, int64_t id, int kind, const char *failure_class,
                   const char *workspace)
{
    tr_tf_incident_event ev = {id, kind, failure_class, workspace};

    if (ingest->on_incident)
        ingest->on_incident(&ev, ingest->userdata);
}

static int observe(const tr_tf_ingest *ingest, const tr_store_observation *obs, int64_t now_ms,
                   tr_tf_ingest_outcome *out, tr_error *err)
{
    tr_store_obs_result result;
    int rc;

    memset(&result, 0, sizeof(result));
    rc = tr_store_observe(ingest->store, obs, ingest->dedup_window_ms, now_ms, &result, err);
    if (rc != 0)
        return rc;
    out->failed = 1;
    out->incident_id = result.incident_id;
    out->obs_outcome = result.outcome;
    tr_log_info(MODULE, "%s incident %lld: %s %s/%s (%s)",
                result.outcome == TR_OBS_CREATED   ? "new"
                : result.outcome == TR_OBS_REOPENED ? "reopened"
                                                    : "updated",
                (long long)result.incident_id, obs->failure_class, obs->kind, obs->name,
                obs->namespace);
    notify(ingest, result.incident_id, result.outcome, obs->failure_class, obs->namespace);
    return 0;
}

static int record_failure(const tr_tf_ingest *ingest, const tr_tf_result *res,
                          const tr_tf_meta *meta, int64_t now_ms, tr_tf_ingest_outcome *out,
                          tr_error *err)
{
    tr_store_observation obs;
    char *fingerprint = NULL, *facts = NULL, *title = NULL, *message = NULL;
    int rc;

    memset(&obs, 0, sizeof(obs));
    if ((rc = tr_tf_fingerprint(&fingerprint, res, meta)) != 0 ||
        (rc = tr_tf_facts_json(&facts, res, meta)) != 0 ||
        (rc = tr_tf_title(&title, res)) != 0 || (rc = tr_tf_message(&message, res)) != 0) {
        rc = tr_error_set(err, rc, "terraform: building the incident: %s", tr_strerror(rc));
        goto cleanup;
    }
    obs.fingerprint = fingerprint;
    obs.source = "terraform";
    obs.namespace = tr_tf_workspace(meta);
    tr_tf_object(res, meta, &obs.kind, &obs.name);
    obs.failure_class = tr_tf_failure_class(res);
    obs.title = title;
    obs.message = message;
    obs.raw_ref = meta ? meta->source_ref : NULL;
    obs.facts_json = facts;
    obs.observed_ms = now_ms;
    rc = observe(ingest, &obs, now_ms, out, err);

cleanup:
    tr_free(fingerprint);
    tr_free(facts);
    tr_free(title);
    tr_free(message);
    return rc;
}

int tr_tf_ingest_resolve(const tr_tf_ingest *ingest, const char *workspace,
                         const char *failure_class, int64_t now_ms, size_t *resolved,
                         tr_error *err)
{
    tr_store_incident_filter filter;
    tr_store_incident_list *list = NULL;
    tr_store_transition t;
    size_t i, count = 0;
    int rc = 0;

    memset(&filter, 0, sizeof(filter));
    filter.source = "terraform";
    filter.namespace = workspace;
    memset(&t, 0, sizeof(t));
    t.to = TR_INCIDENT_RESOLVED;
    t.event = "incident.resolved";
    do {
        rc = tr_store_incident_list_get(ingest->store, &filter, &list, err);
        if (rc == TR_ENOTFOUND) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        for (i = 0; i < list->count && rc == 0; i++) {
            const tr_store_incident *inc = &list->items[i];
            if (!inc->live || inc->state == TR_INCIDENT_RESOLVED)
                continue;
            if (failure_class && (inc->failure_class == NULL ||
                                  strcmp(inc->failure_class, failure_class) != 0))
                continue;
            rc = tr_store_incident_transition(ingest->store, inc->id, &t, now_ms, err);
            if (rc == 0) {
                count++;
                tr_log_info(MODULE, "resolved incident %lld (%s in %s): a later run succeeded",
                            (long long)inc->id, inc->failure_class, workspace);
                notify(ingest, inc->id, TR_TF_EVENT_RESOLVED, inc->failure_class, workspace);
            }
        }
        filter.before_id = list->next_before_id;
        tr_store_incident_list_free(list);
        list = NULL;
    } while (rc == 0 && filter.before_id != 0);
    if (resolved)
        *resolved = count;
    return rc;
}

int tr_tf_ingest_result(const tr_tf_ingest *ingest, const tr_tf_result *res,
                        const tr_tf_meta *meta, int64_t now_ms, tr_tf_ingest_outcome *out,
                        tr_error *err)
{
    tr_tf_ingest_outcome local;
    const char *only = NULL;

    if (out == NULL)
        out = &local;
    memset(out, 0, sizeof(*out));
    if (res->outcome == TR_TF_FAILED)
        return record_failure(ingest, res, meta, now_ms, out, err);
    if (res->outcome != TR_TF_SUCCEEDED)
        return 0;
    if (res->operation == TR_TF_OP_INIT)
        only = "TerraformInitFailed";
    else if (res->operation == TR_TF_OP_VALIDATE)
        only = "TerraformValidateFailed";
    return tr_tf_ingest_resolve(ingest, tr_tf_workspace(meta), only, now_ms, &out->resolved,
                                err);
}

int tr_tf_ingest_run_errored(const tr_tf_ingest *ingest, const tr_tf_meta *meta,
                             const char *message, int64_t now_ms, tr_tf_ingest_outcome *out,
                             tr_error *err)
{
    const char *workspace = tr_tf_workspace(meta);
    const char *run_id = meta && meta->run_id && *meta->run_id ? meta->run_id : workspace;
    tr_tf_ingest_outcome local;
    tr_store_observation obs;
    tr_buf fp = TR_BUF_INIT(4096), title = TR_BUF_INIT(1024);
    cJSON *facts = cJSON_CreateObject();
    char *facts_text = NULL;
    int rc;

    if (out == NULL)
        out = &local;
    memset(out, 0, sizeof(*out));
    memset(&obs, 0, sizeof(obs));
    if (facts == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "terraform: out of memory");
        goto cleanup;
    }
    cJSON_AddStringToObject(facts, "operation", "unknown");
    cJSON_AddStringToObject(facts, "workspace", workspace);
    if (meta && meta->run_id)
        cJSON_AddStringToObject(facts, "run_id", meta->run_id);
    if (meta && meta->run_url)
        cJSON_AddStringToObject(facts, "run_url", meta->run_url);
    if (message)
        cJSON_AddStringToObject(facts, "message", message);
    cJSON_AddArrayToObject(facts, "diagnostics");
    facts_text = cJSON_PrintUnformatted(facts);
    /* One incident per run: a run errors once; its message is not part of its identity. */
    rc = tr_buf_printf(&fp, "tf/%.256s/%.256s/TerraformRunErrored", workspace, run_id);
    if (rc == 0)
        rc = tr_buf_printf(&title, "terraform run %.256s errored in %.256s", run_id, workspace);
    if (rc != 0 || facts_text == NULL) {
        rc = tr_error_set(err, rc ? rc : TR_ENOMEM, "terraform: building the incident");
        goto cleanup;
    }
    obs.fingerprint = fp.ptr;
    obs.source = "terraform";
    obs.namespace = workspace;
    obs.kind = "TerraformRun";
    obs.name = run_id;
    obs.failure_class = "TerraformRunErrored";
    obs.title = title.ptr;
    obs.message = message && *message ? message : "the run errored";
    obs.raw_ref = meta ? meta->source_ref : NULL;
    obs.facts_json = facts_text;
    obs.observed_ms = now_ms;
    rc = observe(ingest, &obs, now_ms, out, err);

cleanup:
    cJSON_free(facts_text);
    cJSON_Delete(facts);
    tr_buf_dispose(&fp);
    tr_buf_dispose(&title);
    return rc;
}
