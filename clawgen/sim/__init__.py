"""The clawgen simulator: runs a build's compiled bytecode on the official MicroPython
WebAssembly VM (npm), with only the hardware edge (sockets, TLS, Wi-Fi, NVS, registers,
UART) swapped for host-backed shims. See docs/sim.md."""
