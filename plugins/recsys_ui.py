"""The "Recsys" page in the Airflow UI: a FastAPI app on the api-server plus a nav entry.

Only wiring lives here: the page and its charts are rendered by `recsys.ui`
(plain functions, server-side SVG, no JavaScript). Every route requires an
authenticated Airflow user: a `Authorization: Bearer` JWT, or the UI's `_token`
cookie, which the browser sends when the UI shows the page in its frame.

Routes, under /recsys:
    GET /                 the whole page (what the nav entry shows); ?user=KEY adds that
                          user's live lists, with titles
    GET /panels/{name}    one panel as an HTML fragment (names: recsys.ui.page.PANELS)

The data database comes from RECSYS_DATABASE_URL or, when that is unset, the
Airflow connection `recsys_db`, as in dags/recsys_nightly.py.
"""

from __future__ import annotations

import os

from airflow.api_fastapi.core_api.security import requires_authenticated
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse

URL_PREFIX = "/recsys"

# No /docs or /openapi.json: they would be served without authentication.
app = FastAPI(title="Recsys", docs_url=None, redoc_url=None, openapi_url=None,
              dependencies=[Depends(requires_authenticated())])


def _settings():
    """Settings from RECSYS_* variables; the `recsys_db` connection supplies the URL when unset."""
    from recsys.config import Settings

    if "RECSYS_DATABASE_URL" in os.environ:
        return Settings.from_env()
    from airflow.sdk import Connection

    uri = Connection.get("recsys_db").get_uri()
    return Settings.from_env(database_url="postgresql+psycopg2://" + uri.split("://", 1)[1])


def _render(render):
    from recsys.errors import DatabaseUnreachableError, SchemaMissingError

    try:
        return render(_settings())
    except (DatabaseUnreachableError, SchemaMissingError) as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc


@app.get("/", response_class=HTMLResponse)
def recsys_page(user: str | None = None) -> str:
    """The Recsys page: every panel, charts inline as SVG; `user` shows that user's live lists."""
    from recsys.ui.page import render_page

    return _render(lambda s: render_page(s, query={"user": user} if user else None))


@app.get("/panels/{name}", response_class=HTMLResponse)
def recsys_panel(name: str, user: str | None = None) -> str:
    """One panel of the page as an HTML fragment."""
    from recsys.ui.page import PANELS, render_panel

    if name not in PANELS:
        raise HTTPException(status_code=404, detail=f"unknown panel {name!r}; known: {', '.join(PANELS)}")
    return _render(lambda s: render_panel(name, s, {"user": user} if user else None))


class RecsysPlugin(AirflowPlugin):
    name = "recsys"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Recsys"}]
    external_views = [{
        "name": "Recsys",
        "href": f"{URL_PREFIX}/",
        "destination": "nav",
        "url_route": "recsys",
        "nav_top_level": True,  # its own entry in the nav bar, not under "Plugins"
    }]
