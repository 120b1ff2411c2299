/*
 * daemon.c - process lifecycle.
 *
 * Start order: logging, state directory, store, metrics and health, HTTP
 * client, HTTP server (routes, listen), watchers, signal handlers. Every
 * step that fails stops the start with one clear log line and the exit
 * status the CLI promises.
 *
 * Stop order (SIGTERM/SIGINT, or a second signal to hurry): readiness goes
 * false, the server stops accepting and lets requests in flight finish,
 * watchers cancel their calls, the HTTP client cancels what is left, and
 * once the server reports closed, the store is closed (every state change
 * was already its own committed transaction, so nothing is lost) and the
 * remaining handles are closed. A timer bounds the whole stop to
 * shutdown_timeout; the loop must then close cleanly.
 */
#include "daemon.h"
#include "alloc.h"
#include "actions.h"
#include "analysis.h"
#include "api.h"
#include "chat.h"
#include "buf.h"
#include "cli.h"
#include "dispatch.h"
#include "fixer.h"
#include "health.h"
#include "http_client.h"
#include "http_server.h"
#include "kube_evidence.h"
#include "repos.h"
#include "source.h"
#include "kube_lease.h"
#include "kube_watcher.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "tf_dir.h"
#include "tf_http.h"
#include "tf_ingest.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#ifndef TR_VERSION
#define TR_VERSION "0.0.0"
#endif

typedef struct daemon_state {
    const tr_config *cfg;
    uv_loop_t loop;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t shutdown_timer;
    tr_metrics *metrics;
    tr_health *health;
    tr_store *store;
    tr_http_client *http;
    tr_http_server *server;
    tr_kube_watcher *kube;
    tr_kube_client *lease_client; /* leader election: its own connection */
    tr_kube_lease *lease;
    tr_metric_family *leader_gauge;
    tr_analysis *analysis;
    tr_chat *chat;
    tr_kube_evidence *evidence;
    tr_repos *repos;      /* GitOps repositories ([gitops]) */
    tr_source *source;    /* their part of the evidence; uses the watcher's client */
    tr_dispatch *dispatch;
    tr_actions actions;
    /* The fixer and what it borrows (fixer first to close, then the others). */
    tr_fixer *fixer;
    tr_forge *fix_forge;
    tr_llm *fix_llm;
    char *slack_secret;
    tr_tf_ingest tf_ingest;
    tr_tf_dir *tf_dir;
    tr_tf_http *tf_http;
    char *tf_hmac_key;
    char *tfc_token;
    int closes_pending;   /* server and Terraform follower still closing */
    tr_api api;
    char *api_token;
    tr_metric_family *incidents_gauge;
    tr_metric_family *component_gauge;
    tr_metric_family *outbox_gauge;
    int stopping;
    int server_closed;
    int forced;
    int exit_status;
} daemon_state;

/* mkdir -p with 0700 for the leaf: state holds incident evidence. */
static int make_state_dir(const char *path, tr_error *err)
{
    char copy[4096];
    size_t i, len = strlen(path);

    if (len == 0 || len >= sizeof(copy))
        return tr_error_set(err, TR_ECONFIG, "daemon.state_dir: bad path '%s'", path);
    memcpy(copy, path, len + 1);
    for (i = 1; i <= len; i++) {
        if (copy[i] != '/' && copy[i] != '\0')
            continue;
        copy[i] = '\0';
        if (mkdir(copy, i == len ? 0700 : 0755) != 0 && errno != EEXIST)
            return tr_error_set(err, TR_EIO, "cannot create state directory %s: %s", copy,
                                strerror(errno));
        copy[i] = i == len ? '\0' : '/';
    }
    return TR_OK;
}

static void finish_stop(daemon_state *d)
{
    /* Analyses cut short stay `triaged` and are finished after a restart. */
    tr_analysis_close(d->analysis);
    d->analysis = NULL;
    tr_http_client_free(d->http);
    d->http = NULL;
    tr_store_close(d->store);
    d->store = NULL;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->shutdown_timer, NULL);
}

static void close_done(daemon_state *d)
{
    if (--d->closes_pending == 0)
        finish_stop(d);
}

static void on_server_closed(tr_http_server *srv, void *userdata)
{
    daemon_state *d = userdata;

    (void)srv;
    d->server_closed = 1;
    close_done(d);
}

static void on_tf_dir_stopped(void *userdata)
{
    close_done(userdata);
}

static void on_dispatch_closed(void *userdata)
{
    close_done(userdata);
}

static void on_repos_closed(void *userdata)
{
    close_done(userdata);
}

/* Clone/fetch the GitOps repositories; their readiness is "gitops/<name>". */
static int start_gitops(daemon_state *d, tr_error *err)
{
    int rc = tr_repos_new(&d->repos, &d->loop, d->cfg, d->health, err);

    if (rc == TR_OK)
        rc = tr_repos_start(d->repos);
    return rc == TR_OK || err->message[0] ? rc : tr_error_set(err, rc, "gitops: cannot start");
}

/* The source gatherer borrows the watcher's client: made again with each watcher. */
static void stop_source(daemon_state *d)
{
    tr_source_free(d->source);
    d->source = NULL;
}

static void wrap_source_provider(daemon_state *d, tr_evidence_provider *provider)
{
    tr_evidence_provider inner = *provider;
    tr_error err = { 0 };

    stop_source(d);
    if (tr_repos_count(d->repos) == 0)
        return;
    if (tr_source_new(&d->source, &d->loop, d->repos,
                      d->kube ? tr_kube_watcher_client(d->kube) : NULL, d->http, NULL,
                      &err) != TR_OK) {
        tr_log_warn("daemon", "no GitOps source evidence: %s", err.message);
        return;
    }
    tr_source_provider(d->source, &inner, provider);
}

static void on_lease_stopped(void *userdata)
{
    daemon_state *d = userdata;

    tr_kube_lease_close(d->lease);
    d->lease = NULL;
    tr_kube_client_close(d->lease_client);
    d->lease_client = NULL;
    close_done(d);
}

/* ------------------------------------------------------------ fixer */

/* The fixer's schema source, asked when a job starts: d->kube comes and goes with leadership. */
static tr_kube_client *fixer_kube_client(void *userdata)
{
    daemon_state *d = userdata;

    return d->kube ? tr_kube_watcher_client(d->kube) : NULL;
}

/* PRs for accepted patches when a forge and a GitOps repository are configured. */
static int start_fixer(daemon_state *d, tr_error *err)
{
    const tr_config *c = d->cfg;
    const tr_config_strlist *paths;
    tr_gitrepo *repo;
    tr_fixer_options o;
    tr_llm_options lo;
    int rc;

    /* [gitops] url, else the first [[gitops.repos]]: the repository PRs go to. */
    repo = tr_repos_default(d->repos);
    if (c->forge.kind == TR_CONFIG_FORGE_NONE || repo == NULL)
        return TR_OK;
    if ((rc = tr_forge_create(&d->fix_forge, &c->forge, d->http, NULL, err)) != TR_OK)
        return rc;
    if (c->llm.provider != TR_CONFIG_LLM_NONE) {
        memset(&lo, 0, sizeof(lo));
        lo.config = &c->llm;
        lo.store = d->store;
        lo.metrics = d->metrics;
        if ((rc = tr_llm_new(&d->fix_llm, &d->loop, d->http, &lo, err)) != TR_OK)
            return rc;
    }
    memset(&o, 0, sizeof(o));
    o.store = d->store;
    o.forge = d->fix_forge;
    o.repo = repo;
    o.llm = d->fix_llm;
    o.metrics = d->metrics;
    o.dispatch = d->dispatch;
    o.policy = &c->fixer;
    o.author = c->gitops.author;
    o.public_url = c->daemon.public_url;
    paths = &c->gitops.allowed_paths;
    if ((c->gitops.url == NULL || !*c->gitops.url) && c->gitops.repo_count > 0 &&
        c->gitops.repos[0].allowed_paths.count > 0)
        paths = &c->gitops.repos[0].allowed_paths; /* the default is the first repo */
    o.allowed_paths = (const char *const *)paths->items;
    o.allowed_path_count = paths->count;
    o.terraform_validate = 1;
    o.http = d->http;
    o.kube_client = fixer_kube_client;
    o.kube_userdata = d;
    if ((rc = tr_fixer_new(&d->fixer, &d->loop, &o, err)) != TR_OK)
        return rc;
    d->actions.on_decision = tr_fixer_on_decision;
    d->actions.userdata = d->fixer;
    tr_log_info("daemon", "fixer: accepted patches become %s pull requests on %s",
                tr_forge_kind(d->fix_forge), c->forge.repo);
    return TR_OK;
}

/*
 * Jobs end at their next step (incidents stay `accepted` and resume after a
 * restart); their repository is the registry's and closes after this.
 */
static void stop_fixer(daemon_state *d)
{
    tr_fixer_close(d->fixer, NULL, NULL);
    d->fixer = NULL;
    d->actions.on_decision = NULL;
    tr_forge_free(d->fix_forge);
    d->fix_forge = NULL;
    tr_llm_free(d->fix_llm);
    d->fix_llm = NULL;
}

static void begin_stop(daemon_state *d, const char *why)
{
    if (d->stopping)
        return;
    d->stopping = 1;
    tr_log_info("daemon", "stopping (%s)", why);
    tr_health_set_stopping(d->health);
    /* The stage uses the evidence gatherer, which uses the watcher's connection. */
    tr_analysis_close(d->analysis);
    d->analysis = NULL;
    tr_chat_close(d->chat); /* turns waiting for the LLM are answered 503 */
    d->chat = NULL;
    stop_fixer(d); /* before the repositories close under its jobs */
    stop_source(d);
    tr_kube_evidence_free(d->evidence);
    d->evidence = NULL;
    tr_kube_watcher_close(d->kube);
    d->kube = NULL;
    /* One extra count so that nothing finishes before every close has begun. */
    d->closes_pending = 1;
    if (d->tf_dir) {
        d->closes_pending++;
        tr_tf_dir_stop(d->tf_dir, on_tf_dir_stopped, d);
        d->tf_dir = NULL;
    }
    if (d->dispatch) {
        d->closes_pending++;
        tr_dispatch_close(d->dispatch, on_dispatch_closed, d);
        d->dispatch = NULL;
    }
    if (d->repos) {
        d->closes_pending++;
        tr_repos_close(d->repos, on_repos_closed, d);
        d->repos = NULL;
    }
    if (d->lease) {
        /* Released, so that a standby takes over now rather than after lease_duration. */
        d->closes_pending++;
        tr_kube_lease_stop(d->lease, on_lease_stopped, d);
    }
    if (d->server) {
        d->closes_pending++;
        tr_http_server_close(d->server, on_server_closed, d);
    }
    close_done(d);
}

static void on_shutdown_timeout(uv_timer_t *timer)
{
    daemon_state *d = timer->data;

    /*
     * Something did not finish in time. Every state change is already
     * committed, so stopping the loop here loses nothing; the handles left
     * open are released by the process exit.
     */
    tr_log_warn("daemon", "shutdown took longer than %llums: exiting with work left undone",
                (unsigned long long)d->cfg->daemon.shutdown_timeout_ms);
    d->forced = 1;
    uv_stop(&d->loop);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    daemon_state *d = handle->data;

    if (d->stopping) {
        tr_log_warn("daemon", "second %s: stopping now", signum == SIGINT ? "SIGINT" : "SIGTERM");
        return;
    }
    begin_stop(d, signum == SIGINT ? "SIGINT" : "SIGTERM");
    (void)uv_timer_start(&d->shutdown_timer, on_shutdown_timeout,
                         d->cfg->daemon.shutdown_timeout_ms, 0);
}

static void each_component(const char *name, tr_health_state state, void *userdata)
{
    daemon_state *d = userdata;

    (void)tr_metric_set(d->component_gauge, state == TR_HEALTH_OK ? 1 : 0, name);
}

/* Gauges that mirror the store and health are read at scrape time. */
static void before_scrape(void *userdata)
{
    daemon_state *d = userdata;
    int64_t counts[TR_INCIDENT_STATE_COUNT];
    tr_store_outbox_stats *stats = NULL;
    tr_error err = { 0 };
    size_t i;
    int s;

    tr_health_each(d->health, each_component, d);
    if (d->store == NULL)
        return;
    if (tr_store_incident_counts(d->store, counts, &err) == TR_OK) {
        for (s = TR_INCIDENT_OPEN; s < TR_INCIDENT_STATE_COUNT; s++)
            (void)tr_metric_set(d->incidents_gauge, (double)counts[s], tr_store_state_name(s));
    } else {
        tr_log_warn("metrics", "incident counts: %s", err.message);
    }
    if (tr_store_outbox_stats_get(d->store, &stats, &err) == TR_OK) {
        for (i = 0; i < stats->count; i++) {
            (void)tr_metric_set(d->outbox_gauge, (double)stats->items[i].pending,
                                stats->items[i].sink, "pending");
            (void)tr_metric_set(d->outbox_gauge, (double)stats->items[i].dead,
                                stats->items[i].sink, "dead");
        }
        tr_store_outbox_stats_free(stats);
    }
}

static int setup_metrics(daemon_state *d, tr_error *err)
{
    tr_metric_family *build;

    if (tr_metrics_new(&d->metrics, 0) != TR_OK)
        return tr_error_set(err, TR_ENOMEM, "metrics: out of memory");
    tr_metrics_enable_process(d->metrics);
    build = tr_metrics_gauge(d->metrics, "triaged_build_info",
                             "Build information; the value is always 1.", "version", NULL);
    (void)tr_metric_set(build, 1, TR_VERSION);
    d->incidents_gauge = tr_metrics_gauge(d->metrics, "triaged_incidents",
                                          "Incidents by state.", "state", NULL);
    d->component_gauge = tr_metrics_gauge(d->metrics, "triaged_component_up",
                                          "1 when a component works, else 0 (see /readyz).",
                                          "component", NULL);
    d->outbox_gauge = tr_metrics_gauge(d->metrics, "triaged_outbox_messages",
                                       "Notification deliveries by sink and state.", "sink",
                                       "state", NULL);
    return TR_OK;
}

static int start_store(daemon_state *d, tr_error *err)
{
    tr_buf path = TR_BUF_INIT(8192);
    int rc;

    rc = make_state_dir(d->cfg->daemon.state_dir, err);
    if (rc != TR_OK)
        return rc;
    (void)tr_buf_printf(&path, "%s/triaged.db", d->cfg->daemon.state_dir);
    rc = tr_store_open(&d->store, tr_buf_cstr(&path), err);
    if (rc == TR_OK) {
        (void)tr_health_set(d->health, "store", TR_HEALTH_OK, tr_buf_cstr(&path));
        tr_log_info("store", "opened %s (schema v%d)", tr_buf_cstr(&path),
                    tr_store_schema_version());
    }
    tr_buf_dispose(&path);
    return rc;
}

static int start_server(daemon_state *d, tr_error *err)
{
    tr_http_server_options options;
    int rc;

    memset(&options, 0, sizeof(options));
    options.max_body_bytes = (size_t)d->cfg->daemon.max_body_bytes;
    options.header_timeout_ms = (unsigned)d->cfg->daemon.header_timeout_ms;
    options.idle_timeout_ms = (unsigned)d->cfg->daemon.idle_timeout_ms;
    options.shutdown_timeout_ms = (unsigned)(d->cfg->daemon.shutdown_timeout_ms / 2);
    options.metrics = d->metrics;
    rc = tr_http_server_new(&d->server, &d->loop, &options, err);
    if (rc != TR_OK)
        return rc;
    d->api.store = d->store;
    d->api.health = d->health;
    d->api.metrics = d->metrics;
    d->api.api_token = d->api_token;
    d->api.dispatch = d->dispatch;
    d->api.before_scrape = before_scrape;
    d->api.userdata = d;
    rc = tr_api_register(&d->api, d->server, err);
    d->actions.store = d->store;
    d->actions.http = d->http;
    d->actions.api_token = d->api_token;
    d->actions.slack_signing_secret = d->slack_secret;
    d->actions.dispatch = d->dispatch;
    d->actions.on_explain = tr_chat_explain;
    d->actions.explain_userdata = d->chat;
    if (rc == TR_OK)
        rc = tr_actions_register(d->server, &d->actions, err);
    if (rc == TR_OK)
        rc = tr_chat_register(d->server, d->chat, d->api_token, err);
    if (rc == TR_OK && d->tf_http)
        rc = tr_tf_http_register(d->server, d->tf_http, err);
    if (rc == TR_OK)
        rc = tr_http_server_listen(d->server, d->cfg->daemon.listen, err);
    if (rc != TR_OK)
        return rc;
    (void)tr_health_set(d->health, "http", TR_HEALTH_OK, d->cfg->daemon.listen);
    return TR_OK;
}

/* A watcher opened or reopened an incident: analyse it now, not at the next scan. */
static void on_tf_incident(const tr_tf_incident_event *event, void *userdata)
{
    daemon_state *d = userdata;

    if (d->analysis && (event->kind == TR_OBS_CREATED || event->kind == TR_OBS_REOPENED))
        tr_analysis_notify(d->analysis, event->incident_id);
    tr_dispatch_notify(d->dispatch);
}

static int start_analysis(daemon_state *d, tr_error *err)
{
    static const char *const providers[] = { "openai-compatible", "azure", "rule-based only" };
    tr_analysis_options options;
    int rc;

    memset(&options, 0, sizeof(options));
    if (d->evidence)
        tr_kube_evidence_provider(d->evidence, &options.evidence);
    wrap_source_provider(d, &options.evidence);
    rc = tr_analysis_new_ex(&d->analysis, &d->loop, d->store, d->http, d->cfg, d->metrics,
                            &options, err);

    if (rc != TR_OK)
        return rc == TR_ECONFIG ? rc : tr_error_set(err, rc, "analysis: %s", err->message);
    (void)tr_health_set(d->health, "analysis", TR_HEALTH_OK,
                        providers[d->cfg->llm.provider]);
    return TR_OK;
}

/* Shared by every Terraform input, the Kubernetes Jobs that run Terraform included. */
static void init_tf_ingest(daemon_state *d)
{
    d->tf_ingest.store = d->store;
    d->tf_ingest.dedup_window_ms = (int64_t)d->cfg->triage.dedup_window_ms;
    d->tf_ingest.on_incident = on_tf_incident;
    d->tf_ingest.userdata = d;
}

/* Terraform inputs: HTTP ingest (always, when enabled), webhook, log_dirs. */
static int prepare_terraform(daemon_state *d, tr_error *err)
{
    const tr_config_terraform *tf = &d->cfg->terraform;
    tr_tf_http_options options;
    int rc;

    init_tf_ingest(d);
    if (!tf->enabled) {
        (void)tr_health_set(d->health, "terraform", TR_HEALTH_DISABLED,
                            "terraform.enabled = false");
        return TR_OK;
    }
    if (*tf->webhook_hmac_key_file &&
        tr_config_secret_resolve(NULL, tf->webhook_hmac_key_file, &d->tf_hmac_key, err) != TR_OK) {
        tr_error_prefix(err, "terraform.webhook_hmac_key_file: ");
        return TR_ECONFIG;
    }
    if (*tf->tfc_token_env &&
        tr_config_secret_resolve(tf->tfc_token_env, NULL, &d->tfc_token, err) != TR_OK) {
        /* The log fetch is an extra: without the token notifications still work. */
        tr_log_warn("terraform", "terraform.tfc_token_env: %s; run logs will not be fetched",
                    err->message);
        d->tfc_token = NULL;
    }
    memset(&options, 0, sizeof(options));
    options.ingest = d->tf_ingest;
    options.api_token = d->api_token;
    options.hmac_key = d->tf_hmac_key;
    options.client = d->http;
    options.max_log_bytes = (size_t)tf->max_log_bytes;
    options.tfc_token = d->tfc_token;
    options.tfc_base_url = tf->tfc_base_url;
    rc = tr_tf_http_new(&d->tf_http, &options, err);
    return rc;
}

static int start_terraform_dirs(daemon_state *d, tr_error *err)
{
    const tr_config_terraform *tf = &d->cfg->terraform;
    tr_tf_dir_options options;
    char detail[256];
    int rc;

    if (!tf->enabled)
        return TR_OK;
    snprintf(detail, sizeof(detail), "POST /v1/terraform/runs; webhook %s; %zu log dir(s)",
             d->tf_hmac_key ? "on" : "off", tf->log_dirs.count);
    if (tf->log_dirs.count > 0) {
        memset(&options, 0, sizeof(options));
        options.loop = &d->loop;
        options.ingest = &d->tf_ingest;
        options.dirs = (const char *const *)tf->log_dirs.items;
        options.dir_count = tf->log_dirs.count;
        options.rescan_interval_ms = tf->rescan_interval_ms;
        options.settle_time_ms = tf->settle_time_ms;
        rc = tr_tf_dir_start(&d->tf_dir, &options, err);
        if (rc != TR_OK)
            return rc;
    }
    (void)tr_health_set(d->health, "terraform", TR_HEALTH_OK, detail);
    return TR_OK;
}

static void on_kube_incident(int64_t incident_id, int outcome, void *userdata)
{
    daemon_state *d = userdata;

    if (d->analysis && (outcome == TR_OBS_CREATED || outcome == TR_OBS_REOPENED))
        tr_analysis_notify(d->analysis, incident_id);
    tr_dispatch_notify(d->dispatch);
}

static int start_kubernetes(daemon_state *d, tr_error *err)
{
    int rc;

    if (!d->cfg->kubernetes.enabled) {
        (void)tr_health_set(d->health, "kubernetes", TR_HEALTH_DISABLED,
                            "kubernetes.enabled = false");
        return TR_OK;
    }
    tr_kube_evidence_options evidence_options;

    rc = tr_kube_watcher_new(&d->kube, &d->loop, d->cfg, d->store, d->http, d->health,
                             d->metrics, on_kube_incident, d, err);
    if (rc != TR_OK)
        return rc;
    if (d->cfg->terraform.enabled) {
        init_tf_ingest(d);
        rc = tr_kube_watcher_set_terraform(d->kube, &d->tf_ingest, err);
        if (rc != TR_OK)
            return rc;
    }
    memset(&evidence_options, 0, sizeof(evidence_options));
    evidence_options.log_tail_lines = d->cfg->triage.log_tail_lines;
    evidence_options.log_max_bytes = d->cfg->triage.log_max_bytes;
    rc = tr_kube_evidence_new(&d->evidence, &d->loop, tr_kube_watcher_client(d->kube), d->http,
                              &evidence_options, err);
    if (rc == TR_OK)
        rc = tr_kube_watcher_start(d->kube);
    return rc;
}

/* ------------------------------------------------------------ leader election */

/* The watcher, its evidence and the analysis run on the leader only. */
static void stop_processing(daemon_state *d)
{
    tr_analysis_close(d->analysis);
    d->analysis = NULL;
    stop_source(d);
    tr_kube_evidence_free(d->evidence);
    d->evidence = NULL;
    tr_kube_watcher_close(d->kube);
    d->kube = NULL;
    (void)tr_health_set(d->health, "analysis", TR_HEALTH_DISABLED,
                        "standby: another replica holds the leader Lease");
}

static void show_election(daemon_state *d, tr_kube_lease *lease)
{
    char detail[512];
    int leader = tr_kube_lease_is_leader(lease);

    (void)tr_metric_set(d->leader_gauge, leader ? 1 : 0);
    snprintf(detail, sizeof(detail), "%s; Lease %s/%s, holder %s", leader ? "leader" : "standby",
             tr_kube_lease_namespace(lease), tr_kube_lease_name(lease),
             *tr_kube_lease_holder(lease) ? tr_kube_lease_holder(lease) : "none");
    (void)tr_health_set(d->health, "leader-election", TR_HEALTH_OK, detail);
}

static void on_lease_holder(tr_kube_lease *lease, const char *holder, void *userdata)
{
    (void)holder;
    show_election(userdata, lease);
}

static void on_leader_change(tr_kube_lease *lease, int is_leader, void *userdata)
{
    daemon_state *d = userdata;
    tr_error err = { 0 };

    show_election(d, lease);
    if (d->stopping)
        return;
    if (!is_leader) {
        if (d->kube != NULL)
            tr_log_info("daemon", "no longer the leader: watching and analysis stop");
        stop_processing(d);
        return;
    }
    if (d->kube != NULL)
        return;
    tr_log_info("daemon", "leader (%s): watching the cluster and analysing incidents",
                tr_kube_lease_identity(lease));
    /* A new watcher relists: the store's fingerprints keep incidents from doubling. */
    if (start_kubernetes(d, &err) != TR_OK || start_analysis(d, &err) != TR_OK) {
        tr_log_error("daemon", "cannot start as leader: %s", err.message);
        stop_processing(d);
    }
}

static int start_election(daemon_state *d, tr_error *err)
{
    const tr_config_kubernetes *k = &d->cfg->kubernetes;
    tr_kube_client_options client_options;
    tr_kube_lease_options options;
    int rc;

    d->leader_gauge = tr_metrics_gauge(d->metrics, "triaged_leader",
                                       "1 while this replica holds the leader Lease.", NULL);
    (void)tr_metric_set(d->leader_gauge, 0);
    memset(&client_options, 0, sizeof(client_options));
    client_options.kubeconfig = k->kubeconfig;
    client_options.context = k->context;
    rc = tr_kube_client_new(&d->lease_client, &d->loop, d->http, d->health, &client_options,
                            err);
    if (rc != TR_OK)
        return rc;
    memset(&options, 0, sizeof(options));
    options.namespace = k->lease_namespace;
    options.name = k->lease_name;
    options.cluster_name = k->cluster_name;
    options.lease_duration_ms = k->lease_duration_ms;
    options.renew_deadline_ms = k->renew_deadline_ms;
    options.retry_period_ms = k->retry_period_ms;
    options.on_change = on_leader_change;
    options.on_holder = on_lease_holder;
    options.userdata = d;
    rc = tr_kube_lease_new(&d->lease, &d->loop, d->lease_client, d->http, &options, err);
    if (rc != TR_OK)
        return rc;
    (void)tr_health_set(d->health, "leader-election", TR_HEALTH_OK, "electing");
    (void)tr_health_set(d->health, "analysis", TR_HEALTH_DISABLED,
                        "standby until this replica holds the leader Lease");
    rc = tr_kube_client_start(d->lease_client);
    if (rc == TR_OK)
        rc = tr_kube_lease_start(d->lease);
    if (rc != TR_OK)
        return tr_error_set(err, rc, "leader election: cannot start");
    return TR_OK;
}

static int start_chat(daemon_state *d, tr_error *err)
{
    tr_chat_options options;

    memset(&options, 0, sizeof(options));
    options.dispatch = d->dispatch;
    return tr_chat_new(&d->chat, &d->loop, d->store, d->http, d->cfg, d->metrics, &options, err);
}

static int read_api_token(daemon_state *d, tr_error *err)
{
    const char *file = d->cfg->daemon.api_token_file;

    if (file == NULL || *file == '\0')
        return TR_OK;
    if (tr_config_secret_resolve(NULL, file, &d->api_token, err) != TR_OK) {
        tr_error_prefix(err, "daemon.api_token_file: ");
        return TR_ECONFIG;
    }
    if (strlen(d->api_token) < 16)
        tr_log_warn("daemon", "the API token in %s is short (%zu characters): use 32 or more "
                    "random characters", file, strlen(d->api_token));
    return TR_OK;
}

static int start(daemon_state *d, tr_error *err)
{
    int rc;

    if ((rc = read_api_token(d, err)) != TR_OK)
        return rc;
    if ((rc = setup_metrics(d, err)) != TR_OK)
        return rc;
    if (tr_health_new(&d->health) != TR_OK)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    if ((rc = start_store(d, err)) != TR_OK)
        return rc;
    if ((rc = tr_http_client_new(&d->http, &d->loop, err)) != TR_OK)
        return rc;
    /* Sinks are registered with the outbox before anything can be enqueued. */
    if ((rc = tr_dispatch_new(&d->dispatch, &d->loop, d->store, d->http, d->cfg, d->metrics,
                              err)) != TR_OK)
        return rc;
    if ((rc = tr_actions_slack_secret(d->cfg, &d->slack_secret, err)) != TR_OK)
        return rc;
    if ((rc = start_gitops(d, err)) != TR_OK)
        return rc;
    if (d->cfg->kubernetes.enabled && d->cfg->kubernetes.leader_election) {
        /* Watcher and analysis start when this replica wins the Lease. */
        if ((rc = start_election(d, err)) != TR_OK)
            return rc;
    } else {
        /* Kubernetes first: the analysis stage gathers evidence through its connection. */
        if ((rc = start_kubernetes(d, err)) != TR_OK)
            return rc;
        if ((rc = start_analysis(d, err)) != TR_OK)
            return rc;
    }
    if ((rc = start_chat(d, err)) != TR_OK)
        return rc;
    if ((rc = prepare_terraform(d, err)) != TR_OK)
        return rc;
    if ((rc = start_fixer(d, err)) != TR_OK)
        return rc;
    if ((rc = start_server(d, err)) != TR_OK)
        return rc;
    if ((rc = start_terraform_dirs(d, err)) != TR_OK)
        return rc;
    return TR_OK;
}

static void log_banner(const daemon_state *d)
{
    static const char *const providers[] = { "openai-compatible", "azure", "none (rule-based)" };
    tr_buf sinks = TR_BUF_INIT(4096);
    size_t i;

    for (i = 0; i < d->cfg->notify_count; i++)
        (void)tr_buf_printf(&sinks, "%s%s", i ? ", " : "", d->cfg->notify[i].name);
    tr_log_info("daemon", "triaged %s listening on http://%s (port %d); state in %s; llm: %s; "
                "notify: %s", TR_VERSION, d->cfg->daemon.listen,
                tr_http_server_port(d->server), d->cfg->daemon.state_dir,
                providers[d->cfg->llm.provider], sinks.len ? tr_buf_cstr(&sinks) : "nothing");
    tr_buf_dispose(&sinks);
}

int tr_daemon_run(const tr_config *cfg, const char *config_path)
{
    daemon_state d;
    tr_error err = { 0 };
    int rc;

    memset(&d, 0, sizeof(d));
    d.cfg = cfg;
    tr_log_setup(cfg->daemon.log_level, cfg->daemon.log_format);
    signal(SIGPIPE, SIG_IGN);
    if (uv_loop_init(&d.loop) != 0) {
        tr_log_error("daemon", "cannot initialise the event loop");
        return TR_EXIT_FAILURE;
    }
    uv_signal_init(&d.loop, &d.sigterm);
    uv_signal_init(&d.loop, &d.sigint);
    uv_timer_init(&d.loop, &d.shutdown_timer);
    d.sigterm.data = d.sigint.data = d.shutdown_timer.data = &d;

    rc = start(&d, &err);
    if (rc != TR_OK) {
        tr_log_error("daemon", "%s: cannot start: %s", config_path, err.message);
        d.exit_status = rc == TR_ECONFIG ? TR_EXIT_USAGE : TR_EXIT_FAILURE;
        begin_stop(&d, "start failed");
    } else {
        uv_signal_start(&d.sigterm, on_signal, SIGTERM);
        uv_signal_start(&d.sigint, on_signal, SIGINT);
        log_banner(&d);
    }
    (void)uv_run(&d.loop, UV_RUN_DEFAULT);
    if (d.forced) {
        tr_store_close(d.store);
        tr_log_info("daemon", "stopped (forced)");
        return d.exit_status;
    }
    tr_http_server_free(d.server);
    tr_tf_http_free(d.tf_http);
    if (uv_loop_close(&d.loop) != 0)
        tr_log_warn("daemon", "event loop still had open handles at exit");
    tr_health_free(d.health);
    tr_metrics_free(d.metrics);
    tr_secret_free(d.api_token);
    tr_secret_free(d.tf_hmac_key);
    tr_secret_free(d.slack_secret);
    tr_secret_free(d.tfc_token);
    if (d.exit_status == TR_EXIT_OK)
        tr_log_info("daemon", "stopped");
    return d.exit_status;
}
