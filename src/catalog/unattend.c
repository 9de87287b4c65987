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

#include <crypt.h>
#include <ctype.h>
#include <fcntl.h>
#include <iconv.h>
#include <osinfo/osinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>
#include "strv.h"

#include "cleanup.h"
#include "exec.h"
#include "fileio.h"
#include "media.h"
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
                return phy_error_usage(err, "the password file '%s' must hold a password of 1 to %d bytes on "
                                     "its first line", file, PASSWORD_MAX);
        for (const char *c = text; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        return phy_error_usage(err, "the password in '%s' holds a control character", file);
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
                return phy_error_usage(err, "invalid user name '%s'; use 1 to 20 of a-z A-Z 0-9 . _ -, not "
                                     "starting with . or -", u->user ? u->user : "");
        if (!windows && !islower((unsigned char) u->user[0]))
                return phy_error_usage(err, "invalid user name '%s'; Linux installers want it to start with "
                                     "a lower-case letter", u->user);
        if (!u->password || !*u->password)
                return phy_error_usage(err, "a password is needed (--password-file)");
        if (u->hostname && (!all_of(u->hostname, "-", 1, windows ? 15 : 63) || u->hostname[0] == '-'))
                return phy_error_usage(err, "invalid host name '%s'; use 1 to %d of a-z A-Z 0-9 -", u->hostname,
                                     windows ? 15 : 63);
        if (u->locale && !(all_of(u->locale, "_-", 2, 16) && isalpha((unsigned char) u->locale[0])))
                return phy_error_usage(err, "invalid locale '%s'; use a language and region like en-US",
                                     u->locale);
        if (u->timezone && !all_of(u->timezone, "/_+-. ", 1, 64))
                return phy_error_usage(err, "invalid time zone '%s'; use a name like Europe/Berlin (Linux) or "
                                     "W. Europe Standard Time (Windows)", u->timezone);
        if (u->edition && !all_of(u->edition, " ._-", 1, 64))
                return phy_error_usage(err, "invalid Windows edition '%s'; use a name like Windows 11 Pro",
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
                return phy_error_usage(err, "the password is not valid UTF-8");
        char *o = str_base64(u16, outlen - left);
        if (!o)
                return phy_error_set(err, ENOMEM, "out of memory");
        *ret = o;
        return 0;
}


/* The virtio-win CD's storage and network drivers for Windows PE: its
 * letter depends on the order Windows PE finds the CDs in (install media,
 * virtio-win, the answer CD), so each of D: E: F: is listed. */
static const char drivers_block[] =
        "    <component name=\"Microsoft-Windows-PnpCustomizationsWinPE\" processorArchitecture=\"amd64\" "
        "publicKeyToken=\"31bf3856ad364e35\" language=\"neutral\" versionScope=\"nonSxS\">\n"
        "      <DriverPaths>\n"
        "        <PathAndCredentials wcm:action=\"add\" wcm:keyValue=\"1\"><Path>D:\\viostor\\w11\\amd64</Path></PathAndCredentials>\n"
        "        <PathAndCredentials wcm:action=\"add\" wcm:keyValue=\"2\"><Path>E:\\viostor\\w11\\amd64</Path></PathAndCredentials>\n"
        "        <PathAndCredentials wcm:action=\"add\" wcm:keyValue=\"3\"><Path>F:\\viostor\\w11\\amd64</Path></PathAndCredentials>\n"
        "        <PathAndCredentials wcm:action=\"add\" wcm:keyValue=\"4\"><Path>D:\\NetKVM\\w11\\amd64</Path></PathAndCredentials>\n"
        "        <PathAndCredentials wcm:action=\"add\" wcm:keyValue=\"5\"><Path>E:\\NetKVM\\w11\\amd64</Path></PathAndCredentials>\n"
        "        <PathAndCredentials wcm:action=\"add\" wcm:keyValue=\"6\"><Path>F:\\NetKVM\\w11\\amd64</Path></PathAndCredentials>\n"
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
                        r = media_append(&out, &len, p, strlen(p));
                        break;
                }
                if ((r = media_append(&out, &len, p, (size_t) (at - p) + (k == ELEMENTSOF(subst)))) < 0)
                        break;
                if (k == ELEMENTSOF(subst)) {
                        p = at + 1;
                        continue;
                }
                if ((r = media_append(&out, &len, subst[k].value, strlen(subst[k].value))) < 0)
                        break;
                p = at + strlen(subst[k].key);
        }
        if (r < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        *ret = TAKE_PTR(out);
        return 0;
}

/* ---- osinfo's install scripts ---- */

static OsinfoInstallScript *script_for(OsinfoOs *os, const char *osinfo_id, phy_error *err) {
        OsinfoInstallScript *s = osinfo_os_find_install_script(os, OSINFO_INSTALL_SCRIPT_PROFILE_JEOS);
        if (!s)
                s = osinfo_os_find_install_script(os, OSINFO_INSTALL_SCRIPT_PROFILE_DESKTOP);
        if (!s)
                phy_error_set(err, ENOTSUP, "osinfo-db has no install script for %s; install it by hand", osinfo_id);
        return s;
}

bool catalog_unattend_supported(const char *osinfo_id, bool windows) {
        if (windows)
                return true;
        phy_error err = { 0 };
        OsinfoOs *os = catalog_osinfo_os(osinfo_id, &err);
        return os && script_for(os, osinfo_id, &err) != NULL;
}

static OsinfoInstallConfig *config_for(const struct catalog_unattend *u) {
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
        return cfg;
}

/* The script's text and file name; media (may be NULL) for its command line. */
static int generate(const char *osinfo_id, const struct catalog_unattend *u, OsinfoMedia *media, char **ret,
                    char **ret_filename, char **ret_cmdline, phy_error *err) {
        int r = catalog_unattend_check(u, false, err);
        if (r < 0)
                return r;
        OsinfoOs *os = catalog_osinfo_os(osinfo_id, err);
        if (!os)
                return -ENOENT;
        OsinfoInstallScript *s = script_for(os, osinfo_id, err);
        if (!s)
                return -ENOTSUP;
        OsinfoInstallConfig *cfg = config_for(u);
        GError *gerr = NULL;
        gchar *text = osinfo_install_script_generate(s, os, cfg, NULL, &gerr);
        gchar *cmdline = text && media ? osinfo_install_script_generate_command_line_for_media(s, media, cfg) : NULL;
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
        if (ret_cmdline)
                *ret_cmdline = cmdline ? strdup(cmdline) : NULL;
        g_free(text);
        g_free(cmdline);
        if (!*ret || !*ret_filename || (ret_cmdline && cmdline && !*ret_cmdline)) {
                free(*ret);
                free(*ret_filename);
                if (ret_cmdline)
                        free(*ret_cmdline);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        return 0;
}

int catalog_preseed_crypt(const char *text, const char *password, char **ret, phy_error *err) {
        /* "$6$": SHA-512 crypt with a random salt from the kernel */
        char salt[CRYPT_GENSALT_OUTPUT_SIZE];
        struct crypt_data cd = { 0 };
        if (!crypt_gensalt_rn("$6$", 0, NULL, 0, salt, sizeof salt))
                return phy_error_set(err, errno ? errno : EIO, "cannot make a salt for the password's hash");
        const char *hash = crypt_r(password, salt, &cd);
        if (!hash || hash[0] != '$')
                return phy_error_set(err, EIO, "cannot hash the password (crypt)");
        _cleanup_free_ char *out = NULL;
        size_t len = 0;
        for (const char *p = text; *p;) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t) (nl - p) + 1 : strlen(p);
                int r = 0;
                bool done = false;
                static const char *const who[] = { "root", "user" };
                for (size_t i = 0; i < ELEMENTSOF(who) && !done; i++) {
                        char key[64], again[64];
                        snprintf(key, sizeof key, "d-i passwd/%s-password password ", who[i]);
                        snprintf(again, sizeof again, "d-i passwd/%s-password-again password ", who[i]);
                        if (strncmp(p, again, strlen(again)) == 0)
                                done = true;    /* the confirmation goes with the clear text */
                        else if (strncmp(p, key, strlen(key)) == 0) {
                                char line[512];
                                snprintf(line, sizeof line, "d-i passwd/%s-password-crypted password %s\n", who[i], hash);
                                r = media_append(&out, &len, line, strlen(line));
                                done = true;
                        }
                }
                if (!done)
                        r = media_append(&out, &len, p, n);
                if (r < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                p += n;
        }
        explicit_bzero(&cd, sizeof cd);
        *ret = out ? TAKE_PTR(out) : strdup("");
        return *ret ? 0 : phy_error_set(err, ENOMEM, "out of memory");
}

/* Debian's and Ubuntu's preseed: the passwords as crypt hashes. */
static int crypt_answer(const char *filename, const char *password, char **text, phy_error *err) {
        if (strcmp(filename, "preseed.cfg") != 0)
                return 0;
        char *c = NULL;
        int r = catalog_preseed_crypt(*text, password, &c, err);
        if (r < 0)
                return r;
        explicit_bzero(*text, strlen(*text));
        free(*text);
        *text = c;
        return 0;
}

int catalog_unattend_osinfo(const char *osinfo_id, const struct catalog_unattend *u, char **ret,
                            char **ret_filename, phy_error *err) {
        int r = generate(osinfo_id, u, NULL, ret, ret_filename, NULL, err);
        if (r >= 0 && (r = crypt_answer(*ret_filename, u->password, ret, err)) < 0) {
                free(*ret);
                free(*ret_filename);
        }
        return r;
}

void catalog_install_done(struct catalog_install *i) {
        free(i->answer_name);
        free(i->answer);
        free(i->kernel);
        free(i->initrd);
        free(i->append);
        *i = (struct catalog_install) { 0 };
}

int catalog_unattend_install(const char *osinfo_id, bool windows, const char *iso, const struct catalog_unattend *u,
                             struct catalog_install *ret, phy_error *err) {
        struct catalog_install in = { .cdrom = windows };
        int r;
        if (windows) {
                if ((r = catalog_unattend_windows(u, &in.answer, err)) < 0)
                        return r;
                if (!(in.answer_name = strdup("autounattend.xml"))) {
                        catalog_install_done(&in);
                        return phy_error_set(err, ENOMEM, "out of memory");
                }
                *ret = in;
                return 0;
        }
        /* Linux: the media's kernel and initrd, where osinfo-db says they are on it. */
        OsinfoMedia *m = catalog_osinfo_media(iso, NULL, err);
        if (!m)
                return err->code ? -err->code : -EIO;
        const char *k = osinfo_media_get_kernel_path(m), *i = osinfo_media_get_initrd_path(m);
        _cleanup_free_ char *cmdline = NULL;
        if (!k || !i)
                r = phy_error_set(err, ENOTSUP, "osinfo-db does not say where the kernel and initrd are on '%s'; "
                                  "this media cannot be installed unattended by Phyllome", iso);
        else if ((r = generate(osinfo_id, u, m, &in.answer, &in.answer_name, &cmdline, err)) >= 0 &&
                 (r = crypt_answer(in.answer_name, u->password, &in.answer, err)) >= 0) {
                in.kernel = strdup(k);
                in.initrd = strdup(i);
                /* The installer on the serial console (phyllo logs, phyllo console shows it); osinfo's
                 * own arguments for the media after Debian's "ask only what is critical". */
                const char *cl = cmdline ? cmdline : "";
                while (*cl == ' ')
                        cl++;
                size_t n = strlen(cl);
                while (n && cl[n - 1] == ' ')
                        n--;
                if (asprintf(&in.append, "auto=true priority=critical%s%.*s console=tty0 console=ttyS0",
                             n ? " " : "", (int) n, cl) < 0)
                        in.append = NULL;
                if (!in.kernel || !in.initrd || !in.append)
                        r = phy_error_set(err, ENOMEM, "out of memory");
        }
        g_object_unref(m);
        if (r < 0) {
                catalog_install_done(&in);
                return r;
        }
        *ret = in;
        return 0;
}

json_object *catalog_install_json(const struct catalog_install *i) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "answer_name", json_object_new_string(i->answer_name));
        json_object_object_add(o, "answer", json_object_new_string(i->answer));
        json_object_object_add(o, "delivery", json_object_new_string(i->cdrom ? "cdrom" : "initrd"));
        if (i->kernel)
                json_object_object_add(o, "kernel", json_object_new_string(i->kernel));
        if (i->initrd)
                json_object_object_add(o, "initrd", json_object_new_string(i->initrd));
        if (i->append)
                json_object_object_add(o, "append", json_object_new_string(i->append));
        return o;
}

/* ---- delivery ---- */

int catalog_initrd_inject(const char *initrd, const char *out, const char *name, const char *data, size_t len,
                          phy_error *err) {
        _cleanup_free_ char *orig = NULL, *all = NULL;
        size_t olen = 0, alen = 0;
        int r = file_read_all(initrd, 512u * 1024 * 1024, &orig, &olen);
        if (r < 0)
                return phy_error_set(err, -r, "cannot read the installer's initrd '%s': %s", initrd, strerror(-r));
        if ((r = media_initrd_with(orig, olen, name, data, len, &all, &alen)) < 0)
                return phy_error_set(err, -r, "cannot add '%s' to the initrd: %s", name, strerror(-r));
        return file_write_atomic(out, all, alen, 0600, err);
}

int catalog_unattend_iso(const char *xml, const char *out_iso, phy_error *err) {
        return media_iso_one("autounattend.xml", xml, strlen(xml), "UNATTEND", out_iso, err);
}
