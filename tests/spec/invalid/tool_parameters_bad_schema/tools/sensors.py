def read_sensor(sensor='both'):
    return 1
