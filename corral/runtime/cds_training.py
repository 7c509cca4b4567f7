"""The training job of the Spark class-data archive (``corral.runtime.cds``): a short
local-mode PySpark job that touches what Corral's Spark JVMs load at start-up and in
common work, so those classes are in the archive. Argument: a scratch directory."""

from __future__ import annotations

import sys

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F


def main(work: str) -> None:
    spark = (SparkSession.builder.appName("corral-cds-training").enableHiveSupport()
             .config("spark.sql.shuffle.partitions", "2").getOrCreate())
    df = spark.range(20000).select(F.col("id"), (F.col("id") % 7).alias("k"), F.expr("uuid()").alias("u"),
                                   F.current_date().alias("d"), (F.col("id") / 3).cast("decimal(12,2)").alias("x"))
    for fmt in ("parquet", "csv", "json", "orc"):
        df.write.mode("overwrite").option("header", "true").format(fmt).save(f"{work}/data.{fmt}")
        spark.read.option("header", "true").format(fmt).load(f"{work}/data.{fmt}").groupBy("k").count().collect()
    df.createOrReplaceTempView("t")
    spark.sql("SELECT k, count(*) c, sum(x) s FROM t GROUP BY k ORDER BY k").collect()
    spark.sql("CREATE TABLE IF NOT EXISTS corral_training (k BIGINT, c BIGINT) STORED AS PARQUET")
    spark.sql("INSERT OVERWRITE TABLE corral_training SELECT k, count(*) FROM t GROUP BY k")
    spark.table("corral_training").join(df, "k").select(F.row_number().over(Window.partitionBy("k").orderBy("id"))).count()
    plus_one = F.udf(lambda v: v + 1, "long")
    df.select(plus_one("id").alias("p")).agg(F.max("p")).collect()
    spark.sparkContext.parallelize(range(1000), 2).map(lambda v: (v % 3, v)).reduceByKey(lambda a, b: a + b).collect()
    df.cache().count()
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
