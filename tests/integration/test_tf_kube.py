"""Kubernetes Jobs that run Terraform (watchers/tf_kube.c), on a real control plane.

The real Job controller runs the Job: it creates the pod and marks the Job Failed
(BackoffLimitExceeded) or Complete from the pod phases the test writes as a kubelet
would. The pod's log is served by a TLS "kubelet" here, reached through the real
apiserver's log proxy, and holds a real `terraform apply -json` output from the
fixtures. The incident must be the Terraform one (class, workspace, file and line),
not a generic BackoffLimitExceeded of the Job, and a restart must not ingest it again.
"""
import http.server
import json
import os
import ssl
import threading
import time
import urllib.error
import urllib.parse

from harness import Daemon, SHARED
from test_kube_evidence import TLSServer
from test_kube_watch import cluster

NS = "tfjobs"
NODE = "node-tf"
FIXTURES = os.path.join(SHARED, "fixtures", "terraform")
SUCCESS_LOG = (
    '{"@level":"info","@message":"Terraform 1.8.0","@module":"terraform.ui",'
    '"@timestamp":"2026-11-25T10:00:00.000000Z","terraform":"1.8.0","type":"version",'
    '"ui":"1.2"}\n'
    '{"@level":"info","@message":"Apply complete! Resources: 1 added, 0 changed, 0 destroyed.",'
    '"@module":"terraform.ui","@timestamp":"2026-11-25T10:00:05.000000Z","changes":'
    '{"add":1,"change":0,"import":0,"remove":0,"operation":"apply"},"type":"change_summary"}\n')

LOGS = {}     # pod name -> log bytes
REQUESTS = []


class Kubelet(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        parts = urllib.parse.urlparse(self.path).path.split("/")
        REQUESTS.append(self.path)
        if len(parts) != 5 or parts[1] != "containerLogs" or parts[3] not in LOGS:
            self.send_response(404)
            self.end_headers()
            return
        body = LOGS[parts[3]]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_kubelet(c):
    srv = TLSServer(("127.0.0.1", 0), Kubelet)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(c.path("apiserver.crt"), c.path("apiserver.key"))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def ensure_node(c, port):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
              "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
              "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                              "lastHeartbeatTime": now, "lastTransitionTime": now}],
              "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
              "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}
    try:
        c.api("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                        "metadata": {"name": NODE}, "status": status})
    except urllib.error.HTTPError as e:
        if e.code != 409:
            raise
    # The apiserver keeps what a create says about status only through the subresource.
    c.api("PATCH", "/api/v1/nodes/%s/status" % NODE, {"status": status},
          "application/merge-patch+json")


def create_job(c, name, annotations=None, labelled=True):
    labels = {"triaged.io/terraform": "true"} if labelled else {}
    body = {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": labels, "annotations": annotations or {}},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                "nodeName": NODE, "restartPolicy": "Never",
                "containers": [{"name": "terraform", "image": "hashicorp/terraform:1.8",
                                "args": ["apply", "-json", "-auto-approve"]}]}}}}
    deadline = time.time() + 20
    while True:
        try:
            return c.api("POST", "/apis/batch/v1/namespaces/%s/jobs" % NS, body)
        except urllib.error.HTTPError as e:
            if e.code not in (403, 500) or time.time() > deadline:
                raise
            time.sleep(0.2)


def job_pod(c, job, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        items = c.api("GET", "/api/v1/namespaces/%s/pods?labelSelector=job-name%%3D%s"
                      % (NS, job))["items"]
        if items:
            return items[0]["metadata"]["name"]
        time.sleep(0.3)
    raise AssertionError("the Job controller made no pod for " + job)


def finish_pod(c, pod, exit_code):
    """What a kubelet writes when the terraform container exits."""
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    phase = "Failed" if exit_code else "Succeeded"
    c.api("PATCH", "/api/v1/namespaces/%s/pods/%s/status" % (NS, pod), {"status": {
        "phase": phase, "startTime": ts, "containerStatuses": [{
            "name": "terraform", "ready": False, "restartCount": 0,
            "image": "hashicorp/terraform:1.8", "imageID": "",
            "state": {"terminated": {"exitCode": exit_code,
                                     "reason": "Error" if exit_code else "Completed",
                                     "startedAt": ts, "finishedAt": ts}}}]}},
        "application/merge-patch+json")


def wait_job(c, job, condition, timeout=40):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = c.api("GET", "/apis/batch/v1/namespaces/%s/jobs/%s" % (NS, job))
        for cond in got.get("status", {}).get("conditions", []):
            if cond["type"] == condition and cond["status"] == "True":
                return got
        time.sleep(0.3)
    raise AssertionError("the Job controller never marked %s %s" % (job, condition))


def incidents(d):
    status, _, body = d.request("GET", "/v1/incidents?limit=100")
    assert status == 200, body
    return json.loads(body)["incidents"]


def wait_for(d, predicate, what, timeout=40):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [i for i in incidents(d) if predicate(i)]
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError("%s: not seen; incidents: %s\nlog:\n%s"
                         % (what, incidents(d), d.stderr()[-3000:]))


def kube_daemon(c):
    d = Daemon(env={"KUBECONFIG": c.path("admin.kubeconfig")})
    with open(d.config, "a") as f:
        f.write('[kubernetes]\ncluster_name = "test"\nexclude_namespaces = []\n')
    return d


def test_failed_terraform_job_is_a_terraform_incident_read_from_its_pod_log():
    c = cluster()
    c.ensure_namespace(NS)
    kubelet = start_kubelet(c)
    ensure_node(c, kubelet.server_address[1])
    with open(os.path.join(FIXTURES, "module", "apply.jsonl"), "rb") as f:
        failed_log = f.read()
    d = kube_daemon(c)
    try:
        d.start()
        create_job(c, "tf-apply-1", {"triaged.io/workspace": "payments-prod",
                                     "triaged.io/repo-path": "infra/payments"})
        pod = job_pod(c, "tf-apply-1")
        LOGS[pod] = failed_log
        finish_pod(c, pod, 1)
        wait_job(c, "tf-apply-1", "Failed")
        found = wait_for(d, lambda i: i["namespace"] == "payments-prod", "terraform incident")
        assert len(found) == 1, found
        inc = found[0]
        assert inc["reason"] == "TerraformApplyFailed", inc
        diag = inc["facts"]["diagnostics"][0]
        assert diag["filename"] == "modules/db/main.tf" and diag["start_line"] == 6, diag
        assert any("/containerLogs/%s/%s/terraform" % (NS, pod) in r for r in REQUESTS), \
            REQUESTS
        # The Job's own failure is that incident, not a second Kubernetes one.
        time.sleep(2)
        assert not [i for i in incidents(d) if i["source"] == "kubernetes"
                    and i["namespace"] == NS], incidents(d)
        count = inc.get("count")

        # A restart relists the Job: it was read already, so nothing changes.
        assert d.stop()[0] == 0
        before = len(REQUESTS)
        d.start()
        time.sleep(4)
        again = [i for i in incidents(d) if i["namespace"] == "payments-prod"]
        assert len(again) == 1 and again[0]["id"] == inc["id"], again
        assert again[0].get("count") == count, (again[0], count)
        assert len(REQUESTS) == before, (REQUESTS[before:], incidents(d), d.stderr()[-4000:])

        # A later successful run of the same workspace resolves it.
        create_job(c, "tf-apply-2", {"triaged.io/workspace": "payments-prod"})
        pod2 = job_pod(c, "tf-apply-2")
        LOGS[pod2] = SUCCESS_LOG.encode()
        finish_pod(c, pod2, 0)
        wait_job(c, "tf-apply-2", "Complete")
        wait_for(d, lambda i: i["id"] == inc["id"] and i["state"] == "resolved",
                 "resolution by a successful run")
        assert d.stop()[0] == 0
    finally:
        d.cleanup()
        kubelet.shutdown()


def test_failed_terraform_job_without_a_terraform_log_is_still_an_incident():
    c = cluster()
    c.ensure_namespace(NS)
    kubelet = start_kubelet(c)
    ensure_node(c, kubelet.server_address[1])
    d = kube_daemon(c)
    try:
        d.start()
        create_job(c, "tf-broken")
        pod = job_pod(c, "tf-broken")
        LOGS[pod] = b"exec /bin/terraform: exec format error\n"
        finish_pod(c, pod, 1)
        wait_job(c, "tf-broken", "Failed")
        found = wait_for(d, lambda i: i["namespace"] == "%s/tf-broken" % NS,
                         "fallback incident")
        assert found[0]["reason"] == "TerraformRunErrored", found
        assert "log not used" in json.dumps(found[0]), found
        assert d.stop()[0] == 0
    finally:
        d.cleanup()
        kubelet.shutdown()
