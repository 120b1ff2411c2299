/*
 * test_kube_classify.c - every failure class from objects in the shape the
 * apiserver returns: the shared real fixtures (../shared/fixtures/k8s) and
 * objects written for this test (tests/fuzz/corpus/kube_classify, which is
 * also the fuzz target's seed corpus). Asserts class, owner, fingerprint and
 * facts; noise gives no finding.
 */
#include "testutil.h"

#include <cjson/cJSON.h>

#include "kube_cache.h"
#include "kube_classify.h"

#define CORPUS "tests/fuzz/corpus/kube_classify/"
#define T_2026 ((int64_t)1795560000000) /* 2026-11-24T22:40:00Z */

static tr_kube_cache *cache;
static tr_kube_result result;

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *data;
    long size;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = tr_malloc((size_t)size + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
    data[size] = '\0';
    fclose(f);
    return data;
}

static cJSON *load(const char *path)
{
    char *text = read_file(path);
    cJSON *json = cJSON_Parse(text);

    tr_free(text);
    if (json == NULL)
        fail_msg("%s is not JSON", path);
    return json;
}

static cJSON *shared(const char *name)
{
    char path[512];
    const char *dir = getenv("SHARED");

    snprintf(path, sizeof(path), "%s/fixtures/k8s/%s", dir != NULL ? dir : "../shared", name);
    return load(path);
}

static cJSON *corpus(const char *name)
{
    char path[512];

    snprintf(path, sizeof(path), CORPUS "%s", name);
    return load(path);
}

static int setup(void **state)
{
    (void)state;
    memset(&result, 0, sizeof(result));
    return tr_kube_cache_new(&cache, NULL, NULL);
}

static int teardown(void **state)
{
    (void)state;
    tr_kube_result_dispose(&result);
    tr_kube_cache_free(cache);
    cache = NULL;
    return 0;
}

/* Apply to the cache (as the ingest does) and classify; obj is freed. */
static void classify(int resource, cJSON *obj, int64_t now_ms)
{
    tr_kube_result_dispose(&result);
    assert_int_equal(tr_kube_cache_apply(cache, resource, 0, obj, now_ms), 0);
    assert_int_equal(tr_kube_classify(NULL, cache, "test", resource, obj, now_ms, &result), 0);
    cJSON_Delete(obj);
}

static const tr_kube_finding *only_finding(int failure_class)
{
    if (result.finding_count != 1)
        fail_msg("expected 1 finding, got %zu", result.finding_count);
    assert_string_equal(tr_kube_class_name(result.findings[0].failure_class),
                        tr_kube_class_name(failure_class));
    return &result.findings[0];
}

static const char *fact_str(const tr_kube_finding *f, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(f->facts, key);

    if (!cJSON_IsString(item))
        fail_msg("facts.%s is not a string", key);
    return item->valuestring;
}

static int64_t fact_int(const tr_kube_finding *f, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(f->facts, key);

    if (!cJSON_IsNumber(item))
        fail_msg("facts.%s is not a number", key);
    return (int64_t)item->valuedouble;
}

static void assert_health(int healthy, const char *kind, const char *name)
{
    for (size_t i = 0; i < result.health_count; i++) {
        if (strcmp(result.health[i].owner_kind, kind) == 0 &&
            strcmp(result.health[i].owner_name, name) == 0) {
            assert_int_equal(result.health[i].healthy, healthy);
            return;
        }
    }
    fail_msg("no health signal for %s/%s", kind, name);
}

/* ------------------------------------------------------------ pods */

/* Fuzzing found it: a pod name longer than any owner name overflowed the guess. */
static void test_uncached_pod_with_a_very_long_name_is_its_own_owner(void **state)
{
    tr_kube_cache *small = NULL;
    tr_kube_owner owner;
    char name[400];

    (void)state;
    memset(name, 'a', 300);
    memcpy(name + 300, "-7c9f8b6d5d-x2k4p", 18);
    assert_int_equal(tr_kube_cache_new(&small, NULL, NULL), 0);
    tr_kube_cache_pod_owner(small, "shop", name, &owner);
    /* No Deployment is guessed from a name that cannot be one (ASan checks the rest). */
    assert_int_equal(owner.inferred, 0);
    assert_string_not_equal(owner.kind, "Deployment");
    /* A normal name is still guessed to be a Deployment's pod. */
    tr_kube_cache_pod_owner(small, "shop", "checkout-7c9f8b6d5d-x2k4p", &owner);
    assert_string_equal(owner.name, "checkout");
    assert_int_equal(owner.inferred, 1);
    tr_kube_cache_free(small);
}

static void test_crashloop_after_oom_kill_is_oomkilled_of_the_deployment(void **state)
{
    const tr_kube_finding *f;

    (void)state;
    classify(TR_KUBE_RES_PODS, shared("pod-crashloop-oomkilled.json"), T_2026);
    f = only_finding(TR_KCLASS_OOMKILLED);
    assert_string_equal(f->fingerprint, "k8s/test/shop/Deployment/checkout/OOMKilled");
    assert_string_equal(f->owner_kind, "Deployment");
    assert_string_equal(f->object_name, "checkout-5f794b8478-kjmkd");
    assert_string_equal(fact_str(f, "container"), "app");
    assert_int_equal(fact_int(f, "restart_count"), 5);
    assert_int_equal(fact_int(f, "exit_code"), 137);
    assert_string_equal(fact_str(f, "memory_limit"), "64Mi");
    assert_string_equal(fact_str(f, "memory_request"), "64Mi");
    assert_string_equal(fact_str(f, "image"), "ghcr.io/acme/checkout:1.4.2");
    assert_string_equal(fact_str(f, "node"), "node-a");
    assert_health(0, "Deployment", "checkout");
}

static void test_multicontainer_crashloop_names_the_failing_container(void **state)
{
    const tr_kube_finding *f;

    (void)state;
    /* The pod-template-hash is old-style here: only the cached ReplicaSet knows the owner. */
    classify(TR_KUBE_RES_REPLICASETS, corpus("replicaset-code-i.json"), T_2026);
    classify(TR_KUBE_RES_PODS, shared("pod-crashloopbackoff-multicontainer.json"), T_2026);
    f = only_finding(TR_KCLASS_CRASHLOOP);
    assert_string_equal(f->fingerprint,
                        "k8s/test/ccccs/Deployment/code-i-multi-container/CrashLoopBackOff");
    assert_string_equal(fact_str(f, "container"), "multi-container2");
    assert_int_equal(fact_int(f, "exit_code"), 1);
    assert_string_equal(fact_str(f, "reason"), "Error");
    assert_int_equal(fact_int(f, "restart_count"), 1);
    assert_string_equal(
        fact_str(f, "image"),
        "registry.saas.test.com/code-x-code-x/code-i:2018.12.24-104231-multi-container");
}

static void test_running_pod_oom_killed_recently_is_oomkilled_of_the_daemonset(void **state)
{
    const tr_kube_finding *f;
    int64_t finished = tr_kube_time_ms("2023-05-06T21:03:57Z");

    (void)state;
    classify(TR_KUBE_RES_PODS, shared("pod-running-lastState-OOMKilled.json"), finished + 60000);
    f = only_finding(TR_KCLASS_OOMKILLED);
    assert_string_equal(f->fingerprint,
                        "k8s/test/kubeshark/DaemonSet/kubeshark-worker-daemon-set/OOMKilled");
    assert_string_equal(fact_str(f, "container"), "kubeshark-worker");
    assert_string_equal(fact_str(f, "memory_limit"), "1Gi");
    assert_string_equal(fact_str(f, "memory_request"), "50Mi");
    assert_int_equal(fact_int(f, "exit_code"), 137);
    assert_true(f->signal_ms == finished);
}

static void test_oom_kill_from_last_week_is_history_not_an_incident(void **state)
{
    int64_t finished = tr_kube_time_ms("2023-05-06T21:03:57Z");

    (void)state;
    classify(TR_KUBE_RES_PODS, shared("pod-running-lastState-OOMKilled.json"),
             finished + 7LL * 24 * 3600 * 1000);
    assert_int_equal(result.finding_count, 0);
    assert_health(1, "DaemonSet", "kubeshark-worker-daemon-set");
}

static void test_unschedulable_pod_keeps_scheduler_message_and_requests(void **state)
{
    const tr_kube_finding *f;
    const cJSON *requests;

    (void)state;
    classify(TR_KUBE_RES_PODS, shared("pod-unschedulable.json"), T_2026);
    f = only_finding(TR_KCLASS_SCHEDULING);
    assert_string_equal(f->fingerprint, "k8s/test/shop/Deployment/search/FailedScheduling");
    assert_non_null(strstr(fact_str(f, "scheduler_message"), "0/1 nodes are available"));
    requests = cJSON_GetObjectItemCaseSensitive(f->facts, "requests");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(requests, "cpu")->valuestring, "64");
}

static void test_missing_secret_is_create_container_config_error(void **state)
{
    const tr_kube_finding *f;

    (void)state;
    classify(TR_KUBE_RES_PODS, corpus("pod-createcontainerconfigerror.json"), T_2026);
    f = only_finding(TR_KCLASS_CONFIG);
    assert_string_equal(f->fingerprint,
                        "k8s/test/shop/Deployment/api/CreateContainerConfigError");
    assert_string_equal(fact_str(f, "container"), "api");
    assert_string_equal(fact_str(f, "missing_kind"), "Secret");
    assert_string_equal(fact_str(f, "missing_name"), "db-pass");
    assert_string_equal(fact_str(f, "message"), "secret \"db-pass\" not found");
}

static void test_missing_secret_key_event_names_kind_name_and_key(void **state)
{
    const tr_kube_finding *f;

    (void)state;
    classify(TR_KUBE_RES_EVENTS, corpus("event-config-missing-key.json"), T_2026);
    f = only_finding(TR_KCLASS_CONFIG);
    assert_string_equal(f->fingerprint,
                        "k8s/test/shop/Deployment/api/CreateContainerConfigError");
    assert_string_equal(fact_str(f, "missing_kind"), "Secret");
    assert_string_equal(fact_str(f, "missing_name"), "db");
    assert_string_equal(fact_str(f, "missing_key"), "password");
    assert_string_equal(fact_str(f, "container"), "api");
}

static void test_image_pull_backoff_from_status_and_from_event(void **state)
{
    const tr_kube_finding *f;

    (void)state;
    classify(TR_KUBE_RES_PODS, corpus("pod-imagepullbackoff.json"), T_2026);
    f = only_finding(TR_KCLASS_IMAGEPULL);
    assert_string_equal(f->fingerprint, "k8s/test/shop/Deployment/web/ImagePullBackOff");
    assert_string_equal(fact_str(f, "image"), "ghcr.io/acme/web:9.9.9-typo");
    assert_string_equal(fact_str(f, "reason"), "ImagePullBackOff");
    classify(TR_KUBE_RES_EVENTS, corpus("event-imagepull-failed.json"), T_2026);
    f = only_finding(TR_KCLASS_IMAGEPULL);
    assert_string_equal(f->fingerprint, "k8s/test/shop/Deployment/web/ImagePullBackOff");
    assert_string_equal(fact_str(f, "reason"), "ImagePullBackOff");
}

/* ------------------------------------------------------------ events */

static void test_backoff_event_of_uncached_pod_is_crashloop_of_inferred_deployment(void **state)
{
    const tr_kube_finding *f;

    (void)state;
    classify(TR_KUBE_RES_EVENTS, corpus("event-backoff-modified.json"), T_2026);
    f = only_finding(TR_KCLASS_CRASHLOOP);
    assert_string_equal(f->fingerprint,
                        "k8s/test/chq-demo-apps/Deployment/memory-hog/CrashLoopBackOff");
    assert_string_equal(fact_str(f, "container"), "memory-hog");
    assert_int_equal(fact_int(f, "count"), 4);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f->facts, "owner_inferred")));
    assert_string_equal(fact_str(f, "node"), "ip-10-181-10-113.us-east-2.compute.internal");
}

static void test_backoff_event_of_oom_killed_pod_joins_the_oomkilled_incident(void **state)
{
    char *line;
    cJSON *watch, *event;
    const tr_kube_finding *f;

    (void)state;
    classify(TR_KUBE_RES_PODS, shared("pod-crashloop-oomkilled.json"), T_2026);
    line = NULL;
    {
        char path[512];
        const char *dir = getenv("SHARED");

        snprintf(path, sizeof(path), "%s/fixtures/k8s/events-watch.jsonl",
                 dir != NULL ? dir : "../shared");
        line = read_file(path);
    }
    watch = cJSON_Parse(line);
    tr_free(line);
    assert_non_null(watch);
    event = cJSON_DetachItemFromObject(watch, "object");
    cJSON_Delete(watch);
    classify(TR_KUBE_RES_EVENTS, event, T_2026);
    f = only_finding(TR_KCLASS_OOMKILLED);
    assert_string_equal(f->fingerprint, "k8s/test/shop/Deployment/checkout/OOMKilled");
    assert_int_equal(fact_int(f, "restart_count"), 5);
    assert_int_equal(fact_int(f, "exit_code"), 137);
    assert_int_equal(fact_int(f, "count"), 7);
}

static void test_events_list_yields_only_the_warning_failed_scheduling(void **state)
{
    cJSON *list = shared("events-list.json");
    const cJSON *item;
    size_t findings = 0;

    (void)state;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(list, "items"))
    {
        tr_kube_result_dispose(&result);
        assert_int_equal(tr_kube_cache_apply(cache, TR_KUBE_RES_EVENTS, 0, item, T_2026), 0);
        assert_int_equal(
            tr_kube_classify(NULL, cache, "test", TR_KUBE_RES_EVENTS, item, T_2026, &result), 0);
        for (size_t i = 0; i < result.finding_count; i++) {
            assert_string_equal(result.findings[i].fingerprint,
                                "k8s/test/shop/Deployment/search/FailedScheduling");
            findings++;
        }
    }
    cJSON_Delete(list);
    assert_int_equal(findings, 2); /* two FailedScheduling warnings, nine Normal events */
}

static void test_events_v1_failed_scheduling_reads_note_and_series(void **state)
{
    const tr_kube_finding *f;

    (void)state;
    classify(TR_KUBE_RES_EVENTS, corpus("event-v1-failedscheduling.json"), T_2026);
    f = only_finding(TR_KCLASS_SCHEDULING);
    assert_string_equal(f->fingerprint, "k8s/test/shop/Deployment/search/FailedScheduling");
    assert_non_null(strstr(fact_str(f, "scheduler_message"), "Insufficient cpu"));
    assert_true(f->signal_ms == tr_kube_time_ms("2026-11-24T22:44:41.202Z"));
}

/* A pod unschedulable for seconds (an autoscaler adding a node) is not an incident. */
static void test_failed_scheduling_waits_for_the_grace_period(void **state)
{
    static const char event_fmt[] =
        "{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"type\":\"Warning\","
        "\"reason\":\"FailedScheduling\",\"message\":\"0/3 nodes are available: 3 "
        "Insufficient cpu.\",\"count\":%d,\"firstTimestamp\":\"2026-11-25T10:00:00Z\","
        "\"lastTimestamp\":\"%s\",\"metadata\":{\"name\":\"search-1.a\","
        "\"namespace\":\"shop\"},\"involvedObject\":{\"kind\":\"Pod\","
        "\"name\":\"search-6d5c9b8f7-x2x9z\",\"namespace\":\"shop\"}}";
    tr_kube_classify_options o;
    char text[1024];
    cJSON *event;

    (void)state;
    tr_kube_classify_options_default(&o);
    o.scheduling_grace_ms = 120000;
    snprintf(text, sizeof(text), event_fmt, 1, "2026-11-25T10:00:00Z");
    event = cJSON_Parse(text);
    tr_kube_result_dispose(&result);
    assert_int_equal(tr_kube_classify(&o, cache, "test", TR_KUBE_RES_EVENTS, event,
                                      tr_kube_time_ms("2026-11-25T10:00:20Z"), &result), 0);
    assert_int_equal(result.finding_count, 0);
    cJSON_Delete(event);
    /* The scheduler's retry three minutes on: still unschedulable, now an incident. */
    snprintf(text, sizeof(text), event_fmt, 4, "2026-11-25T10:03:00Z");
    event = cJSON_Parse(text);
    tr_kube_result_dispose(&result);
    assert_int_equal(tr_kube_classify(&o, cache, "test", TR_KUBE_RES_EVENTS, event,
                                      tr_kube_time_ms("2026-11-25T10:03:00Z"), &result), 0);
    assert_int_equal(result.finding_count, 1);
    assert_int_equal(result.findings[0].failure_class, TR_KCLASS_SCHEDULING);
    cJSON_Delete(event);
    /* The pod's own condition: unschedulable since 10:00, looked at 30 s later and later. */
    tr_kube_result_dispose(&result);
    event = shared("pod-unschedulable.json");
    {
        const char *since = tr_kube_obj_str(tr_kube_obj_condition(event, "PodScheduled"),
                                            "lastTransitionTime");
        int64_t t0 = tr_kube_time_ms(since);

        assert_true(t0 > 0);
        assert_int_equal(tr_kube_classify(&o, cache, "test", TR_KUBE_RES_PODS, event,
                                          t0 + 30000, &result), 0);
        assert_int_equal(result.finding_count, 0);
        tr_kube_result_dispose(&result);
        assert_int_equal(tr_kube_classify(&o, cache, "test", TR_KUBE_RES_PODS, event,
                                          t0 + 130000, &result), 0);
        assert_int_equal(result.finding_count, 1);
    }
    cJSON_Delete(event);
}

static void test_failed_mount_names_volume_and_missing_configmap(void **state)
{
    const tr_kube_finding *f;

    (void)state;
    classify(TR_KUBE_RES_EVENTS, corpus("event-failedmount.json"), T_2026);
    f = only_finding(TR_KCLASS_MOUNT);
    assert_string_equal(f->fingerprint, "k8s/test/shop/Deployment/web/FailedMount");
    assert_string_equal(fact_str(f, "volume"), "config");
    assert_string_equal(fact_str(f, "reason"), "FailedMount");
    assert_string_equal(fact_str(f, "missing_kind"), "ConfigMap");
    assert_string_equal(fact_str(f, "missing_name"), "app-config");
}

static void test_three_liveness_failures_are_unhealthy_with_probe_output(void **state)
{
    const tr_kube_finding *f;

    (void)state;
    classify(TR_KUBE_RES_EVENTS, corpus("event-unhealthy-x3.json"), T_2026);
    f = only_finding(TR_KCLASS_UNHEALTHY);
    assert_string_equal(f->fingerprint, "k8s/test/shop/Deployment/web/Unhealthy");
    assert_string_equal(fact_str(f, "probe"), "liveness");
    assert_string_equal(fact_str(f, "probe_output"), "HTTP probe failed with statuscode: 503");
    assert_int_equal(fact_int(f, "count"), 3);
    assert_string_equal(fact_str(f, "container"), "web");
}

static void test_pvc_provisioning_failed_names_storage_class(void **state)
{
    const tr_kube_finding *f;

    (void)state;
    classify(TR_KUBE_RES_EVENTS, corpus("event-pvc-provisioningfailed.json"), T_2026);
    f = only_finding(TR_KCLASS_PROVISIONING);
    assert_string_equal(f->fingerprint,
                        "k8s/test/shop/PersistentVolumeClaim/data-postgres-0/ProvisioningFailed");
    assert_string_equal(fact_str(f, "pvc"), "data-postgres-0");
    assert_string_equal(fact_str(f, "storage_class"), "fast-ssd");
    classify(TR_KUBE_RES_PVCS, corpus("pvc-bound.json"), T_2026);
    assert_int_equal(result.finding_count, 0);
    assert_health(1, "PersistentVolumeClaim", "data-postgres-0");
}

/* ------------------------------------------------------------ workloads */

static void test_deployment_progress_deadline_exceeded(void **state)
{
    const tr_kube_finding *f;

    (void)state;
    classify(TR_KUBE_RES_DEPLOYMENTS, shared("deployment-progress-deadline.json"), T_2026);
    f = only_finding(TR_KCLASS_PROGRESS_DEADLINE);
    assert_string_equal(f->fingerprint,
                        "k8s/test/shop/Deployment/checkout/ProgressDeadlineExceeded");
    assert_string_equal(fact_str(f, "message"),
                        "ReplicaSet \"checkout-5f794b8478\" has timed out progressing.");
    assert_int_equal(fact_int(f, "replicas"), 2);
    assert_int_equal(fact_int(f, "ready_replicas"), 0);
    assert_string_equal(fact_str(f, "revision"), "1");
    classify(TR_KUBE_RES_DEPLOYMENTS, corpus("deployment-rolled-out.json"), T_2026);
    assert_int_equal(result.finding_count, 0);
    assert_health(1, "Deployment", "checkout");
}

static void test_cronjob_job_backoff_limit_is_an_incident_of_the_cronjob(void **state)
{
    const tr_kube_finding *f;

    (void)state;
    classify(TR_KUBE_RES_JOBS, corpus("job-backofflimit.json"), T_2026);
    f = only_finding(TR_KCLASS_BACKOFF_LIMIT);
    assert_string_equal(f->fingerprint,
                        "k8s/test/batch/CronJob/nightly-report/BackoffLimitExceeded");
    assert_string_equal(f->object_name, "nightly-report-29410560");
    assert_int_equal(fact_int(f, "failed"), 7);
    assert_int_equal(fact_int(f, "backoff_limit"), 6);
    assert_string_equal(fact_str(f, "message"), "Job has reached the specified backoff limit");
    /* The job-controller's event lands in the same incident (Job cached → CronJob). */
    classify(TR_KUBE_RES_EVENTS, corpus("event-job-backofflimit.json"), T_2026);
    f = only_finding(TR_KCLASS_BACKOFF_LIMIT);
    assert_string_equal(f->fingerprint,
                        "k8s/test/batch/CronJob/nightly-report/BackoffLimitExceeded");
    classify(TR_KUBE_RES_JOBS, corpus("job-complete.json"), T_2026);
    assert_int_equal(result.finding_count, 0);
    assert_health(1, "CronJob", "nightly-report");
}

static void test_job_deadline_exceeded_keeps_active_deadline(void **state)
{
    const tr_kube_finding *f;

    (void)state;
    classify(TR_KUBE_RES_JOBS, corpus("job-deadline.json"), T_2026);
    f = only_finding(TR_KCLASS_JOB_DEADLINE);
    assert_string_equal(f->fingerprint, "k8s/test/shop/Job/migrate/DeadlineExceeded");
    assert_int_equal(fact_int(f, "active_deadline_seconds"), 120);
    assert_int_equal(fact_int(f, "backoff_limit"), 2);
}

static void test_node_not_ready_and_ready_again(void **state)
{
    const tr_kube_finding *f;

    (void)state;
    classify(TR_KUBE_RES_NODES, corpus("node-notready.json"), T_2026);
    f = only_finding(TR_KCLASS_NODE_NOT_READY);
    assert_string_equal(f->fingerprint, "k8s/test//Node/worker-2/NodeNotReady");
    assert_string_equal(fact_str(f, "node"), "worker-2");
    assert_string_equal(fact_str(f, "reason"), "NodeStatusUnknown");
    assert_string_equal(fact_str(f, "message"), "Kubelet stopped posting node status.");
    assert_string_equal(fact_str(f, "since"), "2026-11-24T22:31:00Z");
    assert_int_equal(tr_kube_cache_node_ready(cache, "worker-2"), 0);
    classify(TR_KUBE_RES_NODES, corpus("node-ready.json"), T_2026);
    assert_int_equal(result.finding_count, 0);
    assert_health(1, "Node", "worker-2");
}

static void test_argo_application_sync_failed_and_degraded(void **state)
{
    const tr_kube_finding *f;

    (void)state;
    classify(TR_KUBE_RES_ARGO_APPS, corpus("argo-app-degraded.json"), T_2026);
    assert_int_equal(result.finding_count, 2);
    f = &result.findings[0];
    assert_string_equal(f->fingerprint, "k8s/test/argocd/Application/shop/ArgoSyncFailed");
    assert_string_equal(fact_str(f, "repo_url"), "https://github.com/acme/deploy.git");
    assert_string_equal(fact_str(f, "path"), "apps/shop");
    assert_string_equal(fact_str(f, "revision"), "3f1c2e9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e");
    assert_string_equal(fact_str(f, "sync_status"), "OutOfSync");
    assert_non_null(strstr(fact_str(f, "message"), "one or more objects failed to apply"));
    f = &result.findings[1];
    assert_string_equal(f->fingerprint, "k8s/test/argocd/Application/shop/ArgoDegraded");
    assert_string_equal(fact_str(f, "health_status"), "Degraded");
    classify(TR_KUBE_RES_ARGO_APPS, corpus("argo-app-healthy.json"), T_2026);
    assert_int_equal(result.finding_count, 0);
    assert_health(1, "Application", "shop");
}

static void test_flux_kustomization_and_helmrelease_not_ready(void **state)
{
    const tr_kube_finding *f;

    (void)state;
    classify(TR_KUBE_RES_FLUX_KS, corpus("flux-kustomization-artifactfailed.json"), T_2026);
    f = only_finding(TR_KCLASS_FLUX_NOT_READY);
    assert_string_equal(f->fingerprint,
                        "k8s/test/flux-system/Kustomization/podinfo/FluxNotReady");
    assert_string_equal(fact_str(f, "reason"), "ArtifactFailed");
    assert_string_equal(fact_str(f, "source"), "GitRepository/flux-system/podinfo");
    assert_string_equal(fact_str(f, "revision"),
                        "master/67e2c98a60dc92283531412a9e604dd4bae005a9");
    assert_non_null(strstr(fact_str(f, "message"), "kustomization path not found"));
    classify(TR_KUBE_RES_FLUX_HR, corpus("flux-helmrelease-testfailed.json"), T_2026);
    f = only_finding(TR_KCLASS_FLUX_NOT_READY);
    assert_string_equal(f->fingerprint, "k8s/test/podinfo/HelmRelease/podinfo/FluxNotReady");
    assert_string_equal(fact_str(f, "reason"), "TestFailed");
    assert_string_equal(fact_str(f, "source"), "HelmRepository/podinfo/podinfo");
    assert_string_equal(fact_str(f, "stalled_reason"), "RetriesExceeded");
}

/* ------------------------------------------------------------ noise */

static void test_noise_gives_no_finding(void **state)
{
    static const struct {
        int resource;
        const char *file;
    } noise[] = {
        { TR_KUBE_RES_EVENTS, "event-normal-pulled.json" },
        { TR_KUBE_RES_EVENTS, "event-unhealthy-once.json" },   /* one probe blip */
        { TR_KUBE_RES_EVENTS, "event-errimagepull-once.json" }, /* one pull failure */
        { TR_KUBE_RES_PODS, "pod-running-ready.json" },
        { TR_KUBE_RES_PODS, "pod-restarted-once.json" },       /* a restart that did not repeat */
        { TR_KUBE_RES_REPLICASETS, "replicaset-code-i.json" },
        { TR_KUBE_RES_PVCS, "pvc-bound.json" },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(noise) / sizeof(noise[0]); i++) {
        classify(noise[i].resource, corpus(noise[i].file), T_2026 + 120000);
        if (result.finding_count != 0)
            fail_msg("%s gave %s", noise[i].file, result.findings[0].fingerprint);
    }
}

static void test_repeated_probe_failures_across_event_objects_add_up(void **state)
{
    cJSON *event = corpus("event-unhealthy-once.json");
    cJSON *second;

    (void)state;
    second = cJSON_Duplicate(event, 1);
    classify(TR_KUBE_RES_EVENTS, event, T_2026);
    assert_int_equal(result.finding_count, 0);
    /* A second Event object (new name, count 2) for the same pod and reason: 1 + 2 = 3. */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItemCaseSensitive(second, "metadata"), "name",
                              cJSON_CreateString("web-7c9d8f7b6d-abcde.second"));
    cJSON_ReplaceItemInObject(second, "count", cJSON_CreateNumber(2));
    classify(TR_KUBE_RES_EVENTS, second, T_2026 + 30000);
    assert_string_equal(tr_kube_class_name(only_finding(TR_KCLASS_UNHEALTHY)->failure_class),
                        "Unhealthy");
    assert_string_equal(fact_str(&result.findings[0], "probe"), "readiness");
}

static void test_cache_costs_a_few_hundred_bytes_per_pod(void **state)
{
    cJSON *pod = shared("pod-crashloop-oomkilled.json");
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    tr_kube_cache_stats before, after;
    char name[64];

    (void)state;
    tr_kube_cache_stats_get(cache, &before);
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "checkout-5f794b8478-%05d", i);
        cJSON_ReplaceItemInObject(meta, "name", cJSON_CreateString(name));
        assert_int_equal(tr_kube_cache_apply(cache, TR_KUBE_RES_PODS, 0, pod, T_2026), 0);
    }
    tr_kube_cache_stats_get(cache, &after);
    assert_int_equal(after.pods, 5000);
    assert_int_equal(after.owners, 1);
    print_message("cache: %zu bytes per pod\n", (after.bytes - before.bytes) / 5000);
    assert_true((after.bytes - before.bytes) / 5000 < 256);
    /* A resync that lists none of them drops them all. */
    tr_kube_cache_sync_begin(cache, TR_KUBE_RES_PODS);
    assert_int_equal(tr_kube_cache_sync_end(cache, TR_KUBE_RES_PODS), 5000);
    tr_kube_cache_stats_get(cache, &after);
    assert_int_equal(after.pods, 0);
    assert_int_equal(after.owners, 0);
    cJSON_Delete(pod);
}

static void test_full_pod_cache_drops_and_counts(void **state)
{
    tr_kube_cache_options options = { .max_pods = 2 };
    tr_kube_cache *small = NULL;
    cJSON *pod = shared("pod-crashloop-oomkilled.json");
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    tr_kube_cache_stats stats;
    char name[64];
    int rc = 0;

    (void)state;
    assert_int_equal(tr_kube_cache_new(&small, &options, NULL), 0);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "checkout-5f794b8478-%05d", i);
        cJSON_ReplaceItemInObject(meta, "name", cJSON_CreateString(name));
        rc = tr_kube_cache_apply(small, TR_KUBE_RES_PODS, 0, pod, T_2026);
    }
    assert_int_equal(rc, TR_ELIMIT);
    tr_kube_cache_stats_get(small, &stats);
    assert_int_equal(stats.pods, 2);
    assert_int_equal(stats.dropped, 1);
    tr_kube_cache_free(small);
    cJSON_Delete(pod);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_uncached_pod_with_a_very_long_name_is_its_own_owner),
        T(test_crashloop_after_oom_kill_is_oomkilled_of_the_deployment),
        T(test_multicontainer_crashloop_names_the_failing_container),
        T(test_running_pod_oom_killed_recently_is_oomkilled_of_the_daemonset),
        T(test_oom_kill_from_last_week_is_history_not_an_incident),
        T(test_unschedulable_pod_keeps_scheduler_message_and_requests),
        T(test_missing_secret_is_create_container_config_error),
        T(test_missing_secret_key_event_names_kind_name_and_key),
        T(test_image_pull_backoff_from_status_and_from_event),
        T(test_backoff_event_of_uncached_pod_is_crashloop_of_inferred_deployment),
        T(test_backoff_event_of_oom_killed_pod_joins_the_oomkilled_incident),
        T(test_events_list_yields_only_the_warning_failed_scheduling),
        T(test_events_v1_failed_scheduling_reads_note_and_series),
        T(test_failed_scheduling_waits_for_the_grace_period),
        T(test_failed_mount_names_volume_and_missing_configmap),
        T(test_three_liveness_failures_are_unhealthy_with_probe_output),
        T(test_pvc_provisioning_failed_names_storage_class),
        T(test_deployment_progress_deadline_exceeded),
        T(test_cronjob_job_backoff_limit_is_an_incident_of_the_cronjob),
        T(test_job_deadline_exceeded_keeps_active_deadline),
        T(test_node_not_ready_and_ready_again),
        T(test_argo_application_sync_failed_and_degraded),
        T(test_flux_kustomization_and_helmrelease_not_ready),
        T(test_noise_gives_no_finding),
        T(test_repeated_probe_failures_across_event_objects_add_up),
        T(test_cache_costs_a_few_hundred_bytes_per_pod),
        T(test_full_pod_cache_drops_and_counts),
#undef T
    };

    TR_RUN_TESTS("kube_classify", tests);
}
