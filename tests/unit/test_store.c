#include "testutil.h"

#include "error.h"
#include "store.h"

#include <dirent.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

/* Each test gets a fresh directory; the database is real, on disk. */
typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static fixture fx;

#define T0 ((int64_t)1700000000000)
#define MINUTE ((int64_t)60000)

static int setup(void **state)
{
    (void)state;
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_store.XXXXXX");
    if (mkdtemp(fx.dir) == NULL)
        return -1;
    snprintf(fx.path, sizeof(fx.path), "%s/triaged.db", fx.dir);
    return 0;
}

static int teardown(void **state)
{
    char file[512];
    struct dirent *entry;
    DIR *dir = opendir(fx.dir);

    (void)state;
    if (dir == NULL)
        return -1;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        snprintf(file, sizeof(file), "%s/%s", fx.dir, entry->d_name);
        unlink(file);
    }
    closedir(dir);
    return rmdir(fx.dir);
}

static tr_store *open_ok(const char *path)
{
    tr_store *store = NULL;
    tr_error err = { 0 };
    int rc = tr_store_open(&store, path, &err);

    if (rc != TR_OK)
        fail_msg("tr_store_open: %s", err.message);
    return store;
}

/* Read one integer with a separate connection, as another process would. */
static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    int64_t value = -1;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return value;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                     NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static tr_store_observation crashloop(const char *fingerprint, int64_t observed_ms)
{
    tr_store_observation obs = { 0 };

    obs.fingerprint = fingerprint;
    obs.source = "kubernetes";
    obs.cluster = "prod";
    obs.namespace = "shop";
    obs.kind = "Pod";
    obs.name = "web-7f9c-abcde";
    obs.owner_kind = "Deployment";
    obs.owner_name = "web";
    obs.failure_class = "CrashLoopBackOff";
    obs.message = "back-off restarting failed container";
    obs.raw_ref = "v1/Pod/shop/web-7f9c-abcde";
    obs.facts_json = "{\"exit_code\":1,\"restart_count\":4}";
    obs.observed_ms = observed_ms;
    return obs;
}

static int64_t observe_ok(tr_store *store, const char *fingerprint, int64_t t, int outcome)
{
    tr_store_observation obs = crashloop(fingerprint, t);
    tr_store_obs_result result = { 0 };
    tr_error err = { 0 };

    if (tr_store_observe(store, &obs, 30 * MINUTE, t, &result, &err) != TR_OK)
        fail_msg("observe: %s", err.message);
    assert_int_equal(result.outcome, outcome);
    return result.incident_id;
}

static tr_store_incident *get_ok(tr_store *store, int64_t id)
{
    tr_store_incident *incident = NULL;
    tr_error err = { 0 };

    if (tr_store_incident_get(store, id, &incident, &err) != TR_OK)
        fail_msg("get: %s", err.message);
    return incident;
}

static int64_t pending_for(tr_store *store, const char *sink)
{
    tr_store_outbox_stats *stats = NULL;
    int64_t pending = -1;
    size_t i;

    assert_int_equal(tr_store_outbox_stats_get(store, &stats, NULL), TR_OK);
    for (i = 0; i < stats->count; i++)
        if (strcmp(stats->items[i].sink, sink) == 0)
            pending = stats->items[i].pending;
    tr_store_outbox_stats_free(stats);
    return pending;
}

static tr_store_delivery_list *due(tr_store *store, const char *sink, int64_t now_ms)
{
    tr_store_delivery_list *list = NULL;
    tr_error err = { 0 };

    if (tr_store_outbox_due(store, sink, now_ms, 0, 100, &list, &err) != TR_OK)
        fail_msg("due: %s", err.message);
    return list;
}

/* ------------------------------------------------------------ open */

static void test_store_open_creates_schema_in_wal_mode_private_file(void **state)
{
    tr_store *store;
    struct stat st;

    (void)state;
    store = open_ok(fx.path);
    assert_int_equal(stat(fx.path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(raw_int(fx.path, "PRAGMA user_version"), tr_store_schema_version());
    assert_int_equal(raw_int(fx.path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
                                      " AND name IN ('incidents', 'observations', 'analyses',"
                                      " 'evidence', 'decisions', 'pull_requests',"
                                      " 'outbox_messages', 'outbox_sinks', 'outbox_deliveries',"
                                      " 'watch_state', 'budgets', 'terraform_files', 'kv')"),
                     13);
    assert_int_equal(raw_int(fx.path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
    tr_store_close(store);
}

static void test_store_reopen_keeps_data(void **state)
{
    tr_store *store;
    tr_store_incident *incident;
    int64_t id;

    (void)state;
    store = open_ok(fx.path);
    id = observe_ok(store, "prod/shop/Deployment/web/CrashLoopBackOff", T0, TR_OBS_CREATED);
    tr_store_close(store);

    store = open_ok(fx.path);
    incident = get_ok(store, id);
    assert_string_equal(incident->fingerprint, "prod/shop/Deployment/web/CrashLoopBackOff");
    assert_string_equal(incident->kind, "Deployment");
    assert_string_equal(incident->name, "web");
    assert_string_equal(incident->failure_class, "CrashLoopBackOff");
    assert_string_equal(incident->facts_json, "{\"exit_code\":1,\"restart_count\":4}");
    assert_int_equal(incident->state, TR_INCIDENT_OPEN);
    assert_int_equal(incident->first_seen_ms, T0);
    tr_store_incident_free(incident);
    tr_store_close(store);
}

static void test_store_refuses_newer_schema_untouched(void **state)
{
    tr_store *store = NULL;
    tr_error err = { 0 };

    (void)state;
    raw_exec(fx.path, "CREATE TABLE future (x); PRAGMA user_version = 99;");
    assert_int_equal(tr_store_open(&store, fx.path, &err), TR_ESTORE);
    assert_null(store);
    assert_non_null(strstr(err.message, "schema version 99"));
    assert_non_null(strstr(err.message, "newer"));
    assert_int_equal(raw_int(fx.path, "PRAGMA user_version"), 99);
    assert_int_equal(raw_int(fx.path, "SELECT journal_mode = 'delete' FROM pragma_journal_mode"),
                     1);
    assert_int_equal(raw_int(fx.path, "SELECT COUNT(*) FROM sqlite_master WHERE name = "
                                      "'incidents'"), 0);
}

static void test_store_refuses_a_file_that_is_not_a_database(void **state)
{
    tr_store *store = NULL;
    tr_error err = { 0 };
    FILE *f = fopen(fx.path, "w");

    (void)state;
    assert_non_null(f);
    fputs("this is not sqlite, just text that is long enough to have a header..........\n", f);
    fclose(f);
    assert_int_not_equal(tr_store_open(&store, fx.path, &err), TR_OK);
    assert_null(store);
    assert_non_null(strstr(err.message, "not a database"));
}

/*
 * Open with the n-th allocation failing (sticky: and every one after it),
 * for n growing until the open needs no more than n allocations. A fresh
 * database takes thousands (the schema is parsed), so n grows by ~6% a step.
 * Returns how many opens failed.
 */
static int open_under_allocation_failures(int fresh, int sticky, long baseline)
{
    char path[192];
    tr_store *store;
    int failures = 0;
    long n;

    for (n = 1; n < 20000; n += 1 + n / 16) {
        tr_error err = { 0 };
        int rc;

        if (fresh)
            snprintf(path, sizeof(path), "%s/alloc-%d-%ld.db", fx.dir, sticky, n);
        else
            snprintf(path, sizeof(path), "%s", fx.path);
        store = NULL;
        tr_alloc_fail_after(n, sticky);
        rc = tr_store_open(&store, path, &err);
        tr_alloc_fail_after(0, 0);
        if (rc == TR_OK) {
            tr_store_close(store);
            assert_int_equal(tr_alloc_live(), baseline);
            if (sticky)
                return failures; /* the open needs fewer than n allocations */
            continue;
        }
        failures++;
        assert_null(store);
        assert_true(err.message[0] != '\0');
        assert_int_equal(tr_alloc_live(), baseline);
        /* Whatever the failure left behind, a normal open completes the schema. */
        store = open_ok(path);
        tr_store_close(store);
        assert_int_equal(raw_int(path, "PRAGMA user_version"), tr_store_schema_version());
        assert_int_equal(tr_alloc_live(), baseline);
    }
    if (sticky)
        fail_msg("the open never succeeded");
    return failures;
}

static void test_store_open_survives_allocation_failures(void **state)
{
    tr_store *store;
    long baseline;

    (void)state;
    /* SQLite allocates process-wide state once; count from after that. */
    store = open_ok(fx.path);
    tr_store_close(store);
    baseline = tr_alloc_live();
    assert_true(open_under_allocation_failures(1, 1, baseline) > 50);
    assert_true(open_under_allocation_failures(1, 0, baseline) > 0);
    assert_true(open_under_allocation_failures(0, 1, baseline) > 10);
    assert_true(open_under_allocation_failures(0, 0, baseline) > 0);
    assert_int_equal(tr_alloc_live(), baseline);
}

/* ------------------------------------------------------------ incidents */

static void test_store_dedups_200_observations_into_one_incident_one_message(void **state)
{
    const char *fp = "prod/shop/Deployment/web/CrashLoopBackOff";
    tr_store_delivery_list *list;
    tr_store_incident *incident;
    tr_store *store;
    int64_t id;
    int i;

    (void)state;
    store = open_ok(fx.path);
    assert_int_equal(tr_store_outbox_register_sink(store, "slack", T0, NULL), TR_OK);
    id = observe_ok(store, fp, T0, TR_OBS_CREATED);
    for (i = 1; i < 200; i++)
        assert_int_equal(observe_ok(store, fp, T0 + i * 1000, TR_OBS_UPDATED), id);

    incident = get_ok(store, id);
    assert_int_equal(incident->observation_count, 200);
    assert_int_equal(incident->first_seen_ms, T0);
    assert_int_equal(incident->last_seen_ms, T0 + 199 * 1000);
    assert_int_equal(incident->state, TR_INCIDENT_OPEN);
    tr_store_incident_free(incident);
    /* history is bounded; the count is not */
    assert_int_equal(raw_int(fx.path, "SELECT COUNT(*) FROM observations"),
                     TR_STORE_OBSERVATIONS_KEPT);

    list = due(store, "slack", T0 + 200 * 1000);
    assert_int_equal(list->count, 1);
    assert_string_equal(list->items[0].event, "incident.opened");
    assert_int_equal(list->items[0].incident_id, id);
    assert_non_null(strstr(list->items[0].payload_json, "\"fingerprint\":\"prod/shop/"));
    assert_non_null(strstr(list->items[0].payload_json, "\"state\":\"open\""));
    tr_store_delivery_list_free(list);
    tr_store_close(store);
}

static void test_store_reopen_after_resolve_emits_reopened(void **state)
{
    const char *fp = "prod/shop/Deployment/api/OOMKilled";
    tr_store_transition resolve = { .to = TR_INCIDENT_RESOLVED, .event = "incident.resolved" };
    tr_store_delivery_list *list;
    tr_store_incident *incident;
    tr_store *store;
    int64_t id;

    (void)state;
    store = open_ok(fx.path);
    assert_int_equal(tr_store_outbox_register_sink(store, "log", T0, NULL), TR_OK);
    id = observe_ok(store, fp, T0, TR_OBS_CREATED);
    assert_int_equal(tr_store_incident_transition(store, id, &resolve, T0 + MINUTE, NULL), TR_OK);
    incident = get_ok(store, id);
    assert_int_equal(incident->state, TR_INCIDENT_RESOLVED);
    assert_int_equal(incident->resolved_at_ms, T0 + MINUTE);
    tr_store_incident_free(incident);

    assert_int_equal(observe_ok(store, fp, T0 + 2 * MINUTE, TR_OBS_REOPENED), id);
    incident = get_ok(store, id);
    assert_int_equal(incident->state, TR_INCIDENT_OPEN);
    assert_int_equal(incident->reopen_count, 1);
    assert_int_equal(incident->resolved_at_ms, 0);
    assert_int_equal(incident->observation_count, 2);
    tr_store_incident_free(incident);

    list = due(store, "log", T0 + 3 * MINUTE);
    assert_int_equal(list->count, 3);
    assert_string_equal(list->items[0].event, "incident.opened");
    assert_string_equal(list->items[1].event, "incident.resolved");
    assert_string_equal(list->items[2].event, "incident.reopened");
    assert_non_null(strstr(list->items[2].payload_json, "\"previous_state\":\"resolved\""));
    tr_store_delivery_list_free(list);
    tr_store_close(store);
}

static void test_store_failed_incident_is_retired_after_dedup_window(void **state)
{
    const char *fp = "prod/shop/Job/backup/BackoffLimitExceeded";
    tr_store_transition fail = { .to = TR_INCIDENT_FAILED, .error_text = "LLM timed out" };
    tr_store_incident *old, *fresh = NULL;
    tr_store *store;
    int64_t id, id2;

    (void)state;
    store = open_ok(fx.path);
    id = observe_ok(store, fp, T0, TR_OBS_CREATED);
    assert_int_equal(tr_store_incident_transition(store, id, &fail, T0, NULL), TR_OK);
    assert_int_equal(observe_ok(store, fp, T0 + 10 * MINUTE, TR_OBS_UPDATED), id);
    id2 = observe_ok(store, fp, T0 + 60 * MINUTE, TR_OBS_CREATED);
    assert_true(id2 > id);

    old = get_ok(store, id);
    assert_int_equal(old->state, TR_INCIDENT_FAILED);
    assert_string_equal(old->error, "LLM timed out");
    assert_int_equal(old->live, 0);
    assert_int_equal(old->observation_count, 2);
    assert_int_equal(tr_store_incident_find(store, fp, &fresh, NULL), TR_OK);
    assert_int_equal(fresh->id, id2);
    assert_int_equal(fresh->live, 1);
    assert_int_equal(fresh->observation_count, 1);
    tr_store_incident_free(old);
    tr_store_incident_free(fresh);
    tr_store_close(store);
}

static void test_store_illegal_transition_conflicts_and_changes_nothing(void **state)
{
    tr_store_transition merge = { .to = TR_INCIDENT_PR_MERGED, .event = "pr.merged" };
    tr_store_transition wrong_from = { .expect_from = TR_INCIDENT_TRIAGED,
                                       .to = TR_INCIDENT_ANALYZED, .event = "incident.analyzed" };
    tr_store_incident *incident;
    tr_store *store;
    tr_error err = { 0 };
    int64_t id;

    (void)state;
    store = open_ok(fx.path);
    assert_int_equal(tr_store_outbox_register_sink(store, "slack", T0, NULL), TR_OK);
    id = observe_ok(store, "fp-1", T0, TR_OBS_CREATED);
    assert_int_equal(pending_for(store, "slack"), 1);

    assert_int_equal(tr_store_incident_transition(store, id, &merge, T0 + 5, &err),
                     TR_ECONFLICT);
    assert_non_null(strstr(err.message, "open -> pr_merged"));
    assert_int_equal(tr_store_incident_transition(store, id, &wrong_from, T0 + 5, &err),
                     TR_ECONFLICT);
    assert_int_equal(tr_store_incident_transition(store, id + 100, &merge, T0 + 5, &err),
                     TR_ENOTFOUND);

    incident = get_ok(store, id);
    assert_int_equal(incident->state, TR_INCIDENT_OPEN);
    assert_int_equal(incident->updated_ms, T0);
    tr_store_incident_free(incident);
    assert_int_equal(pending_for(store, "slack"), 1);
    assert_false(tr_store_state_allowed(TR_INCIDENT_RESOLVED, TR_INCIDENT_ANALYZED));
    assert_true(tr_store_state_allowed(TR_INCIDENT_PR_OPEN, TR_INCIDENT_REJECTED));
    assert_int_equal(tr_store_state_parse("patch_proposed"), TR_INCIDENT_PATCH_PROPOSED);
    assert_string_equal(tr_store_state_name(TR_INCIDENT_PR_CLOSED), "pr_closed");
    tr_store_close(store);
}

static void test_store_transition_and_outbox_are_atomic(void **state)
{
    tr_store_transition triage = { .expect_from = TR_INCIDENT_OPEN, .to = TR_INCIDENT_TRIAGED,
                                   .event = "incident.triaged" };
    tr_store_transition analyzed = { .expect_from = TR_INCIDENT_TRIAGED,
                                     .to = TR_INCIDENT_ANALYZED, .event = "incident.analyzed" };
    tr_store_analysis analysis = { 0 };
    tr_store_analysis *latest = NULL;
    tr_store_incident *incident;
    tr_store *store;
    tr_error err = { 0 };
    int64_t id;
    long n;
    int rc = TR_ERROR;

    (void)state;
    store = open_ok(fx.path);
    assert_int_equal(tr_store_outbox_register_sink(store, "slack", T0, NULL), TR_OK);
    id = observe_ok(store, "fp-atomic", T0, TR_OBS_CREATED);

    /* The outbox insert fails after the state update ran: both must be gone. */
    raw_exec(fx.path, "CREATE TRIGGER no_outbox BEFORE INSERT ON outbox_messages"
                      " BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
    assert_int_not_equal(tr_store_incident_transition(store, id, &triage, T0 + 1, &err), TR_OK);
    assert_non_null(strstr(err.message, "injected failure"));
    incident = get_ok(store, id);
    assert_int_equal(incident->state, TR_INCIDENT_OPEN);
    tr_store_incident_free(incident);
    raw_exec(fx.path, "DROP TRIGGER no_outbox");
    assert_int_equal(pending_for(store, "slack"), 1);
    assert_int_equal(tr_store_incident_transition(store, id, &triage, T0 + 1, &err), TR_OK);
    assert_int_equal(pending_for(store, "slack"), 2);

    /* Fail each allocation in turn: either everything is written or nothing. */
    analysis.incident_id = id;
    analysis.summary = "container exits with code 1";
    analysis.root_cause = "missing DATABASE_URL";
    analysis.severity = "high";
    analysis.confidence = 0.8;
    analysis.provider = "openai";
    for (n = 1; n < 500 && rc != TR_OK; n++) {
        tr_alloc_fail_after(n, 1);
        rc = tr_store_analysis_put(store, &analysis, &analyzed, T0 + 2, NULL, &err);
        tr_alloc_fail_after(0, 0);
        if (rc == TR_OK)
            break;
        incident = get_ok(store, id);
        assert_int_equal(incident->state, TR_INCIDENT_TRIAGED);
        tr_store_incident_free(incident);
        assert_int_equal(pending_for(store, "slack"), 2);
        assert_int_equal(tr_store_analysis_latest(store, id, &latest, NULL), TR_ENOTFOUND);
    }
    assert_int_equal(rc, TR_OK);
    assert_true(n > 1);
    incident = get_ok(store, id);
    assert_int_equal(incident->state, TR_INCIDENT_ANALYZED);
    tr_store_incident_free(incident);
    assert_int_equal(pending_for(store, "slack"), 3);
    assert_int_equal(tr_store_analysis_latest(store, id, &latest, NULL), TR_OK);
    assert_string_equal(latest->root_cause, "missing DATABASE_URL");
    tr_store_analysis_free(latest);
    tr_store_close(store);
}

static void test_store_lists_newest_first_with_paging_and_filters(void **state)
{
    tr_store_incident_filter filter = { 0 };
    tr_store_incident_list *page;
    tr_store *store;
    int64_t ids[25];
    int64_t counts[TR_INCIDENT_STATE_COUNT];
    char fp[32];
    int i;

    (void)state;
    store = open_ok(fx.path);
    for (i = 0; i < 25; i++) {
        tr_store_observation obs;
        tr_store_obs_result result;

        snprintf(fp, sizeof(fp), "fp-%02d", i);
        obs = crashloop(fp, T0 + i);
        obs.namespace = (i % 5 == 0) ? "payments" : "shop";
        assert_int_equal(tr_store_observe(store, &obs, MINUTE, T0 + i, &result, NULL), TR_OK);
        ids[i] = result.incident_id;
    }
    filter.limit = 10;
    assert_int_equal(tr_store_incident_list_get(store, &filter, &page, NULL), TR_OK);
    assert_int_equal(page->count, 10);
    assert_int_equal(page->items[0].id, ids[24]);
    assert_int_equal(page->items[9].id, ids[15]);
    filter.before_id = page->next_before_id;
    tr_store_incident_list_free(page);
    assert_int_equal(tr_store_incident_list_get(store, &filter, &page, NULL), TR_OK);
    assert_int_equal(page->items[0].id, ids[14]);
    filter.before_id = page->next_before_id;
    tr_store_incident_list_free(page);
    assert_int_equal(tr_store_incident_list_get(store, &filter, &page, NULL), TR_OK);
    assert_int_equal(page->count, 5);
    assert_int_equal(page->items[4].id, ids[0]);
    assert_int_equal(page->next_before_id, 0);
    tr_store_incident_list_free(page);

    memset(&filter, 0, sizeof(filter));
    filter.namespace = "payments";
    assert_int_equal(tr_store_incident_list_get(store, &filter, &page, NULL), TR_OK);
    assert_int_equal(page->count, 5);
    assert_string_equal(page->items[0].namespace, "payments");
    tr_store_incident_list_free(page);

    assert_int_equal(tr_store_incident_transition(store, ids[3],
                     &(tr_store_transition){ .to = TR_INCIDENT_REJECTED }, T0, NULL), TR_OK);
    memset(&filter, 0, sizeof(filter));
    filter.state = TR_INCIDENT_REJECTED;
    assert_int_equal(tr_store_incident_list_get(store, &filter, &page, NULL), TR_OK);
    assert_int_equal(page->count, 1);
    assert_int_equal(page->items[0].id, ids[3]);
    tr_store_incident_list_free(page);

    assert_int_equal(tr_store_incident_counts(store, counts, NULL), TR_OK);
    assert_int_equal(counts[TR_INCIDENT_OPEN], 24);
    assert_int_equal(counts[TR_INCIDENT_REJECTED], 1);
    assert_int_equal(counts[TR_INCIDENT_RESOLVED], 0);
    tr_store_close(store);
}

static void test_store_pipeline_records_round_trip(void **state)
{
    tr_store_transition triaged = { .to = TR_INCIDENT_TRIAGED };
    tr_store_transition proposed = { .to = TR_INCIDENT_PATCH_PROPOSED };
    tr_store_transition accepted = { .expect_from = TR_INCIDENT_PATCH_PROPOSED,
                                     .to = TR_INCIDENT_ACCEPTED, .event = "incident.accepted" };
    tr_store_transition pr_open = { .to = TR_INCIDENT_PR_OPEN, .event = "pr.opened" };
    tr_store_transition pr_merged = { .to = TR_INCIDENT_PR_MERGED, .event = "pr.merged" };
    tr_store_evidence evidence = { 0 }, *bundle = NULL;
    tr_store_analysis analysis = { 0 };
    tr_store_decision decision = { 0 }, *last = NULL;
    tr_store_pr pr = { 0 }, *latest = NULL;
    tr_store_pr_list *open_prs = NULL;
    tr_store_incident *incident;
    tr_store *store;
    tr_error err = { 0 };
    int64_t id, pr_id = 0, pr_id2 = 0;

    (void)state;
    store = open_ok(fx.path);
    id = observe_ok(store, "fp-records", T0, TR_OBS_CREATED);
    assert_int_equal(tr_store_evidence_latest(store, id, &bundle, NULL), TR_ENOTFOUND);
    evidence.incident_id = id;
    evidence.bundle_json = "{\"logs\":\"panic: DATABASE_URL unset\"}";
    evidence.token_estimate = 420;
    assert_int_equal(tr_store_evidence_put(store, &evidence, &triaged, T0 + 1, NULL, NULL), TR_OK);
    assert_int_equal(tr_store_evidence_latest(store, id, &bundle, NULL), TR_OK);
    assert_string_equal(bundle->bundle_json, evidence.bundle_json);
    assert_int_equal(bundle->token_estimate, 420);
    tr_store_evidence_free(bundle);

    analysis.incident_id = id;
    analysis.summary = "s";
    analysis.root_cause = "r";
    analysis.confidence = 1.5;
    assert_int_equal(tr_store_analysis_put(store, &analysis, NULL, T0, NULL, NULL), TR_EINVAL);
    analysis.confidence = 0.9;
    analysis.patch = "--- a/x\n+++ b/x\n";
    assert_int_equal(tr_store_analysis_put(store, &analysis,
                     &(tr_store_transition){ .to = TR_INCIDENT_ANALYZED }, T0 + 2, NULL, NULL),
                     TR_OK);
    assert_int_equal(tr_store_incident_transition(store, id, &proposed, T0 + 3, NULL), TR_OK);

    decision.incident_id = id;
    decision.accept = 1;
    decision.actor = "slack:U123";
    assert_int_equal(tr_store_decision_put(store, &decision, &accepted, T0 + 4, NULL, NULL),
                     TR_OK);
    /* accepting twice is refused by the expected-from check, and records nothing */
    decision.actor = "cli";
    assert_int_equal(tr_store_decision_put(store, &decision, &accepted, T0 + 5, NULL, &err),
                     TR_ECONFLICT);
    assert_int_equal(tr_store_decision_latest(store, id, &last, NULL), TR_OK);
    assert_string_equal(last->actor, "slack:U123");
    assert_int_equal(last->accept, 1);
    tr_store_decision_free(last);

    pr.incident_id = id;
    pr.forge = "github";
    pr.url = "https://github.com/acme/gitops/pull/7";
    pr.number = 7;
    pr.branch = "triaged/1";
    pr.head_commit = "abc123";
    pr.state = "open";
    assert_int_equal(tr_store_pr_put(store, &pr, &pr_open, T0 + 6, &pr_id, NULL), TR_OK);
    assert_int_equal(tr_store_pr_list_open(store, 10, &open_prs, NULL), TR_OK);
    assert_int_equal(open_prs->count, 1);
    assert_string_equal(open_prs->items[0].url, pr.url);
    tr_store_pr_list_free(open_prs);

    pr.state = "merged";
    pr.head_commit = NULL;
    pr.etag = "W/\"e1\"";
    pr.last_polled_ms = T0 + 7;
    assert_int_equal(tr_store_pr_put(store, &pr, &pr_merged, T0 + 7, &pr_id2, NULL), TR_OK);
    assert_int_equal(pr_id2, pr_id);
    assert_int_equal(tr_store_pr_latest(store, id, &latest, NULL), TR_OK);
    assert_string_equal(latest->state, "merged");
    assert_string_equal(latest->head_commit, "abc123");
    assert_string_equal(latest->etag, "W/\"e1\"");
    assert_int_equal(latest->last_polled_ms, T0 + 7);
    tr_store_pr_free(latest);
    assert_int_equal(tr_store_pr_list_open(store, 10, &open_prs, NULL), TR_OK);
    assert_int_equal(open_prs->count, 0);
    tr_store_pr_list_free(open_prs);

    incident = get_ok(store, id);
    assert_int_equal(incident->state, TR_INCIDENT_PR_MERGED);
    tr_store_incident_free(incident);
    tr_store_close(store);
}

static void test_store_rejects_oversized_and_missing_input(void **state)
{
    tr_store_observation obs = crashloop("fp-big", T0);
    char *big = tr_malloc(TR_STORE_MESSAGE_MAX + 2);
    tr_store *store;
    tr_error err = { 0 };

    (void)state;
    assert_non_null(big);
    memset(big, 'x', TR_STORE_MESSAGE_MAX + 1);
    big[TR_STORE_MESSAGE_MAX + 1] = '\0';
    store = open_ok(fx.path);
    obs.message = big;
    assert_int_equal(tr_store_observe(store, &obs, MINUTE, T0, NULL, &err), TR_ETOOBIG);
    assert_non_null(strstr(err.message, "message"));
    obs.message = "ok";
    obs.fingerprint = NULL;
    assert_int_equal(tr_store_observe(store, &obs, MINUTE, T0, NULL, &err), TR_EINVAL);
    assert_int_equal(tr_store_outbox_enqueue(store, 0, "Bad Event", "{}", T0, NULL, &err),
                     TR_EINVAL);
    assert_int_equal(raw_int(fx.path, "SELECT COUNT(*) FROM incidents"), 0);
    tr_free(big);
    tr_store_close(store);
}

static void test_store_batch_commits_its_steps_together_and_undoes_a_failed_one(void **state)
{
    tr_store_transition merge = { .to = TR_INCIDENT_PR_MERGED, .event = "pr.merged" };
    tr_store *store;
    tr_error err = { 0 };
    int64_t a, b;

    (void)state;
    store = open_ok(fx.path);
    assert_int_equal(tr_store_outbox_register_sink(store, "slack", T0, NULL), TR_OK);
    /* A burst that writes nothing commits nothing. */
    assert_int_equal(tr_store_batch_begin(store, &err), TR_OK);
    assert_int_equal(tr_store_batch_begin(store, &err), TR_EINVAL);
    assert_int_equal(tr_store_batch_commit(store, &err), TR_OK);
    assert_int_equal(tr_store_batch_commit(store, &err), TR_EINVAL);

    assert_int_equal(tr_store_batch_begin(store, &err), TR_OK);
    a = observe_ok(store, "fp-a", T0, TR_OBS_CREATED);
    b = observe_ok(store, "fp-b", T0 + 1, TR_OBS_CREATED);
    /* Not durable yet: another connection does not see the batch. */
    assert_int_equal(raw_int(fx.path, "SELECT COUNT(*) FROM incidents"), 0);
    /* A failing step is undone alone and reports its error as usual. */
    assert_int_equal(tr_store_incident_transition(store, a, &merge, T0 + 5, &err),
                     TR_ECONFLICT);
    assert_int_equal(observe_ok(store, "fp-a", T0 + 2, TR_OBS_UPDATED), a);
    assert_int_equal(tr_store_batch_commit(store, &err), TR_OK);
    assert_int_equal(raw_int(fx.path, "SELECT COUNT(*) FROM incidents"), 2);
    assert_int_equal(raw_int(fx.path, "SELECT COUNT(*) FROM incidents WHERE state = 'open'"),
                     2);
    assert_int_equal(pending_for(store, "slack"), 2);
    assert_true(b > a);
    tr_store_close(store);

    /* A batch never committed (the process died) leaves nothing behind. */
    store = open_ok(fx.path);
    assert_int_equal(tr_store_batch_begin(store, &err), TR_OK);
    (void)observe_ok(store, "fp-c", T0 + 10, TR_OBS_CREATED);
    tr_store_close(store);
    assert_int_equal(raw_int(fx.path, "SELECT COUNT(*) FROM incidents"), 2);
}

/* ------------------------------------------------------------ outbox */

static void test_store_outbox_per_sink_delivery_backoff_and_dead_letter(void **state)
{
    tr_store_delivery_list *slack, *hook, *dead;
    tr_store_outbox_stats *stats;
    tr_store *store;
    tr_error err = { 0 };
    int64_t message = 0;
    int is_dead = -1;

    (void)state;
    store = open_ok(fx.path);
    assert_int_equal(tr_store_outbox_register_sink(store, "slack", T0, NULL), TR_OK);
    assert_int_equal(tr_store_outbox_register_sink(store, "webhook", T0, NULL), TR_OK);
    assert_int_equal(tr_store_outbox_enqueue(store, 0, "pr.opened", "{\"n\":7}", T0, &message,
                                             NULL), TR_OK);

    slack = due(store, "slack", T0);
    assert_int_equal(slack->count, 1);
    assert_int_equal(slack->items[0].message_id, message);
    assert_string_equal(slack->items[0].payload_json, "{\"n\":7}");
    assert_int_equal(strlen(slack->items[0].delivery_id), 32);
    assert_int_equal(tr_store_outbox_delivered(store, slack->items[0].id, T0 + 1, NULL), TR_OK);
    assert_int_equal(tr_store_outbox_delivered(store, slack->items[0].id, T0 + 2, NULL), TR_OK);

    hook = due(store, "webhook", T0);
    assert_int_equal(hook->count, 1);
    assert_int_equal(hook->items[0].message_id, message);
    assert_string_not_equal(hook->items[0].delivery_id, slack->items[0].delivery_id);
    assert_int_equal(tr_store_outbox_failed(store, slack->items[0].id, "late", T0, 5, T0, NULL,
                                            &err), TR_ECONFLICT);
    tr_store_delivery_list_free(slack);
    slack = due(store, "slack", T0 + 1000 * MINUTE);
    assert_int_equal(slack->count, 0);
    tr_store_delivery_list_free(slack);

    assert_int_equal(tr_store_outbox_failed(store, hook->items[0].id, "HTTP 503", T0 + 1000, 3,
                                            T0, &is_dead, NULL), TR_OK);
    assert_int_equal(is_dead, 0);
    tr_store_delivery_list_free(hook);
    hook = due(store, "webhook", T0 + 500);
    assert_int_equal(hook->count, 0);
    tr_store_delivery_list_free(hook);
    hook = due(store, "webhook", T0 + 1000);
    assert_int_equal(hook->count, 1);
    assert_int_equal(hook->items[0].attempts, 1);
    assert_string_equal(hook->items[0].last_error, "HTTP 503");
    assert_int_equal(tr_store_outbox_failed(store, hook->items[0].id, "HTTP 503", T0 + 2000, 3,
                                            T0 + 1000, &is_dead, NULL), TR_OK);
    assert_int_equal(is_dead, 0);
    assert_int_equal(tr_store_outbox_failed(store, hook->items[0].id, "HTTP 500", T0 + 4000, 3,
                                            T0 + 2000, &is_dead, NULL), TR_OK);
    assert_int_equal(is_dead, 1);
    tr_store_delivery_list_free(hook);
    hook = due(store, "webhook", T0 + 1000 * MINUTE);
    assert_int_equal(hook->count, 0);
    tr_store_delivery_list_free(hook);

    assert_int_equal(tr_store_outbox_dead_letters(store, NULL, 0, 10, &dead, NULL), TR_OK);
    assert_int_equal(dead->count, 1);
    assert_string_equal(dead->items[0].sink, "webhook");
    assert_int_equal(dead->items[0].state, TR_DELIVERY_DEAD);
    assert_int_equal(dead->items[0].attempts, 3);
    assert_string_equal(dead->items[0].last_error, "HTTP 500");

    assert_int_equal(tr_store_outbox_stats_get(store, &stats, NULL), TR_OK);
    assert_int_equal(stats->count, 2);
    assert_string_equal(stats->items[0].sink, "slack");
    assert_int_equal(stats->items[0].delivered, 1);
    assert_int_equal(stats->items[0].pending, 0);
    assert_int_equal(stats->items[1].dead, 1);
    tr_store_outbox_stats_free(stats);

    assert_int_equal(tr_store_outbox_retry_dead(store, dead->items[0].id, T0 + 5000, NULL), TR_OK);
    hook = due(store, "webhook", T0 + 5000);
    assert_int_equal(hook->count, 1);
    assert_string_equal(hook->items[0].delivery_id, dead->items[0].delivery_id);
    tr_store_delivery_list_free(hook);
    tr_store_delivery_list_free(dead);
    assert_int_equal(tr_store_outbox_due(store, "teams", T0, 0, 10, &hook, &err), TR_ENOTFOUND);
    assert_null(hook);
    tr_store_close(store);
}

static void test_store_outbox_delivers_exactly_once_across_crashes(void **state)
{
    const int64_t lease = 30000;
    tr_store_delivery_list *list;
    tr_store *store;
    char delivery_id[64];
    int64_t delivery;

    (void)state;
    store = open_ok(fx.path);
    assert_int_equal(tr_store_outbox_register_sink(store, "slack", T0, NULL), TR_OK);
    observe_ok(store, "fp-crash", T0, TR_OBS_CREATED);
    tr_store_close(store); /* crash after the commit, before any delivery */

    store = open_ok(fx.path);
    assert_int_equal(tr_store_outbox_due(store, "slack", T0 + 1, lease, 10, &list, NULL), TR_OK);
    assert_int_equal(list->count, 1);
    snprintf(delivery_id, sizeof(delivery_id), "%s", list->items[0].delivery_id);
    delivery = list->items[0].id;
    tr_store_delivery_list_free(list);
    /* in flight: a second poll does not hand it out again */
    assert_int_equal(tr_store_outbox_due(store, "slack", T0 + 2, lease, 10, &list, NULL), TR_OK);
    assert_int_equal(list->count, 0);
    tr_store_delivery_list_free(list);
    tr_store_close(store); /* crash while sending */

    store = open_ok(fx.path);
    list = due(store, "slack", T0 + 1 + lease);
    assert_int_equal(list->count, 1);
    assert_int_equal(list->items[0].id, delivery);
    assert_string_equal(list->items[0].delivery_id, delivery_id);
    assert_int_equal(tr_store_outbox_delivered(store, delivery, T0 + lease + 2, NULL), TR_OK);
    tr_store_delivery_list_free(list);
    tr_store_close(store);

    store = open_ok(fx.path);
    list = due(store, "slack", T0 + 1000 * MINUTE);
    assert_int_equal(list->count, 0);
    tr_store_delivery_list_free(list);
    assert_int_equal(pending_for(store, "slack"), 0);
    tr_store_close(store);
}

static void test_store_new_sink_sees_only_later_messages_and_prune(void **state)
{
    tr_store_delivery_list *list;
    tr_store *store;
    int64_t removed = -1;

    (void)state;
    store = open_ok(fx.path);
    assert_int_equal(tr_store_outbox_register_sink(store, "log", T0, NULL), TR_OK);
    assert_int_equal(tr_store_outbox_enqueue(store, 0, "test.old", NULL, T0, NULL, NULL), TR_OK);
    assert_int_equal(tr_store_outbox_register_sink(store, "teams", T0 + 1, NULL), TR_OK);
    assert_int_equal(tr_store_outbox_enqueue(store, 0, "test.new", NULL, T0 + 2, NULL, NULL),
                     TR_OK);
    list = due(store, "teams", T0 + 3);
    assert_int_equal(list->count, 1);
    assert_string_equal(list->items[0].event, "test.new");
    assert_int_equal(tr_store_outbox_delivered(store, list->items[0].id, T0 + 3, NULL), TR_OK);
    tr_store_delivery_list_free(list);

    /* "log" has not fetched anything yet: nothing may go */
    assert_int_equal(tr_store_outbox_prune(store, T0 + MINUTE, &removed, NULL), TR_OK);
    assert_int_equal(removed, 0);
    list = due(store, "log", T0 + 3);
    assert_int_equal(list->count, 2);
    assert_int_equal(tr_store_outbox_delivered(store, list->items[0].id, T0 + 4, NULL), TR_OK);
    tr_store_delivery_list_free(list);
    /* the first message is done everywhere; the second still pending for "log" */
    assert_int_equal(tr_store_outbox_prune(store, T0 + MINUTE, &removed, NULL), TR_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(pending_for(store, "log"), 1);
    assert_int_equal(tr_store_outbox_forget_sink(store, "log", NULL), TR_OK);
    assert_int_equal(tr_store_outbox_prune(store, T0 + MINUTE, &removed, NULL), TR_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(raw_int(fx.path, "SELECT COUNT(*) FROM outbox_deliveries"), 0);
    tr_store_close(store);
}

/* ------------------------------------------------------------ daemon state */

static void test_store_watch_state_budgets_and_kv_survive_reopen(void **state)
{
    const int64_t hour = 60 * MINUTE;
    tr_store *store;
    tr_error err = { 0 };
    char *text = NULL;
    int64_t total = 0, updated = 0;
    int seen = -1;

    (void)state;
    store = open_ok(fx.path);
    assert_int_equal(tr_store_watch_get(store, "kube/default/pods", &text, NULL, NULL),
                     TR_ENOTFOUND);
    assert_int_equal(tr_store_watch_put(store, "kube/default/pods", "12345", T0, NULL), TR_OK);
    assert_int_equal(tr_store_watch_put(store, "kube/default/pods", "012346", T0 + 1, NULL),
                     TR_OK);
    assert_int_equal(tr_store_budget_add(store, "llm.calls", T0, 30, 50, T0, &total, NULL),
                     TR_OK);
    assert_int_equal(total, 30);
    assert_int_equal(tr_store_budget_add(store, "llm.calls", T0, 30, 50, T0, &total, &err),
                     TR_ELIMIT);
    assert_int_equal(total, 30);
    assert_int_equal(tr_store_budget_add(store, "llm.calls", T0, 20, 50, T0, &total, NULL),
                     TR_OK);
    assert_int_equal(total, 50);
    assert_int_equal(tr_store_tf_file_mark(store, "/runs/a.json", 100, "sha256:aa", T0, NULL),
                     TR_OK);
    assert_int_equal(tr_store_kv_put(store, "slack.thread.1", "C1/1503435956.000247", T0, NULL),
                     TR_OK);
    tr_store_close(store);

    store = open_ok(fx.path);
    assert_int_equal(tr_store_watch_get(store, "kube/default/pods", &text, &updated, NULL),
                     TR_OK);
    assert_string_equal(text, "012346"); /* opaque: not a number */
    assert_int_equal(updated, T0 + 1);
    tr_free(text);
    assert_int_equal(tr_store_budget_get(store, "llm.calls", T0, &total, NULL), TR_OK);
    assert_int_equal(total, 50);
    assert_int_equal(tr_store_budget_add(store, "llm.calls", T0 + hour, 1, 50, T0 + hour, &total,
                                         NULL), TR_OK);
    assert_int_equal(total, 1);
    assert_int_equal(tr_store_budget_get(store, "llm.calls", T0, &total, NULL), TR_OK);
    assert_int_equal(total, 0); /* the finished window was dropped */
    assert_int_equal(tr_store_tf_file_seen(store, "/runs/a.json", 100, "sha256:aa", &seen, NULL),
                     TR_OK);
    assert_int_equal(seen, 1);
    assert_int_equal(tr_store_tf_file_seen(store, "/runs/a.json", 200, "sha256:bb", &seen, NULL),
                     TR_OK);
    assert_int_equal(seen, 0);
    assert_int_equal(tr_store_kv_get(store, "slack.thread.1", &text, NULL), TR_OK);
    assert_string_equal(text, "C1/1503435956.000247");
    tr_free(text);
    assert_int_equal(tr_store_kv_delete(store, "slack.thread.1", NULL), TR_OK);
    assert_int_equal(tr_store_kv_get(store, "slack.thread.1", &text, NULL), TR_ENOTFOUND);
    assert_int_equal(tr_store_watch_clear(store, "kube/default/pods", NULL), TR_OK);
    assert_int_equal(tr_store_watch_get(store, "kube/default/pods", &text, NULL, NULL),
                     TR_ENOTFOUND);
    tr_store_close(store);
}

int main(void)
{
#define STORE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_store_open_creates_schema_in_wal_mode_private_file),
        STORE_TEST(test_store_reopen_keeps_data),
        STORE_TEST(test_store_refuses_newer_schema_untouched),
        STORE_TEST(test_store_refuses_a_file_that_is_not_a_database),
        STORE_TEST(test_store_open_survives_allocation_failures),
        STORE_TEST(test_store_dedups_200_observations_into_one_incident_one_message),
        STORE_TEST(test_store_reopen_after_resolve_emits_reopened),
        STORE_TEST(test_store_failed_incident_is_retired_after_dedup_window),
        STORE_TEST(test_store_illegal_transition_conflicts_and_changes_nothing),
        STORE_TEST(test_store_transition_and_outbox_are_atomic),
        STORE_TEST(test_store_lists_newest_first_with_paging_and_filters),
        STORE_TEST(test_store_pipeline_records_round_trip),
        STORE_TEST(test_store_rejects_oversized_and_missing_input),
        STORE_TEST(test_store_batch_commits_its_steps_together_and_undoes_a_failed_one),
        STORE_TEST(test_store_outbox_per_sink_delivery_backoff_and_dead_letter),
        STORE_TEST(test_store_outbox_delivers_exactly_once_across_crashes),
        STORE_TEST(test_store_new_sink_sees_only_later_messages_and_prune),
        STORE_TEST(test_store_watch_state_budgets_and_kv_survive_reopen),
    };
    TR_RUN_TESTS("store", tests);
}
