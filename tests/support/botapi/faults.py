"""Test-side control over failures: Telegram errors, slow answers and a revoked token.

Real Telegram fails now and then (500s, 502s from its front ends, 429 flood control), is slow
at times, and a token can be revoked in @BotFather while the bot runs. These controls let a
test make that happen at a chosen call, so the bot's retry and shutdown paths get exercised.
"""

from __future__ import annotations

from collections import deque
from http import HTTPStatus

from tests.support.botapi.api import ApiError
from tests.support.botapi.state import EmulatorState

# The pseudo-method under which file downloads are recorded (see ``ApiCall``).
DOWNLOAD_FILE = "downloadFile"


def injected_error(code: int, description: str | None, retry_after: int | None) -> ApiError:
    """The error Telegram would send for ``code``, with its usual description."""
    try:
        status = HTTPStatus(code)
    except ValueError:
        status = None
    if status is None or not 400 <= code <= 599:
        raise ValueError(f"not an HTTP error status: {code}")
    if retry_after is not None and code != 429:
        raise ValueError("Telegram sends retry_after only with 429 Too Many Requests")
    if code == 429:
        retry_after = 1 if retry_after is None else retry_after
        description = description or f"Too Many Requests: retry after {retry_after}"
        return ApiError(description, code, {"retry_after": retry_after})
    if description is None:
        if code == 400:
            raise ValueError("a 400 needs a description, e.g. 'Bad Request: chat not found'")
        description = status.phrase
    return ApiError(description, code)


class FaultInjection(EmulatorState):
    """``fail_next``, ``delay_next`` and ``revoke_token``; consumed by the server."""

    def fail_next(
        self,
        method: str,
        *,
        code: int = 500,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an error, not performing them.

        ``method`` is a Bot API method in any case, or ``"downloadFile"`` for file downloads.
        Descriptions default to Telegram's ("Internal Server Error", "Bad Gateway", ...);
        429 adds ``parameters.retry_after`` (default 1), which PTB raises as ``RetryAfter``.
        Errors queued by several calls are used in order. The failed calls are recorded.
        """
        error = injected_error(code, description, retry_after)
        key = self._fault_key(method, times)
        with self._cond:
            self._faults.setdefault(key, deque()).extend([error] * times)

    def delay_next(self, method: str, seconds: float, times: int = 1) -> None:
        """Perform the next ``times`` calls of ``method`` normally but answer ``seconds`` late.

        The call is recorded (and ``wait_for_call`` returns) when it is performed, before the
        bot gets the answer; other requests are served meanwhile.
        """
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        key = self._fault_key(method, times)
        with self._cond:
            self._delays.setdefault(key, deque()).extend([float(seconds)] * times)

    def revoke_token(self) -> None:
        """From now on every request with the token gets 401, as after a reset in @BotFather.

        Pending long polls are answered with the 401 at once.
        """
        with self._cond:
            self._revoked = True
            self._cond.notify_all()

    def _fault_key(self, method: str, times: int) -> str:
        """The lower-cased method name; unknown names are typos, so they raise."""
        if times < 1:
            raise ValueError("times must be at least 1")
        key = method.lower()
        if key not in self._methods and key != DOWNLOAD_FILE.lower():
            raise ValueError(f"the emulator has no Bot API method {method!r}")
        return key
