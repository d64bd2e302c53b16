"""Request dependencies as ``Annotated`` aliases, in one place."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import AppSettings
from kg.graph import Graph


def get_settings(request: Request) -> AppSettings:
    settings: AppSettings = request.app.state.settings
    return settings


def get_graph(request: Request) -> Graph:
    graph: Graph = request.app.state.graph
    return graph


SettingsDep = Annotated[AppSettings, Depends(get_settings)]
GraphDep = Annotated[Graph, Depends(get_graph)]
