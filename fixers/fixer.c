/*
 * fixer.c - the fixer's lifecycle and its two timers: the scan (analyses with
 * a patch → patch_proposed, the auto_pr policy, accepted incidents → jobs,
 * which is also how a restart resumes) and the poll of open PRs (ETag, one
 * request at a time, so a long list never floods the forge). The job itself
 * lives in fixer_job.c.
 */
#include "fixer_internal.h"

#include <string.h>
#include <time.h>

#include "alloc.h"
#include "log.h"

#define POLL_BATCH 50

int64_t fixer_now(const tr_fixer *f)
{
    struct timespec ts;

    if (f->opts.now_ms)
        return f->opts.now_ms(f->opts.clock_userdata);
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void maybe_free(tr_fixer *f)
{
    void (*cb)(void *);
    void *ud;

    if (!f->closing || f->timers_open > 0 || f->job_count > 0 || f->polling)
        return;
    cb = f->closed_cb;
    ud = f->closed_userdata;
    fixer_schema_dispose(f);
    tr_free(f->author);
    tr_free(f->public_url);
    tr_free(f);
    if (cb)
        cb(ud);
}

int fixer_job_running(const tr_fixer *f, int64_t incident_id)
{
    size_t i;

    for (i = 0; i < TR_FIXER_MAX_JOBS; i++)
        if (f->jobs[i] == incident_id)
            return 1;
    return 0;
}

void fixer_job_end(tr_fixer *f, int64_t incident_id)
{
    size_t i;

    for (i = 0; i < TR_FIXER_MAX_JOBS; i++)
        if (f->jobs[i] == incident_id) {
            f->jobs[i] = 0;
            f->job_count--;
            break;
        }
    maybe_free(f);
}

void fixer_fail(tr_fixer *f, int64_t incident_id, int expect_from, const char *reason)
{
    tr_store_transition t = {0};
    tr_error err = {0};
    int rc;

    t.expect_from = expect_from;
    t.to = TR_INCIDENT_FAILED;
    t.error_text = reason;
    t.event = "incident.failed";
    rc = tr_store_incident_transition(f->opts.store, incident_id, &t, fixer_now(f), &err);
    if (rc != TR_OK) {
        tr_log_error("fixer", "incident %lld: recording the failure (%s): %s",
                     (long long)incident_id, reason, err.message);
        return;
    }
    tr_log_warn("fixer", "incident %lld failed: %s", (long long)incident_id, reason);
    tr_dispatch_notify(f->opts.dispatch);
}

/* ------------------------------------------------------------ proposals and policy */

static int in_list(const tr_config_strlist *list, const char *value)
{
    size_t i;

    if (list->count == 0)
        return 1;
    for (i = 0; value && i < list->count; i++)
        if (strcmp(list->items[i], value) == 0)
            return 1;
    return 0;
}

/* The analysis' severity as a bit of tr_config_fixer.severities; 0 when unknown. */
static unsigned severity_bit(const char *severity)
{
    static const char *const names[] = {"info", "warning", "error", "critical"};
    unsigned i;

    for (i = 0; severity && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i], severity) == 0)
            return 1u << i;
    return 0;
}

static int policy_allows(const tr_fixer *f, const tr_store_incident *inc,
                         const tr_store_analysis *an)
{
    const tr_config_fixer *p = f->opts.policy;

    return p && p->auto_pr && an->confidence >= p->min_confidence &&
           in_list(&p->namespaces, inc->namespace) &&
           (p->severities & severity_bit(an->severity)) != 0;
}

static void policy_accept(tr_fixer *f, const tr_store_incident *inc,
                          const tr_store_analysis *an)
{
    tr_store_decision d = {0};
    tr_store_transition t = {0};
    tr_error err = {0};
    char reason[160];

    snprintf(reason, sizeof(reason), "auto_pr: confidence %.2f >= %.2f", an->confidence,
             f->opts.policy->min_confidence);
    d.incident_id = inc->id;
    d.accept = 1;
    d.actor = "policy";
    d.reason = reason;
    t.expect_from = TR_INCIDENT_PATCH_PROPOSED;
    t.to = TR_INCIDENT_ACCEPTED;
    t.event = "incident.accepted";
    if (tr_store_decision_put(f->opts.store, &d, &t, fixer_now(f), NULL, &err) != TR_OK) {
        tr_log_warn("fixer", "incident %lld: accepting by policy: %s", (long long)inc->id,
                    err.message);
        return;
    }
    tr_log_info("fixer", "incident %lld accepted by policy (%s)", (long long)inc->id, reason);
    (void)tr_metric_inc(f->accepted, 1);
    tr_dispatch_notify(f->opts.dispatch);
    (void)fixer_job_start(f, inc->id);
}

/* An analysed incident: propose its patch when it has one, then apply the policy. */
static void consider(tr_fixer *f, const tr_store_incident *inc)
{
    tr_store_analysis *an = NULL;
    tr_store_transition t = {0};
    tr_error err = {0};

    if (!inc->live || tr_store_analysis_latest(f->opts.store, inc->id, &an, &err) != TR_OK)
        return;
    if (an->patch == NULL || *an->patch == '\0')
        goto cleanup;
    if (inc->state != TR_INCIDENT_PATCH_PROPOSED) {
        t.expect_from = inc->state;
        t.to = TR_INCIDENT_PATCH_PROPOSED;
        if (tr_store_incident_transition(f->opts.store, inc->id, &t, fixer_now(f), &err) !=
            TR_OK) {
            tr_log_warn("fixer", "incident %lld: proposing its patch: %s", (long long)inc->id,
                        err.message);
            goto cleanup;
        }
        (void)tr_metric_inc(f->patches, 1, "proposed");
    }
    if (policy_allows(f, inc, an))
        policy_accept(f, inc, an);
cleanup:
    tr_store_analysis_free(an);
}

static void scan_state(tr_fixer *f, int state)
{
    tr_store_incident_filter filter = {0};
    tr_store_incident_list *list = NULL;
    tr_error err = {0};
    size_t i;

    filter.state = state;
    filter.limit = TR_FIXER_SCAN_LIMIT;
    if (tr_store_incident_list_get(f->opts.store, &filter, &list, &err) != TR_OK) {
        tr_log_error("fixer", "scan: %s", err.message);
        return;
    }
    for (i = 0; i < list->count && !f->closing; i++) {
        if (state == TR_INCIDENT_ACCEPTED) {
            if (fixer_job_start(f, list->items[i].id) == TR_EBUSY)
                break; /* the next scan takes the rest */
        } else if (state != TR_INCIDENT_PATCH_PROPOSED || (f->opts.policy &&
                                                           f->opts.policy->auto_pr)) {
            consider(f, &list->items[i]);
        }
    }
    tr_store_incident_list_free(list);
}

void tr_fixer_scan(tr_fixer *f)
{
    if (f == NULL || f->closing)
        return;
    scan_state(f, TR_INCIDENT_ANALYZED);
    scan_state(f, TR_INCIDENT_NOTIFIED);
    scan_state(f, TR_INCIDENT_PATCH_PROPOSED);
    scan_state(f, TR_INCIDENT_ACCEPTED);
}

void tr_fixer_notify(tr_fixer *f, int64_t incident_id)
{
    if (f == NULL || f->closing)
        return;
    (void)fixer_job_start(f, incident_id);
}

void tr_fixer_on_decision(int64_t incident_id, int accept, void *userdata)
{
    tr_fixer *f = userdata;

    if (!accept || f == NULL)
        return;
    (void)tr_metric_inc(f->accepted, 1);
    tr_fixer_notify(f, incident_id);
}

/* ------------------------------------------------------------ PR polling */

typedef struct poll_round {
    tr_fixer *fixer;
    tr_store_pr_list *list;
    size_t next;
    int64_t started_ms;
} poll_round;

static void poll_next(poll_round *round);

static void poll_end(poll_round *round)
{
    tr_fixer *f = round->fixer;

    tr_store_pr_list_free(round->list);
    tr_free(round);
    f->polling = 0;
    maybe_free(f);
}

/* Record the poll and, when the PR ended, the incident's state. */
static void poll_record(tr_fixer *f, const tr_store_pr *row, const tr_forge_pr *pr)
{
    tr_store_pr upd = *row;
    tr_store_transition t = {0};
    tr_error err = {0};
    int ended = pr && !pr->not_modified && pr->state != TR_FORGE_PR_OPEN;
    int merged = ended && pr->state == TR_FORGE_PR_MERGED;
    int rc;

    upd.last_polled_ms = fixer_now(f);
    if (ended) {
        upd.state = merged ? "merged" : "closed";
        t.expect_from = TR_INCIDENT_PR_OPEN;
        t.to = merged ? TR_INCIDENT_PR_MERGED : TR_INCIDENT_PR_CLOSED;
        t.event = merged ? "pr.merged" : "pr.closed";
    }
    if (pr && pr->etag && *pr->etag)
        upd.etag = pr->etag;
    rc = tr_store_pr_put(f->opts.store, &upd, ended ? &t : NULL, upd.last_polled_ms, NULL,
                         &err);
    if (rc == TR_ECONFLICT && ended) /* the incident moved on (resolved, rejected) */
        rc = tr_store_pr_put(f->opts.store, &upd, NULL, upd.last_polled_ms, NULL, &err);
    if (rc != TR_OK) {
        tr_log_error("fixer", "PR %s: recording its state: %s", row->url, err.message);
        return;
    }
    if (!ended)
        return;
    (void)tr_metric_inc(merged ? f->prs_merged : f->prs_closed, 1);
    tr_log_info("fixer", "incident %lld: PR %s %s", (long long)row->incident_id, row->url,
                upd.state);
    tr_dispatch_notify(f->opts.dispatch);
}

static void on_polled(const tr_forge_result *result, void *userdata)
{
    poll_round *round = userdata;
    tr_fixer *f = round->fixer;
    const tr_store_pr *row = &round->list->items[round->next - 1];

    if (f->closing || result->code == TR_ECANCELLED) {
        poll_end(round);
        return;
    }
    if (result->code == TR_OK)
        poll_record(f, row, result->pr);
    else {
        tr_log_warn("fixer", "PR %s: reading its state: %s", row->url, result->error);
        poll_record(f, row, NULL); /* polled: wait an interval before the next try */
    }
    poll_next(round);
}

static void poll_next(poll_round *round)
{
    tr_fixer *f = round->fixer;
    tr_error err = {0};

    while (round->next < round->list->count && !f->closing) {
        const tr_store_pr *row = &round->list->items[round->next++];

        if (row->last_polled_ms != 0 &&
            row->last_polled_ms + (int64_t)f->opts.poll_interval_ms > round->started_ms)
            continue;
        if (tr_forge_get_pr(f->opts.forge, row->number, row->etag, on_polled, round, &err) ==
            TR_OK)
            return;
        tr_log_warn("fixer", "PR %s: %s", row->url, err.message);
    }
    poll_end(round);
}

void tr_fixer_poll(tr_fixer *f)
{
    poll_round *round;
    tr_error err = {0};

    if (f == NULL || f->closing || f->polling)
        return;
    round = tr_calloc(1, sizeof(*round));
    if (round == NULL)
        return;
    if (tr_store_pr_list_open(f->opts.store, POLL_BATCH, &round->list, &err) != TR_OK) {
        tr_log_error("fixer", "listing open PRs: %s", err.message);
        tr_free(round);
        return;
    }
    round->fixer = f;
    round->started_ms = fixer_now(f);
    f->polling = 1;
    poll_next(round);
}

/* ------------------------------------------------------------ lifecycle */

static void on_scan_timer(uv_timer_t *t)
{
    tr_fixer_scan(t->data);
}

static void on_poll_timer(uv_timer_t *t)
{
    tr_fixer_poll(t->data);
}

static void register_metrics(tr_fixer *f, tr_metrics *m)
{
    if (m == NULL)
        return;
    f->patches = tr_metrics_counter(m, "triaged_fixer_patches", "Patches by outcome: proposed "
                                    "to people, valid or invalid when checked", "outcome", NULL);
    f->accepted = tr_metrics_counter(m, "triaged_fixer_accepted",
                                     "Patches accepted (by people or the auto_pr policy)", NULL);
    f->prs_opened = tr_metrics_counter(m, "triaged_fixer_prs_opened",
                                       "Pull requests opened (or reused) for accepted patches",
                                       NULL);
    f->prs_merged = tr_metrics_counter(m, "triaged_fixer_prs_merged",
                                       "Fix pull requests merged", NULL);
    f->prs_closed = tr_metrics_counter(m, "triaged_fixer_prs_closed_unmerged",
                                       "Fix pull requests closed without merging", NULL);
}

int tr_fixer_new(tr_fixer **out, uv_loop_t *loop, const tr_fixer_options *opts, tr_error *err)
{
    tr_fixer *f;

    *out = NULL;
    if (opts == NULL || opts->store == NULL || opts->forge == NULL || opts->repo == NULL)
        return tr_error_set(err, TR_EINVAL, "fixer: a store, a forge and a repository are "
                                            "required");
    f = tr_calloc(1, sizeof(*f));
    if (f == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    f->loop = loop;
    f->opts = *opts;
    f->author = tr_strdup(opts->author && *opts->author ? opts->author
                                                        : "triaged <triaged@localhost>");
    f->public_url = tr_strdup(opts->public_url ? opts->public_url : "");
    if (f->author == NULL || f->public_url == NULL) {
        tr_free(f->author);
        tr_free(f->public_url);
        tr_free(f);
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    }
    if (f->opts.scan_interval_ms == 0)
        f->opts.scan_interval_ms = TR_FIXER_DEFAULT_SCAN_INTERVAL_MS;
    if (f->opts.poll_interval_ms == 0)
        f->opts.poll_interval_ms = opts->policy && opts->policy->poll_interval_ms
                                       ? opts->policy->poll_interval_ms
                                       : TR_FIXER_DEFAULT_POLL_INTERVAL_MS;
    tr_patch_options_init(&f->patch_opts);
    f->patch_opts.allowed_paths = opts->allowed_paths;
    f->patch_opts.allowed_path_count = opts->allowed_path_count;
    if (opts->policy && opts->policy->max_patch_lines > 0)
        f->patch_opts.max_patch_lines = (size_t)opts->policy->max_patch_lines;
    f->patch_opts.terraform_bin = opts->terraform_bin;
    f->patch_opts.terraform_validate = opts->terraform_validate;
    register_metrics(f, opts->metrics);
    (void)uv_timer_init(loop, &f->scan_timer);
    (void)uv_timer_init(loop, &f->poll_timer);
    f->scan_timer.data = f;
    f->poll_timer.data = f;
    f->timers_open = 2;
    (void)uv_timer_start(&f->scan_timer, on_scan_timer, 0, f->opts.scan_interval_ms);
    (void)uv_timer_start(&f->poll_timer, on_poll_timer, 0, f->opts.poll_interval_ms);
    *out = f;
    return TR_OK;
}

size_t tr_fixer_busy(const tr_fixer *f)
{
    return f ? f->job_count + (size_t)f->polling : 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    tr_fixer *f = h->data;

    f->timers_open--;
    maybe_free(f);
}

void tr_fixer_close(tr_fixer *f, void (*closed_cb)(void *userdata), void *userdata)
{
    if (f == NULL || f->closing)
        return;
    f->closing = 1;
    f->closed_cb = closed_cb;
    f->closed_userdata = userdata;
    fixer_schema_close(f);
    uv_close((uv_handle_t *)&f->scan_timer, on_timer_closed);
    uv_close((uv_handle_t *)&f->poll_timer, on_timer_closed);
}
