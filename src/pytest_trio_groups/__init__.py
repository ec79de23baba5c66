"""Run async pytest tests concurrently in trio nurseries, each reported on its own."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
