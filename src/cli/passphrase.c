/* SPDX-License-Identifier: MIT */
/* Passphrases of encrypted disks ([disk] key = prompt), typed on the terminal. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "cleanup.h"

/* One line from /dev/tty without echo; -ENOTTY when there is no terminal. */
static int read_secret(const char *prompt, char *buf, size_t len) {
        _cleanup_close_ int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -ENOTTY;
        struct termios old, quiet;
        bool restore = tcgetattr(fd, &old) == 0;
        if (restore) {
                quiet = old;
                quiet.c_lflag &= ~(tcflag_t) ECHO;
                quiet.c_lflag |= ECHONL;
                (void) tcsetattr(fd, TCSANOW, &quiet);
        }
        (void) !write(fd, prompt, strlen(prompt));
        size_t n = 0;
        int r = 0;
        for (;;) {
                char c;
                ssize_t k = read(fd, &c, 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        r = k < 0 ? -errno : -ENODATA;
                        break;
                }
                if (c == '\n' || c == '\r')
                        break;
                if (n + 1 >= len) {
                        r = -E2BIG;
                        break;
                }
                buf[n++] = c;
        }
        buf[n] = '\0';
        if (restore)
                (void) tcsetattr(fd, TCSANOW, &old);
        if (r == 0 && n == 0)
                r = -ENODATA;
        if (r < 0)
                explicit_bzero(buf, len);
        return r;
}

int cli_ask_passphrase(const char *disk, char *buf, size_t len, void *userdata) {
        const char *vm = userdata;
        char prompt[256];
        snprintf(prompt, sizeof prompt, "Passphrase for disk '%s' of VM '%s': ", disk, vm ? vm : "?");
        return read_secret(prompt, buf, len);
}

int cli_new_passphrase(const char *disk, const char *vm, char *buf, size_t len) {
        char again[512], prompt[256];
        snprintf(prompt, sizeof prompt, "New passphrase for disk '%s' of VM '%s': ", disk, vm);
        int r = read_secret(prompt, buf, len);
        if (r < 0)
                return r;
        r = read_secret("The same again: ", again, sizeof again);
        bool same = r >= 0 && strcmp(buf, again) == 0;
        explicit_bzero(again, sizeof again);
        if (r < 0 || !same) {
                explicit_bzero(buf, len);
                return r < 0 ? r : -EINVAL;
        }
        return 0;
}

int cli_keys_unlock(struct cli_ctx *ctx, const char *name, bool even_running, bool *ret_any) {
        struct ops_ctx oc;
        phy_error err = { 0 };
        *ret_any = false;
        if (cli_ops(ctx, &oc))
                return 1;
        /* The passphrases are typed here, on our terminal (src/ops/store.c
         * decides which disks need one and keeps them for the command). */
        int r = ops_keys_unlock(&oc, name, even_running, cli_ask_passphrase, (void *) name, &err);
        if (r < 0)
                return cli_fail(&err);
        *ret_any = r > 0;
        return 0;
}

void cli_keys_forget(struct cli_ctx *ctx, const char *name) {
        struct ops_ctx oc;
        if (cli_ops(ctx, &oc) == 0)
                ops_keys_forget(&oc, name);
}
