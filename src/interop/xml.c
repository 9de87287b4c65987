/* SPDX-License-Identifier: MIT */
/*
 * XML from outside (a libvirt domain, an OVF descriptor) parsed safely:
 * capped in size, no network (XML_PARSE_NONET), no entity substitution and
 * no DTD loading (neither XML_PARSE_NOENT nor XML_PARSE_DTDLOAD), and any
 * <!DOCTYPE> refused outright as the parser meets it: neither format has
 * one, and a document type is where external entities (a host file read
 * into the document) and nested ones (billion laughs) are declared.
 */
#include "interop.h"
#include "xml-internal.h"

#include <ctype.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "lazylib.h"

struct read_state {
        bool doctype;
        int line;
};

static void refuse_doctype(void *ctx, const xmlChar *name, const xmlChar *ext_id, const xmlChar *sys_id) {
        xmlParserCtxtPtr ctxt = ctx;
        struct read_state *s = ctxt->_private;
        s->doctype = true;
        s->line = xmlSAX2GetLineNumber(ctxt);
        xmlStopParser(ctxt);
}

static xmlEntityPtr no_entity(void *ctx, const xmlChar *name) {
        /* Only the five predefined ones (&lt; ...), which never reach here. */
        return NULL;
}

int interop_xml_read(const char *source, const char *text, size_t len, xmlDocPtr *ret, phy_error *err) {
        int r = lazy_xml_load(err);
        if (r < 0)
                return r;
        if (len > INTEROP_TEXT_MAX)
                return phy_error_set_kind(err, PHY_ERR_TOO_LARGE, EFBIG, "%s: the XML is %zu bytes; at most %u are "
                                          "read (a domain or OVF descriptor is a few kilobytes)", source, len,
                                          INTEROP_TEXT_MAX);
        if (memchr(text, '\0', len))
                return phy_error_usage(err, "%s: the XML holds a NUL byte; it is not a text document", source);
        xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
        if (!ctxt)
                return phy_error_set(err, ENOMEM, "out of memory");
        struct read_state s = { 0 };
        ctxt->_private = &s;
        ctxt->sax->internalSubset = refuse_doctype;
        ctxt->sax->getEntity = no_entity;
        ctxt->sax->getParameterEntity = no_entity;
        xmlDocPtr doc = xmlCtxtReadMemory(ctxt, text, (int) len, source, NULL,
                                          XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        if (s.doctype) {
                r = phy_error_usage(err, "%s:%d: <!DOCTYPE> is refused: a libvirt domain or an OVF descriptor has "
                                    "none, and a document type declares entities (external ones read host files, "
                                    "nested ones expand without bound)", source, s.line);
        } else if (!doc || !ctxt->wellFormed) {
                const xmlError *e = xmlCtxtGetLastError(ctxt);
                char msg[512];
                snprintf(msg, sizeof msg, "%s", e && e->message ? e->message : "not well-formed");
                msg[strcspn(msg, "\n")] = '\0';
                r = phy_error_usage(err, "%s:%d: the XML is not well-formed: %s", source, e ? e->line : 0, msg);
        } else if (doc->intSubset || doc->extSubset) {
                r = phy_error_usage(err, "%s: <!DOCTYPE> is refused (entities)", source);
        } else if (!xmlDocGetRootElement(doc)) {
                r = phy_error_usage(err, "%s: the XML has no root element", source);
        }
        xmlFreeParserCtxt(ctxt);
        if (r < 0) {
                xmlFreeDoc(doc);
                return r;
        }
        *ret = doc;
        return 0;
}

char *interop_xml_where(xmlNodePtr node) {
        xmlChar *p = xmlGetNodePath(node);
        char *s = p ? strdup((const char *) p) : strdup("?");
        xmlFree(p);
        return s;
}

/* ---- walking ---- */

static char mark_tag;


void ix_mark(xmlNodePtr n) {
        if (n)
                n->_private = &mark_tag;
}
bool ix_marked(xmlNodePtr n) {
        return n->_private == &mark_tag;
}
/* n and everything below it. */
void ix_mark_all(xmlNodePtr n) {
        for (; n; n = n->next)
                if (n->type == XML_ELEMENT_NODE) {
                        ix_mark(n);
                        ix_mark_all(n->children);
                }
}

bool ix_is(xmlNodePtr n, const char *name) {
        return n && n->type == XML_ELEMENT_NODE && strcmp((const char *) n->name, name) == 0;
}

/* The first child element named name, marked as read. */
xmlNodePtr ix_kid(xmlNodePtr n, const char *name) {
        for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
                if (ix_is(c, name)) {
                        ix_mark(c);
                        return c;
                }
        return NULL;
}

/* An attribute (malloc'd) or NULL. */
char *ix_attr(xmlNodePtr n, const char *name) {
        if (!n)
                return NULL;
        xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *) name);
        char *s = v ? strdup((const char *) v) : NULL;
        xmlFree(v);
        return s;
}

bool ix_attr_is(xmlNodePtr n, const char *name, const char *want) {
        _cleanup_free_ char *v = ix_attr(n, name);
        return v && strcmp(v, want) == 0;
}

/* The text of an element, blanks at both ends cut (malloc'd) or NULL. */
char *ix_text(xmlNodePtr n) {
        if (!n)
                return NULL;
        xmlChar *v = xmlNodeGetContent(n);
        if (!v)
                return NULL;
        const char *s = (const char *) v;
        while (isspace((unsigned char) *s))
                s++;
        size_t len = strlen(s);
        while (len && isspace((unsigned char) s[len - 1]))
                len--;
        char *out = strndup(s, len);
        xmlFree(v);
        return out;
}


char *ix_attr_any(xmlNodePtr n, const char *name) {
        if (!n)
                return NULL;
        xmlChar *v = xmlGetProp(n, (const xmlChar *) name);
        char *s = v ? strdup((const char *) v) : NULL;
        xmlFree(v);
        return s;
}

int ix_bad(phy_error *err, const char *source, xmlNodePtr n, const char *fmt, ...) {
        char msg[700];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        _cleanup_free_ char *w = interop_xml_where(n);
        return phy_error_usage(err, "%s:%ld: <%s> (%s): %s", source, xmlGetLineNo(n), (const char *) n->name,
                               w ? w : "?", msg);
}

void ix_say(struct interop_report *r, xmlNodePtr n, enum interop_status st, bool gv, const char *fmt, ...) {
        char msg[900];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        _cleanup_free_ char *w = interop_xml_where(n);
        interop_report_add(r, w ? w : "?", xmlGetLineNo(n), st, gv, "%s", msg);
}

int ix_next_line(const char **cursor, char **ret) {
        const char *l = *cursor;
        if (!l || !*l)
                return 0;
        const char *eol = strchr(l, '\n');
        size_t len = eol ? (size_t) (eol - l) : strlen(l);
        if (len && l[len - 1] == '\r')
                len--;
        *cursor = eol ? eol + 1 : NULL;
        return (*ret = strndup(l, len)) ? 1 : -ENOMEM;
}
