/*
 * store_records.c - what the pipeline attaches to an incident: evidence
 * bundles (triage), analyses (LLM or rules), decisions (accept/reject) and
 * pull requests. Each put runs in one transaction with an optional state
 * transition and its outbox message, so "analysis stored" and "incident is
 * analyzed, notification queued" happen together or not at all.
 */
#include "store_internal.h"

#include "alloc.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

typedef int (*insert_fn)(tr_store *store, const void *record, int64_t now_ms, int64_t *id,
                         tr_error *err);

/* The transition goes first: it also proves the incident exists. */
static int put_with_transition(tr_store *store, int64_t incident_id, insert_fn insert,
                               const void *record, const tr_store_transition *t,
                               int64_t now_ms, int64_t *id_out, tr_error *err)
{
    int64_t id = 0;
    int rc = store_check_transition(t, err);

    if (rc == TR_OK)
        rc = store_begin(store, err);
    if (rc != TR_OK)
        return rc;
    rc = store_transition_locked(store, incident_id, t, now_ms, err);
    if (rc == TR_OK)
        rc = insert(store, record, now_ms, &id, err);
    rc = store_finish(store, rc, err);
    if (rc == TR_OK && id_out != NULL)
        *id_out = id;
    return rc;
}

static int finish_insert(tr_store *store, sqlite3_stmt *stmt, int bind, const char *what,
                         int64_t *id, tr_error *err)
{
    int rc;

    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, what, err);
    }
    rc = store_exec(store, stmt, what, err);
    if (rc == TR_OK)
        *id = store_last_id(store);
    return rc;
}

/*
 * Run a query bound with ?1 = incident_id (and ?2 = limit when with_limit)
 * and hand each row to read into an array of elem_size elements.
 */
typedef int (*read_fn)(sqlite3_stmt *stmt, void *record);
typedef void (*clear_fn)(void *record);

static int query_records(tr_store *store, const char *sql, int64_t key, size_t limit,
                         size_t elem_size, read_fn read, clear_fn clear, const char *what,
                         void **items_out, size_t *count_out, tr_error *err)
{
    sqlite3_stmt *stmt = NULL;
    char *items = NULL;
    size_t count = 0, i;
    int bind = SQLITE_OK;
    int rc;

    *items_out = NULL;
    *count_out = 0;
    items = tr_calloc(limit, elem_size);
    if (items == NULL)
        return tr_error_set(err, TR_ENOMEM, "store: %s: out of memory", what);
    rc = store_stmt(store, sql, &stmt, err);
    if (rc != TR_OK)
        goto cleanup;
    store_bind_int(stmt, 1, key, &bind);
    store_bind_int(stmt, 2, (int64_t)limit, &bind);
    if (bind != SQLITE_OK) {
        rc = store_fail(store, bind, what, err);
        goto cleanup;
    }
    while (count < limit && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        rc = read(stmt, items + count++ * elem_size);
        if (rc != TR_OK) {
            rc = tr_error_set(err, rc, "store: %s: out of memory", what);
            goto cleanup;
        }
    }
    if (count < limit && rc != SQLITE_DONE) {
        rc = store_fail(store, rc, what, err);
        goto cleanup;
    }
    rc = count ? TR_OK : tr_error_set(err, TR_ENOTFOUND, "store: %s: none", what);
cleanup:
    store_done(stmt);
    if (rc != TR_OK) {
        for (i = 0; i < count; i++)
            clear(items + i * elem_size);
        tr_free(items);
        return rc;
    }
    *items_out = items;
    *count_out = count;
    return TR_OK;
}

/* ------------------------------------------------------------ evidence */

static const char sql_evidence_add[] =
    "INSERT INTO evidence (incident_id, bundle_json, token_estimate, created_ms)"
    " VALUES (?1, ?2, ?3, ?4)";
static const char sql_evidence_latest[] =
    "SELECT id, incident_id, bundle_json, token_estimate, created_ms FROM evidence"
    " WHERE incident_id = ?1 ORDER BY id DESC LIMIT ?2";

static int evidence_insert(tr_store *store, const void *record, int64_t now_ms, int64_t *id,
                           tr_error *err)
{
    const tr_store_evidence *evidence = record;
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql_evidence_add, &stmt, err);

    if (rc != TR_OK)
        return rc;
    store_bind_int(stmt, 1, evidence->incident_id, &bind);
    store_bind_text(stmt, 2, evidence->bundle_json, &bind);
    store_bind_int(stmt, 3, evidence->token_estimate, &bind);
    store_bind_int(stmt, 4, now_ms, &bind);
    return finish_insert(store, stmt, bind, "add evidence", id, err);
}

int tr_store_evidence_put(tr_store *store, const tr_store_evidence *evidence,
                          const tr_store_transition *t, int64_t now_ms, int64_t *id_out,
                          tr_error *err)
{
    int rc = store_check_text("evidence bundle", evidence->bundle_json, TR_STORE_TEXT_MAX, 1,
                              err);

    if (rc != TR_OK)
        return rc;
    return put_with_transition(store, evidence->incident_id, evidence_insert, evidence, t,
                               now_ms, id_out, err);
}

static int evidence_read(sqlite3_stmt *stmt, void *record)
{
    tr_store_evidence *evidence = record;
    int rc = TR_OK;

    evidence->id = sqlite3_column_int64(stmt, 0);
    evidence->incident_id = sqlite3_column_int64(stmt, 1);
    store_column_str(stmt, 2, &evidence->bundle_json, &rc);
    evidence->token_estimate = sqlite3_column_int64(stmt, 3);
    evidence->created_ms = sqlite3_column_int64(stmt, 4);
    return rc;
}

static void evidence_clear(void *record)
{
    tr_store_evidence *evidence = record;

    store_free_str(evidence->bundle_json);
}

void tr_store_evidence_free(tr_store_evidence *evidence)
{
    if (evidence == NULL)
        return;
    evidence_clear(evidence);
    tr_free(evidence);
}

int tr_store_evidence_latest(tr_store *store, int64_t incident_id, tr_store_evidence **out,
                             tr_error *err)
{
    void *item = NULL;
    size_t count;
    int rc = query_records(store, sql_evidence_latest, incident_id, 1, sizeof(**out),
                           evidence_read, evidence_clear, "latest evidence", &item, &count, err);

    *out = item;
    return rc;
}

/* ------------------------------------------------------------ analyses */

static const char sql_analysis_add[] =
    "INSERT INTO analyses (incident_id, summary, root_cause, severity, confidence,"
    " evidence_json, remediation_json, patch, provider, model, prompt_hash, tokens_in,"
    " tokens_out, fallback_reason, created_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
static const char sql_analysis_latest[] =
    "SELECT id, incident_id, summary, root_cause, severity, confidence, evidence_json,"
    " remediation_json, patch, provider, model, prompt_hash, tokens_in, tokens_out,"
    " fallback_reason, created_ms FROM analyses WHERE incident_id = ?1"
    " ORDER BY id DESC LIMIT ?2";

int store_check_analysis(const tr_store_analysis *a, tr_error *err)
{
    int rc = store_check_text("summary", a->summary, TR_STORE_TEXT_MAX, 1, err);

    if (rc == TR_OK)
        rc = store_check_text("root cause", a->root_cause, TR_STORE_TEXT_MAX, 1, err);
    if (rc == TR_OK)
        rc = store_check_text("severity", a->severity, TR_STORE_NAME_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("evidence", a->evidence_json, TR_STORE_TEXT_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("remediation", a->remediation_json, TR_STORE_TEXT_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("patch", a->patch, TR_STORE_TEXT_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("provider", a->provider, TR_STORE_NAME_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("model", a->model, TR_STORE_NAME_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("prompt hash", a->prompt_hash, TR_STORE_NAME_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("fallback reason", a->fallback_reason, TR_STORE_MESSAGE_MAX, 0,
                              err);
    if (rc == TR_OK && !(a->confidence >= 0.0 && a->confidence <= 1.0))
        rc = tr_error_set(err, TR_EINVAL, "store: confidence %g is not within 0..1",
                          a->confidence);
    return rc;
}

int store_analysis_insert(tr_store *store, const void *record, int64_t now_ms, int64_t *id,
                          tr_error *err)
{
    const tr_store_analysis *a = record;
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql_analysis_add, &stmt, err);

    if (rc != TR_OK)
        return rc;
    store_bind_int(stmt, 1, a->incident_id, &bind);
    store_bind_text(stmt, 2, a->summary, &bind);
    store_bind_text(stmt, 3, a->root_cause, &bind);
    store_bind_str(stmt, 4, a->severity, &bind);
    store_bind_double(stmt, 5, a->confidence, &bind);
    store_bind_text(stmt, 6, a->evidence_json, &bind);
    store_bind_text(stmt, 7, a->remediation_json, &bind);
    store_bind_text(stmt, 8, a->patch, &bind);
    store_bind_text(stmt, 9, a->provider, &bind);
    store_bind_text(stmt, 10, a->model, &bind);
    store_bind_text(stmt, 11, a->prompt_hash, &bind);
    store_bind_int(stmt, 12, a->tokens_in, &bind);
    store_bind_int(stmt, 13, a->tokens_out, &bind);
    store_bind_text(stmt, 14, a->fallback_reason, &bind);
    store_bind_int(stmt, 15, now_ms, &bind);
    return finish_insert(store, stmt, bind, "add analysis", id, err);
}

int tr_store_analysis_put(tr_store *store, const tr_store_analysis *analysis,
                          const tr_store_transition *t, int64_t now_ms, int64_t *id_out,
                          tr_error *err)
{
    int rc = store_check_analysis(analysis, err);

    if (rc != TR_OK)
        return rc;
    return put_with_transition(store, analysis->incident_id, store_analysis_insert, analysis, t,
                               now_ms, id_out, err);
}

static int analysis_read(sqlite3_stmt *stmt, void *record)
{
    tr_store_analysis *a = record;
    int rc = TR_OK;

    a->id = sqlite3_column_int64(stmt, 0);
    a->incident_id = sqlite3_column_int64(stmt, 1);
    store_column_str(stmt, 2, &a->summary, &rc);
    store_column_str(stmt, 3, &a->root_cause, &rc);
    store_column_str(stmt, 4, &a->severity, &rc);
    a->confidence = sqlite3_column_double(stmt, 5);
    store_column_str(stmt, 6, &a->evidence_json, &rc);
    store_column_str(stmt, 7, &a->remediation_json, &rc);
    store_column_str(stmt, 8, &a->patch, &rc);
    store_column_str(stmt, 9, &a->provider, &rc);
    store_column_str(stmt, 10, &a->model, &rc);
    store_column_str(stmt, 11, &a->prompt_hash, &rc);
    a->tokens_in = sqlite3_column_int64(stmt, 12);
    a->tokens_out = sqlite3_column_int64(stmt, 13);
    store_column_str(stmt, 14, &a->fallback_reason, &rc);
    a->created_ms = sqlite3_column_int64(stmt, 15);
    return rc;
}

static void analysis_clear(void *record)
{
    tr_store_analysis *a = record;

    store_free_str(a->summary);
    store_free_str(a->root_cause);
    store_free_str(a->severity);
    store_free_str(a->evidence_json);
    store_free_str(a->remediation_json);
    store_free_str(a->patch);
    store_free_str(a->provider);
    store_free_str(a->model);
    store_free_str(a->prompt_hash);
    store_free_str(a->fallback_reason);
}

void tr_store_analysis_free(tr_store_analysis *analysis)
{
    if (analysis == NULL)
        return;
    analysis_clear(analysis);
    tr_free(analysis);
}

int tr_store_analysis_latest(tr_store *store, int64_t incident_id, tr_store_analysis **out,
                             tr_error *err)
{
    void *item = NULL;
    size_t count;
    int rc = query_records(store, sql_analysis_latest, incident_id, 1, sizeof(**out),
                           analysis_read, analysis_clear, "latest analysis", &item, &count, err);

    *out = item;
    return rc;
}

/* ------------------------------------------------------------ decisions */

static const char sql_decision_add[] =
    "INSERT INTO decisions (incident_id, decision, actor, reason, created_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5)";
static const char sql_decision_latest[] =
    "SELECT id, incident_id, decision, actor, reason, created_ms FROM decisions"
    " WHERE incident_id = ?1 ORDER BY id DESC LIMIT ?2";

static int decision_insert(tr_store *store, const void *record, int64_t now_ms, int64_t *id,
                           tr_error *err)
{
    const tr_store_decision *decision = record;
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql_decision_add, &stmt, err);

    if (rc != TR_OK)
        return rc;
    store_bind_int(stmt, 1, decision->incident_id, &bind);
    store_bind_text(stmt, 2, decision->accept ? "accept" : "reject", &bind);
    store_bind_text(stmt, 3, decision->actor, &bind);
    store_bind_text(stmt, 4, decision->reason, &bind);
    store_bind_int(stmt, 5, now_ms, &bind);
    return finish_insert(store, stmt, bind, "add decision", id, err);
}

int tr_store_decision_put(tr_store *store, const tr_store_decision *decision,
                          const tr_store_transition *t, int64_t now_ms, int64_t *id_out,
                          tr_error *err)
{
    int rc = store_check_text("actor", decision->actor, TR_STORE_NAME_MAX, 1, err);

    if (rc == TR_OK)
        rc = store_check_text("reason", decision->reason, TR_STORE_MESSAGE_MAX, 0, err);
    if (rc != TR_OK)
        return rc;
    return put_with_transition(store, decision->incident_id, decision_insert, decision, t,
                               now_ms, id_out, err);
}

static int decision_read(sqlite3_stmt *stmt, void *record)
{
    tr_store_decision *decision = record;
    const unsigned char *kind;
    int rc = TR_OK;

    decision->id = sqlite3_column_int64(stmt, 0);
    decision->incident_id = sqlite3_column_int64(stmt, 1);
    kind = sqlite3_column_text(stmt, 2);
    decision->accept = kind != NULL && strcmp((const char *)kind, "accept") == 0;
    store_column_str(stmt, 3, &decision->actor, &rc);
    store_column_str(stmt, 4, &decision->reason, &rc);
    decision->created_ms = sqlite3_column_int64(stmt, 5);
    return rc;
}

static void decision_clear(void *record)
{
    tr_store_decision *decision = record;

    store_free_str(decision->actor);
    store_free_str(decision->reason);
}

void tr_store_decision_free(tr_store_decision *decision)
{
    if (decision == NULL)
        return;
    decision_clear(decision);
    tr_free(decision);
}

int tr_store_decision_latest(tr_store *store, int64_t incident_id, tr_store_decision **out,
                             tr_error *err)
{
    void *item = NULL;
    size_t count;
    int rc = query_records(store, sql_decision_latest, incident_id, 1, sizeof(**out),
                           decision_read, decision_clear, "latest decision", &item, &count, err);

    *out = item;
    return rc;
}

/* ------------------------------------------------------------ pull requests */

#define PR_COLUMNS                                                                    \
    "id, incident_id, forge, url, number, branch, head_commit, state, etag,"         \
    " last_polled_ms, created_ms, updated_ms"

/* A PR URL belongs to one incident: another incident claiming it updates nothing. */
static const char sql_pr_put[] =
    "INSERT INTO pull_requests (incident_id, forge, url, number, branch, head_commit, state,"
    " etag, last_polled_ms, created_ms, updated_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)"
    " ON CONFLICT(url) DO UPDATE SET number = excluded.number, branch = excluded.branch,"
    " head_commit = COALESCE(excluded.head_commit, head_commit), state = excluded.state,"
    " etag = COALESCE(excluded.etag, etag),"
    " last_polled_ms = MAX(last_polled_ms, excluded.last_polled_ms),"
    " updated_ms = excluded.updated_ms"
    " WHERE pull_requests.incident_id = excluded.incident_id"
    " RETURNING id";
static const char sql_pr_latest[] =
    "SELECT " PR_COLUMNS " FROM pull_requests WHERE incident_id = ?1 ORDER BY id DESC LIMIT ?2";
/* ?1 is unused: query_records binds the same two parameters for every query. */
static const char sql_pr_open[] =
    "SELECT " PR_COLUMNS " FROM pull_requests WHERE state = 'open' AND ?1 = ?1"
    " ORDER BY last_polled_ms, id LIMIT ?2";

static int check_pr(const tr_store_pr *pr, tr_error *err)
{
    int rc = store_check_text("forge", pr->forge, TR_STORE_NAME_MAX, 1, err);

    if (rc == TR_OK)
        rc = store_check_text("PR url", pr->url, TR_STORE_NAME_MAX, 1, err);
    if (rc == TR_OK)
        rc = store_check_text("branch", pr->branch, TR_STORE_NAME_MAX, 1, err);
    if (rc == TR_OK)
        rc = store_check_text("head commit", pr->head_commit, TR_STORE_NAME_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("etag", pr->etag, TR_STORE_NAME_MAX, 0, err);
    if (rc == TR_OK && (pr->state == NULL || (strcmp(pr->state, "open") != 0 &&
                                              strcmp(pr->state, "merged") != 0 &&
                                              strcmp(pr->state, "closed") != 0)))
        rc = tr_error_set(err, TR_EINVAL, "store: PR state must be open, merged or closed");
    return rc;
}

static int pr_insert(tr_store *store, const void *record, int64_t now_ms, int64_t *id,
                     tr_error *err)
{
    const tr_store_pr *pr = record;
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql_pr_put, &stmt, err);

    if (rc != TR_OK)
        return rc;
    store_bind_int(stmt, 1, pr->incident_id, &bind);
    store_bind_text(stmt, 2, pr->forge, &bind);
    store_bind_text(stmt, 3, pr->url, &bind);
    store_bind_int(stmt, 4, pr->number, &bind);
    store_bind_text(stmt, 5, pr->branch, &bind);
    store_bind_text(stmt, 6, pr->head_commit, &bind);
    store_bind_text(stmt, 7, pr->state, &bind);
    store_bind_text(stmt, 8, pr->etag, &bind);
    store_bind_int(stmt, 9, pr->last_polled_ms, &bind);
    store_bind_int(stmt, 10, now_ms, &bind);
    rc = bind == SQLITE_OK ? sqlite3_step(stmt) : bind;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(stmt, 0);
        rc = sqlite3_step(stmt);
    } else if (rc == SQLITE_DONE) {
        store_done(stmt);
        return tr_error_set(err, TR_ECONFLICT, "store: PR %s belongs to another incident",
                            pr->url);
    }
    rc = rc == SQLITE_DONE ? TR_OK : store_fail(store, rc, "put PR", err);
    store_done(stmt);
    return rc;
}

int tr_store_pr_put(tr_store *store, const tr_store_pr *pr, const tr_store_transition *t,
                    int64_t now_ms, int64_t *id_out, tr_error *err)
{
    int rc = check_pr(pr, err);

    if (rc != TR_OK)
        return rc;
    return put_with_transition(store, pr->incident_id, pr_insert, pr, t, now_ms, id_out, err);
}

static int pr_read(sqlite3_stmt *stmt, void *record)
{
    tr_store_pr *pr = record;
    int rc = TR_OK;

    pr->id = sqlite3_column_int64(stmt, 0);
    pr->incident_id = sqlite3_column_int64(stmt, 1);
    store_column_str(stmt, 2, &pr->forge, &rc);
    store_column_str(stmt, 3, &pr->url, &rc);
    pr->number = sqlite3_column_int64(stmt, 4);
    store_column_str(stmt, 5, &pr->branch, &rc);
    store_column_str(stmt, 6, &pr->head_commit, &rc);
    store_column_str(stmt, 7, &pr->state, &rc);
    store_column_str(stmt, 8, &pr->etag, &rc);
    pr->last_polled_ms = sqlite3_column_int64(stmt, 9);
    pr->created_ms = sqlite3_column_int64(stmt, 10);
    pr->updated_ms = sqlite3_column_int64(stmt, 11);
    return rc;
}

static void pr_clear(void *record)
{
    tr_store_pr *pr = record;

    store_free_str(pr->forge);
    store_free_str(pr->url);
    store_free_str(pr->branch);
    store_free_str(pr->head_commit);
    store_free_str(pr->state);
    store_free_str(pr->etag);
}

void tr_store_pr_free(tr_store_pr *pr)
{
    if (pr == NULL)
        return;
    pr_clear(pr);
    tr_free(pr);
}

void tr_store_pr_list_free(tr_store_pr_list *list)
{
    size_t i;

    if (list == NULL)
        return;
    for (i = 0; i < list->count; i++)
        pr_clear(&list->items[i]);
    tr_free(list->items);
    tr_free(list);
}

int tr_store_pr_latest(tr_store *store, int64_t incident_id, tr_store_pr **out, tr_error *err)
{
    void *item = NULL;
    size_t count;
    int rc = query_records(store, sql_pr_latest, incident_id, 1, sizeof(**out), pr_read,
                           pr_clear, "latest PR", &item, &count, err);

    *out = item;
    return rc;
}

int tr_store_pr_list_open(tr_store *store, size_t limit, tr_store_pr_list **out, tr_error *err)
{
    tr_store_pr_list *list;
    void *items = NULL;
    size_t count = 0;
    int rc;

    *out = NULL;
    list = tr_calloc(1, sizeof(*list));
    if (list == NULL)
        return tr_error_set(err, TR_ENOMEM, "store: open PRs: out of memory");
    rc = query_records(store, sql_pr_open, 0, store_clamp_limit(limit), sizeof(tr_store_pr),
                       pr_read, pr_clear, "open PRs", &items, &count, err);
    if (rc == TR_ENOTFOUND) {
        /* an empty work list is not an error */
        rc = TR_OK;
    }
    if (rc != TR_OK) {
        tr_free(list);
        return rc;
    }
    list->items = items;
    list->count = count;
    *out = list;
    return TR_OK;
}
