"""Energy: consumption derived from cumulative counters (resets, rollovers, meter swaps and
gaps handled explicitly) and aggregation by usage and zone.
"""
