"""`gunicorn 'app:create_app()'` run in the checkout reads the service's own settings."""

from serving import *  # noqa: F403
