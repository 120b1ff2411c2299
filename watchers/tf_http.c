#include "tf_http.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "api.h"
#include "log.h"
#include "tf_hcp.h"

#define MODULE "terraform"
#define JSON_TYPE "application/json"
/* Workspace, commit, ... from a request: names, not documents. */
#define META_MAX 512

struct tr_tf_http {
    tr_tf_http_options opt;
    char *api_token;
    char *hmac_key;
    tr_tf_hcp *hcp; /* NULL when no API token */
};

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tr_tf_http_signature(const char *key, const char *body, size_t len, char out[129])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0, i;

    if (HMAC(EVP_sha512(), key, (int)strlen(key), (const unsigned char *)body, len, mac,
             &mac_len) == NULL || mac_len != 64)
        return TR_ERROR;
    for (i = 0; i < mac_len; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[128] = '\0';
    OPENSSL_cleanse(mac, sizeof(mac));
    return 0;
}

/* A run field from ?name= or the X-Triaged-* header; NULL when absent. */
static const char *run_field(tr_http_req *req, const char *query, const char *header)
{
    const char *v = tr_http_req_query(req, query);

    if (v == NULL || *v == '\0')
        v = tr_http_req_header(req, header);
    return v && *v ? v : NULL;
}

static void answer_result(tr_http_req *req, const tr_tf_result *res,
                          const tr_tf_ingest_outcome *out)
{
    cJSON *root = cJSON_CreateObject();
    const tr_tf_diagnostic *first = tr_tf_first_error(res);

    if (out->failed) {
        cJSON_AddNumberToObject(root, "incident_id", (double)out->incident_id);
        cJSON_AddStringToObject(root, "failure_class", tr_tf_failure_class(res));
        cJSON_AddStringToObject(root, "outcome", out->obs_outcome == TR_OBS_CREATED ? "created"
                                                 : out->obs_outcome == TR_OBS_REOPENED
                                                     ? "reopened"
                                                     : "updated");
        if (first && first->summary)
            cJSON_AddStringToObject(root, "summary", first->summary);
    } else {
        cJSON_AddStringToObject(root, "result", "no failure");
        cJSON_AddStringToObject(root, "verdict", res->outcome == TR_TF_SUCCEEDED
                                                     ? "succeeded" : "no verdict");
        cJSON_AddNumberToObject(root, "resolved", (double)out->resolved);
    }
    cJSON_AddStringToObject(root, "operation", tr_tf_operation_name(res->operation));
    cJSON_AddNumberToObject(root, "errors", (double)res->error_count);
    cJSON_AddNumberToObject(root, "warnings", (double)res->warning_count);
    cJSON_AddNumberToObject(root, "skipped_lines", (double)res->skipped_lines);
    tr_api_respond_json(req, out->failed ? 202 : 200, root);
}

static void on_runs(tr_http_req *req, void *userdata)
{
    tr_tf_http *ctx = userdata;
    tr_tf_log_options opt = ctx->opt.log_options;
    tr_tf_result *res = NULL;
    tr_tf_ingest_outcome out;
    tr_tf_meta meta;
    const char *body, *op;
    size_t len;
    tr_error err;

    if (!tr_api_authorized(req, ctx->api_token))
        return;
    body = tr_http_req_body(req, &len);
    if (len == 0) {
        (void)tr_http_respond_error(req, 400, "empty body",
                                    "send the output of `terraform init|plan|apply -json` as "
                                    "the request body");
        return;
    }
    memset(&meta, 0, sizeof(meta));
    meta.workspace = run_field(req, "workspace", "X-Triaged-Workspace");
    meta.repo_path = run_field(req, "repo_path", "X-Triaged-Repo-Path");
    meta.commit = run_field(req, "commit", "X-Triaged-Commit");
    meta.run_id = run_field(req, "run_id", "X-Triaged-Run-Id");
    meta.run_url = run_field(req, "run_url", "X-Triaged-Run-Url");
    meta.source_ref = "POST /v1/terraform/runs";
    op = run_field(req, "operation", "X-Triaged-Operation");
    if ((meta.workspace && strlen(meta.workspace) > META_MAX) ||
        (meta.repo_path && strlen(meta.repo_path) > META_MAX) ||
        (meta.commit && strlen(meta.commit) > META_MAX) ||
        (meta.run_id && strlen(meta.run_id) > META_MAX) ||
        (meta.run_url && strlen(meta.run_url) > META_MAX)) {
        (void)tr_http_respond_error(req, 400, "run field too long", "at most 512 bytes each");
        return;
    }
    opt.operation_hint = tr_tf_operation_guess(op);
    if (tr_tf_log_parse(&res, body, len, &opt, &err) != 0) {
        (void)tr_http_respond_error(req, err.code == TR_ENOMEM ? 500 : 400,
                                    "not a terraform -json log", err.message);
        return;
    }
    if (tr_tf_ingest_result(&ctx->opt.ingest, res, &meta, wall_ms(), &out, &err) != 0)
        (void)tr_http_respond_error(req, 500, "store error", err.message);
    else
        answer_result(req, res, &out);
    tr_tf_result_free(res);
}

/* 1 when the signature header is the HMAC of the body; constant time. */
static int signature_ok(tr_tf_http *ctx, tr_http_req *req, const char *body, size_t len)
{
    const char *got = tr_http_req_header(req, "X-TFE-Notification-Signature");
    char want[129], norm[129];
    size_t i;
    int ok;

    if (got == NULL || strlen(got) != 128)
        return 0;
    for (i = 0; i < 128; i++)
        norm[i] = (got[i] >= 'A' && got[i] <= 'F') ? (char)(got[i] - 'A' + 'a') : got[i];
    norm[128] = '\0';
    if (tr_tf_http_signature(ctx->hmac_key, body, len, want) != 0)
        return 0;
    ok = CRYPTO_memcmp(norm, want, 128) == 0;
    OPENSSL_cleanse(want, sizeof(want));
    return ok;
}

static const char *str_item(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) && *v->valuestring ? v->valuestring : NULL;
}

static void answer(tr_http_req *req, int status, const char *result, const char *detail)
{
    cJSON *root = cJSON_CreateObject();

    cJSON_AddStringToObject(root, "result", result);
    if (detail)
        cJSON_AddStringToObject(root, "detail", detail);
    tr_api_respond_json(req, status, root);
}

static void on_run_errored(tr_tf_http *ctx, tr_http_req *req, const cJSON *doc,
                           const cJSON *note)
{
    const char *status = str_item(note, "run_status");
    tr_tf_ingest_outcome out;
    tr_tf_meta meta;
    char message[1024];
    tr_error err;
    cJSON *root;

    /* run:errored also fires for cancelled runs: a person did that, nothing failed. */
    if (status && strstr(status, "canceled")) {
        answer(req, 200, "ignored", "run canceled");
        return;
    }
    memset(&meta, 0, sizeof(meta));
    meta.workspace = str_item(doc, "workspace_name");
    meta.run_id = str_item(doc, "run_id");
    meta.run_url = str_item(doc, "run_url");
    meta.source_ref = meta.run_url ? meta.run_url : "POST /hooks/terraform-cloud";
    snprintf(message, sizeof(message), "%s%s%.400s", str_item(note, "message") ? str_item(note,
             "message") : "Run errored", str_item(doc, "run_message") ? ": " : "",
             str_item(doc, "run_message") ? str_item(doc, "run_message") : "");
    message[strcspn(message, "\n")] = '\0';
    if (ctx->hcp && tr_tf_hcp_fetch_run(ctx->hcp, &meta, message, &err) == 0) {
        answer(req, 202, "fetching run log", meta.run_id);
        return;
    }
    if (ctx->hcp)
        tr_log_warn(MODULE, "run %s: %s", meta.run_id ? meta.run_id : "?", err.message);
    if (tr_tf_ingest_run_errored(&ctx->opt.ingest, &meta, message, wall_ms(), &out, &err) != 0) {
        (void)tr_http_respond_error(req, 500, "store error", err.message);
        return;
    }
    root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "incident_id", (double)out.incident_id);
    cJSON_AddStringToObject(root, "failure_class", "TerraformRunErrored");
    tr_api_respond_json(req, 202, root);
}

static void on_hook(tr_http_req *req, void *userdata)
{
    tr_tf_http *ctx = userdata;
    const cJSON *version, *note;
    const char *body, *trigger, *status;
    size_t len, resolved = 0;
    tr_error err;
    cJSON *doc;

    body = tr_http_req_body(req, &len);
    if (!signature_ok(ctx, req, body, len)) {
        tr_log_warn(MODULE, "refused a terraform-cloud notification: bad or missing signature");
        (void)tr_http_respond_error(req, 401, "bad signature",
                                    "X-TFE-Notification-Signature must be the hex HMAC-SHA512 "
                                    "of the body with the notification token");
        return;
    }
    doc = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        (void)tr_http_respond_error(req, 400, "bad notification", "the body is not a JSON object");
        return;
    }
    version = cJSON_GetObjectItemCaseSensitive(doc, "payload_version");
    /* Run notifications are version 1 (a number); workspace and assessment ones "2". */
    if (!((cJSON_IsNumber(version) && version->valueint == 1) ||
          (cJSON_IsString(version) && strcmp(version->valuestring, "1") == 0))) {
        answer(req, 200, "ignored", "not a run notification");
        cJSON_Delete(doc);
        return;
    }
    note = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "notifications"), 0);
    trigger = str_item(note, "trigger");
    status = str_item(note, "run_status");
    if (trigger && strcmp(trigger, "verification") == 0) {
        answer(req, 200, "verified", NULL);
    } else if (trigger && strcmp(trigger, "run:errored") == 0) {
        on_run_errored(ctx, req, doc, note);
    } else if (trigger && strcmp(trigger, "run:completed") == 0 && status &&
               (strcmp(status, "applied") == 0 || strcmp(status, "planned_and_finished") == 0)) {
        if (tr_tf_ingest_resolve(&ctx->opt.ingest, str_item(doc, "workspace_name")
                                     ? str_item(doc, "workspace_name") : "default",
                                 NULL, wall_ms(), &resolved, &err) != 0) {
            (void)tr_http_respond_error(req, 500, "store error", err.message);
        } else {
            cJSON *root = cJSON_CreateObject();
            cJSON_AddStringToObject(root, "result", "resolved");
            cJSON_AddNumberToObject(root, "resolved", (double)resolved);
            tr_api_respond_json(req, 200, root);
        }
    } else {
        answer(req, 200, "ignored", trigger ? trigger : "no trigger");
    }
    cJSON_Delete(doc);
}

int tr_tf_http_new(tr_tf_http **out, const tr_tf_http_options *options, tr_error *err)
{
    tr_tf_http *ctx;
    int rc;

    *out = NULL;
    if (options->ingest.store == NULL)
        return tr_error_set(err, TR_EINVAL, "terraform: no store");
    ctx = tr_calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    ctx->opt = *options;
    if ((options->api_token && (ctx->api_token = tr_strdup(options->api_token)) == NULL) ||
        (options->hmac_key && *options->hmac_key &&
         (ctx->hmac_key = tr_strdup(options->hmac_key)) == NULL)) {
        tr_tf_http_free(ctx);
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    }
    if (options->tfc_token && *options->tfc_token) {
        tr_tf_hcp_options hopt;
        memset(&hopt, 0, sizeof(hopt));
        hopt.client = options->client;
        hopt.ingest = &ctx->opt.ingest;
        hopt.base_url = options->tfc_base_url;
        hopt.token = options->tfc_token;
        hopt.log_options = options->log_options;
        if ((rc = tr_tf_hcp_new(&ctx->hcp, &hopt, err)) != 0) {
            tr_tf_http_free(ctx);
            return rc;
        }
    }
    ctx->opt.api_token = ctx->opt.hmac_key = ctx->opt.tfc_token = NULL;
    *out = ctx;
    return 0;
}

int tr_tf_http_register(tr_http_server *srv, tr_tf_http *ctx, tr_error *err)
{
    int rc = tr_http_server_route(srv, "POST", "/v1/terraform/runs", on_runs, ctx);

    /* A run log is routinely bigger than any other request the API takes. */
    if (rc == 0 && ctx->opt.max_log_bytes > 0)
        rc = tr_http_server_body_limit(srv, "/v1/terraform/runs", ctx->opt.max_log_bytes);
    if (rc == 0 && ctx->hmac_key)
        rc = tr_http_server_route(srv, "POST", "/hooks/terraform-cloud", on_hook, ctx);
    if (rc != 0)
        return tr_error_set(err, rc, "terraform: cannot register routes: %s", tr_strerror(rc));
    return 0;
}

size_t tr_tf_http_fetches(const tr_tf_http *ctx)
{
    return ctx ? tr_tf_hcp_active(ctx->hcp) : 0;
}

void tr_tf_http_free(tr_tf_http *ctx)
{
    if (ctx == NULL)
        return;
    tr_tf_hcp_free(ctx->hcp);
    if (ctx->api_token)
        OPENSSL_cleanse(ctx->api_token, strlen(ctx->api_token));
    if (ctx->hmac_key)
        OPENSSL_cleanse(ctx->hmac_key, strlen(ctx->hmac_key));
    tr_free(ctx->api_token);
    tr_free(ctx->hmac_key);
    tr_free(ctx);
}
