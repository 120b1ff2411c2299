"""Lease leader election (watchers/kube_lease.c) against a real apiserver from
../shared/tools/k8s-local, driven through tests/tools/kube_lease_probe.c, which
prints "leader"/"follower" on each transition and the holder it sees.

Short durations (lease 4 s, renew deadline 3 s, retry 0.5 s) keep the cases
quick; the protocol is the same as with the 15/10/2 s defaults. Shares the
cluster of test_kube_watch.py (one k8s-local per run).
"""
import os
import signal
import subprocess
import time

import test_kube_watch as kw
from harness import BIN, ROOT, SkipTest  # noqa: F401

DURATION_MS, RENEW_MS, RETRY_MS = 4000, 3000, 500


def lease_probe_bin():
    """tests/tools/kube_lease_probe.c, built against the library under test."""
    return kw.build_probe("kube_lease_probe")


class LeaseProbe(kw.Probe):
    def __init__(self, cluster, identity, name):
        self.identity = identity
        super().__init__(["--kubeconfig", cluster.path("admin.kubeconfig"),
                          "--identity", identity, "--namespace", "default", "--name", name,
                          "--duration-ms", str(DURATION_MS), "--renew-ms", str(RENEW_MS),
                          "--retry-ms", str(RETRY_MS)], binary=lease_probe_bin())

    def state(self):
        with self.cond:
            states = [l for l in self.lines if l in ("leader", "follower")]
        return states[-1] if states else None


def wait_one_leader(probes, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        leaders = [p for p in probes if p.proc.poll() is None and p.state() == "leader"]
        if len(leaders) == 1:
            return leaders[0]
        assert len(leaders) < 2, "two leaders: %s" % [p.identity for p in leaders]
        time.sleep(0.05)
    raise AssertionError("no leader within %ss: %s" % (timeout, [(p.identity, p.lines)
                                                                  for p in probes]))


def lease(c, name):
    return c.api("GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases/" + name)


def stop_all(probes):
    for p in probes:
        if p.proc.poll() is None:
            p.stop()


def test_two_electors_exactly_one_leader_and_the_lease_names_it():
    c = kw.cluster()
    probes = [LeaseProbe(c, "replica-a", "le-two"), LeaseProbe(c, "replica-b", "le-two")]
    try:
        leader = wait_one_leader(probes)
        other = [p for p in probes if p is not leader][0]
        # Several renewals later it is still one leader and the other follows it.
        time.sleep(3 * RETRY_MS / 1000.0)
        assert wait_one_leader(probes) is leader
        other.wait_for(r"^HOLDER %s$" % leader.identity)
        spec = lease(c, "le-two")["spec"]
        assert spec["holderIdentity"] == leader.identity, spec
        assert spec["leaseDurationSeconds"] == DURATION_MS // 1000, spec
        # MicroTime: six fractional digits and Z.
        assert kw.re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", spec["renewTime"]), spec
        assert other.count(r"^leader$") == 0, other.lines
    finally:
        stop_all(probes)


def test_killed_leader_is_replaced_within_lease_duration_plus_retry():
    c = kw.cluster()
    probes = [LeaseProbe(c, "kill-a", "le-kill"), LeaseProbe(c, "kill-b", "le-kill")]
    try:
        leader = wait_one_leader(probes)
        other = [p for p in probes if p is not leader][0]
        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait()
        killed = time.time()
        other.wait_for(r"^leader$", timeout=(DURATION_MS + 3 * RETRY_MS) / 1000.0 + 2)
        took = time.time() - killed
        # Not before the lease expired (no split brain), not much after.
        assert took >= DURATION_MS / 1000.0 - 1.5, took
        assert took <= (DURATION_MS + 2 * RETRY_MS) / 1000.0 + 1.0, took
        assert lease(c, "le-kill")["spec"]["holderIdentity"] == other.identity
        assert lease(c, "le-kill")["spec"]["leaseTransitions"] >= 1
    finally:
        stop_all([p for p in probes if p.proc.returncode != -signal.SIGKILL])


def test_clean_stop_releases_and_the_standby_takes_over_at_once():
    c = kw.cluster()
    probes = [LeaseProbe(c, "clean-a", "le-clean"), LeaseProbe(c, "clean-b", "le-clean")]
    try:
        leader = wait_one_leader(probes)
        other = [p for p in probes if p is not leader][0]
        started = time.time()
        leader.stop()  # exit 0, loop closed cleanly, no leaks
        assert "RELEASED" in leader.lines and leader.lines[-4:-2] == ["follower", "RELEASED"], \
            leader.lines
        other.wait_for(r"^leader$", timeout=DURATION_MS / 1000.0)
        # One retry period or so, far less than the lease duration.
        assert time.time() - started < (DURATION_MS / 1000.0) / 2, time.time() - started
    finally:
        stop_all(probes)


def test_lease_holder_steps_down_when_apiserver_is_gone_and_leads_again_after():
    c = kw.cluster()
    p = LeaseProbe(c, "solo", "le-outage")
    apiserver_down = False
    try:
        p.wait_for(r"^leader$")
        mark = len(p.lines)
        c.component("stop", "apiserver")
        apiserver_down = True
        p.wait_for(r"^follower$", start=mark, timeout=RENEW_MS / 1000.0 + 5)
        c.component("start", "apiserver")
        apiserver_down = False
        p.wait_for(r"^leader$", start=mark, timeout=30)
        err = p.stop()
        # It stepped down because of the renew deadline, not before it.
        waited = [int(ms) for ms in kw.re.findall(r"not renewed for (\d+) ms; stepping down", err)]
        assert len(waited) == 1 and RENEW_MS <= waited[0] < DURATION_MS, err
        assert "the apiserver answers again" in err, err
    finally:
        if apiserver_down:
            c.component("start", "apiserver")
        if p.proc.poll() is None:
            p.stop()
