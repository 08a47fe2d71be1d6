"""pier: a self-hosted inference deployment platform."""

__version__ = "0.1.0"
