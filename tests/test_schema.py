"""schema.py: one set of rules for what a sketch counts, what changed, and which change is an error."""
import numpy as np
import pyarrow as pa
import pytest

import fastdrift
from fastdrift.errors import IncompatibleSketchError, SchemaError
from fastdrift.records import SchemaChange
from fastdrift.schema import ROLES, check_current, check_profiles, diff, fits, schema_changes


@pytest.fixture(scope="module")
def ref():
    t = pa.table({"x": np.arange(100, dtype=np.float64), "s": pa.array(["a", "b"] * 50),
                  "i": pa.array(np.arange(100) % 3, pa.int64())})
    return fastdrift.profile(t, kinds={"i": "categorical"})


def test_fits_follows_the_sketch_kinds():
    assert fits("numeric", None, pa.int32()) and fits("numeric", None, pa.float32())
    assert not fits("numeric", None, pa.string()) and not fits("numeric", None, pa.struct([("a", pa.int8())]))
    # an all-null column (Arrow null type: a CSV column with no value) is counted as nulls by any sketch
    assert fits("numeric", None, pa.null()) and fits("categorical", "str", pa.null())
    # the numeric sketches count dates, timestamps, decimals and float16 as numbers
    assert all(fits("numeric", None, t) for t in (pa.date32(), pa.timestamp("ns", tz="UTC"), pa.decimal128(9, 2),
                                                    pa.float16(), pa.duration("ms"), pa.time64("us")))
    assert fits("categorical", "str", pa.string_view()) and not fits("categorical", None, pa.binary_view())
    assert fits("categorical", "str", pa.large_string()) and fits("categorical", "str", pa.dictionary(pa.int8(), pa.string()))
    assert not fits("categorical", "str", pa.int64()) and fits("categorical", None, pa.int64())
    assert ROLES["event_time"](pa.timestamp("ms")) and not ROLES["error"](pa.float64())


def test_diff_names_missing_type_and_new_columns(ref):
    types = {"x": "double", "s": "string", "i": "int64"}
    cur = pa.schema([("x", pa.int32()), ("i", pa.string()), ("extra", pa.bool_()), ("skipped", pa.binary())])
    usable, changes = diff(ref.columns, types, cur, known=["skipped"])
    assert usable == {"x": True, "s": False, "i": False}
    assert changes == [SchemaChange("x", "type_within_kind", "double", "int32"), SchemaChange("s", "missing", "string", None),
                       SchemaChange("i", "type", "int64", "string"), SchemaChange("extra", "new", None, "bool")]
    # the changes that are not errors; a saved schema (type strings) is compared as strings
    assert schema_changes(types, cur, ref.columns, ["skipped"]) == [changes[0], changes[3]]
    assert schema_changes(types, {"x": "float", "s": "string", "i": "int64"}, ref.columns) == \
        [SchemaChange("x", "type_within_kind", "double", "float")]


def test_type_changes_are_classified_by_kind(ref):
    """int <-> float, int32 <-> int64, float32 <-> float64 and string <-> large_string still count on the
    reference's sketch (a change within the kind); numeric <-> categorical does not (a "type" change)."""
    types = {"x": "double", "s": "string", "i": "int64"}
    for xt, st in ((pa.int64(), pa.large_string()), (pa.float32(), pa.string()), (pa.int8(), pa.large_string())):
        _, changes = diff(ref.columns, types, pa.schema([("x", xt), ("s", st), ("i", pa.int64())]))
        want = [SchemaChange("x", "type_within_kind", "double", str(xt))]
        if st != pa.string():
            want.append(SchemaChange("s", "type_within_kind", "string", str(st)))
        assert changes == want
    _, changes = diff(ref.columns, types, pa.schema([("x", pa.string()), ("s", pa.float64()), ("i", pa.int64())]))
    assert [(c.column, c.change) for c in changes] == [("x", "type"), ("s", "type")]
    # a saved schema (type strings): classified where pyarrow can name the type from its string
    saved = {"x": "int64", "s": "large_string", "i": "int64"}
    assert [(c.column, c.change) for c in schema_changes(types, saved, ref.columns)] == \
        [("x", "type_within_kind"), ("s", "type_within_kind")]
    assert [c.change for c in diff(ref.columns, types, {"x": "string", "s": "string", "i": "int64"})[1]] == ["type"]


def test_check_current_raises_on_the_first_error(ref):
    check_current(ref, pa.schema([("x", pa.int8()), ("s", pa.string()), ("i", pa.int16())]), "cur.parquet")
    with pytest.raises(SchemaError, match="cur.parquet: column 's' of the reference is missing"):
        check_current(ref, pa.schema([("x", pa.float64()), ("i", pa.int64())]), "cur.parquet")
    with pytest.raises(SchemaError, match="column 'x' changed type: numeric in the reference, Arrow string now"):
        check_current(ref, pa.schema([("x", pa.string()), ("s", pa.string()), ("i", pa.int64())]), "cur.parquet")


def test_check_profiles_compares_kinds_keys_and_bins(ref):
    same = fastdrift.profile(pa.table({"x": [1.0, 2.0], "s": ["a", "z"], "i": pa.array([1, 2], pa.int64())}),
                             reference=ref)
    check_profiles(ref.columns, same, bins=True)
    other_bins = fastdrift.profile(pa.table({"x": np.arange(50, dtype=np.float64)}))
    with pytest.raises(IncompatibleSketchError, match="other bins"):
        check_profiles({"x": ref["x"]}, other_bins, "cur", bins=True)
    check_profiles({"x": ref["x"]}, other_bins, "cur")  # kinds agree: bins only when asked
    as_numeric = fastdrift.profile(pa.table({"s": [1.0, 2.0]}))
    with pytest.raises(SchemaError, match="cur: column 's' changed type: categorical in the reference, numeric now"):
        check_profiles({"s": ref["s"]}, as_numeric, "cur")
    int_keys = fastdrift.profile(pa.table({"s": pa.array([1, 2], pa.int64())}), kinds={"s": "categorical"})
    with pytest.raises(SchemaError, match="str categories in the reference and int categories now"):
        check_profiles({"s": ref["s"]}, int_keys, "cur")
    with pytest.raises(SchemaError, match="column 'i' of the reference is missing"):
        check_profiles({"i": ref["i"]}, as_numeric, "cur")
