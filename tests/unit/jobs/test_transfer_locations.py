"""Every file location form a transfer accepts, as source and target, import and export,
DistCp and Spark: one parser (``corral.domain.locations``) and one staging rule."""

from __future__ import annotations

import pytest

from corral.domain.locations import FileLocation, parse_location
from corral.jobs.transfer import FileCommit, Kind, parse, staging_path

# written form -> (normal URI, is a root, staging URI of step s-1 when it is the target)
FORMS = {
    "/x": ("/x", False, "/.corral-staging-s-1"),
    "/x/": ("/x", False, "/.corral-staging-s-1"),
    "/d/x": ("/d/x", False, "/d/.corral-staging-s-1"),
    "/d//x/": ("/d/x", False, "/d/.corral-staging-s-1"),
    "/": ("/", True, "/.corral-staging-s-1"),
    "hdfs:///x": ("/x", False, "/.corral-staging-s-1"),
    "hdfs:///d/x/": ("/d/x", False, "/d/.corral-staging-s-1"),
    "hdfs:///": ("/", True, "/.corral-staging-s-1"),
    "hdfs://namenode:8020/x": ("hdfs://namenode:8020/x", False, "hdfs://namenode:8020/.corral-staging-s-1"),
    "hdfs://namenode:8020/d/x": ("hdfs://namenode:8020/d/x", False, "hdfs://namenode:8020/d/.corral-staging-s-1"),
    "hdfs://namenode:8020": ("hdfs://namenode:8020/", True, "hdfs://namenode:8020/.corral-staging-s-1"),
    "s3a://b/x": ("s3a://b/x", False, "s3a://b/.corral-staging-s-1"),
    "s3a://b/x/": ("s3a://b/x", False, "s3a://b/.corral-staging-s-1"),
    "s3a://b/d/x": ("s3a://b/d/x", False, "s3a://b/d/.corral-staging-s-1"),
    "s3://b/d/x": ("s3a://b/d/x", False, "s3a://b/d/.corral-staging-s-1"),
    "s3a://b/": ("s3a://b/", True, "s3a://b/.corral-staging-s-1"),
    "s3a://b": ("s3a://b/", True, "s3a://b/.corral-staging-s-1"),
    "s3://b": ("s3a://b/", True, "s3a://b/.corral-staging-s-1"),
}
S3 = [f for f in FORMS if f.startswith("s3")]
HDFS = [f for f in FORMS if not f.startswith("s3")]


@pytest.mark.parametrize("written", FORMS)
def test_each_form_has_one_normal_uri_and_one_staging_place(written: str) -> None:
    uri, root, staging = FORMS[written]
    location = parse_location(written)
    assert (location.uri, location.is_root) == (uri, root)
    assert location.staging("s-1").uri == staging == staging_path(written, "s-1")
    # the staging directory is on the target's file system, hidden, and never the target itself
    assert parse_location(staging).authority == location.authority and staging != uri
    assert parse_location(staging).parent == (location if root else location.parent)
    assert parse_location(uri) == location  # the normal form parses to itself


@pytest.mark.parametrize("source", S3)
@pytest.mark.parametrize("target", HDFS)
def test_import_from_object_storage_into_hdfs_in_every_form(source: str, target: str) -> None:
    for fmt in ([], ["--format", "parquet"]):  # DistCp, and the Spark job
        t = parse("import", ["--from", source, "--to", target, "--mode", "append", *fmt])
        assert (t.source_kind, t.target_kind) == (Kind.S3, Kind.HDFS)
        assert t.is_copy is (not fmt)
        assert (t.source, t.target) == (FORMS[source][0], FORMS[target][0])
        assert t.target_files.staging("s-1").uri == FORMS[target][2]


@pytest.mark.parametrize("source", HDFS)
@pytest.mark.parametrize("target", S3)
def test_export_from_hdfs_to_object_storage_in_every_form(source: str, target: str) -> None:
    for fmt in ([], ["--format", "csv"]):
        t = parse("export", ["--from", source, "--to", target, *fmt])
        assert (t.source_kind, t.target_kind) == (Kind.HDFS, Kind.S3)
        assert (t.source_files.uri, t.target_files.uri) == (FORMS[source][0], FORMS[target][0])
        assert t.target_files.staging("s-1").uri == FORMS[target][2]


@pytest.mark.parametrize("target", [f for f in FORMS if FORMS[f][1]])
def test_a_root_target_is_filled_but_never_replaced(target: str) -> None:
    direction, source = ("import", "s3a://in/x") if target.startswith(("/", "hdfs")) else ("export", "/x")
    with pytest.raises(ValueError, match="is a root: --mode overwrite would delete everything in it"):
        parse(direction, ["--from", source, "--to", target, "--mode", "overwrite"])
    t = parse(direction, ["--from", source, "--to", target])
    assert t.target_files.is_root
    # an empty root takes the files as a new target would; a root with data only with append
    assert FileCommit.of(target_exists=False, mode="error", is_root=True) is FileCommit.MOVE_INTO
    assert FileCommit.of(target_exists=True, mode="append", is_root=True) is FileCommit.MOVE_INTO


@pytest.mark.parametrize("written, message", [
    ("s3a:///x", "no bucket"),
    ("s3a://", "no bucket"),
    ("hdfs:/x", "expected /path, hdfs:///path"),
    ("hdfs:x", "expected /path, hdfs:///path"),
    ("/a/../b", "'.' and '..' are not resolved"),
    ("s3a://b/./x", "'.' and '..' are not resolved"),
    ("s3a://user@b/x", "is not a bucket or host:port"),
])
def test_malformed_locations_are_refused_naming_the_option(written: str, message: str) -> None:
    s3 = written.startswith("s3")
    as_target = ("export", ["--from", "/x", "--to", written]) if s3 else ("import", ["--from", "s3a://in/x", "--to", written])
    as_source = ("import", ["--from", written, "--to", "/x"]) if s3 else ("export", ["--from", written, "--to", "s3a://o/x"])
    for (direction, args), option in ((as_target, "--to "), (as_source, "--from ")):
        with pytest.raises(ValueError) as info:
            parse(direction, args)
        assert str(info.value).startswith(option) and message in str(info.value), info.value


def test_locations_keep_their_file_system() -> None:
    at = parse_location("hdfs://nn:8020/a/b")
    assert at == FileLocation("hdfs", "nn:8020", "/a/b")
    assert at.parent == FileLocation("hdfs", "nn:8020", "/a") and at.parent.parent is not None
    assert at.parent.parent.is_root and at.parent.parent.parent is None
    assert parse_location("/data/%20#1 x").uri == "/data/%20#1 x"  # characters Hadoop's Path keeps
