"""Loaders that replace one source's rows of `interactions` and `items` with COPY."""
