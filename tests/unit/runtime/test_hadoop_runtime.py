"""The Hadoop runtime from Maven Central: its layout, and clear errors when tools are missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.runtime import DeployError
from corral.runtime import hadoop


def test_missing_maven_is_a_clear_error_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hadoop.shutil, "which", lambda name: None)
    with pytest.raises(DeployError, match=r"`mvn` is required .* `apt-get install maven`"):
        hadoop.ensure_hadoop(tmp_path)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_only_the_pinned_version_is_fetched(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="Hadoop 3.5.0 only"):
        hadoop.ensure_hadoop(tmp_path, version="3.4.1")


def test_the_directory_name_follows_the_pom_and_java_sources() -> None:
    name = hadoop.runtime_name()
    assert name.startswith("hadoop-3.5.0-") and name == hadoop.runtime_name()


@pytest.mark.integration
def test_fetched_runtime_has_daemons_web_uis_tools_and_the_socket_factory() -> None:
    home = hadoop.ensure_hadoop()  # the host cache; `make setup` has fetched it already
    jars = {p.name for p in (home / "lib").glob("*.jar")}
    for artifact in ("hadoop-common", "hadoop-hdfs", "hadoop-yarn-server-resourcemanager", "hadoop-yarn-server-nodemanager",
                     "hadoop-mapreduce-client-hs", "hadoop-mapreduce-client-shuffle", "hadoop-distcp"):
        assert f"{artifact}-3.5.0.jar" in jars, artifact
    assert (home / "resources" / "webapps" / "hdfs" / "dfshealth.html").is_file()
    assert (home / "classes" / "io" / "corral" / "hadoop" / "NodeAddressSocketFactory.class").is_file()
    for alias in hadoop.TOOL_JARS:
        assert (home / alias).resolve().is_file(), alias
