/*
 * source.c - the loop half of the source section: a small chain of
 * apiserver GETs (owner → Argo Application | Flux Kustomization/HelmRelease
 * → Flux GitRepository → the namespace's pods when a Secret/ConfigMap is
 * missing), then the repository fetch and one queued job (source_work.c).
 *
 * A gathering outlives its callback while anything it started is still
 * out (an HTTP call, a sync, a queued job): cancel and tr_source_free only
 * mark it finished, and it frees itself when the last of those comes back.
 */
#include "source.h"

#include "alloc.h"
#include "buf.h"
#include "kube_evidence.h"
#include "log.h"
#include "redact.h"
#include "source_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MODULE "source"
#define OBJECT_MAX_BYTES ((size_t)2 * 1024 * 1024)
#define PODS_MAX_BYTES ((size_t)8 * 1024 * 1024)

enum { STEP_OWNER, STEP_ARGO, STEP_FLUX, STEP_GITREPO, STEP_PODS };

struct tr_source_gathering {
    tr_source *src; /* NULL once finished */
    tr_source_gathering *prev, *next;
    tr_source_cb cb;
    void *userdata;
    int64_t incident_id;
    int step;
    int pending;          /* HTTP call, sync or job still out */
    tr_http_call *call;
    tr_source_work *work; /* handed to the job once queued */
    tr_gitrepo *repo;
    uv_timer_t timer;     /* defers a start that needs no GET past gather's return */
    char *origin_url;     /* the URL the owner deploys from, NULL = unknown */
    char *owner_ns;
    cJSON *flux_owner;    /* kept for the GitRepository step */
};

struct tr_source {
    uv_loop_t *loop;
    tr_repos *repos;
    tr_kube_client *client;
    tr_http_client *http;
    tr_source_options opt;
    tr_source_gathering *active;
    tr_evidence_provider inner;
};

static void step_next(tr_source_gathering *g);
static void start_repo(tr_source_gathering *g);

static char *strdup_or_null(const char *s)
{
    return s ? tr_strdup(s) : NULL;
}

static void unlink_gathering(tr_source_gathering *g)
{
    if (g->src == NULL)
        return;
    if (g->prev)
        g->prev->next = g->next;
    else
        g->src->active = g->next;
    if (g->next)
        g->next->prev = g->prev;
    g->prev = g->next = NULL;
    g->src = NULL;
}

static void maybe_free(tr_source_gathering *g)
{
    if (g->src != NULL || g->pending > 0)
        return;
    tr_source_work_free(g->work);
    tr_free(g->origin_url);
    tr_free(g->owner_ns);
    cJSON_Delete(g->flux_owner);
    tr_free(g);
}

static void deliver(tr_source_gathering *g, int rc, const char *json)
{
    tr_source_cb cb = g->cb;
    void *ud = g->userdata;

    g->cb = NULL;
    unlink_gathering(g);
    if (cb)
        cb(rc, json, ud);
    maybe_free(g);
}

/* https://user:token@host/p → https://host/p: the section never carries credentials. */
static int add_url(cJSON *obj, const char *url)
{
    const char *scheme = strstr(url, "://"), *at, *slash;
    tr_buf b = TR_BUF_INIT(4096);
    int rc = TR_OK;

    if (scheme != NULL) {
        slash = strchr(scheme + 3, '/');
        at = memchr(scheme + 3, '@', slash ? (size_t)(slash - scheme - 3) : strlen(scheme + 3));
        if (at != NULL) {
            rc = tr_buf_put(&b, url, (size_t)(scheme + 3 - url));
            url = at + 1;
        }
    }
    if (rc == TR_OK)
        rc = tr_buf_puts(&b, url);
    if (rc == TR_OK && !cJSON_AddStringToObject(obj, "url", tr_buf_cstr(&b)))
        rc = TR_ENOMEM;
    tr_buf_dispose(&b);
    return rc;
}

/* Hand over {repo, url, commit, ...found} or {repo, url, error}. */
static void finish(tr_source_gathering *g, const char *commit, const char *error)
{
    cJSON *root = cJSON_CreateObject(), *item;
    const tr_gitrepo_spec *spec = g->repo ? tr_gitrepo_spec_get(g->repo) : NULL;
    tr_buf err_text = TR_BUF_INIT(8192);
    char *text = NULL;
    int rc = root ? TR_OK : TR_ENOMEM;

    if (rc == TR_OK && spec && (!cJSON_AddStringToObject(root, "repo", spec->name) ||
                                add_url(root, spec->url) != TR_OK))
        rc = TR_ENOMEM;
    if (rc == TR_OK && commit && commit[0] && !cJSON_AddStringToObject(root, "commit", commit))
        rc = TR_ENOMEM;
    if (rc == TR_OK && g->origin_url && (!spec || !tr_locate_repo_matches(spec->url,
                                                                          g->origin_url)))
        rc = add_url(cJSON_AddObjectToObject(root, "deployed_from"), g->origin_url);
    if (rc == TR_OK && g->work && g->work->section) {
        while ((item = g->work->section->child) != NULL)
            cJSON_AddItemToObject(root, item->string,
                                  cJSON_DetachItemViaPointer(g->work->section, item));
    }
    if (rc == TR_OK && error && error[0]) {
        /* gitrepo scrubs its messages; the text rules catch anything else. */
        rc = tr_redact_text(&err_text, error, strlen(error), NULL);
        if (rc == TR_OK && !cJSON_AddStringToObject(root, "error", tr_buf_cstr(&err_text)))
            rc = TR_ENOMEM;
    }
    if (rc == TR_OK && (text = cJSON_PrintUnformatted(root)) == NULL)
        rc = TR_ENOMEM;
    if (error && error[0])
        tr_log_info(MODULE, "incident %" PRId64 ": no source: %s", g->incident_id,
                    tr_buf_cstr(&err_text));
    deliver(g, rc, rc == TR_OK ? text : NULL);
    if (text)
        cJSON_free(text);
    cJSON_Delete(root);
    tr_buf_dispose(&err_text);
}

/* ---------------------------------------------------------------- git */

static void on_work_done(tr_gitrepo *repo, int status, void *userdata)
{
    tr_source_gathering *g = userdata;

    g->pending--;
    if (g->src == NULL) {
        maybe_free(g);
        return;
    }
    if (status == TR_ENOMEM || status == TR_ECANCELLED) {
        deliver(g, status, NULL);
        return;
    }
    finish(g, g->work->commit, g->work->error);
}

static int work_fn(const tr_gitrepo_spec *spec, void *userdata)
{
    tr_source_gathering *g = userdata;

    return tr_source_work_run(spec, g->work);
}

static void run_work(tr_source_gathering *g)
{
    tr_gitrepo_status st;

    tr_repos_update_health(g->src->repos, g->repo);
    tr_gitrepo_get_status(g->repo, &st);
    if (st.head[0] == '\0' || (st.last_error[0] && st.consecutive_failures > 0 &&
                               st.last_fetch_ms == 0)) {
        finish(g, NULL, st.last_error[0] ? st.last_error : "the repository was never fetched");
        return;
    }
    memcpy(g->work->commit, st.head, sizeof(g->work->commit));
    g->work->repos = g->src->repos;
    g->work->repo = g->repo;
    g->work->opt = g->src->opt;
    if (tr_gitrepo_queue_work(g->repo, work_fn, on_work_done, g) != TR_OK) {
        finish(g, st.head, "the repository's work queue is full");
        return;
    }
    g->pending++;
}

static void on_synced(tr_gitrepo *repo, int status, const tr_error *err, void *userdata)
{
    tr_source_gathering *g = userdata;

    g->pending--;
    if (g->src == NULL) {
        maybe_free(g);
        return;
    }
    if (status == TR_ECANCELLED) {
        deliver(g, status, NULL);
        return;
    }
    if (status != TR_OK) {
        /* A stale clone still answers; without one the section is the error. */
        tr_gitrepo_status st;

        tr_repos_update_health(g->src->repos, g->repo);
        tr_gitrepo_get_status(repo, &st);
        if (st.head[0] == '\0') {
            finish(g, NULL, err ? err->message : tr_strerror(status));
            return;
        }
    }
    run_work(g);
}

static void start_repo(tr_source_gathering *g)
{
    int rc;

    g->repo = g->origin_url ? tr_repos_find_url(g->src->repos, g->origin_url) : NULL;
    if (g->repo == NULL)
        g->repo = tr_repos_default(g->src->repos);
    if (g->repo == NULL) {
        finish(g, NULL, "no GitOps repository is configured for this URL");
        return;
    }
    rc = tr_gitrepo_fetch_if_older(g->repo, g->src->opt.max_fetch_age_ms, on_synced, g);
    if (rc == 0) {
        g->pending++;
        return;
    }
    run_work(g); /* fresh enough, or the status tells why not */
}

/* ---------------------------------------------------------------- apiserver */

static void on_get(const tr_http_response *resp, void *userdata);

static int get(tr_source_gathering *g, const char *path, size_t max_bytes)
{
    tr_http_request req;
    tr_kube_prepared prep;
    tr_error err = { 0 };
    int rc;

    memset(&req, 0, sizeof(req));
    memset(&prep, 0, sizeof(prep));
    req.method = TR_HTTP_GET;
    req.timeout_ms = g->src->opt.request_timeout_ms;
    req.max_response_bytes = max_bytes;
    req.on_done = on_get;
    req.userdata = g;
    rc = tr_kube_client_prepare(g->src->client, &req, path, &prep, &err);
    if (rc == TR_OK)
        rc = tr_http_client_send(g->src->http, &req, &g->call, &err);
    tr_kube_prepared_dispose(&prep);
    if (rc == TR_OK)
        g->pending++;
    else
        tr_log_debug(MODULE, "incident %" PRId64 ": GET %s: %s", g->incident_id, path,
                     err.message);
    return rc;
}

static int get_named(tr_source_gathering *g, int step, const char *api, const char *plural,
                     const char *ns, const char *name)
{
    tr_buf path = TR_BUF_INIT(4096);
    int rc = tr_buf_printf(&path, "/apis/%s/namespaces/", api);

    if (rc == TR_OK)
        rc = tr_buf_put_escaped(&path, ns);
    if (rc == TR_OK)
        rc = tr_buf_printf(&path, "/%s/", plural);
    if (rc == TR_OK)
        rc = tr_buf_put_escaped(&path, name);
    g->step = step;
    if (rc == TR_OK)
        rc = get(g, tr_buf_cstr(&path), OBJECT_MAX_BYTES);
    tr_buf_dispose(&path);
    return rc;
}

static void take_sources(tr_source_gathering *g, tr_locate_sources *sources)
{
    for (size_t i = 0; i < sources->count; i++) {
        const tr_locate_source *s = &sources->items[i];

        if (s->repo_url == NULL)
            continue;
        if (g->origin_url == NULL || tr_repos_find_url(g->src->repos, s->repo_url)) {
            tr_free(g->origin_url);
            tr_free(g->work->subpath);
            g->origin_url = tr_strdup(s->repo_url);
            g->work->subpath = strdup_or_null(s->path);
            if (tr_repos_find_url(g->src->repos, s->repo_url))
                break;
        }
    }
}

static void on_owner(tr_source_gathering *g, cJSON *obj)
{
    const cJSON *api = cJSON_GetObjectItemCaseSensitive(obj, "apiVersion");
    tr_locate_origin origin;
    const char *ns;
    int rc = TR_EINVAL;

    if (tr_locate_origin_of(&origin, cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
                            cJSON_IsString(api) ? api->valuestring : NULL, g->work->kind) != 0 ||
        origin.tool == TR_LOCATE_NONE) {
        g->step = STEP_GITREPO; /* nothing deploys it: straight to the pods / repo */
        step_next(g);
        return;
    }
    ns = origin.namespace_[0] ? origin.namespace_
                              : origin.tool == TR_LOCATE_ARGO ? "argocd" : g->owner_ns;
    if (origin.tool == TR_LOCATE_ARGO)
        rc = get_named(g, STEP_ARGO, "argoproj.io/v1alpha1", "applications", ns, origin.name);
    else if (origin.tool == TR_LOCATE_FLUX_KUSTOMIZATION)
        rc = get_named(g, STEP_FLUX, "kustomize.toolkit.fluxcd.io/v1", "kustomizations", ns,
                       origin.name);
    else
        rc = get_named(g, STEP_FLUX, "helm.toolkit.fluxcd.io/v2", "helmreleases", ns,
                       origin.name);
    if (rc != TR_OK) {
        g->step = STEP_GITREPO;
        step_next(g);
    }
}

static void on_flux_owner(tr_source_gathering *g, cJSON *obj)
{
    tr_locate_ref ref;
    tr_error err = { 0 };

    if (tr_locate_flux_source_ref(&ref, obj, &err) == TR_OK &&
        strcmp(ref.kind, "GitRepository") == 0) {
        g->flux_owner = cJSON_Duplicate(obj, 1);
        if (g->flux_owner && get_named(g, STEP_GITREPO, "source.toolkit.fluxcd.io/v1",
                                       "gitrepositories", ref.namespace_, ref.name) == TR_OK)
            return;
    }
    g->step = STEP_GITREPO;
    step_next(g);
}

static void on_object(tr_source_gathering *g, cJSON *obj)
{
    tr_locate_sources sources;
    tr_error err = { 0 };

    memset(&sources, 0, sizeof(sources));
    switch (g->step) {
    case STEP_OWNER:
        on_owner(g, obj);
        return;
    case STEP_ARGO:
        if (tr_locate_source_argo(&sources, obj, &err) == TR_OK)
            take_sources(g, &sources);
        break;
    case STEP_FLUX:
        on_flux_owner(g, obj);
        return;
    case STEP_GITREPO:
        if (g->flux_owner && tr_locate_source_flux(&sources, g->flux_owner, obj, &err) == TR_OK)
            take_sources(g, &sources);
        break;
    case STEP_PODS: {
        cJSON *items = cJSON_GetObjectItemCaseSensitive(obj, "items");

        if (cJSON_IsArray(items) &&
            tr_locate_config_refs_json(&g->work->live_refs, items, g->work->missing_kind,
                                       &err) == TR_OK)
            g->work->have_live_refs = 1;
        start_repo(g);
        return;
    }
    default:
        break;
    }
    tr_locate_sources_dispose(&sources);
    if (g->step != STEP_PODS) {
        g->step = STEP_GITREPO;
        step_next(g);
    }
}

/* After the owner chain: the pods when a Secret/ConfigMap is missing, then the repo. */
static void step_next(tr_source_gathering *g)
{
    tr_buf path = TR_BUF_INIT(4096);
    int rc;

    if (g->work->missing_kind == NULL || g->src->client == NULL || g->owner_ns == NULL) {
        start_repo(g);
        return;
    }
    g->step = STEP_PODS;
    rc = tr_buf_puts(&path, "/api/v1/namespaces/");
    if (rc == TR_OK)
        rc = tr_buf_put_escaped(&path, g->owner_ns);
    if (rc == TR_OK)
        rc = tr_buf_puts(&path, "/pods?limit=200");
    if (rc != TR_OK || get(g, tr_buf_cstr(&path), PODS_MAX_BYTES) != TR_OK)
        start_repo(g);
    tr_buf_dispose(&path);
}

static void on_get(const tr_http_response *resp, void *userdata)
{
    tr_source_gathering *g = userdata;
    cJSON *obj = NULL;

    g->call = NULL;
    g->pending--;
    if (g->src == NULL) {
        maybe_free(g);
        return;
    }
    if (resp->result == TR_OK && resp->status == 200)
        obj = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (cJSON_IsObject(obj)) {
        on_object(g, obj);
    } else {
        /* 404/403/unreachable: the owner chain stops here, quietly. */
        tr_log_debug(MODULE, "incident %" PRId64 ": step %d: HTTP %ld %s", g->incident_id,
                     g->step, resp->status, resp->message);
        if (g->step == STEP_PODS)
            start_repo(g);
        else {
            g->step = STEP_GITREPO;
            step_next(g);
        }
    }
    cJSON_Delete(obj);
}

static void on_timer_closed(uv_handle_t *handle)
{
    tr_source_gathering *g = handle->data;

    g->pending--;
    maybe_free(g);
}

static void on_deferred(uv_timer_t *timer)
{
    tr_source_gathering *g = timer->data;

    uv_close((uv_handle_t *)timer, on_timer_closed);
    if (g->src != NULL)
        start_repo(g);
}

/* The callback must not run inside tr_source_gather: go through the loop once. */
static void defer_start(tr_source_gathering *g)
{
    uv_timer_init(g->src->loop, &g->timer);
    g->timer.data = g;
    g->pending++;
    uv_timer_start(&g->timer, on_deferred, 0, 0);
}

static void deliver_cancelled(tr_source_gathering *g)
{
    if (g->call)
        tr_http_call_cancel(g->call);
    deliver(g, TR_ECANCELLED, NULL);
}

/* ---------------------------------------------------------------- public */

int tr_source_new(tr_source **out, uv_loop_t *loop, tr_repos *repos, tr_kube_client *client,
                  tr_http_client *http, const tr_source_options *options, tr_error *err)
{
    tr_source *src = tr_calloc(1, sizeof(*src));

    *out = NULL;
    if (src == NULL)
        return tr_error_set(err, TR_ENOMEM, "source: out of memory");
    src->loop = loop;
    src->repos = repos;
    src->client = client;
    src->http = http;
    if (options)
        src->opt = *options;
    if (src->opt.max_fetch_age_ms == 0)
        src->opt.max_fetch_age_ms = 60000;
    if (src->opt.request_timeout_ms <= 0)
        src->opt.request_timeout_ms = 10000;
    if (src->opt.excerpt_max_bytes == 0)
        src->opt.excerpt_max_bytes = 6000;
    if (src->opt.context_lines <= 0)
        src->opt.context_lines = 2;
    if (src->opt.history_count == 0)
        src->opt.history_count = 3;
    if (src->opt.diff_max_bytes == 0)
        src->opt.diff_max_bytes = 2048;
    *out = src;
    return TR_OK;
}

void tr_source_gathering_cancel(tr_source_gathering *g)
{
    if (g == NULL)
        return;
    g->cb = NULL;
    unlink_gathering(g);
    if (g->call)
        tr_http_call_cancel(g->call);
    maybe_free(g); /* a sync or job still out frees it when it returns */
}

void tr_source_free(tr_source *src)
{
    if (src == NULL)
        return;
    while (src->active)
        deliver_cancelled(src->active);
    tr_free(src);
}

static int fact_str(const cJSON *facts, const char *name, char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(facts, name);

    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return TR_OK;
    *out = tr_strdup(v->valuestring);
    return *out ? TR_OK : TR_ENOMEM;
}

static int fill_work(tr_source_work *w, const tr_store_incident *inc, int terraform)
{
    cJSON *facts = inc->facts_json ? cJSON_Parse(inc->facts_json) : NULL;
    const cJSON *diags;
    int rc = TR_OK;

    w->terraform = terraform;
    if (!terraform) {
        if ((inc->kind && (w->kind = tr_strdup(inc->kind)) == NULL) ||
            (inc->name && (w->name = tr_strdup(inc->name)) == NULL) ||
            (inc->namespace && (w->ns = tr_strdup(inc->namespace)) == NULL))
            rc = TR_ENOMEM;
        if (rc == TR_OK)
            rc = fact_str(facts, "missing_kind", &w->missing_kind);
        if (rc == TR_OK)
            rc = fact_str(facts, "missing_name", &w->missing_name);
        if (w->missing_kind && strcmp(w->missing_kind, "Secret") != 0 &&
            strcmp(w->missing_kind, "ConfigMap") != 0) {
            tr_free(w->missing_kind);
            w->missing_kind = NULL;
        }
    } else {
        rc = fact_str(facts, "repo_path", &w->repo_path);
        diags = cJSON_GetObjectItemCaseSensitive(facts, "diagnostics");
        if (rc == TR_OK && cJSON_IsArray(diags) &&
            (w->diagnostics = cJSON_Duplicate(diags, 1)) == NULL)
            rc = TR_ENOMEM;
        if (rc == TR_OK && w->diagnostics == NULL)
            w->diagnostics = cJSON_CreateArray();
    }
    cJSON_Delete(facts);
    return rc;
}

int tr_source_gather(tr_source *src, const tr_store_incident *inc, tr_source_cb cb,
                     void *userdata, tr_source_gathering **out, tr_error *err)
{
    tr_source_gathering *g;
    tr_buf path = TR_BUF_INIT(4096);
    int terraform, rc;

    if (out)
        *out = NULL;
    if (tr_repos_count(src->repos) == 0)
        return tr_error_set(err, TR_EUNAVAILABLE, "source: no GitOps repository configured");
    if (inc->source == NULL ||
        (strcmp(inc->source, "kubernetes") != 0 && strcmp(inc->source, "terraform") != 0))
        return tr_error_set(err, TR_EINVAL, "source: not a kubernetes or terraform incident");
    terraform = strcmp(inc->source, "terraform") == 0;
    if (!terraform && (inc->name == NULL || inc->name[0] == '\0'))
        return tr_error_set(err, TR_EINVAL, "source: the incident names no object");
    g = tr_calloc(1, sizeof(*g));
    if (g == NULL || (g->work = tr_calloc(1, sizeof(*g->work))) == NULL ||
        fill_work(g->work, inc, terraform) != TR_OK ||
        (inc->namespace && (g->owner_ns = tr_strdup(inc->namespace)) == NULL)) {
        if (g) {
            tr_source_work_free(g->work);
            tr_free(g->owner_ns);
        }
        tr_free(g);
        return tr_error_set(err, TR_ENOMEM, "source: out of memory");
    }
    g->src = src;
    g->cb = cb;
    g->userdata = userdata;
    g->incident_id = inc->id;
    g->next = src->active;
    if (src->active)
        src->active->prev = g;
    src->active = g;
    if (out)
        *out = g;
    /* Start from the owner when a cluster answers; else the default repo. */
    rc = TR_ENOTFOUND;
    if (!terraform && src->client && inc->kind &&
        tr_kube_object_path(&path, inc->kind, inc->namespace, inc->name, 0) == TR_OK) {
        g->step = STEP_OWNER;
        rc = get(g, tr_buf_cstr(&path), OBJECT_MAX_BYTES);
    }
    tr_buf_dispose(&path);
    if (rc != TR_OK)
        defer_start(g);
    return TR_OK;
}

/* ---------------------------------------------------------------- provider */

/* One analysis gathering: the inner provider's and ours, merged when both are in. */
typedef struct combo {
    tr_source *src;
    tr_evidence_done_cb done;
    void *token;
    void *inner_handle;
    tr_source_gathering *sg;
    int inner_pending, source_pending;
    cJSON *merged; /* the inner sections, then "source" */
} combo;

static void combo_free(combo *c)
{
    cJSON_Delete(c->merged);
    tr_free(c);
}

static void combo_maybe_done(combo *c)
{
    char *text;

    if (c->inner_pending || c->source_pending)
        return;
    text = cJSON_PrintUnformatted(c->merged);
    c->done(text ? TR_OK : TR_ENOMEM, text, c->token);
    if (text)
        cJSON_free(text);
    combo_free(c);
}

static void on_inner(int rc, const char *evidence_json, void *token)
{
    combo *c = token;
    cJSON *inner, *item;

    c->inner_pending = 0;
    c->inner_handle = NULL;
    if (rc == TR_ECANCELLED) {
        /* Shutdown: the analysis drops the incident; so do we. */
        if (c->source_pending)
            tr_source_gathering_cancel(c->sg);
        c->done(rc, NULL, c->token);
        combo_free(c);
        return;
    }
    inner = rc == TR_OK && evidence_json ? cJSON_Parse(evidence_json) : NULL;
    if (inner != NULL && cJSON_IsObject(inner)) {
        while ((item = inner->child) != NULL)
            cJSON_AddItemToObject(c->merged, item->string,
                                  cJSON_DetachItemViaPointer(inner, item));
    }
    cJSON_Delete(inner);
    combo_maybe_done(c);
}

static void on_source(int rc, const char *section_json, void *userdata)
{
    combo *c = userdata;
    cJSON *section;

    c->source_pending = 0;
    c->sg = NULL;
    section = rc == TR_OK && section_json ? cJSON_Parse(section_json) : NULL;
    if (section == NULL && rc != TR_ECANCELLED) {
        section = cJSON_CreateObject();
        if (section)
            (void)cJSON_AddStringToObject(section, "error", tr_strerror(rc));
    }
    if (section)
        cJSON_AddItemToObject(c->merged, "source", section);
    combo_maybe_done(c);
}

static int combo_gather(void *userdata, const tr_store_incident *incident,
                        tr_evidence_done_cb done, void *token, void **handle)
{
    tr_source *src = userdata;
    combo *c = tr_calloc(1, sizeof(*c));
    tr_error err = { 0 };

    *handle = NULL;
    if (c == NULL || (c->merged = cJSON_CreateObject()) == NULL) {
        tr_free(c);
        return TR_ENOMEM;
    }
    c->src = src;
    c->done = done;
    c->token = token;
    if (src->inner.gather &&
        src->inner.gather(src->inner.userdata, incident, on_inner, c, &c->inner_handle) == TR_OK)
        c->inner_pending = 1;
    if (tr_source_gather(src, incident, on_source, c, &c->sg, &err) == TR_OK)
        c->source_pending = 1;
    else if (err.code != TR_EUNAVAILABLE)
        tr_log_debug(MODULE, "incident %" PRId64 ": %s", incident->id, err.message);
    if (!c->inner_pending && !c->source_pending) {
        combo_free(c);
        return TR_EINVAL;
    }
    *handle = c;
    return TR_OK;
}

static void combo_cancel(void *userdata, void *handle)
{
    tr_source *src = userdata;
    combo *c = handle;

    if (c == NULL)
        return;
    if (c->inner_pending && src->inner.cancel)
        src->inner.cancel(src->inner.userdata, c->inner_handle);
    if (c->source_pending)
        tr_source_gathering_cancel(c->sg);
    combo_free(c);
}

void tr_source_provider(tr_source *src, const tr_evidence_provider *inner,
                        tr_evidence_provider *out)
{
    memset(&src->inner, 0, sizeof(src->inner));
    if (inner)
        src->inner = *inner;
    out->gather = combo_gather;
    out->cancel = combo_cancel;
    out->userdata = src;
}
