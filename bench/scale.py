#!/usr/bin/env python3
"""bench/scale.py - the daemon's memory and CPU as a cluster grows to 5,000 pods.

On a real control plane from ../shared/tools/k8s-local: a few simulated Nodes
(Ready, heartbeats kept up by this script as a kubelet would), then pods
created through the API in batches, bound to those nodes and marked
Running/Ready with status patches (the kubelet's part), then churn (pods
deleted and recreated, some crash-looping). `build/triaged run` (the
optimised build, not ASan) watches the cluster throughout; its VmRSS/VmHWM
(/proc/PID/status) and CPU (utime+stime, /proc/PID/stat) are sampled at each
stage, and "idle" is the daemon on the empty cluster after 30 s.

Prints figures; asserts nothing. Standard library only.

usage: bench/scale.py [--pods 5000] [--nodes 5] [--idle-seconds 30] [--bin build/triaged]
                      [--shared ../shared] [--keep]
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NS = "scale"


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Api:
    """A keep-alive HTTPS connection per thread to the apiserver."""

    def __init__(self, cluster_dir, server, token):
        self.url = urllib.parse.urlparse(server)
        self.token = token
        self.ctx = ssl.create_default_context(cafile=os.path.join(cluster_dir, "ca.crt"))
        self.local = threading.local()

    def call(self, method, path, body=None, content_type="application/json", ok=(200, 201)):
        for attempt in range(5):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = http.client.HTTPSConnection(self.url.hostname, self.url.port,
                                                   context=self.ctx, timeout=30)
                self.local.conn = conn
            try:
                conn.request(method, path, body=json.dumps(body) if body is not None else None,
                             headers={"Authorization": "Bearer " + self.token,
                                      "Content-Type": content_type})
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                time.sleep(0.2 * (attempt + 1))
                continue
            if resp.status in ok:
                return json.loads(data or b"{}")
            # A fresh namespace answers 403/500 until its default ServiceAccount exists.
            if resp.status in (403, 409, 429, 500, 503) and attempt < 4:
                time.sleep(0.3 * (attempt + 1))
                continue
            raise RuntimeError("%s %s: %d %s" % (method, path, resp.status, data[:300]))
        raise RuntimeError("%s %s: no answer" % (method, path))


def node_body(name):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"capacity": {"cpu": "64", "memory": "256Gi", "pods": "2000"},
                       "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "2000"},
                       "conditions": node_conditions(),
                       "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 18250}}}}


def node_conditions():
    t = now_rfc3339()
    return [{"type": "Ready", "status": "True", "reason": "KubeletReady",
             "message": "kubelet is posting ready status",
             "lastHeartbeatTime": t, "lastTransitionTime": t}]


def pod_body(name, node, app):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"nodeName": node, "containers": [{
                "name": "app", "image": "registry.example/%s:1.0" % app,
                "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}]}}


def running_status(pod):
    t = now_rfc3339()
    return {"status": {"phase": "Running", "podIP": "10.0.0.1", "startTime": t,
                       "conditions": [{"type": t2, "status": "True", "lastTransitionTime": t}
                                      for t2 in ("Initialized", "Ready", "ContainersReady",
                                                 "PodScheduled")],
                       "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0,
                                              "started": True, "image": pod,
                                              "imageID": "", "state": {"running": {
                                                  "startedAt": t}}}]}}


def crashloop_status(image):
    t = now_rfc3339()
    return {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "False", "lastTransitionTime": t}],
        "containerStatuses": [{
            "name": "app", "ready": False, "restartCount": 6, "image": image, "imageID": "",
            "started": False,
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                                  "message": "back-off 2m40s restarting failed container"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                         "startedAt": t, "finishedAt": t}}}]}}


class Bench:
    def __init__(self, args):
        self.args = args
        self.k8s_local = os.path.join(args.shared, "tools", "k8s-local")
        self.dir = tempfile.mkdtemp(prefix="bench-scale-")
        self.daemon = None
        self.churn = None
        self.rows = []
        self.stop_heartbeat = threading.Event()
        self.nodes = ["sim-node-%d" % i for i in range(args.nodes)]

    # ---- cluster
    def up(self):
        res = subprocess.run([self.k8s_local, "up", self.dir], capture_output=True, text=True,
                             timeout=300)
        if res.returncode != 0:
            sys.exit("k8s-local up failed: " + (res.stderr or res.stdout)[-500:])
        env = dict(re.findall(r"export (\w+)=(.*)", open(os.path.join(self.dir, "env")).read()))
        self.api = Api(self.dir, env["APISERVER"], env["K8S_LOCAL_ADMIN_TOKEN"])

    def down(self):
        self.stop_heartbeat.set()
        subprocess.run([self.k8s_local, "down", self.dir], capture_output=True, timeout=120)
        if not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def heartbeat(self):
        """Keep the nodes Ready: the node lifecycle controller marks silent nodes Unknown."""
        while not self.stop_heartbeat.wait(10):
            for n in self.nodes:
                try:
                    self.api.call("PATCH", "/api/v1/nodes/%s/status" % n,
                                  {"status": {"conditions": node_conditions()}},
                                  "application/strategic-merge-patch+json")
                except RuntimeError:
                    pass

    # ---- the daemon
    def start_daemon(self):
        port = free_port()
        self.port = port
        config = os.path.join(self.dir, "triaged.toml")
        with open(config, "w") as f:
            f.write('[daemon]\nstate_dir = "%s"\nlisten = "127.0.0.1:%d"\n'
                    '[llm]\nprovider = "none"\n[[notify]]\nkind = "log"\n'
                    '[kubernetes]\ncluster_name = "bench"\nexclude_namespaces = []\n'
                    % (os.path.join(self.dir, "var"), port))
        env = dict(os.environ)
        env.pop("KUBERNETES_SERVICE_HOST", None)
        env["KUBECONFIG"] = os.path.join(self.dir, "admin.kubeconfig")
        self.daemon_log = os.path.join(self.dir, "triaged.log")
        self.daemon = subprocess.Popen([self.args.bin, "run", "-c", config], env=env,
                                       stdout=open(os.path.join(self.dir, "triaged.out"), "w"),
                                       stderr=open(self.daemon_log, "w"))
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        sys.exit("the daemon did not listen; log:\n" + open(self.daemon_log).read()[-2000:])

    def incidents(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/v1/incidents?limit=1000")
            return len(json.loads(conn.getresponse().read())["incidents"])
        except (OSError, ValueError, KeyError):
            return -1
        finally:
            conn.close()

    def sample(self, stage, pods):
        pid = self.daemon.pid
        status = open("/proc/%d/status" % pid).read()
        rss = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
        hwm = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))
        # Most of an idle RSS is shared libraries (RssFile); RssAnon is the daemon's own heap.
        anon = int(re.search(r"RssAnon:\s+(\d+) kB", status).group(1))
        # Fields after the ")" of comm: utime and stime are the 14th and 15th of the line.
        stat = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        ticks = int(stat[11]) + int(stat[12])
        cpu = ticks / os.sysconf("SC_CLK_TCK")
        row = (stage, pods, rss / 1024.0, anon / 1024.0, hwm / 1024.0, cpu, self.incidents())
        self.rows.append(row)
        print("  %-22s pods=%-5d rss=%.1f MiB (anon %.1f) hwm=%.1f MiB cpu=%.2f s incidents=%d"
              % row, flush=True)

    def settle(self, seconds=None):
        """Wait until the daemon's CPU stops moving (it has caught up with the watch)."""
        time.sleep(2)
        last = None
        deadline = time.time() + (seconds or 60)
        while time.time() < deadline:
            stat = open("/proc/%d/stat" % self.daemon.pid).read().rsplit(")", 1)[1].split()
            ticks = int(stat[11]) + int(stat[12])
            if last is not None and ticks - last <= 2:
                return
            last = ticks
            time.sleep(1)

    # ---- workload
    def create_pods(self, start, end, pool):
        def one(i):
            name = "p-%05d" % i
            node = self.nodes[i % len(self.nodes)]
            app = "app-%03d" % (i // 50)
            self.api.call("POST", "/api/v1/namespaces/%s/pods" % NS, pod_body(name, node, app))
            self.api.call("PATCH", "/api/v1/namespaces/%s/pods/%s/status" % (NS, name),
                          running_status("registry.example/%s:1.0" % app),
                          "application/merge-patch+json")
        list(pool.map(one, range(start, end)))

    def run(self):
        a = self.args
        print("bench/scale: k8s-local up in %s" % self.dir, flush=True)
        self.up()
        try:
            self.start_daemon()
            print("idle: daemon on the empty cluster for %d s" % a.idle_seconds, flush=True)
            time.sleep(a.idle_seconds)
            self.sample("idle (empty cluster)", 0)
            for n in self.nodes:
                self.api.call("POST", "/api/v1/nodes", node_body(n))
            threading.Thread(target=self.heartbeat, daemon=True).start()
            self.api.call("POST", "/api/v1/namespaces",
                          {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
            self.settle()
            self.sample("%d nodes, 0 pods" % len(self.nodes), 0)
            created = 0
            started = time.time()
            with ThreadPoolExecutor(max_workers=8) as pool:
                for mark in [m for m in (1000, 2500, 5000) if m <= a.pods] + \
                        ([a.pods] if a.pods not in (1000, 2500, 5000) else []):
                    self.create_pods(created, mark, pool)
                    created = mark
                    print("  (%d pods created in %.0f s)" % (created, time.time() - started),
                          flush=True)
                    self.settle()
                    self.sample("running", created)
                churn = min(300, created)
                crash = min(100, created)

                def recreate(i):
                    name = "p-%05d" % i
                    self.api.call("DELETE", "/api/v1/namespaces/%s/pods/%s?gracePeriodSeconds=0"
                                  % (NS, name))
                list(pool.map(recreate, range(churn)))
                self.create_pods(0, churn, pool)

                def crashloop(i):
                    name = "p-%05d" % i
                    self.api.call("PATCH", "/api/v1/namespaces/%s/pods/%s/status" % (NS, name),
                                  crashloop_status("registry.example/app-%03d:1.0" % (i // 50)),
                                  "application/merge-patch+json")
                list(pool.map(crashloop, range(created - crash, created)))
            self.churn = (churn, crash)
            self.settle()
            self.sample("after churn", created)
        finally:
            if self.daemon and self.daemon.poll() is None:
                self.daemon.send_signal(signal.SIGTERM)
                try:
                    self.daemon.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.daemon.kill()
            self.down()
        self.table()

    def table(self):
        print()
        print("| stage | pods | RSS MiB | of which anon MiB | peak RSS (HWM) MiB "
              "| CPU s (cumulative) | incidents |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for row in self.rows:
            print("| %s | %d | %.1f | %.1f | %.1f | %.2f | %d |" % row)
        if getattr(self, "churn", None):
            print("(churn: %d pods deleted and recreated, then %d pods marked CrashLoopBackOff; "
                  "bare pods, so one incident each)" % self.churn)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pods", type=int, default=5000)
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--idle-seconds", type=int, default=30)
    p.add_argument("--bin", default=os.path.join(ROOT, "build", "triaged"))
    p.add_argument("--shared", default=os.environ.get("SHARED", os.path.join(ROOT, "..",
                                                                            "shared")))
    p.add_argument("--keep", action="store_true", help="keep the cluster directory")
    args = p.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit("no %s: run `make %s` first" % (args.bin, os.path.relpath(args.bin, ROOT)))
    Bench(args).run()


if __name__ == "__main__":
    main()
