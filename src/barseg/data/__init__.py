"""Data formats, synthesis, validation and splitting. Imports nothing of ours above it."""
