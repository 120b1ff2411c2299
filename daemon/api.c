/*
 * api.c - route handlers of the daemon's HTTP API.
 *
 * Handlers answer at once (nothing here waits on I/O); the store calls are
 * short SQLite reads and writes on the loop thread. The chat route, which
 * waits for the LLM, lives in llm/chat.c.
 */
#include "api.h"
#include "actions.h"
#include "analysis.h"
#include "alloc.h"
#include "buf.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JSON_TYPE "application/json"

void tr_api_format_time(int64_t ms, char *out, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    if (ms <= 0 || gmtime_r(&secs, &tm) == NULL) {
        snprintf(out, size, "%s", "");
        return;
    }
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

void tr_api_respond_json(tr_http_req *req, int status, cJSON *root)
{
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;

    if (text == NULL)
        (void)tr_http_respond_error(req, 500, "out of memory", NULL);
    else
        (void)tr_http_respond(req, status, JSON_TYPE, text, strlen(text));
    cJSON_free(text);
    cJSON_Delete(root);
}

int64_t tr_api_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tr_api_authorized(tr_http_req *req, const char *api_token)
{
    const char *auth;
    size_t want, got;

    if (api_token == NULL)
        return 1;
    auth = tr_http_req_header(req, "Authorization");
    if (auth && strncmp(auth, "Bearer ", 7) == 0) {
        auth += 7;
        want = strlen(api_token);
        got = strlen(auth);
        if (got == want && CRYPTO_memcmp(auth, api_token, want) == 0)
            return 1;
    }
    (void)tr_http_req_add_header(req, "WWW-Authenticate", "Bearer realm=\"triaged\"");
    (void)tr_http_respond_error(req, 401, "unauthorized",
                                "send Authorization: Bearer <token from api_token_file>");
    return 0;
}

static void on_healthz(tr_http_req *req, void *userdata)
{
    static const char body[] = "{\"status\":\"ok\"}";

    (void)userdata;
    (void)tr_http_respond(req, 200, JSON_TYPE, body, sizeof(body) - 1);
}

static void on_readyz(tr_http_req *req, void *userdata)
{
    tr_api *api = userdata;
    tr_buf out = TR_BUF_INIT(64 * 1024);

    if (tr_health_render_json(api->health, &out) != TR_OK) {
        tr_buf_dispose(&out);
        (void)tr_http_respond_error(req, 500, "cannot render readiness", NULL);
        return;
    }
    (void)tr_http_respond(req, tr_health_is_ready(api->health) ? 200 : 503, JSON_TYPE,
                          tr_buf_cstr(&out), out.len);
    tr_buf_dispose(&out);
}

static void on_metrics(tr_http_req *req, void *userdata)
{
    tr_api *api = userdata;
    tr_buf out = TR_BUF_INIT(16 * 1024 * 1024);

    if (api->before_scrape)
        api->before_scrape(api->userdata);
    if (tr_metrics_render(api->metrics, &out) != TR_OK) {
        tr_buf_dispose(&out);
        (void)tr_http_respond_error(req, 500, "cannot render metrics", NULL);
        return;
    }
    (void)tr_http_respond(req, 200, TR_METRICS_CONTENT_TYPE, tr_buf_cstr(&out), out.len);
    tr_buf_dispose(&out);
}

static void add_string(cJSON *obj, const char *name, const char *value)
{
    if (value)
        cJSON_AddStringToObject(obj, name, value);
    else
        cJSON_AddNullToObject(obj, name);
}

static void add_time(cJSON *obj, const char *name, int64_t ms)
{
    char text[40];

    if (ms <= 0) {
        cJSON_AddNullToObject(obj, name);
        return;
    }
    tr_api_format_time(ms, text, sizeof(text));
    cJSON_AddStringToObject(obj, name, text);
}

cJSON *tr_api_incident_json(const tr_store_incident *inc)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON *facts;

    if (obj == NULL)
        return NULL;
    cJSON_AddNumberToObject(obj, "id", (double)inc->id);
    add_string(obj, "state", tr_store_state_name(inc->state));
    add_string(obj, "source", inc->source);
    add_string(obj, "cluster", inc->cluster);
    add_string(obj, "namespace", inc->namespace);
    add_string(obj, "kind", inc->kind);
    add_string(obj, "name", inc->name);
    add_string(obj, "reason", inc->failure_class);
    add_string(obj, "title", inc->title);
    add_string(obj, "message", inc->message);
    add_string(obj, "error", inc->error);
    add_string(obj, "fingerprint", inc->fingerprint);
    facts = inc->facts_json ? cJSON_Parse(inc->facts_json) : NULL;
    if (facts)
        cJSON_AddItemToObject(obj, "facts", facts);
    else
        cJSON_AddObjectToObject(obj, "facts");
    cJSON_AddNumberToObject(obj, "observations", (double)inc->observation_count);
    cJSON_AddNumberToObject(obj, "reopened", (double)inc->reopen_count);
    add_time(obj, "first_seen", inc->first_seen_ms);
    add_time(obj, "last_seen", inc->last_seen_ms);
    add_time(obj, "updated", inc->updated_ms);
    add_time(obj, "resolved_at", inc->resolved_at_ms);
    return obj;
}

int64_t tr_api_parse_id(const char *text)
{
    char *end = NULL;
    long long value;

    if (text == NULL || *text < '0' || *text > '9')
        return 0;
    value = strtoll(text, &end, 10);
    if (*end != '\0' || value <= 0)
        return 0;
    return (int64_t)value;
}

static void on_incidents(tr_http_req *req, void *userdata)
{
    tr_api *api = userdata;
    tr_store_incident_filter filter;
    tr_store_incident_list *list = NULL;
    tr_error err = { 0 };
    const char *state = tr_http_req_query(req, "state");
    const char *limit = tr_http_req_query(req, "limit");
    const char *before = tr_http_req_query(req, "before");
    cJSON *root, *items;
    size_t i;

    if (!tr_api_authorized(req, api->api_token))
        return;
    memset(&filter, 0, sizeof(filter));
    if (state && *state && (filter.state = tr_store_state_parse(state)) == TR_INCIDENT_NONE) {
        (void)tr_http_respond_error(req, 400, "bad state",
                                    "use open, triaged, analyzed, notified, patch_proposed, "
                                    "accepted, pr_open, pr_merged, pr_closed, resolved, "
                                    "rejected or failed");
        return;
    }
    if (limit && (filter.limit = (size_t)tr_api_parse_id(limit)) == 0) {
        (void)tr_http_respond_error(req, 400, "bad limit", "a positive number");
        return;
    }
    if (before && (filter.before_id = tr_api_parse_id(before)) == 0) {
        (void)tr_http_respond_error(req, 400, "bad before", "an incident id");
        return;
    }
    filter.source = tr_http_req_query(req, "source");
    filter.namespace = tr_http_req_query(req, "namespace");
    if (tr_store_incident_list_get(api->store, &filter, &list, &err) != TR_OK) {
        tr_log_error("api", "listing incidents: %s", err.message);
        (void)tr_http_respond_error(req, 500, "store error", err.message);
        return;
    }
    root = cJSON_CreateObject();
    items = cJSON_AddArrayToObject(root, "incidents");
    for (i = 0; items && i < list->count; i++)
        cJSON_AddItemToArray(items, tr_api_incident_json(&list->items[i]));
    if (list->next_before_id)
        cJSON_AddNumberToObject(root, "next_before", (double)list->next_before_id);
    tr_store_incident_list_free(list);
    tr_api_respond_json(req, 200, root);
}

/*
 * ?prompt=1: the exact (redacted) request body that was sent to the LLM for
 * the latest analysis, so a reviewer sees precisely what left the cluster;
 * null when the analysis was rule-based (nothing was sent).
 */
static void add_prompt(cJSON *root, tr_store *store, int64_t incident_id)
{
    tr_store_analysis *a = NULL;
    tr_error err = { 0 };
    char *body = NULL;

    if (tr_store_analysis_latest(store, incident_id, &a, &err) == TR_OK &&
        tr_analysis_request_body(store, a->id, &body, &err) == TR_OK)
        cJSON_AddStringToObject(root, "prompt", body);
    else
        cJSON_AddNullToObject(root, "prompt");
    tr_free(body);
    tr_store_analysis_free(a);
}

/* The incident's newest fix PR (the fixer's), or null. */
static void add_pull_request(cJSON *root, tr_store *store, int64_t id)
{
    tr_store_pr *pr = NULL;
    tr_error err = { 0 };
    cJSON *obj;
    int rc = tr_store_pr_latest(store, id, &pr, &err);

    if (rc != TR_OK) {
        if (rc != TR_ENOTFOUND)
            tr_log_warn("api", "incident %lld: reading its PR: %s", (long long)id, err.message);
        cJSON_AddNullToObject(root, "pull_request");
        return;
    }
    obj = cJSON_AddObjectToObject(root, "pull_request");
    if (obj != NULL) {
        add_string(obj, "url", pr->url);
        cJSON_AddNumberToObject(obj, "number", (double)pr->number);
        add_string(obj, "forge", pr->forge);
        add_string(obj, "branch", pr->branch);
        add_string(obj, "head_commit", pr->head_commit);
        add_string(obj, "state", pr->state);
    }
    tr_store_pr_free(pr);
}

static void on_incident(tr_http_req *req, void *userdata)
{
    tr_api *api = userdata;
    tr_store_incident *inc = NULL;
    tr_error err = { 0 };
    int64_t id = tr_api_parse_id(tr_http_req_param(req, "id"));
    cJSON *root, *analysis;
    int rc;

    if (!tr_api_authorized(req, api->api_token))
        return;
    if (id == 0) {
        (void)tr_http_respond_error(req, 400, "bad incident id", "a positive number");
        return;
    }
    rc = tr_store_incident_get(api->store, id, &inc, &err);
    if (rc == TR_ENOTFOUND) {
        (void)tr_http_respond_error(req, 404, "no such incident", NULL);
        return;
    }
    if (rc != TR_OK) {
        tr_log_error("api", "reading incident %lld: %s", (long long)id, err.message);
        (void)tr_http_respond_error(req, 500, "store error", err.message);
        return;
    }
    root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "incident", tr_api_incident_json(inc));
    analysis = tr_actions_analysis_json(api->store, id);
    if (analysis)
        cJSON_AddItemToObject(root, "analysis", analysis);
    else
        cJSON_AddNullToObject(root, "analysis");
    add_pull_request(root, api->store, id);
    if (tr_http_req_query(req, "prompt"))
        add_prompt(root, api->store, id);
    tr_store_incident_free(inc);
    tr_api_respond_json(req, 200, root);
}

static cJSON *delivery_json(const tr_store_delivery *d)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON *payload;

    if (obj == NULL)
        return NULL;
    cJSON_AddNumberToObject(obj, "id", (double)d->id);
    add_string(obj, "delivery_id", d->delivery_id);
    add_string(obj, "sink", d->sink);
    add_string(obj, "event", d->event);
    if (d->incident_id > 0)
        cJSON_AddNumberToObject(obj, "incident_id", (double)d->incident_id);
    else
        cJSON_AddNullToObject(obj, "incident_id");
    cJSON_AddNumberToObject(obj, "attempts", (double)d->attempts);
    add_string(obj, "last_error", d->last_error);
    add_time(obj, "created", d->created_ms);
    payload = d->payload_json ? cJSON_Parse(d->payload_json) : NULL;
    if (payload)
        cJSON_AddItemToObject(obj, "payload", payload);
    else
        cJSON_AddNullToObject(obj, "payload");
    return obj;
}

/* GET /v1/deliveries/dead[?sink=&after=&limit=]: messages a sink gave up on. */
static void on_dead_letters(tr_http_req *req, void *userdata)
{
    tr_api *api = userdata;
    tr_store_delivery_list *list = NULL;
    tr_error err = { 0 };
    const char *sink = tr_http_req_query(req, "sink");
    const char *after = tr_http_req_query(req, "after");
    const char *limit_text = tr_http_req_query(req, "limit");
    int64_t after_id = 0;
    size_t limit = 100;
    cJSON *root, *items;
    size_t i;

    if (!tr_api_authorized(req, api->api_token))
        return;
    if (after && (after_id = tr_api_parse_id(after)) == 0) {
        (void)tr_http_respond_error(req, 400, "bad after", "a delivery id");
        return;
    }
    if (limit_text && (limit = (size_t)tr_api_parse_id(limit_text)) == 0) {
        (void)tr_http_respond_error(req, 400, "bad limit", "a positive number");
        return;
    }
    if (tr_store_outbox_dead_letters(api->store, sink && *sink ? sink : NULL, after_id, limit,
                                     &list, &err) != TR_OK) {
        tr_log_error("api", "listing dead letters: %s", err.message);
        (void)tr_http_respond_error(req, 500, "store error", err.message);
        return;
    }
    root = cJSON_CreateObject();
    items = cJSON_AddArrayToObject(root, "deliveries");
    for (i = 0; items && i < list->count; i++)
        cJSON_AddItemToArray(items, delivery_json(&list->items[i]));
    if (list->count > 0 && list->count >= limit)
        cJSON_AddNumberToObject(root, "next_after", (double)list->items[list->count - 1].id);
    tr_store_delivery_list_free(list);
    tr_api_respond_json(req, 200, root);
}

/* POST /v1/deliveries/{id}/retry: a dead letter goes back in its sink's queue, due now. */
static void on_retry_delivery(tr_http_req *req, void *userdata)
{
    tr_api *api = userdata;
    tr_error err = { 0 };
    int64_t id = tr_api_parse_id(tr_http_req_param(req, "id"));
    cJSON *root;
    int rc;

    if (!tr_api_authorized(req, api->api_token))
        return;
    if (id == 0) {
        (void)tr_http_respond_error(req, 400, "bad delivery id", "a positive number");
        return;
    }
    rc = tr_store_outbox_retry_dead(api->store, id, tr_api_now_ms(), &err);
    if (rc == TR_ENOTFOUND) {
        (void)tr_http_respond_error(req, 404, "no such dead letter",
                                    "see GET /v1/deliveries/dead");
        return;
    }
    if (rc != TR_OK) {
        tr_log_error("api", "retrying delivery %lld: %s", (long long)id, err.message);
        (void)tr_http_respond_error(req, 500, "store error", err.message);
        return;
    }
    tr_log_info("api", "dead letter %lld queued again", (long long)id);
    tr_dispatch_notify(api->dispatch);
    root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "id", (double)id);
    cJSON_AddStringToObject(root, "state", "pending");
    tr_api_respond_json(req, 200, root);
}

int tr_api_register(tr_api *api, tr_http_server *srv, tr_error *err)
{
    static const struct {
        const char *method;
        const char *pattern;
        tr_http_handler handler;
    } routes[] = {
        { "GET", "/healthz", on_healthz },
        { "GET", "/readyz", on_readyz },
        { "GET", "/metrics", on_metrics },
        { "GET", "/v1/incidents", on_incidents },
        { "GET", "/v1/incidents/{id}", on_incident },
        { "GET", "/v1/deliveries/dead", on_dead_letters },
        { "POST", "/v1/deliveries/{id}/retry", on_retry_delivery },
    };
    size_t i;
    int rc;

    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        rc = tr_http_server_route(srv, routes[i].method, routes[i].pattern, routes[i].handler,
                                  api);
        if (rc != TR_OK)
            return tr_error_set(err, rc, "registering route %s %s: %s", routes[i].method,
                                routes[i].pattern, tr_strerror(rc));
    }
    return TR_OK;
}
