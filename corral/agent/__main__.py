"""``python -m corral.agent --config NODE_DIR/agent.json``: the node agent process."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from corral.agent.agent import Agent


def main() -> None:
    parser = argparse.ArgumentParser(prog="corral-agent")
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    Agent(args.config).run()


if __name__ == "__main__":
    main()
