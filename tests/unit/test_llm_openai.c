#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "fake_llm_server.h"
#include "http_client.h"
#include "llm/openai.h"
#include "llm/reply.h"
#include "store.h"

/*
 * The adapter against the fake server: every test asserts what went over
 * the wire (request line, headers, body) and what the caller got back.
 */

typedef struct env {
    uv_loop_t loop;
    uv_timer_t tick; /* keeps UV_RUN_ONCE from blocking forever */
    fake_server srv;
    tr_http_client *http;
    tr_config *cfg;
    tr_llm *llm;
    tr_store *store;
    char dir[64];
    int64_t clock_ms;
    int done;
    tr_llm_result last;
    char content[4096];
    char message[1024];
    char body[65536];
} env;

static int64_t fake_clock(void *userdata)
{
    return ((env *)userdata)->clock_ms;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void env_config(env *e, const char *extra)
{
    char text[4096];
    tr_error err;

    /* extra may override provider and api_key_env (TOML forbids a key twice). */
    extra = extra ? extra : "";
    snprintf(text, sizeof(text),
             "[llm]\n%sbase_url = \"http://127.0.0.1:%d/v1\"\n"
             "model = \"tiny-random-llama\"\n%s%s",
             strstr(extra, "provider") ? "" : "provider = \"openai\"\n", e->srv.port,
             strstr(extra, "api_key_env") ? "" : "api_key_env = \"TRIAGED_TEST_LLM_KEY\"\n",
             extra);
    tr_config_free(e->cfg);
    e->cfg = NULL;
    if (tr_config_load_string(&e->cfg, text, strlen(text), "test.toml", &err) != 0)
        fail_msg("config: %s", err.message);
}

static void env_open_store(env *e)
{
    char path[128];
    tr_error err;

    snprintf(path, sizeof(path), "%s/triaged.db", e->dir);
    if (tr_store_open(&e->store, path, &err) != 0)
        fail_msg("store: %s", err.message);
}

static int env_llm(env *e, int max_retries, tr_error *err)
{
    tr_llm_options o;

    memset(&o, 0, sizeof(o));
    o.config = &e->cfg->llm;
    o.store = e->store;
    o.now_ms = fake_clock;
    o.clock_userdata = e;
    o.max_retries = max_retries;
    o.backoff_base_ms = 10;
    o.backoff_max_ms = 40;
    o.breaker_threshold = 2;
    o.breaker_cooldown_ms = 60000;
    return tr_llm_new(&e->llm, &e->loop, e->http, &o, err);
}

static void env_init(env *e, const char *extra)
{
    tr_error err;

    memset(e, 0, sizeof(*e));
    e->clock_ms = (int64_t)1795559527000;
    setenv("TRIAGED_TEST_LLM_KEY", "sk-test-0123456789abcdefghij", 1);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    uv_timer_init(&e->loop, &e->tick);
    uv_timer_start(&e->tick, on_tick, 10, 10);
    assert_int_equal(fake_start(&e->srv, &e->loop), 0);
    assert_int_equal(tr_http_client_new(&e->http, &e->loop, &err), 0);
    snprintf(e->dir, sizeof(e->dir), "/tmp/triaged-llm-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    env_open_store(e);
    env_config(e, extra);
}

static void env_done(env *e)
{
    char path[160];

    tr_llm_free(e->llm);
    tr_http_client_free(e->http);
    fake_stop(&e->srv);
    uv_close((uv_handle_t *)&e->tick, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    tr_store_close(e->store);
    tr_config_free(e->cfg);
    snprintf(path, sizeof(path), "rm -rf %s", e->dir);
    assert_int_equal(system(path), 0);
}

static void on_done(const tr_llm_result *r, void *userdata)
{
    env *e = userdata;

    e->done = 1;
    e->last = *r;
    snprintf(e->content, sizeof(e->content), "%s", r->content);
    snprintf(e->message, sizeof(e->message), "%s", r->message);
    snprintf(e->body, sizeof(e->body), "%s", r->request_body);
    e->last.content = e->content;
    e->last.message = e->message;
    e->last.request_body = e->body;
}

static int send_chat(env *e, tr_error *err)
{
    tr_llm_message m[2] = {{"system", "You are triaged."}, {"user", "Diagnose it."}};
    tr_llm_request req;

    memset(&req, 0, sizeof(req));
    req.messages = m;
    req.message_count = 2;
    req.schema_name = "incident_analysis";
    req.schema_json = tr_llm_reply_schema();
    req.on_done = on_done;
    req.userdata = e;
    e->done = 0;
    return tr_llm_chat(e->llm, &req, err);
}

static void run_until_done(env *e, int timeout_ms)
{
    uint64_t deadline = uv_now(&e->loop) + (uint64_t)timeout_ms;

    while (!e->done && uv_now(&e->loop) < deadline)
        uv_run(&e->loop, UV_RUN_ONCE);
    if (!e->done)
        fail_msg("no answer within %d ms", timeout_ms);
}

static void chat_ok(env *e)
{
    tr_error err;

    if (send_chat(e, &err) != 0)
        fail_msg("chat: %s", err.message);
    run_until_done(e, 5000);
}

/* ------------------------------------------------------------ tests */

static void test_llm_success_replays_llama_cpp_json_schema_answer(void **state)
{
    env e;
    const char *req;
    tr_error err;

    env_init(&e, NULL);
    fake_add(&e.srv, fake_fixture("chat_json_schema", NULL));
    assert_int_equal(env_llm(&e, 0, &err), 0);
    chat_ok(&e);
    assert_int_equal(e.last.result, 0);
    assert_int_equal(e.last.attempts, 1);
    assert_non_null(strstr(e.content, "\"color\":\"blue\""));
    assert_int_equal(e.last.tokens_in, 11);
    assert_int_equal(e.last.tokens_out, 58);
    req = fake_request(&e.srv, 0);
    assert_true(strncmp(req, "POST /v1/chat/completions HTTP/1.1\r\n", 36) == 0);
    assert_non_null(strstr(req, "\r\nAuthorization: Bearer sk-test-0123456789abcdefghij\r\n"));
    assert_non_null(strstr(req, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(req, "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
                                "{\"name\":\"incident_analysis\",\"strict\":true"));
    assert_non_null(strstr(req, "\"model\":\"tiny-random-llama\""));
    assert_non_null(strstr(req, "\"max_tokens\":1024"));
    /* What the caller is told was sent is exactly the body on the wire. */
    assert_non_null(strstr(req, e.body));
    assert_true(strlen(e.body) > 100);
    env_done(&e);
}

static void test_llm_429_waits_for_retry_after_then_succeeds(void **state)
{
    env e;
    tr_error err;
    uint64_t start;
    char *limited;

    env_init(&e, NULL);
    limited = fake_http(429, "Retry-After: 1\r\n",
                        "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\","
                        "\"code\":\"rate_limit_exceeded\"}}");
    fake_add(&e.srv, limited);
    fake_add(&e.srv, fake_fixture("chat_json_schema", NULL));
    assert_int_equal(env_llm(&e, 2, &err), 0);
    start = uv_now(&e.loop);
    chat_ok(&e);
    assert_int_equal(e.last.result, 0);
    assert_int_equal(e.last.attempts, 2);
    assert_true(uv_now(&e.loop) - start >= 950);
    assert_int_equal(e.srv.request_count, 2);
    env_done(&e);
}

static void test_llm_500_then_success_is_retried(void **state)
{
    env e;
    tr_error err;

    env_init(&e, NULL);
    fake_add(&e.srv, fake_http(503, NULL, "{\"error\":{\"message\":\"loading model\","
                                          "\"type\":\"unavailable_error\",\"code\":503}}"));
    fake_add(&e.srv, fake_fixture("chat_json_schema", NULL));
    assert_int_equal(env_llm(&e, 2, &err), 0);
    chat_ok(&e);
    assert_int_equal(e.last.result, 0);
    assert_int_equal(e.last.attempts, 2);
    env_done(&e);
}

static void test_llm_llama_malformed_500_is_retried_at_most_once(void **state)
{
    env e;
    tr_error err;

    env_init(&e, NULL);
    fake_add(&e.srv, fake_fixture("err_bad_json", NULL));
    assert_int_equal(env_llm(&e, 5, &err), 0);
    chat_ok(&e);
    assert_int_equal(e.last.result, TR_EHTTP);
    assert_int_equal(e.last.status, 500);
    assert_int_equal(e.last.attempts, 2);
    assert_int_equal(e.srv.request_count, 2);
    assert_non_null(strstr(e.message, "json.exception.parse_error"));
    env_done(&e);
}

static void test_llm_hung_connection_times_out(void **state)
{
    env e;
    tr_error err;

    env_init(&e, NULL);
    fake_add_hang(&e.srv);
    e.cfg->llm.timeout_ms = 300;
    assert_int_equal(env_llm(&e, -1, &err), 0);
    chat_ok(&e);
    assert_int_equal(e.last.result, TR_ETIMEOUT);
    assert_int_equal(e.last.attempts, 1);
    env_done(&e);
}

static void test_llm_reply_cut_mid_way_is_retried(void **state)
{
    env e;
    tr_error err;

    env_init(&e, NULL);
    fake_add_cut(&e.srv, fake_fixture("chat_json_schema", NULL), 300);
    fake_add(&e.srv, fake_fixture("chat_json_schema", NULL));
    assert_int_equal(env_llm(&e, 2, &err), 0);
    chat_ok(&e);
    assert_int_equal(e.last.result, 0);
    assert_int_equal(e.last.attempts, 2);
    assert_non_null(strstr(e.content, "\"color\":\"blue\""));
    env_done(&e);
}

static void test_llm_azure_url_and_api_key_header(void **state)
{
    env e;
    const char *req;
    tr_error err;

    env_init(&e, NULL);
    env_config(&e, "provider = \"azure\"\ndeployment = \"gpt-4o-prod\"\n"
                   "api_version = \"2024-10-21\"\n");
    /* Azure's base_url has no /v1: the deployment path replaces it. */
    fake_add(&e.srv, fake_completion("{}", 5, 1));
    assert_int_equal(env_llm(&e, 0, &err), 0);
    chat_ok(&e);
    assert_int_equal(e.last.result, 0);
    req = fake_request(&e.srv, 0);
    {
        static const char line[] = "POST /v1/openai/deployments/gpt-4o-prod/chat/completions"
                                   "?api-version=2024-10-21 HTTP/1.1\r\n";

        assert_true(strncmp(req, line, strlen(line)) == 0);
    }
    assert_non_null(strstr(req, "\r\napi-key: sk-test-0123456789abcdefghij\r\n"));
    assert_null(strstr(req, "Authorization:"));
    assert_string_equal(tr_llm_provider_name(e.llm), "azure");
    env_done(&e);
}

static void test_llm_missing_key_is_a_clear_error(void **state)
{
    env e;
    tr_error err;

    env_init(&e, NULL);
    unsetenv("TRIAGED_TEST_LLM_KEY");
    assert_int_equal(env_llm(&e, 0, &err), TR_ECONFIG);
    assert_null(e.llm);
    assert_non_null(strstr(err.message, "TRIAGED_TEST_LLM_KEY"));
    assert_non_null(strstr(err.message, "api_key_env = \"\""));
    env_done(&e);
}

static void test_llm_no_key_configured_sends_no_authorization(void **state)
{
    env e;
    tr_error err;

    env_init(&e, "api_key_env = \"\"\n");
    fake_add(&e.srv, fake_fixture("chat_json_schema", NULL));
    assert_int_equal(env_llm(&e, 0, &err), 0);
    chat_ok(&e);
    assert_int_equal(e.last.result, 0);
    assert_null(strstr(fake_request(&e.srv, 0), "Authorization"));
    env_done(&e);
}

static void test_llm_401_is_not_retried(void **state)
{
    env e;
    tr_error err;

    env_init(&e, NULL);
    fake_add(&e.srv, fake_fixture("auth_wrong_key", NULL));
    assert_int_equal(env_llm(&e, 3, &err), 0);
    chat_ok(&e);
    assert_int_equal(e.last.result, TR_EAUTH);
    assert_int_equal(e.last.attempts, 1);
    assert_non_null(strstr(e.message, "Invalid API Key"));
    assert_null(strstr(e.message, "sk-test"));
    env_done(&e);
}

static void test_llm_extra_headers_are_sent(void **state)
{
    env e;
    const char *req;
    tr_error err;

    setenv("TRIAGED_TEST_GATEWAY", "gw-value-1", 1);
    env_init(&e, "[llm.headers]\nX-Org-Team = \"platform\"\n"
                 "[llm.headers_env]\nX-Gateway-Key = \"TRIAGED_TEST_GATEWAY\"\n");
    fake_add(&e.srv, fake_fixture("chat_json_schema", NULL));
    assert_int_equal(env_llm(&e, 0, &err), 0);
    chat_ok(&e);
    req = fake_request(&e.srv, 0);
    assert_non_null(strstr(req, "\r\nX-Org-Team: platform\r\n"));
    assert_non_null(strstr(req, "\r\nX-Gateway-Key: gw-value-1\r\n"));
    env_done(&e);
}

static void test_llm_rejected_response_format_downgrades_to_json_object(void **state)
{
    env e;
    tr_error err;

    env_init(&e, NULL);
    fake_add(&e.srv, fake_http(400, NULL,
                               "{\"error\":{\"code\":400,\"message\":\"Either \\\"json_schema\\\""
                               " or \\\"grammar\\\" can be specified, but not both\","
                               "\"type\":\"invalid_request_error\"}}"));
    fake_add(&e.srv, fake_fixture("chat_json_schema", NULL));
    assert_int_equal(env_llm(&e, 0, &err), 0);
    chat_ok(&e);
    assert_int_equal(e.last.result, 0);
    assert_non_null(strstr(fake_request(&e.srv, 0), "\"type\":\"json_schema\""));
    assert_non_null(strstr(fake_request(&e.srv, 1), "\"response_format\":{\"type\":"
                                                    "\"json_object\"}"));
    env_done(&e);
}

static void test_llm_call_budget_survives_store_reopen(void **state)
{
    env e;
    tr_error err;

    env_init(&e, "max_calls_per_hour = 2\n");
    fake_add(&e.srv, fake_fixture("chat_json_schema", NULL));
    assert_int_equal(env_llm(&e, 0, &err), 0);
    chat_ok(&e);
    chat_ok(&e);
    assert_int_equal(send_chat(&e, &err), TR_ELIMIT);
    assert_non_null(strstr(err.message, "max_calls_per_hour"));
    /* A restart: new store handle, new adapter; the count is still there. */
    tr_llm_free(e.llm);
    e.llm = NULL;
    tr_store_close(e.store);
    env_open_store(&e);
    assert_int_equal(env_llm(&e, 0, &err), 0);
    assert_int_equal(tr_llm_admit(e.llm, &err), TR_ELIMIT);
    assert_int_equal(send_chat(&e, &err), TR_ELIMIT);
    /* The next hour has a fresh budget. */
    e.clock_ms += 3600 * 1000;
    chat_ok(&e);
    assert_int_equal(e.last.result, 0);
    assert_int_equal(e.srv.request_count, 3);
    env_done(&e);
}

static void test_llm_token_budget_survives_store_reopen(void **state)
{
    env e;
    tr_error err;

    /* Each fixture answer uses 11 + 58 = 69 tokens. */
    env_init(&e, "max_tokens_per_day = 100\n");
    fake_add(&e.srv, fake_fixture("chat_json_schema", NULL));
    assert_int_equal(env_llm(&e, 0, &err), 0);
    chat_ok(&e);
    assert_int_equal(tr_llm_admit(e.llm, &err), 0);
    chat_ok(&e);
    assert_int_equal(send_chat(&e, &err), TR_ELIMIT);
    assert_non_null(strstr(err.message, "138 of llm.max_tokens_per_day = 100"));
    tr_llm_free(e.llm);
    e.llm = NULL;
    tr_store_close(e.store);
    env_open_store(&e);
    assert_int_equal(env_llm(&e, 0, &err), 0);
    assert_int_equal(send_chat(&e, &err), TR_ELIMIT);
    e.clock_ms += 24 * 3600 * 1000;
    assert_int_equal(tr_llm_admit(e.llm, &err), 0);
    env_done(&e);
}

static void test_llm_breaker_opens_then_half_open_probe_recovers(void **state)
{
    env e;
    tr_error err;

    env_init(&e, NULL);
    fake_add(&e.srv, fake_fixture("err_wrong_path", NULL)); /* 404: not retried */
    fake_add(&e.srv, fake_fixture("err_wrong_path", NULL));
    fake_add(&e.srv, fake_fixture("chat_json_schema", NULL));
    assert_int_equal(env_llm(&e, 0, &err), 0);
    chat_ok(&e);
    assert_int_equal(e.last.result, TR_EHTTP);
    assert_string_equal(tr_llm_breaker_state(e.llm), "closed");
    chat_ok(&e);
    assert_string_equal(tr_llm_breaker_state(e.llm), "open");
    assert_int_equal(send_chat(&e, &err), TR_EUNAVAILABLE);
    assert_non_null(strstr(err.message, "circuit breaker open"));
    assert_int_equal(e.srv.request_count, 2);
    /* After the cooldown one probe goes through; its success closes the breaker. */
    e.clock_ms += 61000;
    assert_int_equal(send_chat(&e, &err), 0);
    assert_string_equal(tr_llm_breaker_state(e.llm), "half_open");
    run_until_done(&e, 5000);
    assert_int_equal(e.last.result, 0);
    assert_string_equal(tr_llm_breaker_state(e.llm), "closed");
    env_done(&e);
}

static void test_llm_free_cancels_pending_requests(void **state)
{
    env e;
    tr_error err;

    env_init(&e, NULL);
    fake_add_hang(&e.srv);
    assert_int_equal(env_llm(&e, 0, &err), 0);
    assert_int_equal(send_chat(&e, &err), 0);
    for (int i = 0; i < 20; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT);
    tr_llm_free(e.llm);
    e.llm = NULL;
    run_until_done(&e, 2000);
    assert_int_equal(e.last.result, TR_ECANCELLED);
    env_done(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llm_success_replays_llama_cpp_json_schema_answer),
        cmocka_unit_test(test_llm_429_waits_for_retry_after_then_succeeds),
        cmocka_unit_test(test_llm_500_then_success_is_retried),
        cmocka_unit_test(test_llm_llama_malformed_500_is_retried_at_most_once),
        cmocka_unit_test(test_llm_hung_connection_times_out),
        cmocka_unit_test(test_llm_reply_cut_mid_way_is_retried),
        cmocka_unit_test(test_llm_azure_url_and_api_key_header),
        cmocka_unit_test(test_llm_missing_key_is_a_clear_error),
        cmocka_unit_test(test_llm_no_key_configured_sends_no_authorization),
        cmocka_unit_test(test_llm_401_is_not_retried),
        cmocka_unit_test(test_llm_extra_headers_are_sent),
        cmocka_unit_test(test_llm_rejected_response_format_downgrades_to_json_object),
        cmocka_unit_test(test_llm_call_budget_survives_store_reopen),
        cmocka_unit_test(test_llm_token_budget_survives_store_reopen),
        cmocka_unit_test(test_llm_breaker_opens_then_half_open_probe_recovers),
        cmocka_unit_test(test_llm_free_cancels_pending_requests),
    };

    TR_RUN_TESTS("llm_openai", tests);
}
