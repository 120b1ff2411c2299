#include "testutil.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "actions.h"
#include "buf.h"
#include "http_client.h"
#include "http_server.h"
#include "slack_payload.h"
#include "store.h"

/*
 * Accept / reject / explain over real HTTP on loopback with a real store: the /v1 routes,
 * and Slack's interactivity endpoint with signatures computed here with OpenSSL (and the
 * worked example from Slack's docs). The Slack response_url is a fake on the same server.
 */

#define FIXTURES "../shared/fixtures/slack/"
#define SECRET "slack-signing-secret-for-tests"
#define TOKEN "api-token-0123456789abcdef"
#define NOW_S 1700000000LL

typedef struct fixture {
    uv_loop_t loop;
    char dir[64], db[128];
    tr_store *store;
    tr_http_server *srv;
    tr_http_client *http;
    tr_actions ctx;
    char prefix[64];
    int port, closed;
    int done;
    long status;
    char body[16384];
    char followup[16384];
    int followups;
} fixture;

static int64_t fake_now(void *userdata)
{
    (void)userdata;
    return NOW_S * 1000;
}

static void on_response_url(tr_http_req *req, void *userdata)
{
    fixture *fx = userdata;
    size_t len;
    const char *body = tr_http_req_body(req, &len);

    snprintf(fx->followup, sizeof(fx->followup), "%.*s", (int)len, body);
    fx->followups++;
    (void)tr_http_respond(req, 200, "text/plain", "ok", 2);
}

static void setup(fixture *fx, const char *token)
{
    tr_error err;

    memset(fx, 0, sizeof(*fx));
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_actions.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->db, sizeof(fx->db), "%s/triaged.db", fx->dir);
    assert_int_equal(tr_store_open(&fx->store, fx->db, &err), 0);
    assert_int_equal(tr_http_server_new(&fx->srv, &fx->loop, NULL, &err), 0);
    assert_int_equal(tr_http_server_listen(fx->srv, "127.0.0.1:0", &err), 0);
    fx->port = tr_http_server_port(fx->srv);
    assert_int_equal(tr_http_client_new(&fx->http, &fx->loop, &err), 0);
    snprintf(fx->prefix, sizeof(fx->prefix), "http://127.0.0.1:%d/actions/", fx->port);
    fx->ctx.store = fx->store;
    fx->ctx.http = fx->http;
    fx->ctx.api_token = token;
    fx->ctx.slack_signing_secret = SECRET;
    fx->ctx.response_url_prefix = fx->prefix;
    fx->ctx.now_ms = fake_now;
    assert_int_equal(tr_actions_register(fx->srv, &fx->ctx, &err), 0);
    assert_int_equal(tr_http_server_route(fx->srv, "POST", "/actions/T1/1/x", on_response_url,
                                          fx), 0);
}

static void on_server_closed(tr_http_server *srv, void *userdata)
{
    ((fixture *)userdata)->closed = 1;
}

static void teardown(fixture *fx)
{
    char path[256];

    tr_http_client_free(fx->http);
    tr_http_server_close(fx->srv, on_server_closed, fx);
    while (!fx->closed)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    tr_http_server_free(fx->srv);
    tr_store_close(fx->store);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    snprintf(path, sizeof(path), "%s/triaged.db-wal", fx->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/triaged.db-shm", fx->dir);
    unlink(path);
    unlink(fx->db);
    rmdir(fx->dir);
}

static void on_done(const tr_http_response *resp, void *userdata)
{
    fixture *fx = userdata;

    assert_int_equal(resp->result, TR_OK);
    fx->status = resp->status;
    snprintf(fx->body, sizeof(fx->body), "%.*s", (int)resp->body_len, resp->body);
    fx->done = 1;
}

static long post(fixture *fx, const char *path, const char *const *headers, const char *body)
{
    tr_http_request req;
    char url[256];
    tr_error err;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", fx->port, path);
    memset(&req, 0, sizeof(req));
    req.method = TR_HTTP_POST;
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

/* Let the follow-up POST to response_url arrive. */
static void settle(fixture *fx, int followups)
{
    uint64_t deadline = uv_now(&fx->loop) + 3000;

    while (fx->followups < followups && uv_now(&fx->loop) < deadline) {
        uv_run(&fx->loop, UV_RUN_ONCE);
        uv_update_time(&fx->loop);
    }
}

static int64_t incident_in(fixture *fx, int state)
{
    tr_store_observation obs;
    tr_store_obs_result res;
    tr_store_transition t = {0};
    tr_error err;

    memset(&obs, 0, sizeof(obs));
    obs.fingerprint = "k8s/default/shop/Deployment/api/CrashLoopBackOff";
    obs.source = "kubernetes";
    obs.namespace = "shop";
    obs.kind = "Deployment";
    obs.name = "api";
    obs.failure_class = "CrashLoopBackOff";
    obs.observed_ms = 1000;
    assert_int_equal(tr_store_observe(fx->store, &obs, 1800000, 1000, &res, &err), 0);
    if (state >= TR_INCIDENT_ANALYZED) {
        t.to = TR_INCIDENT_ANALYZED;
        assert_int_equal(tr_store_incident_transition(fx->store, res.incident_id, &t, 2000, &err),
                         0);
    }
    if (state >= TR_INCIDENT_PATCH_PROPOSED) {
        t.to = TR_INCIDENT_PATCH_PROPOSED;
        assert_int_equal(tr_store_incident_transition(fx->store, res.incident_id, &t, 3000, &err),
                         0);
    }
    return res.incident_id;
}

static int state_of(fixture *fx, int64_t id)
{
    tr_store_incident *inc = NULL;
    tr_error err;
    int state;

    assert_int_equal(tr_store_incident_get(fx->store, id, &inc, &err), 0);
    state = inc->state;
    tr_store_incident_free(inc);
    return state;
}

/* ------------------------------------------------------------ Slack signing */

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

static void test_slack_docs_signature_vector_verifies(void **state)
{
    char *text = slurp(FIXTURES "slack-signing-test-vector.json");
    cJSON *v = cJSON_Parse(text);
    cJSON *headers = cJSON_GetObjectItem(v, "headers");
    const char *secret = cJSON_GetObjectItem(v, "signing_secret")->valuestring;
    const char *ts = cJSON_GetObjectItem(headers, "X-Slack-Request-Timestamp")->valuestring;
    const char *sig = cJSON_GetObjectItem(headers, "X-Slack-Signature")->valuestring;
    char *body = tr_strdup(cJSON_GetObjectItem(v, "raw_body")->valuestring);
    size_t len = strlen(body);
    tr_error err;

    (void)state;
    assert_int_equal(tr_slack_verify(secret, ts, sig, body, len, 1531420618, &err), 0);
    assert_int_equal(tr_slack_verify(secret, ts, sig, body, len, 1531420618 + 299, &err), 0);
    assert_int_equal(tr_slack_verify(secret, ts, sig, body, len, 1531420618 + 301, &err),
                     TR_EAUTH);
    assert_non_null(strstr(err.message, "Timestamp"));
    body[len - 1] ^= 1; /* one changed byte */
    assert_int_equal(tr_slack_verify(secret, ts, sig, body, len, 1531420618, &err), TR_EAUTH);
    assert_null(strstr(err.message, secret));
    tr_free(body);
    cJSON_Delete(v);
    tr_free(text);
}

static void test_slack_fixture_form_body_parses(void **state)
{
    char *body = slurp(FIXTURES "slack-block_actions-form-body-bolt-python.txt");
    tr_slack_action *a = NULL;
    size_t len = strlen(body);
    tr_error err;

    (void)state;
    while (len && (body[len - 1] == '\n' || body[len - 1] == '\r'))
        body[--len] = '\0';
    assert_int_equal(tr_slack_action_parse(&a, body, len, &err), 0);
    assert_string_equal(a->type, "block_actions");
    assert_string_equal(a->user_id, "W111");
    assert_string_equal(a->user_name, "primary-owner");
    assert_string_equal(a->action_id, "a");
    assert_string_equal(a->value, "click_me_123");
    assert_string_equal(a->response_url, "https://hooks.slack.com/actions/T111/111/random-value");
    assert_string_equal(a->channel_id, "C111");
    assert_string_equal(a->message_ts, "111.222");
    tr_slack_action_free(a);
    assert_int_equal(tr_slack_action_parse(&a, "payload=%7Bnot-json", 19, &err), TR_EPARSE);
    assert_int_equal(tr_slack_action_parse(&a, "token=x", 7, &err), TR_EPARSE);
    assert_non_null(strstr(err.message, "payload"));
    tr_free(body);
}

/* ------------------------------------------------------------ Slack over HTTP */

static char *form_body(fixture *fx, const char *action_id, int64_t id)
{
    char json[1024];
    tr_buf b = TR_BUF_INIT(0);
    size_t i;

    snprintf(json, sizeof(json),
             "{\"type\":\"block_actions\",\"user\":{\"id\":\"U1\",\"username\":\"ana\"},"
             "\"response_url\":\"http://127.0.0.1:%d/actions/T1/1/x\",\"actions\":[{"
             "\"action_id\":\"%s\",\"value\":\"%lld\",\"type\":\"button\"}]}",
             fx->port, action_id, (long long)id);
    (void)tr_buf_puts(&b, "payload=");
    for (i = 0; json[i]; i++) {
        unsigned char c = (unsigned char)json[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '.' || c == '-')
            (void)tr_buf_putc(&b, (char)c);
        else if (c == ' ')
            (void)tr_buf_putc(&b, '+');
        else
            (void)tr_buf_printf(&b, "%%%02X", c);
    }
    return tr_buf_detach(&b);
}

/* Sign body at ts with OpenSSL here, independently of the code under test. */
static void sign(const char *body, long long ts, char *ts_header, char *sig_header)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0, i;
    tr_buf base = TR_BUF_INIT(0);

    (void)tr_buf_printf(&base, "v0:%lld:%s", ts, body);
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)base.ptr, base.len,
         mac, &len);
    sprintf(ts_header, "X-Slack-Request-Timestamp: %lld", ts);
    strcpy(sig_header, "X-Slack-Signature: v0=");
    for (i = 0; i < len; i++)
        sprintf(sig_header + strlen(sig_header), "%02x", mac[i]);
    tr_buf_dispose(&base);
}

static long post_slack(fixture *fx, const char *body, long long ts, int corrupt)
{
    char ts_header[64], sig_header[128];
    const char *headers[] = { "Content-Type: application/x-www-form-urlencoded", ts_header,
                              sig_header, NULL };
    char *sent = tr_strdup(body);
    long status;

    sign(body, ts, ts_header, sig_header);
    if (corrupt)
        sent[strlen(sent) - 5] ^= 1; /* the replayed request with one changed byte */
    status = post(fx, "/hooks/slack/actions", headers, sent);
    tr_free(sent);
    return status;
}

static void test_slack_accept_button_accepts_and_says_the_fixer_follows(void **state)
{
    fixture fx;
    tr_store_decision *d = NULL;
    tr_store_delivery_list *due = NULL;
    tr_error err;
    char *body;
    int64_t id;
    size_t i;
    int announced = 0;

    (void)state;
    setup(&fx, NULL);
    id = incident_in(&fx, TR_INCIDENT_PATCH_PROPOSED);
    assert_int_equal(tr_store_outbox_register_sink(fx.store, "probe", 0, &err), 0);
    body = form_body(&fx, "triaged_accept", id);
    assert_int_equal(post_slack(&fx, body, NOW_S - 10, 0), 200);
    assert_int_equal(state_of(&fx, id), TR_INCIDENT_ACCEPTED);
    assert_int_equal(tr_store_decision_latest(fx.store, id, &d, &err), 0);
    assert_int_equal(d->accept, 1);
    assert_string_equal(d->actor, "slack:U1");
    tr_store_decision_free(d);
    assert_int_equal(tr_store_outbox_due(fx.store, "probe", 1LL << 50, 0, 10, &due, &err), 0);
    for (i = 0; i < due->count; i++)
        announced += strcmp(due->items[i].event, "incident.accepted") == 0;
    tr_store_delivery_list_free(due);
    assert_int_equal(announced, 1);
    settle(&fx, 1);
    assert_int_equal(fx.followups, 1);
    assert_non_null(strstr(fx.followup, "<@U1> accepted the fix"));
    assert_non_null(strstr(fx.followup, "stays `accepted`"));
    assert_non_null(strstr(fx.followup, "\"in_channel\""));

    /* a second click: the state no longer allows it, said to the user, still 200 */
    assert_int_equal(post_slack(&fx, body, NOW_S, 0), 200);
    settle(&fx, 2);
    assert_non_null(strstr(fx.followup, "Cannot accept"));
    assert_non_null(strstr(fx.followup, "already accepted"));
    tr_free(body);
    teardown(&fx);
}

static void test_slack_bad_signature_old_timestamp_and_changed_byte_get_401(void **state)
{
    fixture fx;
    tr_store_decision *d = NULL;
    const char *headers[] = { "X-Slack-Request-Timestamp: 1700000000",
                              "X-Slack-Signature: v0=0000000000000000000000000000000000000000000"
                              "000000000000000000000", NULL };
    tr_error err;
    char *body;
    int64_t id;

    (void)state;
    setup(&fx, NULL);
    id = incident_in(&fx, TR_INCIDENT_PATCH_PROPOSED);
    body = form_body(&fx, "triaged_reject", id);
    assert_int_equal(post(&fx, "/hooks/slack/actions", headers, body), 401);
    assert_int_equal(post_slack(&fx, body, NOW_S - 301, 0), 401); /* 5 min + 1 s old */
    assert_non_null(strstr(fx.body, "Timestamp"));
    assert_int_equal(post_slack(&fx, body, NOW_S, 1), 401);
    assert_int_equal(post(&fx, "/hooks/slack/actions", NULL, body), 401);
    assert_int_equal(state_of(&fx, id), TR_INCIDENT_PATCH_PROPOSED);
    assert_int_equal(tr_store_decision_latest(fx.store, id, &d, &err), TR_ENOTFOUND);
    assert_int_equal(fx.followups, 0);
    tr_free(body);
    teardown(&fx);
}

typedef struct explain_seen {
    int64_t id;
    char actor[64];
} explain_seen;

static void on_explain(int64_t incident_id, const char *actor, void *userdata)
{
    explain_seen *seen = userdata;

    seen->id = incident_id;
    snprintf(seen->actor, sizeof(seen->actor), "%s", actor);
}

static void test_slack_explain_asks_for_a_deeper_answer_in_the_thread(void **state)
{
    fixture fx;
    explain_seen seen = { 0 };
    char *body;
    int64_t id;

    (void)state;
    setup(&fx, NULL);
    fx.ctx.on_explain = on_explain;
    fx.ctx.explain_userdata = &seen;
    id = incident_in(&fx, TR_INCIDENT_ANALYZED);
    body = form_body(&fx, "triaged_explain", id);
    assert_int_equal(post_slack(&fx, body, NOW_S, 0), 200);
    settle(&fx, 1);
    assert_int_equal(seen.id, id);
    assert_string_equal(seen.actor, "slack:U1");
    assert_non_null(strstr(fx.followup, "deeper explanation is on its way"));
    tr_free(body);
    teardown(&fx);
}

static void test_slack_explain_replies_with_the_analysis(void **state)
{
    fixture fx;
    tr_store_analysis a;
    tr_error err;
    char *body;
    int64_t id;

    (void)state;
    setup(&fx, NULL);
    id = incident_in(&fx, TR_INCIDENT_ANALYZED);
    body = form_body(&fx, "triaged_explain", id);
    assert_int_equal(post_slack(&fx, body, NOW_S, 0), 200);
    settle(&fx, 1);
    assert_non_null(strstr(fx.followup, "has no analysis yet"));
    memset(&a, 0, sizeof(a));
    a.incident_id = id;
    a.summary = "s";
    a.root_cause = "the image tag v2 does not exist";
    a.severity = "error";
    a.confidence = 0.75;
    a.evidence_json = "[\"manifest unknown\"]";
    a.remediation_json = "[\"pin v1.9\"]";
    a.provider = "rules";
    assert_int_equal(tr_store_analysis_put(fx.store, &a, NULL, 5000, NULL, &err), 0);
    assert_int_equal(post_slack(&fx, body, NOW_S, 0), 200);
    settle(&fx, 2);
    assert_non_null(strstr(fx.followup, "Root cause: the image tag v2 does not exist"));
    assert_non_null(strstr(fx.followup, "manifest unknown"));
    assert_non_null(strstr(fx.followup, "pin v1.9"));
    assert_non_null(strstr(fx.followup, "\"ephemeral\""));
    assert_int_equal(state_of(&fx, id), TR_INCIDENT_ANALYZED);
    tr_free(body);
    teardown(&fx);
}

/* ------------------------------------------------------------ /v1 */

static void test_api_accept_reject_states_and_errors(void **state)
{
    fixture fx;
    const char *auth[] = { "Authorization: Bearer " TOKEN, "Content-Type: application/json",
                           NULL };
    const char *wrong[] = { "Authorization: Bearer nope", NULL };
    tr_store_decision *d = NULL;
    tr_error err;
    char path[64];
    int64_t id;

    (void)state;
    setup(&fx, TOKEN);
    id = incident_in(&fx, TR_INCIDENT_ANALYZED);
    snprintf(path, sizeof(path), "/v1/incidents/%lld/accept", (long long)id);
    assert_int_equal(post(&fx, path, wrong, NULL), 401);
    assert_int_equal(post(&fx, path, auth, NULL), 409);
    assert_non_null(strstr(fx.body, "only a proposed patch can be accepted"));
    assert_int_equal(post(&fx, "/v1/incidents/999/accept", auth, NULL), 404);
    assert_int_equal(post(&fx, "/v1/incidents/abc/accept", auth, NULL), 400);

    snprintf(path, sizeof(path), "/v1/incidents/%lld/reject", (long long)id);
    assert_int_equal(post(&fx, path, auth, "{\"reason\": 5}"), 400);
    assert_int_equal(post(&fx, path, auth, "{\"reason\": \"wrong namespace\"}"), 200);
    assert_non_null(strstr(fx.body, "\"state\":\"rejected\""));
    assert_int_equal(tr_store_decision_latest(fx.store, id, &d, &err), 0);
    assert_int_equal(d->accept, 0);
    assert_string_equal(d->reason, "wrong namespace");
    assert_string_equal(d->actor, "api");
    tr_store_decision_free(d);
    assert_int_equal(post(&fx, path, auth, NULL), 409); /* rejected is final */
    teardown(&fx);
}

static void test_api_accept_of_a_proposed_patch(void **state)
{
    fixture fx;
    char path[64];
    int64_t id;

    (void)state;
    setup(&fx, NULL);
    id = incident_in(&fx, TR_INCIDENT_PATCH_PROPOSED);
    snprintf(path, sizeof(path), "/v1/incidents/%lld/accept", (long long)id);
    assert_int_equal(post(&fx, path, NULL, NULL), 200);
    assert_non_null(strstr(fx.body, "\"state\":\"accepted\""));
    assert_non_null(strstr(fx.body, "the fixer opens the pull request"));
    assert_int_equal(state_of(&fx, id), TR_INCIDENT_ACCEPTED);
    teardown(&fx);
}

static void test_api_accept_of_an_analysis_with_a_patch_proposes_then_accepts(void **state)
{
    fixture fx;
    tr_store_analysis a;
    tr_store_decision *d = NULL;
    tr_error err;
    char path[64];
    int64_t id;

    (void)state;
    setup(&fx, NULL);
    id = incident_in(&fx, TR_INCIDENT_ANALYZED);
    memset(&a, 0, sizeof(a));
    a.incident_id = id;
    a.summary = "sum";
    a.root_cause = "cause";
    a.severity = "high";
    a.confidence = 0.8;
    a.evidence_json = "[]";
    a.remediation_json = "[]";
    a.patch = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n";
    assert_int_equal(tr_store_analysis_put(fx.store, &a, NULL, 5000, NULL, &err), 0);
    snprintf(path, sizeof(path), "/v1/incidents/%lld/accept", (long long)id);
    assert_int_equal(post(&fx, path, NULL, NULL), 200);
    assert_int_equal(state_of(&fx, id), TR_INCIDENT_ACCEPTED);
    assert_int_equal(tr_store_decision_latest(fx.store, id, &d, &err), 0);
    assert_int_equal(d->accept, 1);
    assert_string_equal(d->actor, "api");
    tr_store_decision_free(d);
    teardown(&fx);
}

static void test_analysis_json_for_the_api(void **state)
{
    fixture fx;
    tr_store_analysis a;
    tr_error err;
    cJSON *json;
    int64_t id;

    (void)state;
    setup(&fx, NULL);
    id = incident_in(&fx, TR_INCIDENT_ANALYZED);
    assert_null(tr_actions_analysis_json(fx.store, id));
    memset(&a, 0, sizeof(a));
    a.incident_id = id;
    a.summary = "sum";
    a.root_cause = "cause";
    a.severity = "warning";
    a.confidence = 0.5;
    a.evidence_json = "[\"e1\",\"e2\"]";
    a.remediation_json = "[\"r1\"]";
    a.patch = "--- a/x\n+++ b/x\n";
    assert_int_equal(tr_store_analysis_put(fx.store, &a, NULL, 5000, NULL, &err), 0);
    json = tr_actions_analysis_json(fx.store, id);
    assert_non_null(json);
    assert_string_equal(cJSON_GetObjectItem(json, "root_cause")->valuestring, "cause");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(json, "evidence")), 2);
    assert_string_equal(cJSON_GetObjectItem(json, "patch")->valuestring, "--- a/x\n+++ b/x\n");
    cJSON_Delete(json);
    teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slack_docs_signature_vector_verifies),
        cmocka_unit_test(test_slack_fixture_form_body_parses),
        cmocka_unit_test(test_slack_accept_button_accepts_and_says_the_fixer_follows),
        cmocka_unit_test(test_slack_bad_signature_old_timestamp_and_changed_byte_get_401),
        cmocka_unit_test(test_slack_explain_replies_with_the_analysis),
        cmocka_unit_test(test_slack_explain_asks_for_a_deeper_answer_in_the_thread),
        cmocka_unit_test(test_api_accept_reject_states_and_errors),
        cmocka_unit_test(test_api_accept_of_a_proposed_patch),
        cmocka_unit_test(test_api_accept_of_an_analysis_with_a_patch_proposes_then_accepts),
        cmocka_unit_test(test_analysis_json_for_the_api),
    };

    TR_RUN_TESTS("actions", tests);
}
