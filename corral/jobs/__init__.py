"""Step types: one module each (SPARK, SHELL; HADOOP_JAR, STREAMING, SQL next)."""
