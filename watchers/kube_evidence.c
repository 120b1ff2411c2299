/*
 * kube_evidence.c - one gathering: a small graph of GETs, each answer
 * deciding what to ask next.
 *
 *   start -- object --(workload, no pods in the facts)-- pods by selector -+
 *        +-- events of the object                                          |
 *        +-- pods named in facts.pods -------------------------------------|
 *   each pod (at most max_pods) -- its events, its node (first pod only),  |
 *        previous and current logs of its failing containers  <------------+
 *
 * The gathering ends when no request is left, or at its deadline (what is
 * still out is cancelled and listed in "not_collected"). Every answer is
 * trimmed and redacted as it arrives, so nothing unmasked is held longer
 * than one callback. A missing previous log (400/404: the container never
 * restarted, or its log is gone) is normal and not reported.
 */
#include "kube_evidence.h"
#include "kube_evidence_internal.h"

#include "alloc.h"
#include "log.h"
#include "redact.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CALLS 48               /* per gathering */
#define NOT_COLLECTED_MAX 16
#define OBJECT_MAX_BYTES ((size_t)4 * 1024 * 1024)
#define LIST_MAX_BYTES ((size_t)16 * 1024 * 1024)
#define EVENTS_LIMIT 200           /* per list: the newest matter, they are sorted later */
#define LOG_LIMIT_FACTOR 16        /* limitBytes asked = max_bytes * this (see ask_log) */
#define LOG_SCAN_FACTOR 8          /* tailLines asked = log_tail_lines * this: error windows */


/* ------------------------------------------------------------ lifetime */

static void ev_maybe_free(tr_kube_evidence *ev)
{
    if (ev->closing && ev->alive == 0)
        tr_free(ev);
}

static void request_free(request *r)
{
    tr_free(r->path);
    tr_free(r->pod);
    tr_free(r->container);
    tr_free(r);
}

static void gathering_maybe_free(tr_kube_gathering *g)
{
    tr_kube_evidence *ev = g->ev;

    if (!g->done || g->requests != NULL || g->timer_open || g->waiting_auth)
        return;
    tr_free(g->ns);
    tr_free(g->kind);
    tr_free(g->name);
    tr_free(g->container);
    cJSON_Delete(g->fact_pods);
    cJSON_Delete(g->sections);
    cJSON_Delete(g->pod_names);
    cJSON_Delete(g->event_uids);
    tr_redact_ctx_free(g->redact);
    tr_free(g);
    ev->alive--;
    ev_maybe_free(ev);
}

static void on_deadline_closed(uv_handle_t *handle)
{
    tr_kube_gathering *g = handle->data;

    g->timer_open = 0;
    gathering_maybe_free(g);
}

static void unlink_gathering(tr_kube_gathering *g)
{
    if (g->prev)
        g->prev->next = g->next;
    else if (g->ev->head == g)
        g->ev->head = g->next;
    if (g->next)
        g->next->prev = g->prev;
    g->prev = g->next = NULL;
}

/* No more callbacks: stop the timer and what is in flight. */
static void wind_down(tr_kube_gathering *g)
{
    g->done = 1;
    unlink_gathering(g);
    for (request *r = g->requests; r; r = r->next)
        tr_http_call_cancel(r->call);
    if (g->waiting_auth) {
        tr_kube_client_auth_cancel(g->ev->client, g);
        g->waiting_auth = 0;
    }
    if (g->timer_open && !uv_is_closing((uv_handle_t *)&g->deadline)) {
        uv_timer_stop(&g->deadline);
        uv_close((uv_handle_t *)&g->deadline, on_deadline_closed);
    }
}

/* ------------------------------------------------------------ sections */

cJSON *ke_section_array(tr_kube_gathering *g, const char *name)
{
    cJSON *s = cJSON_GetObjectItemCaseSensitive(g->sections, name);

    if (s == NULL)
        s = cJSON_AddArrayToObject(g->sections, name);
    return s;
}

/* Record what could not be read (bounded), redacted like the rest. */
void ke_note(tr_kube_gathering *g, const char *fmt, ...)
{
    cJSON *list = ke_section_array(g, "not_collected");
    char line[512];
    char *masked;
    va_list ap;

    if (list == NULL || cJSON_GetArraySize(list) >= NOT_COLLECTED_MAX)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    masked = tr_redact_dup_ctx(g->redact, line);
    if (masked)
        cJSON_AddItemToArray(list, cJSON_CreateString(masked));
    tr_free(masked);
}

/* Redact item and append it to the section array (item is consumed). */
int ke_keep(tr_kube_gathering *g, const char *section, cJSON *item)
{
    cJSON *list;

    if (item == NULL)
        return TR_ENOMEM;
    if (tr_redact_json_ctx(g->redact, item) != TR_OK ||
        (list = ke_section_array(g, section)) == NULL) {
        cJSON_Delete(item);
        return TR_ENOMEM;
    }
    cJSON_AddItemToArray(list, item);
    return TR_OK;
}

/* ------------------------------------------------------------ requests */

static void on_request_done(const tr_http_response *resp, void *userdata);


void ke_ask(tr_kube_gathering *g, req_kind kind, tr_buf *path, const char *pod,
            const char *container)
{
    tr_kube_evidence *ev = g->ev;
    tr_http_request req;
    tr_kube_prepared prep;
    tr_error err = { 0 };
    request *r;
    int rc;

    if (g->calls_made >= MAX_CALLS) {
        ke_note(g, "GET %s: skipped, %d requests per incident at most", tr_buf_cstr(path),
                MAX_CALLS);
        return;
    }
    r = tr_calloc(1, sizeof(*r));
    if (r == NULL || (r->path = tr_strdup(tr_buf_cstr(path))) == NULL ||
        (pod && (r->pod = tr_strdup(pod)) == NULL) ||
        (container && (r->container = tr_strdup(container)) == NULL)) {
        if (r)
            request_free(r);
        ke_note(g, "GET %s: out of memory", tr_buf_cstr(path));
        return;
    }
    r->g = g;
    r->kind = kind;
    memset(&req, 0, sizeof(req));
    req.method = TR_HTTP_GET;
    req.timeout_ms = (long)ev->opt.request_timeout_ms;
    req.max_response_bytes = kind == REQ_EVENTS || kind == REQ_POD_LIST ? LIST_MAX_BYTES
                             : kind == REQ_LOG_PREVIOUS || kind == REQ_LOG_CURRENT
                                 ? (size_t)ev->opt.log_max_bytes * LOG_LIMIT_FACTOR + 65536
                                 : OBJECT_MAX_BYTES;
    req.on_done = on_request_done;
    req.userdata = r;
    rc = tr_kube_client_prepare(ev->client, &req, r->path, &prep, &err);
    if (rc == TR_OK)
        rc = tr_http_client_send(ev->http, &req, &r->call, &err);
    tr_kube_prepared_dispose(&prep);
    if (rc != TR_OK) {
        ke_note(g, "GET %s: %s", r->path, err.message);
        request_free(r);
        return;
    }
    g->calls_made++;
    r->next = g->requests;
    g->requests = r;
}

void ke_ask_events(tr_kube_gathering *g, const char *kind, const char *name)
{
    tr_buf path = TR_BUF_INIT(8192), selector = TR_BUF_INIT(1024);
    int rc;

    rc = tr_buf_printf(&selector, "involvedObject.kind=%s,involvedObject.name=%s", kind, name);
    if (rc == TR_OK)
        rc = g->ns[0] ? tr_buf_printf(&path, "/api/v1/namespaces/%s/events?fieldSelector=",
                                      g->ns)
                      : tr_buf_puts(&path, "/api/v1/events?fieldSelector=");
    if (rc == TR_OK)
        rc = tr_buf_put_escaped(&path, tr_buf_cstr(&selector));
    if (rc == TR_OK)
        rc = tr_buf_printf(&path, "&limit=%d", EVENTS_LIMIT);
    if (rc == TR_OK)
        ke_ask(g, REQ_EVENTS, &path, NULL, NULL);
    tr_buf_dispose(&path);
    tr_buf_dispose(&selector);
}

/*
 * limitBytes counts from the start of the tail window (the kubelet seeks to
 * the tail first), so a tight value would cut the newest lines: ask for a
 * few times the cap and keep the tail here. Several times the tail lines are
 * asked for so that an exception logged before the tail can still be shown
 * (tr_kube_log_condense keeps windows around error lines); limitBytes leaves
 * room for about max_bytes * 2 / tail_lines bytes per line.
 */
void ke_ask_log(tr_kube_gathering *g, const char *pod, const char *container, int previous)
{
    const tr_kube_evidence_options *o = &g->ev->opt;
    tr_buf path = TR_BUF_INIT(8192);
    int rc;

    rc = tr_buf_printf(&path, "/api/v1/namespaces/%s/pods/%s/log?container=", g->ns, pod);
    if (rc == TR_OK)
        rc = tr_buf_put_escaped(&path, container);
    if (rc == TR_OK)
        rc = tr_buf_printf(&path, "%s&tailLines=%" PRId64 "&limitBytes=%" PRId64,
                           previous ? "&previous=true" : "",
                           o->log_tail_lines * LOG_SCAN_FACTOR,
                           o->log_max_bytes * LOG_LIMIT_FACTOR);
    if (rc == TR_OK)
        ke_ask(g, previous ? REQ_LOG_PREVIOUS : REQ_LOG_CURRENT, &path, pod, container);
    tr_buf_dispose(&path);
}

void ke_ask_object(tr_kube_gathering *g, req_kind kind, const char *obj_kind,
                   const char *name, int alt)
{
    tr_buf path = TR_BUF_INIT(8192);

    if (tr_kube_object_path(&path, obj_kind, g->ns, name, alt) == TR_OK)
        ke_ask(g, kind, &path, NULL, NULL);
    tr_buf_dispose(&path);
}


static int cmp_event_last(const void *a, const void *b)
{
    const char *x = ke_str(*(cJSON *const *)a, "last");
    const char *y = ke_str(*(cJSON *const *)b, "last");

    return strcmp(x ? x : "", y ? y : "");
}

/* Events oldest first (the fitting drops from the front), the newest max_events kept. */
static void order_events(tr_kube_gathering *g)
{
    cJSON *events = cJSON_GetObjectItemCaseSensitive(g->sections, "events");
    int n = cJSON_GetArraySize(events);
    cJSON **items;

    if (n < 2 || (items = tr_calloc((size_t)n, sizeof(cJSON *))) == NULL)
        return;
    for (int i = n - 1; i >= 0; i--)
        items[i] = cJSON_DetachItemFromArray(events, i);
    qsort(items, (size_t)n, sizeof(cJSON *), cmp_event_last);
    for (int i = 0; i < n; i++) {
        if ((size_t)(n - i) > g->ev->opt.max_events)
            cJSON_Delete(items[i]);
        else
            cJSON_AddItemToArray(events, items[i]);
    }
    tr_free(items);
}

/* Sections in TR_EVIDENCE_SECTIONS order: the reader meets the best evidence first. */
static void order_sections(tr_kube_gathering *g)
{
    static const char *const order[] = { TR_EVIDENCE_SECTIONS, "not_collected" };
    cJSON *ordered = cJSON_CreateObject();

    if (ordered == NULL)
        return; /* the order is a courtesy: keep the unordered sections */
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        cJSON *s = cJSON_DetachItemFromObjectCaseSensitive(g->sections, order[i]);

        if (s)
            cJSON_AddItemToObject(ordered, order[i], s);
    }
    cJSON_Delete(g->sections);
    g->sections = ordered;
}

static void finish(tr_kube_gathering *g)
{
    tr_kube_evidence_cb cb = g->cb;
    void *userdata = g->userdata;
    char *text;

    if (g->done)
        return;
    order_events(g);
    order_sections(g);
    text = cJSON_PrintUnformatted(g->sections);
    wind_down(g);
    cb(text ? TR_OK : TR_ENOMEM, text, userdata);
    if (text)
        cJSON_free(text);
    gathering_maybe_free(g);
}

static void on_request_done(const tr_http_response *resp, void *userdata)
{
    request *r = userdata, **link;
    tr_kube_gathering *g = r->g;

    for (link = &g->requests; *link; link = &(*link)->next)
        if (*link == r) {
            *link = r->next;
            break;
        }
    if (g->done) {
        request_free(r);
        gathering_maybe_free(g);
        return;
    }
    if (resp->result != TR_OK) {
        ke_note(g, "GET %s: %s", r->path, resp->message);
    } else if (resp->status == 200) {
        ke_take_answer(g, r, resp);
    } else if (r->kind == REQ_OBJECT && resp->status == 404 && ke_kind_known(g->kind, 1)) {
        ke_ask_object(g, REQ_OBJECT_ALT, g->kind, g->name, 1);
    } else if ((resp->status == 400 || resp->status == 404) &&
               (r->kind == REQ_LOG_PREVIOUS || r->kind == REQ_LOG_CURRENT)) {
        /* No previous instance, or a container still waiting: nothing to read. */
    } else {
        if (resp->status == 401)
            tr_kube_client_auth_rejected(g->ev->client);
        ke_note(g, "GET %s: HTTP %ld", r->path, resp->status);
    }
    request_free(r);
    if (g->requests == NULL)
        finish(g);
}

static void on_deadline(uv_timer_t *timer)
{
    tr_kube_gathering *g = timer->data;
    size_t left = 0;

    for (request *r = g->requests; r; r = r->next) {
        if (left++ < 4)
            ke_note(g, "GET %s: no answer before the %" PRIu64 " ms deadline", r->path,
                    g->ev->opt.deadline_ms);
    }
    finish(g);
}

/* ------------------------------------------------------------ start */

static void begin(tr_kube_gathering *g)
{
    const cJSON *pod;
    size_t n = 0;

    if (!ke_kind_known(g->kind, 0))
        ke_note(g, "%s objects are not read (only their events)", g->kind);
    else
        ke_ask_object(g, REQ_OBJECT, g->kind, g->name, 0);
    ke_ask_events(g, g->kind, g->name);
    cJSON_ArrayForEach(pod, g->fact_pods)
    {
        if (!cJSON_IsString(pod) || n++ >= g->ev->opt.max_pods)
            break;
        if (strcmp(g->kind, "Pod") != 0 || strcmp(pod->valuestring, g->name) != 0)
            ke_ask_object(g, REQ_POD, "Pod", pod->valuestring, 0);
    }
    /* Nothing could be asked: finish from the loop, never inside the caller's call. */
    if (g->requests == NULL)
        uv_timer_start(&g->deadline, on_deadline, 0, 0);
}

static void on_auth(int rc, const char *message, void *userdata)
{
    tr_kube_gathering *g = userdata;

    g->waiting_auth = 0;
    if (g->done) {
        gathering_maybe_free(g);
        return;
    }
    if (rc != TR_OK) {
        ke_note(g, "credentials: %s", message);
        finish(g);
        return;
    }
    begin(g);
}

static char *dup_or_empty(const char *s)
{
    return tr_strdup(s ? s : "");
}

int tr_kube_evidence_gather(tr_kube_evidence *ev, const tr_store_incident *inc,
                            tr_kube_evidence_cb cb, void *userdata, tr_kube_gathering **out,
                            tr_error *err)
{
    tr_kube_gathering *g;
    cJSON *facts;
    int rc;

    if (out)
        *out = NULL;
    if (inc->kind == NULL || inc->name == NULL || !*inc->kind || !*inc->name)
        return tr_error_set(err, TR_EINVAL, "evidence: the incident names no object");
    g = tr_calloc(1, sizeof(*g));
    if (g == NULL)
        return tr_error_set(err, TR_ENOMEM, "evidence: out of memory");
    g->ev = ev;
    g->cb = cb;
    g->userdata = userdata;
    g->ns = dup_or_empty(inc->namespace);
    g->kind = dup_or_empty(inc->kind);
    g->name = dup_or_empty(inc->name);
    g->sections = cJSON_CreateObject();
    g->pod_names = cJSON_CreateArray();
    g->event_uids = cJSON_CreateArray();
    g->redact = tr_redact_ctx_new();
    facts = inc->facts_json ? cJSON_Parse(inc->facts_json) : NULL;
    if (facts) {
        const char *container = ke_str(facts, "container");

        g->fact_pods = cJSON_DetachItemFromObjectCaseSensitive(facts, "pods");
        if (container)
            g->container = tr_strdup(container);
        cJSON_Delete(facts);
    }
    ev->alive++;
    if (!g->ns || !g->kind || !g->name || !g->sections || !g->pod_names || !g->event_uids ||
        !g->redact) {
        g->done = 1;
        gathering_maybe_free(g);
        return tr_error_set(err, TR_ENOMEM, "evidence: out of memory");
    }
    rc = tr_kube_client_auth_wait(ev->client, on_auth, g, err);
    if (rc != TR_OK && rc != TR_EBUSY) {
        g->done = 1;
        gathering_maybe_free(g);
        return rc;
    }
    g->waiting_auth = rc == TR_EBUSY;
    uv_timer_init(ev->loop, &g->deadline);
    g->deadline.data = g;
    g->timer_open = 1;
    uv_timer_start(&g->deadline, on_deadline, ev->opt.deadline_ms, 0);
    g->next = ev->head;
    if (ev->head)
        ev->head->prev = g;
    ev->head = g;
    if (!g->waiting_auth)
        begin(g);
    /* begin() may have finished already (nothing to ask): the handle is then gone. */
    if (out && !g->done)
        *out = g;
    return TR_OK;
}

void tr_kube_gathering_cancel(tr_kube_gathering *g)
{
    if (g == NULL || g->done)
        return;
    wind_down(g);
    gathering_maybe_free(g);
}

size_t tr_kube_evidence_active(const tr_kube_evidence *ev)
{
    size_t n = 0;

    for (const tr_kube_gathering *g = ev->head; g; g = g->next)
        n++;
    return n;
}

int tr_kube_evidence_new(tr_kube_evidence **out, uv_loop_t *loop, tr_kube_client *client,
                         tr_http_client *http, const tr_kube_evidence_options *options,
                         tr_error *err)
{
    tr_kube_evidence *ev = tr_calloc(1, sizeof(*ev));

    *out = NULL;
    if (ev == NULL)
        return tr_error_set(err, TR_ENOMEM, "evidence: out of memory");
    ev->loop = loop;
    ev->client = client;
    ev->http = http;
    if (options)
        ev->opt = *options;
    if (ev->opt.max_pods == 0)
        ev->opt.max_pods = 3;
    if (ev->opt.max_containers == 0)
        ev->opt.max_containers = 2;
    if (ev->opt.max_events == 0)
        ev->opt.max_events = 20;
    if (ev->opt.log_tail_lines <= 0)
        ev->opt.log_tail_lines = 100;
    if (ev->opt.log_max_bytes <= 0)
        ev->opt.log_max_bytes = 16384;
    if (ev->opt.request_timeout_ms == 0)
        ev->opt.request_timeout_ms = 10000;
    if (ev->opt.deadline_ms == 0)
        ev->opt.deadline_ms = 30000;
    *out = ev;
    return TR_OK;
}

void tr_kube_evidence_free(tr_kube_evidence *ev)
{
    if (ev == NULL || ev->closing)
        return;
    ev->closing = 1;
    ev->alive++; /* the cancels below must not free ev under our feet */
    while (ev->head) {
        tr_kube_gathering *g = ev->head;
        tr_kube_evidence_cb cb = g->cb;
        void *userdata = g->userdata;

        /* Their owners hold handles: tell them, so none is used after this. */
        tr_kube_gathering_cancel(g);
        cb(TR_ECANCELLED, NULL, userdata);
    }
    ev->alive--;
    ev_maybe_free(ev);
}

/* ------------------------------------------------------------ provider */

static int provider_gather(void *userdata, const tr_store_incident *incident,
                           tr_evidence_done_cb done, void *token, void **handle)
{
    tr_kube_gathering *g = NULL;
    tr_error err = { 0 };
    int rc;

    *handle = NULL;
    if (incident->source == NULL || strcmp(incident->source, "kubernetes") != 0)
        return TR_EINVAL;
    rc = tr_kube_evidence_gather(userdata, incident, done, token, &g, &err);
    if (rc != TR_OK)
        tr_log_debug("kubernetes", "incident %" PRId64 ": no evidence gathered: %s",
                     incident->id, err.message);
    *handle = g;
    return rc;
}

static void provider_cancel(void *userdata, void *handle)
{
    (void)userdata;
    tr_kube_gathering_cancel(handle);
}

void tr_kube_evidence_provider(tr_kube_evidence *ev, tr_evidence_provider *out)
{
    out->gather = provider_gather;
    out->cancel = provider_cancel;
    out->userdata = ev;
}