/*
 * kube_lease.c - Lease leader election (see kube_lease.h for the protocol).
 *
 * One round = GET the Lease, then at most one write: POST when it does not
 * exist, PUT (compare-and-swap on resourceVersion) when it is free, expired
 * or ours. Rounds run every retry_period, one at a time; a round's requests
 * time out after renew_deadline / 2 so a hung apiserver cannot hold a leader
 * past its deadline, and the deadline is also checked on every tick while a
 * call is still in flight.
 */
#include "kube_lease.h"
#include "alloc.h"
#include "buf.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MOD "kubernetes"
#define MAX_BODY_BYTES ((size_t)256 * 1024)
#define MAX_NAME_LEN 253

enum call_kind { CALL_NONE = 0, CALL_GET, CALL_CREATE, CALL_UPDATE, CALL_RELEASE };

struct tr_kube_lease {
    uv_loop_t *loop;
    tr_kube_client *client;
    tr_http_client *http;
    uv_timer_t timer;
    tr_http_call *call;
    enum call_kind kind;
    tr_kube_lease_options opt;
    char *ns, *name, *identity;
    char *item_path, *collection_path;
    char *holder;           /* last seen */
    char *lease_json;       /* the Lease as last written by us (for the release) */
    int64_t duration_s;
    uint64_t last_renew_ms; /* uv_now of the last successful acquire or renew */
    unsigned long transitions, conflicts;
    char last_error[256];   /* to log a repeated failure once */
    int leader, started, stopping, released, closing, timer_closed, waiting_auth;
    void (*stop_done)(void *);
    void *stop_userdata;
};

static void schedule(tr_kube_lease *l, uint64_t delay_ms);
static void send_round(tr_kube_lease *l);

static int64_t now_unix_us(void)
{
    struct timeval tv;

    (void)gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* ---- the elector ------------------------------------------------------------ */

static void maybe_free(tr_kube_lease *l)
{
    if (!l->closing || !l->timer_closed || l->call != NULL)
        return;
    tr_free(l->ns);
    tr_free(l->name);
    tr_free(l->identity);
    tr_free(l->item_path);
    tr_free(l->collection_path);
    tr_free(l->holder);
    tr_free(l->lease_json);
    tr_free(l);
}

static void on_timer_closed(uv_handle_t *handle)
{
    tr_kube_lease *l = handle->data;

    l->timer_closed = 1;
    maybe_free(l);
}

static void set_holder(tr_kube_lease *l, const char *holder)
{
    char *copy;

    if (l->holder && strcmp(l->holder, holder) == 0)
        return;
    if (*holder)
        tr_log_info(MOD, "lease %s/%s: held by %s", l->ns, l->name, holder);
    if ((copy = tr_strdup(holder)) != NULL) {
        tr_free(l->holder);
        l->holder = copy;
    }
    if (l->opt.on_holder)
        l->opt.on_holder(l, holder, l->opt.userdata);
}

static void set_leader(tr_kube_lease *l, int leader)
{
    if (l->leader == leader)
        return;
    l->leader = leader;
    l->transitions++;
    tr_log_info(MOD, "lease %s/%s: %s leader (%s)", l->ns, l->name,
                leader ? "became" : "no longer", l->identity);
    if (l->opt.on_change)
        l->opt.on_change(l, leader, l->opt.userdata);
}

/* A leader that has not renewed for renew_deadline must stop acting as one. */
static void check_deadline(tr_kube_lease *l)
{
    if (l->leader && uv_now(l->loop) - l->last_renew_ms >= l->opt.renew_deadline_ms) {
        tr_log_warn(MOD, "lease %s/%s: not renewed for %llu ms; stepping down", l->ns, l->name,
                    (unsigned long long)(uv_now(l->loop) - l->last_renew_ms));
        set_leader(l, 0);
    }
}

static void finish_stop(tr_kube_lease *l)
{
    void (*done)(void *) = l->stop_done;

    l->stop_done = NULL;
    l->released = 1;
    if (done)
        done(l->stop_userdata);
}

static void round_failed(tr_kube_lease *l, const char *what)
{
    if (strcmp(l->last_error, what) != 0) {
        tr_log_warn(MOD, "lease %s/%s: %s; retrying every %llu ms", l->ns, l->name, what,
                    (unsigned long long)l->opt.retry_period_ms);
        snprintf(l->last_error, sizeof(l->last_error), "%s", what);
    }
    check_deadline(l);
    schedule(l, l->opt.retry_period_ms);
}

static void round_ok(tr_kube_lease *l)
{
    if (l->last_error[0])
        tr_log_info(MOD, "lease %s/%s: the apiserver answers again", l->ns, l->name);
    l->last_error[0] = '\0';
}

static void keep_written(tr_kube_lease *l, const tr_http_response *resp)
{
    char *copy = tr_strndup(resp->body, resp->body_len);

    if (copy) {
        tr_free(l->lease_json);
        l->lease_json = copy;
    }
}

static void on_written(tr_kube_lease *l, const tr_http_response *resp)
{
    char what[200];

    if (resp->status == 200 || resp->status == 201) {
        round_ok(l);
        keep_written(l, resp);
        l->last_renew_ms = uv_now(l->loop);
        set_holder(l, l->identity);
        set_leader(l, 1);
        schedule(l, l->opt.retry_period_ms);
        return;
    }
    if (resp->status == 409) {
        /* Another replica wrote first: look again next round. */
        l->conflicts++;
        tr_log_debug(MOD, "lease %s/%s: conflict, another replica wrote first", l->ns, l->name);
        check_deadline(l);
        schedule(l, l->opt.retry_period_ms);
        return;
    }
    if (resp->status == 401)
        tr_kube_client_auth_rejected(l->client);
    snprintf(what, sizeof(what), "%s answered %ld", l->kind == CALL_CREATE ? "create" : "update",
             resp->status);
    round_failed(l, what);
}

static void send_call(tr_kube_lease *l, enum call_kind kind, char *body);

static void on_read(tr_kube_lease *l, const tr_http_response *resp)
{
    tr_kube_lease_record rec;
    tr_kube_lease_action action;
    tr_error err = { 0 };
    char *body = NULL;
    char what[300];
    int64_t now_us = now_unix_us();

    if (resp->status == 404) {
        if (tr_kube_lease_build_create(&body, l->ns, l->name, l->identity, now_us,
                                       l->duration_s, &err) != TR_OK) {
            round_failed(l, err.message);
            return;
        }
        send_call(l, CALL_CREATE, body);
        return;
    }
    if (resp->status != 200) {
        if (resp->status == 401)
            tr_kube_client_auth_rejected(l->client);
        snprintf(what, sizeof(what), "read answered %ld%s", resp->status,
                 resp->status == 403 ? " (RBAC: get/create/update on leases in this namespace "
                                       "is needed)" : "");
        round_failed(l, what);
        return;
    }
    if (tr_kube_lease_record_parse(&rec, resp->body, resp->body_len, &err) != TR_OK) {
        round_failed(l, err.message);
        return;
    }
    round_ok(l);
    set_holder(l, rec.holder);
    action = tr_kube_lease_decide(&rec, l->identity, now_us);
    tr_kube_lease_record_dispose(&rec);
    if (action == TR_KUBE_LEASE_FOLLOW) {
        /* Someone else holds a valid Lease: if we thought we led, we do not. */
        set_leader(l, 0);
        schedule(l, l->opt.retry_period_ms + (uint64_t)random() % (l->opt.retry_period_ms / 5 + 1));
        return;
    }
    if (tr_kube_lease_build_update(&body, resp->body, resp->body_len, action, l->identity,
                                   now_us, l->duration_s, &err) != TR_OK) {
        round_failed(l, err.message);
        return;
    }
    send_call(l, CALL_UPDATE, body);
}

static void on_call_done(const tr_http_response *resp, void *userdata)
{
    tr_kube_lease *l = userdata;
    enum call_kind kind = l->kind;

    l->call = NULL;
    l->kind = CALL_NONE;
    if (l->closing) {
        maybe_free(l);
        return;
    }
    if (kind == CALL_RELEASE) {
        if (resp->result != TR_OK || resp->status != 200)
            tr_log_warn(MOD, "lease %s/%s: release failed (%ld %s); it expires by itself",
                        l->ns, l->name, resp->status, resp->message);
        else
            tr_log_info(MOD, "lease %s/%s: released", l->ns, l->name);
        finish_stop(l);
        return;
    }
    if (l->stopping) {
        /* A write that went through makes us the holder: release that version. */
        if (resp->result == TR_OK && (resp->status == 200 || resp->status == 201) &&
            kind != CALL_GET)
            keep_written(l, resp);
        send_round(l);
        return;
    }
    if (resp->result != TR_OK) {
        round_failed(l, resp->message);
        return;
    }
    if (kind == CALL_GET)
        on_read(l, resp);
    else
        on_written(l, resp);
}

static void send_call(tr_kube_lease *l, enum call_kind kind, char *body)
{
    tr_http_request req;
    tr_kube_prepared prep;
    tr_error err = { 0 };
    const char *headers[6];
    size_t i, n = 0;
    int rc;

    memset(&req, 0, sizeof(req));
    memset(&prep, 0, sizeof(prep));
    req.method = kind == CALL_GET ? TR_HTTP_GET : kind == CALL_CREATE ? TR_HTTP_POST : TR_HTTP_PUT;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    req.timeout_ms = (long)(l->opt.renew_deadline_ms / 2);
    req.connect_timeout_ms = req.timeout_ms;
    req.max_response_bytes = MAX_BODY_BYTES;
    req.on_done = on_call_done;
    req.userdata = l;
    rc = tr_kube_client_prepare(l->client, &req,
                                kind == CALL_CREATE ? l->collection_path : l->item_path, &prep,
                                &err);
    if (rc == TR_OK) {
        /* prep holds at most three lines and its NULL; room is left for ours. */
        for (i = 0; i < 4 && prep.headers[i]; i++)
            headers[n++] = prep.headers[i];
        if (body)
            headers[n++] = "Content-Type: application/json";
        headers[n] = NULL;
        req.headers = headers;
        rc = tr_http_client_send(l->http, &req, &l->call, &err);
    }
    tr_kube_prepared_dispose(&prep);
    tr_free(body);
    if (rc != TR_OK) {
        l->call = NULL;
        if (kind == CALL_RELEASE) {
            finish_stop(l);
            return;
        }
        round_failed(l, err.message);
        return;
    }
    l->kind = kind;
}

static void on_auth(int rc, const char *message, void *userdata)
{
    tr_kube_lease *l = userdata;

    l->waiting_auth = 0;
    if (l->closing)
        return;
    if (rc != TR_OK && !l->stopping) {
        round_failed(l, message);
        return;
    }
    send_round(l);
}

/* The next step: a release while stopping, else a read that starts a round. */
static void send_round(tr_kube_lease *l)
{
    tr_error err = { 0 };
    char *body = NULL;
    int rc;

    if (l->closing || l->call || l->waiting_auth || l->released)
        return;
    if (l->stopping) {
        if (l->leader) {
            set_leader(l, 0);
            if (l->lease_json &&
                tr_kube_lease_build_update(&body, l->lease_json, strlen(l->lease_json),
                                           TR_KUBE_LEASE_RELEASE, l->identity, now_unix_us(),
                                           l->duration_s, &err) == TR_OK) {
                send_call(l, CALL_RELEASE, body);
                return;
            }
        }
        finish_stop(l);
        return;
    }
    rc = tr_kube_client_auth_wait(l->client, on_auth, l, &err);
    if (rc == TR_EBUSY) {
        l->waiting_auth = 1;
        return;
    }
    if (rc != TR_OK) {
        round_failed(l, err.message);
        return;
    }
    send_call(l, CALL_GET, NULL);
}

static void on_tick(uv_timer_t *timer)
{
    tr_kube_lease *l = timer->data;

    check_deadline(l);
    if (l->call || l->waiting_auth) {
        schedule(l, l->opt.retry_period_ms);
        return;
    }
    send_round(l);
}

static void schedule(tr_kube_lease *l, uint64_t delay_ms)
{
    if (!l->closing && !l->stopping)
        uv_timer_start(&l->timer, on_tick, delay_ms, 0);
}

/* ---- lifecycle ---------------------------------------------------------------- */

static char *default_namespace(const char *file)
{
    char buf[MAX_NAME_LEN + 2];
    FILE *f = fopen(file ? file : TR_KUBE_LEASE_NAMESPACE_FILE, "r");
    size_t n = 0;

    if (f) {
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
    }
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        n--;
    if (n == 0 || n > MAX_NAME_LEN)
        return tr_strdup("default");
    return tr_strndup(buf, n);
}

/* "triaged-<cluster>" lowercased, with what a Lease name may not hold as '-'. */
static char *default_name(const char *cluster)
{
    tr_buf b = TR_BUF_INIT(MAX_NAME_LEN);
    const char *p;
    char *out;
    size_t n;
    int rc = tr_buf_puts(&b, "triaged");

    if (cluster && *cluster && rc == TR_OK)
        rc = tr_buf_putc(&b, '-');
    for (p = cluster ? cluster : ""; *p && rc == TR_OK && b.len < 200; p++) {
        char c = (char)tolower((unsigned char)*p);

        rc = tr_buf_putc(&b, (isalnum((unsigned char)c) || c == '.' || c == '-') ? c : '-');
    }
    if (rc != TR_OK) {
        tr_buf_dispose(&b);
        return NULL;
    }
    out = tr_buf_detach(&b);
    /* A name must end in an alphanumeric character. */
    for (n = out ? strlen(out) : 0; n > 0 && (out[n - 1] == '-' || out[n - 1] == '.'); n--)
        out[n - 1] = '\0';
    return out;
}

static char *default_identity(void)
{
    char host[256];
    tr_buf b = TR_BUF_INIT(512);

    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "unknown");
    host[sizeof(host) - 1] = '\0';
    if (tr_buf_printf(&b, "%s_%ld", host, (long)getpid()) != TR_OK) {
        tr_buf_dispose(&b);
        return NULL;
    }
    return tr_buf_detach(&b);
}

int tr_kube_lease_new(tr_kube_lease **out, uv_loop_t *loop, tr_kube_client *client,
                      tr_http_client *http, const tr_kube_lease_options *options,
                      tr_error *err)
{
    tr_kube_lease *l;
    tr_buf b = TR_BUF_INIT(1024);
    int rc = TR_OK;

    *out = NULL;
    if ((l = tr_calloc(1, sizeof(*l))) == NULL)
        return tr_error_set(err, TR_ENOMEM, "lease: out of memory");
    l->loop = loop;
    l->client = client;
    l->http = http;
    l->opt = *options;
    if (!l->opt.lease_duration_ms)
        l->opt.lease_duration_ms = TR_KUBE_LEASE_DEFAULT_DURATION_MS;
    if (!l->opt.renew_deadline_ms)
        l->opt.renew_deadline_ms = TR_KUBE_LEASE_DEFAULT_RENEW_DEADLINE_MS;
    if (!l->opt.retry_period_ms)
        l->opt.retry_period_ms = TR_KUBE_LEASE_DEFAULT_RETRY_PERIOD_MS;
    if (l->opt.renew_deadline_ms >= l->opt.lease_duration_ms ||
        l->opt.retry_period_ms >= l->opt.renew_deadline_ms) {
        rc = tr_error_set(err, TR_EINVAL, "leader election: need retry_period < renew_deadline "
                          "< lease_duration");
        goto cleanup;
    }
    l->duration_s = (int64_t)((l->opt.lease_duration_ms + 999) / 1000);
    l->ns = options->namespace && *options->namespace ? tr_strdup(options->namespace)
                                                      : default_namespace(options->namespace_file);
    l->name = options->name && *options->name ? tr_strdup(options->name)
                                              : default_name(options->cluster_name);
    l->identity = options->identity && *options->identity ? tr_strdup(options->identity)
                                                          : default_identity();
    l->holder = tr_strdup("");
    if (!l->ns || !l->name || !l->identity || !l->holder ||
        tr_buf_printf(&b, "/apis/coordination.k8s.io/v1/namespaces/%s/leases", l->ns) != TR_OK ||
        (l->collection_path = tr_buf_detach(&b)) == NULL ||
        tr_buf_printf(&b, "%s/%s", l->collection_path, l->name) != TR_OK ||
        (l->item_path = tr_buf_detach(&b)) == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "lease: out of memory");
        goto cleanup;
    }
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    *out = l;
cleanup:
    tr_buf_dispose(&b);
    if (rc != TR_OK) {
        l->closing = l->timer_closed = 1;
        maybe_free(l);
    }
    return rc;
}

int tr_kube_lease_start(tr_kube_lease *l)
{
    if (l->started || l->closing || l->stopping)
        return TR_EINVAL;
    l->started = 1;
    tr_log_info(MOD, "lease %s/%s: electing as %s", l->ns, l->name, l->identity);
    schedule(l, 0);
    return TR_OK;
}

static void on_stop_deferred(uv_timer_t *timer)
{
    send_round(timer->data);
}

void tr_kube_lease_stop(tr_kube_lease *l, void (*done)(void *userdata), void *userdata)
{
    if (l == NULL || l->closing || l->stopping)
        return;
    l->stopping = 1;
    l->stop_done = done;
    l->stop_userdata = userdata;
    if (l->waiting_auth) {
        tr_kube_client_auth_cancel(l->client, l);
        l->waiting_auth = 0;
    }
    /* A call in flight finishes first (it may make us the holder); its end releases. */
    if (l->call == NULL)
        uv_timer_start(&l->timer, on_stop_deferred, 0, 0);
    else
        uv_timer_stop(&l->timer);
}

int tr_kube_lease_is_leader(const tr_kube_lease *l)
{
    return l->leader;
}

const char *tr_kube_lease_holder(const tr_kube_lease *l)
{
    return l->holder;
}

const char *tr_kube_lease_identity(const tr_kube_lease *l)
{
    return l->identity;
}

const char *tr_kube_lease_namespace(const tr_kube_lease *l)
{
    return l->ns;
}

const char *tr_kube_lease_name(const tr_kube_lease *l)
{
    return l->name;
}

unsigned long tr_kube_lease_transitions(const tr_kube_lease *l)
{
    return l->transitions;
}

unsigned long tr_kube_lease_conflicts(const tr_kube_lease *l)
{
    return l->conflicts;
}

void tr_kube_lease_close(tr_kube_lease *l)
{
    if (l == NULL || l->closing)
        return;
    l->closing = 1;
    if (l->waiting_auth)
        tr_kube_client_auth_cancel(l->client, l);
    l->waiting_auth = 0;
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, on_timer_closed);
    if (l->call)
        tr_http_call_cancel(l->call);
}
