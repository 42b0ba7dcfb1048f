"""The operator's commands: serve, init-db, export, import, backup and check.

They run as `agents-api COMMAND` (cli.py) and as `flask --app app COMMAND`, on the same settings
and database either way. Each says what went wrong in one `Error:` line on stderr and exits
non-zero when it cannot do what was asked.
"""

import io
import os
import socket
import sqlite3
import sys
from contextlib import contextmanager
from pathlib import Path

import click

import catalog
import maintenance
import migrations
from config import PATH_SETTINGS, ConfigError, check_bind, exposure_refusal, load_settings
from storage import DatabaseUnavailable, open_engine
from store import Store

# Where the service's modules are: in a checkout, or in site-packages once installed.
SERVICE_FOLDER = os.path.dirname(os.path.abspath(__file__))


class Service:
    """What a command works on: the settings and the store and catalog they name, built when
    first asked."""

    def __init__(self, settings=None, store=None, known=None):
        self._settings = settings
        self._store = store
        self._catalog = known

    @property
    def settings(self):
        if self._settings is None:
            try:
                self._settings = load_settings()
            except ConfigError as error:
                raise click.ClickException(str(error)) from None
        return self._settings

    @property
    def store(self):
        if self._store is None:
            self._store = Store(open_engine(self.settings["DATABASE_URL"]))
        return self._store

    @property
    def catalog(self):
        if self._catalog is None:
            try:
                self._catalog = catalog.load_catalog(self.settings["CATALOG"])
            except ConfigError as error:
                raise click.ClickException(str(error)) from None
        return self._catalog


def _service():
    root = click.get_current_context().find_root().obj
    if hasattr(root, "load_app"):  # `flask --app app COMMAND`: the app's settings and store
        app = root.load_app()
        return Service(app.config, app.extensions["store"], app.extensions["catalog"])
    return root


@contextmanager
def _on(store):
    """The block works on `store`, created or migrated first."""
    try:
        store.prepare()
        with store.activated(), store.engine.database.connection_context():
            yield store
    except (ConfigError, DatabaseUnavailable) as error:
        raise click.ClickException(str(error)) from None


@click.command("serve")
@click.option(
    "--bind",
    metavar="HOST:PORT",
    help="Address to listen on  [default: AGENTS_BIND, 127.0.0.1:8000]",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes  [default: two per core, at most 8]",
)
@click.option(
    "--threads", type=click.IntRange(min=1), help="Threads per worker  [default: AGENTS_THREADS, 2]"
)
@click.option(
    "--allow-unauthenticated",
    is_flag=True,
    help="Listen beyond loopback without AGENTS_API_KEYS: anyone who reaches the port can change "
    "every agent.",
)
@click.option(
    "--test-mode",
    is_flag=True,
    help="Serve as a test double: the /_test routes and namespaces (AGENTS_TEST_MODE=1).",
)
def serve_command(bind, workers, threads, allow_unauthenticated, test_mode):
    """Serve the API with gunicorn; SIGTERM stops it gracefully."""
    environment = dict(os.environ)
    for name, value in (("BIND", bind), ("WORKERS", workers), ("THREADS", threads)):
        if value is not None:
            environment[f"AGENTS_{name}"] = str(value)
    if allow_unauthenticated:
        environment["AGENTS_ALLOW_UNAUTHENTICATED"] = "1"
    if test_mode:
        environment["AGENTS_TEST_MODE"] = "1"
    try:
        if bind is not None:
            check_bind(bind, "--bind")
        settings = load_settings(environment)
        # Said here in one line, rather than by each gunicorn process that would read it.
        catalog.load_catalog(settings["CATALOG"])
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    refusal = exposure_refusal(
        [settings["BIND"]], settings["API_KEYS"], settings["ALLOW_UNAUTHENTICATED"]
    )
    if refusal:
        raise click.UsageError(refusal)
    # The database is created or migrated here, so that a path that cannot be used is said in
    # one line before anything starts.
    with _on(Store(open_engine(settings["DATABASE_URL"]))):
        pass
    for name in PATH_SETTINGS:
        environment[f"AGENTS_{name}"] = settings[name]
    # gunicorn imports the app from the folder it starts in, so it starts in the service's own:
    # a caller's folder may hold an app.py of its own. (-P keeps that folder off the path too.)
    command = [sys.executable, "-P", "-m", "gunicorn", "--config", "python:serving"]
    # The socket is bound here, so that an address in use is said in one line; gunicorn's
    # master then prepares the database (serving.on_starting) and says so if it cannot.
    listener = _listen(settings["BIND"])
    if listener is not None:
        command += ["--bind", f"fd://{listener.fileno()}"]
    command.append("app:create_app()")
    # gunicorn takes this process's place, so a supervisor's signals reach its master directly.
    os.chdir(SERVICE_FOLDER)
    os.execve(sys.executable, command, environment)


def _listen(address):
    """A socket bound to a HOST:PORT address, to hand to gunicorn; None for a unix socket."""
    if address.startswith("unix:"):
        return None
    host, port = address.rsplit(":", 1)
    host = host.strip("[]")
    try:
        family = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0][0]
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, int(port)))
        listener.listen(2048)
    except OSError as error:
        raise click.ClickException(
            f"Cannot listen on {address}: {(error.strerror or str(error)).lower()}."
        ) from None
    listener.set_inheritable(True)
    return listener


@click.command("init-db")
def init_db_command():
    """Create the database and its tables, or migrate it to this release's schema."""
    store = _service().store
    with _on(store):
        pass
    click.echo(
        f"The database at {store.engine.location} is ready "
        f"(schema version {migrations.latest_version()})."
    )


@click.command("export")
@click.argument(
    "output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default="-"
)
@click.option(
    "--include-secrets", is_flag=True, help="Write each agent's webhook secret into the file too."
)
def export_command(output, include_secrets):
    """Write every agent, with its id and timestamps, as JSON to OUTPUT (default: stdout)."""
    store = _existing(_service().store)
    with _on(store):
        if str(output) == "-":
            with _utf8_stdout() as out:
                count = maintenance.export_agents(out, include_secrets)
        else:
            with _whole_file(output, private=include_secrets) as out:
                count = maintenance.export_agents(out, include_secrets)
    click.echo(f"Exported {count} agent(s).", err=True)


@click.command("import")
@click.argument("source", type=click.File("rb"))
@click.option(
    "--replace", is_flag=True, help="Delete every stored agent first, in the same transaction."
)
@click.option(
    "--allow-missing-secrets",
    is_flag=True,
    help="Store agents whose webhook secret the file does not carry without one.",
)
def import_command(source, replace, allow_missing_secrets):
    """Store the agents of an export file, all or none, keeping their ids and timestamps."""
    service = _service()
    try:
        with catalog.activated(service.catalog), _on(service.store):
            count = maintenance.import_file(source, replace, allow_missing_secrets)
    except maintenance.ImportRefused as error:
        shown = "\n  ".join(error.sentences)
        unshown = error.count - len(error.sentences)
        more = f"\n  ...and {unshown} more." if unshown else ""
        raise click.ClickException(
            f"{source.name} is not a valid export; nothing was imported:\n  {shown}{more}"
        ) from None
    except maintenance.AgentsAlreadyStored as error:
        raise click.ClickException(
            f"{error.count} agent(s) in {source.name} are already stored "
            f"(first: {error.first_id}); nothing was imported. "
            "Pass --replace to replace every stored agent."
        ) from None
    except RecursionError:
        raise click.ClickException(f"{source.name} nests too deeply to be an export.") from None
    except (ValueError, UnicodeError) as error:
        raise click.ClickException(f"{source.name} is not JSON text in UTF-8: {error}") from None
    click.echo(f"Imported {count} agent(s).")


@click.command("backup")
@click.argument("target", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--force", is_flag=True, help="Replace TARGET if it exists.")
def backup_command(target, force):
    """Copy the database to TARGET with SQLite's online backup; safe while serving."""
    engine = _existing(_service().store).engine
    advice = engine.backup_advice(target)
    if advice is not None:
        raise click.ClickException(advice)
    refusal = engine.backup_refusal(target)
    if refusal is not None:
        raise click.ClickException(f"{refusal}; nothing was written. Choose another path.")
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists; pass --force to replace it.")
    if not target.parent.is_dir():
        raise click.ClickException(f"The folder {target.parent} does not exist.")
    try:
        integrity = engine.backup(target)
    except (OSError, sqlite3.Error) as error:
        raise click.ClickException(f"The backup to {target} failed: {error}") from None
    if integrity != ["ok"]:
        raise click.ClickException(
            f"The copy failed its integrity check ({integrity[0]}); {target} was not written."
        )
    click.echo(f"Backed up {engine.location} to {target} (integrity ok).")


@click.command("check")
def check_command():
    """Report the database's integrity, schema version and counts; non-zero when it is unfit."""
    engine = _existing(_service().store).engine
    try:
        report = engine.check()
    except DatabaseUnavailable as error:
        raise click.ClickException(str(error)) from None
    latest = migrations.latest_version()
    click.echo(f"database: {engine.location}")
    click.echo(f"integrity: {', '.join(report['integrity'][:10])}")
    if report["schema_version"] is not None:
        click.echo(f"schema version: {report['schema_version']} (this release: {latest})")
        if "journal_mode" in report:
            click.echo(f"journal mode: {report['journal_mode']}")
    for name in ("agents", "active_agents", "idempotency_records"):
        if name in report:
            click.echo(f"{name.replace('_', ' ')}: {report[name]}")
    if report["integrity"] != ["ok"]:
        raise click.ClickException("The integrity check failed; restore the latest backup.")
    if report["schema_version"] > latest:
        raise click.ClickException(
            "The file was written by a later release; run that release or a later one."
        )


def _existing(store):
    if not store.engine.exists():
        raise click.ClickException(
            f"No database at {store.engine.location}; check AGENTS_DATABASE_URL."
        )
    return store


@contextmanager
def _utf8_stdout():
    """Standard output as UTF-8 text, whatever the locale says."""
    sys.stdout.flush()
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
    try:
        yield out
        out.flush()
    finally:
        out.detach()


@contextmanager
def _whole_file(path, private):
    """A text file to write that appears at `path` only once complete: a failed export leaves no
    half file. A file holding secrets is readable by its owner only.
    """
    partial = path.with_name(path.name + ".partial")
    try:
        partial.unlink(missing_ok=True)
        mode = 0o600 if private else 0o644
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with open(descriptor, "w", encoding="utf-8") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"Cannot write {path}: {error.strerror}.") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


COMMANDS = (
    serve_command,
    init_db_command,
    export_command,
    import_command,
    backup_command,
    check_command,
)
