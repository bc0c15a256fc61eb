# clawgen's register policy user module (_clawreg) for MicroPython's make-based ports.
CLAWREG_MOD_DIR := $(USERMOD_DIR)

SRC_USERMOD_C += $(CLAWREG_MOD_DIR)/modclawreg.c
SRC_USERMOD_C += $(CLAWREG_MOD_DIR)/clawreg_policy.c
SRC_USERMOD_C += $(CLAWREG_MOD_DIR)/clawreg_table.c

CFLAGS_USERMOD += -I$(CLAWREG_MOD_DIR)
