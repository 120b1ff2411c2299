"""Two daemons with [kubernetes] leader_election = true on a real control plane:
only the Lease holder watches and records incidents; when it is killed the
standby takes over within the lease duration and finds the failure itself."""
import json
import time

from harness import Daemon
from test_kube_incidents import (create_deployment, ensure_node, pods_of,
                                 play_kubelet_oom_crashloop)
from test_kube_watch import cluster

NS = "leader"


def elected_daemon(c):
    d = Daemon(env={"KUBECONFIG": c.path("admin.kubeconfig")})
    with open(d.config, "a") as f:
        f.write('[kubernetes]\ncluster_name = "leadertest"\nexclude_namespaces = []\n'
                'leader_election = true\nlease_namespace = "default"\n'
                'lease_duration = "3s"\nrenew_deadline = "2s"\nretry_period = "500ms"\n')
    return d


def election(d):
    status, _, body = d.request("GET", "/readyz")
    return json.loads(body)["components"].get("leader-election", {}).get("detail", "")


def wait_election(d, word, timeout=20):
    deadline = time.time() + timeout
    detail = ""
    while time.time() < deadline:
        detail = election(d)
        if detail.startswith(word):
            return detail
        time.sleep(0.2)
    raise AssertionError("never %s: %r\n%s" % (word, detail, d.stderr()[-2000:]))


def incidents_in(d, ns):
    status, _, body = d.request("GET", "/v1/incidents?limit=100")
    assert status == 200, body
    return [i for i in json.loads(body)["incidents"] if i["namespace"] == ns]


def wait_incident(d, ns, timeout=40):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = incidents_in(d, ns)
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError("no incident in %s:\n%s" % (ns, d.stderr()[-3000:]))


def metric(d, name):
    status, _, body = d.request("GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_only_the_lease_holder_records_incidents_and_a_standby_takes_over():
    c = cluster()
    c.ensure_namespace(NS)
    ensure_node(c)
    a, b = elected_daemon(c), elected_daemon(c)
    try:
        a.start()
        wait_election(a, "leader")
        b.start()
        detail = wait_election(b, "standby")
        assert "default/triaged-leadertest" in detail, detail
        assert metric(a, "triaged_leader") == 1 and metric(b, "triaged_leader") == 0

        create_deployment(c, NS, "api", 2)
        for pod in pods_of(c, NS, "api", 2):
            play_kubelet_oom_crashloop(c, NS, pod)
        found = wait_incident(a, NS)
        assert found[0]["name"] == "api" and found[0]["reason"] == "OOMKilled", found
        time.sleep(2)
        assert incidents_in(b, NS) == [], incidents_in(b, NS)
        status, _, body = b.request("GET", "/readyz")
        assert status == 200, body   # a standby is ready: it serves the API

        # The leader dies without releasing: the standby waits out the Lease, then
        # watches, relists and records the failure in its own store.
        killed = time.time()
        a.proc.kill()
        a.proc.wait()
        wait_election(b, "leader", timeout=15)
        took = time.time() - killed
        assert took < 3 + 2 + 3, took
        found = wait_incident(b, NS)
        assert found[0]["name"] == "api" and found[0]["reason"] == "OOMKilled", found
        assert "leader (" in b.stderr(), b.stderr()[-2000:]
        assert b.stop()[0] == 0
    finally:
        a.cleanup()
        b.cleanup()
