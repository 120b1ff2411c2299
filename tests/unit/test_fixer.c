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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_opens_one_pr_whose_branch_holds_the_patched_file),
    };
    int failed;

    if (tr_alloc_install() != 0)
        return 1;
    failed = cmocka_run_group_tests_name("fixer", tests, group_setup, group_teardown);
    tr_alloc_uninstall();
    return failed;
}
