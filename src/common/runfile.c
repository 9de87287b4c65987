/* SPDX-License-Identifier: MIT */
/* The run dir's small files (runfile.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "runfile.h"
#include "cleanup.h"
#include "fileio.h"

int runfile_read_raw(const char *path, size_t max, char **ret, size_t *ret_len, phy_error *err) {
        if (max == 0)
                max = RUNFILE_MAX;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 && errno == ELOOP)
                return phy_error_set(err, EPERM, "'%s' is a symbolic link; it is not trusted: remove it", path);
        if (fd < 0 && errno == ENOENT)
                return -ENOENT;
        if (fd < 0)
                return phy_error_set(err, errno, "cannot open '%s': %s", path, strerror(errno));
        struct stat st;
        if (fstat(fd, &st) < 0)
                return phy_error_set(err, errno, "cannot read '%s': %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode) || (st.st_uid != geteuid() && st.st_uid != 0))
                return phy_error_set(err, EPERM, "'%s' is not a regular file of uid %u or root; it is not trusted: "
                                     "remove it", path, (unsigned) geteuid());
        if ((uint64_t) st.st_size > max)
                return phy_error_set(err, EFBIG, "'%s' is larger than %zu bytes (%llu); it is not one of ours", path,
                                     max, (unsigned long long) st.st_size);
        size_t cap = (size_t) st.st_size;      /* what grows meanwhile is left for the next read */
        _cleanup_free_ char *buf = malloc(cap + 1);
        if (!buf)
                return phy_error_set(err, ENOMEM, "out of memory reading '%s'", path);
        ssize_t k = fd_read_full(fd, buf, cap);
        if (k < 0)
                return phy_error_set(err, (int) -k, "cannot read '%s': %s", path, strerror((int) -k));
        size_t len = (size_t) k;
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

/* The file's bytes, when they pass the check every record does: no NUL byte. */
static int read_text(const char *path, size_t max, char **ret, size_t *ret_len, phy_error *err) {
        _cleanup_free_ char *text = NULL;
        int r = runfile_read_raw(path, max, &text, ret_len, err);
        if (r < 0)
                return r;
        if (memchr(text, '\0', *ret_len))
                return phy_error_set_kind(err, PHY_ERR_HOST, EBADMSG, "'%s' holds a NUL byte; it is not one of ours "
                                          "(or it is damaged): remove it", path);
        *ret = TAKE_PTR(text);
        return 0;
}

int runfile_read(const char *path, size_t max, char **ret, size_t *ret_len, phy_error *err) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_text(path, max, &text, &len, err);
        if (r < 0)
                return r;
        if (len == 0 || text[len - 1] != '\n')
                return phy_error_set_kind(err, PHY_ERR_HOST, EBADMSG, "'%s' is cut short (%s); remove it", path,
                                          len ? "no newline at its end" : "empty");
        *ret = TAKE_PTR(text);
        if (ret_len)
                *ret_len = len;
        return 0;
}

int runfile_read_json(const char *path, size_t max, json_object **ret, phy_error *err) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_text(path, max, &text, &len, err);
        if (r < 0)
                return r;
        json_tokener *tok = json_tokener_new();
        if (!tok)
                return phy_error_set(err, ENOMEM, "out of memory reading '%s'", path);
        json_object *o = json_tokener_parse_ex(tok, text, (int) len);
        enum json_tokener_error je = json_tokener_get_error(tok);
        size_t used = o ? json_tokener_get_parse_end(tok) : 0;
        json_tokener_free(tok);
        if (je == json_tokener_continue || (!o && len == strspn(text, " \t\r\n"))) {
                json_object_put(o);
                return phy_error_set_kind(err, PHY_ERR_HOST, EBADMSG, "'%s' is cut short (%s); remove it", path,
                                          len ? "its JSON does not end" : "empty");
        }
        if (!o || !json_object_is_type(o, json_type_object) || used + strspn(text + used, " \t\r\n") != len) {
                json_object_put(o);
                return phy_error_set_kind(err, PHY_ERR_HOST, EBADMSG, "'%s' is not a JSON object%s%s; remove it",
                                          path, o ? "" : ": ", o ? "" : json_tokener_error_desc(je));
        }
        *ret = o;
        return 0;
}

/* Replaced atomically, not synced: a record in the run dir is runtime state
 * that a reboot voids anyway (boot_id); state.json's three syncs were ~90 ms
 * of a start here (issue 20). */
int runfile_write(const char *path, const char *text, mode_t mode, phy_error *err) {
        size_t n = strlen(text);
        if (n > 0 && text[n - 1] == '\n')
                return file_replace(path, text, n, mode, err);
        _cleanup_free_ char *line = malloc(n + 2);
        if (!line)
                return phy_error_set(err, ENOMEM, "out of memory writing '%s'", path);
        memcpy(line, text, n);
        line[n] = '\n';
        line[n + 1] = '\0';
        return file_replace(path, line, n + 1, mode, err);
}

int runfile_write_json(const char *path, json_object *o, mode_t mode, phy_error *err) {
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return phy_error_set(err, ENOMEM, "out of memory writing '%s'", path);
        return runfile_write(path, s, mode, err);
}
