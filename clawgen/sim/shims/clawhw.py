# Simulator `clawhw`: a register file held by the host (seeded with the chip's reset values
# by the simulator); every write is recorded so tests can check what the device did.
import _simhost


def read32(addr):
    return _simhost.reg_read(addr) & 0xFFFFFFFF


def write32(addr, value):
    _simhost.reg_write(addr, value & 0xFFFFFFFF)
