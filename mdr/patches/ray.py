"""mdr's change to Ray's set-up: a driver connecting by address authenticates as `ray start` set the cluster up
(tested with Ray 2.60, whose token authentication this works around)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mdr.patches import require_tested



def token_auth_like_ray_start() -> None:
    """Ray 2.60's `ray start` turns token auth on when a token exists (~/.ray/auth_token, which any local
    `ray.init()` writes), a driver connecting by address does not, and then fails with InvalidAuthToken.
    So: token mode when RAY_AUTH_MODE is unset and a token exists (harmless against a cluster without auth)."""
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or "~/.ray/auth_token").expanduser()
    if "RAY_AUTH_MODE" in os.environ or not (os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file()):
        return
    require_tested("ray", "RAY_AUTH_MODE and the private ray._raylet.Config, set as `ray start` does")
    os.environ["RAY_AUTH_MODE"] = "token"
    if "ray" in sys.modules:  # Ray reads RAY_AUTH_MODE when imported; refresh as ray.init does when it enables auth
        try:
            from ray._raylet import Config

            Config.initialize("")
        except (ImportError, AttributeError):
            pass
