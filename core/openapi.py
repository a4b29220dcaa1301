def drop_slashed_duplicates(endpoints):
    """drf-spectacular hook: each route is mounted twice (see core.routing); document it once."""
    return [
        (path, path_regex, method, callback)
        for path, path_regex, method, callback in endpoints
        if path == "/" or not path.endswith("/")
    ]
