"""Reports over the result store: tables, comparisons, plots, documents, forecasts.

- ``numbers``: numbers as text (engineering notation, percentages, estimated and n/a labels);
- ``table``, ``compare``, ``compare_table``, ``bench_view``: rows, cells and lines built from
  stored runs; ``compare`` also decides which runs may be compared (their group);
- ``terminal``: everything drawn on the terminal with rich;
- ``formats``: the formats of ``etameter report``, a registry (one module per format);
- ``documents`` and ``text``: the JSON documents and text lines of the CLI's commands;
- ``html``, ``plots``, ``scaling``: the HTML page, matplotlib figures, the forecast.

``reports.load(db_path)`` returns a pandas DataFrame of results joined with their runs.
Nothing heavy is imported until a function needs it.
"""


def load(db_path: str, **filters):
    """A DataFrame of every result window joined with its run (see reports.data.load)."""
    from reports.data import load as _load

    return _load(db_path, **filters)
