/* SPDX-License-Identifier: MIT */
/*
 * OVA appliances (VirtualBox, VMware): a tar of an OVF descriptor, its
 * disks (VMDK) and a manifest (.mf) of checksums.  Every member is
 * extracted into a private directory of the home while its SHA-256 and
 * SHA-1 are computed; the manifest must list every member with the right
 * checksum (a wrong or missing one refuses the appliance) before the
 * descriptor is read.  The descriptor's hardware section becomes the
 * definition; the VMDKs are converted to qcow2 by interop_place.
 */
#include "interop.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <fcntl.h>
#include <libxml/tree.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "lazylib.h"
#include "value.h"
#include "vm/profile.h"
#include "xml-internal.h"

DEFINE_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)

#define OVA_MEMBERS_MAX 64

struct member {
        char *name;
        char sha256[2 * SHA256_DIGEST_SIZE + 1];
        char sha1[2 * SHA1_DIGEST_SIZE + 1];
        bool listed;
};

static void hex(const uint8_t *d, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* A member name of an appliance: one plain file name. */
static bool member_name_ok(const char *n) {
        if (!*n || strlen(n) > 255 || strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || n[0] == '.')
                return false;
        for (const char *c = n; *c; c++)
                if (*c == '/' || (unsigned char) *c < 0x20 || *c == 0x7f)
                        return false;
        return true;
}

static bool ends_with(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

static int extract(const char *path, int dfd, struct member *m, size_t *ret_n, phy_error *err) {
        struct archive *a = archive_read_new();
        if (!a)
                return phy_error_set(err, ENOMEM, "out of memory");
        archive_read_support_format_tar(a);
        int r = 0;
        size_t n = 0;
        if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
                r = phy_error_usage(err, "'%s' is not an OVA (a tar archive): %s", path, archive_error_string(a));
                goto done;
        }
        struct archive_entry *e;
        int ar;
        while ((ar = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
                const char *name = archive_entry_pathname(e);
                if (!name || !member_name_ok(name)) {
                        r = phy_error_set_kind(err, PHY_ERR_PERMISSION, EPERM, "%s: the member '%s' is not a plain "
                                               "file name (a path, a dot file or a control character); refused",
                                               path, name ? name : "");
                        goto done;
                }
                if (archive_entry_filetype(e) != AE_IFREG) {
                        r = phy_error_set_kind(err, PHY_ERR_PERMISSION, EPERM, "%s: the member '%s' is not a regular "
                                               "file (a link or a device); refused", path, name);
                        goto done;
                }
                if (n == OVA_MEMBERS_MAX) {
                        r = phy_error_set_kind(err, PHY_ERR_TOO_LARGE, EFBIG, "%s: more than %d members", path,
                                               OVA_MEMBERS_MAX);
                        goto done;
                }
                for (size_t i = 0; i < n; i++)
                        if (strcmp(m[i].name, name) == 0) {
                                r = phy_error_usage(err, "%s: the member '%s' is there twice", path, name);
                                goto done;
                        }
                /* A sparse member (holes declared in the tar header) is refused
                 * before a byte is written: its holes would be read back and
                 * hashed byte by byte (a 10 KiB tar declaring TiBs; issue 12,
                 * finding 5).  VirtualBox and VMware write whole files. */
                if (archive_entry_sparse_count(e) > 0) {
                        r = phy_error_set_kind(err, PHY_ERR_PERMISSION, EPERM, "%s: the member '%s' is sparse (a tar "
                                               "member with holes); an appliance's members are whole files: refused",
                                               path, name);
                        goto done;
                }
                /* A member larger than the room left is refused before a byte is written. */
                struct statvfs vfs;
                if (fstatvfs(dfd, &vfs) == 0 && archive_entry_size(e) > 0 &&
                    (uint64_t) archive_entry_size(e) > (uint64_t) vfs.f_bavail * vfs.f_frsize) {
                        r = phy_error_set_kind(err, PHY_ERR_TOO_LARGE, ENOSPC, "%s: the member '%s' is %lld bytes, "
                                               "more than the free space of the home", path, name,
                                               (long long) archive_entry_size(e));
                        goto done;
                }
                _cleanup_close_ int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0) {
                        r = phy_error_set(err, errno, "cannot create '%s': %s", name, strerror(errno));
                        goto done;
                }
                if (!(m[n].name = strdup(name))) {
                        r = phy_error_set(err, ENOMEM, "out of memory");
                        goto done;
                }
                struct sha256_ctx h2;
                struct sha1_ctx h1;
                lazy_sha256_init(&h2);
                lazy_sha1_init(&h1);
                const void *buf;
                size_t len;
                la_int64_t off;
                int br;
                uint64_t written = 0;
                while ((br = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
                        written += len;
                        if (pwrite(fd, buf, len, off) != (ssize_t) len) {
                                r = phy_error_set(err, errno ? errno : EIO, "cannot write '%s': %s", name,
                                                  strerror(errno ? errno : EIO));
                                goto done;
                        }
                }
                if (br != ARCHIVE_EOF) {
                        r = phy_error_usage(err, "%s: the member '%s' is damaged: %s", path, name,
                                            archive_error_string(a));
                        goto done;
                }
                /* Every byte came from the archive: no hole is hashed. */
                if (written != (uint64_t) archive_entry_size(e)) {
                        r = phy_error_set_kind(err, PHY_ERR_PERMISSION, EPERM, "%s: the member '%s' is sparse or "
                                               "short (%llu of its %lld bytes are in the archive); an appliance's "
                                               "members are whole files: refused", path, name,
                                               (unsigned long long) written, (long long) archive_entry_size(e));
                        goto done;
                }
                /* Hash what was written. */
                if (ftruncate(fd, archive_entry_size(e)) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
                        r = phy_error_set(err, errno, "cannot write '%s': %s", name, strerror(errno));
                        goto done;
                }
                _cleanup_close_ int rfd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                uint8_t chunk[1 << 16];
                ssize_t k;
                while (rfd >= 0 && (k = read(rfd, chunk, sizeof chunk)) > 0) {
                        lazy_sha256_update(&h2, (size_t) k, chunk);
                        lazy_sha1_update(&h1, (size_t) k, chunk);
                }
                uint8_t d2[SHA256_DIGEST_SIZE], d1[SHA1_DIGEST_SIZE];
                lazy_sha256_digest(&h2, sizeof d2, d2);
                lazy_sha1_digest(&h1, sizeof d1, d1);
                hex(d2, sizeof d2, m[n].sha256);
                hex(d1, sizeof d1, m[n].sha1);
                n++;
        }
        if (ar != ARCHIVE_EOF)
                r = phy_error_usage(err, "%s: the archive is damaged: %s", path, archive_error_string(a));
done:
        *ret_n = n;
        archive_read_free(a);
        return r;
}

/* "SHA256(name)= hex" or "SHA1 (name) = hex", one a line. */
static int check_manifest(const char *source, const char *text, struct member *m, size_t n, const char *mf,
                          phy_error *err) {
        unsigned line = 0;
        const char *cur = text;
        for (;;) {
                _cleanup_free_ char *s = NULL;
                int k = ix_next_line(&cur, &s);
                if (k == 0)
                        break;
                if (k < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                line++;
                if (!s[0])
                        continue;
                char *open = strchr(s, '('), *close = strrchr(s, ')'), *eq = close ? strchr(close, '=') : NULL;
                if (!open || !close || close < open || !eq)
                        return phy_error_usage(err, "%s: %s:%u: not 'SHA256(FILE)= CHECKSUM'", source, mf, line);
                *open = '\0';
                *close = '\0';
                char *alg = s, *file = open + 1, *sum = eq + 1;
                while (isspace((unsigned char) *sum))
                        sum++;
                for (char *c = alg + strlen(alg); c > alg && isspace((unsigned char) c[-1]);)
                        *--c = '\0';
                for (char *c = sum; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
                for (char *c = sum + strlen(sum); c > sum && isspace((unsigned char) c[-1]);)
                        *--c = '\0';
                bool s256 = strcasecmp(alg, "SHA256") == 0, s1 = strcasecmp(alg, "SHA1") == 0;
                if (!s256 && !s1)
                        return phy_error_usage(err, "%s: %s:%u: checksum '%s' is not SHA256 or SHA1", source, mf, line,
                                               alg);
                struct member *hit = NULL;
                for (size_t i = 0; i < n && !hit; i++)
                        if (strcmp(m[i].name, file) == 0)
                                hit = &m[i];
                if (!hit)
                        return phy_error_usage(err, "%s: %s:%u: '%s' is listed but not in the appliance", source, mf,
                                               line, file);
                const char *have = s256 ? hit->sha256 : hit->sha1;
                if (strcmp(have, sum) != 0)
                        return phy_error_set_kind(err, PHY_ERR_PERMISSION, EBADMSG, "%s: %s:%u: the %s of '%s' is %s, "
                                                  "the manifest says %s: the appliance is damaged or was changed; "
                                                  "refused", source, mf, line, alg, file, have, sum);
                hit->listed = true;
        }
        for (size_t i = 0; i < n; i++)
                if (!m[i].listed && strcmp(m[i].name, mf) != 0 && !ends_with(m[i].name, ".cert"))
                        return phy_error_set_kind(err, PHY_ERR_PERMISSION, EBADMSG, "%s: '%s' is not in the manifest "
                                                  "%s; an appliance's every file is checked: refused", source,
                                                  m[i].name, mf);
        return 0;
}

int interop_ova_open(const char *path, const char *workdir, const struct interop_opts *o, struct interop_plan *ret,
                     phy_error *err) {
        *ret = (struct interop_plan) { 0 };
        /* Both libraries before a member is extracted (the .ovf is XML). */
        int r = lazy_archive_load(err);
        if (r < 0 || (r = lazy_xml_load(err)) < 0)
                return r;
        _cleanup_close_ int dfd = open(workdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return phy_error_set(err, errno, "cannot open '%s': %s", workdir, strerror(errno));
        struct member m[OVA_MEMBERS_MAX] = { 0 };
        size_t n = 0;
        r = extract(path, dfd, m, &n, err);
        const char *ovf = NULL, *mf = NULL;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (ends_with(m[i].name, ".ovf")) {
                        if (ovf)
                                r = phy_error_usage(err, "%s: two OVF descriptors ('%s', '%s')", path, ovf, m[i].name);
                        ovf = m[i].name;
                } else if (ends_with(m[i].name, ".mf"))
                        mf = m[i].name;
        }
        if (r >= 0 && !ovf)
                r = phy_error_usage(err, "%s: no OVF descriptor (.ovf) in the appliance", path);
        if (r >= 0 && !mf && !o->allow_no_manifest)
                r = phy_error_set_kind(err, PHY_ERR_PERMISSION, EPERM, "%s: no manifest (.mf): the appliance's files "
                                       "cannot be checked; refused", path);
        _cleanup_free_ char *mtext = NULL, *otext = NULL;
        size_t olen = 0;
        if (r >= 0 && mf) {
                _cleanup_close_ int fd = openat(dfd, mf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                _cleanup_free_ char *p = NULL;
                if (fd < 0 || asprintf(&p, "/proc/self/fd/%d", fd) < 0 ||
                    file_read_all(p, INTEROP_TEXT_MAX, &mtext, NULL) < 0)
                        r = phy_error_usage(err, "%s: cannot read the manifest '%s'", path, mf);
                else
                        r = check_manifest(path, mtext, m, n, mf, err);
        }
        if (r >= 0) {
                _cleanup_close_ int fd = openat(dfd, ovf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                _cleanup_free_ char *p = NULL;
                int k;
                if (fd < 0 || asprintf(&p, "/proc/self/fd/%d", fd) < 0)
                        r = phy_error_set(err, errno, "cannot read '%s'", ovf);
                else if ((k = file_read_all(p, INTEROP_TEXT_MAX, &otext, &olen)) < 0)
                        r = k == -EFBIG ? phy_error_set_kind(err, PHY_ERR_TOO_LARGE, EFBIG, "%s: the descriptor '%s' is "
                                                             "larger than %u bytes", path, ovf, INTEROP_TEXT_MAX)
                                        : phy_error_set(err, -k, "cannot read '%s': %s", ovf, strerror(-k));
        }
        if (r >= 0) {
                char src[1024];
                snprintf(src, sizeof src, "%s: %s", path, ovf);
                r = interop_ovf_parse(src, otext, olen, workdir, o, ret, err);
                if (r >= 0 && !mf)
                        interop_report_add(&ret->report, ovf, 0, INTEROP_NOTE, false, "the appliance has no manifest: "
                                           "its files were not checked");
        }
        for (size_t i = 0; i < n; i++)
                free(m[i].name);
        if (r >= 0 && !(ret->tmpdir = strdup(workdir)))
                r = phy_error_set(err, ENOMEM, "out of memory");
        return r;
}

/* ---- the OVF descriptor ---- */

struct ovf {
        const char *source;
        const char *dir;
        const struct interop_opts *o;
        struct interop_plan *p;
        phy_error *err;
        xmlNodePtr env;
};

#define bad(v, n, ...) ix_bad((v)->err, (v)->source, (n), __VA_ARGS__)
#define say(v, n, ...) ix_say(&(v)->p->report, (n), __VA_ARGS__)

/* The first descendant element named name. */
static xmlNodePtr find(xmlNodePtr n, const char *name) {
        for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next) {
                if (c->type != XML_ELEMENT_NODE)
                        continue;
                if (ix_is(c, name))
                        return c;
                xmlNodePtr d = find(c, name);
                if (d)
                        return d;
        }
        return NULL;
}

/* The text of the rasd child named name of an Item (marked). */
static char *rasd(xmlNodePtr item, const char *name) {
        return ix_text(ix_kid(item, name));
}

static const struct { const char *needle, *profile; } vbox_os[] = {
        { "Windows11", "windows11" }, { "Windows10", "windows10" }, { "Windows2019", "windows10" },
        { "Windows2022", "windows11" }, { "Windows", "windows10" }, { "FreeBSD", "freebsd" },
        { "MacOS", "macos" }, { "Debian", "linux" }, { "Ubuntu", "linux" }, { "Fedora", "linux" },
        { "RedHat", "linux" }, { "OpenSUSE", "linux" }, { "ArchLinux", "linux" }, { "Gentoo", "linux" },
        { "Oracle", "linux" }, { "Linux", "linux" },
};

/* The disk file behind "ovf:/disk/ID": the member's path and its format. */
static int disk_file(struct ovf *v, xmlNodePtr item, const char *host, char **ret_path, char **ret_fmt,
                     uint64_t *ret_cap) {
        /* VMware writes "ovf:/disk/ID", VirtualBox "/disk/ID". */
        const char *id = strncmp(host, "ovf:/disk/", 10) == 0 ? host + 10 : strncmp(host, "/disk/", 6) == 0 ? host + 6
                                                                                                         : NULL;
        if (!id)
                return bad(v, item, "the disk '%s' is not one of the descriptor's disks (ovf:/disk/ID)", host);
        xmlNodePtr ds = find(v->env, "DiskSection"), refs = find(v->env, "References");
        ix_mark(ds);
        ix_mark(refs);
        for (xmlNodePtr d = ds ? ds->children : NULL; d; d = d->next) {
                _cleanup_free_ char *did = ix_attr_any(d, "diskId");
                if (!ix_is(d, "Disk") || !did || strcmp(did, id) != 0)
                        continue;
                ix_mark(d);
                _cleanup_free_ char *fref = ix_attr_any(d, "fileRef"), *fmt = ix_attr_any(d, "format"),
                                    *cap = ix_attr_any(d, "capacity");
                unsigned long long c = 0;
                if (cap)
                        (void) parse_uint(cap, UINT64_MAX, &c);
                *ret_cap = c;
                for (xmlNodePtr f = refs ? refs->children : NULL; f; f = f->next) {
                        _cleanup_free_ char *fid = ix_attr_any(f, "id"), *href = ix_attr_any(f, "href");
                        if (!ix_is(f, "File") || !fid || !fref || strcmp(fid, fref) != 0)
                                continue;
                        ix_mark(f);
                        if (!href || !member_name_ok(href))
                                return bad(v, f, "the file '%s' is not a member of the appliance (a path or a URL)",
                                           href ? href : "");
                        if (asprintf(ret_path, "%s/%s", v->dir, href) < 0)
                                return phy_error_set(v->err, ENOMEM, "out of memory");
                        if (access(*ret_path, R_OK) < 0)
                                return bad(v, f, "the disk file '%s' is not in the appliance", href);
                        *ret_fmt = strdup(fmt && strstr(fmt, "vmdk") ? "vmdk" : fmt && strstr(fmt, "qcow") ? "qcow2"
                                                                                : "vmdk");
                        return *ret_fmt ? 0 : phy_error_set(v->err, ENOMEM, "out of memory");
                }
                return bad(v, d, "the disk's file '%s' is not in <References>", fref ? fref : "");
        }
        return bad(v, item, "the disk '%s' is not in <DiskSection>", id);
}

int interop_ovf_parse(const char *source, const char *text, size_t len, const char *dir,
                      const struct interop_opts *o, struct interop_plan *ret, phy_error *err) {
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
        int r = interop_xml_read(source, text, len, &doc, err);
        if (r < 0)
                return r;
        struct interop_plan *p = ret;
        if (!p->source && !(p->source = strdup(source)))
                return phy_error_set(err, ENOMEM, "out of memory");
        struct vm_def *d = &p->def;
        xmlNodePtr env = xmlDocGetRootElement(doc);
        struct ovf v = { .source = source, .dir = dir, .o = o, .p = p, .err = err, .env = env };
        if (!ix_is(env, "Envelope"))
                return bad(&v, env, "the root element is <%s>, not an OVF <Envelope>", env->name);
        ix_mark(env);
        xmlNodePtr vs = ix_kid(env, "VirtualSystem");
        if (!vs)
                return bad(&v, env, "no <VirtualSystem> (a collection of several is not imported)");
        xmlNodePtr hw = ix_kid(vs, "VirtualHardwareSection");
        if (!hw)
                return bad(&v, vs, "no <VirtualHardwareSection>");
        ix_mark(ix_kid(vs, "Info"));
        ix_mark_all(ix_kid(hw, "Info"));
        ix_mark_all(ix_kid(env, "NetworkSection"));
        /* The name. */
        _cleanup_free_ char *id = ix_attr_any(vs, "id");
        xmlNodePtr nm = ix_kid(vs, "Name");
        _cleanup_free_ char *name = nm ? ix_text(nm) : NULL;
        const char *want = o->name ? o->name : id ? id : name;
        if (!want || !vm_name_valid(want))
                return bad(&v, vs, "'%s' is no valid VM name (1 to 64 of A-Z a-z 0-9 . _ -); give one with --name",
                           want ? want : "");
        snprintf(d->name, sizeof d->name, "%s", want);
        /* The OS: VirtualBox's OSType, else the section's description. */
        xmlNodePtr oss = ix_kid(vs, "OperatingSystemSection");
        _cleanup_free_ char *ostype = NULL, *osdesc = NULL;
        if (oss) {
                ix_mark_all(oss->children);
                ostype = ix_text(find(oss, "OSType"));
                osdesc = ix_text(find(oss, "Description"));
        }
        const char *profile = o->profile;
        for (size_t i = 0; !profile && ostype && i < ELEMENTSOF(vbox_os); i++)
                if (strstr(ostype, vbox_os[i].needle))
                        profile = vbox_os[i].profile;
        if (!profile && osdesc)
                profile = strstr(osdesc, "Windows 11") ? "windows11" : strstr(osdesc, "Windows") ? "windows10"
                          : strstr(osdesc, "Linux") || strstr(osdesc, "Debian") || strstr(osdesc, "Ubuntu") ? "linux"
                          : NULL;
        if (!profile) {
                profile = "other";
                say(&v, oss ? oss : vs, INTEROP_NOTE, false, "the guest OS is not known: profile 'other'; give one "
                    "with --profile");
        } else if (!o->profile)
                say(&v, oss, INTEROP_NOTE, false, "the OS '%s': profile %s", ostype ? ostype : osdesc ? osdesc : "?",
                    profile);
        if (!vm_profile_find(profile))
                return phy_error_usage(err, "unknown profile '%s'; use one of: %s", profile, vm_profile_names());
        if (!(d->profile = strdup(profile)))
                return phy_error_set(err, ENOMEM, "out of memory");

        /* Firmware: VMware's <vmw:Config vmw:key="firmware">, VirtualBox's <Firmware type="EFI">. */
        d->firmware = VM_FW_BIOS;
        for (xmlNodePtr c = hw->children; c; c = c->next)
                if (ix_is(c, "Config")) {
                        _cleanup_free_ char *k = ix_attr_any(c, "key"), *val = ix_attr_any(c, "value");
                        if (k && strcmp(k, "firmware") == 0) {
                                ix_mark(c);
                                if (val && strcmp(val, "efi") == 0)
                                        d->firmware = VM_FW_UEFI;
                        }
                }
        xmlNodePtr vbox = ix_kid(vs, "Machine");
        xmlNodePtr vfw = vbox ? find(vbox, "Firmware") : NULL;
        _cleanup_free_ char *vfwt = ix_attr(vfw, "type");
        if (vfwt && strncmp(vfwt, "EFI", 3) == 0)
                d->firmware = VM_FW_UEFI;
        d->secure_boot = VM_OFF;
        if (d->firmware == VM_FW_UEFI)
                say(&v, vfw ? vfw : hw, INTEROP_CHANGED, true, "UEFI: the appliance carries no UEFI vars; the "
                    "firmware's boot entries are made anew (the removable-media path EFI/BOOT/BOOTX64.EFI boots)");
        d->hyperv = VM_OFF;
        d->rtc_localtime = strcmp(profile, "windows10") == 0 || strcmp(profile, "windows11") == 0 ? VM_ON : VM_OFF;
        if (strcmp(profile, "windows11") == 0) {
                d->firmware = VM_FW_UEFI;
                d->secure_boot = VM_ON;
                d->tpm = VM_TPM_EMULATED;
                say(&v, vs, INTEROP_CHANGED, true, "Windows 11: Secure Boot and a fresh TPM 2.0 (an appliance "
                    "carries neither)");
        }

        /* The items. */
        struct ctl { char id[32]; int type; xmlNodePtr n; } ctls[32];
        size_t nc = 0;
        for (xmlNodePtr it = hw->children; it; it = it->next) {
                if (!ix_is(it, "Item") && !ix_is(it, "StorageItem") && !ix_is(it, "EthernetPortItem"))
                        continue;
                _cleanup_free_ char *type = rasd(it, "ResourceType"), *iid = rasd(it, "InstanceID");
                unsigned long long t = 0;
                if (type)
                        (void) parse_uint(type, 1000, &t);
                if ((t == 5 || t == 6 || t == 20) && iid && nc < ELEMENTSOF(ctls)) {
                        snprintf(ctls[nc].id, sizeof ctls[nc].id, "%s", iid);
                        ctls[nc].type = (int) t;
                        ctls[nc++].n = it;
                }
        }
        unsigned nics = 0;
        for (xmlNodePtr it = hw->children; it; it = it->next) {
                if (!ix_is(it, "Item") && !ix_is(it, "StorageItem") && !ix_is(it, "EthernetPortItem"))
                        continue;
                ix_mark(it);
                _cleanup_free_ char *type = rasd(it, "ResourceType"), *sub = rasd(it, "ResourceSubType"),
                                    *q = rasd(it, "VirtualQuantity"), *units = rasd(it, "AllocationUnits"),
                                    *parent = rasd(it, "Parent"), *host = rasd(it, "HostResource"),
                                    *elname = rasd(it, "ElementName"), *addr = rasd(it, "Address");
                /* Descriptive members. */
                ix_mark(ix_kid(it, "Caption"));
                ix_mark(ix_kid(it, "Description"));
                ix_mark(ix_kid(it, "InstanceID"));
                ix_mark(ix_kid(it, "AddressOnParent"));
                ix_mark(ix_kid(it, "AutomaticAllocation"));
                ix_mark(ix_kid(it, "Connection"));
                unsigned long long t = 0, x = 0;
                if (type)
                        (void) parse_uint(type, 1000, &t);
                switch (t) {
                case 3:
                        if (!q || parse_uint(q, 255, &x) < 0 || !x)
                                return bad(&v, it, "the CPU count '%s' is not a number from 1 to 255", q ? q : "");
                        d->cores = (unsigned) x;
                        d->threads = 1;
                        break;
                case 4: {
                        if (!q || parse_uint(q, UINT64_MAX >> 20, &x) < 0 || !x)
                                return bad(&v, it, "the memory size '%s' is not a number", q ? q : "");
                        uint64_t mult = 1u << 20;       /* "byte * 2^20", VirtualBox's and VMware's */
                        if (units && (strstr(units, "2^30") || strcasecmp(units, "GigaBytes") == 0))
                                mult = 1u << 30;
                        else if (units && (strstr(units, "2^10") || strcasecmp(units, "KiloBytes") == 0))
                                mult = 1u << 10;
                        if (x > UINT64_MAX / mult)
                                return bad(&v, it, "the memory size '%s' %s is too large", q,
                                           units ? units : "MegaBytes");
                        d->memory = x * mult;
                        break;
                }
                case 5: case 6: case 20: case 23: case 24:
                        if (t == 6 && sub && strcasecmp(sub, "VirtualSCSI") != 0)
                                say(&v, it, INTEROP_CHANGED, true, "the %s SCSI controller becomes virtio-scsi: the "
                                    "guest needs its driver for disks on it", sub);
                        else
                                say(&v, it, INTEROP_IMPLIED, false, "%s: Phyllome adds the controllers its devices "
                                    "need", elname ? elname : "a controller");
                        break;
                case 10: {
                        struct vm_nic *n = realloc(d->nics, (d->n_nics + 1) * sizeof *n);
                        if (!n)
                                return phy_error_set(err, ENOMEM, "out of memory");
                        d->nics = n;
                        n = &d->nics[d->n_nics++];
                        *n = (struct vm_nic) { .mode = VM_NET_USER };
                        if (asprintf(&n->name, "net%u", nics++) < 0)
                                return phy_error_set(err, ENOMEM, "out of memory");
                        if (sub && strcasecmp(sub, "virtio") == 0)
                                n->model = VM_NIC_VIRTIO;
                        else if (sub && strcasecmp(sub, "E1000e") == 0)
                                n->model = VM_NIC_E1000E;
                        else {
                                n->model = VM_NIC_E1000E;
                                say(&v, it, INTEROP_CHANGED, true, "the %s network card becomes e1000e: the guest "
                                    "sees a new card (in-box drivers in Windows and Linux)", sub ? sub : "unnamed");
                        }
                        if (addr && strlen(addr) == 17) {
                                for (int i = 0; i < 17; i++)
                                        n->mac[i] = (char) tolower((unsigned char) addr[i]);
                        }
                        say(&v, it, INTEROP_CHANGED, false, "the appliance's network becomes user networking (NAT "
                            "through passt)");
                        break;
                }
                case 14:
                        say(&v, it, INTEROP_DROPPED, true, "the floppy drive is not modelled");
                        break;
                case 15: case 16:
                        say(&v, it, INTEROP_DROPPED, true, "an empty CD/DVD drive: Phyllome has a drive per ISO "
                            "('phyllo edit' adds one)");
                        break;
                case 17: {
                        if (!host)
                                return bad(&v, it, "a disk without HostResource");
                        _cleanup_free_ char *src = NULL, *fmt = NULL;
                        uint64_t cap = 0;
                        if ((r = disk_file(&v, it, host, &src, &fmt, &cap)) < 0)
                                return r;
                        int ptype = 20;
                        for (size_t i = 0; parent && i < nc; i++)
                                if (strcmp(ctls[i].id, parent) == 0)
                                        ptype = ctls[i].type;
                        struct vm_disk *k = realloc(d->disks, (d->n_disks + 1) * sizeof *k);
                        if (!k)
                                return phy_error_set(err, ENOMEM, "out of memory");
                        d->disks = k;
                        k = &d->disks[d->n_disks++];
                        *k = (struct vm_disk) { .bus = ptype == 5 ? VM_BUS_IDE : ptype == 6 ? VM_BUS_SCSI
                                                                                         : VM_BUS_SATA };
                        if (d->n_disks == 1)
                                k->name = strdup("system");
                        else if (asprintf(&k->name, "data%zu", d->n_disks - 1) < 0)
                                k->name = NULL;
                        if (!k->name || asprintf(&k->path, "disk-%s.qcow2", k->name) < 0 ||
                            !(k->format = strdup("qcow2")))
                                return phy_error_set(err, ENOMEM, "out of memory");
                        char what[400];
                        _cleanup_free_ char *w = interop_xml_where(it);
                        snprintf(what, sizeof what, "%s:%ld: <Item> (%s) '%s'", source, xmlGetLineNo(it),
                                 w ? w : "?", host);
                        if ((r = interop_plan_add_file(p, INTEROP_DISK, src, k->path, fmt, "qcow2", what, err)) < 0)
                                return r;
                        if (strcmp(fmt, "qcow2") != 0)
                                say(&v, it, INTEROP_NOTE, false, "disk '%s' (%s) is converted to qcow2", k->name, fmt);
                        (void) cap;
                        break;
                }
                case 35:
                        d->sound = VM_SOUND_HDA;
                        if (!sub || strcasecmp(sub, "hda") != 0)
                                say(&v, it, INTEROP_CHANGED, true, "the %s sound card becomes ICH9 HD Audio",
                                    sub ? sub : "unnamed");
                        break;
                default:
                        say(&v, it, INTEROP_DROPPED, true, "the item '%s' (resource type %s) is not modelled",
                            elname ? elname : "?", type ? type : "?");
                }
                ix_mark_all(it->children);
        }
        if (!d->cores)
                d->cores = 1, d->threads = 1;
        if (!d->memory)
                return bad(&v, hw, "the hardware has no memory item (ResourceType 4)");
        /* VirtualBox's own description: the MACs of its adapters (the OVF's items have none). */
        if (vbox) {
                ix_mark(vbox);
                ix_mark_all(vbox->children);
                unsigned slot = 0;
                for (xmlNodePtr a = find(vbox, "Network") ? find(vbox, "Network")->children : NULL; a; a = a->next) {
                        if (!ix_is(a, "Adapter"))
                                continue;
                        _cleanup_free_ char *en = ix_attr(a, "enabled"), *mac = ix_attr(a, "MACAddress");
                        if (!en || strcmp(en, "true") != 0)
                                continue;
                        if (slot < d->n_nics && mac && strlen(mac) == 12 && !d->nics[slot].mac[0])
                                snprintf(d->nics[slot].mac, sizeof d->nics[slot].mac, "%.2s:%.2s:%.2s:%.2s:%.2s:%.2s",
                                         mac, mac + 2, mac + 4, mac + 6, mac + 8, mac + 10);
                        for (char *c = slot < d->n_nics ? d->nics[slot].mac : NULL; c && *c; c++)
                                *c = (char) tolower((unsigned char) *c);
                        slot++;
                }
                say(&v, vbox, INTEROP_IMPLIED, false, "VirtualBox's own machine description: its firmware and MAC "
                    "addresses are read; the rest repeats the hardware section");
        }
        if (d->sound == VM_SOUND_UNSET)
                d->sound = VM_SOUND_NONE;
        d->display = VM_DISPLAY_SPICE;
        d->gpu = VM_GPU_STD;
        say(&v, hw, INTEROP_CHANGED, true, "the appliance's display adapter becomes the standard VGA under SPICE");
        /* What nobody read. */
        for (xmlNodePtr c = env->children; c; c = c->next) {
                if (c->type != XML_ELEMENT_NODE || ix_marked(c))
                        continue;
                if (ix_is(c, "References") || ix_is(c, "DiskSection"))
                        continue;
                say(&v, c, INTEROP_DROPPED, false, "<%s> is not modelled by Phyllome and is left out", c->name);
        }
        for (xmlNodePtr c = vs->children; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE && !ix_marked(c))
                        say(&v, c, INTEROP_DROPPED, false, "<%s> is not modelled by Phyllome and is left out",
                            c->name);
        for (xmlNodePtr c = hw->children; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE && !ix_marked(c) && !ix_is(c, "System"))
                        say(&v, c, INTEROP_DROPPED, false, "<%s> is not modelled by Phyllome and is left out",
                            c->name);
        ix_mark_all(ix_kid(hw, "System"));
        if (!d->n_disks)
                say(&v, hw, INTEROP_NOTE, false, "the appliance has no disk");
        return 0;
}
