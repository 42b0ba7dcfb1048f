"""The operator's commands: serve, init-db, export, import, backup and check.

They run as `agents-api COMMAND` (see cli.py) and as `flask --app app COMMAND`. Each says what
went wrong on stderr and exits non-zero when it cannot do what was asked.
"""

import json
import os
import sqlite3
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from marshmallow import ValidationError

import models
from config import ConfigError, exposure_refusal, load_settings, parse_api_keys, sqlite_path
from routes.jsonio import strict_json_loads
from errors import error_sentences
from schemas import EXPORT_FILE, EXPORT_FORMAT, load_export

GUNICORN_CONFIG = Path(__file__).with_name("gunicorn.conf.py")


@click.command("serve")
@click.option(
    "--bind", metavar="HOST:PORT",
    help="Address to listen on  [default: AGENTS_BIND, 127.0.0.1:8000]",
)
@click.option(
    "--workers", type=click.IntRange(min=1),
    help="Worker processes  [default: two per core, at most 8]",
)
@click.option(
    "--threads", type=click.IntRange(min=1), help="Threads per worker  [default: AGENTS_THREADS, 2]"
)
@click.option(
    "--allow-unauthenticated", is_flag=True,
    help="Listen beyond loopback without AGENTS_API_KEYS: anyone who reaches the port can change "
    "every agent.",
)
@click.option(
    "--test-mode", is_flag=True,
    help="Serve as a test double: the /_test routes and namespaces (AGENTS_TEST_MODE=1).",
)
def serve_command(bind, workers, threads, allow_unauthenticated, test_mode):
    """Serve the API with gunicorn and gunicorn.conf.py; SIGTERM stops it gracefully."""
    try:
        settings = load_settings()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    bind = bind or settings["BIND"]
    allowed = allow_unauthenticated or settings["ALLOW_UNAUTHENTICATED"]
    refusal = exposure_refusal([bind], parse_api_keys(settings["API_KEYS"]), allowed)
    if refusal:
        raise click.UsageError(refusal)
    if not GUNICORN_CONFIG.is_file():
        raise click.ClickException(
            f"{GUNICORN_CONFIG} is missing: serve runs from a checkout set up by script/bootstrap."
        )
    environment = {**os.environ, "AGENTS_BIND": bind}
    if allowed:
        environment["AGENTS_ALLOW_UNAUTHENTICATED"] = "1"
    if workers:
        environment["AGENTS_WORKERS"] = str(workers)
    if threads:
        environment["AGENTS_THREADS"] = str(threads)
    if test_mode:
        environment["AGENTS_TEST_MODE"] = "1"
    command = [
        sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG), "app:create_app()",
    ]
    # gunicorn takes this process's place, so a supervisor's signals reach its master directly.
    os.execve(sys.executable, command, environment)


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Create the database file and its tables, or migrate it to this release's schema."""
    _prepare_database()
    click.echo(
        f"The database at {models.db.database} is ready (schema version {models.SCHEMA_VERSION})."
    )


@click.command("export")
@click.argument(
    "output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default="-"
)
@click.option(
    "--include-secrets", is_flag=True, help="Write each agent's webhook secret into the file too."
)
@with_appcontext
def export_command(output, include_secrets):
    """Write every agent, with its id and timestamps, as JSON to OUTPUT (default: stdout)."""
    _existing_database()
    _prepare_database()
    with models.db.connection_context():
        agents = models.export_agents(include_secrets=include_secrets)
    document = {
        "format": EXPORT_FORMAT,
        "version": 1,
        "exported_at": models.utc_timestamp(),
        "schema_version": models.SCHEMA_VERSION,
        "agents": agents,
    }
    text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
    if str(output) == "-":
        click.echo(text, nl=False)
    else:
        _write_whole_file(output, text, private=include_secrets)
    click.echo(f"Exported {len(agents)} agent(s).", err=True)


@click.command("import")
@click.argument("source", type=click.File("rb"))
@click.option(
    "--replace", is_flag=True, help="Delete every stored agent first, in the same transaction."
)
@click.option(
    "--allow-missing-secrets", is_flag=True,
    help="Store agents whose webhook secret the file does not carry without one.",
)
@with_appcontext
def import_command(source, replace, allow_missing_secrets):
    """Store the agents of an export file, all or none, keeping their ids and timestamps."""
    document = _read_json(source)
    try:
        agents = load_export(document, allow_missing_secrets)
    except ValidationError as error:
        problems = error_sentences(error.messages, EXPORT_FILE).values()
        sentences = [sentence for group in problems for sentence in group]
        shown = "\n  ".join(sentences[:20])
        more = f"\n  ...and {len(sentences) - 20} more." if len(sentences) > 20 else ""
        raise click.ClickException(
            f"{source.name} is not a valid export; nothing was imported:\n  {shown}{more}"
        ) from None
    _prepare_database()
    try:
        with models.db.connection_context():
            count = models.import_agents(agents, replace=replace)
    except models.AgentIdsTaken as error:
        raise click.ClickException(
            f"{len(error.indexes)} agent(s) in {source.name} are already stored "
            f"(first: {agents[error.indexes[0]]['id']}); nothing was imported. "
            "Pass --replace to replace every stored agent."
        ) from None
    click.echo(f"Imported {count} agent(s).")


@click.command("backup")
@click.argument("target", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--force", is_flag=True, help="Replace TARGET if it exists.")
@with_appcontext
def backup_command(target, force):
    """Copy the database to TARGET with SQLite's online backup; safe while serving."""
    source = Path(_existing_database())
    if target.exists() and (target.resolve() == source.resolve() or not force):
        raise click.ClickException(
            f"{target} exists; pass --force to replace it (never the database itself)."
        )
    if not target.parent.is_dir():
        raise click.ClickException(f"The folder {target.parent} does not exist.")
    try:
        integrity = models.backup_database(target)
    except (OSError, sqlite3.Error) as error:
        raise click.ClickException(f"The backup to {target} failed: {error}") from None
    if integrity != ["ok"]:
        raise click.ClickException(
            f"The copy failed its integrity check ({integrity[0]}); {target} was not written."
        )
    click.echo(f"Backed up {source} to {target} (integrity ok).")


@click.command("check")
@with_appcontext
def check_command():
    """Report the database's integrity, schema version and counts; non-zero when it is unfit."""
    path = _existing_database()
    report = models.check_database(path)
    version = report["schema_version"]
    click.echo(f"database: {path}")
    click.echo(f"integrity: {', '.join(report['integrity'][:10])}")
    click.echo(f"schema version: {version} (this release: {models.SCHEMA_VERSION})")
    click.echo(f"journal mode: {report['journal_mode']}")
    for name in ("agents", "active_agents", "idempotency_records"):
        if name in report:
            click.echo(f"{name.replace('_', ' ')}: {report[name]}")
    if report["integrity"] != ["ok"]:
        raise click.ClickException("The integrity check failed; restore the latest backup.")
    if version is not None and version > models.SCHEMA_VERSION:
        raise click.ClickException(
            "The file was written by a later release; run that release or a later one."
        )


def _existing_database():
    path = sqlite_path(current_app.config["DATABASE_URL"])
    if not os.path.isfile(path):
        raise click.ClickException(f"No database at {path}; check AGENTS_DATABASE_URL.")
    return path


def _write_whole_file(path, text, private):
    """Write `text` beside `path` and rename it into place: a failed export leaves no half file.

    A file holding secrets is readable by its owner only.
    """
    partial = path.with_name(path.name + ".partial")
    try:
        partial.unlink(missing_ok=True)
        mode = 0o600 if private else 0o644
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with open(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except OSError as error:
        raise click.ClickException(f"Cannot write {path}: {error.strerror}.") from None


def _prepare_database():
    try:
        models.prepare_database()
    except models.SchemaTooNew as error:
        raise click.ClickException(str(error)) from None


def _read_json(source):
    raw = source.read()
    try:
        document = strict_json_loads(raw)
        # Lone surrogates parse from \ud800 escapes but can never be stored as UTF-8.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise click.ClickException(f"{source.name} nests too deeply to be an export.") from None
    except (ValueError, UnicodeError) as error:
        raise click.ClickException(f"{source.name} is not JSON text in UTF-8: {error}") from None
    return document


COMMANDS = (
    serve_command,
    init_db_command,
    export_command,
    import_command,
    backup_command,
    check_command,
)
