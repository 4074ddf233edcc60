"""Device specs as data files with sources, detection of the devices present, and the peaks
that MFU divides by. Nothing is read until a function asks for it."""
