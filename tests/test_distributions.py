"""The two distributions as users install them: the service into an environment of its own, and
the pytest plugin into a client project's, beside the client's own app.py, models.py,
config.py and errors.py.

Built once per run from this checkout into wheels; installed into a fresh virtual environment.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.live_server import ROOT

# A client project with modules named like the service's own, as most Flask projects have.
USER_PROJECT = {
    "app.py": "def create_app():\n    return 'the user app'\n",
    "models.py": "OWNER = 'the user'\n",
    "config.py": "OWNER = 'the user'\n",
    "errors.py": "class ApiError(Exception):\n    OWNER = 'the user'\n",
    "test_user.py": textwrap.dedent(
        """
        import json
        import logging
        import urllib.request

        import app
        import config
        import errors
        import models


        def test_the_users_modules_are_the_users(agents_api):
            assert app.create_app() == "the user app"
            assert (models.OWNER, config.OWNER, errors.ApiError.OWNER) == ("the user",) * 3


        def test_the_fixture_serves_the_api(agents_api):
            request = urllib.request.Request(
                agents_api.url + "/agents", data=json.dumps({"name": "Support"}).encode(),
                headers={**agents_api.headers, "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request) as response:
                assert response.status == 201
            assert agents_api.requests("POST", "/agents")[0]["status"] == 201


        def test_the_users_log_records_keep_their_file_and_line(agents_api, caplog):
            caplog.set_level(logging.INFO)
            logging.getLogger("user").info("hello")
            [record] = caplog.records
            assert record.filename == "test_user.py" and record.lineno > 0
            assert record.funcName == "test_the_users_log_records_keep_their_file_and_line"
        """
    ),
}


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def build_leftovers():
    """What a build backend may leave behind in a source tree."""
    found = set()
    for source in (ROOT, ROOT / "plugin", ROOT / "plugin" / "src"):
        found |= {path for name in ("build", "dist") if (path := source / name).exists()}
        found |= set(source.glob("*.egg-info"))
    return found


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wheels")
    before = build_leftovers()
    for source in (ROOT, ROOT / "plugin"):
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--wheel-dir",
                str(folder),
                str(source),
            ]
        )
    assert build_leftovers() == before, "building left files in the checkout"
    return sorted(folder.glob("*.whl"))


@pytest.fixture(scope="module")
def environment(wheels, tmp_path_factory):
    """A fresh virtual environment with both wheels installed (dependencies from the index)."""
    folder = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", str(folder)])
    run(
        [
            str(folder / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *map(str, wheels),
        ]
    )
    return folder


def test_building_the_wheels_leaves_nothing_in_the_checkout(wheels):
    assert [wheel.name.split("-")[0] for wheel in wheels] == ["agents_api", "pytest_agents_api"]


def test_the_plugin_wheel_owns_one_top_level_name_and_imports_nothing_of_the_service(wheels):
    import zipfile

    plugin = zipfile.ZipFile(wheels[1])
    top_level = {name.split("/")[0] for name in plugin.namelist() if ".dist-info" not in name}
    assert top_level == {"pytest_agents_api"}
    sources = "".join(
        plugin.read(name).decode() for name in plugin.namelist() if name.endswith(".py")
    )
    for service_module in ("app", "models", "config", "errors", "schemas", "storage"):
        assert f"import {service_module}" not in sources
        assert f"from {service_module} " not in sources


def test_a_user_project_with_modules_named_like_the_services_uses_the_fixture(
    environment, tmp_path
):
    for name, text in USER_PROJECT.items():
        (tmp_path / name).write_text(text)
    env = {name: value for name, value in os.environ.items() if not name.startswith("AGENTS_")}
    env["PATH"] = f"{environment / 'bin'}:/usr/bin:/bin"
    env.pop("PYTHONPATH", None)

    result = run(
        [str(environment / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
    )

    assert "3 passed" in result.stdout


def test_the_installed_service_runs_from_any_folder_with_the_checkouts_settings(
    environment, tmp_path
):
    installed = run(
        [str(environment / "bin" / "python"), "-c", "import serving; print(serving.__file__)"],
        cwd=tmp_path,
    ).stdout.strip()
    assert Path(installed).read_bytes() == (ROOT / "serving.py").read_bytes()
    assert not Path(installed).is_relative_to(ROOT)
    version = run([str(environment / "bin" / "agents-api"), "--version"], cwd=tmp_path)
    assert version.stdout.strip() == "agents-api " + _checkout_version()

    env = {name: value for name, value in os.environ.items() if not name.startswith("AGENTS_")}
    env["AGENTS_DATABASE_URL"] = "sqlite:///here/agents.db"
    log = tmp_path / "serve.log"
    with open(log, "w") as output:
        server = subprocess.Popen(
            [str(environment / "bin" / "agents-api"), "serve", "--bind", "127.0.0.1:0"],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        text = _wait_for(log, "Listening at:")
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert f"Database: {tmp_path / 'here' / 'agents.db'}" in text
    assert "Using worker: workers.ThreadWorker" in text  # the service's own, installed too
    assert (tmp_path / "here" / "agents.db").is_file()


def _checkout_version():
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _wait_for(log, text, timeout=30):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text()
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(log.read_text())
