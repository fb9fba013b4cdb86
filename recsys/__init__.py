"""recsys-airflow: nightly retraining of recommenders scheduled by Airflow.

Everything here is plain Python that the DAG, the CLI and the tests call alike;
nothing in this package imports Airflow.
"""

__version__ = "0.1.0"
