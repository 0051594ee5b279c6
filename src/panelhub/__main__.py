"""``python -m panelhub`` runs the command line."""

from panelhub.cli.main import main

raise SystemExit(main())
