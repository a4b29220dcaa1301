# The largest magnitude a stored number may have. Models check it with constraints (PostgreSQL
# compares NaN as greater than every number, so the bound also keeps NaN out), inputs with it.
FLOAT_BOUND = 1e300


def contains_nul(value) -> bool:
    """True if a NUL character hides anywhere in a JSON value: PostgreSQL can store none."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(item) for item in value)
    return False
