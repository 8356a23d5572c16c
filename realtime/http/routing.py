"""A route that owns its path, for the routes outside the API (probes, demo sign-in)."""

from __future__ import annotations

from starlette.routing import Match, Route
from starlette.types import Scope


class OwnedRoute(Route):
    """A request for this path with a method the route does not take answers 405 with the
    route's own `Allow` (Starlette's `Route` would leave it to the static files, a 404)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        return (Match.FULL if match is Match.PARTIAL else match), child_scope
