/* SPDX-License-Identifier: MIT */
/*
 * Answer files for unattended installs (docs/catalog.md): osinfo's install
 * script for the OS (Debian's preseed, Fedora's kickstart, ...) through
 * libosinfo's OsinfoInstallScript, and Phyllome's own autounattend.xml for
 * Windows 10 and 11 (osinfo-db has none for 11, and its Windows script wants
 * a product key).  Delivery: a preseed is added to the installer's initrd as
 * one more cpio archive; autounattend.xml goes on a small ISO (xorriso) at
 * its root, where Windows setup looks.
 */
#include "unattend.h"

#include <ctype.h>
#include <fcntl.h>
#include <iconv.h>
#include <osinfo/osinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "strv.h"

#include "cleanup.h"
#include "exec.h"
#include "fileio.h"
#include "osinfo-db.h"

#define PASSWORD_MAX 127

int catalog_unattend_read_password(const char *file, char **ret, phy_error *err) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = file_read_all(file, 4096, &text, &len);
        if (r < 0)
                return phy_error_set(err, -r, "cannot read the password file '%s': %s", file, strerror(-r));
        /* the first line; a trailing newline is not part of it */
        text[strcspn(text, "\r\n")] = '\0';
        len = strlen(text);
        if (len == 0 || len > PASSWORD_MAX)
                return phy_error_set(err, EINVAL, "the password file '%s' must hold a password of 1 to %d bytes on "
                                     "its first line", file, PASSWORD_MAX);
        for (const char *c = text; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        return phy_error_set(err, EINVAL, "the password in '%s' holds a control character", file);
        *ret = TAKE_PTR(text);
        return 0;
}

static bool all_of(const char *s, const char *extra, size_t min, size_t max) {
        size_t n = strlen(s);
        if (n < min || n > max)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && !strchr(extra, *s))
                        return false;
        return true;
}

int catalog_unattend_check(const struct catalog_unattend *u, bool windows, phy_error *err) {
        /* Windows: at most 20 characters, none of "/\[]:;|=,+*?<>@ */
        if (!u->user || !all_of(u->user, "._-", 1, 20) || u->user[0] == '.' || u->user[0] == '-')
                return phy_error_set(err, EINVAL, "invalid user name '%s'; use 1 to 20 of a-z A-Z 0-9 . _ -, not "
                                     "starting with . or -", u->user ? u->user : "");
        if (!windows && !islower((unsigned char) u->user[0]))
                return phy_error_set(err, EINVAL, "invalid user name '%s'; Linux installers want it to start with "
                                     "a lower-case letter", u->user);
        if (!u->password || !*u->password)
                return phy_error_set(err, EINVAL, "a password is needed (--password-file)");
        if (u->hostname && (!all_of(u->hostname, "-", 1, windows ? 15 : 63) || u->hostname[0] == '-'))
                return phy_error_set(err, EINVAL, "invalid host name '%s'; use 1 to %d of a-z A-Z 0-9 -", u->hostname,
                                     windows ? 15 : 63);
        if (u->locale && !(all_of(u->locale, "_-", 2, 16) && isalpha((unsigned char) u->locale[0])))
                return phy_error_set(err, EINVAL, "invalid locale '%s'; use a language and region like en-US",
                                     u->locale);
        if (u->timezone && !all_of(u->timezone, "/_+-. ", 1, 64))
                return phy_error_set(err, EINVAL, "invalid time zone '%s'; use a name like Europe/Berlin (Linux) or "
                                     "W. Europe Standard Time (Windows)", u->timezone);
        if (u->edition && !all_of(u->edition, " ._-", 1, 64))
                return phy_error_set(err, EINVAL, "invalid Windows edition '%s'; use a name like Windows 11 Pro",
                                     u->edition);
        return 0;
}

/* ---- Windows: Phyllome's template ---- */

/* Windows' "PlainText false" form: base64 of UTF-16LE(password + "Password"). */
int catalog_unattend_windows_password(const char *password, char **ret, phy_error *err) {
        _cleanup_free_ char *in = NULL;
        if (asprintf(&in, "%sPassword", password) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        size_t inlen = strlen(in), outlen = inlen * 4 + 4, left = outlen;
        _cleanup_free_ char *u16 = malloc(outlen);
        if (!u16)
                return phy_error_set(err, ENOMEM, "out of memory");
        iconv_t cd = iconv_open("UTF-16LE", "UTF-8");
        if (cd == (iconv_t) -1)
                return phy_error_set(err, errno, "cannot convert the password to UTF-16: %s", strerror(errno));
        char *ip = in, *op = u16;
        size_t k = iconv(cd, &ip, &inlen, &op, &left);
        iconv_close(cd);
        if (k == (size_t) -1)
                return phy_error_set(err, EINVAL, "the password is not valid UTF-8");
        char *o = str_base64(u16, outlen - left);
        if (!o)
                return phy_error_set(err, ENOMEM, "out of memory");
        *ret = o;
        return 0;
}

static int append(char **buf, size_t *len, const char *s, size_t n) {
        char *b = realloc(*buf, *len + n + 1);
        if (!b)
                return -ENOMEM;
        memcpy(b + *len, s, n);
        *len += n;
        b[*len] = '\0';
        *buf = b;
        return 0;
}

static const char drivers_block[] =
        "    <component name=\"Microsoft-Windows-PnpCustomizationsWinPE\" processorArchitecture=\"amd64\" "
        "publicKeyToken=\"31bf3856ad364e35\" language=\"neutral\" versionScope=\"nonSxS\">\n"
        "      <DriverPaths>\n"
        "        <PathAndCredentials wcm:action=\"add\" wcm:keyValue=\"1\"><Path>D:\\viostor\\w11\\amd64</Path></PathAndCredentials>\n"
        "        <PathAndCredentials wcm:action=\"add\" wcm:keyValue=\"2\"><Path>E:\\viostor\\w11\\amd64</Path></PathAndCredentials>\n"
        "        <PathAndCredentials wcm:action=\"add\" wcm:keyValue=\"3\"><Path>D:\\NetKVM\\w11\\amd64</Path></PathAndCredentials>\n"
        "        <PathAndCredentials wcm:action=\"add\" wcm:keyValue=\"4\"><Path>E:\\NetKVM\\w11\\amd64</Path></PathAndCredentials>\n"
        "      </DriverPaths>\n"
        "    </component>\n";

int catalog_unattend_windows(const struct catalog_unattend *u, char **ret, phy_error *err) {
        int r = catalog_unattend_check(u, true, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *tpl_path = NULL, *tpl = NULL, *pw = NULL, *out = NULL;
        if (asprintf(&tpl_path, "%s/unattend/win11-autounattend.xml", catalog_data_dir()) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if ((r = file_read_all(tpl_path, 256 * 1024, &tpl, NULL)) < 0)
                return phy_error_set(err, -r, "cannot read the template '%s': %s", tpl_path, strerror(-r));
        if ((r = catalog_unattend_windows_password(u->password, &pw, err)) < 0)
                return r;
        /* every value was checked above to hold no XML metacharacter */
        const struct { const char *key, *value; } subst[] = {
                { "@LOCALE@", u->locale ? u->locale : "en-US" },
                { "@EDITION@", u->edition ? u->edition : "Windows 11 Pro" },
                { "@HOSTNAME@", u->hostname ? u->hostname : "windows" },
                { "@TIMEZONE@", u->timezone ? u->timezone : "UTC" },
                { "@USER@", u->user },
                { "@PASSWORD@", pw },
                { "@AUTOLOGON_PASSWORD@", pw },
                { "@DRIVERS@", u->drivers ? drivers_block : "" },
        };
        size_t len = 0;
        for (const char *p = tpl; *p;) {
                const char *at = strchr(p, '@');
                size_t k = 0;
                for (; at && k < ELEMENTSOF(subst); k++)
                        if (strncmp(at, subst[k].key, strlen(subst[k].key)) == 0)
                                break;
                if (!at) {
                        r = append(&out, &len, p, strlen(p));
                        break;
                }
                if ((r = append(&out, &len, p, (size_t) (at - p) + (k == ELEMENTSOF(subst)))) < 0)
                        break;
                if (k == ELEMENTSOF(subst)) {
                        p = at + 1;
                        continue;
                }
                if ((r = append(&out, &len, subst[k].value, strlen(subst[k].value))) < 0)
                        break;
                p = at + strlen(subst[k].key);
        }
        if (r < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        *ret = TAKE_PTR(out);
        return 0;
}

/* ---- osinfo's install scripts ---- */

int catalog_unattend_osinfo(const char *osinfo_id, const struct catalog_unattend *u, char **ret,
                            char **ret_filename, phy_error *err) {
        int r = catalog_unattend_check(u, false, err);
        if (r < 0)
                return r;
        OsinfoOs *os = catalog_osinfo_os(osinfo_id, err);
        if (!os)
                return -ENOENT;
        OsinfoInstallScript *s = osinfo_os_find_install_script(os, OSINFO_INSTALL_SCRIPT_PROFILE_JEOS);
        if (!s)
                s = osinfo_os_find_install_script(os, OSINFO_INSTALL_SCRIPT_PROFILE_DESKTOP);
        if (!s)
                return phy_error_set(err, ENOTSUP, "osinfo-db has no install script for %s; install it by hand",
                                     osinfo_id);
        OsinfoInstallConfig *cfg = osinfo_install_config_new("http://phyllome.org/unattend");
        /* Linux locales are ll_CC; a Windows-style ll-CC is taken too */
        char locale[17];
        snprintf(locale, sizeof locale, "%s", u->locale ? u->locale : "en_US");
        for (char *c = locale; *c; c++)
                if (*c == '-')
                        *c = '_';
        osinfo_install_config_set_user_login(cfg, u->user);
        osinfo_install_config_set_user_realname(cfg, u->user);
        osinfo_install_config_set_user_password(cfg, u->password);
        osinfo_install_config_set_admin_password(cfg, u->password);
        osinfo_install_config_set_hostname(cfg, u->hostname ? u->hostname : "linux");
        osinfo_install_config_set_l10n_timezone(cfg, u->timezone ? u->timezone : "UTC");
        osinfo_install_config_set_l10n_language(cfg, locale);
        osinfo_install_config_set_l10n_keyboard(cfg, "us");
        GError *gerr = NULL;
        gchar *text = osinfo_install_script_generate(s, os, cfg, NULL, &gerr);
        g_object_unref(cfg);
        if (!text) {
                r = phy_error_set(err, EIO, "cannot generate %s's install script: %s", osinfo_id,
                                  gerr ? gerr->message : "unknown error");
                g_clear_error(&gerr);
                return r;
        }
        const char *fn = osinfo_install_script_get_expected_filename(s);
        *ret = strdup(text);
        *ret_filename = strdup(fn ? fn : "answer.cfg");
        g_free(text);
        if (!*ret || !*ret_filename) {
                free(*ret);
                free(*ret_filename);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        return 0;
}

/* ---- delivery ---- */

/* One newc cpio archive holding name (mode 0644) and its trailer. */
static int cpio_member(char **buf, size_t *len, const char *name, const void *data, size_t size, unsigned ino) {
        char hdr[128];
        size_t namesize = strlen(name) + 1;
        if (size > 0xffffffu || namesize > 4096)
                return -EFBIG;
        snprintf(hdr, sizeof hdr, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino,
                 data ? 0100644u : 0u, 0u, 0u, 1u, 0u, (unsigned) size, 0u, 0u, 0u, 0u, (unsigned) namesize, 0u);
        static const char zeros[4] = { 0 };
        if (append(buf, len, hdr, 110) < 0 || append(buf, len, name, namesize) < 0 ||
            append(buf, len, zeros, (4 - (110 + namesize) % 4) % 4) < 0 || (size && append(buf, len, data, size) < 0) ||
            append(buf, len, zeros, (4 - size % 4) % 4) < 0)
                return -ENOMEM;
        return 0;
}

int catalog_initrd_inject(const char *initrd, const char *out, const char *name, const char *data, size_t len,
                          phy_error *err) {
        _cleanup_free_ char *orig = NULL, *cpio = NULL, *all = NULL;
        size_t olen = 0, clen = 0, alen = 0;
        int r = file_read_all(initrd, 512u * 1024 * 1024, &orig, &olen);
        if (r < 0)
                return phy_error_set(err, -r, "cannot read the installer's initrd '%s': %s", initrd, strerror(-r));
        if (cpio_member(&cpio, &clen, name, data, len, 1) < 0 || cpio_member(&cpio, &clen, "TRAILER!!!", NULL, 0, 0) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* the kernel unpacks concatenated archives, compressed or not; zeros
         * between them are skipped, so the first is padded to 4 bytes */
        static const char zeros[4] = { 0 };
        if (append(&all, &alen, orig, olen) < 0 || append(&all, &alen, zeros, (4 - olen % 4) % 4) < 0 ||
            append(&all, &alen, cpio, clen) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        return file_write_atomic(out, all, alen, 0600, err);
}

int catalog_unattend_iso(const char *xml, const char *out_iso, phy_error *err) {
        _cleanup_free_ char *xorriso = exec_find_in_path("xorriso"), *dir = NULL, *file = NULL;
        if (!xorriso)
                return phy_error_set(err, ENOENT, "xorriso is not installed (Debian package xorriso); it makes the "
                                     "answer file's CD");
        if (asprintf(&dir, "%s.d-XXXXXX", out_iso) < 0 || !mkdtemp(dir))
                return phy_error_set(err, errno ? errno : ENOMEM, "cannot make a directory next to '%s': %s", out_iso,
                                     strerror(errno));
        int r = asprintf(&file, "%s/autounattend.xml", dir) < 0 ? phy_error_set(err, ENOMEM, "out of memory")
                                                                : file_write_atomic(file, xml, strlen(xml), 0600, err);
        if (r >= 0) {
                char *const argv[] = { xorriso, "-as", "mkisofs", "-quiet", "-J", "-r", "-V", "UNATTEND", "-o",
                                       (char *) out_iso, dir, NULL };
                char errbuf[512] = "";
                if ((r = exec_run(argv, NULL, errbuf, sizeof errbuf)) < 0)
                        r = phy_error_set(err, EIO, "xorriso could not make '%s': %s", out_iso, errbuf);
                else
                        (void) chmod(out_iso, 0600);
        }
        rm_rf(dir);
        return r;
}
