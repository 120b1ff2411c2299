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
#include "analysis_internal.h"

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

#define SCAN_BATCH 100

static int64_t wall_clock_ms(void *userdata)
{
    struct timespec ts;

    (void)userdata;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t analysis_now_ms(const tr_analysis *a)
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

int analysis_set_str(char **field, const char *value)
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

void analysis_job_free(job *j)
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


/* ------------------------------------------------------------ job start */

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
        analysis_job_free(j);
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
        rc = analysis_set_str(&j->outcome->evidence_json, j->bundle);
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
        rc = tr_store_evidence_put(a->store, &ev, &t, analysis_now_ms(a), NULL, &err);
    }
    if (rc != TR_OK) {
        tr_log_warn("analysis", "incident %" PRId64 ": triage failed: %s", inc->id,
                    err.message);
        analysis_job_free(j);
        return rc;
    }
    analysis_job_decide(j);
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
        analysis_job_free(j); /* left `open`: the next start redoes it */
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