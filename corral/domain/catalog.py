"""Releases (what software a cluster runs) and instance types (what a node is sized as)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Release:
    label: str
    spark_version: str
    java_major: int
    hadoop_version: str
    services: tuple[str, ...]  # services a cluster of this release may run
    default_services: tuple[str, ...]  # what a spec that names none gets: Hadoop + Spark


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int
    # The disk a node of this type offers HDFS (GiB), as a cloud type's volume would; None:
    # whatever its filesystem has (a whole host). Local nodes all share one filesystem,
    # so without it every DataNode would report the whole disk.
    disk_gib: int | None = None

    @property
    def reserved_mib(self) -> int:
        """Memory kept back for the OS, the agent and the node's own daemons."""
        return max(512, self.memory_mib // 4)

    @property
    def usable_mib(self) -> int:
        """Memory a compute daemon (Spark Worker, later a NodeManager) may hand out."""
        return self.memory_mib - self.reserved_mib


RELEASES: dict[str, Release] = {
    r.label: r for r in (Release(label="corral-1.0", spark_version="4.3.0", java_major=17, hadoop_version="3.5.0",
                services=("hdfs", "yarn", "mapreduce", "spark", "hive"),
                default_services=("hdfs", "yarn", "mapreduce", "spark")),)
}
DEFAULT_RELEASE = "corral-1.0"

INSTANCE_TYPES: dict[str, InstanceType] = {
    t.name: t
    for t in (
        InstanceType("local.small", vcpus=1, memory_mib=2048, disk_gib=16),
        InstanceType("local.medium", vcpus=2, memory_mib=4096, disk_gib=32),
        InstanceType("local.large", vcpus=4, memory_mib=8192, disk_gib=64),
        InstanceType("local.xlarge", vcpus=8, memory_mib=16384, disk_gib=128),
    )
}
DEFAULT_INSTANCE_TYPE = "local.medium"  # a local node group's when its spec names none

# The instance type recorded for a node sized by its host's own cores and memory (the ssh
# provider, a group without ``instance_type``); the size itself is in the node's row.
HOST_SIZED = "host"


def host_instance_type(host_name: str, cores: int, memory_mib: int) -> InstanceType:
    """A whole host as an instance type, ``host:<name>``: services size its daemons from it
    exactly as from a catalog type (``InstanceType.usable_mib`` keeps the same share back
    for the OS and Corral's agent)."""
    return InstanceType(f"host:{host_name}", vcpus=cores, memory_mib=memory_mib)
