"""Contract tests run over every sketch class: the shared verbs behave the same everywhere."""
import sys
import threading

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

import fastdrift
from fastdrift import (ConcurrentUseError, CorruptStateError, IncompatibleSketchError,
                       InvalidInputError, SchemaError)
from fastdrift.sketches.base import Sketch

from conftest import CapsuleArray, CapsuleStream


def _numeric(rng, n):
    x = rng.normal(0, 3, n)
    x[rng.random(n) < 0.05] = np.nan
    x[rng.random(n) < 0.01] = np.inf
    mask = rng.random(n) < 0.1
    return pa.array(x, mask=mask)


def _strings(rng, n):
    vocab = np.array(["a", "bb", "ccc", "", "dé", "z" * 30])
    return pa.array(vocab[rng.integers(0, len(vocab), n)], mask=rng.random(n) < 0.1)


def _scores(rng, n):
    x = rng.random(n)
    x[rng.random(n) < 0.05] = np.nan
    x[rng.random(n) < 0.01] = 1.5
    x[rng.random(n) < 0.3] = 0.25  # a pile
    return pa.array(x, mask=rng.random(n) < 0.1)


FACTORIES = {
    "Histogram": (lambda: fastdrift.Histogram([-2.0, 0.0, 1.5, 4.0]), _numeric),
    "Moments": (lambda: fastdrift.Moments(), _numeric),
    "Categorical": (lambda: fastdrift.Categorical(), _strings),
    "TDigest": (lambda: fastdrift.TDigest(50), _numeric),
    # update(values) of a performance sketch: scores alone (unlabelled); exact=40 keeps both table layouts
    "BinaryPerformance": (lambda: fastdrift.BinaryPerformance(exact=40), _scores),
}


def test_every_sketch_class_is_covered():
    # RowSample.update takes (batch, row keys), not a column of values: test_row_sample.py holds
    # its contract (split/merge against an oracle, round trips, hostile bytes); the multiclass and
    # regression performance sketches take (predictions, actuals): tests/test_performance_multi.py
    classes = {c.__name__ for c in Sketch.__subclasses__()} - {"RowSample", "MulticlassPerformance",
                                                               "RegressionPerformance"}
    assert classes <= set(FACTORIES), f"sketch classes without contract tests: {classes - set(FACTORIES)}"


def _equal(a, b):
    if isinstance(a, fastdrift.TDigest):
        # merge order changes the clusters, not the counts or the ends
        assert (a.count, a.null_count, a.nan_count, a.posinf_count, a.neginf_count) == \
            (b.count, b.null_count, b.nan_count, b.posinf_count, b.neginf_count)
        assert a.min == b.min and a.max == b.max or (a.n == 0 and b.n == 0)
        q = np.linspace(0.02, 0.98, 25)
        np.testing.assert_allclose(a.cdf(a.quantile(q)), b.cdf(b.quantile(q)), atol=0.03)
    elif isinstance(a, fastdrift.BinaryPerformance):  # the float sums merge up to reassociation
        np.testing.assert_allclose(a._sums, b._sums, rtol=1e-12)
        c = a.copy()
        c._sums = b._sums.copy()
        if a._spread is not None and b._spread is not None:
            np.testing.assert_allclose(a._spread, b._spread, rtol=1e-12, atol=1e-12)
            c._spread = b._spread.copy()
        assert c == b
    elif isinstance(a, fastdrift.Moments):
        assert a._ints.tolist() == b._ints.tolist()
        np.testing.assert_allclose(a._flts, b._flts, rtol=1e-9, atol=1e-9)
    else:
        assert a == b


@pytest.fixture(params=sorted(FACTORIES))
def kind(request):
    return request.param


def test_empty(kind):
    make, _ = FACTORIES[kind]
    s = make()
    assert s.count == 0 and s.is_empty
    s2 = type(s).from_bytes(s.to_bytes())
    _equal(s, s2)


def test_update_counts_every_value(kind, rng):
    make, data = FACTORIES[kind]
    arr = data(rng, 1000)
    s = make().update(arr)
    assert s.count == 1000
    assert s.null_count == arr.null_count


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 600), max_size=6), seed=st.integers(0, 2**32 - 1))
def test_split_update_merge_equals_one_pass(cuts, seed):
    rng = np.random.default_rng(seed)
    for kind, (make, data) in FACTORIES.items():
        arr = data(rng, 600)
        whole = make().update(arr)
        bounds = [0, *sorted(cuts), 600]
        parts = [make().update(arr.slice(a, b - a)) for a, b in zip(bounds, bounds[1:])]
        merged = make()
        for p in parts:
            merged.merge(p)
        _equal(merged, whole)
        # chunked input is the same data too
        chunked = make().update(pa.chunked_array([arr.slice(a, b - a) for a, b in zip(bounds, bounds[1:])],
                                                 type=arr.type))
        _equal(chunked, whole)


def test_merge_does_not_mutate_argument(kind, rng):
    make, data = FACTORIES[kind]
    a, b = make().update(data(rng, 500)), make().update(data(rng, 500))
    before = b.to_bytes()
    a.merge(b)
    assert b.to_bytes() == before
    assert a.count == 1000


def test_merge_self_doubles(kind, rng):
    make, data = FACTORIES[kind]
    a = make().update(data(rng, 300))
    a.merge(a)
    assert a.count == 600


def test_copy_is_independent(kind, rng):
    make, data = FACTORIES[kind]
    a = make().update(data(rng, 200))
    b = a.copy()
    _equal(a, b)
    b.update(data(rng, 50))
    assert a.count == 200 and b.count == 250


def test_bytes_round_trip(kind, rng):
    make, data = FACTORIES[kind]
    a = make().update(data(rng, 700))
    b = type(a).from_bytes(a.to_bytes())
    _equal(a, b)
    assert b.to_bytes() == a.to_bytes()
    # and the decoded sketch keeps working
    b.update(data(rng, 10))
    assert b.count == 710


def test_merge_other_class_raises(kind):
    make, _ = FACTORIES[kind]
    other = next(FACTORIES[k][0]() for k in FACTORIES if k != kind)
    with pytest.raises(IncompatibleSketchError):
        make().merge(other)


def test_capsule_inputs(kind, rng):
    make, data = FACTORIES[kind]
    arr = data(rng, 300)
    want = make().update(arr)
    _equal(make().update(CapsuleArray(arr)), want)
    _equal(make().update(CapsuleStream(pa.chunked_array([arr.slice(0, 100), arr.slice(100)]))), want)


def test_non_arrow_object_raises(kind):
    make, _ = FACTORIES[kind]
    s = make()
    with pytest.raises(InvalidInputError):
        s.update({"not": "an array"})
    with pytest.raises(InvalidInputError):
        s.update(42)


def test_bad_call_keeps_earlier_counts(kind, rng):
    make, data = FACTORIES[kind]
    s = make().update(data(rng, 100))
    snapshot = s.to_bytes()
    bad = pa.array([1.5, 2.5]) if kind == "Categorical" else pa.array(["x", "y"])
    with pytest.raises(SchemaError) as err:
        s.update(bad)
    assert isinstance(err.value, TypeError)
    assert s.to_bytes() == snapshot


def test_concurrent_mutation_fails_loudly(kind, rng):
    make, data = FACTORIES[kind]
    s = make()
    s._lock.acquire()  # another thread is mid-update
    try:
        with pytest.raises(ConcurrentUseError):
            s.update(data(rng, 10))
    finally:
        s._lock.release()
    assert s.count == 0


def test_a_failed_update_releases_both_locks(kind, rng):
    """An update that raises leaves the writer lock and the state lock free: another thread can
    read and update the sketch at once (its state lock is reentrant, so only another thread
    can tell)."""
    make, data = FACTORIES[kind]
    s = make()
    bad = pa.array([1.5, 2.5]) if kind == "Categorical" else pa.array(["x", "y"])
    with pytest.raises(SchemaError):
        s.update(bad)
    got = []

    def other():
        got.append(s._state_lock.acquire(timeout=5))
        s._state_lock.release()
        s.update(data(rng, 10))
        got.append(s.count)

    t = threading.Thread(target=other)
    t.start()
    t.join(10)
    assert got == [True, 10]


def test_threads_each_own_sketch_then_merge(kind, rng):
    make, data = FACTORIES[kind]
    arrays = [data(rng, 20_000) for _ in range(8)]
    parts = [make() for _ in arrays]
    threads = [threading.Thread(target=p.update, args=(a,)) for p, a in zip(parts, arrays)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = make()
    for p in parts:
        total.merge(p)
    serial = make()
    for a in arrays:
        serial.update(a)
    _equal(total, serial)


def test_corrupt_bytes_rejected(kind, rng):
    make, data = FACTORIES[kind]
    raw = make().update(data(rng, 50)).to_bytes()
    cls = type(make())
    for cut in range(0, len(raw), max(1, len(raw) // 40)):
        with pytest.raises(CorruptStateError):
            cls.from_bytes(raw[:cut])
    for i in range(0, len(raw), max(1, len(raw) // 60)):
        flipped = bytearray(raw)
        flipped[i] ^= 0x10
        with pytest.raises(CorruptStateError):
            cls.from_bytes(bytes(flipped))
    other = next(FACTORIES[k][0]() for k in FACTORIES if k != kind)
    with pytest.raises(CorruptStateError):
        cls.from_bytes(other.to_bytes())


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), pos=st.integers(0, 10_000), byte=st.integers(0, 255))
def test_mutated_bytes_never_crash(data, pos, byte):
    for kind, (make, gen) in FACTORIES.items():
        raw = bytearray(make().update(gen(np.random.default_rng(pos), 40)).to_bytes())
        raw[pos % len(raw)] = byte
        for blob in (bytes(raw), data, bytes(raw[: pos % len(raw)]) + data):
            try:
                out = type(make()).from_bytes(blob)
            except CorruptStateError:
                continue
            # Whatever decodes is a valid sketch whose canonical encoding is the input.
            assert out.to_bytes() == blob
            assert out.count >= 0


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(FACTORIES)), which=st.integers(0, 1), pos=st.integers(0, 10_000),
       byte=st.integers(0, 255), cut=st.booleans(), extra=st.binary(max_size=12))
def test_mutated_payload_behind_a_valid_checksum(kind, which, pos, byte, cut, extra):
    """The checksum stops random damage; this feeds the inner decoders damaged params and
    payloads re-wrapped in a valid envelope: they must refuse (CorruptStateError) or decode
    to a sketch that works, never crash or raise anything else."""
    from fastdrift import codec

    make, gen = FACTORIES[kind]
    s = make().update(gen(np.random.default_rng(pos), 60))
    k, params, payload = codec.decode(s.to_bytes())
    parts = [bytearray(params), bytearray(payload)]
    part = parts[which]
    if part:
        part[pos % len(part)] = byte
        if cut:
            del part[pos % len(part):]
    part += extra
    blob = codec.encode(k, bytes(parts[0]), bytes(parts[1]))
    try:
        out = type(s).from_bytes(blob)
    except CorruptStateError:
        return
    assert out.count >= 0
    assert type(out).from_bytes(out.to_bytes()).to_bytes() == out.to_bytes()
    try:
        out.update(gen(np.random.default_rng(1), 5))
    except SchemaError:
        assert kind == "Categorical" and out.key_type != "str"  # a damaged key-type byte that still decodes


@pytest.mark.parametrize("read", ["to_bytes", "copy", "merge_from", "query"])
def test_readers_never_disturb_a_writer(kind, read, rng):
    """A writer thread updates in batches while a reader thread snapshots the same sketch in a
    loop: the writer never fails, every snapshot decodes and holds a whole number of batches,
    and the final counts are exact."""
    make, data = FACTORIES[kind]
    batch, n_batches = 200, 1000
    batches = [data(rng, batch) for _ in range(n_batches)]
    s = make()
    started, done = threading.Event(), threading.Event()
    writer_errors, counts = [], []

    def writer():
        started.wait()
        try:
            for b in batches:
                s.update(b)
        except BaseException as exc:  # noqa: BLE001 - the assertion below reports it
            writer_errors.append(exc)
        finally:
            done.set()

    def snapshot():
        if read == "to_bytes":
            return type(s).from_bytes(s.to_bytes())
        if read == "copy":
            return type(s).from_bytes(s.copy().to_bytes())
        if read == "merge_from":
            return make().merge(s)
        if kind == "TDigest":
            s.quantile(0.5), s.cdf(0.0), s.centroids()  # flushes from the reader's thread
        return type(s).from_bytes(s.to_bytes())

    w = threading.Thread(target=writer)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # interleave the two threads finely
    try:
        w.start()
        while not done.is_set():
            counts.append(snapshot().count)
            started.set()
    finally:
        sys.setswitchinterval(old)
        started.set()
        w.join()
    assert not writer_errors, writer_errors
    assert counts and all(c % batch == 0 for c in counts), sorted(set(c % batch for c in counts))
    serial = make()
    for b in batches:
        serial.update(b)
    assert s.count == serial.count == batch * n_batches
    _equal(s, serial)
