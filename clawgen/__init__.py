"""clawgen: compile an agent spec and a chip register map into MicroPython firmware."""

__version__ = "0.1.0"

# The MicroPython release everything generated targets; mpy-cross and firmware must agree.
MICROPYTHON_VERSION = "1.29.0"
