"""Power and energy meters. Each module implements :class:`profiler.meters.base.Meter` for one
power source; :mod:`profiler.meters.select` picks the best available one and says why the
others were not used."""
