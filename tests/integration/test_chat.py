"""Chat, dead letters and restart-safe delivery, against the real daemon.

The LLM is a fake OpenAI-compatible server on loopback (a SaaS we cannot
run here) that records every request body; webhook receivers record what
they are sent. Incidents come from real Terraform logs over the API.
"""
import http.server
import json
import os
import signal
import threading
import time

from harness import ROOT, Daemon, free_port, run_cli
from test_terraform import failing_log

SECRET = "ghp_0123456789abcdefghijABCDEFGHIJ012345"
PATCH = ("--- a/main.tf\n+++ b/main.tf\n@@ -1,3 +1,3 @@\n resource \"null_resource\" \"x\" {\n"
         "-  count = var.n\n+  count = 1\n }\n")


def analysis(summary, root_cause, patch=""):
    return json.dumps({"summary": summary, "root_cause": root_cause, "severity": "error",
                       "confidence": 0.8, "evidence": ["Error: Invalid reference"],
                       "remediation": ["fix the reference"], "patch": patch})


class Receiver:
    """A webhook receiver on loopback (on a given port, so it can come up
    where a sink already points) recording headers and bodies; answers 500
    while fail_left > 0."""

    def __init__(self, port=None, fail_left=0):
        self.port = port or free_port()
        self.got = []
        self.fail_left = fail_left
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                failing = outer.fail_left > 0
                if failing:
                    outer.fail_left -= 1
                else:
                    outer.got.append((dict(self.headers), body))
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self):
        return [json.loads(b)["event"] for _, b in self.got]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakeLLM:
    """/v1/chat/completions: an analysis for analysis requests; for chat
    requests (chat.md's wording) the answers of `chat_answers` in order."""

    def __init__(self, chat_answers):
        self.port = free_port()
        self.bodies = []
        self.chat_bodies = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.bodies.append(raw.decode())
                req = json.loads(raw)
                last = req["messages"][-1]["content"]
                if "follow-up question" in last:
                    outer.chat_bodies.append(req)
                    n = len(outer.chat_bodies) - 1
                    content = chat_answers[min(n, len(chat_answers) - 1)]
                else:
                    content = analysis("the plan references an undeclared variable",
                                       "var.n is not declared")
                body = json.dumps({
                    "id": "chatcmpl-1", "object": "chat.completion", "model": "fake-model",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20,
                              "total_tokens": 120}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def llm_config(llm):
    return ('\n[llm]\nprovider = "openai"\nbase_url = "http://127.0.0.1:%d/v1"\n'
            'model = "fake-model"\napi_key_env = ""\nprompts_dir = "%s"\n'
            % (llm.port, os.path.join(ROOT, "prompts")))


def daemon_config(d, llm=None, public_url="", notify=""):
    text = ('[daemon]\nstate_dir = "%s"\nlisten = "127.0.0.1:%d"\npublic_url = "%s"\n'
            % (os.path.join(d.dir, "var"), d.port, public_url))
    text += llm_config(llm) if llm else '[llm]\nprovider = "none"\n'
    text += notify or '[[notify]]\nkind = "log"\n'
    with open(d.config, "w") as f:
        f.write(text)


def webhook(port, max_attempts=8):
    return ('[[notify]]\nkind = "webhook"\nname = "hook"\nurl = "http://127.0.0.1:%d/hook"\n'
            'max_attempts = %d\nrate_limit = "0s"\n' % (port, max_attempts))


def open_incident(d, case="reference", workspace="app"):
    status, _, body = d.request("POST", "/v1/terraform/runs?workspace=%s&operation=apply"
                                % workspace, body=failing_log(case)[0])
    assert status == 202, body
    return json.loads(body)["incident_id"]


def wait_for(what, check, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def analysed(d, incident_id):
    status, _, body = d.request("GET", "/v1/incidents/%d" % incident_id)
    return status == 200 and json.loads(body)["analysis"] is not None


def test_chat_through_a_pipe_keeps_the_conversation_and_proposes_a_patch():
    llm = FakeLLM([analysis("ANSWER-ONE: the variable n was never declared",
                            "variables.tf has no n"),
                   analysis("ANSWER-TWO: as said before, declare n", "same root cause",
                            PATCH)])
    receiver = Receiver()
    d = Daemon()
    daemon_config(d, llm, public_url="https://triaged.example.com/",
                  notify=webhook(receiver.port))
    try:
        d.start()
        incident_id = open_incident(d)
        wait_for("the analysis", lambda: analysed(d, incident_id))
        questions = "Why did it fail? my token is %s\n\nAnd what should I change?\n" % SECRET
        res = run_cli("chat", str(incident_id), "-c", d.config, env=d.env, stdin=questions,
                      timeout=60)
        assert res.returncode == 0, res
        assert "ANSWER-ONE" in res.stdout and "ANSWER-TWO" in res.stdout, res.stdout
        assert "chat #" not in res.stdout, res.stdout  # no prompt decoration in a pipe
        assert "+  count = 1" in res.stdout, res.stdout
        assert len(llm.chat_bodies) == 2, llm.bodies
        second = llm.chat_bodies[1]["messages"]
        roles = [m["role"] for m in second]
        assert roles == ["system", "user", "assistant", "user"], roles
        assert "Why did it fail?" in second[1]["content"], second
        assert "ANSWER-ONE" in second[2]["content"], second
        assert "what should I change" in second[3]["content"], second
        # The secret in the question never left the daemon, nor was it stored.
        assert all(SECRET not in b for b in llm.bodies)
        assert "<redacted:" in llm.chat_bodies[0]["messages"][-1]["content"]
        # The revised patch is now the incident's proposed patch.
        status, _, body = d.request("GET", "/v1/incidents/%d" % incident_id)
        assert json.loads(body)["analysis"]["patch"] == PATCH, body
        # Notifications link back to the incident through public_url.
        wait_for("the webhook", lambda: receiver.got)
        sent = json.loads(receiver.got[0][1])
        assert sent["url"] == "https://triaged.example.com/v1/incidents/%d" % incident_id, sent
        # Over the API: the turn number counts on, an empty message is refused, and an
        # unknown incident is 404 (the CLI exits 2).
        status, _, body = d.request("POST", "/v1/incidents/%d/chat" % incident_id,
                                    body=json.dumps({"message": "once more"}))
        assert status == 200 and json.loads(body)["turn"] == 3, body
        status, _, body = d.request("POST", "/v1/incidents/%d/chat" % incident_id,
                                    body=json.dumps({"message": "  "}))
        assert status == 400 and json.loads(body)["error"], body
        status, _, body = d.request("POST", "/v1/incidents/99999/chat",
                                    body=json.dumps({"message": "hello"}))
        assert status == 404, body
        res = run_cli("chat", "99999", "-c", d.config, env=d.env, stdin="hello\n")
        assert res.returncode == 2 and "404" in res.stderr, res
        assert d.stop()[0] == 0
    finally:
        llm.close()
        receiver.close()
        d.cleanup()


def test_chat_without_an_llm_is_503_and_the_cli_exits_1():
    d = Daemon()
    try:
        d.start()
        incident_id = open_incident(d)
        status, _, body = d.request("POST", "/v1/incidents/%d/chat" % incident_id,
                                    body=json.dumps({"message": "why?"}))
        assert status == 503, body
        assert "provider" in json.loads(body)["detail"], body
        res = run_cli("chat", str(incident_id), "-c", d.config, env=d.env, stdin="why?\n")
        assert res.returncode == 1 and "503" in res.stderr, res
        assert d.stop()[0] == 0
    finally:
        d.cleanup()


def test_kill_9_between_commit_and_delivery_delivers_once_after_restart():
    port = free_port()  # nothing listens there yet: the sink is down
    d = Daemon()
    daemon_config(d, notify=webhook(port))
    receiver = None
    try:
        d.start()
        open_incident(d)
        time.sleep(1.0)  # committed and attempted; nothing could be received
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        receiver = Receiver(port=port)
        d.start()
        wait_for("delivery after restart", lambda: "incident.opened" in receiver.events())
        time.sleep(3)
        ids = [h["X-Triaged-Delivery"] for h, _ in receiver.got]
        assert len(ids) == len(set(ids)), ids
        assert receiver.events().count("incident.opened") == 1, receiver.events()
        assert d.stop()[0] == 0
    finally:
        if receiver:
            receiver.close()
        d.cleanup()


def test_dead_letters_are_listed_and_retried_through_the_api():
    receiver = Receiver(fail_left=1000)
    d = Daemon()
    daemon_config(d, notify=webhook(receiver.port, max_attempts=1))
    try:
        d.start()
        open_incident(d)

        def dead():
            status, _, body = d.request("GET", "/v1/deliveries/dead?sink=hook")
            assert status == 200, body
            return json.loads(body)["deliveries"]

        letters = wait_for("a dead letter", dead)
        assert letters[0]["sink"] == "hook" and letters[0]["last_error"], letters
        assert letters[0]["event"] == "incident.opened", letters
        status, _, body = d.request("GET", "/v1/deliveries/dead?sink=nosuch")
        assert status == 200 and json.loads(body)["deliveries"] == [], body
        status, _, body = d.request("POST", "/v1/deliveries/999999/retry")
        assert status == 404, body
        receiver.fail_left = 0
        status, _, body = d.request("POST", "/v1/deliveries/%d/retry" % letters[0]["id"])
        assert status == 200, body
        wait_for("the retried delivery", lambda: letters[0]["delivery_id"] in
                 [h["X-Triaged-Delivery"] for h, _ in receiver.got])
        assert letters[0]["id"] not in [x["id"] for x in dead()]
        status, _, body = d.request("POST", "/v1/deliveries/%d/retry" % letters[0]["id"])
        assert status == 404, body  # delivered now: no longer a dead letter
        assert d.stop()[0] == 0
    finally:
        receiver.close()
        d.cleanup()
