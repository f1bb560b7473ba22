"""The CLI fixtures (captured console, mocked API) for the enrollment and audit commands."""

from tests.unit.cli.conftest import api, cli  # noqa: F401 - fixtures shared with tests/unit/cli
