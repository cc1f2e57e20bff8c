"""Segmented profiles (``segment_by``): each segment's profile against the rows filtered by plain
numpy, the whole against the unsegmented profile, merges of split inputs, bytes, bad input, and the
compare / CLI / HTML views of the segments."""
import collections
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import fastdrift
from fastdrift.adapters.segments import OTHER
from fastdrift.cli import main
from fastdrift.errors import CorruptStateError, IncompatibleSketchError, SchemaError
from fastdrift.profilefile import ProfileFile
from fastdrift.report import compare, format_text, render, to_json

N = 20_000


def _table(n=N, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    g = np.array(["us", "de", "fr", "it", "es"])[rng.integers(0, 5, n)]
    v = rng.integers(1, 4, n)
    x = rng.normal(0, 1, n) + np.where(g == "fr", shift, 0.0)
    x[rng.random(n) < 0.02] = np.nan
    return pa.table({
        "x": pa.array(x, mask=rng.random(n) < 0.03),
        "k": pa.array(rng.integers(-50, 50, n)),
        "c": pa.array(rng.choice(["a", "b", "c", "dé"], n), mask=rng.random(n) < 0.05),
        "country": pa.array(g, mask=rng.random(n) < 0.01),
        "v": pa.array(v),
    })


def _row_keys(t, cols):
    """Each row's segment key, by plain Python (the oracle of the keyer's assignment)."""
    vals = [t.column(c).to_pylist() for c in cols]
    return np.array([",".join(f"{c}={'<null>' if x is None else x}" for c, x in zip(cols, row))
                     for row in zip(*vals)])


def _hist_oracle(x, edges):
    x = np.asarray(x, dtype=float)
    finite = x[~np.isnan(x)]
    return np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1)


@pytest.fixture(scope="module")
def table():
    return _table()


@pytest.fixture(scope="module")
def seg(table):
    return fastdrift.profile(table, segment_by=["country", "v"])


def test_each_segment_is_the_profile_of_its_rows(table, seg):
    keys = _row_keys(table, ["country", "v"])
    assert set(seg.segments) == set(keys)  # 5 countries + null, times 3 values: under the cap
    assert "country" not in seg.columns and "v" not in seg.columns  # segment columns are not features
    x = table.column("x").to_numpy(zero_copy_only=False)  # nulls as NaN
    xnull = table.column("x").is_null().to_numpy(zero_copy_only=False)
    c = np.array(table.column("c").to_pylist(), dtype=object)
    k = table.column("k").to_numpy()
    for key, p in seg.segments.items():
        m = keys == key
        assert p.rows == m.sum()
        edges = seg["x"].histogram.edges
        assert np.array_equal(p["x"].histogram.edges, edges)  # the whole's bins
        assert p["x"].histogram.counts.tolist() == _hist_oracle(x[m & ~xnull], edges).tolist()
        assert p["x"].histogram.null_count == (m & xnull).sum()
        assert p["x"].histogram.nan_count == (m & ~xnull & np.isnan(x)).sum()
        assert p["k"].histogram.counts.tolist() == _hist_oracle(k[m], seg["k"].histogram.edges).tolist()
        want = collections.Counter(v for v in c[m] if v is not None)
        assert p["c"].categorical.to_dict() == dict(want)
        assert p["c"].categorical.null_count == sum(v is None for v in c[m])
        mo = p["x"].moments
        fin = x[m & ~xnull & ~np.isnan(x)]
        assert mo.n == fin.size and (mo.min, mo.max) == (fin.min(), fin.max())
        assert mo.mean == pytest.approx(fin.mean(), rel=1e-9, abs=1e-12)
        # t-digest: rank error within 1% plus one row's rank (compression 100; docs/sketches.md bounds)
        qs = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
        est = p["x"].tdigest.quantile(qs)
        ranks = np.searchsorted(np.sort(fin), est) / fin.size
        assert np.max(np.abs(ranks - qs)) <= 0.01 + 1 / fin.size, (key, ranks)


def test_the_whole_is_the_unsegmented_profile(table, seg):
    plain = fastdrift.profile(table.drop(["country", "v"]))
    assert seg.rows == plain.rows == sum(p.rows for p in seg.segments.values())
    for n in plain.columns:
        a, b = seg[n], plain[n]
        if a.kind == "numeric":
            assert np.array_equal(a.histogram.edges, b.histogram.edges)
            assert a.histogram.counts.tolist() == b.histogram.counts.tolist()
            assert (a.moments.n, a.moments.min, a.moments.max, a.moments.null_count, a.moments.nan_count) == \
                (b.moments.n, b.moments.min, b.moments.max, b.moments.null_count, b.moments.nan_count)
            assert a.tdigest.count == b.tdigest.count
        else:
            assert a.categorical.to_dict() == b.categorical.to_dict()
            assert a.categorical.null_count == b.categorical.null_count
        # and each bin of the whole is the sum over the segments
        if a.kind == "numeric":
            assert sum(p[n].histogram.counts for p in seg.segments.values()).tolist() == a.histogram.counts.tolist()


def test_current_profile_segments_on_the_reference_bins(table, seg):
    cur_t = _table(seed=5, shift=1.0)
    cur = fastdrift.profile(cur_t, reference=seg)
    assert cur.segment_by == seg.segment_by
    keys = _row_keys(cur_t, ["country", "v"])
    x = cur_t.column("x").to_numpy(zero_copy_only=False)
    for key, p in cur.segments.items():
        m = keys == key
        assert p.rows == m.sum()
        assert p["x"].histogram.counts.tolist() == _hist_oracle(x[m], seg["x"].histogram.edges).tolist()
    plain = fastdrift.profile(cur_t, reference=fastdrift.profile(table.drop(["country", "v"])))
    assert cur["x"].histogram.counts.tolist() == plain["x"].histogram.counts.tolist()
    assert cur["c"].categorical.to_dict() == plain["c"].categorical.to_dict()


def test_cap_counts_later_keys_under_other(table):
    p = fastdrift.profile(table, segment_by="country", max_segments=2)
    keys = _row_keys(table, ["country"])
    first = list(dict.fromkeys(keys.tolist()))[:2]
    assert list(p.segments) == first + [OTHER]
    assert p.segments[OTHER].rows == (~np.isin(keys, first)).sum()
    assert sum(s.rows for s in p.segments.values()) == table.num_rows


def _hist_counts(p, col="x"):
    return {k: (s.rows, s[col].histogram.counts.tolist(), s["c"].categorical.to_dict()) for k, s in p.segments.items()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_merge_of_split_inputs_is_one_pass(data):
    n = data.draw(st.integers(1, 400), label="rows")
    n_keys = data.draw(st.integers(1, 8), label="keys")
    cap = data.draw(st.integers(1, 6), label="cap")
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    t = pa.table({"x": rng.normal(size=n), "c": rng.choice(["a", "b", "c"], n),
                  "g": pa.array(rng.integers(0, n_keys, n))})
    ref = fastdrift.profile(t.slice(0, max(n // 2, 1)), columns=["x", "c"])
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=4), label="cuts"))
    bounds = [0, *cuts, n]
    one = fastdrift.profile(t, reference=ref, segment_by=["g"], max_segments=cap)
    parts = [fastdrift.profile(t.slice(a, b - a), reference=ref, segment_by=["g"], max_segments=cap)
             for a, b in zip(bounds, bounds[1:])]
    merged = parts[0]
    for p in parts[1:]:
        merged.merge(p)
    # no row lost; the whole exact; the same keys of their own as one pass (first-seen, capped)
    assert merged.rows == one.rows == n
    assert sum(s.rows for s in merged.segments.values()) == n
    assert merged["x"].histogram.counts.tolist() == one["x"].histogram.counts.tolist()
    assert merged["c"].categorical.to_dict() == one["c"].categorical.to_dict()
    assert [k for k in merged.segments if k != OTHER] == [k for k in one.segments if k != OTHER]
    assert list(merged.segments)[-1] == OTHER or OTHER not in merged.segments
    part_keys = [len(set(t.slice(a, b - a).column("g").to_pylist())) for a, b in zip(bounds, bounds[1:])]
    if all(k <= cap for k in part_keys):
        # no part passed the cap on its own: every segment is exactly one pass's
        assert _hist_counts(merged) == _hist_counts(one)
    else:
        # a part's own <other> may hold a key kept overall: a kept key never gains rows, <other> the rest
        for k, s in merged.segments.items():
            if k != OTHER:
                assert s.rows <= one.segments[k].rows


def test_file_scan_with_many_fragments_equals_in_memory(tmp_path, table):
    from fastdrift.dataset import open_data
    from fastdrift.scan import plan_columns, profile_data
    for i in range(4):  # fragments merged in order; each under the cap
        pq.write_table(table.slice(i * 5000, 5000), tmp_path / f"part-{i}.parquet", row_group_size=1700)
    src = open_data([str(tmp_path)])
    plans = plan_columns(src.schema, segment_by=["country", "v"])
    assert [p.name for p in plans] == ["x", "k", "c"]
    scanned = profile_data(src, plans, workers=2, segment_by=["country", "v"])
    mem = fastdrift.profile(table, segment_by=["country", "v"])
    assert set(scanned.segments) == set(mem.segments)
    for k, p in mem.segments.items():
        q = scanned.segments[k]
        assert q.rows == p.rows
        for n in ("x", "k"):
            assert np.array_equal(q[n].histogram.edges, p[n].histogram.edges)
            assert q[n].histogram.counts.tolist() == p[n].histogram.counts.tolist()
        assert q["c"].categorical.to_dict() == p["c"].categorical.to_dict()


def test_bytes_round_trip_exactly_and_old_profiles_still_load(seg, tmp_path):
    back = fastdrift.Profile.from_bytes(seg.to_bytes())
    assert back == seg and back.segment_by == ("country", "v") and back.max_segments == seg.max_segments
    assert list(back.segments) == list(seg.segments)
    for k in seg.segments:
        assert back.segments[k].to_bytes() == seg.segments[k].to_bytes()
    pf = ProfileFile(seg, {"x": "double"})
    assert ProfileFile.from_bytes(pf.to_bytes()).profile == seg
    # an unsegmented profile keeps its bytes; the golden file of an older layout loads, unsegmented
    plain = fastdrift.profile(_table(500).drop(["country", "v"]))
    assert fastdrift.Profile.from_bytes(plain.to_bytes()).segments == {}
    import pathlib
    golden = pathlib.Path(__file__).parent / "data" / "golden" / "profile_v1.bin"
    old = fastdrift.Profile.from_bytes(golden.read_bytes())
    assert old.segments == {} and old.segment_by == ()


def test_a_corrupt_segment_section_is_refused(seg):
    from fastdrift import codec
    # segments whose rows do not add up to the whole: rebuild with one segment dropped
    bad = seg.copy()
    bad.segments.pop(next(iter(bad.segments)))
    with pytest.raises(CorruptStateError, match="segments hold"):
        fastdrift.Profile.from_bytes(bad.to_bytes())
    # a key that is not a key of the segment columns
    bad = seg.copy()
    k = next(iter(bad.segments))
    bad.segments = {("nope=1" if i == 0 else kk): v for i, (kk, v) in enumerate(bad.segments.items())}
    with pytest.raises(CorruptStateError, match="not a key"):
        fastdrift.Profile.from_bytes(bad.to_bytes())
    assert k  # (the original key existed)
    # a segment that is itself segmented
    inner = seg.copy()
    first = next(iter(inner.segments))
    inner.segments[first] = seg.copy()
    inner.rows = sum(s.rows for s in inner.segments.values())
    with pytest.raises(CorruptStateError):
        fastdrift.Profile.from_bytes(inner.to_bytes())
    assert codec  # imported for the envelope constants


def test_merge_refuses_other_segment_columns(seg, table):
    other = fastdrift.profile(table, columns=["x", "k", "c"], segment_by=["v"])
    with pytest.raises(IncompatibleSketchError, match="segment columns"):
        seg.copy().merge(other)


@pytest.mark.parametrize("bad", ["missing", "nested"])
def test_bad_segment_column_is_a_clear_error_naming_it(table, bad):
    t = table
    if bad == "nested":
        t = table.append_column("tags", pa.array([[1, 2]] * table.num_rows))
    col = "nope" if bad == "missing" else "tags"
    with pytest.raises(SchemaError, match=repr(col)):
        fastdrift.profile(t, segment_by=[col])
    ref = fastdrift.profile(table, columns=["x"])
    cur = ref.empty_like(segment_by=[col])
    with pytest.raises(SchemaError, match=repr(col)):
        cur.update(t)
    assert cur.rows == 0 and cur.segments == {}  # nothing half-counted


def test_compare_reports_each_segment_against_its_own_reference_or_the_whole(table, seg):
    cur = fastdrift.profile(_table(seed=3, shift=2.0), reference=seg)
    c = compare(seg, cur)
    assert set(c.segments) == set(cur.segments) and set(c.segment_basis.values()) == {"segment"}
    fr = [k for k in c.segments if k.startswith("country=fr,")]
    assert fr and all(c.segments[k].exit_status == 2 for k in fr)  # the shifted country fires
    calm = [k for k in c.segments if not k.startswith("country=fr,")]
    assert all(c.segments[k].exit_status == 0 for k in calm)
    assert c.exit_status == max(c.segments[k].exit_status for k in c.segments)
    # the drift of a segment against its own reference segment is compare() of those two profiles
    k = fr[0]
    alone = compare(seg.segments[k], cur.segments[k])
    assert [(r.column, r.psi) for r in alone.rows] == [(r.column, r.psi) for r in c.segments[k].rows]
    # an unsegmented reference: every segment against the whole, said so
    plain_ref = fastdrift.profile(table, columns=["x", "k", "c"])
    c2 = compare(plain_ref, fastdrift.profile(_table(seed=3), reference=plain_ref, segment_by=["country"]))
    assert set(c2.segment_basis.values()) == {"whole"}
    doc = to_json(c)
    assert doc["segment_by"] == ["country", "v"] and set(doc["segments"]) == set(c.segments)
    assert doc["segments"][k]["reference_basis"] == "segment" and doc["segments"][k]["exit_status"] == 2
    assert json.loads(json.dumps(doc)) == doc
    text = format_text(c)
    assert "Segments by country, v" in text and k in text
    html = render(c)
    assert html.count("<details class='segment'") == len(c.segments) and "<script" not in html and "onclick" not in html
    assert html.count("href='#s-") == len(c.segments) and 'id="segments-alerting"' in html


def test_cli_profile_and_compare_with_segments(tmp_path, table):
    ref_p, cur_p = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    pq.write_table(table, ref_p)
    pq.write_table(_table(seed=9, shift=2.0), cur_p)
    fdp = tmp_path / "ref.fdp"
    assert main(["profile", str(ref_p), "-o", str(fdp), "--segment-by", "country", "--max-segments", "3", "-q"]) == 0
    prof = ProfileFile.from_bytes(fdp.read_bytes()).profile
    assert prof.segment_by == ("country",) and len([k for k in prof.segments if k != OTHER]) == 3
    assert OTHER in prof.segments
    out = tmp_path / "c.json"
    rc = main(["compare", str(fdp), str(cur_p), "--format", "json", "-o", str(out), "-q"])
    doc = json.loads(out.read_text())
    assert rc == doc["exit_status"] == 2  # the whole is calm-ish, a segment is critical: the worst wins
    assert len([k for k in doc["segments"] if k != OTHER]) == 3  # the current data's first three keys
    assert doc["segments"][OTHER]["reference_basis"] == "whole"
    fr = [k for k in doc["segments"] if k == "country=fr"]
    for k in doc["segments"]:
        want = "segment" if k in prof.segments and k != OTHER else "whole"
        assert doc["segments"][k]["reference_basis"] == want
    assert not fr or doc["segments"]["country=fr"]["exit_status"] == 2
    assert main(["compare", str(ref_p), str(cur_p), "--segment-by", "nope", "-q"]) == 5
    assert main(["profile", str(ref_p), "-o", str(tmp_path / "x.fdp"), "--max-segments", "3", "-q"]) == 64


def test_segment_section_with_50_segments_renders_in_chromium(tmp_path):
    """50 segments: one summary row each, details folded (closed) so the page stays short; a link
    opens its segment's detail; no console errors."""
    from test_report import _browse
    rng = np.random.default_rng(2)
    n = 50_000

    def data(shift):
        g = rng.integers(0, 50, n)
        return pa.table({"x": rng.normal(size=n) + np.where(g == 7, shift, 0.0), "c": rng.choice(["a", "b"], n),
                         "g": pa.array(g)})
    ref = fastdrift.profile(data(0.0), segment_by="g")
    c = compare(ref, fastdrift.profile(data(3.0), reference=ref))
    assert len(c.segments) == 50 and c.segments["g=7"].exit_status == 2
    html = render(c)
    head = html[:html.index("<main>") + len("<main>")]
    sec = html[html.index("<section id='segments'>"):]
    sec = sec[:sec.index("</section>") + len("</section>")]
    page = tmp_path / "segments.html"
    page.write_text(head + sec + "</main></body></html>", encoding="utf-8")
    r, console = _browse(page.as_uri(), tmp_path, "--dump-dom")
    assert r.returncode == 0 and console == [], (r.stderr[-2000:], console)
    dom = r.stdout
    assert dom.count("<details class=\"segment\"") == 50 and " open" not in dom.split("<details", 1)[1][:40]
    table = dom[dom.index('id="segment-table"'):dom.index("</table>", dom.index('id="segment-table"'))]
    assert table.count("<tr>") == 51  # header + one row per segment
    assert table.index("g=7") < table.index("g=0")  # worst first


def test_margin_scores_and_segments_together(tmp_path):
    """``scores="margin"`` and ``segment_by`` in one profile (in memory and by the CLI): every
    segment's performance sketch reads margins; its confusion counts at margin 0 are numpy's over
    the segment's rows, and the whole's metrics are the unsegmented margin profile's."""
    rng = np.random.default_rng(5)
    n = 4000
    m = rng.normal(0, 3, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-m))).astype(np.int64)
    g = rng.choice(["a", "b", "c"], n)
    t = pa.table({"x": rng.normal(0, 1, n), "g": g, "m": m, "y": y})
    path = tmp_path / "t.parquet"
    pq.write_table(t, path)
    fdp = tmp_path / "t.fdp"
    assert main(["profile", str(path), "-o", str(fdp), "--label", "y", "--prediction", "m", "--scores", "margin",
                 "--segment-by", "g", "-q"]) == 0
    plain = fastdrift.profile(t.drop(["g"]), label="y", prediction="m", scores="margin")
    for prof in (fastdrift.profile(t, label="y", prediction="m", scores="margin", segment_by="g"),
                 ProfileFile.from_bytes(fdp.read_bytes()).profile):
        assert sorted(prof.segments) == ["g=a", "g=b", "g=c"]
        # counts and bins exact; loss sums merged from the segments to float rounding
        assert prof.performance.sketch.metrics(0.5) == pytest.approx(plain.performance.sketch.metrics(0.5),
                                                                     rel=1e-12)
        for key, sp in prof.segments.items():
            sk = sp.performance.sketch
            assert sk.scores == "margin"
            rows = g == key[2:]
            got = sk.metrics(0.5)
            assert (got["tp"], got["fp"], got["tn"], got["fn"]) == (
                np.sum((m > 0) & (y == 1) & rows), np.sum((m > 0) & (y == 0) & rows),
                np.sum((m <= 0) & (y == 0) & rows), np.sum((m <= 0) & (y == 1) & rows))
