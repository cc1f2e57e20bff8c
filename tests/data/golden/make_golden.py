"""Writes the golden files of sketch format version 1.

Run only when a NEW format version is introduced (add files, never overwrite):
old files must keep decoding, which tests/test_golden.py checks.
"""
import pathlib

import numpy as np
import pyarrow as pa

import fastdrift

HERE = pathlib.Path(__file__).parent


def sketches():
    h = fastdrift.Histogram([0.0, 1.0, 2.0]).update(pa.array([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0, np.nan, None]))
    m = fastdrift.Moments().update(np.array([1.0, 2.0, 3.0, np.nan, np.inf]))
    c = fastdrift.Categorical(2).update(pa.array(["a", "b", "a", None, "é"]))
    i = fastdrift.Categorical().update(pa.array([7, -3, 7], pa.int16()))
    t = pa.table({"x": pa.array([0.5, 1.5, None, 2.5]), "s": ["u", "v", "u", None]})
    p = fastdrift.profile(t)
    from fastdrift.profilefile import ProfileFile
    f = ProfileFile(fastdrift.profile(t, tdigest=False), {"x": "double", "s": "string"},
                    [(42, {"x": 0.5, "s": "u"}), (99, {"x": None, "s": "<redacted>"})])
    return {"histogram_v1.bin": h, "moments_v1.bin": m, "categorical_str_v1.bin": c,
            "categorical_int_v1.bin": i, "profile_v1.bin": p, "profile_file_v1.bin": f}


if __name__ == "__main__":
    for name, s in sketches().items():
        path = HERE / name
        if path.exists():
            print("kept", path, "(golden files are never rewritten)")
            continue
        path.write_bytes(s.to_bytes())
        print("wrote", path)
