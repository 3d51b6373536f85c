"""Retouch Bridge: a local AI server for Photoshop and Lightroom Classic."""

__version__ = "0.1.0"

# Bumped whenever a client-visible part of the HTTP API changes incompatibly.
PROTOCOL_VERSION = 1
DEFAULT_PORT = 7847
