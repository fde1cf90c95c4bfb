from tests.hostile_parsers import hang as extract  # noqa: F401
