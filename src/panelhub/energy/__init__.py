"""Energy: consumption derived from cumulative counters, and aggregation by usage and zone.

Counter resets, rollovers, meter swaps and gaps are handled explicitly, each with a quality
flag, so a consumption is never negative and never a spike.
"""
