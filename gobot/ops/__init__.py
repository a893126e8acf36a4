"""Operating a running bot: the dashboard server and its status documents, the watchdog, readiness."""
