"""Service plug-ins: what runs on nodes (Spark now; HDFS, YARN, MapReduce, Hive next)."""
