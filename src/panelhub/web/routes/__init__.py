"""One module per area of the pages and API; ``app`` assembles their route tables."""
