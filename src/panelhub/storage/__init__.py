"""Persistence: the SQLite owner (``db``), the migrations it applies, and the time-series store.

``timeseries`` is the store's façade over datalog.sqlite; ``samples`` and ``rollups`` hold its
SQL, ``chunks`` the pure codec of a day of one series.
"""
