"""Evidence for a Kubernetes incident (watchers/kube_evidence.c) and the one-shot
`explain` (watchers/kube_explain.c) against a real apiserver from k8s-local.

k8s-local has no kubelet: the test plays it. Pod status and Events are written
through the API, and container logs are served by a TLS "kubelet" run here on
the node's InternalIP (127.0.0.1) at the port the Node advertises in
status.daemonEndpoints.kubeletEndpoint: the real apiserver proxies
GET .../pods/NAME/log to https://127.0.0.1:PORT/containerLogs/NS/NAME/CONTAINER.

explain runs through tests/tools/kube_explain_probe.c (tr_explain_run_ex) until
the CLI wires `triaged explain`.
"""
import http.server
import os
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse

from harness import BIN, ROOT
from test_kube_watch import build_probe, cluster

NS = "evid"
NODE = "node-ev"
SECRET_ENV = "hunter2"
SECRET_KEY = "sk-live-4f9aQ2Zx81LmNoPqRsTuVw"

PREVIOUS_LOG = "".join(
    ["starting payments v2.3.1\n",
     "connecting with DB_PASSWORD=%s to db.payments:5432\n" % SECRET_ENV,
     "stripe client configured with key %s\n" % SECRET_KEY] +
    ["retrying connection to ledger:7000\n"] * 37 +
    ["java.lang.OutOfMemoryError: Java heap space\n",
     "Killed process 1 (java) total-vm:2097152kB, anon-rss:524288kB (out of memory)\n"])
CURRENT_LOG = "starting payments v2.3.1\nwarming caches\n"

def explain_probe():
    """tests/tools/kube_explain_probe.c, built against the library the daemon under test uses."""
    return build_probe("kube_explain_probe", ("daemon", "watchers", "llm"))


# ---------------------------------------------------------------- the fake kubelet

class Kubelet(http.server.BaseHTTPRequestHandler):
    requests = []

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        Kubelet.requests.append(self.path)
        parts = url.path.split("/")
        if len(parts) != 5 or parts[1] != "containerLogs":
            self.send_response(404)
            self.end_headers()
            return
        body = (PREVIOUS_LOG if query.get("previous") == ["true"] else CURRENT_LOG).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class TLSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


_kubelet = None


def kubelet(c):
    global _kubelet
    if _kubelet is None:
        srv = TLSServer(("127.0.0.1", 0), Kubelet)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(c.path("apiserver.crt"), c.path("apiserver.key"))
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        _kubelet = srv
    return _kubelet.server_address[1]


def ensure_node(c, port):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE},
            "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True",
                                       "reason": "KubeletReady", "lastHeartbeatTime": now,
                                       "lastTransitionTime": now}],
                       "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}
    try:
        c.api("POST", "/api/v1/nodes", node)
    except urllib.error.HTTPError as e:
        if e.code != 409:
            raise
        c.api("PATCH", "/api/v1/nodes/%s/status" % NODE, {"status": node["status"]},
              "application/merge-patch+json")


def create_deployment(c, name, env=None):
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"nodeName": NODE, "containers": [{
                                      "name": "app", "image": "registry.example/%s:2.3.1" % name,
                                      "env": env or [],
                                      "resources": {"limits": {"memory": "512Mi"}}}]}}}}
    deadline = time.time() + 20
    while True:
        try:
            return c.api("POST", "/apis/apps/v1/namespaces/%s/deployments" % NS, body)
        except urllib.error.HTTPError as e:
            if e.code == 409:
                return None
            if e.code not in (403, 500) or time.time() > deadline:
                raise
            time.sleep(0.2)


def pod_of(c, app, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        items = c.api("GET", "/api/v1/namespaces/%s/pods?labelSelector=app%%3D%s"
                      % (NS, app))["items"]
        if items:
            return items[0]
        time.sleep(0.3)
    raise AssertionError("the Deployment controller made no pod of " + app)


def ts(offset):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


def play_kubelet_crashloop(c, pod):
    name = pod["metadata"]["name"]
    status = {"status": {"phase": "Running", "containerStatuses": [{
        "name": "app", "ready": False, "restartCount": 6, "image": "registry.example/payments",
        "imageID": "", "started": False,
        "state": {"waiting": {"reason": "CrashLoopBackOff",
                              "message": "back-off 5m0s restarting failed container=app"}},
        "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                     "startedAt": ts(-90), "finishedAt": ts(-30)}}}]}}
    c.api("PATCH", "/api/v1/namespaces/%s/pods/%s/status" % (NS, name), status,
          content_type="application/merge-patch+json")
    post_event(c, {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "%s.backoff" % name},
        "involvedObject": {"kind": "Pod", "namespace": NS, "name": name,
                           "uid": pod["metadata"]["uid"], "apiVersion": "v1",
                           "fieldPath": "spec.containers{app}"},
        "reason": "BackOff", "message": "Back-off restarting failed container",
        "type": "Warning", "count": 14, "source": {"component": "kubelet", "host": NODE},
        "firstTimestamp": ts(-600), "lastTimestamp": ts(-5)})


def post_event(c, event):
    try:
        c.api("POST", "/api/v1/namespaces/%s/events" % NS, event)
    except urllib.error.HTTPError as e:
        if e.code != 409:
            raise


def write_config(c, kubeconfig=None):
    d = tempfile.mkdtemp(prefix="explain-")
    path = os.path.join(d, "config.toml")
    with open(path, "w") as f:
        f.write('[kubernetes]\nkubeconfig = "%s"\ncluster_name = "it"\n'
                '[triage]\nlog_tail_lines = 20\nlog_max_bytes = 4096\n'
                '[llm]\nprovider = "none"\nprompts_dir = "%s"\n'
                % (kubeconfig or c.path("admin.kubeconfig"), os.path.join(ROOT, "prompts")))
    return path


def explain(config, what, ns=NS, evidence=True, timeout=60):
    env = dict(os.environ)
    env.pop("KUBERNETES_SERVICE_HOST", None)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1"
    # The real CLI, except where the test reads the gathered evidence, which only
    # the probe prints.
    if evidence:
        args = [explain_probe(), config, what, ns, "--evidence"]
    else:
        args = [BIN, "explain", what, "-n", ns, "-c", config]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=ROOT)


# ---------------------------------------------------------------- tests

def test_explain_crashloop_gathers_folded_redacted_logs_and_events():
    c = cluster()
    c.ensure_namespace(NS)
    port = kubelet(c)
    ensure_node(c, port)
    create_deployment(c, "payments", env=[{"name": "DB_PASSWORD", "value": SECRET_ENV},
                                          {"name": "LOG_LEVEL", "value": "debug"}])
    pod = pod_of(c, "payments")
    play_kubelet_crashloop(c, pod)
    Kubelet.requests.clear()
    res = explain(write_config(c), "deploy/payments")
    out = res.stdout
    assert res.returncode == 0, (res.returncode, out, res.stderr)
    assert out.startswith("Deployment evid/payments: "), out
    assert "OOMKilled" in out, out
    # The previous log, through the real apiserver, its tail with the repetition folded.
    assert "java.lang.OutOfMemoryError: Java heap space" in out, out
    assert "retrying connection to ledger:7000" in out, out
    assert "[last line repeated 36 times]" in out, out
    assert out.count("retrying connection to ledger:7000") == 1, out
    # No secret, neither from the log nor from the Deployment's env.
    assert SECRET_ENV not in out and SECRET_KEY not in out, out
    assert "DB_PASSWORD" in out and "LOG_LEVEL" in out, out
    # Events, the termination, the spec, the node.
    assert "Back-off restarting failed container" in out, out
    assert '"exitCode":137' in out and '"reason":"OOMKilled"' in out, out
    assert "not_collected" not in out, out  # everything asked for was read
    assert "registry.example/payments:2.3.1" in out, out
    assert "KubeletReady" in out, out
    # What was asked of the kubelet: the previous log, tail and byte cap.
    prev = [r for r in Kubelet.requests if "previous=true" in r]
    assert prev and all(r.startswith("/containerLogs/%s/%s/app?" % (NS, pod["metadata"]["name"]))
                        for r in prev), Kubelet.requests
    assert "tailLines=160" in prev[0] and "limitBytes=" in prev[0], prev


def test_explain_healthy_object_says_no_failure_found():
    c = cluster()
    c.ensure_namespace(NS)
    ensure_node(c, kubelet(c))
    create_deployment(c, "quiet")
    pod_of(c, "quiet")
    res = explain(write_config(c), "deployments/quiet", evidence=False)
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert "no failure found" in res.stdout, res.stdout


def test_explain_unknown_object_and_kind_exit_2():
    c = cluster()
    c.ensure_namespace(NS)
    res = explain(write_config(c), "deployment/does-not-exist", evidence=False)
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Deployment evid/does-not-exist not found" in res.stderr, res.stderr
    res = explain(write_config(c), "widget/x", evidence=False)
    assert res.returncode == 2 and 'unknown kind "widget"' in res.stderr, res.stderr
    res = explain(write_config(c), "podname-without-kind", evidence=False)
    assert res.returncode == 2 and "expects KIND/NAME" in res.stderr, res.stderr


def test_explain_unreachable_cluster_exits_1():
    c = cluster()
    d = tempfile.mkdtemp(prefix="explain-down-")
    kubeconfig = os.path.join(d, "kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: down\n"
                "clusters:\n- name: down\n  cluster:\n    server: https://127.0.0.1:9\n"
                "    insecure-skip-tls-verify: true\n"
                "users:\n- name: u\n  user:\n    token: abc\n"
                "contexts:\n- name: down\n  context:\n    cluster: down\n    user: u\n")
    res = explain(write_config(c, kubeconfig), "pod/x", evidence=False)
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    assert "unreachable" in res.stderr, res.stderr
