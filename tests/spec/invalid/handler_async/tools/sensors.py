async def read_sensor():
    return 21.5
