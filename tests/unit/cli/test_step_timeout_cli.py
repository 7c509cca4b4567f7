"""``--timeout`` of ``step add`` and ``data import|export``: a bad value is exit 2 with one
line naming the option, before any request; a good one goes into the request body."""

from __future__ import annotations

from typing import Any

import pytest
from rich.markup import escape
from rich.text import Text
from typer.testing import CliRunner

from corral.cli import data_cmd, step_cmd
from corral.cli.main import app


class RecordingClient:
    bodies: list[tuple[str, Any]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.http = None  # uploads: these steps name no local file

    def post(self, path: str, json: Any = None) -> Any:
        RecordingClient.bodies.append((path, json))
        step = {"id": "s-1", "name": "x", "status": "PENDING", "state_message": None}
        return {"steps": [step]} if path.endswith("/steps") else step


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> type[RecordingClient]:
    RecordingClient.bodies = []
    monkeypatch.setattr(step_cmd, "Client", RecordingClient)
    monkeypatch.setattr(data_cmd, "Client", RecordingClient)
    return RecordingClient


@pytest.mark.parametrize("value", ["0", "-1", "604801", "1.5", "soon"])
@pytest.mark.parametrize("command", [["step", "add", "c-1", "--type", "shell"],
                                     ["data", "import", "c-1", "--from", "s3a://b/x/", "--to", "/x"]])
def test_a_bad_timeout_is_exit_2_before_any_request(client: type[RecordingClient], command: list[str], value: str) -> None:
    result = CliRunner().invoke(app, [*command, "--timeout", value, *(["--", "true"] if command[0] == "step" else [])])
    assert result.exit_code == 2, result.output
    assert "--timeout" in result.output
    assert client.bodies == []


def test_a_timeout_goes_into_the_request(client: type[RecordingClient]) -> None:
    assert CliRunner().invoke(app, ["step", "add", "c-1", "--type", "shell", "--timeout", "90", "--", "true"]).exit_code == 0
    assert CliRunner().invoke(app, ["step", "add", "c-1", "--type", "shell", "--", "true"]).exit_code == 0
    assert CliRunner().invoke(app, ["data", "export", "c-1", "--from", "/x", "--to", "s3a://b/x/",
                                    "--timeout", "3600"]).exit_code == 0
    (_, first), (_, second), (_, export) = client.bodies
    assert first["steps"][0]["timeout"] == 90
    assert "timeout" not in second["steps"][0]
    assert export["timeout"] == 3600


def test_wait_progress_shows_what_a_running_step_waits_for(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []

    class Status:
        def __enter__(self) -> "Status":
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def update(self, text: str) -> None:
            shown.append(text)

    class Console:
        def status(self, text: str) -> Status:
            return Status()

    wait = ("waiting for YARN: Queue's AM resource limit exceeded (AM Resource Request = <memory:1024, vCores:1>) "
            "[application_1_0002 ACCEPTED for 20 s]")
    answers = iter([{"name": "job", "status": "RUNNING", "state_message": None},
                    {"name": "job", "status": "RUNNING", "state_message": wait},
                    {"name": "job", "status": "FAILED", "state_message": "TIMEOUT: ran too long"}])

    class Polled:
        def get(self, path: str) -> Any:
            return next(answers)

    monkeypatch.setattr(step_cmd, "console", Console())
    monkeypatch.setattr(step_cmd.time, "sleep", lambda seconds: None)
    assert step_cmd.wait_step(Polled(), "c-1", "s-1")["status"] == "FAILED"  # type: ignore[arg-type]
    assert wait not in shown[0]
    assert shown[1].endswith(": " + escape(wait))  # YARN's text, not Rich markup
    assert Text.from_markup(shown[1]).plain.endswith(": " + wait)
    assert "TIMEOUT" not in shown[2]  # a final state's message is printed by the command, not the spinner
