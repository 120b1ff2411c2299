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
