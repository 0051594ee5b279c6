"""The Modbus gateway: upstream listeners, access policy, routing, unit 255 (itself)."""
