"""Data: reading sources, synthetic Inria-like data, pretransform, the training dataset."""
