"""Where a study lives: Optuna's storage in SQLite or any SQLAlchemy database, the password from the environment."""

import os
import time
import warnings

PASSWORD_VARIABLE = "LIGHTNING_APP_STORAGE_PASSWORD"


HEARTBEAT_SECONDS = 10  # a trial silent for twice this is a crashed one: the next command retries it


STORAGE_ATTEMPTS = 5  # tries to open a study whose tables another command is creating at the same moment


def with_password(url: str) -> str:
    """The storage URL, with the password from LIGHTNING_APP_STORAGE_PASSWORD when it names none."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    password = os.environ.get(PASSWORD_VARIABLE)
    if password and parsed.password is None and parsed.username:
        parsed = parsed.set(password=password)
    return parsed.render_as_string(hide_password=False)


def masked(url: str) -> str:
    """A storage URL safe to show: its password as ***."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: show its scheme only
        return url.split("://")[0] + "://***"


def open_storage(url: str):
    """Optuna's storage in the database at ``url``, with heartbeats so that a killed process's trial is retried."""
    import optuna
    from sqlalchemy.exc import IntegrityError, SQLAlchemyError

    for attempt in range(STORAGE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
                    heartbeat_interval=HEARTBEAT_SECONDS,
                    grace_period=2 * HEARTBEAT_SECONDS,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
                )
        except SQLAlchemyError as err:
            # Two commands starting a new study at once both create its tables: the later one fails with "table ...
            # already exists", or on the schema's version row ("UNIQUE constraint failed: alembic_version"), and
            # finds them complete a moment later.
            racing = isinstance(err, IntegrityError) or "already exists" in str(err)
            if not racing or attempt == STORAGE_ATTEMPTS - 1:
                raise
            time.sleep(1.0)


def storage_problem(url: str, err: BaseException) -> str:
    """A one-paragraph explanation of why the study's database cannot be used."""
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    first = first.replace(url, masked(url))
    return (
        f"Cannot open the study's database {masked(url)} ({type(err).__name__}: {first[:300]}). Check that the "
        f"server is running and reachable, the database exists, its driver is installed (psycopg2 for PostgreSQL, "
        f"PyMySQL for MySQL), and the password is in {PASSWORD_VARIABLE}; or leave --storage out for SQLite in "
        f"the study's folder."
    )
