"""``python -m corral.agent --config NODE_DIR/agent.json``: the node agent process."""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from corral import pidfile

from corral.agent.agent import Agent


def main() -> None:
    parser = argparse.ArgumentParser(prog="corral-agent")
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_dir = Path(json.loads(args.config.read_text())["directory"]) / "run"
    # One agent per node, whatever happens: a control plane killed between spawning an
    # agent and recording it may spawn a second one, which must step aside.
    lock = open(run_dir / "agent.lock", "a")
    for _ in range(20):  # the provider's liveness probe holds the lock for an instant
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            time.sleep(0.1)
    else:
        logging.warning("another agent already runs for this node; exiting")
        return
    pidfile.write(run_dir / "agent.pid", os.getpid())
    # The agent's own temporary files (and those of whatever it starts without a plan's
    # TMPDIR, such as a runtime deploy) stay in the node's directory, which goes with it.
    tmp = run_dir.parent / "tmp"
    tmp.mkdir(exist_ok=True)
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = None  # gettempdir() reads TMPDIR afresh
    Agent(args.config).run()


if __name__ == "__main__":
    main()
