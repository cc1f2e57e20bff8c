"""Helpers of the tests that run Debian's prometheus / promtool: find the tool, a free port, the
HTTP query API, polling until Prometheus shows something, and stopping the started processes."""
import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest


def tool(name):
    exe = shutil.which(name)
    if exe is None:
        pytest.fail(f"{name} is not installed: the Prometheus tests need Debian's prometheus package "
                    "(bash tests/system-packages.sh installs it)")
    return exe


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(base, expr, at=None):
    q = {"query": expr}
    if at is not None:
        q["time"] = repr(at)
    with urllib.request.urlopen(f"{base}/api/v1/query?{urllib.parse.urlencode(q)}", timeout=10) as r:
        doc = json.load(r)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def poll(check, deadline, what):
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last is not None:
            return last
        time.sleep(0.2)
    pytest.fail(f"Prometheus did not show {what} in time (last: {last})")


def stop(processes, piped=()):
    """SIGTERM each process still running (SIGKILL after 10 s); close the pipes of ``piped``."""
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    for w in piped:
        w.stdin.close()
        w.stdout.close()
