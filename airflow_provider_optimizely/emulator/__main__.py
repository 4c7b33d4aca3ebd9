"""``python -m airflow_provider_optimizely.emulator``: the same as the ``optimizely-emulator`` command."""

from __future__ import annotations

import sys

from airflow_provider_optimizely.emulator.cli import main

sys.exit(main())
