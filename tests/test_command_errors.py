"""Whatever a user gets wrong, every command says it in one `Error:` line and exits non-zero."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

COMMAND = Path(sys.executable).with_name("agents-api")


def run(*arguments, cwd, **environment):
    env = {name: value for name, value in os.environ.items() if not name.startswith("AGENTS_")}
    return subprocess.run(
        [str(COMMAND), *arguments],
        cwd=cwd,
        env={**env, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_error_line(result, *words):
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize("command", [["init-db"], ["serve"], ["export"]])
def test_a_database_path_under_proc_is_one_line(tmp_path, command):
    result = run(*command, cwd=tmp_path, AGENTS_DATABASE_URL="sqlite:////proc/x/agents.db")
    assert_one_error_line(result, "/proc/x/agents.db")


@pytest.mark.parametrize("command", [["init-db"], ["serve"]])
def test_a_database_path_under_a_file_is_one_line(tmp_path, command):
    (tmp_path / "a-file").write_text("not a folder")
    result = run(*command, cwd=tmp_path, AGENTS_DATABASE_URL="sqlite:///a-file/agents.db")
    assert_one_error_line(result, "a-file/agents.db")


@pytest.mark.parametrize(
    ("arguments", "environment", "words"),
    [
        (["serve"], {"AGENTS_LOG_LEVEL": "loud"}, ["AGENTS_LOG_LEVEL", "'loud'"]),
        (["serve", "--bind", "notaport"], {}, ["--bind", "HOST:PORT", "'notaport'"]),
        (["serve", "--bind", "127.0.0.1:99999"], {}, ["--bind", "'127.0.0.1:99999'"]),
        (["serve"], {"AGENTS_BIND": "localhost"}, ["AGENTS_BIND", "HOST:PORT"]),
        (["check"], {"AGENTS_MAX_BODY_BYTES": "1_000"}, ["AGENTS_MAX_BODY_BYTES", "whole number"]),
        (["serve"], {"AGENTS_THREADS": "0"}, ["AGENTS_THREADS", "at least 1"]),
    ],
)
def test_a_bad_setting_or_argument_is_one_line(tmp_path, arguments, environment, words):
    result = run(*arguments, cwd=tmp_path, **environment)
    assert_one_error_line(result, *words)
    assert not (tmp_path / "data").exists()


def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--bind", f"127.0.0.1:{port}", cwd=tmp_path)
    assert_one_error_line(result, f"127.0.0.1:{port}", "in use")


def test_the_version_is_the_installed_release(tmp_path):
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("agents-api ")
    assert result.stdout.split()[1][0].isdigit()
