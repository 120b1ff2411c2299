/*
 * analysis.c - the stage that turns an `open` incident into an `analyzed`
 * one.
 *
 * One job per incident, at most max_in_flight at once:
 *   1. read the incident; anything not `open`/`triaged` is left alone (an
 *      analysed incident is never redone, a notify for it is a no-op);
 *   2. build the redacted, budget-fitted bundle and store it (open →
 *      triaged). A job found in `triaged` by the scan was interrupted by a
 *      restart: its bundle is rebuilt and stored without a state change;
 *   3. decide: rules when provider = none, when the adapter refuses
 *      (breaker open, budget spent), else the LLM with the system template
 *      and the source's template. An invalid reply is sent back once with
 *      the parser's error; a second invalid reply, or a failed request, ends
 *      in rules with the reason recorded;
 *   4. store the analysis with triaged → analyzed and `incident.analyzed` in
 *      one transaction (expect_from = triaged: if something else moved the
 *      incident meanwhile, nothing is written and nothing is announced);
 *      then the exact request body, for the audit view.
 * The one-shot path (tr_analysis_run_once) runs the same jobs with no store:
 * the outcome is handed back instead of written.
 */
#include "analysis.h"

#include "alloc.h"
#include "api.h"
#include "evidence.h"
#include "log.h"
#include "prompt.h"
#include "redact.h"
#include "rules.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_IN_FLIGHT_CAP 256
#define SCAN_BATCH 100
#define REASK_REPLY_MAX 4000

typedef struct job job;

struct tr_analysis {
    uv_loop_t *loop;
    tr_store *store;                /* NULL in one-shot mode */
    const tr_config *cfg;
    tr_analysis_options opt;
    tr_prompts *prompts;
    tr_llm *llm;                    /* NULL when provider = none */
    uv_timer_t scan_timer;
    int timer_open;
    int closing;
    size_t jobs;                    /* live jobs */
    int64_t in_flight[MAX_IN_FLIGHT_CAP];
    size_t in_flight_count;
    tr_analysis_outcome *last;      /* one-shot: the outcome */
    const char *once_evidence;      /* one-shot: gathered beforehand, borrowed */
    job *gathering;                 /* jobs waiting for the evidence provider */
    tr_metric_family *m_analyses;
    tr_metric_family *m_fallbacks;
};

struct job {
    tr_analysis *a;
    tr_store_incident *owned;       /* daemon mode: loaded from the store */
    const tr_store_incident *inc;
    char *bundle;
    char *system;
    char *user;
    char *first_reply;              /* kept for the re-ask */
    tr_redact_ctx *redact;          /* prompt and re-ask number secrets alike */
    char reask_error[TR_ERROR_MSG_MAX];
    tr_prompt_kind kind;
    int asked;                      /* LLM requests made (1 or 2) */
    tr_analysis_outcome *outcome;
    void *gather_handle;            /* set while the provider gathers */
    job *gather_prev, *gather_next;
};

static int64_t wall_clock_ms(void *userdata)
{
    struct timespec ts;

    (void)userdata;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(const tr_analysis *a)
{
    return a->opt.now_ms(a->opt.clock_userdata);
}

void tr_analysis_outcome_free(tr_analysis_outcome *o)
{
    if (o == NULL)
        return;
    tr_llm_reply_free(o->reply);
    tr_free(o->provider);
    tr_free(o->model);
    tr_free(o->prompt_hash);
    tr_free(o->fallback_reason);
    tr_free(o->request_body);
    tr_free(o->evidence_json);
    tr_free(o);
}

static int set_str(char **field, const char *value)
{
    tr_free(*field);
    *field = NULL;
    if (value == NULL)
        return TR_OK;
    *field = tr_strdup(value);
    return *field ? TR_OK : TR_ENOMEM;
}

/* ------------------------------------------------------------ in-flight set */

static int in_flight_has(const tr_analysis *a, int64_t id)
{
    for (size_t i = 0; i < a->in_flight_count; i++)
        if (a->in_flight[i] == id)
            return 1;
    return 0;
}

static void in_flight_remove(tr_analysis *a, int64_t id)
{
    for (size_t i = 0; i < a->in_flight_count; i++)
        if (a->in_flight[i] == id) {
            a->in_flight[i] = a->in_flight[--a->in_flight_count];
            return;
        }
}

size_t tr_analysis_in_flight(const tr_analysis *a)
{
    return a->in_flight_count;
}

/* ------------------------------------------------------------ job end */

static void maybe_free(tr_analysis *a)
{
    if (a->closing && a->jobs == 0 && !a->timer_open) {
        tr_prompts_free(a->prompts);
        tr_free(a);
    }
}

static void job_free(job *j)
{
    tr_analysis *a = j->a;

    if (j->inc)
        in_flight_remove(a, j->inc->id);
    tr_store_incident_free(j->owned);
    tr_free(j->bundle);
    tr_free(j->system);
    tr_free(j->user);
    tr_free(j->first_reply);
    tr_redact_ctx_free(j->redact);
    tr_analysis_outcome_free(j->outcome);
    tr_free(j);
    a->jobs--;
    maybe_free(a);
}

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
    rc = tr_store_analysis_put(a->store, &row, &t, now_ms(a), &analysis_id, &err);
    if (rc != TR_OK) {
        tr_log_warn("analysis", "incident %" PRId64 ": analysis not stored: %s", j->inc->id,
                    err.message);
        return rc;
    }
    if (o->request_body != NULL) {
        char key[64];

        snprintf(key, sizeof(key), "analysis/%" PRId64 "/request", analysis_id);
        if (tr_store_kv_put(a->store, key, o->request_body, now_ms(a), &err) != TR_OK)
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
    job_free(j);
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
        set_str(&o->provider, "rules") != TR_OK ||
        set_str(&o->fallback_reason, reason) != TR_OK) {
        tr_log_error("analysis", "incident %" PRId64 ": out of memory", j->inc->id);
        job_free(j);
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
        (void)set_str(&o->request_body, res->request_body);
    if (res->model[0])
        (void)set_str(&o->model, res->model);
    if (res->result == TR_ECANCELLED || j->a->closing) {
        /* Shutdown: leave the incident `triaged`; the next start redoes it. */
        job_free(j);
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
        if (set_str(&o->provider, tr_llm_provider_name(j->a->llm)) != TR_OK) {
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

/* ------------------------------------------------------------ job start */

static void job_decide(job *j)
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
        else if (set_str(&j->outcome->prompt_hash, tr_prompts_hash(a->prompts, j->kind)) != TR_OK)
            rc = tr_error_set(&err, TR_ENOMEM, "analysis: out of memory");
        else
            rc = send_llm(j, &err);
    }
    if (rc != TR_OK) {
        snprintf(reason, sizeof(reason), "%s", err.message);
        job_rules(j, reason_label(rc), reason);
    }
}

static int job_triage(job *j, const char *gathered);

static void gathering_link(job *j)
{
    tr_analysis *a = j->a;

    j->gather_next = a->gathering;
    if (a->gathering)
        a->gathering->gather_prev = j;
    a->gathering = j;
}

static void gathering_unlink(job *j)
{
    if (j->gather_prev)
        j->gather_prev->gather_next = j->gather_next;
    else if (j->a->gathering == j)
        j->a->gathering = j->gather_next;
    if (j->gather_next)
        j->gather_next->gather_prev = j->gather_prev;
    j->gather_prev = j->gather_next = NULL;
    j->gather_handle = NULL;
}

static void on_evidence(int rc, const char *evidence_json, void *token)
{
    job *j = token;

    gathering_unlink(j);
    if (j->a->closing || rc == TR_ECANCELLED) {
        /* Shutdown: the incident is left as it was; the next start redoes it. */
        job_free(j);
        return;
    }
    if (rc != TR_OK)
        tr_log_warn("analysis", "incident %" PRId64 ": evidence not gathered: %s", j->inc->id,
                    tr_strerror(rc));
    (void)job_triage(j, rc == TR_OK ? evidence_json : NULL);
}

static int job_start(tr_analysis *a, tr_store_incident *owned, const tr_store_incident *inc)
{
    job *j = tr_calloc(1, sizeof(*j));

    if (j == NULL || (j->outcome = tr_calloc(1, sizeof(*j->outcome))) == NULL) {
        tr_free(j);
        tr_store_incident_free(owned);
        return TR_ENOMEM;
    }
    j->a = a;
    j->owned = owned;
    j->inc = inc;
    a->jobs++;
    a->in_flight[a->in_flight_count++] = inc->id;
    /* Terraform incidents gather too: their GitOps source (llm/source.h). */
    if (a->opt.evidence.gather != NULL && inc->source &&
        (strcmp(inc->source, "kubernetes") == 0 || strcmp(inc->source, "terraform") == 0) &&
        a->opt.evidence.gather(a->opt.evidence.userdata, inc, on_evidence, j,
                               &j->gather_handle) == TR_OK) {
        gathering_link(j);
        return TR_OK;
    }
    return job_triage(j, a->once_evidence);
}

/* Build and store the bundle (with gathered evidence when there is some), then decide. */
static int job_triage(job *j, const char *gathered)
{
    tr_analysis *a = j->a;
    const tr_store_incident *inc = j->inc;
    int64_t tokens = 0;
    tr_error err;
    int rc;

    tr_error_clear(&err);
    rc = tr_evidence_bundle_ex(inc, gathered, a->cfg->triage.token_budget, &j->bundle, &tokens,
                               NULL, &err);
    if (rc == TR_OK)
        rc = set_str(&j->outcome->evidence_json, j->bundle);
    if (rc == TR_OK && a->store != NULL) {
        tr_store_evidence ev;
        tr_store_transition t;

        memset(&ev, 0, sizeof(ev));
        ev.incident_id = inc->id;
        ev.bundle_json = j->bundle;
        ev.token_estimate = tokens;
        memset(&t, 0, sizeof(t));
        t.expect_from = inc->state;
        t.to = inc->state == TR_INCIDENT_OPEN ? TR_INCIDENT_TRIAGED : TR_INCIDENT_NONE;
        rc = tr_store_evidence_put(a->store, &ev, &t, now_ms(a), NULL, &err);
    }
    if (rc != TR_OK) {
        tr_log_warn("analysis", "incident %" PRId64 ": triage failed: %s", inc->id,
                    err.message);
        job_free(j);
        return rc;
    }
    job_decide(j);
    return TR_OK;
}

static void consider(tr_analysis *a, int64_t id)
{
    tr_store_incident *inc = NULL;
    tr_error err;

    if (a->closing || in_flight_has(a, id) || a->in_flight_count >= a->opt.max_in_flight)
        return;
    tr_error_clear(&err);
    if (tr_store_incident_get(a->store, id, &inc, &err) != TR_OK) {
        tr_log_warn("analysis", "incident %" PRId64 ": %s", id, err.message);
        return;
    }
    if (!inc->live || (inc->state != TR_INCIDENT_OPEN && inc->state != TR_INCIDENT_TRIAGED)) {
        tr_store_incident_free(inc);
        return;
    }
    (void)job_start(a, inc, inc);
}

void tr_analysis_notify(tr_analysis *a, int64_t incident_id)
{
    if (a != NULL && a->store != NULL)
        consider(a, incident_id);
}

void tr_analysis_scan(tr_analysis *a)
{
    static const int states[] = {TR_INCIDENT_OPEN, TR_INCIDENT_TRIAGED};

    if (a == NULL || a->store == NULL || a->closing)
        return;
    for (size_t s = 0; s < 2; s++) {
        tr_store_incident_filter filter;
        tr_store_incident_list *list = NULL;
        tr_error err;

        memset(&filter, 0, sizeof(filter));
        filter.state = states[s];
        filter.limit = SCAN_BATCH;
        tr_error_clear(&err);
        if (tr_store_incident_list_get(a->store, &filter, &list, &err) != TR_OK) {
            tr_log_warn("analysis", "scan: %s", err.message);
            continue;
        }
        /* Oldest first: the list is newest first. */
        for (size_t i = list->count; i > 0; i--)
            consider(a, list->items[i - 1].id);
        tr_store_incident_list_free(list);
    }
}

static void on_scan_timer(uv_timer_t *timer)
{
    tr_analysis_scan(timer->data);
}

static void on_timer_closed(uv_handle_t *handle)
{
    tr_analysis *a = handle->data;

    a->timer_open = 0;
    maybe_free(a);
}

/* ------------------------------------------------------------ lifecycle */

int tr_analysis_new_ex(tr_analysis **out, uv_loop_t *loop, tr_store *store,
                       tr_http_client *http, const tr_config *cfg, tr_metrics *metrics,
                       const tr_analysis_options *options, tr_error *err)
{
    tr_analysis *a;
    tr_llm_options lo;
    int rc;

    *out = NULL;
    a = tr_calloc(1, sizeof(*a));
    if (a == NULL) {
        /* Spelled out so a TR_OK return visibly implies *out != NULL. */
        tr_error_set(err, TR_ENOMEM, "analysis: out of memory");
        return TR_ENOMEM;
    }
    a->loop = loop;
    a->store = store;
    a->cfg = cfg;
    if (options)
        a->opt = *options;
    if (a->opt.now_ms == NULL)
        a->opt.now_ms = wall_clock_ms;
    if (a->opt.scan_interval_ms == 0)
        a->opt.scan_interval_ms = 30000;
    if (a->opt.max_in_flight == 0 || a->opt.max_in_flight > MAX_IN_FLIGHT_CAP)
        a->opt.max_in_flight = a->opt.max_in_flight ? MAX_IN_FLIGHT_CAP : 16;
    rc = tr_prompts_load(&a->prompts, cfg->llm.prompts_dir, err);
    if (rc == TR_OK && cfg->llm.provider != TR_CONFIG_LLM_NONE) {
        lo = a->opt.llm;
        lo.config = &cfg->llm;
        lo.store = store;
        lo.metrics = metrics;
        if (lo.now_ms == NULL) {
            lo.now_ms = a->opt.now_ms;
            lo.clock_userdata = a->opt.clock_userdata;
        }
        rc = tr_llm_new(&a->llm, loop, http, &lo, err);
    }
    if (rc != TR_OK) {
        tr_prompts_free(a->prompts);
        tr_free(a);
        return rc;
    }
    if (metrics) {
        a->m_analyses = tr_metrics_counter(metrics, "triaged_analyses",
                                           "Analyses stored, by provider (rules = fallback).",
                                           "provider", NULL);
        a->m_fallbacks = tr_metrics_counter(metrics, "triaged_llm_fallbacks",
                                            "Analyses that fell back to rules, by reason.",
                                            "reason", NULL);
    }
    if (store != NULL) {
        uv_timer_init(loop, &a->scan_timer);
        a->scan_timer.data = a;
        a->timer_open = 1;
        uv_timer_start(&a->scan_timer, on_scan_timer, 0, a->opt.scan_interval_ms);
    }
    *out = a;
    return TR_OK;
}

int tr_analysis_new(tr_analysis **out, uv_loop_t *loop, tr_store *store, tr_http_client *http,
                    const tr_config *cfg, tr_metrics *metrics, tr_error *err)
{
    return tr_analysis_new_ex(out, loop, store, http, cfg, metrics, NULL, err);
}

void tr_analysis_close(tr_analysis *a)
{
    if (a == NULL || a->closing)
        return;
    a->closing = 1;
    a->jobs++; /* jobs cancelled below must not free `a` under our feet */
    while (a->gathering) {
        job *j = a->gathering;

        if (a->opt.evidence.cancel)
            a->opt.evidence.cancel(a->opt.evidence.userdata, j->gather_handle);
        gathering_unlink(j);
        job_free(j); /* left `open`: the next start redoes it */
    }
    if (a->timer_open) {
        uv_timer_stop(&a->scan_timer);
        uv_close((uv_handle_t *)&a->scan_timer, on_timer_closed);
    }
    /* Pending jobs get TR_ECANCELLED from the adapter and free themselves. */
    tr_llm_free(a->llm);
    a->llm = NULL;
    tr_analysis_outcome_free(a->last);
    a->last = NULL;
    a->jobs--;
    maybe_free(a);
}

int tr_analysis_request_body(tr_store *store, int64_t analysis_id, char **out, tr_error *err)
{
    char key[64];

    snprintf(key, sizeof(key), "analysis/%" PRId64 "/request", analysis_id);
    return tr_store_kv_get(store, key, out, err);
}

/* ------------------------------------------------------------ one-shot */

int tr_analysis_run_once(const tr_config *cfg, const tr_store_incident *incident,
                         tr_analysis_outcome **out, tr_error *err)
{
    return tr_analysis_run_once_ex(cfg, incident, NULL, out, err);
}

int tr_analysis_run_once_ex(const tr_config *cfg, const tr_store_incident *incident,
                            const char *gathered_json, tr_analysis_outcome **out, tr_error *err)
{
    uv_loop_t loop;
    tr_http_client *http = NULL;
    tr_analysis *a = NULL;
    int rc;

    *out = NULL;
    if (uv_loop_init(&loop) != 0)
        return tr_error_set(err, TR_ERROR, "analysis: cannot create an event loop");
    rc = tr_http_client_new(&http, &loop, err);
    if (rc == TR_OK)
        rc = tr_analysis_new_ex(&a, &loop, NULL, http, cfg, NULL, NULL, err);
    if (rc == TR_OK) {
        a->once_evidence = gathered_json;
        rc = job_start(a, NULL, incident);
        if (rc != TR_OK)
            tr_error_set(err, rc, "analysis: %s", tr_strerror(rc));
    }
    /* The client's timers keep the loop alive: run until our job is done. */
    while (rc == TR_OK && a->jobs > 0)
        uv_run(&loop, UV_RUN_ONCE);
    if (rc == TR_OK) {
        *out = a->last;
        a->last = NULL;
        if (*out == NULL)
            rc = tr_error_set(err, TR_ERROR, "analysis: no result");
    }
    tr_analysis_close(a);
    tr_http_client_free(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        tr_log_warn("analysis", "one-shot loop closed with handles still open");
    return rc;
}

static int print_list(tr_buf *out, const char *title, const char *json, int numbered)
{
    cJSON *list = json ? cJSON_Parse(json) : NULL, *item;
    int rc = tr_buf_printf(out, "%s:\n", title), i = 0;

    cJSON_ArrayForEach(item, list)
    {
        if (rc != TR_OK)
            break;
        if (!cJSON_IsString(item))
            continue;
        i++;
        rc = numbered ? tr_buf_printf(out, "  %d. %s\n", i, item->valuestring)
                      : tr_buf_printf(out, "  - %s\n", item->valuestring);
    }
    if (rc == TR_OK && i == 0)
        rc = tr_buf_puts(out, "  (none)\n");
    cJSON_Delete(list);
    return rc;
}

int tr_analysis_outcome_print(const tr_analysis_outcome *o, tr_buf *out)
{
    const tr_llm_reply *r = o->reply;
    int rc = tr_buf_printf(out, "summary:    %s\nseverity:   %s\nconfidence: %.2f\n"
                                "root cause: %s\n",
                           r->summary, r->severity, r->confidence, r->root_cause);

    if (rc == TR_OK)
        rc = print_list(out, "evidence", r->evidence_json, 0);
    if (rc == TR_OK)
        rc = print_list(out, "remediation", r->remediation_json, 1);
    if (rc == TR_OK)
        rc = r->patch[0] ? tr_buf_printf(out, "patch:\n%s%s", r->patch,
                                         r->patch[strlen(r->patch) - 1] == '\n' ? "" : "\n")
                         : tr_buf_puts(out, "patch:      (none)\n");
    if (rc == TR_OK)
        rc = tr_buf_printf(out, "analysed by: %s%s%s", o->provider, o->model ? " model " : "",
                           o->model ? o->model : "");
    if (rc == TR_OK && (o->tokens_in || o->tokens_out))
        rc = tr_buf_printf(out, " (%lld tokens in, %lld out)", (long long)o->tokens_in,
                           (long long)o->tokens_out);
    if (rc == TR_OK && o->fallback_reason)
        rc = tr_buf_printf(out, "\nfallback:   %s", o->fallback_reason);
    if (rc == TR_OK)
        rc = tr_buf_putc(out, '\n');
    return rc;
}
