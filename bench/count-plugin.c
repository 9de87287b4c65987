/* SPDX-License-Identifier: MIT */
/* A TCG plugin for QEMU 7.2 (plugin API version 1) for bench/ablate: counts
 * the guest's executed instructions, the VEX-encoded (AVX) ones among them,
 * XSAVE-family ones, and the instructions translated (JIT work); writes them
 * as JSON to out=PATH when QEMU exits.  Debian ships no qemu-plugin.h: the
 * few declarations it uses are below (the API is a stable C ABI).
 *   gcc -O2 -shared -fPIC -o libcount.so bench/count-plugin.c
 *   qemu-system-x86_64 ... -plugin ./libcount.so,out=counts.json[,kinds=off] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <stdbool.h>
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*udata_cb)(qemu_plugin_id_t, void *);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op, void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t insns, vex, xsave, translated, tbs;
static char out[512];
static bool count_kinds = true;        /* kinds=off: only the per-block counter (less overhead) */

static bool is_vex(const uint8_t *p, size_t n) {
        size_t i = 0;
        while (i < n && (p[i] == 0x66 || p[i] == 0xf2 || p[i] == 0xf3 || p[i] == 0x2e || p[i] == 0x3e ||
                         p[i] == 0x26 || p[i] == 0x36 || p[i] == 0x64 || p[i] == 0x65 || p[i] == 0x67 || p[i] == 0xf0))
                i++;
        return i < n && (p[i] == 0xc4 || p[i] == 0xc5 || p[i] == 0x62);
}

static bool is_xsave(const uint8_t *p, size_t n) {
        for (size_t i = 0; i + 2 < n; i++)
                if (p[i] == 0x0f && (p[i + 1] == 0xae || p[i + 1] == 0xc7)) {
                        unsigned reg = (p[i + 2] >> 3) & 7, mod = p[i + 2] >> 6;
                        if (mod == 3)
                                return false;
                        if (p[i + 1] == 0xae)
                                return reg == 4 || reg == 5 || reg == 6;        /* xsave, xrstor, xsaveopt */
                        return reg == 3 || reg == 4 || reg == 5;                /* xrstors, xsavec, xsaves */
                }
        return false;
}

static void trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
        size_t n = qemu_plugin_tb_n_insns(tb);
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insns, n);
        __atomic_add_fetch(&translated, n, __ATOMIC_RELAXED);
        __atomic_add_fetch(&tbs, 1, __ATOMIC_RELAXED);
        for (size_t i = 0; count_kinds && i < n; i++) {
                struct qemu_plugin_insn *in = qemu_plugin_tb_get_insn(tb, i);
                const uint8_t *d = qemu_plugin_insn_data(in);
                size_t sz = qemu_plugin_insn_size(in);
                if (is_vex(d, sz))
                        qemu_plugin_register_vcpu_insn_exec_inline(in, QEMU_PLUGIN_INLINE_ADD_U64, &vex, 1);
                else if (is_xsave(d, sz))
                        qemu_plugin_register_vcpu_insn_exec_inline(in, QEMU_PLUGIN_INLINE_ADD_U64, &xsave, 1);
        }
}

static void at_exit(qemu_plugin_id_t id, void *u) {
        FILE *f = fopen(out, "w");
        if (f) {
                fprintf(f, "{\"insns\": %llu, \"vex\": %llu, \"xsave\": %llu, \"translated\": %llu, \"tbs\": %llu}\n",
                        (unsigned long long) insns, (unsigned long long) vex, (unsigned long long) xsave,
                        (unsigned long long) translated, (unsigned long long) tbs);
                fclose(f);
        }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc,
                                                               char **argv) {
        for (int i = 0; i < argc; i++)
                if (strncmp(argv[i], "out=", 4) == 0)
                        snprintf(out, sizeof out, "%s", argv[i] + 4);
                else if (strcmp(argv[i], "kinds=off") == 0)
                        count_kinds = false;
        if (!out[0])
                return -1;
        qemu_plugin_register_vcpu_tb_trans_cb(id, trans);
        qemu_plugin_register_atexit_cb(id, at_exit, NULL);
        return 0;
}
