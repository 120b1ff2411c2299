#include "tf_hcp.h"

#include <cjson/cJSON.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "buf.h"
#include "log.h"

#define MODULE "terraform"
#define DEFAULT_BASE_URL "https://app.terraform.io"
#define DEFAULT_MAX_LOG ((size_t)16 * 1024 * 1024)
#define DEFAULT_MAX_FETCHES 8
#define DEFAULT_TIMEOUT_MS 60000
#define API_MAX_BODY ((size_t)1024 * 1024)

enum step { STEP_RUN, STEP_APPLY, STEP_PLAN, STEP_LOG };

typedef struct fetch {
    tr_tf_hcp *hcp;       /* NULL once tr_tf_hcp_free() orphaned the fetch */
    struct fetch *next;
    char *workspace, *run_id, *run_url, *message, *source_ref;
    char *plan_id, *apply_id;
    int step;
    tr_tf_log *log;
} fetch;

struct tr_tf_hcp {
    tr_tf_hcp_options opt;
    char *base_url;
    char *auth_header;    /* "Authorization: Bearer ..." */
    fetch *fetches;
    size_t active;
};

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* HCP ids are "run-XXXX", "plan-XXXX": anything else must not reach a URL path. */
static int id_ok(const char *id)
{
    size_t i;

    if (id == NULL || *id == '\0' || strlen(id) > 64)
        return 0;
    for (i = 0; id[i]; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

static void fetch_free(fetch *f)
{
    if (f == NULL)
        return;
    tr_free(f->workspace);
    tr_free(f->run_id);
    tr_free(f->run_url);
    tr_free(f->message);
    tr_free(f->source_ref);
    tr_free(f->plan_id);
    tr_free(f->apply_id);
    tr_tf_log_free(f->log);
    tr_free(f);
}

static void fetch_end(fetch *f)
{
    tr_tf_hcp *hcp = f->hcp;
    fetch **pp;

    if (hcp) {
        for (pp = &hcp->fetches; *pp; pp = &(*pp)->next) {
            if (*pp == f) {
                *pp = f->next;
                break;
            }
        }
        hcp->active--;
    }
    fetch_free(f);
}

static tr_tf_meta fetch_meta(const fetch *f)
{
    tr_tf_meta meta = {.workspace = f->workspace, .run_id = f->run_id, .run_url = f->run_url,
                       .source_ref = f->source_ref};
    return meta;
}

/* The log could not be used: record the run as errored, saying why. */
static void fetch_fail(fetch *f, const char *why)
{
    tr_tf_meta meta = fetch_meta(f);
    tr_buf msg = TR_BUF_INIT(8192);
    tr_error err;

    tr_log_warn(MODULE, "run %s: log not read: %s", f->run_id, why);
    if (tr_buf_printf(&msg, "%s (log not read: %s)", f->message ? f->message : "Run errored",
                      why) != 0)
        tr_buf_clear(&msg);
    if (tr_tf_ingest_run_errored(f->hcp->opt.ingest, &meta, msg.ptr, wall_ms(), NULL, &err) != 0)
        tr_log_error(MODULE, "run %s: %s", f->run_id, err.message);
    tr_buf_dispose(&msg);
    fetch_end(f);
}

static void on_api_done(const tr_http_response *resp, void *userdata);

static int on_log_data(tr_http_call *call, const char *data, size_t len, void *userdata)
{
    fetch *f = userdata;

    if (f->hcp == NULL)
        return 1;
    return tr_tf_log_feed(f->log, data, len) == 0 ? 0 : 1;
}

static int send_get(fetch *f, const char *url, int with_token, tr_error *err)
{
    tr_tf_hcp *hcp = f->hcp;
    const char *headers[3] = {hcp->auth_header, "Content-Type: application/vnd.api+json", NULL};
    tr_http_request req;

    memset(&req, 0, sizeof(req));
    req.method = TR_HTTP_GET;
    req.url = url;
    req.headers = with_token ? headers : NULL;
    req.timeout_ms = hcp->opt.timeout_ms;
    req.max_response_bytes = f->step == STEP_LOG ? hcp->opt.max_log_bytes : API_MAX_BODY;
    req.on_data = f->step == STEP_LOG ? on_log_data : NULL;
    req.on_done = on_api_done;
    req.userdata = f;
    return tr_http_client_send(hcp->opt.client, &req, NULL, err);
}

/* GET {base}/api/v2/{kind}/{id}. */
static int get_api(fetch *f, int step, const char *kind, const char *id)
{
    tr_buf url = TR_BUF_INIT(4096);
    tr_error err;
    int rc;

    f->step = step;
    rc = tr_buf_printf(&url, "%s/api/v2/%s/%s", f->hcp->base_url, kind, id);
    if (rc == 0)
        rc = send_get(f, url.ptr, 1, &err);
    tr_buf_dispose(&url);
    return rc;
}

static const char *relationship_id(const cJSON *data, const char *name)
{
    const cJSON *rel = cJSON_GetObjectItemCaseSensitive(data, "relationships");
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(rel, name);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(item, "data"), "id");
    return cJSON_IsString(id) ? id->valuestring : NULL;
}

static const char *attribute(const cJSON *data, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(data, "attributes"), name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void start_log(fetch *f, const char *url)
{
    tr_error err;

    if (url == NULL || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)) {
        fetch_fail(f, "no log-read-url");
        return;
    }
    f->step = STEP_LOG;
    if (tr_tf_log_new(&f->log, &f->hcp->opt.log_options) != 0 || send_get(f, url, 0, &err) != 0)
        fetch_fail(f, "cannot start the log download");
}

static void next_step(fetch *f, const cJSON *data)
{
    const char *status = attribute(data, "status");

    switch (f->step) {
    case STEP_RUN:
        f->plan_id = tr_strdup(relationship_id(data, "plan"));
        f->apply_id = tr_strdup(relationship_id(data, "apply"));
        if (id_ok(f->apply_id)) {
            if (get_api(f, STEP_APPLY, "applies", f->apply_id) != 0)
                fetch_fail(f, "cannot request the apply");
        } else if (id_ok(f->plan_id)) {
            if (get_api(f, STEP_PLAN, "plans", f->plan_id) != 0)
                fetch_fail(f, "cannot request the plan");
        } else {
            fetch_fail(f, "the run has no plan");
        }
        return;
    case STEP_APPLY:
        /* An apply that never ran ("unreachable", "canceled") means the plan failed. */
        if (status && strcmp(status, "errored") == 0) {
            start_log(f, attribute(data, "log-read-url"));
        } else if (id_ok(f->plan_id)) {
            if (get_api(f, STEP_PLAN, "plans", f->plan_id) != 0)
                fetch_fail(f, "cannot request the plan");
        } else {
            fetch_fail(f, "the run has no plan");
        }
        return;
    default:
        start_log(f, attribute(data, "log-read-url"));
        return;
    }
}

static void log_done(fetch *f)
{
    tr_tf_meta meta = fetch_meta(f);
    tr_tf_result *res = NULL;
    tr_error err;

    if (tr_tf_log_finish(f->log, &res, &err) != 0) {
        fetch_fail(f, err.message);
        return;
    }
    if (res->outcome != TR_TF_FAILED) {
        tr_tf_result_free(res);
        fetch_fail(f, "the log shows no error diagnostic");
        return;
    }
    if (tr_tf_ingest_result(f->hcp->opt.ingest, res, &meta, wall_ms(), NULL, &err) != 0)
        tr_log_error(MODULE, "run %s: %s", f->run_id, err.message);
    tr_tf_result_free(res);
    fetch_end(f);
}

static void on_api_done(const tr_http_response *resp, void *userdata)
{
    fetch *f = userdata;
    char why[512];
    cJSON *doc;

    if (f->hcp == NULL) {
        fetch_free(f);
        return;
    }
    /* A log cut at its cap is still worth parsing: the first errors are in it. */
    if (f->step == STEP_LOG && resp->result == TR_ETOOBIG) {
        log_done(f);
        return;
    }
    if (resp->result != TR_OK || resp->status != 200) {
        if (resp->result != TR_OK)
            snprintf(why, sizeof(why), "HCP Terraform API: %s", resp->message);
        else
            snprintf(why, sizeof(why), "HCP Terraform API answered %ld", resp->status);
        fetch_fail(f, why);
        return;
    }
    if (f->step == STEP_LOG) {
        log_done(f);
        return;
    }
    doc = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(doc, "data"))) {
        cJSON_Delete(doc);
        fetch_fail(f, "HCP Terraform API answered something other than a JSON:API document");
        return;
    }
    next_step(f, cJSON_GetObjectItemCaseSensitive(doc, "data"));
    cJSON_Delete(doc);
}

int tr_tf_hcp_new(tr_tf_hcp **out, const tr_tf_hcp_options *options, tr_error *err)
{
    tr_tf_hcp *hcp;
    tr_buf auth = TR_BUF_INIT(8192);
    const char *base;
    size_t len;

    *out = NULL;
    if (options->client == NULL || options->ingest == NULL || options->token == NULL ||
        *options->token == '\0')
        return tr_error_set(err, TR_EINVAL, "terraform: HCP fetch needs a client and a token");
    if (strpbrk(options->token, "\r\n") != NULL)
        return tr_error_set(err, TR_ECONFIG, "terraform: the HCP Terraform token has a newline");
    hcp = tr_calloc(1, sizeof(*hcp));
    if (hcp == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    hcp->opt = *options;
    hcp->opt.token = NULL;
    hcp->opt.base_url = NULL;
    if (hcp->opt.max_log_bytes == 0)
        hcp->opt.max_log_bytes = DEFAULT_MAX_LOG;
    if (hcp->opt.max_fetches == 0)
        hcp->opt.max_fetches = DEFAULT_MAX_FETCHES;
    if (hcp->opt.timeout_ms == 0)
        hcp->opt.timeout_ms = DEFAULT_TIMEOUT_MS;
    base = options->base_url && *options->base_url ? options->base_url : DEFAULT_BASE_URL;
    len = strlen(base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    hcp->base_url = tr_strndup(base, len);
    if (tr_buf_printf(&auth, "Authorization: Bearer %s", options->token) == 0)
        hcp->auth_header = tr_buf_detach(&auth);
    tr_buf_dispose(&auth);
    if (hcp->base_url == NULL || hcp->auth_header == NULL) {
        tr_tf_hcp_free(hcp);
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    }
    *out = hcp;
    return 0;
}

int tr_tf_hcp_fetch_run(tr_tf_hcp *hcp, const tr_tf_meta *meta, const char *message,
                        tr_error *err)
{
    fetch *f;

    if (!id_ok(meta->run_id))
        return tr_error_set(err, TR_EINVAL, "terraform: run id missing or malformed");
    if (hcp->active >= hcp->opt.max_fetches)
        return tr_error_set(err, TR_EBUSY, "terraform: %zu run logs already being fetched",
                            hcp->active);
    f = tr_calloc(1, sizeof(*f));
    if (f == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    f->hcp = hcp;
    f->workspace = tr_strdup(tr_tf_workspace(meta));
    f->run_id = tr_strdup(meta->run_id);
    f->run_url = meta->run_url ? tr_strdup(meta->run_url) : NULL;
    f->source_ref = meta->run_url ? tr_strdup(meta->run_url) : tr_strdup(meta->run_id);
    f->message = message ? tr_strdup(message) : NULL;
    if (f->workspace == NULL || f->run_id == NULL || f->source_ref == NULL ||
        (meta->run_url && f->run_url == NULL) || (message && f->message == NULL)) {
        fetch_free(f);
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    }
    f->next = hcp->fetches;
    hcp->fetches = f;
    hcp->active++;
    if (get_api(f, STEP_RUN, "runs", f->run_id) != 0) {
        f->hcp = hcp;
        fetch_end(f);
        return tr_error_set(err, TR_EHTTP, "terraform: cannot request run %s", meta->run_id);
    }
    return 0;
}

size_t tr_tf_hcp_active(const tr_tf_hcp *hcp)
{
    return hcp ? hcp->active : 0;
}

void tr_tf_hcp_free(tr_tf_hcp *hcp)
{
    fetch *f, *next;

    if (hcp == NULL)
        return;
    /* Orphan the fetches: their calls end later (cancelled by the client's owner, or
     * finishing) and free them then; nothing is recorded for an orphan. */
    for (f = hcp->fetches; f; f = next) {
        next = f->next;
        f->hcp = NULL;
        f->next = NULL;
    }
    tr_free(hcp->base_url);
    if (hcp->auth_header)
        memset(hcp->auth_header, 0, strlen(hcp->auth_header));
    tr_free(hcp->auth_header);
    tr_free(hcp);
}
