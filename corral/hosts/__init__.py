"""Registered hosts for the ssh provider: where Corral's files live on a host (``layout``),
the host check (``check``), and selection of hosts for node groups."""
