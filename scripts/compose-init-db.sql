-- docker-compose: Airflow's metadata database beside the recsys data database.
CREATE DATABASE airflow OWNER recsys;
