"""Reports over the result store: tables, comparisons, plots, exports, forecasts.

``reports.load(db_path)`` returns a pandas DataFrame of results joined with their runs.
Nothing heavy is imported until a function needs it.
"""


def load(db_path: str, **filters):
    """A DataFrame of every result window joined with its run (see reports.data.load)."""
    from reports.data import load as _load

    return _load(db_path, **filters)
