"""The ``corral`` command. Bad input exits with code 2 and one readable line; the exit
status of every command follows one rule (``corral.cli.outcome``)."""

from __future__ import annotations

import sys

import httpx
import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError  # Typer vendors Click (pinned)
from typer.exceptions import Abort

from corral.cli import (audit_cmd, cluster_cmd, data_cmd, fs_cmd, group_cmd, host_cmd, login_cmd, metrics_cmd, monitoring_cmd, server_cmd, sql_cmd, step_cmd,
                        token_cmd)
from corral.cli import alert_cmd
from corral.cli.client import ApiError, auth_problem
from corral.cli.outcome import EXIT_STATUS_HELP, ExitCode
from corral.cli.quickstart import quickstart
from corral.cli.render import err_console
from corral.cli.ship import ShipError
from corral.cli.specfile import SpecFileError
from corral.errors import CorralError

app = typer.Typer(help="Corral: self-hosted elastic MapReduce. Clusters of Spark on your hosts, steps on them.",
                  epilog=EXIT_STATUS_HELP, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
app.add_typer(server_cmd.app, name="server")
app.add_typer(cluster_cmd.app, name="cluster")
cluster_cmd.app.command("resize")(group_cmd.resize)
cluster_cmd.app.command("metrics")(metrics_cmd.metrics)
cluster_cmd.app.add_typer(group_cmd.autoscaling_app, name="autoscaling")
app.add_typer(group_cmd.app, name="group")
app.add_typer(step_cmd.app, name="step")
app.add_typer(fs_cmd.app, name="fs")
app.add_typer(data_cmd.app, name="data")
app.add_typer(token_cmd.app, name="token")
app.add_typer(audit_cmd.app, name="audit")
app.command()(login_cmd.login)
app.command()(login_cmd.logout)
app.add_typer(host_cmd.app, name="host")
app.add_typer(monitoring_cmd.app, name="monitoring")
app.add_typer(alert_cmd.app, name="alert")
app.command()(quickstart)
app.command(name="sql")(sql_cmd.sql)


def _fail(message: str, code: int) -> None:
    err_console.print(f"corral: error: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(ExitCode.BAD_INPUT)
    except ClickException as exc:  # usage errors: one line, exit code 2
        _fail(" ".join(exc.format_message().split()), exc.exit_code)
    except Abort:
        _fail("aborted", ExitCode.FAILED)
    except (ApiError, SpecFileError, ShipError, CorralError) as exc:  # CorralError: `token` on the store directly
        _fail(str(exc), ExitCode.BAD_INPUT)
    except httpx.HTTPStatusError as exc:  # a raw client's (file uploads): no token or role, or the server's failure
        problem = auth_problem(exc.response)
        if problem:
            _fail(problem, ExitCode.BAD_INPUT)
        _fail(f"the Corral server failed: {exc.response.status_code} {exc.response.reason_phrase} "
              f"({exc.request.method} {exc.request.url.path})", ExitCode.FAILED)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the Corral server: {exc}", ExitCode.FAILED)
    except RuntimeError as exc:
        _fail(str(exc), ExitCode.FAILED)
    except KeyboardInterrupt:
        _fail("interrupted (clusters and steps keep going; see `corral cluster list`)", ExitCode.INTERRUPTED)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


if __name__ == "__main__":
    main()
