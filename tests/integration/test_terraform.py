"""Terraform failures reach the daemon through each input: HTTP ingest, a
followed log directory, HCP Terraform notifications, and the one-shot CLI."""
import hashlib
import hmac
import json
import os
import shutil
import time

from harness import Daemon, SHARED, run_cli

FIXTURES = os.path.join(SHARED, "fixtures", "terraform")
CASES = ["validation", "provisioner", "syntax", "provider", "module", "reference"]


def failing_log(case):
    """(log, operation) of the step where the case fails: init, else apply."""
    for op in ("init", "apply"):
        path = os.path.join(FIXTURES, case, op + ".jsonl")
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
            if b'"@level":"error"' in data:
                return data, op
    raise AssertionError("no failing log in fixture " + case)


def fixture_log(case):
    return failing_log(case)[0]


def incidents(d):
    status, _, body = d.request("GET", "/v1/incidents")
    assert status == 200, body
    return json.loads(body)["incidents"]


def test_every_fixture_becomes_one_incident_over_http():
    d = Daemon()
    try:
        d.start()
        ids = {}
        for case in CASES:
            log, op = failing_log(case)
            # A CI job posts each step's log and says which step it was.
            status, _, body = d.request("POST", "/v1/terraform/runs?workspace=%s&repo_path=infra"
                                        "&operation=%s" % (case, op), body=log)
            assert status == 202, (case, status, body)
            ids[case] = json.loads(body)["incident_id"]
        # The same failure again is the same incident, not a new one.
        status, _, body = d.request("POST", "/v1/terraform/runs?workspace=module&operation=apply",
                                    body=fixture_log("module"))
        assert status == 202 and json.loads(body)["incident_id"] == ids["module"], body
        found = {i["namespace"]: i for i in incidents(d)}
        assert sorted(found) == sorted(CASES), found
        assert found["module"]["reason"] == "TerraformApplyFailed", found["module"]
        facts = found["module"]["facts"]
        diag = facts["diagnostics"][0]
        assert diag["filename"] == "modules/db/main.tf" and diag["start_line"] == 6, diag
        assert found["syntax"]["reason"] == "TerraformInitFailed", found["syntax"]
        assert found["provisioner"]["kind"] == "TerraformResource", found["provisioner"]
        status, _, body = d.request("POST", "/v1/terraform/runs", body=b"not a terraform log\n")
        assert status == 400 and json.loads(body)["error"], body
        assert d.stop()[0] == 0
    finally:
        d.cleanup()


def test_log_directory_is_followed_and_not_reprocessed_after_restart():
    d = Daemon()
    logs = os.path.join(d.dir, "tf-logs")
    os.makedirs(os.path.join(logs, "payments"))
    with open(d.config, "a") as f:
        f.write('[terraform]\nlog_dirs = ["%s"]\nrescan_interval = "1s"\nsettle_time = "200ms"\n'
                % logs)
    try:
        d.start()
        with open(os.path.join(logs, "payments", "apply-1.json"), "wb") as f:
            f.write(fixture_log("validation"))
        deadline = time.time() + 15
        while time.time() < deadline and not incidents(d):
            time.sleep(0.3)
        found = incidents(d)
        assert len(found) == 1 and found[0]["namespace"] == "payments", found
        first = found[0]
        assert d.stop()[0] == 0
        d.start()
        time.sleep(2.5)
        again = incidents(d)
        assert len(again) == 1 and again[0]["observations"] == first["observations"], again
        assert d.stop()[0] == 0
    finally:
        d.cleanup()


def sign(key, body):
    return hmac.new(key.encode(), body, hashlib.sha512).hexdigest()


def test_hcp_notifications_need_a_valid_signature():
    d = Daemon()
    key_file = os.path.join(d.dir, "tfc-hmac")
    with open(key_file, "w") as f:
        f.write("hmac-key-for-tests\n")
    with open(d.config, "a") as f:
        f.write('[terraform]\nwebhook_hmac_key_file = "%s"\n' % key_file)
    body = json.dumps({
        "payload_version": 1, "notification_configuration_id": "nc-1",
        "run_url": "https://app.terraform.io/app/acme/ws/runs/run-abc123", "run_id": "run-abc123",
        "run_message": "Queued manually", "run_created_at": "2026-11-25T10:00:00.000Z",
        "run_created_by": "alice", "workspace_id": "ws-1", "workspace_name": "network",
        "organization_name": "acme",
        "notifications": [{"message": "Run Errored", "trigger": "run:errored",
                           "run_status": "errored", "run_updated_at": "2026-11-25T10:01:00.000Z",
                           "run_updated_by": "alice"}]}).encode()
    try:
        d.start()
        good = {"X-TFE-Notification-Signature": sign("hmac-key-for-tests", body),
                "Content-Type": "application/json"}
        for headers, data in (({}, body),
                              ({"X-TFE-Notification-Signature": sign("wrong", body)}, body),
                              (good, body.replace(b"network", b"netw0rk"))):
            status, _, _ = d.request("POST", "/hooks/terraform-cloud", body=data, headers=headers)
            assert status == 401, (headers, status)
        assert incidents(d) == []
        status, _, reply = d.request("POST", "/hooks/terraform-cloud", body=body, headers=good)
        assert status in (200, 202), (status, reply)
        found = incidents(d)
        assert len(found) == 1 and found[0]["reason"] == "TerraformRunErrored", found
        assert found[0]["namespace"] == "network", found
        assert d.stop()[0] == 0
    finally:
        d.cleanup()


def test_cli_terraform_reads_a_file_or_stdin():
    path = os.path.join(FIXTURES, "module", "apply.jsonl")
    res = run_cli("terraform", path)
    assert res.returncode == 0, res
    assert "modules/db/main.tf line 6" in res.stdout, res.stdout
    res = run_cli("terraform", "-", stdin=fixture_log("syntax").decode())
    assert res.returncode == 0 and "Error:" in res.stdout, res
    res = run_cli("terraform", "/nonexistent.json")
    assert res.returncode == 2 and "/nonexistent.json" in res.stderr, res


def test_terraform_incident_is_analysed_by_rules_without_an_llm():
    d = Daemon()
    try:
        d.start()
        log, op = failing_log("module")
        status, _, body = d.request("POST", "/v1/terraform/runs?workspace=db&operation=apply",
                                    body=log)
        assert status == 202, body
        incident_id = json.loads(body)["incident_id"]
        deadline = time.time() + 15
        shown = None
        while time.time() < deadline:
            status, _, body = d.request("GET", "/v1/incidents/%d" % incident_id)
            shown = json.loads(body)
            if shown["incident"]["state"] == "analyzed":
                break
            time.sleep(0.3)
        assert shown["incident"]["state"] == "analyzed", shown
        analysis = shown["analysis"]
        assert analysis["provider"] == "rules", analysis
        assert "modules/db/main.tf" in analysis["summary"] + analysis["root_cause"], analysis
        assert analysis["remediation"], analysis
        assert d.stop()[0] == 0
    finally:
        d.cleanup()


FAKE_LLM = r'''
import http.server, json, sys
REPLY = {"summary": "variable instance_size fails its validation rule",
         "root_cause": "db.t3.nano is not an allowed size", "severity": "error",
         "confidence": 0.8, "evidence": [], "remediation": ["use db.t3.small"], "patch": ""}
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"id": "x", "object": "chat.completion", "model": "fake",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant",
                                                    "content": json.dumps(REPLY)}}],
                           "usage": {"prompt_tokens": 100, "completion_tokens": 20,
                                     "total_tokens": 120}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''


def test_llm_analysis_and_show_prompt_audit():
    import subprocess
    from harness import free_port
    port = free_port()
    llm = subprocess.Popen(["python3", "-c", FAKE_LLM, str(port)])
    d = Daemon(config_text='[daemon]\nstate_dir = "@DIR@/var"\nlisten = "127.0.0.1:@PORT@"\n'
                           '[llm]\nprovider = "openai"\nbase_url = "http://127.0.0.1:%d/v1"\n'
                           'model = "fake"\napi_key_env = "TR_IT_LLM_KEY"\n' % port,
               env={"TR_IT_LLM_KEY": "sk-it-secret-key-0123456789"})
    try:
        d.start()
        log, _ = failing_log("validation")
        status, _, body = d.request("POST", "/v1/terraform/runs?workspace=llm&operation=apply",
                                    body=log)
        incident_id = json.loads(body)["incident_id"]
        deadline = time.time() + 20
        shown = None
        while time.time() < deadline:
            shown = json.loads(d.request("GET", "/v1/incidents/%d" % incident_id)[2])
            if shown["incident"]["state"] == "analyzed":
                break
            time.sleep(0.3)
        assert shown["analysis"]["provider"] != "rules", shown["analysis"]
        assert shown["analysis"]["root_cause"] == "db.t3.nano is not an allowed size", shown
        res = run_cli("show", str(incident_id), "--prompt", "-c", d.config, env=d.env)
        assert res.returncode == 0, res
        sent = json.loads(res.stdout)
        assert sent["model"] == "fake" and sent["messages"], sent
        assert "replicas must be at least 1" in res.stdout, res.stdout
        assert "sk-it-secret-key" not in res.stdout + d.stderr()
        assert d.stop()[0] == 0
    finally:
        llm.kill()
        llm.wait()
        d.cleanup()


def test_run_logs_bigger_than_other_requests_are_taken_up_to_max_log_bytes():
    d = Daemon()
    try:
        d.start()
        # 5 MB of ordinary output before the failure: over [daemon] max_body_bytes (1 MiB),
        # under [terraform] max_log_bytes (32 MiB).
        noise = b"".join(b'{"@level":"info","@message":"module.db: Refreshing state... %d",'
                         b'"type":"log"}\n' % i for i in range(70000))
        assert len(noise) > 5 * 1000 * 1000
        status, _, body = d.request("POST", "/v1/terraform/runs?workspace=big&operation=apply",
                                    body=noise + fixture_log("module"), timeout=60)
        assert status == 202, (status, body)
        assert json.loads(body)["incident_id"] > 0, body
        # The rest of the API keeps its own cap.
        status, _, body = d.request("POST", "/v1/incidents/1/reject",
                                    body=b"x" * (2 * 1024 * 1024),
                                    headers={"Content-Type": "application/json"})
        assert status == 413, (status, body)
        assert d.stop()[0] == 0
    finally:
        d.cleanup()
    d = Daemon(extra='[terraform]\nmax_log_bytes = 65536\n')
    try:
        d.start()
        status, _, body = d.request("POST", "/v1/terraform/runs?workspace=big",
                                    body=b"x" * 70000)
        assert status == 413 and "exceeds 65536" in json.loads(body)["detail"], (status, body)
        assert d.stop()[0] == 0
    finally:
        d.cleanup()
