"""Services that can be switched off, and the radio services that can be disabled for good."""
