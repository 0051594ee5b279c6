"""The datalogger: plans reads (pure :mod:`~panelhub.datalogger.planner`) and polls devices
through the same Bus objects as the gateway, at low priority, storing every sample.
"""
