"""The GitOps source in the analysis: a repository built here, served by the
real smart-HTTP git server (tests/tools/git-http-server, basic auth), read by
the daemon, and the bytes the fake OpenAI-compatible LLM receives checked:
the right file and lines, the commit and its history, and no secret."""
import json
import os
import shutil
import subprocess
import tempfile

from harness import ROOT, Daemon
from test_chat import FakeLLM, daemon_config, wait_for, analysed
from test_terraform import failing_log

USER = "triaged"
PASSWORD = "gitS3rver-Passw0rd"
GHP = "ghp_Z9y8X7w6V5u4T3s2R1q0PONMLKJIHGFE1234"
AWS = "AKIAJ7EXAMPLEKEY4TST"
PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtestkeymaterialonly0123456789\n"
       "-----END RSA PRIVATE KEY-----\n")
# One of every kind the redactor claims, written into the HCL the prompt quotes.
MORE = {
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0cmlhZ2VkLXRlc3QifQ.c2lnbmF0dXJlLXRlc3Qtb25seQ",
    "gcp": "AIzaSyD3xAmPleKeY-0123456789abcdefghijkl",
    "azure": "AccountKey=q1W2e3R4t5Y6u7I8o9P0aSdFgHjKlZxCvBnM1234567890abcdefABCDEFGHIJ==",
    "slack": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "stripe": "sk_live_51HdTestOnlyAbCdEfGhIjKlMnOp",
    "openai": "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "gitlab": "glpat-AbCdEfGhIjKlMnOpQrSt",
    "url": "https://deployer:Url-Passw0rd-9@registry.example.com/v2/",
}
SECRETS = [PASSWORD, GHP, AWS, "MIIEowIBAAKCAQEAtestkeymaterialonly",
           "c2lnbmF0dXJlLXRlc3Qtb25seQ", "AIzaSyD3xAmPleKeY-0123456789abcdefghijkl",
           "q1W2e3R4t5Y6u7I8o9P0aSdFgHjKlZxCvBnM", "AbCdEfGhIjKlMnOpQrStUvWx",
           "51HdTestOnlyAbCdEfGhIjKlMnOp", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz",
           "glpat-AbCdEfGhIjKlMnOpQrSt", "Url-Passw0rd-9"]
GIT = ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com",
       "-c", "init.defaultBranch=main"]

DB_TF = """variable "instance_size" { type = string }
resource "terraform_data" "db" {
  input = var.instance_size
  lifecycle {
    precondition {
      condition     = !endswith(var.instance_size, ".nano")
      error_message = "nano instances cannot run Postgres 16; use db.t3.small or larger."
    }
  }
}
"""


def sh(*args, cwd=None):
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def write(root, path, text):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text)


class GitServer:
    """tests/tools/git-http-server with one bare repo, gitops.git, seeded here."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="triaged-git-")
        env = dict(os.environ, GIT_HTTP_USER=USER, GIT_HTTP_PASSWORD=PASSWORD)
        out = subprocess.run([os.path.join(ROOT, "tests/tools/git-http-server"), "start",
                              self.dir], env=env, check=True, capture_output=True, text=True)
        self.port = int(out.stdout.strip().splitlines()[0])
        self.url = "http://127.0.0.1:%d/git/gitops.git" % self.port
        bare = os.path.join(self.dir, "repos", "gitops.git")
        seed = os.path.join(self.dir, "seed")
        sh(*GIT, "init", "-q", "--bare", bare)
        sh(*GIT, "init", "-q", seed)
        write(seed, "base/app.yaml",
              "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n---\n"
              "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
              "  template:\n    spec:\n      containers:\n      - name: web\n"
              "        image: nginx:1.25\n        env:\n        - name: DB_PASSWORD\n"
              "          value: " + PASSWORD + "\n")
        write(seed, "base/secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n"
              "  name: web-creds\ndata:\n  token: Z2hwX1o5eThYN3c2VjV1NFQzczJSMXEw\n")
        write(seed, "base/kustomization.yaml", "resources:\n- app.yaml\n- secret.yaml\n")
        write(seed, "overlays/prod/kustomization.yaml",
              "namePrefix: prod-\nnamespace: gitops-shop\nresources:\n- ../../base\n")
        write(seed, "infra/main.tf", 'module "db" {\n  source = "./modules/db"\n'
              '  instance_size = "db.t3.nano"\n}\n')
        seeded = DB_TF.replace(
            "  input = var.instance_size\n", "  input = var.instance_size\n  # " + AWS + "\n" +
            "".join("  # %s: %s\n" % kv for kv in sorted(MORE.items())))
        write(seed, "infra/modules/db/main.tf", seeded)
        write(seed, "keys/deploy.pem", PEM)
        sh("git", "add", "-A", cwd=seed)
        sh(*GIT, "commit", "-q", "-m", "initial layout", cwd=seed)
        write(seed, "infra/modules/db/main.tf", seeded.replace(
            "use db.t3.small", "use db.t3.small (" + GHP + ")"))
        sh("git", "add", "-A", cwd=seed)
        sh(*GIT, "commit", "-q", "-m", "db: tighten the instance size precondition", cwd=seed)
        sh("git", "push", "-q", bare, "main", cwd=seed)
        self.head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=seed, check=True,
                                   capture_output=True, text=True).stdout.strip()

    def close(self):
        subprocess.run([os.path.join(ROOT, "tests/tools/git-http-server"), "stop", self.dir],
                       capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def gitops_daemon(llm, url):
    d = Daemon(env={"GITOPS_TOKEN": PASSWORD})
    daemon_config(d, llm)
    with open(d.config, "a") as f:
        f.write('[gitops]\nurl = "%s"\nusername = "%s"\ntoken_env = "GITOPS_TOKEN"\n'
                'fetch_interval = "5m"\n' % (url, USER))
    return d


def post_module_failure(d):
    status, _, body = d.request("POST", "/v1/terraform/runs?workspace=module&repo_path=infra"
                                "&operation=apply", body=failing_log("module")[0])
    assert status == 202, body
    return json.loads(body)["incident_id"]


def analysis_prompt(llm):
    return [b for b in llm.bodies if "follow-up question" not in b]


def test_terraform_incident_prompt_has_the_hcl_block_and_history_without_secrets():
    git = GitServer()
    llm = FakeLLM([])
    d = gitops_daemon(llm, git.url)
    try:
        d.start()
        wait_for("gitops/default ready", lambda: '"gitops/default"' in d.request(
            "GET", "/readyz")[2].decode() and "head " in d.request("GET", "/readyz")[2].decode())
        incident = post_module_failure(d)
        wait_for("the analysis", lambda: analysed(d, incident))
        bodies = analysis_prompt(llm)
        assert bodies, llm.bodies
        prompt = json.loads(bodies[-1])["messages"][-1]["content"]
        assert "infra/modules/db/main.tf" in prompt, prompt
        assert "resource \\\"terraform_data\\\" \\\"db\\\"" in prompt or \
            'resource "terraform_data" "db"' in prompt, prompt
        assert "   6 |" in prompt, prompt  # numbered lines around the diagnostic
        assert git.head in prompt, prompt
        assert "db: tighten the instance size precondition" in prompt, prompt
        # The seeded lines reached the prompt, their values masked.
        assert "# jwt: <redacted:" in prompt and "# stripe: <redacted:" in prompt, prompt
        for body in llm.bodies:
            for secret in SECRETS:
                assert secret not in body, secret
        # The audit shows the same section.
        status, _, body = d.request("GET", "/v1/incidents/%d" % incident)
        assert status == 200
    finally:
        d.stop()
        d.cleanup()
        llm.close()
        git.close()


def test_wrong_repo_url_still_analyses_and_shows_the_source_error():
    git = GitServer()
    llm = FakeLLM([])
    d = gitops_daemon(llm, git.url.replace("gitops.git", "no-such-repo.git"))
    try:
        d.start()
        wait_for("gitops/default degraded", lambda: "degraded" in d.request(
            "GET", "/readyz")[2].decode().lower())
        incident = post_module_failure(d)
        wait_for("the analysis", lambda: analysed(d, incident), timeout=60)
        prompt = json.loads(analysis_prompt(llm)[-1])["messages"][-1]["content"]
        assert '"source"' in prompt and '"error"' in prompt, prompt
        assert "no-such-repo.git" in prompt, prompt
        for body in llm.bodies:
            assert PASSWORD not in body
        assert PASSWORD not in d.request("GET", "/readyz")[2].decode()
    finally:
        d.stop()
        d.cleanup()
        llm.close()
        git.close()


GITREPO_CRD = ("source.toolkit.fluxcd.io", "gitrepositories", "GitRepository", "v1")
SHOP = "gitops-shop"


def crash_looping_gitops_deployment(metadata, make_crs):
    """A crash-looping Deployment prod-web (overlays/prod of the served repo renames
    base/app.yaml's web) whose metadata says which GitOps tool applied it, on
    k8s-local with that tool's CRs (make_crs(c, git)); returns the prompt the fake
    LLM received for its incident, after checking that no secret reached the LLM."""
    from test_kube_classes import (GITOPS_CRDS, gitops_object, install_gitops_crds,
                                   remove_gitops_crds)
    from test_kube_incidents import ensure_node, pods_of, play_kubelet_oom_crashloop
    from test_kube_watch import cluster

    crds = GITOPS_CRDS + [GITREPO_CRD]
    c = cluster()
    ensure_node(c)
    for ns in (SHOP, "argocd", "flux-system"):
        c.ensure_namespace(ns)
    install_gitops_crds(c, crds)
    git = GitServer()
    llm = FakeLLM([])
    d = gitops_daemon(llm, git.url)
    d.env["KUBECONFIG"] = c.path("admin.kubeconfig")
    with open(d.config, "a") as f:
        f.write('[kubernetes]\ncluster_name = "test"\nexclude_namespaces = []\n')
    try:
        make_crs(c, git, gitops_object)
        c.api("POST", "/apis/apps/v1/namespaces/%s/deployments" % SHOP, {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": dict(metadata, name="prod-web"),
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "prod-web"}},
                     "template": {"metadata": {"labels": {"app": "prod-web"}},
                                  "spec": {"containers": [{
                                      "name": "web", "image": "nginx:1.25",
                                      "resources": {"limits": {"memory": "64Mi"}}}]}}}})
        d.start()
        for pod in pods_of(c, SHOP, "prod-web", 1):
            play_kubelet_oom_crashloop(c, SHOP, pod)

        def incident():
            status, _, body = d.request("GET", "/v1/incidents?limit=50")
            found = [i for i in json.loads(body)["incidents"] if i["name"] == "prod-web"]
            return found and found[0]["id"]
        incident_id = wait_for("the incident of prod-web", incident, timeout=60)
        wait_for("its analysis", lambda: analysed(d, incident_id), timeout=60)
        prompts = [json.loads(b)["messages"][-1]["content"] for b in analysis_prompt(llm)]
        for body in llm.bodies:
            for secret in SECRETS:
                assert secret not in body, secret
        return [p for p in prompts if "prod-web" in p][-1], git.head
    finally:
        d.stop()
        d.cleanup()
        llm.close()
        git.close()
        try:
            c.api("DELETE", "/apis/apps/v1/namespaces/%s/deployments/prod-web" % SHOP)
        except Exception:  # noqa: BLE001 - best effort, the namespace is this module's own
            pass
        remove_gitops_crds(c, crds)


def assert_overlay_source(prompt, head):
    assert "base/app.yaml" in prompt, prompt
    assert "overlays/prod/kustomization.yaml" in prompt, prompt
    assert "image: nginx:1.25" in prompt and " | " in prompt, prompt
    assert head in prompt, prompt
    assert "initial layout" in prompt, prompt


def test_argo_tracked_deployment_prompt_has_its_overlay_manifest_and_history():
    """Argo CD: tracking-id annotation and instance label → the Application (in argocd)
    → its repoURL and path."""
    def crs(c, git, gitops_object):
        gitops_object(c, "argocd", "argoproj.io", "v1alpha1", "applications", "Application",
                      "web-prod", {"project": "default", "source": {
                          "repoURL": git.url, "path": "overlays/prod",
                          "targetRevision": "main"}},
                      {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}})
    prompt, head = crash_looping_gitops_deployment({
        "labels": {"app.kubernetes.io/instance": "web-prod"},
        "annotations": {"argocd.argoproj.io/tracking-id":
                        "web-prod:apps/Deployment:%s/prod-web" % SHOP}}, crs)
    assert_overlay_source(prompt, head)


def test_flux_applied_deployment_prompt_has_its_overlay_manifest_and_history():
    """Flux: kustomize-controller's labels → the Kustomization's path and sourceRef →
    the GitRepository's url and branch."""
    def crs(c, git, gitops_object):
        gitops_object(c, "flux-system", "source.toolkit.fluxcd.io", "v1", "gitrepositories",
                      "GitRepository", "gitops", {"interval": "1m", "url": git.url,
                                                  "ref": {"branch": "main"}},
                      {"conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                                       "message": "stored artifact",
                                       "lastTransitionTime": "2026-11-25T10:00:00Z"}]})
        gitops_object(c, "flux-system", "kustomize.toolkit.fluxcd.io", "v1", "kustomizations",
                      "Kustomization", "shop", {
                          "interval": "10m", "path": "./overlays/prod", "prune": True,
                          "sourceRef": {"kind": "GitRepository", "name": "gitops"}},
                      {"conditions": [{"type": "Ready", "status": "True",
                                       "reason": "ReconciliationSucceeded", "message": "ok",
                                       "lastTransitionTime": "2026-11-25T10:00:00Z"}]})
    prompt, head = crash_looping_gitops_deployment({
        "labels": {"kustomize.toolkit.fluxcd.io/name": "shop",
                   "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}, crs)
    assert_overlay_source(prompt, head)
