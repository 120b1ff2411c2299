/*
 * kube_explain.c - one object, triaged now.
 *
 * Everything runs on a private loop, blocking: GETs are sent and the loop
 * turned until they end. The classification sees no watch history (no
 * cache), so counts are those the objects carry (restartCount, an Event's
 * count). The incident handed to the analysis is the object asked about,
 * whatever the finding's owner would have been, so `explain deployment/x`
 * talks about deployment x.
 */
#include "kube_explain.h"

#include "alloc.h"
#include "analysis.h"
#include "buf.h"
#include "health.h"
#include "http_client.h"
#include "kube_classify.h"
#include "kube_client.h"
#include "kube_evidence.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <strings.h>
#include <string.h>
#include <time.h>

#define GET_TIMEOUT_MS 15000
#define MAX_PODS 50
#define FACT_PODS_MAX 20

enum { EXIT_OK = 0, EXIT_FAILURE = 1, EXIT_USAGE = 2 };

typedef struct kind_word {
    const char *words[4];   /* accepted spellings, lower case (plurals are added) */
    const char *kind;
    int resource;
    int namespaced;
    int has_pods;           /* its pods are found with spec.selector.matchLabels */
} kind_word;

static const kind_word kinds[] = {
    { { "pod", "po" }, "Pod", TR_KUBE_RES_PODS, 1, 0 },
    { { "deployment", "deploy" }, "Deployment", TR_KUBE_RES_DEPLOYMENTS, 1, 1 },
    { { "statefulset", "sts" }, "StatefulSet", TR_KUBE_RES_STATEFULSETS, 1, 1 },
    { { "daemonset", "ds" }, "DaemonSet", TR_KUBE_RES_DAEMONSETS, 1, 1 },
    { { "replicaset", "rs" }, "ReplicaSet", TR_KUBE_RES_REPLICASETS, 1, 1 },
    { { "job" }, "Job", TR_KUBE_RES_JOBS, 1, 1 },
    { { "cronjob", "cj" }, "CronJob", TR_KUBE_RES_CRONJOBS, 1, 0 },
    { { "node", "no" }, "Node", TR_KUBE_RES_NODES, 0, 0 },
    { { "persistentvolumeclaim", "pvc" }, "PersistentVolumeClaim", TR_KUBE_RES_PVCS, 1, 0 },
};

typedef struct explain {
    const tr_config *cfg;
    const tr_explain_options *opt;
    uv_loop_t loop;
    tr_http_client *http;
    tr_health *health;
    tr_kube_client *client;
    int state;              /* -1 waiting, 0 unreachable, 1 connected */
    const kind_word *kind;
    const char *ns;
    const char *name;
} explain;

typedef struct get_result {
    uv_loop_t *loop;
    int done;
    int result;
    long status;
    char *body;
    size_t len;
    char message[TR_ERROR_MSG_MAX];
} get_result;

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const kind_word *find_kind(const char *word, size_t len)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        for (size_t w = 0; w < 4 && kinds[i].words[w]; w++) {
            size_t n = strlen(kinds[i].words[w]);

            if ((len == n || (len == n + 1 && (word[n] == 's' || word[n] == 'S'))) &&
                strncasecmp(word, kinds[i].words[w], n) == 0)
                return &kinds[i];
        }
    return NULL;
}

static void on_state(tr_kube_client *client, int connected, void *userdata)
{
    explain *x = userdata;

    (void)client;
    if (x->state < 0)
        x->state = connected;
    uv_stop(&x->loop);
}

static void on_timeout(uv_timer_t *timer)
{
    explain *x = timer->data;

    if (x->state < 0)
        x->state = 0;
    uv_stop(&x->loop);
}

static void on_get_done(const tr_http_response *resp, void *userdata)
{
    get_result *g = userdata;

    /* Return from uv_run now: the ONCE iteration would otherwise go on to poll. */
    uv_stop(g->loop);
    g->done = 1;
    g->result = resp->result;
    g->status = resp->status;
    snprintf(g->message, sizeof(g->message), "%s", resp->message);
    if (resp->result == TR_OK && (g->body = tr_malloc(resp->body_len + 1)) != NULL) {
        memcpy(g->body, resp->body, resp->body_len);
        g->body[resp->body_len] = '\0';
        g->len = resp->body_len;
    }
}

/* GET path, turning the loop until it ends; the caller frees g->body. */
static int get_blocking(explain *x, const char *path, get_result *g)
{
    tr_http_request req;
    tr_kube_prepared prep;
    tr_error err = { 0 };
    int rc;

    memset(g, 0, sizeof(*g));
    g->loop = &x->loop;
    memset(&req, 0, sizeof(req));
    req.method = TR_HTTP_GET;
    req.timeout_ms = GET_TIMEOUT_MS;
    req.max_response_bytes = (size_t)32 * 1024 * 1024;
    req.on_done = on_get_done;
    req.userdata = g;
    rc = tr_kube_client_prepare(x->client, &req, path, &prep, &err);
    if (rc == TR_OK)
        rc = tr_http_client_send(x->http, &req, NULL, &err);
    tr_kube_prepared_dispose(&prep);
    if (rc != TR_OK) {
        snprintf(g->message, sizeof(g->message), "%s", err.message);
        g->result = rc;
        return rc;
    }
    while (!g->done)
        uv_run(&x->loop, UV_RUN_ONCE);
    if (g->result == TR_OK && g->body == NULL) {
        snprintf(g->message, sizeof(g->message), "out of memory");
        g->result = TR_ENOMEM;
    }
    return g->result;
}

static int connect_cluster(explain *x)
{
    tr_kube_client_options co;
    tr_error err = { 0 };
    uv_timer_t timer;

    memset(&co, 0, sizeof(co));
    co.kubeconfig = x->cfg->kubernetes.kubeconfig;
    co.context = x->cfg->kubernetes.context;
    co.on_state = on_state;
    co.userdata = x;
    if (tr_health_new(&x->health) != TR_OK ||
        tr_http_client_new(&x->http, &x->loop, &err) != TR_OK ||
        tr_kube_client_new(&x->client, &x->loop, x->http, x->health, &co, &err) != TR_OK) {
        fprintf(stderr, "explain: %s\n", err.message[0] ? err.message : "out of memory");
        return EXIT_FAILURE;
    }
    x->state = -1;
    uv_timer_init(&x->loop, &timer);
    timer.data = x;
    uv_timer_start(&timer, on_timeout,
                   x->opt->connect_timeout_ms ? x->opt->connect_timeout_ms : 15000, 0);
    (void)tr_kube_client_start(x->client);
    while (x->state < 0)
        uv_run(&x->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&x->loop, UV_RUN_NOWAIT);
    if (x->state == 0) {
        fprintf(stderr, "explain: the Kubernetes cluster is unreachable (kubeconfig \"%s\"); "
                        "see the warning above\n", co.kubeconfig ? co.kubeconfig : "auto");
        return EXIT_FAILURE;
    }
    return EXIT_OK;
}

static void disconnect(explain *x)
{
    tr_kube_client_close(x->client);
    tr_http_client_free(x->http);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    tr_health_free(x->health);
}

/* The object, or an exit status with the message printed. */
static int get_object(explain *x, cJSON **object)
{
    tr_buf path = TR_BUF_INIT(8192);
    get_result g = { 0 };
    int status = EXIT_FAILURE;

    *object = NULL;
    for (int alt = 0; alt < 2; alt++) {
        tr_buf_clear(&path);
        if (tr_kube_object_path(&path, x->kind->kind, x->ns, x->name, alt) != TR_OK)
            break;
        tr_free(g.body);
        if (get_blocking(x, tr_buf_cstr(&path), &g) != TR_OK || g.status != 404)
            break;
    }
    if (g.result != TR_OK) {
        fprintf(stderr, "explain: GET %s: %s\n", tr_buf_cstr(&path), g.message);
    } else if (g.status == 404) {
        fprintf(stderr, "explain: %s %s%s%s not found\n", x->kind->kind, x->ns,
                *x->ns ? "/" : "", x->name);
        status = EXIT_USAGE;
    } else if (g.status != 200) {
        fprintf(stderr, "explain: GET %s: HTTP %ld%s\n", tr_buf_cstr(&path), g.status,
                g.status == 401 || g.status == 403 ? " (check the credentials and RBAC: "
                                                     "explain needs get and list)" : "");
    } else if ((*object = cJSON_ParseWithLength(g.body, g.len)) == NULL) {
        fprintf(stderr, "explain: GET %s: the answer is not JSON\n", tr_buf_cstr(&path));
    } else {
        status = EXIT_OK;
    }
    tr_free(g.body);
    tr_buf_dispose(&path);
    return status;
}

/* A list (items) at path, or NULL (a warning is printed: explain goes on without it). */
static cJSON *get_list(explain *x, const char *path)
{
    get_result g;
    cJSON *list = NULL;

    if (get_blocking(x, path, &g) == TR_OK && g.status == 200)
        list = cJSON_ParseWithLength(g.body, g.len);
    if (list == NULL)
        fprintf(stderr, "explain: warning: GET %s: %s\n", path,
                g.result != TR_OK ? g.message : "no list");
    tr_free(g.body);
    return list;
}


static cJSON *list_pods(explain *x, const cJSON *object)
{
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(object, "spec"),
                                         "selector"),
        "matchLabels");
    const cJSON *label;
    tr_buf selector = TR_BUF_INIT(4096), path = TR_BUF_INIT(16384);
    cJSON *list = NULL;

    cJSON_ArrayForEach(label, labels)
        if (cJSON_IsString(label))
            (void)tr_buf_printf(&selector, "%s%s=%s", selector.len ? "," : "", label->string,
                                label->valuestring);
    if (selector.len > 0) {
        (void)tr_buf_printf(&path, "/api/v1/namespaces/%s/pods?limit=%d&labelSelector=", x->ns,
                            MAX_PODS);
        (void)tr_buf_put_escaped(&path, tr_buf_cstr(&selector));
        list = get_list(x, tr_buf_cstr(&path));
    }
    tr_buf_dispose(&selector);
    tr_buf_dispose(&path);
    return list;
}

static int involves(const cJSON *event, const char *kind, const char *name)
{
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(event, "involvedObject");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(obj, "kind");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, "name");

    return cJSON_IsString(k) && cJSON_IsString(n) && strcmp(k->valuestring, kind) == 0 &&
           strcmp(n->valuestring, name) == 0;
}

static const char *meta_name(const cJSON *object)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(object, "metadata"), "name");

    return cJSON_IsString(n) ? n->valuestring : NULL;
}

/*
 * Classify into result (findings accumulate, first kept): the object, its
 * pods, then the Warning events about any of them. *best is the first
 * finding, borrowed from results.
 */
static void classify_all(explain *x, const cJSON *object, const cJSON *pods,
                         const cJSON *events, tr_kube_result *results, size_t *count,
                         const tr_kube_finding **best)
{
    tr_kube_classify_options co;
    const char *cluster = x->cfg->kubernetes.cluster_name;
    const cJSON *item, *pod;
    int64_t now = wall_ms();

    tr_kube_classify_options_default(&co);
    *best = NULL;
    (void)tr_kube_classify(&co, NULL, cluster, x->kind->resource, object, now, &results[0]);
    *count = 1;
    cJSON_ArrayForEach(pod, cJSON_GetObjectItemCaseSensitive(pods, "items"))
    {
        if (*count >= 1 + MAX_PODS)
            break;
        (void)tr_kube_classify(&co, NULL, cluster, TR_KUBE_RES_PODS, pod, now,
                               &results[(*count)++]);
    }
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(events, "items"))
    {
        int ours = involves(item, x->kind->kind, x->name);

        cJSON_ArrayForEach(pod, cJSON_GetObjectItemCaseSensitive(pods, "items"))
            ours |= meta_name(pod) && involves(item, "Pod", meta_name(pod));
        if (!ours || *count >= 2 * (1 + MAX_PODS))
            continue;
        (void)tr_kube_classify(&co, NULL, cluster, TR_KUBE_RES_EVENTS, item, now,
                               &results[(*count)++]);
    }
    for (size_t i = 0; i < *count && *best == NULL; i++)
        if (results[i].finding_count > 0)
            *best = &results[i].findings[0];
}

/* facts: the finding's, plus the pods of the object that show a failure. */
static char *incident_facts(const tr_kube_finding *best, const tr_kube_result *results,
                            size_t count)
{
    cJSON *facts = best->facts ? cJSON_Duplicate(best->facts, 1) : cJSON_CreateObject();
    cJSON *pods = facts ? cJSON_AddArrayToObject(facts, "pods") : NULL;
    int pod_count = 0;
    char *text = NULL, *copy;

    if (pods == NULL)
        goto cleanup;
    for (size_t i = 0; i < count; i++)
        for (size_t f = 0; f < results[i].finding_count; f++) {
            const tr_kube_finding *fd = &results[i].findings[f];
            const cJSON *seen;
            int dup = 0;

            if (!fd->pod_scoped || fd->failure_class != best->failure_class)
                continue;
            cJSON_ArrayForEach(seen, pods)
                dup |= strcmp(seen->valuestring, fd->object_name) == 0;
            if (dup)
                continue;
            pod_count++;
            if (cJSON_GetArraySize(pods) < FACT_PODS_MAX)
                cJSON_AddItemToArray(pods, cJSON_CreateString(fd->object_name));
        }
    if (!cJSON_AddNumberToObject(facts, "pod_count", pod_count))
        goto cleanup;
    if (!cJSON_HasObjectItem(facts, "object_kind") &&
        (!cJSON_AddStringToObject(facts, "object_kind", best->object_kind) ||
         !cJSON_AddStringToObject(facts, "object_name", best->object_name)))
        goto cleanup;
    text = cJSON_PrintUnformatted(facts);
cleanup:
    cJSON_Delete(facts);
    copy = text ? tr_strdup(text) : NULL;
    if (text)
        cJSON_free(text);
    return copy;
}

typedef struct gathered {
    uv_loop_t *loop;
    int done;
    char *json;
} gathered;

static void on_gathered(int rc, const char *evidence_json, void *userdata)
{
    gathered *g = userdata;

    g->done = 1;
    g->json = rc == TR_OK && evidence_json ? tr_strdup(evidence_json) : NULL;
    uv_stop(g->loop);
}

/* Evidence through kube_evidence on this loop; NULL when none could be gathered. */
static char *gather(explain *x, const tr_store_incident *inc)
{
    tr_kube_evidence_options eo;
    tr_kube_evidence *ev = NULL;
    tr_error err = { 0 };
    gathered g = { &x->loop, 0, NULL };

    memset(&eo, 0, sizeof(eo));
    eo.log_tail_lines = x->cfg->triage.log_tail_lines;
    eo.log_max_bytes = x->cfg->triage.log_max_bytes;
    if (tr_kube_evidence_new(&ev, &x->loop, x->client, x->http, &eo, &err) == TR_OK &&
        tr_kube_evidence_gather(ev, inc, on_gathered, &g, NULL, &err) == TR_OK) {
        while (!g.done)
            uv_run(&x->loop, UV_RUN_ONCE);
    } else {
        fprintf(stderr, "explain: warning: no evidence gathered: %s\n", err.message);
    }
    tr_kube_evidence_free(ev);
    return g.json;
}

static int analyse(explain *x, const tr_store_incident *inc, const char *evidence, FILE *out)
{
    tr_analysis_outcome *outcome = NULL;
    tr_buf text = TR_BUF_INIT(0);
    tr_error err = { 0 };
    int status = EXIT_FAILURE;

    if (tr_analysis_run_once_ex(x->cfg, inc, evidence && *evidence ? evidence : NULL, &outcome,
                                &err) != TR_OK) {
        fprintf(stderr, "explain: analysis failed: %s\n", err.message);
        return EXIT_FAILURE;
    }
    if (tr_buf_printf(&text, "%s %s%s%s: %s\n", inc->kind, inc->namespace,
                      *inc->namespace ? "/" : "", inc->name, inc->failure_class) == TR_OK &&
        tr_analysis_outcome_print(outcome, &text) == TR_OK &&
        (!x->opt->show_evidence ||
         tr_buf_printf(&text, "evidence (redacted, as sent):\n%s\n", outcome->evidence_json) ==
             TR_OK)) {
        fputs(tr_buf_cstr(&text), out);
        status = EXIT_OK;
    } else {
        fprintf(stderr, "explain: out of memory\n");
    }
    tr_buf_dispose(&text);
    tr_analysis_outcome_free(outcome);
    return status;
}

static int explain_object(explain *x, FILE *out)
{
    tr_kube_result *results = tr_calloc(2 * (1 + MAX_PODS), sizeof(*results));
    cJSON *object = NULL, *pods = NULL, *events = NULL;
    const tr_kube_finding *best = NULL;
    tr_store_incident inc;
    tr_buf path = TR_BUF_INIT(8192);
    char *facts = NULL, *evidence = NULL;
    size_t count = 0;
    int status;

    if (results == NULL)
        return EXIT_FAILURE;
    status = get_object(x, &object);
    if (status != EXIT_OK)
        goto cleanup;
    if (x->kind->has_pods)
        pods = list_pods(x, object);
    (void)(x->kind->namespaced
               ? tr_buf_printf(&path, "/api/v1/namespaces/%s/events?fieldSelector=type%%3DWarning",
                               x->ns)
               : tr_buf_puts(&path, "/api/v1/events?fieldSelector=type%3DWarning"));
    events = get_list(x, tr_buf_cstr(&path));
    classify_all(x, object, pods, events, results, &count, &best);
    if (best == NULL) {
        fprintf(out, "no failure found: %s %s%s%s looks healthy\n", x->kind->kind, x->ns,
                *x->ns ? "/" : "", x->name);
        goto cleanup;
    }
    facts = incident_facts(best, results, count);
    memset(&inc, 0, sizeof(inc));
    inc.source = "kubernetes";
    inc.cluster = x->cfg->kubernetes.cluster_name;
    inc.namespace = (char *)x->ns;
    inc.kind = (char *)x->kind->kind;
    inc.name = (char *)x->name;
    inc.failure_class = (char *)tr_kube_class_name(best->failure_class);
    inc.title = best->message;
    inc.message = best->message;
    inc.facts_json = facts;
    inc.first_seen_ms = inc.last_seen_ms = wall_ms();
    inc.observation_count = 1;
    evidence = gather(x, &inc);
    status = analyse(x, &inc, evidence, out);
cleanup:
    for (size_t i = 0; i < count; i++)
        tr_kube_result_dispose(&results[i]);
    tr_free(results);
    cJSON_Delete(object);
    cJSON_Delete(pods);
    cJSON_Delete(events);
    tr_free(facts);
    tr_free(evidence);
    tr_buf_dispose(&path);
    return status;
}

int tr_explain_run_ex(const tr_config *cfg, const char *kind_name, const char *ns,
                      const tr_explain_options *options, FILE *out)
{
    static const tr_explain_options defaults = { 0, 0 };
    const char *slash = kind_name ? strchr(kind_name, '/') : NULL;
    explain x;
    int status;

    memset(&x, 0, sizeof(x));
    x.cfg = cfg;
    x.opt = options ? options : &defaults;
    if (slash == NULL || slash == kind_name || slash[1] == '\0' || strchr(slash + 1, '/')) {
        fprintf(stderr, "explain: expects KIND/NAME (e.g. deployment/checkout), got \"%s\"\n",
                kind_name ? kind_name : "");
        return EXIT_USAGE;
    }
    x.kind = find_kind(kind_name, (size_t)(slash - kind_name));
    if (x.kind == NULL) {
        fprintf(stderr, "explain: unknown kind \"%.*s\": use pod, deployment, statefulset, "
                        "daemonset, replicaset, job, cronjob, node or pvc\n",
                (int)(slash - kind_name), kind_name);
        return EXIT_USAGE;
    }
    x.name = slash + 1;
    x.ns = !x.kind->namespaced ? "" : ns && *ns ? ns : "default";
    if (uv_loop_init(&x.loop) != 0) {
        fprintf(stderr, "explain: cannot create an event loop\n");
        return EXIT_FAILURE;
    }
    status = connect_cluster(&x);
    if (status == EXIT_OK)
        status = explain_object(&x, out);
    disconnect(&x);
    if (uv_loop_close(&x.loop) != 0)
        tr_log_warn("explain", "loop closed with handles still open");
    return status;
}

int tr_explain_run(const tr_config *cfg, const char *kind_name, const char *ns, FILE *out)
{
    return tr_explain_run_ex(cfg, kind_name, ns, NULL, out);
}
