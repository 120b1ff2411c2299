/*
 * bench_triage.c - what the analysis stage would send for realistic
 * incidents, at three token budgets. Each incident (Kubernetes facts per
 * docs/incident-facts.md; Terraform facts from the real parser over the
 * fixtures in $SHARED/fixtures/terraform) gets gathered sections shaped as
 * watchers/kube_evidence.c builds them (last_termination, previous_logs,
 * events, object, pods, node) plus a "source" section (a line-numbered
 * manifest excerpt and the last three commits with their diffs), and goes
 * through the real bundle builder, tr_evidence_bundle_ex. Printed per
 * budget: the bundle's tokens, tokens per section, sections cut or dropped,
 * whether the key evidence survived outside the incident header (substring
 * checks, printed yes/no) and secrets masked. Then the redactor's and the
 * log window's throughput on a 10 MB log. Prints figures; asserts nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "buf.h"
#include "evidence.h"
#include "kube_evidence.h"
#include "logwin.h"
#include "redact.h"
#include "tf_facts.h"
#include "tf_log.h"

#define PREVIOUS_LOG_BYTES ((size_t)100 * 1024)
#define BIG_LOG_BYTES ((size_t)10 * 1024 * 1024)
#define MAX_CHECKS 3
#define ROUNDS 3
#define NODE "ip-10-0-3-17.eu-west-1.compute.internal"

static const int64_t budgets[] = { 1500, 4000, 6000 };

typedef struct ev_spec {
    const char *type, *reason, *message;
} ev_spec;

typedef struct bench_incident {
    const char *label;
    tr_store_incident row;
    char *facts;    /* owned */
    char *gathered; /* owned: JSON object of sections */
    const char *check_name;
    char checks[MAX_CHECKS][256]; /* all must be in the bundle outside "incident" */
    char kind[64], name[256];     /* Terraform's object, copied out of the parse result */
    char *owned[3];               /* Terraform's title, message and fingerprint */
} bench_incident;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    tr_buf text = TR_BUF_INIT(0);
    char block[8192];
    size_t n;

    if (f == NULL)
        return NULL;
    while ((n = fread(block, 1, sizeof(block), f)) > 0)
        if (tr_buf_put(&text, block, n) != 0)
            break;
    fclose(f);
    if (tr_buf_put(&text, "", 0) != 0) {
        tr_buf_dispose(&text);
        return NULL;
    }
    return tr_buf_detach(&text);
}

/* ------------------------------------------------------------ logs */

/*
 * A Spring Boot service's previous log: startup, request traffic with a
 * few pool warnings, a JDBC URL with its password, and at the end the
 * crash: a BeanCreationException caused by an unknown database host.
 */
static int java_log(tr_buf *log, size_t target)
{
    unsigned seed = 7;
    int rc = tr_buf_puts(log, "2024-05-01T10:00:00.001Z  INFO 1 --- [main] c.shop.checkout."
                              "Application : Starting Application v2.3.1 using Java 17.0.9\n"
                              "2024-05-01T10:00:00.950Z  INFO 1 --- [main] com.zaxxer.hikari."
                              "HikariDataSource : HikariPool-1 - Starting... url=jdbc:postgresql:"
                              "//checkout:S3cr3t-Pg-pass@postgres.shop.svc.cluster.local:5432/shop"
                              "\n");

    for (size_t i = 0; rc == 0 && log->len < target; i++) {
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) % 97 == 0)
            rc = tr_buf_printf(log, "2024-05-01T10:%02zu:%02zu.%03uZ  WARN 1 --- [http-nio-8080-"
                                    "exec-%u] com.zaxxer.hikari.pool.HikariPool : HikariPool-1 - "
                                    "Connection is not available, request timed out after 30000ms"
                                    "\n", i / 600 % 60, i / 10 % 60, seed % 1000, seed % 16);
        else
            rc = tr_buf_printf(log, "2024-05-01T10:%02zu:%02zu.%03uZ  INFO 1 --- [http-nio-8080-"
                                    "exec-%u] c.s.checkout.web.CartController : GET /api/v1/cart/"
                                    "%u items=%u status=200 took=%ums trace=%08x%08x\n",
                               i / 600 % 60, i / 10 % 60, seed % 1000, seed % 16, seed % 100000,
                               seed % 9, seed % 250, seed, seed * 2654435761u);
    }
    if (rc == 0)
        rc = tr_buf_puts(
            log,
            "2024-05-01T10:59:58.214Z ERROR 1 --- [main] o.s.boot.SpringApplication : "
            "Application run failed\n"
            "org.springframework.beans.factory.BeanCreationException: Error creating bean with "
            "name 'dataSource' defined in class path resource [org/springframework/boot/"
            "autoconfigure/jdbc/DataSourceConfiguration$Hikari.class]: Failed to instantiate "
            "[com.zaxxer.hikari.HikariDataSource]\n"
            "\tat org.springframework.beans.factory.support.ConstructorResolver.instantiate"
            "(ConstructorResolver.java:659)\n"
            "\tat org.springframework.beans.factory.support.AbstractAutowireCapableBeanFactory."
            "createBean(AbstractAutowireCapableBeanFactory.java:522)\n"
            "\tat org.springframework.boot.SpringApplication.run(SpringApplication.java:316)\n"
            "\tat com.shop.checkout.Application.main(Application.java:12)\n"
            "Caused by: java.net.UnknownHostException: postgres.shop.svc.cluster.local\n"
            "\tat java.base/java.net.InetAddress$CachedAddresses.get(InetAddress.java:801)\n"
            "\tat java.base/java.net.InetAddress.getAllByName0(InetAddress.java:1533)\n"
            "\tat org.postgresql.core.PGStream.<init>(PGStream.java:95)\n"
            "\t... 42 common frames omitted\n");
    return rc;
}

/* ------------------------------------------------------------ gathered sections */

static cJSON *event(const char *type, const char *reason, const char *message, int count,
                    const char *object, const char *source)
{
    cJSON *e = cJSON_CreateObject();

    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddStringToObject(e, "reason", reason);
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddNumberToObject(e, "count", count);
    cJSON_AddStringToObject(e, "object", object);
    cJSON_AddStringToObject(e, "first", "2024-05-01T09:12:03Z");
    cJSON_AddStringToObject(e, "last", "2024-05-01T10:59:58Z");
    cJSON_AddStringToObject(e, "source", source);
    return e;
}

/* A Deployment trimmed as kube_evidence keeps it; env names only, one value from a Secret. */
static cJSON *deployment(const char *name, const char *image, const char *limit)
{
    char text[2048];

    snprintf(text, sizeof(text),
             "{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"shop\","
             "\"generation\":14,\"labels\":{\"app\":\"%s\",\"team\":\"payments\"}},"
             "\"spec\":{\"replicas\":3,\"strategy\":{\"type\":\"RollingUpdate\"},"
             "\"template\":{\"spec\":{\"serviceAccountName\":\"%s\",\"containers\":[{\"name\":"
             "\"app\",\"image\":\"%s\",\"ports\":[{\"containerPort\":8080}],\"resources\":"
             "{\"requests\":{\"cpu\":\"250m\",\"memory\":\"256Mi\"},\"limits\":{\"memory\":"
             "\"%s\"}},\"env\":[{\"name\":\"SPRING_PROFILES_ACTIVE\",\"value\":\"prod\"},"
             "{\"name\":\"DB_HOST\",\"value\":\"postgres.shop.svc.cluster.local\"},"
             "{\"name\":\"DB_PASSWORD\",\"valueFrom\":{\"secretKeyRef\":{\"name\":"
             "\"payments-db-credentials\",\"key\":\"password\"}}},{\"name\":\"STRIPE_API_KEY\","
             "\"value\":\"sk_live_51HxYzAbCdEfGhIjKlMnOpQr\"}],"
             "\"readinessProbe\":{\"httpGet\":{\"path\":\"/actuator/health\",\"port\":8080},"
             "\"periodSeconds\":10},\"livenessProbe\":{\"httpGet\":{\"path\":"
             "\"/actuator/health/liveness\",\"port\":8080},\"initialDelaySeconds\":30}}]}}},"
             "\"status\":{\"replicas\":3,\"readyReplicas\":1,\"unavailableReplicas\":2,"
             "\"conditions\":[{\"type\":\"Available\",\"status\":\"False\",\"reason\":"
             "\"MinimumReplicasUnavailable\"},{\"type\":\"Progressing\",\"status\":\"True\","
             "\"reason\":\"ReplicaSetUpdated\"}]}}",
             name, name, name, image, limit);
    return cJSON_Parse(text);
}

static cJSON *pods(const char *owner, const char *waiting, int restarts, const char *node)
{
    cJSON *list = cJSON_CreateArray();
    char name[128], text[1024];

    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "%s-7d9c8b6f4-%c2x9z", owner, 'a' + i);
        snprintf(text, sizeof(text),
                 "{\"name\":\"%s\",\"phase\":\"%s\",\"node\":\"%s\",\"startTime\":"
                 "\"2024-05-01T09:12:00Z\",\"conditions\":[{\"type\":\"Ready\",\"status\":"
                 "\"False\",\"reason\":\"ContainersNotReady\"}],\"containers\":[{\"name\":"
                 "\"app\",\"ready\":false,\"restartCount\":%d,\"state\":{\"waiting\":"
                 "{\"reason\":\"%s\"}}}]}",
                 name, node ? "Running" : "Pending", node ? node : "", restarts, waiting);
        cJSON_AddItemToArray(list, cJSON_Parse(text));
    }
    return list;
}

static cJSON *node_section(const char *pressure)
{
    char text[1024];

    snprintf(text, sizeof(text),
             "{\"name\":\"ip-10-0-3-17.eu-west-1.compute.internal\",\"labels\":{\"node."
             "kubernetes.io/instance-type\":\"m6i.large\",\"topology.kubernetes.io/zone\":"
             "\"eu-west-1b\"},\"capacity\":{\"cpu\":\"2\",\"memory\":\"7935Mi\",\"pods\":\"29\"},"
             "\"allocatable\":{\"cpu\":\"1930m\",\"memory\":\"7024Mi\",\"pods\":\"29\"},"
             "\"conditions\":[{\"type\":\"MemoryPressure\",\"status\":\"%s\"},{\"type\":"
             "\"DiskPressure\",\"status\":\"False\"},{\"type\":\"PIDPressure\",\"status\":"
             "\"False\"},{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\"}]}",
             pressure);
    return cJSON_Parse(text);
}

/* reason NULL: the container never ran (no lastState). */
static cJSON *last_termination(const char *reason, int exit_code, int restarts,
                               const char *waiting, const char *waiting_message)
{
    char text[1024], last[512] = "";

    if (reason != NULL)
        snprintf(last, sizeof(last),
                 ",\"lastState\":{\"terminated\":{\"exitCode\":%d,\"reason\":\"%s\","
                 "\"startedAt\":\"2024-05-01T10:58:41Z\",\"finishedAt\":"
                 "\"2024-05-01T10:59:58Z\"}}",
                 exit_code, reason);
    snprintf(text, sizeof(text),
             "[{\"name\":\"app\",\"pod\":\"checkout-7d9c8b6f4-a2x9z\",\"restartCount\":%d,"
             "\"image\":\"ghcr.io/shop/checkout:v2.3.1\",\"state\":{\"waiting\":{\"reason\":"
             "\"%s\",\"message\":\"%s\"}}%s}]",
             restarts, waiting, waiting_message, last);
    return cJSON_Parse(text);
}

/* "source": the manifest lines around the failing field, numbered, and three commits. */
static cJSON *source_section(const char *path, const char *file_text, int from, int to,
                             const char *const diffs[3])
{
    static const char *const subjects[] = {
        "checkout: bump to v2.3.1", "checkout: tune resources for peak", "checkout: add probes",
    };
    cJSON *source = cJSON_CreateObject(), *history;
    tr_buf excerpt = TR_BUF_INIT(0);
    const char *p = file_text;

    for (int line = 1; p && *p; line++) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);

        if (line >= from && line <= to)
            (void)tr_buf_printf(&excerpt, "%4d  %.*s\n", line, len, p);
        p = nl ? nl + 1 : NULL;
    }
    cJSON_AddStringToObject(source, "repo", "https://github.com/shop/platform");
    cJSON_AddStringToObject(source, "path", path);
    cJSON_AddStringToObject(source, "excerpt", tr_buf_cstr(&excerpt));
    history = cJSON_AddArrayToObject(source, "history");
    for (int i = 0; i < 3; i++) {
        cJSON *commit = cJSON_CreateObject();
        char sha[41];

        snprintf(sha, sizeof(sha), "%08x%08x%08x%08x%08x", 0x3f2aa21cu + (unsigned)i,
                 0x0e4d5b6au, 0x79881234u, 0x56789012u, 0x34abcdefu - (unsigned)i);
        cJSON_AddStringToObject(commit, "commit", sha);
        cJSON_AddStringToObject(commit, "author", "Dana Ops <dana@shop.example>");
        cJSON_AddStringToObject(commit, "date", "2024-04-30T16:2" "0:00Z");
        cJSON_AddStringToObject(commit, "subject", subjects[i]);
        cJSON_AddStringToObject(commit, "diff", diffs[i]);
        cJSON_AddItemToArray(history, commit);
    }
    tr_buf_dispose(&excerpt);
    return source;
}

static const char manifest[] =
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout\n  namespace: shop\n"
    "spec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n        - name: app\n"
    "          image: ghcr.io/shop/checkout:v2.3.1\n          resources:\n"
    "            requests:\n              cpu: 250m\n              memory: 256Mi\n"
    "            limits:\n              memory: 512Mi\n          env:\n"
    "            - name: DB_HOST\n              value: postgres.shop.svc.cluster.local\n"
    "            - name: DB_PASSWORD\n              valueFrom:\n                secretKeyRef:\n"
    "                  name: payments-db-credentials\n                  key: password\n";

static const char *const manifest_diffs[3] = {
    "--- a/deploy/checkout/deployment.yaml\n+++ b/deploy/checkout/deployment.yaml\n"
    "@@ -9,7 +9,7 @@ spec:\n       containers:\n         - name: app\n"
    "-          image: ghcr.io/shop/checkout:v2.3.0\n"
    "+          image: ghcr.io/shop/checkout:v2.3.1\n"
    "           resources:\n",
    "--- a/deploy/checkout/deployment.yaml\n+++ b/deploy/checkout/deployment.yaml\n"
    "@@ -15,4 +15,4 @@ spec:\n               memory: 256Mi\n             limits:\n"
    "-              memory: 1Gi\n+              memory: 512Mi\n           env:\n"
    "-            - name: DB_HOST\n-              value: pg-primary.db.svc.cluster.local\n"
    "+            - name: DB_HOST\n+              value: postgres.shop.svc.cluster.local\n",
    "--- a/deploy/checkout/deployment.yaml\n+++ b/deploy/checkout/deployment.yaml\n"
    "@@ -20,3 +20,9 @@ spec:\n+          readinessProbe:\n+            httpGet:\n"
    "+              path: /actuator/health\n+              port: 8080\n",
};

/* The sections of a Kubernetes incident; log (may be NULL) goes in as previous_logs. */
static char *kube_gathered(cJSON *termination, const char *log, cJSON *events, cJSON *object,
                           cJSON *pod_list, cJSON *node)
{
    cJSON *root = cJSON_CreateObject();
    char *text;

    if (termination)
        cJSON_AddItemToObject(root, "last_termination", termination);
    if (log) {
        cJSON *logs = cJSON_AddArrayToObject(root, "previous_logs"), *entry = cJSON_CreateObject();

        cJSON_AddStringToObject(entry, "pod", "checkout-7d9c8b6f4-a2x9z");
        cJSON_AddStringToObject(entry, "container", "app");
        cJSON_AddStringToObject(entry, "log", log);
        cJSON_AddItemToArray(logs, entry);
    }
    cJSON_AddItemToObject(root, "events", events);
    cJSON_AddItemToObject(root, "object", object);
    cJSON_AddItemToObject(root, "pods", pod_list);
    if (node)
        cJSON_AddItemToObject(root, "node", node);
    cJSON_AddItemToObject(root, "source",
                          source_section("deploy/checkout/deployment.yaml", manifest, 9, 26,
                                         manifest_diffs));
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

static cJSON *events_of(const ev_spec *ev, size_t count, const char *object)
{
    cJSON *list = cJSON_CreateArray();

    /* Older routine events first (the fitter drops the oldest), the failure's last. */
    for (int i = 0; i < 6; i++) {
        char message[160];

        snprintf(message, sizeof(message), "Successfully assigned shop/%s-%d to "
                 "ip-10-0-3-17.eu-west-1.compute.internal", object, i);
        cJSON_AddItemToArray(list, event("Normal", "Scheduled", message, 1, object,
                                         "default-scheduler"));
    }
    for (size_t i = 0; i < count; i++)
        cJSON_AddItemToArray(list, event(ev[i].type, ev[i].reason, ev[i].message, 30 + (int)i,
                                         object, "kubelet"));
    return list;
}

/* ------------------------------------------------------------ incidents */

static void expect(bench_incident *b, const char *what, const char *text)
{
    b->check_name = what;
    snprintf(b->checks[0], sizeof(b->checks[0]), "%s", text);
}

static void kube_row(bench_incident *b, const char *kind, const char *name, const char *cls,
                     const char *title, const char *message)
{
    memset(&b->row, 0, sizeof(b->row));
    b->row.id = 42;
    b->row.source = "kubernetes";
    b->row.cluster = "prod-eu-west-1";
    b->row.namespace = "shop";
    b->row.kind = kind;
    b->row.name = name;
    b->row.failure_class = cls;
    b->row.title = title;
    b->row.message = message;
    b->row.facts_json = b->facts;
    b->row.observation_count = 31;
    b->row.first_seen_ms = 1714554723000;
    b->row.last_seen_ms = 1714561198000;
}

static int crashloop(bench_incident *b, int condensed)
{
    static const ev_spec ev[] = {
        { "Warning", "BackOff", "Back-off restarting failed container app in pod "
        "checkout-7d9c8b6f4-a2x9z_shop(5f0c1a9e-1f43-4a0e-9f7b-2b7f3e0a9c11)" },
        { "Normal", "Pulled", "Container image \"ghcr.io/shop/checkout:v2.3.1\" already present" },
    };
    tr_buf raw = TR_BUF_INIT(0), cut = TR_BUF_INIT(0);
    int rc = java_log(&raw, PREVIOUS_LOG_BYTES);

    /* The gatherer condenses a log as it reads it (100 lines, 16 KiB: its defaults). */
    if (rc == 0 && condensed)
        rc = tr_kube_log_condense(&cut, raw.ptr, raw.len, 100, 16384);
    b->label = condensed ? "CrashLoopBackOff (100 KB Java log, condensed as gathered)"
                         : "CrashLoopBackOff (100 KB Java log, raw into the bundle)";
    b->facts = tr_strdup("{\"container\":\"app\",\"restart_count\":31,\"exit_code\":1,"
                         "\"reason\":\"Error\",\"message\":\"Back-off restarting failed "
                         "container\",\"image\":\"ghcr.io/shop/checkout:v2.3.1\",\"namespace\":"
                         "\"shop\",\"object_kind\":\"Pod\",\"object_name\":"
                         "\"checkout-7d9c8b6f4-a2x9z\",\"pods\":[\"checkout-7d9c8b6f4-a2x9z\","
                         "\"checkout-7d9c8b6f4-b2x9z\"],\"pod_count\":2,\"node\":"
                         "\"ip-10-0-3-17.eu-west-1.compute.internal\"}");
    if (rc == 0)
        b->gathered = kube_gathered(last_termination("Error", 1, 31, "CrashLoopBackOff",
                                                     "back-off 5m0s restarting failed container"),
                                    tr_buf_cstr(condensed ? &cut : &raw),
                                    events_of(ev, 2, "Pod/checkout-7d9c8b6f4-a2x9z"),
                                    deployment("checkout", "ghcr.io/shop/checkout:v2.3.1", "512Mi"),
                                    pods("checkout", "CrashLoopBackOff", 31, NODE),
                                    node_section("False"));
    kube_row(b, "Deployment", "checkout", "CrashLoopBackOff",
             "checkout is crash-looping (exit 1, 31 restarts)",
             "Back-off restarting failed container app");
    expect(b, "exception line",
              "Caused by: java.net.UnknownHostException: postgres.shop.svc.cluster.local");
    tr_buf_dispose(&raw);
    tr_buf_dispose(&cut);
    return rc;
}

static int oomkilled(bench_incident *b)
{
    static const ev_spec ev[] = {
        { "Warning", "BackOff", "Back-off restarting failed container app in pod "
        "checkout-7d9c8b6f4-a2x9z_shop" },
        { "Warning", "OOMKilling", "Memory cgroup out of memory: Killed process 4121 (java) "
        "total-vm:3919876kB, anon-rss:523012kB, file-rss:20840kB, shmem-rss:0kB" },
    };
    tr_buf log = TR_BUF_INIT(0);
    int rc = tr_buf_puts(&log, "2024-05-01T10:59:41.002Z  INFO 1 --- [main] c.s.checkout.cache."
                               "Warmup : loading 1200000 catalogue entries into heap cache\n"
                               "2024-05-01T10:59:55.871Z  INFO 1 --- [main] c.s.checkout.cache."
                               "Warmup : 800000 entries loaded (heap used 471 MiB)\n");

    b->label = "OOMKilled (512Mi limit, cache warm-up)";
    b->facts = tr_strdup("{\"container\":\"app\",\"restart_count\":7,\"exit_code\":137,"
                         "\"memory_limit\":\"512Mi\",\"memory_request\":\"256Mi\",\"image\":"
                         "\"ghcr.io/shop/checkout:v2.3.1\",\"namespace\":\"shop\",\"object_kind\":"
                         "\"Pod\",\"object_name\":\"checkout-7d9c8b6f4-a2x9z\",\"pods\":"
                         "[\"checkout-7d9c8b6f4-a2x9z\"],\"pod_count\":1,\"node\":"
                         "\"ip-10-0-3-17.eu-west-1.compute.internal\"}");
    if (rc == 0)
        b->gathered = kube_gathered(last_termination("OOMKilled", 137, 7, "CrashLoopBackOff",
                                                     "back-off 2m40s restarting failed container"),
                                    tr_buf_cstr(&log),
                                    events_of(ev, 2, "Pod/checkout-7d9c8b6f4-a2x9z"),
                                    deployment("checkout", "ghcr.io/shop/checkout:v2.3.1", "512Mi"),
                                    pods("checkout", "CrashLoopBackOff", 7, NODE),
                                    node_section("True"));
    kube_row(b, "Deployment", "checkout", "OOMKilled", "checkout was OOMKilled (limit 512Mi)",
             "Container app was OOMKilled (exit 137)");
    expect(b, "OOM reason", "\"reason\":\"OOMKilled\"");
    tr_buf_dispose(&log);
    return rc;
}

/* A pod whose container never started: it waits with reason; no log. */
static char *waiting_gathered(const char *owner, const char *image, const char *limit,
                              const char *reason, const char *message, const ev_spec *ev,
                              size_t ev_count, const char *pod)
{
    return kube_gathered(last_termination(NULL, 0, 0, reason, message), NULL,
                         events_of(ev, ev_count, pod), deployment(owner, image, limit),
                         pods(owner, reason, 0, NODE), node_section("False"));
}

static int imagepull(bench_incident *b)
{
    static const ev_spec ev[] = {
        { "Warning", "Failed", "Failed to pull image \"ghcr.io/shop/checkout:v2.3.2\": rpc error: "
        "code = NotFound desc = failed to pull and unpack image \"ghcr.io/shop/checkout:v2.3.2\": "
        "failed to resolve reference \"ghcr.io/shop/checkout:v2.3.2\": ghcr.io/shop/checkout:"
        "v2.3.2: not found" },
        { "Warning", "Failed", "Error: ErrImagePull" },
        { "Normal", "BackOff", "Back-off pulling image \"ghcr.io/shop/checkout:v2.3.2\"" },
        { "Warning", "Failed", "Error: ImagePullBackOff" },
    };

    b->label = "ImagePullBackOff (tag not pushed)";
    b->facts = tr_strdup("{\"container\":\"app\",\"image\":\"ghcr.io/shop/checkout:v2.3.2\","
                         "\"reason\":\"ImagePullBackOff\",\"message\":\"Back-off pulling image "
                         "\\\"ghcr.io/shop/checkout:v2.3.2\\\"\",\"namespace\":\"shop\","
                         "\"object_kind\":\"Pod\",\"object_name\":\"checkout-6b5d7c9f8-q7w2e\","
                         "\"pods\":[\"checkout-6b5d7c9f8-q7w2e\"],\"pod_count\":1}");
    b->gathered = waiting_gathered("checkout", "ghcr.io/shop/checkout:v2.3.2", "512Mi",
                                   "ImagePullBackOff", "Back-off pulling image", ev,
                                   sizeof(ev) / sizeof(ev[0]),
                                   "Pod/checkout-6b5d7c9f8-q7w2e");
    kube_row(b, "Deployment", "checkout", "ImagePullBackOff",
             "checkout cannot pull ghcr.io/shop/checkout:v2.3.2",
             "Back-off pulling image \"ghcr.io/shop/checkout:v2.3.2\"");
    expect(b, "pull error", "ghcr.io/shop/checkout:v2.3.2: not found");
    return 0;
}

static int configerror(bench_incident *b)
{
    static const ev_spec ev[] = {
        { "Warning", "Failed", "Error: secret \"payments-db-credentials\" not found" },
    };

    b->label = "CreateContainerConfigError (missing Secret)";
    b->facts = tr_strdup("{\"container\":\"app\",\"message\":\"secret \\\"payments-db-credentials"
                         "\\\" not found\",\"missing_kind\":\"Secret\",\"missing_name\":"
                         "\"payments-db-credentials\",\"missing_key\":\"password\",\"namespace\":"
                         "\"shop\",\"object_kind\":\"Pod\",\"object_name\":"
                         "\"payments-5c8d9b7f6-k3j4h\",\"pods\":[\"payments-5c8d9b7f6-k3j4h\"],"
                         "\"pod_count\":1}");
    b->gathered = waiting_gathered("payments", "ghcr.io/shop/payments:v1.9.0", "1Gi",
                                   "CreateContainerConfigError",
                                   "secret \\\"payments-db-credentials\\\" not found", ev,
                                   sizeof(ev) / sizeof(ev[0]),
                                   "Pod/payments-5c8d9b7f6-k3j4h");
    kube_row(b, "Deployment", "payments", "CreateContainerConfigError",
             "payments: secret payments-db-credentials not found",
             "Error: secret \"payments-db-credentials\" not found");
    expect(b, "missing secret name", "\"missing_name\":\"payments-db-credentials\"");
    return 0;
}

static int scheduling(bench_incident *b)
{
    static const ev_spec ev[] = {
        { "Warning", "FailedScheduling", "0/6 nodes are available: 2 Insufficient memory, 3 node(s) "
        "had untolerated taint {dedicated: gpu}, 1 node(s) didn't match Pod's node "
        "affinity/selector. preemption: 0/6 nodes are available: 2 No preemption victims found "
        "for incoming pod, 4 Preemption is not helpful for scheduling." },
    };

    b->label = "FailedScheduling (Insufficient memory)";
    b->facts = tr_strdup("{\"scheduler_message\":\"0/6 nodes are available: 2 Insufficient "
                         "memory, 3 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) "
                         "didn't match Pod's node affinity/selector.\",\"requests\":{\"cpu\":"
                         "\"2\",\"memory\":\"12Gi\"},\"namespace\":\"shop\",\"object_kind\":"
                         "\"Pod\",\"object_name\":\"search-indexer-0\",\"pods\":"
                         "[\"search-indexer-0\"],\"pod_count\":1}");
    b->gathered = kube_gathered(NULL, NULL, events_of(ev, 1, "Pod/search-indexer-0"),
                                deployment("search-indexer", "ghcr.io/shop/indexer:v4.0.0",
                                           "12Gi"),
                                pods("search-indexer", "Pending", 0, NULL), NULL);
    kube_row(b, "StatefulSet", "search-indexer", "FailedScheduling",
             "search-indexer-0 cannot be scheduled", "0/6 nodes are available");
    expect(b, "scheduler reason", "Insufficient memory");
    return 0;
}

/* ------------------------------------------------------------ terraform */

static const char *const tf_diffs[3] = {
    "--- a/main.tf\n+++ b/main.tf\n@@ -1,4 +1,4 @@\n module \"db\" {\n   source        = "
    "\"./modules/db\"\n-  instance_size = \"db.t3.small\"\n+  instance_size = \"db.t3.nano\"\n }\n",
    "--- a/modules/db/main.tf\n+++ b/modules/db/main.tf\n@@ -4,6 +4,10 @@ resource "
    "\"terraform_data\" \"db\" {\n   input = var.instance_size\n+  lifecycle {\n"
    "+    precondition {\n"
    "+      condition     = !endswith(var.instance_size, \".nano\")\n+      error_message = \"nano "
    "instances cannot run Postgres 16; use db.t3.small or larger.\"\n+    }\n+  }\n }\n",
    "--- a/modules/db/main.tf\n+++ b/modules/db/main.tf\n@@ -1,2 +1,3 @@\n+variable "
    "\"instance_size\" { type = string }\n resource \"terraform_data\" \"db\" {\n",
};

/* A Terraform incident from a fixture log, with facts, title and object from the real code. */
static int terraform(bench_incident *b, const char *shared, const char *dir, const char *log_name,
                     const char *source_file, const char *label)
{
    char path[1024], *log = NULL, *file = NULL, *title = NULL, *message = NULL, *fp = NULL;
    tr_tf_meta meta = { "prod", "infra/db", "3f2aa21c0e4d5b6a798812345678901234abcdef",
                        NULL, NULL, NULL };
    tr_tf_result *result = NULL;
    const tr_tf_diagnostic *first;
    cJSON *root = NULL;
    tr_error err;
    int rc = TR_ENOTFOUND;

    snprintf(path, sizeof(path), "%s/fixtures/terraform/%s/%s", shared, dir, log_name);
    if ((log = read_file(path)) == NULL)
        goto cleanup;
    snprintf(path, sizeof(path), "%s/fixtures/terraform/%s/%s", shared, dir, source_file);
    if ((file = read_file(path)) == NULL)
        goto cleanup;
    if ((rc = tr_tf_log_parse(&result, log, strlen(log), NULL, &err)) != 0 ||
        (rc = tr_tf_facts_json(&b->facts, result, &meta)) != 0 ||
        (rc = tr_tf_title(&title, result)) != 0 || (rc = tr_tf_message(&message, result)) != 0 ||
        (rc = tr_tf_fingerprint(&fp, result, &meta)) != 0)
        goto cleanup;
    root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "source", source_section(source_file, file, 1, 40, tf_diffs));
    b->gathered = cJSON_PrintUnformatted(root);
    memset(&b->row, 0, sizeof(b->row));
    b->label = label;
    b->row.id = 43;
    b->row.source = "terraform";
    b->row.namespace = tr_tf_workspace(&meta);
    tr_tf_object(result, &meta, &b->row.kind, &b->row.name);
    snprintf(b->kind, sizeof(b->kind), "%s", b->row.kind);
    snprintf(b->name, sizeof(b->name), "%s", b->row.name);
    b->row.kind = b->kind;
    b->row.name = b->name;
    b->row.failure_class = tr_tf_failure_class(result);
    b->row.title = title;
    b->row.message = message;
    b->row.fingerprint = fp;
    b->row.facts_json = b->facts;
    b->row.observation_count = 1;
    b->row.first_seen_ms = b->row.last_seen_ms = 1714561198000;
    b->owned[0] = title;
    b->owned[1] = message;
    b->owned[2] = fp;
    title = message = fp = NULL;
    first = tr_tf_first_error(result);
    b->check_name = "diagnostic file:line";
    snprintf(b->checks[0], sizeof(b->checks[0]), "\"filename\":\"%s\"",
             first && first->filename ? first->filename : "?");
    snprintf(b->checks[1], sizeof(b->checks[1]), "\"start_line\":%d",
             first ? first->start_line : 0);
cleanup:
    cJSON_Delete(root);
    tr_tf_result_free(result);
    tr_free(log);
    tr_free(file);
    tr_free(title);
    tr_free(message);
    tr_free(fp);
    return rc;
}

/* ------------------------------------------------------------ measuring */

static size_t node_count(const cJSON *node)
{
    size_t n = 1;

    for (const cJSON *c = node ? node->child : NULL; c; c = c->next)
        n += node_count(c);
    return n;
}

/* "dropped", "cut" (an entry gone or a text trimmed) or NULL (whole). */
static const char *fate(const cJSON *before, const cJSON *after)
{
    char *text;
    int trimmed;

    if (after == NULL)
        return "dropped";
    if ((text = cJSON_PrintUnformatted(after)) == NULL)
        return NULL;
    trimmed = strstr(text, "[trimmed ") != NULL;
    cJSON_free(text);
    return trimmed || node_count(after) < node_count(before) ? "cut" : NULL;
}

static int64_t tokens_of(const cJSON *node)
{
    char *text = cJSON_Print(node);
    int64_t tokens = text ? tr_evidence_tokens(strlen(text)) : 0;

    cJSON_free(text);
    return tokens;
}

/* Sizes, fates and key evidence of one bundle. */
static void report(const bench_incident *b, const char *bundle)
{
    cJSON *out = cJSON_Parse(bundle), *in = cJSON_Parse(b->gathered);
    cJSON *facts_in = cJSON_Parse(b->facts), *kube, *item;
    tr_buf cut = TR_BUF_INIT(0);
    const char *what, *message;
    char *rest;
    int found = 1;

    if (out == NULL || in == NULL)
        goto cleanup;
    kube = cJSON_GetObjectItemCaseSensitive(out, "kubernetes");
    printf("      tokens:");
    cJSON_ArrayForEach(item, out)
        if (item != kube)
            printf(" %s %lld", item->string, (long long)tokens_of(item));
    cJSON_ArrayForEach(item, kube)
        printf(" | %s %lld", item->string, (long long)tokens_of(item));
    printf("\n");
    if ((what = fate(facts_in, cJSON_GetObjectItemCaseSensitive(out, "facts"))) != NULL)
        (void)tr_buf_printf(&cut, " facts %s;", what);
    message = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(out, "latest_message"));
    if (message == NULL || strstr(message, "[trimmed ") != NULL)
        (void)tr_buf_puts(&cut, " latest_message cut or dropped;");
    cJSON_ArrayForEach(item, in)
        if ((what = fate(item, cJSON_GetObjectItemCaseSensitive(kube, item->string))) != NULL)
            (void)tr_buf_printf(&cut, " %s %s;", item->string, what);
    printf("      cut/dropped:%s\n", cut.len ? tr_buf_cstr(&cut) : " nothing");
    /* The header always survives: evidence counts only when it is in the rest. */
    cJSON_DeleteItemFromObjectCaseSensitive(out, "incident");
    if ((rest = cJSON_PrintUnformatted(out)) != NULL) {
        for (int i = 0; i < MAX_CHECKS; i++)
            if (b->checks[i][0] && strstr(rest, b->checks[i]) == NULL)
                found = 0;
        cJSON_free(rest);
    }
    printf("      %s survived: %s\n", b->check_name, found ? "yes" : "NO");
cleanup:
    tr_buf_dispose(&cut);
    cJSON_Delete(out);
    cJSON_Delete(in);
    cJSON_Delete(facts_in);
}

static void run_incident(const bench_incident *b)
{
    char *bundle = NULL;
    int64_t tokens = 0;
    size_t masked = 0;
    tr_error err;
    double t0;

    printf("%s\n  %s %s/%s, class %s\n", b->label, b->row.source, b->row.kind, b->row.name,
           b->row.failure_class);
    if (tr_evidence_bundle_ex(&b->row, b->gathered, INT64_MAX / 8, &bundle, &tokens, NULL,
                              &err) == 0)
        printf("  unfitted bundle: %lld tokens\n", (long long)tokens);
    tr_free(bundle);
    for (size_t i = 0; i < sizeof(budgets) / sizeof(budgets[0]); i++) {
        bundle = NULL;
        t0 = now_s();
        if (tr_evidence_bundle_ex(&b->row, b->gathered, budgets[i], &bundle, &tokens, &masked,
                                  &err) != 0) {
            printf("    budget %lld: failed: %s\n", (long long)budgets[i], err.message);
            continue;
        }
        printf("    budget %lld: %lld tokens, %zu secrets masked, built in %.1f ms\n",
               (long long)budgets[i], (long long)tokens, masked, (now_s() - t0) * 1e3);
        report(b, bundle);
        tr_free(bundle);
    }
}

/* ------------------------------------------------------------ throughput */

static void throughput(void)
{
    tr_buf log = TR_BUF_INIT(0), out = TR_BUF_INIT(0);
    tr_logwin_options opt = { 65536, 200, 3, 8 };
    double t0, mb;
    size_t masked = 0;

    if (java_log(&log, BIG_LOG_BYTES) != 0)
        goto cleanup;
    mb = (double)log.len / (1024.0 * 1024.0);
    t0 = now_s();
    for (int r = 0; r < ROUNDS; r++) {
        tr_buf_clear(&out);
        masked = 0;
        if (tr_redact_text(&out, log.ptr, log.len, &masked) != 0)
            goto cleanup;
    }
    printf("redact:  %.1f MB/s on a %.1f MB Java service log (%zu masked)\n",
           mb * ROUNDS / (now_s() - t0), mb, masked);
    t0 = now_s();
    for (int r = 0; r < ROUNDS; r++) {
        tr_buf_clear(&out);
        if (tr_logwin_cut(&out, log.ptr, log.len, &opt, NULL) != 0)
            goto cleanup;
    }
    printf("logwin:  %.1f MB/s (%.1f MB to %zu bytes)\n", mb * ROUNDS / (now_s() - t0), mb,
           out.len);
cleanup:
    tr_buf_dispose(&log);
    tr_buf_dispose(&out);
}

static void incident_dispose(bench_incident *b)
{
    tr_free(b->facts);
    cJSON_free(b->gathered);
    for (int i = 0; i < 3; i++)
        tr_free(b->owned[i]);
}

int main(void)
{
    const char *shared = getenv("SHARED") != NULL ? getenv("SHARED") : "../shared";
    bench_incident incidents[8];
    size_t count = 0;
    int rc = 0;

    if (tr_alloc_install() != 0)
        return 1;
    memset(incidents, 0, sizeof(incidents));
    rc |= crashloop(&incidents[count++], 1);
    rc |= crashloop(&incidents[count++], 0);
    rc |= oomkilled(&incidents[count++]);
    rc |= imagepull(&incidents[count++]);
    rc |= configerror(&incidents[count++]);
    rc |= scheduling(&incidents[count++]);
    rc |= terraform(&incidents[count++], shared, "module", "apply.jsonl", "modules/db/main.tf",
                    "Terraform apply failure (module precondition)");
    rc |= terraform(&incidents[count++], shared, "syntax", "init.jsonl", "main.tf",
                    "Terraform init failure (syntax error)");
    if (rc != 0)
        fprintf(stderr, "bench_triage: could not build every incident (fixtures in %s?)\n",
                shared);
    printf("evidence bundles at budgets 1500 / 4000 / 6000 tokens (tokens = chars / 4)\n\n");
    for (size_t i = 0; i < count; i++) {
        if (incidents[i].gathered != NULL && incidents[i].row.failure_class != NULL)
            run_incident(&incidents[i]);
        incident_dispose(&incidents[i]);
        printf("\n");
    }
    throughput();
    tr_alloc_uninstall();
    return rc != 0;
}
