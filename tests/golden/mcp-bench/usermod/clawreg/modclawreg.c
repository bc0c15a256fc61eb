/* MicroPython bindings of the clawreg policy core: module `_clawreg`.
 *
 * _clawreg.read(addr) -> (code, value, detail)
 * _clawreg.write(addr, value) -> (code, value, detail)
 * _clawreg.modify(addr, lsb, width, field_value) -> (code, value, detail)
 * _clawreg.policy_id() -> fingerprint of the compiled-in tables
 *
 * clawreg.py prefers these over its own checks when the module is compiled in; it formats the
 * error messages. The bus is the real one: volatile 32-bit loads and stores.
 */
#include "py/obj.h"
#include "py/runtime.h"

#include "clawreg_policy.h"

extern const clawreg_policy_t clawreg_policy;
extern const uint32_t clawreg_policy_id;

static uint32_t bus_read32(void *ctx, uint32_t addr) {
    (void)ctx;
    return *(volatile uint32_t *)(uintptr_t)addr;
}

static void bus_write32(void *ctx, uint32_t addr, uint32_t value) {
    (void)ctx;
    *(volatile uint32_t *)(uintptr_t)addr = value;
}

static const clawreg_bus_t bus = {bus_read32, bus_write32, NULL};

static mp_obj_t result_tuple(clawreg_result_t r) {
    mp_obj_t items[3] = {
        MP_OBJ_NEW_SMALL_INT(r.code),
        mp_obj_new_int_from_uint(r.value),
        mp_obj_new_int_from_uint(r.detail),
    };
    return mp_obj_new_tuple(3, items);
}

static mp_obj_t clawreg_read_obj_fn(mp_obj_t addr) {
    return result_tuple(clawreg_read(&clawreg_policy, &bus, (uint32_t)mp_obj_get_int_truncated(addr)));
}
static MP_DEFINE_CONST_FUN_OBJ_1(clawreg_read_obj, clawreg_read_obj_fn);

static mp_obj_t clawreg_write_obj_fn(mp_obj_t addr, mp_obj_t value) {
    return result_tuple(clawreg_write(&clawreg_policy, &bus, (uint32_t)mp_obj_get_int_truncated(addr),
                                      (uint32_t)mp_obj_get_int_truncated(value)));
}
static MP_DEFINE_CONST_FUN_OBJ_2(clawreg_write_obj, clawreg_write_obj_fn);

static mp_obj_t clawreg_modify_obj_fn(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    return result_tuple(clawreg_modify(&clawreg_policy, &bus, (uint32_t)mp_obj_get_int_truncated(args[0]),
                                       (unsigned)mp_obj_get_int(args[1]), (unsigned)mp_obj_get_int(args[2]),
                                       (uint32_t)mp_obj_get_int_truncated(args[3])));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(clawreg_modify_obj, 4, 4, clawreg_modify_obj_fn);

static mp_obj_t clawreg_policy_id_fn(void) {
    return mp_obj_new_int_from_uint(clawreg_policy_id);
}
static MP_DEFINE_CONST_FUN_OBJ_0(clawreg_policy_id_obj, clawreg_policy_id_fn);

static const mp_rom_map_elem_t clawreg_module_globals_table[] = {
    {MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__clawreg)},
    {MP_ROM_QSTR(MP_QSTR_policy_id), MP_ROM_PTR(&clawreg_policy_id_obj)},
    {MP_ROM_QSTR(MP_QSTR_read), MP_ROM_PTR(&clawreg_read_obj)},
    {MP_ROM_QSTR(MP_QSTR_write), MP_ROM_PTR(&clawreg_write_obj)},
    {MP_ROM_QSTR(MP_QSTR_modify), MP_ROM_PTR(&clawreg_modify_obj)},
};
static MP_DEFINE_CONST_DICT(clawreg_module_globals, clawreg_module_globals_table);

const mp_obj_module_t clawreg_user_cmodule = {
    .base = {&mp_type_module},
    .globals = (mp_obj_dict_t *)&clawreg_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR__clawreg, clawreg_user_cmodule);
