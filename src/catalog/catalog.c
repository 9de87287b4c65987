/* SPDX-License-Identifier: MIT */
/* The curated catalog file (docs/catalog.md): parse, find, search. */
#include "catalog.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "fileio.h"
#include "paths.h"
#include "verbs.h"

#define CATALOG_MAX_ENTRIES 256

const char *catalog_data_dir(void) {
        const char *v = getenv("PHYLLOME_DATA_DIR");
        if (v && v[0] == '/')
                return v;
        struct stat st;
        if (stat(PHYLLOME_DATADIR "/catalog.conf", &st) == 0)
                return PHYLLOME_DATADIR;
        return PHYLLOME_SOURCE_DATADIR;
}

int catalog_media_dir(char **ret, phy_error *err) {
        _cleanup_free_ char *cache = NULL;
        int r = phy_cache_dir(&cache, err);
        if (r < 0)
                return r;
        char *p;
        if (asprintf(&p, "%s/media", cache) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (mkdir_p(p, 0700) < 0) {
                r = phy_error_set(err, errno, "cannot create the media cache '%s': %s", p, strerror(errno));
                free(p);
                return r;
        }
        *ret = p;
        return 0;
}

static void entry_done(struct catalog_entry *e) {
        free(e->id);
        free(e->osinfo);
        free(e->name);
        free(e->profile);
        free(e->url);
        free(e->get);
        free(e->checksums);
        free(e->signature);
        free(e->key);
        free(e->key_source);
        free(e->hash_source);
        strv_done(&e->sha256);
}

void catalog_done(struct catalog *c) {
        for (size_t i = 0; i < c->n; i++)
                entry_done(&c->entries[i]);
        free(c->entries);
        free(c->path);
        *c = (struct catalog) { 0 };
}

struct parser {
        const char *path;
        char *dir;              /* of the catalog file: keys are relative to it */
        unsigned line;
        struct catalog *c;
        struct catalog_entry *cur;
        phy_error *err;
};

/* An error on the parser's line: a usage error (bad input, like a bad
 * vm.conf: exit 2, HTTP 400) when code is 0; else a system call failed on
 * something the line names (the key file), and code's kind says which
 * (ENOENT not found, EACCES permission, else host).  Both say file:line. */
static int perr_code(struct parser *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr_code(struct parser *p, int code, const char *fmt, ...) {
        char msg[768];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (code == 0)
                return phy_error_usage(p->err, "%s:%u: %s", p->path, p->line, msg);
        enum phy_error_kind k = phy_error_kind_for(code);
        return phy_error_set_kind(p->err, k == PHY_ERR_USAGE ? PHY_ERR_HOST : k, code, "%s:%u: %s", p->path, p->line,
                                  msg);
}
#define perr(p, ...) perr_code(p, 0, __VA_ARGS__)

static bool id_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 64)
                return false;
        for (; *s; s++)
                if (!(islower((unsigned char) *s) || isdigit((unsigned char) *s) || strchr("._-", *s)))
                        return false;
        return true;
}

static bool url_valid(const char *s) {
        return strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0;
}

static bool hex64(const char *s) {
        if (strlen(s) != 64)
                return false;
        for (; *s; s++)
                if (!isxdigit((unsigned char) *s))
                        return false;
        return true;
}

static int set_once(struct parser *p, const char *key, char **field, const char *v) {
        if (*field)
                return perr(p, "duplicate key '%s' in section [os %s]", key, p->cur->id);
        if (!(*field = strdup(v)))
                return phy_error_set(p->err, ENOMEM, "out of memory");
        return 0;
}

static int set_url(struct parser *p, const char *key, char **field, const char *v) {
        if (!url_valid(v))
                return perr(p, "invalid URL '%s' for key '%s'; use an http:// or https:// URL", v, key);
        return set_once(p, key, field, v);
}

static int set_key(struct parser *p, const char *key, const char *v) {
        struct catalog_entry *e = p->cur;
        if (strcmp(key, "osinfo") == 0)
                return set_once(p, key, &e->osinfo, v);
        if (strcmp(key, "name") == 0)
                return set_once(p, key, &e->name, v);
        if (strcmp(key, "profile") == 0)
                return set_once(p, key, &e->profile, v);
        if (strcmp(key, "url") == 0)
                return set_url(p, key, &e->url, v);
        if (strcmp(key, "get") == 0)
                return set_url(p, key, &e->get, v);
        if (strcmp(key, "checksums") == 0)
                return set_url(p, key, &e->checksums, v);
        if (strcmp(key, "signature") == 0)
                return set_url(p, key, &e->signature, v);
        if (strcmp(key, "hash-source") == 0)
                return set_url(p, key, &e->hash_source, v);
        if (strcmp(key, "key-source") == 0)
                return set_once(p, key, &e->key_source, v);
        if (strcmp(key, "signed") == 0) {
                static const char *const words[] = { "none", "checksums", "inline", "image" };
                for (size_t i = 0; i < ELEMENTSOF(words); i++)
                        if (strcmp(v, words[i]) == 0) {
                                e->sig = (enum catalog_signed) i;
                                return 0;
                        }
                return perr(p, "invalid value '%s' for key 'signed'; allowed: none, checksums, inline, image", v);
        }
        if (strcmp(key, "key") == 0) {
                _cleanup_free_ char *abs = NULL;
                char real[PATH_MAX];
                if ((v[0] == '/' ? asprintf(&abs, "%s", v) : asprintf(&abs, "%s/%s", p->dir, v)) < 0)
                        return phy_error_set(p->err, ENOMEM, "out of memory");
                if (!realpath(abs, real))
                        return perr_code(p, errno, "cannot use the key file '%s': %s", abs, strerror(errno));
                return set_once(p, key, &e->key, real);
        }
        if (strcmp(key, "size") == 0) {
                unsigned long long n;
                if (e->size)
                        return perr(p, "duplicate key 'size' in section [os %s]", e->id);
                if (parse_uint(v, UINT64_MAX, &n) < 0 || n == 0)
                        return perr(p, "invalid size '%s' for key 'size'; use the exact size in bytes", v);
                e->size = n;
                return 0;
        }
        if (strcmp(key, "sha256") == 0) {
                if (!hex64(v))
                        return perr(p, "invalid SHA-256 '%s'; use 64 hexadecimal digits", v);
                char low[65];
                for (size_t i = 0; i < 65; i++)
                        low[i] = (char) tolower((unsigned char) v[i]);
                return strv_push(&e->sha256, low) < 0 ? phy_error_set(p->err, ENOMEM, "out of memory") : 0;
        }
        return perr(p, "unknown key '%s' in section [os %s]; allowed: osinfo, name, profile, url, size, checksums, "
                    "signature, signed, key, key-source, sha256, get, hash-source", key, e->id);
}

/* Every entry says how it is verified, or plainly that it is not. */
static int entry_check(struct parser *p, const struct catalog_entry *e) {
        unsigned line = p->line;
        p->line = e->line;
        int r = 0;
        if (!e->osinfo || !e->name)
                r = perr(p, "[os %s] needs 'osinfo' and 'name'", e->id);
        else if (!e->url && !e->get)
                r = perr(p, "[os %s] needs 'url' (a direct download) or 'get' (where the user gets it)", e->id);
        else if (e->sig == CATALOG_SIGNED_CHECKSUMS && (!e->checksums || !e->signature || !e->key))
                r = perr(p, "[os %s] signed = checksums needs 'checksums', 'signature' and 'key'", e->id);
        else if (e->sig == CATALOG_SIGNED_INLINE && (!e->checksums || e->signature || !e->key))
                r = perr(p, "[os %s] signed = inline needs 'checksums' (clearsigned) and 'key', and no 'signature'",
                         e->id);
        else if (e->sig == CATALOG_SIGNED_IMAGE && (!e->signature || !e->key))
                r = perr(p, "[os %s] signed = image needs 'signature' and 'key'", e->id);
        else if (e->sig == CATALOG_SIGNED_NONE && (e->signature || e->key))
                r = perr(p, "[os %s] has a signature or key but signed = none; say how it is signed", e->id);
        else if (e->key && !e->key_source)
                r = perr(p, "[os %s] needs 'key-source': where its key came from", e->id);
        p->line = line;
        return r;
}

static int begin_section(struct parser *p, char *inner) {
        int r;
        if (p->cur && (r = entry_check(p, p->cur)) < 0)
                return r;
        if (strncmp(inner, "os ", 3) != 0)
                return perr(p, "unknown section [%s]; use [os ID]", inner);
        char *id = inner + 3;
        while (*id == ' ')
                id++;
        if (!id_valid(id))
                return perr(p, "invalid OS id '%s'; use 1 to 64 of a-z 0-9 . _ -", id);
        for (size_t i = 0; i < p->c->n; i++)
                if (strcmp(p->c->entries[i].id, id) == 0)
                        return perr(p, "duplicate section [os %s]; it was already on line %u", id,
                                    p->c->entries[i].line);
        if (p->c->n >= CATALOG_MAX_ENTRIES)
                return perr(p, "more than %d entries", CATALOG_MAX_ENTRIES);
        struct catalog_entry *n = realloc(p->c->entries, (p->c->n + 1) * sizeof *n);
        if (!n)
                return phy_error_set(p->err, ENOMEM, "out of memory");
        p->c->entries = n;
        p->cur = &n[p->c->n++];
        *p->cur = (struct catalog_entry) { .line = p->line };
        if (!(p->cur->id = strdup(id)))
                return phy_error_set(p->err, ENOMEM, "out of memory");
        return 0;
}

static char *strip(char *s) {
        while (*s == ' ' || *s == '\t')
                s++;
        size_t n = strlen(s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
                s[--n] = '\0';
        return s;
}

static int parse_line(struct parser *p, char *line) {
        for (const char *c = line; *c; c++)
                if ((unsigned char) *c < 0x20 && *c != '\t' && *c != '\r')
                        return perr(p, "control character in the line");
        /* # starts a comment at the start or after a blank. */
        for (char *c = line; *c; c++)
                if (*c == '#' && (c == line || c[-1] == ' ' || c[-1] == '\t')) {
                        *c = '\0';
                        break;
                }
        char *s = strip(line);
        if (!*s)
                return 0;
        if (*s == '[') {
                size_t n = strlen(s);
                if (s[n - 1] != ']')
                        return perr(p, "a section header must end with ']'");
                s[n - 1] = '\0';
                return begin_section(p, strip(s + 1));
        }
        char *eq = strchr(s, '=');
        if (!eq)
                return perr(p, "expected 'key = value'");
        *eq = '\0';
        char *key = strip(s), *v = strip(eq + 1);
        if (!p->cur)
                return perr(p, "key '%s' outside any [os ID] section", key);
        if (!*v)
                return perr(p, "empty value for key '%s'", key);
        return set_key(p, key, v);
}

int catalog_parse(const char *path, const char *text, struct catalog *ret, phy_error *err) {
        struct catalog c = { 0 };
        _cleanup_free_ char *copy = strdup(text), *dir = strdup(path);
        if (!copy || !dir || !(c.path = strdup(path)))
                return phy_error_set(err, ENOMEM, "out of memory");
        char *slash = strrchr(dir, '/');
        if (slash)
                *slash = '\0';
        else {
                free(dir);
                dir = strdup(".");
                if (!dir) {
                        catalog_done(&c);
                        return phy_error_set(err, ENOMEM, "out of memory");
                }
        }
        struct parser p = { .path = path, .dir = dir[0] ? dir : (char *) "/", .c = &c, .err = err };
        char *save = NULL;
        int r = 0;
        /* strtok_r would skip empty lines and so miscount them. */
        for (char *line = copy; line && r >= 0; line = save) {
                char *nl = strchr(line, '\n');
                save = nl ? nl + 1 : NULL;
                if (nl)
                        *nl = '\0';
                p.line++;
                r = parse_line(&p, line);
        }
        if (r >= 0 && p.cur)
                r = entry_check(&p, p.cur);
        if (r >= 0 && c.n == 0)
                r = phy_error_usage(err, "%s: no [os ID] entries", path);
        if (r < 0) {
                catalog_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}

int catalog_load(const char *path, struct catalog *ret, phy_error *err) {
        _cleanup_free_ char *def = NULL, *text = NULL;
        if (!path || !*path)
                path = getenv("PHYLLOME_CATALOG");
        if (!path || !*path) {
                if (asprintf(&def, "%s/catalog.conf", catalog_data_dir()) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                path = def;
        }
        int r = file_read_all(path, 1024 * 1024, &text, NULL);
        if (r < 0)
                return phy_error_set(err, -r, "cannot read the catalog '%s': %s", path, strerror(-r));
        return catalog_parse(path, text, ret, err);
}

/* "http://debian.org/debian/12" and "debian12" name the same entry when the
 * catalog's id is the osinfo short id. */
const struct catalog_entry *catalog_find(const struct catalog *c, const char *name) {
        for (size_t i = 0; name && i < c->n; i++)
                if (strcmp(c->entries[i].id, name) == 0)
                        return &c->entries[i];
        for (size_t i = 0; name && i < c->n; i++)
                if (strcmp(c->entries[i].osinfo, name) == 0)
                        return &c->entries[i];
        return NULL;
}

bool catalog_entry_matches(const struct catalog_entry *e, const char *words) {
        return strcasestr(e->id, words) || strcasestr(e->name, words) || strcasestr(e->osinfo, words);
}

int catalog_media_name(const struct catalog_entry *e, char **ret, phy_error *err) {
        if (!e->url)
                return phy_error_set(err, ENOENT, "%s has no direct download; get it from %s", e->name,
                                     e->get ? e->get : "its vendor");
        const char *end = e->url + strcspn(e->url, "?#");
        const char *b = end;
        while (b > e->url && b[-1] != '/')
                b--;
        size_t n = (size_t) (end - b);
        if (n == 0 || n > 200 || (n <= 2 && b[0] == '.'))
                return phy_error_set(err, EINVAL, "the URL '%s' of %s does not end in a file name", e->url, e->id);
        for (size_t i = 0; i < n; i++)
                if (!(isalnum((unsigned char) b[i]) || strchr("._+-", b[i])))
                        return phy_error_set(err, EINVAL, "the URL '%s' of %s ends in an unusual file name; "
                                             "use one of A-Z a-z 0-9 . _ + -", e->url, e->id);
        if (!(*ret = strndup(b, n)))
                return phy_error_set(err, ENOMEM, "out of memory");
        return 0;
}

json_object *catalog_entry_json(const struct catalog_entry *e) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(e->id));
        json_object_object_add(o, "name", json_object_new_string(e->name));
        json_object_object_add(o, "osinfo", json_object_new_string(e->osinfo));
        static const char *const sig[] = { "none", "checksums", "inline", "image" };
        json_object_object_add(o, "signed", json_object_new_string(sig[e->sig]));
        if (e->url)
                json_object_object_add(o, "url", json_object_new_string(e->url));
        if (e->get)
                json_object_object_add(o, "get", json_object_new_string(e->get));
        if (e->checksums)
                json_object_object_add(o, "checksums", json_object_new_string(e->checksums));
        if (e->signature)
                json_object_object_add(o, "signature", json_object_new_string(e->signature));
        if (e->key)
                json_object_object_add(o, "key", json_object_new_string(e->key));
        if (e->key_source)
                json_object_object_add(o, "key_source", json_object_new_string(e->key_source));
        if (e->hash_source)
                json_object_object_add(o, "hash_source", json_object_new_string(e->hash_source));
        if (e->size)
                json_object_object_add(o, "size", json_object_new_int64((int64_t) e->size));
        json_object *h = json_object_new_array();
        for (size_t i = 0; i < e->sha256.n; i++)
                json_object_array_add(h, json_object_new_string(e->sha256.v[i]));
        json_object_object_add(o, "sha256", h);
        return o;
}

const char *catalog_phase_name(enum catalog_phase p) {
        static const char *const n[] = { "checksums", "image", "verify", "done" };
        return p <= CATALOG_PHASE_DONE ? n[p] : "?";
}

int catalog_verb_list(const char *catalog, const char *word, json_object **ret, phy_error *err) {
        _cleanup_catalog_ struct catalog c = { 0 };
        int r = catalog_load(catalog, &c, err);
        if (r < 0)
                return r;
        json_object *a = json_object_new_array();
        if (!a)
                return phy_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < c.n; i++)
                if (!word || catalog_entry_matches(&c.entries[i], word))
                        json_object_array_add(a, catalog_entry_json(&c.entries[i]));
        *ret = a;
        return 0;
}
