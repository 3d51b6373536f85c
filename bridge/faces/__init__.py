"""Faces: detection with five landmarks (YuNet), shared by the retouching operations."""
