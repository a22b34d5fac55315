"""What the fuzz tests share: how deep hypothesis goes, and what an outcome may be."""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable

from hypothesis import HealthCheck, settings

# XNN_FUZZ_EXAMPLES=300 for a deep run (the default keeps the suite quick)
EXAMPLES = int(os.environ.get("XNN_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much, HealthCheck.data_too_large])


def fewer(share: float) -> settings:
    """FUZZ with ``share`` of its examples, for the slow entry points (fit, checkpoints)."""
    return settings(FUZZ, max_examples=max(1, int(EXAMPLES * share)))


def attempt(call: Callable[[], Any], owners, allowed=(TypeError, ValueError)) -> tuple[bool, Any]:
    """(True, result) if ``call`` works; (False, error) if it raised an ``allowed`` type whose
    message names one of ``owners``; an AssertionError for anything else (a raw library
    error)."""
    owners = [owners] if isinstance(owners, str) else list(owners)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return True, call()
        except AssertionError:
            raise
        except allowed as err:
            message = str(err)
            assert any(o in message for o in owners), (
                f"{type(err).__name__} names none of {owners}: {message}")
            return False, err
        except Exception as err:
            raise AssertionError(f"undocumented {type(err).__name__} from {owners}: "
                                 f"{err}") from err
