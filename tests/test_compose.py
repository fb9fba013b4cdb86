"""docker-compose.yml cannot be run here (no Docker engine): check its structure
against the settings the end-to-end tests run Airflow with, so it cannot rot unseen."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
AIRFLOW_SERVICES = {"airflow-api-server": "airflow api-server", "airflow-scheduler": "airflow scheduler",
                    "airflow-dag-processor": "airflow dag-processor", "airflow-triggerer": "airflow triggerer",
                    "airflow-worker": "airflow celery worker"}


def _compose():
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_services_and_commands():
    services = _compose()["services"]
    assert {"postgres", "redis", "airflow-init", *AIRFLOW_SERVICES} <= set(services)
    for name, command in AIRFLOW_SERVICES.items():
        assert command in services[name]["command"], name
        assert "scripts/_env.sh" in services[name]["command"]  # installs the pinned project first
    init = services["airflow-init"]["command"]
    assert "airflow db migrate" in init and "recsys db upgrade" in init and "pools set recsys_training" in init
    assert services["redis"]["profiles"] == ["celery"] and services["airflow-worker"]["profiles"] == ["celery"]
    assert "deploy" not in services["airflow-worker"]  # scaled with --scale, not pinned to one replica


def test_airflow_services_share_settings_and_artifacts():
    services = _compose()["services"]
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        env = services[name]["environment"]
        # the variables the e2e tests (tests/e2e/airflow_stack.py) set for a working deployment
        for key in ("AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "AIRFLOW__API_AUTH__JWT_SECRET",
                    "AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND",
                    "RECSYS_DATABASE_URL", "RECSYS_ARTIFACT_DIR", "AIRFLOW__CORE__PLUGINS_FOLDER"):
            assert key in env, (name, key)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "${RECSYS_EXECUTOR:-LocalExecutor}"
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].endswith("/execution/")
        mounts = {v.split(":")[1] for v in services[name]["volumes"]}
        assert env["RECSYS_ARTIFACT_DIR"] in mounts  # every worker sees the same artifacts
        assert env["AIRFLOW__CORE__DAGS_FOLDER"].startswith("/opt/recsys/src")
    assert "artifacts" in _compose()["volumes"]


def test_database_urls_point_at_the_compose_postgres():
    compose = _compose()
    pg = compose["services"]["postgres"]["environment"]
    env = compose["services"]["airflow-scheduler"]["environment"]
    creds = f"{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432"
    assert creds in env["RECSYS_DATABASE_URL"] and env["RECSYS_DATABASE_URL"].endswith("/" + pg["POSTGRES_DB"])
    assert creds in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    init_sql = (REPO / "scripts" / "compose-init-db.sql").read_text()
    assert "CREATE DATABASE airflow" in init_sql and env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("/airflow")


def test_the_spark_profile_runs_a_master_and_workers_that_the_dag_reaches():
    compose = _compose()
    services = compose["services"]
    master, worker = services["spark-master"], services["spark-worker"]
    assert master["profiles"] == worker["profiles"] == ["spark"]
    assert "org.apache.spark.deploy.master.Master" in master["command"] and "--port 7077" in master["command"]
    assert "org.apache.spark.deploy.worker.Worker spark://spark-master:7077" in worker["command"]
    assert "deploy" not in worker  # scaled with --scale spark-worker=N
    for service in (master, worker):
        # Java from the OS packages, then the project's pinned venv (pyspark, numpy, pandas, pyarrow)
        assert service["command"].index("scripts/install-java.sh") < service["command"].index("scripts/_env.sh")
        assert {v.split(":")[1] for v in service["volumes"]} >= {"/opt/recsys/artifacts", "/opt/recsys/venv"}
    # every Airflow container submits to that master through the spark_default connection
    import json

    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        env = services[name]["environment"]
        connection = json.loads(env["AIRFLOW_CONN_SPARK_DEFAULT"])
        assert (connection["conn_type"], connection["host"], connection["port"]) == ("spark", "spark://spark-master",
                                                                                    7077)
        assert env["RECSYS_MF_BACKEND"] == "${RECSYS_MF_BACKEND:-torch}"
        assert env["RECSYS_VENV"] == services["spark-worker"]["environment"]["RECSYS_VENV"]
    # the spark-submit client needs a Java too: _env.sh installs it when the backend is spark
    assert "install-java.sh" in (REPO / "scripts" / "_env.sh").read_text()
