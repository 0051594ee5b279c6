"""The command line: parse, load the configuration, call the service or an admin command."""
