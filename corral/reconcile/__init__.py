"""The reconciler: moves every cluster, node and step from its status toward its target."""
