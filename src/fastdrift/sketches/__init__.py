"""Mergeable sketches (placeholder; replaced when the sketches land)."""
