/*
 * test_source.c - the GitOps repository registry and the source section
 * against real git repositories: a file:// upstream made with the git CLI
 * and the smart-HTTP server of tests/tools/git-http-server (basic auth).
 * No cluster here: the default repository is searched by the incident's
 * kind/name/namespace (tests/integration/test_gitops.py covers Argo/Flux).
 */
#include "testutil.h"

#include <stdarg.h>
#include <unistd.h>

#include "buf.h"
#include "health.h"
#include "repos.h"
#include "source.h"

#define USER "triaged"
#define PASSWORD "Pa55-w0rd-server"
#define AWS_KEY "AKIAIOSFODNN7EXAMPLE"
#define DB_PASSWORD "hunter2-Sup3rS3cret"

static char base_dir[256];
static char server_dir[300];
static int server_port;

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

#define GIT "git -c user.name=Dev -c user.email=dev@example.com -c init.defaultBranch=main "

/* A bare upstream at server_dir/repos/gitops.git: a base, an overlay, a Secret, HCL. */
static void make_upstream(void)
{
    sh("mkdir -p %s/repos && " GIT "init -q --bare %s/repos/gitops.git && " GIT "init -q %s/seed",
       server_dir, server_dir, base_dir);
    sh("cd %s/seed && mkdir -p base overlays/prod infra && "
       "printf 'apiVersion: v1\\nkind: Service\\nmetadata:\\n  name: web\\n---\\n"
       "apiVersion: apps/v1\\nkind: Deployment\\nmetadata:\\n  name: web\\nspec:\\n"
       "  template:\\n    spec:\\n      containers:\\n      - name: web\\n"
       "        image: nginx:1.25\\n        envFrom:\\n        - secretRef:\\n"
       "            name: web-creds\\n' > base/app.yaml && "
       "printf 'apiVersion: batch/v1\\nkind: CronJob\\nmetadata:\\n  name: nightly-backup\\n"
       "spec:\\n  schedule: \\\"0 2 * * *\\\"\\n---\\napiVersion: batch/v1\\nkind: Job\\n"
       "metadata:\\n  name: migrate\\nspec:\\n  backoffLimit: 1\\n' > base/jobs.yaml && "
       "printf 'resources:\\n- app.yaml\\n- secret.yaml\\n- jobs.yaml\\n' "
       "> base/kustomization.yaml && "
       "printf 'apiVersion: v1\\nkind: Secret\\nmetadata:\\n  name: web-credentials\\n"
       "stringData:\\n  password: " DB_PASSWORD "\\n' > base/secret.yaml && "
       "printf 'namePrefix: prod-\\nnamespace: shop\\nresources:\\n- ../../base\\n' "
       "> overlays/prod/kustomization.yaml && "
       "printf 'resource \"aws_s3_bucket\" \"logs\" {\\n  bucket = \"logs\"\\n"
       "  acl    = \"privat\"\\n}\\n' > infra/main.tf && "
       "git add -A && " GIT "commit -q -m 'initial layout' && "
       "sed -i 's/nginx:1.25/nginx:1.26-typo/' base/app.yaml && "
       "printf 'access_key = \"" AWS_KEY "\"\\n' >> infra/main.tf && "
       "git add -A && " GIT "commit -q -m 'bump web image' && "
       "git push -q %s/repos/gitops.git main",
       base_dir, server_dir);
}

static int start_server(void)
{
    char cmd[1024], port[32];
    FILE *p;
    int ok;

    snprintf(cmd, sizeof(cmd), "GIT_HTTP_USER=%s GIT_HTTP_PASSWORD=%s "
             "tests/tools/git-http-server start %s", USER, PASSWORD, server_dir);
    if ((p = popen(cmd, "r")) == NULL)
        return -1;
    ok = fgets(port, sizeof(port), p) != NULL;
    if (pclose(p) != 0 || !ok)
        return -1;
    return atoi(port);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(base_dir, sizeof(base_dir), "/tmp/test_source.XXXXXX");
    if (!mkdtemp(base_dir))
        return -1;
    snprintf(server_dir, sizeof(server_dir), "%s/server", base_dir);
    make_upstream();
    if (system("command -v lighttpd >/dev/null 2>&1") == 0)
        server_port = start_server();
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[700];

    (void)state;
    if (server_port > 0) {
        snprintf(cmd, sizeof(cmd), "tests/tools/git-http-server stop %s", server_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "stopping the git http server failed\n");
    }
    tr_gitrepo_global_shutdown();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base_dir);
    return system(cmd) == 0 ? 0 : -1;
}

typedef struct fixture {
    uv_loop_t loop;
    tr_health *health;
    tr_repos *repos;
    tr_source *source;
    tr_config cfg;
    char state_dir[400];
    char *section;
    int rc;
    int done;
    int closed;
} fixture;

static void on_section(int rc, const char *json, void *userdata)
{
    fixture *f = userdata;

    f->rc = rc;
    f->done = 1;
    f->section = json ? tr_strdup(json) : NULL;
}

static void on_closed(void *userdata)
{
    ((fixture *)userdata)->closed = 1;
}

static void fixture_open(fixture *f, const char *url, const char *token_env, const char *tag)
{
    tr_error err = { 0 };

    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(tr_health_new(&f->health), 0);
    snprintf(f->state_dir, sizeof(f->state_dir), "%s/state-%s", base_dir, tag);
    sh("mkdir -p %s", f->state_dir);
    f->cfg.daemon.state_dir = f->state_dir;
    f->cfg.gitops.url = (char *)url;
    f->cfg.gitops.branch = "main";
    f->cfg.gitops.token_env = (char *)token_env;
    f->cfg.gitops.username = USER;
    f->cfg.gitops.fetch_interval_ms = 300000;
    assert_int_equal(tr_repos_new(&f->repos, &f->loop, &f->cfg, f->health, &err), 0);
    assert_int_equal(tr_repos_count(f->repos), 1);
    assert_int_equal(tr_source_new(&f->source, &f->loop, f->repos, NULL, NULL, NULL, &err), 0);
}

static void gather(fixture *f, const char *source, const char *kind, const char *ns,
                   const char *name, const char *facts)
{
    tr_store_incident inc;
    tr_error err = { 0 };

    memset(&inc, 0, sizeof(inc));
    inc.id = 7;
    inc.source = (char *)source;
    inc.kind = (char *)kind;
    inc.namespace = (char *)ns;
    inc.name = (char *)name;
    inc.facts_json = (char *)facts;
    f->done = 0;
    assert_int_equal(tr_source_gather(f->source, &inc, on_section, f, NULL, &err), 0);
    assert_int_equal(f->done, 0); /* never from inside gather */
    while (!f->done)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->rc, TR_OK);
    assert_non_null(f->section);
}

static void fixture_close(fixture *f)
{
    tr_source_free(f->source);
    tr_repos_close(f->repos, on_closed, f);
    while (!f->closed)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    tr_health_free(f->health);
    tr_free(f->section);
}

static void assert_contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fail_msg("expected \"%s\" in %s", needle, hay);
}

static void assert_lacks(const char *hay, const char *needle)
{
    if (strstr(hay, needle) != NULL)
        fail_msg("did not expect \"%s\" in %s", needle, hay);
}

static void test_source_finds_overlay_renamed_deployment_with_history(void **state)
{
    fixture f;
    char url[512];
    tr_health_state hs;

    (void)state;
    snprintf(url, sizeof(url), "file://%s/repos/gitops.git", server_dir);
    fixture_open(&f, url, NULL, "file");
    gather(&f, "kubernetes", "Deployment", "shop", "prod-web",
           "{\"missing_kind\":\"Secret\",\"missing_name\":\"web-creds\"}");
    assert_contains(f.section, "\"repo\":\"default\"");
    assert_contains(f.section, "\"file\":\"base/app.yaml\"");
    assert_contains(f.section, "\"document_index\":1");
    assert_contains(f.section, "\"via_overlay\":\"overlays/prod/kustomization.yaml\"");
    assert_contains(f.section, "image: nginx:1.26-typo");
    assert_contains(f.section, "   7 | kind: Deployment"); /* line-numbered excerpt */
    assert_contains(f.section, "bump web image");
    assert_contains(f.section, "-        image: nginx:1.25"); /* the diff */
    assert_contains(f.section, "\"commit\":\"");
    /* The missing Secret: what the repo defines and what it references. */
    assert_contains(f.section, "prod-web-credentials");
    assert_contains(f.section, "web-creds");
    assert_lacks(f.section, DB_PASSWORD);
    assert_int_equal(tr_health_get(f.health, "gitops/default", &hs), 0);
    tr_repos_update_health(f.repos, tr_repos_default(f.repos));
    assert_int_equal(tr_health_get(f.health, "gitops/default", &hs), 0);
    assert_int_equal(hs, TR_HEALTH_OK);
    assert_ptr_equal(tr_repos_find_url(f.repos, url), tr_repos_default(f.repos));
    assert_ptr_equal(tr_repos_find_name(f.repos, "default"), tr_repos_default(f.repos));
    assert_null(tr_repos_find_url(f.repos, "https://example.com/other.git"));
    fixture_close(&f);
}

/* Jobs and the CronJobs that make them are found like any workload. */
static void test_source_finds_cronjob_and_job_manifests(void **state)
{
    fixture f;
    char url[512];

    (void)state;
    snprintf(url, sizeof(url), "file://%s/repos/gitops.git", server_dir);
    fixture_open(&f, url, NULL, "file");
    gather(&f, "kubernetes", "CronJob", "shop", "prod-nightly-backup", "{}");
    assert_contains(f.section, "\"file\":\"base/jobs.yaml\"");
    assert_contains(f.section, "\"document_index\":0");
    assert_contains(f.section, "schedule:");
    tr_free(f.section);
    f.section = NULL;
    gather(&f, "kubernetes", "Job", "shop", "prod-migrate", "{}");
    assert_contains(f.section, "\"file\":\"base/jobs.yaml\"");
    assert_contains(f.section, "\"document_index\":1");
    assert_contains(f.section, "backoffLimit: 1");
    fixture_close(&f);
}

static void test_source_terraform_block_and_history_redacted(void **state)
{
    fixture f;
    char url[512];

    (void)state;
    snprintf(url, sizeof(url), "file://%s/repos/gitops.git", server_dir);
    fixture_open(&f, url, NULL, "tf");
    gather(&f, "terraform", "TerraformConfig", "prod", "main.tf",
           "{\"repo_path\":\"infra\",\"diagnostics\":[{\"severity\":\"error\","
           "\"summary\":\"invalid acl\",\"filename\":\"main.tf\",\"start_line\":3}]}");
    assert_contains(f.section, "\"file\":\"infra/main.tf\"");
    assert_contains(f.section, "resource \\\"aws_s3_bucket\\\" \\\"logs\\\"");
    assert_contains(f.section, "acl    = \\\"privat\\\"");
    assert_contains(f.section, "\"lines\":\"1-4\"");
    assert_contains(f.section, "initial layout");
    assert_lacks(f.section, AWS_KEY);
    fixture_close(&f);
}

static void test_source_no_match_is_an_error_section(void **state)
{
    fixture f;
    char url[512];

    (void)state;
    snprintf(url, sizeof(url), "file://%s/repos/gitops.git", server_dir);
    fixture_open(&f, url, NULL, "nomatch");
    gather(&f, "kubernetes", "Deployment", "shop", "nothing-like-it", NULL);
    assert_contains(f.section, "\"error\":\"no manifest for Deployment shop/nothing-like-it");
    fixture_close(&f);
}

static void test_wrong_password_degrades_repo_and_source_says_why(void **state)
{
    fixture f;
    char url[512];
    tr_health_state hs = TR_HEALTH_OK;
    tr_buf ready = TR_BUF_INIT(0);

    (void)state;
    if (server_port <= 0)
        skip();
    /* The user in the URL, the (wrong) token from the environment. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/git/gitops.git", server_port);
    assert_int_equal(setenv("TEST_SOURCE_TOKEN", "wrong-T0ken-value", 1), 0);
    fixture_open(&f, url, "TEST_SOURCE_TOKEN", "badauth");
    gather(&f, "kubernetes", "Deployment", "shop", "prod-web", NULL);
    assert_contains(f.section, "\"error\":\"");
    assert_contains(f.section, "127.0.0.1");
    assert_lacks(f.section, "wrong-T0ken-value");
    assert_lacks(f.section, "\"file\"");
    tr_repos_update_health(f.repos, tr_repos_default(f.repos));
    assert_int_equal(tr_health_get(f.health, "gitops/default", &hs), 0);
    assert_int_equal(hs, TR_HEALTH_DEGRADED);
    assert_int_equal(tr_health_render_json(f.health, &ready), 0);
    assert_contains(tr_buf_cstr(&ready), "gitops/default");
    assert_lacks(tr_buf_cstr(&ready), "wrong-T0ken-value");
    tr_buf_dispose(&ready);
    fixture_close(&f);
}

static void test_right_password_over_http_finds_the_file(void **state)
{
    fixture f;
    char url[512];

    (void)state;
    if (server_port <= 0)
        skip();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/git/gitops.git", server_port);
    assert_int_equal(setenv("TEST_SOURCE_TOKEN", PASSWORD, 1), 0);
    fixture_open(&f, url, "TEST_SOURCE_TOKEN", "goodauth");
    gather(&f, "kubernetes", "Deployment", "shop", "prod-web", NULL);
    assert_contains(f.section, "\"file\":\"base/app.yaml\"");
    assert_lacks(f.section, PASSWORD);
    fixture_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_finds_overlay_renamed_deployment_with_history),
        cmocka_unit_test(test_source_finds_cronjob_and_job_manifests),
        cmocka_unit_test(test_source_terraform_block_and_history_redacted),
        cmocka_unit_test(test_source_no_match_is_an_error_section),
        cmocka_unit_test(test_wrong_password_degrades_repo_and_source_says_why),
        cmocka_unit_test(test_right_password_over_http_finds_the_file),
    };
    int failed;

    if (tr_alloc_install() != 0)
        return 1;
    failed = cmocka_run_group_tests_name("source", tests, group_setup, group_teardown);
    tr_alloc_uninstall();
    return failed;
}
