"""Errors the services raise. They know nothing of HTTP; core.exception_handler maps them."""

# Where an error that belongs to no one field is reported in `detail` (DRF's NON_FIELD_ERRORS_KEY).
NON_FIELD_ERRORS = "nonFieldErrors"


class ApplicationError(Exception):
    """A business rule said no. `code` becomes the `error` of the response, `detail` its detail."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, detail=None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.detail = detail if detail is not None else message


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"


class InvalidInput(ApplicationError):
    """Like a field validation error, for checks only a service can make. `detail` names the field."""

    code = "validation_error"
