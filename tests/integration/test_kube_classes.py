"""Every Kubernetes failure class of DESIGN.md, end to end: the real daemon
(TRIAGED_BIN) against the real control plane of ../shared/tools/k8s-local.

Controllers produce what they really produce (the Deployment controller's
ProgressDeadlineExceeded, the Job controller's BackoffLimitExceeded, the PV
controller's ProvisioningFailed); the kubelet's part (pod statuses, kubelet
events, node status) is played through the API as ../shared/tools/README.md
shows. Each test asserts, through the daemon's API, the incident's object,
class and facts, and that its namespace holds exactly the incidents expected.

One cluster for all modules (test_kube_watch.cluster); each test its own
namespace and its own daemon.
"""
import contextlib
import json
import subprocess
import threading
import time
import urllib.error

from harness import BIN
from test_kube_incidents import (create_deployment, ensure_node, kube_daemon, pods_of,
                                 wait_incidents)
from test_kube_watch import cluster

MERGE = "application/merge-patch+json"
_heartbeat = None


def now_ts(offset=0):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


# ---------------------------------------------------------------- the kubelet's part

class NodeHeartbeat:
    """node-a's kubelet heartbeat. Without it the real node lifecycle controller marks
    the node Unknown after 40 s and taints it: the scheduler then refuses it, and a
    NodeNotReady incident nobody asked for appears."""

    def __init__(self, c, node="node-a"):
        self.c = c
        self.node = node
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def beat(self):
        self.c.api("PATCH", "/api/v1/nodes/%s/status" % self.node, {"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady",
             "message": "kubelet is posting ready status",
             "lastHeartbeatTime": now_ts(), "lastTransitionTime": now_ts()}]}}, MERGE)

    def _run(self):
        while True:
            try:
                self.beat()
            except Exception:  # the apiserver may be stopped by a fault test
                pass
            time.sleep(10)


def setup(ns):
    """The shared cluster with a Ready node-a and a fresh namespace ns."""
    global _heartbeat
    c = cluster()
    ensure_node(c)
    if _heartbeat is None:
        _heartbeat = NodeHeartbeat(c)
        _heartbeat.beat()
    c.ensure_namespace(ns)
    return c


def pod_status(c, ns, pod, status):
    c.api("PATCH", "/api/v1/namespaces/%s/pods/%s/status" % (ns, pod), {"status": status}, MERGE)


def waiting(container, reason, message, image, restarts=0, last=None):
    status = {"name": container, "ready": False, "restartCount": restarts, "image": image,
              "imageID": "", "started": False,
              "state": {"waiting": {"reason": reason, "message": message}}}
    if last:
        status["lastState"] = {"terminated": last}
    return status


def terminated(exit_code, reason, ago=30):
    return {"exitCode": exit_code, "reason": reason, "startedAt": now_ts(-ago - 20),
            "finishedAt": now_ts(-ago)}


def post_event(c, ns, obj_kind, obj_name, reason, message, type_="Warning", count=1,
               container=None, component="kubelet", api_version="v1"):
    """An Event as its reporter writes it; returns the Event's name (for bump_event)."""
    involved = {"kind": obj_kind, "namespace": ns, "name": obj_name, "apiVersion": api_version}
    if container:
        involved["fieldPath"] = "spec.containers{%s}" % container
    name = "%s.%x" % (obj_name, int(time.time() * 1e6))
    c.api("POST", "/api/v1/namespaces/%s/events" % ns, {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
        "involvedObject": involved, "reason": reason, "message": message, "type": type_,
        "source": {"component": component, "host": "node-a"}, "count": count,
        "firstTimestamp": now_ts(-5 * count), "lastTimestamp": now_ts()})
    return name


def bump_event(c, ns, name, count):
    """The kubelet's event aggregation: the same Event, count + 1."""
    c.api("PATCH", "/api/v1/namespaces/%s/events/%s" % (ns, name),
          {"count": count, "lastTimestamp": now_ts()}, MERGE)


# ---------------------------------------------------------------- the daemon's part

def incidents(d, ns=None):
    status, _, body = d.request("GET", "/v1/incidents?limit=500")
    assert status == 200, body
    items = json.loads(body)["incidents"]
    return [i for i in items if ns is None or (i["namespace"] or "") == ns]


def incident_detail(d, incident_id):
    status, _, body = d.request("GET", "/v1/incidents/%d" % incident_id)
    assert status == 200, body
    return json.loads(body)["incident"]


def expect_incidents(d, ns, want, timeout=40, settle=3.0):
    """Wait until ns has an incident for each (kind, name, class) of want, give the
    daemon settle seconds more to misbehave, then assert ns has exactly those.
    Returns {(kind, name, class): incident}."""
    deadline = time.time() + timeout
    keys = set(want)
    while True:
        have = {(i["kind"], i["name"], i["reason"]): i for i in incidents(d, ns)}
        if keys <= set(have):
            break
        if time.time() > deadline:
            raise AssertionError("%s: want %s, have %s\nlog:\n%s"
                                 % (ns, sorted(keys), sorted(have), d.stderr()[-3000:]))
        time.sleep(0.5)
    time.sleep(settle)
    found = incidents(d, ns)
    assert len(found) == len(keys), "%s: want exactly %s, have:\n%s" % (
        ns, sorted(keys), json.dumps(found, indent=1))
    return {(i["kind"], i["name"], i["reason"]): i for i in found}


def stop_clean(d):
    code, _ = d.stop()
    assert code == 0, "daemon exited %s:\n%s" % (code, d.stderr()[-3000:])


@contextlib.contextmanager
def daemon_on(ns, extra=""):
    """The shared cluster, namespace ns, and a fresh daemon watching it; the daemon
    must stop cleanly (exit 0) when the test is done."""
    c = setup(ns)
    d = kube_daemon(c)
    with open(d.config, "a") as f:
        f.write(extra)
    try:
        d.start()
        yield c, d
        stop_clean(d)
    finally:
        d.cleanup()


def recovery_hold_configurable():
    """True when the daemon accepts [kubernetes] recovery_hold (the lead adds it)."""
    probe = kube_daemon(cluster())
    try:
        with open(probe.config, "a") as f:
            f.write('recovery_hold = "2s"\n')
        res = subprocess.run([BIN, "check-config", "-c", probe.config], capture_output=True,
                             text=True, env=probe.env, timeout=30)
        return res.returncode == 0
    finally:
        probe.cleanup()


# ---------------------------------------------------------------- controllers

def test_real_deployment_controller_progress_deadline_is_one_deployment_incident():
    ns = "cls-rollout"
    with daemon_on(ns) as (c, d):
        create_deployment(c, ns, "billing", 2)
        # Pods are bound to node-a but no kubelet runs them: never Ready. The controller
        # itself sets Progressing=False/ProgressDeadlineExceeded once the deadline passes.
        c.api("PATCH", "/apis/apps/v1/namespaces/%s/deployments/billing" % ns,
              {"spec": {"progressDeadlineSeconds": 2}}, MERGE)
        found = expect_incidents(d, ns, [("Deployment", "billing", "ProgressDeadlineExceeded")],
                                 timeout=60)
        facts = found[("Deployment", "billing", "ProgressDeadlineExceeded")]["facts"]
        assert facts["message"] == 'ReplicaSet "%s" has timed out progressing.' % (
            c.api("GET", "/apis/apps/v1/namespaces/%s/replicasets" % ns)["items"][0]
            ["metadata"]["name"]), facts
        assert facts["replicas"] == 2 and facts["ready_replicas"] == 0, facts
        assert facts["revision"] == "1" and facts["object_kind"] == "Deployment", facts


def job_body(name, owner=None):
    meta = {"name": name}
    if owner:
        meta["ownerReferences"] = [owner]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": {"backoffLimit": 1, "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "job", "image": "registry.example/%s:1" % name}]}}}}


def play_kubelet_job_failures(c, ns, jobs, timeout=90):
    """Fail every pod of jobs (exit code 1) until the Job controller fails each Job."""
    deadline = time.time() + timeout
    pending = set(jobs)
    while pending:
        assert time.time() < deadline, "the Job controller did not fail %s" % pending
        for job in list(pending):
            obj = c.api("GET", "/apis/batch/v1/namespaces/%s/jobs/%s" % (ns, job))
            if any(cond["type"] == "Failed" and cond["status"] == "True"
                   for cond in obj["status"].get("conditions", [])):
                pending.discard(job)
                continue
            pods = c.api("GET", "/api/v1/namespaces/%s/pods?labelSelector=job-name%%3D%s"
                         % (ns, job))["items"]
            for pod in pods:
                if pod["status"].get("phase") == "Failed":
                    continue
                pod_status(c, ns, pod["metadata"]["name"], {
                    "phase": "Failed", "containerStatuses": [{
                        "name": "job", "ready": False, "restartCount": 0,
                        "image": pod["spec"]["containers"][0]["image"], "imageID": "",
                        "started": False, "state": {"terminated": terminated(1, "Error", 0)}}]})
        time.sleep(0.5)


def test_real_job_controller_backoff_limit_for_job_and_for_its_cronjob():
    ns = "cls-batch"
    with daemon_on(ns) as (c, d):
        cron = {"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "backup"},
                "spec": {"schedule": "0 3 1 1 *", "suspend": True,
                         "jobTemplate": {"spec": job_body("unused")["spec"]}}}
        deadline = time.time() + 20
        while True:
            try:
                c.api("POST", "/apis/batch/v1/namespaces/%s/jobs" % ns, job_body("report"))
                break
            except urllib.error.HTTPError as e:  # fresh namespace: no service account yet
                if e.code not in (403, 500) or time.time() > deadline:
                    raise
                time.sleep(0.2)
        uid = c.api("POST", "/apis/batch/v1beta1/namespaces/%s/cronjobs" % ns,
                    cron)["metadata"]["uid"]
        c.api("POST", "/apis/batch/v1/namespaces/%s/jobs" % ns, job_body("backup-27010180", {
            "apiVersion": "batch/v1beta1", "kind": "CronJob", "name": "backup", "uid": uid,
            "controller": True, "blockOwnerDeletion": True}))
        play_kubelet_job_failures(c, ns, ["report", "backup-27010180"])
        found = expect_incidents(d, ns, [("Job", "report", "BackoffLimitExceeded"),
                                         ("CronJob", "backup", "BackoffLimitExceeded")])
        for key, job in ((("Job", "report", "BackoffLimitExceeded"), "report"),
                         (("CronJob", "backup", "BackoffLimitExceeded"), "backup-27010180")):
            facts = found[key]["facts"]
            assert facts["message"] == "Job has reached the specified backoff limit", facts
            assert facts["object_kind"] == "Job" and facts["object_name"] == job, facts
            assert facts.get("backoff_limit") == 1 and facts.get("failed") == 2, facts


def test_real_pv_controller_provisioning_failed_on_the_claim():
    ns = "cls-storage"
    with daemon_on(ns) as (c, d):
        # No StorageClass "fast-ssd": the real PV controller says so in a Warning event.
        c.api("POST", "/api/v1/namespaces/%s/persistentvolumeclaims" % ns, {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data-db"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast-ssd",
                     "resources": {"requests": {"storage": "1Gi"}}}})
        found = expect_incidents(d, ns, [("PersistentVolumeClaim", "data-db",
                                          "ProvisioningFailed")], timeout=60)
        facts = found[("PersistentVolumeClaim", "data-db", "ProvisioningFailed")]["facts"]
        assert facts["pvc"] == "data-db" and facts["storage_class"] == "fast-ssd", facts
        assert facts["message"] == 'storageclass.storage.k8s.io "fast-ssd" not found', facts


# ---------------------------------------------------------------- the kubelet's signals

def test_image_pull_failure_names_the_image():
    ns = "cls-pull"
    with daemon_on(ns) as (c, d):
        create_deployment(c, ns, "web", 1)
        pod = pods_of(c, ns, "web", 1)[0]
        name, image = pod["metadata"]["name"], pod["spec"]["containers"][0]["image"]
        # What a kubelet writes when the registry has no such tag, in its order.
        post_event(c, ns, "Pod", name, "Failed",
                   'Failed to pull image "%s": rpc error: code = NotFound desc = failed to '
                   'pull and unpack image "%s": not found' % (image, image), container="app")
        post_event(c, ns, "Pod", name, "Failed", "Error: ErrImagePull", container="app")
        pod_status(c, ns, name, {"phase": "Pending", "containerStatuses": [waiting(
            "app", "ErrImagePull", "rpc error: code = NotFound desc = not found", image)]})
        post_event(c, ns, "Pod", name, "BackOff", 'Back-off pulling image "%s"' % image,
                   type_="Normal", container="app")
        post_event(c, ns, "Pod", name, "Failed", "Error: ImagePullBackOff", container="app")
        pod_status(c, ns, name, {"phase": "Pending", "containerStatuses": [waiting(
            "app", "ImagePullBackOff", 'Back-off pulling image "%s"' % image, image)]})
        found = expect_incidents(d, ns, [("Deployment", "web", "ImagePullBackOff")])
        facts = found[("Deployment", "web", "ImagePullBackOff")]["facts"]
        assert facts["image"] == image and facts["container"] == "app", facts
        assert facts["reason"] in ("ErrImagePull", "ImagePullBackOff"), facts
        assert facts["pods"] == [name] and facts["pod_count"] == 1, facts


def test_missing_secret_and_configmap_name_the_missing_object():
    ns = "cls-config"
    with daemon_on(ns) as (c, d):
        cases = {"api": ("Secret", 'secret "db-creds" not found', "db-creds"),
                 "worker": ("ConfigMap", 'configmap "app-settings" not found', "app-settings")}
        for app in cases:
            create_deployment(c, ns, app, 1)
        for app, (_, message, _) in cases.items():
            pod = pods_of(c, ns, app, 1)[0]
            name = pod["metadata"]["name"]
            post_event(c, ns, "Pod", name, "Failed", "Error: " + message, container="app")
            pod_status(c, ns, name, {"phase": "Pending", "containerStatuses": [waiting(
                "app", "CreateContainerConfigError", message,
                pod["spec"]["containers"][0]["image"])]})
        found = expect_incidents(d, ns, [("Deployment", app, "CreateContainerConfigError")
                                         for app in cases])
        for app, (kind, message, missing) in cases.items():
            facts = found[("Deployment", app, "CreateContainerConfigError")]["facts"]
            assert facts["missing_kind"] == kind and facts["missing_name"] == missing, facts
            assert message in facts["message"] and facts["container"] == "app", facts


def test_probe_failures_that_persist_are_unhealthy_a_single_one_is_noise():
    ns = "cls-probe"
    with daemon_on(ns) as (c, d):
        for app in ("search", "blip"):
            create_deployment(c, ns, app, 1)
        failing = pods_of(c, ns, "search", 1)[0]["metadata"]["name"]
        once = pods_of(c, ns, "blip", 1)[0]["metadata"]["name"]
        output = "Readiness probe failed: HTTP probe failed with statuscode: 503"
        post_event(c, ns, "Pod", once, "Unhealthy", output, container="app")
        event = post_event(c, ns, "Pod", failing, "Unhealthy", output, container="app")
        for count in (2, 3, 4):
            bump_event(c, ns, event, count)
        found = expect_incidents(d, ns, [("Deployment", "search", "Unhealthy")])
        facts = found[("Deployment", "search", "Unhealthy")]["facts"]
        assert facts["probe"] == "readiness" and facts["container"] == "app", facts
        assert facts["probe_output"] == "HTTP probe failed with statuscode: 503", facts
        assert facts["count"] >= 3 and facts["pods"] == [failing], facts


def test_failed_mount_names_the_volume():
    ns = "cls-mount"
    with daemon_on(ns) as (c, d):
        create_deployment(c, ns, "ledger", 1)
        name = pods_of(c, ns, "ledger", 1)[0]["metadata"]["name"]
        message = ('MountVolume.SetUp failed for volume "settings" : configmap "ledger-settings" '
                   'not found')
        event = post_event(c, ns, "Pod", name, "FailedMount", message)
        bump_event(c, ns, event, 2)
        found = expect_incidents(d, ns, [("Deployment", "ledger", "FailedMount")])
        facts = found[("Deployment", "ledger", "FailedMount")]["facts"]
        assert facts["volume"] == "settings" and facts["reason"] == "FailedMount", facts
        assert facts["message"] == message and facts["missing_name"] == "ledger-settings", facts


def node_body(name, status, reason, message):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": {
        "capacity": {"cpu": "2", "memory": "4Gi", "pods": "10"},
        "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "10"},
        "conditions": [{"type": "Ready", "status": status, "reason": reason,
                        "message": message, "lastHeartbeatTime": now_ts(),
                        "lastTransitionTime": now_ts()}]}}


def node_down(c, node):
    down = node_body(node, "False", "KubeletNotReady",
                     "container runtime network not ready: NetworkReady=false")
    c.api("PATCH", "/api/v1/nodes/%s/status" % node, {"status": down["status"]}, MERGE)


def delete_node(c, node):
    try:
        c.api("DELETE", "/api/v1/nodes/" + node)
    except urllib.error.HTTPError:
        pass


def test_node_not_ready_is_an_incident_of_the_node():
    node = "node-flaky"
    with daemon_on("cls-node") as (c, d):
        try:
            c.api("POST", "/api/v1/nodes", node_body(node, "True", "KubeletReady", "ok"))
            since = now_ts()
            node_down(c, node)
            found = expect_incidents(d, "", [("Node", node, "NodeNotReady")])
            facts = found[("Node", node, "NodeNotReady")]["facts"]
            assert facts["node"] == node and facts["reason"] == "KubeletNotReady", facts
            assert facts["message"].startswith("container runtime network not ready"), facts
            assert facts["since"] >= since, facts
        finally:
            delete_node(c, node)


# ---------------------------------------------------------------- GitOps controllers' status

GITOPS_CRDS = [("argoproj.io", "applications", "Application", "v1alpha1"),
               ("kustomize.toolkit.fluxcd.io", "kustomizations", "Kustomization", "v1"),
               ("helm.toolkit.fluxcd.io", "helmreleases", "HelmRelease", "v2")]


def wait_until(what, predicate, timeout=30):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out waiting for " + what
        time.sleep(0.3)


def crd_path(group, plural):
    return "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/%s.%s" % (plural, group)


def install_gitops_crds(c, crds=GITOPS_CRDS):
    """Minimal CRDs with the real groups and versions (the daemon discovers them at start)."""
    for group, plural, kind, version in crds:
        c.api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "%s.%s" % (plural, group)},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                               "listKind": kind + "List"},
                     "versions": [{"name": version, "served": True, "storage": True,
                                   "subresources": {"status": {}},
                                   "schema": {"openAPIV3Schema": {
                                       "type": "object",
                                       "x-kubernetes-preserve-unknown-fields": True}}}]}})

    def established(group, plural):
        conds = c.api("GET", crd_path(group, plural)).get("status", {}).get("conditions", [])
        return any(x["type"] == "Established" and x["status"] == "True" for x in conds)
    for group, plural, _, version in crds:
        wait_until(plural + " established", lambda: established(group, plural))
        wait_until(plural + " served", lambda: any(
            r["name"] == plural
            for r in c.api("GET", "/apis/%s/%s" % (group, version))["resources"]))


def remove_gitops_crds(c, crds=GITOPS_CRDS):
    """Other modules expect a cluster without Argo CD or Flux (discovery skips them)."""
    for group, plural, _, _ in crds:
        try:
            c.api("DELETE", crd_path(group, plural))
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise

    def gone(group, plural):
        try:
            c.api("GET", crd_path(group, plural))
            return False
        except urllib.error.HTTPError as e:
            return e.code == 404
    for group, plural, _, _ in crds:
        wait_until(plural + " CRD deleted", lambda: gone(group, plural), timeout=60)


def gitops_object(c, ns, group, version, plural, kind, name, spec, status):
    base = "/apis/%s/%s/namespaces/%s/%s" % (group, version, ns, plural)
    c.api("POST", base, {"apiVersion": "%s/%s" % (group, version), "kind": kind,
                         "metadata": {"name": name}, "spec": spec})
    c.api("PATCH", "%s/%s/status" % (base, name), {"status": status}, MERGE)


def test_argo_cd_and_flux_failures_are_incidents_of_their_objects():
    ns = "cls-gitops"
    c = setup(ns)
    install_gitops_crds(c)
    try:
        with daemon_on(ns) as (c, d):
            source = {"repoURL": "https://git.example/acme/deploy.git", "path": "apps/storefront",
                      "targetRevision": "main"}
            sync_error = ('one or more objects failed to apply, reason: Deployment.apps '
                          '"storefront" is invalid: spec.template.spec.containers[0].image: '
                          'Required value')
            gitops_object(c, ns, "argoproj.io", "v1alpha1", "applications", "Application",
                          "storefront", {"project": "default", "source": source}, {
                              "sync": {"status": "OutOfSync", "revision": "4f1c2e9"},
                              "health": {"status": "Missing"},
                              "operationState": {
                                  "phase": "Failed", "message": sync_error,
                                  "startedAt": now_ts(-10), "finishedAt": now_ts(),
                                  "syncResult": {"revision": "4f1c2e9"}}})
            gitops_object(c, ns, "argoproj.io", "v1alpha1", "applications", "Application",
                          "payments", {"project": "default", "source": dict(
                              source, path="apps/payments")}, {
                              "sync": {"status": "Synced", "revision": "4f1c2e9"},
                              "health": {"status": "Degraded", "message":
                                         'Deployment "payments" exceeded its progress deadline'}})
            build_error = ("kustomize build failed: accumulating resources: accumulation err="
                           "'accumulating resources from './redis': no such file or directory'")
            gitops_object(c, ns, "kustomize.toolkit.fluxcd.io", "v1", "kustomizations",
                          "Kustomization", "apps", {
                              "interval": "10m", "path": "./apps", "prune": True,
                              "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}, {
                              "lastAttemptedRevision": "main@sha1:4f1c2e9",
                              "conditions": [{"type": "Ready", "status": "False",
                                              "reason": "BuildFailed", "message": build_error,
                                              "lastTransitionTime": now_ts()}]})
            install_error = ("Helm install failed for release cls-gitops/redis with chart "
                             "redis@18.1.0: context deadline exceeded")
            gitops_object(c, ns, "helm.toolkit.fluxcd.io", "v2", "helmreleases", "HelmRelease",
                          "redis", {"interval": "5m", "chart": {"spec": {
                              "chart": "redis", "version": "18.1.0", "sourceRef": {
                                  "kind": "HelmRepository", "name": "bitnami",
                                  "namespace": "flux-system"}}}}, {
                              "conditions": [{"type": "Ready", "status": "False",
                                              "reason": "InstallFailed",
                                              "message": install_error,
                                              "lastTransitionTime": now_ts()}]})
            found = expect_incidents(d, ns, [
                ("Application", "storefront", "ArgoSyncFailed"),
                ("Application", "payments", "ArgoDegraded"),
                ("Kustomization", "apps", "FluxNotReady"),
                ("HelmRelease", "redis", "FluxNotReady")])
            facts = found[("Application", "storefront", "ArgoSyncFailed")]["facts"]
            assert facts["message"] == sync_error and facts["sync_status"] == "OutOfSync", facts
            assert facts["repo_url"] == source["repoURL"] and facts["revision"] == "4f1c2e9", facts
            assert facts["path"] == "apps/storefront" and facts["app"] == "storefront", facts
            facts = found[("Application", "payments", "ArgoDegraded")]["facts"]
            assert facts["health_status"] == "Degraded" and facts["sync_status"] == "Synced", facts
            assert "progress deadline" in facts["message"], facts
            facts = found[("Kustomization", "apps", "FluxNotReady")]["facts"]
            assert facts["reason"] == "BuildFailed" and facts["message"] == build_error, facts
            assert facts["revision"] == "main@sha1:4f1c2e9", facts
            assert facts["source"] == "GitRepository/%s/flux-system" % ns, facts
            facts = found[("HelmRelease", "redis", "FluxNotReady")]["facts"]
            assert facts["reason"] == "InstallFailed" and facts["message"] == install_error, facts
            assert facts["source"] == "HelmRepository/flux-system/bitnami", facts
    finally:
        remove_gitops_crds(c)


# ---------------------------------------------------------------- storm, noise, recovery, restart

def play_kubelet_crashloop(c, ns, pod, restarts=4):
    """A container that exits 1 and is now backing off, with the kubelet's BackOff event."""
    name = pod["metadata"]["name"]
    pod_status(c, ns, name, {"phase": "Running", "containerStatuses": [waiting(
        "app", "CrashLoopBackOff", "back-off 1m20s restarting failed container=app pod=" + name,
        pod["spec"]["containers"][0]["image"], restarts, terminated(1, "Error"))]})
    post_event(c, ns, "Pod", name, "BackOff", "Back-off restarting failed container",
               count=restarts, container="app")


def play_kubelet_ready(c, ns, pod, restarts=0, last=None):
    """The container running and Ready (last: its previous termination, if any)."""
    status = {"name": "app", "ready": True, "started": True, "restartCount": restarts,
              "image": pod["spec"]["containers"][0]["image"], "imageID": "",
              "state": {"running": {"startedAt": now_ts(-5)}}}
    if last:
        status["lastState"] = {"terminated": last}
    pod_status(c, ns, pod["metadata"]["name"], {
        "phase": "Running", "containerStatuses": [status],
        "conditions": [{"type": t, "status": "True", "lastTransitionTime": now_ts()}
                       for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]})


def test_storm_of_30_crashlooping_replicas_is_one_incident_whose_pods_grow():
    ns = "cls-storm"
    with daemon_on(ns) as (c, d):
        create_deployment(c, ns, "cart", 30)
        pods = pods_of(c, ns, "cart", 30, timeout=60)
        for pod in pods:
            play_kubelet_crashloop(c, ns, pod)
        key = ("Deployment", "cart", "CrashLoopBackOff")
        inc = expect_incidents(d, ns, [key])[key]
        assert inc["facts"]["exit_code"] == 1 and inc["facts"]["reason"] == "Error", inc
        assert inc["facts"]["container"] == "app", inc
        # Pods join in memory and are written at most every 30 s (min_update_interval).
        names = {p["metadata"]["name"] for p in pods}
        deadline = time.time() + 60
        while True:
            inc = incident_detail(d, inc["id"])
            if inc["facts"].get("pod_count") == 30:
                break
            assert time.time() < deadline, inc
            time.sleep(1)
        assert len(inc["facts"]["pods"]) == 20 and set(inc["facts"]["pods"]) <= names, inc
        assert inc["observations"] >= 2, inc
        assert len(incidents(d, ns)) == 1, incidents(d, ns)


def test_noise_opens_no_incident():
    ns, sentinel = "cls-quiet", "cls-quiet-sentinel"
    with daemon_on(ns) as (c, d):
        c.ensure_namespace(sentinel)
        create_deployment(c, ns, "steady", 2)
        restarted, starting = pods_of(c, ns, "steady", 2)
        for pod in (restarted, starting):
            name = pod["metadata"]["name"]
            for reason, message in (("Scheduled", "Successfully assigned %s/%s to node-a"
                                     % (ns, name)),
                                    ("Pulled", 'Container image "%s" already present on machine'
                                     % pod["spec"]["containers"][0]["image"]),
                                    ("Created", "Created container app"),
                                    ("Started", "Started container app")):
                post_event(c, ns, "Pod", name, reason, message, type_="Normal", container="app")
        # One restart, Ready again; one failed liveness probe.
        play_kubelet_ready(c, ns, restarted, 1, terminated(1, "Error", 20))
        post_event(c, ns, "Pod", restarted["metadata"]["name"], "Unhealthy",
                   "Liveness probe failed: Get \"http://10.0.0.7:8080/healthz\": context "
                   "deadline exceeded", container="app")
        # Pending for a moment (image being pulled), then running.
        pod_status(c, ns, starting["metadata"]["name"], {
            "phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [waiting("app", "ContainerCreating", "",
                                          starting["spec"]["containers"][0]["image"])]})
        time.sleep(1)
        play_kubelet_ready(c, ns, starting)
        # Sentinels after the noise, on the same watches (pods, events): once the daemon
        # has their incidents it has seen everything before them.
        for name in ("canary", "canary-probe"):
            c.create_pod(sentinel, name)
        play_kubelet_crashloop(c, sentinel, c.api(
            "GET", "/api/v1/namespaces/%s/pods/canary" % sentinel))
        event = post_event(c, sentinel, "Pod", "canary-probe", "Unhealthy",
                           "Readiness probe failed: connection refused", container="app")
        bump_event(c, sentinel, event, 3)
        expect_incidents(d, sentinel, [("Pod", "canary", "CrashLoopBackOff"),
                                       ("Pod", "canary-probe", "Unhealthy")], settle=0)
        assert incidents(d, ns) == [], incidents(d, ns)


def test_recovered_workload_and_node_resolve_by_themselves():
    if not recovery_hold_configurable():
        from harness import SkipTest
        raise SkipTest("needs [kubernetes] recovery_hold (the hold is 10 min, not configurable)")
    ns, node = "cls-recover", "node-recover"
    with daemon_on(ns, 'recovery_hold = "2s"\n') as (c, d):
        try:
            create_deployment(c, ns, "orders", 3)
            pods = pods_of(c, ns, "orders", 3)
            for pod in pods:
                play_kubelet_crashloop(c, ns, pod)
            c.api("POST", "/api/v1/nodes", node_body(node, "True", "KubeletReady", "ok"))
            node_down(c, node)
            crash = expect_incidents(d, ns, [("Deployment", "orders", "CrashLoopBackOff")])
            down = expect_incidents(d, "", [("Node", node, "NodeNotReady")], settle=0)
            for pod in pods:
                play_kubelet_ready(c, ns, pod, 4, terminated(1, "Error", 10))
            up = node_body(node, "True", "KubeletReady", "kubelet is posting ready status")
            c.api("PATCH", "/api/v1/nodes/%s/status" % node, {"status": up["status"]}, MERGE)
            for inc in list(crash.values()) + list(down.values()):
                wait_until("incident %d resolved" % inc["id"], lambda: incident_detail(
                    d, inc["id"])["state"] == "resolved", timeout=30)
            assert len(incidents(d, ns)) == 1, incidents(d, ns)
        finally:
            delete_node(c, node)


def test_restarted_daemon_keeps_its_incidents_without_duplicates():
    ns = "cls-restart"
    with daemon_on(ns) as (c, d):
        create_deployment(c, ns, "queue", 3)
        pods = pods_of(c, ns, "queue", 3)
        for pod in pods:
            play_kubelet_crashloop(c, ns, pod)
        c.api("POST", "/api/v1/namespaces/%s/persistentvolumeclaims" % ns, {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "spool"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "no-such-class",
                     "resources": {"requests": {"storage": "1Gi"}}}})
        before = expect_incidents(d, ns, [("Deployment", "queue", "CrashLoopBackOff"),
                                          ("PersistentVolumeClaim", "spool",
                                           "ProvisioningFailed")], timeout=60)
        stop_clean(d)
        d.start()
        # The restarted daemon relists everything; then it sees something new.
        play_kubelet_crashloop(c, ns, pods[0], restarts=6)
        event = post_event(c, ns, "Pod", pods[1]["metadata"]["name"], "FailedMount",
                           'MountVolume.SetUp failed for volume "spool" : timed out')
        bump_event(c, ns, event, 2)
        after = expect_incidents(d, ns, list(before) + [("Deployment", "queue", "FailedMount")])
        for key, inc in before.items():
            now = after[key]
            assert now["id"] == inc["id"] and now["fingerprint"] == inc["fingerprint"], now
            assert now["state"] != "resolved" and now["reopened"] == 0, now
        fingerprints = [i["fingerprint"] for i in incidents(d)]
        assert len(fingerprints) == len(set(fingerprints)), fingerprints
