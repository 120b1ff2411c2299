/*
 * rules_kube.c - the Kubernetes rules: one function per failure class the
 * kube watcher records (docs/incident-facts.md), found by rules_kube_find.
 * Shared helpers and the Terraform rules are in rules.c.
 */
#include "rules_internal.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ kubernetes */

static void rule_crashloop(rule_ctx *c)
{
    static const char *const keys[] = {"container", "restart_count", "exit_code", "reason",
                                       "message", "image", NULL};
    char who[600];
    long long restarts = 0, code = 0;
    int has_code = rules_fi(c, "exit_code", &code);
    const char *reason = rules_fs(c, "reason"), *msg = rules_fs(c, "message");

    rules_container_phrase(c, who, sizeof(who));
    rules_put(c, &c->summary, "%s is in CrashLoopBackOff", who);
    if (rules_fi(c, "restart_count", &restarts))
        rules_put(c, &c->summary, ": restarted %lld times", restarts);
    if (has_code)
        rules_put(c, &c->summary, "; last exit code %lld%s%s%s", code, reason ? " (" : "",
                  reason ? reason : "", reason ? ")" : "");
    rules_put(c, &c->root,
              "The container process exits soon after it starts and the kubelet backs "
              "off restarting it.");
    if (has_code)
        rules_put(c, &c->root, " Last termination: %s, exit code %lld: %s.",
                  reason ? reason : "Error", code, rules_exit_meaning(code));
    if (msg)
        rules_put(c, &c->root, " Termination message: %.1000s", msg);
    rules_step(c, "Read the logs of the crashed run: kubectl logs -n %s %s --previous%s%s",
               rules_ns(c), rules_fs(c, "object_name") ? rules_fs(c, "object_name") : c->inc->name,
               rules_fs(c, "container") ? " -c " : "",
               rules_fs(c, "container") ? rules_fs(c, "container") : "");
    if (has_code && (code == 126 || code == 127 || code == 2))
        rules_step(c, "Check the container's command and args against the image %s",
                   rules_fs(c, "image") ? rules_fs(c, "image") : "");
    else
        rules_step(c, "Check the configuration the application reads at startup (env, ConfigMaps, "
                      "Secrets, the services it connects to)");
    rules_step(c,
               "Roll back to the last working revision if a recent change caused it: "
               "kubectl rollout undo -n %s %s/%s",
               rules_ns(c), c->inc->kind ? c->inc->kind : "deployment", c->inc->name);
    c->severity = "error";
    c->confidence = has_code ? 0.6 : 0.4;
    rules_quote_facts(c, keys);
}

static void rule_oomkilled(rule_ctx *c)
{
    static const char *const keys[] = {"container", "restart_count", "exit_code",
                                       "memory_limit", "memory_request", "image", NULL};
    char who[600], tmp[32];
    long long restarts = 0, code = 137;
    const char *limit = rules_fv(c, "memory_limit", tmp, sizeof(tmp));
    const char *request = rules_fs(c, "memory_request");

    (void)rules_fi(c, "exit_code", &code);
    rules_container_phrase(c, who, sizeof(who));
    rules_put(c, &c->summary, "%s was OOMKilled (exit %lld)", who, code);
    if (rules_fi(c, "restart_count", &restarts) && restarts > 0)
        rules_put(c, &c->summary, " %lld times", restarts);
    if (limit)
        rules_put(c, &c->summary, "; its memory limit is %s", limit);
    else
        rules_put(c, &c->summary, "; it has no memory limit");
    if (limit)
        rules_put(c, &c->root,
                  "The container used more memory than its limit of %s%s%s%s, so the "
                  "kernel's OOM killer ended it (SIGKILL, exit %lld).",
                  limit, request ? " (request " : "", request ? request : "", request ? ")" : "",
                  code);
    else
        rules_put(c, &c->root,
                  "The container has no memory limit and was killed by the OOM killer "
                  "(exit %lld): the node ran out of memory.",
                  code);
    rules_step(c,
               "Raise resources.limits.memory of container %s above its peak usage%s%s (check "
               "kubectl top pod -n %s)",
               rules_fs(c, "container") ? rules_fs(c, "container") : "",
               limit ? ", currently " : "", limit ? limit : "", rules_ns(c));
    rules_step(c, "Look for a memory leak or an unbounded cache if usage grows until the kill");
    rules_step(c, "Cap the runtime's heap below the limit (JVM -Xmx/MaxRAMPercentage, GOMEMLIMIT, "
                  "node --max-old-space-size)");
    c->severity = "error";
    c->confidence = limit ? 0.9 : 0.7;
    rules_quote_facts(c, keys);
}

static void rule_image(rule_ctx *c)
{
    static const char *const keys[] = {"container", "image", "reason", "message", NULL};
    char who[600];
    const char *image = rules_fs(c, "image"), *reason = rules_fs(c, "reason"),
               *msg = rules_fs(c, "message");

    rules_container_phrase(c, who, sizeof(who));
    rules_put(c, &c->summary, "%s cannot pull image %s (%s)", who, image ? image : "(unknown)",
              reason ? reason : "ImagePullBackOff");
    c->confidence = 0.8;
    if (rules_has(reason, "InvalidImageName") || rules_has(msg, "invalid reference format")) {
        rules_put(c, &c->root, "The image reference %s is not a valid image name.",
                  image ? image : "");
        rules_step(c, "Fix the image field: registry/repository:tag or @sha256:digest, lowercase");
    } else if (rules_has(msg, "not found") || rules_has(msg, "manifest unknown") ||
               rules_has(msg, "does not exist")) {
        rules_put(c, &c->root,
                  "The image %s does not exist in the registry: the tag or repository "
                  "name is wrong, or the image was never pushed.",
                  image ? image : "");
        rules_step(c, "Check that the tag exists (e.g. docker manifest inspect %s)",
                   image ? image : "");
        rules_step(c, "Fix the tag in the workload's manifest, or push the missing image");
    } else if (rules_has(msg, "unauthorized") || rules_has(msg, "denied") ||
               rules_has(msg, "authentication") || rules_has(msg, "403") || rules_has(msg, "401")) {
        rules_put(c, &c->root,
                  "The registry refused the pull of %s: the node has no valid "
                  "credentials for it.",
                  image ? image : "");
        rules_step(c,
                   "Add or fix imagePullSecrets of the pod (or its service account) in namespace "
                   "%s",
                   rules_ns(c));
    } else if (rules_has(msg, "timeout") || rules_has(msg, "no such host") ||
               rules_has(msg, "dial tcp") || rules_has(msg, "connection refused")) {
        rules_put(c, &c->root,
                  "The node cannot reach the registry serving %s (network, DNS or "
                  "proxy).",
                  image ? image : "");
        rules_step(c, "Check the node's network access and DNS resolution for the registry");
    } else {
        rules_put(c, &c->root, "The kubelet could not pull %s.", image ? image : "the image");
        c->confidence = 0.5;
        rules_step(c, "Read the pull error: kubectl describe pod -n %s", rules_ns(c));
    }
    if (msg)
        rules_put(c, &c->root, " The kubelet reported: %.1000s", msg);
    c->severity = "error";
    rules_quote_facts(c, keys);
}

static void rule_config_error(rule_ctx *c)
{
    static const char *const keys[] = {"container", "missing_kind", "missing_name",
                                       "missing_key", "message", NULL};
    char who[600];
    const char *kind = rules_fs(c, "missing_kind"), *name = rules_fs(c, "missing_name");
    const char *key = rules_fs(c, "missing_key"), *msg = rules_fs(c, "message");

    rules_container_phrase(c, who, sizeof(who));
    if (name && key)
        rules_put(c, &c->summary, "%s cannot start: key %s of %s %s is missing", who, key,
                  kind ? kind : "Secret/ConfigMap", name);
    else if (name)
        rules_put(c, &c->summary, "%s cannot start: %s %s is missing", who,
                  kind ? kind : "Secret/ConfigMap", name);
    else
        rules_put(c, &c->summary, "%s cannot start: CreateContainerConfigError", who);
    if (name) {
        rules_put(c, &c->root, "The container's env or envFrom references %s%s%s %s/%s, which ",
                  key ? "key " : "", key ? key : "", key ? " of" : "", rules_ns(c), name);
        rules_put(c, &c->root, "%s.", key ? "does not hold that key" : "does not exist");
        c->confidence = 0.9;
    } else {
        rules_put(c, &c->root, "The kubelet could not build the container's configuration.");
        c->confidence = 0.5;
    }
    if (msg)
        rules_put(c, &c->root, " The kubelet reported: %.1000s", msg);
    if (name)
        rules_step(c, "Create the missing %s or key: kubectl get %s %s -n %s -o yaml",
                   kind ? kind : "object",
                   kind && strcasecmp(kind, "ConfigMap") == 0 ? "configmap" : "secret", name,
                   rules_ns(c));
    rules_step(c, "Or fix the reference in the workload's manifest (name and key), or mark it "
                  "optional: true if the application can run without it");
    c->severity = "error";
    rules_quote_facts(c, keys);
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
    const char *msg = rules_fs(c, "scheduler_message") ? rules_fs(c, "scheduler_message")
                                                       : rules_fs(c, "message");
    char req[256];

    requests_text(c, req, sizeof(req));
    rules_put(c, &c->summary, "pods of %s cannot be scheduled: %.300s", c->object,
              msg ? msg : "no node fits");
    c->confidence = 0.8;
    if (rules_has(msg, "Insufficient cpu") || rules_has(msg, "Insufficient memory")) {
        rules_put(c, &c->root, "No node has enough free %s for the pod's requests%s%s%s.",
                  rules_has(msg, "Insufficient cpu")
                      ? (rules_has(msg, "Insufficient memory") ? "cpu and memory" : "cpu")
                      : "memory",
                  req[0] ? " (" : "", req, req[0] ? ")" : "");
        rules_step(c, "Lower the pod's resource requests if they are larger than needed");
        rules_step(c, "Or add node capacity (scale the node pool / enable the cluster autoscaler)");
    } else if (rules_has(msg, "taint")) {
        rules_put(c, &c->root, "The nodes carry taints the pod does not tolerate.");
        rules_step(c, "Add the matching tolerations, or schedule onto untainted nodes");
    } else if (rules_has(msg, "affinity") || rules_has(msg, "selector")) {
        rules_put(c, &c->root, "No node matches the pod's nodeSelector or node affinity.");
        rules_step(c, "Fix the nodeSelector/affinity labels or label a node to match");
    } else if (rules_has(msg, "persistentvolumeclaim") || rules_has(msg, "volume")) {
        rules_put(c, &c->root,
                  "A PersistentVolumeClaim of the pod is not bound, or its volume's node "
                  "affinity excludes every node.");
        rules_step(c, "Check the pod's PVCs: kubectl get pvc -n %s", rules_ns(c));
    } else {
        rules_put(c, &c->root, "The scheduler found no node that satisfies the pod's constraints.");
        c->confidence = 0.5;
    }
    rules_put(c, &c->root, " Scheduler: %.1000s", msg ? msg : "(no message)");
    rules_step(c, "See why each node was rejected: kubectl describe pod -n %s (Events)",
               rules_ns(c));
    c->severity = "error";
    rules_quote_facts(c, keys);
}

static void rule_unhealthy(rule_ctx *c)
{
    static const char *const keys[] = {"container", "probe", "probe_output", "count", NULL};
    const char *probe = rules_fs(c, "probe") ? rules_fs(c, "probe") : "health";
    const char *out = rules_fs(c, "probe_output");
    long long count = 0;
    char who[600];

    rules_container_phrase(c, who, sizeof(who));
    rules_put(c, &c->summary, "the %s probe of %s is failing", probe, who);
    if (rules_fi(c, "count", &count))
        rules_put(c, &c->summary, " (%lld failures)", count);
    if (out)
        rules_put(c, &c->summary, ": %.200s", out);
    if (strcmp(probe, "liveness") == 0)
        rules_put(c, &c->root,
                  "The kubelet restarts the container each time its liveness probe "
                  "fails. ");
    else if (strcmp(probe, "readiness") == 0)
        rules_put(c, &c->root,
                  "The pod is taken out of its Service's endpoints while its readiness "
                  "probe fails. ");
    else if (strcmp(probe, "startup") == 0)
        rules_put(c, &c->root,
                  "The container never completes its startup probe and is restarted. ");
    c->confidence = 0.7;
    if (rules_has(out, "connection refused")) {
        rules_put(c, &c->root,
                  "Nothing listens on the probed port: the application is not up yet or "
                  "the probe targets the wrong port.");
        rules_step(c, "Check that the probe's port matches the port the application listens on");
        rules_step(c, "Give slow starters a startupProbe or a larger initialDelaySeconds");
    } else if (rules_has(out, "timeout") || rules_has(out, "deadline exceeded")) {
        rules_put(c, &c->root, "The application answers the probe too slowly (probe timeout).");
        rules_step(c, "Raise the probe's timeoutSeconds, or find what makes the endpoint slow");
    } else if (rules_has(out, "statuscode")) {
        rules_put(c, &c->root,
                  "The health endpoint answers with an error status: the application "
                  "reports itself unhealthy (often a dependency it checks is down).");
        rules_step(c,
                   "Query the health endpoint from inside the pod and read the application logs");
    } else {
        rules_put(c, &c->root, "The probe keeps failing.");
        c->confidence = 0.5;
    }
    rules_step(c, "Inspect the probe: kubectl describe pod -n %s", rules_ns(c));
    c->severity = strcmp(probe, "readiness") == 0 ? "warning" : "error";
    rules_quote_facts(c, keys);
}

static void rule_mount(rule_ctx *c)
{
    static const char *const keys[] = {"volume", "reason", "message", NULL};
    const char *volume = rules_fs(c, "volume"), *msg = rules_fs(c, "message"),
               *reason = rules_fs(c, "reason");

    rules_put(c, &c->summary, "volume %s of %s cannot be %s", volume ? volume : "(unknown)",
              c->object, rules_has(reason, "Attach") ? "attached" : "mounted");
    if (msg)
        rules_put(c, &c->summary, ": %.200s", msg);
    c->confidence = 0.75;
    if (rules_has(msg, "not found")) {
        rules_put(c, &c->root,
                  "The volume's source (Secret, ConfigMap or claim) does not exist in "
                  "namespace %s.",
                  rules_ns(c));
        rules_step(c, "Create the missing object or fix its name in the pod's volumes");
    } else if (rules_has(msg, "Multi-Attach")) {
        rules_put(c, &c->root, "The ReadWriteOnce volume is still attached to another node.");
        rules_step(c, "Wait for or force the detachment from the old node, or use a strategy that "
                      "stops the old pod first (Recreate)");
    } else if (rules_has(msg, "timed out") || rules_has(msg, "timeout")) {
        rules_put(c, &c->root,
                  "Attaching or mounting the volume timed out (storage backend or CSI "
                  "driver problem).");
        rules_step(c, "Check the CSI driver's pods and the storage backend");
    } else {
        rules_put(c, &c->root, "The kubelet could not %s the volume.",
                  rules_has(reason, "Attach") ? "attach" : "mount");
        c->confidence = 0.5;
    }
    if (msg)
        rules_put(c, &c->root, " The kubelet reported: %.1000s", msg);
    rules_step(c, "See the mount events: kubectl describe pod -n %s", rules_ns(c));
    c->severity = "error";
    rules_quote_facts(c, keys);
}

static void rule_progress(rule_ctx *c)
{
    static const char *const keys[] = {"message", "replicas", "ready_replicas", "revision", NULL};
    long long replicas = 0, ready = 0;
    int counts = rules_fi(c, "replicas", &replicas) && rules_fi(c, "ready_replicas", &ready);
    char tmp[32];
    const char *rev = rules_fv(c, "revision", tmp, sizeof(tmp)), *msg = rules_fs(c, "message");

    rules_put(c, &c->summary, "Deployment %s did not finish its rollout%s%s in time", c->object,
              rev ? " of revision " : "", rev ? rev : "");
    if (counts)
        rules_put(c, &c->summary, ": %lld/%lld replicas ready", ready, replicas);
    rules_put(c, &c->root,
              "The new pods did not become available within progressDeadlineSeconds, so "
              "the Deployment controller marked the rollout as failed "
              "(ProgressDeadlineExceeded).");
    if (msg)
        rules_put(c, &c->root, " Controller: %.1000s", msg);
    rules_put(c, &c->root,
              " The pods' own failures (crash, image pull, scheduling) are the cause.");
    rules_step(c, "Find why the new pods are not ready: kubectl get pods -n %s and describe them",
               rules_ns(c));
    rules_step(c, "Roll back if needed: kubectl rollout undo -n %s deployment/%s", rules_ns(c),
               c->inc->name);
    c->severity = "error";
    c->confidence = 0.6;
    rules_quote_facts(c, keys);
}

static void rule_job(rule_ctx *c, int deadline)
{
    static const char *const keys[] = {"message", "failed", "backoff_limit",
                                       "active_deadline_seconds", NULL};
    long long failed = 0, limit = 0, secs = 0;
    const char *msg = rules_fs(c, "message");

    if (deadline) {
        rules_put(c, &c->summary, "Job %s exceeded its deadline", c->object);
        if (rules_fi(c, "active_deadline_seconds", &secs))
            rules_put(c, &c->summary, " of %lld s (activeDeadlineSeconds)", secs);
        rules_put(c, &c->root,
                  "The Job ran longer than activeDeadlineSeconds and Kubernetes "
                  "terminated its pods (DeadlineExceeded).");
        rules_step(c, "Find out why the job is slow (logs, the resources it waits on), or raise "
                      "activeDeadlineSeconds");
    } else {
        rules_put(c, &c->summary, "Job %s failed", c->object);
        if (rules_fi(c, "failed", &failed))
            rules_put(c, &c->summary, ": %lld pod(s) failed", failed);
        if (rules_fi(c, "backoff_limit", &limit))
            rules_put(c, &c->summary, ", reaching its backoffLimit of %lld", limit);
        rules_put(c, &c->root,
                  "Every retry of the Job's pod failed until the backoffLimit was "
                  "reached (BackoffLimitExceeded); the pods' exit is the cause.");
        rules_step(c, "Read the logs of the failed pods: kubectl logs -n %s job/%s", rules_ns(c),
                   c->inc->name);
    }
    if (msg)
        rules_put(c, &c->root, " Controller: %.1000s", msg);
    rules_step(c,
               "Rerun the Job once fixed (delete and recreate it, or let its CronJob run again)");
    c->severity = "error";
    c->confidence = 0.6;
    rules_quote_facts(c, keys);
}

static void rule_node(rule_ctx *c)
{
    static const char *const keys[] = {"node", "reason", "message", "since", NULL};
    const char *node = rules_fs(c, "node") ? rules_fs(c, "node") : c->inc->name;
    const char *reason = rules_fs(c, "reason"), *msg = rules_fs(c, "message"),
               *since = rules_fs(c, "since");

    rules_put(c, &c->summary, "node %s is NotReady", node ? node : "(unknown)");
    if (since)
        rules_put(c, &c->summary, " since %s", since);
    if (reason)
        rules_put(c, &c->summary, " (%s)", reason);
    c->confidence = 0.7;
    if (rules_has(reason, "NodeStatusUnknown") || rules_has(msg, "stopped posting")) {
        rules_put(c, &c->root,
                  "The node's kubelet stopped reporting to the control plane: the "
                  "machine is down, unreachable over the network, or its kubelet "
                  "crashed.");
        rules_step(c,
                   "Check that the machine is up and reachable; then systemctl status kubelet on "
                   "it");
    } else if (rules_has(msg, "runtime") || rules_has(msg, "PLEG")) {
        rules_put(c, &c->root, "The container runtime on the node is not healthy.");
        rules_step(c, "Check the container runtime (containerd/CRI-O) on the node and restart it");
    } else if (rules_has(msg, "network plugin") || rules_has(msg, "cni")) {
        rules_put(c, &c->root, "The node's network (CNI) plugin is not ready.");
        rules_step(c, "Check the CNI daemonset pods on the node");
    } else {
        rules_put(c, &c->root, "The kubelet reports the node as not ready.");
        c->confidence = 0.5;
    }
    if (msg)
        rules_put(c, &c->root, " Condition message: %.1000s", msg);
    rules_step(c,
               "Cordon and drain the node if it does not recover: kubectl drain %s "
               "--ignore-daemonsets",
               node ? node : "NODE");
    c->severity = "critical";
    rules_quote_facts(c, keys);
}

static void rule_pvc(rule_ctx *c)
{
    static const char *const keys[] = {"pvc", "storage_class", "message", NULL};
    const char *pvc = rules_fs(c, "pvc") ? rules_fs(c, "pvc") : c->inc->name;
    const char *sc = rules_fs(c, "storage_class"), *msg = rules_fs(c, "message");

    rules_put(c, &c->summary, "PVC %s/%s stays Pending: provisioning failed", rules_ns(c),
              pvc ? pvc : "");
    if (sc)
        rules_put(c, &c->summary, " (storage class %s)", sc);
    c->confidence = 0.7;
    if (rules_has(msg, "not found")) {
        rules_put(c, &c->root, "The storage class %s does not exist.", sc ? sc : "");
        rules_step(c, "Use an existing storage class (kubectl get storageclass)");
    } else if (rules_has(msg, "quota") || rules_has(msg, "exceeded")) {
        rules_put(c, &c->root,
                  "The storage backend refused the volume: a quota or limit is reached.");
        rules_step(c, "Raise the storage quota or free volumes");
    } else {
        rules_put(c, &c->root, "The volume provisioner of %s could not create the volume.",
                  sc ? sc : "the storage class");
        c->confidence = 0.5;
    }
    if (msg)
        rules_put(c, &c->root, " Provisioner: %.1000s", msg);
    rules_step(c, "Check the provisioner's logs and the claim: kubectl describe pvc -n %s %s",
               rules_ns(c), pvc ? pvc : "");
    c->severity = "error";
    rules_quote_facts(c, keys);
}

static void rule_argo(rule_ctx *c, int degraded)
{
    static const char *const keys[] = {"app", "sync_status", "health_status", "message",
                                       "repo_url", "path", "revision", NULL};
    const char *app = rules_fs(c, "app") ? rules_fs(c, "app") : c->inc->name,
               *msg = rules_fs(c, "message");
    const char *repo = rules_fs(c, "repo_url"), *path = rules_fs(c, "path"),
               *rev = rules_fs(c, "revision");

    if (degraded)
        rules_put(c, &c->summary, "Argo CD application %s is Degraded (health %s, sync %s)", app,
                  rules_fs(c, "health_status") ? rules_fs(c, "health_status") : "Degraded",
                  rules_fs(c, "sync_status") ? rules_fs(c, "sync_status") : "unknown");
    else
        rules_put(c, &c->summary, "Argo CD application %s failed to sync%s%s", app,
                  rev ? " revision " : "", rev ? rev : "");
    if (msg)
        rules_put(c, &c->summary, ": %.200s", msg);
    if (degraded)
        rules_put(c, &c->root,
                  "Resources of the application are unhealthy after the sync; the "
                  "failing workload's own incident holds the cause.");
    else
        rules_put(c, &c->root,
                  "Argo CD could not apply the manifests%s%s%s%s: they are invalid, "
                  "rejected by the API server, or could not be rendered.",
                  repo ? " from " : "", repo ? repo : "", path ? " path " : "", path ? path : "");
    if (msg)
        rules_put(c, &c->root, " Argo CD reported: %.1000s", msg);
    rules_step(c,
               "Inspect the application: argocd app get %s (or the Application's "
               "status.operationState)",
               app);
    rules_step(c, "Fix the manifests at %s%s%s and let Argo CD sync again",
               repo ? repo : "the repo", path ? " " : "", path ? path : "");
    c->severity = "error";
    c->confidence = msg ? 0.6 : 0.4;
    rules_quote_facts(c, keys);
}

static void rule_flux(rule_ctx *c)
{
    static const char *const keys[] = {"reason", "message", "revision", "source", NULL};
    const char *reason = rules_fs(c, "reason"), *msg = rules_fs(c, "message"),
               *rev = rules_fs(c, "revision");

    rules_put(c, &c->summary, "Flux %s %s is not Ready (%s)",
              c->inc->kind ? c->inc->kind : "object", c->object, reason ? reason : "Ready=False");
    if (msg)
        rules_put(c, &c->summary, ": %.200s", msg);
    c->confidence = 0.6;
    if (rules_has(reason, "ArtifactFailed") || rules_has(reason, "BuildFailed"))
        rules_put(c, &c->root,
                  "Flux could not fetch or build the source%s%s: the kustomization "
                  "does not build.",
                  rev ? " at revision " : "", rev ? rev : "");
    else if (rules_has(reason, "HealthCheckFailed"))
        rules_put(c, &c->root, "The applied workloads did not become healthy in time.");
    else if (rules_has(reason, "InstallFailed") || rules_has(reason, "UpgradeFailed") ||
             rules_has(reason, "TestFailed") || rules_has(reason, "RetriesExceeded"))
        rules_put(c, &c->root, "The Helm release could not be installed or upgraded (%s).", reason);
    else {
        rules_put(c, &c->root, "Flux reports the object as not ready.");
        c->confidence = 0.4;
    }
    if (msg)
        rules_put(c, &c->root, " Flux reported: %.1000s", msg);
    rules_step(c, "Inspect it: flux get %s -n %s %s",
               rules_has(c->inc->kind, "HelmRelease") ? "helmreleases" : "kustomizations",
               rules_ns(c), c->inc->name);
    rules_step(c, "Fix the source at the failing revision and reconcile: flux reconcile ... "
                  "--with-source");
    c->severity = "error";
    rules_quote_facts(c, keys);
}

static void rule_backoff(rule_ctx *c) { rule_job(c, 0); }
static void rule_deadline(rule_ctx *c) { rule_job(c, 1); }
static void rule_argo_sync(rule_ctx *c) { rule_argo(c, 0); }
static void rule_argo_degraded(rule_ctx *c) { rule_argo(c, 1); }

static const struct {
    const char *name;
    rules_fn fn;
} kube_rules[] = {
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
    {"BackoffLimitExceeded", rule_backoff},
    {"DeadlineExceeded", rule_deadline},
    {"ArgoSyncFailed", rule_argo_sync},
    {"ArgoDegraded", rule_argo_degraded},
};

rules_fn rules_kube_find(const char *cls)
{
    for (size_t i = 0; i < sizeof(kube_rules) / sizeof(kube_rules[0]); i++)
        if (strcmp(kube_rules[i].name, cls) == 0)
            return kube_rules[i].fn;
    return NULL;
}
