"""The hybrid model's pieces on planted cases whose answer is known (recsys.models.hybrid)."""

from __future__ import annotations

import numpy as np

from recsys.models.hybrid import (HybridModel, cold_item_factors, content_profiles, hybrid_factors, ridge_map)
from recsys.models.saved import load_model


def test_ridge_map_recovers_a_planted_linear_map_and_is_zero_without_rows():
    rng = np.random.default_rng(0)
    content, planted = rng.normal(size=(400, 8)), rng.normal(size=(8, 3))
    assert np.allclose(ridge_map(content, content @ planted, 1e-6), planted, atol=1e-4)
    # a larger L2 weight shrinks the map towards 0
    assert np.linalg.norm(ridge_map(content, content @ planted, 1e4)) < 0.5 * np.linalg.norm(planted)
    assert not ridge_map(np.zeros((0, 8)), np.zeros((0, 3)), 1.0).any()


def test_profiles_weigh_recent_events_more_and_users_without_events_stay_zero():
    vectors = np.eye(2, dtype=np.float32)  # item 0 and item 1 are orthogonal
    day = 86_400.0
    # user 0: item 0 six days before item 1; half-life 3 days, so item 1 weighs 4 times as much
    profiles = content_profiles(np.array([0, 0]), np.array([0, 1]), np.array([0.0, 6 * day]), 2, vectors, 3.0)
    assert np.allclose(profiles[0], np.array([1.0, 4.0]) / np.sqrt(17.0), atol=1e-6)
    assert not profiles[1].any()


def test_a_cold_item_scores_as_its_text_says_in_training_and_after_it(tmp_path):
    rng = np.random.default_rng(1)
    users, items = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)
    vectors = np.abs(rng.normal(size=(5, 6))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    warm = np.array([True, True, True, False, False])
    content_map = ridge_map(vectors[warm], items[warm], 1.0)
    profiles = content_profiles(np.array([0, 1, 2]), np.array([0, 1, 2]), np.zeros(3), 3, vectors, 3.0)
    x, y = hybrid_factors(users, items, warm, vectors, content_map, profiles, 0.5)
    assert np.allclose(y[:3, :4], items[:3]) and np.allclose(y[3:, :4], vectors[3:] @ content_map)
    expected = users @ (vectors[3:] @ content_map).T + 0.5 * profiles @ vectors[3:].T
    assert np.allclose(x @ y[3:].T, expected, atol=1e-5)
    # an item embedded after training (the hourly job) scores against the saved user factors the same way
    assert np.allclose(x @ cold_item_factors(content_map, vectors[3:]).T, expected, atol=1e-5)
    model = HybridModel(x, y, np.arange(3), np.arange(5), {"encoder_version": "tfidf(dim=6)@0"}, content_map)
    npz, digest = model.save(tmp_path)
    loaded = load_model(npz, expected_sha256=digest)
    assert isinstance(loaded, HybridModel) and np.array_equal(loaded.content_map, content_map)
    assert loaded.meta["encoder_version"] == "tfidf(dim=6)@0"
