"""meshbot's service: settings, store, scheduler, the FastAPI app with the Slack front, and the CLI."""

__version__ = "0.1.0"
