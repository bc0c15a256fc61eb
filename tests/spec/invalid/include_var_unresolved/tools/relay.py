def set_relay(on=True):
    return on
