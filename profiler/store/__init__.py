"""The result store: one SQLite file through sqlite-utils.

Tables (schema version 4; ``MIGRATIONS`` builds a new file and upgrades an older one):

- ``meta``: key/value, holds ``schema_version``.
- ``runs``: one row per benchmark run, with a stable unique id (uuid4 hex), its full config
  as JSON, the ids of its device and environment, the pid and host that ran it, and a
  status: ``running`` while it runs, then ``ok``, ``skipped``, ``failed`` or
  ``interrupted``; and derived, indexed columns (``summary_columns``: the comparison's
  group fields, the summary's headline figures) kept current by triggers. The row is written (and committed) before any work starts, so a run
  that dies is never lost, and is updated when it ends.
- ``environments``: software and host descriptions, keyed by a hash of their content.
- ``devices``: every device a run or calibration used, keyed by its stable device key.
- ``results``: one row per timed window of a run; its columns are the measurement record's
  (``profiler.measurement.FIELDS``), named with their units, and are added when a file is
  opened; a run over several processes has a ``node`` row and one ``rank`` row per process.
- ``power_samples``: the power trace of each window and device, where the meter samples.
- ``calibrations``: measured ceilings of a device (matmul FLOP/s per precision, copy
  bandwidth), keyed by a stable device key.

Every write is its own transaction and the journal is WAL with a busy timeout, so a crash or
Ctrl-C leaves a valid database and several processes can write to one file.

Modules: ``schema`` (tables, frozen migrations, record columns), ``db`` (:class:`Store`),
``reading`` and ``records`` (its reading and record halves), ``query`` (reads done in SQL,
streamed), ``summary_columns`` (the derived columns), ``frame`` (the one flat table of runs
and results), ``streaming`` (exports written as they are read), ``transfer`` (export,
import, merge).
"""

from profiler.store.db import DEFAULT_DB, ENV_DB, RUN_STATUSES, Store, default_db_path, utc_now
from profiler.store.reading import process_gone
from profiler.store.schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["Store", "SCHEMA_VERSION", "DEFAULT_DB", "ENV_DB", "RUN_STATUSES", "MIGRATIONS",
           "default_db_path", "process_gone", "utc_now"]
