/* SPDX-License-Identifier: MIT */
/* phyllo create, list, show, edit, delete, profiles: the VM definitions. */
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catalog/unattend.h"
#include "cli.h"
#include "ops/edit.h"
#include "run/run.h"
#include "cleanup.h"
#include "fileio.h"
#include "vm/profile.h"
#include "vm/vm.h"

/* ---- create ------------------------------------------------------------- */


/* The model is checked without QEMU's capabilities when they cannot be
 * probed: say so. */
static void caps_warning(json_object *o) {
        const char *w = cli_jstr(o, "caps_warning");
        if (*w)
                fprintf(stderr, "phyllo: warning: %s; checking the definition without QEMU's capabilities\n", w);
}

/* A path option: absolute against our directory (phyllod has none of ours). */
static int add_path(json_object *b, const char *key, const char *path) {
        char *abs = cli_abs_path(path);
        if (!abs)
                return -ENOMEM;
        json_object_object_add(b, key, json_object_new_string(abs));
        free(abs);
        return 0;
}

int cmd_create(struct cli_ctx *ctx, int argc, char **argv) {
        enum { OPT_PROFILE = 256, OPT_CPUS, OPT_MEMORY, OPT_DISK, OPT_NO_DISK, OPT_ISO, OPT_DRIVERS, OPT_DISPLAY, OPT_GPU,
               OPT_KERNEL, OPT_INITRD, OPT_APPEND, OPT_UEFI, OPT_NO_UEFI, OPT_FORCE, OPT_FORWARD,
               OPT_USB_REDIRECT, OPT_NET, OPT_OS, OPT_UNVERIFIED, OPT_UNATTENDED, OPT_USER, OPT_PASSWORD_FILE,
               OPT_TIMEZONE, OPT_LOCALE, OPT_HOSTNAME, OPT_EDITION, OPT_JSON };
        static const struct option opts[] = {
                { "profile", required_argument, NULL, OPT_PROFILE },
                { "cpus", required_argument, NULL, OPT_CPUS },
                { "memory", required_argument, NULL, OPT_MEMORY },
                { "disk", required_argument, NULL, OPT_DISK },
                { "no-disk", no_argument, NULL, OPT_NO_DISK },
                { "iso", required_argument, NULL, OPT_ISO },
                { "drivers", required_argument, NULL, OPT_DRIVERS },
                { "display", required_argument, NULL, OPT_DISPLAY },
                { "gpu", required_argument, NULL, OPT_GPU },
                { "kernel", required_argument, NULL, OPT_KERNEL },
                { "initrd", required_argument, NULL, OPT_INITRD },
                { "append", required_argument, NULL, OPT_APPEND },
                { "uefi", no_argument, NULL, OPT_UEFI },
                { "no-uefi", no_argument, NULL, OPT_NO_UEFI },
                { "force", no_argument, NULL, OPT_FORCE },
                { "forward", required_argument, NULL, OPT_FORWARD },
                { "usb-redirect", required_argument, NULL, OPT_USB_REDIRECT },
                { "net", required_argument, NULL, OPT_NET },
                { "os", required_argument, NULL, OPT_OS },                      /* the catalog (issue 15) */
                { "unverified", no_argument, NULL, OPT_UNVERIFIED },
                { "json", no_argument, NULL, OPT_JSON },
                { "unattended", no_argument, NULL, OPT_UNATTENDED },            /* the answer file (issue 15) */
                { "user", required_argument, NULL, OPT_USER },
                { "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
                { "timezone", required_argument, NULL, OPT_TIMEZONE },
                { "locale", required_argument, NULL, OPT_LOCALE },
                { "hostname", required_argument, NULL, OPT_HOSTNAME },
                { "edition", required_argument, NULL, OPT_EDITION },
                { 0 },
        };
        /* The options become POST /v1/vms's members (src/ops/vm.c checks them). */
        _cleanup_json_ json_object *b = json_object_new_object();
        json_object *fwd = json_object_new_array();
        json_object_object_add(b, "forwards", fwd);
        unsigned long long n;
        const char *profile = NULL, *path_key = NULL;
        bool have_kernel = false, have_extra = false;
        const char *os = NULL, *iso = NULL;     /* --os: from the catalog; --iso: maybe identified by it */
        bool unverified = false, json = false, unattended = false;
        struct catalog_unattend u = { 0 };
        const char *password_file = NULL;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                const char *key = NULL;
                switch (c) {
                case OPT_PROFILE: profile = optarg; key = "profile"; break;
                case OPT_CPUS:
                        if (parse_uint(optarg, 255, &n) < 0 || n < 1)
                                return cli_usage_error(cli_usage(), "invalid --cpus '%s'; use a whole number "
                                                       "from 1 to 255", optarg);
                        json_object_object_add(b, "cpus", json_object_new_int((int) n));
                        break;
                case OPT_MEMORY:
                case OPT_DISK:
                        /* A bare number: MiB of memory, GiB of disk. */
                        if (parse_size_unit(optarg, c == OPT_DISK ? SIZE_GIB : SIZE_MIB, &n) < 0 || n == 0)
                                return cli_usage_error(cli_usage(), "invalid --%s '%s'; use a size such as %s "
                                                       "(K, M, G or T; a bare number is %s)",
                                                       c == OPT_DISK ? "disk" : "memory", optarg,
                                                       c == OPT_DISK ? "64G" : "4G", c == OPT_DISK ? "GiB" : "MiB");
                        json_object_object_add(b, c == OPT_DISK ? "disk" : "memory", json_object_new_int64((int64_t) n));
                        break;
                case OPT_NO_DISK: json_object_object_add(b, "no_disk", json_object_new_boolean(true)); break;
                case OPT_ISO: path_key = "iso"; iso = optarg; break;
                case OPT_DRIVERS: path_key = "drivers"; break;
                case OPT_KERNEL: path_key = "kernel"; have_kernel = true; break;
                case OPT_INITRD: path_key = "initrd"; have_extra = true; break;
                case OPT_APPEND: key = "append"; have_extra = true; break;
                case OPT_DISPLAY: key = "display"; break;
                case OPT_GPU: key = "gpu"; break;
                case OPT_NET: key = "net"; break;
                case OPT_OS: os = optarg; break;
                case OPT_UNVERIFIED: unverified = true; break;
                case OPT_JSON: json = true; break;
                case OPT_UNATTENDED: unattended = true; break;
                case OPT_USER: u.user = optarg; break;
                case OPT_PASSWORD_FILE: password_file = optarg; break;
                case OPT_TIMEZONE: u.timezone = optarg; break;
                case OPT_LOCALE: u.locale = optarg; break;
                case OPT_HOSTNAME: u.hostname = optarg; break;
                case OPT_EDITION: u.edition = optarg; break;
                case OPT_UEFI:
                case OPT_NO_UEFI: json_object_object_add(b, "uefi", json_object_new_boolean(c == OPT_UEFI)); break;
                case OPT_FORCE: json_object_object_add(b, "force", json_object_new_boolean(true)); break;
                case OPT_FORWARD: json_object_array_add(fwd, json_object_new_string(optarg)); break;
                case OPT_USB_REDIRECT:
                        if (parse_uint(optarg, VM_USB_REDIRECT_MAX, &n) < 0)
                                return cli_usage_error(cli_usage(), "invalid --usb-redirect '%s'; use 0 to %u "
                                                       "(USB redirection channels over SPICE)", optarg,
                                                       VM_USB_REDIRECT_MAX);
                        json_object_object_add(b, "usb_redirect", json_object_new_int((int) n));
                        break;
                default: return cli_usage_error(cli_usage(), "unknown option for 'create'");
                }
                if (key)
                        json_object_object_add(b, key, json_object_new_string(optarg));
                if (path_key && add_path(b, path_key, optarg) < 0)
                        return cli_usage_error(cli_usage(), "out of memory");
                path_key = NULL;
        }
        if (optind + 1 != argc)
                return cli_usage_error(cli_usage(), optind + 1 > argc ? "missing the VM name"
                                                                        : "more than one VM name given");
        const char *name = argv[optind];
        int st = cli_name_arg(name);
        if (st)
                return st;
        /* --os (downloads when missing) or an --iso osinfo recognises picks the
         * profile and the resources the user left unset. */
        if (os || (iso && !profile)) {
                _cleanup_json_ json_object *plan = NULL;
                _cleanup_free_ char *os_iso = NULL;
                if ((st = cli_catalog_for_create(ctx, os, iso, unverified, &plan, &os_iso)))
                        return st;
                if (!profile)
                        profile = cli_jstr(plan, "profile");
                if (os_iso && add_path(b, "iso", os_iso) < 0)
                        return cli_usage_error(cli_usage(), "out of memory");
                cli_catalog_apply(plan, b);     /* b holds plan's members: profile stays valid */
        }
        if (!profile)
                return cli_usage_error(cli_usage(), "--profile is required; one of: %s", vm_profile_names());
        if (have_extra && !have_kernel)
                return cli_usage_error(cli_usage(), "--initrd and --append need --kernel");
        if (!unattended && (u.user || password_file || u.timezone || u.locale || u.hostname || u.edition))
                return cli_usage_error(cli_usage(), "--user, --password-file, --timezone, --locale, --hostname and "
                                       "--edition go with --unattended");
        if (unattended) {
                if (!u.user || !password_file)
                        return cli_usage_error(cli_usage(), "--unattended needs --user and --password-file (the "
                                               "password is read from a file, never from the command line)");
                if (have_kernel)
                        return cli_usage_error(cli_usage(), "--unattended boots the media's own kernel; leave out "
                                               "--kernel");
                json_object *jiso = json_object_object_get(b, "iso");
                u.drivers = json_object_object_get_ex(b, "drivers", NULL);
                if ((st = cli_catalog_unattended(ctx, os, jiso ? json_object_get_string(jiso) : NULL, profile,
                                                 password_file, &u, b)))
                        return st;
        }
        json_object_object_add(b, "name", json_object_new_string(name));
        json_object *o = NULL;
        if ((st = cli_call(ctx, "POST", json_object_get(b), &o, "/v1/vms")))
                return st;
        caps_warning(o);
        cli_print_warnings(o);
        if (json) {
                cli_print_json(o);
                return 0;
        }
        char mem[32], dsk[48] = "no disk";
        int cpus = (int) cli_jint(o, "cpus");
        format_size((uint64_t) cli_jint(o, "memory"), mem, sizeof mem);
        if (cli_jint(o, "disk_size")) {
                char sz[32];
                format_size((uint64_t) cli_jint(o, "disk_size"), sz, sizeof sz);
                snprintf(dsk, sizeof dsk, "%s disk", sz);
        }
        printf("created VM '%s' (profile %s: %d vCPU%s, %s memory, %s) in %s\n", name, cli_jstr(o, "profile"), cpus,
               cpus == 1 ? "" : "s", mem, dsk, cli_jstr(o, "dir"));
        json_object *inst = json_object_object_get(o, "install");
        if (inst) {
                json_object *w = json_object_object_get(inst, "warnings");
                for (size_t i = 0; w && i < json_object_array_length(w); i++)
                        fprintf(stderr, "phyllo: warning: %s\n", json_object_get_string(json_object_array_get_idx(w, i)));
                printf("installing unattended (%s, by %s): at the installer's reboot the install run ends and VM "
                       "'%s' starts from its disk ('phyllo logs %s --follow' shows the installer)\n",
                       cli_jstr(inst, "answer"), cli_jstr(inst, "delivery"), name, name);
        }
        json_object_put(o);
        return 0;
}

/* ---- list, show --------------------------------------------------------- */


static bool json_flag(int argc, char **argv, const char *usage, int *ret_status) {
        static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
        bool json = false;
        *ret_status = 0;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                if (c == 'j')
                        json = true;
                else
                        *ret_status = cli_usage_error(usage, "unknown option");
        }
        return json;
}

/* ---- list ----------------------------------------------------------------
 * The table is read from GET /v1/vms's text as it comes (phyllod's reply, or
 * ops_list_text's same bytes without a daemon) by a reader of an array of
 * flat objects: with 10,000 VMs, json-c's objects (a hash table each) and
 * printf were most of phyllo's time.  Anything else in the text (another
 * phyllod's shape) goes to json-c as before. */

#define LIST_FIELD_MAX 2048

struct list_row {
        char name[LIST_FIELD_MAX], profile[LIST_FIELD_MAX], state[LIST_FIELD_MAX], error[LIST_FIELD_MAX];
        long long cpus, memory;
        bool has_cpus, has_memory, has_profile, has_error;
};

static const char *skip_ws(const char *p) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                p++;
        return p;
}

static int hex4(const char *p) {
        int v = 0;
        for (int i = 0; i < 4; i++) {
                int c = p[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                            : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (d < 0)
                        return -1;
                v = v * 16 + d;
        }
        return v;
}

/* A JSON string at p (its opening quote) into out, unescaped (UTF-8);
 * what follows it, or NULL when malformed or longer than out. */
static const char *scan_string(const char *p, char out[static LIST_FIELD_MAX]) {
        size_t n = 0;
        if (*p++ != '"')
                return NULL;
        for (;;) {
                /* The plain run up to a quote, a backslash or a control character. */
                const char *run = p;
                while ((unsigned char) *p >= 0x20 && *p != '"' && *p != '\\')
                        p++;
                size_t k = (size_t) (p - run);
                if (n + k + 4 >= LIST_FIELD_MAX)
                        return NULL;
                memcpy(out + n, run, k);
                n += k;
                unsigned char c = (unsigned char) *p++;
                unsigned cp;
                if (c == '"')
                        break;
                if (c != '\\')
                        return NULL;    /* a control character, or the text's end */
                switch (*p++) {
                case '"': cp = '"'; break;
                case '\\': cp = '\\'; break;
                case '/': cp = '/'; break;
                case 'b': cp = '\b'; break;
                case 'f': cp = '\f'; break;
                case 'n': cp = '\n'; break;
                case 'r': cp = '\r'; break;
                case 't': cp = '\t'; break;
                case 'u': {
                        int h = hex4(p);
                        if (h < 0)
                                return NULL;
                        p += 4;
                        cp = (unsigned) h;
                        if (cp >= 0xd800 && cp < 0xdc00 && p[0] == '\\' && p[1] == 'u') {
                                int l = hex4(p + 2);
                                if (l < 0xdc00 || l >= 0xe000)
                                        return NULL;
                                p += 6;
                                cp = 0x10000 + ((cp - 0xd800) << 10) + ((unsigned) l - 0xdc00);
                        } else if (cp >= 0xd800 && cp < 0xe000)
                                return NULL;
                        break;
                }
                default:
                        return NULL;
                }
                if (cp < 0x80)
                        out[n++] = (char) cp;
                else if (cp < 0x800) {
                        out[n++] = (char) (0xc0 | cp >> 6);
                        out[n++] = (char) (0x80 | (cp & 0x3f));
                } else if (cp < 0x10000) {
                        out[n++] = (char) (0xe0 | cp >> 12);
                        out[n++] = (char) (0x80 | ((cp >> 6) & 0x3f));
                        out[n++] = (char) (0x80 | (cp & 0x3f));
                } else {
                        out[n++] = (char) (0xf0 | cp >> 18);
                        out[n++] = (char) (0x80 | ((cp >> 12) & 0x3f));
                        out[n++] = (char) (0x80 | ((cp >> 6) & 0x3f));
                        out[n++] = (char) (0x80 | (cp & 0x3f));
                }
        }
        out[n] = '\0';
        return p;
}

/* One {"key": string or whole number, ...} into row (other keys skipped);
 * what follows it, or NULL. */
static const char *scan_row(const char *p, struct list_row *row) {
        char key[LIST_FIELD_MAX];
        /* Field by field: zeroing 8 KiB a row was most of the read. */
        row->name[0] = row->profile[0] = row->state[0] = row->error[0] = '\0';
        row->cpus = row->memory = 0;
        row->has_cpus = row->has_memory = row->has_profile = row->has_error = false;
        if (*(p = skip_ws(p)) != '{')
                return NULL;
        p = skip_ws(p + 1);
        if (*p == '}')
                return p + 1;
        for (;;) {
                if (!(p = scan_string(p, key)) || *(p = skip_ws(p)) != ':')
                        return NULL;
                p = skip_ws(p + 1);
                char *str = strcmp(key, "name") == 0      ? row->name
                            : strcmp(key, "profile") == 0 ? row->profile
                            : strcmp(key, "state") == 0   ? row->state
                            : strcmp(key, "error") == 0   ? row->error : NULL;
                if (*p == '"') {
                        char junk[LIST_FIELD_MAX];
                        if (!(p = scan_string(p, str ? str : junk)))
                                return NULL;
                        row->has_profile |= str == row->profile;
                        row->has_error |= str == row->error;
                } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
                        /* A whole number (strtoll's locale handling was a fifth of the read). */
                        bool neg = *p == '-';
                        unsigned long long v = 0;
                        const char *d = p += neg;
                        for (; *p >= '0' && *p <= '9' && p - d < 18; p++)
                                v = v * 10 + (unsigned long long) (*p - '0');
                        if (p == d || (*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E')
                                return NULL;    /* none, over 18 digits, or not whole: json-c's */
                        long long sv = neg ? -(long long) v : (long long) v;
                        if (strcmp(key, "cpus") == 0)
                                row->cpus = sv, row->has_cpus = true;
                        else if (strcmp(key, "memory") == 0)
                                row->memory = sv, row->has_memory = true;
                } else if (strncmp(p, "null", 4) == 0)
                        p += 4;
                else
                        return NULL;
                p = skip_ws(p);
                if (*p == '}')
                        return p + 1;
                if (*p != ',')
                        return NULL;
                p = skip_ws(p + 1);
        }
}

/* s in a column of width (printf's %-*s, or %*s when right) at line + *at,
 * then sep. */
static void put_pad(char *line, size_t *at, const char *s, size_t width, bool right, const char *sep) {
        size_t n = strlen(s), pad = width > n ? width - n : 0;
        if (right)
                memset(line + *at, ' ', pad), *at += pad;
        memcpy(line + *at, s, n);
        *at += n;
        if (!right)
                memset(line + *at, ' ', pad), *at += pad;
        n = strlen(sep);
        memcpy(line + *at, sep, n);
        *at += n;
}

/* {"vms": [rows]} read twice: first only checked (nothing printed when the
 * text is not of that shape: json-c's turn), then printed as the table,
 * each row's error on stderr before it.  0, or -EINVAL when not of that shape. */
static int list_print_text(const char *text) {
        _cleanup_free_ struct list_row *row = malloc(sizeof *row);
        /* A row's line: three fields of at most LIST_FIELD_MAX, two numbers, padding. */
        _cleanup_free_ char *line = malloc(3 * LIST_FIELD_MAX + 256);
        if (!row || !line)
                return -ENOMEM;
        for (int pass = 0; pass < 2; pass++) {
                char key[LIST_FIELD_MAX];
                const char *p = skip_ws(text);
                if (*p != '{' || !(p = scan_string(skip_ws(p + 1), key)) || strcmp(key, "vms") != 0 ||
                    *(p = skip_ws(p)) != ':' || *(p = skip_ws(p + 1)) != '[')
                        return -EINVAL;
                if (pass == 1)
                        printf("%-24s %-10s %5s %8s  %s\n", "NAME", "PROFILE", "CPUS", "MEMORY", "STATE");
                p = skip_ws(p + 1);
                long long last_mem = 0, last_cpus = 0;
                bool mem_of = false, cpus_of = false;      /* mem and cpus hold last_mem's, last_cpus's text */
                char mem[32] = "-", cpus[24] = "-";
                while (*p != ']') {
                        if (!(p = scan_row(p, row)) || !row->name[0] || !row->state[0])
                                return -EINVAL;
                        p = skip_ws(p);
                        if (*p == ',')
                                p = skip_ws(p + 1);
                        else if (*p != ']')
                                return -EINVAL;
                        if (pass == 0)
                                continue;
                        if (row->has_error)
                                fprintf(stderr, "phyllo: %s\n", row->error);
                        /* Rows mostly repeat their numbers: each formatted when it changes. */
                        if (!row->has_cpus)
                                strcpy(cpus, "-"), cpus_of = false;
                        else if (!cpus_of || row->cpus != last_cpus)
                                snprintf(cpus, sizeof cpus, "%lld", row->cpus), last_cpus = row->cpus, cpus_of = true;
                        if (!row->has_memory)
                                strcpy(mem, "-"), mem_of = false;
                        else if (!mem_of || row->memory != last_mem)
                                format_size((unsigned long long) row->memory, mem, sizeof mem), last_mem = row->memory,
                                        mem_of = true;
                        /* One write a row, as printf("%-24s %-10s %5s %8s  %s\n") would print it. */
                        size_t at = 0;
                        put_pad(line, &at, row->name, 24, false, " ");
                        put_pad(line, &at, row->has_profile ? row->profile : "-", 10, false, " ");
                        put_pad(line, &at, cpus, 5, true, " ");
                        put_pad(line, &at, mem, 8, true, "  ");
                        put_pad(line, &at, row->state, 0, false, "\n");
                        fwrite(line, 1, at, stdout);
                }
                if (*(p = skip_ws(p + 1)) != '}' || *skip_ws(p + 1))
                        return -EINVAL;
        }
        return 0;
}

int cmd_list(struct cli_ctx *ctx, int argc, char **argv) {
        int st;
        bool json = json_flag(argc, argv, cli_usage(), &st);
        if (st)
                return st;
        if (optind < argc)
                return cli_usage_error(cli_usage(), "unexpected argument '%s'", argv[optind]);
        json_object *reply = NULL, *vms = NULL;
        int r;
        if (!json) {
                /* GET /v1/vms's text from phyllod, or the same bytes here. */
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                bool direct = false;
                if ((r = cli_api_get_text(ctx, "/v1/vms", &text, &len, &direct)))
                        return r;
                if (direct) {
                        struct ops_ctx oc;
                        phy_error err = { 0 };
                        if ((r = cli_ops(ctx, &oc)))
                                return r;
                        if (ops_list_text(&oc, &text, &len, &err) < 0)
                                return cli_fail(&err);
                }
                if (strlen(text) == len && list_print_text(text) == 0)
                        return 0;
                if (!(reply = json_tokener_parse(text))) {
                        phy_error err = { 0 };
                        phy_error_set(&err, EPROTO, "phyllod sent a reply that is not JSON");
                        return cli_fail(&err);
                }
        } else if ((r = cli_api_call(ctx, "GET", "/v1/vms", NULL, &reply)))
                /* GET /v1/vms through phyllod or directly (src/cli/api.c). */
                return r;
        if (!json_object_object_get_ex(reply, "vms", &vms) || !json_object_is_type(vms, json_type_array)) {
                json_object_put(reply);
                phy_error err = { 0 };
                phy_error_set(&err, EPROTO, "the VM list has no 'vms' array");
                return cli_fail(&err);
        }
        if (!json)
                printf("%-24s %-10s %5s %8s  %s\n", "NAME", "PROFILE", "CPUS", "MEMORY", "STATE");
        for (size_t i = 0; i < json_object_array_length(vms); i++) {
                json_object *o = json_object_array_get_idx(vms, i), *v = NULL;
                /* A VM whose definition does not load is listed as invalid, its
                 * error on stderr (not in --json's objects). */
                if (json_object_object_get_ex(o, "error", &v)) {
                        fprintf(stderr, "phyllo: %s\n", json_object_get_string(v));
                        json_object_object_del(o, "error");
                }
                if (json)
                        continue;
                char mem[32] = "-", cpus[16] = "-";
                if (json_object_object_get_ex(o, "memory", &v))
                        format_size((uint64_t) json_object_get_int64(v), mem, sizeof mem);
                if (json_object_object_get_ex(o, "cpus", &v))
                        snprintf(cpus, sizeof cpus, "%d", json_object_get_int(v));
                json_object *nm = NULL, *pr = NULL, *stt = NULL;
                json_object_object_get_ex(o, "name", &nm);
                json_object_object_get_ex(o, "state", &stt);
                printf("%-24s %-10s %5s %8s  %s\n", json_object_get_string(nm),
                       json_object_object_get_ex(o, "profile", &pr) ? json_object_get_string(pr) : "-", cpus, mem,
                       json_object_get_string(stt));
        }
        if (json)
                cli_print_json(json_object_get(vms));
        json_object_put(reply);
        return 0;
}


int cmd_show(struct cli_ctx *ctx, int argc, char **argv) {
        int st;
        bool json = json_flag(argc, argv, cli_usage(), &st);
        if (st)
                return st;
        if (optind + 1 != argc)
                return cli_usage_error(cli_usage(), "expected one VM name");
        if ((st = cli_name_arg(argv[optind])))
                return st;
        /* GET /v1/vms/NAME through phyllod or directly (src/cli/api.c). */
        json_object *reply = NULL, *v = NULL;
        int r = cli_call(ctx, "GET", NULL, &reply, "/v1/vms/%s", argv[optind]);
        if (r)
                return r;
        if (json) {
                if (json_object_object_get_ex(reply, "model", &v))
                        cli_print_json(json_object_get(v));
        } else if (json_object_object_get_ex(reply, "model_text", &v))
                fputs(json_object_get_string(v), stdout);
        json_object_put(reply);
        return 0;
}

/* ---- edit --------------------------------------------------------------- */


/* Runs $EDITOR (words split on blanks, no shell) on path; 0 when it exits 0. */
static int run_editor(const char *path, phy_error *err) {
        const char *ed = getenv("EDITOR");
        if (!ed || !*ed)
                ed = "vi";
        _cleanup_free_ char *copy = strdup(ed);
        _cleanup_strv_ strv args = { 0 };
        if (!copy)
                return phy_error_set(err, ENOMEM, "out of memory");
        char *save = NULL;
        for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
                if (strv_push(&args, w) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
        if (args.n == 0 || strv_push(&args, path) < 0)
                return phy_error_set(err, EINVAL, "$EDITOR is empty");
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
                return phy_error_set(err, errno, "cannot start the editor: %s", strerror(errno));
        if (pid == 0) {
                execvp(args.v[0], args.v);
                _exit(127);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return phy_error_set(err, errno, "cannot wait for the editor: %s", strerror(errno));
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                return phy_error_set(err, ENOENT, "cannot run the editor '%s'; set $EDITOR", args.v[0]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return phy_error_set(err, EIO, "the editor '%s' failed (status %d)", args.v[0],
                                     WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        return 0;
}

int cmd_edit(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { 0 } };
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;)
                return cli_usage_error(cli_usage(), "unknown option for 'edit'");
        if (optind + 1 != argc)
                return cli_usage_error(cli_usage(), "expected one VM name");
        const char *name = argv[optind];
        struct ops_ctx oc;
        int st = cli_name_arg(name);
        if (st || cli_ops(ctx, &oc))
                return st ? st : 1;
        /* The text as phyllod (or the library here) has it. */
        json_object *cur = NULL;
        if ((st = cli_call(ctx, "GET", NULL, &cur, "/v1/vms/%s", name)))
                return st;
        _cleanup_free_ char *text = strdup(cli_jstr(cur, "config"));
        json_object_put(cur);
        phy_error err = { 0 };
        _cleanup_free_ char *tmp = NULL, *edited = NULL;
        if (!text) {
                phy_error_set(&err, ENOMEM, "out of memory");
                return cli_fail(&err);
        }
        if (ops_edit_copy_new(&oc, name, text, &tmp, &err) < 0)
                return cli_fail(&err);
        json_object *o = NULL;
        /* Like visudo and crontab -e: a refused edit is offered again on a
         * terminal, from the user's own text. */
        for (;;) {
                if (run_editor(tmp, &err) < 0) {
                        unlink(tmp);
                        phy_error_prefix(&err, "the definition of '%s' was not changed", name);
                        return cli_fail(&err);
                }
                free(edited);
                edited = NULL;
                int r = file_read_all(tmp, 1024 * 1024, &edited, NULL);
                if (r < 0) {
                        phy_error_set(&err, r, "cannot read the edited copy '%s': %s", tmp, strerror(-r));
                        return cli_fail(&err);
                }
                if (strcmp(edited, text) == 0) {
                        unlink(tmp);
                        printf("no changes to VM '%s'\n", name);
                        return 0;
                }
                /* PUT: checked as a whole (parse, name, model) before it replaces
                 * the original; messages name the edited copy. */
                json_object *b = json_object_new_object();
                json_object_object_add(b, "config", json_object_new_string(edited));
                json_object_object_add(b, "source", json_object_new_string(tmp));
                /* Saved only over the text the editor started from (under the edit lock). */
                json_object_object_add(b, "base", json_object_new_string(text));
                if (!(st = cli_call(ctx, "PUT", b, &o, "/v1/vms/%s", name)))
                        break;
                if (st == 2 && isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
                        fprintf(stderr, "Edit again? [Y/n] ");
                        char line[16];
                        if (fgets(line, sizeof line, stdin) && (line[0] == '\n' || line[0] == 'y' || line[0] == 'Y'))
                                continue;
                }
                /* One copy kept for the user: earlier refused ones are gone. */
                ops_edit_copies_remove(&oc, name, tmp);
                fprintf(stderr, "phyllo: the definition of '%s' was not changed; your edited copy is %s\n",
                        name, tmp);
                return st == 2 ? 1 : st;
        }
        caps_warning(o);
        json_object_put(o);
        unlink(tmp);
        ops_edit_copies_remove(&oc, name, NULL);
        printf("saved VM '%s'\n", name);
        /* A running VM keeps the definition it started with. */
        json_object *s = NULL;
        if (cli_call(ctx, "GET", NULL, &s, "/v1/vms/%s/status", name) == 0) {
                enum run_state_kind k;
                if (run_state_from_name(cli_jstr(s, "state"), &k) >= 0 && run_state_active(k))
                        printf("VM '%s' is running: the change applies at its next start ('phyllo restart %s')\n",
                               name, name);
                json_object_put(s);
        }
        return 0;
}

/* ---- delete, profiles --------------------------------------------------- */


int cmd_delete(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "force", no_argument, NULL, 'f' }, { "yes", no_argument, NULL, 'y' },
                                              { 0 } };
        bool force = false, yes = false;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                if (c == 'f')
                        force = true;
                else if (c == 'y')
                        yes = true;
                else
                        return cli_usage_error(cli_usage(), "unknown option for 'delete'");
        }
        if (optind + 1 != argc)
                return cli_usage_error(cli_usage(), "expected one VM name");
        int st = cli_name_arg(argv[optind]);
        if (st)
                return st;
        /* A name that names no VM gets its one answer before any question. */
        if (!yes) {
                json_object *l = NULL, *vms = NULL;
                if ((st = cli_call(ctx, "GET", NULL, &l, "/v1/vms")))
                        return st;
                bool found = false;
                json_object_object_get_ex(l, "vms", &vms);
                for (size_t i = 0; vms && i < json_object_array_length(vms) && !found; i++)
                        found = strcmp(cli_jstr(json_object_array_get_idx(vms, i), "name"), argv[optind]) == 0;
                json_object_put(l);
                if (found && (st = cli_confirm(false, "delete VM '%s' with its disks, snapshots, UEFI vars and TPM "
                                               "state", argv[optind])))
                        return st;
        }
        /* DELETE /v1/vms/NAME through phyllod or directly (src/cli/api.c);
         * linked clones reading its frozen disks protect it (src/store/clone.c). */
        json_object *body = json_object_new_object(), *reply = NULL;
        if (force)
                json_object_object_add(body, "force", json_object_new_boolean(true));
        int r = cli_call(ctx, "DELETE", body, &reply, "/v1/vms/%s", argv[optind]);
        if (r)
                return r;
        json_object_put(reply);
        printf("deleted VM '%s'\n", argv[optind]);
        return 0;
}


int cmd_profiles(struct cli_ctx *ctx, int argc, char **argv) {
        int st;
        bool json = json_flag(argc, argv, cli_usage(), &st);
        if (st)
                return st;
        if (optind < argc)
                return cli_usage_error(cli_usage(), "unexpected argument '%s'", argv[optind]);
        json_object *o = NULL, *arr = NULL;
        if ((st = cli_call(ctx, "GET", NULL, &o, "/v1/profiles")))
                return st;
        json_object_object_get_ex(o, "profiles", &arr);
        if (json) {
                cli_print_json(json_object_get(arr));
                json_object_put(o);
                return 0;
        }
        printf("%-10s %4s %6s %5s  %-14s %-8s  %s\n", "PROFILE", "CPUS", "MEMORY", "DISK", "DISK BUS", "NIC",
               "SUMMARY");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *p = json_object_array_get_idx(arr, i);
                char mem[32], dsk[32], bus[32];
                format_size((uint64_t) cli_jint(p, "memory"), mem, sizeof mem);
                format_size((uint64_t) cli_jint(p, "disk_size"), dsk, sizeof dsk);
                const char *b1 = cli_jstr(p, "disk_bus"), *b2 = cli_jstr(p, "disk_bus_with_drivers");
                if (strcmp(b1, b2) == 0)
                        snprintf(bus, sizeof bus, "%s", b1);
                else
                        snprintf(bus, sizeof bus, "%s/%s", b1, b2);
                printf("%-10s %4d %6s %5s  %-14s %-8s  %s\n", cli_jstr(p, "name"), (int) cli_jint(p, "cpus"), mem, dsk,
                       bus, cli_jstr(p, "nic"), cli_jstr(p, "summary"));
        }
        json_object_put(o);
        return 0;
}
