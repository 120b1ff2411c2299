#include "testutil.h"

#include <cjson/cJSON.h>
#include <unistd.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "content.h"
#include "dispatch.h"
#include "http_client.h"
#include "http_server.h"
#include "slack_blocks.h"
#include "store.h"

/*
 * Block Kit payloads against Slack's limits (built from messages made here), and the Slack
 * and Teams sinks through the dispatcher against fake Slack / Teams endpoints on loopback
 * (SaaS: a fake is the only way), with a real store for the thread timestamps.
 */

#define FIXTURES "../shared/fixtures/slack/"

/* ------------------------------------------------------------ limits */

static size_t units(const char *s)
{
    return tr_notify_text_units(s);
}

/* Every limit Slack enforces on the message; returns the block count. */
static int check_limits(const cJSON *root)
{
    const cJSON *blocks = cJSON_GetObjectItem(root, "blocks"), *block, *text, *el;
    int n = 0;

    assert_true(cJSON_IsArray(blocks));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(root, "text")));
    cJSON_ArrayForEach(block, blocks) {
        const char *type = cJSON_GetObjectItem(block, "type")->valuestring;

        n++;
        text = cJSON_GetObjectItem(block, "text");
        if (strcmp(type, "header") == 0)
            assert_true(units(cJSON_GetObjectItem(text, "text")->valuestring) <= 150);
        if (text)
            assert_true(units(cJSON_GetObjectItem(text, "text")->valuestring) <= 3000);
        cJSON_ArrayForEach(el, cJSON_GetObjectItem(block, "elements")) {
            const cJSON *t = cJSON_GetObjectItem(el, "text");

            if (cJSON_IsString(t))
                assert_true(units(t->valuestring) <= 3000);
            else if (t)
                assert_true(units(cJSON_GetObjectItem(t, "text")->valuestring) <= 3000);
        }
    }
    assert_true(n <= TR_SLACK_MAX_BLOCKS);
    return n;
}

/* All section texts of the message joined, for content checks. */
static char *all_text(const cJSON *root)
{
    const cJSON *block;
    tr_buf b = TR_BUF_INIT(0);

    cJSON_ArrayForEach(block, cJSON_GetObjectItem(root, "blocks")) {
        const cJSON *text = cJSON_GetObjectItem(block, "text");

        if (text)
            (void)tr_buf_printf(&b, "%s\n", cJSON_GetObjectItem(text, "text")->valuestring);
    }
    return tr_buf_detach(&b);
}

typedef struct msg_fixture {
    tr_store_incident inc;
    tr_store_analysis an;
    tr_notify_message msg;
} msg_fixture;

static void make_message(msg_fixture *m, int with_analysis)
{
    memset(m, 0, sizeof(*m));
    m->inc.id = 42;
    m->inc.source = "kubernetes";
    m->inc.cluster = "prod-eu";
    m->inc.namespace = "shop";
    m->inc.kind = "Deployment";
    m->inc.name = "checkout";
    m->inc.failure_class = "CrashLoopBackOff";
    m->inc.title = "checkout crash-loops";
    m->inc.message = "back-off restarting failed container";
    m->inc.state = TR_INCIDENT_ANALYZED;
    m->inc.observation_count = 7;
    m->an.incident_id = 42;
    m->an.summary = "checkout exits at start";
    m->an.root_cause = "DATABASE_URL missing";
    m->an.severity = "critical";
    m->an.confidence = 0.9;
    m->an.evidence_json = "[\"panic: DATABASE_URL not set\"]";
    m->an.remediation_json = "[\"Restore the env var\",\"Roll out again\"]";
    m->an.provider = "openai";
    m->msg.delivery_id = "d1";
    m->msg.sink = "slack";
    m->msg.event = "incident.analyzed";
    m->msg.incident_id = 42;
    m->msg.incident = &m->inc;
    m->msg.analysis = with_analysis ? &m->an : NULL;
    m->msg.severity = TR_CONFIG_SEVERITY_CRITICAL;
}

static void test_blocks_cut_a_10kb_root_cause_with_a_note(void **state)
{
    msg_fixture m;
    cJSON *root = NULL;
    char *big = tr_malloc(10 * 1024 + 1), *text;
    tr_error err;

    (void)state;
    memset(big, 'x', 10 * 1024);
    big[10 * 1024] = '\0';
    make_message(&m, 1);
    m.an.root_cause = big;
    assert_int_equal(tr_slack_blocks_build(&root, &m.msg, 0, &err), 0);
    check_limits(root);
    text = all_text(root);
    assert_non_null(strstr(text, "*Root cause*\nxxxx"));
    assert_non_null(strstr(text, "cut to fit Slack: `triaged show 42` has all of it"));
    assert_non_null(strstr(text, "*Summary*\ncheckout exits at start"));
    tr_free(text);
    cJSON_Delete(root);
    tr_free(big);
}

static void test_blocks_fit_60_evidence_items_in_50_blocks(void **state)
{
    msg_fixture m;
    cJSON *root = NULL, *arr = cJSON_CreateArray();
    char item[800], *json, *text, *p;
    int i, bullets = 0, more = 0;
    tr_error err;

    (void)state;
    for (i = 0; i < 60; i++) {
        snprintf(item, sizeof(item), "evidence line %02d: %0600d", i, i);
        cJSON_AddItemToArray(arr, cJSON_CreateString(item));
    }
    json = cJSON_PrintUnformatted(arr);
    make_message(&m, 1);
    m.an.evidence_json = json;
    assert_int_equal(tr_slack_blocks_build(&root, &m.msg, 1, &err), 0);
    assert_true(check_limits(root) <= 50);
    text = all_text(root);
    for (p = text; (p = strstr(p, "• evidence line ")) != NULL; p++)
        bullets++;
    p = strstr(text, "_…and ");
    assert_non_null(p);
    more = atoi(p + strlen("_…and "));
    assert_int_equal(bullets + more, 60); /* every item is shown or counted */
    assert_true(bullets >= 20);
    assert_non_null(strstr(text, "• evidence line 00"));
    tr_free(text);
    cJSON_Delete(root);
    cJSON_free(json);
    cJSON_Delete(arr);
}

static void test_header_is_cut_to_150_characters_on_a_character_boundary(void **state)
{
    msg_fixture m;
    cJSON *root = NULL;
    char name[700];
    const char *header;
    size_t i;
    tr_error err;

    (void)state;
    for (i = 0; i + 2 < 600; i += 2)
        memcpy(name + i, "é", 2); /* two bytes, one character */
    name[i] = '\0';
    make_message(&m, 1);
    m.inc.name = name;
    assert_int_equal(tr_slack_blocks_build(&root, &m.msg, 0, &err), 0);
    check_limits(root);
    header = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(
                                     cJSON_GetObjectItem(root, "blocks"), 0), "text"),
                                 "text")->valuestring;
    assert_int_equal(units(header), 150);
    assert_non_null(strstr(header, "CRITICAL · CrashLoopBackOff · shop/Deployment/éé"));
    assert_string_equal(header + strlen(header) - strlen("…"), "…");
    cJSON_Delete(root);
}

static void test_mrkdwn_special_characters_are_escaped(void **state)
{
    msg_fixture m;
    cJSON *root = NULL;
    char *text;
    tr_error err;

    (void)state;
    make_message(&m, 1);
    m.an.root_cause = "if a < b && c > d then <!channel>";
    assert_int_equal(tr_slack_blocks_build(&root, &m.msg, 0, &err), 0);
    text = all_text(root);
    assert_non_null(strstr(text, "if a &lt; b &amp;&amp; c &gt; d then &lt;!channel&gt;"));
    assert_null(strstr(text, "<!channel>"));
    tr_free(text);
    cJSON_Delete(root);
}

static int count_buttons_for(const cJSON *root, const char *action_id, const char *value)
{
    const cJSON *block, *el;
    int n = 0;

    cJSON_ArrayForEach(block, cJSON_GetObjectItem(root, "blocks"))
        cJSON_ArrayForEach(el, cJSON_GetObjectItem(block, "elements"))
            if (cJSON_IsString(cJSON_GetObjectItem(el, "action_id")) &&
                strcmp(cJSON_GetObjectItem(el, "action_id")->valuestring, action_id) == 0) {
                assert_string_equal(cJSON_GetObjectItem(el, "value")->valuestring, value);
                n++;
            }
    return n;
}

static int count_buttons(const cJSON *root, const char *action_id)
{
    return count_buttons_for(root, action_id, "42");
}

static void test_buttons_need_the_signing_secret_and_a_patch(void **state)
{
    msg_fixture m;
    cJSON *root = NULL;
    tr_error err;

    (void)state;
    make_message(&m, 1);
    assert_int_equal(tr_slack_blocks_build(&root, &m.msg, 0, &err), 0);
    assert_int_equal(count_buttons(root, "triaged_explain"), 0);
    cJSON_Delete(root);
    assert_int_equal(tr_slack_blocks_build(&root, &m.msg, 1, &err), 0);
    assert_int_equal(count_buttons(root, "triaged_explain"), 1);
    assert_int_equal(count_buttons(root, "triaged_accept"), 0); /* no patch yet */
    cJSON_Delete(root);
    m.an.patch = "--- a/deploy/api.yaml\n+++ b/deploy/api.yaml\n@@ -1 +1 @@\n-a\n+b\n";
    m.inc.state = TR_INCIDENT_PATCH_PROPOSED;
    assert_int_equal(tr_slack_blocks_build(&root, &m.msg, 1, &err), 0);
    assert_int_equal(count_buttons(root, "triaged_accept"), 1);
    assert_int_equal(count_buttons(root, "triaged_reject"), 1);
    check_limits(root);
    cJSON_Delete(root);
}

static void test_without_analysis_says_it_follows(void **state)
{
    msg_fixture m;
    cJSON *root = NULL;
    char *text;
    tr_error err;

    (void)state;
    make_message(&m, 0);
    m.msg.event = "incident.opened";
    m.msg.severity = TR_CONFIG_SEVERITY_ERROR;
    assert_int_equal(tr_slack_blocks_build(&root, &m.msg, 0, &err), 0);
    text = all_text(root);
    assert_non_null(strstr(text, "back-off restarting failed container"));
    assert_non_null(strstr(text, "in progress"));
    assert_non_null(strstr(cJSON_GetObjectItem(root, "text")->valuestring,
                           "New incident: ERROR · CrashLoopBackOff · shop/Deployment/checkout"));
    tr_free(text);
    cJSON_Delete(root);
}

/* ------------------------------------------------------------ fake Slack and Teams */

typedef struct fixture {
    uv_loop_t loop;
    char dir[64], db[128];
    tr_store *store;
    tr_http_server *srv;
    tr_http_client *http;
    tr_config *cfg;
    tr_dispatch *d;
    int port;
    int closed, dispatch_closed;
    cJSON *bodies[16];
    char auth[16][128];
    int count;
    const char *answer; /* JSON the fake chat.postMessage answers */
    char *fixture_answer;
} fixture;

static void on_post(tr_http_req *req, void *userdata)
{
    fixture *fx = userdata;
    size_t len;
    const char *body = tr_http_req_body(req, &len);
    const char *auth = tr_http_req_header(req, "Authorization");
    const char *answer = fx->answer ? fx->answer : "ok";

    assert_true(fx->count < 16);
    snprintf(fx->auth[fx->count], sizeof(fx->auth[0]), "%s", auth ? auth : "");
    fx->bodies[fx->count++] = cJSON_ParseWithLength(body, len);
    (void)tr_http_respond(req, 200, "application/json", answer, strlen(answer));
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    tr_buf b = TR_BUF_INIT(0);
    char chunk[4096];
    size_t n;

    assert_non_null(f);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(tr_buf_put(&b, chunk, n), 0);
    fclose(f);
    return tr_buf_detach(&b);
}

static void setup(fixture *fx, const char *notify_toml)
{
    tr_dispatch_options opt = {0};
    char url[128];
    tr_error err;

    memset(fx, 0, sizeof(*fx));
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_notify_slack.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->db, sizeof(fx->db), "%s/triaged.db", fx->dir);
    assert_int_equal(tr_store_open(&fx->store, fx->db, &err), 0);
    assert_int_equal(tr_http_server_new(&fx->srv, &fx->loop, NULL, &err), 0);
    assert_int_equal(tr_http_server_listen(fx->srv, "127.0.0.1:0", &err), 0);
    fx->port = tr_http_server_port(fx->srv);
    assert_int_equal(tr_http_server_route(fx->srv, "POST", "/api/chat.postMessage", on_post, fx),
                     0);
    assert_int_equal(tr_http_server_route(fx->srv, "POST", "/services/T1/B1/x", on_post, fx), 0);
    assert_int_equal(tr_http_client_new(&fx->http, &fx->loop, &err), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/services/T1/B1/x", fx->port);
    setenv("TEST_SLACK_WEBHOOK", url, 1);
    setenv("TEST_SLACK_BOT", "xoxb-test-token", 1);
    if (tr_config_load_string(&fx->cfg, notify_toml, strlen(notify_toml), "t.toml", &err) != 0)
        fail_msg("config: %s", err.message);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api", fx->port);
    opt.slack_api_url = url;
    opt.poll_interval_ms = 50;
    assert_int_equal(tr_dispatch_new_with(&fx->d, &fx->loop, fx->store, fx->http, fx->cfg, NULL,
                                          &opt, &err), 0);
}

static void on_dispatch_closed(void *userdata)
{
    ((fixture *)userdata)->dispatch_closed = 1;
}

static void on_server_closed(tr_http_server *srv, void *userdata)
{
    ((fixture *)userdata)->closed = 1;
}

static void teardown(fixture *fx)
{
    char path[256];
    int i;

    tr_dispatch_close(fx->d, on_dispatch_closed, fx);
    while (!fx->dispatch_closed)
        uv_run(&fx->loop, UV_RUN_ONCE);
    tr_http_client_free(fx->http);
    tr_http_server_close(fx->srv, on_server_closed, fx);
    while (!fx->closed)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    tr_http_server_free(fx->srv);
    tr_store_close(fx->store);
    tr_config_free(fx->cfg);
    tr_free(fx->fixture_answer);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    for (i = 0; i < fx->count; i++)
        cJSON_Delete(fx->bodies[i]);
    snprintf(path, sizeof(path), "%s/triaged.db-wal", fx->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/triaged.db-shm", fx->dir);
    unlink(path);
    unlink(fx->db);
    rmdir(fx->dir);
}

static void run_until(fixture *fx, int n)
{
    uint64_t deadline = uv_now(&fx->loop) + 5000;

    tr_dispatch_notify(fx->d);
    while ((fx->count < n || tr_dispatch_in_flight(fx->d) > 0) &&
           uv_now(&fx->loop) < deadline) {
        uv_run(&fx->loop, UV_RUN_ONCE);
        uv_update_time(&fx->loop);
    }
    assert_int_equal(fx->count, n);
}

static int64_t open_incident(fixture *fx)
{
    tr_store_observation obs;
    tr_store_obs_result res;
    tr_error err;

    memset(&obs, 0, sizeof(obs));
    obs.fingerprint = "k8s/default/shop/Deployment/checkout/CrashLoopBackOff";
    obs.source = "kubernetes";
    obs.namespace = "shop";
    obs.kind = "Deployment";
    obs.name = "checkout";
    obs.failure_class = "CrashLoopBackOff";
    obs.message = "back-off restarting failed container";
    obs.observed_ms = 1000;
    assert_int_equal(tr_store_observe(fx->store, &obs, 1800000, 1000, &res, &err), 0);
    return res.incident_id;
}

static const char *str(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItem(obj, name);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static void test_bot_mode_threads_updates_under_the_first_message(void **state)
{
    fixture fx;
    tr_store_transition resolve = {.to = TR_INCIDENT_RESOLVED, .event = "incident.resolved"};
    tr_error err;
    char *kept = NULL, key[128];
    int64_t id;

    (void)state;
    setup(&fx, "[[notify]]\nkind = \"slack\"\nname = \"s\"\nbot_token_env = \"TEST_SLACK_BOT\"\n"
               "channel = \"#ops\"\nrate_limit = \"0s\"\n");
    fx.fixture_answer = slurp(FIXTURES "slack-chat.postMessage-response-docs.json");
    fx.answer = fx.fixture_answer;
    id = open_incident(&fx);
    run_until(&fx, 1);
    assert_string_equal(fx.auth[0], "Bearer xoxb-test-token");
    assert_string_equal(str(fx.bodies[0], "channel"), "#ops");
    assert_null(cJSON_GetObjectItem(fx.bodies[0], "thread_ts"));
    check_limits(fx.bodies[0]);
    snprintf(key, sizeof(key), "slack/s/thread/%lld", (long long)id);
    assert_int_equal(tr_store_kv_get(fx.store, key, &kept, &err), 0);
    assert_string_equal(kept, "C1H9RESGL 1503435956.000247");
    tr_free(kept);

    assert_int_equal(tr_store_outbox_enqueue(fx.store, id, "pr.opened", "{}", 2000, NULL, &err),
                     0);
    run_until(&fx, 2);
    assert_string_equal(str(fx.bodies[1], "channel"), "C1H9RESGL");
    assert_string_equal(str(fx.bodies[1], "thread_ts"), "1503435956.000247");

    assert_int_equal(tr_store_incident_transition(fx.store, id, &resolve, 3000, &err), 0);
    run_until(&fx, 3);
    assert_string_equal(str(fx.bodies[2], "thread_ts"), "1503435956.000247");
    assert_non_null(strstr(str(fx.bodies[2], "text"), "Resolved"));
    /* resolved closes the thread: a reopen starts a new one */
    assert_int_equal(tr_store_kv_get(fx.store, key, &kept, &err), TR_ENOTFOUND);
    teardown(&fx);
}

static void test_bot_mode_ok_false_is_dropped_and_ratelimited_retried(void **state)
{
    fixture fx;
    tr_store_delivery_list *dead = NULL;
    tr_error err;

    (void)state;
    setup(&fx, "[[notify]]\nkind = \"slack\"\nname = \"s\"\nbot_token_env = \"TEST_SLACK_BOT\"\n"
               "channel = \"#ops\"\n");
    fx.answer = "{\"ok\":false,\"error\":\"channel_not_found\"}";
    (void)open_incident(&fx);
    run_until(&fx, 1);
    assert_int_equal(tr_store_outbox_dead_letters(fx.store, "s", 0, 10, &dead, &err), 0);
    assert_int_equal(dead->count, 1);
    assert_string_equal(dead->items[0].last_error, "chat.postMessage: channel_not_found");
    tr_store_delivery_list_free(dead);

    fx.answer = "{\"ok\":false,\"error\":\"ratelimited\"}";
    assert_int_equal(tr_store_outbox_enqueue(fx.store, 0, "incident.opened", "{\"title\":\"x\"}",
                                             2000, NULL, &err), 0);
    run_until(&fx, 2);
    assert_int_equal(tr_store_outbox_dead_letters(fx.store, "s", 0, 10, &dead, &err), 0);
    assert_int_equal(dead->count, 1); /* still only the first: ratelimited is retried */
    tr_store_delivery_list_free(dead);
    teardown(&fx);
}

static void test_webhook_mode_posts_blocks_with_buttons(void **state)
{
    fixture fx;

    (void)state;
    setup(&fx, "[[notify]]\nkind = \"slack\"\nname = \"w\"\nwebhook_url_env = "
               "\"TEST_SLACK_WEBHOOK\"\nsigning_secret_env = \"TEST_SLACK_SIGNING\"\n");
    (void)open_incident(&fx);
    run_until(&fx, 1);
    assert_string_equal(fx.auth[0], "");
    assert_null(cJSON_GetObjectItem(fx.bodies[0], "channel"));
    check_limits(fx.bodies[0]);
    /* signing_secret_env set: the buttons are there, naming the incident */
    assert_int_equal(count_buttons_for(fx.bodies[0], "triaged_explain", "1"), 1);
    assert_int_equal(count_buttons_for(fx.bodies[0], "triaged_accept", "1"), 0);
    teardown(&fx);
}

static void test_teams_gets_an_adaptive_card_with_the_analysis(void **state)
{
    fixture fx;
    tr_store_analysis a;
    tr_store_transition t = {.to = TR_INCIDENT_ANALYZED, .event = "incident.analyzed"};
    const cJSON *att, *card, *block;
    tr_buf all = TR_BUF_INIT(0);
    tr_error err;
    int64_t id;

    (void)state;
    setup(&fx, "[[notify]]\nkind = \"teams\"\nname = \"t\"\nwebhook_url_env = "
               "\"TEST_SLACK_WEBHOOK\"\nrate_limit = \"0s\"\n");
    id = open_incident(&fx);
    memset(&a, 0, sizeof(a));
    a.incident_id = id;
    a.summary = "checkout exits at start";
    a.root_cause = "DATABASE_URL missing";
    a.severity = "critical";
    a.confidence = 0.9;
    a.evidence_json = "[\"panic: DATABASE_URL not set\"]";
    a.remediation_json = "[\"Restore the env var\"]";
    a.provider = "rules";
    assert_int_equal(tr_store_analysis_put(fx.store, &a, &t, 2000, NULL, &err), 0);
    run_until(&fx, 2);
    att = cJSON_GetArrayItem(cJSON_GetObjectItem(fx.bodies[1], "attachments"), 0);
    assert_string_equal(str(att, "contentType"), "application/vnd.microsoft.card.adaptive");
    card = cJSON_GetObjectItem(att, "content");
    assert_string_equal(str(card, "type"), "AdaptiveCard");
    cJSON_ArrayForEach(block, cJSON_GetObjectItem(card, "body"))
        (void)tr_buf_printf(&all, "%s\n", str(block, "text"));
    assert_non_null(strstr(all.ptr, "CRITICAL · CrashLoopBackOff · shop/Deployment/checkout"));
    assert_non_null(strstr(all.ptr, "Root cause\nDATABASE_URL missing"));
    assert_non_null(strstr(all.ptr, "- panic: DATABASE_URL not set"));
    assert_non_null(strstr(all.ptr, "1. Restore the env var"));
    tr_buf_dispose(&all);
    teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_cut_a_10kb_root_cause_with_a_note),
        cmocka_unit_test(test_blocks_fit_60_evidence_items_in_50_blocks),
        cmocka_unit_test(test_header_is_cut_to_150_characters_on_a_character_boundary),
        cmocka_unit_test(test_mrkdwn_special_characters_are_escaped),
        cmocka_unit_test(test_buttons_need_the_signing_secret_and_a_patch),
        cmocka_unit_test(test_without_analysis_says_it_follows),
        cmocka_unit_test(test_bot_mode_threads_updates_under_the_first_message),
        cmocka_unit_test(test_bot_mode_ok_false_is_dropped_and_ratelimited_retried),
        cmocka_unit_test(test_webhook_mode_posts_blocks_with_buttons),
        cmocka_unit_test(test_teams_gets_an_adaptive_card_with_the_analysis),
    };

    TR_RUN_TESTS("notify_slack", tests);
}
