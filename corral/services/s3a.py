"""Object storage over the S3 API (AWS S3, Alibaba OSS, MinIO, ...) as ``s3a://``: the
properties every Hadoop and Spark client of the cluster gets from the spec's
``object_storage``, and where the S3A jars are. Not a service (it runs no daemon): HDFS puts
these in core-site, Spark in spark-defaults when the cluster has no core-site.

The secret key is written as a placeholder; only the copy of a file sent to a node has it.
"""

from __future__ import annotations

from urllib.parse import urlparse

from corral.domain.secrets import OBJECT_STORAGE_SECRET_KEY, placeholder
from corral.services.base import ClusterView

# hadoop-aws and the AWS SDK v2 modules S3A needs (corral/runtime/maven/pom.xml puts them in
# their own directory, so Spark can take them without the rest of Hadoop's jars).
S3_JARS = "${HADOOP_HOME}/s3/*"
JDBC_JARS = "${HADOOP_HOME}/jdbc/*"


def s3a_properties(cluster: ClusterView) -> dict[str, str]:
    store = cluster.object_storage
    if not store:
        return {}
    props = {
        "fs.s3a.access.key": store["access_key"],
        "fs.s3a.secret.key": placeholder(OBJECT_STORAGE_SECRET_KEY),
        "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "fs.s3a.endpoint.region": store.get("region") or "us-east-1",
        "fs.s3a.path.style.access": "true" if store.get("path_style_access", True) else "false",
        # A wrong key, a missing bucket or a dead endpoint fails a step in seconds, not
        # after S3A's default minutes of retries.
        # (S3A's defaults retry a refused connection for over two minutes; these keep a
        # retry for transient errors.)
        "fs.s3a.attempts.maximum": "1",
        "fs.s3a.retry.limit": "2",
        "fs.s3a.retry.interval": "250ms",
    }
    endpoint = store.get("endpoint")
    if endpoint:
        props["fs.s3a.endpoint"] = endpoint
        props["fs.s3a.connection.ssl.enabled"] = "true" if urlparse(endpoint).scheme == "https" else "false"
    return props
