# Simulator `ntptime`: the VM's clock already follows the host's, so there is nothing to set.
host = "pool.ntp.org"
timeout = 1


def time():
    import time as _t

    return _t.time()


def settime():
    pass
