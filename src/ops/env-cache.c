/* SPDX-License-Identifier: MIT */
/*
 * The host facts and QEMU capabilities a read verb (list, show, status)
 * resolves a model against, shared by the requests of a long-lived caller
 * (phyllod).
 *
 * Loading them reads /proc, a few hundred /sys files, pci.ids and the
 * capability cache: ~10 ms, where the VM's own files take ~0.1 ms.  phyllod
 * answered GET /v1/vms/NAME at ~120 requests/s because of it.  Here one
 * load serves every read for the cache's time to live (phyllod: 2 s,
 * OPS_ENV_TTL_USEC; a show within 2 s of an `apt-get install
 * qemu-system-gui` may still show the model without its modules); the first read after that
 * loads anew (no timer: nothing happens while nobody asks).  A snapshot is
 * reference-counted, so a reader keeps the one it got while another request
 * replaces it.
 *
 * Verbs that judge the host as it is now (create's budget, start, host
 * check) never use it: they call vm_env_load themselves.
 *
 * Beside the snapshot: the show cache (show-cache.h), whose entries name
 * the snapshot they were resolved against (its generation), so a new load
 * makes them all stale.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops.h"
#include "show-cache.h"
#include "vm/env.h"
#include "vm/vm.h"


struct ops_env {
        struct vm_env env;
        bool with_caps;
        atomic_uint refs;       /* taken under the cache's lock; dropped without it */
        uint64_t loaded_usec;
        uint64_t gen;           /* this load's number in its cache (0 without a cache) */
};

/* The show cache (show-cache.h): a few VMs' answers, the least recently
 * used one giving way.  Bounded so that it cannot hold an idle phyllod's
 * memory up: 64 entries of at most 32 KiB (a definition and its answer are
 * ~5 KiB). */
#define SHOW_SLOTS 64
#define SHOW_ENTRY_MAX (32u * 1024)

struct show_entry {
        char name[VM_NAME_MAX + 1];     /* "" when the slot is free */
        uint64_t gen, used;
        char *conf;                     /* the definition's bytes; the answer's follow them */
        size_t conf_len, text_len;
};

struct ops_env_cache {
        pthread_mutex_t lock;
        uint64_t ttl_usec;
        struct ops_env *cur;
        uint64_t loads;                 /* generations given out (under lock) */

        pthread_mutex_t show_lock;
        uint64_t show_clock;
        struct show_entry show[SHOW_SLOTS];
};

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ull + (uint64_t) ts.tv_nsec / 1000ull;
}

static void env_free(struct ops_env *e) {
        vm_env_done(&e->env);
        free(e);
}

static int env_load(const char *root, bool with_caps, struct ops_env **ret, phy_error *err) {
        struct ops_env *e = calloc(1, sizeof *e);
        if (!e)
                return phy_error_set(err, ENOMEM, "out of memory loading the host's facts");
        int r = vm_env_load(root, with_caps, &e->env, err);
        if (r < 0) {
                free(e);
                return r;
        }
        e->with_caps = with_caps;
        atomic_init(&e->refs, 1);
        e->loaded_usec = now_usec();
        *ret = e;
        return 0;
}

int ops_env_cache_new(uint64_t ttl_usec, struct ops_env_cache **ret) {
        struct ops_env_cache *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->ttl_usec = ttl_usec;
        pthread_mutex_init(&c->lock, NULL);
        pthread_mutex_init(&c->show_lock, NULL);
        *ret = c;
        return 0;
}

void ops_env_cache_free(struct ops_env_cache *c) {
        if (!c)
                return;
        ops_env_put(c->cur);
        for (size_t i = 0; i < SHOW_SLOTS; i++)
                free(c->show[i].conf);
        pthread_mutex_destroy(&c->show_lock);
        pthread_mutex_destroy(&c->lock);
        free(c);
}

int ops_env_get(const struct ops_ctx *c, bool with_caps, struct ops_env **ret, phy_error *err) {
        struct ops_env_cache *k = c->env_cache;
        if (!k)
                return env_load(c->root, with_caps, ret, err);
        pthread_mutex_lock(&k->lock);
        struct ops_env *e = k->cur;
        if (!e || (with_caps && !e->with_caps) || now_usec() - e->loaded_usec >= k->ttl_usec) {
                /* Loaded under the lock: concurrent readers wait for one load
                 * rather than each making its own. */
                struct ops_env *n = NULL;
                int r = env_load(c->root, with_caps || (e && e->with_caps), &n, err);
                if (r < 0) {
                        pthread_mutex_unlock(&k->lock);
                        return r;
                }
                n->gen = ++k->loads;
                ops_env_put(e);
                k->cur = e = n;
        }
        atomic_fetch_add(&e->refs, 1);
        pthread_mutex_unlock(&k->lock);
        *ret = e;
        return 0;
}

/* The last holder frees it: the cache (its current load) or a reader,
 * which may outlive the cache, so a put never touches the cache. */
void ops_env_put(struct ops_env *e) {
        if (e && atomic_fetch_sub(&e->refs, 1) == 1)
                env_free(e);
}

const struct vm_env *ops_env_of(const struct ops_env *e) {
        return &e->env;
}

uint64_t ops_env_gen(const struct ops_env *e) {
        return e->gen;
}

/* ---- the show cache ---- */

static struct show_entry *show_find(struct ops_env_cache *k, const char *name) {
        for (size_t i = 0; i < SHOW_SLOTS; i++)
                if (k->show[i].name[0] == name[0] && strcmp(k->show[i].name, name) == 0)
                        return &k->show[i];
        return NULL;
}

bool ops_show_cache_get(struct ops_env_cache *k, const char *name, const char *conf, size_t conf_len, uint64_t gen,
                        char **ret, size_t *ret_len) {
        if (!k || !name[0])
                return false;
        char *out = NULL;
        size_t len = 0;
        pthread_mutex_lock(&k->show_lock);
        struct show_entry *s = show_find(k, name);
        if (s && s->gen == gen && s->conf_len == conf_len && memcmp(s->conf, conf, conf_len) == 0 &&
            (out = malloc(s->text_len + 1))) {
                len = s->text_len;
                memcpy(out, s->conf + s->conf_len, len);
                out[len] = '\0';
                s->used = ++k->show_clock;
        }
        pthread_mutex_unlock(&k->show_lock);
        if (!out)
                return false;
        *ret = out;
        *ret_len = len;
        return true;
}

void ops_show_cache_put(struct ops_env_cache *k, const char *name, const char *conf, size_t conf_len, uint64_t gen,
                        const char *text, size_t text_len) {
        size_t nlen = strlen(name);
        if (!k || nlen == 0 || nlen > VM_NAME_MAX || conf_len + text_len > SHOW_ENTRY_MAX)
                return;
        char *buf = malloc(conf_len + text_len);
        if (!buf)
                return;
        memcpy(buf, conf, conf_len);
        memcpy(buf + conf_len, text, text_len);
        pthread_mutex_lock(&k->show_lock);
        struct show_entry *s = show_find(k, name);
        if (!s) {
                /* A free slot, else the least recently used one. */
                s = &k->show[0];
                for (size_t i = 1; i < SHOW_SLOTS && s->name[0]; i++)
                        if (!k->show[i].name[0] || k->show[i].used < s->used)
                                s = &k->show[i];
        }
        char *old = s->conf;
        memcpy(s->name, name, nlen + 1);
        s->gen = gen;
        s->used = ++k->show_clock;
        s->conf = buf;
        s->conf_len = conf_len;
        s->text_len = text_len;
        pthread_mutex_unlock(&k->show_lock);
        free(old);
}
