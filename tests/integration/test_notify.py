"""Notifications end to end: a Terraform failure reaches a signed webhook and
the log sink with its analysis, once; people act on it from the CLI."""
import hashlib
import hmac
import http.server
import json
import threading
import time

from harness import Daemon, free_port, run_cli
from test_terraform import failing_log


class Receiver:
    """A webhook receiver on loopback that records what it is sent."""

    def __init__(self, fail_first=0):
        self.port = free_port()
        self.got = []
        self.fail_left = fail_first
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.fail_left > 0:
                    outer.fail_left -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.got.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def notify_daemon(receiver):
    extra = ('\n[[notify]]\nkind = "webhook"\nurl = "http://127.0.0.1:%d/hook"\n'
             'hmac_secret_env = "TR_IT_HOOK_SECRET"\n' % receiver.port)
    return Daemon(extra=extra, env={"TR_IT_HOOK_SECRET": "hook-secret-123"})


def wait_events(receiver, wanted, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        events = [json.loads(b)["event"] for _, b in receiver.got]
        if all(w in events for w in wanted):
            return events
        time.sleep(0.2)
    raise AssertionError("webhook got %s, wanted %s" % (
        [json.loads(b)["event"] for _, b in receiver.got], wanted))


def test_incident_reaches_signed_webhook_and_log_once_with_its_analysis():
    receiver = Receiver(fail_first=1)  # the first delivery attempt fails: retried
    d = notify_daemon(receiver)
    try:
        d.start()
        log, _ = failing_log("validation")
        status, _, body = d.request("POST", "/v1/terraform/runs?workspace=net&operation=apply",
                                    body=log)
        assert status == 202, body
        events = wait_events(receiver, ["incident.opened", "incident.analyzed"])
        for headers, raw in receiver.got:
            want = "sha256=" + hmac.new(b"hook-secret-123", raw, hashlib.sha256).hexdigest()
            assert headers["X-Triaged-Signature"] == want, headers
            assert headers["X-Triaged-Delivery"], headers
        analyzed = [json.loads(b) for _, b in receiver.got
                    if json.loads(b)["event"] == "incident.analyzed"][0]
        assert analyzed["analysis"]["summary"], analyzed
        assert analyzed["incident"]["namespace"] == "net", analyzed
        # Restart: nothing is delivered again.
        assert d.stop()[0] == 0
        before = len(receiver.got)
        d.start()
        time.sleep(3)
        assert len(receiver.got) == before, events
        ids = [h["X-Triaged-Delivery"] for h, _ in receiver.got]
        assert len(ids) == len(set(ids)), ids
        assert d.stop()[0] == 0
        # The log sink printed the incident for people reading stdout.
        assert "net" in d.stdout() and "terraform" in d.stdout().lower(), d.stdout()
        assert "hook-secret-123" not in d.stderr() + d.stdout()
    finally:
        receiver.close()
        d.cleanup()


def test_cli_reject_and_accept_through_the_api():
    receiver = Receiver()
    d = notify_daemon(receiver)
    try:
        d.start()
        log, _ = failing_log("reference")
        status, _, body = d.request("POST", "/v1/terraform/runs?workspace=app", body=log)
        incident_id = json.loads(body)["incident_id"]
        # Nothing proposed a patch: accepting is a conflict, exit 2 with the reason.
        res = run_cli("accept", str(incident_id), "-c", d.config, env=d.env)
        assert res.returncode == 2, res
        assert "409" in res.stderr, res.stderr
        res = run_cli("reject", str(incident_id), "--reason", "known issue", "-c", d.config,
                      env=d.env)
        assert res.returncode == 0, res
        status, _, body = d.request("GET", "/v1/incidents/%d" % incident_id)
        assert json.loads(body)["incident"]["state"] == "rejected", body
        wait_events(receiver, ["incident.rejected"])
        res = run_cli("show", str(incident_id), "-c", d.config, env=d.env)
        assert res.returncode == 0 and "rejected" in res.stdout, res
        assert d.stop()[0] == 0
    finally:
        receiver.close()
        d.cleanup()
