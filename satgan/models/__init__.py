"""Networks and losses: one factory (:mod:`satgan.models.factory`) builds every variant from the config."""
