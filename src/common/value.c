/* SPDX-License-Identifier: MIT */
/* The syntax of small user values (value.h); depends on nothing but libc. */
#include "value.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

bool value_hex_n(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!isxdigit((unsigned char) s[i]))
                        return false;
        return true;
}

/* s has the shape, 'x' standing for a hex digit. */
static bool shaped(const char *s, const char *shape, bool lower_only) {
        if (!s || strlen(s) != strlen(shape))
                return false;
        for (size_t i = 0; shape[i]; i++) {
                unsigned char c = (unsigned char) s[i];
                if (shape[i] == 'x' ? !isxdigit(c) || (lower_only && isupper(c)) : s[i] != shape[i])
                        return false;
        }
        return true;
}

bool value_pci_addr_valid(const char *s, bool lower_only) {
        return shaped(s, "xxxx:xx:xx.x", lower_only) && s[11] >= '0' && s[11] <= '7';
}

bool value_uuid_valid(const char *s, bool lower_only) {
        return shaped(s, "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower_only);
}

bool value_usb_is_busport(const char *s) {
        const char *dash = strchr(s, '-');
        if (!dash || dash == s || dash - s > 3)
                return false;
        for (const char *c = s; c < dash; c++)
                if (!isdigit((unsigned char) *c))
                        return false;
        const char *p = dash + 1;
        unsigned depth = 0;
        while (*p) {
                size_t n = strspn(p, "0123456789");
                if (n == 0 || n > 3 || p[0] == '0' || ++depth > 7)
                        return false;
                p += n;
                if (*p == '.' && p[1])
                        p++;
                else if (*p)
                        return false;
        }
        return depth > 0 && s[0] != '0';
}

bool value_usb_id_valid(const char *s) {
        if (strlen(s) == 9 && value_hex_n(s, 4) && s[4] == ':' && value_hex_n(s + 5, 4))
                return true;
        return value_usb_is_busport(s);
}

static int parse_port(const char *s, size_t n, unsigned *ret) {
        if (n < 1 || n > 5 || s[0] == '0')
                return -EINVAL;
        unsigned v = 0;
        for (size_t i = 0; i < n; i++) {
                if (!isdigit((unsigned char) s[i]))
                        return -EINVAL;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        if (v < 1 || v > 65535)
                return -EINVAL;
        *ret = v;
        return 0;
}

int value_forward_parse(const char *spec, struct value_forward *ret) {
        struct value_forward f = { 0 };
        if (strncmp(spec, "tcp:", 4) != 0 && strncmp(spec, "udp:", 4) != 0)
                return -EINVAL;
        memcpy(f.proto, spec, 3);
        const char *s = spec + 4;
        /* Three fields left means an address comes first. */
        const char *c1 = strchr(s, ':');
        if (!c1)
                return -EINVAL;
        const char *c2 = strchr(c1 + 1, ':');
        if (c2) {
                size_t n = (size_t) (c1 - s);
                if (n == 0 || n >= sizeof f.addr)
                        return -EINVAL;
                memcpy(f.addr, s, n);
                struct in_addr a;
                if (inet_pton(AF_INET, f.addr, &a) != 1)
                        return -EINVAL;
                s = c1 + 1;
                c1 = c2;
        }
        if (parse_port(s, (size_t) (c1 - s), &f.host_port) < 0 ||
            parse_port(c1 + 1, strlen(c1 + 1), &f.guest_port) < 0)
                return -EINVAL;
        if (ret)
                *ret = f;
        return 0;
}

const char *value_forward_addr(const struct value_forward *f) {
        return f->addr[0] ? f->addr : "127.0.0.1";
}
