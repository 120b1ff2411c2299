#include "testutil.h"

#include <cjson/cJSON.h>
#include <unistd.h>
#include <uv.h>

#include "buf.h"
#include "error.h"
#include "http_client.h"
#include "http_server.h"
#include "store.h"
#include "tf_http.h"

/*
 * One loop runs everything: the daemon's HTTP server with the Terraform routes, a fake HCP
 * Terraform API (HCP is SaaS, so a fake is the only way) on the same server, and the client
 * that sends the requests. Each test ends by asserting uv_loop_close() == 0.
 */

#define FIXTURES "../shared/fixtures/terraform/"
#define HMAC_KEY "s3cr3t-notification-token"
#define TFC_TOKEN "tfc-api-token.atlasv1.xyz"

typedef struct fixture {
    uv_loop_t loop;
    char dir[64], db[128];
    tr_store *store;
    tr_http_server *srv;
    tr_http_client *client;
    tr_tf_http *ctx;
    int port;
    int closed;
    /* last answer */
    int done;
    long status;
    char body[8192];
    /* fake HCP */
    int api_status;        /* what the fake answers for /api/v2/runs (200 or an error) */
    int api_calls;
    int log_saw_token;     /* the log download carried the API token (must not) */
} fixture;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    tr_buf b = TR_BUF_INIT(0);
    char chunk[4096];
    size_t n;

    assert_non_null(f);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(tr_buf_put(&b, chunk, n), 0);
    fclose(f);
    *len = b.len;
    return tr_buf_detach(&b);
}

/* ------------------------------------------------------------ fake HCP Terraform */

static void fake_run(tr_http_req *req, void *userdata)
{
    fixture *fx = userdata;
    const char *auth = tr_http_req_header(req, "Authorization");
    char body[1024];

    fx->api_calls++;
    if (auth == NULL || strcmp(auth, "Bearer " TFC_TOKEN) != 0) {
        (void)tr_http_respond_error(req, 401, "unauthorized", NULL);
        return;
    }
    if (fx->api_status != 200) {
        (void)tr_http_respond_error(req, fx->api_status, "not found", NULL);
        return;
    }
    snprintf(body, sizeof(body),
             "{\"data\":{\"id\":\"%s\",\"type\":\"runs\",\"attributes\":{\"status\":\"errored\"},"
             "\"relationships\":{\"plan\":{\"data\":{\"id\":\"plan-1\",\"type\":\"plans\"}},"
             "\"apply\":{\"data\":{\"id\":\"apply-1\",\"type\":\"applies\"}}}}}",
             tr_http_req_param(req, "id"));
    (void)tr_http_respond(req, 200, "application/vnd.api+json", body, strlen(body));
}

static void fake_apply(tr_http_req *req, void *userdata)
{
    fixture *fx = userdata;
    char body[1024];

    fx->api_calls++;
    snprintf(body, sizeof(body),
             "{\"data\":{\"id\":\"apply-1\",\"type\":\"applies\",\"attributes\":{\"status\":"
             "\"errored\",\"log-read-url\":\"http://127.0.0.1:%d/archivist/apply-1\"}}}",
             fx->port);
    (void)tr_http_respond(req, 200, "application/vnd.api+json", body, strlen(body));
}

static void fake_log(tr_http_req *req, void *userdata)
{
    fixture *fx = userdata;
    size_t len;
    char *log = slurp(FIXTURES "provisioner/apply.jsonl", &len);

    fx->log_saw_token = tr_http_req_header(req, "Authorization") != NULL;
    (void)tr_http_respond(req, 200, "text/plain", log, len);
    tr_free(log);
}

/* ------------------------------------------------------------ plumbing */

static void start(fixture *fx, const char *api_token, int with_tfc)
{
    tr_http_server_options sopt = {.max_body_bytes = 8 * 1024 * 1024};
    tr_tf_http_options opt;
    char base[64];
    tr_error err;

    memset(fx, 0, sizeof(*fx));
    fx->api_status = 200;
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_tf_http.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->db, sizeof(fx->db), "%s/triaged.db", fx->dir);
    assert_int_equal(tr_store_open(&fx->store, fx->db, &err), 0);
    assert_int_equal(tr_http_server_new(&fx->srv, &fx->loop, &sopt, &err), 0);
    assert_int_equal(tr_http_server_listen(fx->srv, "127.0.0.1:0", &err), 0);
    fx->port = tr_http_server_port(fx->srv);
    assert_int_equal(tr_http_client_new(&fx->client, &fx->loop, &err), 0);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", fx->port);
    memset(&opt, 0, sizeof(opt));
    opt.ingest.store = fx->store;
    opt.ingest.dedup_window_ms = 1800 * 1000;
    opt.api_token = api_token;
    opt.hmac_key = HMAC_KEY;
    opt.client = fx->client;
    opt.tfc_token = with_tfc ? TFC_TOKEN : NULL;
    opt.tfc_base_url = base;
    assert_int_equal(tr_tf_http_new(&fx->ctx, &opt, &err), 0);
    assert_int_equal(tr_tf_http_register(fx->srv, fx->ctx, &err), 0);
    assert_int_equal(tr_http_server_route(fx->srv, "GET", "/api/v2/runs/{id}", fake_run, fx), 0);
    assert_int_equal(tr_http_server_route(fx->srv, "GET", "/api/v2/applies/{id}", fake_apply, fx),
                     0);
    assert_int_equal(tr_http_server_route(fx->srv, "GET", "/archivist/{id}", fake_log, fx), 0);
}

static void on_server_closed(tr_http_server *srv, void *userdata)
{
    ((fixture *)userdata)->closed = 1;
}

static void stop(fixture *fx)
{
    char path[256];

    tr_http_client_free(fx->client);
    tr_http_server_close(fx->srv, on_server_closed, fx);
    while (!fx->closed)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    tr_http_server_free(fx->srv);
    tr_tf_http_free(fx->ctx);
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
    size_t n = resp->body_len < sizeof(fx->body) - 1 ? resp->body_len : sizeof(fx->body) - 1;

    assert_int_equal(resp->result, TR_OK);
    fx->status = resp->status;
    memcpy(fx->body, resp->body, n);
    fx->body[n] = '\0';
    fx->done = 1;
}

/* POST path with headers (NULL-terminated) and body; waits for the answer; returns status. */
static long post(fixture *fx, const char *path, const char *const *headers, const char *body,
                 size_t len)
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
    req.body_len = len;
    req.timeout_ms = 10000;
    req.on_done = on_done;
    req.userdata = fx;
    fx->done = 0;
    assert_int_equal(tr_http_client_send(fx->client, &req, NULL, &err), 0);
    while (!fx->done)
        uv_run(&fx->loop, UV_RUN_ONCE);
    return fx->status;
}

static long post_file(fixture *fx, const char *path, const char *const *headers,
                      const char *file)
{
    size_t len;
    char *body = slurp(file, &len);
    long status = post(fx, path, headers, body, len);

    tr_free(body);
    return status;
}

/* The incident named by the last answer's incident_id; caller frees. */
static tr_store_incident *answered_incident(fixture *fx)
{
    cJSON *doc = cJSON_Parse(fx->body);
    const cJSON *id = cJSON_GetObjectItem(doc, "incident_id");
    tr_store_incident *inc = NULL;
    tr_error err;

    assert_true(cJSON_IsNumber(id));
    assert_int_equal(tr_store_incident_get(fx->store, (int64_t)id->valuedouble, &inc, &err), 0);
    cJSON_Delete(doc);
    return inc;
}

static long post_hook(fixture *fx, const char *body, size_t len, const char *signature)
{
    char header[200];
    const char *headers[3] = {"Content-Type: application/json", NULL, NULL};

    if (signature) {
        snprintf(header, sizeof(header), "X-TFE-Notification-Signature: %s", signature);
        headers[1] = header;
    }
    return post(fx, "/hooks/terraform-cloud", headers, body, len);
}

/* ------------------------------------------------------------ tests */

static void test_runs_endpoint_turns_each_fixture_into_an_incident(void **state)
{
    static const struct {
        const char *file, *summary;
    } cases[] = {
        {"validation/apply.jsonl", "Invalid value for variable"},
        {"provisioner/apply.jsonl", "local-exec provisioner error"},
        {"syntax/init.jsonl", "Invalid expression"},
        {"provider/init.jsonl", "Failed to query available provider packages"},
        {"module/apply.jsonl", "Resource precondition failed"},
        {"reference/apply.jsonl", "Reference to undeclared input variable"},
    };
    const char *headers[] = {"X-Triaged-Workspace: from-header", "X-Triaged-Commit: 1234abc",
                             NULL};
    fixture fx;
    size_t i;

    start(&fx, NULL, 0);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char file[256];
        tr_store_incident *inc;

        snprintf(file, sizeof(file), FIXTURES "%s", cases[i].file);
        assert_int_equal(post_file(&fx, "/v1/terraform/runs?workspace=prod&repo_path=infra%2Fprod"
                                        "&operation=apply",
                                   headers, file),
                         202);
        inc = answered_incident(&fx);
        assert_string_equal(inc->source, "terraform");
        assert_string_equal(inc->namespace, "prod"); /* the query wins over the header */
        assert_non_null(strstr(inc->message, cases[i].summary));
        assert_non_null(strstr(inc->facts_json, "\"commit\":\"1234abc\""));
        assert_non_null(strstr(inc->facts_json, "\"repo_path\":\"infra/prod\""));
        tr_store_incident_free(inc);
    }
    /* Header only, no query. */
    assert_int_equal(post_file(&fx, "/v1/terraform/runs", headers,
                               FIXTURES "reference/apply.jsonl"),
                     202);
    {
        tr_store_incident *inc = answered_incident(&fx);
        assert_string_equal(inc->namespace, "from-header");
        assert_string_equal(inc->failure_class, "TerraformPlanFailed");
        tr_store_incident_free(inc);
    }
    stop(&fx);
}

static void test_runs_endpoint_success_empty_and_garbage(void **state)
{
    fixture fx;

    start(&fx, NULL, 0);
    assert_int_equal(post_file(&fx, "/v1/terraform/runs?workspace=gcp", NULL,
                               FIXTURES "terraform-1.8.0-apply-json-gcp.jsonl"),
                     200);
    assert_non_null(strstr(fx.body, "\"result\":\"no failure\""));
    assert_non_null(strstr(fx.body, "\"verdict\":\"succeeded\""));
    assert_int_equal(post(&fx, "/v1/terraform/runs", NULL, "", 0), 400);
    assert_non_null(strstr(fx.body, "empty body"));
    assert_int_equal(post(&fx, "/v1/terraform/runs", NULL, "Error: nope\n", 12), 400);
    assert_non_null(strstr(fx.body, "not a terraform -json log"));
    stop(&fx);
}

static void test_runs_endpoint_needs_the_api_token(void **state)
{
    const char *good[] = {"Authorization: Bearer tok-123", NULL};
    const char *bad[] = {"Authorization: Bearer tok-124", NULL};
    fixture fx;

    start(&fx, "tok-123", 0);
    assert_int_equal(post_file(&fx, "/v1/terraform/runs", NULL, FIXTURES "syntax/init.jsonl"),
                     401);
    assert_int_equal(post_file(&fx, "/v1/terraform/runs", bad, FIXTURES "syntax/init.jsonl"), 401);
    assert_int_equal(post_file(&fx, "/v1/terraform/runs", good, FIXTURES "syntax/init.jsonl"),
                     202);
    stop(&fx);
}

static void test_hook_signatures(void **state)
{
    size_t len;
    char *body = slurp(FIXTURES "tfbuddy-NotificationVerificationPayload.json", &len);
    char sig[129], upper[129];
    fixture fx;
    size_t i;

    start(&fx, "tok-123", 0);
    assert_int_equal(tr_tf_http_signature(HMAC_KEY, body, len, sig), 0);
    assert_int_equal(post_hook(&fx, body, len, sig), 200);
    assert_non_null(strstr(fx.body, "verified"));
    /* Hex case does not matter; the hook is not under /v1, so no bearer token is needed. */
    for (i = 0; i < 129; i++)
        upper[i] = (char)(sig[i] >= 'a' && sig[i] <= 'f' ? sig[i] - 'a' + 'A' : sig[i]);
    assert_int_equal(post_hook(&fx, body, len, upper), 200);
    assert_int_equal(post_hook(&fx, body, len, NULL), 401);
    assert_int_equal(post_hook(&fx, body, len, "deadbeef"), 401);
    assert_int_equal(tr_tf_http_signature("another key", body, len, upper), 0);
    assert_int_equal(post_hook(&fx, body, len, upper), 401);
    /* The same signature replayed on a body with one byte changed. */
    body[len / 2] ^= 1;
    assert_int_equal(post_hook(&fx, body, len, sig), 401);
    assert_non_null(strstr(fx.body, "bad signature"));
    tr_free(body);
    stop(&fx);
}

static void test_hook_run_errored_without_api_token(void **state)
{
    size_t len;
    char *body = slurp(FIXTURES "tfbuddy-NotificationRunErroredPayload.json", &len);
    char sig[129];
    tr_store_incident *inc;
    fixture fx;

    start(&fx, NULL, 0);
    assert_int_equal(tr_tf_http_signature(HMAC_KEY, body, len, sig), 0);
    assert_int_equal(post_hook(&fx, body, len, sig), 202);
    inc = answered_incident(&fx);
    assert_string_equal(inc->failure_class, "TerraformRunErrored");
    assert_string_equal(inc->namespace, "service-tfbuddy-dev");
    assert_string_equal(inc->name, "run-TCmduqLvvFw7WWmC");
    assert_non_null(strstr(inc->facts_json, "https://app.terraform.io/app/zapier/service-tfbuddy-"
                                            "dev/runs/run-TCmduqLvvFw7WWmC"));
    assert_non_null(strstr(inc->message, "Run Errored"));
    tr_store_incident_free(inc);
    tr_free(body);

    body = slurp(FIXTURES "tfc-notification-run-errored-canceled.json", &len);
    assert_int_equal(tr_tf_http_signature(HMAC_KEY, body, len, sig), 0);
    assert_int_equal(post_hook(&fx, body, len, sig), 200);
    assert_non_null(strstr(fx.body, "canceled"));
    tr_free(body);
    stop(&fx);
}

static void wait_fetches(fixture *fx)
{
    while (tr_tf_http_fetches(fx->ctx) > 0)
        uv_run(&fx->loop, UV_RUN_ONCE);
}

static void test_hook_run_errored_fetches_the_log_from_hcp(void **state)
{
    size_t len;
    char *body = slurp(FIXTURES "tfbuddy-NotificationRunErroredPayload.json", &len);
    tr_store_incident_list *list = NULL;
    char sig[129];
    tr_error err;
    fixture fx;

    start(&fx, NULL, 1);
    assert_int_equal(tr_tf_http_signature(HMAC_KEY, body, len, sig), 0);
    assert_int_equal(post_hook(&fx, body, len, sig), 202);
    assert_non_null(strstr(fx.body, "fetching run log"));
    wait_fetches(&fx);
    assert_int_equal(fx.api_calls, 2);
    assert_false(fx.log_saw_token);
    assert_int_equal(tr_store_incident_list_get(fx.store, NULL, &list, &err), 0);
    assert_int_equal(list->count, 1);
    assert_string_equal(list->items[0].failure_class, "TerraformApplyFailed");
    assert_string_equal(list->items[0].name, "terraform_data.migrate");
    assert_string_equal(list->items[0].namespace, "service-tfbuddy-dev");
    assert_non_null(strstr(list->items[0].facts_json, "\"run_id\":\"run-TCmduqLvvFw7WWmC\""));
    assert_non_null(strstr(list->items[0].facts_json, "relation \\\"orders\\\" does not exist"));
    tr_store_incident_list_free(list);

    /* The API fails: the run is still recorded, as errored, saying why. */
    fx.api_status = 404;
    assert_int_equal(post_hook(&fx, body, len, sig), 202);
    wait_fetches(&fx);
    assert_int_equal(tr_store_incident_list_get(fx.store, NULL, &list, &err), 0);
    assert_int_equal(list->count, 2);
    assert_string_equal(list->items[0].failure_class, "TerraformRunErrored");
    assert_non_null(strstr(list->items[0].message, "log not read"));
    assert_non_null(strstr(list->items[0].message, "404"));
    tr_store_incident_list_free(list);
    tr_free(body);
    stop(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_endpoint_turns_each_fixture_into_an_incident),
        cmocka_unit_test(test_runs_endpoint_success_empty_and_garbage),
        cmocka_unit_test(test_runs_endpoint_needs_the_api_token),
        cmocka_unit_test(test_hook_signatures),
        cmocka_unit_test(test_hook_run_errored_without_api_token),
        cmocka_unit_test(test_hook_run_errored_fetches_the_log_from_hcp),
    };
    TR_RUN_TESTS("tf_http", tests);
}
