def approve(channel, tool):
    return None


def watch(channel, text, iteration, extra):
    pass


def after(channel, content, tools):
    pass
