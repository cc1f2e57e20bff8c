"""Helpers of the tests that run Debian's prometheus / promtool: find the tool, a free port, start
Prometheus scraping some ports, the HTTP query API, polling until Prometheus shows something,
waiting until its recorded rules settle, stopping the started processes; and one in-process scrape of a monitor's collector."""
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


def settled(seen_at, interval=1.0):
    """A query time at which every recorded series comes from a rule evaluation that started after
    ``seen_at`` (when the inputs were seen complete and no longer change). Prometheus evaluates a
    group's rules one after another and commits each as it goes, so a scrape that lands during an
    evaluation is missed by the rules before it and seen by those after: the evaluation that first
    shows a complete row count may still hold partial bins. Two intervals later every evaluation
    whose samples a query can see began after the inputs were complete."""
    at = float(seen_at) + 2.5 * interval
    while time.time() < at:
        time.sleep(0.05)
    return at


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


def start_prometheus(prometheus, tmp_path, rules_path, ports):
    """Prometheus scraping ``127.0.0.1:port`` of each of ``ports`` every second with ``rules_path``
    evaluated every second: ``(process, base URL)``; its log in ``tmp_path/prometheus.log``."""
    web = free_port()
    (tmp_path / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_path)],
        "scrape_configs": [{"job_name": "fastdrift",
                            "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in ports]}]}]}))
    with open(tmp_path / "prometheus.log", "w") as log:
        prom = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{web}"], stdout=subprocess.DEVNULL, stderr=log)
    return prom, f"http://127.0.0.1:{web}"


def scrape(monitor):
    """One scrape of ``monitor``'s collector through prometheus_client: ``(samples, text)``, the
    samples as {(name, sorted label items): value}."""
    from prometheus_client.exposition import generate_latest
    from prometheus_client.parser import text_string_to_metric_families
    from prometheus_client.registry import CollectorRegistry

    reg = CollectorRegistry(auto_describe=False)
    reg.register(monitor.prometheus_collector())
    text = generate_latest(reg).decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out, text
