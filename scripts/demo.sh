#!/usr/bin/env bash
# The main job end to end on an embedded default: installs, brings up a
# database, loads sample data, runs the nightly DAG through real Airflow for
# several consecutive dates, and prints a query of the published lists.
#
#   RECSYS_DATABASE_URL   use this data database instead of the embedded one
#   RECSYS_DEMO_DATA      simulate (default) | movielens
#   RECSYS_DEMO_NIGHTS    nights to run (default 3)
#   RECSYS_DEMO_USERS     simulated users (default 3000), RECSYS_DEMO_ITEMS items (default 1500)
#   RECSYS_DEMO_STATE     where the state goes (default .recsys/; see _demo_env.sh)
# Running it again reuses the environment and database and replaces the
# demo's data and outputs; it never duplicates them. ./scripts/serve.sh then
# shows it all in the Airflow UI; ./scripts/serve.sh stop stops the embedded server.
source "$(dirname "$0")/_env.sh"
source "$ROOT/scripts/_demo_env.sh"
cd "$ROOT"
DATA="${RECSYS_DEMO_DATA:-simulate}"
NIGHTS="${RECSYS_DEMO_NIGHTS:-3}"

demo_databases

echo "==> recsys db upgrade"
recsys db upgrade

if [ "$DATA" = movielens ]; then
  ML="${RECSYS_MOVIELENS_PATH:-$ROOT/../shared/datasets/movielens-100k/u.data}"
  recsys load movielens "$ML"
  export RECSYS_DAG_START_DATE=1997-09-01 RECSYS_TRAIN_WINDOW_DAYS=365
  LAST_DAY=1998-04-23
else
  recsys simulate --days 28 --users "${RECSYS_DEMO_USERS:-3000}" --items "${RECSYS_DEMO_ITEMS:-1500}" \
    --seed 7 --start 2026-01-01
  LAST_DAY=2026-01-29
fi

echo "==> airflow db migrate"
airflow db migrate > "$STATE/airflow-db-migrate.log" 2>&1 || { tail -n 30 "$STATE/airflow-db-migrate.log"; exit 1; }
airflow pools set recsys_training 2 "training and evaluation tasks" > /dev/null
# what serve.sh needs to run the same DAG on the same databases
{
  echo "# written by scripts/demo.sh, read by scripts/serve.sh (a variable set when serving wins)"
  echo "DEMO_DATA=$DATA"
  echo "DEMO_DATABASE=$DEMO_DATABASE"
  for var in RECSYS_DAG_START_DATE RECSYS_TRAIN_WINDOW_DAYS; do
    if [ -n "${!var:-}" ]; then echo "export $var=\"\${$var:-${!var}}\""; fi
  done
} > "$DEMO_ENV_FILE"

# The candidates: ALS, item-kNN and the popularity baseline beside them. A learned model goes
# live only above popularity on the hold-out (the gate's baseline floor), and the serving alias
# `default` serves whichever live lists did best (on the simulated log, popularity's).
# RECSYS_NIGHTLY_MODELS, when set, chooses instead.
CONF='{"models": ["mf_als", "baseline_popular", "itemknn"]}'
[ -n "${RECSYS_NIGHTLY_MODELS:-}" ] && CONF='{}'
for back in $(seq $((NIGHTS - 1)) -1 0); do
  DAY="$(python -c "import datetime as d; print(d.date.fromisoformat('$LAST_DAY') - d.timedelta(days=$back))")"
  echo "==> airflow dags test recsys_nightly $DAY (log: $STATE/night-$DAY.log)"
  airflow dags test recsys_nightly "$DAY" -c "$CONF" > "$STATE/night-$DAY.log" 2>&1 || { tail -n 40 "$STATE/night-$DAY.log"; exit 1; }
  grep -q "state=success" "$STATE/night-$DAY.log" || { echo "run for $DAY did not succeed:"; tail -n 40 "$STATE/night-$DAY.log"; exit 1; }
done

echo "==> model registry"
recsys models list --limit 6
QUERY="SELECT model, user_id, rank, item_id, round(score::numeric, 4) AS score, model_version
FROM recsys.live_recommendations
WHERE model = 'default' AND user_id = (SELECT min(user_id) FROM recsys.live_recommendations)
ORDER BY rank;"
echo "==> the published lists, as the serving side reads them:"
echo "$QUERY"
recsys sql "$QUERY"
echo "==> classic D1 / D7 cohort retention (immature cells are empty, not zero):"
recsys sql "SELECT cohort_date, day_n, cohort_size, retained_users, round(rate::numeric, 3) AS rate, is_mature
FROM recsys.retention WHERE retention_kind = 'classic' AND day_n IN (1, 7)
ORDER BY cohort_date DESC, day_n LIMIT 8;"
echo "database: $RECSYS_DATABASE_URL"
echo
echo "To see it in the Airflow UI (scheduler, dag-processor, triggerer, api-server on this state):"
echo "  ./scripts/serve.sh          # prints the URL and the login"
if [ "$DEMO_DATABASE" = embedded ]; then
  echo "The embedded PostgreSQL is still running (data in $PGDATA_DIR). To stop it, and the UI if started:"
  echo "  ./scripts/serve.sh stop"
fi
# the last line: what serving reads now (model 'default'), against popularity
CHOICE="$(recsys sql "SELECT reason FROM recsys.alias_choices WHERE alias = 'default' ORDER BY run_date DESC LIMIT 1" \
  --limit 1 | sed -n '3p' | sed 's/^ *//; s/ *$//')"
echo
echo "Serving (live_recommendations WHERE model = 'default'): $CHOICE"
