"""A real Prometheus (Debian's package) scraping two fastdrift processes: the generated rules pass
``promtool check rules``, and the fleet PSI / p99 they compute match fastdrift and numpy.

Prometheus and promtool must be installed (``bash tests/system-packages.sh``); the test fails,
never skips, without them.
"""
import math
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

pytest.importorskip("prometheus_client")

import fastdrift  # noqa: E402
from fastdrift.exporters.prometheus import LATENCY_BUCKET_FACTOR  # noqa: E402
from fastdrift.exporters.promrules import _Names, _expressions, _pvalue_gate, rules_yaml  # noqa: E402
from promserver import poll, query, settled, start_prometheus, stop, tool  # noqa: E402

WORKER = r"""
import sys, pyarrow.ipc as ipc
from fastdrift import Monitor
d, i = sys.argv[1], sys.argv[2]
read = lambda n: ipc.open_file(f"{d}/{n}.arrow").read_all()
m = Monitor(read("ref"), prediction="score", latency="lat", error="err", window=700)
m.update(read(f"a{i}"))
server, _ = m.serve_metrics()
print(server.server_port, flush=True)
for line in sys.stdin:
    m.update(read(f"b{i}"))
    print("ok", flush=True)
"""
# the reference has a category no current row has (a zero current share) and current rows have one
# the reference lacks (a zero reference share): both sides of the eps smoothing are exercised
CATS = np.array(["DE", "FR", "US", "JP", "CN"])
DRAWS = {"ref": (CATS, [0.4, 0.3, 0.15, 0.1, 0.05]), 0: (CATS[:4], [0.4, 0.3, 0.2, 0.1]),
         1: (np.array(["DE", "FR", "US", "JP", "BR"]), [0.1, 0.2, 0.3, 0.3, 0.1])}
def _table(rng, n, shift, draws=None):
    cats, p = DRAWS[shift if draws is None else draws]
    return pa.table({
        "x": rng.normal(shift, 1.0 + shift, n),
        "y": np.round(rng.exponential(2.0 + shift, n), 1),  # ties and an empty bin or two
        "z": rng.normal(0.0, 1.0, n),  # no drift: the p-value gate holds it back
        "country": rng.choice(cats, n, p=p),
        "score": rng.beta(2, 5 - shift, n),
        "lat": rng.lognormal(np.log(20) + shift, 0.8, n),  # milliseconds
        "err": rng.random(n) < 0.02 + 0.03 * shift,
    })
def _numpy_psi(ref_counts, cur_counts, eps=1e-4):
    """PSI by the definition of docs/conventions.md, without fastdrift."""
    p = ref_counts / ref_counts.sum()
    q = cur_counts / cur_counts.sum()
    p = np.where(p == 0, eps, p)
    q = np.where(q == 0, eps, q)
    return float(np.sum((q - p) * np.log(q / p)))


def _numpy_counts(ref, cur):
    """Per column: reference and current counts on the reference's bins (numpy only)."""
    out = {}
    for name in ("x", "y", "z", "score"):
        r = ref[name].to_numpy()
        edges = np.unique(np.quantile(r, np.arange(1, 10) / 10))
        out[name] = tuple(np.bincount(np.searchsorted(edges, v, side="right"), minlength=edges.size + 1)
                          .astype(float) for v in (r, cur[name].to_numpy()))
    r, c = ref["country"].to_numpy(), cur["country"].to_numpy()
    known = np.isin(c, CATS)
    out["country"] = (np.array([(r == k).sum() for k in CATS] + [0], float),
                      np.array([(c == k).sum() for k in CATS] + [(~known).sum()], float))  # + <other>
    return out


def test_promtool_accepts_generated_rules(tmp_path):
    promtool = tool("promtool")
    rules = [dict(name="psi-any", owner="#ml", runbook="https://rb/psi", signal="feature_drift",
                  features=["x", "co*"], warning=0.1, critical={"threshold": 0.25, "min_features": 2}, **{"for": 3}),
             dict(name="gate", owner="#ml", runbook="https://rb/gate", resolve_after=2,
                  critical={"all": [{"signal": "prediction_drift", "threshold": 0.2},
                                    {"any": [{"signal": "latency", "quantile": 0.95, "threshold": 250},
                                             {"signal": "error_rate", "threshold": 0.05, "min_rows": 50}]}]}),
             dict(name="miss", owner="#ml", runbook="https://rb/m", signal="missingness", metric="ratio",
                  features=['we"ird\\[!a-c]?'], warning=0.3)]
    for given, window in ((None, "5m"), (rules, "90s")):
        text, _ = rules_yaml(given, window)
        path = tmp_path / f"rules-{window}.yml"
        path.write_text(text)
        r = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "SUCCESS" in r.stdout


def test_prometheus_fleet_psi_and_p99(tmp_path):
    prometheus = tool("prometheus")
    rng = np.random.default_rng(12)
    ref = _table(rng, 6000, 0, "ref")
    parts = {"a0": _table(rng, 2500, 0), "a1": _table(rng, 1900, 1), "b0": _table(rng, 1300, 1),
             "b1": _table(rng, 800, 0)}
    for name, t in {"ref": ref, **parts}.items():
        with ipc.new_file(str(tmp_path / f"{name}.arrow"), t.schema) as w:
            w.write_table(t)
    rules_path = tmp_path / "rules.yml"
    rules_path.write_text(rules_yaml(None, "1h")[0])
    workers, prom = [], None
    try:
        started = time.time()
        for i in range(2):
            workers.append(subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), str(i)],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        ports = [int(w.stdout.readline()) for w in workers]
        prom, base = start_prometheus(prometheus, tmp_path, rules_path, ports)
        deadline = time.monotonic() + 60

        # phase 1: the recorded 1h window holds every row of both processes
        cur = pa.concat_tables([parts["a0"], parts["a1"]])
        n_rows = cur.num_rows

        def complete():
            try:
                res = query(base, "fastdrift:rows:1h")
            except OSError:
                return None
            return res[0]["value"][0] if res and float(res[0]["value"][1]) == n_rows else None
        at = settled(poll(complete, deadline, f"fastdrift:rows:1h == {n_rows}"))
        rows = {r["metric"]["feature"]: float(r["value"][1]) for r in query(base, "fastdrift:feature_rows:1h", at)}
        assert rows == dict.fromkeys(("x", "y", "z", "country", "score"), float(n_rows))
        psi = {r["metric"]["feature"]: float(r["value"][1]) for r in query(base, "fastdrift:feature_psi:1h", at)}
        snap = _check_psi(psi, ref, cur)
        # the p-value gate's parts: bins holding any count, PSI * n*m / (n + m), and the gate itself
        bins = {r["metric"]["feature"]: float(r["value"][1]) for r in query(base, "fastdrift:feature_psi_bins:1h", at)}
        stat = {r["metric"]["feature"]: float(r["value"][1])
                for r in query(base, "fastdrift:feature_psi_statistic:1h", at)}
        gate = {r["metric"]["feature"] for r in query(base, _pvalue_gate(_Names("1h"), 1e-3), at)}
        for name, (r, c) in _numpy_counts(ref, cur).items():
            assert bins[name] == np.count_nonzero(r + c), name
            n, m = r.sum(), c.sum()
            assert stat[name] == pytest.approx(psi[name] * n * m / (n + m), rel=1e-12), name
            pvalue = snap.prediction.pvalue if name == "score" else snap.features[name].pvalue
            if pvalue < 1e-4 or pvalue > 1e-2:  # outside the approximation's margin: the same decision
                assert (name in gate) is (pvalue <= 1e-3), (name, pvalue)
        assert "x" in gate and "z" not in gate  # the drifted columns pass, the steady one does not
        p99 = float(query(base, 'fastdrift:latency_seconds:1h{quantile="0.99"}', at)[0]["value"][1])
        exact = float(np.quantile(cur["lat"].to_numpy() / 1000.0, 0.99, method="inverted_cdf"))
        assert abs(p99 / exact - 1) <= LATENCY_BUCKET_FACTOR - 1, (p99, exact)
        errors = cur["err"].to_numpy()
        ratio = float(query(base, "fastdrift:error_ratio:1h", at)[0]["value"][1])
        assert ratio == pytest.approx(errors.mean(), abs=1e-12)
        states = query(base, "fastdrift_alert_state", at)
        assert len(states) >= 2 * 9 and {r["metric"]["rule"] for r in states} >= {"feature-drift", "latency-p99"}

        # phase 2: a 10 s window after more rows arrive counts exactly those rows (counter minus offset)
        while time.time() < started + 12:  # every process must have started more than 10 s ago
            time.sleep(0.2)
        for w in workers:
            w.stdin.write("b\n")
            w.stdin.flush()
            assert w.stdout.readline().strip() == "ok"
        win = _expressions("10s", 10)
        new = pa.concat_tables([parts["b0"], parts["b1"]])
        rows_10s = "sum(((fastdrift_rows_total - fastdrift_rows_total offset 10s) and ignoring (feature, role, bin, le) " \
                   "(fastdrift_start_time_seconds < time() - 10)) or fastdrift_rows_total)"

        def windowed():
            t = time.time()
            res = query(base, rows_10s, t)
            return t if res and float(res[0]["value"][1]) == new.num_rows else None
        t = poll(windowed, time.monotonic() + 20, f"{new.num_rows} rows in the last 10 s")
        psi = {r["metric"]["feature"]: float(r["value"][1]) for r in query(base, win["psi"], t)}
        _check_psi(psi, ref, new)
    finally:
        stop(workers + ([prom] if prom else []), workers)


def _check_psi(got, ref, cur):
    """fastdrift.psi of the merged counts (a single Monitor fed the same rows) and numpy agree with
    Prometheus to 1e-9."""
    m = fastdrift.Monitor(ref, prediction="score", latency="lat", error="err", window=10**9, rules=[])
    m.update(cur)
    snap = m.snapshot()
    oracle = _numpy_counts(ref, cur)
    assert set(got) == {"x", "y", "z", "country", "score"}
    for name, value in got.items():
        want = snap.prediction.value if name == "score" else snap.features[name].value
        assert math.isfinite(want)
        assert value == pytest.approx(want, abs=1e-9), name
        r, c = oracle[name]
        assert value == pytest.approx(_numpy_psi(r, c), abs=1e-9), name
        assert fastdrift.psi(r, c) == pytest.approx(value, abs=1e-9), name
    return snap
