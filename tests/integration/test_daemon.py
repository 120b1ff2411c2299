"""The daemon as a user meets it: start on a config, health endpoints,
metrics, config errors, signals, and hostile HTTP input."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

from harness import Daemon, SkipTest, free_port, run_cli


def promtool_check(text):
    if shutil.which("promtool") is None:
        raise SkipTest("promtool not installed")
    res = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                         text=True)
    assert res.returncode == 0, "promtool rejected /metrics:\n%s%s" % (res.stdout, res.stderr)


def test_example_config_serves_health_ready_and_metrics():
    d = Daemon(example=True)
    try:
        d.start()
        status, _, body = d.request("GET", "/healthz")
        assert status == 200, (status, body)
        status, headers, body = d.request("GET", "/readyz")
        assert status == 200, (status, body)
        ready = json.loads(body)
        assert ready["ready"] is True
        assert ready["components"]["store"]["state"] == "ok", ready
        assert ready["components"]["kubernetes"]["state"] in ("unavailable", "disabled"), ready
        status, headers, body = d.request("GET", "/metrics")
        assert status == 200
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
        text = body.decode()
        assert "triaged_build_info{" in text, text
        assert "triaged_http_requests_total" in text, text
        promtool_check(text)
        code, took = d.stop()
        assert code == 0, (code, d.stderr())
    finally:
        d.cleanup()


def test_no_cluster_is_said_once_and_daemon_keeps_serving():
    d = Daemon()
    try:
        d.start()
        time.sleep(2.5)
        status, _, _ = d.request("GET", "/healthz")
        assert status == 200
        log = d.stderr()
        lines = [l for l in log.splitlines() if "kubernetes" in l and ("no kubeconfig" in l
                                                                       or "unavailable" in l)]
        assert len(lines) == 1, log
        assert "no-such-kubeconfig" in lines[0], lines[0]
        assert d.stop()[0] == 0
    finally:
        d.cleanup()


def write_kubeconfig(path, server):
    with open(path, "w") as f:
        f.write("""apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: %s
users:
- name: u
  user:
    token: abc
contexts:
- name: ctx
  context:
    cluster: c
    user: u
current-context: ctx
""" % server)


def test_unreachable_cluster_retries_with_backoff_until_it_answers():
    port = free_port()
    d = Daemon()
    kubeconfig = os.path.join(d.dir, "kubeconfig")
    write_kubeconfig(kubeconfig, "http://127.0.0.1:%d" % port)
    d.env["KUBECONFIG"] = kubeconfig
    server = None
    try:
        d.start()
        time.sleep(1.5)
        status, _, body = d.request("GET", "/readyz")
        assert status == 200, body
        assert json.loads(body)["components"]["kubernetes"]["state"] == "unavailable", body
        # Now the "cluster" comes up: a plain HTTP server answering /version.
        server = subprocess.Popen(["python3", "-c", FAKE_VERSION_SERVER, str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 15
        state = None
        while time.time() < deadline:
            status, _, body = d.request("GET", "/readyz")
            state = json.loads(body)["components"]["kubernetes"]["state"]
            if state == "ok":
                break
            time.sleep(0.3)
        assert state == "ok", d.stderr()
        log = d.stderr()
        assert len(re.findall(r"kubernetes.*unavailable", log)) == 1, log
        assert "v1.20.2" in log, log
        assert d.stop()[0] == 0
    finally:
        if server:
            server.kill()
            server.wait()
        d.cleanup()


FAKE_VERSION_SERVER = r'''
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"major":"1","minor":"20","gitVersion":"v1.20.2"}'
        self.send_response(200 if self.path == "/version" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''


def test_unknown_key_exits_2_naming_file_line_and_key():
    d = Daemon(extra="\n[triage]\nlog_tail_lines = 200\nbogus_key = 1\n")
    try:
        for cmd in ("check-config", "run"):
            res = run_cli(cmd, "-c", d.config, env=d.env)
            assert res.returncode == 2, (cmd, res.returncode, res.stderr)
            expected = "%s:%d: triage.bogus_key:" % (d.config, d.minimal_config().count("\n") + 4)
            assert expected in res.stderr, (expected, res.stderr)
    finally:
        d.cleanup()


def test_config_errors_name_file_line_and_key():
    cases = [
        ('[daemon]\nlisten = "127.0.0.1:1"\n[triage]\ndedup_window = "30x"\n',
         ":4: triage.dedup_window:"),
        ('[daemon]\nlog_level = 3\n', ":2: daemon.log_level:"),
        ('[daemon\nlisten = 1\n', ":1:"),
        ('[llm]\napi_key = "sk-123"\n', "api_key_env"),
    ]
    for text, expected in cases:
        d = Daemon(config_text=text)
        try:
            res = run_cli("check-config", "-c", d.config, env=d.env)
            assert res.returncode == 2, (text, res.returncode, res.stderr)
            assert d.config + expected in res.stderr or expected in res.stderr, (text, res.stderr)
            assert "sk-123" not in res.stderr + res.stdout
        finally:
            d.cleanup()


def test_missing_config_file_is_a_clear_error():
    res = run_cli("check-config", "-c", "/nonexistent/triaged.toml")
    assert res.returncode == 2, res
    assert "/nonexistent/triaged.toml" in res.stderr, res.stderr


def test_check_config_prints_effective_config_with_secrets_masked():
    extra = ('\n[[notify]]\nkind = "webhook"\nurl = "https://user:pw123@hooks.example.com/x?token=tok456"\n'
             'hmac_secret_env = "TR_IT_SECRET"\n')
    d = Daemon(extra=extra, env={"TR_IT_SECRET": "s3cr3t-value-789"})
    try:
        res = run_cli("check-config", "-c", d.config, env=d.env)
        assert res.returncode == 0, res.stderr
        out = res.stdout
        for secret in ("s3cr3t-value-789", "pw123", "tok456"):
            assert secret not in out, out
        assert "TR_IT_SECRET" in out and "log_tail_lines" in out, out
    finally:
        d.cleanup()


def test_sigterm_and_sigint_stop_cleanly_within_10s():
    for sig in (signal.SIGTERM, signal.SIGINT):
        d = Daemon()
        try:
            d.start()
            assert d.request("GET", "/healthz")[0] == 200
            code, took = d.stop(sig)
            assert code == 0, (sig, code, d.stderr())
            assert took < 10, took
            assert "stopped" in d.stderr(), d.stderr()
            # The loop closed cleanly: every handle was released in order.
            assert "open handles" not in d.stderr(), d.stderr()
        finally:
            d.cleanup()


def test_state_survives_restart():
    d = Daemon()
    try:
        d.start()
        assert d.stop()[0] == 0
        db = os.path.join(d.dir, "var", "triaged.db")
        assert os.path.exists(db), os.listdir(os.path.join(d.dir, "var"))
        d.start()
        status, _, body = d.request("GET", "/readyz")
        assert status == 200 and json.loads(body)["components"]["store"]["state"] == "ok"
        assert d.stop()[0] == 0
    finally:
        d.cleanup()


def test_non_loopback_listen_requires_api_token_file():
    d = Daemon(config_text='[daemon]\nstate_dir = "@DIR@/var"\nlisten = "0.0.0.0:@PORT@"\n'
                           '[llm]\nprovider = "none"\n')
    try:
        res = run_cli("run", "-c", d.config, env=d.env, timeout=10)
        assert res.returncode == 2, res
        assert "daemon.listen" in res.stderr and "api_token_file" in res.stderr, res.stderr
    finally:
        d.cleanup()


def test_v1_needs_bearer_token_when_not_on_loopback():
    d = Daemon(config_text='[daemon]\nstate_dir = "@DIR@/var"\nlisten = "0.0.0.0:@PORT@"\n'
                           'api_token_file = "@DIR@/token"\n[llm]\nprovider = "none"\n')
    with open(os.path.join(d.dir, "token"), "w") as f:
        f.write("t0ken-abc\n")
    try:
        d.start()
        assert d.request("GET", "/healthz")[0] == 200
        status, _, body = d.request("GET", "/v1/incidents")
        assert status == 401, (status, body)
        assert "error" in json.loads(body)
        status, _, _ = d.request("GET", "/v1/incidents",
                                 headers={"Authorization": "Bearer wrong"})
        assert status == 401
        status, _, body = d.request("GET", "/v1/incidents",
                                    headers={"Authorization": "Bearer t0ken-abc"})
        assert status == 200, (status, body)
        assert "t0ken-abc" not in d.stderr()
        assert d.stop()[0] == 0
    finally:
        d.cleanup()


def test_body_over_one_mib_gets_413_and_unknown_path_404_json():
    d = Daemon()
    try:
        d.start()
        # [daemon] max_body_bytes (1 MiB) holds for every route but the Terraform log upload.
        status, _, body = d.request("POST", "/v1/incidents/1/accept",
                                    body=b"x" * (2 * 1024 * 1024))
        assert status == 413, status
        assert json.loads(body)["error"]
        status, _, body = d.request("GET", "/nope")
        assert status == 404 and json.loads(body)["error"], (status, body)
        status, _, body = d.request("POST", "/healthz")
        assert status == 405, status
        assert d.stop()[0] == 0
    finally:
        d.cleanup()


def test_hostile_clients_do_not_hurt_the_daemon():
    d = Daemon()
    text = open(d.config).read().replace('[daemon]\n', '[daemon]\nheader_timeout = "1s"\n', 1)
    with open(d.config, "w") as f:
        f.write(text)
    try:
        d.start()
        # A 10 MB header: cut at the limit, the connection answered or closed.
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            chunk = b"a" * 65536
            for _ in range(160):
                s.sendall(chunk)
        except OSError:
            pass
        try:
            reply = s.recv(4096)
        except OSError:
            reply = b""
        s.close()
        assert reply == b"" or reply.startswith(b"HTTP/1.1 431"), reply[:100]
        # A request that never ends: dropped after the header timeout.
        slow = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.time()
        data = slow.recv(4096)
        while data:
            more = slow.recv(4096)
            if not more:
                break
            data += more
        assert time.time() - started < 5, "slow client was not dropped"
        slow.close()
        # Garbage is a 400, not a crash.
        g = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        g.sendall(b"\x00\x01\x02 NOT HTTP\r\n\r\n")
        assert g.recv(100).startswith(b"HTTP/1.1 400")
        g.close()
        assert d.request("GET", "/healthz")[0] == 200
        assert d.stop()[0] == 0
    finally:
        d.cleanup()


def test_cli_help_version_and_usage_errors():
    res = run_cli("version")
    assert res.returncode == 0 and re.match(r"triaged \d+\.\d+\.\d+", res.stdout), res
    for args in (["--help"], ["run", "--help"], ["check-config", "--help"],
                 ["incidents", "--help"], ["show", "--help"]):
        res = run_cli(*args)
        assert res.returncode == 0 and "usage:" in res.stdout, (args, res)
    for args in ([], ["frobnicate"], ["run", "--bogus"], ["show"], ["version", "x"]):
        res = run_cli(*args)
        assert res.returncode == 2, (args, res)
        assert res.stderr.strip(), (args, res)


def test_json_logs_are_one_object_per_line():
    d = Daemon()
    text = open(d.config).read().replace('[daemon]\n', '[daemon]\nlog_format = "json"\n'
                                         'log_level = "debug"\n', 1)
    with open(d.config, "w") as f:
        f.write(text)
    try:
        d.start()
        assert d.stop()[0] == 0
        lines = [l for l in d.stderr().splitlines() if l.strip()]
        assert len(lines) >= 3, lines
        for line in lines:
            entry = json.loads(line)
            assert set(entry) == {"ts", "level", "module", "msg"}, entry
            assert entry["level"] in ("error", "warn", "info", "debug"), entry
        assert any(json.loads(l)["msg"] == "stopped" for l in lines), lines
    finally:
        d.cleanup()


def test_cli_incidents_and_show_talk_to_the_daemon():
    d = Daemon()
    try:
        d.start()
        res = run_cli("incidents", "-c", d.config, env=d.env)
        assert res.returncode == 0, res
        assert res.stdout.splitlines()[0].split() == ["ID", "STATE", "SOURCE", "REASON", "OBJECT"]
        assert "(no incidents)" in res.stdout, res.stdout
        res = run_cli("incidents", "--json", "--server", "http://127.0.0.1:%d" % d.port)
        assert res.returncode == 0 and json.loads(res.stdout) == {"incidents": []}, res
        res = run_cli("show", "42", "-c", d.config, env=d.env)
        assert res.returncode == 2 and "no such incident" in res.stderr, res
        res = run_cli("incidents", "--state", "bogus", "-c", d.config, env=d.env)
        assert res.returncode == 2, res
        assert d.stop()[0] == 0
        res = run_cli("incidents", "-c", d.config, env=d.env)
        assert res.returncode == 1 and "cannot reach the daemon" in res.stderr, res
    finally:
        d.cleanup()


def test_deploy_manifest_config_is_valid():
    """The ConfigMap in deploy/kubernetes/triaged.yaml must pass check-config."""
    from harness import ROOT
    text = open(os.path.join(ROOT, "deploy", "kubernetes", "triaged.yaml")).read()
    block = re.search(r"config\.toml: \|\n((?:    .*\n|\n)+)", text).group(1)
    config = "\n".join(line[4:] for line in block.splitlines()) + "\n"
    d = Daemon(config_text=config)
    try:
        res = run_cli("check-config", "-c", d.config, env=d.env)
        assert res.returncode == 0, res.stderr
        assert 'listen = "0.0.0.0:8080"' in res.stdout, res.stdout
    finally:
        d.cleanup()
