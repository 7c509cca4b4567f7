"""File locations of data transfers (HDFS and object storage) and where a transfer stages
its files: one parser and one staging rule for import and export, DistCp and Spark alike.

Accepted forms (README "Data in and out"): ``/x``, ``/x/``, ``hdfs:///x``,
``hdfs://namenode:8020/x``, ``s3a://bucket/x`` (``s3://`` is the same), ``s3a://bucket/``
and ``s3a://bucket`` (the bucket's root), ``/`` and ``hdfs:///`` (HDFS's root). A trailing
``/`` and repeated ``/`` change nothing (Hadoop's ``Path`` normalises them the same way);
``.`` and ``..`` segments are refused, since Hadoop does not resolve them.

Staging: a transfer writes into a hidden directory ``.corral-staging-<step>`` beside its
target, on the same file system (so the commit is a rename there), and only then puts the
files in place. A root has nothing beside it, so for a root target the staging directory
is inside it and the commit moves the staged files into the root (see ``FileCommit``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Literal

Scheme = Literal["hdfs", "s3a"]
STAGING_PREFIX = ".corral-staging-"


@dataclass(frozen=True)
class FileLocation:
    """``scheme``; ``authority`` ('' = the cluster's default file system, a bucket, or
    ``host:port``); ``path`` absolute, '/' for the root, else without a trailing '/'."""

    scheme: Scheme
    authority: str
    path: str

    @property
    def is_root(self) -> bool:
        return self.path == "/"

    @property
    def uri(self) -> str:
        """As Hadoop's FileSystem API and tools take it: ``/x``, ``hdfs://nn:8020/x``,
        ``s3a://bucket/x``, ``s3a://bucket/``."""
        if self.scheme == "hdfs" and not self.authority:
            return self.path  # the cluster's default file system, which is its HDFS
        return f"{self.scheme}://{self.authority}{self.path}"

    @property
    def parent(self) -> "FileLocation | None":
        """The directory holding this one (None for a root)."""
        return None if self.is_root else FileLocation(self.scheme, self.authority, posixpath.dirname(self.path))

    def child(self, name: str) -> "FileLocation":
        return FileLocation(self.scheme, self.authority, posixpath.join(self.path, name))

    def staging(self, step_id: str) -> "FileLocation":
        """Where a step writes before its commit: beside this target, or in it for a root."""
        return (self.parent or self).child(STAGING_PREFIX + step_id)

    def __str__(self) -> str:
        return self.uri


def is_file_location(text: str) -> bool:
    """Whether ``text`` names HDFS or object storage (it may still be malformed)."""
    return text.startswith(("/", "hdfs:", "s3a:", "s3:"))


def parse_location(text: str) -> FileLocation:
    """One of the accepted forms above; ValueError naming what is wrong."""
    if text.startswith("/"):
        scheme, authority, path = "hdfs", "", text
    else:
        for prefix, scheme_ in (("hdfs://", "hdfs"), ("s3a://", "s3a"), ("s3://", "s3a")):
            if text.startswith(prefix):
                rest = text[len(prefix):]
                authority, slash, tail = rest.partition("/")
                scheme, path = scheme_, slash + tail or "/"
                break
        else:
            raise ValueError(f"{text!r}: expected /path, hdfs:///path, hdfs://host:port/path or s3a://bucket/path")
        if scheme == "s3a" and not authority:
            raise ValueError(f"{text!r}: no bucket (expected s3a://bucket/path)")
        if any(c in authority for c in "@?#"):
            raise ValueError(f"{text!r}: {authority!r} is not a bucket or host:port")
    segments = [s for s in path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise ValueError(f"{text!r}: '.' and '..' are not resolved in HDFS or object storage paths")
    return FileLocation(scheme, authority, "/" + "/".join(segments))  # type: ignore[arg-type]
