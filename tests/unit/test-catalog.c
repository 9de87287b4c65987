/* SPDX-License-Identifier: MIT */
/* The catalog file, checksum files, HTML sniffing, osinfo facts and the
 * profile/device plan (src/catalog). */
#include <crypt.h>
#include <unistd.h>

#include "tap.h"
#include "catalog/catalog.h"
#include "catalog/unattend.h"
#include "catalog/verify.h"
#include "cleanup.h"
#include "vm/profile.h"

static void test_shipped_catalog(void) {
        _cleanup_catalog_ struct catalog c = { 0 };
        phy_error err = { 0 };
        ok(catalog_load(NULL, &c, &err) == 0, "the shipped catalog parses: %s", err.message);
        static const char *const want[] = { "debian12", "ubuntu24.04", "fedora42", "opensuse15.6", "archlinux",
                                            "freebsd14.2", "win11" };
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                const struct catalog_entry *e = catalog_find(&c, want[i]);
                ok(e, "the catalog has %s", want[i]);
                if (!e)
                        continue;
                /* every entry with a download is signed, with a key whose origin is written down */
                if (e->url)
                        ok(e->sig != CATALOG_SIGNED_NONE && e->key && access(e->key, R_OK) == 0 && e->key_source,
                           "%s: signed, its key %s readable, its source recorded", e->id, e->key ? e->key : "-");
                else
                        ok(e->get && e->hash_source, "%s: says where to get it and where its hashes are", e->id);
                _cleanup_osinfo_ struct catalog_osinfo o = { 0 };
                ok(catalog_osinfo_lookup(e->osinfo, &o, &err) == 0 && o.known, "%s: osinfo-db (or the overlay) "
                   "knows %s: %s", e->id, e->osinfo, err.message);
        }
        ok(catalog_find(&c, "http://debian.org/debian/12") == catalog_find(&c, "debian12"),
           "an entry is found by its osinfo id too");
}

/* A bad catalog is bad input, like a bad vm.conf: a usage error (exit 2,
 * HTTP 400) naming file:line; a key file that cannot be used is the
 * system's answer (its errno's kind), still with file:line. */
static void parse_fails_kind(const char *text, const char *want, enum phy_error_kind kind, const char *what) {
        struct catalog c = { 0 };
        phy_error err = { 0 };
        int r = catalog_parse("/tmp/cat.conf", text, &c, &err);
        ok(r < 0 && strstr(err.message, want), "%s: %s", what, err.message);
        ok(phy_error_kind_of(&err) == kind, "%s: the error's kind is %s (%s)", what, phy_error_kind_name(kind),
           phy_error_kind_name(phy_error_kind_of(&err)));
        if (r >= 0)
                catalog_done(&c);
}

static void parse_fails(const char *text, const char *want, const char *what) {
        parse_fails_kind(text, want, PHY_ERR_USAGE, what);
}

static void test_parse_errors(void) {
        parse_fails("url = http://x/a.iso\n", "/tmp/cat.conf:1: key 'url' outside any [os ID] section", "key outside");
        parse_fails("[os a]\nosinfo = x\nname = A\nurl = ftp://x/a.iso\n", "cat.conf:4: invalid URL 'ftp://x/a.iso'",
                    "ftp refused");
        parse_fails("[os a]\nosinfo = x\nname = A\nurl = http://x/a.iso\nsigned = checksums\n",
                    "cat.conf:1: [os a] signed = checksums needs 'checksums', 'signature' and 'key'", "signature needed");
        parse_fails("[os a]\nosinfo = x\nname = A\nget = http://x/\nsigned = none\ncolour = red\n",
                    "cat.conf:6: unknown key 'colour' in section [os a]", "unknown key");
        parse_fails("[os a]\nosinfo = x\nname = A\nget = http://x/\n\n[os a]\n",
                    "cat.conf:6: duplicate section [os a]; it was already on line 1", "duplicate section");
        parse_fails("[os A B]\n", "invalid OS id 'A B'", "bad id");
        parse_fails("[os a]\nosinfo = x\nname = A\nget = http://x/\nsha256 = 1234\n", "cat.conf:5: invalid SHA-256",
                    "short hash");
        parse_fails_kind("[os a]\nosinfo = x\nname = A\nurl = http://x/a.iso\nsigned = inline\nkey = /nonexistent.gpg\n",
                         "cat.conf:6: cannot use the key file '/nonexistent.gpg'", PHY_ERR_NOT_FOUND, "missing key file");
        parse_fails("", "/tmp/cat.conf: no [os ID] entries", "an empty catalog");
        parse_fails("[os a]\nosinfo = x\nname = A\n", "[os a] needs 'url'", "no url nor get");

        struct catalog c = { 0 };
        phy_error err = { 0 };
        ok(catalog_parse("/tmp/cat.conf", "[os a]\nosinfo = x\nname = A\nurl = http://h/d/a-1.iso?x=1\n"
                         "signed = none # comment\n", &c, &err) == 0, "a minimal unsigned entry parses: %s",
           err.message);
        _cleanup_free_ char *name = NULL;
        ok(c.n == 1 && catalog_media_name(&c.entries[0], &name, &err) == 0 && strcmp(name, "a-1.iso") == 0,
           "the media's file name is the URL's last segment without the query");
        catalog_done(&c);
        ok(catalog_parse("/tmp/cat.conf", "[os a]\nosinfo = x\nname = A\nurl = http://h/d/..\nsigned = none\n", &c,
                         &err) == 0, "a URL ending in .. parses");
        ok(catalog_media_name(&c.entries[0], &name, &err) < 0, "... but gives no file name: %s", err.message);
        catalog_done(&c);
}

static void test_sums(void) {
        const char *h1 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        const char *h2 = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
        char got[65], text[1024];
        phy_error err = { 0 };
        snprintf(text, sizeof text, "%s  other.iso\n%s *debian.iso\n", h1, h2);
        ok(verify_sums_lookup(text, "SUMS", "debian.iso", got, &err) == 0 &&
           strcmp(got, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb") == 0,
           "GNU format with a binary marker, upper case hex folded");
        snprintf(text, sizeof text, "# Fedora\nSHA256 (Fedora-42.iso) = %s\nSHA256 (x (1).iso) = %s\n", h1, h1);
        ok(verify_sums_lookup(text, "CHECKSUM", "Fedora-42.iso", got, &err) == 0 && strcmp(got, h1) == 0,
           "BSD format");
        ok(verify_sums_lookup(text, "CHECKSUM", "x (1).iso", got, &err) == 0, "BSD format, a name with parentheses");
        ok(verify_sums_lookup(text, "CHECKSUM", "missing.iso", got, &err) == -ENOENT &&
           strstr(err.message, "the checksum file CHECKSUM lists no SHA-256 for 'missing.iso'"), "a missing name: %s",
           err.message);
        snprintf(text, sizeof text, "%s  openSUSE-Leap-15.6-NET-x86_64-Build710.3-Media.iso\n", h1);
        ok(verify_sums_lookup(text, "sha256", "openSUSE-Leap-15.6-NET-x86_64-Current.iso", got, &err) == 0,
           "a checksum file with one line answers for a -Current link");
        ok(verify_sums_lookup("garbage\n1234  short.iso\n", "x", "short.iso", got, &err) == -ENOENT,
           "lines that are not checksums are ignored");
}

static void test_html(void) {
        const char *pages[] = { "<!DOCTYPE html><html>", "\n  <html lang=en>", "\xef\xbb\xbf<!doctype HTML>",
                                "<?xml version=\"1.0\"?><html", "<HTML><HEAD>" };
        for (size_t i = 0; i < ELEMENTSOF(pages); i++)
                ok(verify_looks_html((const uint8_t *) pages[i], strlen(pages[i])), "HTML page %zu spotted", i);
        uint8_t iso[64] = { 0 };
        ok(!verify_looks_html(iso, sizeof iso), "an ISO's zeroed system area is not HTML");
        ok(!verify_looks_html((const uint8_t *) "<not a tag", 10), "a lone '<' is not enough");
}

static void test_plan(void) {
        _cleanup_osinfo_ struct catalog_osinfo o = { 0 }, w = { 0 }, f = { 0 };
        struct catalog_plan p;
        phy_error err = { 0 };
        ok(catalog_osinfo_lookup("debian12", &o, &err) == 0 && catalog_plan_for(&o, NULL, &p, &err) == 0,
           "debian12's plan: %s", err.message);
        is_str(p.profile->name, "linux", "Debian 12 -> profile linux");
        ok(o.virtio_block && o.virtio_net, "osinfo says Debian 12 has virtio block and net drivers");
        ok(!p.disk_bus && !p.nic, "so the profile's virtio devices stay");
        ok(catalog_osinfo_lookup("win11", &w, &err) == 0 && catalog_plan_for(&w, NULL, &p, &err) == 0,
           "win11's plan: %s", err.message);
        is_str(p.profile->name, "windows11", "Windows 11 -> profile windows11");
        is_int((long long) (p.disk ? p.disk : p.profile->disk_size), 64LL << 30, "Windows 11's disk: 64 GiB");
        ok(catalog_osinfo_lookup("freebsd14.2", &f, &err) == 0 && catalog_plan_for(&f, NULL, &p, &err) == 0,
           "freebsd14.2 (from the overlay): %s", err.message);
        is_str(p.profile->name, "freebsd", "FreeBSD -> profile freebsd");
        /* an OS osinfo knows without virtio drivers gets emulated devices */
        struct catalog_osinfo old = { .name = (char *) "Old Linux", .family = (char *) "linux", .known = true,
                                      .virtio_net = true };
        ok(catalog_plan_for(&old, NULL, &p, &err) == 0 && p.disk_bus == VM_BUS_SATA && !p.nic &&
           p.gpu == VM_GPU_STD, "no virtio block or GPU driver: SATA and standard VGA, virtio net kept");
        ok(catalog_osinfo_lookup("nosuchos42", &o, &err) == -ENOENT && strstr(err.message, "knows no OS 'nosuchos42'"),
           "an unknown OS: %s", err.message);
}

static void test_unattend(void) {
        phy_error err = { 0 };
        _cleanup_free_ char *pw = NULL, *xml = NULL, *pre = NULL, *fn = NULL;
        /* Microsoft's documented example: "Password" + "Password" in UTF-16LE, base64 */
        ok(catalog_unattend_windows_password("Password", &pw, &err) == 0 &&
           strcmp(pw, "UABhAHMAcwB3AG8AcgBkAFAAYQBzAHMAdwBvAHIAZAA=") == 0, "Windows' encoded password form: %s",
           pw ? pw : err.message);
        struct catalog_unattend u = { .user = "alice", .password = "s3cret <&> pass", .locale = "de-DE",
                                      .hostname = "deskw", .timezone = "W. Europe Standard Time" };
        ok(catalog_unattend_windows(&u, &xml, &err) == 0, "autounattend.xml generated: %s", err.message);
        ok(xml && !strstr(xml, "s3cret"), "the password is never in clear in autounattend.xml");
        ok(xml && strstr(xml, "<Name>alice</Name>") && strstr(xml, "<UILanguage>de-DE</UILanguage>") &&
           strstr(xml, "<ComputerName>deskw</ComputerName>") && strstr(xml, "<Value>Windows 11 Pro</Value>") &&
           strstr(xml, "<PlainText>false</PlainText>"), "it holds the account, locale, host name and edition");
        ok(xml && !strstr(xml, "@") && !strstr(xml, "BypassTPM") && !strstr(xml, "BypassSecureBoot") &&
           !strstr(xml, "ProductKey"), "no placeholder left, no TPM/Secure Boot bypass, no product key");
        struct catalog_unattend bad = u;
        bad.user = "a<b";
        ok(catalog_unattend_windows(&bad, &xml, &err) == -EINVAL && strstr(err.message, "invalid user name 'a<b'"),
           "XML metacharacters in a value are refused: %s", err.message);
        bad = u;
        bad.hostname = "a-very-long-hostname";
        ok(catalog_unattend_check(&bad, true, &err) == -EINVAL, "a Windows host name over 15 characters is refused");
        u.locale = "en_US";
        ok(catalog_unattend_osinfo("debian12", &u, &pre, &fn, &err) == 0, "Debian 12's preseed from osinfo: %s",
           err.message);
        is_str(fn, "preseed.cfg", "the file name osinfo says the installer expects");
        ok(pre && strstr(pre, "d-i passwd/username alice") && strstr(pre, "d-i netcfg/get_hostname string deskw"),
           "the preseed answers the user and host name questions");
        ok(pre && !strstr(pre, u.password) && !strstr(pre, "-again"), "the preseed holds no password in clear");
        const char *h = pre ? strstr(pre, "d-i passwd/user-password-crypted password $6$") : NULL;
        char hash[256] = "";
        if (h)
                sscanf(h + strlen("d-i passwd/user-password-crypted password "), "%255s", hash);
        struct crypt_data cd = { 0 };
        const char *again = hash[0] ? crypt_r(u.password, hash, &cd) : NULL;
        ok(again && strcmp(again, hash) == 0 && strstr(pre, "d-i passwd/root-password-crypted password $6$"),
           "... but its SHA-512 crypt hash, for the user and root, that the password matches");
        ok(catalog_unattend_osinfo("win11", &u, &pre, &fn, &err) == -ENOTSUP || err.code == ENOTSUP,
           "osinfo-db has no install script for Windows 11 (hence Phyllome's own): %s", err.message);
}

int main(void) {
        test_shipped_catalog();
        test_parse_errors();
        test_sums();
        test_html();
        test_plan();
        test_unattend();
        return tap_done();
}
