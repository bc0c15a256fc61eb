# Custom tools of the sensor agent. Runs on the device (MicroPython); keep it small.
# Handlers take the tool arguments as keyword arguments and return a JSON-serializable value.

_relay_state = [False]


def read_sensor(sensor="both"):
    # A real build would read an I2C sensor here (e.g. machine.I2C + an SHT3x driver);
    # fixed values keep the example runnable everywhere, the simulator included.
    reading = {"temperature_c": 23.5, "humidity_pct": 61.0}
    if sensor == "temperature":
        return {"temperature_c": reading["temperature_c"]}
    if sensor == "humidity":
        return {"humidity_pct": reading["humidity_pct"]}
    return reading


def set_relay(on):
    _relay_state[0] = bool(on)
    return {"relay": "on" if _relay_state[0] else "off"}
