"""The one column planner over an Arrow schema."""
import pyarrow as pa
import pytest

from fastdrift.errors import InvalidInputError, SchemaError
from fastdrift.sketches.profile import ColumnPlan, plan_columns, skipped_columns


def test_planner_rules():
    st = pa.struct([("f", pa.int64())])
    schema = pa.schema([("a", pa.float64()), ("s", pa.string()), ("st", st), ("n", pa.null())])
    # an all-null column is a column: numeric, counted as nulls
    assert [(p.name, p.kind) for p in plan_columns(schema)] == [("a", "numeric"), ("s", "categorical"),
                                                              ("n", "numeric")]
    plans = plan_columns(schema, ["s", "a"], kinds={"a": "categorical"})
    assert [(p.name, p.kind) for p in plans] == [("s", "categorical"), ("a", "categorical")]  # the given order
    assert skipped_columns(schema, plans) == ["st"]
    plans = plan_columns(schema, {"a": dict(bins=4, strategy="uniform"), "st": {}}, explicit=False)
    assert plans == [ColumnPlan("a", "numeric", 4, "uniform", True)]
    with pytest.raises(SchemaError, match="no default sketch"):
        plan_columns(schema, ["st"])
    with pytest.raises(SchemaError, match="cannot be profiled as numeric"):
        plan_columns(schema, ["s"], kinds={"s": "numeric"})
    with pytest.raises(SchemaError, match=r"\['zz'\] are not in the data"):
        plan_columns(schema, ["a", "zz"])
    with pytest.raises(InvalidInputError, match="kind must be"):
        plan_columns(schema, ["a"], kinds={"a": "text"})
