"""The control plane's service layer: what API routes and the reconciler call."""
