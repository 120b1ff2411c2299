/*
 * analysis_decide.c - step 3 and 4 of an analysis job (see analysis.c):
 * rules or the LLM (with one re-ask of an invalid reply), then the outcome
 * stored with triaged -> analyzed, or handed back in one-shot mode.
 */
#include "analysis.h"
#include "analysis_internal.h"

#include "alloc.h"
#include "api.h"
#include "log.h"
#include "prompt.h"
#include "redact.h"
#include "rules.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define REASK_REPLY_MAX 4000

/* ------------------------------------------------------------ outcome */

static int store_outcome(job *j)
{
    tr_analysis *a = j->a;
    tr_analysis_outcome *o = j->outcome;
    tr_store_analysis row;
    tr_store_transition t;
    int64_t analysis_id = 0;
    tr_error err;
    int rc;

    memset(&row, 0, sizeof(row));
    row.incident_id = j->inc->id;
    row.summary = o->reply->summary;
    row.root_cause = o->reply->root_cause;
    row.severity = o->reply->severity;
    row.confidence = o->reply->confidence;
    row.evidence_json = o->reply->evidence_json;
    row.remediation_json = o->reply->remediation_json;
    row.patch = o->reply->patch[0] ? o->reply->patch : NULL;
    row.provider = o->provider;
    row.model = o->model;
    row.prompt_hash = o->prompt_hash;
    row.tokens_in = o->tokens_in;
    row.tokens_out = o->tokens_out;
    row.fallback_reason = o->fallback_reason;
    memset(&t, 0, sizeof(t));
    t.expect_from = TR_INCIDENT_TRIAGED;
    t.to = TR_INCIDENT_ANALYZED;
    t.event = "incident.analyzed";
    tr_error_clear(&err);
    rc = tr_store_analysis_put(a->store, &row, &t, analysis_now_ms(a), &analysis_id, &err);
    if (rc != TR_OK) {
        tr_log_warn("analysis", "incident %" PRId64 ": analysis not stored: %s", j->inc->id,
                    err.message);
        return rc;
    }
    if (o->request_body != NULL) {
        char key[64];

        snprintf(key, sizeof(key), "analysis/%" PRId64 "/request", analysis_id);
        if (tr_store_kv_put(a->store, key, o->request_body, analysis_now_ms(a), &err) != TR_OK)
            tr_log_warn("analysis", "incident %" PRId64 ": request body not kept: %s",
                        j->inc->id, err.message);
    }
    tr_log_info("analysis", "incident %" PRId64 " analyzed by %s%s%s%s: %s", j->inc->id,
                o->provider, o->fallback_reason ? " (fallback: " : "",
                o->fallback_reason ? o->fallback_reason : "", o->fallback_reason ? ")" : "",
                o->reply->summary);
    return TR_OK;
}

static void job_done(job *j)
{
    tr_analysis *a = j->a;

    (void)tr_metric_inc(a->m_analyses, 1, j->outcome->provider);
    if (a->store != NULL) {
        (void)store_outcome(j);
    } else {
        tr_analysis_outcome_free(a->last);
        a->last = j->outcome;
        j->outcome = NULL;
    }
    analysis_job_free(j);
}

static const char *reason_label(int code)
{
    switch (code) {
    case TR_EUNAVAILABLE: return "breaker";
    case TR_ELIMIT: return "budget";
    case TR_EINVAL:
    case TR_EPARSE: return "invalid_reply";
    default: return "llm_error";
    }
}

/* Finish with the rule-based analysis, recording why. */
static void job_rules(job *j, const char *label, const char *reason)
{
    tr_analysis_outcome *o = j->outcome;
    tr_error err;

    (void)tr_metric_inc(j->a->m_fallbacks, 1, label);
    tr_llm_reply_free(o->reply);
    o->reply = NULL;
    tr_error_clear(&err);
    if (tr_rules_analyze(j->inc, &o->reply, &err) != TR_OK ||
        analysis_set_str(&o->provider, "rules") != TR_OK ||
        analysis_set_str(&o->fallback_reason, reason) != TR_OK) {
        tr_log_error("analysis", "incident %" PRId64 ": out of memory", j->inc->id);
        analysis_job_free(j);
        return;
    }
    job_done(j);
}

/* ------------------------------------------------------------ LLM path */

static int send_llm(job *j, tr_error *err);

static void on_llm_done(const tr_llm_result *res, void *userdata)
{
    job *j = userdata;
    tr_analysis_outcome *o = j->outcome;
    tr_llm_reply_limits limits;
    tr_llm_reply *reply = NULL;
    tr_error err;
    char reason[2 * TR_ERROR_MSG_MAX + 128];
    int rc;

    o->tokens_in += res->tokens_in;
    o->tokens_out += res->tokens_out;
    /* The audit copy is best effort: without memory the analysis still goes on. */
    if (res->request_body[0])
        (void)analysis_set_str(&o->request_body, res->request_body);
    if (res->model[0])
        (void)analysis_set_str(&o->model, res->model);
    if (res->result == TR_ECANCELLED || j->a->closing) {
        /* Shutdown: leave the incident `triaged`; the next start redoes it. */
        analysis_job_free(j);
        return;
    }
    if (res->result != TR_OK) {
        snprintf(reason, sizeof(reason), "llm request failed: %s", res->message);
        job_rules(j, reason_label(res->result), reason);
        return;
    }
    memset(&limits, 0, sizeof(limits));
    if (j->a->cfg->fixer.max_patch_lines > 0)
        limits.max_patch_lines = (size_t)j->a->cfg->fixer.max_patch_lines;
    tr_error_clear(&err);
    rc = tr_llm_reply_parse(&reply, res->content, strlen(res->content), &limits, &err);
    if (rc == TR_OK) {
        o->reply = reply;
        if (analysis_set_str(&o->provider, tr_llm_provider_name(j->a->llm)) != TR_OK) {
            job_rules(j, "llm_error", "out of memory");
            return;
        }
        job_done(j);
        return;
    }
    if (rc == TR_ENOMEM || j->asked >= 2) {
        snprintf(reason, sizeof(reason), "llm reply invalid%s: %s",
                 j->asked >= 2 ? " twice" : "", err.message);
        job_rules(j, "invalid_reply", reason);
        return;
    }
    /* Ask once more, showing the model its reply and what is wrong with it. */
    tr_free(j->first_reply);
    j->first_reply = tr_strndup(res->content, strnlen(res->content, REASK_REPLY_MAX));
    snprintf(j->reask_error, sizeof(j->reask_error), "%s", err.message);
    tr_error_clear(&err);
    if (j->first_reply == NULL || send_llm(j, &err) != TR_OK) {
        snprintf(reason, sizeof(reason), "llm reply invalid (%s); asking again failed: %s",
                 j->reask_error, err.message);
        job_rules(j, reason_label(err.code), reason);
    }
}

static int send_llm(job *j, tr_error *err)
{
    tr_llm_message messages[4];
    tr_llm_request req;
    tr_buf fix = TR_BUF_INIT(0);
    size_t count = 2;
    char *masked_reply = NULL;
    int rc;

    messages[0].role = "system";
    messages[0].content = j->system;
    messages[1].role = "user";
    messages[1].content = j->user;
    if (j->first_reply != NULL) {
        /* The model's own words go back redacted too: they may quote a secret. */
        masked_reply = j->redact ? tr_redact_dup_ctx(j->redact, j->first_reply) : NULL;
        if (masked_reply == NULL ||
            tr_buf_printf(&fix, "Your reply was not valid: %s. Reply again with only the JSON "
                                "object, with every field present and correctly typed.",
                          j->reask_error) != TR_OK) {
            tr_free(masked_reply);
            tr_buf_dispose(&fix);
            return tr_error_set(err, TR_ENOMEM, "analysis: out of memory");
        }
        messages[2].role = "assistant";
        messages[2].content = masked_reply;
        messages[3].role = "user";
        messages[3].content = tr_buf_cstr(&fix);
        count = 4;
    }
    memset(&req, 0, sizeof(req));
    req.messages = messages;
    req.message_count = count;
    req.schema_name = "incident_analysis";
    req.schema_json = tr_llm_reply_schema();
    req.on_done = on_llm_done;
    req.userdata = j;
    rc = tr_llm_chat(j->a->llm, &req, err);
    if (rc == TR_OK)
        j->asked++;
    tr_free(masked_reply);
    tr_buf_dispose(&fix);
    return rc;
}

static int render_prompts(job *j)
{
    const tr_store_incident *inc = j->inc;
    char id[32], count[32], first[40] = "", last[40] = "";
    tr_buf user = TR_BUF_INIT(0);
    tr_prompt_var vars[16];
    size_t n = 0;
    int rc;

    snprintf(id, sizeof(id), "%" PRId64, inc->id);
    snprintf(count, sizeof(count), "%" PRId64, inc->observation_count);
    if (inc->first_seen_ms > 0)
        tr_api_format_time(inc->first_seen_ms, first, sizeof(first));
    if (inc->last_seen_ms > 0)
        tr_api_format_time(inc->last_seen_ms, last, sizeof(last));
    vars[n++] = (tr_prompt_var){"incident_id", id};
    vars[n++] = (tr_prompt_var){"source", inc->source};
    vars[n++] = (tr_prompt_var){"cluster", inc->cluster};
    vars[n++] = (tr_prompt_var){"namespace", inc->namespace};
    vars[n++] = (tr_prompt_var){"kind", inc->kind};
    vars[n++] = (tr_prompt_var){"name", inc->name};
    vars[n++] = (tr_prompt_var){"failure_class", inc->failure_class};
    vars[n++] = (tr_prompt_var){"title", inc->title ? inc->title : inc->failure_class};
    vars[n++] = (tr_prompt_var){"observation_count", count};
    vars[n++] = (tr_prompt_var){"first_seen", first};
    vars[n++] = (tr_prompt_var){"last_seen", last};
    vars[n++] = (tr_prompt_var){"evidence", j->bundle};
    vars[n++] = (tr_prompt_var){"schema", tr_llm_reply_schema()};
    j->kind = inc->source && strcmp(inc->source, "terraform") == 0 ? TR_PROMPT_TERRAFORM
                                                                   : TR_PROMPT_KUBERNETES;
    rc = tr_prompts_render(j->a->prompts, j->kind, vars, n, &user);
    if (rc == TR_OK) {
        /* Titles and names come from the cluster too: mask the whole text. */
        if (j->redact == NULL)
            j->redact = tr_redact_ctx_new();
        j->user = j->redact ? tr_redact_dup_ctx(j->redact, tr_buf_cstr(&user)) : NULL;
        j->system = tr_strdup(tr_prompts_text(j->a->prompts, TR_PROMPT_SYSTEM));
        if (j->user == NULL || j->system == NULL)
            rc = TR_ENOMEM;
    }
    tr_buf_dispose(&user);
    return rc;
}

/* ------------------------------------------------------------ decide */

void analysis_job_decide(job *j)
{
    tr_analysis *a = j->a;
    char reason[TR_ERROR_MSG_MAX + 64];
    tr_error err;
    int rc;

    if (a->llm == NULL) {
        job_rules(j, "provider_none", "llm.provider is \"none\"");
        return;
    }
    tr_error_clear(&err);
    rc = tr_llm_admit(a->llm, &err);
    if (rc == TR_OK) {
        rc = render_prompts(j);
        if (rc != TR_OK)
            tr_error_set(&err, rc, "analysis: prompt: %s", tr_strerror(rc));
        else if (analysis_set_str(&j->outcome->prompt_hash,
                                  tr_prompts_hash(a->prompts, j->kind)) != TR_OK)
            rc = tr_error_set(&err, TR_ENOMEM, "analysis: out of memory");
        else
            rc = send_llm(j, &err);
    }
    if (rc != TR_OK) {
        snprintf(reason, sizeof(reason), "%s", err.message);
        job_rules(j, reason_label(rc), reason);
    }
}