"""Cluster metrics: one sampler per cluster reads the daemons' own endpoints (the
ResourceManager's REST metrics, the NameNode's JMX) and keeps a short recent history that
autoscaling, idle termination, monitoring and alerts all read (``samples``)."""
