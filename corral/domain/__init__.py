"""The domain model: states, the catalog of releases and instance types, cluster specs."""
