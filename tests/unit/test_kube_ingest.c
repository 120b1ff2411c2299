/*
 * test_kube_ingest.c - objects in, incidents out, against a real SQLite store
 * in a temporary directory: a storm is one incident, noise is none, a
 * recovered workload resolves (only once the recovery holds), a relapse
 * reopens, and a restarted daemon replaying the same objects writes no new
 * outbox message.
 */
#include "testutil.h"

#include <dirent.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "kube_ingest.h"
#include "store.h"

#define CORPUS "tests/fuzz/corpus/kube_classify/"
#define SEC ((int64_t)1000)
#define MINUTE (60 * SEC)

/* lastState.terminated.finishedAt of the fixture pod, so its OOM kill is recent. */
static int64_t t0;

typedef struct fixture {
    char dir[64];
    char path[128];
    tr_store *store;
    tr_kube_ingest *ingest;
    int created, reopened, resolved;
} fixture;

static fixture fx;

static void on_incident(int64_t incident_id, int outcome, void *userdata)
{
    fixture *f = userdata;

    assert_true(incident_id > 0);
    if (outcome == TR_OBS_CREATED)
        f->created++;
    else if (outcome == TR_OBS_REOPENED)
        f->reopened++;
    else if (outcome == TR_KUBE_INCIDENT_RESOLVED)
        f->resolved++;
    else
        fail_msg("unexpected outcome %d", outcome);
}

static void ingest_open(void)
{
    tr_kube_ingest_options options;
    tr_error err = { 0 };

    tr_kube_ingest_options_default(&options);
    options.cluster = "test";
    options.recovery_hold_ms = 5 * MINUTE;
    options.on_incident = on_incident;
    options.userdata = &fx;
    if (tr_kube_ingest_new(&fx.ingest, fx.store, &options, t0, &err) != 0)
        fail_msg("tr_kube_ingest_new: %s", err.message);
}

static int setup(void **state)
{
    tr_error err = { 0 };

    (void)state;
    memset(&fx, 0, sizeof(fx));
    t0 = 1795560009000; /* 2026-11-24T22:40:09Z */
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_kube_ingest.XXXXXX");
    if (mkdtemp(fx.dir) == NULL)
        return -1;
    snprintf(fx.path, sizeof(fx.path), "%s/triaged.db", fx.dir);
    if (tr_store_open(&fx.store, fx.path, &err) != 0)
        return -1;
    if (tr_store_outbox_register_sink(fx.store, "test", 0, &err) != 0)
        return -1;
    ingest_open();
    return 0;
}

static int teardown(void **state)
{
    char file[512];
    struct dirent *entry;
    DIR *dir;

    (void)state;
    tr_kube_ingest_free(fx.ingest);
    tr_store_close(fx.store);
    dir = opendir(fx.dir);
    if (dir == NULL)
        return -1;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        snprintf(file, sizeof(file), "%s/%s", fx.dir, entry->d_name);
        unlink(file);
    }
    closedir(dir);
    return rmdir(fx.dir);
}

static cJSON *load(const char *path)
{
    FILE *f = fopen(path, "rb");
    char buf[65536];
    size_t n;
    cJSON *json;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    json = cJSON_Parse(buf);
    if (json == NULL)
        fail_msg("%s is not JSON", path);
    return json;
}

/* A replica of checkout crash-looping after an OOM kill (the shared fixture, renamed). */
static cJSON *crashing_pod(int replica, int restarts)
{
    char path[512], name[64];
    const char *dir = getenv("SHARED");
    cJSON *pod, *status;

    snprintf(path, sizeof(path), "%s/fixtures/k8s/pod-crashloop-oomkilled.json",
             dir != NULL ? dir : "../shared");
    pod = load(path);
    snprintf(name, sizeof(name), "checkout-5f794b8478-r%04d", replica);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItemCaseSensitive(pod, "metadata"), "name",
                              cJSON_CreateString(name));
    status = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "status"),
                                         "containerStatuses"),
        0);
    cJSON_ReplaceItemInObject(status, "restartCount", cJSON_CreateNumber(restarts));
    return pod;
}

/* The same replica running and Ready again (its last termination is still the OOM kill). */
static cJSON *ready_pod(int replica, int restarts)
{
    cJSON *pod = crashing_pod(replica, restarts);
    cJSON *status = cJSON_GetObjectItemCaseSensitive(pod, "status");
    cJSON *container = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(status, "containerStatuses"), 0);
    cJSON *running = cJSON_CreateObject();

    cJSON_AddItemToObject(running, "running",
                          cJSON_Parse("{\"startedAt\":\"2026-11-24T22:41:00Z\"}"));
    cJSON_ReplaceItemInObject(container, "state", running);
    cJSON_ReplaceItemInObject(container, "ready", cJSON_CreateTrue());
    cJSON_ReplaceItemInObject(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(status, "conditions"), 0), "status",
        cJSON_CreateString("True"));
    return pod;
}

static void ingest(const char *resource, const char *type, cJSON *obj, int64_t now_ms)
{
    tr_error err = { 0 };

    if (tr_kube_ingest_object(fx.ingest, resource, type, obj, now_ms, &err) != 0)
        fail_msg("tr_kube_ingest_object: %s", err.message);
    cJSON_Delete(obj);
}

static void tick(int64_t now_ms)
{
    tr_error err = { 0 };

    if (tr_kube_ingest_tick(fx.ingest, now_ms, &err) != 0)
        fail_msg("tr_kube_ingest_tick: %s", err.message);
}

/* Outbox messages with this event the sink has not consumed. */
static size_t outbox_count(const char *event)
{
    tr_store_delivery_list *list = NULL;
    tr_error err = { 0 };
    size_t count = 0;

    assert_int_equal(tr_store_outbox_due(fx.store, "test", INT64_MAX / 2, 0, 1000, &list, &err),
                     0);
    for (size_t i = 0; i < list->count; i++)
        count += strcmp(list->items[i].event, event) == 0;
    tr_store_delivery_list_free(list);
    return count;
}

static size_t incident_count(void)
{
    tr_store_incident_filter filter = { .source = "kubernetes" };
    tr_store_incident_list *list = NULL;
    tr_error err = { 0 };
    size_t count;

    assert_int_equal(tr_store_incident_list_get(fx.store, &filter, &list, &err), 0);
    count = list->count;
    tr_store_incident_list_free(list);
    return count;
}

static tr_store_incident *incident(const char *fingerprint)
{
    tr_store_incident *inc = NULL;
    tr_error err = { 0 };

    if (tr_store_incident_find(fx.store, fingerprint, &inc, &err) != 0)
        fail_msg("no incident %s: %s", fingerprint, err.message);
    return inc;
}

static int64_t facts_int(const tr_store_incident *inc, const char *key)
{
    cJSON *facts = cJSON_Parse(inc->facts_json);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(facts, key);
    int64_t value = cJSON_IsNumber(item) ? (int64_t)item->valuedouble : -1;

    cJSON_Delete(facts);
    return value;
}

static int facts_pods(const tr_store_incident *inc)
{
    cJSON *facts = cJSON_Parse(inc->facts_json);
    int count = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(facts, "pods"));

    cJSON_Delete(facts);
    return count;
}

#define FP_OOM "k8s/test/shop/Deployment/checkout/OOMKilled"

static void storm(int replicas, int64_t start_ms)
{
    for (int i = 0; i < replicas; i++)
        ingest("pods", "ADDED", crashing_pod(i, 5), start_ms + i * SEC);
}

static void test_storm_of_30_replicas_is_one_incident_whose_pods_grow(void **state)
{
    tr_store_incident *inc;

    (void)state;
    storm(30, t0);
    /* Repeats beyond the 20 listed pods are coalesced, then flushed by the tick. */
    tick(t0 + 2 * MINUTE);
    assert_int_equal(incident_count(), 1);
    inc = incident(FP_OOM);
    assert_string_equal(inc->failure_class, "OOMKilled");
    assert_string_equal(inc->kind, "Deployment");
    assert_string_equal(inc->name, "checkout");
    assert_int_equal(facts_int(inc, "pod_count"), 30);
    assert_int_equal(facts_pods(inc), 20);
    assert_int_equal(facts_int(inc, "exit_code"), 137);
    assert_true(inc->observation_count >= 2); /* opened, then the coalesced flush */
    assert_int_equal(outbox_count("incident.opened"), 1);
    assert_int_equal(fx.created, 1);
    tr_store_incident_free(inc);
    /* The same pods re-sent unchanged (status resync) write nothing. */
    storm(30, t0 + 3 * MINUTE);
    inc = incident(FP_OOM);
    assert_true(inc->last_seen_ms <= t0 + 2 * MINUTE);
    tr_store_incident_free(inc);
}

static void test_noise_opens_nothing(void **state)
{
    (void)state;
    ingest("events", "ADDED", load(CORPUS "event-normal-pulled.json"), t0);
    ingest("events", "ADDED", load(CORPUS "event-unhealthy-once.json"), t0);
    ingest("pods", "ADDED", load(CORPUS "pod-running-ready.json"), t0);
    ingest("pods", "MODIFIED", load(CORPUS "pod-restarted-once.json"), t0);
    ingest("replicasets", "ADDED", load(CORPUS "replicaset-code-i.json"), t0);
    ingest("widgets", "ADDED", load(CORPUS "pvc-bound.json"), t0); /* unknown resource */
    tick(t0 + MINUTE);
    assert_int_equal(incident_count(), 0);
    assert_int_equal(outbox_count("incident.opened"), 0);
    assert_int_equal(fx.created, 0);
}

static void test_recovered_workload_resolves_once_recovery_holds(void **state)
{
    tr_store_incident *inc;

    (void)state;
    storm(2, t0);
    assert_int_equal(fx.created, 1);
    ingest("pods", "MODIFIED", ready_pod(0, 6), t0 + 30 * SEC);
    ingest("pods", "MODIFIED", ready_pod(1, 6), t0 + 40 * SEC);
    /* Healthy for a moment, then one replica crashes again: the hold restarts. */
    ingest("pods", "MODIFIED", crashing_pod(1, 7), t0 + 2 * MINUTE);
    tick(t0 + 6 * MINUTE);
    inc = incident(FP_OOM);
    assert_int_equal(inc->state, TR_INCIDENT_OPEN);
    tr_store_incident_free(inc);
    ingest("pods", "MODIFIED", ready_pod(1, 7), t0 + 3 * MINUTE);
    tick(t0 + 7 * MINUTE);
    inc = incident(FP_OOM);
    assert_int_equal(inc->state, TR_INCIDENT_OPEN); /* healthy since +3 min: not 5 yet */
    tr_store_incident_free(inc);
    tick(t0 + 8 * MINUTE);
    inc = incident(FP_OOM);
    assert_int_equal(inc->state, TR_INCIDENT_RESOLVED);
    assert_int_equal(outbox_count("incident.resolved"), 1);
    assert_int_equal(fx.resolved, 1);
    tr_store_incident_free(inc);
}

static void test_relapse_after_resolution_reopens_but_old_signals_do_not(void **state)
{
    tr_store_incident *inc;
    int64_t id;

    (void)state;
    storm(1, t0);
    ingest("pods", "MODIFIED", ready_pod(0, 6), t0 + 30 * SEC);
    tick(t0 + 6 * MINUTE);
    inc = incident(FP_OOM);
    assert_int_equal(inc->state, TR_INCIDENT_RESOLVED);
    id = inc->id;
    tr_store_incident_free(inc);
    /* A kubelet BackOff event dated before the resolution (relisted later): history. */
    {
        cJSON *event = load("../shared/fixtures/k8s/events-watch.jsonl");
        cJSON *object = cJSON_DetachItemFromObject(event, "object");

        cJSON_Delete(event);
        cJSON_ReplaceItemInObject(cJSON_GetObjectItemCaseSensitive(object, "involvedObject"),
                                  "name", cJSON_CreateString("checkout-5f794b8478-r0000"));
        ingest("events", "ADDED", object, t0 + 40 * MINUTE);
    }
    assert_int_equal(outbox_count("incident.reopened"), 0);
    /* Two hours later the replica is OOM-killed and backing off again. */
    ingest("pods", "MODIFIED", crashing_pod(0, 9), t0 + 120 * MINUTE);
    inc = incident(FP_OOM);
    assert_int_equal(inc->id, id);
    assert_int_equal(inc->state, TR_INCIDENT_OPEN);
    assert_int_equal(inc->reopen_count, 1);
    assert_int_equal(outbox_count("incident.reopened"), 1);
    assert_int_equal(fx.reopened, 1);
    assert_int_equal(incident_count(), 1);
    tr_store_incident_free(inc);
}

static void test_restarted_daemon_replaying_objects_writes_no_new_message(void **state)
{
    tr_store_delivery_list *before = NULL, *after = NULL;
    tr_store_incident *inc;
    tr_error err = { 0 };

    (void)state;
    storm(30, t0);
    tick(t0 + 2 * MINUTE);
    assert_int_equal(tr_store_outbox_due(fx.store, "test", INT64_MAX / 2, 0, 1000, &before, &err),
                     0);
    /* Restart: a fresh ingest on the same database relists the same pods. */
    tr_kube_ingest_free(fx.ingest);
    fx.ingest = NULL;
    ingest_open();
    tr_kube_ingest_sync_begin(fx.ingest, "pods");
    storm(30, t0 + 10 * MINUTE);
    assert_int_equal(tr_kube_ingest_sync_end(fx.ingest, "pods", t0 + 11 * MINUTE, &err), 0);
    tick(t0 + 12 * MINUTE);
    assert_int_equal(tr_store_outbox_due(fx.store, "test", INT64_MAX / 2, 0, 1000, &after, &err),
                     0);
    assert_int_equal(after->count, before->count);
    assert_int_equal(incident_count(), 1);
    inc = incident(FP_OOM);
    assert_int_equal(facts_int(inc, "pod_count"), 30); /* not 60: the pods were seeded */
    assert_int_equal(inc->state, TR_INCIDENT_OPEN);
    tr_store_incident_free(inc);
    tr_store_delivery_list_free(before);
    tr_store_delivery_list_free(after);
}

static void test_restarted_daemon_resolves_incident_whose_pods_are_gone(void **state)
{
    tr_store_incident *inc;
    tr_error err = { 0 };

    (void)state;
    storm(3, t0);
    tr_kube_ingest_free(fx.ingest);
    fx.ingest = NULL;
    /* While the daemon was down the Deployment was deleted: the relist has no pods. */
    ingest_open();
    tr_kube_ingest_sync_begin(fx.ingest, "pods");
    assert_int_equal(tr_kube_ingest_sync_end(fx.ingest, "pods", t0 + 10 * MINUTE, &err), 0);
    tick(t0 + 16 * MINUTE);
    inc = incident(FP_OOM);
    assert_int_equal(inc->state, TR_INCIDENT_RESOLVED);
    assert_int_equal(outbox_count("incident.resolved"), 1);
    tr_store_incident_free(inc);
}

static void test_node_not_ready_resolves_when_ready_holds(void **state)
{
    tr_store_incident *inc;

    (void)state;
    ingest("nodes", "MODIFIED", load(CORPUS "node-notready.json"), t0);
    ingest("nodes", "MODIFIED", load(CORPUS "node-ready.json"), t0 + MINUTE);
    ingest("nodes", "MODIFIED", load(CORPUS "node-notready.json"), t0 + 2 * MINUTE);
    ingest("nodes", "MODIFIED", load(CORPUS "node-ready.json"), t0 + 3 * MINUTE);
    tick(t0 + 7 * MINUTE);
    inc = incident("k8s/test//Node/worker-2/NodeNotReady");
    assert_int_equal(inc->state, TR_INCIDENT_OPEN); /* flapped at +2 min */
    tr_store_incident_free(inc);
    tick(t0 + 8 * MINUTE);
    inc = incident("k8s/test//Node/worker-2/NodeNotReady");
    assert_int_equal(inc->state, TR_INCIDENT_RESOLVED);
    assert_int_equal(outbox_count("incident.opened"), 1);
    tr_store_incident_free(inc);
}

static void test_metrics_count_findings_observations_and_resolutions(void **state)
{
    tr_metrics *metrics = NULL;
    tr_kube_ingest_options options;
    tr_error err = { 0 };
    tr_buf out = TR_BUF_INIT(0);

    (void)state;
    assert_int_equal(tr_metrics_new(&metrics, 0), 0);
    tr_kube_ingest_free(fx.ingest);
    tr_kube_ingest_options_default(&options);
    options.cluster = "test";
    options.recovery_hold_ms = 0;
    options.metrics = metrics;
    assert_int_equal(tr_kube_ingest_new(&fx.ingest, fx.store, &options, t0, &err), 0);
    ingest("jobs", "MODIFIED", load(CORPUS "job-backofflimit.json"), t0);
    ingest("jobs", "ADDED", load(CORPUS "job-complete.json"), t0 + MINUTE);
    assert_int_equal(tr_metrics_render(metrics, &out), 0);
    assert_non_null(
        strstr(out.ptr, "triaged_kube_findings_total{class=\"BackoffLimitExceeded\"} 1"));
    assert_non_null(strstr(out.ptr, "triaged_kube_observations_total{outcome=\"created\"} 1"));
    assert_non_null(
        strstr(out.ptr, "triaged_kube_resolutions_total{class=\"BackoffLimitExceeded\"} 1"));
    tr_buf_dispose(&out);
    tr_kube_ingest_free(fx.ingest);
    fx.ingest = NULL;
    tr_metrics_free(metrics);
}

/*
 * A caller that leaves options.classify zeroed gets the classify defaults, even
 * when the padding inside that struct holds garbage (a struct copied or built
 * member by member does not zero its padding).
 */
static void test_zeroed_classify_options_mean_defaults_whatever_the_padding(void **state)
{
    tr_kube_ingest_options options;
    tr_error err = { 0 };

    (void)state;
    tr_kube_ingest_free(fx.ingest);
    tr_kube_ingest_options_default(&options);
    memset(&options.classify, 0xa5, sizeof(options.classify));
    options.classify.unhealthy_min_count = 0;
    options.classify.restart_min_count = 0;
    options.classify.oom_min_restarts = 0;
    options.classify.image_pull_min_failures = 0;
    options.classify.mount_min_count = 0;
    options.classify.scheduling_min_count = 0;
    options.classify.provisioning_min_count = 0;
    options.classify.restart_recent_ms = 0;
    options.classify.message_max_bytes = 0;
    options.cluster = "test";
    options.on_incident = on_incident;
    options.userdata = &fx;
    assert_int_equal(tr_kube_ingest_new(&fx.ingest, fx.store, &options, t0, &err), 0);
    /* One failed probe is below the default unhealthy_min_count (3): no incident. */
    ingest("events", "ADDED", load(CORPUS "event-unhealthy-once.json"), t0);
    ingest("pods", "MODIFIED", load(CORPUS "pod-restarted-once.json"), t0);
    tick(t0 + MINUTE);
    assert_int_equal(incident_count(), 0);
    assert_int_equal(fx.created, 0);
}

/*
 * The Job controller's Event may arrive before the Job's status (two watches):
 * the incident it opens must still get the facts only the status has, at once,
 * and a repeat that says nothing new is still coalesced.
 */
static void test_richer_signal_adds_its_facts_to_the_live_incident(void **state)
{
    const char *fp = "k8s/test/batch/CronJob/nightly-report/BackoffLimitExceeded";
    cJSON *running = load(CORPUS "job-backofflimit.json");
    tr_store_incident *inc;
    int64_t observations;

    (void)state;
    cJSON_DeleteItemFromObject(cJSON_GetObjectItemCaseSensitive(running, "status"),
                               "conditions");
    ingest("jobs", "ADDED", running, t0);
    ingest("events", "ADDED", load(CORPUS "event-job-backofflimit.json"), t0 + SEC);
    inc = incident(fp);
    assert_int_equal(facts_int(inc, "failed"), -1);
    tr_store_incident_free(inc);
    ingest("jobs", "MODIFIED", load(CORPUS "job-backofflimit.json"), t0 + 2 * SEC);
    inc = incident(fp);
    assert_int_equal(facts_int(inc, "failed"), 7);
    assert_int_equal(facts_int(inc, "backoff_limit"), 6);
    assert_non_null(strstr(inc->facts_json,
                           "\"message\":\"Job has reached the specified backoff limit\""));
    observations = inc->observation_count;
    tr_store_incident_free(inc);
    ingest("events", "MODIFIED", load(CORPUS "event-job-backofflimit.json"), t0 + 3 * SEC);
    inc = incident(fp);
    assert_int_equal(inc->observation_count, observations);
    assert_int_equal(facts_int(inc, "failed"), 7);
    tr_store_incident_free(inc);
    assert_int_equal(incident_count(), 1);
    assert_int_equal(outbox_count("incident.opened"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_storm_of_30_replicas_is_one_incident_whose_pods_grow),
        T(test_noise_opens_nothing),
        T(test_recovered_workload_resolves_once_recovery_holds),
        T(test_relapse_after_resolution_reopens_but_old_signals_do_not),
        T(test_restarted_daemon_replaying_objects_writes_no_new_message),
        T(test_restarted_daemon_resolves_incident_whose_pods_are_gone),
        T(test_node_not_ready_resolves_when_ready_holds),
        T(test_metrics_count_findings_observations_and_resolutions),
        T(test_zeroed_classify_options_mean_defaults_whatever_the_padding),
        T(test_richer_signal_adds_its_facts_to_the_live_incident),
#undef T
    };

    TR_RUN_TESTS("kube_ingest", tests);
}
