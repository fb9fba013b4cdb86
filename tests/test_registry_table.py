"""The registry table of `recsys models list`, from hand-made rows (no database)."""

import json
from datetime import date, datetime, timezone

from recsys.registry_table import ELLIPSIS, RegistryEntry, as_records, decision, format_table

START = datetime(2026, 1, 28, tzinfo=timezone.utc)
END = datetime(2026, 1, 29, tzinfo=timezone.utc)


def _entry(version="mf_als@2026-01-29", status="published", **fields) -> RegistryEntry:
    values = dict(version=version, model=version.split("@")[0], kind="mf", run_date=date(2026, 1, 29),
                  status=status, is_live=False, metric="ndcg@10", value=0.1234, live_version=None, live_value=None,
                  popularity_value=None, gate_accepted=None, gate_reason=None, failure=None, metrics={},
                  triggered_by="test", n_interactions=100, n_users=10, n_items=20, data_interval_start=START,
                  data_interval_end=END)
    return RegistryEntry(**{**values, **fields})


def test_columns_line_up_and_differences_are_signed():
    entries = [_entry(is_live=True, live_value=0.1200, popularity_value=0.1300, gate_accepted=True,
                      gate_reason="ndcg@10 0.1234 vs live 0.1200 (tolerance 0.005)"),
               _entry("rl_cql@2026-01-29", status="trained", metric="dr_return@10", value=None)]
    lines = format_table(entries, width=200).splitlines()
    assert lines[0].startswith("version ") and lines[0].endswith("gate")
    assert lines[2].split()[1:6] == ["published", "ndcg@10", "0.1234", "+0.0034", "-0.0066"]
    assert lines[3].split()[1:6] == ["trained", "dr_return@10", "-", "-", "-"]
    assert lines[3].endswith("not gated yet")
    # numbers are right-aligned under their header
    value_end = lines[0].index("value") + len("value")
    assert lines[2][:value_end].endswith("0.1234") and lines[3][:value_end].endswith("-")
    assert lines[-1].startswith("vs live, vs pop:")


def test_long_reasons_are_cut_to_the_width_never_wrapped():
    long = "x" * 500
    entries = [_entry(gate_accepted=False, gate_reason=long), _entry(gate_accepted=True, gate_reason="short")]
    for width in (200, 80, 40, 10, 3, 1):
        lines = format_table(entries, width).splitlines()
        assert all(len(line) <= width for line in lines), width
    lines = format_table(entries, 80).splitlines()
    assert len(lines[2]) == 80 and lines[2].endswith(ELLIPSIS) and "rejected: xxx" in lines[2]
    assert lines[3].endswith("accepted: short")
    assert len(lines[1]) == 80 and not lines[1].endswith(ELLIPSIS)  # the rule under the header fits
    lines = format_table(entries, None).splitlines()
    assert lines[2].endswith("rejected: " + long) and len(lines[1]) == len(lines[2])


def test_decision_puts_failures_and_multi_line_errors_on_one_line():
    failure = {"stage": "publish", "error": "could not connect\n\tserver closed the connection",
               "error_type": "OperationalError", "at": "2026-01-29T03:00:00+00:00"}
    assert decision(_entry(status="failed", failure=failure)) == \
        "failed at publish: OperationalError: could not connect server closed the connection"
    # a failed re-run of the live date keeps `published` and its earlier verdict
    assert decision(_entry(gate_accepted=True, gate_reason="no live model yet", failure=failure)) == \
        ("accepted: no live model yet; last re-run failed at publish: OperationalError: could not connect "
         "server closed the connection")
    assert decision(_entry(status="failed", failure={"stage": "train", "error": "boom", "error_type": "str"})) == \
        "failed at train: boom"
    assert decision(_entry(status="superseded")) == "-"


def test_records_keep_every_key_and_serialise_dates():
    records = as_records([_entry(), _entry("mf_bpr@2026-01-29", failure={"stage": "train"})])
    assert [list(r) for r in records] == [list(records[0])] * 2
    assert list(records[0])[:7] == ["version", "model", "kind", "run_date", "status", "is_live", "metric"]
    assert records[0]["run_date"] == "2026-01-29" and records[0]["data_interval_end"] == END.isoformat()
    assert json.loads(json.dumps(records)) == records
