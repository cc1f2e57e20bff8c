"""Wall time of fastdrift.spark against the single-process profile and a bare mapInArrow pass.

Not part of the tests.  ``python bench/bench_spark.py [rows]`` on a local[2] session: the same
2M-row, 5-column table as tests/test_spark.py, cached in 16 partitions.  The bare pass (Spark
converting cached rows to Arrow batches and back, no kernel) is the floor of every fastdrift pass.
"""
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))


def main(rows: int = 2_000_000) -> None:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    import test_spark as T  # the test's data generator and session settings
    T.ROWS = rows
    if not os.environ.get("JAVA_HOME") and T._java_home():
        os.environ["JAVA_HOME"] = T._java_home()
    import fastdrift
    import fastdrift.spark
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(T.BATCH))
             .config("spark.driver.memory", "2g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    table = T._table(1)
    df = T._spark_df(spark, table)

    def timed(label, fn, repeat=3):
        best = min(_once(fn) for _ in range(repeat))
        print(f"{label:<48} {best:7.2f} s", flush=True)

    ref = fastdrift.profile(table)
    timed("fastdrift.profile (one process, reference)", lambda: fastdrift.profile(table))
    timed("bare mapInArrow pass (no kernel)",
          lambda: df.mapInArrow(lambda it: (b.slice(0, 0) for b in it), df.schema).count())
    timed("fastdrift.spark.profile (reference: 3 passes)", lambda: fastdrift.spark.profile(df))
    timed("fastdrift.spark.profile(reference=ref) (1 pass)", lambda: fastdrift.spark.profile(df, reference=ref))
    spark.stop()


def _once(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
