#include "testutil.h"

#include <cjson/cJSON.h>
#include <time.h>
#include <uv.h>

#include "fake_forge.h"
#include "fake_llm_server.h"
#include "forge.h"
#include "forge_reply.h"
#include "http_client.h"

/*
 * The forge clients against a fake forge on loopback (SaaS: a fake is the
 * only way) that answers with the bodies recorded from the real APIs in
 * ../shared/fixtures/{github,gitlab,gitea} and records every request, so the
 * tests assert the bytes on the wire and what the fixer is told.
 *
 * GitHub's 422 "already exists" and 401 "Bad credentials" bodies are not in
 * the fixtures; they are written here in the shape PROTOCOLS.md §4.1 documents.
 */

#define TOKEN "tok-SECRET-4f2a9c"

static const char *const labels2[] = {"triaged", "automated"};

/* ----------------------------------------------------------- the harness */

typedef struct outcome {
    int done;
    int code;
    bool retryable;
    int64_t retry_after_ms;
    long status;
    char error[TR_ERROR_MSG_MAX];
    int has_pr;
    tr_forge_pr pr;
} outcome;

typedef struct fx {
    uv_loop_t loop;
    tr_http_client *http;
    fake_server srv;
    tr_forge *forge;
    char url[128];
    tr_config_forge cfg;
} fx;

static void on_done(const tr_forge_result *res, void *userdata)
{
    outcome *o = userdata;

    o->done++;
    o->code = res->code;
    o->retryable = res->retryable;
    o->retry_after_ms = res->retry_after_ms;
    o->status = res->status;
    snprintf(o->error, sizeof(o->error), "%s", res->error);
    if (res->pr) {
        o->has_pr = 1;
        o->pr = *res->pr;
        o->pr.html_url = tr_strdup(res->pr->html_url);
        o->pr.head_branch = tr_strdup(res->pr->head_branch);
        o->pr.merge_commit_sha = tr_strdup(res->pr->merge_commit_sha);
        o->pr.etag = tr_strdup(res->pr->etag);
    }
}

static void outcome_clear(outcome *o)
{
    tr_forge_pr_clear(&o->pr);
    memset(o, 0, sizeof(*o));
}

static void fx_start(fx *f, tr_config_forge_kind kind, const char *repo, const char *api_path)
{
    tr_error err;

    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(tr_http_client_new(&f->http, &f->loop, &err), 0);
    assert_int_equal(fake_start(&f->srv, &f->loop), 0);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d%s", f->srv.port, api_path);
    f->cfg.kind = kind;
    f->cfg.api_url = f->url;
    f->cfg.repo = (char *)repo;
    f->cfg.labels.items = (char **)labels2;
    f->cfg.labels.count = 2;
    f->cfg.draft = true;
    assert_int_equal(tr_forge_create(&f->forge, &f->cfg, f->http, TOKEN, &err), 0);
    tr_forge_set_timeout(f->forge, 5000);
}

static void fx_wait(fx *f, outcome *o)
{
    while (!o->done)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void fx_stop(fx *f)
{
    tr_forge_free(f->forge);
    fake_stop(&f->srv);
    tr_http_client_free(f->http);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void open_pr(fx *f, outcome *o)
{
    tr_forge_pr_request req = {.head = "triaged/42", .base = "main",
                               .title = "Fix checkout OOMKilled",
                               .body = "## Why\nmemory limit 128Mi < peak 310Mi",
                               .draft = -1};
    tr_error err;

    assert_int_equal(tr_forge_open_pr(f->forge, &req, on_done, o, &err), TR_OK);
    assert_int_equal(o->done, 0); /* never from inside the start call */
    fx_wait(f, o);
    assert_int_equal(o->done, 1);
}

/* "METHOD /path HTTP/1.1" of request n. */
static void assert_request_line(fx *f, int n, const char *line)
{
    const char *raw = fake_request(&f->srv, n);
    size_t len = strcspn(raw, "\r");
    char got[1024];

    snprintf(got, sizeof(got), "%.*s", (int)len, raw);
    assert_string_equal(got, line);
}

/* Value of header name in request n, "" when absent (copied into out). */
static const char *header_of(fx *f, int n, const char *name, char *out, size_t size)
{
    const char *raw = fake_request(&f->srv, n), *end = strstr(raw, "\r\n\r\n"), *p = raw;
    size_t nlen = strlen(name);

    out[0] = '\0';
    while ((p = strstr(p, "\r\n")) != NULL && p < end) {
        p += 2;
        if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;

            while (*v == ' ')
                v++;
            snprintf(out, size, "%.*s", (int)strcspn(v, "\r"), v);
            break;
        }
    }
    return out;
}

static cJSON *body_of(fx *f, int n)
{
    const char *raw = fake_request(&f->srv, n), *b = strstr(raw, "\r\n\r\n");
    cJSON *json = b ? cJSON_Parse(b + 4) : NULL;

    assert_non_null(json);
    return json;
}

static const char *str_of(const cJSON *obj, const char *name)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(obj, name));

    assert_non_null(s);
    return s;
}

/* ------------------------------------------------------------------ GitHub */

static void test_github_open_pr_sends_the_documented_request_and_labels_it(void **state)
{
    fx f;
    outcome o = {0};
    char h[256];
    cJSON *body;

    (void)state;
    fx_start(&f, TR_CONFIG_FORGE_GITHUB, "acme/shop", "");
    fake_add(&f.srv, reply(201, NULL, pygithub_body("pygithub-Repository.testCreatePull.201.txt")));
    fake_add(&f.srv, fake_http(200, NULL, "[{\"name\":\"triaged\"},{\"name\":\"automated\"}]"));
    open_pr(&f, &o);

    assert_int_equal(o.code, TR_OK);
    assert_int_equal(o.pr.number, 31);
    assert_int_equal(o.pr.state, TR_FORGE_PR_OPEN);
    assert_false(o.pr.reused);
    assert_string_equal(o.pr.html_url, "https://github.com/PyGithub/PyGithub/pull/31");
    assert_string_equal(o.pr.merge_commit_sha, "");

    assert_int_equal(f.srv.request_count, 2);
    assert_request_line(&f, 0, "POST /repos/acme/shop/pulls HTTP/1.1");
    assert_string_equal(header_of(&f, 0, "Authorization", h, sizeof(h)), "Bearer " TOKEN);
    assert_string_equal(header_of(&f, 0, "Accept", h, sizeof(h)), "application/vnd.github+json");
    assert_string_equal(header_of(&f, 0, "X-GitHub-Api-Version", h, sizeof(h)), "2022-11-28");
    assert_non_null(strstr(header_of(&f, 0, "User-Agent", h, sizeof(h)), "triaged/"));
    assert_string_equal(header_of(&f, 0, "Content-Type", h, sizeof(h)), "application/json");
    body = body_of(&f, 0);
    assert_string_equal(str_of(body, "title"), "Fix checkout OOMKilled");
    assert_string_equal(str_of(body, "head"), "triaged/42");
    assert_string_equal(str_of(body, "base"), "main");
    assert_string_equal(str_of(body, "body"), "## Why\nmemory limit 128Mi < peak 310Mi");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(body, "draft")));
    cJSON_Delete(body);

    assert_request_line(&f, 1, "POST /repos/acme/shop/issues/31/labels HTTP/1.1");
    assert_string_equal(header_of(&f, 1, "Authorization", h, sizeof(h)), "Bearer " TOKEN);
    body = body_of(&f, 1);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(body, "labels"), 0)->valuestring,
                        "triaged");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(body, "labels"), 1)->valuestring,
                        "automated");
    cJSON_Delete(body);
    outcome_clear(&o);
    fx_stop(&f);
}

static void test_github_422_already_exists_reuses_the_open_pr(void **state)
{
    fx f;
    outcome o = {0};
    char *pr = pygithub_body("pygithub-Repository.testCreatePull.201.txt");

    (void)state;
    fx_start(&f, TR_CONFIG_FORGE_GITHUB, "acme/shop", "");
    fake_add(&f.srv, fake_http(422, NULL,
                               "{\"message\":\"Validation Failed\",\"errors\":[{\"resource\":"
                               "\"PullRequest\",\"code\":\"custom\",\"message\":\"A pull request "
                               "already exists for acme:triaged/42.\"}],\"documentation_url\":"
                               "\"https://docs.github.com/rest/pulls\"}"));
    fake_add(&f.srv, reply(200, NULL, edit_json(pr, "head.ref=\"triaged/42\"", 1)));
    fake_add(&f.srv, fake_http(200, NULL, "[]"));
    open_pr(&f, &o);

    assert_int_equal(o.code, TR_OK);
    assert_true(o.pr.reused);
    assert_int_equal(o.pr.number, 31);
    assert_string_equal(o.pr.head_branch, "triaged/42");
    assert_int_equal(f.srv.request_count, 3);
    assert_request_line(&f, 1, "GET /repos/acme/shop/pulls?head=acme%3Atriaged%2F42&state=open"
                               "&per_page=100 HTTP/1.1");
    assert_request_line(&f, 2, "POST /repos/acme/shop/issues/31/labels HTTP/1.1");
    tr_free(pr);
    outcome_clear(&o);
    fx_stop(&f);
}

static void test_github_recorded_422_invalid_base_is_refused_not_retried(void **state)
{
    fx f;
    outcome o = {0};

    (void)state;
    fx_start(&f, TR_CONFIG_FORGE_GITHUB, "acme/shop", "");
    fake_add(&f.srv, reply(422, NULL, pygithub_body("pygithub-Repository.testCreatePull.422.txt")));
    open_pr(&f, &o);
    assert_int_equal(o.code, TR_EINVAL);
    assert_false(o.retryable);
    assert_int_equal(f.srv.request_count, 1); /* not mistaken for "already exists" */
    assert_non_null(strstr(o.error, "(HTTP 422): Validation Failed: base invalid; head invalid"));
    outcome_clear(&o);
    fx_stop(&f);
}

static void test_github_get_pr_merged_then_304_with_the_etag(void **state)
{
    fx f;
    outcome o = {0}, o2 = {0};
    char *pr = pygithub_body("pygithub-Repository.testCreatePull.201.txt"), h[256];
    tr_error err;

    (void)state;
    fx_start(&f, TR_CONFIG_FORGE_GITHUB, "acme/shop", "/api/v3");
    fake_add(&f.srv, reply(200, "ETag: W/\"abc123\"\r\n",
                           edit_json(pr, "state=\"closed\";merged=true;merged_at="
                                         "\"2024-05-01T10:00:00Z\";merge_commit_sha=\"9f8e7d\"",
                                     0)));
    fake_add(&f.srv, fake_http(304, "ETag: W/\"abc123\"\r\n", ""));
    assert_int_equal(tr_forge_get_pr(f.forge, 31, NULL, on_done, &o, &err), TR_OK);
    fx_wait(&f, &o);
    assert_int_equal(o.code, TR_OK);
    assert_int_equal(o.pr.state, TR_FORGE_PR_MERGED);
    assert_string_equal(o.pr.merge_commit_sha, "9f8e7d");
    assert_string_equal(o.pr.etag, "W/\"abc123\"");
    assert_false(o.pr.not_modified);
    assert_request_line(&f, 0, "GET /api/v3/repos/acme/shop/pulls/31 HTTP/1.1");
    assert_string_equal(header_of(&f, 0, "If-None-Match", h, sizeof(h)), "");

    assert_int_equal(tr_forge_get_pr(f.forge, 31, o.pr.etag, on_done, &o2, &err), TR_OK);
    fx_wait(&f, &o2);
    assert_int_equal(o2.code, TR_OK);
    assert_true(o2.pr.not_modified);
    assert_int_equal(o2.status, 304);
    assert_string_equal(o2.pr.etag, "W/\"abc123\"");
    assert_string_equal(header_of(&f, 1, "If-None-Match", h, sizeof(h)), "W/\"abc123\"");
    tr_free(pr);
    outcome_clear(&o);
    outcome_clear(&o2);
    fx_stop(&f);
}

static void test_github_401_is_clear_not_retryable_and_never_shows_the_token(void **state)
{
    fx f;
    outcome o = {0}, o2 = {0};
    char expect[256];
    tr_error err;

    (void)state;
    fx_start(&f, TR_CONFIG_FORGE_GITHUB, "acme/shop", "");
    fake_add(&f.srv, fake_http(401, NULL, "{\"message\":\"Bad credentials\",\"documentation_url\":"
                                          "\"https://docs.github.com/rest\",\"status\":\"401\"}"));
    /* a server that echoes what it got must not get the token into our logs */
    fake_add(&f.srv, fake_http(403, NULL, "{\"message\":\"token " TOKEN " lacks scope repo\"}"));
    open_pr(&f, &o);
    assert_int_equal(o.code, TR_EAUTH);
    assert_false(o.retryable);
    snprintf(expect, sizeof(expect), "forge token rejected by %s (HTTP 401): Bad credentials",
             f.url);
    assert_string_equal(o.error, expect);
    assert_null(strstr(o.error, TOKEN));

    assert_int_equal(tr_forge_get_pr(f.forge, 31, NULL, on_done, &o2, &err), TR_OK);
    fx_wait(&f, &o2);
    assert_int_equal(o2.code, TR_EAUTH);
    assert_null(strstr(o2.error, TOKEN));
    assert_non_null(strstr(o2.error, "(HTTP 403): token *** lacks scope repo"));
    outcome_clear(&o);
    outcome_clear(&o2);
    fx_stop(&f);
}

static void test_github_rate_limit_is_retryable_until_the_reset(void **state)
{
    fx f;
    outcome o = {0};
    char headers[128];

    (void)state;
    fx_start(&f, TR_CONFIG_FORGE_GITHUB, "acme/shop", "");
    snprintf(headers, sizeof(headers), "X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: %lld\r\n",
             (long long)time(NULL) + 120);
    fake_add(&f.srv, fake_http(403, headers,
                               "{\"message\":\"API rate limit exceeded for user ID 1.\"}"));
    open_pr(&f, &o);
    assert_int_equal(o.code, TR_ELIMIT);
    assert_true(o.retryable);
    assert_true(o.retry_after_ms > 110000 && o.retry_after_ms <= 121000);
    assert_non_null(strstr(o.error, "rate limited"));
    outcome_clear(&o);
    fx_stop(&f);
}

static void test_5xx_and_404_take_different_outcomes(void **state)
{
    fx f;
    outcome o = {0}, o2 = {0};
    tr_error err;

    (void)state;
    fx_start(&f, TR_CONFIG_FORGE_GITHUB, "acme/shop", "");
    fake_add(&f.srv, fake_http(502, NULL, "<html>Bad Gateway</html>"));
    fake_add(&f.srv, fake_http(404, NULL, "{\"message\":\"Not Found\"}"));
    open_pr(&f, &o);
    assert_int_equal(o.code, TR_EUNAVAILABLE);
    assert_true(o.retryable);
    assert_non_null(strstr(o.error, "HTTP 502: <html>Bad Gateway</html>"));
    assert_int_equal(tr_forge_get_pr(f.forge, 7, NULL, on_done, &o2, &err), TR_OK);
    fx_wait(&f, &o2);
    assert_int_equal(o2.code, TR_ENOTFOUND);
    assert_false(o2.retryable);
    assert_non_null(strstr(o2.error, "GitHub repository acme/shop (or the pull request) not "
                                     "found"));
    outcome_clear(&o);
    outcome_clear(&o2);
    fx_stop(&f);
}

static void test_malformed_or_incomplete_reply_is_a_clear_error(void **state)
{
    fx f;
    outcome o = {0}, o2 = {0};
    tr_error err;

    (void)state;
    fx_start(&f, TR_CONFIG_FORGE_GITHUB, "acme/shop", "");
    fake_add(&f.srv, fake_http(201, NULL, "{\"number\": 5, \"html_url\": "));
    fake_add(&f.srv, fake_http(200, NULL, "{\"number\":5,\"state\":\"open\",\"html_url\":null}"));
    open_pr(&f, &o);
    assert_int_equal(o.code, TR_EPARSE);
    assert_string_equal(o.error, "open pull request: GitHub reply is not JSON");
    assert_int_equal(tr_forge_get_pr(f.forge, 5, NULL, on_done, &o2, &err), TR_OK);
    fx_wait(&f, &o2);
    assert_int_equal(o2.code, TR_EPARSE);
    assert_string_equal(o2.error, "get pull request 5: GitHub pull request: field 'html_url' is "
                                  "not a string");
    outcome_clear(&o);
    outcome_clear(&o2);
    fx_stop(&f);
}

static void test_find_pr_for_branch_prefers_open_and_reports_none(void **state)
{
    fx f;
    outcome o = {0}, o2 = {0};
    char *pr = pygithub_body("pygithub-Repository.testCreatePull.201.txt");
    char *closed = edit_json(pr, "number=30;state=\"closed\";head.ref=\"triaged/42\"", 0);
    char *open = edit_json(pr, "head.ref=\"triaged/42\"", 0), list[16384];
    tr_error err;

    (void)state;
    fx_start(&f, TR_CONFIG_FORGE_GITHUB, "acme/shop", "");
    snprintf(list, sizeof(list), "[%s,%s]", closed, open);
    fake_add(&f.srv, fake_http(200, NULL, list));
    fake_add(&f.srv, fake_http(200, NULL, "[]"));
    assert_int_equal(tr_forge_find_pr_for_branch(f.forge, "triaged/42", on_done, &o, &err), 0);
    fx_wait(&f, &o);
    assert_int_equal(o.code, TR_OK);
    assert_int_equal(o.pr.number, 31);
    assert_request_line(&f, 0, "GET /repos/acme/shop/pulls?head=acme%3Atriaged%2F42&state=all"
                               "&per_page=100 HTTP/1.1");
    assert_int_equal(tr_forge_find_pr_for_branch(f.forge, "triaged/43", on_done, &o2, &err), 0);
    fx_wait(&f, &o2);
    assert_int_equal(o2.code, TR_ENOTFOUND);
    assert_false(o2.retryable);
    tr_free(pr);
    tr_free(closed);
    tr_free(open);
    outcome_clear(&o);
    outcome_clear(&o2);
    fx_stop(&f);
}

static void test_freeing_the_forge_cancels_calls_in_flight(void **state)
{
    fx f;
    outcome o = {0};
    tr_error err;

    (void)state;
    fx_start(&f, TR_CONFIG_FORGE_GITHUB, "acme/shop", "");
    fake_add_hang(&f.srv);
    assert_int_equal(tr_forge_get_pr(f.forge, 1, NULL, on_done, &o, &err), TR_OK);
    while (f.srv.request_count == 0)
        uv_run(&f.loop, UV_RUN_ONCE);
    tr_forge_free(f.forge);
    f.forge = NULL;
    fx_wait(&f, &o);
    assert_int_equal(o.code, TR_ECANCELLED);
    assert_false(o.retryable);
    outcome_clear(&o);
    fx_stop(&f);
}

/* ------------------------------------------------------------------ GitLab */

static void test_gitlab_open_mr_sends_private_token_draft_prefix_and_labels(void **state)
{
    fx f;
    outcome o = {0};
    char h[256];
    cJSON *body;

    (void)state;
    fx_start(&f, TR_CONFIG_FORGE_GITLAB, "group/sub/shop", "");
    fake_add(&f.srv, reply(201, NULL, fixture_body("gitlab/go-gitlab-get_merge_request.json")));
    open_pr(&f, &o);
    assert_int_equal(o.code, TR_OK);
    assert_int_equal(o.pr.number, 14656); /* iid, not id */
    assert_int_equal(o.pr.state, TR_FORGE_PR_OPEN);
    assert_true(o.pr.draft);
    assert_string_equal(o.pr.html_url,
                        "https://gitlab.com/gitlab-org/gitlab-ee/merge_requests/14656");
    assert_int_equal(f.srv.request_count, 1); /* labels went with the create */
    assert_request_line(&f, 0, "POST /api/v4/projects/group%2Fsub%2Fshop/merge_requests HTTP/1.1");
    assert_string_equal(header_of(&f, 0, "PRIVATE-TOKEN", h, sizeof(h)), TOKEN);
    assert_string_equal(header_of(&f, 0, "Authorization", h, sizeof(h)), "");
    body = body_of(&f, 0);
    assert_string_equal(str_of(body, "source_branch"), "triaged/42");
    assert_string_equal(str_of(body, "target_branch"), "main");
    assert_string_equal(str_of(body, "title"), "Draft: Fix checkout OOMKilled");
    assert_string_equal(str_of(body, "labels"), "triaged,automated");
    assert_string_equal(str_of(body, "description"), "## Why\nmemory limit 128Mi < peak 310Mi");
    cJSON_Delete(body);
    outcome_clear(&o);
    fx_stop(&f);
}

static void test_gitlab_409_reuses_the_open_mr_and_labels_it(void **state)
{
    fx f;
    outcome o = {0};
    char *mr = fixture_body("gitlab/go-gitlab-get_merge_request.json");
    cJSON *body;

    (void)state;
    fx_start(&f, TR_CONFIG_FORGE_GITLAB, "group/shop", "/api/v4");
    fake_add(&f.srv, fake_http(409, NULL, "{\"message\":[\"Another open merge request already "
                                          "exists for this source branch: !12\"]}"));
    fake_add(&f.srv, reply(200, NULL, edit_json(mr, "iid=12;source_branch=\"triaged/42\"", 1)));
    fake_add(&f.srv, reply(200, NULL, edit_json(mr, "iid=12", 0)));
    open_pr(&f, &o);
    assert_int_equal(o.code, TR_OK);
    assert_true(o.pr.reused);
    assert_int_equal(o.pr.number, 12);
    assert_request_line(&f, 1, "GET /api/v4/projects/group%2Fshop/merge_requests?source_branch="
                               "triaged%2F42&state=opened&per_page=100 HTTP/1.1");
    assert_request_line(&f, 2, "PUT /api/v4/projects/group%2Fshop/merge_requests/12 HTTP/1.1");
    body = body_of(&f, 2);
    assert_string_equal(str_of(body, "add_labels"), "triaged,automated");
    cJSON_Delete(body);
    tr_free(mr);
    outcome_clear(&o);
    fx_stop(&f);
}

static void test_gitlab_get_mr_maps_merged_and_closed(void **state)
{
    fx f;
    outcome o = {0}, o2 = {0};
    char *mr = fixture_body("gitlab/go-gitlab-get_merge_request.json");
    tr_error err;

    (void)state;
    fx_start(&f, TR_CONFIG_FORGE_GITLAB, "278964", "");
    fake_add(&f.srv, reply(200, NULL, edit_json(mr, "state=\"merged\";merge_commit_sha=\"abc\"",
                                                0)));
    fake_add(&f.srv, reply(200, NULL, edit_json(mr, "state=\"closed\"", 0)));
    assert_int_equal(tr_forge_get_pr(f.forge, 14656, NULL, on_done, &o, &err), TR_OK);
    fx_wait(&f, &o);
    assert_int_equal(o.pr.state, TR_FORGE_PR_MERGED);
    assert_string_equal(o.pr.merge_commit_sha, "abc");
    assert_request_line(&f, 0, "GET /api/v4/projects/278964/merge_requests/14656 HTTP/1.1");
    assert_int_equal(tr_forge_get_pr(f.forge, 14656, NULL, on_done, &o2, &err), TR_OK);
    fx_wait(&f, &o2);
    assert_int_equal(o2.pr.state, TR_FORGE_PR_CLOSED);
    tr_free(mr);
    outcome_clear(&o);
    outcome_clear(&o2);
    fx_stop(&f);
}

/* ------------------------------------------------------------------- Gitea */

static void test_gitea_open_pr_uses_token_scheme_and_labels_by_name(void **state)
{
    fx f;
    outcome o = {0};
    char h[256];
    cJSON *body;

    (void)state;
    fx_start(&f, TR_CONFIG_FORGE_GITEA, "foo/baz", "");
    fake_add(&f.srv,
             reply(201, NULL, fixture_body("gitea/scala-steward-gitea-create-pull-201.json")));
    fake_add(&f.srv, fake_http(200, NULL, "[]"));
    open_pr(&f, &o);
    assert_int_equal(o.code, TR_OK);
    assert_int_equal(o.pr.number, 2);
    assert_int_equal(o.pr.state, TR_FORGE_PR_OPEN);
    assert_string_equal(o.pr.html_url, "https://git.example.com/foo/baz/pulls/2");
    assert_request_line(&f, 0, "POST /api/v1/repos/foo/baz/pulls HTTP/1.1");
    assert_string_equal(header_of(&f, 0, "Authorization", h, sizeof(h)), "token " TOKEN);
    body = body_of(&f, 0);
    assert_string_equal(str_of(body, "head"), "triaged/42");
    assert_string_equal(str_of(body, "base"), "main");
    assert_string_equal(str_of(body, "title"), "WIP: Fix checkout OOMKilled");
    cJSON_Delete(body);
    assert_request_line(&f, 1, "POST /api/v1/repos/foo/baz/issues/2/labels HTTP/1.1");
    body = body_of(&f, 1);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(body, "labels"), 0)->valuestring,
                        "triaged");
    cJSON_Delete(body);
    outcome_clear(&o);
    fx_stop(&f);
}

static void test_gitea_409_lists_and_reuses_the_pr_of_the_branch(void **state)
{
    fx f;
    outcome o = {0};
    char *pr = fixture_body("gitea/scala-steward-gitea-create-pull-201.json");
    char *other = edit_json(pr, "number=9;head.ref=\"feature\"", 0);
    char *ours = edit_json(pr, "number=7;head.ref=\"triaged/42\"", 0), list[32768];

    (void)state;
    fx_start(&f, TR_CONFIG_FORGE_GITEA, "foo/baz", "/api/v1/");
    fake_add(&f.srv, fake_http(409, NULL, "{\"message\":\"pull request already exists for these "
                                          "targets [id: 7, issue_id: 12, head_repo_id: 5, "
                                          "base_repo_id: 5, head_branch: triaged/42, "
                                          "base_branch: main]\",\"url\":\"https://git.example.com"
                                          "/api/swagger\"}"));
    snprintf(list, sizeof(list), "[%s,%s]", other, ours);
    fake_add(&f.srv, fake_http(200, NULL, list));
    fake_add(&f.srv, fake_http(200, NULL, "[]"));
    open_pr(&f, &o);
    assert_int_equal(o.code, TR_OK);
    assert_true(o.pr.reused);
    assert_int_equal(o.pr.number, 7);
    assert_request_line(&f, 1, "GET /api/v1/repos/foo/baz/pulls?state=open&sort=recentupdate"
                               "&limit=50 HTTP/1.1");
    assert_request_line(&f, 2, "POST /api/v1/repos/foo/baz/issues/7/labels HTTP/1.1");
    tr_free(pr);
    tr_free(other);
    tr_free(ours);
    outcome_clear(&o);
    fx_stop(&f);
}

static void test_gitea_recorded_closed_pull_is_closed_not_merged(void **state)
{
    fx f;
    outcome o = {0};
    tr_error err;

    (void)state;
    fx_start(&f, TR_CONFIG_FORGE_GITEA, "foo/baz", "");
    fake_add(&f.srv, reply(200, NULL, fixture_body("gitea/scala-steward-gitea-closed-pull.json")));
    assert_int_equal(tr_forge_get_pr(f.forge, 1, NULL, on_done, &o, &err), TR_OK);
    fx_wait(&f, &o);
    assert_int_equal(o.code, TR_OK);
    assert_int_equal(o.pr.state, TR_FORGE_PR_CLOSED);
    assert_request_line(&f, 0, "GET /api/v1/repos/foo/baz/pulls/1 HTTP/1.1");
    outcome_clear(&o);
    fx_stop(&f);
}

/* ------------------------------------------------------- parsers, config */

static tr_forge_pr_state state_of(tr_config_forge_kind kind, const char *body)
{
    tr_forge_pr pr;
    tr_error err;
    tr_forge_pr_state st;

    assert_int_equal(tr_forge_parse_pr(kind, body, strlen(body), &pr, &err), TR_OK);
    st = pr.state;
    tr_forge_pr_clear(&pr);
    return st;
}

static void test_state_mapping_for_all_three_forges(void **state)
{
    char *gh = pygithub_body("pygithub-Repository.testCreatePull.201.txt");
    char *gl = fixture_body("gitlab/go-gitlab-get_merge_request.json");
    char *gt = fixture_body("gitea/scala-steward-gitea-create-pull-201.json");
    char *gtc = fixture_body("gitea/scala-steward-gitea-closed-pull.json");
    struct {
        tr_config_forge_kind kind;
        const char *base;
        const char *set;
        tr_forge_pr_state want;
    } cases[] = {
        {TR_CONFIG_FORGE_GITHUB, gh, "number=31", TR_FORGE_PR_OPEN},
        {TR_CONFIG_FORGE_GITHUB, gh, "state=\"closed\";merged=true", TR_FORGE_PR_MERGED},
        /* list items carry merged_at but no "merged" */
        {TR_CONFIG_FORGE_GITHUB, gh, "state=\"closed\";merged_at=\"2024-01-01T00:00:00Z\"",
         TR_FORGE_PR_MERGED},
        {TR_CONFIG_FORGE_GITHUB, gh, "state=\"closed\"", TR_FORGE_PR_CLOSED},
        {TR_CONFIG_FORGE_GITLAB, gl, "iid=1", TR_FORGE_PR_OPEN},
        {TR_CONFIG_FORGE_GITLAB, gl, "state=\"locked\"", TR_FORGE_PR_OPEN},
        {TR_CONFIG_FORGE_GITLAB, gl, "state=\"merged\"", TR_FORGE_PR_MERGED},
        {TR_CONFIG_FORGE_GITLAB, gl, "state=\"closed\"", TR_FORGE_PR_CLOSED},
        {TR_CONFIG_FORGE_GITEA, gt, "number=2", TR_FORGE_PR_OPEN},
        {TR_CONFIG_FORGE_GITEA, gtc, "number=1", TR_FORGE_PR_CLOSED},
        {TR_CONFIG_FORGE_GITEA, gtc, "merged=true", TR_FORGE_PR_MERGED},
    };
    tr_forge_pr pr;
    tr_error err;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *body = edit_json(cases[i].base, cases[i].set, 0);

        assert_int_equal(state_of(cases[i].kind, body), cases[i].want);
        tr_free(body);
    }
    assert_int_equal(tr_forge_parse_pr(TR_CONFIG_FORGE_GITLAB, "{\"iid\":3,\"state\":\"odd\","
                                       "\"web_url\":\"u\"}", 40, &pr, &err), TR_EPARSE);
    assert_string_equal(err.message, "GitLab merge request: field 'state' has an unknown value "
                                     "\"odd\"");
    assert_int_equal(tr_forge_parse_pr(TR_CONFIG_FORGE_GITEA, "[1]", 3, &pr, &err), TR_EPARSE);
    assert_int_equal(tr_forge_parse_pr(TR_CONFIG_FORGE_GITEA, "{\"state\":\"open\"}", 16, &pr,
                                       &err), TR_EPARSE);
    assert_string_equal(err.message, "Gitea pull request: field 'number' is missing");
    tr_free(gh);
    tr_free(gl);
    tr_free(gt);
    tr_free(gtc);
}

static void test_create_rejects_bad_config_with_the_key_named(void **state)
{
    uv_loop_t loop;
    tr_http_client *http;
    tr_forge *forge = NULL;
    tr_config_forge cfg = {.kind = TR_CONFIG_FORGE_GITHUB, .api_url = "", .repo = "acme",
                           .token_env = "TRIAGED_TEST_FORGE_TOKEN_UNSET"};
    tr_error err;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(tr_http_client_new(&http, &loop, &err), 0);
    assert_int_equal(tr_forge_create(&forge, &cfg, http, TOKEN, &err), TR_ECONFIG);
    assert_string_equal(err.message, "forge.repo \"acme\" is not \"owner/name\"");
    cfg.repo = "acme/shop";
    unsetenv("TRIAGED_TEST_FORGE_TOKEN_UNSET");
    assert_int_equal(tr_forge_create(&forge, &cfg, http, NULL, &err), TR_ECONFIG);
    assert_non_null(strstr(err.message, "forge.token_env"));
    assert_non_null(strstr(err.message, "TRIAGED_TEST_FORGE_TOKEN_UNSET"));
    cfg.kind = TR_CONFIG_FORGE_GITEA;
    assert_int_equal(tr_forge_create(&forge, &cfg, http, TOKEN, &err), TR_ECONFIG);
    assert_string_equal(err.message, "forge.api_url is required for gitea (no public default)");
    cfg.kind = TR_CONFIG_FORGE_NONE;
    assert_int_equal(tr_forge_create(&forge, &cfg, http, TOKEN, &err), TR_ECONFIG);
    cfg.kind = TR_CONFIG_FORGE_GITHUB;
    setenv("TRIAGED_TEST_FORGE_TOKEN_UNSET", "from-env", 1);
    assert_int_equal(tr_forge_create(&forge, &cfg, http, NULL, &err), TR_OK);
    assert_string_equal(tr_forge_kind(forge), "github");
    unsetenv("TRIAGED_TEST_FORGE_TOKEN_UNSET");
    tr_forge_free(forge);
    tr_http_client_free(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_github_open_pr_sends_the_documented_request_and_labels_it),
        cmocka_unit_test(test_github_422_already_exists_reuses_the_open_pr),
        cmocka_unit_test(test_github_recorded_422_invalid_base_is_refused_not_retried),
        cmocka_unit_test(test_github_get_pr_merged_then_304_with_the_etag),
        cmocka_unit_test(test_github_401_is_clear_not_retryable_and_never_shows_the_token),
        cmocka_unit_test(test_github_rate_limit_is_retryable_until_the_reset),
        cmocka_unit_test(test_5xx_and_404_take_different_outcomes),
        cmocka_unit_test(test_malformed_or_incomplete_reply_is_a_clear_error),
        cmocka_unit_test(test_find_pr_for_branch_prefers_open_and_reports_none),
        cmocka_unit_test(test_freeing_the_forge_cancels_calls_in_flight),
        cmocka_unit_test(test_gitlab_open_mr_sends_private_token_draft_prefix_and_labels),
        cmocka_unit_test(test_gitlab_409_reuses_the_open_mr_and_labels_it),
        cmocka_unit_test(test_gitlab_get_mr_maps_merged_and_closed),
        cmocka_unit_test(test_gitea_open_pr_uses_token_scheme_and_labels_by_name),
        cmocka_unit_test(test_gitea_409_lists_and_reuses_the_pr_of_the_branch),
        cmocka_unit_test(test_gitea_recorded_closed_pull_is_closed_not_merged),
        cmocka_unit_test(test_state_mapping_for_all_three_forges),
        cmocka_unit_test(test_create_rejects_bad_config_with_the_key_named),
    };

    TR_RUN_TESTS("forge", tests);
}
