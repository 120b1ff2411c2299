/*
 * test_fixer.c - from an accepted incident to exactly one pull request, on a
 * real git server (fixer_fixture.h): the branch holds the patched file and
 * nothing else changed, a restart does not push or open twice, a duplicate
 * PR is reused, a refused push or patch ends the incident with its reason,
 * a broken patch is repaired once by the model.
 */
#include "fixer_fixture.h"

/* The request line of forge request n, e.g. "POST /repos/acme/shop/pulls HTTP/1.1". */
static void assert_request_line(fx *f, int n, const char *line)
{
    const char *raw = fake_request(&f->forge_srv, n);

    assert_true(strncmp(raw, line, strlen(line)) == 0);
}

static cJSON *request_json(const fake_server *srv, int n)
{
    const char *b = strstr(fake_request(srv, n), "\r\n\r\n");
    cJSON *json = b ? cJSON_Parse(b + 4) : NULL;

    assert_non_null(json);
    return json;
}

static void assert_error_has(fx *f, int64_t id, const char *text)
{
    tr_store_incident *inc = incident(f, id);

    assert_int_equal(inc->state, TR_INCIDENT_FAILED);
    assert_non_null(inc->error);
    if (strstr(inc->error, text) == NULL)
        fail_msg("incident error \"%s\" lacks \"%s\"", inc->error, text);
    tr_store_incident_free(inc);
}

static void test_accept_opens_one_pr_whose_branch_holds_the_patched_file(void **state)
{
    fx f;
    char out[4096], branch[64], want[128];
    tr_store_pr *pr = NULL;
    tr_error err = {0};
    cJSON *body;
    int64_t id;

    (void)state;
    fx_start(&f, "accept", "", 0);
    id = make_incident(&f, "fp-accept", "shop", 0.9, GOOD_PATCH);
    add_created(&f);
    accept_incident(&f, id);
    wait_state(&f, id, TR_INCIDENT_PR_OPEN);

    snprintf(branch, sizeof(branch), "triaged/%lld", (long long)id);
    server_file(&f, branch, "apps/web.yaml", out, sizeof(out));
    assert_string_equal(out, WEB_FIXED); /* the secret line, trailing blanks and all, kept */
    sh_out(out, sizeof(out), "git --git-dir=%s/repos/accept.git rev-list --count main..%s",
           server_dir, branch);
    assert_string_equal(out, "1\n");
    sh_out(out, sizeof(out), "git --git-dir=%s/repos/accept.git log -1 --format='%%an <%%ae>%%n%%B'"
           " %s", server_dir, branch);
    snprintf(want, sizeof(want), AUTHOR "\ntriaged: fix incident %lld (OOMKilled)", (long long)id);
    assert_true(strncmp(out, want, strlen(want)) == 0);
    assert_non_null(strstr(out, "Root cause: the memory limit 128Mi is below the 310Mi peak"));

    assert_int_equal(f.forge_srv.request_count, 2);
    assert_request_line(&f, 0, "POST /repos/acme/shop/pulls HTTP/1.1");
    body = request_json(&f.forge_srv, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(body, "head")), branch);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(body, "base")), "main");
    snprintf(want, sizeof(want), "https://triaged.example/v1/incidents/%lld", (long long)id);
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(body, "body")), want));
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(body, "body")),
                           "> Last State: Terminated, Reason: OOMKilled"));
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(body, "body")),
                           "re-anchored"));
    cJSON_Delete(body);

    assert_int_equal(tr_store_pr_latest(f.store, id, &pr, &err), 0);
    assert_int_equal(pr->number, 31);
    assert_string_equal(pr->url, "https://github.com/PyGithub/PyGithub/pull/31");
    assert_string_equal(pr->branch, branch);
    assert_string_equal(pr->state, "open");
    server_rev(&f, branch, out, sizeof(out));
    assert_true(strncmp(out, pr->head_commit, 40) == 0);
    tr_store_pr_free(pr);
    assert_true(metric(&f, "triaged_fixer_patches", "proposed") == 1);
    assert_true(metric(&f, "triaged_fixer_patches", "valid") == 1);
    assert_true(metric(&f, "triaged_fixer_accepted", NULL) == 1);
    assert_true(metric(&f, "triaged_fixer_prs_opened", NULL) == 1);
    fx_stop(&f);
}

static void test_restart_after_push_before_pr_pushes_nothing_and_opens_one_pr(void **state)
{
    fx f;
    char branch[64], before[128], after[128], count[32];
    int64_t id;

    (void)state;
    fx_start(&f, "restart", "", 0);
    id = make_incident(&f, "fp-restart", "shop", 0.9, GOOD_PATCH);
    /* The forge is down when the PR is opened: the branch is pushed, the incident stays. */
    fake_add(&f.forge_srv, fake_http(503, NULL, "{\"message\":\"Service Unavailable\"}"));
    add_created(&f);
    accept_incident(&f, id);
    wait_state(&f, id, TR_INCIDENT_ACCEPTED);
    assert_int_equal(f.forge_srv.request_count, 1);
    snprintf(branch, sizeof(branch), "triaged/%lld", (long long)id);
    server_rev(&f, branch, before, sizeof(before));

    fx_restart_fixer(&f); /* its first scan resumes the accepted incident */
    wait_state(&f, id, TR_INCIDENT_PR_OPEN);
    server_rev(&f, branch, after, sizeof(after));
    assert_string_equal(after, before); /* not pushed again */
    sh_out(count, sizeof(count), "git --git-dir=%s/repos/restart.git rev-list --count main..%s",
           server_dir, branch);
    assert_string_equal(count, "1\n");
    assert_int_equal(f.forge_srv.request_count, 3); /* 503, then one PR and its labels */
    assert_request_line(&f, 1, "POST /repos/acme/shop/pulls HTTP/1.1");
    fx_stop(&f);
}

static void test_existing_pr_for_the_branch_is_reused(void **state)
{
    fx f;
    char *pr = pygithub_body("pygithub-Repository.testCreatePull.201.txt");
    char set[64];
    tr_store_pr *row = NULL;
    tr_error err = {0};
    int64_t id;

    (void)state;
    fx_start(&f, "reuse", "", 0);
    id = make_incident(&f, "fp-reuse", "shop", 0.9, GOOD_PATCH);
    fake_add(&f.forge_srv, fake_http(422, NULL,
                                     "{\"message\":\"Validation Failed\",\"errors\":[{\"resource\":"
                                     "\"PullRequest\",\"code\":\"custom\",\"message\":\"A pull "
                                     "request already exists for acme:triaged/1.\"}]}"));
    snprintf(set, sizeof(set), "head.ref=\"triaged/%lld\"", (long long)id);
    fake_add(&f.forge_srv, reply(200, NULL, edit_json(pr, set, 1)));
    fake_add(&f.forge_srv, fake_http(200, NULL, "[]"));
    accept_incident(&f, id);
    wait_state(&f, id, TR_INCIDENT_PR_OPEN);
    assert_int_equal(f.forge_srv.request_count, 3);
    assert_request_line(&f, 1, "GET /repos/acme/shop/pulls?head=acme%3Atriaged%2F");
    assert_int_equal(tr_store_pr_latest(f.store, id, &row, &err), 0);
    assert_int_equal(row->number, 31);
    tr_store_pr_free(row);
    tr_free(pr);
    fx_stop(&f);
}

static void test_push_rejected_by_a_hook_fails_the_incident_with_the_hook_message(void **state)
{
    fx f;
    int64_t id;

    (void)state;
    fx_start(&f, "hooked", "", 0);
    sh("printf '#!/bin/sh\\necho \"policy: changes to apps/ need a ticket\" >&2\\nexit 1\\n' > "
       "%s/repos/hooked.git/hooks/pre-receive && chmod +x %s/repos/hooked.git/hooks/pre-receive",
       server_dir, server_dir);
    id = make_incident(&f, "fp-hook", "shop", 0.9, GOOD_PATCH);
    accept_incident(&f, id);
    wait_state(&f, id, TR_INCIDENT_FAILED);
    assert_error_has(&f, id, "push of branch triaged/");
    assert_error_has(&f, id, "policy: changes to apps/ need a ticket");
    assert_int_equal(f.forge_srv.request_count, 0);
    fx_stop(&f);
}

static void test_refused_patch_is_repaired_once_by_the_model_then_opened(void **state)
{
    fx f;
    char out[4096], branch[64], *text;
    cJSON *body;
    int64_t id;

    (void)state;
    fx_start(&f, "repair", "", 1);
    id = make_incident(&f, "fp-repair", "shop", 0.9, BAD_PATCH);
    fake_add(&f.llm_srv, fake_completion(GOOD_PATCH, 100, 40));
    add_created(&f);
    accept_incident(&f, id);
    wait_state(&f, id, TR_INCIDENT_PR_OPEN);
    assert_int_equal(f.llm_srv.request_count, 1);
    body = request_json(&f.llm_srv, 0);
    text = cJSON_PrintUnformatted(body);
    assert_non_null(strstr(text, "Your patch was refused"));
    assert_non_null(strstr(text, "requests:")); /* the refused patch went back as it was */
    cJSON_free(text);
    cJSON_Delete(body);
    snprintf(branch, sizeof(branch), "triaged/%lld", (long long)id);
    server_file(&f, branch, "apps/web.yaml", out, sizeof(out));
    assert_string_equal(out, WEB_FIXED);
    assert_true(metric(&f, "triaged_fixer_patches", "invalid") == 1);
    assert_true(metric(&f, "triaged_fixer_patches", "valid") == 1);
    fx_stop(&f);
}

static void test_patch_still_refused_after_the_repair_fails_with_the_reason(void **state)
{
    fx f;
    int64_t id;

    (void)state;
    fx_start(&f, "norepair", "", 1);
    id = make_incident(&f, "fp-norepair", "shop", 0.9, BAD_PATCH);
    fake_add(&f.llm_srv, fake_completion(BAD_PATCH, 100, 40));
    accept_incident(&f, id);
    wait_state(&f, id, TR_INCIDENT_FAILED);
    assert_error_has(&f, id, "patch refused: ");
    assert_error_has(&f, id, "apps/web.yaml");
    assert_int_equal(f.llm_srv.request_count, 1); /* asked once, not twice */
    assert_int_equal(f.forge_srv.request_count, 0);
    assert_true(metric(&f, "triaged_fixer_patches", "invalid") == 2);
    fx_stop(&f);
}

static void test_hostile_patches_are_refused_and_nothing_is_pushed(void **state)
{
    static const struct {
        const char *patch;
        const char *reason;
    } cases[] = {
        {"--- a/../../etc/passwd\n+++ b/../../etc/passwd\n@@ -1 +1 @@\n-root\n+evil\n",
         "'..' components are refused"},
        {"--- a/.git/config\n+++ b/.git/config\n@@ -1 +1 @@\n-[core]\n+[core] evil\n",
         "inside .git/"},
        {"--- a/apps/web.yaml\n+++ b/apps/web.yaml\n@@ -14,2 +14,3 @@\n           limits:\n"
         "             memory: 128Mi\n+            token: [REDACTED:github-token]\n",
         "redaction placeholder"},
    };
    fx f;
    char fp[32], refs[256];
    int64_t ids[3];
    size_t i;

    (void)state;
    fx_start(&f, "hostile", "", 0);
    for (i = 0; i < 3; i++) {
        snprintf(fp, sizeof(fp), "fp-hostile-%zu", i);
        ids[i] = make_incident(&f, fp, "shop", 0.9, cases[i].patch);
    }
    for (i = 0; i < 3; i++)
        accept_incident(&f, ids[i]);
    for (i = 0; i < 3; i++) {
        wait_state(&f, ids[i], TR_INCIDENT_FAILED);
        assert_error_has(&f, ids[i], cases[i].reason);
    }
    sh_out(refs, sizeof(refs), "git --git-dir=%s/repos/hostile.git for-each-ref "
           "--format='%%(refname)'", server_dir);
    assert_string_equal(refs, "refs/heads/main\n");
    assert_int_equal(f.forge_srv.request_count, 0);
    fx_stop(&f);
}

static void test_branch_rewritten_by_someone_else_is_not_overwritten(void **state)
{
    fx f;
    char before[128], after[128];
    int64_t id;

    (void)state;
    fx_start(&f, "nonff", "", 0);
    id = make_incident(&f, "fp-nonff", "shop", 0.9, GOOD_PATCH);
    /* A person already pushed their own commit to the branch. */
    sh("cd %s/seed-nonff && printf 'note\\n' > NOTE && git add NOTE && " GIT "commit -qm mine && "
       "git push -q origin HEAD:refs/heads/triaged/%lld", base_dir, (long long)id);
    server_rev(&f, "triaged/1", before, sizeof(before));
    accept_incident(&f, id);
    wait_state(&f, id, TR_INCIDENT_FAILED);
    assert_error_has(&f, id, "push of branch triaged/1");
    assert_error_has(&f, id, "with a commit by Dev <dev@example.com>");
    server_rev(&f, "triaged/1", after, sizeof(after));
    assert_string_equal(after, before);
    assert_int_equal(f.forge_srv.request_count, 0);
    fx_stop(&f);
}

static void test_forge_refusing_the_token_fails_the_incident_with_its_answer(void **state)
{
    fx f;
    int64_t id;

    (void)state;
    fx_start(&f, "badtoken", "", 0);
    id = make_incident(&f, "fp-badtoken", "shop", 0.9, GOOD_PATCH);
    fake_add(&f.forge_srv, fake_http(401, NULL, "{\"message\":\"Bad credentials\","
                                                "\"documentation_url\":\"https://docs.github.com"
                                                "/rest\"}"));
    accept_incident(&f, id);
    wait_state(&f, id, TR_INCIDENT_FAILED);
    assert_error_has(&f, id, "the forge refused the pull request: ");
    assert_error_has(&f, id, "401");
    fx_stop(&f);
}

static void test_revised_patch_replaces_our_own_earlier_push(void **state)
{
    fx f;
    char out[4096], count[32];
    int64_t id;

    (void)state;
    fx_start(&f, "revised", "", 0);
    id = make_incident(&f, "fp-revised", "shop", 0.9, GOOD_PATCH);
    fake_add(&f.forge_srv, fake_http(503, NULL, "{\"message\":\"Service Unavailable\"}"));
    add_created(&f);
    accept_incident(&f, id);
    wait_state(&f, id, TR_INCIDENT_ACCEPTED); /* pushed, PR not opened */
    /* A chat turn revises the patch meanwhile: it becomes the latest analysis. */
    put_analysis(&f, id, 0.9, "error", "--- a/apps/web.yaml\n+++ b/apps/web.yaml\n@@ -15 +15 @@\n"
                 "-            memory: 128Mi\n+            memory: 1Gi\n", 0);

    fx_restart_fixer(&f);
    wait_state(&f, id, TR_INCIDENT_PR_OPEN);
    server_file(&f, "triaged/1", "apps/web.yaml", out, sizeof(out));
    assert_string_equal(out, WEB_HEAD "            memory: 1Gi\n");
    sh_out(count, sizeof(count), "git --git-dir=%s/repos/revised.git rev-list --count "
           "main..triaged/1", server_dir);
    assert_string_equal(count, "1\n"); /* replaced, not stacked */
    fx_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_opens_one_pr_whose_branch_holds_the_patched_file),
        cmocka_unit_test(test_restart_after_push_before_pr_pushes_nothing_and_opens_one_pr),
        cmocka_unit_test(test_existing_pr_for_the_branch_is_reused),
        cmocka_unit_test(test_push_rejected_by_a_hook_fails_the_incident_with_the_hook_message),
        cmocka_unit_test(test_refused_patch_is_repaired_once_by_the_model_then_opened),
        cmocka_unit_test(test_patch_still_refused_after_the_repair_fails_with_the_reason),
        cmocka_unit_test(test_hostile_patches_are_refused_and_nothing_is_pushed),
        cmocka_unit_test(test_branch_rewritten_by_someone_else_is_not_overwritten),
        cmocka_unit_test(test_revised_patch_replaces_our_own_earlier_push),
        cmocka_unit_test(test_forge_refusing_the_token_fails_the_incident_with_its_answer),
    };
    int failed;

    if (tr_alloc_install() != 0)
        return 1;
    failed = cmocka_run_group_tests_name("fixer", tests, group_setup, group_teardown);
    tr_alloc_uninstall();
    return failed;
}
