"""The ``corral`` command. Bad input exits with code 2 and one readable line."""

from __future__ import annotations

import sys

import httpx
import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError  # Typer vendors Click (pinned)
from typer.exceptions import Abort

from corral.cli import cluster_cmd, data_cmd, fs_cmd, server_cmd, sql_cmd, step_cmd
from corral.cli.client import ApiError
from corral.cli.quickstart import quickstart
from corral.cli.render import err_console
from corral.cli.ship import ShipError
from corral.cli.specfile import SpecFileError

app = typer.Typer(help="Corral: self-hosted elastic MapReduce. Clusters of Spark on your hosts, steps on them.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
app.add_typer(server_cmd.app, name="server")
app.add_typer(cluster_cmd.app, name="cluster")
app.add_typer(step_cmd.app, name="step")
app.add_typer(fs_cmd.app, name="fs")
app.add_typer(data_cmd.app, name="data")
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
        sys.exit(2)
    except ClickException as exc:  # usage errors: one line, exit code 2
        _fail(" ".join(exc.format_message().split()), exc.exit_code)
    except Abort:
        _fail("aborted", 1)
    except ApiError as exc:
        _fail(str(exc), 2)
    except (SpecFileError, ShipError) as exc:
        _fail(str(exc), 2)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the Corral server: {exc}", 1)
    except RuntimeError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        _fail("interrupted (clusters and steps keep going; see `corral cluster list`)", 130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
