"""Everything that talks to the graph: server, driver, parsers, queries, repository, migrations, linker."""

__version__ = "0.1.0"
