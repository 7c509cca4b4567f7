"""The REST API (FastAPI): /api/v1 for users, /agent/v1 for node agents."""
