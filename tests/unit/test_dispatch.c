#include "testutil.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "dispatch.h"
#include "http_client.h"
#include "http_server.h"
#include "metrics.h"
#include "store.h"

/*
 * The dispatcher against a real SQLite store in a temp dir and a fake webhook receiver
 * (a tr_http_server on loopback) that records every request and answers as scripted.
 * Time for the store (backoff, leases, rate limits) is a fake clock the tests move.
 */

#define SECRET "webhook-hmac-secret-for-tests"
#define MAX_SEEN 64
#define T0 1700000000000LL

typedef struct seen {
    char delivery[80];
    char event[64];
    char signature[100];
    char *body;
} seen;

typedef struct fixture {
    uv_loop_t loop;
    char dir[64], db[128];
    tr_store *store;
    tr_http_server *srv;
    tr_http_client *http;
    tr_metrics *metrics;
    tr_config *cfg;
    tr_dispatch *d;
    int port;
    int64_t now;
    /* receiver */
    seen seen[MAX_SEEN];
    int seen_count;
    int script[16];          /* statuses to answer, in order; then 200 */
    int script_len, script_pos;
    const char *retry_after; /* header on 429 answers */
    int hold;                /* keep requests unanswered (a receiver that hangs) */
    tr_http_req *held;
    int closed, dispatch_closed;
} fixture;

static int64_t fake_now(void *userdata)
{
    return ((fixture *)userdata)->now;
}

static void on_hook(tr_http_req *req, void *userdata)
{
    fixture *fx = userdata;
    seen *s;
    size_t len;
    const char *body = tr_http_req_body(req, &len);
    const char *h;
    int status = 200;

    assert_true(fx->seen_count < MAX_SEEN);
    s = &fx->seen[fx->seen_count++];
    h = tr_http_req_header(req, "X-Triaged-Delivery");
    snprintf(s->delivery, sizeof(s->delivery), "%s", h ? h : "");
    h = tr_http_req_header(req, "X-Triaged-Event");
    snprintf(s->event, sizeof(s->event), "%s", h ? h : "");
    h = tr_http_req_header(req, "X-Triaged-Signature");
    snprintf(s->signature, sizeof(s->signature), "%s", h ? h : "");
    s->body = tr_strndup(body, len);
    if (fx->hold) {
        fx->held = req;
        return;
    }
    if (fx->script_pos < fx->script_len)
        status = fx->script[fx->script_pos++];
    if (status == 429 && fx->retry_after)
        (void)tr_http_req_add_header(req, "Retry-After", fx->retry_after);
    (void)tr_http_respond(req, status, "text/plain", status == 200 ? "ok" : "no", 2);
}

static void make_config(fixture *fx, const char *extra)
{
    char text[2048];
    tr_error err;

    snprintf(text, sizeof(text),
             "[[notify]]\nkind = \"webhook\"\nname = \"hook\"\n"
             "url = \"http://127.0.0.1:%d/hook\"\nhmac_secret_env = \"TEST_HOOK_SECRET\"\n"
             "max_attempts = 3\n%s\n",
             fx->port, extra ? extra : "");
    if (tr_config_load_string(&fx->cfg, text, strlen(text), "t.toml", &err) != 0)
        fail_msg("config: %s", err.message);
}

static void start_dispatch(fixture *fx)
{
    tr_dispatch_options opt = {0};
    tr_error err;

    opt.now_ms = fake_now;
    opt.clock_userdata = fx;
    opt.poll_interval_ms = 50;
    opt.send_timeout_ms = 5000;
    if (tr_dispatch_new_with(&fx->d, &fx->loop, fx->store, fx->http, fx->cfg, fx->metrics, &opt,
                             &err) != 0)
        fail_msg("dispatch: %s", err.message);
}

static void setup(fixture *fx, const char *extra)
{
    tr_error err;

    memset(fx, 0, sizeof(*fx));
    fx->now = T0;
    setenv("TEST_HOOK_SECRET", SECRET, 1);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_dispatch.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->db, sizeof(fx->db), "%s/triaged.db", fx->dir);
    assert_int_equal(tr_store_open(&fx->store, fx->db, &err), 0);
    assert_int_equal(tr_http_server_new(&fx->srv, &fx->loop, NULL, &err), 0);
    assert_int_equal(tr_http_server_listen(fx->srv, "127.0.0.1:0", &err), 0);
    fx->port = tr_http_server_port(fx->srv);
    assert_int_equal(tr_http_server_route(fx->srv, "POST", "/hook", on_hook, fx), 0);
    assert_int_equal(tr_http_client_new(&fx->http, &fx->loop, &err), 0);
    assert_int_equal(tr_metrics_new(&fx->metrics, 0), 0);
    make_config(fx, extra);
    start_dispatch(fx);
}

static void on_dispatch_closed(void *userdata)
{
    ((fixture *)userdata)->dispatch_closed = 1;
}

static void on_server_closed(tr_http_server *srv, void *userdata)
{
    ((fixture *)userdata)->closed = 1;
}

static void close_dispatch(fixture *fx)
{
    fx->dispatch_closed = 0;
    tr_dispatch_close(fx->d, on_dispatch_closed, fx);
    while (!fx->dispatch_closed)
        uv_run(&fx->loop, UV_RUN_ONCE);
    fx->d = NULL;
}

static void teardown(fixture *fx)
{
    char path[256];
    int i;

    if (fx->d)
        close_dispatch(fx);
    if (fx->held)
        (void)tr_http_respond(fx->held, 200, "text/plain", "ok", 2);
    tr_http_client_free(fx->http);
    tr_http_server_close(fx->srv, on_server_closed, fx);
    while (!fx->closed)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    tr_http_server_free(fx->srv);
    tr_store_close(fx->store);
    tr_metrics_free(fx->metrics);
    tr_config_free(fx->cfg);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    for (i = 0; i < fx->seen_count; i++)
        tr_free(fx->seen[i].body);
    snprintf(path, sizeof(path), "%s/triaged.db-wal", fx->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/triaged.db-shm", fx->dir);
    unlink(path);
    unlink(fx->db);
    rmdir(fx->dir);
}

static double metric(fixture *fx, const char *outcome)
{
    tr_metric_family *f = tr_metrics_counter(fx->metrics, "triaged_notify_deliveries", "x", "sink",
                                             "outcome", NULL);

    return tr_metric_value(f, "hook", outcome);
}

/* Run the loop until the receiver has seen n requests and nothing is in flight. */
static void run_until_seen(fixture *fx, int n)
{
    uint64_t deadline = uv_now(&fx->loop) + 5000;

    tr_dispatch_notify(fx->d);
    while ((fx->seen_count < n || tr_dispatch_in_flight(fx->d) > 0) &&
           uv_now(&fx->loop) < deadline) {
        uv_run(&fx->loop, UV_RUN_ONCE);
        uv_update_time(&fx->loop);
    }
    assert_int_equal(fx->seen_count, n);
}

/* Run the loop for ms of real time (to show that nothing else happens). */
static void run_for(fixture *fx, uint64_t ms)
{
    uint64_t deadline;

    uv_update_time(&fx->loop);
    deadline = uv_now(&fx->loop) + ms;
    tr_dispatch_notify(fx->d);
    while (uv_now(&fx->loop) < deadline) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(2000);
        uv_update_time(&fx->loop);
    }
}

static int64_t open_incident(fixture *fx, const char *ns, const char *name, const char *cls)
{
    tr_store_observation obs;
    tr_store_obs_result res;
    char fp[256];
    tr_error err;

    snprintf(fp, sizeof(fp), "k8s/default/%s/Deployment/%s/%s", ns, name, cls);
    memset(&obs, 0, sizeof(obs));
    obs.fingerprint = fp;
    obs.source = "kubernetes";
    obs.cluster = "default";
    obs.namespace = ns;
    obs.kind = "Pod";
    obs.name = "api-7d9f-abcde";
    obs.owner_kind = "Deployment";
    obs.owner_name = name;
    obs.failure_class = cls;
    obs.message = "back-off restarting failed container";
    obs.facts_json = "{\"container\":\"api\",\"exit_code\":1}";
    obs.observed_ms = fx->now;
    assert_int_equal(tr_store_observe(fx->store, &obs, 1800000, fx->now, &res, &err), 0);
    return res.incident_id;
}

static void analyze(fixture *fx, int64_t id, const char *severity)
{
    tr_store_analysis a;
    tr_store_transition t = {.to = TR_INCIDENT_ANALYZED, .event = "incident.analyzed"};
    tr_error err;

    memset(&a, 0, sizeof(a));
    a.incident_id = id;
    a.summary = "The api container exits at start: DATABASE_URL is not set.";
    a.root_cause = "Deployment api lost its DATABASE_URL env var in commit abc123.";
    a.severity = severity;
    a.confidence = 0.85;
    a.evidence_json = "[\"panic: DATABASE_URL not set\"]";
    a.remediation_json = "[\"Restore DATABASE_URL in deploy/api.yaml\"]";
    a.provider = "rules";
    if (tr_store_analysis_put(fx->store, &a, &t, fx->now, NULL, &err) != 0)
        fail_msg("analysis: %s", err.message);
}

static void hmac_hex(const char *body, char out[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0, i;

    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)body, strlen(body),
         mac, &len);
    for (i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

/* ------------------------------------------------------------ tests */

static void test_webhook_gets_signed_incident_then_analysis(void **state)
{
    fixture fx;
    char want[65], header[80];
    cJSON *body, *analysis;
    int64_t id;

    (void)state;
    setup(&fx, NULL);
    id = open_incident(&fx, "shop", "api", "CrashLoopBackOff");
    run_until_seen(&fx, 1);
    assert_string_equal(fx.seen[0].event, "incident.opened");
    assert_int_equal(strlen(fx.seen[0].delivery), 32);
    hmac_hex(fx.seen[0].body, want);
    snprintf(header, sizeof(header), "sha256=%s", want);
    assert_string_equal(fx.seen[0].signature, header);
    body = cJSON_Parse(fx.seen[0].body);
    assert_non_null(body);
    assert_string_equal(cJSON_GetObjectItem(body, "delivery_id")->valuestring, fx.seen[0].delivery);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(body, "incident"), "id")->valueint,
                     (int)id);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(body, "analysis")));
    cJSON_Delete(body);

    analyze(&fx, id, "critical");
    run_until_seen(&fx, 2);
    assert_string_equal(fx.seen[1].event, "incident.analyzed");
    assert_string_not_equal(fx.seen[1].delivery, fx.seen[0].delivery);
    body = cJSON_Parse(fx.seen[1].body);
    analysis = cJSON_GetObjectItem(body, "analysis");
    assert_string_equal(cJSON_GetObjectItem(analysis, "root_cause")->valuestring,
                        "Deployment api lost its DATABASE_URL env var in commit abc123.");
    assert_string_equal(cJSON_GetObjectItem(body, "severity")->valuestring, "critical");
    cJSON_Delete(body);
    assert_true(metric(&fx, "delivered") == 2);
    run_for(&fx, 100);
    assert_int_equal(fx.seen_count, 2); /* nothing delivered twice */
    teardown(&fx);
}

static void test_5xx_retries_with_backoff_and_same_delivery_id(void **state)
{
    fixture fx;

    (void)state;
    setup(&fx, NULL);
    fx.script[0] = 500;
    fx.script_len = 1;
    (void)open_incident(&fx, "shop", "api", "OOMKilled");
    run_until_seen(&fx, 1);
    assert_true(metric(&fx, "retry") == 1);
    run_for(&fx, 100);
    assert_int_equal(fx.seen_count, 1); /* not due yet: the clock has not moved */
    fx.now += 1300;                     /* past the first backoff (1 s ± 20%) */
    run_until_seen(&fx, 2);
    assert_string_equal(fx.seen[1].delivery, fx.seen[0].delivery);
    assert_string_equal(fx.seen[1].body, fx.seen[0].body);
    assert_true(metric(&fx, "delivered") == 1);
    teardown(&fx);
}

static void test_429_retry_after_is_honoured(void **state)
{
    fixture fx;

    (void)state;
    setup(&fx, NULL);
    fx.script[0] = 429;
    fx.script_len = 1;
    fx.retry_after = "30";
    (void)open_incident(&fx, "shop", "api", "OOMKilled");
    run_until_seen(&fx, 1);
    fx.now += 10000; /* well past the backoff, not past Retry-After */
    run_for(&fx, 100);
    assert_int_equal(fx.seen_count, 1);
    fx.now += 21000;
    run_until_seen(&fx, 2);
    assert_string_equal(fx.seen[1].delivery, fx.seen[0].delivery);
    teardown(&fx);
}

static void test_dead_letter_after_max_attempts(void **state)
{
    fixture fx;
    tr_store_delivery_list *dead = NULL;
    tr_metric_family *gauge;
    tr_error err;
    int i;

    (void)state;
    setup(&fx, NULL);
    for (i = 0; i < 3; i++)
        fx.script[i] = 503;
    fx.script_len = 3;
    (void)open_incident(&fx, "shop", "api", "OOMKilled");
    for (i = 1; i <= 3; i++) {
        run_until_seen(&fx, i);
        fx.now += 3600 * 1000;
    }
    run_for(&fx, 100);
    assert_int_equal(fx.seen_count, 3); /* max_attempts = 3, then never again */
    assert_true(metric(&fx, "dead") == 1);
    gauge = tr_metrics_gauge(fx.metrics, "triaged_notify_dead_letters", "x", "sink", NULL);
    assert_true(tr_metric_value(gauge, "hook") == 1);
    assert_int_equal(tr_store_outbox_dead_letters(fx.store, "hook", 0, 10, &dead, &err), 0);
    assert_int_equal(dead->count, 1);
    assert_string_equal(dead->items[0].delivery_id, fx.seen[0].delivery);
    assert_non_null(strstr(dead->items[0].last_error, "HTTP 503"));
    tr_store_delivery_list_free(dead);
    teardown(&fx);
}

static void test_4xx_is_dropped_at_once(void **state)
{
    fixture fx;

    (void)state;
    setup(&fx, NULL);
    fx.script[0] = 410;
    fx.script_len = 1;
    (void)open_incident(&fx, "shop", "api", "OOMKilled");
    run_until_seen(&fx, 1);
    fx.now += 3600 * 1000;
    run_for(&fx, 100);
    assert_int_equal(fx.seen_count, 1);
    assert_true(metric(&fx, "dropped") == 1);
    teardown(&fx);
}

static void test_rate_limit_holds_back_repeats_but_not_state_changes(void **state)
{
    fixture fx;
    tr_store_transition resolve = {.to = TR_INCIDENT_RESOLVED, .event = "incident.resolved"};
    tr_error err;
    int64_t id;

    (void)state;
    setup(&fx, "rate_limit = \"10m\"");
    id = open_incident(&fx, "shop", "api", "CrashLoopBackOff");
    run_until_seen(&fx, 1);
    fx.now += 1000;
    analyze(&fx, id, "error"); /* the first analysis always goes out */
    run_until_seen(&fx, 2);
    fx.now += 1000;
    assert_int_equal(tr_store_outbox_enqueue(fx.store, id, "incident.analyzed", "{\"x\":1}",
                                             fx.now, NULL, &err), 0);
    run_for(&fx, 150);
    assert_int_equal(fx.seen_count, 2); /* a second analysis within 10m is held back */
    assert_true(metric(&fx, "rate_limited") == 1);
    fx.now += 1000;
    assert_int_equal(tr_store_incident_transition(fx.store, id, &resolve, fx.now, &err), 0);
    run_until_seen(&fx, 3);
    assert_string_equal(fx.seen[2].event, "incident.resolved");
    fx.now += 11 * 60 * 1000;
    assert_int_equal(tr_store_outbox_enqueue(fx.store, id, "incident.analyzed", "{\"x\":1}",
                                             fx.now, NULL, &err), 0);
    run_until_seen(&fx, 4); /* after the window it goes out again */
    teardown(&fx);
}

static void test_filters_skip_without_retrying(void **state)
{
    fixture fx;

    (void)state;
    setup(&fx, "namespaces = [\"prod\"]\nmin_severity = \"error\"\nsources = [\"kubernetes\"]");
    (void)open_incident(&fx, "dev", "api", "CrashLoopBackOff");      /* namespace */
    (void)open_incident(&fx, "prod", "web", "FailedScheduling");     /* warning < error */
    (void)open_incident(&fx, "prod", "api", "CrashLoopBackOff");     /* passes */
    run_until_seen(&fx, 1);
    assert_non_null(strstr(fx.seen[0].body, "\"namespace\":\"prod\""));
    assert_non_null(strstr(fx.seen[0].body, "CrashLoopBackOff"));
    fx.now += 3600 * 1000;
    run_for(&fx, 100);
    assert_int_equal(fx.seen_count, 1);
    assert_true(metric(&fx, "skipped") == 2);
    teardown(&fx);
}

static void test_analysis_severity_overrides_class_default(void **state)
{
    fixture fx;
    int64_t id;

    (void)state;
    setup(&fx, "min_severity = \"critical\"");
    id = open_incident(&fx, "prod", "api", "CrashLoopBackOff"); /* error: filtered */
    run_for(&fx, 100);
    assert_int_equal(fx.seen_count, 0);
    analyze(&fx, id, "critical");
    run_until_seen(&fx, 1);
    assert_string_equal(fx.seen[0].event, "incident.analyzed");
    teardown(&fx);
}

/* Killed with a send in flight: after the restart the same delivery id is sent again. */
static void test_restart_mid_flight_delivers_once_by_delivery_id(void **state)
{
    fixture fx;
    tr_error err;
    int i, distinct = 0;

    (void)state;
    setup(&fx, NULL);
    (void)open_incident(&fx, "shop", "api", "OOMKilled");
    (void)open_incident(&fx, "shop", "web", "OOMKilled");
    fx.hold = 1;
    run_for(&fx, 200);
    assert_int_equal(fx.seen_count, 1);
    assert_int_equal(tr_dispatch_in_flight(fx.d), 1);
    /* "kill": the dispatcher and the store go away with the send unanswered */
    close_dispatch(&fx);
    tr_store_close(fx.store);
    (void)tr_http_respond(fx.held, 200, "text/plain", "ok", 2); /* too late: nobody listens */
    fx.held = NULL;
    fx.hold = 0;
    assert_int_equal(tr_store_open(&fx.store, fx.db, &err), 0);
    start_dispatch(&fx);
    run_for(&fx, 100);
    assert_int_equal(fx.seen_count, 2); /* the other message; the leased one waits */
    fx.now += 60 * 1000;                /* past the lease */
    run_until_seen(&fx, 3);
    run_for(&fx, 100);
    assert_int_equal(fx.seen_count, 3);
    for (i = 0; i < fx.seen_count; i++)
        distinct += i == 0 || (strcmp(fx.seen[i].delivery, fx.seen[0].delivery) != 0 &&
                               (i < 2 || strcmp(fx.seen[i].delivery, fx.seen[1].delivery) != 0));
    assert_int_equal(distinct, 2); /* a receiver that drops seen ids got each message once */
    teardown(&fx);
}

/* Committed, never attempted, then restart: delivered exactly once. */
static void test_committed_before_restart_is_delivered_once(void **state)
{
    fixture fx;
    tr_error err;

    (void)state;
    setup(&fx, NULL);
    close_dispatch(&fx);
    (void)open_incident(&fx, "shop", "api", "OOMKilled");
    tr_store_close(fx.store);
    assert_int_equal(tr_store_open(&fx.store, fx.db, &err), 0);
    start_dispatch(&fx);
    run_until_seen(&fx, 1);
    close_dispatch(&fx);
    start_dispatch(&fx);
    run_for(&fx, 150);
    assert_int_equal(fx.seen_count, 1);
    teardown(&fx);
}

static void test_log_sink_prints_one_block(void **state)
{
    fixture fx;
    tr_dispatch_options opt = {0};
    tr_config *cfg = NULL;
    tr_dispatch *d = NULL;
    tr_error err;
    const char *text = "[[notify]]\nkind = \"log\"\nname = \"log\"\n";
    FILE *out = tmpfile();
    char buf[8192];
    size_t n;
    int64_t id;

    (void)state;
    setup(&fx, NULL);
    assert_int_equal(tr_config_load_string(&cfg, text, strlen(text), "t.toml", &err), 0);
    opt.now_ms = fake_now;
    opt.clock_userdata = &fx;
    opt.log_out = out;
    assert_int_equal(tr_dispatch_new_with(&d, &fx.loop, fx.store, fx.http, cfg, NULL, &opt, &err),
                     0);
    id = open_incident(&fx, "shop", "api", "CrashLoopBackOff");
    analyze(&fx, id, "error");
    tr_dispatch_notify(d);
    run_until_seen(&fx, 2); /* the webhook sink too */
    for (n = 0; n < 20; n++)
        uv_run(&fx.loop, UV_RUN_NOWAIT);
    fx.dispatch_closed = 0;
    tr_dispatch_close(d, on_dispatch_closed, &fx);
    while (!fx.dispatch_closed)
        uv_run(&fx.loop, UV_RUN_ONCE);
    rewind(out);
    n = fread(buf, 1, sizeof(buf) - 1, out);
    buf[n] = '\0';
    fclose(out);
    assert_non_null(strstr(buf, "== triaged: New incident #1 (incident.opened) =="));
    assert_non_null(strstr(buf, "ERROR · CrashLoopBackOff · shop/Deployment/api"));
    assert_non_null(strstr(buf, "root cause: Deployment api lost its DATABASE_URL"));
    assert_non_null(strstr(buf, "    - panic: DATABASE_URL not set"));
    tr_config_free(cfg);
    teardown(&fx);
}

static void test_missing_secret_fails_start_naming_the_variable(void **state)
{
    fixture fx;
    tr_dispatch *d = NULL;
    tr_error err;

    (void)state;
    setup(&fx, NULL);
    unsetenv("TEST_HOOK_SECRET");
    assert_int_equal(tr_dispatch_new(&d, &fx.loop, fx.store, fx.http, fx.cfg, NULL, &err),
                     TR_ECONFIG);
    assert_null(d);
    assert_non_null(strstr(err.message, "TEST_HOOK_SECRET"));
    assert_null(strstr(err.message, SECRET));
    teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_webhook_gets_signed_incident_then_analysis),
        cmocka_unit_test(test_5xx_retries_with_backoff_and_same_delivery_id),
        cmocka_unit_test(test_429_retry_after_is_honoured),
        cmocka_unit_test(test_dead_letter_after_max_attempts),
        cmocka_unit_test(test_4xx_is_dropped_at_once),
        cmocka_unit_test(test_rate_limit_holds_back_repeats_but_not_state_changes),
        cmocka_unit_test(test_filters_skip_without_retrying),
        cmocka_unit_test(test_analysis_severity_overrides_class_default),
        cmocka_unit_test(test_restart_mid_flight_delivers_once_by_delivery_id),
        cmocka_unit_test(test_committed_before_restart_is_delivered_once),
        cmocka_unit_test(test_log_sink_prints_one_block),
        cmocka_unit_test(test_missing_secret_fails_start_naming_the_variable),
    };

    TR_RUN_TESTS("dispatch", tests);
}
