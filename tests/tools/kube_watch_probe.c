/*
 * kube_watch_probe.c - runs one Kubernetes reflector against a real
 * apiserver and prints what its consumer sees, one line each, for the
 * integration tests (tests/integration/test_kube_watch.py):
 *
 *   SYNC_BEGIN / SYNC_END <items> rv=<rv>
 *   ADDED|MODIFIED|DELETED <namespace>/<name> rv=<rv> phase=<status.phase>
 *   HEALTH <state> <detail>        (when the reflector's component changes)
 *   EXEC_RUNS <n>                  (when the exec plugin was run again)
 *   DISCOVER rc=<code> served=<0|1> <message>
 *   METRICS <name{labels}> <value> (at exit, for the kube families)
 *
 * SIGINT/SIGTERM closes everything; exit status 0 only when the loop
 * closed cleanly (uv_loop_close returned 0). Logs go to stderr.
 */
#include "alloc.h"
#include "health.h"
#include "http_client.h"
#include "kube_client.h"
#include "kube_reflector.h"
#include "log.h"
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct probe {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    uv_timer_t poll;
    tr_http_client *http;
    tr_health *health;
    tr_metrics *metrics;
    tr_kube_client *client;
    tr_kube_reflector *reflector;
    tr_kube_discovery *discovery;
    char component[256];
    char last_health[2048];
    unsigned long exec_runs;
    size_t items;
} probe;

static void on_sync_begin(void *userdata)
{
    probe *p = userdata;

    p->items = 0;
    printf("SYNC_BEGIN\n");
    fflush(stdout);
}

static void on_object(tr_kube_event_type type, const cJSON *obj, void *userdata)
{
    probe *p = userdata;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(meta, "namespace");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(obj, "status");
    const cJSON *phase = cJSON_GetObjectItemCaseSensitive(status, "phase");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");

    p->items++;
    printf("%s %s/%s rv=%s phase=%s kind=%s\n", tr_kube_event_type_name(type),
           cJSON_IsString(ns) ? ns->valuestring : "",
           cJSON_IsString(name) ? name->valuestring : "?",
           cJSON_IsString(rv) ? rv->valuestring : "?",
           cJSON_IsString(phase) ? phase->valuestring : "-",
           cJSON_IsString(kind) ? kind->valuestring : "-");
    fflush(stdout);
}

static void on_sync_end(void *userdata)
{
    probe *p = userdata;

    printf("SYNC_END %zu rv=%s\n", p->items, tr_kube_reflector_resource_version(p->reflector));
    fflush(stdout);
}

/* The reflector's component as "state detail" from the /readyz rendering. */
static void print_health(probe *p)
{
    tr_buf json = TR_BUF_INIT(0);
    cJSON *root = NULL;
    const cJSON *comp, *state, *detail;
    char line[2048];

    if (tr_health_render_json(p->health, &json) == TR_OK)
        root = cJSON_Parse(tr_buf_cstr(&json));
    comp = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "components"),
                                            p->component);
    state = cJSON_GetObjectItemCaseSensitive(comp, "state");
    detail = cJSON_GetObjectItemCaseSensitive(comp, "detail");
    if (cJSON_IsString(state)) {
        snprintf(line, sizeof(line), "%s %s", state->valuestring,
                 cJSON_IsString(detail) ? detail->valuestring : "");
        if (strcmp(line, p->last_health) != 0) {
            snprintf(p->last_health, sizeof(p->last_health), "%s", line);
            printf("HEALTH %s\n", line);
            fflush(stdout);
        }
    }
    cJSON_Delete(root);
    tr_buf_dispose(&json);
}

static void on_poll(uv_timer_t *timer)
{
    probe *p = timer->data;
    unsigned long runs;

    print_health(p);
    runs = tr_kube_client_exec_runs(p->client);
    if (runs != p->exec_runs) {
        p->exec_runs = runs;
        printf("EXEC_RUNS %lu\n", runs);
        fflush(stdout);
    }
}

static void on_discovered(int rc, int served, const char *message, void *userdata)
{
    probe *p = userdata;

    p->discovery = NULL;
    printf("DISCOVER rc=%d served=%d %s\n", rc, served, message);
    fflush(stdout);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    probe *p = sig->data;

    (void)signum;
    on_poll(&p->poll);
    tr_kube_discover_cancel(p->discovery);
    p->discovery = NULL;
    tr_kube_reflector_close(p->reflector);
    tr_kube_client_close(p->client);
    tr_http_client_free(p->http);
    uv_close((uv_handle_t *)&p->sigint, NULL);
    uv_close((uv_handle_t *)&p->sigterm, NULL);
    uv_close((uv_handle_t *)&p->poll, NULL);
}

static void print_metrics(tr_metrics *m)
{
    tr_buf out = TR_BUF_INIT(0);
    const char *line;

    if (tr_metrics_render(m, &out) != TR_OK)
        return;
    for (line = tr_buf_cstr(&out); *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);

        if (strncmp(line, "triaged_kube_", 13) == 0)
            printf("METRICS %.*s\n", (int)n, line);
        line += n + (nl ? 1 : 0);
    }
    tr_buf_dispose(&out);
}

static const char *arg_value(int argc, char **argv, const char *name, const char *fallback)
{
    int i;

    for (i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return fallback;
}

int main(int argc, char **argv)
{
    probe p;
    tr_kube_client_options copt;
    tr_kube_reflector_options ropt;
    const char *exclude = arg_value(argc, argv, "--exclude", NULL);
    const char *discover = arg_value(argc, argv, "--discover", NULL);
    char *excl_copy = NULL, *excl[16], *save = NULL, *tok;
    size_t excl_count = 0;
    tr_error err = { 0 };
    int rc;

    if (tr_alloc_install() != 0)
        return 2;
    tr_log_setup(getenv("PROBE_DEBUG") ? TR_LOG_DEBUG : TR_LOG_INFO, TR_LOG_TEXT);
    srandom(1);
    memset(&p, 0, sizeof(p));
    if (uv_loop_init(&p.loop) != 0 || tr_http_client_new(&p.http, &p.loop, &err) != TR_OK ||
        tr_health_new(&p.health) != TR_OK || tr_metrics_new(&p.metrics, 0) != TR_OK) {
        fprintf(stderr, "setup failed: %s\n", err.message);
        return 2;
    }
    memset(&copt, 0, sizeof(copt));
    copt.kubeconfig = arg_value(argc, argv, "--kubeconfig", "auto");
    copt.context = arg_value(argc, argv, "--context", NULL);
    copt.sa_dir = arg_value(argc, argv, "--sa-dir", NULL);
    copt.exec_timeout_ms = strtoull(arg_value(argc, argv, "--exec-timeout-ms", "0"), NULL, 10);
    rc = tr_kube_client_new(&p.client, &p.loop, p.http, p.health, &copt, &err);
    if (rc == TR_OK)
        rc = tr_kube_client_start(p.client);
    memset(&ropt, 0, sizeof(ropt));
    ropt.group = arg_value(argc, argv, "--group", "");
    ropt.version = arg_value(argc, argv, "--version", "v1");
    ropt.resource = arg_value(argc, argv, "--resource", "pods");
    ropt.namespace = arg_value(argc, argv, "--namespace", NULL);
    ropt.field_selector = arg_value(argc, argv, "--field-selector", NULL);
    ropt.page_limit = strtoul(arg_value(argc, argv, "--page-limit", "0"), NULL, 10);
    ropt.backoff_initial_ms = strtoull(arg_value(argc, argv, "--backoff-ms", "0"), NULL, 10);
    ropt.backoff_max_ms = strtoull(arg_value(argc, argv, "--backoff-max-ms", "0"), NULL, 10);
    ropt.forbidden_retry_ms = strtoull(arg_value(argc, argv, "--forbidden-retry-ms", "0"),
                                       NULL, 10);
    ropt.watch_timeout_min_s = (unsigned)atoi(arg_value(argc, argv, "--watch-timeout", "0"));
    ropt.watch_timeout_max_s = ropt.watch_timeout_min_s;
    if (exclude) {
        excl_copy = tr_strdup(exclude);
        for (tok = strtok_r(excl_copy, ",", &save); tok && excl_count < 16;
             tok = strtok_r(NULL, ",", &save))
            excl[excl_count++] = tok;
        ropt.exclude_namespaces = (const char *const *)excl;
        ropt.exclude_count = excl_count;
    }
    ropt.health = p.health;
    ropt.metrics = p.metrics;
    ropt.callbacks.on_sync_begin = on_sync_begin;
    ropt.callbacks.on_object = on_object;
    ropt.callbacks.on_sync_end = on_sync_end;
    ropt.userdata = &p;
    if (rc == TR_OK)
        rc = tr_kube_reflector_new(&p.reflector, &p.loop, p.client, p.http, &ropt, &err);
    tr_free(excl_copy);
    if (rc != TR_OK) {
        fprintf(stderr, "probe: %s\n", err.message);
        return 2;
    }
    snprintf(p.component, sizeof(p.component), "kubernetes/%s%s%s%s%s", ropt.resource,
             *ropt.group ? "." : "", ropt.group, ropt.namespace ? "/" : "",
             ropt.namespace ? ropt.namespace : "");
    if (discover) {
        char g[128], v[64], r[128];

        if (sscanf(discover, "%127[^/]/%63[^/]/%127s", g, v, r) == 3 &&
            tr_kube_discover(&p.discovery, p.client, p.http, strcmp(g, "core") ? g : "", v, r,
                             on_discovered, &p, &err) != TR_OK)
            printf("DISCOVER rc=%d served=0 %s\n", err.code, err.message);
    } else {
        (void)tr_kube_reflector_start(p.reflector);
    }
    uv_signal_init(&p.loop, &p.sigint);
    uv_signal_init(&p.loop, &p.sigterm);
    uv_timer_init(&p.loop, &p.poll);
    p.sigint.data = p.sigterm.data = p.poll.data = &p;
    uv_signal_start(&p.sigint, on_signal, SIGINT);
    uv_signal_start(&p.sigterm, on_signal, SIGTERM);
    uv_timer_start(&p.poll, on_poll, 50, 50);
    printf("STARTED\n");
    fflush(stdout);
    uv_run(&p.loop, UV_RUN_DEFAULT);
    print_metrics(p.metrics);
    rc = uv_loop_close(&p.loop);
    printf("EXIT loop_close=%d\n", rc);
    fflush(stdout);
    tr_metrics_free(p.metrics);
    tr_health_free(p.health);
    tr_alloc_uninstall();
    return rc == 0 ? 0 : 1;
}
