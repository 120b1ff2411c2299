#include "testutil.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "fake_llm_server.h"
#include "http_client.h"
#include "llm/analysis.h"
#include "store.h"

/*
 * The analysis stage end to end: a real SQLite store, an incident recorded
 * the way the Kubernetes watcher records it (with a secret planted in its
 * facts), the fake LLM server (or none), and the stage's own timer and
 * callbacks on the loop. Tests assert the stored incident state, analysis
 * row, outbox rows and the request body kept for the audit.
 */

#define SECRET_ENV "hunter2-db-pass"
#define SECRET_KEY "sk-live-ABCDEFGHIJKLMNOPQRSTUV"

static const char valid_reply[] =
    "{\"summary\":\"checkout is OOMKilled\",\"root_cause\":\"memory limit 64Mi too low\","
    "\"severity\":\"error\",\"confidence\":0.85,\"evidence\":[\"exit_code: 137\"],"
    "\"remediation\":[\"raise the memory limit to 256Mi\"],\"patch\":\"\"}";

typedef struct env {
    uv_loop_t loop;
    uv_timer_t tick;
    fake_server srv;
    tr_http_client *http;
    tr_config *cfg;
    tr_store *store;
    tr_analysis *analysis;
    char dir[64];
    int64_t incident_id;
} env;

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void env_init(env *e, const char *llm_toml)
{
    char text[2048], path[128];
    tr_error err;

    memset(e, 0, sizeof(*e));
    setenv("TRIAGED_TEST_LLM_KEY", "sk-test-0123456789abcdefghij", 1);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    uv_timer_init(&e->loop, &e->tick);
    uv_timer_start(&e->tick, on_tick, 10, 10);
    assert_int_equal(fake_start(&e->srv, &e->loop), 0);
    assert_int_equal(tr_http_client_new(&e->http, &e->loop, &err), 0);
    snprintf(text, sizeof(text),
             "[llm]\nbase_url = \"http://127.0.0.1:%d/v1\"\nmodel = \"tiny-random-llama\"\n"
             "api_key_env = \"TRIAGED_TEST_LLM_KEY\"\nprompts_dir = \"./prompts\"\n%s",
             e->srv.port, llm_toml);
    if (tr_config_load_string(&e->cfg, text, strlen(text), "test.toml", &err) != 0)
        fail_msg("config: %s", err.message);
    snprintf(e->dir, sizeof(e->dir), "/tmp/triaged-analysis-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(path, sizeof(path), "%s/triaged.db", e->dir);
    if (tr_store_open(&e->store, path, &err) != 0)
        fail_msg("store: %s", err.message);
    assert_int_equal(tr_store_outbox_register_sink(e->store, "log", 1, &err), 0);
}

static void env_observe(env *e)
{
    tr_store_observation obs;
    tr_store_obs_result res;
    tr_error err;

    memset(&obs, 0, sizeof(obs));
    obs.fingerprint = "k8s/default/shop/Deployment/checkout/OOMKilled";
    obs.source = "kubernetes";
    obs.cluster = "default";
    obs.namespace = "shop";
    obs.kind = "Pod";
    obs.name = "checkout-7d9f-abcde";
    obs.owner_kind = "Deployment";
    obs.owner_name = "checkout";
    obs.failure_class = "OOMKilled";
    obs.message = "Container app was OOMKilled; DB_PASSWORD=" SECRET_ENV;
    obs.facts_json = "{\"container\":\"app\",\"restart_count\":5,\"exit_code\":137,"
                     "\"memory_limit\":\"64Mi\",\"memory_request\":\"32Mi\","
                     "\"image\":\"shop/checkout:1.4.2\",\"namespace\":\"shop\","
                     "\"env\":[{\"name\":\"STRIPE_API_KEY\",\"value\":\"" SECRET_KEY "\"}]}";
    obs.observed_ms = 1795559527000;
    if (tr_store_observe(e->store, &obs, 1800000, 1795559527000, &res, &err) != 0)
        fail_msg("observe: %s", err.message);
    assert_int_equal(res.outcome, TR_OBS_CREATED);
    e->incident_id = res.incident_id;
}

static int incident_state(env *e)
{
    tr_store_incident *inc = NULL;
    tr_error err;
    int state;

    assert_int_equal(tr_store_incident_get(e->store, e->incident_id, &inc, &err), 0);
    state = inc->state;
    tr_store_incident_free(inc);
    return state;
}

static void start_stage(env *e)
{
    tr_analysis_options o;
    tr_error err;

    memset(&o, 0, sizeof(o));
    o.scan_interval_ms = 50;
    o.llm.max_retries = -1;
    o.llm.backoff_base_ms = 10;
    if (tr_analysis_new_ex(&e->analysis, &e->loop, e->store, e->http, e->cfg, NULL, &o, &err) !=
        0)
        fail_msg("analysis: %s", err.message);
}

static void stop_stage(env *e)
{
    tr_analysis_close(e->analysis);
    e->analysis = NULL;
    for (int i = 0; i < 10; i++)
        uv_run(&e->loop, UV_RUN_NOWAIT);
}

static void run_until_analyzed(env *e)
{
    uint64_t deadline = uv_now(&e->loop) + 10000;

    while (incident_state(e) != TR_INCIDENT_ANALYZED && uv_now(&e->loop) < deadline)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_int_equal(incident_state(e), TR_INCIDENT_ANALYZED);
}

static size_t analyzed_events(env *e)
{
    tr_store_delivery_list *due = NULL;
    tr_error err;
    size_t n = 0;

    assert_int_equal(tr_store_outbox_due(e->store, "log", INT64_MAX / 2, 0, 100, &due, &err), 0);
    for (size_t i = 0; i < due->count; i++)
        if (strcmp(due->items[i].event, "incident.analyzed") == 0)
            n++;
    tr_store_delivery_list_free(due);
    return n;
}

static tr_store_analysis *latest(env *e)
{
    tr_store_analysis *a = NULL;
    tr_error err;

    assert_int_equal(tr_store_analysis_latest(e->store, e->incident_id, &a, &err), 0);
    return a;
}

static void env_done(env *e)
{
    char cmd[160];

    tr_analysis_close(e->analysis);
    tr_http_client_free(e->http);
    fake_stop(&e->srv);
    uv_close((uv_handle_t *)&e->tick, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    tr_store_close(e->store);
    tr_config_free(e->cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
    assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------------ tests */

static void test_analysis_provider_none_uses_rules_and_announces_once(void **state)
{
    env e;
    tr_store_analysis *a;
    tr_store_evidence *ev = NULL;
    tr_error err;

    env_init(&e, "provider = \"none\"\n");
    env_observe(&e);
    start_stage(&e);
    tr_analysis_notify(e.analysis, e.incident_id);
    run_until_analyzed(&e);
    a = latest(&e);
    assert_string_equal(a->provider, "rules");
    assert_non_null(strstr(a->summary, "container app of shop/checkout was OOMKilled (exit 137) "
                                       "5 times; its memory limit is 64Mi"));
    assert_non_null(strstr(a->fallback_reason, "provider"));
    assert_null(a->patch);
    tr_store_analysis_free(a);
    /* The stored evidence is redacted. */
    assert_int_equal(tr_store_evidence_latest(e.store, e.incident_id, &ev, &err), 0);
    assert_null(strstr(ev->bundle_json, SECRET_ENV));
    assert_null(strstr(ev->bundle_json, SECRET_KEY));
    assert_non_null(strstr(ev->bundle_json, "<redacted:"));
    tr_store_evidence_free(ev);
    assert_int_equal(analyzed_events(&e), 1);
    /* Notifying again and scanning again change nothing. */
    tr_analysis_notify(e.analysis, e.incident_id);
    for (int i = 0; i < 20; i++)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(analyzed_events(&e), 1);
    env_done(&e);
}

static void test_analysis_llm_answer_is_stored_with_redacted_request(void **state)
{
    env e;
    tr_store_analysis *a;
    char *body = NULL;
    tr_error err;

    env_init(&e, "provider = \"openai\"\n");
    fake_add(&e.srv, fake_completion(valid_reply, 900, 120));
    env_observe(&e);
    start_stage(&e);
    run_until_analyzed(&e);
    a = latest(&e);
    assert_string_equal(a->provider, "openai");
    assert_string_equal(a->model, "tiny-random-llama");
    assert_string_equal(a->summary, "checkout is OOMKilled");
    assert_null(a->fallback_reason);
    assert_int_equal(a->tokens_in, 900);
    assert_int_equal(a->tokens_out, 120);
    assert_int_equal(strlen(a->prompt_hash), 64);
    assert_int_equal(tr_analysis_request_body(e.store, a->id, &body, &err), 0);
    /* Exactly what the server received, and no secret in it. */
    assert_non_null(strstr(fake_request(&e.srv, 0), body));
    assert_null(strstr(fake_request(&e.srv, 0), SECRET_ENV));
    assert_null(strstr(fake_request(&e.srv, 0), SECRET_KEY));
    assert_non_null(strstr(body, "<redacted:"));
    assert_non_null(strstr(body, "BEGIN DATA"));
    assert_non_null(strstr(body, "OOMKilled"));
    tr_free(body);
    tr_store_analysis_free(a);
    assert_int_equal(analyzed_events(&e), 1);
    env_done(&e);
}

static void test_analysis_invalid_reply_is_asked_again_once(void **state)
{
    env e;
    tr_store_analysis *a;

    env_init(&e, "provider = \"openai\"\n");
    fake_add(&e.srv, fake_completion("{\"summary\":\"x\",\"root_cause\":\"y\",\"severity\":"
                                     "\"bad\",\"confidence\":2}", 10, 10));
    fake_add(&e.srv, fake_completion(valid_reply, 10, 10));
    env_observe(&e);
    start_stage(&e);
    run_until_analyzed(&e);
    a = latest(&e);
    assert_string_equal(a->provider, "openai");
    assert_int_equal(a->tokens_in, 20);
    assert_int_equal(e.srv.request_count, 2);
    assert_non_null(strstr(fake_request(&e.srv, 1), "Your reply was not valid: field "
                                                    "\\\"severity\\\""));
    tr_store_analysis_free(a);
    env_done(&e);
}

static void test_analysis_invalid_reply_twice_falls_back_to_rules(void **state)
{
    env e;
    tr_store_analysis *a;

    env_init(&e, "provider = \"openai\"\n");
    fake_add(&e.srv, fake_completion("I think the pod ran out of memory.", 10, 10));
    env_observe(&e);
    start_stage(&e);
    run_until_analyzed(&e);
    a = latest(&e);
    assert_string_equal(a->provider, "rules");
    assert_non_null(strstr(a->fallback_reason, "invalid twice"));
    assert_non_null(strstr(a->summary, "OOMKilled (exit 137)"));
    assert_int_equal(e.srv.request_count, 2);
    tr_store_analysis_free(a);
    assert_int_equal(analyzed_events(&e), 1);
    env_done(&e);
}

static void test_analysis_server_down_falls_back_to_rules_with_reason(void **state)
{
    env e;
    tr_store_analysis *a;
    char text[256];
    tr_error err;

    env_init(&e, "provider = \"openai\"\n");
    /* Point at a port nobody listens on. */
    tr_config_free(e.cfg);
    snprintf(text, sizeof(text),
             "[llm]\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\n"
             "api_key_env = \"\"\n");
    assert_int_equal(tr_config_load_string(&e.cfg, text, strlen(text), "t.toml", &err), 0);
    env_observe(&e);
    start_stage(&e);
    run_until_analyzed(&e);
    a = latest(&e);
    assert_string_equal(a->provider, "rules");
    assert_non_null(strstr(a->fallback_reason, "llm request failed"));
    assert_non_null(strstr(a->fallback_reason, "127.0.0.1:1"));
    tr_store_analysis_free(a);
    env_done(&e);
}

static void test_analysis_restart_finishes_open_incidents_and_skips_analyzed(void **state)
{
    env e;
    tr_store_analysis *a;
    int64_t first_id;

    env_init(&e, "provider = \"none\"\n");
    /* The incident was recorded while the stage was not running. */
    env_observe(&e);
    assert_int_equal(incident_state(&e), TR_INCIDENT_OPEN);
    start_stage(&e);
    run_until_analyzed(&e);
    a = latest(&e);
    first_id = a->id;
    tr_store_analysis_free(a);
    stop_stage(&e);
    /* A second start scans again: nothing is redone. */
    start_stage(&e);
    for (int i = 0; i < 30; i++)
        uv_run(&e.loop, UV_RUN_ONCE);
    a = latest(&e);
    assert_int_equal(a->id, first_id);
    tr_store_analysis_free(a);
    assert_int_equal(analyzed_events(&e), 1);
    env_done(&e);
}

static void test_analysis_missing_prompt_is_a_startup_error(void **state)
{
    env e;
    tr_analysis *a = NULL;
    tr_error err;

    env_init(&e, "provider = \"none\"\n");
    tr_free(e.cfg->llm.prompts_dir);
    e.cfg->llm.prompts_dir = tr_strdup("/nonexistent-triaged-prompts");
    assert_int_equal(tr_analysis_new(&a, &e.loop, e.store, e.http, e.cfg, NULL, &err),
                     TR_ECONFIG);
    assert_null(a);
    assert_non_null(strstr(err.message, "/nonexistent-triaged-prompts/system.md"));
    env_done(&e);
}

static void test_analysis_run_once_prints_rules_without_daemon(void **state)
{
    tr_store_incident inc;
    tr_analysis_outcome *o = NULL;
    tr_config *cfg = NULL;
    tr_buf out = TR_BUF_INIT(0);
    tr_error err;
    static const char toml[] = "[llm]\nprovider = \"none\"\n";

    assert_int_equal(tr_config_load_string(&cfg, toml, strlen(toml), "t.toml", &err), 0);
    memset(&inc, 0, sizeof(inc));
    inc.source = "kubernetes";
    inc.namespace = "shop";
    inc.kind = "Deployment";
    inc.name = "checkout";
    inc.failure_class = "CreateContainerConfigError";
    inc.facts_json = "{\"container\":\"app\",\"missing_kind\":\"Secret\","
                     "\"missing_name\":\"db-creds\",\"missing_key\":\"DB_PASSWORD\"}";
    assert_int_equal(tr_analysis_run_once(cfg, &inc, &o, &err), 0);
    assert_int_equal(tr_analysis_outcome_print(o, &out), 0);
    assert_non_null(strstr(tr_buf_cstr(&out), "key DB_PASSWORD of Secret db-creds is missing"));
    assert_non_null(strstr(tr_buf_cstr(&out), "analysed by: rules"));
    tr_buf_dispose(&out);
    tr_analysis_outcome_free(o);
    tr_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_analysis_provider_none_uses_rules_and_announces_once),
        cmocka_unit_test(test_analysis_llm_answer_is_stored_with_redacted_request),
        cmocka_unit_test(test_analysis_invalid_reply_is_asked_again_once),
        cmocka_unit_test(test_analysis_invalid_reply_twice_falls_back_to_rules),
        cmocka_unit_test(test_analysis_server_down_falls_back_to_rules_with_reason),
        cmocka_unit_test(test_analysis_restart_finishes_open_incidents_and_skips_analyzed),
        cmocka_unit_test(test_analysis_missing_prompt_is_a_startup_error),
        cmocka_unit_test(test_analysis_run_once_prints_rules_without_daemon),
    };

    TR_RUN_TESTS("analysis", tests);
}
