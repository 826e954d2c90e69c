"""``python -m telephony.config > .env.example``: every setting at its default."""

import sys

from .env_file import env_example

sys.stdout.write(env_example())
