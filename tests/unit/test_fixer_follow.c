/*
 * test_fixer_follow.c - after the PR: polling with the ETag until it is
 * merged or closed, and the auto_pr policy that accepts without a person
 * (fixer_fixture.h: real git server, fake forge with recorded bodies).
 */
#include "fixer_fixture.h"

/* Header name of forge request n, "" when absent. */
static const char *header_of(fx *f, int n, const char *name, char *out, size_t cap)
{
    const char *raw = fake_request(&f->forge_srv, n), *end = strstr(raw, "\r\n\r\n"), *p = raw;
    size_t len = strlen(name);

    out[0] = '\0';
    while ((p = strstr(p, "\r\n")) != NULL && p < end) {
        p += 2;
        if (strncasecmp(p, name, len) == 0 && p[len] == ':') {
            p += len + 1;
            while (*p == ' ')
                p++;
            snprintf(out, cap, "%.*s", (int)strcspn(p, "\r"), p);
            break;
        }
    }
    return out;
}

static void wait_idle(fx *f)
{
    time_t deadline = time(NULL) + 60;

    while (tr_fixer_busy(f->fixer) > 0) {
        assert_true(time(NULL) < deadline);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

/* An incident whose PR (number 31) is open. */
static int64_t open_pr(fx *f, const char *fp)
{
    int64_t id = make_incident(f, fp, "shop", 0.9, GOOD_PATCH);

    add_created(f);
    accept_incident(f, id);
    wait_state(f, id, TR_INCIDENT_PR_OPEN);
    return id;
}

/* Let a poll interval pass, answer the next poll with raw, poll. */
static void poll_with(fx *f, char *raw)
{
    f->now += TR_FIXER_DEFAULT_POLL_INTERVAL_MS + 1;
    fake_add(&f->forge_srv, raw);
    tr_fixer_poll(f->fixer);
    wait_idle(f);
}

static void test_open_pr_polled_with_its_etag_until_merged(void **state)
{
    fx f;
    char *pr = pygithub_body("pygithub-Repository.testCreatePull.201.txt"), h[64];
    tr_store_pr *row = NULL;
    tr_error err = {0};
    int64_t id;

    (void)state;
    fx_start(&f, "merged", "", 0);
    id = open_pr(&f, "fp-merged");
    assert_int_equal(f.forge_srv.request_count, 2);

    poll_with(&f, fake_http(200, "ETag: W/\"e1\"\r\n", pr));
    assert_int_equal(f.forge_srv.request_count, 3);
    assert_true(strncmp(fake_request(&f.forge_srv, 2), "GET /repos/acme/shop/pulls/31 ", 30) == 0);
    assert_string_equal(header_of(&f, 2, "If-None-Match", h, sizeof(h)), "");
    assert_int_equal(state_of(&f, id), TR_INCIDENT_PR_OPEN);

    poll_with(&f, fake_http(304, "ETag: W/\"e1\"\r\n", ""));
    assert_string_equal(header_of(&f, 3, "If-None-Match", h, sizeof(h)), "W/\"e1\"");
    assert_int_equal(state_of(&f, id), TR_INCIDENT_PR_OPEN);

    /* Not due yet: nothing is asked. */
    tr_fixer_poll(f.fixer);
    wait_idle(&f);
    assert_int_equal(f.forge_srv.request_count, 4);

    poll_with(&f, reply(200, "ETag: W/\"e2\"\r\n",
                        edit_json(pr, "state=\"closed\";merged=true;"
                                      "merged_at=\"2026-11-25T10:00:00Z\"", 0)));
    assert_int_equal(state_of(&f, id), TR_INCIDENT_PR_MERGED);
    assert_int_equal(tr_store_pr_latest(f.store, id, &row, &err), 0);
    assert_string_equal(row->state, "merged");
    assert_string_equal(row->etag, "W/\"e2\"");
    tr_store_pr_free(row);
    assert_true(metric(&f, "triaged_fixer_prs_merged", NULL) == 1);
    /* The workload's recovery then resolves the incident (the watchers' job). */
    assert_true(tr_store_state_allowed(TR_INCIDENT_PR_MERGED, TR_INCIDENT_RESOLVED));

    /* A merged PR is not polled any more. */
    f.now += TR_FIXER_DEFAULT_POLL_INTERVAL_MS + 1;
    tr_fixer_poll(f.fixer);
    wait_idle(&f);
    assert_int_equal(f.forge_srv.request_count, 5);
    tr_free(pr);
    fx_stop(&f);
}

static void test_pr_closed_without_merging_is_pr_closed(void **state)
{
    fx f;
    char *pr = pygithub_body("pygithub-Repository.testCreatePull.201.txt");
    tr_store_pr *row = NULL;
    tr_error err = {0};
    int64_t id;

    (void)state;
    fx_start(&f, "closed", "", 0);
    id = open_pr(&f, "fp-closed");
    poll_with(&f, reply(200, NULL, edit_json(pr, "state=\"closed\";merged=false;"
                                                 "merged_at=null", 0)));
    tr_free(pr);
    assert_int_equal(state_of(&f, id), TR_INCIDENT_PR_CLOSED);
    assert_int_equal(tr_store_pr_latest(f.store, id, &row, &err), 0);
    assert_string_equal(row->state, "closed");
    tr_store_pr_free(row);
    assert_true(metric(&f, "triaged_fixer_prs_closed_unmerged", NULL) == 1);
    assert_true(metric(&f, "triaged_fixer_prs_merged", NULL) == 0);
    fx_stop(&f);
}

static void test_auto_pr_accepts_only_what_the_policy_allows(void **state)
{
    fx f;
    tr_store_decision *d = NULL;
    tr_error err = {0};
    int64_t sure, unsure, elsewhere, minor;

    (void)state;
    fx_start(&f, "policy", "auto_pr = true\nmin_confidence = 0.8\nnamespaces = [\"shop\"]\n"
                           "severities = [\"error\", \"critical\"]\n", 0);
    sure = make_incident(&f, "fp-sure", "shop", 0.9, GOOD_PATCH);
    unsure = make_incident(&f, "fp-unsure", "shop", 0.5, GOOD_PATCH);
    elsewhere = make_incident(&f, "fp-elsewhere", "billing", 0.95, GOOD_PATCH);
    minor = make_incident_sev(&f, "fp-minor", "shop", 0.95, "warning", GOOD_PATCH);
    add_created(&f);
    wait_state(&f, sure, TR_INCIDENT_PR_OPEN);
    assert_int_equal(tr_store_decision_latest(f.store, sure, &d, &err), 0);
    assert_string_equal(d->actor, "policy");
    assert_true(d->accept);
    tr_store_decision_free(d);
    assert_int_equal(state_of(&f, unsure), TR_INCIDENT_PATCH_PROPOSED);
    assert_int_equal(state_of(&f, elsewhere), TR_INCIDENT_PATCH_PROPOSED);
    assert_int_equal(state_of(&f, minor), TR_INCIDENT_PATCH_PROPOSED);
    assert_int_equal(f.forge_srv.request_count, 2); /* one PR and its labels */
    assert_true(metric(&f, "triaged_fixer_patches", "proposed") == 4);
    assert_true(metric(&f, "triaged_fixer_accepted", NULL) == 1);
    fx_stop(&f);
}

static void test_gitlab_merge_request_opened_and_followed_to_merged(void **state)
{
    fx f;
    char *mr = fixture_body("gitlab/go-gitlab-get_merge_request.json"), branch[64];
    tr_store_pr *row = NULL;
    tr_error err = {0};
    cJSON *body;
    const char *b;
    int64_t id;

    (void)state;
    fx_start_forge(&f, "gitlab", "kind = \"gitlab\"\nrepo = \"group/shop\"\n", "", 0);
    id = make_incident(&f, "fp-gitlab", "shop", 0.9, GOOD_PATCH);
    fake_add(&f.forge_srv, fake_http(201, NULL, mr));
    accept_incident(&f, id);
    wait_state(&f, id, TR_INCIDENT_PR_OPEN);
    assert_int_equal(f.forge_srv.request_count, 1); /* labels go with the create */
    assert_true(strncmp(fake_request(&f.forge_srv, 0),
                        "POST /api/v4/projects/group%2Fshop/merge_requests ", 50) == 0);
    b = strstr(fake_request(&f.forge_srv, 0), "\r\n\r\n");
    body = cJSON_Parse(b + 4);
    snprintf(branch, sizeof(branch), "triaged/%lld", (long long)id);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(body, "source_branch")), branch);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(body, "target_branch")), "main");
    cJSON_Delete(body);

    poll_with(&f, reply(200, NULL, edit_json(mr, "state=\"merged\"", 0)));
    assert_int_equal(state_of(&f, id), TR_INCIDENT_PR_MERGED);
    assert_int_equal(tr_store_pr_latest(f.store, id, &row, &err), 0);
    assert_string_equal(row->forge, "gitlab");
    assert_int_equal(row->number, 14656);
    assert_string_equal(row->state, "merged");
    tr_store_pr_free(row);
    tr_free(mr);
    fx_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_pr_polled_with_its_etag_until_merged),
        cmocka_unit_test(test_pr_closed_without_merging_is_pr_closed),
        cmocka_unit_test(test_auto_pr_accepts_only_what_the_policy_allows),
        cmocka_unit_test(test_gitlab_merge_request_opened_and_followed_to_merged),
    };
    int failed;

    if (tr_alloc_install() != 0)
        return 1;
    failed = cmocka_run_group_tests_name("fixer_follow", tests, group_setup, group_teardown);
    tr_alloc_uninstall();
    return failed;
}
