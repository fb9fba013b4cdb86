"""Command line: `recsys db upgrade | load | simulate | run | recommend | models | retention | sql`.

Every command reads the same settings as the DAG (`RECSYS_*` environment
variables, listed in docs/settings.md) and calls the same functions.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from datetime import date, datetime, timezone
from pathlib import Path

from recsys import catalogue
from recsys.config import Settings
from recsys.errors import ConfigurationError, RecsysError

logger = logging.getLogger("recsys")


def _cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from recsys.db.migrations import upgrade

    applied = upgrade(settings.database_url, settings.schema)
    print(f"schema {settings.schema}: applied {len(applied)} migration(s) {applied}" if applied
          else f"schema {settings.schema} is up to date")
    return 0


def _cmd_load_movielens(settings: Settings, args: argparse.Namespace) -> int:
    from recsys.loaders.movielens import load_movielens

    n = load_movielens(settings, Path(args.path), progress=sys.stderr.isatty())
    print(f"loaded {n} ratings from {args.path} as consume events")
    return 0


def _cmd_load_items(settings: Settings, args: argparse.Namespace) -> int:
    import time

    from recsys.loaders.items import ItemColumns, load_items

    started = time.perf_counter()
    columns = ItemColumns(key=args.key, title=args.title, topic=args.category, body=args.text,
                          published_at=args.published_at, available_from=args.available_from,
                          available_until=args.available_until)
    n = load_items(settings, Path(args.path), columns, sep=args.sep, time_format=args.time_format,
                   source=args.source)
    print(f"loaded {n} items from {args.path} in {time.perf_counter() - started:.2f} s")
    return 0


def _cmd_load_mind(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from recsys.loaders.mind import load_mind

    done = load_mind(settings, Path(args.path), source=args.source)
    span = (f", {done.first_event:%Y-%m-%d %H:%M} to {done.last_event:%Y-%m-%d %H:%M} UTC"
            if done.first_event is not None else "")
    print(f"loaded {done.impressions} MIND impressions ({done.slots} shown slots, {done.clicks} clicks{span}) "
          f"and {done.news} news items from {args.path} as source {done.source} in {done.seconds:.2f} s")
    print("to train on them:")
    print("  export RECSYS_SOURCE_TABLE=mind_events")
    if done.last_event is not None:
        print(f"  recsys run --date {done.last_event.date() + timedelta(days=1)}")
    return 0


def _cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    if args.closed_loop:
        return _simulate_closed_loop(settings, args)
    from recsys.sim.synthetic_log import simulate_log

    summary = simulate_log(settings, days=args.days, users=args.users, items=args.items, seed=args.seed,
                           start_date=args.start, progress=sys.stderr.isatty())
    print(f"simulated {summary}")
    return 0


def _simulate_closed_loop(settings: Settings, args: argparse.Namespace) -> int:
    from recsys.interval import DataInterval
    from recsys.pipeline import run_night
    from recsys.sim.closed_loop import run_closed_loop

    from recsys.sim.closed_loop import DEFAULT_ARMS

    arms = DEFAULT_ARMS if args.arms is None else tuple(a.strip() for a in args.arms.split(",") if a.strip())
    extra = tuple(a for a in arms if catalogue.find(a) is not None)  # the model arms train each night

    def nightly(run_date: date):
        # a simulated night has no one to ask: RECSYS_APPROVAL would otherwise hold every forced publish
        report = run_night(settings, DataInterval.for_date(run_date), triggered_by="simulate", extra_models=extra,
                           force_publish=not args.gate, approve=True)
        return {"run_date": report.run_date, "skipped": report.skipped, "seconds": report.seconds}

    summary = run_closed_loop(settings, days=args.days, users=args.users, items=args.items, seed=args.seed,
                              start_date=args.start, arms=arms, explore=args.explore,
                              nightly=None if args.no_nightly else nightly)
    print(json.dumps({"source": summary.sim_source, "days": summary.days, "events": summary.events,
                      "served": summary.served, "seconds": round(summary.seconds, 1)}, indent=2))
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _model_list(text: str) -> list[str]:
    try:
        return catalogue.parse_list(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from recsys.interval import DataInterval
    from recsys.night import night_steps
    from recsys.pipeline import run_night

    interval = DataInterval.for_date(args.date)
    steps = night_steps(catalogue.select(args.models, args.extra_models))
    with tqdm(total=len(steps), desc=f"night {args.date}", disable=not sys.stderr.isatty()) as bar:
        def on_stage(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update(1)
        report = run_night(settings, interval, triggered_by="cli", on_stage=on_stage, models=args.models,
                           extra_models=tuple(args.extra_models), raise_on_failure=False, approve=args.approve)
        bar.update(bar.total - bar.n)
    print(json.dumps({"run_date": report.run_date, "states": report.states, "seconds": report.seconds,
                      "skipped": report.skips, "failed": {step: f"{type(exc).__name__}: {exc}"
                                                          for step, exc in report.failures.items()}},
                     indent=2, default=str))
    if report.failures:
        # every other step ran; the registry says `failed` for the models these steps were building
        logger.error("night %s: failed step(s) %s", report.run_date, ", ".join(report.failures))
        return 1
    return 0


def _cmd_recommend(settings: Settings, args: argparse.Namespace) -> int:
    from recsys.db.engine import raw_connection
    from recsys.lookup import UnknownUserError, resolve_model, user_history, user_list

    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        model = resolve_model(cur, args.model, settings.serving_alias, catalogue.default_names()[0])
        try:
            listed = user_list(cur, model, args.user, args.k)
        except UnknownUserError as exc:
            print(exc)
            return 1
        history = user_history(cur, settings, args.user, args.history) if args.history else []
    if not listed:
        print(f"no published {model} recommendations for user {args.user}")
    else:
        print(f"user {args.user}, {listed[0].model_version}:")
        width = max(len(item.item_key) for item in listed)
        for item in listed:
            print(f"{item.rank:>4}  item {item.item_key:<{width}}  score {item.score:.4f}"
                  + (f"  {item.title}" if item.title else ""))
    if args.history:
        print(f"recent history of {args.user} ({len(history)} newest events of types "
              f"{', '.join(settings.active_types)}):" if history else f"no events of user {args.user} in the log")
        width = max((len(event.item_key) for event in history), default=0)
        for event in history:
            print(f"  {event.event_time:%Y-%m-%d %H:%M}  {event.event_type:<8}  item {event.item_key:<{width}}"
                  + (f"  {event.title}" if event.title else ""))
    return 0 if listed else 1


def _cmd_retention_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    from recsys.stages.retention import rebuild_retention

    as_of = args.as_of or datetime.now(timezone.utc).date()
    result = rebuild_retention(settings, as_of)
    print(f"retention rebuilt as of {as_of} in {result.seconds:.2f}s: {result.cells_written} retention cells "
          f"({result.rolling_cells} rolling), {result.model_cells} per-model cells, "
          f"{result.engagement_rows} engagement rows, from {result.activity_rows} active (user, day) pairs")
    return 0


def _cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from recsys.stages.replay import REPLAY_MODELS, replay, report_lines

    models = tuple(args.models.split(",")) if args.models else tuple(REPLAY_MODELS)
    for line in report_lines(replay(settings, days=args.day or None, models=models)):
        print(line)
    return 0


def _cmd_models_list(settings: Settings, args: argparse.Namespace) -> int:
    from recsys.registry_table import as_records, format_table, read_entries

    spec = catalogue.find(args.model) if args.model else None
    # a name the catalogue lacks may still have versions (a model since removed): list those
    model = spec.name if spec else args.model
    entries = read_entries(settings, model, args.limit)
    if args.json:
        print(json.dumps(as_records(entries), indent=2, default=str))
        return 0
    if not entries:
        print(f"no versions of {model} in model_runs" if model else "no model versions in model_runs")
        return 0
    # like ps: cut to the terminal (or COLUMNS), but a pipe or a file gets whole lines
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() or "COLUMNS" in os.environ else None
    print(format_table(entries, width))
    from recsys.db.engine import load_sql, raw_connection

    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("cli/serving_aliases"))
        aliases = cur.fetchall()
    for alias, served, run_date, reason in aliases:
        print(f"serving alias {alias!r} serves {served} (chosen by the night of {run_date}): {reason}")
    return 0


def _cmd_models_show(settings: Settings, args: argparse.Namespace) -> int:
    from recsys.db.engine import load_sql, raw_connection

    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("cli/model_run_record"), {"model_version": args.version})
        row = cur.fetchone()
        if row is None:
            print(f"no model_runs row with model_version {args.version!r}", file=sys.stderr)
            return 1
        cur.execute(load_sql("cli/model_run_eval_metrics"), {"model_version": args.version})
        metrics = cur.fetchall()
        cur.execute(load_sql("cli/model_run_is_live"), {"model_version": args.version})
        live = cur.fetchone() is not None
    record = row[0]
    record["live"] = live
    print(json.dumps(record, indent=2, default=str))
    for subject, metric, k, value, n_users, n_impressions in metrics:
        if n_impressions is None:
            print(f"{subject:<12} {metric}@{k:<4} {value:.4f}  ({n_users} users)")
        else:  # per impression: k 0 is the whole slate
            name = metric if k == 0 else f"{metric}@{k}"
            print(f"{subject:<12} {name:<18} {value:.4f}  ({n_impressions} impressions of {n_users} users)")
    return 0


def _cmd_sql(settings: Settings, args: argparse.Namespace) -> int:
    from recsys.db.engine import raw_connection

    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("SET TRANSACTION READ ONLY")
        cur.execute(args.query)
        header = [d[0] for d in cur.description]
        rows = [[("" if v is None else str(v)) for v in row] for row in cur.fetchmany(args.limit)]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
    print(f"({len(rows)} rows)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recsys", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    dbp = sub.add_parser("db", help="schema management").add_subparsers(dest="db_command", required=True)
    dbp.add_parser("upgrade", help="apply pending migrations").set_defaults(func=_cmd_db_upgrade)

    load = sub.add_parser("load", help="load interaction data or a catalogue").add_subparsers(dest="format",
                                                                                             required=True)
    ml = load.add_parser("movielens", help="MovieLens u.data (100K) or ratings.dat (1M)")
    ml.add_argument("path")
    ml.set_defaults(func=_cmd_load_movielens)
    items = load.add_parser(
        "items", help="a catalogue (CSV or TSV with a header row) into recsys.items",
        description="Upsert the items of a CSV or TSV file (header row; .csv is RFC 4180 CSV, .tsv has no quoting) "
                    "into recsys.items, in one transaction; a reload updates the items instead of duplicating them, "
                    "and columns not mapped keep their values. Keys follow the configured log "
                    "(RECSYS_SOURCE_TABLE): text or uuid item ids there make the keys text keys (items.item_key, "
                    "internal ids from item_keys); integer ids there make every key an integer item_id. Without a "
                    "log yet, all-integer keys are item ids, anything else text keys. Empty cells are NULL.")
    items.add_argument("path", help="the file (.csv or .tsv, else give --sep)")
    items.add_argument("--key", required=True, help="column holding the item's id as the log has it")
    items.add_argument("--title", help="column holding the title (printed by recsys recommend)")
    items.add_argument("--category", help="column holding the category (items.topic)")
    items.add_argument("--text", help="column holding the text or abstract (items.body)")
    items.add_argument("--published-at", help="column holding when the item was published")
    items.add_argument("--available-from", help="column: the item may not be recommended before this time")
    items.add_argument("--available-until", help="column: the item may not be recommended from this time on")
    items.add_argument("--time-format", help="strptime format of the time columns, e.g. '%%d/%%m/%%Y %%H:%%M' "
                                             "(default: ISO 8601). Times without a zone are read as UTC")
    items.add_argument("--sep", help="field separator (one character, or 'tab'); default from the extension")
    items.add_argument("--source", help="items.source of the rows (default: items:<file name>)")
    items.set_defaults(func=_cmd_load_items)
    mind = load.add_parser(
        "mind", help="MIND news impressions (behaviors.tsv) and news (news.tsv) of one folder",
        description="Load a MIND split (Microsoft News Dataset: a folder holding behaviors.tsv and news.tsv, e.g. "
                    "MINDsmall_train) into recsys.mind_impressions, one row per shown slot with its click label, "
                    "and its news into recsys.items (title, topic = category, body = abstract, attributes = "
                    "subcategory and url). MIND's times have no zone and are read as UTC. The history column "
                    "(clicks before the log, without times) and the entity columns are not loaded. A reload "
                    "replaces the rows of the same source. Train on it with RECSYS_SOURCE_TABLE=mind_events.")
    mind.add_argument("path", help="the folder holding behaviors.tsv and news.tsv")
    mind.add_argument("--source", help="source label of the rows (default: mind:<folder name>); impression ids "
                                       "are unique per source")
    mind.set_defaults(func=_cmd_load_mind)

    sim = sub.add_parser("simulate", help="write a synthetic interaction log")
    sim.add_argument("--days", type=int, default=28)
    sim.add_argument("--users", type=int, default=2000)
    sim.add_argument("--items", type=int, default=1000)
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 1), help="first simulated day")
    sim.add_argument("--closed-loop", action="store_true",
                     help="serve each simulated day from the published lists (arms by user hash), then run the night")
    sim.add_argument("--arms", default=None,
                     help="closed loop: comma-separated arms (models of the catalogue, random, popularity); "
                          f"default: random,popularity,{','.join(catalogue.closed_loop_arms())}")
    sim.add_argument("--explore", type=float, default=0.1, help="closed loop: per-slot exploration rate")
    sim.add_argument("--no-nightly", action="store_true", help="closed loop: do not run the nightly pipeline")
    sim.add_argument("--gate", action="store_true",
                     help="closed loop: let the MF gate keep an older model (default: every arm serves its newest "
                          "model, as RL does, so the A/B compares like with like)")
    sim.set_defaults(func=_cmd_simulate)

    run = sub.add_parser("run", help="run the nightly stages for one as-of date")
    run.add_argument("--date", type=date.fromisoformat, required=True,
                     help="as-of date D: trains on events before D 00:00 UTC")
    run.add_argument("--models", type=_model_list, default=None,
                     help="comma-separated models to train (default: "
                          f"{','.join(catalogue.default_names())}); the catalogue has: {', '.join(catalogue.names())}")
    run.add_argument("--extra-models", type=_model_list, default=[],
                     help="comma-separated models to train beside the --models ones")
    run.add_argument("--approve", action="store_true",
                     help="approve the publishes that RECSYS_APPROVAL says need a person's approval (a model's "
                          "first publish, or a forced one); without it they are recorded as not approved and "
                          "nothing of theirs is published")
    run.set_defaults(func=_cmd_run)

    rec = sub.add_parser("recommend", help="print a user's published list")
    rec.add_argument("user", help="the user's id as the log has it: an integer, or a text key such as U81994")
    rec.add_argument("--model", default=None,
                     help=f"a model of the catalogue ({', '.join(catalogue.names())}), one of their aliases, or "
                          "the serving alias (RECSYS_SERVING_ALIAS, `default`: the night's winner); default: "
                          f"the serving alias once a night has set it, else {catalogue.default_names()[0]}")
    rec.add_argument("-k", type=int, default=10)
    rec.add_argument("--history", type=int, default=0, metavar="N",
                     help="also print the user's N newest events of the log (clicks, consumes, declared positive "
                          "types), with titles")
    rec.set_defaults(func=_cmd_recommend)

    query = sub.add_parser("sql", help="run a read-only query and print the rows (no psql needed)")
    query.add_argument("query")
    query.add_argument("--limit", type=int, default=50)
    query.set_defaults(func=_cmd_sql)

    models = sub.add_parser("models", help="model registry").add_subparsers(dest="models_command", required=True)
    lst = models.add_parser("list", help="model versions, newest first: headline figure against the live model "
                                         "and popularity, and the gate's reason")
    lst.add_argument("--model", default=None, help="only this model's versions (a name or an alias)")
    lst.add_argument("--limit", type=_positive_int, default=20, help="versions shown (default 20)")
    lst.add_argument("--json", action="store_true",
                     help="one JSON list of objects with fixed keys instead of the table, for scripts")
    lst.set_defaults(func=_cmd_models_list)
    show = models.add_parser("show", help="one model's registry record and evaluation figures")
    show.add_argument("version", help="<model>@<as-of date>, e.g. "
                                      f"{catalogue.default_names()[0]}@2026-01-29")
    show.set_defaults(func=_cmd_models_show)

    rep = sub.add_parser("replay", help="replay a log with impressions day by day (train on the days before, "
                                        "evaluate on the day; cold and warm clicks apart), e.g. after `load mind`")
    rep.add_argument("--day", type=date.fromisoformat, action="append",
                     help="a day to replay (repeatable; default: every day of the log after its first)")
    rep.add_argument("--models", default=None, help="comma-separated (default: hybrid,mf_als,baseline_popular,"
                                                    "baseline_trending)")
    rep.set_defaults(func=_cmd_replay)

    retention = sub.add_parser("retention", help="retention tables").add_subparsers(dest="retention_command",
                                                                                   required=True)
    rebuild = retention.add_parser("rebuild", help="rebuild every retention table, engagement and per-model cell "
                                                   "from the log (after late data or a settings change)")
    rebuild.add_argument("--as-of", type=date.fromisoformat, default=None,
                         help="as-of date: days before it are used (default: today, UTC)")
    rebuild.set_defaults(func=_cmd_retention_rebuild)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    settings = Settings.from_env()
    try:
        return args.func(settings, args)
    except RecsysError as exc:
        logger.error("%s: %s", type(exc).__name__, exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
