"""`agents-api`: the console command installed with the project."""

import click
from flask.cli import ScriptInfo

from app import create_app
from commands import COMMANDS
from config import ConfigError


@click.group(commands=COMMANDS)
@click.pass_context
def main(context):
    """Run and look after the Agents API service. Settings come from AGENTS_* variables."""
    context.obj = ScriptInfo(create_app=_app_for_commands, set_debug_flag=False)


def _app_for_commands():
    # Commands that only read the file (check, backup) must not create or migrate it.
    try:
        return create_app({"PREPARE_DATABASE": False})
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
