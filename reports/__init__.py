"""Reports over the result store: tables, comparisons, plots, exports, forecasts."""
