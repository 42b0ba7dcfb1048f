"""`agents-api`: the console command installed with the service."""

from importlib.metadata import PackageNotFoundError, version

import click

from commands import COMMANDS, Service


def release():
    """This release's version, as installed."""
    try:
        return version("agents-api")
    except PackageNotFoundError:
        return "unknown"


@click.group(commands=COMMANDS)
@click.version_option(release(), prog_name="agents-api", message="%(prog)s %(version)s")
@click.pass_context
def main(context):
    """Run and look after the Agents API service. Settings come from AGENTS_* variables."""
    context.obj = Service()
