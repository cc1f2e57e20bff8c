"""Label join: labels joined per second, memory per remembered prediction, observe_label's cost.

* ``label-join``: ``Monitor.update_labels`` of 1,000,000 labels (request id strings, 0/1 labels,
  times; shuffled) against 1,000,000 remembered predictions (event-time windows of 300 s, 1000
  predictions/s, so most labels reach closed panes and revise their windows), end to end: request-id
  hashing, the table probe, grouping by pane, the panes' performance sketches and label delay
  t-digests.  Each round first marks the predictions unlabelled again (not timed), so every round
  joins.  ``extra_info``: ``bytes_per_prediction`` = the join table's bytes / predictions held.
  Peers measured in the same run: a plain Python dict join of the same ids (``role="peer"``:
  ``d.get(id)`` per label, appending score and pane) and ``np.sum`` over 1M float64.
* ``label-observe``: one ``Monitor.observe_label`` call (the request path: one list append, no
  lock), timed per call.
"""
import numpy as np
import pyarrow as pa
import pytest

import fastdrift

N = 1_000_000


def _predictions(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    s = 1 / (1 + np.exp(-2 * x))
    y = (rng.random(n) < s).astype(np.int64)
    ids = pa.array(np.arange(n)).cast(pa.string())
    t = np.arange(n, dtype=np.float64) / 1000
    return x, s, y, ids, t


@pytest.fixture(scope="module")
def joined():
    x, s, y, ids, t = _predictions(N)
    ref = pa.table({"x": x[:100_000], "score": s[:100_000], "y": y[:100_000]})
    m = fastdrift.Monitor(ref, features=["x"], prediction="score", label="y", request_id="rid", event_time="t",
                          window={"by": "time", "size": 300}, rules=[],
                          labels={"max_predictions": 1 << 20, "horizon": 86400.0})
    m.update(pa.table({"x": x, "score": s, "rid": ids, "t": t}))
    order = np.random.default_rng(1).permutation(N)
    labels = pa.table({"rid": ids.take(pa.array(order)), "y": y[order], "t": t[order] + 5.0})
    return m, labels, ids, s, order


@pytest.mark.benchmark(group="label-join")
def test_update_labels(benchmark, joined):
    m, labels, _, _, _ = joined
    st = m.ingest.labels

    def again():
        st.flag[st.flag == 2] = 1  # every prediction waits for its label again

    benchmark.pedantic(m.update_labels, args=(labels,), setup=again, rounds=5, iterations=1, warmup_rounds=1)
    assert st.counts["unmatched"] == 0 and st.counts["late"] == 0
    benchmark.extra_info.update(n=N, bytes_per_prediction=st.nbytes / st.live, live=st.live,
                                labels_per_s=N / benchmark.stats.stats.median)


@pytest.mark.benchmark(group="label-join")
def test_python_dict_join_peer(benchmark, joined):
    _, labels, ids, s, order = joined
    table = dict(zip(ids.to_pylist(), zip(s.tolist(), (np.arange(N) // 300_000).tolist())))
    label_ids = labels.column("rid").to_pylist()

    def join():
        get = table.get
        out_s, out_p = [], []
        for r in label_ids:
            hit = get(r)
            if hit is not None:
                out_s.append(hit[0])
                out_p.append(hit[1])
        return out_s, out_p

    benchmark.pedantic(join, rounds=3, iterations=1)
    benchmark.extra_info.update(n=N, role="peer")


@pytest.mark.benchmark(group="label-join")
def test_np_sum(benchmark):
    a = np.random.default_rng(2).random(N)
    benchmark(np.sum, a)
    benchmark.extra_info.update(n=N, role="np.sum")


@pytest.mark.benchmark(group="label-observe")
def test_observe_label(benchmark, joined):
    m, _, _, _, _ = joined
    obs = m.observe_label
    benchmark.pedantic(obs, args=("12345", 1), rounds=50_000, iterations=1, warmup_rounds=1000)
    benchmark.extra_info.update(n=1)
    m.flush()


@pytest.fixture(scope="module", params=["multiclass", "regression"])
def joined_task(request):
    """The label-join case for a multiclass (10 string classes: labels are coded as the store
    numbers the classes, then decoded for the pane's sketch) and a regression model (float actuals)."""
    task = request.param
    rng = np.random.default_rng(3)
    x = rng.normal(size=N)
    if task == "multiclass":
        classes = np.array([f"c{i}" for i in range(10)])
        y = classes[rng.integers(0, 10, N)]
        p = np.where(rng.random(N) < 0.7, y, classes[rng.integers(0, 10, N)])
    else:
        y = 3 * x + rng.normal(size=N)
        p = 3 * x + rng.normal(size=N)
    ids = pa.array(np.arange(N)).cast(pa.string())
    t = np.arange(N, dtype=np.float64) / 1000
    ref = pa.table({"x": x[:100_000], "pred": p[:100_000], "y": y[:100_000]})
    m = fastdrift.Monitor(ref, features=["x"], prediction="pred", label="y", request_id="rid", event_time="t",
                          window={"by": "time", "size": 300}, rules=[], task=task,
                          labels={"max_predictions": 1 << 20, "horizon": 86400.0})
    m.update(pa.table({"x": x, "pred": p, "rid": ids, "t": t}))
    order = np.random.default_rng(1).permutation(N)
    labels = pa.table({"rid": ids.take(pa.array(order)), "y": y[order], "t": t[order] + 5.0})
    return m, labels, task


@pytest.mark.benchmark(group="label-join")
def test_update_labels_task(benchmark, joined_task):
    m, labels, task = joined_task
    st = m.ingest.labels

    def again():
        st.flag[st.flag == 2] = 1

    benchmark.pedantic(m.update_labels, args=(labels,), setup=again, rounds=3, iterations=1, warmup_rounds=1)
    assert st.counts["unmatched"] == 0 and st.counts["late"] == 0 and st.counts["invalid"] == 0
    benchmark.extra_info.update(n=N, task=task, labels_per_s=N / benchmark.stats.stats.median,
                                bytes_per_prediction=st.nbytes / st.live)
