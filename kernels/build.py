"""cffi build script: compiles kernels/*.c into the out-of-line API-mode module
``fastdrift._native``.  ``kernels/fastdrift.h`` is both the C header and the
cdef, so the Python side can never disagree with the C side about a prototype.

FASTDRIFT_DEBUG=1 at build time keeps the C asserts (-UNDEBUG -O0 -g).
"""
import os
import pathlib
import re

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
HEADER = HERE / "fastdrift.h"


def _cdef_from_header(text: str) -> str:
    """The header minus comments and preprocessor lines; integer #defines kept."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            m = re.match(r"#define\s+(FD_[A-Z0-9_]+)\s+(-?\d+)\s*$", s)
            if m:
                out.append(f"#define {m.group(1)} {m.group(2)}")
            continue
        out.append(line)
    return "\n".join(out)


def _sources():
    # Relative paths: setuptools refuses absolute source paths in some versions.
    root = HERE.parent
    return sorted(str(p.relative_to(root)) for p in HERE.glob("*.c"))


ffibuilder = FFI()
ffibuilder.cdef(_cdef_from_header(HEADER.read_text()))

if os.environ.get("FASTDRIFT_DEBUG") == "1":
    _cflags = ["-std=c99", "-O0", "-g", "-UNDEBUG", "-ffp-contract=off", "-Wall", "-Wextra"]
else:
    # -ffp-contract=off: the AVX-512 builds may use FMA, which would round a multiply-add once
    # where the scalar build rounds it twice (fastdrift.h, "SIMD path").
    _cflags = ["-std=c99", "-O3", "-DNDEBUG", "-fno-math-errno", "-ffp-contract=off", "-Wall"]

ffibuilder.set_source(
    "fastdrift._native",
    '#include "fastdrift.h"\n',
    sources=_sources(),
    include_dirs=[str(HERE.relative_to(HERE.parent))],
    extra_compile_args=_cflags,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
