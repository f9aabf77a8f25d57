"""Settings: precedence of sources, validation messages naming the setting, redaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gis_core.errors import ConfigurationError
from gis_core.settings import load_settings
from webmap.cli import main


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("URBANGIS_"):
            monkeypatch.delenv(name)


def test_defaults_describe_the_demo_municipality() -> None:
    settings = load_settings()
    assert settings.storage_srid == 3844
    assert settings.uat_siruta == 54975
    assert (settings.host, settings.port) == ("127.0.0.1", 5000)
    assert settings.embedded


def test_file_overrides_defaults_and_environment_overrides_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "urbangis.toml"
    config.write_text('port = 8080\nhost = "0.0.0.0"\nuat_siruta = 40198\n')
    monkeypatch.setenv("URBANGIS_CONFIG", str(config))
    monkeypatch.setenv("URBANGIS_PORT", "9090")
    settings = load_settings()
    assert settings.port == 9090
    assert settings.host == "0.0.0.0"
    assert settings.uat_siruta == 40198


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("URBANGIS_PORT", "not-a-port", "URBANGIS_PORT"),
        ("URBANGIS_PORT", "70000", "URBANGIS_PORT"),
        ("URBANGIS_STORAGE_SRID", "4326", "URBANGIS_STORAGE_SRID"),
        ("URBANGIS_STORAGE_SRID", "999999", "URBANGIS_STORAGE_SRID"),
        ("URBANGIS_UAT_SIRUTA", "-5", "URBANGIS_UAT_SIRUTA"),
        ("URBANGIS_DATABASE_URL", "mysql://x@y/z", "URBANGIS_DATABASE_URL"),
        ("URBANGIS_NO_SUCH_THING", "1", None),
    ],
)
def test_invalid_values_fail_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str | None
) -> None:
    monkeypatch.setenv(variable, value)
    if named is None:  # unknown environment variables are ignored, as tools do
        load_settings()
        return
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert named in str(caught.value)


def test_unknown_key_in_config_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "urbangis.toml"
    config.write_text("prot = 8080\n")
    monkeypatch.setenv("URBANGIS_CONFIG", str(config))
    with pytest.raises(ConfigurationError, match="URBANGIS_PROT"):
        load_settings()


def test_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("URBANGIS_CONFIG", "/nonexistent/urbangis.toml")
    with pytest.raises(ConfigurationError, match="URBANGIS_CONFIG"):
        load_settings()


def test_config_show_redacts_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("URBANGIS_DATABASE_URL", "postgresql://city:s3cret-pw@db.example:5432/gis")
    monkeypatch.setenv("URBANGIS_SECRET_KEY", "another-secret")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "s3cret-pw" not in result.output
    assert "another-secret" not in result.output
    assert "city:***@db.example:5432/gis" in result.output
    assert "storage_srid" in result.output


def test_cli_reports_bad_setting_and_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("URBANGIS_PORT", "abc")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 2
    assert "URBANGIS_PORT" in result.output
