"""The settings table (`recsys.settings_table`): `Settings.from_env`, docs/settings.md and the
code's `RECSYS_*` variables all agree with it."""

import dataclasses
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from recsys.config import Settings
from recsys.event_types import EventType
from recsys.settings_table import BY_NAME, DATE, FIELD_VARIABLES, GROUPS, TABLE, UNSET, default_of, field_value, \
    render_markdown

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "settings.md"
SCANNED = ("recsys", "dags", "plugins", "scripts", "bench", "tests", "docker-compose.yml")
SUFFIXES = {".py", ".sh", ".yml", ".yaml", ".sql", ".toml", ".cfg", ".ini"}
# a whole name: not the tail of another one (AIRFLOW_CONN_RECSYS_DB is Airflow's connection), and
# not the bare prefix "RECSYS_" that code strips from environments with startswith
NAME = re.compile(r"(?<![A-Za-z0-9_])RECSYS_[A-Z0-9_]+")

# One non-default value of every variable that sets a field, and where it must land.
FIELD_CASES = {
    "RECSYS_DATABASE_URL": ("postgresql+psycopg2://app@db:5433/other",
                            {"database_url": "postgresql+psycopg2://app@db:5433/other"}),
    "RECSYS_SCHEMA": ("analytics", {"schema": "analytics"}),
    "RECSYS_SOURCE_TABLE": ("raw.events", {"source_table": "raw.events"}),
    "RECSYS_ARTIFACT_DIR": ("/data/artifacts", {"artifact_dir": Path("/data/artifacts")}),
    "RECSYS_K": ("25", {"k": 25}),
    "RECSYS_TRAIN_WINDOW_DAYS": ("30", {"train_window_days": 30}),
    "RECSYS_POSITIVE_EVENT_TYPES": ("consume", {"positive_event_types": ("consume",)}),
    "RECSYS_EVENT_TYPES": (" pv:positive, buy:Positive:4 ,,click:positive:2.5,seen:impression:0.5",
                           {"event_types": (EventType("impression", "impression", 1.0),
                                            EventType("click", "positive", 2.5), EventType("consume", "positive", 1.0),
                                            EventType("pv", "positive", 1.0), EventType("buy", "positive", 4.0),
                                            EventType("seen", "impression", 0.5))}),
    "RECSYS_MF_CONFIDENCE": (" Value", {"mf_confidence": "value"}),
    "RECSYS_MF_BACKEND": (" Spark", {"mf_backend": "spark"}),
    "RECSYS_SPARK_MASTER": ("spark://spark-master:7077", {"spark_master": "spark://spark-master:7077"}),
    "RECSYS_MF_DECAY_HALF_LIFE_DAYS": ("14", {"mf_decay_half_life_days": 14.0}),
    "RECSYS_HOLDOUT": ("user_last_day", {"holdout": "user_last_day"}),
    "RECSYS_HOLDOUT_LAST_N": ("5", {"holdout_last_n": 5}),
    "RECSYS_WARM_START": ("no", {"warm_start": False}),
    "RECSYS_MAX_EVENTS_PER_USER": ("0", {"max_events_per_user": 0}),
    "RECSYS_KEEP_VERSIONS": ("3", {"keep_versions": 3}),
    "RECSYS_GATE_MIN_DISTINCT_ITEMS": ("5", {"gate_min_distinct_items": 5}),
    "RECSYS_SERVING_ALIAS": ("winner", {"serving_alias": "winner"}),
    "RECSYS_DATASET_KEEP_DAYS": ("0", {"dataset_keep_days": 0}),
    "RECSYS_TRENDING_HALF_LIFE_DAYS": ("1.5", {"trending_half_life_days": 1.5}),
    "RECSYS_PROPENSITY_GAMMA": ("1.0", {"propensity_gamma": 1.0}),
    "RECSYS_SEED": ("7", {"als.seed": 7, "bpr.seed": 7, "rl.seed": 7, "ope.seed": 7, "gate_seed": 7}),
    "RECSYS_NUM_THREADS": ("2", {"als.num_threads": 2, "bpr.num_threads": 2}),
    "RECSYS_GATE_METRIC": ("dr_return_lcb", {"gate_metric": "dr_return_lcb"}),
    "RECSYS_GATE_TOLERANCE": ("0.02", {"gate_tolerance": 0.02}),
    "RECSYS_GATE_RELATIVE_TOLERANCE": ("0.1", {"gate_relative_tolerance": 0.1}),
    "RECSYS_GATE_MIN_USERS": ("200", {"gate_min_users": 200}),
    "RECSYS_GATE_BOOTSTRAP_SAMPLES": ("500", {"gate_bootstrap_samples": 500}),
    "RECSYS_GATE_BASELINE_FLOOR": ("off", {"gate_baseline_floor": False}),
    "RECSYS_APPROVAL": (" First_And_Forced", {"approval": "first_and_forced"}),
    "RECSYS_APPROVAL_TIMEOUT_MINUTES": ("0.5", {"approval_timeout_minutes": 0.5}),
    "RECSYS_HEALTH_HISTORY_DAYS": ("14", {"health.history_days": 14}),
    "RECSYS_HEALTH_NEW_LOOKBACK_DAYS": ("56", {"health.new_lookback_days": 56}),
    "RECSYS_HEALTH_MIN_VOLUME_RATIO": ("0.1", {"health.min_volume_ratio": 0.1}),
    "RECSYS_HEALTH_MAX_VOLUME_RATIO": ("inf", {"health.max_volume_ratio": float("inf")}),
    "RECSYS_HEALTH_MAX_CTR_CHANGE": ("0.75", {"health.max_ctr_change": 0.75}),
    "RECSYS_HEALTH_MAX_NEW_SHARE_RISE": ("0.3", {"health.max_new_share_rise": 0.3}),
    "RECSYS_HEALTH_MAX_TAG_DROP": ("0.25", {"health.max_tag_drop": 0.25}),
    "RECSYS_HEALTH_MIN_COMPLIANCE": ("0.9", {"health.min_compliance": 0.9}),
    "RECSYS_HEALTH_WARN_ONLY": ("1", {"health.warn_only": True}),
    "RECSYS_ALERT_SMTP_CONN": ("ops_mail", {"alerts.smtp_conn_id": "ops_mail"}),
    "RECSYS_ALERT_EMAIL_TO": ("a@example.com, b@example.com", {"alerts.email_to": "a@example.com, b@example.com"}),
    "RECSYS_ALERT_EMAIL_FROM": ("recsys@example.com", {"alerts.email_from": "recsys@example.com"}),
    "RECSYS_ALERT_SLACK_CONN": ("", {"alerts.slack_conn_id": ""}),
    "RECSYS_RETENTION_DAYS": ("1, 3,28", {"retention_days": (1, 3, 28)}),
    "RECSYS_RETENTION_TIMEZONE": ("Europe/Paris", {"retention_timezone": "Europe/Paris"}),
    "RECSYS_RETENTION_START_DATE": ("2017-11-24", {"retention_start_date": date(2017, 11, 24)}),
    "RECSYS_ACTIVE_EVENT_TYPES": (" click ,, impression", {"active_event_types": ("click", "impression")}),
    "RECSYS_ALS_FACTORS": ("8", {"als.factors": 8}),
    "RECSYS_ALS_REGULARIZATION": ("0.5", {"als.regularization": 0.5}),
    "RECSYS_ALS_ALPHA": ("40", {"als.alpha": 40.0}),
    "RECSYS_ALS_UNOBSERVED_WEIGHT": ("0.1", {"als.unobserved_weight": 0.1}),
    "RECSYS_ALS_REG_EXPONENT": ("1", {"als.reg_exponent": 1.0}),
    "RECSYS_ALS_ITERATIONS": ("3", {"als.iterations": 3}),
    "RECSYS_ALS_WARM_ITERATIONS": ("2", {"als.warm_iterations": 2}),
    "RECSYS_BPR_FACTORS": ("16", {"bpr.factors": 16}),
    "RECSYS_BPR_LEARNING_RATE": ("0.1", {"bpr.learning_rate": 0.1}),
    "RECSYS_BPR_REGULARIZATION": ("0.2", {"bpr.regularization": 0.2}),
    "RECSYS_BPR_ITERATIONS": ("5", {"bpr.iterations": 5}),
    "RECSYS_ALS_SEARCH": ("off", {"search.enabled": False}),
    "RECSYS_ALS_SEARCH_FACTORS": ("32,256", {"search.factors": (32, 256)}),
    "RECSYS_ALS_SEARCH_ALPHAS": ("5", {"search.alphas": (5.0,)}),
    "RECSYS_ALS_SEARCH_REGULARIZATIONS": ("1,1000", {"search.regularizations": (1.0, 1000.0)}),
    "RECSYS_ALS_SEARCH_REG_EXPONENTS": ("0.5", {"search.reg_exponents": (0.5,)}),
    "RECSYS_ALS_SEARCH_UNOBSERVED_WEIGHTS": ("0.1,1", {"search.unobserved_weights": (0.1, 1.0)}),
    "RECSYS_ALS_SEARCH_REFINE_TOP": ("0", {"search.refine_top": 0}),
    "RECSYS_ITEMKNN_NEIGHBOURS": ("20,40", {"itemknn.neighbours": (20, 40)}),
    "RECSYS_ITEMKNN_WEIGHTINGS": ("bm25", {"itemknn.weightings": ("bm25",)}),
    "RECSYS_ITEMKNN_SHRINKAGE": ("10", {"itemknn.shrinkage": 10.0}),
    "RECSYS_ITEMKNN_BM25_K1": ("100", {"itemknn.bm25_k1": 100.0}),
    "RECSYS_ITEMKNN_BM25_B": ("0.8", {"itemknn.bm25_b": 0.8}),
    "RECSYS_EASE_LAMBDAS": ("250", {"ease.lambdas": (250.0,)}),
    "RECSYS_CONTENT_ENCODER": ("sentence-transformers:/models/minilm",
                               {"content.encoder": "sentence-transformers:/models/minilm"}),
    "RECSYS_CONTENT_DIM": ("32", {"content.dim": 32}),
    "RECSYS_CONTENT_REFIT_SHARE": ("0.5", {"content.refit_share": 0.5}),
    "RECSYS_HYBRID_RIDGE": ("3", {"content.ridge": 3.0}),
    "RECSYS_HYBRID_PROFILE_WEIGHTS": ("0,0.5", {"content.profile_weights": (0.0, 0.5)}),
    "RECSYS_HYBRID_HALF_LIFE_DAYS": ("2", {"content.half_life_days": 2.0}),
    "RECSYS_EASE_MAX_MEMORY_MB": ("512", {"ease.max_memory_mb": 512}),
    "RECSYS_RL_GAMMA": ("0.5", {"rl.gamma": 0.5}),
    "RECSYS_RL_RETENTION_WEIGHT": ("2.5", {"rl.retention_weight": 2.5}),
    "RECSYS_RL_RETURN_HORIZON_DAYS": ("7", {"rl.return_horizon_days": 7}),
    "RECSYS_RL_RETENTION_CREDIT": ("session", {"rl.retention_credit": "session"}),
    "RECSYS_RL_CONSUME_WEIGHT": ("0", {"rl.consume_weight": 0.0}),
    "RECSYS_RL_ABANDON_PENALTY": ("2.5", {"rl.abandon_penalty": 2.5}),
    "RECSYS_RL_ENCODER": (" SASRec ", {"rl.encoder": "sasrec"}),
    "RECSYS_RL_WEIGHT_CAP": ("5", {"rl.weight_cap": 5.0}),
    "RECSYS_RL_EPOCHS": ("2", {"rl.epochs": 2}),
    "RECSYS_RL_NUM_THREADS": ("2", {"rl.num_threads": 2}),
    "RECSYS_RL_SESSIONS_PER_EPOCH": ("5000", {"rl.sessions_per_epoch": 5000}),
    "RECSYS_RL_STOP_MIN_ESS_SHARE": ("0.05", {"rl.stop_min_ess_share": 0.05}),
    "RECSYS_RL_STOP_MIN_ENTROPY_SHARE": ("0", {"rl.stop_min_entropy_share": 0.0}),
    "RECSYS_RL_MIN_DISTINCT_ITEMS": ("50", {"rl.min_distinct_items": 50}),
    "RECSYS_OPE_WEIGHT_CAP": ("7.5", {"ope.weight_cap": 7.5}),
    "RECSYS_OPE_BOOTSTRAP": ("50", {"ope.n_bootstrap": 50}),
    "RECSYS_OPE_EXPLORE": ("0.3", {"ope.explore": 0.3}),
    "RECSYS_OPE_SESSION_WEIGHT": ("pseudo_inverse", {"ope.session_weight": "pseudo_inverse"}),
}


def _with_fields(settings: Settings, values: dict) -> Settings:
    top, sections = {}, {}
    for path, value in values.items():
        section, _, name = path.rpartition(".")
        (sections.setdefault(section, {}) if section else top)[name] = value
    return dataclasses.replace(settings, **top, **{s: dataclasses.replace(getattr(settings, s), **v)
                                                    for s, v in sections.items()})


def _code_files():
    for entry in SCANNED:
        path = REPO / entry
        files = [path] if path.is_file() else sorted(path.rglob("*"))
        for file in files:
            parts = file.relative_to(REPO).parts
            if (file.is_file() and file.suffix in SUFFIXES and "__pycache__" not in parts
                    and not any(p.startswith(".") for p in parts) and file != REPO / "recsys" / "settings_table.py"):
                yield file


def _reads(name: str, text: str, suffix: str) -> bool:
    quoted = rf"[\"']{name}[\"']"
    if suffix == ".py":
        pattern = rf"environ(\.get\(\s*|\[\s*){quoted}|{quoted}\s+(not\s+)?in\s+(os\.)?environ|getenv\(\s*{quoted}"
    else:  # shell and compose files
        pattern = rf"\$\{{?{name}(?![A-Z0-9_])"
    return re.search(pattern, text) is not None


# -------------------------------------------------------------------- Settings.from_env

def test_an_empty_environment_gives_the_defaults():
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize("name", sorted(FIELD_CASES))
def test_each_variable_lands_in_its_fields_and_nowhere_else(name):
    raw, expected = FIELD_CASES[name]
    defaults = Settings()
    assert all(field_value(defaults, path) != value for path, value in expected.items()), "not a non-default value"
    settings = Settings.from_env({name: raw})
    assert settings == _with_fields(defaults, expected)
    for path, value in expected.items():
        assert type(field_value(settings, path)) is type(value), path


def test_every_variable_at_once_and_the_others_change_nothing():
    assert set(FIELD_CASES) == {var.name for var in FIELD_VARIABLES}, "FIELD_CASES must cover every field variable"
    env = {name: raw for name, (raw, _) in FIELD_CASES.items()}
    # the DAG files', scripts' and tests' own variables are not Settings fields
    env.update({var.name: var.kind.show(var.default) + "9" for var in TABLE if not var.fields})
    expected = _with_fields(Settings(), {p: v for _, values in FIELD_CASES.values() for p, v in values.items()})
    assert Settings.from_env(env) == expected
    assert Settings.from_env(env, k=3, gate_tolerance=0.5) == dataclasses.replace(expected, k=3, gate_tolerance=0.5)


def test_recsys_seed_seeds_every_stochastic_step_including_ope():
    settings = Settings.from_env({"RECSYS_SEED": "123"})
    assert (settings.als.seed, settings.bpr.seed, settings.rl.seed, settings.ope.seed,
            settings.gate_seed) == (123, 123, 123, 123, 123)


@pytest.mark.parametrize(("raw", "expected"), [("0", False), ("false", False), ("No", False), ("OFF", False),
                                               ("1", True), ("true", True), ("yes", True), ("on", True), ("", True)])
def test_booleans_read_as_they_always_did(raw, expected):
    assert Settings.from_env({"RECSYS_WARM_START": raw}).warm_start is expected
    assert Settings.from_env({"RECSYS_ALS_SEARCH": raw}).search.enabled is expected


def test_empty_lists_and_an_empty_weight_cap_keep_the_defaults_and_none_turns_the_cap_off():
    empty = Settings.from_env({"RECSYS_RETENTION_DAYS": "", "RECSYS_ACTIVE_EVENT_TYPES": "",
                               "RECSYS_POSITIVE_EVENT_TYPES": "", "RECSYS_OPE_WEIGHT_CAP": ""})
    assert empty == Settings()
    assert Settings.from_env({"RECSYS_OPE_WEIGHT_CAP": "None"}).ope.weight_cap is None


def test_a_value_that_does_not_parse_names_its_variable():
    with pytest.raises(ValueError, match=r"RECSYS_K='ten': expected int"):
        Settings.from_env({"RECSYS_K": "ten"})
    with pytest.raises(ValueError, match="RECSYS_RETENTION_DAYS"):
        Settings.from_env({"RECSYS_RETENTION_DAYS": "1,x"})


def test_the_sub_configs_still_refuse_bad_values():
    with pytest.raises(ValueError, match="RECSYS_RL_ENCODER"):
        Settings.from_env({"RECSYS_RL_ENCODER": "lstm"})
    with pytest.raises(ValueError, match="RECSYS_RL_ABANDON_PENALTY"):
        Settings.from_env({"RECSYS_RL_ABANDON_PENALTY": "-1"})
    with pytest.raises(ValueError, match="RECSYS_OPE_SESSION_WEIGHT"):
        Settings.from_env({"RECSYS_OPE_SESSION_WEIGHT": "median"})
    with pytest.raises(ValueError, match="RECSYS_ITEMKNN_WEIGHTINGS"):
        Settings.from_env({"RECSYS_ITEMKNN_WEIGHTINGS": "cosine,jaccard"})
    with pytest.raises(ValueError, match="RECSYS_ITEMKNN_NEIGHBOURS"):
        Settings.from_env({"RECSYS_ITEMKNN_NEIGHBOURS": "0"})
    with pytest.raises(ValueError, match="RECSYS_EASE_LAMBDAS"):
        Settings.from_env({"RECSYS_EASE_LAMBDAS": "100,-1"})
    with pytest.raises(ValueError, match="RECSYS_EASE_MAX_MEMORY_MB"):
        Settings.from_env({"RECSYS_EASE_MAX_MEMORY_MB": "0"})


# -------------------------------------------------------------------- the table itself

def test_the_table_is_well_formed():
    assert len(BY_NAME) == len(TABLE), "a variable is declared twice"
    defaults = Settings()
    for var in TABLE:
        assert var.name.startswith("RECSYS_") and var.group in GROUPS and var.meaning, var
        if var.fields:
            # fields are dataclass fields of Settings or of one of its sub-configs
            for path in var.fields:
                owner = defaults if "." not in path else field_value(defaults, path.split(".")[0])
                assert path.count(".") <= 1 and path.split(".")[-1] in {f.name for f in dataclasses.fields(owner)}, path
            # one default per variable, so docs/settings.md can show it
            assert len({repr(field_value(defaults, path)) for path in var.fields}) == 1, var.name
        else:
            assert var.read_by, f"{var.name} sets no field and names no reader"
        # the default, written as the variable's text, reads back as itself
        default = default_of(var, defaults)
        assert var.parse(var.kind.show(default)) == default, var.name


def test_the_table_module_is_light_enough_for_dag_parse_time():
    code = ("import sys, recsys.settings_table, recsys.config\n"
            "print(sorted(m for m in ('torch', 'pandas', 'scipy', 'sklearn', 'numpy', 'sqlalchemy', 'airflow')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_docs_settings_md_is_generated_from_the_table():
    assert DOC.is_file() and DOC.read_text() == render_markdown(Settings()), \
        "docs/settings.md is stale: run `python scripts/gen_settings_doc.py` and commit the result"


# -------------------------------------------------------------------- the code's variables

def test_every_recsys_variable_in_the_code_is_declared():
    found: dict[str, set[str]] = {}
    for file in _code_files():
        for name in NAME.findall(file.read_text(errors="replace")):
            found.setdefault(name, set()).add(str(file.relative_to(REPO)))
    assert "RECSYS_DAG_START_DATE" in found and "RECSYS_VENV" in found, "the scan found nothing: is it broken?"
    undeclared = {name: sorted(files) for name, files in found.items() if name not in BY_NAME}
    assert not undeclared, f"declare these in recsys/settings_table.py (used in {undeclared})"


def test_every_declared_variable_is_read_where_the_table_says():
    for var in TABLE:
        for entry in var.read_by:
            path = REPO / entry.split(" ")[0]
            assert path.is_file(), f"{var.name}: {entry} does not exist"
            assert _reads(var.name, path.read_text(), path.suffix), f"{path.relative_to(REPO)} does not read {var.name}"
    # a variable with fields is read by Settings.from_env: FIELD_CASES checks each lands in its fields


def test_the_readers_defaults_agree_with_the_table():
    checked = 0
    for var in TABLE:
        for entry in var.read_by:
            path = REPO / entry.split(" ")[0]
            text = path.read_text()
            if path.suffix == ".py":
                literals = re.findall(rf"environ\.get\(\s*[\"']{var.name}[\"']\s*,\s*[\"']([^\"']*)[\"']", text)
            else:
                literals = re.findall(rf"\$\{{{var.name}:-([^}}]*)\}}", text)
            for literal in (x for x in literals if x):  # `${RECSYS_DATABASE_URL:-}` only asks whether it is set
                assert var.parse(literal) == default_of(var, Settings()), (var.name, str(path), literal)
                checked += 1
    assert checked >= 8
    from recsys.dev import devdb

    assert BY_NAME["RECSYS_TEST_ADMIN_URL"].default == devdb.LOCAL_ADMIN_URL  # tests/conftest.py's default


def test_kinds_parse_their_text():
    assert BY_NAME["RECSYS_DAG_START_DATE"].kind is DATE
    assert BY_NAME["RECSYS_RETENTION_DAYS"].parse("") is UNSET
    from recsys.settings_table import FLOATS

    assert FLOATS.parse("0.1, 10,40") == (0.1, 10.0, 40.0) and FLOATS.show((0.1, 10.0)) == "0.1,10.0"


def test_an_undeclared_recsys_variable_is_reported_not_silently_ignored(caplog):
    typo = "RECSYS_" + "TRAIN_WINDOW"  # of RECSYS_TRAIN_WINDOW_DAYS (spelt in two parts: the scan above reads code)
    settings = Settings.from_env({typo: "30", "RECSYS_K": "5"})
    assert settings.k == 5 and settings.train_window_days == Settings().train_window_days
    assert f"{typo} is not a recsys setting" in caplog.text
