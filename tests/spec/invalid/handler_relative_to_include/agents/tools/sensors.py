def read_sensor():
    return 1
