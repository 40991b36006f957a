"""Mask R-CNN factory, LightningModule and DataModule."""
