"""Settings and errors every layer of the app shares (imports nothing else of the app)."""
