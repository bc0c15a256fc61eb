/* Register policy core: the checks of clawreg.py.j2, in C (see clawreg_policy.h). */
#include "clawreg_policy.h"

static uint32_t field_mask(unsigned lsb, unsigned width) {
    uint32_t ones = width >= 32u ? 0xFFFFFFFFu : ((1u << width) - 1u);
    return lsb >= 32u ? 0u : ones << lsb;
}

static clawreg_result_t result(int code, uint32_t value, uint32_t detail) {
    clawreg_result_t r;
    r.code = code;
    r.value = value;
    r.detail = detail;
    return r;
}

long clawreg_find(const clawreg_policy_t *p, uint32_t addr) {
    size_t lo = 0, hi = p->n_entries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t a = p->entries[mid].addr;
        if (a == addr) {
            return (long)mid;
        }
        if (a < addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -1;
}

/* The block holding addr, or -1. */
static long find_block(const clawreg_policy_t *p, uint32_t addr) {
    size_t lo = 0, hi = p->n_blocks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->blocks[mid].start <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo > 0 && addr - p->blocks[lo - 1].start < p->blocks[lo - 1].size) {
        return (long)(lo - 1);
    }
    return -1;
}

/* CLAWREG_OK with *entry set, or why the address has no entry. */
static int locate(const clawreg_policy_t *p, uint32_t addr, const clawreg_entry_t **entry) {
    long i, b;
    *entry = NULL;
    if (addr & 3u) {
        return CLAWREG_MISALIGNED;
    }
    i = clawreg_find(p, addr);
    if (i >= 0) {
        *entry = &p->entries[i];
        return CLAWREG_OK;
    }
    b = find_block(p, addr);
    if (b < 0) {
        return CLAWREG_OUT_OF_BLOCK;
    }
    if (p->blocks[b].known != CLAWREG_NO_KNOWN) {
        uint32_t w = (addr - p->blocks[b].start) >> 2;
        if (!((p->known[p->blocks[b].known + (w >> 3)] >> (w & 7u)) & 1u)) {
            return CLAWREG_UNKNOWN;
        }
    }
    return CLAWREG_DENIED;
}

/* lsb of the first constrained field inside `touched` whose value in v is not allowed, or -1. */
static int check_constraints(const clawreg_policy_t *p, const clawreg_entry_t *e, uint32_t v,
                             uint32_t touched) {
    unsigned n = e->ncons;
    size_t w = e->cons;
    while (n--) {
        uint32_t h = p->cons[w];
        unsigned lsb = h & 255u, width = (h >> 8) & 255u, kind = (h >> 16) & 255u, cnt = h >> 24;
        if (field_mask(lsb, width) & touched) {
            uint32_t fv = (v & field_mask(lsb, width)) >> lsb;
            int ok = 0;
            if (kind == CLAWREG_C_RANGE) {
                ok = p->cons[w + 1] <= fv && fv <= p->cons[w + 2];
            } else {
                unsigned k;
                for (k = 0; k < cnt && !ok; k++) {
                    ok = (fv & p->cons[w + 2 + 2 * k]) == p->cons[w + 1 + 2 * k];
                }
            }
            if (!ok) {
                return (int)lsb;
            }
        }
        w += 1u + 2u * cnt;
    }
    return -1;
}

clawreg_result_t clawreg_read(const clawreg_policy_t *p, const clawreg_bus_t *bus, uint32_t addr) {
    const clawreg_entry_t *e;
    int code = locate(p, addr, &e);
    if (code != CLAWREG_OK) {
        return result(code, 0, 0);
    }
    if (!(e->flags & CLAWREG_F_READ)) {
        return result(CLAWREG_DENIED, 0, 0);
    }
    return result(CLAWREG_OK, bus->read32(bus->ctx, addr), 0);
}

clawreg_result_t clawreg_write(const clawreg_policy_t *p, const clawreg_bus_t *bus, uint32_t addr,
                               uint32_t value) {
    const clawreg_entry_t *e;
    uint32_t prot;
    int bad_field;
    int code = locate(p, addr, &e);
    if (code != CLAWREG_OK) {
        return result(code, 0, 0);
    }
    if (!(e->flags & CLAWREG_F_WRITE)) {
        return result(CLAWREG_DENIED, 0, 0);
    }
    bad_field = check_constraints(p, e, value, e->wmask);
    if (bad_field >= 0) {
        return result(CLAWREG_CONSTRAINT, 0, (uint32_t)bad_field);
    }
    prot = e->hwmask & ~e->wmask;
    if (prot) {
        /* Protected bits keep their value: the idle pattern when the register must not be
         * read first, else the current value. */
        uint32_t ref = (e->flags & CLAWREG_F_NO_RMW) ? e->idle : bus->read32(bus->ctx, addr);
        uint32_t bad = (value ^ ref) & prot;
        if (bad) {
            return result(CLAWREG_PROTECTED, 0, bad);
        }
    }
    bus->write32(bus->ctx, addr, value);
    if (e->flags & CLAWREG_F_READBACK) {
        return result(CLAWREG_OK, bus->read32(bus->ctx, addr), 0);
    }
    return result(CLAWREG_OK, value, 0);
}

clawreg_result_t clawreg_modify(const clawreg_policy_t *p, const clawreg_bus_t *bus, uint32_t addr,
                                unsigned lsb, unsigned width, uint32_t field_value) {
    const clawreg_entry_t *e;
    uint32_t fm, v, next;
    int bad_field;
    int code = locate(p, addr, &e);
    if (code != CLAWREG_OK) {
        return result(code, 0, 0);
    }
    if (!(e->flags & CLAWREG_F_WRITE)) {
        return result(CLAWREG_DENIED, 0, 0);
    }
    if (width < 1u || lsb + width > 32u) {
        return result(CLAWREG_CONSTRAINT, 0, lsb);
    }
    fm = field_mask(lsb, width);
    if (fm & ~e->wmask) {
        return result(CLAWREG_DENIED, 0, fm & ~e->wmask);
    }
    if (width < 32u && (field_value >> width)) {
        return result(CLAWREG_CONSTRAINT, 0, lsb);
    }
    v = field_value << lsb;
    bad_field = check_constraints(p, e, v, fm);
    if (bad_field >= 0) {
        return result(CLAWREG_CONSTRAINT, 0, (uint32_t)bad_field);
    }
    if (e->flags & CLAWREG_F_NO_RMW) {
        /* No read-modify-write: the other bits get their no-effect value, if they all have one. */
        if (e->hwmask & ~fm & ~e->idlemask) {
            return result(CLAWREG_NOT_RMW_SAFE, 0, 0);
        }
        next = (e->idle & ~fm) | v;
    } else {
        next = (bus->read32(bus->ctx, addr) & ~fm) | v;
    }
    bus->write32(bus->ctx, addr, next);
    if (e->flags & CLAWREG_F_READBACK) {
        return result(CLAWREG_OK, bus->read32(bus->ctx, addr), 0);
    }
    return result(CLAWREG_OK, next, 0);
}
