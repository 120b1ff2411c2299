"""The fixer through the real daemon: a Terraform run is posted, the (fake)
OpenAI-compatible model proposes a patch, `triaged accept ID` accepts it, and
the daemon pushes one branch to a real git server (lighttpd +
git-http-backend, basic auth) and opens one PR on a fake GitHub that speaks
the recorded reply bodies; the PR is then followed to merged."""
import json
import os
import subprocess
import tempfile
import threading
import time
import http.server
import shutil

from harness import Daemon, SHARED, ROOT, SkipTest, free_port, run_cli
from test_terraform import failing_log

GIT = ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com",
       "-c", "init.defaultBranch=main"]
SECRET_LINE = '    vault-token: "hvs.KEEP-this-SECRET-exactly"   \n'
WEB = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n"
       + SECRET_LINE + "spec:\n  replicas: 0\n")
PATCH = ("```diff\n--- a/apps/web.yaml\n+++ b/apps/web.yaml\n@@ -6,2 +6,2 @@\n spec:\n"
         "-  replicas: 0\n+  replicas: 2\n```\n")
PR_BODY = os.path.join(SHARED, "fixtures", "github", "pygithub-Repository.testCreatePull.201.txt")


def fake_llm(port, patch=PATCH):
    reply = {"summary": "web is broken by its manifest", "root_cause": "apps/web.yaml",
             "severity": "error", "confidence": 0.9, "evidence": ["apps/web.yaml"],
             "remediation": ["apply the patch"], "patch": patch}

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.dumps({"id": "x", "object": "chat.completion", "model": "fake",
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant",
                                                        "content": json.dumps(reply)}}],
                               "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                                         "total_tokens": 15}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass
    return http.server.HTTPServer(("127.0.0.1", port), H)


class FakeGitHub:
    """POST pulls → the recorded 201; labels → 200; GET pull → open, then merged."""

    def __init__(self):
        with open(PR_BODY) as f:
            self.pr = json.loads(f.read().rstrip("\n").split("\n")[-1])
        self.requests = []
        self.merged = False
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            def reply(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.requests.append(("POST", self.path, json.loads(data or b"{}")))
                if self.path.endswith("/pulls"):
                    self.reply(201, fake.pr)
                else:
                    self.reply(200, [{"name": "triaged"}])

            def do_GET(self):
                fake.requests.append(("GET", self.path, None))
                pr = dict(fake.pr)
                if fake.merged:
                    pr.update(state="closed", merged=True, merged_at="2026-11-25T10:00:00Z")
                self.reply(200, pr)

            def log_message(self, *a):
                pass
        self.port = free_port()
        self.server = http.server.HTTPServer(("127.0.0.1", self.port), H)


def serve(server):
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    return server


def wait_state(d, incident_id, states, timeout=60):
    deadline = time.time() + timeout
    shown = None
    while time.time() < deadline:
        shown = json.loads(d.request("GET", "/v1/incidents/%d" % incident_id)[2])
        if shown["incident"]["state"] in states:
            return shown
        time.sleep(0.3)
    raise AssertionError("incident %d never reached %s: %s\n%s"
                         % (incident_id, states, shown, d.stderr()))


def fix_flow(manifest, patch, fixed, make_incident, extra_config="", env=None):
    """A repository holding apps/web.yaml = manifest on a real git server, a fake model
    that proposes patch, a fake GitHub; make_incident(d) opens the incident and returns
    its id; `triaged accept` must give one PR whose branch holds fixed, followed to
    merged (returns the PR body). fixed None: the patch must be refused (the incident
    failed, nothing pushed, no PR; returns the incident's error)."""
    if shutil.which("lighttpd") is None:
        raise SkipTest("lighttpd is not installed")
    work = tempfile.mkdtemp(prefix="triaged-it-git-")
    server_dir = os.path.join(work, "server")
    os.makedirs(server_dir)
    genv = dict(os.environ, GIT_HTTP_USER="triaged", GIT_HTTP_PASSWORD="it-git-s3cret")
    tool = os.path.join(ROOT, "tests", "tools", "git-http-server")
    git_port = int(subprocess.run([tool, "start", server_dir], env=genv, check=True,
                                  capture_output=True, text=True).stdout.strip())
    bare = os.path.join(server_dir, "repos", "deploy.git")
    seed = os.path.join(work, "seed")
    subprocess.run(GIT + ["init", "-q", "--bare", bare], check=True)
    subprocess.run(GIT + ["init", "-q", seed], check=True)
    os.makedirs(os.path.join(seed, "apps"))
    with open(os.path.join(seed, "apps", "web.yaml"), "w") as f:
        f.write(manifest)
    subprocess.run("git add -A && %s commit -qm initial && git push -q %s HEAD:refs/heads/main"
                   % (" ".join(GIT), bare), shell=True, cwd=seed, check=True)

    llm = serve(fake_llm(free_port(), patch))
    gh = FakeGitHub()
    serve(gh.server)
    d = Daemon(config_text=(
        '[daemon]\nstate_dir = "@DIR@/var"\nlisten = "127.0.0.1:@PORT@"\n'
        'public_url = "https://triaged.example"\n'
        '[llm]\nprovider = "openai"\nbase_url = "http://127.0.0.1:%d/v1"\nmodel = "fake"\n'
        'api_key_env = ""\n'
        '[gitops]\nurl = "http://127.0.0.1:%d/git/deploy.git"\ntoken_env = "TR_IT_GIT"\n'
        'username = "triaged"\nauthor = "Fixer Bot <fixer@example.com>"\n'
        '[forge]\nkind = "github"\napi_url = "http://127.0.0.1:%d"\nrepo = "acme/deploy"\n'
        'token_env = "TR_IT_FORGE"\n[fixer]\npoll_interval = "1s"\n'
        % (llm.server_address[1], git_port, gh.port)) + extra_config,
        env=dict({"TR_IT_GIT": "it-git-s3cret", "TR_IT_FORGE": "ghp-it-forge-token"},
                 **(env or {})))
    try:
        d.start()
        incident_id = make_incident(d)
        wait_state(d, incident_id, ("analyzed", "patch_proposed"))
        res = run_cli("accept", str(incident_id), "-c", d.config, env=d.env)
        assert res.returncode == 0, (res.stdout, res.stderr)
        shown = wait_state(d, incident_id, ("pr_open", "pr_merged", "failed"))
        if fixed is None:
            assert shown["incident"]["state"] == "failed", shown
            assert not [r for r in gh.requests if r[0] == "POST"], gh.requests
            refs = subprocess.run(["git", "--git-dir", bare, "for-each-ref", "refs/heads/"],
                                  check=True, capture_output=True, text=True).stdout
            assert "triaged/" not in refs, refs
            assert d.stop()[0] == 0
            return shown["incident"]["error"]
        assert shown["incident"]["state"] in ("pr_open", "pr_merged"), shown

        branch = "triaged/%d" % incident_id
        content = subprocess.run(["git", "--git-dir", bare, "show", branch + ":apps/web.yaml"],
                                 check=True, capture_output=True, text=True).stdout
        assert content == fixed, content
        count = subprocess.run(["git", "--git-dir", bare, "rev-list", "--count",
                                "main.." + branch], check=True, capture_output=True,
                               text=True).stdout.strip()
        assert count == "1", count
        posts = [r for r in gh.requests if r[0] == "POST" and r[1].endswith("/pulls")]
        assert len(posts) == 1, gh.requests
        assert posts[0][1] == "/repos/acme/deploy/pulls", posts
        assert posts[0][2]["head"] == branch and posts[0][2]["base"] == "main", posts
        assert "https://triaged.example/v1/incidents/%d" % incident_id in posts[0][2]["body"]

        pr = wait_state(d, incident_id, ("pr_open", "pr_merged"))["pull_request"]
        assert pr["url"] == "https://github.com/PyGithub/PyGithub/pull/31", pr
        assert pr["branch"] == branch and pr["forge"] == "github", pr

        gh.merged = True
        shown = wait_state(d, incident_id, ("pr_merged",))
        assert shown["pull_request"]["state"] == "merged", shown
        status, _, metrics = d.request("GET", "/metrics")
        assert b"triaged_fixer_prs_opened_total 1" in metrics, metrics
        assert b"triaged_fixer_prs_merged_total 1" in metrics, metrics
        assert b"it-git-s3cret" not in metrics and "it-git-s3cret" not in d.stderr()
        assert d.stop()[0] == 0
        return posts[0][2]["body"]
    finally:
        d.cleanup()
        llm.shutdown()
        gh.server.shutdown()
        subprocess.run([tool, "stop", server_dir], env=genv)
        shutil.rmtree(work, ignore_errors=True)


def test_accepted_patch_becomes_one_pr_followed_to_merged():
    def terraform_failure(d):
        log, _ = failing_log("validation")
        status, _, body = d.request("POST", "/v1/terraform/runs?workspace=fix&operation=apply",
                                    body=log)
        assert status == 202, body
        return json.loads(body)["incident_id"]
    body = fix_flow(WEB, PATCH, WEB.replace("replicas: 0", "replicas: 2"), terraform_failure)
    # No [kubernetes] cluster: the PR says the schema check was skipped, and why.
    assert "- schema: skipped (no cluster schema: " in body, body


OOM_WEB = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
           "  namespace: fixe2e\n  annotations:\n" + SECRET_LINE +
           "spec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: web\n"
           "  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n"
           "      containers:\n      - name: app\n        image: registry.example/web:1.0\n"
           "        resources:\n          limits:\n            memory: 64Mi\n")
OOM_PATCH = ("--- a/apps/web.yaml\n+++ b/apps/web.yaml\n@@ -19,3 +19,3 @@\n"
             "         resources:\n           limits:\n-            memory: 64Mi\n"
             "+            memory: 256Mi\n")


def oom_killed_web(ns):
    """The repo's Deployment web deployed on k8s-local in ns; returns make_incident for
    fix_flow: it plays the kubelet (OOM-killed, backing off) and waits for the incident."""
    from test_kube_incidents import ensure_node, pods_of, play_kubelet_oom_crashloop
    from test_kube_watch import cluster

    c = cluster()
    ensure_node(c)
    c.ensure_namespace(ns)
    c.api("POST", "/apis/apps/v1/namespaces/%s/deployments" % ns, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{
                                  "name": "app", "image": "registry.example/web:1.0",
                                  "resources": {"limits": {"memory": "64Mi"}}}]}}}})

    def make_incident(d):
        for pod in pods_of(c, ns, "web", 1):
            play_kubelet_oom_crashloop(c, ns, pod)
        deadline = time.time() + 60
        while time.time() < deadline:
            found = [i for i in json.loads(d.request("GET", "/v1/incidents")[2])["incidents"]
                     if i["namespace"] == ns and i["name"] == "web"]
            if found:
                assert found[0]["reason"] == "OOMKilled", found
                return found[0]["id"]
            time.sleep(0.5)
        raise AssertionError("no incident for %s/web:\n%s" % (ns, d.stderr()[-3000:]))

    def delete():
        c.api("DELETE", "/apis/apps/v1/namespaces/%s/deployments/web" % ns)
    kube = ('[kubernetes]\ncluster_name = "test"\nexclude_namespaces = []\n',
            {"KUBECONFIG": c.path("admin.kubeconfig")})
    return make_incident, delete, kube


def test_oom_killed_deployment_on_k8s_local_gets_a_pr_raising_its_limit():
    """From the cluster to the PR: the Deployment of the repo's manifest, deployed on
    k8s-local, is OOM-killed in a loop; the watcher opens the incident, the model
    proposes raising the limit in apps/web.yaml (its hunk header two lines off, as models
    write them), `triaged accept` opens one PR whose branch holds exactly that fix (the
    annotation line with its trailing blanks kept)."""
    make_incident, delete, kube = oom_killed_web("fixe2e")
    try:
        body = fix_flow(OOM_WEB, OOM_PATCH, OOM_WEB.replace("memory: 64Mi", "memory: 256Mi"),
                        make_incident, *kube)
        # Checked against k8s-local's own /openapi/v2.
        assert ("- **schema** passed: apps/web.yaml: 1 object(s) match the cluster's schema"
                in body), body
    finally:
        delete()


def test_patch_the_cluster_schema_refuses_is_never_pushed():
    """The model misspells a field (resoures:); the YAML still parses with the same kind
    and name, but k8s-local's /openapi/v2 says the field does not exist: after the one
    repair request (the fake model repeats itself) the incident fails with that reason,
    and nothing is pushed or opened."""
    bad = ("--- a/apps/web.yaml\n+++ b/apps/web.yaml\n@@ -21,3 +21,3 @@\n"
           "-        resources:\n+        resoures:\n           limits:\n"
           "             memory: 64Mi\n")
    make_incident, delete, kube = oom_killed_web("fixe2e-bad")
    try:
        error = fix_flow(OOM_WEB, bad, None, make_incident, *kube)
        assert "resoures: unknown field" in error, error
    finally:
        delete()
