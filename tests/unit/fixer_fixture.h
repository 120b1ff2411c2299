/*
 * fixer_fixture.h - the world test_fixer*.c run the fixer in: a REAL git server
 * (tests/tools/git-http-server: lighttpd + git-http-backend, basic auth,
 * receive-pack), a real SQLite store, the real actions module for the
 * accept, and fakes only for the SaaS: the forge (recorded GitHub bodies,
 * fake_forge.h) and the LLM (fake_llm_server.h). Assertions read what a
 * user would see: the branch on the server, the PR request on the wire, the
 * incident's state and error, the metrics. Header-only, like fake_llm_server.h.
 */
#ifndef FIXER_FIXTURE_H
#define FIXER_FIXTURE_H

#include "testutil.h"

#include <time.h>

#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "actions.h"
#include "fake_forge.h"
#include "fake_llm_server.h"
#include "fixer.h"
#include "forge.h"
#include "gitrepo.h"
#include "metrics.h"
#include "openai.h"
#include "store.h"

#define USER "triaged"
#define PASSWORD "s3cret-Fix3r"
#define AUTHOR "Fixer Bot <fixer@example.com>"
#define GIT "git -c user.name=Dev -c user.email=dev@example.com -c init.defaultBranch=main "

/* The manifest in the repository: a secret line with trailing blanks must survive as is. */
#define SECRET_LINE "    vault-token: \"hvs.KEEP-this-SECRET-exactly\"   \n"
#define WEB_HEAD "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n" \
                 "  namespace: shop\n  annotations:\n" SECRET_LINE \
                 "spec:\n  template:\n    spec:\n      containers:\n      - name: web\n" \
                 "        resources:\n          limits:\n"
#define WEB_YAML WEB_HEAD "            memory: 128Mi\n"
#define WEB_FIXED WEB_HEAD "            memory: 512Mi\n"

/* Off by a few lines, as models write them: re-anchored by its context. */
#define GOOD_PATCH "Here is the fix:\n```diff\n--- a/apps/web.yaml\n+++ b/apps/web.yaml\n" \
                   "@@ -10,3 +10,3 @@\n         resources:\n           limits:\n" \
                   "-            memory: 128Mi\n+            memory: 512Mi\n```\n"
/* Its context is nowhere in the file: refused. */
#define BAD_PATCH "--- a/apps/web.yaml\n+++ b/apps/web.yaml\n@@ -13,3 +13,3 @@\n" \
                  "         resources:\n           requests:\n" \
                  "-            memory: 128Mi\n+            memory: 512Mi\n"

/* Helpers each test file uses only some of. */
#define FX_FN static __attribute__((unused))

static char base_dir[256];
static char server_dir[300];
static int server_port;
static int have_server;

FX_FN void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
FX_FN void sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

/* Everything a command prints (at most cap - 1 bytes). */
FX_FN void sh_out(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
FX_FN void sh_out(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[2048];
    size_t n;
    va_list ap;
    FILE *p;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
}

FX_FN void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
    assert_int_equal(fclose(f), 0);
}

/* A bare upstream NAME.git on the server with apps/web.yaml on main. */
FX_FN void make_upstream(const char *name)
{
    char path[700];

    sh("rm -rf %s/repos/%s.git %s/seed-%s && " GIT "init -q --bare %s/repos/%s.git && " GIT
       "init -q %s/seed-%s && mkdir -p %s/seed-%s/apps", server_dir, name, base_dir, name,
       server_dir, name, base_dir, name, base_dir, name);
    snprintf(path, sizeof(path), "%s/seed-%s/apps/web.yaml", base_dir, name);
    write_file(path, WEB_YAML);
    sh("cd %s/seed-%s && git remote add origin %s/repos/%s.git && git add -A && " GIT
       "commit -qm initial && git push -q origin HEAD:refs/heads/main", base_dir, name,
       server_dir, name);
}

/* ------------------------------------------------------------ the fixture */

typedef struct fx {
    uv_loop_t loop;
    tr_config *cfg;
    tr_http_client *http;
    fake_server forge_srv;
    fake_server llm_srv;
    tr_store *store;
    tr_gitrepo *repo;
    tr_forge *forge;
    tr_llm *llm;
    tr_metrics *metrics;
    tr_fixer *fixer;
    tr_actions actions;
    uv_timer_t tick; /* wakes the loop often, so waits can look at the store */
    char name[64], url[256], dir[512], db[512];
    int64_t now;
} fx;

FX_FN void on_tick(uv_timer_t *t)
{
    (void)t;
}

FX_FN int64_t fake_now(void *userdata)
{
    return ((fx *)userdata)->now;
}

/* A fixer over the fixture's store, repository and forge (again: a restart). */
FX_FN void fx_new_fixer(fx *f)
{
    tr_fixer_options o = {0};
    tr_error err = {0};

    o.store = f->store;
    o.forge = f->forge;
    o.repo = f->repo;
    o.llm = f->llm;
    o.metrics = f->metrics;
    o.policy = &f->cfg->fixer;
    o.author = f->cfg->gitops.author;
    o.public_url = f->cfg->daemon.public_url;
    o.scan_interval_ms = 3600000;
    o.now_ms = fake_now;
    o.clock_userdata = f;
    assert_int_equal(tr_fixer_new(&f->fixer, &f->loop, &o, &err), 0);
    f->actions.userdata = f->fixer;
}

/* The process died: a new fixer, nothing kept but the store and the remote. */
FX_FN void fx_restart_fixer(fx *f)
{
    tr_fixer_close(f->fixer, NULL, NULL);
    f->fixer = NULL;
    uv_run(&f->loop, UV_RUN_NOWAIT);
    fx_new_fixer(f);
}

/*
 * forge_toml: the [forge] kind and repo; fixer_toml: extra [fixer] keys;
 * with_llm: a fake LLM for repairs.
 */
FX_FN void fx_start_forge(fx *f, const char *name, const char *forge_toml,
                          const char *fixer_toml, int with_llm)
{
    char text[2048];
    tr_gitrepo_spec spec = {0};
    tr_llm_options lo = {0};
    tr_error err = {0};

    if (!have_server)
        skip();
    memset(f, 0, sizeof(*f));
    f->now = 1795000000000;
    snprintf(f->name, sizeof(f->name), "%s", name);
    make_upstream(name);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(fake_start(&f->forge_srv, &f->loop), 0);
    assert_int_equal(fake_start(&f->llm_srv, &f->loop), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->tick), 0);
    assert_int_equal(uv_timer_start(&f->tick, on_tick, 10, 10), 0);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/git/%s.git", server_port, name);
    snprintf(text, sizeof(text),
             "[daemon]\npublic_url = \"https://triaged.example/\"\n"
             "[gitops]\nurl = \"%s\"\nauthor = \"" AUTHOR "\"\n"
             "[llm]\nbase_url = \"http://127.0.0.1:%d/v1\"\nmodel = \"tiny\"\n"
             "api_key_env = \"\"\nprompts_dir = \"./prompts\"\n"
             "[forge]\napi_url = \"http://127.0.0.1:%d\"\nlabels = [\"triaged\"]\n%s"
             "[fixer]\n%s", f->url, f->llm_srv.port, f->forge_srv.port, forge_toml, fixer_toml);
    if (tr_config_load_string(&f->cfg, text, strlen(text), "test.toml", &err) != 0)
        fail_msg("config: %s", err.message);
    assert_int_equal(tr_http_client_new(&f->http, &f->loop, &err), 0);
    snprintf(f->db, sizeof(f->db), "%s/%s.db", base_dir, name);
    assert_int_equal(tr_store_open(&f->store, f->db, &err), 0);
    assert_int_equal(tr_metrics_new(&f->metrics, 0), 0);
    snprintf(f->dir, sizeof(f->dir), "%s/state/git/%s", base_dir, name);
    spec.name = name;
    spec.url = f->url;
    spec.branch = "main";
    spec.username = USER;
    spec.token = PASSWORD;
    spec.work_dir = f->dir;
    assert_int_equal(tr_gitrepo_new(&f->repo, &f->loop, &spec, &err), 0);
    assert_int_equal(tr_forge_create(&f->forge, &f->cfg->forge, f->http, "tok", &err), 0);
    tr_forge_set_timeout(f->forge, 10000);
    if (with_llm) {
        lo.config = &f->cfg->llm;
        lo.store = f->store;
        lo.max_retries = -1;
        assert_int_equal(tr_llm_new(&f->llm, &f->loop, f->http, &lo, &err), 0);
    }
    fx_new_fixer(f);
    f->actions.store = f->store;
    f->actions.on_decision = tr_fixer_on_decision;
}

/* On GitHub as acme/shop. */
FX_FN void fx_start(fx *f, const char *name, const char *fixer_toml, int with_llm)
{
    fx_start_forge(f, name, "kind = \"github\"\nrepo = \"acme/shop\"\n", fixer_toml, with_llm);
}

FX_FN void fx_stop(fx *f)
{
    tr_fixer_close(f->fixer, NULL, NULL);
    uv_close((uv_handle_t *)&f->tick, NULL);
    tr_forge_free(f->forge);
    tr_llm_free(f->llm);
    tr_gitrepo_close(f->repo, NULL, NULL);
    fake_stop(&f->forge_srv);
    fake_stop(&f->llm_srv);
    tr_http_client_free(f->http);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    tr_metrics_free(f->metrics);
    tr_store_close(f->store);
    tr_config_free(f->cfg);
}

/* A new latest analysis of incident id carrying patch; to: a state change with it, or 0. */
FX_FN void put_analysis(fx *f, int64_t id, double confidence, const char *severity,
                        const char *patch, int to)
{
    tr_store_analysis an = {0};
    tr_store_transition t = {0};
    tr_error err = {0};

    an.incident_id = id;
    an.summary = "web runs out of memory under load";
    an.root_cause = "the memory limit 128Mi is below the 310Mi peak";
    an.severity = severity;
    an.confidence = confidence;
    an.evidence_json = "[\"Last State: Terminated, Reason: OOMKilled\"]";
    an.remediation_json = "[\"raise the limit\"]";
    an.patch = patch;
    an.provider = "openai";
    an.model = "tiny";
    t.to = to;
    assert_int_equal(tr_store_analysis_put(f->store, &an, to ? &t : NULL, f->now, NULL, &err),
                     0);
}

/* A kubernetes incident, analysed, whose analysis carries patch. */
FX_FN int64_t make_incident_sev(fx *f, const char *fp, const char *ns, double confidence,
                                 const char *severity, const char *patch)
{
    tr_store_observation obs = {0};
    tr_store_obs_result res = {0};
    tr_error err = {0};

    obs.fingerprint = fp;
    obs.source = "kubernetes";
    obs.namespace = ns;
    obs.kind = "Pod";
    obs.name = "web-7d9f";
    obs.owner_kind = "Deployment";
    obs.owner_name = "web";
    obs.failure_class = "OOMKilled";
    obs.message = "container web was OOMKilled";
    obs.observed_ms = f->now;
    assert_int_equal(tr_store_observe(f->store, &obs, 60000, f->now, &res, &err), 0);
    put_analysis(f, res.incident_id, confidence, severity, patch, TR_INCIDENT_ANALYZED);
    return res.incident_id;
}

FX_FN tr_store_incident *incident(fx *f, int64_t id)
{
    tr_store_incident *inc = NULL;
    tr_error err = {0};

    assert_int_equal(tr_store_incident_get(f->store, id, &inc, &err), 0);
    return inc;
}

FX_FN int state_of(fx *f, int64_t id)
{
    tr_store_incident *inc = incident(f, id);
    int state = inc->state;

    tr_store_incident_free(inc);
    return state;
}

/* Run the loop until incident id is in `state` (or failed), then until the fixer is idle. */
FX_FN void wait_state(fx *f, int64_t id, int state)
{
    time_t deadline = time(NULL) + 90;
    int now_state;

    while ((now_state = state_of(f, id)) != state && now_state != TR_INCIDENT_FAILED) {
        assert_true(time(NULL) < deadline);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    while (tr_fixer_busy(f->fixer) > 0) {
        assert_true(time(NULL) < deadline);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    if (now_state != state) {
        tr_store_incident *inc = incident(f, id);

        fail_msg("incident %lld is %s (%s), expected %s", (long long)id,
                 tr_store_state_name(inc->state), inc->error ? inc->error : "",
                 tr_store_state_name(state));
    }
}

FX_FN void accept_incident(fx *f, int64_t id)
{
    tr_error err = {0};

    wait_state(f, id, TR_INCIDENT_PATCH_PROPOSED); /* the first scan proposed it */
    if (tr_actions_decide(&f->actions, id, 1, "cli", NULL, &err) != 0)
        fail_msg("accept: %s", err.message);
}

FX_FN void add_created(fx *f)
{
    fake_add(&f->forge_srv,
             reply(201, NULL, pygithub_body("pygithub-Repository.testCreatePull.201.txt")));
    fake_add(&f->forge_srv, fake_http(200, NULL, "[{\"name\":\"triaged\"}]"));
}

/* The content of path on branch of the server's repository. */
FX_FN void server_file(fx *f, const char *branch, const char *path, char *out, size_t cap)
{
    sh_out(out, cap, "git --git-dir=%s/repos/%s.git show %s:%s", server_dir, f->name, branch,
           path);
}

FX_FN void server_rev(fx *f, const char *rev, char *out, size_t cap)
{
    sh_out(out, cap, "git --git-dir=%s/repos/%s.git rev-parse %s", server_dir, f->name, rev);
}

FX_FN double metric(fx *f, const char *name, const char *outcome)
{
    tr_metric_family *fam = outcome ? tr_metrics_counter(f->metrics, name, "", "outcome", NULL)
                                    : tr_metrics_counter(f->metrics, name, "", NULL);

    return outcome ? tr_metric_value(fam, outcome) : tr_metric_value(fam);
}


FX_FN int64_t make_incident(fx *f, const char *fp, const char *ns, double confidence,
                            const char *patch)
{
    return make_incident_sev(f, fp, ns, confidence, "error", patch);
}

/* ------------------------------------------------------------ group */

FX_FN int group_setup(void **state)
{
    char cmd[1024], port[32];
    FILE *p;

    (void)state;
    snprintf(base_dir, sizeof(base_dir), "/tmp/test_fixer.XXXXXX");
    if (!mkdtemp(base_dir))
        return -1;
    snprintf(server_dir, sizeof(server_dir), "%s/server", base_dir);
    snprintf(cmd, sizeof(cmd), "%s/home", base_dir);
    if (mkdir(server_dir, 0700) != 0 || mkdir(cmd, 0700) != 0 || setenv("HOME", cmd, 1) != 0)
        return -1;
    if (tr_gitrepo_global_init(NULL) != 0)
        return -1;
    if (system("command -v lighttpd >/dev/null 2>&1") != 0) {
        fprintf(stderr, "lighttpd is not installed: the fixer tests skip\n");
        return 0;
    }
    snprintf(cmd, sizeof(cmd), "GIT_HTTP_USER=%s GIT_HTTP_PASSWORD=%s "
             "tests/tools/git-http-server start %s", USER, PASSWORD, server_dir);
    p = popen(cmd, "r");
    if (p == NULL || fgets(port, sizeof(port), p) == NULL) {
        if (p)
            (void)pclose(p);
        return -1;
    }
    if (pclose(p) != 0 || (server_port = atoi(port)) <= 0)
        return -1;
    have_server = 1;
    return 0;
}

FX_FN int group_teardown(void **state)
{
    char cmd[600];

    (void)state;
    if (have_server) {
        snprintf(cmd, sizeof(cmd), "tests/tools/git-http-server stop %s", server_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "stopping the git http server failed\n");
    }
    tr_gitrepo_global_shutdown();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base_dir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
