/*
 * rules.c - one function per failure class. Each reads the facts the
 * watchers record for that class (docs/incident-facts.md), names the object
 * the way an operator would ("container app of shop/checkout"), and turns
 * tell-tale phrases of the message (exit codes, "Insufficient cpu",
 * "manifest unknown", a probe's "connection refused") into the likely cause.
 * Facts that are absent are simply left out of the sentences.
 */
#include "rules.h"

#include "alloc.h"
#include "buf.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define TEXT_MAX 8192

typedef struct rule_ctx {
    const tr_store_incident *inc;
    const cJSON *facts;
    char object[512]; /* "shop/checkout" */
    tr_buf summary;
    tr_buf root;
    tr_buf steps;    /* JSON array under construction */
    tr_buf evidence; /* JSON array under construction */
    size_t step_count;
    size_t evidence_count;
    const char *severity;
    double confidence;
    int rc;
} rule_ctx;

/* ------------------------------------------------------------ helpers */

static const char *fs(const rule_ctx *c, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->facts, name);

    return cJSON_IsString(v) && v->valuestring && v->valuestring[0] ? v->valuestring : NULL;
}

/* A fact as text whatever its JSON type ("137", "64Mi"); NULL when absent. */
static const char *fv(const rule_ctx *c, const char *name, char *tmp, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->facts, name);

    if (cJSON_IsString(v))
        return v->valuestring && v->valuestring[0] ? v->valuestring : NULL;
    if (cJSON_IsNumber(v)) {
        snprintf(tmp, size, "%.0f", v->valuedouble);
        return tmp;
    }
    return NULL;
}

static int fi(const rule_ctx *c, const char *name, long long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->facts, name);

    if (cJSON_IsNumber(v)) {
        *out = (long long)v->valuedouble;
        return 1;
    }
    if (cJSON_IsString(v) && v->valuestring && sscanf(v->valuestring, "%lld", out) == 1)
        return 1;
    return 0;
}

static int has(const char *text, const char *needle)
{
    return text != NULL && strcasestr(text, needle) != NULL;
}

static void put(rule_ctx *c, tr_buf *b, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put(rule_ctx *c, tr_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    if (c->rc != TR_OK)
        return;
    va_start(ap, fmt);
    rc = tr_buf_vprintf(b, fmt, ap);
    va_end(ap);
    if (rc != TR_OK)
        c->rc = rc;
}

static void list_add(rule_ctx *c, tr_buf *list, size_t *count, const char *fmt, va_list ap)
{
    tr_buf item = TR_BUF_INIT(TEXT_MAX);
    int rc = tr_buf_vprintf(&item, fmt, ap);

    if (rc == TR_OK)
        rc = tr_buf_puts(list, *count ? ",\"" : "\"");
    if (rc == TR_OK)
        rc = tr_buf_put_json_escaped(list, item.ptr ? item.ptr : "", item.len);
    if (rc == TR_OK)
        rc = tr_buf_putc(list, '"');
    if (rc == TR_OK)
        (*count)++;
    else if (c->rc == TR_OK)
        c->rc = rc;
    tr_buf_dispose(&item);
}

static void step(rule_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void step(rule_ctx *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    list_add(c, &c->steps, &c->step_count, fmt, ap);
    va_end(ap);
}

static void quote(rule_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void quote(rule_ctx *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    list_add(c, &c->evidence, &c->evidence_count, fmt, ap);
    va_end(ap);
}

/* Evidence: the listed facts as "name: value", as recorded. */
static void quote_facts(rule_ctx *c, const char *const *names)
{
    char tmp[32];

    for (; *names; names++) {
        const char *v = fv(c, *names, tmp, sizeof(tmp));

        if (v)
            quote(c, "%s: %.1500s", *names, v);
    }
}

static const char *ns(const rule_ctx *c)
{
    return c->inc->namespace && c->inc->namespace[0] ? c->inc->namespace : "default";
}

static const char *container_phrase(const rule_ctx *c, char *out, size_t size)
{
    const char *container = fs(c, "container");

    if (container)
        snprintf(out, size, "container %s of %s", container, c->object);
    else
        snprintf(out, size, "%s", c->object);
    return out;
}

static const char *exit_meaning(long long code)
{
    switch (code) {
    case 0: return "the process exited successfully, yet it is restarted: it is not a "
                   "long-running process (check command/args and restartPolicy)";
    case 1: return "the application exited with a generic error, usually a configuration or "
                   "startup failure it logged";
    case 2: return "the command was misused (bad arguments or options)";
    case 126: return "the command is not executable (permissions or wrong binary)";
    case 127: return "the command was not found in the image (wrong command or entrypoint)";
    case 134: return "the process aborted (SIGABRT), e.g. a failed assertion";
    case 137: return "the process was killed with SIGKILL, usually by the OOM killer or a "
                     "failed liveness probe";
    case 139: return "the process crashed with a segmentation fault (SIGSEGV)";
    case 143: return "the process was terminated with SIGTERM and did not restart cleanly";
    default: return "the application exited with an error";
    }
}

/* ------------------------------------------------------------ kubernetes */

static void rule_crashloop(rule_ctx *c)
{
    static const char *const keys[] = {"container", "restart_count", "exit_code", "reason",
                                       "message", "image", NULL};
    char who[600];
    long long restarts = 0, code = 0;
    int has_code = fi(c, "exit_code", &code);
    const char *reason = fs(c, "reason"), *msg = fs(c, "message");

    container_phrase(c, who, sizeof(who));
    put(c, &c->summary, "%s is in CrashLoopBackOff", who);
    if (fi(c, "restart_count", &restarts))
        put(c, &c->summary, ": restarted %lld times", restarts);
    if (has_code)
        put(c, &c->summary, "; last exit code %lld%s%s%s", code, reason ? " (" : "",
            reason ? reason : "", reason ? ")" : "");
    put(c, &c->root, "The container process exits soon after it starts and the kubelet backs "
                     "off restarting it.");
    if (has_code)
        put(c, &c->root, " Last termination: %s, exit code %lld: %s.", reason ? reason : "Error",
            code, exit_meaning(code));
    if (msg)
        put(c, &c->root, " Termination message: %.1000s", msg);
    step(c, "Read the logs of the crashed run: kubectl logs -n %s %s --previous%s%s", ns(c),
         fs(c, "object_name") ? fs(c, "object_name") : c->inc->name,
         fs(c, "container") ? " -c " : "", fs(c, "container") ? fs(c, "container") : "");
    if (has_code && (code == 126 || code == 127 || code == 2))
        step(c, "Check the container's command and args against the image %s",
             fs(c, "image") ? fs(c, "image") : "");
    else
        step(c, "Check the configuration the application reads at startup (env, ConfigMaps, "
                "Secrets, the services it connects to)");
    step(c, "Roll back to the last working revision if a recent change caused it: "
            "kubectl rollout undo -n %s %s/%s",
         ns(c), c->inc->kind ? c->inc->kind : "deployment", c->inc->name);
    c->severity = "error";
    c->confidence = has_code ? 0.6 : 0.4;
    quote_facts(c, keys);
}

static void rule_oomkilled(rule_ctx *c)
{
    static const char *const keys[] = {"container", "restart_count", "exit_code",
                                       "memory_limit", "memory_request", "image", NULL};
    char who[600], tmp[32];
    long long restarts = 0, code = 137;
    const char *limit = fv(c, "memory_limit", tmp, sizeof(tmp));
    const char *request = fs(c, "memory_request");

    (void)fi(c, "exit_code", &code);
    container_phrase(c, who, sizeof(who));
    put(c, &c->summary, "%s was OOMKilled (exit %lld)", who, code);
    if (fi(c, "restart_count", &restarts) && restarts > 0)
        put(c, &c->summary, " %lld times", restarts);
    if (limit)
        put(c, &c->summary, "; its memory limit is %s", limit);
    else
        put(c, &c->summary, "; it has no memory limit");
    if (limit)
        put(c, &c->root, "The container used more memory than its limit of %s%s%s%s, so the "
                         "kernel's OOM killer ended it (SIGKILL, exit %lld).",
            limit, request ? " (request " : "", request ? request : "", request ? ")" : "",
            code);
    else
        put(c, &c->root, "The container has no memory limit and was killed by the OOM killer "
                         "(exit %lld): the node ran out of memory.", code);
    step(c, "Raise resources.limits.memory of container %s above its peak usage%s%s (check "
            "kubectl top pod -n %s)",
         fs(c, "container") ? fs(c, "container") : "", limit ? ", currently " : "",
         limit ? limit : "", ns(c));
    step(c, "Look for a memory leak or an unbounded cache if usage grows until the kill");
    step(c, "Cap the runtime's heap below the limit (JVM -Xmx/MaxRAMPercentage, GOMEMLIMIT, "
            "node --max-old-space-size)");
    c->severity = "error";
    c->confidence = limit ? 0.9 : 0.7;
    quote_facts(c, keys);
}

static void rule_image(rule_ctx *c)
{
    static const char *const keys[] = {"container", "image", "reason", "message", NULL};
    char who[600];
    const char *image = fs(c, "image"), *reason = fs(c, "reason"), *msg = fs(c, "message");

    container_phrase(c, who, sizeof(who));
    put(c, &c->summary, "%s cannot pull image %s (%s)", who, image ? image : "(unknown)",
        reason ? reason : "ImagePullBackOff");
    c->confidence = 0.8;
    if (has(reason, "InvalidImageName") || has(msg, "invalid reference format")) {
        put(c, &c->root, "The image reference %s is not a valid image name.",
            image ? image : "");
        step(c, "Fix the image field: registry/repository:tag or @sha256:digest, lowercase");
    } else if (has(msg, "not found") || has(msg, "manifest unknown") ||
               has(msg, "does not exist")) {
        put(c, &c->root, "The image %s does not exist in the registry: the tag or repository "
                         "name is wrong, or the image was never pushed.", image ? image : "");
        step(c, "Check that the tag exists (e.g. docker manifest inspect %s)", image ? image : "");
        step(c, "Fix the tag in the workload's manifest, or push the missing image");
    } else if (has(msg, "unauthorized") || has(msg, "denied") || has(msg, "authentication") ||
               has(msg, "403") || has(msg, "401")) {
        put(c, &c->root, "The registry refused the pull of %s: the node has no valid "
                         "credentials for it.", image ? image : "");
        step(c, "Add or fix imagePullSecrets of the pod (or its service account) in namespace "
                "%s", ns(c));
    } else if (has(msg, "timeout") || has(msg, "no such host") || has(msg, "dial tcp") ||
               has(msg, "connection refused")) {
        put(c, &c->root, "The node cannot reach the registry serving %s (network, DNS or "
                         "proxy).", image ? image : "");
        step(c, "Check the node's network access and DNS resolution for the registry");
    } else {
        put(c, &c->root, "The kubelet could not pull %s.", image ? image : "the image");
        c->confidence = 0.5;
        step(c, "Read the pull error: kubectl describe pod -n %s", ns(c));
    }
    if (msg)
        put(c, &c->root, " The kubelet reported: %.1000s", msg);
    c->severity = "error";
    quote_facts(c, keys);
}

static void rule_config_error(rule_ctx *c)
{
    static const char *const keys[] = {"container", "missing_kind", "missing_name",
                                       "missing_key", "message", NULL};
    char who[600];
    const char *kind = fs(c, "missing_kind"), *name = fs(c, "missing_name");
    const char *key = fs(c, "missing_key"), *msg = fs(c, "message");

    container_phrase(c, who, sizeof(who));
    if (name && key)
        put(c, &c->summary, "%s cannot start: key %s of %s %s is missing", who, key,
            kind ? kind : "Secret/ConfigMap", name);
    else if (name)
        put(c, &c->summary, "%s cannot start: %s %s is missing", who,
            kind ? kind : "Secret/ConfigMap", name);
    else
        put(c, &c->summary, "%s cannot start: CreateContainerConfigError", who);
    if (name) {
        put(c, &c->root, "The container's env or envFrom references %s%s%s %s/%s, which ",
            key ? "key " : "", key ? key : "", key ? " of" : "", ns(c), name);
        put(c, &c->root, "%s.", key ? "does not hold that key" : "does not exist");
        c->confidence = 0.9;
    } else {
        put(c, &c->root, "The kubelet could not build the container's configuration.");
        c->confidence = 0.5;
    }
    if (msg)
        put(c, &c->root, " The kubelet reported: %.1000s", msg);
    if (name)
        step(c, "Create the missing %s or key: kubectl get %s %s -n %s -o yaml",
             kind ? kind : "object", kind && strcasecmp(kind, "ConfigMap") == 0 ? "configmap"
                                                                                : "secret",
             name, ns(c));
    step(c, "Or fix the reference in the workload's manifest (name and key), or mark it "
            "optional: true if the application can run without it");
    c->severity = "error";
    quote_facts(c, keys);
}

static void requests_text(const rule_ctx *c, char *out, size_t size)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(c->facts, "requests");
    const cJSON *cpu = cJSON_GetObjectItemCaseSensitive(r, "cpu");
    const cJSON *mem = cJSON_GetObjectItemCaseSensitive(r, "memory");

    out[0] = '\0';
    if (cJSON_IsString(r) && r->valuestring)
        snprintf(out, size, "%s", r->valuestring);
    else if (cJSON_IsObject(r))
        snprintf(out, size, "cpu %s, memory %s",
                 cJSON_IsString(cpu) ? cpu->valuestring : "unset",
                 cJSON_IsString(mem) ? mem->valuestring : "unset");
}

static void rule_scheduling(rule_ctx *c)
{
    static const char *const keys[] = {"scheduler_message", "message", NULL};
    const char *msg = fs(c, "scheduler_message") ? fs(c, "scheduler_message") : fs(c, "message");
    char req[256];

    requests_text(c, req, sizeof(req));
    put(c, &c->summary, "pods of %s cannot be scheduled: %.300s", c->object,
        msg ? msg : "no node fits");
    c->confidence = 0.8;
    if (has(msg, "Insufficient cpu") || has(msg, "Insufficient memory")) {
        put(c, &c->root, "No node has enough free %s for the pod's requests%s%s%s.",
            has(msg, "Insufficient cpu") ? (has(msg, "Insufficient memory") ? "cpu and memory"
                                                                           : "cpu")
                                         : "memory",
            req[0] ? " (" : "", req, req[0] ? ")" : "");
        step(c, "Lower the pod's resource requests if they are larger than needed");
        step(c, "Or add node capacity (scale the node pool / enable the cluster autoscaler)");
    } else if (has(msg, "taint")) {
        put(c, &c->root, "The nodes carry taints the pod does not tolerate.");
        step(c, "Add the matching tolerations, or schedule onto untainted nodes");
    } else if (has(msg, "affinity") || has(msg, "selector")) {
        put(c, &c->root, "No node matches the pod's nodeSelector or node affinity.");
        step(c, "Fix the nodeSelector/affinity labels or label a node to match");
    } else if (has(msg, "persistentvolumeclaim") || has(msg, "volume")) {
        put(c, &c->root, "A PersistentVolumeClaim of the pod is not bound, or its volume's node "
                         "affinity excludes every node.");
        step(c, "Check the pod's PVCs: kubectl get pvc -n %s", ns(c));
    } else {
        put(c, &c->root, "The scheduler found no node that satisfies the pod's constraints.");
        c->confidence = 0.5;
    }
    put(c, &c->root, " Scheduler: %.1000s", msg ? msg : "(no message)");
    step(c, "See why each node was rejected: kubectl describe pod -n %s (Events)", ns(c));
    c->severity = "error";
    quote_facts(c, keys);
}

static void rule_unhealthy(rule_ctx *c)
{
    static const char *const keys[] = {"container", "probe", "probe_output", "count", NULL};
    const char *probe = fs(c, "probe") ? fs(c, "probe") : "health";
    const char *out = fs(c, "probe_output");
    long long count = 0;
    char who[600];

    container_phrase(c, who, sizeof(who));
    put(c, &c->summary, "the %s probe of %s is failing", probe, who);
    if (fi(c, "count", &count))
        put(c, &c->summary, " (%lld failures)", count);
    if (out)
        put(c, &c->summary, ": %.200s", out);
    if (strcmp(probe, "liveness") == 0)
        put(c, &c->root, "The kubelet restarts the container each time its liveness probe "
                         "fails. ");
    else if (strcmp(probe, "readiness") == 0)
        put(c, &c->root, "The pod is taken out of its Service's endpoints while its readiness "
                         "probe fails. ");
    else if (strcmp(probe, "startup") == 0)
        put(c, &c->root, "The container never completes its startup probe and is restarted. ");
    c->confidence = 0.7;
    if (has(out, "connection refused")) {
        put(c, &c->root, "Nothing listens on the probed port: the application is not up yet or "
                         "the probe targets the wrong port.");
        step(c, "Check that the probe's port matches the port the application listens on");
        step(c, "Give slow starters a startupProbe or a larger initialDelaySeconds");
    } else if (has(out, "timeout") || has(out, "deadline exceeded")) {
        put(c, &c->root, "The application answers the probe too slowly (probe timeout).");
        step(c, "Raise the probe's timeoutSeconds, or find what makes the endpoint slow");
    } else if (has(out, "statuscode")) {
        put(c, &c->root, "The health endpoint answers with an error status: the application "
                         "reports itself unhealthy (often a dependency it checks is down).");
        step(c, "Query the health endpoint from inside the pod and read the application logs");
    } else {
        put(c, &c->root, "The probe keeps failing.");
        c->confidence = 0.5;
    }
    step(c, "Inspect the probe: kubectl describe pod -n %s", ns(c));
    c->severity = strcmp(probe, "readiness") == 0 ? "warning" : "error";
    quote_facts(c, keys);
}

static void rule_mount(rule_ctx *c)
{
    static const char *const keys[] = {"volume", "reason", "message", NULL};
    const char *volume = fs(c, "volume"), *msg = fs(c, "message"), *reason = fs(c, "reason");

    put(c, &c->summary, "volume %s of %s cannot be %s", volume ? volume : "(unknown)",
        c->object, has(reason, "Attach") ? "attached" : "mounted");
    if (msg)
        put(c, &c->summary, ": %.200s", msg);
    c->confidence = 0.75;
    if (has(msg, "not found")) {
        put(c, &c->root, "The volume's source (Secret, ConfigMap or claim) does not exist in "
                         "namespace %s.", ns(c));
        step(c, "Create the missing object or fix its name in the pod's volumes");
    } else if (has(msg, "Multi-Attach")) {
        put(c, &c->root, "The ReadWriteOnce volume is still attached to another node.");
        step(c, "Wait for or force the detachment from the old node, or use a strategy that "
                "stops the old pod first (Recreate)");
    } else if (has(msg, "timed out") || has(msg, "timeout")) {
        put(c, &c->root, "Attaching or mounting the volume timed out (storage backend or CSI "
                         "driver problem).");
        step(c, "Check the CSI driver's pods and the storage backend");
    } else {
        put(c, &c->root, "The kubelet could not %s the volume.",
            has(reason, "Attach") ? "attach" : "mount");
        c->confidence = 0.5;
    }
    if (msg)
        put(c, &c->root, " The kubelet reported: %.1000s", msg);
    step(c, "See the mount events: kubectl describe pod -n %s", ns(c));
    c->severity = "error";
    quote_facts(c, keys);
}

static void rule_progress(rule_ctx *c)
{
    static const char *const keys[] = {"message", "replicas", "ready_replicas", "revision", NULL};
    long long replicas = 0, ready = 0;
    int counts = fi(c, "replicas", &replicas) && fi(c, "ready_replicas", &ready);
    char tmp[32];
    const char *rev = fv(c, "revision", tmp, sizeof(tmp)), *msg = fs(c, "message");

    put(c, &c->summary, "Deployment %s did not finish its rollout%s%s in time", c->object,
        rev ? " of revision " : "", rev ? rev : "");
    if (counts)
        put(c, &c->summary, ": %lld/%lld replicas ready", ready, replicas);
    put(c, &c->root, "The new pods did not become available within progressDeadlineSeconds, so "
                     "the Deployment controller marked the rollout as failed "
                     "(ProgressDeadlineExceeded).");
    if (msg)
        put(c, &c->root, " Controller: %.1000s", msg);
    put(c, &c->root, " The pods' own failures (crash, image pull, scheduling) are the cause.");
    step(c, "Find why the new pods are not ready: kubectl get pods -n %s and describe them",
         ns(c));
    step(c, "Roll back if needed: kubectl rollout undo -n %s deployment/%s", ns(c),
         c->inc->name);
    c->severity = "error";
    c->confidence = 0.6;
    quote_facts(c, keys);
}

static void rule_job(rule_ctx *c, int deadline)
{
    static const char *const keys[] = {"message", "failed", "backoff_limit",
                                       "active_deadline_seconds", NULL};
    long long failed = 0, limit = 0, secs = 0;
    const char *msg = fs(c, "message");

    if (deadline) {
        put(c, &c->summary, "Job %s exceeded its deadline", c->object);
        if (fi(c, "active_deadline_seconds", &secs))
            put(c, &c->summary, " of %lld s (activeDeadlineSeconds)", secs);
        put(c, &c->root, "The Job ran longer than activeDeadlineSeconds and Kubernetes "
                         "terminated its pods (DeadlineExceeded).");
        step(c, "Find out why the job is slow (logs, the resources it waits on), or raise "
                "activeDeadlineSeconds");
    } else {
        put(c, &c->summary, "Job %s failed", c->object);
        if (fi(c, "failed", &failed))
            put(c, &c->summary, ": %lld pod(s) failed", failed);
        if (fi(c, "backoff_limit", &limit))
            put(c, &c->summary, ", reaching its backoffLimit of %lld", limit);
        put(c, &c->root, "Every retry of the Job's pod failed until the backoffLimit was "
                         "reached (BackoffLimitExceeded); the pods' exit is the cause.");
        step(c, "Read the logs of the failed pods: kubectl logs -n %s job/%s", ns(c),
             c->inc->name);
    }
    if (msg)
        put(c, &c->root, " Controller: %.1000s", msg);
    step(c, "Rerun the Job once fixed (delete and recreate it, or let its CronJob run again)");
    c->severity = "error";
    c->confidence = 0.6;
    quote_facts(c, keys);
}

static void rule_node(rule_ctx *c)
{
    static const char *const keys[] = {"node", "reason", "message", "since", NULL};
    const char *node = fs(c, "node") ? fs(c, "node") : c->inc->name;
    const char *reason = fs(c, "reason"), *msg = fs(c, "message"), *since = fs(c, "since");

    put(c, &c->summary, "node %s is NotReady", node ? node : "(unknown)");
    if (since)
        put(c, &c->summary, " since %s", since);
    if (reason)
        put(c, &c->summary, " (%s)", reason);
    c->confidence = 0.7;
    if (has(reason, "NodeStatusUnknown") || has(msg, "stopped posting")) {
        put(c, &c->root, "The node's kubelet stopped reporting to the control plane: the "
                         "machine is down, unreachable over the network, or its kubelet "
                         "crashed.");
        step(c, "Check that the machine is up and reachable; then systemctl status kubelet on "
                "it");
    } else if (has(msg, "runtime") || has(msg, "PLEG")) {
        put(c, &c->root, "The container runtime on the node is not healthy.");
        step(c, "Check the container runtime (containerd/CRI-O) on the node and restart it");
    } else if (has(msg, "network plugin") || has(msg, "cni")) {
        put(c, &c->root, "The node's network (CNI) plugin is not ready.");
        step(c, "Check the CNI daemonset pods on the node");
    } else {
        put(c, &c->root, "The kubelet reports the node as not ready.");
        c->confidence = 0.5;
    }
    if (msg)
        put(c, &c->root, " Condition message: %.1000s", msg);
    step(c, "Cordon and drain the node if it does not recover: kubectl drain %s "
            "--ignore-daemonsets", node ? node : "NODE");
    c->severity = "critical";
    quote_facts(c, keys);
}

static void rule_pvc(rule_ctx *c)
{
    static const char *const keys[] = {"pvc", "storage_class", "message", NULL};
    const char *pvc = fs(c, "pvc") ? fs(c, "pvc") : c->inc->name;
    const char *sc = fs(c, "storage_class"), *msg = fs(c, "message");

    put(c, &c->summary, "PVC %s/%s stays Pending: provisioning failed", ns(c), pvc ? pvc : "");
    if (sc)
        put(c, &c->summary, " (storage class %s)", sc);
    c->confidence = 0.7;
    if (has(msg, "not found")) {
        put(c, &c->root, "The storage class %s does not exist.", sc ? sc : "");
        step(c, "Use an existing storage class (kubectl get storageclass)");
    } else if (has(msg, "quota") || has(msg, "exceeded")) {
        put(c, &c->root, "The storage backend refused the volume: a quota or limit is reached.");
        step(c, "Raise the storage quota or free volumes");
    } else {
        put(c, &c->root, "The volume provisioner of %s could not create the volume.",
            sc ? sc : "the storage class");
        c->confidence = 0.5;
    }
    if (msg)
        put(c, &c->root, " Provisioner: %.1000s", msg);
    step(c, "Check the provisioner's logs and the claim: kubectl describe pvc -n %s %s", ns(c),
         pvc ? pvc : "");
    c->severity = "error";
    quote_facts(c, keys);
}

static void rule_argo(rule_ctx *c, int degraded)
{
    static const char *const keys[] = {"app", "sync_status", "health_status", "message",
                                       "repo_url", "path", "revision", NULL};
    const char *app = fs(c, "app") ? fs(c, "app") : c->inc->name, *msg = fs(c, "message");
    const char *repo = fs(c, "repo_url"), *path = fs(c, "path"), *rev = fs(c, "revision");

    if (degraded)
        put(c, &c->summary, "Argo CD application %s is Degraded (health %s, sync %s)", app,
            fs(c, "health_status") ? fs(c, "health_status") : "Degraded",
            fs(c, "sync_status") ? fs(c, "sync_status") : "unknown");
    else
        put(c, &c->summary, "Argo CD application %s failed to sync%s%s", app,
            rev ? " revision " : "", rev ? rev : "");
    if (msg)
        put(c, &c->summary, ": %.200s", msg);
    if (degraded)
        put(c, &c->root, "Resources of the application are unhealthy after the sync; the "
                         "failing workload's own incident holds the cause.");
    else
        put(c, &c->root, "Argo CD could not apply the manifests%s%s%s%s: they are invalid, "
                         "rejected by the API server, or could not be rendered.",
            repo ? " from " : "", repo ? repo : "", path ? " path " : "", path ? path : "");
    if (msg)
        put(c, &c->root, " Argo CD reported: %.1000s", msg);
    step(c, "Inspect the application: argocd app get %s (or the Application's "
            "status.operationState)", app);
    step(c, "Fix the manifests at %s%s%s and let Argo CD sync again", repo ? repo : "the repo",
         path ? " " : "", path ? path : "");
    c->severity = "error";
    c->confidence = msg ? 0.6 : 0.4;
    quote_facts(c, keys);
}

static void rule_flux(rule_ctx *c)
{
    static const char *const keys[] = {"reason", "message", "revision", "source", NULL};
    const char *reason = fs(c, "reason"), *msg = fs(c, "message"), *rev = fs(c, "revision");

    put(c, &c->summary, "Flux %s %s is not Ready (%s)", c->inc->kind ? c->inc->kind : "object",
        c->object, reason ? reason : "Ready=False");
    if (msg)
        put(c, &c->summary, ": %.200s", msg);
    c->confidence = 0.6;
    if (has(reason, "ArtifactFailed") || has(reason, "BuildFailed"))
        put(c, &c->root, "Flux could not fetch or build the source%s%s: the kustomization "
                         "does not build.", rev ? " at revision " : "", rev ? rev : "");
    else if (has(reason, "HealthCheckFailed"))
        put(c, &c->root, "The applied workloads did not become healthy in time.");
    else if (has(reason, "InstallFailed") || has(reason, "UpgradeFailed") ||
             has(reason, "TestFailed") || has(reason, "RetriesExceeded"))
        put(c, &c->root, "The Helm release could not be installed or upgraded (%s).", reason);
    else {
        put(c, &c->root, "Flux reports the object as not ready.");
        c->confidence = 0.4;
    }
    if (msg)
        put(c, &c->root, " Flux reported: %.1000s", msg);
    step(c, "Inspect it: flux get %s -n %s %s",
         has(c->inc->kind, "HelmRelease") ? "helmreleases" : "kustomizations", ns(c),
         c->inc->name);
    step(c, "Fix the source at the failing revision and reconcile: flux reconcile ... "
            "--with-source");
    c->severity = "error";
    quote_facts(c, keys);
}

/* ------------------------------------------------------------ terraform */

static const cJSON *pick_diagnostic(const cJSON *diags)
{
    const cJSON *d, *first_error = NULL;

    cJSON_ArrayForEach(d, diags)
    {
        const cJSON *sev = cJSON_GetObjectItemCaseSensitive(d, "severity");
        const cJSON *detail = cJSON_GetObjectItemCaseSensitive(d, "detail");

        if (cJSON_IsString(sev) && strcmp(sev->valuestring, "error") != 0)
            continue;
        if (first_error == NULL)
            first_error = d;
        if (cJSON_IsString(detail) && detail->valuestring[0])
            return d;
    }
    return first_error ? first_error : cJSON_GetArrayItem(diags, 0);
}

static const char *dstr(const cJSON *d, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, name);

    return cJSON_IsString(v) && v->valuestring && v->valuestring[0] ? v->valuestring : NULL;
}

static void rule_terraform(rule_ctx *c)
{
    static const char *const keys[] = {"operation", "workspace", "address", "run_id",
                                       "run_url", NULL};
    const cJSON *d = pick_diagnostic(cJSON_GetObjectItemCaseSensitive(c->facts, "diagnostics"));
    const char *op = fs(c, "operation") ? fs(c, "operation") : "run";
    const char *ws = fs(c, "workspace") ? fs(c, "workspace") : ns(c);
    const char *summary = dstr(d, "summary"), *detail = dstr(d, "detail");
    const char *file = dstr(d, "filename");
    const char *address = dstr(d, "address") ? dstr(d, "address") : fs(c, "address");
    const cJSON *line = cJSON_GetObjectItemCaseSensitive(d, "start_line");
    const cJSON *prov = cJSON_GetObjectItemCaseSensitive(c->facts, "provisioner_output");

    if (strcmp(c->inc->failure_class, "TerraformRunErrored") == 0 && summary == NULL) {
        put(c, &c->summary, "HCP Terraform run %s in workspace %s errored",
            fs(c, "run_id") ? fs(c, "run_id") : "", ws);
        put(c, &c->root, "The run errored; the notification carries no log. Open %s for the "
                         "diagnostics.", fs(c, "run_url") ? fs(c, "run_url") : "the run");
        step(c, "Open the run in HCP Terraform and read its error");
        c->severity = "error";
        c->confidence = 0.3;
        quote_facts(c, keys);
        return;
    }
    put(c, &c->summary, "terraform %s failed in workspace %s: %s", op, ws,
        summary ? summary : (c->inc->title ? c->inc->title : "error"));
    if (address)
        put(c, &c->summary, " (%s)", address);
    else if (file)
        put(c, &c->summary, " (%s%s%.0f)", file, cJSON_IsNumber(line) ? ":" : "",
            cJSON_IsNumber(line) ? line->valuedouble : 0.0);
    c->confidence = 0.7;
    if (has(summary, "provisioner")) {
        put(c, &c->root, "The provisioner of %s failed, so the apply stopped.",
            address ? address : "the resource");
        step(c, "Fix the command the provisioner runs (its output is in the evidence), then "
                "apply again; the resource is tainted and will be recreated");
    } else if (has(summary, "Invalid value for variable")) {
        put(c, &c->root, "A variable's value fails its validation rule.");
        step(c, "Pass a value that satisfies the validation rule (tfvars, -var or the "
                "workspace variables)");
    } else if (has(summary, "undeclared input variable")) {
        put(c, &c->root, "The configuration references an input variable that is not "
                         "declared.");
        step(c, "Declare the variable with a variable block, or fix the reference's name");
    } else if (has(summary, "provider packages") || has(summary, "install provider") ||
               has(summary, "dependency lock file")) {
        put(c, &c->root, "Terraform could not install the providers: the registry is "
                         "unreachable or the lock file does not match the configuration.");
        step(c, "Check network access to the provider registry (or configure a mirror), then "
                "terraform init -upgrade to refresh the lock file");
        c->confidence = 0.8;
    } else if (has(summary, "precondition") || has(summary, "postcondition")) {
        put(c, &c->root, "A custom condition of %s is not met.",
            address ? address : "a resource");
        step(c, "Change the inputs so the condition holds (its error message says how)");
        c->confidence = 0.85;
    } else if (has(summary, "Invalid expression") || has(summary, "Unsupported argument") ||
               has(summary, "Argument or block definition required") ||
               has(summary, "Invalid block") || has(summary, "syntax")) {
        put(c, &c->root, "The configuration has a syntax or structure error%s%s.",
            file ? " in " : "", file ? file : "");
        step(c, "Fix the HCL at the position shown, then run terraform validate");
        c->confidence = 0.8;
    } else {
        put(c, &c->root, "Terraform reported an error during %s.", op);
        c->confidence = 0.5;
        step(c, "Read the full diagnostic and fix the configuration or the provider's input");
    }
    if (detail)
        put(c, &c->root, " Terraform: %.1500s", detail);
    if (file)
        quote(c, "%s:%.0f: %s", file, cJSON_IsNumber(line) ? line->valuedouble : 0.0,
              summary ? summary : "");
    if (dstr(d, "snippet"))
        quote(c, "%.500s", dstr(d, "snippet"));
    if (cJSON_IsArray(prov) && cJSON_GetArraySize(prov) > 0) {
        const cJSON *last = cJSON_GetArrayItem(prov, cJSON_GetArraySize(prov) - 1);

        if (cJSON_IsString(last))
            quote(c, "provisioner output: %.500s", last->valuestring);
    } else if (cJSON_IsString(prov) && prov->valuestring[0]) {
        quote(c, "provisioner output: %.500s", prov->valuestring);
    }
    step(c, "Rerun terraform %s after the fix and confirm it succeeds", op);
    c->severity = "error";
    quote_facts(c, keys);
}

static void rule_generic(rule_ctx *c)
{
    const char *msg = c->inc->message;

    put(c, &c->summary, "%s on %s %s", c->inc->failure_class ? c->inc->failure_class : "failure",
        c->inc->kind ? c->inc->kind : "object", c->object);
    if (msg)
        put(c, &c->summary, ": %.200s", msg);
    put(c, &c->root, "No rule knows this failure class; the latest signal says: %.1000s",
        msg ? msg : "(no message)");
    step(c, "Inspect the object and its recent events");
    if (msg)
        quote(c, "%.1500s", msg);
    c->severity = "warning";
    c->confidence = 0.2;
}

static const struct {
    const char *name;
    void (*fn)(rule_ctx *c);
} rules[] = {
    {"CrashLoopBackOff", rule_crashloop},
    {"OOMKilled", rule_oomkilled},
    {"ImagePullBackOff", rule_image},
    {"ErrImagePull", rule_image},
    {"InvalidImageName", rule_image},
    {"CreateContainerConfigError", rule_config_error},
    {"FailedScheduling", rule_scheduling},
    {"Unhealthy", rule_unhealthy},
    {"FailedMount", rule_mount},
    {"FailedAttachVolume", rule_mount},
    {"ProgressDeadlineExceeded", rule_progress},
    {"NodeNotReady", rule_node},
    {"ProvisioningFailed", rule_pvc},
    {"FluxNotReady", rule_flux},
    {"TerraformInitFailed", rule_terraform},
    {"TerraformPlanFailed", rule_terraform},
    {"TerraformApplyFailed", rule_terraform},
    {"TerraformValidateFailed", rule_terraform},
    {"TerraformRunErrored", rule_terraform},
};

static void rule_backoff(rule_ctx *c) { rule_job(c, 0); }
static void rule_deadline(rule_ctx *c) { rule_job(c, 1); }
static void rule_argo_sync(rule_ctx *c) { rule_argo(c, 0); }
static void rule_argo_degraded(rule_ctx *c) { rule_argo(c, 1); }

static void (*find_rule(const char *cls))(rule_ctx *)
{
    if (cls == NULL)
        return rule_generic;
    if (strcmp(cls, "BackoffLimitExceeded") == 0)
        return rule_backoff;
    if (strcmp(cls, "DeadlineExceeded") == 0)
        return rule_deadline;
    if (strcmp(cls, "ArgoSyncFailed") == 0)
        return rule_argo_sync;
    if (strcmp(cls, "ArgoDegraded") == 0)
        return rule_argo_degraded;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        if (strcmp(rules[i].name, cls) == 0)
            return rules[i].fn;
    return rule_generic;
}

int tr_rules_analyze(const tr_store_incident *incident, tr_llm_reply **out, tr_error *err)
{
    rule_ctx c;
    cJSON *facts = NULL;
    tr_llm_reply *r = NULL;

    *out = NULL;
    memset(&c, 0, sizeof(c));
    c.inc = incident;
    tr_buf_init(&c.summary, TEXT_MAX);
    tr_buf_init(&c.root, TEXT_MAX);
    tr_buf_init(&c.steps, 64 * 1024);
    tr_buf_init(&c.evidence, 64 * 1024);
    if (incident->facts_json)
        facts = cJSON_Parse(incident->facts_json);
    c.facts = cJSON_IsObject(facts) ? facts : NULL;
    if (incident->namespace && incident->namespace[0])
        snprintf(c.object, sizeof(c.object), "%s/%s", incident->namespace,
                 incident->name ? incident->name : "");
    else
        snprintf(c.object, sizeof(c.object), "%s", incident->name ? incident->name : "");
    if (tr_buf_putc(&c.steps, '[') != TR_OK || tr_buf_putc(&c.evidence, '[') != TR_OK)
        c.rc = TR_ENOMEM;
    if (c.rc == TR_OK)
        find_rule(incident->failure_class)(&c);
    /* Sentences are capped; a cut one is still better than no analysis. */
    if (c.rc == TR_ETOOBIG)
        c.rc = TR_OK;
    if (c.rc == TR_OK && (tr_buf_putc(&c.steps, ']') != TR_OK ||
                          tr_buf_putc(&c.evidence, ']') != TR_OK))
        c.rc = TR_ENOMEM;
    if (c.rc == TR_OK && c.summary.len == 0)
        c.rc = tr_buf_puts(&c.summary, "failure");
    if (c.rc == TR_OK && c.root.len == 0)
        c.rc = tr_buf_puts(&c.root, "unknown");
    if (c.rc == TR_OK && (r = tr_calloc(1, sizeof(*r))) == NULL)
        c.rc = TR_ENOMEM;
    if (c.rc == TR_OK) {
        r->summary = tr_buf_detach(&c.summary);
        r->root_cause = tr_buf_detach(&c.root);
        r->remediation_json = tr_buf_detach(&c.steps);
        r->evidence_json = tr_buf_detach(&c.evidence);
        r->remediation_count = c.step_count;
        r->evidence_count = c.evidence_count;
        r->severity = tr_strdup(c.severity ? c.severity : "warning");
        r->patch = tr_strdup("");
        r->confidence = c.confidence;
        if (!r->summary || !r->root_cause || !r->remediation_json || !r->evidence_json ||
            !r->severity || !r->patch)
            c.rc = TR_ENOMEM;
    }
    tr_buf_dispose(&c.summary);
    tr_buf_dispose(&c.root);
    tr_buf_dispose(&c.steps);
    tr_buf_dispose(&c.evidence);
    cJSON_Delete(facts);
    if (c.rc != TR_OK) {
        tr_llm_reply_free(r);
        return tr_error_set(err, c.rc, "rules: out of memory");
    }
    *out = r;
    return TR_OK;
}
