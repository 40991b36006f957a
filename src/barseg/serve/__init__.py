"""Serving: the BentoML service (``service``), upload decoding (``images``), its settings
and the packaging of model + Bento (``package``). ``service`` imports only ``barseg.infer``."""
