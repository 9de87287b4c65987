/* SPDX-License-Identifier: MIT */
#include "strv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int strv_take(strv *s, char *str) {
        if (!str)
                return -ENOMEM;
        if (s->n + 2 > s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 16;
                char **v = realloc(s->v, cap * sizeof *v);
                if (!v) {
                        free(str);
                        return -ENOMEM;
                }
                s->v = v;
                s->cap = cap;
        }
        s->v[s->n++] = str;
        s->v[s->n] = NULL;
        return 0;
}

int strv_push(strv *s, const char *str) {
        return strv_take(s, strdup(str));
}

int strv_pushf(strv *s, const char *fmt, ...) {
        char *str = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&str, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return strv_take(s, str);
}

int strv_push_many(strv *s, ...) {
        va_list ap;
        int r = 0;
        va_start(ap, s);
        for (const char *a; (a = va_arg(ap, const char *));)
                if ((r = strv_push(s, a)) < 0)
                        break;
        va_end(ap);
        return r;
}

bool strv_contains(const strv *s, const char *str) {
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->v[i], str) == 0)
                        return true;
        return false;
}

void strv_done(strv *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i]);
        free(s->v);
        s->v = NULL;
        s->n = s->cap = 0;
}

/* Quote for a POSIX shell only where needed, for display to a person. */
static void quote_into(FILE *f, const char *a) {
        if (*a && strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_./=,:@+%") == strlen(a)) {
                fputs(a, f);
                return;
        }
        fputc('\'', f);
        for (; *a; a++) {
                if (*a == '\'')
                        fputs("'\\''", f);
                else
                        fputc(*a, f);
        }
        fputc('\'', f);
}

char *strv_join(const strv *s, const char *sep) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        for (size_t i = 0; i < s->n; i++) {
                if (i)
                        fputs(sep ? sep : " ", f);
                if (sep)
                        fputs(s->v[i], f);
                else
                        quote_into(f, s->v[i]);
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

void strv_remove_at(strv *s, size_t i) {
        free(s->v[i]);
        memmove(&s->v[i], &s->v[i + 1], (s->n - i) * sizeof *s->v);  /* NULL terminator too */
        s->n--;
}

int strv_remove(strv *s, const char *str) {
        int n = 0;
        for (size_t i = 0; i < s->n;)
                if (strcmp(s->v[i], str) == 0) {
                        strv_remove_at(s, i);
                        n++;
                } else
                        i++;
        return n;
}

bool str_has_control(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

const char *str_escape_line(const char *s, char *buf, size_t n) {
        size_t o = 0;
        if (!n)
                return buf;
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                char e[5];
                if (c == '\\')
                        snprintf(e, sizeof e, "\\\\");
                else if (c == '\n')
                        snprintf(e, sizeof e, "\\n");
                else if (c == '\r')
                        snprintf(e, sizeof e, "\\r");
                else if (c == '\t')
                        snprintf(e, sizeof e, "\\t");
                else if (c < 0x20 || c == 0x7f)
                        snprintf(e, sizeof e, "\\x%02x", c);
                else {
                        e[0] = (char) c;
                        e[1] = '\0';
                }
                size_t l = strlen(e);
                if (o + l >= n)
                        break;
                memcpy(buf + o, e, l);
                o += l;
        }
        buf[o] = '\0';
        return buf;
}

char *str_base64(const void *data, size_t n) {
        static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *o = malloc((n + 2) / 3 * 4 + 1), *p = o;
        if (!o)
                return NULL;
        const unsigned char *s = data;
        for (size_t i = 0; i < n; i += 3) {
                unsigned v = (unsigned) s[i] << 16 | (i + 1 < n ? s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
                *p++ = b64[v >> 18 & 63];
                *p++ = b64[v >> 12 & 63];
                *p++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
                *p++ = i + 2 < n ? b64[v & 63] : '=';
        }
        *p = '\0';
        return o;
}
