"""Declared event types (`RECSYS_EVENT_TYPES`), their roles and weights, and the MF confidence
(`RECSYS_MF_CONFIDENCE`): parsing, validation, the dataset's vocabulary and its MF input.
No database needed."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recsys.config import Settings
from recsys.dataset import EVENT_TYPES, WindowDataset
from recsys.errors import ConfigurationError, DataValidationError
from recsys.event_types import (DEFAULT_EVENT_TYPES, EventType, parse_event_types, show_event_types,
                                vocabulary)
from recsys.stages.extract import _to_dataset

TAOBAO = "pv:positive:1,cart:positive:2,fav:positive:2,buy:positive:4"


# -------------------------------------------------------------------- parsing and validation

def test_declared_types_come_after_the_built_in_ones_in_the_order_written():
    types = parse_event_types(TAOBAO)
    assert [t.name for t in types] == [*EVENT_TYPES, "pv", "cart", "fav", "buy"]
    assert [t.weight for t in types[3:]] == [1.0, 2.0, 2.0, 4.0]
    assert {t.role for t in types[3:]} == {"positive"}
    assert types[:3] == DEFAULT_EVENT_TYPES  # the built-in ones keep their roles and weight 1


def test_the_weight_defaults_to_one_and_a_built_in_type_may_be_given_a_weight():
    types = parse_event_types(" seen:Impression , consume:positive:3.5,")
    assert types == (EventType("impression", "impression"), EventType("click", "positive"),
                     EventType("consume", "positive", 3.5), EventType("seen", "impression", 1.0))


def test_the_text_of_a_vocabulary_reads_back_as_itself():
    for raw in (TAOBAO, "x:impression:0.1,click:positive:0.30000000000000004", ""):
        types = parse_event_types(raw)
        assert parse_event_types(show_event_types(types)) == types == vocabulary(types)
    assert show_event_types(DEFAULT_EVENT_TYPES) == "impression:impression:1,click:positive:1,consume:positive:1"


@pytest.mark.parametrize(("raw", "message"), [
    ("pv", r"entry 'pv' is not name:role\[:weight\]"),
    ("pv:positive:1:2", r"entry 'pv:positive:1:2' is not name:role\[:weight\]"),
    (":positive", r"entry ':positive' is not name:role"),
    ("pv:like", r"event type 'pv' has role 'like'; the role must be one of impression, positive"),
    ("pv:positive:heavy", r"entry 'pv:positive:heavy' has weight 'heavy', not a number"),
    ("pv:positive:0", r"event type 'pv' has weight 0.0; a weight must be a finite number > 0"),
    ("pv:positive:-2", r"event type 'pv' has weight -2.0"),
    ("pv:positive:nan", r"event type 'pv' has weight nan"),
    ("pv:positive:inf", r"event type 'pv' has weight inf"),
    ("pv:positive,cart:positive,pv:positive:2", r"event type 'pv' is declared twice"),
    ("click:impression", r"'click' is a built-in event type of role 'positive' and keeps it \(got 'impression'\)"),
    ("impression:positive:2", r"'impression' is a built-in event type of role 'impression'"),
])
def test_a_bad_declaration_is_refused_naming_the_variable_and_the_entry(raw, message):
    with pytest.raises(ConfigurationError, match=rf"^RECSYS_EVENT_TYPES: {message}"):
        Settings.from_env({"RECSYS_EVENT_TYPES": raw})


def test_an_event_type_list_naming_an_undeclared_type_is_refused():
    with pytest.raises(ConfigurationError, match=r"RECSYS_POSITIVE_EVENT_TYPES names 'buy', which is neither built "
                                                 r"in \(impression, click, consume\) nor declared"):
        Settings.from_env({"RECSYS_POSITIVE_EVENT_TYPES": "consume,buy"})
    with pytest.raises(ConfigurationError, match="RECSYS_ACTIVE_EVENT_TYPES names 'visit'"):
        Settings(active_event_types=("visit",))
    # declared, it may be listed (a declared impression type made active, say)
    s = Settings.from_env({"RECSYS_EVENT_TYPES": "visit:impression", "RECSYS_ACTIVE_EVENT_TYPES": "visit"})
    assert s.active_types == ("visit",)


def test_an_unknown_confidence_mode_is_refused():
    with pytest.raises(ConfigurationError, match="RECSYS_MF_CONFIDENCE must be one of count, weight, value, got 'sum'"):
        Settings.from_env({"RECSYS_MF_CONFIDENCE": "sum"})


def test_settings_complete_any_declaration_to_the_full_vocabulary():
    direct = Settings(event_types=(EventType("buy", "positive", 4),))
    assert direct == Settings.from_env({"RECSYS_EVENT_TYPES": "buy:positive:4"})
    assert direct.event_type_names == (*EVENT_TYPES, "buy") and direct.type_weights["buy"] == 4.0
    assert dataclasses.replace(direct, k=5).event_types == direct.event_types


# -------------------------------------------------------------------- roles

def test_roles_decide_what_each_stage_reads():
    s = Settings.from_env({"RECSYS_EVENT_TYPES": TAOBAO + ",shown:impression"})
    assert s.positive_types == ("click", "consume", "pv", "cart", "fav", "buy")
    assert s.active_types == ("click", "consume", "pv", "cart", "fav", "buy")
    assert s.impression_types == ("impression", "shown")
    assert s.rl_click_types == ("click", "pv", "cart", "fav", "buy")  # consume keeps its own RL role
    # the built-in lists still choose among the built-in types, and the declared positive ones join them
    only = dataclasses.replace(s, positive_event_types=("consume",), active_event_types=("click",))
    assert only.positive_types == ("consume", "pv", "cart", "fav", "buy")
    assert only.active_types == ("click", "pv", "cart", "fav", "buy")


def test_without_declarations_the_roles_are_as_they_always_were():
    s = Settings()
    assert (s.positive_types, s.active_types, s.impression_types, s.rl_click_types) == (
        ("click", "consume"), ("click", "consume"), ("impression",), ("click",))
    assert s.mf_confidence == "count"


# -------------------------------------------------------------------- the dataset

def _frame(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "ts", "value"]).astype(
        {"event_type": "string", "value": "float64"})


ROWS = [(1, 10, "pv", 1.0, None), (1, 10, "pv", 2.0, None), (1, 10, "buy", 3.0, 30.0),
        (1, 11, "cart", 4.0, None), (2, 11, "buy", 5.0, None), (2, 12, "click", 6.0, 0.5),
        (2, 12, "impression", 7.0, None), (3, 10, "fav", 8.0, 2.0)]


def _dataset(settings):
    return _to_dataset(_frame(ROWS), "shop.events", event_types=settings.event_type_names)


def test_the_extract_codes_declared_types_after_the_built_in_ones():
    s = Settings.from_env({"RECSYS_EVENT_TYPES": TAOBAO})
    ds = _dataset(s)
    assert ds.event_types == s.event_type_names
    assert [ds.event_types[c] for c in ds.event_code] == [r[2] for r in ROWS]
    assert ds.event_code.dtype == np.int8 and ds.event_code[-2] == 0  # the impression keeps code 0
    assert ds.positive_mask(s.positive_types).tolist() == [True] * 6 + [False, True]


def test_an_undeclared_event_type_names_table_column_and_values_and_how_to_fix_it():
    with pytest.raises(DataValidationError, match=r"^shop\.events\.event_type: 6 rows with unknown event types "
                                                  r"\['buy', 'cart', 'fav', 'pv'\]; expected one of "
                                                  r"\['impression', 'click', 'consume'\]: declare the others in "
                                                  r"RECSYS_EVENT_TYPES") as err:
        _dataset(Settings())
    assert (err.value.table, err.value.column) == ("shop.events", "event_type")


def test_confidence_modes_sum_counts_weights_or_values():
    s = Settings.from_env({"RECSYS_EVENT_TYPES": TAOBAO})
    ds = _dataset(s)
    positives = ds.positive_mask(s.positive_types)

    def matrix(mode):
        strengths = ds.strengths(mode, s.type_weights, "shop.events", positives)
        return {(int(ds.user_ids[u]), int(ds.item_ids[i])): float(v)
                for u, i, v in zip(*ds.user_item_matrix(positives, strengths).nonzero(),
                                   ds.user_item_matrix(positives, strengths).data)}

    # user 1 / item 10: pv, pv, buy (value 30); 1/11: cart; 2/11: buy; 2/12: click (value 0.5); 3/10: fav (value 2)
    assert matrix("count") == {(1, 10): 3, (1, 11): 1, (2, 11): 1, (2, 12): 1, (3, 10): 1}
    assert matrix("weight") == {(1, 10): 1 + 1 + 4, (1, 11): 2, (2, 11): 4, (2, 12): 1, (3, 10): 2}
    assert matrix("value") == {(1, 10): 1 + 1 + 30, (1, 11): 2, (2, 11): 4, (2, 12): 0.5, (3, 10): 2}
    assert ds.strengths("count", s.type_weights, "shop.events") is None


def test_value_confidence_refuses_a_negative_value_on_a_positive_event():
    s = Settings.from_env({"RECSYS_EVENT_TYPES": TAOBAO})
    ds = _to_dataset(_frame(ROWS + [(3, 12, "buy", 9.0, -1.5), (3, 12, "impression", 9.5, -7.0)]), "shop.events",
                     event_types=s.event_type_names)
    positives = ds.positive_mask(s.positive_types)
    with pytest.raises(DataValidationError, match=r"^shop\.events\.value: 1 positive events hold a negative value "
                                                  r"\(e\.g\. -1\.5\)"):
        ds.strengths("value", s.type_weights, "shop.events", positives)
    # the other modes do not read the value
    assert ds.strengths("weight", s.type_weights, "shop.events", positives)[-2] == 4.0


def test_a_dataset_saves_its_vocabulary_and_an_old_one_reads_as_the_built_in_types(tmp_path):
    s = Settings.from_env({"RECSYS_EVENT_TYPES": TAOBAO})
    ds = _dataset(s)
    loaded = WindowDataset.load(ds.save(tmp_path / "new.npz"))
    assert loaded.event_types == s.event_type_names
    assert np.array_equal(loaded.event_code, ds.event_code)
    # an artifact of before this change: the seven arrays, no vocabulary
    old = {f: getattr(ds, f) for f in ("user_ids", "item_ids", "user_index", "item_index", "ts", "value")}
    np.savez(tmp_path / "old.npz", event_code=np.array([0, 1, 2], np.int8), **{k: v[:3] if k in (
        "user_index", "item_index", "ts", "value") else v for k, v in old.items()})
    legacy = WindowDataset.load(tmp_path / "old.npz")
    assert legacy.event_types == EVENT_TYPES
    assert legacy.positive_mask(("click", "consume")).tolist() == [False, True, True]
    assert legacy.positive_mask(("buy",)).tolist() == [False, False, False]  # a type it never held
