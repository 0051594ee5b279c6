"""The only code that touches sockets and serial ports, and the Bus that owns each link."""
