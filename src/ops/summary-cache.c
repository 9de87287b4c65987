/* SPDX-License-Identifier: MIT */
/*
 * `phyllo list` and GET /v1/vms with many VMs: each VM's line (profile,
 * vCPUs, memory) comes from its vm.conf parsed and resolved against the
 * host (~60,000 instructions: 44k to parse, 15k to resolve), so 10,000 VMs
 * took ~0.5 s of CPU.  A summary depends only on the file's bytes and a few
 * host facts, so it is kept in a cache file keyed on vm.conf's stat (device,
 * inode, size, mtime and ctime in ns) and a key of those host facts; a line
 * whose key still matches is used as it is, any other VM is parsed and
 * resolved as before (and its line replaced).  A definition that does not
 * load is never cached: its error is made anew each time.
 *
 * The run state: only VMs with a runtime directory can be anything but
 * stopped (run_state_get says stopped when there is none), so the run
 * directories are listed once and run_state_get is called for those only.
 *
 * The file: <cache dir>/list-<hash of the home>.cache, written atomically
 * (no fsync: it is a cache) when a line changed; read only when it is ours
 * and nobody else can write it.  It is a cache: losing it costs one slow
 * list, never a wrong one (a line is used only when vm.conf's stat matches).
 *
 * A stat tells two versions of the file apart only when a clock tick lies
 * between them: before Linux 6.13 (Debian 12 runs 6.1) the kernel stamps
 * mtime and ctime from a coarse clock (4 ms), so a second same-size write
 * in place within the tick of the first leaves the stat as it was.  A line
 * is therefore kept only for a file whose ctime is older than the walk's
 * start on that same coarse clock: any later change gets a ctime at least
 * the walk's start, never the one the line holds.  A younger file is parsed
 * again at each list until it is older (tests/unit/test-show-cache.c: a
 * line made within its file's tick is not kept).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "fileio.h"
#include "ops.h"
#include "paths.h"
#include "run/run.h"
#include "vm/env.h"
#include "vm/profile.h"

/* 2: lines of files younger than their list are no longer kept; a file of
 * version 1 may hold one made within its file's tick, so it is not read. */
#define CACHE_MAGIC "phyllome-list-cache 2"
#define CACHE_MAX (64u * 1024 * 1024)

struct summary {
        char *name;             /* points into the cache text, or owned (fresh) */
        uint64_t dev, ino, size, mtime_ns, ctime_ns;
        bool young;             /* changed in the walk's clock tick or after: not kept */
        char profile[32];
        unsigned cpus;
        uint64_t memory;
};

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
        const unsigned char *p = data;
        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= 1099511628211ull;
        }
        return h;
}

/* The host facts vm_model_resolve reads for a model without capabilities
 * (src/vm/profile.c: fill and check), and this build's version: a change
 * of any makes every line stale. */
static uint64_t host_key(const struct host_facts *h) {
        char buf[512];
        const char *rn = host_render_node(h);
        int n = snprintf(buf, sizeof buf, "%s|%u|%u|%" PRIu64 "|%u|%" PRIu64 "|%" PRIu64 "|%d|%s|%d|%s",
                         PHYLLOME_VERSION, h->cpus, h->vm_cpus_max, h->vm_mem_max, h->reserve_cpus, h->reserve_mem,
                         h->mem_total, h->apple, h->dmi_vendor ? h->dmi_vendor : "", h->tpm_device, rn ? rn : "");
        return fnv(14695981039346656037ull, buf, n > 0 ? (size_t) n : 0);
}

static char *cache_path(const char *home) {
        _cleanup_free_ char *dir = NULL;
        phy_error e = { 0 };
        if (phy_cache_dir(&dir, &e) < 0)
                return NULL;
        char *p = NULL;
        uint64_t hh = fnv(14695981039346656037ull, home, strlen(home));
        return asprintf(&p, "%s/list-%016" PRIx64 ".cache", dir, hh) < 0 ? NULL : p;
}

/* A decimal number up to the field's end (strtoull's locale and base
 * handling cost ~300 instructions a field: 18 M for 10,000 lines). */
static uint64_t dec(const char *p) {
        uint64_t v = 0;
        while (*p >= '0' && *p <= '9')
                v = v * 10 + (uint64_t) (*p++ - '0');
        return v;
}

/* The cache's text when it is ours alone, else NULL. */
static char *cache_read(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022) ||
            st.st_size <= 0 || (uint64_t) st.st_size > CACHE_MAX)
                return NULL;
        char *text = malloc((size_t) st.st_size + 1);
        size_t off = 0;
        while (text && off < (size_t) st.st_size) {
                ssize_t k = read(fd, text + off, (size_t) st.st_size - off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                off += (size_t) k;
        }
        if (!text || off != (size_t) st.st_size) {
                free(text);
                return NULL;
        }
        text[off] = '\0';
        return text;
}

/* Lines "NAME DEV INO SIZE MTIME CTIME PROFILE CPUS MEMORY", sorted by name
 * (they are written in list order), after the header "MAGIC HOSTKEY".
 * The names point into text. */
static size_t cache_parse(char *text, uint64_t want_key, struct summary **ret) {
        *ret = NULL;
        char *line = text, *nl = strchr(line, '\n');
        if (!nl)
                return 0;
        *nl = '\0';
        char magic[64];
        uint64_t key;
        if (sscanf(line, "%63[^\t]\t%" SCNx64, magic, &key) != 2 || strcmp(magic, CACHE_MAGIC) != 0 || key != want_key)
                return 0;
        size_t n = 0, cap = 0;
        struct summary *v = NULL;
        for (line = nl + 1; *line; line = nl + 1) {
                if (!(nl = strchr(line, '\n')))
                        break;
                *nl = '\0';
                char *f[9];
                size_t k = 0;
                for (char *p = line; k < 9; k++) {
                        f[k] = p;
                        char *t = strchr(p, '\t');
                        if (!t) {
                                k++;
                                break;
                        }
                        *t = '\0';
                        p = t + 1;
                }
                size_t plen = k == 9 ? strlen(f[6]) : 0;
                if (k != 9 || plen >= sizeof v->profile)
                        continue;
                if (n == cap) {
                        cap = cap ? 2 * cap : 1024;
                        struct summary *w = realloc(v, cap * sizeof *v);
                        if (!w)
                                break;
                        v = w;
                }
                struct summary *s = &v[n];
                s->name = f[0];
                s->dev = dec(f[1]);
                s->ino = dec(f[2]);
                s->size = dec(f[3]);
                s->mtime_ns = dec(f[4]);
                s->ctime_ns = dec(f[5]);
                memcpy(s->profile, f[6], plen + 1);
                s->cpus = (unsigned) dec(f[7]);
                s->memory = dec(f[8]);
                n++;
        }
        *ret = v;
        return n;
}

static int cmp_summary(const void *a, const void *b) {
        return strcmp(((const struct summary *) a)->name, ((const struct summary *) b)->name);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void cache_write(const char *path, uint64_t key, const struct summary *v, size_t n) {
        size_t cap = 64 + n * 320, k = 0;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return;
        k += (size_t) snprintf(buf, cap, "%s\t%016" PRIx64 "\n", CACHE_MAGIC, key);
        for (size_t i = 0; i < n && k < cap; i++) {
                const struct summary *s = &v[i];
                if (!s->name || s->young)
                        continue;       /* not cached: its definition did not load, or may change unseen */
                k += (size_t) snprintf(buf + k, cap - k,
                                       "%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%s\t%u\t%" PRIu64 "\n",
                                       s->name, s->dev, s->ino, s->size, s->mtime_ns, s->ctime_ns, s->profile, s->cpus,
                                       s->memory);
        }
        if (k >= cap)
                return;
        _cleanup_free_ char *dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (!slash)
                return;
        *slash = '\0';
        (void) mkdir_p(dir, 0700);
        phy_error e = { 0 };
        (void) file_replace(path, buf, k, 0600, &e);
}

/* The names of the run directories (VMs that may be other than stopped). */
static int run_dirs(const char *home, const char *any_name, strv *ret) {
        _cleanup_free_ char *one = NULL;
        phy_error e = { 0 };
        if (run_dir_path(home, any_name, &one, &e) < 0)
                return -ENOMEM;
        char *slash = strrchr(one, '/');
        if (!slash)
                return -EINVAL;
        *slash = '\0';
        DIR *d = opendir(one);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        int r = 0;
        for (struct dirent *de; (de = readdir(d)) && r >= 0;)
                if (vm_name_valid(de->d_name))
                        r = strv_push(ret, de->d_name);
        closedir(d);
        if (ret->n > 1)
                qsort(ret->v, ret->n, sizeof *ret->v, cmp_str);
        return r;
}

/* Keys added as constants (not copied) and new (not looked up): 10,000
 * objects are a tenth of list's time. */
static void add(json_object *o, const char *key, json_object *v) {
        json_object_object_add_ex(o, key, v, JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_KEY_IS_CONSTANT);
}

static json_object *summary_json(const char *name, const struct summary *s, const char *error, const char *state) {
        json_object *o = json_object_new_object();
        add(o, "name", json_object_new_string(name));
        if (!error) {
                add(o, "profile", json_object_new_string(s->profile));
                add(o, "cpus", json_object_new_int((int) s->cpus));
                add(o, "memory", json_object_new_int64((int64_t) s->memory));
        } else
                add(o, "error", json_object_new_string(error));
        add(o, "state", json_object_new_string(state));
        return o;
}

/* A VM's summary made the slow way: its definition loaded and resolved. */
static int summary_make(const struct ops_ctx *c, const struct vm_env *e, const char *name, struct summary *s,
                        phy_error *err) {
        _cleanup_vm_def_ struct vm_def d = { 0 }, m = { 0 };
        int r = vm_load_by_name(c->home, name, &d, err);
        if (r >= 0)
                r = vm_model_resolve(&d, &e->host, NULL, &m, err);
        if (r < 0)
                return r;
        snprintf(s->profile, sizeof s->profile, "%s", m.profile ? m.profile : "");
        s->cpus = m.cores * m.threads;
        s->memory = m.memory;
        return 0;
}

/* One VM's line, in list order: its summary, or the error that kept its
 * definition from loading (s then holds no summary), and its state. */
typedef void (*summary_emit)(void *data, const char *name, const struct summary *s, const char *error,
                             const char *state);

/* The VMs in name order, each given to emit once. */
static int list_walk(const struct ops_ctx *c, summary_emit emit, void *data, phy_error *err) {
        _cleanup_free_ char *vms = NULL;
        if (asprintf(&vms, "%s/vms", c->home) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        DIR *d = opendir(vms);
        if (!d) {
                if (errno == ENOENT)
                        return 0;
                return phy_error_set(err, errno, "cannot read the VM directory '%s': %s", vms, strerror(errno));
        }
        /* The walk's start on the clock that stamps files' times. */
        struct timespec t0;
        clock_gettime(CLOCK_REALTIME_COARSE, &t0);
        uint64_t start_ns = (uint64_t) t0.tv_sec * 1000000000u + (uint64_t) t0.tv_nsec;
        /* The VMs: a valid name whose vm.conf is a regular file (as vm_list). */
        size_t n = 0, cap = 0;
        struct summary *cur = NULL;
        int r = 0;
        for (struct dirent *de; (de = readdir(d));) {
                if (!vm_name_valid(de->d_name))
                        continue;
                char rel[sizeof de->d_name + sizeof "/vm.conf"];
                size_t nl = strlen(de->d_name);
                memcpy(rel, de->d_name, nl);
                memcpy(rel + nl, "/vm.conf", sizeof "/vm.conf");
                struct stat st;
                if (fstatat(dirfd(d), rel, &st, 0) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (n == cap) {
                        cap = cap ? 2 * cap : 256;
                        struct summary *w = realloc(cur, cap * sizeof *cur);
                        if (!w) {
                                r = -ENOMEM;
                                break;
                        }
                        cur = w;
                }
                cur[n] = (struct summary) { .name = strndup(de->d_name, nl), .dev = st.st_dev, .ino = st.st_ino,
                                            .size = (uint64_t) st.st_size,
                                            .mtime_ns = (uint64_t) st.st_mtim.tv_sec * 1000000000u + (uint64_t) st.st_mtim.tv_nsec,
                                            .ctime_ns = (uint64_t) st.st_ctim.tv_sec * 1000000000u + (uint64_t) st.st_ctim.tv_nsec };
                if (!cur[n].name) {
                        r = -ENOMEM;
                        break;
                }
                cur[n].young = cur[n].ctime_ns >= start_ns;
                n++;
        }
        closedir(d);
        if (n > 1)
                qsort(cur, n, sizeof *cur, cmp_summary);

        _cleanup_strv_ strv running = { 0 };
        if (r >= 0 && n > 0)
                r = run_dirs(c->home, cur[0].name, &running);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        free(cur[i].name);
                free(cur);
                return phy_error_set(err, -r, "cannot list the VMs: %s", strerror(-r));
        }

        /* The host's facts (phyllod: its snapshot of the last 2 s). */
        struct ops_env *env = NULL;
        phy_error e0 = { 0 };
        if (n > 0 && ops_env_get(c, false, &env, &e0) < 0)
                env = NULL;     /* every VM says why below, as before */
        const struct vm_env *e = env ? ops_env_of(env) : NULL;
        uint64_t key = e ? host_key(&e->host) : 0;
        _cleanup_free_ char *path = c->home ? cache_path(c->home) : NULL;
        _cleanup_free_ char *text = path && n > 0 ? cache_read(path) : NULL;
        _cleanup_free_ struct summary *old = NULL;
        size_t n_old = text ? cache_parse(text, key, &old) : 0;
        bool dirty = n_old != n;
        for (size_t i = 0, j = 0; i < n; i++) {
                struct summary *s = &cur[i];
                /* Both are sorted: walk the cache's lines beside the VMs. */
                while (j < n_old && strcmp(old[j].name, s->name) < 0)
                        j++;
                const struct summary *o = j < n_old && strcmp(old[j].name, s->name) == 0 ? &old[j] : NULL;
                phy_error e1 = { 0 };
                const char *error = NULL;
                if (o && o->dev == s->dev && o->ino == s->ino && o->size == s->size && o->mtime_ns == s->mtime_ns &&
                    o->ctime_ns == s->ctime_ns) {
                        memcpy(s->profile, o->profile, sizeof s->profile);
                        s->cpus = o->cpus;
                        s->memory = o->memory;
                } else {
                        dirty = true;
                        if (!e || summary_make(c, e, s->name, s, &e1) < 0)
                                error = e1.message[0] ? e1.message : e0.message;
                }
                const char *state = "invalid";
                if (!error) {
                        state = "stopped";
                        if (running.n && bsearch(&s->name, running.v, running.n, sizeof *running.v, cmp_str)) {
                                _cleanup_run_state_ struct run_state st = { 0 };
                                phy_error e2 = { 0 };
                                state = run_state_get(c->home, s->name, &st, &e2) >= 0 ? run_state_name(st.state)
                                                                                         : "invalid";
                        }
                }
                emit(data, s->name, s, error, state);
                if (error) {
                        free(s->name);
                        s->name = NULL;         /* not cached */
                }
        }
        if (dirty && path && e)
                cache_write(path, key, cur, n);
        ops_env_put(env);
        for (size_t i = 0; i < n; i++)
                free(cur[i].name);
        free(cur);
        return 0;
}

static void emit_json(void *data, const char *name, const struct summary *s, const char *error, const char *state) {
        json_object_array_add(data, summary_json(name, s, error, state));
}

int ops_list_summaries(const struct ops_ctx *c, json_object **ret, phy_error *err) {
        json_object *arr = json_object_new_array();
        int r = list_walk(c, emit_json, arr, err);
        if (r < 0) {
                json_object_put(arr);
                return r;
        }
        *ret = arr;
        return 0;
}

/* ---- the same lines as JSON text ----
 * GET /v1/vms with 10,000 VMs spent 88 of its 128 M instructions making
 * json-c objects, serialising them and freeing them again; its body is
 * written here directly, byte for byte what json-c writes (plain, '/' not
 * escaped), from the same walk. */
struct text {
        char *p;
        size_t n, cap;
        bool oom;
};

static void text_put(struct text *t, const char *s, size_t n) {
        if (t->oom)
                return;
        if (t->n + n + 1 > t->cap) {
                size_t cap = t->cap ? t->cap : 4096;
                while (t->n + n + 1 > cap)
                        cap *= 2;
                char *q = realloc(t->p, cap);
                if (!q) {
                        t->oom = true;
                        return;
                }
                t->p = q;
                t->cap = cap;
        }
        memcpy(t->p + t->n, s, n);
        t->n += n;
        t->p[t->n] = '\0';
}

#define TEXT_LIT(t, lit) text_put(t, lit, sizeof lit - 1)

/* A JSON string as json-c escapes it (JSON_C_TO_STRING_NOSLASHESCAPE). */
static void text_string(struct text *t, const char *s) {
        TEXT_LIT(t, "\"");
        const char *run = s;
        for (; *s; s++) {
                unsigned char ch = (unsigned char) *s;
                const char *esc = NULL;
                char u[8];
                switch (ch) {
                case '"': esc = "\\\""; break;
                case '\\': esc = "\\\\"; break;
                case '\b': esc = "\\b"; break;
                case '\f': esc = "\\f"; break;
                case '\n': esc = "\\n"; break;
                case '\r': esc = "\\r"; break;
                case '\t': esc = "\\t"; break;
                default:
                        if (ch < ' ') {
                                snprintf(u, sizeof u, "\\u%04x", ch);
                                esc = u;
                        }
                }
                if (!esc)
                        continue;
                text_put(t, run, (size_t) (s - run));
                text_put(t, esc, strlen(esc));
                run = s + 1;
        }
        text_put(t, run, (size_t) (s - run));
        TEXT_LIT(t, "\"");
}

static void text_u64(struct text *t, uint64_t v) {
        char b[24];
        size_t k = sizeof b;
        do
                b[--k] = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        text_put(t, b + k, sizeof b - k);
}

static void emit_text(void *data, const char *name, const struct summary *s, const char *error, const char *state) {
        struct text *t = data;
        if (t->p && t->p[t->n - 1] != '[')
                TEXT_LIT(t, ",");
        TEXT_LIT(t, "{\"name\":");
        text_string(t, name);
        if (!error) {
                TEXT_LIT(t, ",\"profile\":");
                text_string(t, s->profile);
                TEXT_LIT(t, ",\"cpus\":");
                text_u64(t, s->cpus);
                TEXT_LIT(t, ",\"memory\":");
                text_u64(t, s->memory);
        } else {
                TEXT_LIT(t, ",\"error\":");
                text_string(t, error);
        }
        TEXT_LIT(t, ",\"state\":");
        text_string(t, state);
        TEXT_LIT(t, "}");
}

int ops_list_text(const struct ops_ctx *c, char **ret, size_t *ret_len, phy_error *err) {
        struct text t = { 0 };
        TEXT_LIT(&t, "{\"vms\":[");
        int r = list_walk(c, emit_text, &t, err);
        TEXT_LIT(&t, "]}\n");
        if (r >= 0 && t.oom)
                r = phy_error_set(err, ENOMEM, "out of memory");
        if (r < 0) {
                free(t.p);
                return r;
        }
        *ret = t.p;
        *ret_len = t.n;
        return 0;
}
