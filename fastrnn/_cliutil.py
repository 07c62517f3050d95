"""Temporary: fastrnn.cli._util under its old name, while fastrnn/_text.py moves."""
from fastrnn.cli._util import *  # noqa: F401,F403
from fastrnn.cli._util import CLIError  # noqa: F401
