/* SPDX-License-Identifier: MIT */
/*
 * libxml2 and libarchive on first use (lazylib.h).  Each function of theirs
 * we call is defined here under its own name, with the prototype of the
 * library's header (the compiler checks each definition against that
 * declaration), and forwards to the address dlsym found.  The definitions
 * are hidden: no binary exports them, so a library that links libxml2
 * itself (libosinfo, in phyllome-catalog-worker) keeps calling the real
 * one.  A function added to the code without a line here fails the link
 * (nothing else defines it), never the run.
 */
#include "lazylib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <libxml/globals.h>
#include <libxml/parser.h>
#include <libxml/SAX2.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>

/* FN(return type, name, (parameters), (arguments)); VFN for a void one. */
#define XML_FUNCS(FN, VFN) \
        FN(xmlErrorPtr, xmlCtxtGetLastError, (void *ctx), (ctx)) \
        FN(xmlDocPtr, xmlCtxtReadMemory, (xmlParserCtxtPtr ctxt, const char *buffer, int size, const char *URL, \
                                          const char *encoding, int options), (ctxt, buffer, size, URL, encoding, options)) \
        VFN(xmlDocDumpFormatMemoryEnc, (xmlDocPtr out_doc, xmlChar **doc_txt_ptr, int *doc_txt_len, \
                                        const char *txt_encoding, int format), \
            (out_doc, doc_txt_ptr, doc_txt_len, txt_encoding, format)) \
        FN(xmlNodePtr, xmlDocGetRootElement, (const xmlDoc *doc), (doc)) \
        FN(xmlNodePtr, xmlDocSetRootElement, (xmlDocPtr doc, xmlNodePtr root), (doc, root)) \
        VFN(xmlFreeDoc, (xmlDocPtr cur), (cur)) \
        VFN(xmlFreeParserCtxt, (xmlParserCtxtPtr ctxt), (ctxt)) \
        FN(long, xmlGetLineNo, (const xmlNode *node), (node)) \
        FN(xmlChar *, xmlGetNoNsProp, (const xmlNode *node, const xmlChar *name), (node, name)) \
        FN(xmlChar *, xmlGetNodePath, (const xmlNode *node), (node)) \
        FN(xmlChar *, xmlGetProp, (const xmlNode *node, const xmlChar *name), (node, name)) \
        FN(xmlNodePtr, xmlNewChild, (xmlNodePtr parent, xmlNsPtr ns, const xmlChar *name, const xmlChar *content), \
           (parent, ns, name, content)) \
        FN(xmlDocPtr, xmlNewDoc, (const xmlChar *version), (version)) \
        FN(xmlNodePtr, xmlNewNode, (xmlNsPtr ns, const xmlChar *name), (ns, name)) \
        FN(xmlNsPtr, xmlNewNs, (xmlNodePtr node, const xmlChar *href, const xmlChar *prefix), (node, href, prefix)) \
        FN(xmlParserCtxtPtr, xmlNewParserCtxt, (void), ()) \
        FN(xmlAttrPtr, xmlNewProp, (xmlNodePtr node, const xmlChar *name, const xmlChar *value), (node, name, value)) \
        FN(xmlNodePtr, xmlNewTextChild, (xmlNodePtr parent, xmlNsPtr ns, const xmlChar *name, const xmlChar *content), \
           (parent, ns, name, content)) \
        FN(xmlChar *, xmlNodeGetContent, (const xmlNode *cur), (cur)) \
        FN(int, xmlSAX2GetLineNumber, (void *ctx), (ctx)) \
        VFN(xmlSetNs, (xmlNodePtr node, xmlNsPtr ns), (node, ns)) \
        VFN(xmlStopParser, (xmlParserCtxtPtr ctxt), (ctxt))

#define ARCHIVE_FUNCS(FN, VFN) \
        FN(__LA_MODE_T, archive_entry_filetype, (struct archive_entry *e), (e)) \
        VFN(archive_entry_free, (struct archive_entry *e), (e)) \
        FN(const char *, archive_entry_hardlink, (struct archive_entry *e), (e)) \
        FN(struct archive_entry *, archive_entry_new, (void), ()) \
        FN(const char *, archive_entry_pathname, (struct archive_entry *e), (e)) \
        VFN(archive_entry_set_filetype, (struct archive_entry *e, unsigned int t), (e, t)) \
        VFN(archive_entry_set_mtime, (struct archive_entry *e, time_t t, long ns), (e, t, ns)) \
        VFN(archive_entry_set_pathname, (struct archive_entry *e, const char *p), (e, p)) \
        VFN(archive_entry_set_perm, (struct archive_entry *e, __LA_MODE_T m), (e, m)) \
        VFN(archive_entry_set_size, (struct archive_entry *e, la_int64_t s), (e, s)) \
        FN(la_int64_t, archive_entry_size, (struct archive_entry *e), (e)) \
        FN(int, archive_entry_size_is_set, (struct archive_entry *e), (e)) \
        VFN(archive_entry_sparse_add_entry, (struct archive_entry *e, la_int64_t off, la_int64_t len), (e, off, len)) \
        FN(int, archive_entry_sparse_count, (struct archive_entry *e), (e)) \
        FN(int, archive_entry_sparse_next, (struct archive_entry *e, la_int64_t *off, la_int64_t *len), (e, off, len)) \
        FN(int, archive_entry_sparse_reset, (struct archive_entry *e), (e)) \
        FN(const char *, archive_entry_symlink, (struct archive_entry *e), (e)) \
        FN(const char *, archive_error_string, (struct archive *a), (a)) \
        FN(la_ssize_t, archive_read_data, (struct archive *a, void *buf, size_t n), (a, buf, n)) \
        FN(int, archive_read_data_block, (struct archive *a, const void **buf, size_t *n, la_int64_t *off), \
           (a, buf, n, off)) \
        FN(int, archive_read_free, (struct archive *a), (a)) \
        FN(struct archive *, archive_read_new, (void), ()) \
        FN(int, archive_read_next_header, (struct archive *a, struct archive_entry **e), (a, e)) \
        FN(int, archive_read_open_fd, (struct archive *a, int fd, size_t block), (a, fd, block)) \
        FN(int, archive_read_open_filename, (struct archive *a, const char *f, size_t block), (a, f, block)) \
        FN(int, archive_read_support_filter_zstd, (struct archive *a), (a)) \
        FN(int, archive_read_support_format_tar, (struct archive *a), (a)) \
        FN(int, archive_write_add_filter_zstd, (struct archive *a), (a)) \
        FN(int, archive_write_close, (struct archive *a), (a)) \
        FN(la_ssize_t, archive_write_data, (struct archive *a, const void *buf, size_t n), (a, buf, n)) \
        FN(int, archive_write_free, (struct archive *a), (a)) \
        FN(int, archive_write_header, (struct archive *a, struct archive_entry *e), (a, e)) \
        FN(struct archive *, archive_write_new, (void), ()) \
        FN(int, archive_write_open_fd, (struct archive *a, int fd), (a, fd)) \
        FN(int, archive_write_set_bytes_in_last_block, (struct archive *a, int n), (a, n)) \
        FN(int, archive_write_set_format_pax, (struct archive *a), (a))

/* nettle's: NFN(name, ...) defines lazy_<name>, forwarding to nettle_<name>.
 * Not nettle's own names: the catalog (src/catalog) links nettle and calls
 * them, and a static link would bind its calls to definitions here. */
#define NETTLE_FUNCS(NFN) \
        NFN(sha1_init, (struct sha1_ctx *ctx), (ctx)) \
        NFN(sha1_update, (struct sha1_ctx *ctx, size_t length, const uint8_t *data), (ctx, length, data)) \
        NFN(sha1_digest, (struct sha1_ctx *ctx, size_t length, uint8_t *digest), (ctx, length, digest)) \
        NFN(sha256_init, (struct sha256_ctx *ctx), (ctx)) \
        NFN(sha256_update, (struct sha256_ctx *ctx, size_t length, const uint8_t *data), (ctx, length, data)) \
        NFN(sha256_digest, (struct sha256_ctx *ctx, size_t length, uint8_t *digest), (ctx, length, digest))

struct lazy_lib {
        const char *file;               /* the soname dlopen'ed */
        const char *package;            /* the Debian package that ships it */
        const char *needed_for;         /* for the message */
        const char *const *names;       /* the symbols resolved, in order */
        void **syms;
        size_t n;
        int code;                       /* after the load: 0, or the positive errno of the error */
        char message[600];
};

/* lib's symbols in order (an enum per library: XML_xmlNewDoc, ...), their names, their addresses */
#define LAZY_IDX_FN(prefix, ret, name, params, args) prefix##_##name,
#define LAZY_IDX_VFN(prefix, name, params, args) prefix##_##name,
#define LAZY_NAME_FN(ret, name, params, args) #name,
#define LAZY_NAME_VFN(name, params, args) #name,

#define XML_IDX_FN(ret, name, params, args) LAZY_IDX_FN(XML, ret, name, params, args)
#define XML_IDX_VFN(name, params, args) LAZY_IDX_VFN(XML, name, params, args)
#define AR_IDX_FN(ret, name, params, args) LAZY_IDX_FN(AR, ret, name, params, args)
#define AR_IDX_VFN(name, params, args) LAZY_IDX_VFN(AR, name, params, args)
enum { XML_FUNCS(XML_IDX_FN, XML_IDX_VFN) XML_xmlFree, XML_N };
enum { ARCHIVE_FUNCS(AR_IDX_FN, AR_IDX_VFN) AR_N };
#define NETTLE_IDX(name, params, args) NETTLE_##name,
#define NETTLE_NAME(name, params, args) "nettle_" #name,
enum { NETTLE_FUNCS(NETTLE_IDX) NETTLE_N };

static const char *const xml_names[XML_N] = { XML_FUNCS(LAZY_NAME_FN, LAZY_NAME_VFN) "xmlFree" };
static const char *const archive_names[AR_N] = { ARCHIVE_FUNCS(LAZY_NAME_FN, LAZY_NAME_VFN) };
static const char *const nettle_names[NETTLE_N] = { NETTLE_FUNCS(NETTLE_NAME) };
static void *xml_syms[XML_N];
static void *archive_syms[AR_N];
static void *nettle_syms[NETTLE_N];

static struct lazy_lib xml_lib = {
        .file = "libxml2.so.2", .package = "libxml2",
        .needed_for = "libvirt domain XML and OVF descriptors",
        .names = xml_names, .syms = xml_syms, .n = XML_N,
};
static struct lazy_lib archive_lib = {
        .file = "libarchive.so.13", .package = "libarchive13",
        .needed_for = "bundles (export, import) and OVA appliances",
        .names = archive_names, .syms = archive_syms, .n = AR_N,
};
static struct lazy_lib nettle_lib = {
        .file = "libnettle.so.8", .package = "libnettle8",
        .needed_for = "the checksums of bundles and OVA appliances",
        .names = nettle_names, .syms = nettle_syms, .n = NETTLE_N,
};

static void lazy_open(struct lazy_lib *l) {
        void *h = dlopen(l->file, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                l->code = ELIBACC;
                snprintf(l->message, sizeof l->message, "cannot load %s (%s), which phyllome needs for %s: install "
                         "the Debian package %s", l->file, dlerror(), l->needed_for, l->package);
                return;
        }
        for (size_t i = 0; i < l->n; i++) {
                dlerror();
                l->syms[i] = dlsym(h, l->names[i]);
                if (!l->syms[i]) {
                        const char *why = dlerror();
                        l->code = ELIBBAD;
                        snprintf(l->message, sizeof l->message, "%s lacks %s (%s), which phyllome needs for %s: "
                                 "install the Debian package %s", l->file, l->names[i],
                                 why ? why : "its value is null", l->needed_for, l->package);
                        memset(l->syms, 0, l->n * sizeof *l->syms);
                        dlclose(h);
                        return;
                }
        }
}

static int lazy_result(const struct lazy_lib *l, phy_error *err) {
        if (l->code)
                return phy_error_set_kind(err, PHY_ERR_HOST, l->code, "%s", l->message);
        return 0;
}

/* A forwarder's target; a call before the load is a bug in the caller. */
static void *lazy_sym(void *p, const char *lib, const char *name) {
        if (!p) {
                fprintf(stderr, "phyllome: %s called before %s was loaded (lazy_*_load): a programming error\n",
                        name, lib);
                abort();
        }
        return p;
}

#define LAZY_HIDDEN __attribute__((visibility("hidden")))
#define LAZY_FWD_FN(lib, prefix, ret, name, params, args) \
        LAZY_HIDDEN ret name params { \
                return ((__typeof__(&name)) lazy_sym(lib##_syms[prefix##_##name], #lib, #name)) args; \
        }
#define LAZY_FWD_VFN(lib, prefix, name, params, args) \
        LAZY_HIDDEN void name params { \
                ((__typeof__(&name)) lazy_sym(lib##_syms[prefix##_##name], #lib, #name)) args; \
        }
#define XML_FWD_FN(ret, name, params, args) LAZY_FWD_FN(xml, XML, ret, name, params, args)
#define XML_FWD_VFN(name, params, args) LAZY_FWD_VFN(xml, XML, name, params, args)
#define AR_FWD_FN(ret, name, params, args) LAZY_FWD_FN(archive, AR, ret, name, params, args)
#define AR_FWD_VFN(name, params, args) LAZY_FWD_VFN(archive, AR, name, params, args)

XML_FUNCS(XML_FWD_FN, XML_FWD_VFN)
ARCHIVE_FUNCS(AR_FWD_FN, AR_FWD_VFN)

/* lazylib.h's prototype is nettle's (checked here), the body forwards. */
#define NETTLE_FWD(name, params, args) \
        _Static_assert(__builtin_types_compatible_p(__typeof__(&lazy_##name), __typeof__(&nettle_##name)), \
                       "lazy_" #name " has nettle_" #name "'s type"); \
        void lazy_##name params { \
                ((__typeof__(&nettle_##name)) lazy_sym(nettle_syms[NETTLE_##name], "nettle", "nettle_" #name)) args; \
        }
NETTLE_FUNCS(NETTLE_FWD)

/* xmlFree is a variable of libxml2's (the free function it was set up
 * with): ours gets its value at the load. */
static void xml_free_unloaded(void *p) {
        lazy_sym(NULL, "xml", "xmlFree");
}
LAZY_HIDDEN xmlFreeFunc xmlFree = xml_free_unloaded;

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static pthread_once_t archive_once = PTHREAD_ONCE_INIT;

static void xml_open(void) {
        lazy_open(&xml_lib);
        if (!xml_lib.code)
                xmlFree = *(xmlFreeFunc *) xml_syms[XML_xmlFree];
}

static void archive_open(void) {
        lazy_open(&archive_lib);
        if (!archive_lib.code)
                lazy_open(&nettle_lib);
}

int lazy_xml_load(phy_error *err) {
        pthread_once(&xml_once, xml_open);
        return lazy_result(&xml_lib, err);
}

int lazy_archive_load(phy_error *err) {
        pthread_once(&archive_once, archive_open);
        int r = lazy_result(&archive_lib, err);
        return r < 0 ? r : lazy_result(&nettle_lib, err);
}
