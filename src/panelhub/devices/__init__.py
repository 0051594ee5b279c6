"""Devices: templates (register maps as data files), device instances and discovery.

Pure of I/O except :mod:`~panelhub.devices.discovery`, which asks the buses.
"""
