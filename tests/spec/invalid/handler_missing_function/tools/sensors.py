def read_sensor(sensor="both"):
    return {"temperature_c": 21.0}


def set_relay(on):
    return {"relay": on}
