"""The daemon against a real control plane (k8s-local): failures produced the
way the cluster produces them become incidents with the right object, class
and facts, storms fold into one incident, and each incident is analysed."""
import json
import time
import urllib.error

from harness import Daemon
from test_kube_watch import cluster

NODE = {
    "apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"},
    "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
               "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
               "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                               "lastHeartbeatTime": "2026-11-25T10:00:00Z",
                               "lastTransitionTime": "2026-11-25T10:00:00Z"}],
               "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}}


def ensure_node(c):
    try:
        c.api("POST", "/api/v1/nodes", NODE)
    except urllib.error.HTTPError as e:
        if e.code != 409:
            raise


def create_deployment(c, ns, name, replicas, cpu="10m", memory="64Mi"):
    body = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{
                                  "name": "app", "image": "registry.example/%s:1.0" % name,
                                  "resources": {"requests": {"cpu": cpu, "memory": memory},
                                                "limits": {"memory": memory}}}]}}}}
    deadline = time.time() + 20
    while True:
        try:
            return c.api("POST", "/apis/apps/v1/namespaces/%s/deployments" % ns, body)
        except urllib.error.HTTPError as e:
            if e.code not in (403, 500) or time.time() > deadline:
                raise
            time.sleep(0.2)


def pods_of(c, ns, app, count, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        items = c.api("GET", "/api/v1/namespaces/%s/pods?labelSelector=app%%3D%s"
                      % (ns, app))["items"]
        if len(items) >= count:
            return items
        time.sleep(0.3)
    raise AssertionError("the Deployment controller made no %d pods of %s" % (count, app))


def play_kubelet_oom_crashloop(c, ns, pod):
    """What a kubelet writes for a container OOM-killed and now backing off."""
    status = {"status": {"phase": "Running", "containerStatuses": [{
        "name": "app", "ready": False, "restartCount": 5, "image": pod["spec"]["containers"][0]
        ["image"], "imageID": "", "started": False,
        "state": {"waiting": {"reason": "CrashLoopBackOff",
                              "message": "back-off 2m40s restarting failed container=app"}},
        "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                     "startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                time.gmtime(time.time() - 60)),
                                     "finishedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime(time.time() - 30))}}}]}}
    c.api("PATCH", "/api/v1/namespaces/%s/pods/%s/status" % (ns, pod["metadata"]["name"]),
          status, content_type="application/merge-patch+json")


def kube_daemon(c):
    d = Daemon(env={"KUBECONFIG": c.path("admin.kubeconfig")})
    with open(d.config, "a") as f:
        # The real scheduler's first FailedScheduling, at once (the default waits 2m).
        f.write('[kubernetes]\ncluster_name = "test"\nexclude_namespaces = []\n'
                'scheduling_grace = "0s"\n')
    return d


def wait_incidents(d, predicate, timeout=40):
    deadline = time.time() + timeout
    found = []
    while time.time() < deadline:
        status, _, body = d.request("GET", "/v1/incidents")
        found = [i for i in json.loads(body)["incidents"] if predicate(i)]
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError("no such incident; have: %s\nlog:\n%s" % (found, d.stderr()[-3000:]))


def test_oom_crashloop_storm_is_one_analysed_incident_of_the_deployment():
    c = cluster()
    ns = "shop"
    c.ensure_namespace(ns)
    ensure_node(c)
    d = kube_daemon(c)
    try:
        d.start()
        create_deployment(c, ns, "checkout", 6)
        pods = pods_of(c, ns, "checkout", 6)
        for pod in pods:
            play_kubelet_oom_crashloop(c, ns, pod)
        found = wait_incidents(d, lambda i: i["namespace"] == ns and i["name"] == "checkout")
        assert len(found) == 1, found
        inc = found[0]
        assert inc["kind"] == "Deployment" and inc["reason"] == "OOMKilled", inc
        assert inc["facts"]["exit_code"] == 137 and inc["facts"]["container"] == "app", inc
        # The storm folds into this one incident as the pods are seen.
        deadline = time.time() + 40
        while time.time() < deadline:
            status, _, body = d.request("GET", "/v1/incidents/%d" % inc["id"])
            shown = json.loads(body)
            if shown["incident"]["state"] == "analyzed":
                break
            time.sleep(0.5)
        assert shown["incident"]["state"] == "analyzed", shown
        assert "OOMKilled" in shown["analysis"]["summary"], shown["analysis"]
        assert "64Mi" in shown["analysis"]["summary"] + shown["analysis"]["root_cause"], shown
        status, _, body = d.request("GET", "/v1/incidents")
        mine = [i for i in json.loads(body)["incidents"] if i["namespace"] == ns]
        assert len(mine) == 1, mine
        assert d.stop()[0] == 0
    finally:
        d.cleanup()


def test_real_scheduler_failure_becomes_failed_scheduling_incident():
    c = cluster()
    ns = "batch"
    c.ensure_namespace(ns)
    ensure_node(c)
    d = kube_daemon(c)
    try:
        d.start()
        create_deployment(c, ns, "cruncher", 1, cpu="64")
        found = wait_incidents(d, lambda i: i["namespace"] == ns and i["name"] == "cruncher",
                               timeout=60)
        inc = found[0]
        assert inc["kind"] == "Deployment" and inc["reason"] == "FailedScheduling", inc
        assert "Insufficient cpu" in json.dumps(inc["facts"]), inc["facts"]
        assert d.stop()[0] == 0
    finally:
        d.cleanup()
