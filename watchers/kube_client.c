/*
 * kube_client.c - reachability of the apiserver and request preparation.
 *
 * State machine, all on the loop:
 *   attempt: resolve the kubeconfig if not done yet, then GET /version.
 *     - nothing configured or the probe failed -> UNAVAILABLE, retry after
 *       backoff (800 ms doubling to 30 s, plus up to 100% jitter, as
 *       client-go's reflector does), re-resolving the kubeconfig each time
 *       while it is missing (a file may appear, a context may be added);
 *     - the apiserver answered -> connected; re-probe every minute so a
 *       cluster that goes away is noticed even before any watch exists.
 * Only transitions are logged, so an absent cluster costs one log line.
 */
#include "kube_client.h"
#include "alloc.h"
#include "kube_auth.h"
#include "buf.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_TIMEOUT_MS 10000
#define REPROBE_CONNECTED_MS 60000

enum reach { REACH_UNKNOWN, REACH_OK, REACH_DOWN };

struct tr_kube_client {
    uv_loop_t *loop;
    tr_http_client *http;
    tr_health *health;
    char *kubeconfig;
    char *context;
    char *sa_dir;
    uint64_t backoff_initial_ms;
    uint64_t backoff_max_ms;
    uint64_t backoff_ms;
    void (*on_state)(tr_kube_client *client, int connected, void *userdata);
    void *userdata;

    tr_kube_conn *conn;
    tr_kube_auth *auth;      /* set when conn->exec: the exec plugin's credentials */
    uint64_t exec_timeout_ms;
    char *version;
    enum reach reach;
    uv_timer_t timer;
    tr_http_call *probe;
    int closing;
    int timer_closed;
};

static void attempt(tr_kube_client *client);

static void maybe_free(tr_kube_client *client)
{
    if (!client->closing || !client->timer_closed || client->probe != NULL)
        return;
    tr_kube_auth_close(client->auth);
    tr_kube_conn_free(client->conn);
    tr_free(client->version);
    tr_free(client->kubeconfig);
    tr_free(client->context);
    tr_free(client->sa_dir);
    tr_free(client);
}

static void on_timer_closed(uv_handle_t *handle)
{
    tr_kube_client *client = handle->data;

    client->timer_closed = 1;
    maybe_free(client);
}

static void on_timer(uv_timer_t *timer)
{
    attempt(timer->data);
}

static uint64_t next_backoff(tr_kube_client *client)
{
    uint64_t base = client->backoff_ms ? client->backoff_ms : client->backoff_initial_ms;
    uint64_t wait = base + (uint64_t)((double)base * ((double)random() / RAND_MAX));

    client->backoff_ms = base * 2 > client->backoff_max_ms ? client->backoff_max_ms : base * 2;
    return wait;
}

static void schedule(tr_kube_client *client, uint64_t delay_ms)
{
    if (!client->closing)
        (void)uv_timer_start(&client->timer, on_timer, delay_ms, 0);
}

static void set_unavailable(tr_kube_client *client, const char *reason)
{
    uint64_t delay_ms = next_backoff(client);
    tr_buf detail = TR_BUF_INIT(4096);

    (void)tr_buf_printf(&detail, "%s; retrying in %.1fs", reason, (double)delay_ms / 1000.0);
    (void)tr_health_set(client->health, "kubernetes", TR_HEALTH_UNAVAILABLE,
                        tr_buf_cstr(&detail));
    if (client->reach != REACH_DOWN) {
        tr_log_warn("kubernetes", "unavailable: %s; the API and Terraform inputs keep "
                    "working, retrying with backoff (at most every %.0fs)", reason,
                    (double)client->backoff_max_ms / 1000.0);
        client->reach = REACH_DOWN;
        if (client->on_state)
            client->on_state(client, 0, client->userdata);
    } else {
        tr_log_debug("kubernetes", "still unavailable: %s", tr_buf_cstr(&detail));
    }
    tr_buf_dispose(&detail);
    schedule(client, delay_ms);
}

static void set_connected(tr_kube_client *client, const char *version, int auth_rejected)
{
    tr_buf detail = TR_BUF_INIT(4096);

    client->backoff_ms = 0;
    (void)tr_buf_printf(&detail, "%s (%s)%s", client->conn->server, version,
                        auth_rejected ? ": credentials rejected by the apiserver" : "");
    (void)tr_health_set(client->health, "kubernetes",
                        auth_rejected ? TR_HEALTH_DEGRADED : TR_HEALTH_OK, tr_buf_cstr(&detail));
    if (client->reach != REACH_OK) {
        tr_log_info("kubernetes", "connected to %s (%s) via %s%s%s", client->conn->server,
                    version, client->conn->source,
                    client->conn->context_name ? ", context " : "",
                    client->conn->context_name ? client->conn->context_name : "");
        if (auth_rejected)
            tr_log_warn("kubernetes", "%s rejects our credentials: check the token or "
                        "certificate of %s", client->conn->server, client->conn->source);
        client->reach = REACH_OK;
        if (client->on_state)
            client->on_state(client, 1, client->userdata);
    }
    tr_buf_dispose(&detail);
    schedule(client, REPROBE_CONNECTED_MS);
}

/* gitVersion from a /version body, or "unknown version". Caller frees. */
static char *parse_version(const char *body, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *git = cJSON_GetObjectItemCaseSensitive(root, "gitVersion");
    char *version = tr_strdup(cJSON_IsString(git) ? git->valuestring : "unknown version");

    cJSON_Delete(root);
    return version;
}

static void on_probe_done(const tr_http_response *resp, void *userdata)
{
    tr_kube_client *client = userdata;
    char reason[512];

    client->probe = NULL;
    if (client->closing) {
        maybe_free(client);
        return;
    }
    if (resp->result != TR_OK) {
        snprintf(reason, sizeof(reason), "%s: %s", client->conn->server, resp->message);
        set_unavailable(client, reason);
    } else if (resp->status == 200 || resp->status == 401 || resp->status == 403) {
        if (resp->status == 401)
            tr_kube_client_auth_rejected(client);
        char *version = resp->status == 200 ? parse_version(resp->body, resp->body_len)
                                            : tr_strdup("version hidden");
        tr_free(client->version);
        client->version = version;
        set_connected(client, version ? version : "unknown version", resp->status != 200);
    } else {
        snprintf(reason, sizeof(reason), "%s answered HTTP %ld to GET /version",
                 client->conn->server, resp->status);
        set_unavailable(client, reason);
    }
}

static void on_probe_auth(int rc, const char *message, void *userdata)
{
    tr_kube_client *client = userdata;

    if (rc == TR_OK)
        attempt(client);
    else
        set_unavailable(client, message);
}

static void attempt(tr_kube_client *client)
{
    tr_http_request req;
    tr_kube_prepared prep;
    tr_error err = { 0 };
    int rc;

    if (client->closing)
        return;
    if (client->conn == NULL) {
        rc = tr_kubeconfig_resolve(&client->conn, client->kubeconfig, client->context,
                                   client->sa_dir, &err);
        if (rc != TR_OK) {
            client->conn = NULL;
            set_unavailable(client, err.message);
            return;
        }
    }
    rc = tr_kube_client_auth_wait(client, on_probe_auth, client, &err);
    if (rc == TR_EBUSY)
        return;
    if (rc != TR_OK) {
        set_unavailable(client, err.message);
        return;
    }
    memset(&req, 0, sizeof(req));
    req.method = TR_HTTP_GET;
    req.timeout_ms = PROBE_TIMEOUT_MS;
    req.max_response_bytes = 64 * 1024;
    req.on_done = on_probe_done;
    req.userdata = client;
    rc = tr_kube_client_prepare(client, &req, "/version", &prep, &err);
    if (rc == TR_OK)
        rc = tr_http_client_send(client->http, &req, &client->probe, &err);
    tr_kube_prepared_dispose(&prep);
    if (rc != TR_OK) {
        client->probe = NULL;
        set_unavailable(client, err.message);
    }
}

int tr_kube_client_prepare(tr_kube_client *client, tr_http_request *req, const char *path,
                           tr_kube_prepared *prep, tr_error *err)
{
    const tr_kube_conn *conn = client->conn;
    const tr_kube_exec_cred *cred = NULL;
    tr_buf url = TR_BUF_INIT(16 * 1024);
    tr_buf auth = TR_BUF_INIT(TR_KUBE_TOKEN_MAX_BYTES + 64);
    char *token = NULL;
    int n = 0;
    int rc;

    memset(prep, 0, sizeof(*prep));
    if (conn == NULL)
        return tr_error_set(err, TR_EUNAVAILABLE, "no Kubernetes cluster configured");
    if (conn->exec) {
        cred = client->auth ? tr_kube_auth_current(client->auth) : NULL;
        if (cred == NULL)
            return tr_error_set(err, TR_EBUSY, "credentials from the exec plugin \"%s\" are not "
                                "ready (call tr_kube_client_auth_wait first)", conn->exec->command);
    }
    rc = tr_buf_printf(&url, "%s%s", conn->server, path);
    if (rc != TR_OK)
        goto cleanup;
    /* Projected service-account tokens rotate: read the file for each request. */
    if (conn->token_file) {
        rc = tr_kube_token_read(&token, conn->token_file, err);
        if (rc != TR_OK)
            goto cleanup;
    }
    if (cred && cred->token) {
        rc = tr_buf_printf(&auth, "Authorization: Bearer %s", cred->token);
        if (rc != TR_OK)
            goto cleanup;
        prep->auth_header = tr_buf_detach(&auth);
        if (prep->auth_header == NULL) {
            rc = TR_ENOMEM;
            goto cleanup;
        }
        prep->headers[n++] = prep->auth_header;
    } else if (cred == NULL && (token || conn->token)) {
        rc = tr_buf_printf(&auth, "Authorization: Bearer %s", token ? token : conn->token);
        if (rc != TR_OK)
            goto cleanup;
        prep->auth_header = tr_buf_detach(&auth);
        if (prep->auth_header == NULL) {
            rc = TR_ENOMEM;
            goto cleanup;
        }
        prep->headers[n++] = prep->auth_header;
    }
    prep->headers[n++] = "Accept: application/json";
    prep->headers[n] = NULL;
    prep->url = tr_buf_detach(&url);
    if (prep->url == NULL) {
        rc = TR_ENOMEM;
        goto cleanup;
    }
    req->url = prep->url;
    req->headers = prep->headers;
    req->ca_file = conn->ca_file;
    req->ca_pem = conn->ca_pem;
    req->client_cert_file = conn->client_cert_file;
    req->client_cert_pem = conn->client_cert_pem;
    req->client_key_file = conn->client_key_file;
    req->client_key_pem = conn->client_key_pem;
    if (cred && cred->client_cert_pem) {
        /* A certificate from the plugin replaces the kubeconfig's (client-go does the same). */
        req->client_cert_file = NULL;
        req->client_key_file = NULL;
        req->client_cert_pem = cred->client_cert_pem;
        req->client_key_pem = cred->client_key_pem;
    }
    req->insecure_skip_verify = conn->insecure;
    req->basic_user = conn->username;
    req->basic_password = conn->password;
cleanup:
    if (token) {
        memset(token, 0, strlen(token));
        tr_free(token);
    }
    tr_buf_dispose(&url);
    if (auth.ptr)
        memset(auth.ptr, 0, auth.len);
    tr_buf_dispose(&auth);
    if (rc != TR_OK) {
        tr_kube_prepared_dispose(prep);
        if (rc == TR_ENOMEM || rc == TR_ETOOBIG)
            tr_error_set(err, rc, "preparing request to %s: %s", path, tr_strerror(rc));
    }
    return rc;
}

void tr_kube_prepared_dispose(tr_kube_prepared *prep)
{
    if (prep == NULL)
        return;
    tr_free(prep->url);
    if (prep->auth_header) {
        memset(prep->auth_header, 0, strlen(prep->auth_header));
        tr_free(prep->auth_header);
    }
    memset(prep, 0, sizeof(*prep));
}

int tr_kube_client_new(tr_kube_client **out, uv_loop_t *loop, tr_http_client *http,
                       tr_health *health, const tr_kube_client_options *options,
                       tr_error *err)
{
    tr_kube_client *client = tr_calloc(1, sizeof(*client));

    *out = NULL;
    if (client == NULL)
        return tr_error_set(err, TR_ENOMEM, "kubernetes client: out of memory");
    client->loop = loop;
    client->http = http;
    client->health = health;
    client->kubeconfig = tr_strdup(options->kubeconfig ? options->kubeconfig : "auto");
    client->context = options->context && *options->context ? tr_strdup(options->context)
                                                            : NULL;
    client->sa_dir = options->sa_dir ? tr_strdup(options->sa_dir) : NULL;
    client->backoff_initial_ms = options->backoff_initial_ms ? options->backoff_initial_ms : 800;
    client->backoff_max_ms = options->backoff_max_ms ? options->backoff_max_ms : 30000;
    client->exec_timeout_ms = options->exec_timeout_ms;
    client->on_state = options->on_state;
    client->userdata = options->userdata;
    if (client->kubeconfig == NULL) {
        tr_free(client->context);
        tr_free(client->sa_dir);
        tr_free(client);
        return tr_error_set(err, TR_ENOMEM, "kubernetes client: out of memory");
    }
    uv_timer_init(loop, &client->timer);
    client->timer.data = client;
    (void)tr_health_set(health, "kubernetes", TR_HEALTH_STARTING, "connecting");
    *out = client;
    return TR_OK;
}

int tr_kube_client_start(tr_kube_client *client)
{
    attempt(client);
    return TR_OK;
}

int tr_kube_client_connected(const tr_kube_client *client)
{
    return client->reach == REACH_OK;
}

const char *tr_kube_client_server_version(const tr_kube_client *client)
{
    return client->version;
}

void tr_kube_client_close(tr_kube_client *client)
{
    if (client == NULL || client->closing)
        return;
    client->closing = 1;
    uv_timer_stop(&client->timer);
    uv_close((uv_handle_t *)&client->timer, on_timer_closed);
    tr_kube_auth_close(client->auth);
    client->auth = NULL;
    if (client->probe)
        tr_http_call_cancel(client->probe);
}

int tr_kube_client_auth_wait(tr_kube_client *client, tr_kube_auth_cb cb, void *userdata,
                             tr_error *err)
{
    int rc;

    if (client->closing)
        return tr_error_set(err, TR_ECANCELLED, "kubernetes client is closing");
    if (client->conn == NULL)
        return tr_error_set(err, TR_EUNAVAILABLE, "no Kubernetes cluster configured");
    if (client->conn->exec == NULL)
        return TR_OK;
    if (client->auth == NULL) {
        rc = tr_kube_auth_new(&client->auth, client->loop, client->conn, client->exec_timeout_ms,
                              err);
        if (rc != TR_OK)
            return rc;
    }
    return tr_kube_auth_wait(client->auth, cb, userdata, err);
}

void tr_kube_client_auth_cancel(tr_kube_client *client, void *userdata)
{
    if (client)
        tr_kube_auth_cancel(client->auth, userdata);
}

void tr_kube_client_auth_rejected(tr_kube_client *client)
{
    /* Token files are re-read for every request already; only plugin output is cached. */
    if (client && client->auth)
        tr_kube_auth_invalidate(client->auth);
}

unsigned long tr_kube_client_exec_runs(const tr_kube_client *client)
{
    return client->auth ? tr_kube_auth_runs(client->auth) : 0;
}

/* ---- API discovery --------------------------------------------------------- */

struct tr_kube_discovery {
    tr_kube_client *client;
    tr_http_client *http;
    char *path;
    char *resource;
    tr_kube_discover_cb cb;
    void *userdata;
    tr_http_call *call;
    int cancelled;
};

static void discovery_free(tr_kube_discovery *d)
{
    tr_free(d->path);
    tr_free(d->resource);
    tr_free(d);
}

static int discovery_lists(const char *body, size_t len, const char *resource, int *served)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "resources");
    const cJSON *item;

    *served = 0;
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(root);
        return TR_EPARSE;
    }
    cJSON_ArrayForEach(item, list) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");

        if (cJSON_IsString(name) && strcmp(name->valuestring, resource) == 0)
            *served = 1;
    }
    cJSON_Delete(root);
    return TR_OK;
}

static void on_discovery_done(const tr_http_response *resp, void *userdata)
{
    tr_kube_discovery *d = userdata;
    char message[TR_ERROR_MSG_MAX] = "";
    int rc = TR_OK, served = 0;

    d->call = NULL;
    if (d->cancelled) {
        discovery_free(d);
        return;
    }
    if (resp->result != TR_OK) {
        rc = resp->result == TR_ETIMEOUT ? TR_ETIMEOUT : TR_EUNAVAILABLE;
        snprintf(message, sizeof(message), "GET %s: %s", d->path, resp->message);
    } else if (resp->status == 200) {
        rc = discovery_lists(resp->body, resp->body_len, d->resource, &served);
        if (rc != TR_OK)
            snprintf(message, sizeof(message), "GET %s: not an APIResourceList", d->path);
    } else if (resp->status == 404) {
        served = 0;
    } else {
        if (resp->status == 401)
            tr_kube_client_auth_rejected(d->client);
        rc = resp->status == 401 || resp->status == 403 ? TR_EAUTH : TR_EHTTP;
        snprintf(message, sizeof(message), "GET %s: HTTP %ld", d->path, resp->status);
    }
    d->cb(rc, served, message, d->userdata);
    discovery_free(d);
}

static int discovery_send(tr_kube_discovery *d, tr_error *err)
{
    tr_http_request req;
    tr_kube_prepared prep;
    int rc;

    memset(&req, 0, sizeof(req));
    req.method = TR_HTTP_GET;
    req.timeout_ms = PROBE_TIMEOUT_MS;
    req.max_response_bytes = 4 * 1024 * 1024;
    req.on_done = on_discovery_done;
    req.userdata = d;
    rc = tr_kube_client_prepare(d->client, &req, d->path, &prep, err);
    if (rc == TR_OK)
        rc = tr_http_client_send(d->http, &req, &d->call, err);
    tr_kube_prepared_dispose(&prep);
    return rc;
}

static void on_discovery_auth(int rc, const char *message, void *userdata)
{
    tr_kube_discovery *d = userdata;
    tr_error err = { 0 };

    if (rc == TR_OK && (rc = discovery_send(d, &err)) == TR_OK)
        return;
    d->cb(rc, 0, rc == TR_OK ? "" : (err.message[0] ? err.message : message), d->userdata);
    discovery_free(d);
}

int tr_kube_discover(tr_kube_discovery **out, tr_kube_client *client, tr_http_client *http,
                     const char *group, const char *version, const char *resource,
                     tr_kube_discover_cb cb, void *userdata, tr_error *err)
{
    tr_kube_discovery *d = tr_calloc(1, sizeof(*d));
    tr_buf path = TR_BUF_INIT(4096);
    int rc;

    if (out)
        *out = NULL;
    if (d == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    rc = group && *group ? tr_buf_printf(&path, "/apis/%s/%s", group, version)
                         : tr_buf_printf(&path, "/api/%s", version);
    d->path = tr_buf_detach(&path);
    d->resource = tr_strdup(resource);
    if (rc != TR_OK || d->path == NULL || d->resource == NULL) {
        tr_buf_dispose(&path);
        discovery_free(d);
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    }
    d->client = client;
    d->http = http;
    d->cb = cb;
    d->userdata = userdata;
    rc = tr_kube_client_auth_wait(client, on_discovery_auth, d, err);
    if (rc == TR_OK)
        rc = discovery_send(d, err);
    else if (rc == TR_EBUSY)
        rc = TR_OK;
    if (rc != TR_OK) {
        discovery_free(d);
        return rc;
    }
    if (out)
        *out = d;
    return TR_OK;
}

void tr_kube_discover_cancel(tr_kube_discovery *d)
{
    if (d == NULL)
        return;
    if (d->call) {
        d->cancelled = 1;
        tr_http_call_cancel(d->call); /* on_discovery_done frees */
        return;
    }
    tr_kube_client_auth_cancel(d->client, d);
    discovery_free(d);
}
