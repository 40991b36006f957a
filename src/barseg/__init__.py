"""barseg: barcode instance segmentation, from synthetic data to a served model."""

__version__ = "0.1.0"
