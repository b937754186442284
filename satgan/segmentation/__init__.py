"""Building segmenters as instruments: trained on a pretransformed folder's real tiles,
cached, loaded and scored. Three roles share this machinery and never one network: the
judges of mask fidelity (``evaluate``, the gallery), segbench's network, and the segmenter
of the alignment loss (``loss.seg_weight``) that takes part in training."""
