def read_sensor():
    return 21.5


# A later binding of the name wins when the module runs: the device would call this dict.
read_sensor = {"value": 21.5}
