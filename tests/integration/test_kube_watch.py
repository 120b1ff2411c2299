"""The Kubernetes list+watch machinery (watchers/kube_reflector.c, kube_auth.c,
kube_stream.c) against a real apiserver from ../shared/tools/k8s-local, driven
through tests/tools/kube_watch_probe.c, which prints what a consumer of the
reflector sees. Plus a fake apiserver that sends a malformed and a truncated
watch stream.

The cluster is started once for the module (about 8 s) and torn down at exit.
"""
import atexit
import base64
import http.server
import json
import os
import re
import shutil
import signal
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

from harness import BIN, ROOT, SHARED, SkipTest

K8S_LOCAL = os.path.join(SHARED, "tools", "k8s-local")
_probes = {}  # probe name -> built binary
_cluster = None


# ---------------------------------------------------------------- the probe

def build_probe(name, include_dirs=("daemon", "watchers")):
    """Build tests/tools/NAME.c against the library the daemon under test uses (once per
    process; rebuilt when the source or the library is newer). Shared with
    test_kube_evidence.py."""
    if name in _probes:
        return _probes[name]
    lib = os.path.join(os.path.dirname(BIN), "libtriaged.a")
    if not os.path.exists(lib):
        raise SkipTest("no %s to link the probe against" % lib)
    out = os.path.join(os.path.dirname(BIN), "tools", name)
    src = os.path.join(ROOT, "tests", "tools", name + ".c")
    if not os.path.exists(out) or os.path.getmtime(out) < max(os.path.getmtime(src),
                                                              os.path.getmtime(lib)):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        pkgs = "libuv libcurl libcjson sqlite3 libgit2 yaml-0.1 libcrypto"
        flags = subprocess.run("pkg-config --cflags --libs " + pkgs, shell=True,
                               capture_output=True, text=True, check=True).stdout.split()
        san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"] \
            if "/asan/" in lib else []
        cmd = (["cc", "-std=c11", "-g", "-O1", "-D_GNU_SOURCE", "-I" + ROOT] +
               ["-I" + os.path.join(ROOT, d) for d in include_dirs] + san +
               ["-o", out, src, lib] + flags + ["-lhttp_parser", "-lm", "-lpthread"])
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, "building the probe failed:\n" + res.stderr
    _probes[name] = out
    return out


def probe_bin():
    """tests/tools/kube_watch_probe.c, built."""
    return build_probe("kube_watch_probe")


class Probe:
    """kube_watch_probe running in the background; its stdout lines are collected."""

    def __init__(self, args, env=None, binary=None):
        full_env = dict(os.environ)
        full_env.pop("KUBERNETES_SERVICE_HOST", None)
        full_env.update(env or {})
        full_env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1"
        self.errf = tempfile.NamedTemporaryFile(prefix="probe-err-", delete=False)
        self.proc = subprocess.Popen([binary or probe_bin()] + args, stdout=subprocess.PIPE,
                                     stderr=self.errf, text=True, env=full_env)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_for(self, pattern, timeout=20, start=0):
        """Index of the first line at or after start matching pattern (a regex)."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    if rx.search(self.lines[i]):
                        return i
                left = deadline - time.time()
                if left <= 0 or self.proc.poll() is not None and not self.reader.is_alive():
                    raise AssertionError("no line matching %r within %ss; output:\n%s\n"
                                         "stderr:\n%s" % (pattern, timeout,
                                                          "\n".join(self.lines), self.stderr()))
                self.cond.wait(min(left, 0.2))

    def count(self, pattern):
        rx = re.compile(pattern)
        with self.cond:
            return sum(1 for l in self.lines if rx.search(l))

    def stderr(self):
        with open(self.errf.name) as f:
            return f.read()

    def stop(self):
        """SIGTERM; the probe must close everything and exit 0 (clean loop, no leaks)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("probe did not stop; stderr:\n" + self.stderr())
        self.reader.join(5)
        err = self.stderr()
        os.unlink(self.errf.name)
        assert code == 0, "probe exited %s; stderr:\n%s" % (code, err)
        assert "EXIT loop_close=0" in self.lines, self.lines[-5:]
        return err


# ---------------------------------------------------------------- the cluster

class Cluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kwatch-k8s-")
        res = subprocess.run([K8S_LOCAL, "up", self.dir], capture_output=True, text=True,
                             timeout=180)
        if res.returncode != 0:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise SkipTest("k8s-local up failed here: " + (res.stderr or res.stdout)[-300:])
        self.env = {}
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                m = re.match(r"export (\w+)=(.*)", line.strip())
                if m:
                    self.env[m.group(1)] = m.group(2)
        self.server = self.env["APISERVER"]
        self.token = self.env["K8S_LOCAL_ADMIN_TOKEN"]
        self.ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "ca.crt"))

    def path(self, name):
        return os.path.join(self.dir, name)

    def api(self, method, path, body=None, content_type="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + self.token,
                                              "Content-Type": content_type})
        with urllib.request.urlopen(req, context=self.ctx, timeout=15) as resp:
            return json.loads(resp.read() or b"{}")

    def create_pod(self, ns, name):
        # In a fresh namespace the ServiceAccount admission plugin answers 500/403 until
        # the controller-manager has created the "default" service account: retry.
        deadline = time.time() + 20
        while True:
            try:
                return self.api("POST", "/api/v1/namespaces/%s/pods" % ns, {
                    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                    "spec": {"containers": [{"name": "app", "image": "busybox"}]}})
            except urllib.error.HTTPError as e:
                if e.code not in (403, 500) or time.time() > deadline:
                    raise
                time.sleep(0.2)

    def ensure_namespace(self, ns):
        try:
            self.api("POST", "/api/v1/namespaces",
                     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        except urllib.error.HTTPError as e:
            if e.code != 409:
                raise

    def component(self, action, name):
        res = subprocess.run([K8S_LOCAL, action, self.dir, name], capture_output=True,
                             text=True, timeout=90)
        assert res.returncode == 0, res.stderr

    def etcd_bump_revision(self):
        """Write a key outside /registry through etcd's v3 JSON gateway."""
        etcd = self.env["ETCD_ENDPOINT"]
        body = {"key": base64.b64encode(b"/triaged-test/bump").decode(),
                "value": base64.b64encode(str(time.time()).encode()).decode()}
        req = urllib.request.Request(etcd + "/v3/kv/put", data=json.dumps(body).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def compact_etcd(self):
        """Compact etcd at its current revision through its v3 JSON gateway."""
        etcd = self.env["ETCD_ENDPOINT"]
        key = base64.b64encode(b"/registry").decode()

        def post(path, body):
            req = urllib.request.Request(etcd + path, data=json.dumps(body).encode(),
                                         method="POST")
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read())
        rev = int(post("/v3/kv/range", {"key": key, "limit": 1})["header"]["revision"])
        post("/v3/kv/compaction", {"revision": rev, "physical": True})
        return rev

    def down(self):
        subprocess.run([K8S_LOCAL, "down", self.dir], capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def cluster():
    global _cluster
    if _cluster is None:
        if not os.access(K8S_LOCAL, os.X_OK):
            raise SkipTest("no k8s-local at " + K8S_LOCAL)
        # `up` without built binaries starts a build of several minutes, and that build
        # wipes the source tree of any build already running: never trigger it from here.
        cache = os.environ.get("K8S_LOCAL_CACHE", os.path.expanduser("~/.cache/k8s-local"))
        if not os.access(os.path.join(cache, "v1.20", "bin", "kube-apiserver"), os.X_OK):
            raise SkipTest("k8s-local is not built here (run `k8s-local build` first)")
        probe_bin()
        _cluster = Cluster()
        atexit.register(_cluster.down)
    return _cluster


def fast(*args):
    """Probe arguments with short backoffs so fault tests stay quick."""
    return ["--backoff-ms", "200", "--backoff-max-ms", "1000"] + list(args)


# ---------------------------------------------------------------- k8s-local cases

def test_list_watch_sees_created_pod_and_its_status_change():
    c = cluster()
    c.ensure_namespace("kw-basic")
    p = Probe(fast("--kubeconfig", c.path("admin.kubeconfig"), "--namespace", "kw-basic"))
    try:
        p.wait_for(r"^SYNC_END 0 rv=\d+")
        p.wait_for(r"^HEALTH ok (synced 0 objects|watching from resourceVersion)")
        c.create_pod("kw-basic", "web-1")
        p.wait_for(r"^ADDED kw-basic/web-1 rv=\d+ phase=Pending kind=Pod")
        c.api("PATCH", "/api/v1/namespaces/kw-basic/pods/web-1/status",
              {"status": {"phase": "Running"}}, "application/merge-patch+json")
        p.wait_for(r"^MODIFIED kw-basic/web-1 rv=\d+ phase=Running")
        c.api("DELETE", "/api/v1/namespaces/kw-basic/pods/web-1")
        p.wait_for(r"^DELETED kw-basic/web-1 ")
    finally:
        p.stop()


def test_exclude_namespaces_and_list_items_get_their_kind():
    c = cluster()
    p = Probe(["--kubeconfig", c.path("admin.kubeconfig"), "--resource", "serviceaccounts",
               "--exclude", "kube-system,kube-public"])
    try:
        p.wait_for(r"^SYNC_END \d+")
        assert p.count(r"^ADDED default/default rv=\d+ phase=- kind=ServiceAccount$") == 1, \
            p.lines
        assert p.count(r" kube-system/") == 0, p.lines
    finally:
        p.stop()


def test_apiserver_restart_reconnects_with_backoff_and_resyncs():
    c = cluster()
    c.ensure_namespace("kw-restart")
    p = Probe(fast("--kubeconfig", c.path("admin.kubeconfig"), "--namespace", "kw-restart"))
    try:
        p.wait_for(r"^SYNC_END 0 ")
        c.component("stop", "apiserver")
        p.wait_for(r"^HEALTH unavailable watch pods: .*retrying in", timeout=20)
        time.sleep(3)  # several retries: still one warning
        c.component("start", "apiserver")
        c.create_pod("kw-restart", "after-restart")
        p.wait_for(r"^(ADDED) kw-restart/after-restart ", timeout=30)
        p.wait_for(r"^HEALTH ok ", timeout=10)
        err = p.stop()
        assert len(re.findall(r"warn .*kubernetes: watch pods: ", err)) == 1, err
        assert "connection to the apiserver restored" in err, err
    finally:
        if p.proc.poll() is None:
            p.stop()


def test_expired_resource_version_relists_with_pages_and_misses_nothing():
    c = cluster()
    c.ensure_namespace("kw-gone")
    for i in range(3):
        c.create_pod("kw-gone", "old-%d" % i)
    p = Probe(fast("--kubeconfig", c.path("admin.kubeconfig"), "--namespace", "kw-gone",
                   "--page-limit", "2"))
    try:
        p.wait_for(r"^SYNC_END 3 ")
        # Freeze the consumer, change the world, compact etcd and restart the apiserver
        # so that neither etcd nor the watch cache can replay what happened meanwhile.
        p.proc.send_signal(signal.SIGSTOP)
        c.create_pod("kw-gone", "new-1")
        c.api("DELETE", "/api/v1/namespaces/kw-gone/pods/old-0")
        c.component("stop", "apiserver")
        # The watch may already have the changes above in its socket buffer: move
        # etcd's revision past them (a key outside the apiserver's prefix) before
        # compacting, so that the last resourceVersion the probe saw is surely gone.
        c.etcd_bump_revision()
        c.compact_etcd()
        c.component("start", "apiserver")
        mark = len(p.lines)
        p.proc.send_signal(signal.SIGCONT)
        begin = p.wait_for(r"^SYNC_BEGIN", timeout=30, start=mark)
        end = p.wait_for(r"^SYNC_END 3 ", timeout=30, start=begin)
        batch = p.lines[begin:end]
        names = sorted(re.findall(r"^ADDED kw-gone/(\S+)", "\n".join(batch), re.M))
        assert names == ["new-1", "old-1", "old-2"], batch
        err = p.stop()
        assert re.search(r"(410 Gone|resourceVersion expired).*listing again", err), err
        assert re.search(r'METRICS triaged_kube_relists_total\{resource="kubernetes/pods/'
                         r'kw-gone",reason="expired"\} [1-9]', "\n".join(p.lines)), p.lines
    finally:
        if p.proc.poll() is None:
            p.proc.send_signal(signal.SIGCONT)
            p.stop()


def test_forbidden_is_one_clear_line_and_degraded_health():
    c = cluster()
    p = Probe(fast("--kubeconfig", c.path("viewer.kubeconfig"), "--forbidden-retry-ms", "300"))
    try:
        want = ('forbidden: cannot list pods in all namespaces (user "viewer"): '
                'grant get,list,watch on pods')
        p.wait_for(r"^HEALTH degraded " + re.escape(want))
        time.sleep(1.5)  # a few slow retries
        err = p.stop()
        assert err.count(want) == 1, err
        assert "kubernetes: " + want in err, err
        assert 'METRICS triaged_kube_resource_forbidden{resource="kubernetes/pods"} 1' in p.lines
    finally:
        if p.proc.poll() is None:
            p.stop()


def test_client_certificate_kubeconfig_works():
    c = cluster()
    p = Probe(["--kubeconfig", c.path("admin-cert.kubeconfig"), "--resource", "namespaces"])
    try:
        p.wait_for(r"^ADDED /kube-system rv=")
        p.wait_for(r"^SYNC_END \d+ ")
    finally:
        p.stop()


def write_exec_kubeconfig(c, d, script_body):
    script = os.path.join(d, "login.sh")
    with open(script, "w") as f:
        f.write(script_body)
    os.chmod(script, 0o755)
    with open(c.path("admin.kubeconfig")) as f:
        text = f.read()
    text = re.sub(r"(?m)^    token: .*$", "    exec:\n"
                  "      apiVersion: client.authentication.k8s.io/v1beta1\n"
                  "      command: %s\n      args: [\"%s\"]\n"
                  "      env: [{name: LOGIN_DIR, value: \"%s\"}]\n" % (script, d, d), text)
    path = os.path.join(d, "exec.kubeconfig")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_exec_plugin_credentials_and_rerun_after_401():
    c = cluster()
    d = tempfile.mkdtemp(prefix="kwatch-exec-")
    # First run hands out a token the apiserver rejects; later runs the real one.
    script = """#!/bin/sh
n=$(cat "$1/runs" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$1/runs"
[ "$LOGIN_DIR" = "$1" ] || { echo "env not passed" >&2; exit 3; }
echo "$KUBERNETES_EXEC_INFO" > "$1/exec-info.json"
if [ $n -eq 1 ]; then tok=not-a-valid-token; else tok=%s; fi
printf '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1",'
printf '"status":{"token":"%%s","expirationTimestamp":"2099-01-01T00:00:00Z"}}' "$tok"
""" % c.token
    path = write_exec_kubeconfig(c, d, script)
    p = Probe(fast("--kubeconfig", path, "--resource", "namespaces"))
    try:
        p.wait_for(r"^SYNC_END \d+ ", timeout=30)
        with open(os.path.join(d, "runs")) as f:
            runs = int(f.read())
        assert runs >= 2, runs
        with open(os.path.join(d, "exec-info.json")) as f:
            info = json.load(f)
        assert info["kind"] == "ExecCredential" and info["spec"]["interactive"] is False, info
        # The cached credential is used from now on: no further runs while watching.
        time.sleep(1)
        with open(os.path.join(d, "runs")) as f:
            assert int(f.read()) == runs
    finally:
        p.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_exec_plugin_failure_is_reported():
    c = cluster()
    d = tempfile.mkdtemp(prefix="kwatch-exec-")
    path = write_exec_kubeconfig(c, d, "#!/bin/sh\necho 'login expired, run sso login' >&2\n"
                                       "exit 7\n")
    p = Probe(fast("--kubeconfig", path))
    try:
        p.wait_for(r'^HEALTH unavailable .*exec plugin ".*login.sh" exited with status 7: '
                   r'login expired, run sso login')
    finally:
        p.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_in_cluster_service_account_files_and_env():
    c = cluster()
    sa = tempfile.mkdtemp(prefix="kwatch-sa-")
    with open(os.path.join(sa, "token"), "w") as f:
        f.write(c.token + "\n")
    shutil.copy(c.path("ca.crt"), os.path.join(sa, "ca.crt"))
    with open(os.path.join(sa, "namespace"), "w") as f:
        f.write("default")
    host, port = re.match(r"https://([^:]+):(\d+)", c.server).groups()
    p = Probe(["--kubeconfig", "", "--sa-dir", sa, "--resource", "namespaces"],
              env={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port})
    try:
        p.wait_for(r"^ADDED /default rv=")
        p.wait_for(r"^SYNC_END \d+ ")
    finally:
        p.stop()
        shutil.rmtree(sa, ignore_errors=True)


def test_discovery_finds_builtin_and_skips_absent_crds():
    c = cluster()
    for target, served in (("apps/v1/deployments", 1), ("argoproj.io/v1alpha1/applications", 0),
                           ("kustomize.toolkit.fluxcd.io/v1/kustomizations", 0)):
        p = Probe(["--kubeconfig", c.path("admin.kubeconfig"), "--discover", target])
        try:
            p.wait_for(r"^DISCOVER rc=0 served=%d" % served)
        finally:
            p.stop()


# ---------------------------------------------------------------- fake apiserver

class FakeApiserver(http.server.BaseHTTPRequestHandler):
    """LIST answers two pods; each WATCH misbehaves in turn: a malformed line, then a
    truncated last line, then a good event and a clean end."""
    protocol_version = "HTTP/1.0"
    watches = []
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def send_json(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/version":
            return self.send_json({"gitVersion": "v1.99.0-fake"})
        if "watch=1" not in self.path:
            pods = [{"metadata": {"name": n, "namespace": "fake", "resourceVersion": "10"}}
                    for n in ("a", "b")]
            return self.send_json({"kind": "PodList", "apiVersion": "v1",
                                   "metadata": {"resourceVersion": "10"}, "items": pods})
        with self.lock:
            self.watches.append(self.path)
            n = len(self.watches)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()

        def event(kind, name, rv):
            return json.dumps({"type": kind, "object": {"metadata": {
                "name": name, "namespace": "fake", "resourceVersion": rv}}}) + "\n"
        if n == 1:
            self.wfile.write((event("MODIFIED", "a", "11") + '{"type":"MODIFIED","object":{'
                              '"metadata":{"name":"b"\n').encode())
        elif n == 2:
            self.wfile.write((event("ADDED", "c", "12")).encode())
            self.wfile.flush()
            self.wfile.write(event("DELETED", "c", "13")[:25].encode())
        elif n == 3:
            self.wfile.write(event("DELETED", "a", "14").encode())
            self.wfile.flush()
            time.sleep(30)  # the probe is stopped before this ends
        self.wfile.flush()


def test_malformed_and_truncated_watch_stream_reconnect_without_crash():
    FakeApiserver.watches = []
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), FakeApiserver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    d = tempfile.mkdtemp(prefix="kwatch-fake-")
    kc = os.path.join(d, "kubeconfig")
    with open(kc, "w") as f:
        f.write("apiVersion: v1\nkind: Config\nclusters:\n- name: f\n  cluster:\n"
                "    server: http://127.0.0.1:%d\nusers:\n- name: u\n  user:\n    token: t\n"
                "contexts:\n- name: f\n  context: {cluster: f, user: u}\ncurrent-context: f\n"
                % server.server_address[1])
    p = Probe(fast("--kubeconfig", kc))
    try:
        p.wait_for(r"^SYNC_END 2 rv=10")
        p.wait_for(r"^MODIFIED fake/a rv=11")
        p.wait_for(r"^ADDED fake/c rv=12")
        p.wait_for(r"^DELETED fake/a rv=14")
        err = p.stop()
        assert "watch stream line 2: not valid JSON" in err, err
        assert "watch stream line 2: truncated last line" in err, err
        assert p.count(r"^DELETED fake/c") == 0, p.lines  # the truncated line is not parsed
        # Each re-watch resumes from the last event processed, so nothing is skipped.
        assert "resourceVersion=10" in FakeApiserver.watches[0], FakeApiserver.watches
        assert "resourceVersion=11" in FakeApiserver.watches[1], FakeApiserver.watches
        assert "resourceVersion=12" in FakeApiserver.watches[2], FakeApiserver.watches
        for w in FakeApiserver.watches:
            assert "allowWatchBookmarks=true" in w and "timeoutSeconds=" in w, w
    finally:
        if p.proc.poll() is None:
            p.stop()
        server.shutdown()
        server.server_close()
        shutil.rmtree(d, ignore_errors=True)
