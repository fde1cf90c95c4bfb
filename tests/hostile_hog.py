from tests.hostile_parsers import hog as extract  # noqa: F401
