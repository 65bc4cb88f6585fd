"""mdr's token-authentication workaround applies to the Ray series it was tested with, and refuses any other loudly
before it changes anything."""

import os
from importlib import metadata

import pytest

from mdr.patches import UntestedVersionError
from mdr.patches.ray import token_auth_like_ray_start


def test_an_untested_ray_fails_loudly_before_setting_token_auth(tmp_path, monkeypatch):
    token = tmp_path / "auth_token"
    token.write_text("x")
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    installed = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "2.61.0" if name == "ray" else installed(name))
    with pytest.raises(UntestedVersionError, match=r"tested with ray 2\.60\.x; 2\.61\.0 is installed"):
        token_auth_like_ray_start()
    assert "RAY_AUTH_MODE" not in os.environ
