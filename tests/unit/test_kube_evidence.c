#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "analysis.h"
#include "buf.h"
#include "config.h"
#include "error.h"
#include "evidence.h"
#include "health.h"
#include "http_client.h"
#include "kube_client.h"
#include "kube_evidence.h"
#include "store.h"

/*
 * Evidence for Kubernetes incidents, the parts that need no cluster: log
 * condensing (folding, tail, byte cap), the bundle's fitting order and
 * redaction of gathered sections, and the analysis stage's evidence
 * provider hook on a real SQLite store. The gathering itself runs against
 * a real apiserver in tests/integration/test_kube_evidence.py.
 */

static char *condense(const char *log, int64_t lines, int64_t bytes)
{
    tr_buf out = TR_BUF_INIT(0);

    assert_int_equal(tr_kube_log_condense(&out, log, strlen(log), lines, bytes), TR_OK);
    if (out.ptr == NULL)
        return tr_strdup("");
    return tr_buf_detach(&out);
}

static void test_log_repeated_lines_fold_into_one_with_a_count(void **state)
{
    tr_buf log = TR_BUF_INIT(0);
    char *out;

    (void)state;
    assert_int_equal(tr_buf_puts(&log, "starting checkout\r\n"), 0);
    for (int i = 0; i < 38; i++)
        assert_int_equal(tr_buf_puts(&log, "retrying connection to db:5432\n"), 0);
    assert_int_equal(tr_buf_puts(&log, "fatal: out of memory\nfatal: out of memory"), 0);
    out = condense(tr_buf_cstr(&log), 100, 16384);
    assert_string_equal(out, "starting checkout\n"
                             "retrying connection to db:5432\n"
                             "[last line repeated 37 times]\n"
                             "fatal: out of memory\n"
                             "[last line repeated 1 times]\n");
    tr_free(out);
    tr_buf_dispose(&log);
}

static void test_log_keeps_the_last_lines_and_says_it_cut(void **state)
{
    char *out;

    (void)state;
    out = condense("one\ntwo\nthree\nfour\nfive\n", 2, 0);
    assert_string_equal(out, "\xe2\x80\xa6 (3 lines omitted)\nfour\nfive\n");
    tr_free(out);
    /* A fold marker is a line the reader sees: it counts. */
    out = condense("a\nb\nb\nb\n", 2, 0);
    assert_string_equal(out, "\xe2\x80\xa6 (1 line omitted)\nb\n[last line repeated 2 times]\n");
    tr_free(out);
}

static void test_log_byte_cap_keeps_whole_newest_lines(void **state)
{
    char *out;

    (void)state;
    /* The omission marker counts against the cap. */
    out = condense("0123456789\nabcdefghij\nKLMNOPQRST\n", 0, 30);
    assert_string_equal(out, "\xe2\x80\xa6 (2 lines omitted)\nKLMNOPQRST\n");
    tr_free(out);
    /* One line over the cap alone: its tail, at a character boundary. */
    out = condense("xxxxxxxxxxxxxxxxxxxxxxxxxx\xc3\xa9 the end\n", 0, 10);
    assert_string_equal(out, "\xe2\x80\xa6\xc3\xa9 the end\n");
    tr_free(out);
    out = condense("", 10, 10);
    assert_string_equal(out, "");
    tr_free(out);
}

static void test_object_paths_by_kind(void **state)
{
    tr_buf b = TR_BUF_INIT(0);

    (void)state;
    assert_int_equal(tr_kube_object_path(&b, "Deployment", "shop", "checkout", 0), 0);
    assert_string_equal(tr_buf_cstr(&b), "/apis/apps/v1/namespaces/shop/deployments/checkout");
    tr_buf_clear(&b);
    assert_int_equal(tr_kube_object_path(&b, "Node", "", "node-a", 0), 0);
    assert_string_equal(tr_buf_cstr(&b), "/api/v1/nodes/node-a");
    tr_buf_clear(&b);
    assert_int_equal(tr_kube_object_path(&b, "CronJob", "ops", "backup", 1), 0);
    assert_string_equal(tr_buf_cstr(&b), "/apis/batch/v1beta1/namespaces/ops/cronjobs/backup");
    assert_int_equal(tr_kube_object_path(&b, "Deployment", "a", "b", 1), TR_ENOTFOUND);
    assert_int_equal(tr_kube_object_path(&b, "Application", "a", "b", 0), TR_ENOTFOUND);
    tr_buf_dispose(&b);
}

/* ------------------------------------------------------------ bundle fitting */

static void fill_incident(tr_store_incident *inc)
{
    memset(inc, 0, sizeof(*inc));
    inc->id = 7;
    inc->source = "kubernetes";
    inc->cluster = "prod";
    inc->namespace = "shop";
    inc->kind = "Deployment";
    inc->name = "checkout";
    inc->failure_class = "OOMKilled";
    inc->title = "container app of shop/checkout was OOMKilled";
    inc->facts_json = "{\"container\":\"app\",\"exit_code\":137,\"memory_limit\":\"64Mi\"}";
    inc->observation_count = 3;
}

static void add_text(cJSON *obj, const char *key, const char *line, size_t bytes, const char *end)
{
    tr_buf b = TR_BUF_INIT(0);

    while (b.len < bytes)
        assert_int_equal(tr_buf_puts(&b, line), 0);
    assert_int_equal(tr_buf_puts(&b, end), 0);
    assert_non_null(cJSON_AddStringToObject(obj, key, tr_buf_cstr(&b)));
    tr_buf_dispose(&b);
}

/* Every section big, each distinguishable: what survives a budget shows the order. */
static char *big_evidence(void)
{
    cJSON *root = cJSON_CreateObject(), *arr, *item, *spec;
    char *text, *copy;

    arr = cJSON_AddArrayToObject(root, "last_termination");
    item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "name", "app");
    cJSON_AddStringToObject(item, "reason_seen", "OOMKilled exit 137");
    cJSON_AddItemToArray(arr, item);
    arr = cJSON_AddArrayToObject(root, "previous_logs");
    item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "pod", "checkout-1");
    add_text(item, "log", "PREVLINE allocating buffers for cart\n", 3000,
             "FATAL runtime: out of memory\n");
    cJSON_AddItemToArray(arr, item);
    arr = cJSON_AddArrayToObject(root, "events");
    for (int i = 0; i < 10; i++) {
        char reason[32];

        item = cJSON_CreateObject();
        snprintf(reason, sizeof(reason), "BackOff-%02d", i);
        cJSON_AddStringToObject(item, "reason", reason);
        add_text(item, "message", "back-off restarting failed container app ", 160, ".");
        cJSON_AddItemToArray(arr, item);
    }
    item = cJSON_AddObjectToObject(root, "object");
    spec = cJSON_AddObjectToObject(item, "spec");
    add_text(spec, "SPECTEXT", "containers image resources probes ", 3000, "");
    arr = cJSON_AddArrayToObject(root, "current_logs");
    item = cJSON_CreateObject();
    add_text(item, "log", "CURLINE serving request\n", 6000, "");
    cJSON_AddItemToArray(arr, item);
    text = cJSON_PrintUnformatted(root);
    copy = tr_strdup(text);
    cJSON_free(text);
    cJSON_Delete(root);
    return copy;
}

static void test_fitting_cuts_current_logs_before_anything_else(void **state)
{
    tr_store_incident inc;
    char *evidence = big_evidence(), *out = NULL, *trimmed;
    int64_t tokens = 0;
    tr_error err;

    (void)state;
    fill_incident(&inc);
    /* A little over: the current log loses its head, nothing else is touched. */
    assert_int_equal(tr_evidence_bundle_ex(&inc, evidence, 3200, &out, &tokens, NULL, &err), 0);
    assert_true(tokens <= 3200);
    trimmed = strstr(out, "[trimmed");
    assert_non_null(trimmed);
    assert_null(strstr(trimmed + 1, "[trimmed"));
    assert_true(trimmed > strstr(out, "\"current_logs\""));
    assert_non_null(strstr(out, "\"log\":\"PREVLINE")); /* the previous log whole */
    assert_non_null(strstr(out, "SPECTEXT"));
    assert_non_null(strstr(out, "BackOff-00")); /* every event still there */
    assert_non_null(strstr(out, "OOMKilled exit 137"));
    tr_free(out);
    /* Over by more than the whole current log: it goes, then the spec is cut. */
    assert_int_equal(tr_evidence_bundle_ex(&inc, evidence, 1900, &out, &tokens, NULL, &err), 0);
    assert_true(tokens <= 1900);
    assert_null(strstr(out, "CURLINE"));
    assert_non_null(strstr(out, "SPECTEXT"));
    assert_non_null(strstr(out, "\"log\":\"PREVLINE"));
    assert_non_null(strstr(out, "BackOff-00"));
    tr_free(out);
    tr_free(evidence);
}

static void test_fitting_keeps_termination_and_log_tail_last(void **state)
{
    tr_store_incident inc;
    char *evidence = big_evidence(), *out = NULL;
    int64_t tokens = 0;
    tr_error err;

    (void)state;
    fill_incident(&inc);
    assert_int_equal(tr_evidence_bundle_ex(&inc, evidence, 700, &out, &tokens, NULL, &err), 0);
    assert_true(tokens <= 700);
    assert_null(strstr(out, "CURLINE"));
    assert_null(strstr(out, "SPECTEXT"));
    assert_null(strstr(out, "BackOff-0"));
    /* The previous log lost its head, not its last line. */
    assert_non_null(strstr(out, "FATAL runtime: out of memory"));
    assert_non_null(strstr(out, "[trimmed"));
    assert_non_null(strstr(out, "OOMKilled exit 137"));
    /* Identity and facts are never what goes first. */
    assert_non_null(strstr(out, "\"memory_limit\":\"64Mi\""));
    assert_non_null(strstr(out, "\"name\":\"checkout\""));
    tr_free(out);
    tr_free(evidence);
}

static void test_fitting_between_drops_events_oldest_first(void **state)
{
    tr_store_incident inc;
    char *evidence = big_evidence(), *out = NULL;
    tr_error err;

    (void)state;
    fill_incident(&inc);
    /* Room for termination, the previous log and some of the events. */
    assert_int_equal(tr_evidence_bundle_ex(&inc, evidence, 1250, &out, NULL, NULL, &err), 0);
    assert_null(strstr(out, "CURLINE"));
    assert_null(strstr(out, "SPECTEXT"));
    assert_null(strstr(out, "BackOff-00"));
    assert_non_null(strstr(out, "BackOff-09"));
    assert_non_null(strstr(out, "PREVLINE"));
    tr_free(out);
    tr_free(evidence);
}

static void test_gathered_evidence_is_redacted_in_the_bundle(void **state)
{
    tr_store_incident inc;
    char *out = NULL;
    size_t masked = 0;
    tr_error err;
    static const char gathered[] =
        "{\"previous_logs\":[{\"pod\":\"checkout-1\",\"container\":\"app\",\"log\":"
        "\"connecting with DB_PASSWORD=hunter2\\nkey sk-live-ABCDEFGHIJKLMNOPQRSTUV\\n\"}],"
        "\"object\":{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\","
        "\"env\":[{\"name\":\"STRIPE_TOKEN\",\"value\":\"tok-very-secret-value\"}]}]}}}}}";

    (void)state;
    fill_incident(&inc);
    assert_int_equal(tr_evidence_bundle_ex(&inc, gathered, 4000, &out, NULL, &masked, &err), 0);
    assert_null(strstr(out, "hunter2"));
    assert_null(strstr(out, "sk-live-ABCDEFGHIJKLMNOPQRSTUV"));
    assert_null(strstr(out, "tok-very-secret-value"));
    assert_non_null(strstr(out, "STRIPE_TOKEN"));
    assert_non_null(strstr(out, "connecting with DB_PASSWORD="));
    assert_true(masked >= 3);
    tr_free(out);
}

static void test_gathered_text_that_is_not_an_object_is_kept_as_text(void **state)
{
    tr_store_incident inc;
    char *out = NULL;
    tr_error err;

    (void)state;
    fill_incident(&inc);
    assert_int_equal(tr_evidence_bundle_ex(&inc, "[1,2", 4000, &out, NULL, NULL, &err), 0);
    assert_non_null(strstr(out, "\"kubernetes\":\"[1,2\""));
    tr_free(out);
}

/* ------------------------------------------------------------ gathering */

static void never_called(int rc, const char *json, void *userdata)
{
    (void)rc;
    (void)json;
    (void)userdata;
    fail_msg("the callback of a gathering that did not start ran");
}

static void test_gather_without_a_cluster_fails_at_once(void **state)
{
    uv_loop_t loop;
    tr_http_client *http = NULL;
    tr_health *health = NULL;
    tr_kube_client *client = NULL;
    tr_kube_evidence *ev = NULL;
    tr_kube_client_options co;
    tr_store_incident inc;
    tr_error err;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(tr_health_new(&health), 0);
    assert_int_equal(tr_http_client_new(&http, &loop, &err), 0);
    memset(&co, 0, sizeof(co));
    co.kubeconfig = "/nonexistent/kubeconfig";
    assert_int_equal(tr_kube_client_new(&client, &loop, http, health, &co, &err), 0);
    assert_int_equal(tr_kube_evidence_new(&ev, &loop, client, http, NULL, &err), 0);
    fill_incident(&inc);
    assert_int_equal(tr_kube_evidence_gather(ev, &inc, never_called, NULL, NULL, &err),
                     TR_EUNAVAILABLE);
    inc.kind = "";
    assert_int_equal(tr_kube_evidence_gather(ev, &inc, never_called, NULL, NULL, &err),
                     TR_EINVAL);
    assert_int_equal(tr_kube_evidence_active(ev), 0);
    tr_kube_evidence_free(ev);
    tr_kube_client_close(client);
    tr_http_client_free(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    tr_health_free(health);
}

/* ------------------------------------------------------------ the analysis hook */

typedef struct fake_provider {
    uv_timer_t timer;
    tr_evidence_done_cb done;
    void *token;
    int gathered;
    int cancelled;
    uint64_t delay_ms;
    char kind_seen[64];
} fake_provider;

static const char fake_evidence[] =
    "{\"last_termination\":[{\"name\":\"app\",\"lastState\":{\"terminated\":{\"exitCode\":137,"
    "\"reason\":\"OOMKilled\"}}}],\"previous_logs\":[{\"pod\":\"checkout-1\",\"container\":"
    "\"app\",\"log\":\"DB_PASSWORD=hunter2\\njava.lang.OutOfMemoryError: Java heap space\\n\"}]}";

static void on_fake_timer(uv_timer_t *t)
{
    fake_provider *p = t->data;

    p->done(TR_OK, fake_evidence, p->token);
}

static int fake_gather(void *userdata, const tr_store_incident *incident,
                       tr_evidence_done_cb done, void *token, void **handle)
{
    fake_provider *p = userdata;

    p->gathered++;
    snprintf(p->kind_seen, sizeof(p->kind_seen), "%s", incident->kind);
    p->done = done;
    p->token = token;
    *handle = p;
    uv_timer_start(&p->timer, on_fake_timer, p->delay_ms, 0);
    return TR_OK;
}

static void fake_cancel(void *userdata, void *handle)
{
    fake_provider *p = userdata;

    assert_ptr_equal(handle, p);
    p->cancelled++;
    uv_timer_stop(&p->timer);
}

typedef struct stage_env {
    uv_loop_t loop;
    tr_config *cfg;
    tr_store *store;
    tr_analysis *analysis;
    fake_provider provider;
    char dir[64];
    int64_t incident_id;
} stage_env;

static void stage_init(stage_env *e, uint64_t gather_ms)
{
    static const char toml[] = "[llm]\nprovider = \"none\"\nprompts_dir = \"./prompts\"\n";
    tr_store_observation obs;
    tr_store_obs_result res;
    tr_analysis_options o;
    char path[128];
    tr_error err;

    memset(e, 0, sizeof(*e));
    assert_int_equal(uv_loop_init(&e->loop), 0);
    uv_timer_init(&e->loop, &e->provider.timer);
    e->provider.timer.data = &e->provider;
    e->provider.delay_ms = gather_ms;
    assert_int_equal(tr_config_load_string(&e->cfg, toml, strlen(toml), "t.toml", &err), 0);
    snprintf(e->dir, sizeof(e->dir), "/tmp/triaged-evidence-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(path, sizeof(path), "%s/triaged.db", e->dir);
    if (tr_store_open(&e->store, path, &err) != 0)
        fail_msg("store: %s", err.message);
    memset(&obs, 0, sizeof(obs));
    obs.fingerprint = "k8s/default/shop/Deployment/checkout/OOMKilled";
    obs.source = "kubernetes";
    obs.cluster = "default";
    obs.namespace = "shop";
    obs.kind = "Pod";
    obs.name = "checkout-1";
    obs.owner_kind = "Deployment";
    obs.owner_name = "checkout";
    obs.failure_class = "OOMKilled";
    obs.message = "Container app was OOMKilled";
    obs.facts_json = "{\"container\":\"app\",\"exit_code\":137,\"memory_limit\":\"64Mi\"}";
    obs.observed_ms = 1795559527000;
    if (tr_store_observe(e->store, &obs, 1800000, 1795559527000, &res, &err) != 0)
        fail_msg("observe: %s", err.message);
    e->incident_id = res.incident_id;
    memset(&o, 0, sizeof(o));
    o.scan_interval_ms = 50;
    o.evidence.gather = fake_gather;
    o.evidence.cancel = fake_cancel;
    o.evidence.userdata = &e->provider;
    if (tr_analysis_new_ex(&e->analysis, &e->loop, e->store, NULL, e->cfg, NULL, &o, &err) != 0)
        fail_msg("analysis: %s", err.message);
}

static int stage_state(stage_env *e)
{
    tr_store_incident *inc = NULL;
    tr_error err;
    int s;

    assert_int_equal(tr_store_incident_get(e->store, e->incident_id, &inc, &err), 0);
    s = inc->state;
    tr_store_incident_free(inc);
    return s;
}

static void stage_done(stage_env *e)
{
    char cmd[160];

    tr_analysis_close(e->analysis);
    uv_close((uv_handle_t *)&e->provider.timer, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    tr_store_close(e->store);
    tr_config_free(e->cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
    assert_int_equal(system(cmd), 0);
}

static void test_stage_bundles_gathered_evidence_masked(void **state)
{
    stage_env e;
    tr_store_evidence *ev = NULL;
    uint64_t deadline;
    tr_error err;

    (void)state;
    stage_init(&e, 20);
    deadline = uv_now(&e.loop) + 10000;
    while (stage_state(&e) != TR_INCIDENT_ANALYZED && uv_now(&e.loop) < deadline)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(stage_state(&e), TR_INCIDENT_ANALYZED);
    assert_int_equal(e.provider.gathered, 1);
    assert_string_equal(e.provider.kind_seen, "Deployment");
    assert_int_equal(tr_store_evidence_latest(e.store, e.incident_id, &ev, &err), 0);
    assert_non_null(strstr(ev->bundle_json, "java.lang.OutOfMemoryError: Java heap space"));
    assert_non_null(strstr(ev->bundle_json, "\"last_termination\""));
    assert_null(strstr(ev->bundle_json, "hunter2"));
    tr_store_evidence_free(ev);
    stage_done(&e);
}

static void test_stage_closed_while_gathering_leaves_incident_open(void **state)
{
    stage_env e;
    uint64_t deadline;

    (void)state;
    stage_init(&e, 60000); /* a gathering that is still out when the stage closes */
    deadline = uv_now(&e.loop) + 5000;
    while (e.provider.gathered == 0 && uv_now(&e.loop) < deadline)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(e.provider.gathered, 1);
    assert_int_equal(tr_analysis_in_flight(e.analysis), 1);
    tr_analysis_close(e.analysis);
    e.analysis = NULL;
    assert_int_equal(e.provider.cancelled, 1);
    assert_int_equal(stage_state(&e), TR_INCIDENT_OPEN);
    stage_done(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_repeated_lines_fold_into_one_with_a_count),
        cmocka_unit_test(test_log_keeps_the_last_lines_and_says_it_cut),
        cmocka_unit_test(test_log_byte_cap_keeps_whole_newest_lines),
        cmocka_unit_test(test_object_paths_by_kind),
        cmocka_unit_test(test_fitting_cuts_current_logs_before_anything_else),
        cmocka_unit_test(test_fitting_keeps_termination_and_log_tail_last),
        cmocka_unit_test(test_fitting_between_drops_events_oldest_first),
        cmocka_unit_test(test_gathered_evidence_is_redacted_in_the_bundle),
        cmocka_unit_test(test_gathered_text_that_is_not_an_object_is_kept_as_text),
        cmocka_unit_test(test_gather_without_a_cluster_fails_at_once),
        cmocka_unit_test(test_stage_bundles_gathered_evidence_masked),
        cmocka_unit_test(test_stage_closed_while_gathering_leaves_incident_open),
    };

    TR_RUN_TESTS("kube_evidence", tests);
}
