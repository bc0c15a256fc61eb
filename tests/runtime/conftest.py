"""Fixtures of the runtime tests on the unix-port VM beyond tests/conftest.py: the scripted
Telegram Bot API and its test CA (tests/runtime/telegram_device.py)."""

from tests.runtime.telegram_device import botapi, ca

__all__ = ["botapi", "ca"]
