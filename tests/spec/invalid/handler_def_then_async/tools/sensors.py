def read_sensor():
    return 21.5


async def read_sensor():  # the last definition is what the device calls
    return 22.0
