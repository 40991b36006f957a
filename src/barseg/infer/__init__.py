"""Inference: the Predictor interface, its runtimes, post-processing and decoding."""
