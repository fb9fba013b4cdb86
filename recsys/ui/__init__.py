"""The Recsys page of the Airflow UI, as plain functions: data, SVG charts, HTML.

Nothing here imports Airflow; `plugins/recsys_ui.py` mounts `page.render_page`
and `page.render_panel` on the api-server behind Airflow's authentication.
"""
