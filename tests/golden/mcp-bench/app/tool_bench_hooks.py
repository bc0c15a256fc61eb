# The approve_tool hook of the MCP bench agent. Runs on the device (MicroPython) before every tool
# call, whichever channel asked for it (the console, Telnet, or an MCP client).


def approve(channel, tool, args):
    # The relay drives the bench supply: only someone at the console may switch it on.
    if tool == "set_relay" and args.get("on") and channel != "uart":
        return "the bench supply is switched on from the console only"
    return True
