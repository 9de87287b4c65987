/* SPDX-License-Identifier: MIT */
/* phyllod's show cache (src/ops/show-cache.h): GET /v1/vms/NAME's text
 * (ops_show_text) against the route's json-c answer (api_handle -> ops_show,
 * which never uses the cache), byte for byte, after each change made behind
 * the cache's back: a definition edited in place within the same
 * millisecond with its mtime put back, broken and mended, renamed, deleted
 * and made again; the run state written by hand; a new host-facts snapshot;
 * many VMs (eviction) and a definition too large to keep; and readers on
 * four threads while the definition keeps changing, each answer's model
 * that of its own config.  And the list cache's rule for a file changed
 * within the clock tick of the list. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "tap.h"
#include "fixture.h"
#include "api/api.h"
#include "cleanup.h"
#include "fileio.h"
#include "ops/ops.h"
#include "run/run.h"

static char home[] = "/tmp/phyllome-test-show.XXXXXX";
static const char *root;

/* What the cache gives (NULL on an error, its message in err). */
static char *show(struct ops_env_cache *k, const char *name, phy_error *err) {
        struct ops_ctx c = { .root = root, .home = home, .uid = geteuid(), .gid = getegid(), .env_cache = k };
        char *t = NULL;
        size_t n = 0;
        *err = (phy_error) { 0 };
        if (ops_show_text(&c, name, &t, &n, err) < 0)
                return NULL;
        if (strlen(t) != n)
                printf("# length %zu, strlen %zu\n", n, strlen(t));
        return t;
}

/* The route's answer, as phyllod sent it before the cache: json-c's text
 * of ops_show with a newline; or the error's status and message. */
static char *ref(struct ops_env_cache *k, const char *name, int *ret_status) {
        struct api_ctx c = { .root = root, .home = home, .uid = geteuid(), .gid = getegid(), .env_cache = k };
        char path[128];
        snprintf(path, sizeof path, "/v1/vms/%s", name);
        json_object *o = NULL;
        *ret_status = api_handle(&c, "GET", path, NULL, 0, &o);
        char *t = NULL;
        if (asprintf(&t, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                         JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
                abort();
        json_object_put(o);
        return t;
}

/* ok when the cache's answer is the route's, byte for byte. */
static bool same(struct ops_env_cache *k, const char *name, const char *what) {
        phy_error e;
        int st;
        _cleanup_free_ char *a = show(k, name, &e), *b = ref(k, name, &st);
        bool good = a && st == 200 && strcmp(a, b) == 0;
        ok(good, "%s: the answer is the route's, byte for byte", what);
        if (!good)
                printf("#   cache: %.300s\n#   route (%d): %.300s\n", a ? a : e.message, st, b);
        return good;
}

/* A member of the answer's JSON, by a dotted path ("model.memory.size"). */
static json_object *member(json_object *o, const char *path) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", path);
        for (char *save = NULL, *p = strtok_r(buf, ".", &save); p && o; p = strtok_r(NULL, ".", &save))
                if (!json_object_object_get_ex(o, p, &o))
                        o = NULL;
        return o;
}

static long long shown_int(struct ops_env_cache *k, const char *name, const char *path) {
        phy_error e;
        _cleanup_free_ char *t = show(k, name, &e);
        json_object *o = t ? json_tokener_parse(t) : NULL;
        json_object *v = member(o, path);
        long long n = v ? json_object_get_int64(v) : -1;
        json_object_put(o);
        return n;
}

static char *shown_str(struct ops_env_cache *k, const char *name, const char *path) {
        phy_error e;
        _cleanup_free_ char *t = show(k, name, &e);
        json_object *o = t ? json_tokener_parse(t) : NULL;
        json_object *v = member(o, path);
        char *s = strdup(v && json_object_get_string(v) ? json_object_get_string(v) : "(none)");
        json_object_put(o);
        return s;
}

static char *conf_path(const char *name) {
        char *p = NULL;
        if (asprintf(&p, "%s/vms/%s/vm.conf", home, name) < 0)
                abort();
        return p;
}

static void define(const char *name, const char *text) {
        _cleanup_free_ char *conf = conf_path(name), *dir = strdup(conf);
        phy_error e = { 0 };
        *strrchr(dir, '/') = '\0';
        if (mkdir_p(dir, 0755) < 0 || file_write_atomic(conf, text, strlen(text), 0644, &e) < 0)
                abort();
}

/* Overwrites the bytes at the first occurrence of from with to (the same
 * length) in place: the same inode and size, and the mtime put back, so
 * that no stat tells the change. */
static bool edit_in_place(const char *name, const char *from, const char *to) {
        _cleanup_free_ char *conf = conf_path(name), *text = NULL;
        struct stat st;
        if (strlen(from) != strlen(to) || stat(conf, &st) < 0 || file_read_all(conf, 0, &text, NULL) < 0)
                return false;
        char *at = strstr(text, from);
        _cleanup_close_ int fd = open(conf, O_WRONLY | O_CLOEXEC);
        if (!at || fd < 0 || pwrite(fd, to, strlen(to), at - text) != (ssize_t) strlen(to))
                return false;
        struct timespec ts[2] = { st.st_atim, st.st_mtim };
        return futimens(fd, ts) == 0;
}

static void write_state(const char *name, const struct run_state *s) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        phy_error e = { 0 };
        if (run_dir_path(home, name, &dir, &e) < 0 || mkdir_p(dir, 0700) < 0 || chmod(dir, 0700) < 0 ||
            asprintf(&path, "%s/state.json", dir) < 0 || run_state_write_file(path, s, &e) < 0)
                abort();
}

static void test_changes(struct ops_env_cache *k) {
        phy_error e;
        define("sc", "[vm]\nprofile = linux\n\n[memory]\nsize = 256M\n");
        same(k, "sc", "first show (fills the cache)");
        same(k, "sc", "second show (from the cache)");
        is_int(shown_int(k, "sc", "model.memory.size"), 256ll << 20, "256M");

        /* Two edits in place in the same millisecond, mtime restored. */
        ok(edit_in_place("sc", "256M", "512M"), "edited in place: 512M, mtime put back");
        is_int(shown_int(k, "sc", "model.memory.size"), 512ll << 20, "the next show says 512M");
        ok(edit_in_place("sc", "512M", "768M"), "edited again at once: 768M, mtime put back");
        is_int(shown_int(k, "sc", "model.memory.size"), 768ll << 20, "the next show says 768M");
        _cleanup_free_ char *cfg = shown_str(k, "sc", "config");
        ok(strstr(cfg, "size = 768M") != NULL, "and its config is the file as it is now");
        same(k, "sc", "after the edits");

        /* Broken: an error each time (never kept), then mended. */
        define("sc", "[vm]\nprofile = nope\n");
        for (int i = 0; i < 2; i++) {
                _cleanup_free_ char *t = show(k, "sc", &e);
                ok(!t && strstr(e.message, "nope"), "a broken definition: its error (%d): %s", i + 1, e.message);
        }
        define("sc", "[vm]\nname = other\nprofile = linux\n");
        {
                _cleanup_free_ char *t = show(k, "sc", &e);
                ok(!t && strstr(e.message, "make them the same"), "a [vm] name that is not the directory's: %s",
                   e.message);
        }
        define("sc", "[vm]\nprofile = linux\n\n[memory]\nsize = 256M\n");
        is_int(shown_int(k, "sc", "model.memory.size"), 256ll << 20, "mended: 256M");
        same(k, "sc", "mended");

        /* The run state is read for every answer. */
        _cleanup_free_ char *st = shown_str(k, "sc", "status.state");
        is_str(st, "stopped", "no run record: stopped");
        struct run_state s = { .state = RUN_FAILED, .exit_status = -1, .error = (char *) "boom one" };
        write_state("sc", &s);
        _cleanup_free_ char *e1 = shown_str(k, "sc", "status.error");
        is_str(e1, "boom one", "a failed start recorded by hand shows at once");
        s.error = (char *) "boom two";
        write_state("sc", &s);
        _cleanup_free_ char *e2 = shown_str(k, "sc", "status.error");
        is_str(e2, "boom two", "and its next record too");
        /* A record of a run whose monitor and QEMU are not there: crashed,
         * judged from the processes, not from the file. */
        s = (struct run_state) { .state = RUN_RUNNING, .exit_status = -1, .monitor_pid = getpid(), .qemu_pid = getpid() };
        write_state("sc", &s);
        _cleanup_free_ char *st2 = shown_str(k, "sc", "status.state");
        is_str(st2, "crashed", "a running record without its processes: crashed");
        same(k, "sc", "with a run record");
        _cleanup_free_ char *rd = NULL;
        phy_error pe = { 0 };
        if (run_dir_path(home, "sc", &rd, &pe) == 0)
                rm_rf(rd);

        /* Renamed by hand, deleted, made again. */
        _cleanup_free_ char *a = NULL, *b = NULL;
        if (asprintf(&a, "%s/vms/sc", home) < 0 || asprintf(&b, "%s/vms/sc2", home) < 0)
                abort();
        ok(rename(a, b) == 0, "sc renamed to sc2 by hand");
        {
                _cleanup_free_ char *t = show(k, "sc", &e);
                ok(!t && phy_error_kind_of(&e) == PHY_ERR_NOT_FOUND, "sc: not found (%s)", e.message);
        }
        _cleanup_free_ char *nm = shown_str(k, "sc2", "name");
        is_str(nm, "sc2", "sc2 answers with its name");
        same(k, "sc2", "the renamed VM");
        rm_rf(b);
        {
                _cleanup_free_ char *t = show(k, "sc2", &e);
                ok(!t && phy_error_kind_of(&e) == PHY_ERR_NOT_FOUND, "deleted: not found (%s)", e.message);
        }
        define("sc2", "[vm]\nprofile = linux\n\n[memory]\nsize = 1G\n");
        is_int(shown_int(k, "sc2", "model.memory.size"), 1ll << 30, "made again with 1G: 1G");
        rm_rf(b);
}

/* A new snapshot of the host's facts makes every entry stale: a definition
 * without [memory] gets the budget's size, which follows MemTotal. */
static void test_new_facts(void) {
        struct ops_env_cache *k0 = NULL;
        is_int(ops_env_cache_new(0, &k0), 0, "a cache whose facts are loaded anew for each request");
        define("fm", "[vm]\nprofile = linux\n");
        fixture_put(root, "/proc/meminfo", "MemTotal:       32775580 kB\nMemFree:        26220464 kB\n");
        long long big = shown_int(k0, "fm", "model.memory.size");
        is_int(shown_int(k0, "fm", "model.memory.size"), big, "shown twice: the same memory");
        fixture_put(root, "/proc/meminfo", "MemTotal:        3145728 kB\nMemFree:         2097152 kB\n");
        long long small = shown_int(k0, "fm", "model.memory.size");
        ok(small > 0 && small < big, "MemTotal 3 GiB: the model's memory follows (%lld < %lld)", small, big);
        same(k0, "fm", "after the host changed");
        ops_env_cache_free(k0);
        fixture_put(root, "/proc/meminfo", "MemTotal:       32775580 kB\nMemFree:        26220464 kB\n");
}

/* More VMs than entries, and one too large to keep. */
static void test_bounds(struct ops_env_cache *k) {
        char name[16], text[128];
        for (int i = 0; i < 80; i++) {
                snprintf(name, sizeof name, "v%02d", i);
                snprintf(text, sizeof text, "[vm]\nprofile = linux\n\n[memory]\nsize = %dM\n", 256 + i);
                define(name, text);
        }
        int good = 0;
        for (int round = 0; round < 2; round++)
                for (int i = 0; i < 80; i++) {
                        snprintf(name, sizeof name, "v%02d", i);
                        good += shown_int(k, name, "model.memory.size") == (256ll + i) << 20;
                }
        is_int(good, 160, "80 VMs shown twice (more than the cache holds): each its own memory");
        size_t n = 40 * 1024;
        _cleanup_free_ char *big = malloc(n + 256);
        strcpy(big, "[vm]\nprofile = linux\n");
        size_t at = strlen(big);
        static const char pad[] = "# padding padding padding padding padding padding\n";
        while (at < n) {
                memcpy(big + at, pad, sizeof pad - 1);
                at += sizeof pad - 1;
        }
        strcpy(big + at, "[memory]\nsize = 300M\n");
        define("big", big);
        same(k, "big", "a 40 KiB definition (too large to keep)");
        ok(edit_in_place("big", "300M", "400M"), "edited in place");
        is_int(shown_int(k, "big", "model.memory.size"), 400ll << 20, "the next show says 400M");
}

/* Readers on four threads while the definition changes under them (renames
 * and edits in place): every answer's model is that of its own config. */
struct reader {
        struct ops_env_cache *k;
        int answers, mismatched;
        volatile int *stop;
};

static void *reader_main(void *p) {
        struct reader *r = p;
        while (!*r->stop) {
                phy_error e;
                _cleanup_free_ char *t = show(r->k, "race", &e);
                if (!t)
                        continue;       /* between a delete and its remake, say */
                json_object *o = json_tokener_parse(t);
                json_object *cfg = member(o, "config"), *mem = member(o, "model.memory.size");
                const char *c = cfg ? json_object_get_string(cfg) : "", *s = strstr(c, "size = ");
                long long want = s ? strtoll(s + 7, NULL, 10) << 20 : -1;
                r->answers++;
                r->mismatched += !mem || json_object_get_int64(mem) != want;
                json_object_put(o);
        }
        return NULL;
}

static void test_race(struct ops_env_cache *k) {
        define("race", "[vm]\nprofile = linux\n\n[memory]\nsize = 256M\n");
        volatile int stop = 0;
        struct reader rs[4];
        pthread_t th[4];
        for (int i = 0; i < 4; i++) {
                rs[i] = (struct reader) { .k = k, .stop = &stop };
                pthread_create(&th[i], NULL, reader_main, &rs[i]);
        }
        static const char *const sizes[] = { "256M", "512M", "768M" };
        int edits = 0;
        for (int i = 0; i < 300; i++) {
                const char *from = sizes[i % 3], *to = sizes[(i + 1) % 3];
                if (i % 2)
                        edits += edit_in_place("race", from, to);
                else {
                        char text[128];
                        snprintf(text, sizeof text, "[vm]\nprofile = linux\n\n[memory]\nsize = %s\n", to);
                        define("race", text);
                        edits++;
                }
                usleep(1000);
        }
        stop = 1;
        int answers = 0, mismatched = 0;
        for (int i = 0; i < 4; i++) {
                pthread_join(th[i], NULL);
                answers += rs[i].answers;
                mismatched += rs[i].mismatched;
        }
        is_int(edits, 300, "300 edits (half in place) while four threads read");
        ok(answers > 300, "the readers got %d answers", answers);
        is_int(mismatched, 0, "no answer's model was another config's");
        is_int(shown_int(k, "race", "model.memory.size"), 256ll << 20, "the last edit (256M) shows");
}

/* The list cache (src/ops/summary-cache.c) keys a line on vm.conf's stat.
 * Where the kernel stamps file times from its coarse clock (before Linux
 * 6.13's fine-grained stamps: Debian 12's 6.1), two same-size writes in
 * place within one tick, with a list between them, leave the stat as it
 * was.  So a line is kept only for a file older than the list's start on
 * that clock: right after an edit the line is made but not kept; a tick
 * later it is. */
static long long listed_memory(struct ops_env_cache *k, const char *name) {
        struct ops_ctx c = { .root = root, .home = home, .uid = geteuid(), .gid = getegid(), .env_cache = k };
        _cleanup_free_ char *t = NULL;
        size_t n = 0;
        phy_error e = { 0 };
        if (ops_list_text(&c, &t, &n, &e) < 0)
                return -1;
        json_object *o = json_tokener_parse(t), *vms = member(o, "vms");
        long long mem = -1;
        for (size_t i = 0; vms && i < json_object_array_length(vms); i++) {
                json_object *v = json_object_array_get_idx(vms, i);
                if (strcmp(json_object_get_string(member(v, "name")), name) == 0 && member(v, "memory"))
                        mem = json_object_get_int64(member(v, "memory"));
        }
        json_object_put(o);
        return mem;
}

/* Whether the list cache file holds a line for name. */
static bool cache_has_line(const char *name) {
        const char *dir = getenv("PHYLLOME_CACHE");
        DIR *d = opendir(dir);
        bool found = false;
        for (struct dirent *de; d && (de = readdir(d));) {
                _cleanup_free_ char *p = NULL, *t = NULL;
                if (strncmp(de->d_name, "list-", 5) != 0 || asprintf(&p, "%s/%s", dir, de->d_name) < 0 ||
                    file_read_all(p, 0, &t, NULL) < 0)
                        continue;
                char want[80];
                snprintf(want, sizeof want, "\n%s\t", name);
                found |= strstr(t, want) != NULL;
        }
        if (d)
                closedir(d);
        return found;
}

static uint64_t coarse_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME_COARSE, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void test_list_tick(struct ops_env_cache *k) {
        define("tick", "[vm]\nprofile = linux\n\n[memory]\nsize = 256M\n");
        _cleanup_free_ char *conf = conf_path("tick");
        int young = 0, kept_young = 0;
        for (int i = 0; i < 20; i++) {
                const char *a = i % 2 ? "512M" : "256M", *b = i % 2 ? "256M" : "512M";
                struct stat st;
                if (!edit_in_place("tick", a, b) || stat(conf, &st) < 0)
                        break;
                uint64_t c = (uint64_t) st.st_ctim.tv_sec * 1000000000u + (uint64_t) st.st_ctim.tv_nsec;
                long long m = listed_memory(k, "tick");
                /* Young to that list: the coarse clock had not passed the ctime by its end. */
                if (coarse_now_ns() > c || m != (i % 2 ? 256ll : 512ll) << 20)
                        continue;
                young++;
                kept_young += cache_has_line("tick");
        }
        ok(young > 0, "a list within the clock tick of an edit (%d of 20)", young);
        is_int(kept_young, 0, "its line for the edited file was not kept");
        usleep(20 * 1000);
        long long m = listed_memory(k, "tick");
        ok(m > 0 && cache_has_line("tick"), "a list two ticks later keeps it");
}

int main(void) {
        if (!mkdtemp(home))
                return 1;
        _cleanup_free_ char *r = fixture_copy("intel-desktop-iommu", "/tmp/phyllome-test-show-root");
        root = r;
        char cache[sizeof home + 16];
        snprintf(cache, sizeof cache, "%s/cache", home);
        setenv("PHYLLOME_HOME", home, 1);
        setenv("PHYLLOME_CACHE", cache, 1);
        struct ops_env_cache *k = NULL;
        is_int(ops_env_cache_new(3600ull * 1000000ull, &k), 0, "a cache whose facts live 1 h (phyllod's: 2 s)");
        test_changes(k);
        test_new_facts();
        test_bounds(k);
        test_race(k);
        test_list_tick(k);
        ops_env_cache_free(k);
        /* Without a cache (phyllo without a daemon): the same answers. */
        define("nc", "[vm]\nprofile = linux\n");
        same(NULL, "nc", "without a cache");
        rm_rf(home);
        rm_rf(root);
        return tap_done();
}
