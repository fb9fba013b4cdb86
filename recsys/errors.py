"""Exceptions raised at stage boundaries.

Each message names what a user needs to fix: the table, the column and the
offending value, or the host and port that could not be reached.
"""


class RecsysError(Exception):
    """Base class of every error this package raises on purpose."""


class DatabaseUnreachableError(RecsysError):
    """The data database did not answer (names host and port)."""


class ConfigurationError(RecsysError):
    """A setting cannot work as given (names the setting, what it holds and what it needs)."""


class SchemaMissingError(RecsysError):
    """The recsys schema or one of its tables is missing: run `recsys db upgrade`."""


class DataValidationError(RecsysError):
    """Input data broke a documented rule (names table, column and problem)."""

    def __init__(self, table: str, column: str, problem: str) -> None:
        self.table, self.column, self.problem = table, column, problem
        super().__init__(f"{table}.{column}: {problem}")


class EmptyWindowError(RecsysError):
    """The run's data interval holds no events: nothing to train or publish."""


class ModelFitError(RecsysError):
    """Training produced an unusable model (for instance NaN factors)."""


class PublishRejected(RecsysError):
    """The gate kept the live model: the challenger is worse beyond the tolerance."""


class NothingFresh(RecsysError):
    """The hourly job has nothing to merge: no item became available in the hour, or no model
    it can score them with is live."""


class NotApproved(PublishRejected):
    """A publish that needed a person's approval (`RECSYS_APPROVAL`) was rejected, timed out or not asked."""


class OtherBackend(RecsysError):
    """A step of one MF backend in a run that fits the model on the other (the Spark steps of a torch run)."""


class MissingEstimateError(RecsysError):
    """The DR gate found logged impressions but no stored estimate of the challenger (an ordering error)."""


class InputFormatError(RecsysError):
    """A file to load is malformed (names file, line number and reason)."""

    def __init__(self, path: str, line_no: int, reason: str) -> None:
        self.path, self.line_no, self.reason = path, line_no, reason
        super().__init__(f"{path}:{line_no}: {reason}")


# Errors a retry cannot fix: the input, the schema or a setting must change first. Every
# DAG task fails these at once instead of retrying them with backoff.
PERMANENT_ERRORS: tuple[type[RecsysError], ...] = (DataValidationError, SchemaMissingError, ModelFitError,
                                                   InputFormatError, ConfigurationError, MissingEstimateError)
# "Nothing to do" rather than an error: the step is skipped (Airflow's skip), and so are
# the steps that read it; the live tables stay.
SKIP_ERRORS: tuple[type[RecsysError], ...] = (EmptyWindowError, PublishRejected, NothingFresh, OtherBackend)
