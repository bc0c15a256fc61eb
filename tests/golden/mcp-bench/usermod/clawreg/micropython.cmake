# clawgen's register policy user module (_clawreg) for MicroPython's CMake ports (esp32).
# Build: make -C ports/esp32 BOARD=... USER_C_MODULES=<build>/usermod/clawreg/micropython.cmake (README.md)
add_library(usermod_clawreg INTERFACE)

target_sources(usermod_clawreg INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/modclawreg.c
    ${CMAKE_CURRENT_LIST_DIR}/clawreg_policy.c
    ${CMAKE_CURRENT_LIST_DIR}/clawreg_table.c
)

target_include_directories(usermod_clawreg INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}
)

target_link_libraries(usermod INTERFACE usermod_clawreg)
