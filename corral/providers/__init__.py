"""Where nodes come from: one module per provider (local now; ssh and clouds later)."""
