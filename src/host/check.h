/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The virtualization host check behind `phyllo host check`: one result per
 * check with a remedy when not PASS, the requirement tier verdict, and the
 * host budget (in struct host_facts).
 */
#include <stdbool.h>
#include "error.h"
#include "host.h"
#include "qemu-modules.h"
#include "strv.h"

struct qemu_tools;

enum host_check_status { HOST_CHECK_PASS, HOST_CHECK_INFO, HOST_CHECK_WARN, HOST_CHECK_FAIL };

struct host_check_result {
        char *id;              /* stable: "kvm.device", "iommu.cmdline", "gpu.0000:01:00.0" */
        char *title;           /* "KVM device /dev/kvm" */
        enum host_check_status status;
        char *detail;          /* what was found */
        char *remedy;          /* one line, NULL on PASS */
};

enum host_tier { HOST_TIER_NONE, HOST_TIER_MINIMUM, HOST_TIER_RECOMMENDED };

struct host_check_report {
        struct host_check_result *v;
        size_t n;
        enum host_tier tier;
        strv short_of;         /* what the next tier up lacks, one phrase each */
        struct host_qemu_modules modules;  /* QEMU's modules, read through the root prefix */
};

/*
 * Runs every check on facts loaded by host_facts_load().  tools (from
 * qemu_tools_find()) may be NULL: the tools and firmware checks then report
 * INFO "not checked".  When tools->qemu is set it is run with --version
 * (a real process: tools are about the real host).
 */
int host_check_run(const struct host_facts *h, const struct qemu_tools *tools, struct host_check_report *ret,
                   phy_error *err);
void host_check_report_done(struct host_check_report *r);

/* Appends one result (detail copied); for the layers above that add their
 * own lines (QEMU's features, src/qemu).  -ENOMEM. */
int host_check_report_add(struct host_check_report *r, const char *id, const char *title, enum host_check_status st,
                          const char *detail, const char *remedy);

const struct host_check_result *host_check_find(const struct host_check_report *r, const char *id);
const char *host_check_status_name(enum host_check_status s);   /* "PASS" ... */
const char *host_tier_name(enum host_tier t);                     /* "none", "minimum", "recommended" */

/* Runs `program --version`, first output line into out.  -errno, or
 * -ECHILD with err set when it exits non-zero or dies. */
int host_program_version(const char *program, char *out, size_t len, phy_error *err);
