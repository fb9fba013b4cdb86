"""Event types: the three built in, and the ones a team declares (`RECSYS_EVENT_TYPES`).

Every event type has a role and a weight:

* role `impression`: an item was shown. The RL recommenders learn from impressions
  and the off-policy estimates weigh them; MF ignores them.
* role `positive`: the user acted on the item. MF, BPR and the baselines train on
  positive events, and a positive event makes its user active for retention.
* weight (> 0): what one event of the type is worth as MF confidence when
  `RECSYS_MF_CONFIDENCE` is `weight` (or `value`, for events whose `value` is NULL).

The built-in types keep their meaning: `impression` (role impression), `click` and
`consume` (role positive; which of them train MF and count as activity is still
`RECSYS_POSITIVE_EVENT_TYPES` / `RECSYS_ACTIVE_EVENT_TYPES`). A declaration may give a
built-in type a weight but not another role. A declared type of role positive trains
MF and counts as activity in addition to those lists; the RL recommenders read it as a
click and a declared impression type as an impression (`rl_click_types`,
`impression_types`).

`RECSYS_EVENT_TYPES` is a comma-separated list of `name:role[:weight]` entries, e.g.
`pv:positive:1,cart:positive:2,fav:positive:2,buy:positive:4`; the weight defaults
to 1. The vocabulary is the built-in types first (in the order of
`recsys.dataset.EVENT_TYPES`, so their codes in a dataset never change), then the
declared ones in the order written.

Standard library only: `recsys.config` imports it, and DAG files import that when
Airflow parses them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable

from recsys.errors import ConfigurationError

VARIABLE = "RECSYS_EVENT_TYPES"
ROLES = ("impression", "positive")
# name -> role of the types every log may hold (codes 0, 1, 2 of recsys.dataset.EVENT_TYPES)
BUILT_IN_ROLES = {"impression": "impression", "click": "positive", "consume": "positive"}
# how the MF input of a (user, item) pair is made from its positive events (RECSYS_MF_CONFIDENCE):
# their number, the sum of their types' weights, or the sum of their `value` (a NULL value: the type's weight)
CONFIDENCE_MODES = ("count", "weight", "value")
MAX_TYPES = 127  # codes are int8 in a dataset
# what an event type may be called: whatever a log holds, but no separator of the setting, no space
_NAME = re.compile(r"[^\s:,]+")


@dataclass(frozen=True)
class EventType:
    """One event type of the vocabulary.

    Attributes:
        name: the `event_type` text in the log.
        role: `impression` or `positive` (ROLES).
        weight: its MF confidence per event in the `weight` mode, finite and > 0.
    """

    name: str
    role: str
    weight: float = 1.0

    @property
    def built_in(self) -> bool:
        return self.name in BUILT_IN_ROLES


DEFAULT_EVENT_TYPES: tuple[EventType, ...] = tuple(EventType(name, role) for name, role in BUILT_IN_ROLES.items())


def vocabulary(declared: Iterable[EventType]) -> tuple[EventType, ...]:
    """The built-in types (with any weight `declared` gives them), then the other `declared` types in order.

    Idempotent: a full vocabulary comes back unchanged.

    Raises:
        ConfigurationError: a name that is empty, has a space, `:` or `,`, or comes twice; a role
            other than ROLES; a weight that is not finite and > 0; a built-in type given another role.
    """
    seen: dict[str, EventType] = {}
    for event_type in declared:
        if not isinstance(event_type, EventType):
            raise ConfigurationError(f"{VARIABLE}: expected EventType entries, got {event_type!r}")
        name, role, weight = event_type.name, event_type.role, event_type.weight
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigurationError(f"{VARIABLE}: event type name {name!r} must be non-empty text without "
                                     "spaces, ':' or ','")
        if name in seen:
            raise ConfigurationError(f"{VARIABLE}: event type {name!r} is declared twice")
        if role not in ROLES:
            raise ConfigurationError(f"{VARIABLE}: event type {name!r} has role {role!r}; the role must be one of "
                                     f"{', '.join(ROLES)}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (0 < weight < math.inf):
            raise ConfigurationError(f"{VARIABLE}: event type {name!r} has weight {weight!r}; a weight must be a "
                                     "finite number > 0")
        if name in BUILT_IN_ROLES and role != BUILT_IN_ROLES[name]:
            raise ConfigurationError(f"{VARIABLE}: {name!r} is a built-in event type of role "
                                     f"{BUILT_IN_ROLES[name]!r} and keeps it (got {role!r}); declare the other "
                                     "meaning under another name, and map it so in the source view")
        seen[name] = EventType(name, role, float(weight))
    built_in = tuple(seen.pop(name, EventType(name, role)) for name, role in BUILT_IN_ROLES.items())
    if len(built_in) + len(seen) > MAX_TYPES:
        raise ConfigurationError(f"{VARIABLE}: {len(built_in) + len(seen)} event types, at most {MAX_TYPES} "
                                 "can be told apart (a dataset stores each event's type in one byte)")
    return built_in + tuple(seen.values())


def parse_event_types(raw: str) -> tuple[EventType, ...]:
    """The vocabulary `RECSYS_EVENT_TYPES=raw` declares: `name:role[:weight]` entries, comma-separated.

    Empty entries are skipped; the role is read case-insensitively, the name as written
    (it is compared with the log's `event_type` exactly).

    Raises:
        ConfigurationError: an entry that is not `name:role[:weight]`, or one `vocabulary` refuses.
    """
    declared = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        parts = [p.strip() for p in entry.split(":")]
        if len(parts) not in (2, 3) or not parts[0]:
            raise ConfigurationError(f"{VARIABLE}: entry {entry!r} is not name:role[:weight] "
                                     "(e.g. buy:positive:4, or pv:positive for weight 1)")
        weight = 1.0
        if len(parts) == 3:
            try:
                weight = float(parts[2])
            except ValueError:
                raise ConfigurationError(f"{VARIABLE}: entry {entry!r} has weight {parts[2]!r}, not a number") \
                    from None
        declared.append(EventType(parts[0], parts[1].lower(), weight))
    return vocabulary(declared)


def _number(value: float) -> str:
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def show_event_types(types: Iterable[EventType]) -> str:
    """The `RECSYS_EVENT_TYPES` text of a vocabulary; `parse_event_types` reads it back as it was."""
    return ",".join(f"{t.name}:{t.role}:{_number(t.weight)}" for t in types)


def with_declared(listed: Iterable[str], types: Iterable[EventType], role: str) -> tuple[str, ...]:
    """`listed` (a setting's names), then each declared (not built-in) type of `role` it lacks."""
    names = tuple(listed)
    return names + tuple(t.name for t in types if not t.built_in and t.role == role and t.name not in names)
