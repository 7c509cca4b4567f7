"""The node agent: runs on every node, supervises its daemons, runs steps."""
