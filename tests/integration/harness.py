"""Small harness for triaged's integration tests: start the real daemon on a
free port with a config written for the test, talk to it over HTTP, stop it.

Only the Python standard library is used, so a fresh Debian 12 machine needs
nothing beyond python3.
"""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(os.environ.get("TRIAGED_BIN", os.path.join(ROOT, "build", "triaged")))
SHARED = os.path.abspath(os.environ.get("SHARED", os.path.join(ROOT, "..", "shared")))


class SkipTest(Exception):
    """Raised by a test whose precondition (a binary, a tool) is absent here."""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args, env=None, stdin=None, timeout=30):
    """Run the triaged binary once; returns CompletedProcess with text output."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([BIN] + list(args), capture_output=True, text=True,
                          env=full_env, input=stdin, timeout=timeout)


class Daemon:
    """A triaged daemon running on a config written into a fresh temp dir."""

    def __init__(self, config_text=None, env=None, example=False, extra=""):
        self.dir = tempfile.mkdtemp(prefix="triaged-it-")
        self.port = free_port()
        self.env = dict(os.environ)
        # No cluster unless the test provides one.
        self.env.pop("KUBERNETES_SERVICE_HOST", None)
        self.env["KUBECONFIG"] = os.path.join(self.dir, "no-such-kubeconfig")
        self.env["HOME"] = self.dir
        self.env.update(env or {})
        if example:
            with open(os.path.join(ROOT, "config.example.toml")) as f:
                text = f.read()
            text = re.sub(r'(?m)^listen = .*$', 'listen = "127.0.0.1:%d"' % self.port, text)
            text = re.sub(r'(?m)^state_dir = .*$',
                          'state_dir = "%s"' % os.path.join(self.dir, "var"), text)
            config_text = text + extra
        elif config_text is None:
            config_text = self.minimal_config() + extra
        else:
            config_text = config_text.replace("@PORT@", str(self.port)).replace("@DIR@", self.dir)
        self.config = os.path.join(self.dir, "config.toml")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.proc = None
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")

    def minimal_config(self):
        return ('[daemon]\nstate_dir = "%s"\nlisten = "127.0.0.1:%d"\n'
                '[llm]\nprovider = "none"\n[[notify]]\nkind = "log"\n'
                % (os.path.join(self.dir, "var"), self.port))

    def start(self, wait=True):
        self.proc = subprocess.Popen([BIN, "run", "-c", self.config], env=self.env,
                                     stdout=open(self.stdout_path, "a"),
                                     stderr=open(self.stderr_path, "a"))
        if wait:
            self.wait_listening()
        return self

    def wait_listening(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("daemon exited with %s: %s" % (self.proc.returncode,
                                                                     self.stderr()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("daemon did not listen within %ss: %s" % (timeout, self.stderr()))

    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def stderr(self):
        try:
            with open(self.stderr_path) as f:
                return f.read()
        except OSError:
            return ""

    def stdout(self):
        try:
            with open(self.stdout_path) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signal the daemon; returns (exit status, seconds it took)."""
        if self.proc is None or self.proc.poll() is not None:
            return (self.proc.returncode if self.proc else None), 0.0
        started = time.time()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
            raise AssertionError("daemon did not stop within %ss after signal %d"
                                 % (timeout, sig))
        return code, time.time() - started

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
