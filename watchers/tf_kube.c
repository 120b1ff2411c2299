/*
 * tf_kube.c - Terraform runs in Kubernetes Jobs: list the finished Job's pods, read the
 * chosen pod's log, ingest it as a Terraform log.
 *
 * A read is two GETs on the loop (pods by `job-name` label, then the log). A freed
 * tr_tf_kube orphans the reads in flight: they are cancelled and free themselves when
 * their on_done runs, without touching the store (the Job is not marked, so the relist
 * after the next start reads it again).
 */
#include "tf_kube.h"

#include "alloc.h"
#include "buf.h"
#include "kube_cache.h"
#include "log.h"
#include "tf_facts.h"
#include "tf_log.h"

#include <cjson/cJSON.h>
#include <string.h>
#include <time.h>

#define MODULE "terraform"
#define DEFAULT_MAX_LOG ((size_t)4 * 1024 * 1024)
#define DEFAULT_TIMEOUT_MS 20000L
#define DEFAULT_RUNNING 4
#define QUEUE_MAX 256
#define OWNERS_MAX 2048   /* remembered Terraform Job and CronJob names (hashes) */
#define POD_LIST_MAX ((size_t)4 * 1024 * 1024)
#define KV_PREFIX "tfjob/"
#define ANNOTATION(k) "triaged.io/" k

enum { STEP_PODS, STEP_LOG };

typedef struct job_run {
    tr_tf_kube *tk;      /* NULL once tr_tf_kube_free orphaned the run */
    struct job_run *next;
    char *ns, *name, *uid, *workspace, *repo_path, *commit, *container, *pod, *source_ref;
    char *reason;        /* the Job's own failure text, for the fallback */
    int failed;          /* 1: Failed; 0: Complete */
    tr_tf_operation operation; /* hint for a log that does not say */
    int step;
    tr_http_call *call;
} job_run;

struct tr_tf_kube {
    tr_tf_kube_options opt;
    char *label;
    tr_kube_client *client;
    tr_http_client *http;
    tr_store *store;
    const tr_tf_ingest *ingest;
    uint64_t owners[OWNERS_MAX];
    size_t owner_count, owner_next;
    job_run *running, *queue, *queue_tail;
    size_t running_count, queued;
    tr_tf_kube_stats stats;
};

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t owner_hash(const char *ns, const char *kind, const char *name)
{
    const char *parts[3] = {ns, kind, name};
    uint64_t h = 1469598103934665603ULL;

    for (int i = 0; i < 3; i++) {
        for (const char *p = parts[i] ? parts[i] : ""; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h = (h ^ 0x1f) * 1099511628211ULL;
    }
    return h;
}

static int owner_known(const tr_tf_kube *tk, uint64_t h)
{
    for (size_t i = 0; i < tk->owner_count; i++)
        if (tk->owners[i] == h)
            return 1;
    return 0;
}

static void owner_remember(tr_tf_kube *tk, const char *ns, const char *kind, const char *name)
{
    uint64_t h = owner_hash(ns, kind, name);

    if (owner_known(tk, h))
        return;
    /* Oldest out first: a bounded set, and the old names are long finished Jobs. */
    tk->owners[tk->owner_next] = h;
    tk->owner_next = (tk->owner_next + 1) % OWNERS_MAX;
    if (tk->owner_count < OWNERS_MAX)
        tk->owner_count++;
    if (strcmp(kind, "Job") == 0)
        tk->stats.jobs_seen++;
}

int tr_tf_kube_owns(const tr_tf_kube *tk, const char *ns, const char *kind, const char *name)
{
    if (tk == NULL || kind == NULL || name == NULL)
        return 0;
    if (strcmp(kind, "Job") != 0 && strcmp(kind, "CronJob") != 0)
        return 0;
    return owner_known(tk, owner_hash(ns ? ns : "", kind, name));
}

/* ------------------------------------------------------------ a run */

static void run_free(job_run *r)
{
    if (r == NULL)
        return;
    tr_free(r->ns);
    tr_free(r->name);
    tr_free(r->uid);
    tr_free(r->workspace);
    tr_free(r->repo_path);
    tr_free(r->commit);
    tr_free(r->container);
    tr_free(r->pod);
    tr_free(r->source_ref);
    tr_free(r->reason);
    tr_free(r);
}

static void kv_key(char *buf, size_t size, const job_run *r)
{
    snprintf(buf, size, KV_PREFIX "%s", r->uid);
}

static void start_next(tr_tf_kube *tk);

/* The run is over (ingested or given up): remember the Job, free the run. */
static void run_end(job_run *r, int mark)
{
    tr_tf_kube *tk = r->tk;
    char key[320];
    tr_error err;

    if (tk != NULL) {
        for (job_run **pp = &tk->running; *pp; pp = &(*pp)->next) {
            if (*pp == r) {
                *pp = r->next;
                break;
            }
        }
        tk->running_count--;
        kv_key(key, sizeof(key), r);
        if (mark && tr_store_kv_put(tk->store, key, r->failed ? "failed" : "complete",
                                    wall_ms(), &err) != TR_OK)
            tr_log_error(MODULE, "job %s/%s: %s", r->ns, r->name, err.message);
    }
    run_free(r);
    if (tk != NULL)
        start_next(tk);
}

static tr_tf_meta run_meta(const job_run *r)
{
    tr_tf_meta meta = {.workspace = r->workspace, .repo_path = r->repo_path,
                       .commit = r->commit, .run_id = r->name, .source_ref = r->source_ref};
    return meta;
}

/* No usable log: a failed Job still becomes an incident, with the Job's reason and why. */
static void run_fallback(job_run *r, const char *why)
{
    tr_tf_meta meta = run_meta(r);
    tr_buf msg = TR_BUF_INIT(8192);
    tr_error err;

    tr_log_warn(MODULE, "job %s/%s: log not used: %s", r->ns, r->name, why);
    if (r->failed) {
        if (tr_buf_printf(&msg, "Job %s/%s failed: %s (log not used: %s)", r->ns, r->name,
                          r->reason ? r->reason : "no reason given", why) != TR_OK)
            tr_buf_clear(&msg);
        if (tr_tf_ingest_run_errored(r->tk->ingest, &meta, msg.ptr, wall_ms(), NULL, &err) !=
            TR_OK) {
            tr_log_error(MODULE, "job %s/%s: %s", r->ns, r->name, err.message);
            tr_buf_dispose(&msg);
            run_end(r, 0);
            return;
        }
        r->tk->stats.fallbacks++;
    }
    tr_buf_dispose(&msg);
    run_end(r, 1);
}

static void on_done(const tr_http_response *resp, void *userdata);

static int run_get(job_run *r, const char *path, size_t max_bytes)
{
    tr_http_request req;
    tr_kube_prepared prep;
    tr_error err = {0};
    int rc;

    memset(&req, 0, sizeof(req));
    req.method = TR_HTTP_GET;
    req.timeout_ms = r->tk->opt.timeout_ms;
    req.max_response_bytes = max_bytes;
    req.on_done = on_done;
    req.userdata = r;
    rc = tr_kube_client_prepare(r->tk->client, &req, path, &prep, &err);
    if (rc == TR_OK)
        rc = tr_http_client_send(r->tk->http, &req, &r->call, &err);
    tr_kube_prepared_dispose(&prep);
    if (rc != TR_OK)
        tr_log_warn(MODULE, "job %s/%s: GET %s: %s", r->ns, r->name, path, err.message);
    return rc;
}


static void run_start(job_run *r)
{
    tr_buf path = TR_BUF_INIT(4096);
    int rc;

    r->step = STEP_PODS;
    rc = tr_buf_printf(&path, "/api/v1/namespaces/%s/pods?labelSelector=job-name%%3D", r->ns);
    if (rc == TR_OK)
        rc = tr_buf_put_escaped(&path, r->name);
    if (rc == TR_OK)
        rc = tr_buf_puts(&path, "&limit=100");
    if (rc != TR_OK || run_get(r, tr_buf_cstr(&path), POD_LIST_MAX) != TR_OK)
        run_fallback(r, "cannot ask the apiserver for its pods");
    tr_buf_dispose(&path);
}

/*
 * The pod whose log tells the run: the newest that ended like the Job (Failed for a failed
 * Job, Succeeded for a complete one), else the newest.
 */
static const cJSON *pick_pod(const cJSON *items, int failed)
{
    const char *want = failed ? "Failed" : "Succeeded";
    const cJSON *best = NULL, *any = NULL, *pod;
    int64_t best_ms = -1, any_ms = -1;

    cJSON_ArrayForEach(pod, items) {
        int64_t ms = tr_kube_time_ms(tr_kube_obj_str(pod, "metadata.creationTimestamp"));
        const char *phase = tr_kube_obj_str(pod, "status.phase");

        if (tr_kube_obj_str(pod, "metadata.name") == NULL)
            continue;
        if (ms >= any_ms) {
            any = pod;
            any_ms = ms;
        }
        if (phase != NULL && strcmp(phase, want) == 0 && ms >= best_ms) {
            best = pod;
            best_ms = ms;
        }
    }
    return best != NULL ? best : any;
}

static void ask_log(job_run *r, const cJSON *list)
{
    const cJSON *pod = pick_pod(cJSON_GetObjectItemCaseSensitive(list, "items"), r->failed);
    const cJSON *first;
    tr_buf path = TR_BUF_INIT(8192), ref = TR_BUF_INIT(1024);
    int rc;

    if (pod == NULL) {
        run_fallback(r, "the Job has no pod left");
        return;
    }
    r->pod = tr_strdup(tr_kube_obj_str(pod, "metadata.name"));
    first = cJSON_GetArrayItem(tr_kube_obj_get(pod, "spec.containers"), 0);
    if (r->container == NULL && tr_kube_obj_str(first, "name") != NULL)
        r->container = tr_strdup(tr_kube_obj_str(first, "name"));
    if (r->pod == NULL || r->container == NULL) {
        run_fallback(r, r->pod == NULL ? "out of memory" : "its pod has no container");
        return;
    }
    rc = tr_buf_printf(&ref, "k8s://%s/pods/%s/%s", r->ns, r->pod, r->container);
    if (rc == TR_OK) {
        tr_free(r->source_ref);
        r->source_ref = tr_buf_detach(&ref);
        rc = r->source_ref != NULL ? TR_OK : TR_ENOMEM;
    }
    r->step = STEP_LOG;
    if (rc == TR_OK)
        rc = tr_buf_printf(&path, "/api/v1/namespaces/%s/pods/%s/log?container=", r->ns,
                           r->pod);
    if (rc == TR_OK)
        rc = tr_buf_put_escaped(&path, r->container);
    /* The kubelet reads limitBytes from the start: the version line and every diagnostic are
     * in the first megabytes of a run; a longer log is cut and parsed as far as it goes. */
    if (rc == TR_OK)
        rc = tr_buf_printf(&path, "&limitBytes=%zu", r->tk->opt.max_log_bytes);
    if (rc != TR_OK || run_get(r, tr_buf_cstr(&path), r->tk->opt.max_log_bytes + 65536) != TR_OK)
        run_fallback(r, "cannot ask the apiserver for its log");
    tr_buf_dispose(&path);
    tr_buf_dispose(&ref);
}

static void ingest_log(job_run *r, const char *body, size_t len)
{
    tr_tf_meta meta = run_meta(r);
    tr_tf_result *res = NULL;
    tr_error err;

    tr_tf_log_options options;

    memset(&options, 0, sizeof(options));
    options.operation_hint = r->operation;
    if (tr_tf_log_parse(&res, body, len, &options, &err) != TR_OK) {
        run_fallback(r, err.message);
        return;
    }
    if (r->failed && res->outcome != TR_TF_FAILED) {
        tr_tf_result_free(res);
        run_fallback(r, "the log shows no Terraform error");
        return;
    }
    if (tr_tf_ingest_result(r->tk->ingest, res, &meta, wall_ms(), NULL, &err) != TR_OK) {
        tr_log_error(MODULE, "job %s/%s: %s", r->ns, r->name, err.message);
        tr_tf_result_free(res);
        run_end(r, 0);
        return;
    }
    tr_tf_result_free(res);
    r->tk->stats.ingested++;
    run_end(r, 1);
}

static void on_done(const tr_http_response *resp, void *userdata)
{
    job_run *r = userdata;
    char why[512];
    cJSON *list;

    r->call = NULL;
    if (r->tk == NULL) {
        run_free(r);
        return;
    }
    /* A log over the cap is still worth parsing: its first errors are in it. */
    if (r->step == STEP_LOG && (resp->result == TR_OK || resp->result == TR_ETOOBIG) &&
        (resp->status == 200 || resp->result == TR_ETOOBIG)) {
        ingest_log(r, resp->body, resp->body_len);
        return;
    }
    if (resp->result != TR_OK || resp->status != 200) {
        if (resp->result != TR_OK)
            snprintf(why, sizeof(why), "apiserver: %s", resp->message);
        else
            snprintf(why, sizeof(why), "apiserver answered %ld to the %s request", resp->status,
                     r->step == STEP_LOG ? "log" : "pod list");
        run_fallback(r, why);
        return;
    }
    list = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (!cJSON_IsObject(list))
        run_fallback(r, "the pod list is not JSON");
    else
        ask_log(r, list);
    cJSON_Delete(list);
}

static void start_next(tr_tf_kube *tk)
{
    while (tk->queue != NULL && tk->running_count < tk->opt.max_running) {
        job_run *r = tk->queue;

        tk->queue = r->next;
        if (tk->queue == NULL)
            tk->queue_tail = NULL;
        tk->queued--;
        r->next = tk->running;
        tk->running = r;
        tk->running_count++;
        run_start(r);
    }
}

/* ------------------------------------------------------------ Jobs */

static int is_terraform(const tr_tf_kube *tk, const cJSON *job)
{
    const cJSON *labels = tr_kube_obj_get(job, "metadata.labels");
    const cJSON *annotations = tr_kube_obj_get(job, "metadata.annotations");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, tk->label);

    if (!cJSON_IsString(v))
        v = cJSON_GetObjectItemCaseSensitive(annotations, tk->label);
    return cJSON_IsString(v) && strcmp(v->valuestring, "false") != 0;
}

static const char *annotation(const cJSON *job, const char *key)
{
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(tr_kube_obj_get(job, "metadata.annotations"), key);

    return cJSON_IsString(v) && v->valuestring[0] != '\0' ? v->valuestring : NULL;
}

/* 1 Failed, 0 Complete, -1 still running. */
static int job_outcome(const cJSON *job, const char **reason)
{
    const cJSON *c = tr_kube_obj_condition(job, "Failed");

    if (c != NULL && strcmp(tr_kube_obj_str(c, "status") ? tr_kube_obj_str(c, "status") : "",
                            "True") == 0) {
        *reason = tr_kube_obj_str(c, "message");
        if (*reason == NULL)
            *reason = tr_kube_obj_str(c, "reason");
        return 1;
    }
    c = tr_kube_obj_condition(job, "Complete");
    if (c != NULL && strcmp(tr_kube_obj_str(c, "status") ? tr_kube_obj_str(c, "status") : "",
                            "True") == 0)
        return 0;
    return -1;
}

static int already_done(tr_tf_kube *tk, const char *uid)
{
    char key[320], *value = NULL;
    tr_error err;
    int done;

    snprintf(key, sizeof(key), KV_PREFIX "%s", uid);
    done = tr_store_kv_get(tk->store, key, &value, &err) == TR_OK && value != NULL;
    tr_free(value);
    return done;
}

static int in_flight(const tr_tf_kube *tk, const char *uid)
{
    for (const job_run *r = tk->running; r; r = r->next)
        if (strcmp(r->uid, uid) == 0)
            return 1;
    for (const job_run *r = tk->queue; r; r = r->next)
        if (strcmp(r->uid, uid) == 0)
            return 1;
    return 0;
}

static char *default_workspace(const char *ns, const cJSON *job, const char *name)
{
    const cJSON *owner = tr_kube_obj_controller(job);
    const char *kind = tr_kube_obj_str(owner, "kind");
    const char *owner_name = tr_kube_obj_str(owner, "name");
    tr_buf b = TR_BUF_INIT(1024);

    if (tr_buf_printf(&b, "%s/%s", ns,
                      kind && owner_name && strcmp(kind, "CronJob") == 0 ? owner_name : name) !=
        TR_OK) {
        tr_buf_dispose(&b);
        return NULL;
    }
    return tr_buf_detach(&b);
}

/*
 * Which step the Job runs, for a log that does not say (a failed plan and a failed apply
 * print the same diagnostics): the annotation, else the words of the container's command
 * and args (`terraform apply -json`), else the Job's name.
 */
static tr_tf_operation job_operation(const cJSON *job, const char *name)
{
    const char *named = annotation(job, ANNOTATION("operation"));
    const char *want = annotation(job, ANNOTATION("container"));
    const cJSON *c, *word;
    static const char *const lists[] = {"command", "args"};
    tr_tf_operation op;

    if (named != NULL)
        return tr_tf_operation_guess(named);
    cJSON_ArrayForEach(c, tr_kube_obj_get(job, "spec.template.spec.containers")) {
        const char *cname = tr_kube_obj_str(c, "name");

        if (want != NULL && (cname == NULL || strcmp(cname, want) != 0))
            continue;
        for (size_t i = 0; i < 2; i++)
            cJSON_ArrayForEach(word, cJSON_GetObjectItemCaseSensitive(c, lists[i])) {
                if (cJSON_IsString(word) &&
                    (op = tr_tf_operation_guess(word->valuestring)) != TR_TF_OP_UNKNOWN)
                    return op;
            }
        break;
    }
    return tr_tf_operation_guess(name);
}

static int queue_run(tr_tf_kube *tk, const cJSON *job, const char *ns, const char *name,
                     const char *uid, int failed, const char *reason)
{
    job_run *r = tr_calloc(1, sizeof(*r));
    const char *ws = annotation(job, ANNOTATION("workspace"));

    if (r == NULL)
        return TR_ENOMEM;
    r->tk = tk;
    r->failed = failed;
    r->operation = job_operation(job, name);
    r->ns = tr_strdup(ns);
    r->name = tr_strdup(name);
    r->uid = tr_strdup(uid);
    r->workspace = ws ? tr_strdup(ws) : default_workspace(ns, job, name);
    r->reason = reason ? tr_strdup(reason) : NULL;
    if (annotation(job, ANNOTATION("repo-path")))
        r->repo_path = tr_strdup(annotation(job, ANNOTATION("repo-path")));
    if (annotation(job, ANNOTATION("commit")))
        r->commit = tr_strdup(annotation(job, ANNOTATION("commit")));
    if (annotation(job, ANNOTATION("container")))
        r->container = tr_strdup(annotation(job, ANNOTATION("container")));
    r->source_ref = tr_strdup("k8s job");
    if (r->ns == NULL || r->name == NULL || r->uid == NULL || r->workspace == NULL ||
        r->source_ref == NULL) {
        run_free(r);
        return TR_ENOMEM;
    }
    if (tk->queue_tail != NULL)
        tk->queue_tail->next = r;
    else
        tk->queue = r;
    tk->queue_tail = r;
    tk->queued++;
    start_next(tk);
    return TR_OK;
}

int tr_tf_kube_job(tr_tf_kube *tk, const cJSON *job, int deleted)
{
    const char *ns = tr_kube_obj_str(job, "metadata.namespace");
    const char *name = tr_kube_obj_str(job, "metadata.name");
    const char *uid = tr_kube_obj_str(job, "metadata.uid");
    const cJSON *owner;
    const char *reason = NULL;
    int outcome;

    if (tk == NULL || name == NULL || !is_terraform(tk, job))
        return 0;
    ns = ns != NULL ? ns : "";
    owner_remember(tk, ns, "Job", name);
    owner = tr_kube_obj_controller(job);
    if (tr_kube_obj_str(owner, "kind") && strcmp(tr_kube_obj_str(owner, "kind"), "CronJob") == 0 &&
        tr_kube_obj_str(owner, "name"))
        owner_remember(tk, ns, "CronJob", tr_kube_obj_str(owner, "name"));
    outcome = job_outcome(job, &reason);
    /* A deleted Job's pods are gone with it: nothing left to read. */
    if (deleted || outcome < 0 || uid == NULL || strlen(uid) > 256 || in_flight(tk, uid) ||
        already_done(tk, uid))
        return 1;
    if (tk->queued >= QUEUE_MAX) {
        tk->stats.dropped++;
        tr_log_warn(MODULE, "job %s/%s: %d Terraform Jobs already waiting; read later", ns, name,
                    QUEUE_MAX);
        return 1;
    }
    if (queue_run(tk, job, ns, name, uid, outcome, reason) != TR_OK)
        tr_log_error(MODULE, "job %s/%s: out of memory", ns, name);
    return 1;
}

int tr_tf_kube_new(tr_tf_kube **out, tr_kube_client *client, tr_http_client *http,
                   tr_store *store, const tr_tf_ingest *ingest,
                   const tr_tf_kube_options *options, tr_error *err)
{
    tr_tf_kube *tk;

    *out = NULL;
    if (client == NULL || http == NULL || store == NULL || ingest == NULL ||
        options == NULL || options->label == NULL || options->label[0] == '\0')
        return tr_error_set(err, TR_EINVAL, "terraform jobs: client, store, ingest and label");
    tk = tr_calloc(1, sizeof(*tk));
    if (tk == NULL || (tk->label = tr_strdup(options->label)) == NULL) {
        tr_free(tk);
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    }
    tk->opt = *options;
    tk->opt.label = tk->label;
    if (tk->opt.max_log_bytes == 0)
        tk->opt.max_log_bytes = DEFAULT_MAX_LOG;
    if (tk->opt.timeout_ms == 0)
        tk->opt.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (tk->opt.max_running == 0)
        tk->opt.max_running = DEFAULT_RUNNING;
    tk->client = client;
    tk->http = http;
    tk->store = store;
    tk->ingest = ingest;
    *out = tk;
    return TR_OK;
}

void tr_tf_kube_stats_get(const tr_tf_kube *tk, tr_tf_kube_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (tk != NULL)
        *out = tk->stats;
}

void tr_tf_kube_free(tr_tf_kube *tk)
{
    job_run *r, *next;

    if (tk == NULL)
        return;
    for (r = tk->queue; r; r = next) {
        next = r->next;
        run_free(r);
    }
    /* Orphaned: each frees itself in its on_done (the cancel's), which never runs inside
     * tr_http_call_cancel. */
    for (r = tk->running; r; r = next) {
        next = r->next;
        r->tk = NULL;
        if (r->call != NULL)
            tr_http_call_cancel(r->call);
        else
            run_free(r);
    }
    tr_free(tk->label);
    tr_free(tk);
}
