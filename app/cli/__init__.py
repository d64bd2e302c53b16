"""The ``phenokg`` command line (:mod:`app.cli.main`); commands live in :mod:`app.cli.commands`."""
