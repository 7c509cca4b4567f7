"""Runs on the master for a STREAMING step: rewrite the arguments (see
``streaming.rewrite``) and exec ``mapred streaming``."""

from __future__ import annotations

import os
import sys

from corral.jobs.streaming import rewrite


def main() -> None:
    argv = ["mapred", "streaming", *rewrite(sys.argv[1:], sys.executable)]
    print("corral: running " + " ".join(argv), file=sys.stderr, flush=True)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
