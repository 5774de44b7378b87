"""deploy/ against docs/deploy.md: the units run the page's commands, the environment
template holds every variable with a comment and no secret, dagster.yaml loads, and the
units and the compose file pass their own tools' checks where those are installed."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml
from deploy_page import BIN, DEPLOY, ENV_EXAMPLE, PAGE, REPO, commands, example_variables

SERVER_VENV_BIN = "/opt/okr-metrics/.venv/bin/"
# unit -> the page's block it runs
UNIT_COMMANDS = {
    "okr-metrics-code.service": "code-server",
    "okr-metrics-daemon.service": "daemon",
    "okr-metrics-webserver.service": "webserver",
    "okr-metrics-health.service": "health",
}
SECRET = re.compile(r"(TOKEN|PASSWORD|CREDENTIALS)$|^OKR_WAREHOUSE_URL$")


def exec_start(unit: str) -> str:
    lines = (DEPLOY / unit).read_text(encoding="utf-8").splitlines()
    (command,) = [
        line.removeprefix("ExecStart=") for line in lines if line.startswith("ExecStart=")
    ]
    return command


def as_shell(command: str) -> str:
    """A unit's ExecStart as the page writes it: the venv activated, "$VAR" for ${VAR}."""
    assert command.startswith(SERVER_VENV_BIN), command
    return re.sub(r"\$\{(\w+)\}", r'"$\1"', command.removeprefix(SERVER_VENV_BIN))


@pytest.mark.parametrize("unit", sorted(UNIT_COMMANDS))
def test_each_unit_runs_the_command_the_page_shows(unit):
    assert as_shell(exec_start(unit)) == commands()[UNIT_COMMANDS[unit]]


def test_the_purge_and_dashboard_units_run_what_the_page_says():
    page = PAGE.read_text(encoding="utf-8")
    assert (
        as_shell(exec_start("okr-metrics-purge.service")) == "okr purge-runs --older-than-days 90"
    )
    assert "`okr purge-runs --older-than-days 90`" in page
    assert as_shell(exec_start("okr-metrics-dashboard.service")) == (
        "okr serve --host 127.0.0.1 --port 8080"
    )
    assert "127.0.0.1:8080" in page


def test_every_unit_reads_the_environment_file_and_runs_as_okr():
    units = sorted(DEPLOY.glob("*.service"))
    assert len(units) == 6
    for unit in units:
        text = unit.read_text(encoding="utf-8")
        assert "EnvironmentFile=/etc/okr-metrics/okr-metrics.env\n" in text, unit.name
        assert "User=okr\n" in text and "WorkingDirectory=/opt/okr-metrics\n" in text, unit.name


def test_the_units_pass_systemd_analyze_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    env_file = tmp_path / "okr-metrics.env"
    shutil.copyfile(ENV_EXAMPLE, env_file)
    names = []
    for unit in sorted(DEPLOY.glob("okr-metrics*")):
        if unit.suffix not in (".service", ".timer", ".target"):
            continue
        # The server's paths, made to exist here: the venv and the clone are this repository's.
        text = unit.read_text(encoding="utf-8")
        text = text.replace(SERVER_VENV_BIN, f"{BIN}/").replace("/opt/okr-metrics", str(REPO))
        text = text.replace("/etc/okr-metrics/okr-metrics.env", str(env_file))
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
        names.append(unit.name)
    result = subprocess.run(
        ["systemd-analyze", "verify", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # It warns (unknown keys, bad values) on stderr and still exits 0.
    assert (result.returncode, result.stderr) == (0, "")


def test_the_environment_template_comments_every_variable_and_holds_no_secret():
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if not re.match(r"^[A-Z]", line):
            continue
        above = number - 1
        while above >= 0 and re.match(r"^[A-Z]", lines[above]):
            above -= 1
        assert above >= 0 and lines[above].startswith("# "), f"line {number + 1}: {line}"
    variables = example_variables()
    secrets = {name: value for name, value in variables.items() if SECRET.search(name)}
    assert set(secrets) >= {"DAGSTER_PG_PASSWORD", "GITHUB_TOKEN", "OKR_WAREHOUSE_URL"}
    assert all(value == "" for value in secrets.values()), secrets


def test_the_environment_template_holds_every_variable_of_the_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n\n", 3)[2]
    documented = set()
    for row in table.splitlines()[2:]:
        documented |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1]))
    assert {"OKR_SCHEDULE_ON", "OKR_SCHEDULE_CRON", "OKR_WAREHOUSE_URL"} <= documented
    # DAGSTER_PG_URL is the one-URL alternative to the parts deploy/dagster.yaml reads.
    assert documented - set(example_variables()) == {"DAGSTER_PG_URL"}


def test_the_production_instance_settings_load_as_written(tmp_path, monkeypatch):
    from dagster import DagsterInstance
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes import serialize_value

    for name, value in {
        "DAGSTER_PG_HOST": "db.internal",
        "DAGSTER_PG_PORT": "6432",
        "DAGSTER_PG_USER": "okr_dagster",
        "DAGSTER_PG_PASSWORD": "s3cret",
        "DAGSTER_PG_DB": "okr_dagster",
    }.items():
        monkeypatch.setenv(name, value)
    shutil.copyfile(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    # Dagster's own schema check: an unknown or misspelt key fails here.
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["retention"] == {"schedule": {"purge_after_days": 90}}
    assert config["run_retries"]["max_retries"] == 1
    assert config["run_monitoring"]["max_runtime_seconds"] == 43200
    postgres = config["storage"]["postgres"]["postgres_db"]
    assert postgres["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert postgres["scheme"] == "postgresql+psycopg2"
    # What Dagster hands to run workers names the variables, never the password.
    reference = serialize_value(InstanceRef.from_dir(str(tmp_path)))
    assert "DAGSTER_PG_PASSWORD" in reference and "s3cret" not in reference

    monkeypatch.delenv("DAGSTER_PG_HOST")
    with pytest.raises(Exception, match="DAGSTER_PG_HOST"):
        DagsterInstance.from_config(str(tmp_path))


def test_the_workspace_points_at_the_code_server():
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text(encoding="utf-8"))
    assert workspace == {
        "load_from": [
            {
                "grpc_server": {
                    "host": {"env": "OKR_CODE_SERVER_HOST"},
                    "port": {"env": "OKR_CODE_SERVER_PORT"},
                    "location_name": "okr-metrics",
                }
            }
        ]
    }
    assert "--location-name okr-metrics" in commands()["code-server"]


def compose_tool() -> list[str] | None:
    for tool in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(tool[0]) is None:
            continue
        probe = subprocess.run([*tool, "version"], capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            return tool
    return None


def test_the_compose_services_run_the_pages_commands():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "code", "daemon", "webserver"}
    blocks = commands()
    code = blocks["code-server"].replace('"$OKR_CODE_SERVER_HOST"', "0.0.0.0")
    assert services["code"]["command"] == code.replace(
        '"$OKR_CODE_SERVER_PORT"', "${OKR_CODE_SERVER_PORT:-4266}"
    )
    assert " ".join(services["daemon"]["command"]) == blocks["daemon"]
    assert services["webserver"]["command"] == blocks["webserver"].replace(
        "127.0.0.1", "0.0.0.0"
    ).replace('"$OKR_WEBSERVER_PORT"', "${OKR_WEBSERVER_PORT:-3000}")
    assert services["migrate"]["command"] == ["dagster", "instance", "migrate"]
    assert "dagster instance migrate" in blocks["instance"]


def test_docker_compose_config_accepts_the_compose_file(tmp_path):
    tool = compose_tool()
    if tool is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    (tmp_path / "deploy").mkdir()
    (tmp_path / "okr_defs").mkdir()
    for name in ("compose.yaml", "postgres-init.sql", "Dockerfile"):
        shutil.copyfile(DEPLOY / name, tmp_path / "deploy" / name)
    env = ENV_EXAMPLE.read_text(encoding="utf-8").replace(
        "DAGSTER_PG_PASSWORD=\n", "DAGSTER_PG_PASSWORD=pw\n"
    )
    (tmp_path / "deploy" / "okr-metrics.env").write_text(env, encoding="utf-8")
    result = subprocess.run(
        [*tool, "-f", "deploy/compose.yaml", "--env-file", "deploy/okr-metrics.env", "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)["services"]
    assert resolved["daemon"]["environment"]["DAGSTER_PG_HOST"] == "postgres"
    assert resolved["code"]["environment"]["OKR_SCHEDULE_CRON"] == "0 2 * * *"
    assert resolved["webserver"]["ports"]
    # Without the password the file refuses to start, naming the variable.
    blank = env.replace("DAGSTER_PG_PASSWORD=pw\n", "DAGSTER_PG_PASSWORD=\n")
    (tmp_path / "deploy" / "okr-metrics.env").write_text(blank, encoding="utf-8")
    refused = subprocess.run(
        [*tool, "-f", "deploy/compose.yaml", "--env-file", "deploy/okr-metrics.env", "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and "DAGSTER_PG_PASSWORD" in refused.stderr
