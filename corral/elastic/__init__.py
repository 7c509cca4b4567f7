"""Elasticity decisions: pure functions of what was observed (metric samples, activity,
node states) and of an injectable clock. They say what a group's target count should be,
which nodes leave, when a cluster is idle; the reconciler applies them by changing
targets, never by acting on nodes itself."""
