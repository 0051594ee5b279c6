"""The HTTPS web application: pages and the JSON API (see ``app.create_app``)."""
