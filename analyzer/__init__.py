"""Mandarin debt-collection call analysis: who said what and when, roles, and (later stages) emotion,
pressure, stress and compliance flags."""

__version__ = "0.1.0"

from .audio import AudioError  # noqa: E402
from .config import Config  # noqa: E402
from .pipeline import Models, analyze, load_models  # noqa: E402
from .result import CallResult  # noqa: E402

__all__ = ["AudioError", "CallResult", "Config", "Models", "analyze", "load_models", "__version__"]
