"""One router module per resource; :func:`app.main.create_app` includes them."""
