"""The settings: read once from an environment, checked, and carried down to the resources."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from dagster import EnvVar

from okr_metrics.connectors.base import SourceSettings
from okr_metrics.connectors.github.client import GitHubConnector
from okr_metrics.connectors.http import HttpClient
from okr_metrics.connectors.manual.client import ManualConnector
from okr_metrics.connectors.registry import connected_sources
from okr_metrics.pipelines import settings as settings_module
from okr_metrics.pipelines.cli.main import EXIT_USAGE, main
from okr_metrics.pipelines.orchestration.definitions import build_definitions
from okr_metrics.pipelines.orchestration.resources import (
    SANDBOX_TOKEN,
    SourceResource,
    accepted_options,
    build_resources,
    sandbox_resources,
)
from okr_metrics.pipelines.settings import HttpSettings, Settings, SettingsError
from okr_metrics.warehouse.store import DEFAULT_URL

GITHUB = connected_sources()["github"]
JIRA = connected_sources()["jira"]


def test_an_empty_environment_gives_the_defaults():
    settings = Settings.from_env({}, sources=[GITHUB, JIRA])
    assert settings.warehouse_url == DEFAULT_URL
    assert settings.definitions_path == "okr_defs"
    assert settings.trailing_days == 3
    assert settings.http == HttpSettings(max_attempts=5, backoff_seconds=1.0, max_wait_seconds=300)
    assert settings.dagster_home is None
    assert settings.dagster_home_path.is_absolute()
    assert settings.dagster_home_path.parts[-2:] == (".okr", "dagster")
    # A source with nothing set keeps its default base URL and has no credentials.
    assert settings.sources["github"] == SourceSettings(base_url="https://api.github.com")
    assert settings.sources["jira"] == SourceSettings()


def test_every_variable_is_read():
    environ = {
        "OKR_WAREHOUSE_URL": "postgresql+psycopg2://okr:secret@db:5432/okr",
        "OKR_DEFS": "/etc/okr_defs",
        "OKR_TRAILING_DAYS": "7",
        "OKR_HTTP_MAX_ATTEMPTS": "2",
        "OKR_HTTP_BACKOFF_SECONDS": "0.5",
        "OKR_HTTP_MAX_WAIT_SECONDS": "30",
        "DAGSTER_HOME": "/var/dagster",
        "GITHUB_API_URL": "https://github.example.com/api/v3",
        "GITHUB_TOKEN": "ghp-secret",
        "JIRA_BASE_URL": "https://acme.atlassian.net",
        "JIRA_EMAIL": "bot@acme.test",
        "JIRA_API_TOKEN": "jira-secret",
    }
    settings = Settings.from_env(environ, sources=[GITHUB, JIRA])
    assert settings.warehouse_url == environ["OKR_WAREHOUSE_URL"]
    assert settings.definitions_path == "/etc/okr_defs"
    assert settings.trailing_days == 7
    assert settings.http == HttpSettings(2, 0.5, 30.0)
    assert settings.dagster_home == "/var/dagster"
    assert settings.sources["github"] == SourceSettings(
        base_url="https://github.example.com/api/v3", token="ghp-secret"
    )
    assert settings.sources["jira"] == SourceSettings(
        base_url="https://acme.atlassian.net", token="jira-secret", user="bot@acme.test"
    )
    # Never a password or a token in the settings' text.
    shown = repr(settings)
    assert "secret" not in shown and "okr:***@db" in shown


def test_every_connected_source_gets_its_settings_by_default():
    assert set(Settings.from_env({}).sources) == set(connected_sources())


def test_empty_values_count_as_unset(monkeypatch):
    # The suite moves the reports' default folder out of the checkout (tests/conftest.py).
    monkeypatch.setattr(settings_module, "DEFAULT_REPORTS_DIR", ".okr/reports")
    environ = dict.fromkeys(
        ["OKR_WAREHOUSE_URL", "OKR_DEFS", "OKR_TRAILING_DAYS", "OKR_HTTP_MAX_ATTEMPTS"], ""
    )
    assert Settings.from_env(environ, sources=[]) == Settings()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("OKR_TRAILING_DAYS", "abc", "OKR_TRAILING_DAYS must be a whole number of days, got 'abc'"),
        ("OKR_TRAILING_DAYS", "1.5", "OKR_TRAILING_DAYS must be a whole number of days, got '1.5'"),
        ("OKR_TRAILING_DAYS", "0", "OKR_TRAILING_DAYS must be at least 1, got 0"),
        ("OKR_HTTP_MAX_ATTEMPTS", "many", "OKR_HTTP_MAX_ATTEMPTS must be a number, got 'many'"),
        ("OKR_HTTP_MAX_ATTEMPTS", "inf", "OKR_HTTP_MAX_ATTEMPTS must be a finite number"),
        ("OKR_HTTP_BACKOFF_SECONDS", "-1", "OKR_HTTP_BACKOFF_SECONDS must not be negative"),
        ("OKR_HTTP_MAX_WAIT_SECONDS", "nan", "OKR_HTTP_MAX_WAIT_SECONDS must be a number"),
        ("OKR_WAREHOUSE_URL", "not a url", "OKR_WAREHOUSE_URL is not a database URL"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(variable, value, message):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value}, sources=[])
    text = str(raised.value)
    assert message in text and len(text.splitlines()) == 1


def test_every_bad_value_is_named_in_the_one_line():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"OKR_TRAILING_DAYS": "x", "OKR_HTTP_MAX_ATTEMPTS": "y"}, sources=[])
    (line,) = str(raised.value).splitlines()
    assert "OKR_TRAILING_DAYS" in line and "OKR_HTTP_MAX_ATTEMPTS" in line


def test_a_warehouse_url_is_never_echoed_in_its_error():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"OKR_WAREHOUSE_URL": "::secret-password::"}, sources=[])
    assert "secret-password" not in str(raised.value)


@pytest.mark.parametrize("command", [["lint"], ["run"], ["backfill", "2026-Q4"]])
def test_the_cli_reports_a_bad_value_in_one_line(monkeypatch, capsys, command):
    monkeypatch.setenv("OKR_TRAILING_DAYS", "abc")
    assert main(command) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"okr {command[0]}: OKR_TRAILING_DAYS must be a whole number of days, got 'abc'"]


def test_settings_are_frozen():
    settings = Settings.from_env({}, sources=[GITHUB])
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.trailing_days = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.sources["github"] = SourceSettings()  # type: ignore[index]
    assert settings.with_definitions("elsewhere").definitions_path == "elsewhere"
    assert settings.with_definitions(None) is settings


def test_the_http_options_are_httpclient_arguments():
    parameters = inspect.signature(HttpClient.__init__).parameters
    options = HttpSettings(2, 0.5, 30.0).client_options()
    assert set(options) <= set(parameters)
    assert options == {"max_attempts": 2, "backoff_base": 0.5, "max_wait": 30.0}


def test_the_retry_settings_reach_the_http_client():
    resource = SourceResource(
        source="github",
        base_url="http://127.0.0.1:9",
        token="t",
        max_attempts=2,
        backoff_seconds=0.25,
        max_wait_seconds=9,
    )
    connector, skip_reason = resource.connector(GitHubConnector)
    assert skip_reason is None
    client = connector.client
    assert (client.max_attempts, client.backoff_base, client.max_wait) == (2, 0.25, 9)
    # A connector without an HTTP client takes none of them.
    assert accepted_options(ManualConnector.from_settings, resource.client_options()) == {}
    manual, _ = SourceResource(source="manual").connector(ManualConnector)
    assert isinstance(manual, ManualConnector)


def test_a_source_without_credentials_is_skipped_with_the_reason():
    connector, skip_reason = SourceResource(source="github").connector(GitHubConnector)
    assert connector is None and skip_reason == "GITHUB_API_URL, GITHUB_TOKEN not set"


def test_secrets_from_the_environment_reach_dagster_as_names(monkeypatch):
    url = "postgresql+psycopg2://okr:pw@db/okr"
    monkeypatch.setenv("OKR_WAREHOUSE_URL", url)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-secret")
    settings = Settings.from_env(sources=[GITHUB])
    resources = build_resources(settings, [GITHUB])
    assert isinstance(resources["warehouse"].url, EnvVar)
    assert resources["warehouse"].url == "OKR_WAREHOUSE_URL"
    github = resources["github_source"]
    assert isinstance(github.token, EnvVar) and github.token == "GITHUB_TOKEN"
    assert github.base_url == "https://api.github.com" and not isinstance(github.base_url, EnvVar)
    # A value the settings hold but the environment does not is passed as it is.
    elsewhere = dataclasses.replace(settings, warehouse_url="sqlite:///other.db")
    assert build_resources(elsewhere, [])["warehouse"].url == "sqlite:///other.db"


def test_the_sandbox_resources_aim_every_source_at_the_sandbox(monkeypatch):
    monkeypatch.delenv("OKR_WAREHOUSE_URL", raising=False)
    monkeypatch.setenv("GITHUB_API_URL", "https://github.example.com")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-real")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/secrets/ga.json")
    settings = Settings.from_env()
    swapped = sandbox_resources(settings, "http://127.0.0.1:5555")
    definitions = build_definitions(settings, resources=swapped)
    for name, source in connected_sources().items():
        env = source.connector_class().env
        resource = definitions.resources[f"{name}_source"]
        if env.base_url:
            assert resource.base_url == "http://127.0.0.1:5555", name
        if env.token:
            assert resource.token == SANDBOX_TOKEN, name
        assert resource.credentials_file is None
    # The settings are untouched: only the resources were swapped.
    assert settings.sources["github"].token == "ghp-real"
    assert definitions.resources["warehouse"].url == settings.warehouse_url
