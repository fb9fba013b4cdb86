"""Recommender models. Models never import the database layer."""
