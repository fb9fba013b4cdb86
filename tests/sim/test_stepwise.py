"""The closed loop played one day at a time from saved state writes what the in-memory loop writes."""

from datetime import date

import numpy as np
import pytest
from sqlalchemy import text

from recsys.db import engine as db
from recsys.sim.closed_loop import ArmServer, run_closed_loop
from recsys.sim.stepwise import LoopState, init_state, load_state, save_state, simulate_day, state_path
from recsys.sim.world import World, WorldParams

SNAPSHOT = {
    "interactions": "SELECT event_time, user_id, item_id, event_type, value, session_id, model_version, propensity,"
                    " source FROM interactions ORDER BY source, event_time, user_id, item_id, event_type",
    "items": "SELECT item_id, topic, source FROM items ORDER BY item_id",
    "sim_items": "SELECT * FROM sim_items ORDER BY sim_source, item_id",
    "sim_user_days": "SELECT * FROM sim_user_days ORDER BY sim_source, day, user_id",
}


def _snapshot(settings):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return {name: conn.execute(text(q)).fetchall() for name, q in SNAPSHOT.items()}


def _clear(settings):
    with db.get_engine(settings.database_url, settings.schema).begin() as conn:
        conn.execute(text("TRUNCATE interactions, items, sim_items, sim_user_days CASCADE"))


def test_a_saved_and_loaded_state_steps_like_the_original(tmp_path):
    params = WorldParams(slate_size=5, quality_beta=(3.0, 2.0))
    world, server = World(300, 40, 4, seed=9, params=params), ArmServer(40, 5, 0.2, seed=9)
    slate = np.tile(np.arange(5), (len(world.active_users(0)), 1))
    server.record_clicks(world.step(0, world.active_users(0), slate))
    path = save_state(tmp_path / "s.npz", LoopState(world, server, ("random", "mf_als"), 9,
                                                    date(2026, 3, 1), 4, 1))
    loaded = load_state(path)
    assert loaded.world.params == params and loaded.arms == ("random", "mf_als") and loaded.next_day == 1
    np.testing.assert_array_equal(loaded.server.popularity_list(), server.popularity_list())
    for name, value in world.state_arrays().items():
        np.testing.assert_array_equal(getattr(loaded.world, name), value, err_msg=name)
    users = world.active_users(1)
    a, b = world.step(1, users, slate[: len(users)]), loaded.world.step(1, users, slate[: len(users)])
    for f in ("click", "consume", "in_system", "satisfaction", "return_prob", "churned"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)


def test_restore_refuses_a_state_with_missing_or_unknown_arrays():
    arrays = World(50, 40, 2, seed=1).state_arrays()
    with pytest.raises(ValueError, match="missing \\['satisfaction'\\]"):
        World.restore(WorldParams(), 1, {k: v for k, v in arrays.items() if k != "satisfaction"})
    with pytest.raises(ValueError, match="unknown \\['mood'\\]"):
        World.restore(WorldParams(), 1, {**arrays, "mood": arrays["satisfaction"]})


def test_day_by_day_from_files_writes_the_same_rows_as_the_in_memory_loop(settings, tmp_path):
    # three days so that the popularity arm ranks by a restored click history
    summary = run_closed_loop(settings, days=3, users=250, items=60, seed=4, explore=0.2)
    expected = _snapshot(settings)
    assert len(expected["interactions"]) == summary.events > 0
    _clear(settings)
    path = init_state(settings, tmp_path / "run", days=3, users=250, items=60, seed=4, explore=0.2)
    assert path == state_path(tmp_path / "run", 0)
    manifests = []
    for day in range(3):
        manifests.append(simulate_day(settings, path, day))
        path = manifests[-1].state_path
    got = _snapshot(settings)
    for name in SNAPSHOT:
        assert got[name] == expected[name], name
    assert sum(m.events for m in manifests) == summary.events
    assert {k: sum(m.served[k] for m in manifests) for k in summary.served} == summary.served
    assert [m.run_date for m in manifests] == ["2026-01-02", "2026-01-03", "2026-01-04"]
    # a retry of a day reads the same file and replaces its rows with the same ones
    simulate_day(settings, state_path(tmp_path / "run", 1), 1)
    assert _snapshot(settings) == expected
    with pytest.raises(ValueError, match="state before day 2, not before day 1"):
        simulate_day(settings, state_path(tmp_path / "run", 2), 1)
    with pytest.raises(ValueError, match="outside the run's 3 days"):
        simulate_day(settings, state_path(tmp_path / "run", 3), 3)
