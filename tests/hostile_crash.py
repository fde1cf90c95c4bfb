from tests.hostile_parsers import crash as extract  # noqa: F401
