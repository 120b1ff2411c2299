/*
 * kube_reflector.c - one resource's LIST then WATCH loop.
 *
 * States: at most one HTTP call (a LIST page or the WATCH) or one wait
 * (backoff timer, exec plugin) at any time. Every way a call can end maps
 * to one of three next steps, as in client-go's reflector:
 *   rewatch - from the stored resourceVersion (clean end, connection
 *             errors, 429/5xx, 401, a malformed stream);
 *   relist  - with resourceVersion "" after Expired/Gone, else from the
 *             stored one (other errors);
 *   slow    - 403 / 404: one log line, retry every forbidden_retry_ms.
 * resourceVersion only moves forward on events that were delivered, so
 * re-watching after any failure cannot skip an event.
 *
 * Failures are logged once per run of failures (the first at warn, the
 * rest at debug) and the recovery at info, so a cluster that is down for an
 * hour costs two log lines per resource, not one per retry.
 */
#include "kube_reflector.h"

#include "alloc.h"
#include "buf.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MOD "kubernetes"
#define ERROR_BODY_MAX ((size_t)64 * 1024)
#define WATCH_GRACE_S 30
#define SHORT_WATCH_MS 1000

enum call_kind { CALL_NONE, CALL_LIST, CALL_WATCH };
enum next_step { STEP_LIST, STEP_WATCH };

struct tr_kube_reflector {
    uv_loop_t *loop;
    tr_kube_client *client;
    tr_http_client *http;
    tr_kube_reflector_options opt;
    tr_kube_reflector_callbacks cb;
    char *resource_label;      /* "pods" or "applications.argoproj.io": for messages */
    char *component;           /* health component and metrics label */
    char *base_path;           /* "/api/v1/pods", "/apis/apps/v1/namespaces/ns/deployments" */
    char *selectors;           /* "&fieldSelector=...&labelSelector=..." or "" */
    char *rv;
    char *continue_token;
    char *ns_copy;             /* opt.namespace points here */
    int expired;               /* next list is a quorum read (resourceVersion "") */
    int synced;
    unsigned long syncs;
    int sync_open;             /* on_sync_begin sent, on_sync_end not yet */
    size_t sync_items;
    const char *relist_reason; /* for the relists metric */

    enum call_kind kind;
    tr_http_call *call;
    int waiting_auth;
    enum next_step pending;    /* what the timer or the auth callback starts */
    tr_kube_stream stream;
    tr_buf error_body;         /* body of a non-200 watch response */
    long watch_status;
    uint64_t watch_started_ms;
    int stream_failed;         /* stop reason recorded by on_watch_data */
    enum next_step stream_next;
    int stream_backoff;
    char stream_message[TR_ERROR_MSG_MAX];

    uv_timer_t timer;
    uint64_t backoff_ms;
    uint64_t last_backoff_at;
    unsigned failures;         /* consecutive */
    int blocked;               /* 403/404 logged, waiting for the slow retry */
    int closing;
    int timer_closed;

    tr_metric_family *m_events;
    tr_metric_family *m_relists;
    tr_metric_family *m_restarts;
    tr_metric_family *m_last_sync;
    tr_metric_family *m_forbidden;
};

static void send_next(tr_kube_reflector *r, enum next_step step);

/* ---- small helpers ------------------------------------------------------ */

static void maybe_free(tr_kube_reflector *r)
{
    if (!r->closing || !r->timer_closed || r->call != NULL)
        return;
    tr_kube_stream_dispose(&r->stream);
    tr_buf_dispose(&r->error_body);
    tr_free(r->resource_label);
    tr_free(r->component);
    tr_free(r->base_path);
    tr_free(r->selectors);
    tr_free(r->rv);
    tr_free(r->continue_token);
    tr_free(r->ns_copy);
    tr_free(r);
}

static void on_timer_closed(uv_handle_t *handle)
{
    tr_kube_reflector *r = handle->data;

    r->timer_closed = 1;
    maybe_free(r);
}


static void set_health(tr_kube_reflector *r, tr_health_state state, const char *detail)
{
    if (r->opt.health)
        (void)tr_health_set(r->opt.health, r->component, state, detail); /* cap: logged there */
}

static void set_rv(tr_kube_reflector *r, const char *rv)
{
    char *copy;

    if (rv == NULL || *rv == '\0' || (r->rv && strcmp(r->rv, rv) == 0))
        return;
    copy = tr_strdup(rv);
    if (copy == NULL)
        return; /* keep the older version: re-watching from it replays, never skips */
    tr_free(r->rv);
    r->rv = copy;
}

static const char *meta_string(const cJSON *obj, const char *key)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(meta, key);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static uint64_t next_backoff(tr_kube_reflector *r)
{
    uint64_t now = uv_now(r->loop), base, wait;

    if (r->last_backoff_at && now - r->last_backoff_at > r->opt.backoff_reset_ms)
        r->backoff_ms = 0;
    base = r->backoff_ms ? r->backoff_ms : r->opt.backoff_initial_ms;
    wait = base + (uint64_t)((double)base * ((double)random() / ((double)RAND_MAX + 1.0)));
    r->backoff_ms = base * 2 > r->opt.backoff_max_ms ? r->opt.backoff_max_ms : base * 2;
    r->last_backoff_at = now;
    return wait;
}

static void on_timer(uv_timer_t *timer)
{
    tr_kube_reflector *r = timer->data;

    send_next(r, r->pending);
}

static void schedule(tr_kube_reflector *r, enum next_step step, uint64_t delay_ms)
{
    r->pending = step;
    if (r->closing)
        return;
    if (delay_ms == 0) {
        send_next(r, step);
        return;
    }
    (void)uv_timer_start(&r->timer, on_timer, delay_ms, 0); /* handle is open */
}

/* A failure that backs off: log the first of a run, mark health, retry. */
static void fail(tr_kube_reflector *r, enum next_step step, const char *what, const char *why)
{
    uint64_t delay = next_backoff(r);
    tr_buf detail = TR_BUF_INIT(2048);

    (void)tr_buf_printf(&detail, "%s %s: %s; retrying in %.1fs", what, r->resource_label, why,
                        (double)delay / 1000.0);
    if (r->failures++ == 0)
        tr_log_warn(MOD, "%s", tr_buf_cstr(&detail));
    else
        tr_log_debug(MOD, "%s", tr_buf_cstr(&detail));
    /* Not STARTING: a cluster that is down must not keep the daemon unready. */
    set_health(r, TR_HEALTH_UNAVAILABLE, tr_buf_cstr(&detail));
    tr_buf_dispose(&detail);
    if (step == STEP_LIST)
        r->relist_reason = "error";
    schedule(r, step, delay);
}

static void recovered(tr_kube_reflector *r)
{
    if (r->failures > 0)
        tr_log_info(MOD, "%s: connection to the apiserver restored", r->component);
    if (r->blocked) {
        tr_log_info(MOD, "%s: access granted now", r->component);
        (void)tr_metric_set(r->m_forbidden, 0, r->component);
    }
    r->failures = 0;
    r->blocked = 0;
}

/* "User \"viewer\" cannot list ..." -> viewer; NULL when absent. */
static int user_from_message(const char *message, char *out, size_t cap)
{
    const char *p = strstr(message, "User \""), *end;

    if (p == NULL)
        return 0;
    p += 6;
    end = strchr(p, '"');
    if (end == NULL || (size_t)(end - p) >= cap)
        return 0;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
    return 1;
}

/* 403 or 404: one clear line, DEGRADED, slow retry. */
static void blocked(tr_kube_reflector *r, enum call_kind kind, long status, const char *body,
                    size_t len)
{
    tr_buf line = TR_BUF_INIT(2048);
    tr_kube_status st = { 0, "", "" };
    cJSON *root = cJSON_ParseWithLength(body, len);
    char user[256];
    const char *verb = kind == CALL_LIST ? "list" : "watch";

    tr_kube_status_read(root, &st);
    if (status == 403) {
        (void)tr_buf_printf(&line, "forbidden: cannot %s %s ", verb, r->resource_label);
        if (r->opt.namespace)
            (void)tr_buf_printf(&line, "in namespace %s", r->opt.namespace);
        else
            (void)tr_buf_puts(&line, "in all namespaces");
        if (user_from_message(st.message, user, sizeof(user)))
            (void)tr_buf_printf(&line, " (user \"%s\")", user);
        (void)tr_buf_printf(&line, ": grant get,list,watch on %s", r->resource_label);
        (void)tr_metric_set(r->m_forbidden, 1, r->component);
    } else {
        (void)tr_buf_printf(&line, "%s is not served by this apiserver (HTTP 404 on %s): %s",
                            r->resource_label, r->base_path, st.message[0] ? st.message
                                                                           : "not found");
    }
    if (!r->blocked)
        tr_log_warn(MOD, "%s", tr_buf_cstr(&line));
    else
        tr_log_debug(MOD, "still %s", tr_buf_cstr(&line));
    r->blocked = 1;
    set_health(r, TR_HEALTH_DEGRADED, tr_buf_cstr(&line));
    tr_buf_dispose(&line);
    cJSON_Delete(root);
    r->relist_reason = "error";
    schedule(r, STEP_LIST, r->opt.forbidden_retry_ms);
}

/* Retry-After of a 429 when given, else the usual backoff. */
static uint64_t throttle_delay(tr_kube_reflector *r, const tr_http_response *resp)
{
    const char *value = tr_http_call_header(resp->call, "Retry-After");
    int64_t wait_ms = 0;

    if (value && tr_http_retry_after_ms(value, (int64_t)time(NULL) * 1000, &wait_ms) == TR_OK &&
        wait_ms > 0 && (uint64_t)wait_ms <= r->opt.backoff_max_ms * 2)
        return (uint64_t)wait_ms;
    return next_backoff(r);
}

/* ---- LIST --------------------------------------------------------------- */

static void deliver_items(tr_kube_reflector *r, cJSON *root)
{
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    const cJSON *api = cJSON_GetObjectItemCaseSensitive(root, "apiVersion");
    cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items");
    char item_kind[128] = "";
    cJSON *item;

    /* List items carry no kind/apiVersion: give them their list's, as watch events have. */
    if (cJSON_IsString(kind)) {
        size_t n = strlen(kind->valuestring);

        if (n > 4 && n < sizeof(item_kind) && strcmp(kind->valuestring + n - 4, "List") == 0) {
            memcpy(item_kind, kind->valuestring, n - 4);
            item_kind[n - 4] = '\0';
        }
    }
    cJSON_ArrayForEach(item, items) {
        if (r->closing)
            return; /* the consumer closed us from on_object */
        if (!cJSON_IsObject(item))
            continue;
        if (item_kind[0] && !cJSON_HasObjectItem(item, "kind"))
            (void)cJSON_AddStringToObject(item, "kind", item_kind); /* best effort */
        if (cJSON_IsString(api) && !cJSON_HasObjectItem(item, "apiVersion"))
            (void)cJSON_AddStringToObject(item, "apiVersion", api->valuestring);
        r->sync_items++;
        if (r->cb.on_object)
            r->cb.on_object(TR_KUBE_ADDED, item, r->opt.userdata);
    }
}

static void burst(tr_kube_reflector *r, int begin)
{
    if (r->cb.on_burst)
        r->cb.on_burst(begin, r->opt.userdata);
}

static void list_page_ok(tr_kube_reflector *r, const tr_http_response *resp)
{
    cJSON *root = cJSON_ParseWithLength(resp->body, resp->body_len);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items");
    const char *cont, *rv;
    char when[32];

    if (!cJSON_IsObject(root) || !(cJSON_IsArray(items) || cJSON_IsNull(items))) {
        cJSON_Delete(root);
        fail(r, STEP_LIST, "list", "the apiserver's answer is not a list (bad JSON)");
        return;
    }
    if (r->continue_token == NULL) {
        if (r->cb.on_sync_begin)
            r->cb.on_sync_begin(r->opt.userdata);
        r->sync_open = 1;
        r->sync_items = 0;
    }
    burst(r, 1);
    deliver_items(r, root);
    burst(r, 0);
    if (r->closing) {
        cJSON_Delete(root);
        return;
    }
    cont = meta_string(root, "continue");
    rv = meta_string(root, "resourceVersion");
    tr_free(r->continue_token);
    r->continue_token = cont && *cont ? tr_strdup(cont) : NULL;
    if (r->continue_token) {
        cJSON_Delete(root);
        schedule(r, STEP_LIST, 0);
        return;
    }
    set_rv(r, rv);
    cJSON_Delete(root);
    r->expired = 0;
    r->synced = 1;
    r->syncs++;
    r->sync_open = 0;
    if (r->cb.on_sync_end)
        r->cb.on_sync_end(r->opt.userdata);
    recovered(r);
    (void)tr_metric_inc(r->m_relists, 1, r->component, r->relist_reason);
    (void)tr_metric_set(r->m_last_sync, (double)time(NULL), r->component);
    snprintf(when, sizeof(when), "%zu", r->sync_items);
    {
        tr_buf detail = TR_BUF_INIT(1024);

        (void)tr_buf_printf(&detail, "synced %s objects at resourceVersion %s; watching", when,
                            r->rv ? r->rv : "?");
        set_health(r, TR_HEALTH_OK, tr_buf_cstr(&detail));
        tr_buf_dispose(&detail);
    }
    tr_log_debug(MOD, "%s: listed %zu objects at resourceVersion %s", r->component,
                 r->sync_items, r->rv ? r->rv : "?");
    schedule(r, STEP_WATCH, 0);
}

static void on_list_done(const tr_http_response *resp, void *userdata)
{
    tr_kube_reflector *r = userdata;
    char why[TR_ERROR_MSG_MAX];

    r->call = NULL;
    r->kind = CALL_NONE;
    if (r->closing) {
        maybe_free(r);
        return;
    }
    if (resp->result != TR_OK) {
        fail(r, STEP_LIST, "list", resp->message);
    } else if (resp->status == 200) {
        list_page_ok(r, resp);
    } else if (resp->status == 410) {
        /* The list's resourceVersion or continue token is gone: a fresh quorum list. */
        int again = r->expired && r->continue_token == NULL;

        tr_free(r->continue_token);
        r->continue_token = NULL;
        r->expired = 1;
        r->relist_reason = "expired";
        tr_log_info(MOD, "%s: list answered 410 Gone; listing again from the current state",
                    r->component);
        schedule(r, STEP_LIST, again ? next_backoff(r) : 0);
    } else if (resp->status == 403 || resp->status == 404) {
        blocked(r, CALL_LIST, resp->status, resp->body, resp->body_len);
    } else {
        if (resp->status == 401)
            tr_kube_client_auth_rejected(r->client);
        snprintf(why, sizeof(why), "HTTP %ld", resp->status);
        if (resp->status == 429) {
            r->pending = STEP_LIST;
            (void)uv_timer_start(&r->timer, on_timer, throttle_delay(r, resp), 0);
            return;
        }
        fail(r, STEP_LIST, "list", why);
    }
}

static int list_path(tr_kube_reflector *r, tr_buf *path)
{
    int rc = tr_buf_printf(path, "%s?limit=%zu", r->base_path, r->opt.page_limit);

    if (rc == TR_OK && r->continue_token) {
        rc = tr_buf_puts(path, "&continue=");
        if (rc == TR_OK)
            rc = tr_buf_put_escaped(path, r->continue_token);
    } else if (rc == TR_OK && !r->expired) {
        /* "0" the first time (watch cache), then the last version we processed. */
        rc = tr_buf_puts(path, "&resourceVersion=");
        if (rc == TR_OK)
            rc = tr_buf_put_escaped(path, r->rv ? r->rv : "0");
    }
    if (rc == TR_OK)
        rc = tr_buf_puts(path, r->selectors);
    return rc;
}

/* ---- WATCH -------------------------------------------------------------- */

static int watch_path(tr_kube_reflector *r, tr_buf *path, unsigned *timeout_s)
{
    unsigned span = r->opt.watch_timeout_max_s - r->opt.watch_timeout_min_s;
    int rc;

    *timeout_s = r->opt.watch_timeout_min_s + (span ? (unsigned)(random() % span) : 0);
    rc = tr_buf_printf(path, "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%u&"
                       "resourceVersion=", r->base_path, *timeout_s);
    if (rc == TR_OK)
        rc = tr_buf_put_escaped(path, r->rv ? r->rv : "");
    if (rc == TR_OK)
        rc = tr_buf_puts(path, r->selectors);
    return rc;
}

static int on_watch_headers(tr_http_call *call, long status, void *userdata)
{
    tr_kube_reflector *r = userdata;

    r->watch_status = status;
    if (status == 200) {
        tr_buf detail = TR_BUF_INIT(1024);

        recovered(r);
        (void)tr_buf_printf(&detail, "watching from resourceVersion %s", r->rv ? r->rv : "?");
        if (r->synced)
            set_health(r, TR_HEALTH_OK, tr_buf_cstr(&detail));
        tr_buf_dispose(&detail);
    }
    return 0;
}

static void stream_stop(tr_kube_reflector *r, enum next_step next, int backoff, const char *msg)
{
    r->stream_failed = 1;
    r->stream_next = next;
    r->stream_backoff = backoff;
    snprintf(r->stream_message, sizeof(r->stream_message), "%s", msg);
}

static int on_watch_event(const tr_kube_event *ev, void *userdata)
{
    tr_kube_reflector *r = userdata;
    tr_kube_status st;
    char msg[TR_ERROR_MSG_MAX];

    if (r->closing)
        return 1;
    (void)tr_metric_inc(r->m_events, 1, r->component, tr_kube_event_type_name(ev->type));
    if (ev->type == TR_KUBE_ERROR) {
        tr_kube_status_read(ev->object, &st);
        if (tr_kube_status_is_expired(&st)) {
            snprintf(msg, sizeof(msg), "resourceVersion expired (%ld %s: %s)", st.code,
                     st.reason, st.message);
            r->expired = 1;
            stream_stop(r, STEP_LIST, 0, msg);
        } else {
            snprintf(msg, sizeof(msg), "watch ended with error %ld %s: %s", st.code, st.reason,
                     st.message);
            /* client-go retries the watch on internal errors, relists on the rest. */
            stream_stop(r, st.code == 500 ? STEP_WATCH : STEP_LIST, 1, msg);
        }
        return 1;
    }
    set_rv(r, meta_string(ev->object, "resourceVersion"));
    if (ev->type != TR_KUBE_BOOKMARK && r->cb.on_object)
        r->cb.on_object(ev->type, ev->object, r->opt.userdata);
    return 0;
}

static int on_watch_data(tr_http_call *call, const char *data, size_t len, void *userdata)
{
    tr_kube_reflector *r = userdata;
    tr_error err = { 0 };
    int rc;

    if (r->watch_status != 200) {
        size_t room = ERROR_BODY_MAX - r->error_body.len;

        (void)tr_buf_put(&r->error_body, data, len < room ? len : room);
        return 0;
    }
    burst(r, 1);
    rc = tr_kube_stream_feed(&r->stream, data, len, on_watch_event, r, &err);
    burst(r, 0);
    if (rc == TR_OK || r->stream_failed)
        return rc == TR_OK ? 0 : 1;
    stream_stop(r, STEP_WATCH, 1, err.message);
    return 1;
}

static void watch_ended_ok(tr_kube_reflector *r)
{
    tr_error err = { 0 };
    uint64_t lasted = uv_now(r->loop) - r->watch_started_ms;

    if (tr_kube_stream_finish(&r->stream, &err) != TR_OK) {
        (void)tr_metric_inc(r->m_restarts, 1, r->component, "malformed");
        fail(r, STEP_WATCH, "watch", err.message);
        return;
    }
    (void)tr_metric_inc(r->m_restarts, 1, r->component, "closed");
    /* A server that closes at once, again and again, must not be hammered. */
    if (lasted < SHORT_WATCH_MS && r->stream.events == 0) {
        fail(r, STEP_WATCH, "watch", "the apiserver closed the watch at once");
        return;
    }
    tr_log_debug(MOD, "%s: watch closed by the server after %.1fs; watching again",
                 r->component, (double)lasted / 1000.0);
    schedule(r, STEP_WATCH, 0);
}

static void on_watch_done(const tr_http_response *resp, void *userdata)
{
    tr_kube_reflector *r = userdata;
    char why[TR_ERROR_MSG_MAX];

    r->call = NULL;
    r->kind = CALL_NONE;
    if (r->closing) {
        maybe_free(r);
        return;
    }
    if (r->stream_failed) {
        r->stream_failed = 0;
        (void)tr_metric_inc(r->m_restarts, 1, r->component,
                            r->stream_next == STEP_LIST ? "expired" : "error");
        if (r->stream_next == STEP_LIST && !r->stream_backoff) {
            tr_log_info(MOD, "%s: %s; listing again", r->component, r->stream_message);
            r->relist_reason = "expired";
            schedule(r, STEP_LIST, 0);
        } else {
            fail(r, r->stream_next, "watch", r->stream_message);
        }
    } else if (resp->result != TR_OK) {
        (void)tr_metric_inc(r->m_restarts, 1, r->component, "error");
        fail(r, STEP_WATCH, "watch", resp->message);
    } else if (resp->status == 200) {
        watch_ended_ok(r);
    } else if (resp->status == 410) {
        r->expired = 1;
        r->relist_reason = "expired";
        tr_log_info(MOD, "%s: watch answered 410 Gone; listing again", r->component);
        schedule(r, STEP_LIST, 0);
    } else if (resp->status == 403 || resp->status == 404) {
        blocked(r, CALL_WATCH, resp->status, r->error_body.ptr ? r->error_body.ptr : "",
                r->error_body.len);
    } else if (resp->status == 429) {
        r->pending = STEP_WATCH;
        (void)uv_timer_start(&r->timer, on_timer, throttle_delay(r, resp), 0);
    } else {
        if (resp->status == 401)
            tr_kube_client_auth_rejected(r->client);
        snprintf(why, sizeof(why), "HTTP %ld", resp->status);
        fail(r, resp->status == 401 || resp->status >= 500 ? STEP_WATCH : STEP_LIST, "watch",
             why);
    }
}

/* ---- sending ------------------------------------------------------------ */

static void on_auth(int rc, const char *message, void *userdata)
{
    tr_kube_reflector *r = userdata;

    r->waiting_auth = 0;
    if (r->closing)
        return;
    if (rc != TR_OK) {
        fail(r, r->pending, "credentials for", message);
        return;
    }
    send_next(r, r->pending);
}

static void send_next(tr_kube_reflector *r, enum next_step step)
{
    tr_buf path = TR_BUF_INIT(64 * 1024);
    tr_http_request req;
    tr_kube_prepared prep;
    tr_error err = { 0 };
    unsigned timeout_s = 0;
    int rc;

    if (r->closing || r->call || r->waiting_auth)
        return;
    r->pending = step;
    rc = tr_kube_client_auth_wait(r->client, on_auth, r, &err);
    if (rc == TR_EBUSY) {
        r->waiting_auth = 1;
        return;
    }
    if (rc != TR_OK) {
        fail(r, step, step == STEP_LIST ? "list" : "watch", err.message);
        return;
    }
    rc = step == STEP_LIST ? list_path(r, &path) : watch_path(r, &path, &timeout_s);
    if (rc != TR_OK) {
        tr_buf_dispose(&path);
        fail(r, step, step == STEP_LIST ? "list" : "watch", tr_strerror(rc));
        return;
    }
    memset(&req, 0, sizeof(req));
    req.method = TR_HTTP_GET;
    req.userdata = r;
    if (step == STEP_LIST) {
        req.timeout_ms = 60000;
        req.max_response_bytes = r->opt.max_page_bytes;
        req.on_done = on_list_done;
    } else {
        /* The server ends the watch after timeout_s; ours is only a safety net. */
        req.timeout_ms = (long)(timeout_s + WATCH_GRACE_S) * 1000;
        req.on_headers = on_watch_headers;
        req.on_data = on_watch_data;
        req.on_done = on_watch_done;
        tr_kube_stream_reset(&r->stream);
        tr_buf_clear(&r->error_body);
        r->watch_status = 0;
        r->stream_failed = 0;
        r->watch_started_ms = uv_now(r->loop);
    }
    rc = tr_kube_client_prepare(r->client, &req, tr_buf_cstr(&path), &prep, &err);
    if (rc == TR_OK)
        rc = tr_http_client_send(r->http, &req, &r->call, &err);
    tr_kube_prepared_dispose(&prep);
    tr_buf_dispose(&path);
    if (rc != TR_OK) {
        r->call = NULL;
        fail(r, step, step == STEP_LIST ? "list" : "watch", err.message);
        return;
    }
    r->kind = step == STEP_LIST ? CALL_LIST : CALL_WATCH;
}

/* ---- lifecycle ------------------------------------------------------------ */

static int build_strings(tr_kube_reflector *r, const tr_kube_reflector_options *o)
{
    tr_buf b = TR_BUF_INIT(64 * 1024);
    const char *group = o->group && *o->group ? o->group : NULL;
    const char *ns = o->namespace && *o->namespace ? o->namespace : NULL;
    size_t i;
    int rc = TR_OK;

    rc = group ? tr_buf_printf(&b, "%s.%s", o->resource, group) : tr_buf_puts(&b, o->resource);
    if (rc != TR_OK || (r->resource_label = tr_buf_detach(&b)) == NULL)
        goto fail;
    if (o->health_component)
        rc = tr_buf_puts(&b, o->health_component);
    else
        rc = tr_buf_printf(&b, "kubernetes/%s%s%s", r->resource_label, ns ? "/" : "",
                           ns ? ns : "");
    if (rc != TR_OK || (r->component = tr_buf_detach(&b)) == NULL)
        goto fail;
    rc = group ? tr_buf_printf(&b, "/apis/%s/%s", group, o->version)
               : tr_buf_printf(&b, "/api/%s", o->version);
    if (rc == TR_OK && ns) {
        rc = tr_buf_puts(&b, "/namespaces/");
        if (rc == TR_OK)
            rc = tr_buf_put_escaped(&b, ns);
    }
    if (rc == TR_OK)
        rc = tr_buf_printf(&b, "/%s", o->resource);
    if (rc != TR_OK || (r->base_path = tr_buf_detach(&b)) == NULL)
        goto fail;
    /* fieldSelector: the caller's, then one metadata.namespace!=x per excluded namespace. */
    {
        tr_buf fs = TR_BUF_INIT(16 * 1024);

        if (o->field_selector && *o->field_selector)
            rc = tr_buf_puts(&fs, o->field_selector);
        for (i = 0; rc == TR_OK && !ns && i < o->exclude_count; i++)
            rc = tr_buf_printf(&fs, "%smetadata.namespace!=%s", fs.len ? "," : "",
                               o->exclude_namespaces[i]);
        if (rc == TR_OK && fs.len) {
            rc = tr_buf_puts(&b, "&fieldSelector=");
            if (rc == TR_OK)
                rc = tr_buf_put_escaped(&b, tr_buf_cstr(&fs));
        }
        tr_buf_dispose(&fs);
    }
    if (rc == TR_OK && o->label_selector && *o->label_selector) {
        rc = tr_buf_puts(&b, "&labelSelector=");
        if (rc == TR_OK)
            rc = tr_buf_put_escaped(&b, o->label_selector);
    }
    if (rc != TR_OK)
        goto fail;
    r->selectors = b.len ? tr_buf_detach(&b) : tr_strdup("");
    if (r->selectors == NULL)
        goto fail;
    if (ns && (r->opt.namespace = r->ns_copy = tr_strdup(ns)) == NULL)
        goto fail;
    return TR_OK;
fail:
    tr_buf_dispose(&b);
    return rc == TR_OK ? TR_ENOMEM : rc;
}

static void register_metrics(tr_kube_reflector *r, tr_metrics *m)
{
    if (m == NULL)
        return;
    r->m_events = tr_metrics_counter(m, "triaged_kube_watch_events_total",
                                     "Watch events received, by resource and event type.",
                                     "resource", "type", NULL);
    r->m_relists = tr_metrics_counter(m, "triaged_kube_relists_total",
                                      "Complete LISTs delivered, by resource and reason "
                                      "(initial, expired, error).", "resource", "reason", NULL);
    r->m_restarts = tr_metrics_counter(m, "triaged_kube_watch_restarts_total",
                                       "Watches that ended and were restarted, by resource and "
                                       "reason (closed, expired, error, malformed).",
                                       "resource", "reason", NULL);
    r->m_last_sync = tr_metrics_gauge(m, "triaged_kube_last_sync_timestamp_seconds",
                                      "Unix time of the last complete LIST of the resource.",
                                      "resource", NULL);
    r->m_forbidden = tr_metrics_gauge(m, "triaged_kube_resource_forbidden",
                                      "1 while the apiserver refuses the resource (403) or does "
                                      "not serve it (404).", "resource", NULL);
}

int tr_kube_reflector_new(tr_kube_reflector **out, uv_loop_t *loop, tr_kube_client *client,
                          tr_http_client *http, const tr_kube_reflector_options *options,
                          tr_error *err)
{
    tr_kube_reflector *r;
    int rc;

    *out = NULL;
    if (options == NULL || options->version == NULL || options->resource == NULL ||
        !*options->version || !*options->resource)
        return tr_error_set(err, TR_EINVAL, "kubernetes reflector: version and resource needed");
    r = tr_calloc(1, sizeof(*r));
    if (r == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    r->loop = loop;
    r->client = client;
    r->http = http;
    r->opt = *options;
    r->cb = options->callbacks;
    /* Strings of the options are not kept: only what build_strings derived from them. */
    r->opt.group = r->opt.version = r->opt.resource = NULL;
    r->opt.namespace = NULL;
    r->opt.field_selector = r->opt.label_selector = r->opt.health_component = NULL;
    r->opt.exclude_namespaces = NULL;
    r->opt.exclude_count = 0;
#define DEFAULT(field, value) if (r->opt.field == 0) r->opt.field = (value)
    DEFAULT(page_limit, 500);
    DEFAULT(max_page_bytes, (size_t)64 * 1024 * 1024);
    DEFAULT(watch_timeout_min_s, 300);
    DEFAULT(watch_timeout_max_s, 600);
    DEFAULT(backoff_initial_ms, 800);
    DEFAULT(backoff_max_ms, 30000);
    DEFAULT(backoff_reset_ms, 120000);
    DEFAULT(forbidden_retry_ms, 300000);
#undef DEFAULT
    if (r->opt.watch_timeout_max_s < r->opt.watch_timeout_min_s)
        r->opt.watch_timeout_max_s = r->opt.watch_timeout_min_s;
    r->relist_reason = "initial";
    tr_kube_stream_init(&r->stream, options->max_line_bytes);
    tr_buf_init(&r->error_body, ERROR_BODY_MAX);
    rc = build_strings(r, options);
    if (rc != TR_OK) {
        r->closing = r->timer_closed = 1;
        maybe_free(r);
        return tr_error_set(err, rc, "kubernetes reflector for %s: %s", options->resource,
                            tr_strerror(rc));
    }
    (void)uv_timer_init(loop, &r->timer); /* cannot fail */
    r->timer.data = r;
    register_metrics(r, options->metrics);
    set_health(r, TR_HEALTH_STARTING, "listing");
    *out = r;
    return TR_OK;
}

int tr_kube_reflector_start(tr_kube_reflector *r)
{
    schedule(r, STEP_LIST, 0);
    return TR_OK;
}

int tr_kube_reflector_synced(const tr_kube_reflector *r)
{
    return r->synced;
}

const char *tr_kube_reflector_resource_version(const tr_kube_reflector *r)
{
    return r->rv;
}

unsigned long tr_kube_reflector_syncs(const tr_kube_reflector *r)
{
    return r->syncs;
}

void tr_kube_reflector_close(tr_kube_reflector *r)
{
    if (r == NULL || r->closing)
        return;
    r->closing = 1;
    if (r->waiting_auth)
        tr_kube_client_auth_cancel(r->client, r);
    r->waiting_auth = 0;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, on_timer_closed);
    if (r->call)
        tr_http_call_cancel(r->call);
}
