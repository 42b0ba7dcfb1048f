"""Test-double mode, switched on as a whole by `init_app`: namespaces, the /_test routes, the
request journal, injected faults, snapshots, a frozen clock, seeded ids and simulated calls.

Other services' test suites use the service in place of the real platform; nothing here runs
unless AGENTS_TEST_MODE is on, so the service pays nothing for it otherwise.
"""

from errors import error_response
from testdouble import hooks, routes, state
from testdouble.calls.bounds import Timing
from testdouble.calls.records import CallNotFound
from testdouble.openapi import document_namespaces


def init_app(app):
    """Install test mode on `app`, whose store it stamps and whose documentation it extends."""
    store = app.extensions["store"]
    state.install_stamps(store)
    if app.config["FIXTURES"]:
        store.on_prepare.append(hooks.fixtures_loader(app.config["FIXTURES"]))
    hooks.install(app)
    app.register_blueprint(routes.bp)
    app.register_error_handler(state.SnapshotNotFound, _no_such_snapshot)
    app.register_error_handler(CallNotFound, _no_such_call)
    app.extensions["call_timing"] = app.config.get("CALL_TIMING") or Timing()
    app.extensions.setdefault("openapi_hooks", []).append(document_namespaces)


def _no_such_snapshot(error):
    return error_response(404, "not_found", f"No snapshot is named {error.args[0]}.")


def _no_such_call(error):
    return error_response(404, "not_found", f"No call has the id {error.args[0]}.")
