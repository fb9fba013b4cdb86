"""The closed loop one simulated day at a time, with the state between days in files.

`run_closed_loop` keeps the world and the arms' click history in memory across days.
A scheduler cannot: each Airflow task is a new process, maybe on another worker. Here
the state *before* day d is the artifact `<run dir>/state_day<d>.npz`, written once
(atomically) and never changed, so `simulate_day(settings, path, d)` is a plain
function of its inputs: a retry of day d reads the same file, draws the same numbers
(every random stream is keyed by (seed, purpose, day)) and replaces the same rows.
Played for days 0 .. N-1 with the same nights in between, it writes exactly what
`run_closed_loop` writes for the seed (tests/sim/test_stepwise.py checks it).

The state holds the whole world (drawn users and items, and each user's satisfaction,
churn and return flag) and the per-day click counts the `popularity` arm ranks by.
It is ground truth: it stays in the artifact directory, never in the log the models read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Sequence

import numpy as np

from recsys.artifacts import save_npz_atomic
from recsys.config import Settings
from recsys.sim.closed_loop import DEFAULT_ARMS, ArmServer, play_day, sim_source, write_items
from recsys.sim.world import World, WorldParams

logger = logging.getLogger(__name__)

STATE_FORMAT = 1  # bump when the saved fields change; load_state refuses other versions


@dataclass
class LoopState:
    """A closed-loop run between two days: the world, the arms' server, and the run's constants.

    Attributes:
        next_day: index of the next day to play (0 before the first).
        days: the run's length; it also shaped the world (arrival days are drawn within it).
    """

    world: World
    server: ArmServer
    arms: tuple[str, ...]
    seed: int
    start_date: date
    days: int
    next_day: int


@dataclass(frozen=True)
class DayManifest:
    """What `simulate_day` wrote, small enough for XCom: the day, its counts and the next state file."""

    day: int
    date: str
    run_date: str  # the as-of date of the night that follows (date + 1)
    active_users: int
    events: int
    served: dict[str, int]
    sim_source: str
    state_path: str


def run_directory(settings: Settings, run_key: str) -> Path:
    """Where the state files of one run live: `<artifact_dir>/closed_loop/<run_key>` (made file-name safe)."""
    return Path(settings.artifact_dir) / "closed_loop" / re.sub(r"[^A-Za-z0-9._=-]+", "_", run_key)


def state_path(directory: Path, day: int) -> Path:
    """The file holding the state before day `day`."""
    return Path(directory) / f"state_day{day:03d}.npz"


def init_state(settings: Settings, directory: Path, days: int, users: int, items: int, seed: int,
               start_date: date = date(2026, 1, 1), params: WorldParams | None = None,
               arms: Sequence[str] = DEFAULT_ARMS, explore: float = 0.1) -> Path:
    """Draw the world, write the catalogue (`items`, `sim_items`) and save the state before day 0.

    Same arguments and defaults as `run_closed_loop`; returns the path of the state file.
    """
    params = params or WorldParams()
    if not arms:
        raise ValueError("need at least one arm")
    world = World(users, items, days, seed, params)
    server = ArmServer(world.n_items, params.slate_size, explore, seed)
    write_items(settings, sim_source(seed), world)
    path = save_state(state_path(directory, 0), LoopState(world, server, tuple(arms), seed, start_date, days, 0))
    logger.info("closed loop %s: %d users, %d items, %d days from %s; state %s",
                sim_source(seed), users, items, days, start_date, path)
    return path


def simulate_day(settings: Settings, path: Path, day: int) -> DayManifest:
    """Play day `day` from the state in `path` (which must be the state before that day).

    Writes the day's events to `interactions` and its truth to `sim_user_days` (replacing
    any earlier rows of the day) and saves the state before day + 1 next to `path`.
    The night that follows (run_date = the day's date + 1) is the caller's.
    """
    state = load_state(path)
    if day != state.next_day:
        raise ValueError(f"{path} holds the state before day {state.next_day}, not before day {day}")
    if not 0 <= day < state.days:
        raise ValueError(f"day {day} is outside the run's {state.days} days")
    result = play_day(settings, state.world, state.server, state.arms, state.seed, day, state.start_date)
    after = dataclasses.replace(state, next_day=day + 1)
    next_path = save_state(state_path(Path(path).parent, day + 1), after)
    return DayManifest(day, result.date.isoformat(), (result.date + timedelta(days=1)).isoformat(),
                       result.active_users, result.events, result.served, sim_source(state.seed), str(next_path))


def save_state(path: Path, state: LoopState) -> Path:
    """Write `state` to `path` atomically: the world's arrays, the click history, and the constants as JSON."""
    server, world = state.server, state.world
    meta = {
        "format": STATE_FORMAT, "arms": list(state.arms), "seed": state.seed,
        "start_date": state.start_date.isoformat(), "days": state.days, "next_day": state.next_day,
        "world_seed": world.seed, "params": dataclasses.asdict(world.params),
        "server": {"n_items": server.n_items, "slate_size": server.k, "explore": server.explore,
                   "seed": server.seed},
    }
    history = (np.stack(server.click_history) if server.click_history
               else np.empty((0, server.n_items), dtype=np.int64))
    arrays = {f"world_{name}": value for name, value in world.state_arrays().items()}
    return save_npz_atomic(Path(path), meta=np.array(json.dumps(meta)), click_history=history, **arrays)


def load_state(path: Path) -> LoopState:
    """The state `save_state` wrote to `path`."""
    with np.load(Path(path), allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != STATE_FORMAT:
            raise ValueError(f"{path}: closed-loop state format {meta.get('format')}, expected {STATE_FORMAT}")
        arrays = {name[len("world_"):]: data[name] for name in data.files if name.startswith("world_")}
        history = data["click_history"]
    # JSON turns the params' tuples into lists; the dataclass wants them back as tuples
    params = WorldParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["params"].items()})
    world = World.restore(params, meta["world_seed"], arrays)
    s = meta["server"]
    server = ArmServer(s["n_items"], s["slate_size"], s["explore"], s["seed"])
    server.click_history = [row for row in history]
    return LoopState(world, server, tuple(meta["arms"]), meta["seed"], date.fromisoformat(meta["start_date"]),
                     meta["days"], meta["next_day"])
