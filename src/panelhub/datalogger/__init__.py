"""The datalogger: plans reads and polls devices through the gateway's buses.

:mod:`~panelhub.datalogger.planner` merges registers into few reads (pure); the poller submits
them to the same Bus objects as the gateway, at low priority, and stores every sample.
"""
