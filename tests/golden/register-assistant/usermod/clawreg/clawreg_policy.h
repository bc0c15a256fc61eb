/* Register policy core of clawgen's clawreg user module.
 *
 * Pure C99, no MicroPython headers: the host test suite compiles it with gcc -Wall -Wextra -Werror
 * and runs the same policy cases as the Python implementation (templates/app/clawreg.py.j2).
 * The tables are generated per build (clawreg_table.c); layouts and semantics are documented in
 * clawgen/chips/tables.py and docs/registers.md. Keep this file and clawreg.py.j2 in step.
 */
#ifndef CLAWREG_POLICY_H
#define CLAWREG_POLICY_H

#include <stddef.h>
#include <stdint.h>

/* Result codes (same numbers as clawreg.py). */
enum {
    CLAWREG_OK = 0,
    CLAWREG_MISALIGNED = 1,
    CLAWREG_OUT_OF_BLOCK = 2,
    CLAWREG_UNKNOWN = 3,
    CLAWREG_DENIED = 4,
    CLAWREG_CONSTRAINT = 5,
    CLAWREG_PROTECTED = 6,
    CLAWREG_NOT_RMW_SAFE = 7
};

/* Entry flags. */
#define CLAWREG_F_READ 0x01u        /* policy allows reading */
#define CLAWREG_F_WRITE 0x02u       /* policy allows writing the bits in wmask */
#define CLAWREG_F_NO_RMW 0x04u      /* never read-modify-write this register */
#define CLAWREG_F_READBACK 0x08u    /* a write returns the value read back */
#define CLAWREG_F_READ_EFFECT 0x10u /* reading has side effects */

#define CLAWREG_C_RANGE 1u
#define CLAWREG_C_ENUM 2u
#define CLAWREG_NO_KNOWN 0xFFFFu

typedef struct {
    uint32_t addr;
    uint8_t flags;
    uint8_t ncons;     /* constraint records of this entry */
    uint16_t cons;     /* word index of the first one in the constraint table */
    uint32_t wmask;    /* bits the policy lets the agent change */
    uint32_t hwmask;   /* bits the hardware can change */
    uint32_t idle;     /* no-effect value of write-1/write-0 style bits */
    uint32_t idlemask; /* bits whose no-effect value is known */
    uint16_t fstart;   /* field names (used by the Python side only) */
    uint8_t fcount;
    uint8_t rread;  /* what decided reading / writing / the protected bits (audit log, Python side) */
    uint8_t rwrite;
    uint8_t rprot;
} clawreg_entry_t;

typedef struct {
    uint32_t start;
    uint32_t size;
    uint16_t known; /* byte offset of its known-register bitmap, or CLAWREG_NO_KNOWN */
    uint16_t name;
} clawreg_block_t;

typedef struct {
    const clawreg_entry_t *entries; /* sorted by addr */
    size_t n_entries;
    const uint32_t *cons;
    const clawreg_block_t *blocks; /* sorted by start, not overlapping */
    size_t n_blocks;
    const uint8_t *known;
} clawreg_policy_t;

/* The hardware edge: raw 32-bit bus access. */
typedef struct {
    uint32_t (*read32)(void *ctx, uint32_t addr);
    void (*write32)(void *ctx, uint32_t addr, uint32_t value);
    void *ctx;
} clawreg_bus_t;

typedef struct {
    int code;
    uint32_t value;  /* value read, or read back / written */
    uint32_t detail; /* CONSTRAINT: field lsb; PROTECTED / DENIED: offending bits */
} clawreg_result_t;

/* Index of the entry for addr, or -1. */
long clawreg_find(const clawreg_policy_t *p, uint32_t addr);

clawreg_result_t clawreg_read(const clawreg_policy_t *p, const clawreg_bus_t *bus, uint32_t addr);
clawreg_result_t clawreg_write(const clawreg_policy_t *p, const clawreg_bus_t *bus, uint32_t addr,
                               uint32_t value);
/* Write field [lsb, lsb+width) of the register at addr with field_value (not shifted). */
clawreg_result_t clawreg_modify(const clawreg_policy_t *p, const clawreg_bus_t *bus, uint32_t addr,
                                unsigned lsb, unsigned width, uint32_t field_value);

#endif /* CLAWREG_POLICY_H */
