"""The master's agent fetches each shipped file under its own name and fills in the
``{artifact:<sha256>}`` placeholders (the artifact's directory) before running the step."""

from __future__ import annotations

import time
from pathlib import Path

from corral.agent.protocol import ArtifactRef, StepCommand
from corral.agent.steps import StepRunner

CONTENT = {"a" * 64: b"lookup content\n"}


class FakeClient:
    def __init__(self) -> None:
        self.downloads: list[tuple[str, Path]] = []

    def download_artifact(self, sha256: str, dest: Path) -> None:
        self.downloads.append((sha256, dest))
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(CONTENT[sha256])


def run(tmp_path: Path, cmd: StepCommand) -> tuple[FakeClient, StepRunner]:
    client = FakeClient()
    runner = StepRunner(tmp_path, client, lambda *_: None)  # type: ignore[arg-type]
    runner.sync([cmd], {"PATH": "/usr/bin:/bin"})
    deadline = time.monotonic() + 20
    while runner.steps[cmd.id].status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)
        runner.sync([cmd], {"PATH": "/usr/bin:/bin"})
    return client, runner


def test_one_content_is_fetched_under_each_name_and_aliases_are_kept(tmp_path: Path) -> None:
    sha = "a" * 64
    ph = "{artifact:" + sha + "}"
    cmd = StepCommand(id="s-1", argv=["/bin/sh", "-c", 'cat "$1" "$2"; echo "$3"', "sh", f"{ph}/one.txt",
                                      f"{ph}/two.txt", f"{ph}/one.txt#lookup.txt"],
                      artifacts=[ArtifactRef(sha256=sha, name="one.txt"), ArtifactRef(sha256=sha, name="two.txt")])
    client, runner = run(tmp_path, cmd)
    assert runner.steps["s-1"].status == "COMPLETED", runner.steps["s-1"].message
    where = tmp_path / "artifacts" / sha
    assert sorted(d for _, d in client.downloads) == [where / "one.txt", where / "two.txt"]
    out = (runner.step_dir("s-1") / "stdout").read_text()
    assert out == "lookup content\nlookup content\n" + f"{where}/one.txt#lookup.txt\n"


def test_a_name_that_would_leave_the_artifact_directory_fails_the_step(tmp_path: Path) -> None:
    sha = "a" * 64
    cmd = StepCommand(id="s-2", argv=["/bin/true"], artifacts=[ArtifactRef(sha256=sha, name="..")])
    client, runner = run(tmp_path, cmd)
    assert runner.steps["s-2"].status == "FAILED"
    assert "could not start" in (runner.steps["s-2"].message or "")
    assert client.downloads == []
