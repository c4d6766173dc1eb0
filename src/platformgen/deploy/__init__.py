"""Bringing a compiled platform up: Docker Compose (`compose.py`) or embedded local services (`local.py`)."""
