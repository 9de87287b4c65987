/* SPDX-License-Identifier: MIT */
#pragma once
/* Walking a parsed document (xml.c): each element a reader maps is marked,
 * so that the ones left unmarked can be reported as not modelled. */
#include <libxml/tree.h>
#include <stdbool.h>
#include "interop.h"

void ix_mark(xmlNodePtr n);
bool ix_marked(xmlNodePtr n);
/* The elements of the list starting at n and everything below them. */
void ix_mark_all(xmlNodePtr n);
/* An element of that local name (any namespace). */
bool ix_is(xmlNodePtr n, const char *name);
/* The first child element named so, marked; NULL when none. */
xmlNodePtr ix_kid(xmlNodePtr n, const char *name);
/* An attribute without a namespace (malloc'd) or NULL. */
char *ix_attr(xmlNodePtr n, const char *name);
/* An attribute of that local name in any namespace (ovf:href) or none. */
char *ix_attr_any(xmlNodePtr n, const char *name);
bool ix_attr_is(xmlNodePtr n, const char *name, const char *want);
/* The element's text, blanks at both ends cut (malloc'd) or NULL. */
char *ix_text(xmlNodePtr n);

/* A usage error "SOURCE:LINE: <name> (/path/of/it): message". */
int ix_bad(phy_error *err, const char *source, xmlNodePtr n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A report item on element n (its path and line). */
void ix_say(struct interop_report *r, xmlNodePtr n, enum interop_status st, bool gv, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

/* Text by lines: the next line (malloc'd, without its newline or a CR) in
 * *ret and 1, 0 at the end, -ENOMEM. */
int ix_next_line(const char **cursor, char **ret);
