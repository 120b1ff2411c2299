#include "testutil.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <unistd.h>
#include <uv.h>

#include "api.h"
#include "buf.h"
#include "config.h"
#include "fake_llm_server.h"
#include "http_client.h"
#include "http_server.h"
#include "content.h"
#include "llm/chat.h"
#include "slack_blocks.h"
#include "store.h"

/*
 * Follow-up turns end to end: a real SQLite store, the real HTTP server and
 * client on loopback, the fake OpenAI-compatible server (which records every
 * request byte for byte). Tests assert what an operator sees (status, answer,
 * turn, patch), what the store keeps, and what reached the LLM.
 */

#define SECRET "ghp_0123456789abcdefghijABCDEFGHIJ012345"
#define TOKEN "api-token-0123456789abcdef"
#define PATCH "--- a/app.yaml\n+++ b/app.yaml\n@@ -1,2 +1,2 @@\n kind: Deployment\n-memory: 64Mi\n+memory: 256Mi\n"

typedef struct fixture {
    uv_loop_t loop;
    fake_server llm;
    char dir[64], db[128];
    tr_config *cfg;
    tr_store *store;
    tr_http_server *srv;
    tr_http_client *http;
    tr_chat *chat;
    tr_api api;
    int port, closed, done;
    long status;
    char body[65536];
    int64_t incident_id;
} fixture;

static char *reply_json(const char *summary, const char *patch)
{
    tr_buf b = TR_BUF_INIT(0);

    tr_buf_printf(&b, "{\"summary\":\"%s\",\"root_cause\":\"the memory limit is too low\","
                      "\"severity\":\"error\",\"confidence\":0.9,\"evidence\":[\"exit 137\"],"
                      "\"remediation\":[\"raise the limit\"],\"patch\":\"", summary);
    tr_buf_put_json_escaped(&b, patch, strlen(patch));
    tr_buf_puts(&b, "\"}");
    return tr_buf_detach(&b);
}

static void add_answer(fixture *fx, const char *summary, const char *patch)
{
    char *content = reply_json(summary, patch);

    fake_add(&fx->llm, fake_completion(content, 50, 10));
    tr_free(content);
}

static void setup_with(fixture *fx, const char *llm_toml, const char *token)
{
    char text[2048];
    tr_chat_options o;
    tr_error err;

    memset(fx, 0, sizeof(*fx));
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(fake_start(&fx->llm, &fx->loop), 0);
    snprintf(text, sizeof(text),
             "[llm]\nbase_url = \"http://127.0.0.1:%d/v1\"\nmodel = \"tiny\"\n"
             "api_key_env = \"\"\nprompts_dir = \"./prompts\"\n%s", fx->llm.port, llm_toml);
    if (tr_config_load_string(&fx->cfg, text, strlen(text), "test.toml", &err) != 0)
        fail_msg("config: %s", err.message);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_chat.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->db, sizeof(fx->db), "%s/triaged.db", fx->dir);
    assert_int_equal(tr_store_open(&fx->store, fx->db, &err), 0);
    assert_int_equal(tr_http_server_new(&fx->srv, &fx->loop, NULL, &err), 0);
    assert_int_equal(tr_http_server_listen(fx->srv, "127.0.0.1:0", &err), 0);
    fx->port = tr_http_server_port(fx->srv);
    assert_int_equal(tr_http_client_new(&fx->http, &fx->loop, &err), 0);
    memset(&o, 0, sizeof(o));
    o.llm_options.max_retries = -1;
    if (tr_chat_new(&fx->chat, &fx->loop, fx->store, fx->http, fx->cfg, NULL, &o, &err) != 0)
        fail_msg("chat: %s", err.message);
    assert_int_equal(tr_chat_register(fx->srv, fx->chat, token, &err), 0);
    fx->api.store = fx->store;
    fx->api.api_token = token;
    assert_int_equal(tr_api_register(&fx->api, fx->srv, &err), 0);
}

static void setup(fixture *fx)
{
    setup_with(fx, "provider = \"openai\"\n", NULL);
}

static void on_server_closed(tr_http_server *srv, void *userdata)
{
    (void)srv;
    ((fixture *)userdata)->closed = 1;
}

static void teardown(fixture *fx)
{
    char cmd[160];

    tr_chat_close(fx->chat);
    tr_http_client_free(fx->http);
    tr_http_server_close(fx->srv, on_server_closed, fx);
    fake_stop(&fx->llm);
    while (!fx->closed)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    tr_http_server_free(fx->srv);
    tr_store_close(fx->store);
    tr_config_free(fx->cfg);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
    assert_int_equal(system(cmd), 0);
}

static void on_done(const tr_http_response *resp, void *userdata)
{
    fixture *fx = userdata;

    assert_int_equal(resp->result, TR_OK);
    fx->status = resp->status;
    snprintf(fx->body, sizeof(fx->body), "%.*s", (int)resp->body_len, resp->body);
    fx->done = 1;
}

static long call(fixture *fx, tr_http_method method, const char *path, const char *body,
                 const char *const *headers)
{
    tr_http_request req;
    char url[256];
    tr_error err;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", fx->port, path);
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.url = url;
    req.headers = headers;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    req.timeout_ms = 10000;
    req.on_done = on_done;
    req.userdata = fx;
    fx->done = 0;
    assert_int_equal(tr_http_client_send(fx->http, &req, NULL, &err), 0);
    while (!fx->done)
        uv_run(&fx->loop, UV_RUN_ONCE);
    return fx->status;
}

static long ask(fixture *fx, int64_t id, const char *message)
{
    char path[64];
    cJSON *root = cJSON_CreateObject();
    char *body;
    long status;

    cJSON_AddStringToObject(root, "message", message);
    body = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    snprintf(path, sizeof(path), "/v1/incidents/%" PRId64 "/chat", id);
    status = call(fx, TR_HTTP_POST, path, body, NULL);
    cJSON_free(body);
    return status;
}

/* An OOMKilled incident with its evidence and a first (rule-based) analysis. */
static void add_incident(fixture *fx)
{
    tr_store_observation obs;
    tr_store_obs_result res;
    tr_store_evidence ev;
    tr_store_analysis a;
    tr_error err;

    memset(&obs, 0, sizeof(obs));
    obs.fingerprint = "k8s/default/shop/Deployment/checkout/OOMKilled";
    obs.source = "kubernetes";
    obs.namespace = "shop";
    obs.kind = "Pod";
    obs.name = "checkout-1";
    obs.owner_kind = "Deployment";
    obs.owner_name = "checkout";
    obs.failure_class = "OOMKilled";
    obs.observed_ms = 1000;
    assert_int_equal(tr_store_observe(fx->store, &obs, 1800000, 1000, &res, &err), 0);
    fx->incident_id = res.incident_id;
    memset(&ev, 0, sizeof(ev));
    ev.incident_id = fx->incident_id;
    ev.bundle_json = "{\"logs\":\"allocating 300Mi EVIDENCE-MARK\"}";
    assert_int_equal(tr_store_evidence_put(fx->store, &ev, NULL, 1100, NULL, &err), 0);
    memset(&a, 0, sizeof(a));
    a.incident_id = fx->incident_id;
    a.summary = "checkout is OOMKilled";
    a.root_cause = "ANALYSIS-MARK limit 64Mi";
    a.provider = "rules";
    assert_int_equal(tr_store_analysis_put(fx->store, &a, NULL, 1200, NULL, &err), 0);
}

static cJSON *body_json(fixture *fx)
{
    cJSON *root = cJSON_Parse(fx->body);

    assert_non_null(root);
    return root;
}

/* ------------------------------------------------------------ store */

static void put_turn(fixture *fx, const char *question, const char *answer, int64_t *turn)
{
    tr_store_chat_turn t;
    tr_error err;

    memset(&t, 0, sizeof(t));
    t.incident_id = fx->incident_id;
    t.actor = "api";
    t.question = question;
    t.answer = answer;
    assert_int_equal(tr_store_chat_put(fx->store, &t, NULL, NULL, 5000, turn, NULL, &err), 0);
}

static void test_store_numbers_turns_and_returns_the_last_ones_oldest_first(void **state)
{
    fixture fx;
    tr_store_chat_list *list = NULL;
    tr_store_chat_turn t;
    tr_error err;
    int64_t turn = 0;
    char q[32];

    (void)state;
    setup(&fx);
    add_incident(&fx);
    assert_int_equal(tr_store_chat_recent(fx.store, fx.incident_id, 5, &list, &err), 0);
    assert_int_equal(list->count, 0);
    tr_store_chat_list_free(list);
    for (int i = 1; i <= 3; i++) {
        snprintf(q, sizeof(q), "question %d", i);
        put_turn(&fx, q, "answer", &turn);
        assert_int_equal(turn, i);
    }
    assert_int_equal(tr_store_chat_recent(fx.store, fx.incident_id, 2, &list, &err), 0);
    assert_int_equal(list->count, 2);
    assert_int_equal(list->items[0].turn, 2);
    assert_string_equal(list->items[0].question, "question 2");
    assert_int_equal(list->items[1].turn, 3);
    tr_store_chat_list_free(list);
    memset(&t, 0, sizeof(t));
    t.incident_id = 424242;
    t.actor = "api";
    t.question = "q";
    t.answer = "a";
    assert_int_equal(tr_store_chat_put(fx.store, &t, NULL, NULL, 5000, NULL, NULL, &err),
                     TR_ENOTFOUND);
    teardown(&fx);
}

static void test_store_turn_with_a_patch_becomes_the_latest_analysis_and_can_announce(void **s)
{
    fixture fx;
    tr_store_chat_turn t;
    tr_store_analysis revised, *latest = NULL;
    tr_store_transition announce;
    tr_store_delivery_list *due = NULL;
    tr_error err;
    int64_t turn = 0, analysis_id = 0;

    (void)s;
    setup(&fx);
    assert_int_equal(tr_store_outbox_register_sink(fx.store, "log", 1, &err), 0);
    add_incident(&fx);
    memset(&t, 0, sizeof(t));
    t.incident_id = fx.incident_id;
    t.actor = "slack:U1";
    t.question = "explain";
    t.answer = "deeper";
    t.patch = PATCH;
    memset(&revised, 0, sizeof(revised));
    revised.incident_id = fx.incident_id;
    revised.summary = "deeper";
    revised.root_cause = "limit";
    revised.patch = PATCH;
    revised.provider = "openai";
    memset(&announce, 0, sizeof(announce));
    announce.event = "incident.explained";
    announce.payload_json = "{\"answer\":\"deeper\"}";
    assert_int_equal(tr_store_chat_put(fx.store, &t, &revised, &announce, 6000, &turn,
                                       &analysis_id, &err), 0);
    assert_int_equal(turn, 1);
    assert_int_equal(tr_store_analysis_latest(fx.store, fx.incident_id, &latest, &err), 0);
    assert_int_equal(latest->id, analysis_id);
    assert_string_equal(latest->patch, PATCH);
    tr_store_analysis_free(latest);
    assert_int_equal(tr_store_outbox_due(fx.store, "log", INT64_MAX / 2, 0, 10, &due, &err), 0);
    assert_int_equal(due->count, 2); /* incident.opened, then the explanation */
    assert_string_equal(due->items[1].event, "incident.explained");
    assert_string_equal(due->items[1].payload_json, "{\"answer\":\"deeper\"}");
    tr_store_delivery_list_free(due);
    teardown(&fx);
}

static void test_store_keeps_a_bounded_number_of_turns(void **state)
{
    fixture fx;
    tr_store_chat_list *list = NULL;
    tr_error err;
    int64_t turn = 0;

    (void)state;
    setup(&fx);
    add_incident(&fx);
    for (int i = 0; i < TR_STORE_CHAT_TURNS_KEPT + 3; i++)
        put_turn(&fx, "q", "a", &turn);
    assert_int_equal(turn, TR_STORE_CHAT_TURNS_KEPT + 3);
    assert_int_equal(tr_store_chat_recent(fx.store, fx.incident_id, 100000, &list, &err), 0);
    assert_int_equal(list->count, TR_STORE_CHAT_TURNS_KEPT);
    assert_int_equal(list->items[0].turn, 4); /* the three oldest went */
    tr_store_chat_list_free(list);
    teardown(&fx);
}

/* ------------------------------------------------------------ prompt */

static void test_prompt_keeps_the_last_turns_caps_them_and_redacts(void **state)
{
    tr_prompts *prompts = NULL;
    tr_store_incident inc;
    tr_store_chat_turn turns[10];
    tr_store_chat_list history = { turns, 10 };
    tr_chat_limits limits;
    tr_chat_prompt p;
    tr_buf evidence = TR_BUF_INIT(0);
    tr_error err;
    char questions[10][32];

    (void)state;
    assert_int_equal(tr_prompts_load(&prompts, "./prompts", &err), 0);
    memset(&inc, 0, sizeof(inc));
    inc.id = 7;
    inc.namespace = "shop";
    inc.kind = "Deployment";
    inc.name = "checkout";
    inc.failure_class = "OOMKilled";
    memset(turns, 0, sizeof(turns));
    for (int i = 0; i < 10; i++) {
        snprintf(questions[i], sizeof(questions[i]), "question number %d", i + 1);
        turns[i].turn = i + 1;
        turns[i].question = questions[i];
        turns[i].answer = "short answer";
    }
    turns[9].answer = "a long answer that quotes " SECRET " and goes on and on and on";
    for (int i = 0; i < 200; i++)
        tr_buf_puts(&evidence, "log line ");
    memset(&limits, 0, sizeof(limits));
    limits.history_turns = 3;
    limits.max_turn_bytes = 40;
    limits.max_evidence_bytes = 100;
    assert_int_equal(tr_chat_prompt_build(&p, prompts, &inc, NULL, tr_buf_cstr(&evidence),
                                          &history, "what now?", &limits), 0);
    assert_int_equal(p.count, 1 + 2 * 3 + 1);
    assert_string_equal(p.messages[0].role, "system");
    assert_string_equal(p.messages[1].role, "user");
    assert_string_equal(p.messages[1].content, "question number 8");
    assert_string_equal(p.messages[2].role, "assistant");
    assert_string_equal(p.messages[5].content, "question number 10");
    /* Cut at 40 bytes and marked; the part of the secret that was kept is masked. */
    assert_non_null(strstr(p.messages[6].content, "[...]"));
    assert_null(strstr(p.messages[6].content, "ghp_0123456789"));
    assert_string_equal(p.messages[7].role, "user");
    assert_non_null(strstr(p.messages[7].content, "what now?"));
    assert_non_null(strstr(p.messages[7].content, "(no analysis yet)"));
    /* 100 bytes of evidence: eleven "log line " and one "l", then the mark. */
    assert_non_null(strstr(p.messages[7].content, "log line log line l [...]"));
    assert_null(strstr(p.messages[7].content, "log line log line log line log line log line "
                                              "log line log line log line log line log line "
                                              "log line log line "));
    tr_chat_prompt_dispose(&p);
    tr_buf_dispose(&evidence);
    tr_prompts_free(prompts);
}

/* ------------------------------------------------------------ API */

static void test_api_chat_answers_and_carries_the_conversation_without_the_secret(void **s)
{
    fixture fx;
    tr_store_analysis *latest = NULL;
    tr_error err;
    cJSON *root;

    (void)s;
    setup(&fx);
    add_incident(&fx);
    add_answer(&fx, "FIRST-ANSWER the limit is 64Mi", "");
    add_answer(&fx, "SECOND-ANSWER raise it", PATCH);
    assert_int_equal(ask(&fx, fx.incident_id, "why? my token is " SECRET), 200);
    root = body_json(&fx);
    assert_int_equal(cJSON_GetObjectItem(root, "turn")->valueint, 1);
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(root, "answer")),
                           "FIRST-ANSWER"));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(root, "patch")));
    cJSON_Delete(root);
    /* The first request carried the evidence and the analysis, never the secret. */
    assert_non_null(strstr(fake_request(&fx.llm, 0), "EVIDENCE-MARK"));
    assert_non_null(strstr(fake_request(&fx.llm, 0), "ANALYSIS-MARK"));
    assert_null(strstr(fake_request(&fx.llm, 0), SECRET));
    assert_int_equal(ask(&fx, fx.incident_id, "and the fix?"), 200);
    root = body_json(&fx);
    assert_int_equal(cJSON_GetObjectItem(root, "turn")->valueint, 2);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(root, "patch")), PATCH);
    cJSON_Delete(root);
    /* The second request carried the first turn, still without the secret. */
    assert_non_null(strstr(fake_request(&fx.llm, 1), "FIRST-ANSWER"));
    assert_non_null(strstr(fake_request(&fx.llm, 1), "why? my token is <redacted:"));
    assert_null(strstr(fake_request(&fx.llm, 1), SECRET));
    assert_int_equal(tr_store_analysis_latest(fx.store, fx.incident_id, &latest, &err), 0);
    assert_string_equal(latest->patch, PATCH);
    tr_store_analysis_free(latest);
    teardown(&fx);
}

static void test_api_chat_refuses_unknown_incident_and_empty_message(void **state)
{
    fixture fx;

    (void)state;
    setup(&fx);
    add_incident(&fx);
    assert_int_equal(ask(&fx, 999, "hello"), 404);
    assert_int_equal(ask(&fx, fx.incident_id, "   \n"), 400);
    assert_non_null(strstr(fx.body, "empty"));
    assert_int_equal(call(&fx, TR_HTTP_POST, "/v1/incidents/1/chat", "{\"msg\":1}", NULL), 400);
    assert_int_equal(fx.llm.request_count, 0);
    teardown(&fx);
}

static void test_api_chat_without_llm_is_503_naming_the_provider(void **state)
{
    fixture fx;

    (void)state;
    setup_with(&fx, "provider = \"none\"\n", NULL);
    add_incident(&fx);
    assert_int_equal(ask(&fx, fx.incident_id, "why?"), 503);
    assert_non_null(strstr(fx.body, "provider"));
    assert_int_equal(fx.llm.request_count, 0);
    teardown(&fx);
}

static void test_api_chat_llm_error_is_502_and_nothing_is_stored(void **state)
{
    fixture fx;
    tr_store_chat_list *list = NULL;
    tr_error err;

    (void)state;
    setup(&fx);
    add_incident(&fx);
    fake_add(&fx.llm, fake_http(500, NULL, "{\"error\":{\"message\":\"boom\"}}"));
    assert_int_equal(ask(&fx, fx.incident_id, "why?"), 502);
    assert_int_equal(tr_store_chat_recent(fx.store, fx.incident_id, 10, &list, &err), 0);
    assert_int_equal(list->count, 0);
    tr_store_chat_list_free(list);
    teardown(&fx);
}

static void test_api_dead_letters_are_listed_retried_and_need_the_token(void **state)
{
    static const char *const auth[] = { "Authorization: Bearer " TOKEN, NULL };
    fixture fx;
    tr_store_delivery_list *due = NULL;
    tr_error err;
    char path[64];
    int dead = 0;
    cJSON *root, *items;

    (void)state;
    setup_with(&fx, "provider = \"none\"\n", TOKEN);
    assert_int_equal(tr_store_outbox_register_sink(fx.store, "hook", 1, &err), 0);
    add_incident(&fx);
    assert_int_equal(tr_store_outbox_due(fx.store, "hook", 2000, 0, 10, &due, &err), 0);
    assert_int_equal(due->count, 1);
    assert_int_equal(tr_store_outbox_failed(fx.store, due->items[0].id, "HTTP 500", 0, 1, 2000,
                                            &dead, &err), 0);
    assert_int_equal(dead, 1);
    assert_int_equal(call(&fx, TR_HTTP_GET, "/v1/deliveries/dead", NULL, NULL), 401);
    assert_int_equal(call(&fx, TR_HTTP_GET, "/v1/deliveries/dead?sink=hook", NULL, auth), 200);
    root = body_json(&fx);
    items = cJSON_GetObjectItem(root, "deliveries");
    assert_int_equal(cJSON_GetArraySize(items), 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0),
                                                                 "last_error")), "HTTP 500");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0),
                                                                 "delivery_id")),
                        due->items[0].delivery_id);
    cJSON_Delete(root);
    snprintf(path, sizeof(path), "/v1/deliveries/%" PRId64 "/retry", due->items[0].id);
    assert_int_equal(call(&fx, TR_HTTP_POST, path, NULL, auth), 200);
    assert_int_equal(call(&fx, TR_HTTP_POST, path, NULL, auth), 404);
    assert_int_equal(call(&fx, TR_HTTP_GET, "/v1/deliveries/dead", NULL, auth), 200);
    assert_non_null(strstr(fx.body, "\"deliveries\":[]"));
    tr_store_delivery_list_free(due);
    /* It is due again for the sink, with the same delivery id. */
    assert_int_equal(tr_store_outbox_due(fx.store, "hook", INT64_MAX / 2, 0, 10, &due, &err), 0);
    assert_int_equal(due->count, 1);
    assert_int_equal(due->items[0].attempts, 0);
    tr_store_delivery_list_free(due);
    teardown(&fx);
}


/* ------------------------------------------------------------ Explain more */

static void test_explain_more_posts_the_deeper_answer_through_the_outbox_with_a_link(void **s)
{
    fixture fx;
    tr_store_delivery_list *due = NULL;
    tr_notify_message *msg = NULL;
    tr_error err;
    cJSON *blocks = NULL;
    char *text;
    uint64_t deadline;
    int found = -1;

    (void)s;
    setup(&fx);
    assert_int_equal(tr_store_outbox_register_sink(fx.store, "slack", 1, &err), 0);
    add_incident(&fx);
    add_answer(&fx, "DEEPER-ANSWER the JVM heap exceeds the limit", "");
    tr_chat_explain(fx.incident_id, "slack:U1", fx.chat);
    deadline = uv_now(&fx.loop) + 5000;
    while (found < 0 && uv_now(&fx.loop) < deadline) {
        uv_run(&fx.loop, UV_RUN_NOWAIT);
        uv_update_time(&fx.loop);
        tr_store_delivery_list_free(due);
        assert_int_equal(tr_store_outbox_due(fx.store, "slack", INT64_MAX / 2, 0, 10, &due,
                                             &err), 0);
        for (size_t i = 0; i < due->count; i++)
            if (strcmp(due->items[i].event, "incident.explained") == 0)
                found = (int)i;
    }
    assert_true(found >= 0);
    /* The fixed question went to the LLM. */
    assert_non_null(strstr(fake_request(&fx.llm, 0), "Explain the root cause in more depth"));
    assert_int_equal(tr_notify_message_load(&msg, fx.store, &due->items[found], &err), 0);
    assert_int_equal(tr_notify_message_set_link(msg, "https://triaged.example.com/"), 0);
    assert_non_null(strstr(msg->explanation, "DEEPER-ANSWER"));
    assert_int_equal(tr_slack_blocks_build(&blocks, msg, 0, &err), 0);
    text = cJSON_PrintUnformatted(blocks);
    assert_non_null(strstr(text, "DEEPER-ANSWER"));
    assert_non_null(strstr(text, "Explanation"));
    assert_non_null(strstr(text, "<https://triaged.example.com/v1/incidents/1|Incident>"));
    cJSON_free(text);
    cJSON_Delete(blocks);
    tr_notify_message_free(msg);
    tr_store_delivery_list_free(due);
    teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_numbers_turns_and_returns_the_last_ones_oldest_first),
        cmocka_unit_test(test_store_turn_with_a_patch_becomes_the_latest_analysis_and_can_announce),
        cmocka_unit_test(test_store_keeps_a_bounded_number_of_turns),
        cmocka_unit_test(test_prompt_keeps_the_last_turns_caps_them_and_redacts),
        cmocka_unit_test(test_api_chat_answers_and_carries_the_conversation_without_the_secret),
        cmocka_unit_test(test_api_chat_refuses_unknown_incident_and_empty_message),
        cmocka_unit_test(test_api_chat_without_llm_is_503_naming_the_provider),
        cmocka_unit_test(test_api_chat_llm_error_is_502_and_nothing_is_stored),
        cmocka_unit_test(test_api_dead_letters_are_listed_retried_and_need_the_token),
        cmocka_unit_test(test_explain_more_posts_the_deeper_answer_through_the_outbox_with_a_link),
    };

    TR_RUN_TESTS("chat", tests);
}
